"""Hostile and clumsy reads of the late fee still owed (issue #19): the fee-only rows of an employer
month paid late leak to no one outside the grid or region, a far-off or malformed day neither crashes
nor grows a fee that stopped at the payment, and an overpayment never shows a negative amount.

The case of tests/unit/late_fee_support.py, paid on 2026-03-16 (30,000 fen of fee owed).
"""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from entrypoints.wiring import bootstrap
from infra.settings import Settings
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from ledger.policy import PolicyBook
from tests.unit import late_fee_support as case
from tests.unit.http_support import CLERK, CLERK_HANYIN, GRID_WORKER_B, TOKENS, TOWNSHIP_WORKER


@pytest.fixture()
def paid_late(tmp_path):
    system = bootstrap(Settings(persistence="memory", id_key=b"late-fee-hostile"),
                       policies=PolicyBook.load(case.policy_dir(tmp_path)))
    numbers = case.employer_owes_january(system.ledger)
    case.employer_pays_january(system.ledger, numbers)
    yield TestClient(create_app(system, TokenStore.from_tokens(TOKENS))), system, numbers
    system.close()


def leaks(text: str, numbers: list[str]) -> bool:
    return case.EMPLOYER in text or any(n in text or n[-4:] + '"' in text for n in numbers)


@pytest.mark.parametrize("who, params, status", [
    (GRID_WORKER_B, {"grid": case.GRID}, 403),           # another grid's worker names the grid
    (GRID_WORKER_B, {"region": case.HANBIN}, 403),       # ... or the whole region
    (CLERK_HANYIN, {"region": case.HANBIN}, 403),        # a clerk of another region
    (GRID_WORKER_B, {}, 403),                            # names nothing, hoping for everything
], ids=["other-grid", "region-by-grid-worker", "other-region-clerk", "nothing-named"])
def test_fee_rows_leak_to_no_one_outside_the_scope(hostile, paid_late, who, params, status):
    client, _, numbers = paid_late
    r = client.get("/arrears", params={**params, "as_of": "2026-04-01"}, headers=who)
    hostile.attempt(f"late-fee rows read out of scope ({'/'.join(params) or 'nothing'})", status=r.status_code,
                    leaked=r.status_code == 200 and leaks(r.text, numbers))
    assert r.status_code == status and "arrears" not in r.json()


def test_the_township_worker_sees_them_masked(hostile, paid_late):
    client, _, numbers = paid_late
    r = client.get("/arrears", params={"grid": case.GRID[:9], "as_of": "2026-04-01"}, headers=TOWNSHIP_WORKER)
    hostile.attempt("late-fee rows read by the township's worker", status=r.status_code,
                    leaked=any(n in r.text for n in numbers))
    assert r.status_code == 200 and r.json()["late_fee_fen"] == case.FEE_FEN


@pytest.mark.parametrize("as_of, status", [
    ("9999-12-31", 200), ("0001-01-01", 200), ("2026-02-30", 422), ("2026-04-01T00:00:00", 422),
    ("2026-04-01'; DROP TABLE view_arrears_dues; --", 422), ("", 422),
])
def test_a_far_off_or_malformed_day_neither_crashes_nor_grows_the_fee(hostile, paid_late, as_of, status):
    client, _, _ = paid_late
    r = client.get("/arrears", params={"region": case.HANBIN, "as_of": as_of}, headers=CLERK)
    hostile.attempt(f"arrears as of {as_of[:20]!r}", status=r.status_code)
    assert r.status_code == status, r.json()
    if status == 200 and as_of != "0001-01-01":
        assert r.json()["late_fee_fen"] == case.FEE_FEN  # frozen at the payment, whatever day is asked
    if as_of == "0001-01-01":
        assert r.json()["count"] == 0  # before the due date nothing is late
    # the view table is still there and still answers
    assert client.get("/arrears", params={"region": case.HANBIN, "as_of": "2026-04-01"},
                      headers=CLERK).json()["late_fee_fen"] == case.FEE_FEN


def test_an_overpayment_paid_late_never_shows_a_negative_amount(hostile, paid_late):
    """A clumsy tax feed sends the month a second time (a new voucher) after it was paid late."""
    client, system, numbers = paid_late
    from datetime import date

    from tests.unit.projection_support import API, tax

    outcome = system.ledger.record_tax_record(
        tax(numbers[0], "LF-DOUBLE", amount_fen=case.EACH_FEN, paid_on=date(2026, 3, 20), levy_item="EMPLOYEE",
            period=(date(2026, 1, 1), date(2026, 1, 31))), provenance=API)
    r = client.get("/arrears", params={"region": case.HANBIN, "as_of": "2026-04-01"}, headers=CLERK)
    hostile.attempt("month paid twice after paying late", status=r.status_code)
    assert r.status_code == 200
    rows = r.json()["arrears"]
    assert all(a["outstanding_fen"] == 0 and a["late_fee_fen"] == case.FEE_EACH_FEN for a in rows)
    assert len(rows) == case.EMPLOYEES and r.json()["late_fee_fen"] == case.FEE_FEN  # the overpayment pays no fee
    assert outcome.applied, outcome.message  # an overpayment is recorded (the refund is a clerk's business)
    assert sorted(a["paid_fen"] for a in rows)[-1] == 2 * case.EACH_FEN
