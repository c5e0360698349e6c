"""Clerk commands (医保经办): enroll, assess, correct a payment, transfer, end, move the account,
grant or revoke a subsidised status.

Each answers with the command's Outcome: 201 when something was recorded, 200 with
``applied: false`` when nothing changed (a resend, or the state already says so). A
clerk acts only in their own regions: the region of the enrollment being created, or
the region the person is enrolled in now.

**Resends.** Send the same ``X-Request-ID`` when retrying a command (a timeout, a
double click): the ledger finds the events that request id already produced for the
person and answers 200 ``applied: false`` instead of doing it twice. The same request id
with a different command or body is refused (409 ``REQUEST_ID_REUSED``).

What each command does is :mod:`entrypoints.http.commands`, which ``ledger clerk`` shares.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from entrypoints.http.outcome_words import outcome_text
from entrypoints.http.errors import request_lang
from entrypoints.http import commands as c
from entrypoints.http import deps
from entrypoints.http.auth import Principal
from entrypoints.http.models import (
    AccountEntryIn,
    EmployeeAssessmentIn,
    EndEnrollmentIn,
    EnrollmentIn,
    ErrorOut,
    OutcomeOut,
    PaymentCorrectionIn,
    ResidentAssessmentIn,
    StatusGrantIn,
    StatusRevokeIn,
    TransferCancelIn,
    TransferInIn,
    TransferRequestIn,
    TransferOutIn,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"model": OutcomeOut, "description": "nothing changed: a resend, or already so (`applied: false`)"},
    202: {"model": OutcomeOut, "description": "recorded as a pending change (`change`, 待审核): an enrollment end, or "
          "a payment correction / account debit above the policy's threshold, is carried out once an approver of "
          "the region approves it (POST /changes/{change_id}/approve)"},
    401: {"model": ErrorOut, "description": "no usable bearer token"},
    403: {"model": ErrorOut, "description": "not a clerk, or not a clerk of this region"},
    404: {"model": ErrorOut, "description": "unknown person, or no policy table for the year"},
    409: {"model": ErrorOut, "description": "contradicts the ledger (already enrolled, voucher conflict, ...)"},
    413: {"model": ErrorOut, "description": "body over 64 KiB (BODY_TOO_LARGE), refused unread"},
    422: {"model": ErrorOut, "description": "a rule or the body's shape is broken; `code` says which "
          "(BODY_TOO_COMPLEX: too many keys or nested too deep)"},
}

router = APIRouter(tags=["clerk commands (经办)"], responses=ERRORS)


# ---------------------------------------------------------------------------- helpers
def clerk(who: Principal = Depends(deps.principal)) -> Principal:
    return c.require_clerk(who)


def answer(request: Request, response: Response, who: Principal, command: c.Command, body: BaseModel,
           id_type: str | None = None, id_number: str | None = None) -> OutcomeOut:
    """Carry the command out (:func:`entrypoints.http.commands.carry_out`); 201 when recorded, 200 when not."""
    outcome = c.carry_out(
        request.app.state.system.ledger, who, command, body, id_type=id_type, id_number=id_number,
        provenance=lambda key: deps.provenance(request, who, record_key=key),
        request_id_given=request.state.request_id_given)
    # 202: recorded as a pending change (maker-checker), carried out once another clerk approves it.
    response.status_code = (202 if outcome.change is not None else 201) if outcome.applied else 200
    return OutcomeOut(applied=outcome.applied, message=outcome_text(outcome.message, request_lang(request)), event_ids=outcome.event_ids,
                      person_id=str(outcome.person_id) if outcome.person_id else None, change=outcome.change)


# ---------------------------------------------------------------------------- routes
@router.post("/enrollments", status_code=201, response_model=OutcomeOut,
             summary="Register (if new) and enroll a person (参保登记)")
def enroll(body: EnrollmentIn, request: Request, response: Response, who: Principal = Depends(clerk)) -> OutcomeOut:
    """Registers the person if the ledger does not know them, then enrolls them in the scheme
    in ``region_code`` (which must be one of the clerk's regions). Enrolling in another scheme or
    region while an enrollment is in force is recorded and flagged as a duplicate (重复参保);
    the same scheme and region again is 409 ``ALREADY_ENROLLED``."""
    return answer(request, response, who, c.ENROLL, body)


@router.post("/transfers/in", status_code=201, response_model=OutcomeOut,
             summary="Transfer a person in from another region (医保关系转入)")
def transfer_in(body: TransferInIn, request: Request, response: Response, who: Principal = Depends(clerk)) -> OutcomeOut:
    """Receives the personal-account balance and contribution months the sending region's out half
    sent (leave the figures out: they are taken from it; figures that differ are 422
    ``TRANSFER_MISMATCH``), then enrolls the person here (channel ``TRANSFER_IN``; a
    resident-to-resident transfer from the next coverage year). A sending region of this ledger
    without its out half is 422 ``TRANSFER_OUT_MISSING``; from another province, state the
    figures of the source document (marked external). Registers the person if new."""
    return answer(request, response, who, c.TRANSFER_IN, body)


@router.post("/persons/{id_type}/{id_number}/assessments/resident-year", status_code=201, response_model=OutcomeOut,
             summary="Assess a resident coverage year (城乡居民缴费核定)")
def assess_resident_year(id_type: str, id_number: str, body: ResidentAssessmentIn, request: Request,
                         response: Response, who: Principal = Depends(clerk)) -> OutcomeOut:
    """What the person owes for ``year`` under the region's policy table, subsidies applied.
    Assessing again with nothing changed records nothing (200, ``applied: false``); a year
    without a policy table is 404 ``POLICY_YEAR_UNKNOWN``."""
    return answer(request, response, who, c.ASSESS_RESIDENT_YEAR, body, id_type, id_number)


@router.post("/persons/{id_type}/{id_number}/assessments/employee-month", status_code=201, response_model=OutcomeOut,
             summary="Assess an employee-scheme month (职工缴费核定)")
def assess_employee_month(id_type: str, id_number: str, body: EmployeeAssessmentIn, request: Request,
                          response: Response, who: Principal = Depends(clerk)) -> OutcomeOut:
    """Employer and employee shares of ``month`` on the declared contribution base (clamped to the
    policy's 60%-300% of the average wage)."""
    return answer(request, response, who, c.ASSESS_EMPLOYEE_MONTH, body, id_type, id_number)


@router.post("/persons/{id_type}/{id_number}/payment-corrections", status_code=201, response_model=OutcomeOut,
             summary="Record a counter refund or reversal of a payment (窗口退费/冲正)")
def correct_payment(id_type: str, id_number: str, body: PaymentCorrectionIn, request: Request,
                    response: Response, who: Principal = Depends(clerk)) -> OutcomeOut:
    """A new record (channel ``COUNTER``) pointing at the original voucher; nothing is edited.
    A refund returns part or all of what remains paid; a reversal (冲正) cancels exactly what
    remains. The clerk must serve the region the original payment was made for."""
    return answer(request, response, who, c.PAYMENT_CORRECTION, body, id_type, id_number)


@router.post("/persons/{id_type}/{id_number}/transfers/out", status_code=201, response_model=OutcomeOut,
             summary="Transfer a person out to another region (医保关系转出)")
def transfer_out(id_type: str, id_number: str, body: TransferOutIn, request: Request, response: Response,
                 who: Principal = Depends(clerk)) -> OutcomeOut:
    """Suspends (中止) the enrollment in force and sends the personal-account balance and
    contribution months: they leave this region until the receiving region's transfer-in
    takes them, or the transfer is cancelled."""
    return answer(request, response, who, c.TRANSFER_OUT, body, id_type, id_number)


@router.post("/persons/{id_type}/{id_number}/transfers/request", status_code=201, response_model=OutcomeOut,
             summary="Record a transfer request at the receiving region (转移接续申请)")
def transfer_request(id_type: str, id_number: str, body: TransferRequestIn, request: Request, response: Response,
                     who: Principal = Depends(clerk)) -> OutcomeOut:
    """The person applied here (``region_code``, the clerk's region) to move their insurance from
    ``counterpart_region``, where it is in force: the sending region's time limit starts, and the
    request shows in both regions' transfer lists until the transfer-out answers it."""
    return answer(request, response, who, c.TRANSFER_REQUEST, body, id_type, id_number)


@router.post("/persons/{id_type}/{id_number}/transfers/cancel", status_code=201, response_model=OutcomeOut,
             summary="Cancel or reject an open transfer (转移撤销/拒绝接收)")
def transfer_cancel(id_type: str, id_number: str, body: TransferCancelIn, request: Request, response: Response,
                    who: Principal = Depends(clerk)) -> OutcomeOut:
    """The sending region cancels its transfer-out, or (``rejected: true``) the receiving region
    rejects it, with a reason: the suspended enrollment resumes and the balance and months return."""
    return answer(request, response, who, c.TRANSFER_CANCEL, body, id_type, id_number)


@router.post("/persons/{id_type}/{id_number}/enrollments/end", status_code=201, response_model=OutcomeOut,
             summary="End an enrollment (终止参保)")
def end_enrollment(id_type: str, id_number: str, body: EndEnrollmentIn, request: Request, response: Response,
                   who: Principal = Depends(clerk)) -> OutcomeOut:
    """Ends the enrollment in force, or the one ``enrollment_id`` names (e.g. resolving a
    duplicate, reason ``DUPLICATE_RESOLVED``). The clerk must serve that enrollment's region."""
    return answer(request, response, who, c.END_ENROLLMENT, body, id_type, id_number)


@router.post("/persons/{id_type}/{id_number}/account/credits", status_code=201, response_model=OutcomeOut,
             summary="Credit the personal account (个人账户划入)")
def credit_account(id_type: str, id_number: str, body: AccountEntryIn, request: Request, response: Response,
                   who: Principal = Depends(clerk)) -> OutcomeOut:
    """Adds ``amount_fen`` to the personal account. Retry with the same ``X-Request-ID``: a
    credit is not idempotent by itself."""
    return answer(request, response, who, c.ACCOUNT_CREDIT, body, id_type, id_number)


@router.post("/persons/{id_type}/{id_number}/account/debits", status_code=201, response_model=OutcomeOut,
             summary="Debit the personal account (个人账户支出, 家庭共济)")
def debit_account(id_type: str, id_number: str, body: AccountEntryIn, request: Request, response: Response,
                  who: Principal = Depends(clerk)) -> OutcomeOut:
    """Takes ``amount_fen`` from the personal account (never below zero). Family mutual aid
    (``FAMILY_MUTUAL_AID``) names the relative and the relationship."""
    return answer(request, response, who, c.ACCOUNT_DEBIT, body, id_type, id_number)


@router.post("/statuses", status_code=201, response_model=OutcomeOut,
             summary="Grant a subsidised-group status from its certificate (资助参保身份认定录入)")
def grant_status(body: StatusGrantIn, request: Request, response: Response,
                 who: Principal = Depends(clerk)) -> OutcomeOut:
    """The civil-affairs feed's own command (the same events, rules and re-assessment of the years the
    status touches), entered by a clerk from the certificate: category, valid from/to, issuing
    department and ``document_no`` (the status's key: the same certificate again is 200
    ``applied: false``, with other content 409 ``GRANT_CONFLICT``/``RECORD_CONFLICT``). The events carry
    the clerk and the request (``provenance.source`` ``api``), not a feed position. A person the ledger
    does not know is registered. The clerk must serve the person's region (where enrolled, else where
    living), else ``region_code``. An unknown category is 422 ``SUBSIDY_CATEGORY_UNKNOWN``."""
    return answer(request, response, who, c.GRANT_STATUS, body)


@router.post("/persons/{id_type}/{id_number}/statuses/revoke", status_code=201, response_model=OutcomeOut,
             summary="Revoke a subsidised-group status from a date (资助参保身份取消)")
def revoke_status(id_type: str, id_number: str, body: StatusRevokeIn, request: Request, response: Response,
                  who: Principal = Depends(clerk)) -> OutcomeOut:
    """Ends the status ``grant_id`` (its certificate number) from ``revoked_from``, with the revoking
    document; the years it touches are assessed again. Revoking again from the same day is 200
    ``applied: false``; an unknown status is 422 ``GRANT_UNKNOWN``."""
    return answer(request, response, who, c.REVOKE_STATUS, body, id_type, id_number)
