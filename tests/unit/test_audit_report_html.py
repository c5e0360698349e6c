"""The auditor's printable report (``ledger history --html``): Chinese by default, Beijing time,
the masked name, each event's hash, the source record and a sign-off block.

Runs on the in-memory store; every expectation is computed from the stored events
(their digests, their recording instants), not written down by hand.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from html import escape

import pytest

from entrypoints.audit import history_report, render_html
from entrypoints.audit.report import cst
from entrypoints.messages import AUDIT_EVENTS
from entrypoints.wiring import bootstrap
from events.ledger_events import person_event_classes
from infra.settings import Settings
from ledger.domain.chain import event_digest
from ledger.domain.identity import make_resident_id
from ledger.domain.person import BUSINESS_TZ
from ledger.inbound_records import Provenance, ResidentRecord, StatusRecord, TaxPaymentRecord

HANBIN = "610902"
GRID = "610902100001"
OFFICE = "16109020000"
NAME = "王<script>alert(1)</script>芳"
SAME_KEY = "person-610902-0042"  # the Kafka message key every feed uses for this person
CLERK = Provenance(source="api", user="clerk01", request_id="req-abc")


def feed(topic: str, offset: int) -> Provenance:
    return Provenance(source="kafka", topic=topic, partition=0, offset=offset, record_key=SAME_KEY)


@pytest.fixture()
def story():
    system = bootstrap(Settings(persistence="memory", id_key=b"audit-report-html-tests"))
    ledger = system.ledger
    number = make_resident_id(HANBIN, date(1990, 5, 6), 17)
    pid = ledger.enroll(id_type="RESIDENT_ID", id_number=number, name=NAME, scheme="RESIDENT", region_code=HANBIN,
                        grid_code=GRID, effective_date=date(2024, 9, 10), provenance=CLERK).person_id
    ledger.assess_resident_year(pid, 2025, provenance=CLERK, effective_date=date(2024, 9, 10))
    ledger.record_tax_record(TaxPaymentRecord(
        voucher_no="V123", tax_office=OFFICE, id_type="RESIDENT_ID", id_number=number, name=NAME, region_code=HANBIN,
        levy_item="RESIDENT", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31), amount_fen=38050,
        paid_at=datetime(2024, 10, 8, 17, 30, tzinfo=timezone.utc), credited_on=None, channel="APP"),
        provenance=feed("tax.payments.v1", 41))
    ledger.apply_status(StatusRecord(record_id="MZ-1", id_type="RESIDENT_ID", id_number=number, name=NAME,
                                     category="ORPHAN", granted=True, valid_from=date(2024, 1, 1), valid_to=None,
                                     department="汉滨区民政局", document_no="TK-1"),
                        provenance=feed("registry.status.v1", 5))
    ledger.apply_residence(ResidentRecord(record_id="R-9", id_type="RESIDENT_ID", id_number=number, name=NAME,
                                          grid_code=GRID, status="RESIDENT", effective_date=date(2025, 2, 1)),
                           provenance=feed("registry.residents.v1", 9))
    events = list(ledger.events.get(pid))
    report = history_report(ledger, "RESIDENT_ID", number, printable=True)
    yield number, events, report, ledger
    system.close()


def rows(html: str) -> list[str]:
    body = html.split("<table class='history'>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1])


def by_type(events, report, kind: str) -> int:
    return next(i for i, e in enumerate(report["events"]) if e["type"] == kind)


def test_chinese_by_default_with_beijing_time(story):
    _, events, report, _ = story
    html = render_html(report)
    assert "<html lang='zh-CN'>" in html
    for heading in ("参保人权益记录审计报告", "存储事件校验", "事件记录", "记录时间（北京时间）", "来源记录", "审计签字"):
        assert heading in html
    assert "recorded (UTC)" not in html and "History</h2>" not in html
    for event, row in zip(events, rows(html)):
        beijing = event.timestamp.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M:%S")
        assert beijing in row
        if event.timestamp.astimezone(timezone.utc).hour != event.timestamp.astimezone(BUSINESS_TZ).hour:
            assert event.timestamp.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") not in row


def test_cst_converts_any_offset_to_utc_plus_8():
    assert cst("2024-10-08T17:30:00+00:00") == "2024-10-09 01:30:00"
    assert cst("2024-10-09T01:30:00+08:00") == "2024-10-09 01:30:00"


def test_each_row_carries_the_verify_digest_and_prev_hash(story):
    _, events, report, _ = story
    html = render_html(report)
    table = rows(html)
    assert len(table) == len(events) == report["version"]
    for event, row, line in zip(events, table, report["events"]):
        digest = event_digest(event)
        assert line["digest"] == digest
        assert digest[:16] in row and str(event.prev_hash)[:16] in row
    # each event's prev_hash is the previous row's digest: the chain as printed holds together
    assert all(events[i].prev_hash == event_digest(events[i - 1]) for i in range(1, len(events)))
    assert report["chain_head"] == event_digest(events[-1]) and report["chain_head"] in html
    assert report["verification"]["clean"] is True


def test_record_column_names_the_source_record_not_the_kafka_key(story):
    _, events, report, _ = story
    html = render_html(report)
    table = rows(html)
    record = lambda i: re.search(r"<td class='small record'>(.*?)</td>", table[i]).group(1)  # noqa: E731
    assert "税务缴费凭证 V123" in record(by_type(events, report, "ContributionPaid"))
    assert "民政认定文书 TK-1" in record(by_type(events, report, "SubsidyGranted"))
    assert "户籍记录 R-9" in record(by_type(events, report, "ResidenceRecorded"))
    assert "经办人 clerk01 请求 req-abc" in record(by_type(events, report, "Enrolled"))
    assert SAME_KEY not in html


def test_money_in_yuan_with_two_decimals(story):
    _, _, report, _ = story
    html = render_html(report)
    assert "参保 城乡居民医保 610902 汉滨区" in html
    assert "已缴 380.50 元" in html and "38050" not in html.split("<table class='history'>", 1)[1]


def test_name_masked_unless_revealed_and_html_escaped(story):
    number, _, report, _ = story
    masked = render_html(report)
    assert escape(NAME[0] + "*" * (len(NAME) - 1)) in masked and "<script>" not in masked
    revealed = render_html(report, reveal=True)
    assert escape(NAME) in revealed and "<script>" not in revealed
    for html in (masked, revealed):
        assert report["masked_id"] in html and number not in html


def test_sign_off_block_for_a_printed_copy(story):
    _, events, report, _ = story
    html = render_html(report)
    block = html.split("<section class='signoff'>", 1)[1].split("</section>", 1)[0]
    for word in ("审计人", "日期", "签字"):
        assert f"{word}：<span class='line'></span>" in block
    assert cst(report["generated_at"]) + " 北京时间" in block
    assert f"共 {len(events)} 条事件" in block and report["chain_head"] in block
    assert html.index("<section class='signoff'>") > html.index("<table class='history'>")


def test_as_of_instant_in_the_sign_off_block(story):
    number, events, _, ledger = story
    instant = events[2].timestamp  # right after the third event, as the ledger recorded it
    report = history_report(ledger, "RESIDENT_ID", number, as_of=instant, year=2025, printable=True)
    block = render_html(report).split("<section class='signoff'>", 1)[1]
    beijing = instant.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M:%S")
    assert f"截至时点 {beijing} 北京时间" in block
    assert "截至时点 生成时" in render_html(story[2]).split("<section class='signoff'>", 1)[1]


def test_english_on_request(story):
    _, _, report, _ = story
    html = render_html(report, "en")
    assert "<html lang='en'>" in html
    for heading in ("Insured person: history and verification", "recorded (Beijing time)", "Sign-off", "Auditor",
                    "tax payment voucher V123", "civil-affairs document TK-1", "household registry record R-9",
                    "clerk clerk01 request req-abc", "paid 380.50 yuan"):
        assert heading in html
    assert "审计签字" not in html and "事件记录" not in html


def test_every_person_event_has_a_chinese_line_and_the_story_uses_them(story):
    assert set(person_event_classes()) <= set(AUDIT_EVENTS)
    _, events, report = story[:3]
    html = render_html(report)
    for line in report["events"]:
        assert line["description_zh"] and escape(line["description_zh"]) in html
        assert escape(line["description"]) not in html  # the English line only with --lang en
    paid = report["events"][by_type(events, report, "ContributionPaid")]
    assert paid["description_zh"].startswith("缴费 380.50 元：城乡居民医保，2025 年度")
    assert escape(paid["description"]) in render_html(report, "en")
