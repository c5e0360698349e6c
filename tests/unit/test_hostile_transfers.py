"""The five findings of issue 18, replayed as the clerks of two regions would, through the HTTP API
and the clerk CLI: each ends in a refusal with a code, or in the right figures.

1. a transfer-in retyping other figures than its transfer-out sent is refused (TRANSFER_MISMATCH);
2. 60 contribution months transferred within the ledger stay 60, not 120;
3. an in half before its out half is refused (TRANSFER_OUT_MISSING), never doubled, and the out
   half can still be recorded and then received;
4. open halves are listed with a time limit in working days and an overdue state; the receiving
   clerk sees incoming transfers (and the person) before enrolling them; external in halves
   (no out half in this ledger) are flagged;
5. a transfer-out suspends (中止) the enrollment; a resident-to-resident transfer takes effect
   from the next coverage year.
"""
from __future__ import annotations

import json
from datetime import date

import pytest

from ledger.domain.history import Transfer
from ledger.domain.transfers import TransferCalendar, transfer_status
from ledger.policy.book import default_policy_book
from tests.unit.cli_support import embedded, refused, run, run_as
from tests.unit.http_support import (
    AUDITOR,
    CLERK,
    CLERK_HANYIN,
    GRID_WORKER_A,
    HANBIN,
    HANYIN,
    GRID_HANYIN,
    auth,
    client,  # noqa: F401  (fixture)
    enroll,
    event_count,
    number,
    person_path,
    system,  # noqa: F401  (fixture)
)

ISSUE_PERSON = "610902196607077075"  # the person of finding 1
EMPLOYER = "91610900MA0000001X"


def employee(client, id_number, balance_fen=0, **over):
    enroll(client, id_number, scheme="EMPLOYEE", employer_id=EMPLOYER, **over)
    if balance_fen:
        r = client.post(person_path(id_number, "/account/credits"), headers=CLERK, json={
            "amount_fen": balance_fen, "reason": "CONTRIBUTION", "reference": "划入", "effective_date": "2025-01-02"})
        assert r.status_code == 201, r.json()


def transfer_out(client, id_number, transfer_id, on="2025-03-03", to=HANYIN, headers=CLERK):
    return client.post(person_path(id_number, "/transfers/out"), headers=headers, json={
        "transfer_id": transfer_id, "counterpart_region": to, "effective_date": on})


def transfer_in(client, id_number, transfer_id, on="2025-03-07", source=HANBIN, region=HANYIN, headers=CLERK_HANYIN,
                scheme="EMPLOYEE", **figures):
    body = {"id_type": "RESIDENT_ID", "id_number": id_number, "name": "王芳", "transfer_id": transfer_id,
            "counterpart_region": source, "scheme": scheme, "region_code": region, "effective_date": on, **figures}
    if scheme == "EMPLOYEE":
        body.setdefault("employer_id", "91610921MA0000002Y")
    return client.post("/transfers/in", headers=headers, json=body)


def state(client, id_number, headers=AUDITOR):
    r = client.get(person_path(id_number), headers=headers)
    assert r.status_code == 200, r.json()
    return r.json()


# ------------------------------------------------------------------ finding 1: money created
def test_finding_1_an_in_half_cannot_accept_more_than_its_out_half_sent(client, system, hostile):
    employee(client, ISSUE_PERSON, balance_fen=50_000)  # 500.00 yuan, 0 months
    assert transfer_out(client, ISSUE_PERSON, "ZY-1").status_code == 201
    before = event_count(system)
    r = transfer_in(client, ISSUE_PERSON, "ZY-1", account_balance_fen=99_999, contribution_months=99)
    written = event_count(system) != before
    hostile.attempt("transfer-in retyping more than was sent", status=r.status_code, written=written)
    assert r.status_code == 422 and r.json()["code"] == "TRANSFER_MISMATCH"
    assert "99999" in r.json()["message"] and "50000" in r.json()["message"]
    assert not written

    r = transfer_in(client, ISSUE_PERSON, "ZY-1")  # from the inbox: no figures typed
    assert r.status_code == 201, r.json()
    person = state(client, ISSUE_PERSON)
    assert (person["account_balance_fen"], person["contribution_months"]) == (50_000, 0)
    again = transfer_in(client, ISSUE_PERSON, "ZY-1")
    hostile.attempt("the same transfer-in twice", status=again.status_code, written=False)
    assert again.status_code == 409 and again.json()["code"] == "TRANSFER_EXISTS"
    assert state(client, ISSUE_PERSON)["account_balance_fen"] == 50_000


# ------------------------------------------------------------------ finding 2: months counted twice
def test_finding_2_sixty_months_transferred_within_the_ledger_stay_sixty(client, hostile):
    n = number(21)
    # 60 months and 1,200 yuan arrive from another province (external: its document states them) ...
    r = transfer_in(client, n, "ZJ-2024-77", on="2024-12-02", source="330502", region=HANBIN, headers=CLERK,
                    account_balance_fen=120_000, contribution_months=60, source_document_no="浙医保转〔2024〕77号")
    assert r.status_code == 201, r.json()
    assert state(client, n)["contribution_months"] == 60
    # ... then move from 610902 to 610921 within the ledger.
    assert transfer_out(client, n, "ZY-2").status_code == 201
    sending = state(client, n)
    assert (sending["account_balance_fen"], sending["contribution_months"]) == (0, 0)  # moved, not copied
    r = transfer_in(client, n, "ZY-2", contribution_months=60)  # retyping the same figure is fine
    assert r.status_code == 201, r.json()
    person = state(client, n)
    hostile.attempt("months counted twice by a transfer within the ledger", status=r.status_code,
                    written=person["contribution_months"] != 60)
    assert (person["account_balance_fen"], person["contribution_months"]) == (120_000, 60)


# ------------------------------------------------------------------ finding 3: in before out
def test_finding_3_an_in_half_before_its_out_half_is_refused_then_completes(client, system, hostile):
    n = number(22)
    employee(client, n, balance_fen=30_000)
    before = event_count(system)
    r = transfer_in(client, n, "TR-K", account_balance_fen=30_000, contribution_months=0)
    written = event_count(system) != before
    hostile.attempt("transfer-in before its transfer-out", status=r.status_code, written=written)
    assert r.status_code == 422 and r.json()["code"] == "TRANSFER_OUT_MISSING"
    assert not written
    person = state(client, n)
    assert person["account_balance_fen"] == 30_000 and person["duplicate_enrollment"] is False

    assert transfer_out(client, n, "TR-K").status_code == 201  # the sending region can still close its half
    assert transfer_in(client, n, "TR-K").status_code == 201
    person = state(client, n)
    assert person["account_balance_fen"] == 30_000 and person["duplicate_enrollment"] is False
    in_force = [e for e in person["enrollments"] if e["end_date"] is None]
    assert [e["region_code"] for e in in_force] == [HANYIN]
    assert [e["end_reason"] for e in person["enrollments"] if e["region_code"] == HANBIN] == ["TRANSFERRED_OUT"]


# ------------------------------------------------------------------ finding 4: nobody chases an open half
def test_finding_4_open_halves_have_a_time_limit_and_are_listed_overdue_for_both_regions(client, hostile):
    n = number(23)
    employee(client, n, balance_fen=8_000)
    assert transfer_out(client, n, "ZY-4", on="2025-03-03").status_code == 201  # a Monday

    # The receiving clerk reads the person before enrolling them (was SCOPE_FORBIDDEN) ...
    assert client.get(person_path(n), headers=CLERK_HANYIN).status_code == 200
    # ... and sees the transfer in their inbox, with the ID number in full to complete it.
    r = client.get("/transfers", params={"region": HANYIN, "as_of": "2025-03-07"}, headers=CLERK_HANYIN)
    assert r.status_code == 200, r.json()
    (row,) = r.json()["transfers"]
    assert (row["direction"], row["transfer_id"], row["id_number"]) == ("INCOMING", "ZY-4", n)
    assert (row["account_balance_fen"], row["awaiting"], row["due_on"], row["overdue"]) == (8_000, "RECEIVING",
                                                                                           "2025-03-10", False)
    # 26 working days after the out half (4 April is 清明, a day off) it is overdue by 21, for both regions.
    late = {"as_of": "2025-04-09", "overdue": "true"}
    incoming = client.get("/transfers", params={"region": HANYIN, **late}, headers=CLERK_HANYIN).json()
    outgoing = client.get("/transfers", params={"region": HANBIN, **late}, headers=CLERK).json()
    assert [(r["direction"], r["overdue_working_days"]) for r in incoming["transfers"]] == [("INCOMING", 21)]
    assert [(r["direction"], r["overdue"]) for r in outgoing["transfers"]] == [("OUTGOING", True)]
    assert incoming["overdue"] == outgoing["overdue"] == 1
    assert "超期" in incoming["transfers"][0]["explanation"]

    # Nobody else: another region's list, a grid worker, a third region's clerk reading the person.
    other = client.get("/transfers", params={"region": HANBIN}, headers=CLERK_HANYIN)
    grid = client.get("/transfers", params={"region": HANYIN}, headers=GRID_WORKER_A)
    hostile.attempt("another region's transfer list", status=other.status_code, leaked=other.status_code == 200)
    hostile.attempt("transfer list as a grid worker", status=grid.status_code, leaked=grid.status_code == 200)
    assert other.status_code == 403 and other.json()["code"] == "SCOPE_FORBIDDEN"
    assert grid.status_code == 403 and grid.json()["code"] == "ROLE_FORBIDDEN"

    # Once received, it is done and no longer overdue; the receiving clerk's extra access ends with it.
    assert transfer_in(client, n, "ZY-4", on="2025-04-10").status_code == 201
    done = client.get("/transfers", params={"region": HANYIN, "as_of": "2025-04-10"}, headers=CLERK_HANYIN).json()
    assert [(r["status"], r["overdue"]) for r in done["transfers"]] == [("DONE", False)]


def test_finding_4_an_in_half_without_out_half_is_flagged_external(client):
    n = number(24)
    r = transfer_in(client, n, "GD-9", source="440305", account_balance_fen=500, contribution_months=3)
    assert r.status_code == 201, r.json()
    (row,) = client.get("/transfers", params={"region": HANYIN, "as_of": "2025-03-07"},
                        headers=CLERK_HANYIN).json()["transfers"]
    assert row["external"] is True and row["source_document_no"] == "GD-9" and "省外转入" in row["explanation"]


def test_time_limits_count_working_days_with_the_policy_holidays():
    calendar = TransferCalendar.from_policies([default_policy_book().get(HANYIN, 2025).transfer])
    out = Transfer("T", "OUT", "E1", HANYIN, 0, 0, date(2025, 4, 30), None, "ev-out", None, status="OUT_COMPLETED")
    # 1-5 May are days off (劳动节); 5 working days after 30 April: 6, 7, 8, 9, 12 May.
    assert transfer_status(out, date(2025, 5, 12), calendar).due_on == date(2025, 5, 12)
    assert not transfer_status(out, date(2025, 5, 12), calendar).overdue
    late = transfer_status(out, date(2025, 5, 13), calendar)
    assert late.overdue and late.overdue_working_days == 1
    # A weekend day worked instead of a holiday (调休上班, Sunday 28 Sep 2025) counts, 1-8 October do not:
    # 26, 28, 29, 30 September and 9 October.
    out.started_on = date(2025, 9, 25)
    assert transfer_status(out, date(2025, 9, 25), calendar).due_on == date(2025, 10, 9)


def test_finding_4_the_clerk_cli_lists_incoming_and_overdue_transfers(tmp_path, monkeypatch, capsys):
    embedded(monkeypatch, tmp_path, "cli-transfers-test")
    n = number(25)
    run_as(monkeypatch, tmp_path, "clerk", [HANBIN], user="clerk.hanbin")
    status, _, err = run(capsys, "clerk", "enroll", "--id-number", n, "--name", "王芳", "--scheme", "EMPLOYEE",
                         "--employer-id", EMPLOYER, "--region-code", HANBIN, "--effective-date", "2024-09-10")
    assert status == 0, err
    status, _, err = run(capsys, "clerk", "transfer-out", "--id-number", n, "--transfer-id", "ZY-5",
                         "--counterpart-region", HANYIN, "--effective-date", "2025-03-03")
    assert status == 0, err
    run_as(monkeypatch, tmp_path, "clerk", [HANYIN], user="clerk.hanyin")
    refused(capsys, "TRANSFER_MISMATCH", "clerk", "transfer-in", "--id-number", n, "--name", "王芳",
            "--transfer-id", "ZY-5", "--counterpart-region", HANBIN, "--scheme", "EMPLOYEE", "--employer-id", "X1",
            "--region-code", HANYIN, "--effective-date", "2025-03-05", "--contribution-months", "99")
    status, out, err = run(capsys, "clerk", "transfers", "--region", HANYIN, "--overdue", "--as-of", "2025-04-09",
                           "--json")
    assert status == 0, err
    answer = json.loads(out)
    assert [(r["transfer_id"], r["direction"], r["overdue"]) for r in answer["transfers"]] == [
        ("ZY-5", "INCOMING", True)]
    status, out, _ = run(capsys, "clerk", "transfers", "--region", HANYIN, "--as-of", "2025-04-09")
    assert status == 0 and "ZY-5" in out and "超期" in out
    refused(capsys, "SCOPE_FORBIDDEN", "clerk", "transfers", "--region", HANBIN)


# ------------------------------------------------------------------ finding 5: resident transfers
def test_finding_5_out_suspends_and_a_resident_transfer_starts_next_coverage_year(client):
    n = number(26)
    enroll(client, n)  # resident scheme, 610902, from 2024-09-10
    assert transfer_out(client, n, "ZY-6", on="2025-03-03").status_code == 201
    (enrollment,) = state(client, n)["enrollments"]
    assert enrollment["end_date"] is None and enrollment["suspended_by"] == "ZY-6"  # 中止, not ended
    r = transfer_in(client, n, "ZY-6", on="2025-03-10", scheme="RESIDENT", grid_code=GRID_HANYIN)
    assert r.status_code == 201, r.json()
    sending, receiving = state(client, n)["enrollments"]
    assert (sending["end_date"], sending["end_reason"]) == ("2025-03-03", "TRANSFERRED_OUT")
    assert (receiving["region_code"], receiving["start_date"]) == (HANYIN, "2026-01-01")


def test_a_cancelled_transfer_restores_the_enrollment_balance_and_months(client, system, hostile):
    n = number(27)
    employee(client, n, balance_fen=4_200)
    assert transfer_out(client, n, "ZY-7").status_code == 201
    cancel = {"transfer_id": "ZY-7", "reason": "参保人撤回申请", "effective_date": "2025-03-04"}
    before = event_count(system)
    wrong = client.post(person_path(n, "/transfers/cancel"), headers=CLERK_HANYIN, json=cancel)
    hostile.attempt("cancel another region's transfer-out", status=wrong.status_code,
                    written=event_count(system) != before)
    assert wrong.status_code == 403 and wrong.json()["code"] == "SCOPE_FORBIDDEN"
    assert client.post(person_path(n, "/transfers/cancel"), headers=CLERK, json=cancel).status_code == 201
    person = state(client, n)
    assert person["account_balance_fen"] == 4_200 and person["enrollments"][0]["suspended_by"] is None
    late_in = transfer_in(client, n, "ZY-7")
    hostile.attempt("transfer-in of a cancelled transfer", status=late_in.status_code, written=False)
    assert late_in.status_code == 422 and late_in.json()["code"] == "TRANSFER_NOT_OPEN"
    assert state(client, n)["account_balance_fen"] == 4_200


@pytest.mark.parametrize("body, code", [
    ({"contribution_months": -1}, "BODY_INVALID"),
    ({"account_balance_fen": 1.5}, "AMOUNT_NOT_INTEGER_FEN"),
    ({"contribution_months": "60"}, "BODY_INVALID"),
])
def test_malformed_transfer_figures_are_refused(client, system, hostile, body, code):
    n = number(28)
    employee(client, n)
    assert transfer_out(client, n, "ZY-8").status_code == 201
    before = event_count(system)
    r = transfer_in(client, n, "ZY-8", **body)
    hostile.attempt(f"transfer-in with {body}", status=r.status_code, written=event_count(system) != before)
    assert r.status_code == 422 and r.json()["code"] == code, r.json()


def test_a_transfer_to_the_same_region_is_refused(client):
    n = number(29)
    employee(client, n)
    r = transfer_out(client, n, "ZY-9", to=HANBIN)
    assert r.status_code == 422 and r.json()["code"] == "TRANSFER_SAME_REGION"


def test_auditor_sees_the_transfer_list_and_the_whole_lifecycle(client):
    n = number(30)
    employee(client, n, balance_fen=100)
    transfer_out(client, n, "ZY-10")
    client.post(person_path(n, "/transfers/cancel"), headers=CLERK,
                json={"transfer_id": "ZY-10", "reason": "撤回", "effective_date": "2025-03-04"})
    transfer_out(client, n, "ZY-11", on="2025-03-05")
    transfer_in(client, n, "ZY-11", on="2025-03-06")
    rows = client.get("/transfers", params={"region": HANBIN, "as_of": "2025-03-06"}, headers=AUDITOR).json()
    assert sorted((r["transfer_id"], r["status"]) for r in rows["transfers"]) == [("ZY-10", "CANCELLED"),
                                                                                  ("ZY-11", "DONE")]
    history = client.get(person_path(n, "/history"), headers=auth("tok-auditor")).json()
    kinds = [e["type"] for e in history["events"]]
    assert kinds.count("TransferOutCompleted") == 2 and "TransferCancelled" in kinds and "TransferInCompleted" in kinds


def test_a_request_at_the_receiving_region_starts_the_sending_regions_time_limit(client, system, hostile):
    n = number(31)
    employee(client, n, balance_fen=2_500)
    request = {"transfer_id": "ZY-12", "counterpart_region": HANBIN, "region_code": HANYIN,
               "effective_date": "2025-03-03"}
    wrong = client.post(person_path(n, "/transfers/request"), headers=CLERK, json=request)
    hostile.attempt("request a transfer into another clerk's region", status=wrong.status_code, written=False)
    assert wrong.status_code == 403 and wrong.json()["code"] == "SCOPE_FORBIDDEN"
    r = client.post(person_path(n, "/transfers/request"), headers=CLERK_HANYIN, json=request)
    assert r.status_code == 201, r.json()
    # The sending region has 10 working days: due 17 March, overdue by 5 on 24 March, in both lists.
    late = {"as_of": "2025-03-24", "overdue": "true"}
    (outgoing,) = client.get("/transfers", params={"region": HANBIN, **late}, headers=CLERK).json()["transfers"]
    (incoming,) = client.get("/transfers", params={"region": HANYIN, **late}, headers=CLERK_HANYIN).json()["transfers"]
    assert (outgoing["direction"], outgoing["awaiting"], outgoing["due_on"], outgoing["overdue_working_days"]) == (
        "OUTGOING", "SENDING", "2025-03-17", 5)
    assert (incoming["direction"], incoming["status"]) == ("INCOMING", "REQUESTED") and "转出地" in incoming["explanation"]
    # Receiving before the out half is still refused; an out half to another region does not answer the request.
    early = transfer_in(client, n, "ZY-12")
    assert early.status_code == 422 and early.json()["code"] == "TRANSFER_OUT_MISSING"
    elsewhere = transfer_out(client, n, "ZY-12", on="2025-03-20", to="610922")
    assert elsewhere.status_code == 422 and elsewhere.json()["code"] == "TRANSFER_MISMATCH"
    assert transfer_out(client, n, "ZY-12", on="2025-03-20").status_code == 201
    (row,) = client.get("/transfers", params={"region": HANYIN, "as_of": "2025-03-21"},
                        headers=CLERK_HANYIN).json()["transfers"]
    assert (row["status"], row["awaiting"], row["due_on"]) == ("OUT_COMPLETED", "RECEIVING", "2025-03-27")
    assert transfer_in(client, n, "ZY-12", on="2025-03-21").status_code == 201
    assert state(client, n)["account_balance_fen"] == 2_500


def test_the_grid_page_shows_a_transfer_state_to_no_one_outside_the_grid(client, hostile):
    """Another grid's worker asks for the transferred person's page and gap list, and a forged as_of:
    refused, and no transfer id or state in the answer."""
    from tests.unit.http_support import GRID_A, GRID_WORKER_B

    n = number(71)
    enroll(client, n)
    r = client.post(person_path(n, "/transfers/out"), headers=CLERK,
                    json={"transfer_id": "ZY-HOSTILE-WEB", "counterpart_region": "610921", "effective_date": "2025-05-12"})
    assert r.status_code == 201, r.json()
    person_id = client.get(f"/grids/{GRID_A}/gaps", params={"year": 2025, "as_of": "2025-05-21"},
                           headers=GRID_WORKER_A).json()["gaps"][0]["person_id"]
    for path, params in ((f"/entitlements/{person_id}", {"year": 2025, "on": "2025-05-21"}),
                         (f"/grids/{GRID_A}/gaps", {"year": 2025, "as_of": "2025-05-21"})):
        other = client.get(path, params=params, headers=GRID_WORKER_B)
        leaked = "ZY-HOSTILE-WEB" in other.text or "逾期" in other.text
        hostile.attempt("another grid's worker reads a transfer's state", status=other.status_code, leaked=leaked)
        assert other.status_code == 403 and not leaked
    forged = client.get(f"/grids/{GRID_A}/gaps", params={"year": 2025, "as_of": "2025-02-30"}, headers=GRID_WORKER_A)
    hostile.attempt("a gap list on a day that does not exist", status=forged.status_code,
                    crashed=forged.status_code >= 500)
    assert forged.status_code == 422
