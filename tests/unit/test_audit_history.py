"""The auditor's history of one person, and what the ledger knew at a past instant.

Runs on the in-memory store. The instants asked about are the recording instants
(``timestamp``) the ledger itself gave the events: an as-of instant is chosen
between two recorded events, never made up.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from entrypoints.audit import history_report, render_html, replay_as_of
from entrypoints.audit.replay import known_at, parse_instant, person_history, state
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.errors import DomainError, NotFound
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import Provenance, StatusRecord, TaxPaymentRecord
from projections.entitlement import EntitlementProjection

HANBIN, HANYIN = "610902", "610921"
GRID = "610902100001"
OFFICE = "16109020000"
CLERK = Provenance(source="api", user="clerk01", request_id="req-7")


def feed(topic: str, offset: int, key: str) -> Provenance:
    return Provenance(source="kafka", topic=topic, partition=1, offset=offset, record_key=key)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture()
def ledger():
    system = bootstrap(Settings(persistence="memory", id_key=b"audit-history-tests"))
    yield system.ledger
    system.close()


def tax(number: str, voucher: str, amount_fen: int, paid_at: datetime, **over) -> TaxPaymentRecord:
    fields = dict(voucher_no=voucher, tax_office=OFFICE, id_type="RESIDENT_ID", id_number=number, name="王芳",
                  region_code=HANBIN, levy_item="RESIDENT", period_start=date(2025, 1, 1),
                  period_end=date(2025, 12, 31), amount_fen=amount_fen, paid_at=paid_at, credited_on=None,
                  channel="APP")
    fields.update(over)
    return TaxPaymentRecord(**fields)


def last_instant(ledger, person_id) -> datetime:
    """The recording instant of the person's latest event (what the ledger knew right after it)."""
    return list(ledger.events.get(person_id))[-1].timestamp


@pytest.fixture()
def story(ledger):
    """A resident who pays for 2025, is then found to be an orphan (late full subsidy), is refunded, and moves.

    Returns (number, person_id, instants): the instant right after each chapter.
    """
    number = make_resident_id(HANBIN, date(2012, 3, 4), 21)
    pid = ledger.enroll(id_type="RESIDENT_ID", id_number=number, name="王芳", scheme="RESIDENT", region_code=HANBIN,
                        grid_code=GRID, effective_date=date(2024, 9, 10), provenance=CLERK).person_id
    ledger.assess_resident_year(pid, 2025, provenance=CLERK, effective_date=date(2024, 9, 10))
    enrolled = last_instant(ledger, pid)
    ledger.record_tax_record(tax(number, "V-2025-1", 40000, utc(2024, 10, 8, 1, 30)),
                             provenance=feed("tax.payments.v1", 41, "16109020000|V-2025-1"))
    paid = last_instant(ledger, pid)
    ledger.apply_status(StatusRecord(record_id="MZ-88", id_type="RESIDENT_ID", id_number=number, name="王芳",
                                     category="ORPHAN", granted=True, valid_from=date(2024, 1, 1), valid_to=None,
                                     department="汉滨区民政局", document_no="汉民发〔2025〕88号"),
                        provenance=feed("registry.status.v1", 5, "MZ-88"))
    subsidised = last_instant(ledger, pid)
    ledger.record_tax_record(tax(number, "R-2025-1", 40000, utc(2025, 3, 2, 2, 0), kind="REFUND",
                                 original_voucher_no="V-2025-1", reason="全额资助，退还个人缴费"),
                             provenance=feed("tax.payments.v1", 97, "16109020000|R-2025-1"))
    refunded = last_instant(ledger, pid)
    ledger.transfer_out(pid, transfer_id="ZY-2025-3", counterpart_region=HANYIN, effective_date=date(2025, 6, 30),
                        provenance=CLERK)
    return number, pid, {"enrolled": enrolled, "paid": paid, "subsidised": subsidised, "refunded": refunded}


# ------------------------------------------------------------------ the history
def test_history_lists_every_event_in_order_with_its_source(ledger, story):
    number, pid, _ = story
    report = history_report(ledger, "RESIDENT_ID", number, verify=False)
    events = report["events"]
    assert [e["type"] for e in events] == [
        "Registered", "Enrolled", "ContributionAssessed", "ContributionPaid", "SubsidyGranted",
        "ContributionAssessed", "ContributionRefunded", "TransferOutCompleted"]
    assert [e["version"] for e in events] == list(range(1, 9))
    recorded = [e["recorded_at"] for e in events]
    assert recorded == sorted(recorded)
    assert report["masked_id"] == number[:4] + "*" * 10 + number[-4:]
    assert number not in str(report)

    paid = events[3]
    assert paid["provenance"] == {"source": "kafka", "topic": "tax.payments.v1", "partition": "1", "offset": "41",
                                  "record_key": "16109020000|V-2025-1"}
    assert paid["document"] == "tax voucher V-2025-1 (office 16109020000)"
    assert "400.00 yuan" in paid["description"] and "coverage year 2025" in paid["description"]
    assert paid["effective_date"] == "2024-10-08"  # 09:30 in Beijing
    grant = events[4]
    assert grant["source"] == "kafka: registry.status.v1 partition 1 offset 5, record MZ-88"
    assert "汉民发〔2025〕88号" in grant["document"]
    assert events[1]["source"] == "api: user clerk01, request req-7"
    assert events[2]["policy_version"] and events[2]["policy_version"] == events[5]["policy_version"]
    assert events[3]["policy_version"] is None


def test_state_after_each_step_is_the_projection_of_the_events_so_far(ledger, story):
    _, pid, _ = story
    events = list(ledger.events.get(pid))
    lines, rows = person_history(events, ledger.policies, year=2025)
    projection = EntitlementProjection(ledger.policies)
    for k in (1, 3, 4, 6, 8):
        assert rows[k - 1] == projection.apply_rows(None, events[:k])
        assert lines[k - 1]["state_after"] == state(rows[k - 1], 2025)

    after = [line["state_after"] for line in lines]
    assert after[0]["enrolled_in"] is None
    assert (after[2]["due_fen"], after[2]["net_paid_fen"], after[2]["covered_from"]) == (40000, 0, None)
    assert (after[3]["net_paid_fen"], after[3]["covered_from"], after[3]["covered_to"]) == (
        40000, date(2025, 1, 1), date(2025, 12, 31))
    assert (after[5]["due_fen"], after[5]["subsidy_fen"], after[5]["overpayment_fen"]) == (0, 40000, 40000)
    assert (after[6]["net_paid_fen"], after[6]["overpayment_fen"]) == (0, 0)
    assert after[7]["enrollment_state"] == "ENDED" and after[7]["covered_to"] == date(2025, 12, 31)


# ------------------------------------------------------------------ as of an instant
def test_as_of_three_instants_gives_what_the_ledger_knew_then(ledger, story):
    _, pid, at = story

    paid = replay_as_of(ledger, pid, at["paid"], year=2025)
    assert paid["known_version"] == 4 and paid["current_version"] == 8
    assert (paid["then"]["due_fen"], paid["then"]["subsidy_fen"], paid["then"]["net_paid_fen"]) == (40000, 0, 40000)
    assert paid["then"]["enrollment_state"] == "ACTIVE"

    subsidised = replay_as_of(ledger, pid, at["subsidised"], year=2025)
    assert subsidised["known_version"] == 6
    then = subsidised["then"]
    assert (then["due_fen"], then["subsidy_fen"], then["subsidy_category"]) == (0, 40000, "ORPHAN")
    assert (then["net_paid_fen"], then["overpayment_fen"]) == (40000, 40000)  # a refund is owed, not a negative due

    refunded = replay_as_of(ledger, pid, at["refunded"], year=2025)
    assert refunded["known_version"] == 7
    assert (refunded["then"]["net_paid_fen"], refunded["then"]["refunded_fen"]) == (0, 40000)
    assert refunded["then"]["overpayment_fen"] == 0
    assert refunded["then"]["enrollment_state"] == "ACTIVE"
    assert refunded["now"]["enrollment_state"] == "ENDED"  # the transfer came later


def test_each_change_since_an_instant_names_the_events_that_caused_it(ledger, story):
    _, pid, at = story
    events = list(ledger.events.get(pid))
    diff = replay_as_of(ledger, pid, at["paid"], year=2025, events=events)
    changes = {c["figure"]: c for c in diff["changes"]}
    assert set(changes) >= {"due_fen", "subsidy_fen", "net_paid_fen", "refunded_fen", "enrollment_state"}
    assert all(c["traced"] for c in changes.values())

    due = changes["due_fen"]
    assert (due["then"], due["now"]) == (40000, 0)
    assert {c["type"] for c in due["causes"]} == {"SubsidyGranted", "ContributionAssessed"}
    assert {c["version"] for c in due["causes"]} == {5, 6}  # the late subsidy and its re-assessment, not v3
    refund = changes["net_paid_fen"]
    assert [c["version"] for c in refund["causes"]] == [7]
    assert "Refunded" in refund["causes"][0]["description"]
    ended = changes["enrollment_state"]
    assert [c["type"] for c in ended["causes"]] == ["TransferOutCompleted"]
    assert all(c["recorded_at"] > at["paid"] for ch in diff["changes"] for c in ch["causes"])


def test_covered_on_a_day_as_known_then_and_now(ledger, story):
    _, pid, at = story
    before_payment = replay_as_of(ledger, pid, at["enrolled"], year=2025, day=date(2025, 2, 1))
    cov = before_payment["covered_on"]
    assert cov["then"]["covered"] is False and "not paid" in cov["then"]["reason"]
    assert cov["now"]["covered"] is True  # paid, then fully subsidised: covered all the same

    nothing = replay_as_of(ledger, pid, at["enrolled"] - timedelta(days=1), year=2025, day=date(2025, 2, 1))
    assert nothing["known_version"] == 0 and nothing["then"]["due_fen"] is None
    assert "no record" in nothing["covered_on"]["then"]["reason"]


def test_an_instant_between_two_events_splits_the_history_there(ledger, story):
    _, pid, at = story
    events = list(ledger.events.get(pid))
    assert known_at(events, events[3].timestamp) == 4
    assert known_at(events, events[3].timestamp - timedelta(microseconds=1)) == 3
    assert known_at(events, events[-1].timestamp + timedelta(days=1)) == len(events)


def test_the_report_with_as_of_matches_the_replay(ledger, story):
    number, pid, at = story
    report = history_report(ledger, "RESIDENT_ID", number, as_of=at["subsidised"], year=2025)
    replay = replay_as_of(ledger, pid, at["subsidised"], year=2025)
    assert report["as_of"]["then"]["overpayment_fen"] == replay["then"]["overpayment_fen"] == 40000
    assert [c["figure"] for c in report["as_of"]["changes"]] == [c["figure"] for c in replay["changes"]]
    assert report["verification"]["clean"] is True
    assert report["ledger_position"] >= 8
    html = render_html(report)
    assert "@page" in html and "A4" in html and report["masked_id"] in html and number not in html
    assert "账本所知" in html and "汉民发〔2025〕88号" in html  # Chinese by default
    assert "As known at" in render_html(report, "en")


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("text", ["yesterday", "2025-13-01", "2025-02-30T10:00"])
def test_a_bad_instant_is_refused_with_a_code(text):
    with pytest.raises(DomainError) as err:
        parse_instant(text)
    assert err.value.code == "AS_OF_INVALID"


def test_instants_without_offset_are_china_standard_time_and_a_date_means_its_end():
    assert parse_instant("2025-03-01T08:00:00") == utc(2025, 3, 1, 0, 0)
    assert parse_instant("2025-03-01T08:00:00Z") == utc(2025, 3, 1, 8, 0)
    assert parse_instant("2025-03-01") == datetime(2025, 3, 1, 15, 59, 59, 999999, tzinfo=timezone.utc)


def test_unknown_person_and_bad_year(ledger):
    number = make_resident_id(HANBIN, date(1990, 1, 1), 5)
    with pytest.raises(NotFound) as err:
        history_report(ledger, "RESIDENT_ID", number)
    assert err.value.code == "PERSON_NOT_FOUND"
    with pytest.raises(DomainError) as err:
        history_report(ledger, "RESIDENT_ID", number, year="twenty")
    assert err.value.code == "YEAR_INVALID"
