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
  outstanding each day, simple, rounded once: a part paid late stops accruing on
  the day it is paid. Flexible workers and residents owe no late fee. A month paid
  in full but late still carries its fee; it leaves this list once nothing is
  outstanding (collecting fees on fully paid months is a separate list).
* Employer rows are also summed per employer and month (:func:`employer_arrears`).
"""
from __future__ import annotations

from datetime import date
from typing import Any

from ledger.domain.coverage import EMPLOYEE, RESIDENT
from ledger.domain.history import PersonHistory, paid_by
from ledger.policy import rules



def paid_steps(history: PersonHistory, period: str, levy_item: str) -> list[tuple[date, int]]:
    """(day, net paid by the end of that day) at every day the net paid for a period changed."""
    days = set()
    for p in history.payments.values():
        if p.levy_item == levy_item and period in p.periods and p.reversal is None:
            days.add(p.paid_on)
            days.update(r.on for r in p.refunds)
    return [(d, paid_by(history, period, d, levy_item)) for d in sorted(days)]


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


def late_fee(policies: Any, due: dict[str, Any], as_of: date) -> int:
    """Late fee accrued on an employer row by the end of ``as_of`` (0 for other kinds or when not late)."""
    if due["kind"] != "EMPLOYER" or as_of <= due["due_date"]:
        return 0
    table = policies.get(due["region_code"], int(due["period"][:4]))
    # Sum outstanding x days over the stretches between payments ("fen-days"), then
    # apply the daily rate once: late_fee_fen(x, 1) rounds x * rate once.
    fen_days = 0
    day, outstanding = due["due_date"], due["due_fen"] - _paid_on(due["paid_steps"], due["due_date"])
    for step_day, paid in due["paid_steps"]:
        if step_day <= due["due_date"] or step_day > as_of:
            continue
        fen_days += max(0, outstanding) * (step_day - day).days
        day, outstanding = step_day, due["due_fen"] - paid
    fen_days += max(0, outstanding) * (as_of - day).days
    return rules.late_fee_fen(table, fen_days, 1)
