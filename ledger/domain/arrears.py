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
  frozen at the day it was paid in full. The ledger has no fee payment or waiver
  event yet, so today such a row stays listed (see :func:`late_fee_owed` for where
  those events plug in).
* Employer rows are also summed per employer and month (:func:`employer_arrears`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.domain.coverage import EMPLOYEE, RESIDENT
from ledger.domain.errors import DomainError
from ledger.domain.history import PersonHistory, paid_by, paid_share
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
            rows.append({
                "person_id": history.person_id,
                "kind": "FLEXIBLE" if m["flexible"] or not m["employer_id"] else "EMPLOYER",
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
                "sources": m["sources"]["assessment"] + m["sources"]["paid"] + m["sources"]["refunded"],
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


NO_FEE = LateFee()


def fee_table(policies: Any, due: dict[str, Any]) -> Any:
    """The policy table whose rate applies to a due row's fee: its region and the period's year."""
    return policies.get(due["region_code"], int(due["period"][:4]))


def late_fee_owed(due: dict[str, Any], as_of: date, table: Any, *, fees_paid_fen: int = 0,
                  waived: Any = None) -> LateFee:
    """The late fee of one due row (see :func:`due_rows`) by the end of ``as_of``, and what is still owed.

    Employer rows only (others: :data:`NO_FEE`). The fee accrues from the day after
    the due date on the amount outstanding each day, up to and including the day
    each part is paid (paying on the due date is on time); once the row is paid in
    full it stops growing but stays owed: the contribution's payment does not pay
    the fee. ``table`` is the policy table of the period (:func:`fee_table`).

    Collecting or waiving the fee needs events the ledger does not have yet (a fee
    payment on the tax feed or over HTTP, a waiver with reason and approver: issue
    #22). They plug in here: ``fees_paid_fen`` is the sum of fee payments for the
    row and ``waived`` the waiver (any truthy value, e.g. the waiver event's id),
    both derived from the person's history by the caller; today they are always
    0 / None, so an accrued fee is owed until those events exist.
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
    owed = 0 if waived else max(0, accrued - fees_paid_fen)
    return LateFee(accrued_fen=accrued, fen_days=fen_days, accruing=accruing,
                   paid_in_full_on=None if accruing else paid_in_full_on,
                   fees_paid_fen=fees_paid_fen, waived=bool(waived), owed_fen=owed,
                   policy_version=table.policy_version if fen_days else None)


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
