"""Hostile and clumsy calls of the late-fee routes (issue #22): amounts that are negative, zero, huge, not
whole fen, or more than owed; waivers without reason or approver, or approved by the clerk who enters
them; clerks of another region, grid workers, auditors and the tax integration trying to write; fee
lists out of scope; a voucher replayed with other content. Nothing is written by a refusal, nothing
answers 5xx, no ID number leaves its scope.

The case of tests/unit/late_fee_support.py, paid on 2026-03-16 (30,000 fen of fee owed).
"""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.policy import PolicyBook
from tests.unit import late_fee_support as case
from tests.unit.http_support import AUDITOR, CLERK, CLERK_HANYIN, GRID_WORKER_A, GRID_WORKER_B, TAX, TOKENS, auth


@pytest.fixture()
def owed(tmp_path):
    system = bootstrap(Settings(persistence="memory", id_key=b"fee-facts-hostile"),
                       policies=PolicyBook.load(case.policy_dir(tmp_path)))
    numbers = case.employer_owes_january(system.ledger)
    case.employer_pays_january(system.ledger, numbers)
    yield TestClient(create_app(system, TokenStore.from_tokens(TOKENS))), system, numbers
    system.close()


def events(system) -> int:
    return system.ledger.recorder.max_notification_id() or 0


def owed_fen(client) -> int:
    return client.get("/fees", params={"region": case.HANBIN, "as_of": "2026-04-01"}, headers=CLERK).json()["owed_fen"]


def fee_facts(system, numbers) -> int:
    """How many late-fee events the employees' histories hold."""
    return sum(1 for n in numbers for e in system.ledger.events.get(system.ledger.person_id("RESIDENT_ID", n))
               if type(e).__name__ in ("LateFeePaid", "LateFeeWaived"))


PAYMENT = {"employer_id": case.EMPLOYER, "period": case.MONTH, "amount_fen": 30_000, "voucher_no": "H-1",
           "tax_office": "16109020000", "paid_on": "2026-03-20"}


@pytest.mark.parametrize("amount, code", [
    (-30_000, "AMOUNT_NOT_POSITIVE"), (0, "AMOUNT_NOT_POSITIVE"), (300.5, "AMOUNT_NOT_INTEGER_FEN"),
    ("30000", "AMOUNT_NOT_INTEGER_FEN"), (2**63, "AMOUNT_TOO_LARGE"), (10**30, "AMOUNT_TOO_LARGE"),
    (30_001, "LATE_FEE_OVERPAID"), (1_000_000, "LATE_FEE_OVERPAID"),
], ids=["negative", "zero", "fraction", "text", "2^63", "10^30", "one-fen-over", "far-over"])
def test_bad_amounts_are_refused_and_write_nothing(hostile, owed, amount, code):
    client, system, _ = owed
    before = events(system)
    r = client.post("/late-fees/payments", json={**PAYMENT, "amount_fen": amount}, headers=CLERK)
    written = events(system) != before
    hostile.attempt(f"late-fee payment of {amount!r}", status=r.status_code, written=written)
    assert r.status_code == 422 and r.json()["code"] == code and not written
    assert owed_fen(client) == 30_000


@pytest.mark.parametrize("over, code", [
    ({"reason": ""}, "WAIVER_REASON_REQUIRED"), ({"reason": "   "}, "WAIVER_REASON_REQUIRED"),
    ({"approver": ""}, "WAIVER_APPROVER_REQUIRED"), ({"approver": "clerk.hanbin"}, "WAIVER_SELF_APPROVED"),
    ({"reason": "x" * 501}, "BODY_INVALID"), ({"period": "2026-13"}, "BODY_INVALID"),
    ({"employer_id": None}, "LATE_FEE_TARGET_REQUIRED"), ({"period": "2026-02"}, "LATE_FEE_NOT_OWED"),
], ids=["no-reason", "blank-reason", "no-approver", "self-approved", "reason-too-long", "bad-month",
        "no-target", "month-without-fee"])
def test_bad_waivers_are_refused_and_write_nothing(hostile, owed, over, code):
    client, system, _ = owed
    before = events(system)
    body = {"employer_id": case.EMPLOYER, "period": case.MONTH, "reason": "系统故障", "approver": "li", **over}
    r = client.post("/late-fees/waivers", json=body, headers=CLERK)
    written = events(system) != before
    hostile.attempt(f"late-fee waiver {'/'.join(over)}", status=r.status_code, written=written)
    assert r.status_code in (403, 422) and r.json()["code"] == code and not written, r.json()
    assert owed_fen(client) == 30_000


@pytest.mark.parametrize("who, role", [(CLERK_HANYIN, "other-region clerk"), (GRID_WORKER_A, "grid worker"),
                                       (AUDITOR, "auditor"), (TAX, "tax integration")])
def test_only_a_clerk_of_the_region_writes(hostile, owed, who, role):
    client, system, numbers = owed
    before = events(system)
    for path, body in (("/late-fees/payments", PAYMENT),
                       ("/late-fees/waivers", {"employer_id": case.EMPLOYER, "period": case.MONTH,
                                               "reason": "r", "approver": "someone.else"})):
        r = client.post(path, json=body, headers=who)
        written = events(system) != before
        hostile.attempt(f"{path} by {role}", status=r.status_code, written=written,
                        leaked=any(n in r.text for n in numbers))
        assert r.status_code == 403 and not written
    assert owed_fen(client) == 30_000


@pytest.mark.parametrize("who, params", [(GRID_WORKER_B, {"grid": case.GRID}), (CLERK_HANYIN, {"region": case.HANBIN}),
                                         (GRID_WORKER_B, {})], ids=["other-grid", "other-region", "nothing-named"])
@pytest.mark.parametrize("path", ["/fees", "/fees.csv", "/fees.xlsx", "/arrears.csv", "/arrears.xlsx"])
def test_fee_lists_and_files_out_of_scope(hostile, owed, who, params, path):
    client, _, numbers = owed
    r = client.get(path, params={**params, "as_of": "2026-04-01"}, headers=who)
    leaked = r.status_code == 200 or any(n in r.text for n in numbers) or case.EMPLOYER in r.text
    hostile.attempt(f"{path} out of scope ({'/'.join(params) or 'nothing'})", status=r.status_code, leaked=leaked)
    assert r.status_code == 403 and not leaked


def test_a_voucher_replayed_with_other_content_is_a_conflict_counted_once(hostile, owed):
    client, system, numbers = owed
    assert client.post("/late-fees/payments", json={**PAYMENT, "amount_fen": 10_000}, headers=CLERK).status_code == 201
    before = fee_facts(system, numbers)
    r = client.post("/late-fees/payments", json={**PAYMENT, "amount_fen": 10_000, "paid_on": "2026-03-21"},
                    headers=CLERK)
    # (the conflict itself is kept as a dead letter for reconciliation; no fee fact is written)
    hostile.attempt("late-fee voucher replayed with another date", status=r.status_code,
                    written=fee_facts(system, numbers) != before)
    assert r.status_code == 409 and fee_facts(system, numbers) == before == 3
    assert owed_fen(client) == 20_000


def test_a_waiver_request_id_reused_for_another_month_or_reason(hostile, owed):
    client, system, numbers = owed
    body = {"employer_id": case.EMPLOYER, "period": case.MONTH, "reason": "系统故障", "approver": "li",
            "effective_date": "2026-03-25"}
    assert client.post("/late-fees/waivers", json=body, headers=auth("tok-clerk", "w-9")).status_code == 202
    # (the waiver is a pending change until "li" approves it)
    from ledger.inbound_records import Provenance
    from ledger.maker_checker import MakerChecker
    MakerChecker(system.ledger).approve("w-9", approver="li", provenance=Provenance("api", user="li", request_id="a"))
    before = fee_facts(system, numbers)
    r = client.post("/late-fees/waivers", json={**body, "reason": "另一个理由"}, headers=auth("tok-clerk", "w-9"))
    hostile.attempt("waiver request id reused with another reason", status=r.status_code,
                    written=fee_facts(system, numbers) != before)
    assert r.status_code in (409, 422)
    assert owed_fen(client) == 0


@pytest.mark.parametrize("over, code", [
    ({"period_start": "2026-02-01", "period_end": "2026-02-28"}, "LATE_FEE_PERIOD_UNKNOWN"),
    ({"period_end": "2026-02-28"}, "PERIOD_INVALID"),
    ({"kind": "REFUND", "original_voucher_no": "ZN-1"}, "LATE_FEE_CORRECTION_UNSUPPORTED"),
    ({"id_number": case.number(999)}, "PERSON_NOT_FOUND"),
    ({"region_code": "610921"}, "LATE_FEE_REGION_MISMATCH"),
], ids=["month-not-assessed", "two-months", "refund-of-a-fee", "unknown-person", "other-region"])
def test_tax_feed_late_fee_records_that_cannot_be_applied_write_nothing(hostile, owed, over, code):
    client, system, numbers = owed
    record = {"voucher_no": "ZN-H", "tax_office": "16109020000", "id_number": numbers[0], "name": "职工",
              "region_code": case.HANBIN, "levy_item": "LATE_FEE", "period_start": "2026-01-01",
              "period_end": "2026-01-31", "amount_fen": 3_750, "paid_at": "2026-03-25T10:00:00+08:00", **over}
    before = fee_facts(system, numbers)
    r = client.post("/tax/payments", json=record, headers=TAX)
    written = fee_facts(system, numbers) != before
    hostile.attempt(f"tax LATE_FEE record: {'/'.join(over)}", status=r.status_code, written=written)
    assert r.status_code in (403, 404, 409, 422) and r.json()["code"] == code and not written, r.json()
    assert owed_fen(client) == 30_000
