"""The demo's business cases (issue #22) put through the public interfaces, and their truth checks.

After the county's season, a clerk of the county works the next year's cases built by
:mod:`entrypoints.simulation.cases`: the commands of ``ledger clerk`` / the HTTP API (the same
:func:`~entrypoints.http.commands.carry_out` and late-fee functions), the tax feed as
``ledger feed tax`` sends it, the arrears export of ``ledger arrears --xlsx``, the statements
file through ``ledger feed statements FILE``'s own code, and the reads of ``ledger fees`` /
``ledger arrears`` / ``ledger reconcile missing``; maker-checker as ``ledger clerk propose-merge`` /
``end-enrollment`` / ``payment-correction`` and ``ledger clerk approve`` run it (:mod:`entrypoints.http.approvals`,
the approver a second user with the approver role of the region); the old system's sheet through
``ledger migrate FILE``'s own function (:func:`consumers.migration.migrate_file`), loaded twice, and the
entitlement read as ``ledger entitlement`` reads it; next year's assessment in every region with tables as
``ledger clerk assess-resident-year --year`` runs it. Each case's figures are compared with the
generator's expected ones: a check per case, printed in the report.
"""
from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from typing import Any, Callable

from consumers import migration
from consumers.spreadsheets import read_file
from entrypoints.audit.replay import history_report
from entrypoints.http import approvals as ap
from entrypoints.http.auth import Principal, Role
from entrypoints.http.commands import (ASSESS_EMPLOYEE_MONTH, ASSESS_RESIDENT_YEAR, END_ENROLLMENT, ENROLL,
                                       GRANT_STATUS, PAYMENT_CORRECTION, REVOKE_STATUS, carry_out)
from entrypoints.http.late_fees import LateFeeWaiverIn, fees_answer, fees_for, waive_late_fee
from entrypoints.http.models import (EmployeeAssessmentIn, EndEnrollmentIn, EnrollmentIn, PaymentCorrectionIn,
                                     ResidentAssessmentIn, StatusGrantIn, StatusRevokeIn)
from entrypoints.http.read_model import ViewReads
from entrypoints.http.web import ledger_exports
from entrypoints.simulation import timeline
from entrypoints.simulation.cases import Cases, build_cases
from entrypoints.wiring import file_feed
from infra.limits import FEED_SHEET
from ledger.domain.errors import DomainError
from ledger.domain.identity import mask_id_number
from ledger.inbound_records import Provenance
from ledger.maker_checker import MakerChecker
from projections.factory import view_queries
from projections.arrears import employer_totals
from reconciliation.factory import statement_due_days, store_of
from reconciliation.reports import missing_statements

STATEMENT_COLUMNS = ("statement_id", "business_date", "tax_office", "region_code", "line_count", "total_amount_fen",
                     "line_no", "voucher_no", "id_type", "id_number", "levy_item", "period_start", "period_end",
                     "amount_fen", "paid_at", "credited_on", "kind", "original_voucher_no", "original_tax_office")


class _Clerk:
    """The county's clerk at the counter: the clerk commands as ``ledger clerk`` runs them."""

    def __init__(self, system: Any, cases: Cases) -> None:
        self.system, self.who = system, Principal(cases.clerk, Role.CLERK, frozenset({cases.region}))
        self.n = 0

    def __call__(self, command: Any, body: Any, *, id_number: str | None = None) -> Any:
        self.n += 1
        request_id = f"demo-case-{self.n:03d}"

        def provenance(key: str) -> Provenance:
            return Provenance(source="cli", user=self.who.user, request_id=request_id, record_key=key)

        return carry_out(self.system.ledger, self.who, command, body, provenance=provenance, request_id_given=False,
                         id_type="RESIDENT_ID" if id_number else None, id_number=id_number)


def statements_csv(cases: Cases) -> bytes:
    """The statements as the tax bureau's file (UTF-8 with BOM, the columns ``ledger feed statements`` reads)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=STATEMENT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(cases.statements)
    return "\ufeff".encode() + buffer.getvalue().encode()


def run_cases(system: Any, county: Any, pipeline: Any, *, state_dir: Path | None,
              reconcile: Callable[[Any, int], Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the cases on ``system`` after the county's season; (report section, checks)."""
    cases = build_cases(county, system.ledger.policies)
    clerk = _Clerk(system, cases)
    reads = ViewReads(system, catch_up=True)
    year = cases.year
    # --- people and assessments, at the counter
    for staff, employer in ((cases.fee_staff, cases.fee_employer), (cases.arrears_staff, cases.arrears_employer)):
        months = cases.fee_months if employer == cases.fee_employer else cases.arrears_months
        for who in staff:
            clerk(ENROLL, EnrollmentIn(id_number=who.id_number, name=who.name, scheme="EMPLOYEE",
                                       region_code=cases.region, employer_id=employer,
                                       effective_date=date(year - 1, 12, 1)))
            for month in months:
                clerk(ASSESS_EMPLOYEE_MONTH, EmployeeAssessmentIn(month=month, declared_base_fen=cases.fee_base_fen,
                                                                  effective_date=date(year, 1, 1)),
                      id_number=who.id_number)
    for case in cases.statuses.values():
        p = case["person"]
        clerk(ENROLL, EnrollmentIn(id_number=p.id_number, name=p.name, scheme="RESIDENT", region_code=cases.region,
                                   effective_date=date(year - 1, 9, 15)))
        clerk(ASSESS_RESIDENT_YEAR, ResidentAssessmentIn(year=year, effective_date=date(year - 1, 9, 15)),
              id_number=p.id_number)
    _register_merge_dup_correction(cases, clerk)
    # --- the old system's history (`ledger migrate FILE`, twice), before the payments that follow it
    loaded = _migrate_history(system, cases, clerk, state_dir)
    # --- the tax bureau's collection (contributions, the resident payment, the LATE_FEE levy item): `ledger feed tax`
    pipeline.feed_file(timeline.TAX, cases.tax_records)
    pipeline.drain(timeline.TAX)
    # --- statuses entered by the clerk (grant-status / revoke-status)
    for key, case in cases.statuses.items():
        p = case["person"]
        for i, (category, valid_from, valid_to) in enumerate(case["grants"]):
            clerk(GRANT_STATUS, StatusGrantIn(id_number=p.id_number, name=p.name, region_code=cases.region,
                                              category=category, valid_from=valid_from, valid_to=valid_to,
                                              department="民政局", document_no=f"DEMO-{key}-{i}"))
        if case.get("revoked_from"):
            clerk(REVOKE_STATUS, StatusRevokeIn(grant_id=f"DEMO-{key}-0", revoked_from=case["revoked_from"],
                                                department="民政局", document_no=f"DEMO-{key}-R"),
                  id_number=p.id_number)
    checks: dict[str, Any] = {}
    report: dict[str, Any] = {"year": year, "as_of": cases.as_of.isoformat()}
    fees_before = _fees(reads, cases, cases.fee_employer)
    # --- the waiver: a clerk approving their own is refused; the approver is someone else
    self_approved = None
    try:
        waive_late_fee(system.ledger, reads, clerk.who, LateFeeWaiverIn(
            employer_id=cases.fee_employer, period=cases.fee_waived_month, reason=cases.waiver_reason,
            approver=clerk.who.user, effective_date=cases.waiver_effective),
            provenance=Provenance(source="cli", user=clerk.who.user, request_id="demo-waiver-self"))
    except DomainError as e:
        self_approved = e.code
    proposed = waive_late_fee(system.ledger, reads, clerk.who, LateFeeWaiverIn(
        employer_id=cases.fee_employer, period=cases.fee_waived_month, reason=cases.waiver_reason,
        approver=cases.approver, effective_date=cases.waiver_effective),
        provenance=Provenance(source="cli", user=clerk.who.user, request_id="demo-waiver-1"))
    # Maker-checker (双人复核): the waiver waits for the approver it names and moves no figure until approved.
    fees_pending = _fees(reads, cases, cases.fee_employer)
    MakerChecker(system.ledger).approve(
        proposed["change"]["change_id"], approver=cases.approver,
        provenance=Provenance(source="cli", user=cases.approver, request_id="demo-waiver-1-approve"))
    fees_after = _fees(reads, cases, cases.fee_employer)
    fees_after["owed_while_pending_fen"] = fees_pending["owed_fen"]
    checks["late_fees"], report["late_fees"] = _late_fee_check(cases, system.ledger, fees_before, fees_after, self_approved)
    checks["clerk_statuses"], report["statuses"] = _status_check(cases, reads)
    checks["employer_arrears"], report["arrears"] = _arrears_check(cases, reads, clerk.who, state_dir)
    checks["person_merge"], report["merge"] = _merge_case(system, cases, clerk, reads, pipeline)
    checks["duplicate_enrollment"], report["duplicate"] = _duplicate_case(system, cases, clerk)
    checks["large_correction"], report["correction"] = _correction_case(system, cases, clerk)
    checks["statement_file"], report["statements"] = _statement_check(cases, system, state_dir, reconcile)
    checks["history_migration"], report["migration"] = _migration_check(system, cases, loaded)
    checks["next_year_assessment"], report["next_year"] = _next_year_case(system, cases)
    return report, checks


def migration_csv(cases: Cases) -> bytes:
    """The old system's sheet as a county exports it (UTF-8 with BOM, the migration sheet's Chinese headers)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[c.header for c in migration.COLUMNS], lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(cases.migration_rows)
    return "\ufeff".encode() + buffer.getvalue().encode()


def _event_count(ledger: Any, id_numbers: list[str]) -> int:
    return sum(len(list(ledger.events.get(ledger.find_person("RESIDENT_ID", n).id))) for n in id_numbers)


def _migrate_history(system: Any, cases: Cases, clerk: _Clerk, state_dir: Path | None) -> dict[str, Any]:
    """``ledger migrate FILE`` as the clerk runs it (the same function, their regions only), then the same file
    again: the second load writes nothing. The twin (no migrated history) is enrolled at the counter."""
    g, ledger, who = cases.migration, system.ledger, clerk.who
    data, name = migration_csv(cases), "old-system-demo.csv"
    if state_dir is not None:
        path = Path(state_dir) / name
        path.write_bytes(data)
        data = read_file(path)  # as `ledger migrate FILE` reads it
    default_region = next(iter(who.scopes)) if len(who.scopes) == 1 else None

    def load(batch: str) -> dict[str, Any]:
        report, _, _ = migration.migrate_file(ledger, data, name, user=who.user, batch_id=batch,
                                              region_allowed=lambda region: region in who.scopes,
                                              default_region=default_region)
        return report

    first = load("DEMO-MIG-1")
    numbers = sorted({r["证件号码"] for r in cases.migration_rows})
    events = _event_count(ledger, numbers)
    again = load("DEMO-MIG-2")
    written_again = _event_count(ledger, numbers) - events
    twin = g["twin"]
    clerk(ENROLL, EnrollmentIn(id_number=twin.id_number, name=twin.name, scheme="RESIDENT", region_code=cases.region,
                               grid_code=g["grid"], effective_date=g["twin_enrolled_on"]))
    return {"file": name, "first": first, "again": again, "events_written_again": written_again}


def _resident(system: Any, id_number: str, year: int) -> dict[str, Any]:
    """The resident year of ``ledger entitlement ID --year YEAR`` (the same query, fresh from the events)."""
    person_id = system.ledger.find_person("RESIDENT_ID", id_number).id
    return view_queries(system).entitlement(person_id, year)["resident"] or {}


def _day(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")


def _migration_check(system: Any, cases: Cases, loaded: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    want, g, year = cases.expected["migration"], cases.migration, cases.year
    first, again = loaded["first"], loaded["again"]
    mig = _resident(system, g["migrated"].id_number, year)
    cont = _resident(system, g["continuous"].id_number, year)
    twin = _resident(system, g["twin"].id_number, year)
    got = {"gap_years": mig.get("gap_years"), "back_paid_years": mig.get("back_paid_years"),
           "waiting_months": mig.get("waiting_months"), "covered_from": _day(mig.get("coverage_start"))}
    expected = {"gap_years": want["gap_years"], "back_paid_years": want["back_paid_years"],
                "waiting_months": want["waiting_months"], "covered_from": want["covered_from"].isoformat()}
    twin_known = twin.get("history_unknown_before")
    check = {
        "ok": (first["imported"] == want["imported_first"] and first["errors"] == 0
               and again["imported"] == want["imported_again"]
               and again["already_imported"] == want["already_imported_again"]
               and loaded["events_written_again"] == 0 and got == expected and not mig.get("history_note")
               and _day(cont.get("coverage_start")) == want["continuous_covered_from"].isoformat()
               and bool(twin.get("history_note")) and twin_known == want["twin_unknown_before"]
               and twin.get("history_horizon_basis") == want["twin_basis"]),
        "rows": f"{first['imported']}/{want['imported_first']}", "errors": first["errors"],
        "second_load_imported": again["imported"], "second_load_already_imported": again["already_imported"],
        "events_written_again": loaded["events_written_again"],
        **{k: f"{got[k]}/{expected[k]}" for k in expected},
        "continuous_covered_from": f"{_day(cont.get('coverage_start'))}/{want['continuous_covered_from']}",
        "twin_unknown_before": f"{twin_known}/{want['twin_unknown_before']}",
        "twin_basis": f"{twin.get('history_horizon_basis')}/{want['twin_basis']}",
    }
    report = {"file": loaded["file"], "rows": first["rows"], "imported": first["imported"],
              "again_imported": again["imported"], "again_already": again["already_imported"],
              "person": mask_id_number(g["migrated"].id_number), "last_covered": g["last_covered"],
              "old_years": g["old_years"], "back_years": g["back_years"], "paid_on": g["paid_on"].isoformat(),
              **got, "arithmetic": want["arithmetic"],
              "continuous": mask_id_number(g["continuous"].id_number),
              "continuous_covered_from": _day(cont.get("coverage_start")),
              "twin": mask_id_number(g["twin"].id_number), "twin_note": twin.get("history_note") or "",
              # the note's code and figures, for the report to say it in its language
              "twin_year": year, "twin_horizon": {k: twin.get(k) for k in (
                  "history_note", "history_horizon_basis", "history_unknown_before")}}
    return check, report


def _next_year_case(system: Any, cases: Cases) -> tuple[dict[str, Any], dict[str, Any]]:
    """``ledger clerk enroll`` and ``assess-resident-year --year NEXT`` in every region with policy tables, as a
    clerk of those regions; the due read back as ``ledger entitlement --year NEXT`` shows it."""
    n, want = cases.next_year, cases.expected["next_year"]
    regions = sorted(n["people"])
    who = Principal(cases.clerk, Role.CLERK, frozenset(regions))
    clerk = _Clerk(system, cases)
    clerk.who = who
    got: dict[str, Any] = {}
    for region in regions:
        p = n["people"][region]
        try:
            clerk(ENROLL, EnrollmentIn(id_number=p.id_number, name=p.name, scheme="RESIDENT", region_code=region,
                                       effective_date=n["enrolled_on"]))
            clerk(ASSESS_RESIDENT_YEAR, ResidentAssessmentIn(year=n["year"], effective_date=n["enrolled_on"]),
                  id_number=p.id_number)
            got[region] = _resident(system, p.id_number, n["year"]).get("due_fen")
        except DomainError as e:
            got[region] = e.code
    expected = {r: w["due_fen"] for r, w in want["regions"].items()}
    wrong = sorted(r for r in expected if got.get(r) != expected[r])
    provisional = sorted(r for r, w in want["regions"].items() if w["provisional"])
    check = {"ok": not wrong and set(got) == set(expected), "year": n["year"], "regions": len(expected),
             "agree": len(expected) - len(wrong),
             "disagree": ", ".join(f"{r} {got.get(r)}/{expected[r]}" for r in wrong) or "—"}
    dues = sorted({v for v in got.values() if isinstance(v, int)})
    report = {"year": n["year"], "regions": len(regions), "assessed": sum(isinstance(v, int) for v in got.values()),
              "dues_fen": dues, "provisional": len(provisional), "by_region": got}
    return check, report


def _register_merge_dup_correction(cases: Cases, clerk: _Clerk) -> None:
    """The people of the merge, duplicate-enrollment and correction cases, at the counter (before the tax feed)."""
    year, m, d, c = cases.year, cases.merge, cases.duplicate, cases.correction
    for who in (m["kept"], m["merged"]):  # the same woman, registered twice
        clerk(ENROLL, EnrollmentIn(id_number=who.id_number, name=who.name, scheme="RESIDENT", region_code=cases.region,
                                   grid_code=m["grid"], effective_date=date(year - 1, 9, 15)))
        clerk(ASSESS_RESIDENT_YEAR, ResidentAssessmentIn(year=year, effective_date=date(year - 1, 9, 15)),
              id_number=who.id_number)
    p = d["person"]
    clerk(ENROLL, EnrollmentIn(id_number=p.id_number, name=p.name, scheme="RESIDENT", region_code=cases.region,
                               grid_code=m["grid"], effective_date=d["enrolled_on"]))
    for y in sorted(d["paid"]):
        clerk(ASSESS_RESIDENT_YEAR, ResidentAssessmentIn(year=y, effective_date=date(y - 1, 9, 15)),
              id_number=p.id_number)
    p = c["person"]
    clerk(ENROLL, EnrollmentIn(id_number=p.id_number, name=p.name, scheme="EMPLOYEE", region_code=cases.region,
                               employer_id=c["employer"], effective_date=date(year - 1, 12, 1)))
    clerk(ASSESS_EMPLOYEE_MONTH, EmployeeAssessmentIn(month=c["month"], declared_base_fen=c["declared_base_fen"],
                                                      effective_date=date(year, 1, 1)), id_number=p.id_number)


def _approver(cases: Cases) -> Principal:
    """The county's approver (医保审核): another person, with the approver role of the region."""
    return Principal(cases.approver, Role.APPROVER, frozenset({cases.region}))


def _approve(system: Any, cases: Cases, change_id: str, who: Principal, tag: str) -> dict[str, Any]:
    """``ledger clerk approve CHANGE`` as ``who``."""
    return ap.approve(system.ledger, who, change_id,
                      provenance=Provenance(source="cli", user=who.user, request_id=f"demo-{tag}-approve"))


def _region_counts(reads: ViewReads, cases: Cases) -> dict[str, int]:
    """The region's figures for the year as the views give them: residents and covered (coverage rates), people
    on the gap lists of its townships, people in arrears."""
    areas = reads.areas(cases.region, year=cases.year, as_of=cases.as_of)["townships"]
    gaps = sum(len(reads.gaps(code, year=cases.year, as_of=cases.as_of)) for code in areas)
    arrears = reads.arrears(as_of=cases.as_of, region=cases.region, sort=None)
    return {"residents": sum(t["residents"] for t in areas.values()),
            "covered": sum(t["covered"] for t in areas.values()), "gaps": gaps,
            "in_arrears": len({r["person_id"] for r in arrears})}


def _change(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in before}


def _merge_case(system: Any, cases: Cases, clerk: _Clerk, reads: ViewReads, pipeline: Any
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Merge the mistyped record into the right one: proposed by the clerk, refused to the clerk as approver,
    approved by the approver; then the bureau's payment naming the mistyped number."""
    m, want, ledger = cases.merge, cases.expected["merge"], system.ledger
    kept, merged = m["kept"], m["merged"]
    before = _region_counts(reads, cases)
    proposed = ap.propose_merge(ledger, clerk.who, "RESIDENT_ID", kept.id_number, ap.MergeIn(
        merged_id_number=merged.id_number, merge_kind=m["merge_kind"], reason=m["reason"]),
        provenance=Provenance(source="cli", user=clerk.who.user, request_id="demo-merge-1"))
    change_id = proposed["change_id"]
    pending = _region_counts(reads, cases)
    self_refused = ""
    try:  # the proposing clerk with an approver token of the region: still the same pair of eyes
        _approve(system, cases, change_id, Principal(cases.clerk, Role.APPROVER, frozenset({cases.region})), "merge-self")
    except DomainError as e:
        self_refused = e.code
    _approve(system, cases, change_id, _approver(cases), "merge-1")
    after_merge = _region_counts(reads, cases)
    merged_pid = ledger.person_id("RESIDENT_ID", merged.id_number)
    kept_pid = ledger.person_id("RESIDENT_ID", kept.id_number)
    merged_version = ledger.get_person(merged_pid).version
    pipeline.feed_file(timeline.TAX, cases.later_tax_records)  # the bureau reports a payment under the typo
    pipeline.drain(timeline.TAX)
    after_payment = _region_counts(reads, cases)
    landed = (ledger.get_person(kept_pid).paid_fen_for(str(cases.year)) == want["paid_fen_kept"]
              and ledger.get_person(merged_pid).version == merged_version)
    names = {}
    for who in (kept, merged):  # `ledger history` of either ID shows the merge with both clerks
        report = history_report(ledger, "RESIDENT_ID", who.id_number)
        lines = [e for e in report["events"] if e.get("type") in ("PersonMerged", "PersonMergedInto")]
        names[who.id_number] = bool(lines) and all(n in str(lines) for n in want["history_names"])
    by_merge, by_payment = _change(after_merge, before), _change(after_payment, after_merge)
    check = {
        "ok": (pending == before and by_merge == want["change_by_merge"] and self_refused == want["refused_self_approval"]
               and by_payment == want["change_by_later_payment"] and landed and all(names.values())),
        "expected_change_by_merge": want["change_by_merge"], "change_by_merge": by_merge,
        "expected_change_by_later_payment": want["change_by_later_payment"], "change_by_later_payment": by_payment,
        "moved_while_pending": _change(pending, before), "self_approval_refused": self_refused or "",
        "later_payment_on_kept": landed, "history_names_both_clerks": all(names.values()),
    }
    report = {"kept": mask_id_number(kept.id_number), "merged": mask_id_number(merged.id_number),
              "paid_fen": want["paid_fen_kept"], "change_id": change_id, "clerk": cases.clerk,
              "approver": cases.approver, "self_refused": self_refused, "before": before, "after": after_payment,
              "by_merge": by_merge, "kind": m["merge_kind"]}
    return check, report


def _duplicate_case(system: Any, cases: Cases, clerk: _Clerk) -> tuple[dict[str, Any], dict[str, Any]]:
    """The resident is hired: the employee enrollment is flagged a duplicate; ending the resident one
    (DUPLICATE_RESOLVED) goes through maker-checker with the refund it implies."""
    d, want, ledger = cases.duplicate, cases.expected["duplicate"], system.ledger
    p = d["person"]
    clerk(ENROLL, EnrollmentIn(id_number=p.id_number, name=p.name, scheme="EMPLOYEE", region_code=cases.region,
                               employer_id=d["employer"], effective_date=d["hired_on"]))
    person = ledger.find_person("RESIDENT_ID", p.id_number)
    resident = next(e for e in person.active_enrollments if e.scheme == "RESIDENT")
    flagged = person.has_duplicate_enrollment
    outcome = clerk(END_ENROLLMENT, EndEnrollmentIn(reason="DUPLICATE_RESOLVED", effective_date=d["hired_on"],
                                                    enrollment_id=resident.enrollment_id), id_number=p.id_number)
    change = outcome.change
    person = ledger.find_person("RESIDENT_ID", p.id_number)
    still = person.enrollment(resident.enrollment_id).end_date is None and person.has_duplicate_enrollment
    done = _approve(system, cases, change["change_id"], _approver(cases), "duplicate-1")
    person = ledger.find_person("RESIDENT_ID", p.id_number)
    ended = person.enrollment(resident.enrollment_id)
    refund = done["result"].get("refund_owed_fen")
    check = {
        "ok": (flagged and change["status"] == "PENDING" and still and not change["result"]
               and change["payload"].get("refund_owed_fen") == want["refund_owed_fen"]
               and done["status"] == "APPROVED" and refund == want["refund_owed_fen"]
               and ended.end_reason == "DUPLICATE_RESOLVED" and not person.has_duplicate_enrollment),
        "expected_refund_fen": want["refund_owed_fen"], "refund_fen": refund,
        "proposed_refund_fen": change["payload"].get("refund_owed_fen"), "unchanged_while_pending": still,
        "ended": str(ended.end_reason or ""),
    }
    report = {"person": mask_id_number(p.id_number), "change_id": change["change_id"], "refund_fen": refund,
              "line": ap.change_line(done), "hired_on": d["hired_on"].isoformat()}
    return check, report


def _correction_case(system: Any, cases: Cases, clerk: _Clerk) -> tuple[dict[str, Any], dict[str, Any]]:
    """Refund a month the bank debited twice: above the threshold, pending until the approver approves it."""
    c, want, ledger = cases.correction, cases.expected["correction"], system.ledger
    record = cases.counter_records[0]
    p = c["person"]

    def paid() -> int:
        return ledger.find_person("RESIDENT_ID", p.id_number).paid_fen_for(c["month"])

    before = paid()
    outcome = clerk(PAYMENT_CORRECTION, PaymentCorrectionIn(
        kind="REFUND", voucher_no=record.voucher_no, tax_office=record.tax_office,
        original_voucher_no=record.original_voucher_no, amount_fen=record.amount_fen, corrected_at=record.paid_at,
        reason=record.reason), id_number=p.id_number)
    change = outcome.change or {}
    pending = paid()
    if change.get("change_id"):
        _approve(system, cases, change["change_id"], _approver(cases), "correction-1")
    after = paid()
    check = {
        "ok": (change.get("status") == "PENDING" and before == pending == want["paid_while_pending_fen"]
               and after == want["paid_after_fen"] and record.amount_fen > want["threshold_fen"]),
        "threshold_fen": want["threshold_fen"], "amount_fen": record.amount_fen,
        "status_when_entered": change.get("status", "APPLIED_AT_ONCE"),
        "paid_while_pending_fen": f"{pending}/{want['paid_while_pending_fen']}",
        "paid_after_fen": f"{after}/{want['paid_after_fen']}",
    }
    report = {"person": mask_id_number(p.id_number), "month": c["month"], "amount_fen": record.amount_fen,
              "threshold_fen": want["threshold_fen"], "paid_before_fen": before, "paid_pending_fen": pending,
              "paid_after_fen": after, "change_id": change.get("change_id", "")}
    return check, report


def _fees(reads: ViewReads, cases: Cases, employer: str) -> dict[str, Any]:
    who = Principal(cases.clerk, Role.CLERK, frozenset({cases.region}))
    rows = fees_for(reads, who, as_of=cases.as_of, region=cases.region, grid=None, employer=employer,
                    include_cleared=True)
    return fees_answer(rows, as_of=cases.as_of, region=cases.region, grid=None, employer=employer)


def _late_fee_check(cases: Cases, ledger: Any, before: dict[str, Any], after: dict[str, Any],
                    self_approved: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    want = cases.expected["late_fees"]
    staff = {str(ledger.person_id("RESIDENT_ID", p.id_number)): p.id_number for p in cases.fee_staff}
    got_rows = {(staff[r["person_id"]], r["period"]): r for r in before["fees"] if r["person_id"] in staff}
    rows_ok = got_rows.keys() == want["rows"].keys() and all(
        (got_rows[k]["principal_fen"], got_rows[k]["days"], got_rows[k]["accrued_fen"])
        == (w["principal_fen"], w["days"], w["fee_fen"]) for k, w in want["rows"].items())
    # before the waiver: the January fee collected by the feed, February's still owed
    owed_feb = sum(w["fee_fen"] for (_, m), w in want["rows"].items() if m == cases.fee_waived_month)
    check = {
        "ok": (rows_ok and before["accrued_fen"] == want["owed_after_contributions_fen"]
               and before["fee_paid_fen"] == want["collected_fen"] and before["owed_fen"] == owed_feb
               and after["owed_fen"] == want["owed_at_end_fen"] and after["waived_fen"] == want["waived_fen"]
               and after["fee_paid_fen"] == want["collected_fen"] and self_approved == "WAIVER_SELF_APPROVED"
               and after["owed_while_pending_fen"] == before["owed_fen"]),
        "expected_accrued_fen": want["owed_after_contributions_fen"], "accrued_fen": before["accrued_fen"],
        "expected_collected_fen": want["collected_fen"], "collected_fen": after["fee_paid_fen"],
        "expected_waived_fen": want["waived_fen"], "waived_fen": after["waived_fen"],
        "owed_at_end_fen": after["owed_fen"], "owed_while_pending_fen": after["owed_while_pending_fen"],
        "rows_match": rows_ok, "self_approval_refused": self_approved or "",
    }
    sample = next(iter(sorted(got_rows.items())), (None, {}))[1]
    report = {"employer_id": cases.fee_employer, "staff": len(cases.fee_staff), "months": cases.fee_months,
              "accrued_fen": before["accrued_fen"], "collected_fen": after["fee_paid_fen"],
              "waived_fen": after["waived_fen"], "owed_fen": after["owed_fen"],
              "arithmetic": sample.get("arithmetic", ""),
              # the sample's figures only, for the report to say its arithmetic in its language
              "sample_row": {k: sample[k] for k in (
                  "principal_fen", "days", "fen_days", "rate_ppm_per_day", "accrued_fen", "fee_paid_fen", "owed_fen",
                  "waived", "fee_status") if k in sample},
              "approver": cases.approver,
              "reason": cases.waiver_reason, "self_refused": self_approved or ""}
    return check, report


def _status_check(cases: Cases, reads: ViewReads) -> tuple[dict[str, Any], dict[str, Any]]:
    want = cases.expected["statuses"]
    got: dict[str, dict[str, Any]] = {}
    for key, case in cases.statuses.items():
        person = reads.ledger.find_person("RESIDENT_ID", case["person"].id_number)
        answer = reads.entitlement(person.id, year=cases.year, on=date(cases.year, 1, 2))
        ry = answer["resident_year"] or {}
        got[key] = {"due_fen": ry.get("due_fen"), "subsidy_fen": ry.get("subsidy_fen"),
                    "overpayment_fen": ry.get("overpayment_fen") or 0, "covered": answer["covered"]}
    ok = all(got[k]["due_fen"] == w["due_fen"] and got[k]["overpayment_fen"] == w["overpayment_fen"]
             and (w["subsidy_fen"] == 0 or got[k]["subsidy_fen"] == w["subsidy_fen"]) for k, w in want.items())
    # fully subsidised: covered from 1 Jan with no waiting period
    ok = ok and got["extreme_poverty"]["covered"] is True
    check = {"ok": ok, **{f"{k}_due_fen": f"{got[k]['due_fen']}/{w['due_fen']}" for k, w in want.items()},
             "owed_back_fen": f"{got['owed_back']['overpayment_fen']}/{want['owed_back']['overpayment_fen']}",
             "two_statuses_subsidy_fen": f"{got['two_statuses']['subsidy_fen']}/{want['two_statuses']['subsidy_fen']}"}
    report = {k: {**got[k], "paid_fen": cases.statuses[k]["paid_fen"], "expected": w} for k, w in want.items()}
    return check, report


def _arrears_check(cases: Cases, reads: ViewReads, who: Principal, state_dir: Path | None
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    want = cases.expected["arrears"]
    rows = reads.arrears(as_of=cases.as_of, region=cases.region, sort="outstanding_fen")
    totals = employer_totals(rows)
    mine = next((t for t in totals if t["employer_id"] == cases.arrears_employer), None)
    body = ledger_exports.arrears_file(rows, totals, "xlsx")
    path = None
    if state_dir is not None:
        path = Path(state_dir) / "arrears.xlsx"
        path.write_bytes(body)
    from openpyxl import load_workbook  # only for reading the export back

    sheet = load_workbook(io.BytesIO(body), read_only=True)["单位欠费合计"]
    lines = list(sheet.iter_rows(values_only=True))
    header, data = lines[0], lines[1:]
    sheet_row = next((r for r in data if any(str(c or "").endswith(cases.arrears_employer) for c in r)), None)
    total_col = next((i for i, h in enumerate(header) if h == "合计（元）"), None)
    in_sheet = (float(sheet_row[total_col]) if sheet_row is not None and total_col is not None else None)
    cleared = all(t["employer_id"] != cases.fee_employer for t in totals)
    check = {
        "ok": (mine is not None and mine["outstanding_fen"] == want["outstanding_fen"]
               and mine["late_fee_fen"] == want["late_fee_fen"] and mine["persons"] == want["persons"]
               and len(data) == len(totals) and in_sheet is not None
               and round(in_sheet * 100) == want["total_fen"] and cleared),
        "expected_total_fen": want["total_fen"], "total_fen": mine["total_fen"] if mine else None,
        "employers": len(totals), "xlsx_rows": len(data), "fees_cleared_employer_absent": cleared,
    }
    report = {"employers": [{k: t[k] for k in ("employer_id", "persons", "outstanding_fen", "late_fee_fen",
                                               "total_fen", "days_overdue")} | {"months": len(t["months"])}
                            for t in totals[:5]],
              "count": len(totals), "total_fen": sum(t["total_fen"] for t in totals),
              "path": str(path) if path else "", "employer_id": cases.arrears_employer}
    return check, report


def _statement_check(cases: Cases, system: Any, state_dir: Path | None, reconcile: Callable[[Any, int], Any]
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    want = cases.expected["statements"]
    data = statements_csv(cases)
    name = "statements-demo.csv"
    if state_dir is not None:
        path = Path(state_dir) / name
        path.write_bytes(data)
        data = read_file(path, FEED_SHEET)  # as `ledger feed statements FILE` reads it
    feed = file_feed(system, "statements", data, name)
    if system.settings.kafka_bootstrap_servers:
        reconcile(system, feed.sent)
    store = store_of(system)
    ids = sorted({r["statement_id"] for r in cases.statements})
    states = store.statements(ids)
    reconciled = sum(1 for s in states.values() if s["state"] == "RECONCILED")
    missing = missing_statements(store, as_of=cases.as_of, due_days=statement_due_days(), region=cases.region)
    got = [{k: m[k] for k in ("business_date", "tax_office", "region_code", "ledger_rows", "recorded_fen")}
           for m in missing]
    check = {
        "ok": not feed.bad and reconciled == want["sent"] == len(states) and got == want["missing"],
        "statements": want["sent"], "reconciled": reconciled, "bad_lines": len(feed.bad),
        "expected_missing": ", ".join(m["business_date"] for m in want["missing"]),
        "missing": ", ".join(m["business_date"] for m in got) or "—",
    }
    report = {"file": name, "statements": want["sent"], "lines": want["lines"], "reconciled": reconciled,
              "missing": missing}
    return check, report


__all__ = ["migration_csv", "run_cases", "statements_csv"]
