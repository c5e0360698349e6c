"""The tax bureau's integration (税务对接): post collection records over HTTP.

The same records the Kafka feed ``tax.payments.v1`` carries, for an integration that
cannot produce to Kafka. Exactly once per voucher (number + tax office): a resend
answers 200 ``applied: false``; the same voucher with other content is 409
``VOUCHER_CONFLICT``, not applied, and kept as a dead letter (``details.dead_letter_id``;
``ledger dlq list``, with the conflicts from the Kafka feed). The integration reads nothing.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from ledger.domain.errors import Conflict
from entrypoints.http.outcome_words import outcome_text
from entrypoints.http.errors import request_lang
from entrypoints.http import deps
from entrypoints.http.auth import Principal, Role
from entrypoints.http.models import ErrorOut, OutcomeOut, TaxPaymentIn
from ledger.log import get_logger
from ledger.inbound_records import TaxPaymentRecord

log = get_logger("entrypoints.http.tax")

router = APIRouter(tags=["tax bureau feed (税务)"], responses={
    200: {"model": OutcomeOut, "description": "the voucher was already recorded (`applied: false`)"},
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut},
    409: {"model": ErrorOut, "description": "the voucher was recorded with other content"},
    413: {"model": ErrorOut, "description": "body over 64 KiB (BODY_TOO_LARGE), refused unread"},
    422: {"model": ErrorOut},
})


def tax_integration(who: Principal = Depends(deps.principal)) -> Principal:
    who.require_role(Role.TAX_INTEGRATION, action="post tax collection records")
    return who


@router.post("/tax/payments", status_code=201, response_model=OutcomeOut,
             summary="Record a tax collection record: payment, refund or reversal (税务征收回传)")
def record_tax_payment(body: TaxPaymentIn, request: Request, response: Response,
                       who: Principal = Depends(tax_integration)) -> OutcomeOut:
    """A payment for a person the ledger has never seen registers and enrolls them (resident
    scheme). A refund or reversal names ``original_voucher_no``. ``region_code`` must be one
    of the integration's regions."""
    who.require_region(body.region_code)
    ledger = request.app.state.system.ledger
    record = TaxPaymentRecord(
        voucher_no=body.voucher_no, tax_office=body.tax_office, id_type=body.id_type, id_number=body.id_number,
        name=body.name, region_code=body.region_code, levy_item=body.levy_item, period_start=body.period_start,
        period_end=body.period_end, amount_fen=body.amount_fen, paid_at=body.paid_at, credited_on=body.credited_on,
        channel=body.channel, kind=body.kind, original_voucher_no=body.original_voucher_no,
        original_tax_office=body.original_tax_office, reason=body.reason,
    )
    try:
        outcome = ledger.record_tax_record(record, provenance=deps.provenance(
            request, who, record_key=f"{body.tax_office}|{body.voucher_no}"))
    except Conflict as e:
        log.warning("tax_record_conflict", code=e.code, voucher_no=body.voucher_no, tax_office=body.tax_office)
        raise
    log.info("tax_record", voucher_no=body.voucher_no, tax_office=body.tax_office, kind=body.kind,
             applied=outcome.applied)
    response.status_code = 201 if outcome.applied else 200
    return OutcomeOut(applied=outcome.applied, message=outcome_text(outcome.message, request_lang(request)), event_ids=outcome.event_ids,
                      person_id=str(outcome.person_id) if outcome.person_id else None)
