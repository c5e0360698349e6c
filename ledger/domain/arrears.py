"""Arrears list (欠费名单): contributions due and unpaid past their due date, as of a day.

The projection keeps, per person, the history and one *due row* per period that has
an amount due (a resident coverage year, or an assessed employee-scheme month): the
due, the due date, how the net paid amount moved over time (``paid_steps``), grid,
region, employer. None of that depends on the day asked about, so it is folded
event by event like every projection; :func:`arrears_list` then answers for a day:
outstanding fen, days overdue and the late fee.

Rules (where the domain brief leaves a choice):

* **Who.** Residents (``RESIDENT``), flexible workers (``FLEXIBLE``: employee scheme
  without an employer) and employees of an employer (``EMPLOYER``). Employee months
  appear only once assessed (the due needs the contribution base); resident years
  use the assessment in force or, without one, the due the policy table gives (the
  row says ``assessed=False``).
* **When a resident year is arrears.** From the day after its due date (the end of
  the concentrated period) to 31 Dec of the coverage year, while the enrollment
  for that year is in force. After 31 Dec an unpaid resident year is no longer
  collectable arrears: it is a break (断保) that shows in the gap list and in later
  waiting periods, and paying it then is a voluntary back payment.
* **Days overdue** = day asked − due date (paying on the due date is on time; the
  first day after it is 1 day overdue).
* **Late fee (滞纳金)** only on employer arrears (社会保险法 Art. 86 binds the employer):
  0.05% (the table's ``late_fee_ppm_per_day``) per calendar day on the amount
  outstanding each day, from the day after the due date to the day it is paid,
  simple, rounded once: a part paid late stops accruing on the day it is paid.
  Flexible workers and residents owe no late fee. See :func:`late_fee_owed`.
* **A fee outlives its contribution.** A month paid in full but late still carries
  its fee, and the fee stays owed after the contribution is paid, until it is
  collected or waived by an event. So an employer row stays on the list while
  anything is outstanding *or* its fee is owed: a row paid in full with its fee
  unpaid is listed with nothing outstanding and ``fee_only`` (滞纳金未缴), its fee
  frozen at the day it was paid in full. A ``LateFeePaid`` fact (tax feed levy item
  LATE_FEE, or a clerk's entry) collects it, a ``LateFeeWaived`` fact (reason and
  approver) waives it; the row leaves the list when nothing is outstanding and its
  fee is collected or waived (:func:`late_fee_owed`, :func:`fee_rows` for the fee list).
* Employer rows are also summed per employer and month (:func:`employer_arrears`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.domain.coverage import EMPLOYEE, RESIDENT
from ledger.domain.errors import DomainError
from ledger.domain.history import PersonHistory, late_fee_facts, paid_share
from ledger.policy import rules



def paid_steps(history: PersonHistory, period: str, levy_item: str) -> list[tuple[date, int]]:
    """(day, net paid by the end of that day) at every day the net paid for a period changed.

    The net paid by a day is :func:`~ledger.domain.history.paid_by`'s; it is summed here
    from each payment's own steps (its share changes on its payment day and on its
    refunds' days, :func:`~ledger.domain.history.paid_share`), so a period paid by many
    payments costs one share per payment and refund, not one sum of every payment per day.
    """
    days: set[date] = set()
    change: dict[date, int] = {}
    for p in history.payments.values():
        if p.levy_item == levy_item and period in p.periods and p.reversal is None:
            days.add(p.paid_on)
            before = 0
            for day in sorted({p.paid_on, *(r.on for r in p.refunds if r.on > p.paid_on)}):
                share = paid_share(p, period, day, levy_item)
                change[day] = change.get(day, 0) + share - before
                before = share
            days.update(r.on for r in p.refunds)
    out = []
    paid = 0
    for day in sorted(days):
        paid += change.get(day, 0)
        out.append((day, paid))
    return out


def settled_from(due: dict[str, Any]) -> date | None:
    """The day from which a due row stays paid in full (缴清), None when it is not paid in full at the end.

    Before that day the row may or may not be paid (a refund can reopen it); from it on
    nothing is outstanding again. The view store keeps it as a column, so
    ``settled_from IS NULL OR day < settled_from`` selects every row that can be in
    arrears on ``day`` and leaves most paid rows out; an employer row settled after its
    due date is selected too, for its late fee (``projections.store.ViewStore.open_dues``).
    """
    settled = None
    for day, paid in due["paid_steps"]:
        if paid < due["due_fen"]:
            settled = None
        elif settled is None:
            settled = day
    return settled


def _paid_on(steps: list[tuple[date, int]], day: date) -> int:
    paid = 0
    for d, amount in steps:
        if d <= day:
            paid = amount
    return paid


def due_rows(history: PersonHistory, derived: dict[str, Any]) -> list[dict[str, Any]]:
    """The as-of-independent due rows of one person (see the module docstring)."""
    household = derived["summary"]["household_grid"]
    rows = []
    for year, y in sorted(derived["years"].items()):
        if y["due_fen"] <= 0 or y["enrollment_state"] == "NONE":
            continue
        rows.append({
            "person_id": history.person_id,
            "kind": "RESIDENT",
            "scheme": RESIDENT,
            "period": str(year),
            "region_code": y["region_code"],
            "grid_code": y["grid_code"] or household,
            "employer_id": None,
            "due_fen": y["due_fen"],
            "due_date": y["due_date"],
            "collectable_until": date(year, 12, 31),
            "enrolled_until": y["enrollment_end"],
            "assessed": y["assessed"],
            "paid_steps": paid_steps(history, str(year), RESIDENT),
            "policy_version": y["assessment_policy_version"],
            "sources": list(y["sources"]["outstanding"]),
        })
    enrollments = {e.enrollment_id: e for e in history.enrollments}
    for year in sorted(derived["employee_years"]):
        for month, m in sorted(derived["employee_years"][year]["months"].items()):
            if not m["assessed"] or m["due_fen"] <= 0:
                continue
            enrollment = enrollments.get(m["enrollment_id"])
            kind = "FLEXIBLE" if m["flexible"] or not m["employer_id"] else "EMPLOYER"
            fee_paid, waiver = late_fee_facts(history, month) if kind == "EMPLOYER" else ([], None)
            rows.append({
                "person_id": history.person_id,
                "kind": kind,
                "scheme": EMPLOYEE,
                "period": month,
                "region_code": m["region_code"],
                "grid_code": (enrollment and enrollment.grid_code) or household,
                "employer_id": m["employer_id"],
                "due_fen": m["due_fen"],
                "due_date": m["due_date"],
                "collectable_until": None,
                "enrolled_until": None,
                "assessed": True,
                "paid_steps": paid_steps(history, month, EMPLOYEE),
                "policy_version": m["policy_version"],
                "sources": m["sources"]["assessment"] + m["sources"]["paid"] + m["sources"]["refunded"]
                + [p.event_id for p in fee_paid] + ([waiver.event_id] if waiver else []),
                # The facts that collect or waive the row's late fee (滞纳金缴纳 / 减免): see late_fee_owed.
                "fee_payments": [(p.paid_on, p.amount_fen, p.voucher_no) for p in fee_paid],
                "fee_waiver": None if waiver is None else {
                    "waiver_id": waiver.waiver_id, "on": waiver.on, "reason": waiver.reason,
                    "approver": waiver.approver, "recorded_by": waiver.recorded_by},
            })
    return rows


#: Why a row is on the arrears list, as a clerk or grid worker reads it (the API says ``fee_only``).
OUTSTANDING_LABEL = "欠费"
FEE_ONLY_LABEL = "滞纳金未缴"


def listed_because(row: dict[str, Any]) -> str:
    """The Chinese label of why an arrears row is listed: 欠费 (contribution outstanding) or 滞纳金未缴."""
    return FEE_ONLY_LABEL if row.get("fee_only") else OUTSTANDING_LABEL


@dataclass(frozen=True)
class LateFee:
    """The late fee (滞纳金) of one due row on a day, and how much of it is still owed.

    ``accrued_fen`` = round(``fen_days`` x rate): ``fen_days`` sums the amount
    outstanding on each late day (the arithmetic to show a clerk). ``accruing``
    says whether it still grows: False once the row is paid in full (from
    ``paid_in_full_on``, its fee no longer changes) or when nothing is late.
    ``owed_fen`` is what is still to collect: the accrued fee less fee payments,
    nothing when waived. ``policy_version`` names the table of the rate (None
    when no fee applies or the period has no table).
    """

    accrued_fen: int = 0
    fen_days: int = 0
    accruing: bool = False
    paid_in_full_on: date | None = None
    fees_paid_fen: int = 0
    waived: bool = False
    owed_fen: int = 0
    policy_version: str | None = None
    rate_ppm_per_day: int = 0
    waiver: dict[str, Any] | None = None


NO_FEE = LateFee()


def fee_table(policies: Any, due: dict[str, Any]) -> Any:
    """The policy table whose rate applies to a due row's fee: its region and the period's year."""
    return policies.get(due["region_code"], int(due["period"][:4]))


def fee_facts_by(due: dict[str, Any], as_of: date) -> tuple[int, dict[str, Any] | None]:
    """(fen of late fee paid by the end of ``as_of``, the waiver in force on ``as_of`` or None) of a due row,
    from the LateFeePaid / LateFeeWaived facts :func:`due_rows` put in it (absent in rows stored before them)."""
    paid = sum(amount for day, amount, *_ in due.get("fee_payments") or () if day <= as_of)
    waiver = due.get("fee_waiver")
    return paid, (waiver if waiver is not None and waiver["on"] <= as_of else None)


def late_fee_owed(due: dict[str, Any], as_of: date, table: Any, *, fees_paid_fen: int | None = None,
                  waived: Any = None) -> LateFee:
    """The late fee of one due row (see :func:`due_rows`) by the end of ``as_of``, and what is still owed.

    Employer rows only (others: :data:`NO_FEE`). The fee accrues from the day after
    the due date on the amount outstanding each day, up to and including the day
    each part is paid (paying on the due date is on time); once the row is paid in
    full it stops growing but stays owed: the contribution's payment does not pay
    the fee. ``table`` is the policy table of the period (:func:`fee_table`).

    The fee is collected by ``LateFeePaid`` facts (the tax feed's LATE_FEE levy item, or a
    clerk's entry of the receipt) and waived by a ``LateFeeWaived`` fact (reason and
    approver); :func:`due_rows` puts them in the row and :func:`fee_facts_by` reads what
    happened by ``as_of``. ``fees_paid_fen`` / ``waived`` override them (a what-if).
    Still owed = accrued − paid, never below 0; nothing once waived.
    """
    if due["kind"] != "EMPLOYER" or as_of <= due["due_date"]:
        return NO_FEE
    # Sum outstanding x days over the stretches between payments ("fen-days"), then
    # apply the daily rate once: late_fee_fen(x, 1) rounds x * rate once.
    fen_days, paid_in_full_on = 0, None
    day, outstanding = due["due_date"], due["due_fen"] - _paid_on(due["paid_steps"], due["due_date"])
    for step_day, paid in due["paid_steps"]:
        if step_day <= due["due_date"] or step_day > as_of:
            continue
        fen_days += max(0, outstanding) * (step_day - day).days
        if outstanding > 0 >= due["due_fen"] - paid:
            paid_in_full_on = step_day
        day, outstanding = step_day, due["due_fen"] - paid
    fen_days += max(0, outstanding) * (as_of - day).days
    accrued = rules.late_fee_fen(table, fen_days, 1)
    accruing = outstanding > 0
    paid_facts, waiver = fee_facts_by(due, as_of)
    fees_paid_fen = paid_facts if fees_paid_fen is None else fees_paid_fen
    waived = waived if waived is not None else waiver
    owed = 0 if waived else max(0, accrued - fees_paid_fen)
    return LateFee(accrued_fen=accrued, fen_days=fen_days, accruing=accruing,
                   paid_in_full_on=None if accruing else paid_in_full_on,
                   fees_paid_fen=fees_paid_fen, waived=bool(waived), owed_fen=owed,
                   policy_version=table.policy_version if fen_days else None,
                   rate_ppm_per_day=table.employee.late_fee_ppm_per_day,
                   waiver=waiver if isinstance(waiver, dict) else None)


def late_fees_owed(dues: list[dict[str, Any]], as_of: date, policies: Any) -> list[LateFee]:
    """The late fee of each due row on ``as_of`` (:func:`late_fee_owed`), in the rows' order.

    A row whose region and year have no policy table carries no fee (:data:`NO_FEE`)
    rather than stopping the whole list.
    """
    out = []
    for due in dues:
        if due["kind"] != "EMPLOYER" or as_of <= due["due_date"]:
            out.append(NO_FEE)
            continue
        try:
            table = fee_table(policies, due)
        except DomainError:
            out.append(NO_FEE)
            continue
        out.append(late_fee_owed(due, as_of, table))
    return out


def listed_for(outstanding_fen: int, fee: LateFee) -> str | None:
    """Why a due row past its due date is on the arrears list: ``"OUTSTANDING"`` while anything is
    outstanding, ``"LATE_FEE_UNPAID"`` (``fee_only``, 滞纳金未缴) once paid in full with its fee still
    owed, None when neither (it leaves the list)."""
    if outstanding_fen > 0:
        return "OUTSTANDING"
    return "LATE_FEE_UNPAID" if fee.owed_fen > 0 else None


# --------------------------------------------------------------------------- the fee list (滞纳金清单)
#: Status of a fee row, as a clerk reads it (the API says ``fee_status``).
FEE_STATUS_LABELS = {"OWED": "未缴", "PART_PAID": "部分缴纳", "PAID": "已缴清", "WAIVED": "已减免"}


def yuan(fen: int) -> str:
    """Fen as yuan with two decimals and thousands separators (30000 -> ``300.00``; never a float)."""
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def rate_text(ppm_per_day: int) -> str:
    """The daily rate as a percentage (500 ppm -> ``0.05%``)."""
    whole, rest = divmod(int(ppm_per_day), 10_000)
    return f"{whole}.{rest:04d}".rstrip("0").rstrip(".") + "%" if rest else f"{whole}%"


def fee_row(due: dict[str, Any], fee: LateFee, as_of: date) -> dict[str, Any]:
    """One line of the fee list: the row's late fee on ``as_of`` with its arithmetic shown.

    principal (the month's due), due date, the day the fee stopped (paid in full) or
    ``as_of`` while it still accrues, days late, the daily rate, the fee accrued, paid,
    waived and still owed. With part payments the fee is computed on the amount
    outstanding each day (``fen_days``), so the line shows that sum instead of
    principal × days.
    """
    until = as_of if fee.accruing or fee.paid_in_full_on is None else fee.paid_in_full_on
    days = max(0, (until - due["due_date"]).days)
    rate = rate_text(fee.rate_ppm_per_day)
    if fee.fen_days == due["due_fen"] * days:
        arithmetic = f"{yuan(due['due_fen'])} 元 × {days} 天 × {rate}/天 = {yuan(fee.accrued_fen)} 元"
    else:
        arithmetic = (f"逐日欠款累计 {yuan(fee.fen_days)} 元·天 × {rate}/天 = {yuan(fee.accrued_fen)} 元"
                      f"（含部分缴款，本金 {yuan(due['due_fen'])} 元）")
    if fee.waived:
        status = "WAIVED"
        arithmetic += "；已减免"
    elif fee.owed_fen == 0:
        status = "PAID"
        arithmetic += f"；已缴 {yuan(fee.fees_paid_fen)} 元"
    else:
        status = "PART_PAID" if fee.fees_paid_fen else "OWED"
        if fee.fees_paid_fen:
            arithmetic += f"；已缴 {yuan(fee.fees_paid_fen)} 元，尚欠 {yuan(fee.owed_fen)} 元"
    waiver = fee.waiver
    return {
        "person_id": due["person_id"],
        "employer_id": due["employer_id"],
        "region_code": due["region_code"],
        "grid_code": due["grid_code"],
        "period": due["period"],
        "principal_fen": due["due_fen"],
        "due_date": due["due_date"],
        "paid_in_full_on": fee.paid_in_full_on,
        "until": until,
        "days": days,
        "fen_days": fee.fen_days,
        "rate_ppm_per_day": fee.rate_ppm_per_day,
        "accrued_fen": fee.accrued_fen,
        "fee_paid_fen": fee.fees_paid_fen,
        "waived": fee.waived,
        "waived_fen": max(0, fee.accrued_fen - fee.fees_paid_fen) if fee.waived else 0,
        "waiver_id": waiver["waiver_id"] if waiver else None,
        "waiver_reason": waiver["reason"] if waiver else None,
        "waiver_approver": waiver["approver"] if waiver else None,
        "waiver_recorded_by": waiver["recorded_by"] if waiver else None,
        "waived_on": waiver["on"] if waiver else None,
        "owed_fen": fee.owed_fen,
        "accruing": fee.accruing,
        "fee_status": status,
        "fee_status_label": FEE_STATUS_LABELS[status],
        "arithmetic": arithmetic,
        "policy_version": fee.policy_version,
        "fee_payments": [{"voucher_no": v, "amount_fen": a, "paid_on": d}
                         for d, a, v, *_ in (due.get("fee_payments") or ()) if d <= as_of],
    }


def allocate_fee_payment(rows: list[dict[str, Any]], voucher_no: str, amount_fen: int) -> list[tuple[dict[str, Any], int]]:
    """How one employer's late-fee payment (one voucher) is split over its employees' fee rows of a month.

    ``rows`` are fee rows (:func:`fee_row`, paid and waived ones included) on the day paid.
    Each row in person order takes what it owed before this voucher (what it owes now plus
    what this voucher already paid it), until the amount is used up: so replaying the same
    voucher, even after a partial first attempt, gives the same split. Raises
    ``LATE_FEE_NOT_OWED`` when no row owes anything and ``LATE_FEE_OVERPAID`` when the amount
    is more than they owe together (a clerk's entry must match the fee owed; the tax feed
    is never refused for its amount).
    """
    shares, remaining, owed_total = [], amount_fen, 0
    for row in sorted(rows, key=lambda r: r["person_id"]):
        already = sum(p["amount_fen"] for p in row.get("fee_payments", ()) if p["voucher_no"] == voucher_no)
        owed_before = (0 if row["waived"] else row["owed_fen"]) + already
        owed_total += owed_before
        share = min(remaining, owed_before)
        if share > 0:
            shares.append((row, share))
            remaining -= share
    if owed_total <= 0:
        raise DomainError("LATE_FEE_NOT_OWED", "该单位该月没有未缴的滞纳金 (no late fee is owed for that month)")
    if remaining > 0:
        raise DomainError("LATE_FEE_OVERPAID", f"缴纳金额 {yuan(amount_fen)} 元超过尚欠的滞纳金 {yuan(owed_total)} 元 "
                                               f"(more than the {owed_total} fen still owed)", owed_fen=owed_total)
    return shares
