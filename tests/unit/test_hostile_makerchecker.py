"""Hostile and clumsy attempts on maker-checker (双人复核) over HTTP: a forged approver, an approver of
another region, a clerk approving their own change, a replayed approval, an expired change, a reused
change id, decisions on unknown changes. None writes anything it should not; none answers 5xx.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from ledger import maker_checker
from tests.unit.http_support import (CLERK, CLERK_HANYIN, GRID_WORKER_A, HANBIN, HANYIN, TOKENS, auth, enroll,
                                     event_count, number, person_path, system)  # noqa: F401 (fixture)

HOSTILE_TOKENS = {
    **TOKENS,
    "tok-approver": ("approver.hanbin", "approver", [HANBIN]),
    "tok-approver-hanyin": ("approver.hanyin", "approver", [HANYIN]),
    "tok-maker-approver": ("clerk.hanbin", "approver", [HANBIN]),  # the proposing clerk's own approver token
}
APPROVER = auth("tok-approver")


@pytest.fixture()
def client(system):  # noqa: F811
    return TestClient(create_app(system, TokenStore.from_tokens(HOSTILE_TOKENS)))


@pytest.fixture()
def pending(client):
    """Two records of one person in Hanbin, a merge of them proposed by clerk.hanbin (change M-1)."""
    a, b = number(31), number(32)
    enroll(client, a)
    enroll(client, b)
    r = client.post(person_path(a, "/merges"), json={"merged_id_number": b, "merge_kind": "DUPLICATE",
                                                      "reason": "重复登记"}, headers=auth("tok-clerk", "M-1"))
    assert r.status_code == 202, r.json()
    return a, b


def test_a_forged_approver_in_the_body_or_a_clerk_token_approves_nothing(client, system, pending, hostile):
    before = event_count(system)
    r = client.post("/changes/M-1/approve", json={"approver": "approver.hanbin"}, headers=CLERK)
    hostile.attempt("approve with a clerk token and an approver named in the body", status=r.status_code,
                    written=event_count(system) != before)
    assert r.status_code in (403, 422)  # the body names no approver: only the token does
    r = client.post("/changes/M-1/approve", json={"note": "同意"}, headers=CLERK)
    hostile.attempt("approve with a clerk token", status=r.status_code, written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (403, "ROLE_FORBIDDEN")
    r = client.post("/changes/M-1/approve", headers=GRID_WORKER_A)
    hostile.attempt("approve as a grid worker", status=r.status_code, written=event_count(system) != before)
    assert r.status_code == 403
    r = client.post("/changes/M-1/approve", headers={"Authorization": "Bearer forged"})
    hostile.attempt("approve with a forged token", status=r.status_code, written=event_count(system) != before)
    assert r.status_code == 401


def test_the_maker_holding_an_approver_token_cannot_approve_or_reject(client, system, pending, hostile):
    before = event_count(system)
    for action, body in (("approve", None), ("reject", {"reason": "撤回"})):
        r = client.post(f"/changes/M-1/{action}", json=body, headers=auth("tok-maker-approver"))
        hostile.attempt(f"self-{action} with the maker's approver token", status=r.status_code,
                        written=event_count(system) != before)
        assert (r.status_code, r.json()["code"]) == (422, "APPROVAL_BY_MAKER")
    assert client.get("/changes", headers=APPROVER).json()["count"] == 1


def test_an_approver_of_another_region_cannot_decide_nor_see(client, system, pending, hostile):
    before = event_count(system)
    r = client.post("/changes/M-1/approve", headers=auth("tok-approver-hanyin"))
    hostile.attempt("approve another region's change", status=r.status_code, written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (403, "SCOPE_FORBIDDEN")
    r = client.get("/changes/M-1", headers=auth("tok-approver-hanyin"))
    hostile.attempt("read another region's change", status=r.status_code, leaked=r.status_code == 200)
    assert r.status_code == 403
    listed = client.get("/changes", headers=auth("tok-approver-hanyin")).json()
    hostile.attempt("list another region's changes", status=200, leaked=listed["count"] != 0)
    r = client.get("/changes", params={"region": HANBIN}, headers=CLERK_HANYIN)
    hostile.attempt("list naming another region", status=r.status_code, leaked=r.status_code == 200)
    assert r.status_code == 403


def test_a_clerk_cannot_merge_another_regions_person_into_theirs(client, system, hostile):
    mine, theirs = number(41), number(42, region=HANYIN)
    enroll(client, mine)
    enroll(client, theirs, headers=CLERK_HANYIN, region_code=HANYIN, grid_code="610921100001")
    before = event_count(system)
    r = client.post(person_path(mine, "/merges"), json={"merged_id_number": theirs, "merge_kind": "DUPLICATE",
                                                         "reason": "x"}, headers=CLERK)
    hostile.attempt("merge another region's person", status=r.status_code, written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (403, "SCOPE_FORBIDDEN")


def test_a_replayed_approval_changes_nothing(client, system, pending, hostile):
    first = client.post("/changes/M-1/approve", headers=APPROVER)
    assert first.status_code == 201 and len(first.json()["event_ids"]) == 2
    after = event_count(system)
    for _ in range(3):
        r = client.post("/changes/M-1/approve", headers=APPROVER)
        hostile.attempt("replayed approval", status=r.status_code, written=event_count(system) != after)
        assert r.status_code == 200 and r.json()["applied"] is False
    r = client.post("/changes/M-1/reject", json={"reason": "晚了"}, headers=APPROVER)
    hostile.attempt("reject after approval", status=r.status_code, written=event_count(system) != after)
    assert (r.status_code, r.json()["code"]) == (409, "CHANGE_ALREADY_DECIDED")


def test_an_expired_change_cannot_be_approved(client, system, pending, hostile, monkeypatch):
    later = datetime.now(timezone.utc) + timedelta(hours=73)  # [approval] pending_expiry_hours = 72
    monkeypatch.setattr(maker_checker, "_utc_now", lambda: later)
    a, b = pending
    r = client.post("/changes/M-1/approve", headers=APPROVER)
    hostile.attempt("approve an expired change", status=r.status_code,
                    written=system.ledger.find_person("RESIDENT_ID", b).merged_into is not None)
    assert (r.status_code, r.json()["code"]) == (409, "CHANGE_EXPIRED")
    assert client.get("/changes/M-1", headers=APPROVER).json()["status"] == "EXPIRED"
    assert client.get("/changes", headers=APPROVER).json()["count"] == 0
    r = client.post("/changes/M-1/approve", headers=APPROVER)
    assert (r.status_code, r.json()["code"]) == (409, "CHANGE_ALREADY_DECIDED")  # recorded as expired


def test_a_reused_change_id_and_unknown_changes_are_refused(client, system, pending, hostile):
    a, b = pending
    before = event_count(system)
    c = number(33)
    enroll(client, c)
    before = event_count(system)
    r = client.post(person_path(a, "/merges"), json={"merged_id_number": c, "merge_kind": "DUPLICATE",
                                                      "reason": "重复登记"}, headers=auth("tok-clerk", "M-1"))
    hostile.attempt("change id reused for another change", status=r.status_code, written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (409, "CHANGE_CONFLICT")
    same = client.post(person_path(a, "/merges"), json={"merged_id_number": b, "merge_kind": "DUPLICATE",
                                                         "reason": "重复登记"}, headers=auth("tok-clerk", "M-1"))
    assert same.status_code == 200 and same.json()["applied"] is False  # a resend
    for path in ("/changes/nope/approve", "/changes/%2e%2e%2fM-1/approve", "/changes/" + "x" * 300 + "/approve"):
        r = client.post(path, headers=APPROVER)
        hostile.attempt(f"approve unknown change {path[:30]}", status=r.status_code,
                        written=event_count(system) != before)
        assert r.status_code in (404, 422)
    r = client.post(person_path(a, "/merges"), json={"merged_id_number": a, "merge_kind": "DUPLICATE",
                                                      "reason": "自己"}, headers=CLERK)
    hostile.attempt("merge a person into itself", status=r.status_code, written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (422, "MERGE_SAME_PERSON")
    r = client.post(person_path(a, "/merges"), json={"merged_id_number": b, "merge_kind": "DELETE",
                                                      "reason": "x", "approved_by": "li"}, headers=CLERK)
    hostile.attempt("merge with an unknown kind and a forged approved_by", status=r.status_code,
                    written=event_count(system) != before)
    assert r.status_code == 422


def test_corrections_above_the_threshold_wait_and_below_it_apply_at_once(client, system, hostile):
    n = number(61)
    enroll(client, n)
    pay = {"voucher_no": "V61", "tax_office": "16109020000", "id_type": "RESIDENT_ID", "id_number": n, "name": "王芳",
           "region_code": HANBIN, "levy_item": "RESIDENT", "period_start": "2025-01-01", "period_end": "2025-12-31",
           "amount_fen": 150000, "paid_at": "2024-10-08T09:30:00+08:00", "credited_on": "2024-10-09"}
    assert client.post("/tax/payments", json=pay, headers=auth("tok-tax")).status_code == 201
    small = {"kind": "REFUND", "voucher_no": "R61-1", "tax_office": "16109020000", "original_voucher_no": "V61",
             "amount_fen": 100000, "reason": "多缴退费"}  # exactly the threshold (1,000 yuan): at once
    r = client.post(person_path(n, "/payment-corrections"), json=small, headers=CLERK)
    assert r.status_code == 201 and r.json()["change"] is None and len(r.json()["event_ids"]) >= 1
    big = {**small, "voucher_no": "R61-2", "amount_fen": 100001}  # one fen above: more than remains? no: 50,000 left
    r = client.post(person_path(n, "/payment-corrections"), json=big, headers=CLERK)
    hostile.attempt("refund above what remains, proposed for approval", status=r.status_code,
                    written=r.status_code != 422)
    assert r.status_code == 422  # checked at once on a copy: more than remains is refused, nothing pending
    assert client.get("/changes", headers=APPROVER).json()["count"] == 0

    debit_ok = {"amount_fen": 5000, "reason": "MEDICAL_EXPENSE", "reference": "JS-1", "effective_date": "2025-03-01"}
    client.post(person_path(n, "/account/credits"), json={**debit_ok, "amount_fen": 300000, "reason": "CORRECTION"},
                headers=CLERK)
    before = event_count(system)
    r = client.post(person_path(n, "/account/debits"), json={**debit_ok, "amount_fen": 200000},
                    headers=auth("tok-clerk", "D-61"))
    assert r.status_code == 202 and r.json()["change"]["kind"] == "ACCOUNT_DEBIT"
    hostile.attempt("large account debit applied without approval", status=r.status_code,
                    written=event_count(system) != before + 1)  # only the pending change itself was written
    balance = system.ledger.find_person("RESIDENT_ID", n).account_balance_fen
    approved = client.post("/changes/D-61/approve", headers=APPROVER)
    assert approved.status_code == 201
    assert system.ledger.find_person("RESIDENT_ID", n).account_balance_fen == balance - 200000
    r = client.post(person_path(n, "/account/debits"), json=debit_ok, headers=CLERK)
    assert r.status_code == 201 and r.json()["change"] is None  # small: at once


def test_a_large_refund_is_applied_only_once_approved_and_names_both_clerks(client, system, hostile):
    n = number(62)
    enroll(client, n)
    pay = {"voucher_no": "V62", "tax_office": "16109020000", "id_type": "RESIDENT_ID", "id_number": n, "name": "王芳",
           "region_code": HANBIN, "levy_item": "RESIDENT", "period_start": "2025-01-01", "period_end": "2025-12-31",
           "amount_fen": 300000, "paid_at": "2024-10-08T09:30:00+08:00", "credited_on": "2024-10-09"}
    assert client.post("/tax/payments", json=pay, headers=auth("tok-tax")).status_code == 201
    refund = {"kind": "REFUND", "voucher_no": "R62", "tax_office": "16109020000", "original_voucher_no": "V62",
              "amount_fen": 150000, "reason": "重复缴费退费"}
    r = client.post(person_path(n, "/payment-corrections"), json=refund, headers=auth("tok-clerk", "R-62"))
    assert r.status_code == 202 and r.json()["event_ids"] == []
    listed = client.get("/changes", headers=APPROVER)
    hostile.attempt("an approver lists a pending refund", status=listed.status_code,
                    leaked=n in listed.text or "王芳" in listed.text)  # approvers see no full ID number nor name
    payment = system.ledger.find_person("RESIDENT_ID", n).payments["16109020000|V62"]
    assert payment.refunds == []  # pending: no figure moved
    assert client.post("/changes/R-62/approve", headers=APPROVER).status_code == 201
    payment = system.ledger.find_person("RESIDENT_ID", n).payments["16109020000|V62"]
    assert [x.amount_fen for x in payment.refunds] == [150000]
    last = list(system.ledger.events.get(system.ledger.person_id("RESIDENT_ID", n)))[-1]
    assert (type(last).__name__, last.provenance["proposed_by"], last.provenance["approved_by"]) == (
        "ContributionRefunded", "clerk.hanbin", "approver.hanbin")
    before = event_count(system)
    r = client.post("/changes/R-62/approve", headers=APPROVER)
    hostile.attempt("replayed approval of a refund", status=r.status_code, written=event_count(system) != before)
    assert r.status_code == 200


def test_an_approver_reads_the_records_of_their_region_only_and_writes_nothing(client, system, pending, hostile):
    a, b = pending
    r = client.get(person_path(b), headers=APPROVER)
    assert r.status_code == 200 and r.json()["id_number"] == b  # to check the records before approving
    other = number(71, region=HANYIN)
    enroll(client, other, headers=CLERK_HANYIN, region_code=HANYIN, grid_code="610921100001")
    r = client.get(person_path(other), headers=APPROVER)
    hostile.attempt("approver reads another region's person", status=r.status_code, leaked=other in r.text)
    assert r.status_code == 403
    before = event_count(system)
    r = client.post(person_path(a, "/enrollments/end"), json={"reason": "MOVED_OUT", "effective_date": "2025-03-01"},
                    headers=APPROVER)
    hostile.attempt("approver issues a clerk command", status=r.status_code, written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (403, "ROLE_FORBIDDEN")
