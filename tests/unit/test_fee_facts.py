"""Late fees as ledger facts (滞纳金缴纳/减免, issue #22), through the public interfaces.

The case of tests/unit/late_fee_support.py: an employer's eight employees owe 1,000,000 fen for
January 2026, due 2026-01-15, paid 2026-03-16: 30,000 fen of late fee (3,750 per employee),
still owed after the contribution payment. Then:

* a fee payment of 30,000 fen (one receipt, split over the eight) clears it; a partial 10,000
  leaves 20,000; the same voucher again changes nothing;
* the tax feed's LATE_FEE levy item (one record per employee) collects it too, replays counted once;
* a waiver with reason and approver clears it, and the list shows who approved and why.
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone

import pytest
from fastapi.testclient import TestClient

from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.history import fold_many
from ledger.policy import PolicyBook
from ledger.inbound_records import Provenance, TaxPaymentRecord
from tests.unit import late_fee_support as case
from tests.unit.http_support import AUDITOR, CLERK, CLERK_HANYIN, GRID_WORKER_A, auth

AFTER = "2026-04-01"
FEED = Provenance(source="kafka", topic="tax.payments.v1", partition=0, offset=1, record_key="k")


@pytest.fixture()
def api(tmp_path):
    system = bootstrap(Settings(persistence="memory", id_key=b"fee-facts"),
                       policies=PolicyBook.load(case.policy_dir(tmp_path)))
    numbers = case.employer_owes_january(system.ledger)
    case.employer_pays_january(system.ledger, numbers)
    yield TestClient(create_app(system, TokenStore.from_tokens({
        **__import__("tests.unit.http_support", fromlist=["TOKENS"]).TOKENS,
        "tok-approver": ("li.approver", "clerk", [case.HANBIN]),
        "tok-li": ("li.approver", "approver", [case.HANBIN]),
        "tok-zhao": ("zhao.approver", "approver", [case.HANBIN]),
    }))), system, numbers
    system.close()


def fees(client, **params):
    r = client.get("/fees", params={"region": case.HANBIN, "as_of": AFTER, **params}, headers=CLERK)
    assert r.status_code == 200, r.json()
    return r.json()


def pay(client, amount_fen, voucher="SP-0001", headers=CLERK, **over):
    body = {"employer_id": case.EMPLOYER, "period": case.MONTH, "amount_fen": amount_fen, "voucher_no": voucher,
            "tax_office": "16109020000", "paid_on": "2026-03-20", **over}
    return client.post("/late-fees/payments", json=body, headers=headers)


def test_the_fee_list_shows_the_arithmetic_of_the_issue_case(api):
    client, _, numbers = api
    body = fees(client)
    assert (body["count"], body["accrued_fen"], body["owed_fen"], body["fee_paid_fen"]) == (8, 30_000, 30_000, 0)
    row = body["fees"][0]
    assert (row["principal_fen"], str(row["due_date"]), str(row["until"]), row["days"]) == (125_000, "2026-01-15",
                                                                                          "2026-03-16", 60)
    assert (row["rate_ppm_per_day"], row["accrued_fen"], row["owed_fen"]) == (500, 3_750, 3_750)
    assert row["arithmetic"] == "1,250.00 元 × 60 天 × 0.05%/天 = 37.50 元"
    assert row["fee_status_label"] == "未缴" and row["id_number"] in numbers
    assert body["employers"] == [{"employer_id": case.EMPLOYER, "region_code": case.HANBIN, "rows": 8,
                                  "accrued_fen": 30_000, "fee_paid_fen": 0, "waived_fen": 0, "owed_fen": 30_000}]


def test_a_fee_payment_of_30000_clears_it_and_a_replay_changes_nothing(api):
    client, system, _ = api
    r = pay(client, 30_000)
    assert r.status_code == 201, r.json()
    assert len(r.json()["persons"]) == 8 and {p["amount_fen"] for p in r.json()["persons"]} == {3_750}
    assert fees(client)["count"] == 0
    cleared = fees(client, all="true")
    assert (cleared["fee_paid_fen"], cleared["owed_fen"]) == (30_000, 0)
    assert {f["fee_status_label"] for f in cleared["fees"]} == {"已缴清"}
    arrears = client.get("/arrears", params={"region": case.HANBIN, "as_of": AFTER}, headers=CLERK).json()
    assert arrears["count"] == 0 and arrears["late_fee_fen"] == 0  # off the arrears list too
    assert r.json()["message"] == "滞纳金缴纳 300.00 元（票号 SP-0001），8 名职工"  # Chinese by default
    again = pay(client, 30_000, headers={**CLERK, "Accept-Language": "en"})
    assert again.status_code == 200 and again.json()["applied"] is False
    assert "SP-0001" in again.json()["message"] and not any("\u4e00" <= ch <= "\u9fff" for ch in again.json()["message"])
    assert fees(client, all="true")["fee_paid_fen"] == 30_000  # not 60,000


def test_a_partial_payment_of_10000_leaves_20000(api):
    client, _, _ = api
    r = pay(client, 10_000)
    assert r.status_code == 201, r.json()
    body = fees(client, all="true")
    assert (body["fee_paid_fen"], body["owed_fen"]) == (10_000, 20_000)
    assert body["employers"][0]["owed_fen"] == 20_000
    assert fees(client)["count"] == 6  # two employees' shares paid in full leave the list of fees owed
    statuses = sorted(f["fee_status_label"] for f in fees(client, all="true")["fees"])
    assert statuses.count("已缴清") == 2 and statuses.count("部分缴纳") == 1 and statuses.count("未缴") == 5
    arrears = client.get("/arrears", params={"region": case.HANBIN, "as_of": AFTER}, headers=CLERK).json()
    assert arrears["late_fee_fen"] == 20_000 and arrears["employers"][0]["total_fen"] == 20_000
    assert pay(client, 10_000).json()["applied"] is False  # the same voucher: counted once
    assert fees(client)["owed_fen"] == 20_000
    assert pay(client, 20_000, voucher="SP-0002").status_code == 201
    assert fees(client)["count"] == 0


def test_the_tax_feed_late_fee_levy_item_collects_it_once(api):
    _, system, numbers = api
    client = api[0]
    for i, n in enumerate(numbers):
        record = TaxPaymentRecord(
            voucher_no=f"ZN{i:03d}", tax_office="16109020000", id_type="RESIDENT_ID", id_number=n, name="职工",
            region_code=case.HANBIN, levy_item="LATE_FEE", period_start=date(2026, 1, 1),
            period_end=date(2026, 1, 31), amount_fen=case.FEE_EACH_FEN,
            paid_at=datetime(2026, 3, 25, 2, tzinfo=timezone.utc), channel="BANK")
        assert system.ledger.record_tax_record(record, provenance=FEED).applied
        assert not system.ledger.record_tax_record(record, provenance=FEED).applied  # a replay of the voucher
    body = fees(client, all="true")
    assert (body["fee_paid_fen"], body["owed_fen"]) == (30_000, 0)
    history = fold_many(None, system.ledger.events.get(system.ledger.person_id("RESIDENT_ID", numbers[0])))
    assert [p.amount_fen for p in history.late_fee_payments.values()] == [3_750]


def test_a_waiver_clears_it_with_reason_and_approver_shown(api):
    client, _, _ = api
    body = {"employer_id": case.EMPLOYER, "period": case.MONTH, "reason": "系统故障致逾期，经局务会批准减免",
            "approver": "li.approver", "effective_date": "2026-03-25"}
    r = client.post("/late-fees/waivers", json=body, headers=auth("tok-clerk", "waive-1"))
    assert r.status_code == 202, r.json()  # maker-checker: pending until the named approver approves
    assert r.json()["change"]["change_id"] == "waive-1" and fees(client)["count"] == 8  # nothing waived yet
    other = client.post("/changes/waive-1/approve", headers=auth("tok-zhao"))
    assert (other.status_code, other.json()["code"]) == (422, "APPROVER_NOT_NAMED")
    approved = client.post("/changes/waive-1/approve", headers=auth("tok-li"))
    assert approved.status_code == 201 and len(approved.json()["event_ids"]) == 8, approved.json()
    assert fees(client)["count"] == 0
    waived = fees(client, all="true")
    assert (waived["waived_fen"], waived["owed_fen"]) == (30_000, 0)
    row = waived["fees"][0]
    assert (row["fee_status_label"], row["waiver_reason"], row["waiver_approver"], row["waiver_recorded_by"]) == (
        "已减免", "系统故障致逾期，经局务会批准减免", "li.approver", "clerk.hanbin")
    again = client.post("/late-fees/waivers", json=body, headers=auth("tok-clerk", "waive-1"))
    assert again.status_code == 200 and again.json()["applied"] is False
    csv_text = client.get("/fees.csv", params={"region": case.HANBIN, "as_of": AFTER, "all": "true"},
                          headers=CLERK).content.decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(csv_text)))
    assert lines[0][:3] == ["序号", "单位编号", "参保地"] and "减免理由" in lines[0] and len(lines) == 9
    assert "li.approver" in lines[1] and "已减免" in lines[1] and "37.50" in lines[1]


def test_exports_of_fees_and_arrears_with_employer_totals(api):
    client, _, numbers = api
    r = client.get("/fees.xlsx", params={"region": case.HANBIN, "as_of": AFTER}, headers=CLERK)
    assert r.status_code == 200 and r.headers["x-row-count"] == "8"
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(r.content))
    sheet = book["滞纳金清单"]
    assert sheet.cell(1, 18).value == "计算过程" and sheet.cell(2, 13).value == 37.5
    assert not any(n in r.content.decode("latin-1") for n in numbers)
    r = client.get("/arrears.xlsx", params={"region": case.HANBIN, "as_of": AFTER, "sort": "employer_id"},
                   headers=CLERK)
    assert r.status_code == 200
    book = load_workbook(io.BytesIO(r.content))
    employers = list(book["单位欠费合计"].iter_rows(values_only=True))
    assert len(employers) == 2 and employers[1][1] == case.EMPLOYER and employers[1][7] == 300.0
    assert len(list(book["欠费明细"].iter_rows(values_only=True))) == 9
    r = client.get("/arrears.csv", params={"region": case.HANBIN, "as_of": AFTER, "by": "employer"}, headers=CLERK)
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert lines[0][1] == "单位编号" and lines[1][1] == case.EMPLOYER and lines[1][7] == "300.00"
    r = client.get("/arrears.csv", params={"region": case.HANBIN, "as_of": AFTER}, headers=CLERK)
    text = r.content.decode("utf-8-sig")
    assert r.status_code == 200 and "滞纳金计算" in text and "× 60 天 × 0.05%/天" in text
    assert not any(n in text for n in numbers)  # masked in a file, even for the region's clerk


def test_grid_worker_and_auditor_read_fees_but_cannot_collect(api):
    client, _, numbers = api
    r = client.get("/fees", params={"grid": case.GRID, "as_of": AFTER}, headers=GRID_WORKER_A)
    assert r.status_code == 200 and r.json()["owed_fen"] == 30_000
    assert not any(n in r.text for n in numbers)
    assert client.get("/fees", params={"as_of": AFTER}, headers=AUDITOR).json()["owed_fen"] == 30_000
    assert pay(client, 30_000, headers=AUDITOR).status_code == 403
    assert pay(client, 30_000, headers=CLERK_HANYIN).status_code == 403
    assert fees(client)["owed_fen"] == 30_000


def test_the_page_has_the_fee_list_and_the_arrears_exports_and_its_requests_answer(api):
    client, _, numbers = api
    html = client.get("/web/").text
    assert 'id="fees-section"' in html and "滞纳金清单" in html and "计算过程</th>" in html
    assert 'id="arrears-xlsx"' in html and "导出欠费名单 Excel（含单位合计）" in html
    for path in ('"/fees"', '"/arrears.csv"', '"/arrears.xlsx"', '"/fees.csv"', '"/fees.xlsx"'):
        assert path in html  # the page's script is inline
    assert client.post("/late-fees/payments", json={
        "employer_id": case.EMPLOYER, "period": case.MONTH, "amount_fen": 10_000, "voucher_no": "SP-W",
        "tax_office": "16109020000", "paid_on": "2026-03-20"}, headers=CLERK).status_code == 201
    # what the page asks for its grid, with the grid worker's token
    body = client.get("/fees", params={"grid": case.GRID, "as_of": AFTER, "all": "true"}, headers=GRID_WORKER_A).json()
    assert (body["count"], body["fee_paid_fen"], body["owed_fen"]) == (8, 10_000, 20_000)
    assert {f["fee_status_label"] for f in body["fees"]} == {"已缴清", "部分缴纳", "未缴"}
    arrears = client.get("/arrears", params={"grid": case.GRID, "as_of": AFTER}, headers=GRID_WORKER_A).json()
    assert arrears["employers"][0]["total_fen"] == 20_000
    r = client.get("/arrears.xlsx", params={"grid": case.GRID, "as_of": AFTER}, headers=GRID_WORKER_A)
    assert r.status_code == 200 and "filename*=UTF-8''" in r.headers["content-disposition"]
    assert not any(n in r.content.decode("latin-1") for n in numbers)
