"""Clerk commands (医保经办): enroll, assess, correct a payment, transfer, end, move the account.

Each answers with the command's Outcome: 201 when something was recorded, 200 with
``applied: false`` when nothing changed (a resend, or the state already says so). A
clerk acts only in their own regions: the region of the enrollment being created, or
the region the person is enrolled in now.

**Resends.** Send the same ``X-Request-ID`` when retrying a command (a timeout, a
double click): the ledger finds the events that request id already produced for the
person and answers 200 ``applied: false`` instead of doing it twice. The same request id
with a different command or body is refused (409 ``REQUEST_ID_REUSED``).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from ledger.application import Outcome
from ledger.domain.chain import content_digest
from ledger.domain.errors import Conflict, DomainError
from ledger.domain.person import Person, voucher_key
from ledger.http import deps
from ledger.http.access import acting_region
from ledger.http.auth import Principal, Role
from ledger.http.models import (
    AccountEntryIn,
    EmployeeAssessmentIn,
    EndEnrollmentIn,
    EnrollmentIn,
    ErrorOut,
    OutcomeOut,
    PaymentCorrectionIn,
    ResidentAssessmentIn,
    TransferInIn,
    TransferOutIn,
)
from ledger.log import get_logger
from ledger.records import Provenance, TaxPaymentRecord

log = get_logger("ledger.http.commands")

ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"model": OutcomeOut, "description": "nothing changed: a resend, or already so (`applied: false`)"},
    401: {"model": ErrorOut, "description": "no usable bearer token"},
    403: {"model": ErrorOut, "description": "not a clerk, or not a clerk of this region"},
    404: {"model": ErrorOut, "description": "unknown person, or no policy table for the year"},
    409: {"model": ErrorOut, "description": "contradicts the ledger (already enrolled, voucher conflict, ...)"},
    422: {"model": ErrorOut, "description": "a rule or the body's shape is broken; `code` says which"},
}

router = APIRouter(tags=["clerk commands (经办)"], responses=ERRORS)


# ---------------------------------------------------------------------------- helpers
def clerk(who: Principal = Depends(deps.principal)) -> Principal:
    who.require_role(Role.CLERK, action="issue ledger commands")
    return who


def request_key(command: str, identity: tuple[str, str], body: BaseModel) -> str:
    """A digest of what was asked, kept in the events' provenance to tell a resend from a reused request id."""
    digest = content_digest({"command": command, "identity": list(identity), "body": body.model_dump(mode="json")})
    return f"api:{command}:{digest[:32]}"


def earlier_outcome(ledger: Any, person_id: UUID, who: Principal, request_id: str, key: str) -> Outcome | None:
    """The outcome of this request id's first delivery, if its events are already recorded."""
    try:
        events = list(ledger.events.get(person_id))
    except Exception:  # pragma: no cover - a read failure is not a reason to refuse the command
        return None
    mine = [e for e in events if getattr(e, "provenance", {}).get("request_id") == request_id
            and e.provenance.get("user") == who.user and e.provenance.get("source") == "api"]
    if not mine:
        return None
    if any(e.provenance.get("record_key") != key for e in mine):
        raise Conflict(
            "REQUEST_ID_REUSED",
            f"request id {request_id} was already used for another command or body; use a new X-Request-ID",
            request_id=request_id,
        )
    when = mine[0].timestamp.isoformat(timespec="seconds")
    return Outcome(person_id, False, f"request {request_id} was already applied at {when}; nothing changed",
                   [str(e.event_id) for e in mine])


def execute(
    request: Request,
    response: Response,
    who: Principal,
    *,
    command: str,
    person_id: UUID,
    identity: tuple[str, str],
    body: BaseModel,
    region: str | None,
    run: Callable[[Provenance], Outcome],
) -> OutcomeOut:
    """Scope check, resend check, run, answer 201 / 200."""
    who.require_region(region)
    key = request_key(command, identity, body)
    prov = deps.provenance(request, who, record_key=key)
    ledger = request.app.state.system.ledger
    given = request.state.request_id_given
    outcome = earlier_outcome(ledger, person_id, who, prov.request_id, key) if given else None
    if outcome is None:
        try:
            outcome = run(prov)
        except Conflict:
            # A resend that raced its first delivery finds that delivery's events now.
            outcome = earlier_outcome(ledger, person_id, who, prov.request_id, key) if given else None
            if outcome is None:
                raise
    log.info("command", command=command, person_id=str(person_id), region=region, applied=outcome.applied,
             events=len(outcome.event_ids))
    response.status_code = 201 if outcome.applied else 200
    return OutcomeOut(applied=outcome.applied, message=outcome.message, event_ids=outcome.event_ids,
                      person_id=str(outcome.person_id) if outcome.person_id else None)


def _person(request: Request, id_type: str, id_number: str) -> Person:
    return request.app.state.system.ledger.find_person(id_type, id_number)


# ---------------------------------------------------------------------------- routes
@router.post("/enrollments", status_code=201, response_model=OutcomeOut,
             summary="Register (if new) and enroll a person (参保登记)")
def enroll(body: EnrollmentIn, request: Request, response: Response, who: Principal = Depends(clerk)) -> OutcomeOut:
    """Registers the person if the ledger does not know them, then enrolls them in the scheme
    in ``region_code`` (which must be one of the clerk's regions). Enrolling in another scheme or
    region while an enrollment is in force is recorded and flagged as a duplicate (重复参保);
    the same scheme and region again is 409 ``ALREADY_ENROLLED``."""
    ledger = request.app.state.system.ledger
    person_id = ledger.person_id(body.id_type, body.id_number)
    return execute(
        request, response, who, command="enroll", person_id=person_id, identity=(body.id_type, body.id_number),
        body=body, region=body.region_code,
        run=lambda prov: ledger.enroll(
            id_type=body.id_type, id_number=body.id_number, name=body.name, scheme=body.scheme,
            region_code=body.region_code, grid_code=body.grid_code, flexible=body.flexible,
            employer_id=body.employer_id, channel="COUNTER", effective_date=body.effective_date, provenance=prov),
    )


@router.post("/transfers/in", status_code=201, response_model=OutcomeOut,
             summary="Transfer a person in from another region (医保关系转入)")
def transfer_in(body: TransferInIn, request: Request, response: Response, who: Principal = Depends(clerk)) -> OutcomeOut:
    """Credits the personal-account balance and contribution months the sending region carried,
    then enrolls the person here (channel ``TRANSFER_IN``); registers them if new."""
    ledger = request.app.state.system.ledger
    person_id = ledger.person_id(body.id_type, body.id_number)
    return execute(
        request, response, who, command="transfer_in", person_id=person_id,
        identity=(body.id_type, body.id_number), body=body, region=body.region_code,
        run=lambda prov: ledger.transfer_in(
            id_type=body.id_type, id_number=body.id_number, name=body.name, transfer_id=body.transfer_id,
            counterpart_region=body.counterpart_region, account_balance_fen=body.account_balance_fen,
            contribution_months=body.contribution_months, scheme=body.scheme, region_code=body.region_code,
            grid_code=body.grid_code, flexible=body.flexible, employer_id=body.employer_id,
            effective_date=body.effective_date, provenance=prov),
    )


@router.post("/persons/{id_type}/{id_number}/assessments/resident-year", status_code=201, response_model=OutcomeOut,
             summary="Assess a resident coverage year (城乡居民缴费核定)")
def assess_resident_year(id_type: str, id_number: str, body: ResidentAssessmentIn, request: Request,
                         response: Response, who: Principal = Depends(clerk)) -> OutcomeOut:
    """What the person owes for ``year`` under the region's policy table, subsidies applied.
    Assessing again with nothing changed records nothing (200, ``applied: false``); a year
    without a policy table is 404 ``POLICY_YEAR_UNKNOWN``."""
    person = _person(request, id_type, id_number)
    ledger = request.app.state.system.ledger
    return execute(
        request, response, who, command="assess_resident_year", person_id=person.id,
        identity=(id_type, id_number), body=body, region=acting_region(person),
        run=lambda prov: ledger.assess_resident_year(person.id, body.year, provenance=prov,
                                                     effective_date=body.effective_date),
    )


@router.post("/persons/{id_type}/{id_number}/assessments/employee-month", status_code=201, response_model=OutcomeOut,
             summary="Assess an employee-scheme month (职工缴费核定)")
def assess_employee_month(id_type: str, id_number: str, body: EmployeeAssessmentIn, request: Request,
                          response: Response, who: Principal = Depends(clerk)) -> OutcomeOut:
    """Employer and employee shares of ``month`` on the declared contribution base (clamped to the
    policy's 60%-300% of the average wage)."""
    person = _person(request, id_type, id_number)
    ledger = request.app.state.system.ledger
    return execute(
        request, response, who, command="assess_employee_month", person_id=person.id,
        identity=(id_type, id_number), body=body, region=acting_region(person),
        run=lambda prov: ledger.assess_employee_month(person.id, body.month, declared_base_fen=body.declared_base_fen,
                                                      provenance=prov, effective_date=body.effective_date),
    )


@router.post("/persons/{id_type}/{id_number}/payment-corrections", status_code=201, response_model=OutcomeOut,
             summary="Record a counter refund or reversal of a payment (窗口退费/冲正)")
def correct_payment(id_type: str, id_number: str, body: PaymentCorrectionIn, request: Request,
                    response: Response, who: Principal = Depends(clerk)) -> OutcomeOut:
    """A new record (channel ``COUNTER``) pointing at the original voucher; nothing is edited.
    A refund returns part or all of what remains paid; a reversal (冲正) cancels exactly what
    remains. The clerk must serve the region the original payment was made for."""
    person = _person(request, id_type, id_number)
    ledger = request.app.state.system.ledger
    original_office = body.original_tax_office or body.tax_office
    original = person.payments.get(voucher_key(original_office, body.original_voucher_no))
    if original is None:
        raise DomainError(
            f"{body.kind}_UNKNOWN_VOUCHER",
            f"the original voucher {body.original_voucher_no} (office {original_office}) is not recorded for this person",
            voucher_no=body.original_voucher_no,
        )
    record = TaxPaymentRecord(
        voucher_no=body.voucher_no, tax_office=body.tax_office, id_type=person.id_type, id_number=person.id_number,
        name=person.name, region_code=original["region_code"], levy_item=original["levy_item"],
        period_start=original["period_start"], period_end=original["period_end"], amount_fen=body.amount_fen,
        paid_at=body.corrected_at or datetime.now(timezone.utc), channel="COUNTER", kind=body.kind,
        original_voucher_no=body.original_voucher_no, original_tax_office=original_office, reason=body.reason,
    )
    return execute(
        request, response, who, command="payment_correction", person_id=person.id,
        identity=(id_type, id_number), body=body, region=original["region_code"],
        run=lambda prov: ledger.record_tax_record(record, provenance=prov),
    )


@router.post("/persons/{id_type}/{id_number}/transfers/out", status_code=201, response_model=OutcomeOut,
             summary="Transfer a person out to another region (医保关系转出)")
def transfer_out(id_type: str, id_number: str, body: TransferOutIn, request: Request, response: Response,
                 who: Principal = Depends(clerk)) -> OutcomeOut:
    """Ends the enrollment in force and records the balance and contribution months carried."""
    person = _person(request, id_type, id_number)
    ledger = request.app.state.system.ledger
    return execute(
        request, response, who, command="transfer_out", person_id=person.id, identity=(id_type, id_number),
        body=body, region=acting_region(person),
        run=lambda prov: ledger.transfer_out(person.id, transfer_id=body.transfer_id,
                                             counterpart_region=body.counterpart_region,
                                             effective_date=body.effective_date, provenance=prov),
    )


@router.post("/persons/{id_type}/{id_number}/enrollments/end", status_code=201, response_model=OutcomeOut,
             summary="End an enrollment (终止参保)")
def end_enrollment(id_type: str, id_number: str, body: EndEnrollmentIn, request: Request, response: Response,
                   who: Principal = Depends(clerk)) -> OutcomeOut:
    """Ends the enrollment in force, or the one ``enrollment_id`` names (e.g. resolving a
    duplicate, reason ``DUPLICATE_RESOLVED``). The clerk must serve that enrollment's region."""
    person = _person(request, id_type, id_number)
    ledger = request.app.state.system.ledger
    region = person.enrollment(body.enrollment_id)["region_code"] if body.enrollment_id else acting_region(person)
    return execute(
        request, response, who, command="end_enrollment", person_id=person.id, identity=(id_type, id_number),
        body=body, region=region,
        run=lambda prov: ledger.end_enrollment(person.id, reason=body.reason, effective_date=body.effective_date,
                                               provenance=prov, enrollment_id=body.enrollment_id),
    )


@router.post("/persons/{id_type}/{id_number}/account/credits", status_code=201, response_model=OutcomeOut,
             summary="Credit the personal account (个人账户划入)")
def credit_account(id_type: str, id_number: str, body: AccountEntryIn, request: Request, response: Response,
                   who: Principal = Depends(clerk)) -> OutcomeOut:
    """Adds ``amount_fen`` to the personal account. Retry with the same ``X-Request-ID``: a
    credit is not idempotent by itself."""
    person = _person(request, id_type, id_number)
    ledger = request.app.state.system.ledger
    return execute(
        request, response, who, command="account_credit", person_id=person.id, identity=(id_type, id_number),
        body=body, region=acting_region(person),
        run=lambda prov: ledger.credit_account(person.id, amount_fen=body.amount_fen, reason=body.reason,
                                               reference=body.reference, effective_date=body.effective_date,
                                               provenance=prov),
    )


@router.post("/persons/{id_type}/{id_number}/account/debits", status_code=201, response_model=OutcomeOut,
             summary="Debit the personal account (个人账户支出, 家庭共济)")
def debit_account(id_type: str, id_number: str, body: AccountEntryIn, request: Request, response: Response,
                  who: Principal = Depends(clerk)) -> OutcomeOut:
    """Takes ``amount_fen`` from the personal account (never below zero). Family mutual aid
    (``FAMILY_MUTUAL_AID``) names the relative and the relationship."""
    person = _person(request, id_type, id_number)
    ledger = request.app.state.system.ledger
    return execute(
        request, response, who, command="account_debit", person_id=person.id, identity=(id_type, id_number),
        body=body, region=acting_region(person),
        run=lambda prov: ledger.debit_account(person.id, amount_fen=body.amount_fen, reason=body.reason,
                                              reference=body.reference, effective_date=body.effective_date,
                                              provenance=prov, relative_person_id=body.relative_person_id,
                                              relative_relationship=body.relative_relationship),
    )
