"""Person reads: the ledger state of one person, their entitlement, their full history.

Who may read a person: the clerks of a region the person is enrolled in or lives in,
auditors, and the grid workers of the grid the person lives or is enrolled in. The
full ID number is shown only to those clerks and to auditors; grid workers see it
masked (``6109**********1234``). The event history is for auditors only.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from ledger.domain.chain import GENESIS_HASH, canonical, event_digest, event_fields
from ledger.domain.history import Enrollment, Payment, item_to_plain
from ledger.domain.person import Person, business_date
from entrypoints.http.coverage_reasons import reason_text
from entrypoints.http import deps
from entrypoints.http.errors import request_lang
from entrypoints.http.access import person_access
from entrypoints.http.auth import Principal, Role
from entrypoints.http.models import ErrorOut, IsoDate
from ledger.log import get_logger, mask_id_number

log = get_logger("entrypoints.http.persons")

router = APIRouter(tags=["persons (参保人)"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut},
    404: {"model": ErrorOut, "description": "unknown person (PERSON_NOT_FOUND) or year (POLICY_YEAR_UNKNOWN)"},
    422: {"model": ErrorOut, "description": "bad ID number, malformed date (DATE_INVALID)"},
})

_ENVELOPE = {"originator_id", "originator_version", "timestamp", "event_id", "effective_date", "provenance",
             "prev_hash"}


def today() -> date:
    """Today's business date (China Standard Time)."""
    return business_date(datetime.now(timezone.utc))


def readable_person(request: Request, who: Principal, id_type: str, id_number: str) -> tuple[Person, bool]:
    """The person if ``who`` may read them, and whether the full ID number may be shown."""
    who.require_role(Role.CLERK, Role.AUDITOR, Role.GRID_WORKER, Role.APPROVER, action="read persons")
    person = request.app.state.system.ledger.find_person(id_type, id_number)
    return person, person_access(who, person)


def _payment(key: str, p: Payment) -> dict[str, Any]:
    """A payment as the person read shows it: its facts, with what was refunded and whether it was reversed."""
    return {**item_to_plain(p), "tax_office": p.tax_office or key.split("|", 1)[0], "refunded_fen": p.refunded_fen,
            "reversed": p.reversed}


def _corrections(person: Person) -> list[dict[str, Any]]:
    """Every refund (退费) and reversal (冲正) voucher, naming the payment it corrects (``original``)."""
    out = []
    for key, p in person.payments.items():
        for kind, correction in [("REFUND", r) for r in p.refunds] + ([("REVERSAL", p.reversal)] if p.reversal else []):
            out.append({"kind": kind, "original": key, **item_to_plain(correction)})
    return out


def _enrollment(e: Enrollment, person: Person) -> dict[str, Any]:
    """An enrollment as the person read shows it. One suspended (中止) by an open transfer-out is not
    ended (终止) until the in half arrives: the history keeps the out date as its provisional end (what
    coverage reads), shown here as ``suspended_on`` with no end."""
    plain = item_to_plain(e)
    plain.setdefault("suspended_by", None)
    if e.suspended_by is not None and getattr(person.transfers.get(e.suspended_by), "status", None) == "OUT_COMPLETED":
        plain.update(end_date=None, end_reason=None, end_event_id=None, suspended_on=e.end_date)
    return plain


def person_payload(person: Person, full_id: bool) -> dict[str, Any]:
    paid_periods = set(person.assessments) | {k for p in person.payments.values() for k in p.periods}
    return {
        "person_id": str(person.id),
        "id_type": person.id_type,
        "id_number": person.id_number if full_id else mask_id_number(person.id_number),
        "name": person.name,
        "birth_date": person.birth_date,
        "sex": person.sex,
        "household_grid": person.household_grid,
        "residence_status": person.residence_status,
        "enrollments": [_enrollment(e, person) for e in person.enrollments],
        "duplicate_enrollment": person.has_duplicate_enrollment,
        "assessments": [item_to_plain(a) for a in person.assessments.values()],
        "payments": [_payment(k, p) for k, p in person.payments.items()],
        "refunds": _corrections(person),
        "paid_fen": {period: person.paid_fen_for(period) for period in sorted(paid_periods)},
        "subsidies": [item_to_plain(g) for g in person.subsidies.values()],
        "account_balance_fen": person.account_balance_fen,
        "contribution_months": person.contribution_months,
        "transfers": [item_to_plain(t) for t in person.transfers.values()],
        "version": person.version,
        # 参保人合并: this record merged into another (it counts nowhere), and the records merged into it.
        "merged_into": person.merged_into,
        "merges": [item_to_plain(m) for m in person.history.merges.values()],
    }


@router.get("/persons/{id_type}/{id_number}", summary="One person's ledger state (参保人信息)")
def get_person(id_type: str, id_number: str, request: Request, who: Principal = Depends(deps.principal)) -> dict:
    """Registration, enrollments, assessments, amounts paid per period, subsidised statuses,
    personal account and contribution months. ``id_type`` is ``RESIDENT_ID``, ``PASSPORT``, ..."""
    person, full_id = readable_person(request, who, id_type, id_number)
    log.info("person_read", person_id=str(person.id), full_id=full_id)
    return person_payload(person, full_id)


@router.get("/persons/{id_type}/{id_number}/entitlement", summary="Is the person covered, from when, and why (待遇资格)",
            responses={409: {"model": ErrorOut, "description": "the person's views are quarantined (PERSON_QUARANTINED): "
                                                                "see GET /views/quarantine; or their stored events "
                                                                "cannot be applied (EVENT_GAP, EVENT_MISMATCH)"}})
def get_entitlement(
    id_type: str,
    id_number: str,
    request: Request,
    year: Annotated[int | None, Query(ge=1900, le=2200, description="coverage year (default: the year of `on`)")] = None,
    on: Annotated[IsoDate | None, Query(description="the day asked about, YYYY-MM-DD (default: today, "
                                                    "kept inside `year`)")] = None,
    who: Principal = Depends(deps.principal),
) -> dict:
    """For the coverage year: enrollment, assessed / subsidised / paid / outstanding fen,
    coverage periods, waiting period with its arithmetic, continuous years, the policy version
    and the events behind each figure; and for the day ``on``: covered or not, in words."""
    person, full_id = readable_person(request, who, id_type, id_number)
    if year is None:
        year = (on or today()).year
    if on is None:
        on = min(max(today(), date(year, 1, 1)), date(year, 12, 31))
    answer = request.app.state.reads.entitlement(person.id, year=year, on=on)
    # reason stays the English sentence; reason_text says it in the Accept-Language language (Chinese by default)
    answer["reason_text"] = reason_text(answer, request_lang(request))
    return {"id_type": person.id_type,
            "id_number": person.id_number if full_id else mask_id_number(person.id_number),
            "name": person.name, **answer}


@router.get("/persons/{id_type}/{id_number}/history", summary="Every event of the person, with the hash chain (审计)")
def get_history(id_type: str, id_number: str, request: Request, who: Principal = Depends(deps.principal)) -> dict:
    """Auditors only. Each event with its version, type, business date, recording instant,
    provenance (which feed record or API user and request), its own fields, ``prev_hash`` and
    digest; ``chain_intact`` is false when a stored event no longer matches the chain."""
    who.require_role(Role.AUDITOR, action="read a person's event history")
    ledger = request.app.state.system.ledger
    person_id = ledger.person_id(id_type, id_number)
    ledger.get_person(person_id)  # PERSON_NOT_FOUND
    events, previous, intact = [], GENESIS_HASH, True
    for event in ledger.events.get(person_id):
        digest = event_digest(event)
        linked = getattr(event, "prev_hash", None) == previous
        intact = intact and linked
        events.append({
            "version": event.originator_version,
            "type": type(event).__name__,
            "event_id": str(event.event_id),
            "effective_date": event.effective_date,
            "recorded_at": event.timestamp,
            "provenance": event.provenance,
            "fields": canonical({k: v for k, v in event_fields(event).items() if k not in _ENVELOPE}),
            "prev_hash": event.prev_hash,
            "digest": digest,
            "chain_ok": linked,
        })
        previous = digest
    log.info("history_read", person_id=str(person_id), events=len(events), chain_intact=intact)
    return {"person_id": str(person_id), "chain_intact": intact, "events": events}
