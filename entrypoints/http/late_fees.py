"""Late fees (滞纳金) for clerks: collect (缴纳) or waive (减免) an employer month's fee, and the fee list.

Shared by the HTTP routes (:mod:`entrypoints.http.routes_fees`) and the command line
(``ledger clerk pay-late-fee`` / ``waive-late-fee``, ``ledger fees``), so both refuse the same
input with the same codes.

A fee is owed per employee month (the employer's contribution for each employee is a due row
of that employee); an employer pays or is excused the fee of a month for all its employees at
once. So a command names the employer (``employer_id``) or one employee (``id_number``) and
the month; the fee rows of that month are read from the views on the day paid, split
(:func:`ledger.domain.arrears.allocate_fee_payment`) and recorded as one ``LateFeePaid`` or
``LateFeeWaived`` event per employee.

**Idempotent.** A payment is keyed by its voucher (number + tax office): the same voucher
again, even after an interrupted first attempt, gives the same split and records nothing
twice. A waiver is keyed by its request id (``X-Request-ID`` / ``--request-id``).
"""
from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from uuid import UUID

from pydantic import Field

from entrypoints import catalogue
from entrypoints.http.auth import Forbidden, Principal, Role
from entrypoints.http.models import Body, BusinessDate, PositiveFen
from ledger.domain.arrears import allocate_fee_payment, yuan
from ledger.domain.errors import DomainError
from ledger.domain.person import BUSINESS_TZ
from ledger.log import get_logger, mask_id_number
from ledger.maker_checker import MakerChecker
from ledger.inbound_records import Provenance
from entrypoints.http.access import check_arrears_read
from projections.arrears import employer_fees

log = get_logger("entrypoints.http.late_fees")

Month = Field(..., pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="the employee month (费款所属期), YYYY-MM")


class LateFeeTarget(Body):
    employer_id: str | None = Field(None, min_length=1, max_length=40,
                                    description="the employer (单位编号): every employee's fee of the month")
    id_type: str = Field("RESIDENT_ID", description="with id_number: one employee's fee only")
    id_number: str | None = Field(None, min_length=1, max_length=40, description="one employee (证件号码)")
    period: str = Month


class LateFeePaymentIn(LateFeeTarget):
    """A late-fee payment (滞纳金缴纳) as on the tax receipt: at most what is still owed (LATE_FEE_OVERPAID)."""

    amount_fen: PositiveFen
    voucher_no: str = Field(..., min_length=1, max_length=40, description="receipt / e-tax voucher number (电子税票号码)")
    tax_office: str = Field(..., min_length=1, max_length=20, description="collecting tax office (征收税务机关)")
    paid_on: BusinessDate = Field(..., description="the day paid (缴款日期): the fee is counted to this day")
    channel: str = Field("COUNTER", max_length=20)


class LateFeeWaiverIn(LateFeeTarget):
    """A late-fee waiver (滞纳金减免): why, and who approved it (not the clerk recording it)."""

    reason: str = Field("", max_length=500, description="why the fee is waived (减免理由), required")
    approver: str = Field("", max_length=100, description="who approved (审批人), required, not yourself")
    effective_date: BusinessDate | None = Field(None, description="the day it takes effect (default: today)")


def _today() -> date:
    """Today's business date (China Standard Time)."""
    return datetime.now(BUSINESS_TZ).date()


def _rows(ledger: Any, reads: Any, who: Principal, body: LateFeeTarget, as_of: date) -> list[dict[str, Any]]:
    """The fee rows of the named employer or employee for the month on ``as_of`` (cleared ones too),
    after checking the clerk may act in every row's region."""
    who.require_role(Role.CLERK, action="collect or waive late fees")
    if (body.employer_id is None) == (body.id_number is None):
        raise DomainError("LATE_FEE_TARGET_REQUIRED", "请指定单位编号（employer_id）或一名职工的证件号码（id_number），二者选一 "
                                                      "(name the employer or one employee, not both)")
    rows = reads.fees(as_of=as_of, employer=body.employer_id, include_cleared=True)
    if body.id_number is not None:
        person = ledger.find_person(body.id_type, body.id_number)  # PERSON_NOT_FOUND
        rows = [r for r in rows if r["person_id"] == str(person.id)]
    rows = [r for r in rows if r["period"] == body.period]
    for region in sorted({r["region_code"] for r in rows}):
        who.require_region(region)
    if not rows:
        raise DomainError("LATE_FEE_NOT_OWED", f"{body.period} 没有计收滞纳金的单位欠费记录 "
                                               f"(no late fee accrued for {body.period} on {as_of})", period=body.period)
    return rows


def _answer(outcomes: list[Any], what: str, shares: list[tuple[dict[str, Any], int]]) -> dict[str, Any]:
    applied = any(o.applied for o in outcomes)
    events = [e for o in outcomes for e in o.event_ids]
    return {
        "applied": applied,
        "message": f"{what}: {len(shares)} 名职工" + ("" if applied else "（已记录过，未重复记账）"),
        "event_ids": events,
        "persons": [{"person_id": r["person_id"], "masked_id": r.get("masked_id"), "amount_fen": share}
                    for r, share in shares],
    }


def outcome_said(answer: dict[str, Any], body: Any, lang: str) -> str:
    """What a late-fee command did, in ``lang``, from its own figures (``[clerk_outcomes]``): the API's
    ``message`` (Accept-Language) and the ``ledger fees pay|waive`` line say the same sentence."""
    n = len(answer["persons"])
    if "change" in answer:
        return catalogue.text("clerk_outcomes", "late_fee_waiver_proposed", lang, period=body.period, n=n,
                              approver=body.approver.strip(), change=answer["change"]["change_id"],
                              reason=body.reason.strip())
    return catalogue.text("clerk_outcomes", "late_fee_paid" if answer["applied"] else "late_fee_paid_before", lang,
                          yuan=yuan(body.amount_fen), voucher=body.voucher_no, n=n)


def pay_late_fee(ledger: Any, reads: Any, who: Principal, body: LateFeePaymentIn, *, provenance: Provenance
                 ) -> dict[str, Any]:
    """Record a late-fee payment of an employer (split over its employees) or of one employee."""
    rows = _rows(ledger, reads, who, body, body.paid_on)
    shares = allocate_fee_payment(rows, body.voucher_no, body.amount_fen)
    paid_at = datetime.combine(body.paid_on, time(12), tzinfo=BUSINESS_TZ)
    outcomes = [ledger.pay_late_fee(UUID(row["person_id"]), voucher_no=body.voucher_no, tax_office=body.tax_office,
                                    region_code=row["region_code"], period=body.period, amount_fen=share,
                                    paid_at=paid_at, channel=body.channel, provenance=provenance)
                for row, share in shares]
    log.info("late_fee_paid", employer=body.employer_id, period=body.period, amount_fen=body.amount_fen,
             persons=len(shares), applied=any(o.applied for o in outcomes), user=who.user)
    return _answer(outcomes, f"滞纳金缴纳 {yuan(body.amount_fen)} 元已记录（票号 {body.voucher_no}）", shares)


def waive_late_fee(ledger: Any, reads: Any, who: Principal, body: LateFeeWaiverIn, *, provenance: Provenance
                   ) -> dict[str, Any]:
    """Waive the late fee of an employer month (every employee's) or of one employee, with reason and approver."""
    if not body.reason.strip():
        raise DomainError("WAIVER_REASON_REQUIRED", "减免滞纳金须写明理由 (a waiver needs a reason)")
    if not body.approver.strip():
        raise DomainError("WAIVER_APPROVER_REQUIRED", "减免滞纳金须有审批人 (a waiver needs the approver's name)")
    if body.approver.strip() == who.user:
        raise Forbidden("WAIVER_SELF_APPROVED",
                        "审批人不能是录入人本人 (the approver must be someone other than the clerk recording it)")
    on = body.effective_date or _today()
    waiver_id = str(provenance.request_id)
    rows = [r for r in _rows(ledger, reads, who, body, on) if r["owed_fen"] > 0 or r.get("waiver_id") == waiver_id]
    if not rows:
        raise DomainError("LATE_FEE_NOT_OWED", f"{body.period} 的滞纳金已缴清或已减免 (nothing left to waive)",
                          period=body.period)
    # Maker-checker (双人复核): the waiver waits until the named approver approves it (POST /changes/{id}/approve).
    change = MakerChecker(ledger).propose_late_fee_waiver(
        persons=[(UUID(r["person_id"]), r["region_code"]) for r in rows], period=body.period,
        reason=body.reason.strip(), approver=body.approver.strip(), effective_date=on, provenance=provenance)
    log.info("late_fee_waiver_proposed", employer=body.employer_id, period=body.period, persons=len(rows),
             applied=change["applied"], user=who.user, change_id=change["change_id"])
    answer = _answer([], f"{body.period} 滞纳金减免已提交，待审批人 {body.approver.strip()} 审核（变更 {change['change_id']}；"
                         f"理由：{body.reason.strip()}）", [(r, r["owed_fen"]) for r in rows])
    return {**answer, "applied": change["applied"], "change": change}


# --------------------------------------------------------------------------- the fee list
def fees_answer(rows: list[dict[str, Any]], *, as_of: date, region: str | None, grid: str | None,
                employer: str | None) -> dict[str, Any]:
    """The fee list as the API answers it: the lines, the per-employer totals, the totals."""
    return {
        "as_of": as_of, "region": region, "grid": grid, "employer": employer, "count": len(rows),
        "accrued_fen": sum(r["accrued_fen"] for r in rows),
        "fee_paid_fen": sum(r["fee_paid_fen"] for r in rows),
        "waived_fen": sum(r["waived_fen"] for r in rows),
        "owed_fen": sum(r["owed_fen"] for r in rows),
        "employers": employer_fees(rows),
        "fees": rows,
    }


def fees_for(reads: Any, who: Principal, *, as_of: date, region: str | None, grid: str | None,
             employer: str | None, include_cleared: bool) -> list[dict[str, Any]]:
    """The fee rows ``who`` may read: a region or grid of theirs; a clerk naming neither gets all their regions."""
    check_arrears_read(who, region=region, grid=grid)
    if who.role == Role.CLERK and region is None and grid is None:
        rows = [r for own in sorted(who.scopes)
                for r in reads.fees(as_of=as_of, region=own, employer=employer, include_cleared=include_cleared)]
    else:
        rows = reads.fees(as_of=as_of, region=region, grid=grid, employer=employer, include_cleared=include_cleared)
    return rows


def masked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows whose ``id_number`` is masked (files leave the system)."""
    return [{**r, "id_number": mask_id_number(r["id_number"]) if r.get("id_number") else r.get("masked_id")}
            for r in rows]


__all__ = ["LateFeePaymentIn", "LateFeeWaiverIn", "fees_answer", "fees_for", "masked", "pay_late_fee",
           "waive_late_fee"]
