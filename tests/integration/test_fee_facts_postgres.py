"""Late fees as ledger facts (issue #22) on the real PostgreSQL: the ledger's events and the views both in
PostgreSQL, through the HTTP API. The case of tests/unit/late_fee_support.py (30,000 fen of fee owed
after the employer paid 1,000,000 fen 60 days late): a partial receipt of 10,000 fen leaves 20,000,
its replay counts once, the tax feed's LATE_FEE record of one employee collects that employee's
rest, a waiver (reason, approver) clears what remains, and the exports carry the employer's total."""
from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient

from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from entrypoints.wiring import bootstrap
from infra.settings import Settings, postgres_from_env
from ledger.policy import PolicyBook
from tests.unit import late_fee_support as case
from tests.unit.http_support import CLERK, TAX, TOKENS, auth

pytestmark = pytest.mark.integration
AFTER = "2026-04-01"


@pytest.fixture(scope="module")
def deployment(pg_env, tmp_path_factory):
    system = bootstrap(Settings(persistence="postgres", postgres=postgres_from_env(pg_env), id_key=b"fees-pg"),
                       policies=PolicyBook.load(case.policy_dir(tmp_path_factory.mktemp("fees"))))
    numbers = case.employer_owes_january(system.ledger)
    case.employer_pays_january(system.ledger, numbers)
    yield TestClient(create_app(system, TokenStore.from_tokens({**TOKENS, "tok-li": ("li.approver", "approver", [case.HANBIN])}))), system, numbers
    system.close()


def fees(client, **params):
    r = client.get("/fees", params={"region": case.HANBIN, "as_of": AFTER, "all": "true", **params}, headers=CLERK)
    assert r.status_code == 200, r.json()
    return r.json()


def test_fee_payment_tax_feed_and_waiver_on_postgres(deployment):
    client, system, numbers = deployment
    assert system.settings.persistence == "postgres"
    assert (fees(client)["accrued_fen"], fees(client)["owed_fen"]) == (30_000, 30_000)
    receipt = {"employer_id": case.EMPLOYER, "period": case.MONTH, "amount_fen": 10_000, "voucher_no": "PG-SP-1",
               "tax_office": "16109020000", "paid_on": "2026-03-20"}
    assert client.post("/late-fees/payments", json=receipt, headers=CLERK).status_code == 201
    assert client.post("/late-fees/payments", json=receipt, headers=CLERK).json()["applied"] is False
    body = fees(client)
    assert (body["fee_paid_fen"], body["owed_fen"]) == (10_000, 20_000)

    unpaid = [f for f in body["fees"] if f["fee_paid_fen"] == 0][0]
    record = {"voucher_no": "PG-ZN-1", "tax_office": "16109020000", "id_number": unpaid["id_number"], "name": "职工",
              "region_code": case.HANBIN, "levy_item": "LATE_FEE", "period_start": "2026-01-01",
              "period_end": "2026-01-31", "amount_fen": 3_750, "paid_at": "2026-03-25T10:00:00+08:00"}
    assert client.post("/tax/payments", json=record, headers=TAX).status_code == 201
    assert client.post("/tax/payments", json=record, headers=TAX).status_code == 200  # the same voucher again
    assert fees(client)["owed_fen"] == 16_250

    waiver = {"employer_id": case.EMPLOYER, "period": case.MONTH, "reason": "经批准减免", "approver": "li.approver",
              "effective_date": "2026-03-26"}
    assert client.post("/late-fees/waivers", json=waiver, headers=auth("tok-clerk", "pg-w-1")).status_code == 202
    assert fees(client)["owed_fen"] == 16_250  # pending until the named approver approves (maker-checker)
    assert client.post("/changes/pg-w-1/approve", headers=auth("tok-li")).status_code == 201
    body = fees(client)
    assert (body["fee_paid_fen"], body["waived_fen"], body["owed_fen"]) == (13_750, 16_250, 0)
    assert {f["waiver_approver"] for f in body["fees"] if f["waived"]} == {"li.approver"}
    arrears = client.get("/arrears", params={"region": case.HANBIN, "as_of": AFTER}, headers=CLERK).json()
    assert arrears["count"] == 0

    r = client.get("/fees.xlsx", params={"region": case.HANBIN, "as_of": AFTER, "all": "true"}, headers=CLERK)
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(r.content))["滞纳金清单"]
    assert sheet.max_row == 9 and {sheet.cell(i, 20).value for i in range(2, 10)} >= {"li.approver"}
    assert not any(n in r.content.decode("latin-1") for n in numbers)
