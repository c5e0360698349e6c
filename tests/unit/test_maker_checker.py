"""Maker-checker (双人复核) and person merges (参保人合并), through the ``ledger`` command on the embedded default.

A clerk proposes, an approver of the region (another person) approves: only then does anything
change. A merge of a record registered twice makes every list count the person once, and the
audit history of either ID shows the merge with both clerks. Also the pure rules: who may decide,
expiry, the refund a duplicate enrollment implies.
"""
from __future__ import annotations

from zoneinfo import ZoneInfo

from entrypoints.catalogue import error_message

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from entrypoints.wiring import bootstrap
from infra.settings import Settings, load_settings
from ledger.domain.approvals import PendingChange, check_decision, duplicate_refund, merge_warnings, needs_approval
from ledger.domain.errors import DomainError
from ledger.domain.history import fold_many
from ledger.inbound_records import Provenance
from ledger.maker_checker import MakerChecker
from ledger.policy import PolicyBook
from tests.unit.cli_support import embedded, refused, run, run_as
from tests.unit.projection_support import HANBIN, enroll, number, pay_year, tax

GRID_A = "610902100001"
AS_OF = "2025-06-01"
A, B = number(1), number(2)  # the same woman, registered twice (e.g. at the counter and by the tax app)


@pytest.fixture()
def twice(tmp_path, monkeypatch):
    """Embedded ledger: A paid 2025 (covered), B (the same person's second record) enrolled and unpaid."""
    embedded(monkeypatch, tmp_path, "maker-checker-test")
    system = bootstrap(load_settings())
    try:
        for n in (A, B):
            enroll(system.ledger, n, date(2024, 9, 10), grid=GRID_A)
        pay_year(system.ledger, A, 2025, date(2024, 10, 8), voucher="V-A")
        pid_b = system.ledger.person_id("RESIDENT_ID", B)
        system.ledger.assess_resident_year(pid_b, 2025, provenance=Provenance("api", user="clerk01"),
                                           effective_date=date(2024, 9, 10))
    finally:
        system.close()
    return tmp_path


def as_json(capsys, *argv: str):
    status, out, err = run(capsys, *argv, "--json")
    assert status == 0, err
    return json.loads(out)


def lists(capsys, monkeypatch, home) -> tuple[list, dict, list]:
    """The gap list, coverage rates and arrears of grid A for 2025, as a clerk of the region reads them."""
    run_as(monkeypatch, home, "clerk", [HANBIN], user="reader")
    status, _, err = run(capsys, "project", "--quiet")
    assert status == 0, err
    gaps = as_json(capsys, "gaps", GRID_A, "--year", "2025", "--as-of", AS_OF)
    coverage = as_json(capsys, "coverage", "--region", HANBIN, "--year", "2025", "--as-of", AS_OF)
    arrears = as_json(capsys, "arrears", "--grid", GRID_A, "--as-of", AS_OF)
    return gaps, coverage, arrears


def _residents(coverage) -> tuple[int, int]:
    grid = coverage["grids"].get(GRID_A, {"residents": 0, "covered": 0})
    return grid["residents"], grid["covered"]


def test_a_merge_proposed_by_one_clerk_and_approved_by_another_counts_the_person_once(twice, capsys, monkeypatch):
    gaps, coverage, arrears = lists(capsys, monkeypatch, twice)
    assert _residents(coverage) == (2, 1)  # before: two records, two residents, one a gap and in arrears
    assert [g["masked_id"][-4:] for g in gaps] == [B[-4:]]
    assert {r["masked_id"][-4:] for r in arrears} == {B[-4:]}

    run_as(monkeypatch, twice, "clerk", [HANBIN], user="wang")
    proposed = as_json(capsys, "clerk", "propose-merge", "--id-number", A, "--merged-id-number", B,
                       "--merge-kind", "DUPLICATE", "--reason", "同一人窗口与税务App各登记一次", "--request-id", "M-1")
    assert (proposed["status"], proposed["applied"], proposed["proposed_by"]) == ("PENDING", True, "wang")
    # Pending: nothing moved yet.
    gaps, coverage, arrears = lists(capsys, monkeypatch, twice)
    assert _residents(coverage) == (2, 1) and len(gaps) == 1 and len(arrears) == 1

    run_as(monkeypatch, twice, "approver", [HANBIN], user="li")
    pending = as_json(capsys, "clerk", "pending")
    assert [c["change_id"] for c in pending] == ["M-1"]
    approved = as_json(capsys, "clerk", "approve", "M-1")
    assert (approved["status"], approved["decided_by"], len(approved["event_ids"])) == ("APPROVED", "li", 2)
    assert as_json(capsys, "clerk", "pending") == []

    gaps, coverage, arrears = lists(capsys, monkeypatch, twice)
    assert _residents(coverage) == (1, 1)  # the person, once, and covered
    assert gaps == [] and arrears == []

    run_as(monkeypatch, twice, "auditor", user="audit")
    for n in (A, B):
        status, out, err = run(capsys, "history", n)
        assert status == 0, err
        assert "参保人合并" in out and "wang" in out and "li" in out, out


def test_the_same_clerk_cannot_approve_their_own_merge_even_with_an_approver_token(twice, capsys, monkeypatch):
    run_as(monkeypatch, twice, "clerk", [HANBIN], user="wang")
    as_json(capsys, "clerk", "propose-merge", "--id-number", A, "--merged-id-number", B,
            "--merge-kind", "DUPLICATE", "--reason", "重复登记", "--request-id", "M-2")
    refused(capsys, "ROLE_FORBIDDEN", "clerk", "approve", "M-2")  # a clerk's token does not approve
    run_as(monkeypatch, twice, "approver", [HANBIN], user="wang")  # the same person holding an approver token
    refused(capsys, "APPROVAL_BY_MAKER", "clerk", "approve", "M-2")
    refused(capsys, "APPROVAL_BY_MAKER", "clerk", "reject", "M-2", "--reason", "撤回")
    run_as(monkeypatch, twice, "approver", [HANBIN], user="li")
    assert as_json(capsys, "clerk", "pending")[0]["status"] == "PENDING"


def test_after_a_merge_the_old_record_takes_nothing_new_and_its_payments_go_to_the_person_kept(twice, capsys,
                                                                                            monkeypatch):
    run_as(monkeypatch, twice, "clerk", [HANBIN], user="wang")
    as_json(capsys, "clerk", "propose-merge", "--id-number", A, "--merged-id-number", B, "--merge-kind",
            "ID_CORRECTION", "--reason", "证件号码录错", "--request-id", "M-3")
    run_as(monkeypatch, twice, "approver", [HANBIN], user="li")
    as_json(capsys, "clerk", "approve", "M-3")
    run_as(monkeypatch, twice, "clerk", [HANBIN], user="wang")
    refused(capsys, "PERSON_MERGED", "clerk", "assess-resident-year", "--id-number", B, "--year", "2026")

    system = bootstrap(load_settings())
    try:
        ledger = system.ledger
        before_b = ledger.find_person("RESIDENT_ID", B).version
        outcome = ledger.record_tax_record(tax(B, "V-B-2026", amount_fen=40000, paid_on=date(2025, 10, 8),
                                               period=(date(2026, 1, 1), date(2026, 12, 31))),
                                           provenance=Provenance("kafka", topic="tax.payments.v1", offset=9))
        assert outcome.applied and outcome.person_id == ledger.person_id("RESIDENT_ID", A)
        assert ledger.find_person("RESIDENT_ID", B).version == before_b  # nothing written on the old record
        assert "16109020000|V-B-2026" in ledger.find_person("RESIDENT_ID", A).payments
        # The same voucher again is a resend, whichever record it names.
        again = ledger.record_tax_record(tax(B, "V-B-2026", amount_fen=40000, paid_on=date(2025, 10, 8),
                                             period=(date(2026, 1, 1), date(2026, 12, 31))),
                                         provenance=Provenance("kafka", topic="tax.payments.v1", offset=9))
        assert again.applied is False
        # The batch path (the tax consumer) routes the same way.
        batch = ledger.record_tax_records([(tax(B, "V-B-2026-2", amount_fen=100, paid_on=date(2025, 10, 9),
                                                period=(date(2026, 1, 1), date(2026, 12, 31))),
                                            Provenance("kafka", topic="tax.payments.v1", offset=10))])
        assert batch[0].applied and batch[0].person_id == ledger.person_id("RESIDENT_ID", A)
        assert ledger.find_person("RESIDENT_ID", B).version == before_b
    finally:
        system.close()


def test_ending_an_enrollment_waits_for_approval_and_a_rejected_change_never_applies(twice, capsys, monkeypatch):
    run_as(monkeypatch, twice, "clerk", [HANBIN], user="wang")
    proposed = as_json(capsys, "clerk", "end-enrollment", "--id-number", A, "--reason", "MOVED_OUT",
                       "--effective-date", "2025-03-31", "--request-id", "E-1")
    assert proposed["change"]["status"] == "PENDING" and proposed["event_ids"] == []
    assert as_json(capsys, "person", A)["enrollments"][0]["end_date"] is None
    # The same request again is a resend: no second change.
    assert as_json(capsys, "clerk", "end-enrollment", "--id-number", A, "--reason", "MOVED_OUT",
                   "--effective-date", "2025-03-31", "--request-id", "E-1")["applied"] is False
    run_as(monkeypatch, twice, "approver", [HANBIN], user="li")
    refused(capsys, "BODY_INVALID", "clerk", "reject", "E-1", "--reason", " ")  # a rejection says why
    rejected = as_json(capsys, "clerk", "reject", "E-1", "--reason", "未见迁出证明")
    assert (rejected["status"], rejected["decided_by"], rejected["note"]) == ("REJECTED", "li", "未见迁出证明")
    refused(capsys, "CHANGE_ALREADY_DECIDED", "clerk", "approve", "E-1")
    run_as(monkeypatch, twice, "clerk", [HANBIN], user="wang")
    assert as_json(capsys, "person", A)["enrollments"][0]["end_date"] is None


# --------------------------------------------------------------------------- the rules, pure
NOW = datetime(2026, 12, 6, 8, tzinfo=timezone.utc)


def change(**over):
    fields = dict(change_id="C-1", kind="MERGE_PERSONS", region_code=HANBIN, person_id="p", payload={},
                  summary="s", proposed_by="wang", proposed_at=NOW, expiry_hours=72)
    fields.update(over)
    return PendingChange.propose(**fields)


def test_a_decision_needs_another_clerk_a_pending_change_and_time_left():
    c = change()
    check_decision(c, "li", NOW + timedelta(hours=71))  # fine
    for maker in ("wang", " Wang ", "WANG"):  # the same user name, however written
        with pytest.raises(DomainError) as e:
            check_decision(c, maker, NOW)
        assert e.value.code == "APPROVAL_BY_MAKER"
    with pytest.raises(DomainError) as e:
        check_decision(c, "li", NOW + timedelta(hours=72))
    assert e.value.code == "CHANGE_EXPIRED"
    # the expiry a clerk reads is Beijing time to the minute, in both languages; no raw UTC instant
    at = (NOW + timedelta(hours=72)).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert e.value.details["expires_at"] == at and "+00:00" not in e.value.message
    assert error_message("CHANGE_EXPIRED", e.value.message, "zh") == f"该变更已于北京时间 {at} 过期，请重新提出"
    assert error_message("CHANGE_EXPIRED", e.value.message, "en") == f"the change expired at {at} Beijing time; propose it again"
    with pytest.raises(DomainError) as e:
        check_decision(c, " ", NOW)
    assert e.value.code == "CHECKER_REQUIRED"
    with pytest.raises(DomainError) as e:
        c.reject(checker="li", at=NOW, reason=" ")
    assert e.value.code == "REJECT_REASON_REQUIRED"
    c.approve(approver="li", at=NOW, result={})
    with pytest.raises(DomainError) as e:
        check_decision(c, "zhao", NOW)
    assert e.value.code == "CHANGE_ALREADY_DECIDED"
    assert c.as_dict(NOW)["status"] == "APPROVED" and c.decided_by == "li"


def test_a_merge_of_records_that_differ_warns_the_approver():
    from types import SimpleNamespace as R

    kept = R(name="王芳", birth_date=date(1980, 5, 17), sex="F")
    assert merge_warnings(kept, R(name="王芳 ", birth_date=date(1980, 5, 17), sex="F")) == []
    assert merge_warnings(kept, R(name="王方", birth_date=date(1980, 5, 18), sex="M")) == [
        "姓名不一致", "出生日期不一致（1980-05-17 / 1980-05-18）", "性别不一致"]


def test_an_unknown_kind_or_a_change_without_maker_is_refused():
    for over, code in (({"kind": "DELETE_PERSON"}, "CHANGE_KIND_UNKNOWN"), ({"proposed_by": ""}, "MAKER_REQUIRED"),
                       ({"change_id": ""}, "CHANGE_ID_REQUIRED")):
        with pytest.raises(DomainError) as e:
            change(**over)
        assert e.value.code == code


def test_a_pending_change_past_its_expiry_expires_once():
    c = change()
    assert c.expire(at=NOW + timedelta(hours=1)) is False
    assert c.expire(at=NOW + timedelta(hours=72)) is True and c.status == "EXPIRED"
    assert c.expire(at=NOW + timedelta(hours=100)) is False


def test_only_corrections_above_the_threshold_wait():
    assert needs_approval(100001, 100000) and not needs_approval(100000, 100000) and not needs_approval(1, 100000)
    book = PolicyBook.load()
    policy = book.approval(HANBIN, date(2026, 12, 6))
    assert policy.correction_threshold_fen == 100000 and policy.pending_expiry_hours == 72
    assert book.approval(HANBIN, date(2030, 1, 1)) == policy  # a later year without a table: the latest one's


def _ledger():
    return bootstrap(Settings(persistence="memory", id_key=b"k"), policies=PolicyBook.load())


def test_the_refund_of_a_duplicate_enrollment_is_what_was_paid_for_the_years_both_covered():
    system = _ledger()
    try:
        ledger = system.ledger
        n = number(7)
        pid = enroll(ledger, n, date(2024, 9, 10))  # resident in Hanbin
        pay_year(ledger, n, 2025, date(2024, 10, 8), voucher="V25")
        # Then hired: an employee enrollment in the same region while the resident one is in force (重复参保).
        enroll(ledger, n, date(2025, 3, 1), scheme="EMPLOYEE", employer_id="EMP-1")
        history = fold_many(None, ledger.events.get(pid))
        resident = next(e for e in history.enrollments if e.scheme == "RESIDENT")
        refund = duplicate_refund(history, resident.enrollment_id)
        assert refund.owed_back_fen == 40000 and [x.voucher_no for x in refund.lines] == ["V25"]
        employee = next(e for e in history.enrollments if e.scheme == "EMPLOYEE")
        assert duplicate_refund(history, employee.enrollment_id).owed_back_fen == 0  # nothing paid under it
        with pytest.raises(DomainError) as e:
            duplicate_refund(history, "E999")
        assert e.value.code == "ENROLLMENT_NOT_FOUND"

        # Through maker-checker: proposed with the figure, carried out on approval with the same figure.
        mc = MakerChecker(ledger)
        proposed = mc.propose_end_enrollment(
            person_id=pid, enrollment_id=resident.enrollment_id, reason="DUPLICATE_RESOLVED",
            effective_date=date(2025, 3, 1), region_code=HANBIN, provenance=Provenance("api", user="wang",
                                                                                       request_id="D-1"))
        assert proposed["payload"]["refund_owed_fen"] == 40000
        assert ledger.get_person(pid).enrollment(resident.enrollment_id).end_date is None
        done = mc.approve("D-1", approver="li", provenance=Provenance("api", user="li", request_id="D-1a"))
        assert done["result"]["refund_owed_fen"] == 40000 and done["result"]["refund_vouchers"] == ["V25"]
        ended = ledger.get_person(pid).enrollment(resident.enrollment_id)
        assert (ended.end_date, ended.end_reason) == (date(2025, 3, 1), "DUPLICATE_RESOLVED")
        last = list(ledger.events.get(pid))[-1]
        assert (last.provenance["proposed_by"], last.provenance["approved_by"], last.provenance["change_id"]) == (
            "wang", "li", "D-1")
    finally:
        system.close()


def test_status_and_registry_records_naming_a_merged_record_go_to_the_person_kept():
    from ledger.inbound_records import ResidentRecord, StatusRecord

    system = _ledger()
    try:
        ledger = system.ledger
        a, b = number(8), number(9)
        pid_a, pid_b = enroll(ledger, a, date(2024, 9, 10)), enroll(ledger, b, date(2024, 9, 10))
        mc = MakerChecker(ledger)
        mc.propose_merge(survivor_id=pid_a, merged_id=pid_b, merge_kind="DUPLICATE", reason="重复登记",
                         region_code=HANBIN, provenance=Provenance("api", user="wang", request_id="M-9"))
        mc.approve("M-9", approver="li", provenance=Provenance("api", user="li", request_id="A-9"))
        before_b = ledger.get_person(pid_b).version
        feed = Provenance("kafka", topic="registry.status.v1", offset=1)
        granted = ledger.apply_status(StatusRecord(
            record_id="MZ-9", id_type="RESIDENT_ID", id_number=b, name="王芳", category="MIN_LIVING", granted=True,
            valid_from=date(2025, 1, 1), valid_to=None, department="汉滨区民政局", document_no="汉民〔2025〕9号"),
            provenance=feed)
        assert granted.applied and granted.person_id == pid_a
        assert [g.category for g in ledger.get_person(pid_a).subsidies.values()] == ["MIN_LIVING"]
        moved = ledger.apply_residence(ResidentRecord(
            record_id="HJ-9", id_type="RESIDENT_ID", id_number=b, name="王芳", grid_code="610902100002",
            status="RESIDENT", effective_date=date(2025, 2, 1)), provenance=feed)
        assert moved.applied and moved.person_id == pid_a
        assert ledger.get_person(pid_a).household_grid == "610902100002"
        assert ledger.get_person(pid_b).version == before_b  # the merged record took nothing
        with pytest.raises(DomainError) as e:  # nor does a clerk's command on it
            ledger.credit_account(pid_b, amount_fen=100, reason="CORRECTION", reference="x",
                                  effective_date=date(2025, 3, 1), provenance=Provenance("api", user="wang"))
        assert e.value.code == "PERSON_MERGED"
        with pytest.raises(DomainError) as e:  # and it cannot be merged again, nor anything into it
            mc.propose_merge(survivor_id=pid_b, merged_id=pid_a, merge_kind="DUPLICATE", reason="x",
                             region_code=HANBIN, provenance=Provenance("api", user="wang", request_id="M-10"))
        assert e.value.code == "PERSON_MERGED"
    finally:
        system.close()


def test_what_the_merged_record_paid_counts_for_the_person_kept(twice, capsys, monkeypatch):
    """The person paid under the second record (B) only: once merged into A, A is covered by that payment,
    the gap list is empty and a refund of B's voucher sent later finds its original on A."""
    system = bootstrap(load_settings())
    try:
        pay_year(system.ledger, B, 2025, date(2024, 10, 9), voucher="V-B")
    finally:
        system.close()
    run_as(monkeypatch, twice, "clerk", [HANBIN], user="wang")
    as_json(capsys, "clerk", "propose-merge", "--id-number", A, "--merged-id-number", B,
            "--merge-kind", "DUPLICATE", "--reason", "重复登记", "--request-id", "M-6")
    run_as(monkeypatch, twice, "approver", [HANBIN], user="li")
    as_json(capsys, "clerk", "approve", "M-6")
    gaps, coverage, arrears = lists(capsys, monkeypatch, twice)
    assert _residents(coverage) == (1, 1) and gaps == [] and arrears == []
    person = as_json(capsys, "person", A)
    assert person["paid_fen"]["2025"] == 80000  # A's own V-A and B's V-B, carried over with its event id
    system = bootstrap(load_settings())
    try:
        ledger = system.ledger
        refund = tax(B, "R-B", amount_fen=40000, paid_on=date(2025, 1, 5), period=(date(2025, 1, 1), date(2025, 12, 31)),
                     kind="REFUND", original_voucher_no="V-B", reason="重复缴费退费")
        outcome = ledger.record_tax_record(refund, provenance=Provenance("kafka", topic="tax.payments.v1", offset=11))
        assert outcome.applied and outcome.person_id == ledger.person_id("RESIDENT_ID", A)
        history = fold_many(None, ledger.events.get(ledger.person_id("RESIDENT_ID", A)))
        assert ledger.find_person("RESIDENT_ID", A).history == history  # the aggregate and the views: one fold
        assert [r.amount_fen for r in history.payments["16109020000|V-B"].refunds] == [40000]
    finally:
        system.close()
