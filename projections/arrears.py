"""Arrears list (欠费名单): the domain's due rows per person, stored, and the list for a day.

The rules (who owes what, from when, the late fee and how long it stays owed) live in
:mod:`ledger.domain.arrears`; this module folds events into rows with the domain's fold
and answers the list queries. A row is listed while something is outstanding or, for an
employer month paid late, while its late fee is owed (``fee_only``: 滞纳金未缴).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from ledger.domain.arrears import _paid_on, due_rows, fee_row, late_fees_owed, listed_for
from ledger.domain.coverage import derive
from ledger.domain.errors import DomainError
from ledger.domain.history import fold_many

from projections.person_view import PersonProjection

KINDS = ("RESIDENT", "FLEXIBLE", "EMPLOYER")
#: The figures of a row's late-fee arithmetic (``late_fee_terms``), as :func:`ledger.domain.arrears.fee_row` gives them.
LATE_FEE_TERMS = ("principal_fen", "days", "fen_days", "rate_ppm_per_day", "accrued_fen", "fee_paid_fen", "owed_fen",
                  "fee_status")
SORT_KEYS = ("outstanding_fen", "days_overdue", "late_fee_fen", "due_date", "grid_code", "region_code", "period",
             "employer_id")


class ArrearsProjection(PersonProjection):
    """Folds person events into ``{person_id: {"history": ..., "dues": [due row, ...]}}``."""

    name = "arrears"

    def apply_row(self, row: dict[str, Any] | None, event: Any) -> dict[str, Any]:
        return self.apply_rows(row, [event])

    def apply_rows(self, row: dict[str, Any] | None, events: Any) -> dict[str, Any]:
        """Several events of this row in order, deriving the figures once."""
        history = fold_many(row["history"] if row else None, events)
        if row is not None and history is row["history"]:
            return row
        return {"history": history, "dues": due_rows(history, derive(history, self.policies))}

    def apply(self, view: dict[str, Any], event: Any) -> dict[str, Any]:
        key = self.key(event)
        if key is None:
            return view
        old = view.get(key)
        new = self.apply_row(old, event)
        if new is old:
            return view
        out = dict(view)
        out[key] = new
        return out


def arrears_list(view: dict[str, Any], as_of: date, policies: Any) -> list[dict[str, Any]]:
    """Every period due and unpaid past its due date on ``as_of``, or paid late with its fee owed, one row each.

    Row: person_id, kind, scheme, period, region_code, grid_code, township_code,
    employer_id, due_fen, due_date, paid_fen, outstanding_fen, days_overdue,
    late_fee_fen (the fee still owed, :func:`ledger.domain.arrears.late_fee_owed`),
    late_fee_accruing, late_fee_policy_version, fee_only (nothing outstanding, listed
    for its unpaid fee; ``days_overdue`` then counts to the day it was paid in full,
    ``paid_in_full_on``), assessed, policy_version, sources. Sorted by region, grid,
    person, period.
    """
    out = []
    for person_id in sorted(view):
        dues = view[person_id]["dues"]
        for due, fee in zip(dues, late_fees_owed(dues, as_of, policies)):
            if as_of <= due["due_date"]:
                continue
            if due["collectable_until"] is not None and as_of > due["collectable_until"]:
                continue
            if due["enrolled_until"] is not None and as_of > due["enrolled_until"]:
                continue
            paid = _paid_on(due["paid_steps"], as_of)
            outstanding = due["due_fen"] - paid
            listed = listed_for(outstanding, fee)
            if listed is None:
                continue
            fee_only = listed == "LATE_FEE_UNPAID"
            terms = fee_row(due, fee, as_of) if fee.accrued_fen else None
            grid = due["grid_code"]
            out.append({
                "person_id": due["person_id"],
                "kind": due["kind"],
                "scheme": due["scheme"],
                "period": due["period"],
                "region_code": due["region_code"],
                "grid_code": grid,
                "township_code": grid[:9] if grid else None,
                "employer_id": due["employer_id"],
                "due_fen": due["due_fen"],
                "due_date": due["due_date"],
                "paid_fen": paid,
                "outstanding_fen": max(0, outstanding),
                "days_overdue": ((fee.paid_in_full_on if fee_only else as_of) - due["due_date"]).days,
                "late_fee_fen": fee.owed_fen,
                "late_fee_accruing": fee.accruing,
                "late_fee_policy_version": fee.policy_version,
                "late_fee_arithmetic": terms["arithmetic"] if terms else None,
                # the figures of that arithmetic, so a reader can say it in another language
                "late_fee_terms": {k: terms[k] for k in LATE_FEE_TERMS} if terms else None,
                "fee_only": fee_only,
                "paid_in_full_on": fee.paid_in_full_on if fee_only else None,
                "assessed": due["assessed"],
                "policy_version": due["policy_version"],
                "sources": list(due["sources"]),
            })
    out.sort(key=lambda r: (r["region_code"] or "", r["grid_code"] or "", r["person_id"], r["period"]))
    return out


def filter_arrears(
    rows: Iterable[dict[str, Any]],
    *,
    region: str | None = None,
    grid: str | None = None,
    township: str | None = None,
    kind: str | None = None,
    period: str | None = None,
) -> list[dict[str, Any]]:
    """Rows of one region (6 digits), grid (12), township (9), kind and/or period (a year matches its months)."""
    return [
        r for r in rows
        if (region is None or r["region_code"] == region)
        and (grid is None or r["grid_code"] == grid)
        and (township is None or (r["grid_code"] or "").startswith(township))
        and (kind is None or r["kind"] == kind)
        and (period is None or r["period"] == period or r["period"].startswith(f"{period}-"))
    ]


def sort_arrears(rows: Iterable[dict[str, Any]], by: str = "outstanding_fen", *, descending: bool = True) -> list[dict[str, Any]]:
    """Rows ordered by one of ``SORT_KEYS``; ties keep person-then-period order, empty values last."""
    if by not in SORT_KEYS:
        raise DomainError("SORT_KEY_UNKNOWN", f"cannot sort arrears by {by!r}; use one of {', '.join(SORT_KEYS)}")
    ordered = sorted(rows, key=lambda r: (r["person_id"], r["period"]))
    present = [r for r in ordered if r[by] is not None]
    missing = [r for r in ordered if r[by] is None]
    return sorted(present, key=lambda r: r[by], reverse=descending) + missing


def employer_arrears(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Employer rows summed per employer and month: persons (``fee_only_persons`` of them listed for the fee
    alone), outstanding, late fee, longest overdue."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        if r["kind"] != "EMPLOYER":
            continue
        g = groups.setdefault((r["employer_id"], r["period"]), {
            "employer_id": r["employer_id"], "period": r["period"], "region_code": r["region_code"],
            "persons": 0, "fee_only_persons": 0, "person_ids": [], "outstanding_fen": 0, "late_fee_fen": 0, "days_overdue": 0,
            "sources": [],
        })
        g["persons"] += 1
        g["person_ids"].append(r["person_id"])
        g["outstanding_fen"] += r["outstanding_fen"]
        g["late_fee_fen"] += r["late_fee_fen"]
        g["days_overdue"] = max(g["days_overdue"], r["days_overdue"])
        g["fee_only_persons"] += r["fee_only"]
        g["sources"] += r["sources"]
    return [groups[k] for k in sorted(groups)]


def employer_totals(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per employer over all its months (单位欠费合计): months, persons, outstanding, late fee still owed,
    longest overdue; largest total (outstanding + fee) first, then employer id."""
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["kind"] != "EMPLOYER":
            continue
        g = groups.setdefault(r["employer_id"], {
            "employer_id": r["employer_id"], "region_code": r["region_code"], "months": set(), "persons": set(),
            "rows": 0, "fee_only_rows": 0, "outstanding_fen": 0, "late_fee_fen": 0, "days_overdue": 0})
        g["months"].add(r["period"])
        g["persons"].add(r["person_id"])
        g["rows"] += 1
        g["fee_only_rows"] += bool(r["fee_only"])
        g["outstanding_fen"] += r["outstanding_fen"]
        g["late_fee_fen"] += r["late_fee_fen"]
        g["days_overdue"] = max(g["days_overdue"], r["days_overdue"])
    out = []
    for g in groups.values():
        out.append({**g, "months": sorted(g["months"]), "persons": len(g["persons"]),
                    "total_fen": g["outstanding_fen"] + g["late_fee_fen"]})
    out.sort(key=lambda g: (-g["total_fen"], g["employer_id"] or ""))
    return out


def fees_list(view: dict[str, Any], as_of: date, policies: Any, *, include_cleared: bool = False
              ) -> list[dict[str, Any]]:
    """The late-fee list (滞纳金清单) on ``as_of``: one line per employer month with a fee accrued, its arithmetic
    shown (:func:`ledger.domain.arrears.fee_row`); only fees still owed unless ``include_cleared`` (paid or
    waived ones too). Sorted by region, employer, period, person."""
    out = []
    for person_id in sorted(view):
        dues = view[person_id]["dues"]
        for due, fee in zip(dues, late_fees_owed(dues, as_of, policies)):
            if due["kind"] != "EMPLOYER" or fee.accrued_fen <= 0:
                continue
            if fee.owed_fen <= 0 and not include_cleared:
                continue
            row = fee_row(due, fee, as_of)
            row["outstanding_fen"] = max(0, due["due_fen"] - _paid_on(due["paid_steps"], as_of))
            out.append(row)
    out.sort(key=lambda r: (r["region_code"] or "", r["employer_id"] or "", r["period"], r["person_id"]))
    return out


def employer_fees(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fee list summed per employer (单位滞纳金合计): lines, accrued, paid, waived, still owed."""
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        g = groups.setdefault(r["employer_id"], {
            "employer_id": r["employer_id"], "region_code": r["region_code"], "rows": 0, "accrued_fen": 0,
            "fee_paid_fen": 0, "waived_fen": 0, "owed_fen": 0})
        g["rows"] += 1
        for k in ("accrued_fen", "fee_paid_fen", "waived_fen", "owed_fen"):
            g[k] += r[k]
    return [groups[k] for k in sorted(groups, key=lambda e: e or "")]
