"""The county dashboard's figures (区县参保工作看板), as pure functions of what the views answer.

* :func:`ranked_areas` -- coverage and subsidised coverage per township or grid against the
  targets of the policy table (参保目标), the gap to the target in basis points and in people,
  ranked furthest from the target first;
* :func:`weekly_collection` -- during the concentrated enrollment period (集中参保缴费期): what
  was assessed and what was collected by the end of each week, cumulative;
* :func:`compare_years` -- this year's weeks beside last year's, week by week;
* :func:`arrears_totals` -- the arrears list summed (欠费合计, 滞纳金);
* :func:`reconciliation_days` -- the tax-statement tie-out per day with a status (对账状态).

Rates are basis points rounded half up (144/166 is 8675, 86.75 %), never truncated.
Money is integer fen.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

#: A reconciliation day's state, worst first (the first that applies is the day's).
RECONCILIATION_STATES = ("MISSING_STATEMENT", "DIFFERENCE", "AWAITING_STATEMENT", "PENDING", "BALANCED")


def rate_bp(part: int, whole: int) -> int | None:
    """``part / whole`` in basis points, rounded half up; None when ``whole`` is 0."""
    if whole <= 0:
        return None
    return (part * 20000 + whole) // (2 * whole)


def percent_text(bp: int | None) -> str | None:
    """Basis points as the text a person reads: ``8675`` -> ``86.75%``."""
    return None if bp is None else f"{bp // 100}.{bp % 100:02d}%"


def people_short(covered: int, whole: int, target_bp: int | None) -> int:
    """How many more people must be covered for ``covered / whole`` to reach the target (0 when it does)."""
    if target_bp is None or whole <= 0:
        return 0
    needed = -(-whole * target_bp // 10000)  # the smallest count whose rate is at least the target
    return max(0, needed - covered)


def area_row(code: str, stats: Mapping[str, Any], target_bp: int | None,
             subsidised_target_bp: int | None) -> dict[str, Any]:
    """One place's counts with its rates, the gap to each target and whether it is met."""
    residents, covered = int(stats["residents"]), int(stats["covered"])
    subsidised, subsidised_covered = int(stats["subsidised"]), int(stats["subsidised_covered"])
    rate, sub_rate = rate_bp(covered, residents), rate_bp(subsidised_covered, subsidised)
    return {
        "code": code,
        "residents": residents,
        "covered": covered,
        "coverage_bp": rate,
        "coverage_percent": percent_text(rate),
        "gap_bp": None if rate is None or target_bp is None else target_bp - rate,
        "people_short": people_short(covered, residents, target_bp),
        "meets_target": None if rate is None or target_bp is None else rate >= target_bp,
        "subsidised": subsidised,
        "subsidised_covered": subsidised_covered,
        "subsidised_coverage_bp": sub_rate,
        "subsidised_coverage_percent": percent_text(sub_rate),
        "subsidised_people_short": people_short(subsidised_covered, subsidised, subsidised_target_bp),
        "subsidised_meets_target": (None if sub_rate is None or subsidised_target_bp is None
                                    else sub_rate >= subsidised_target_bp),
    }


def ranked_areas(areas: Mapping[str, Mapping[str, Any]], target_bp: int | None,
                 subsidised_target_bp: int | None) -> list[dict[str, Any]]:
    """Places ranked furthest from the target first: lowest coverage rate, then lowest subsidised
    coverage, then most people short, then code; ``rank`` counts from 1. A place with nobody living
    there on the day (no rate) comes last."""
    rows = [area_row(code, stats, target_bp, subsidised_target_bp) for code, stats in areas.items()]
    rows.sort(key=lambda r: (r["coverage_bp"] is None, r["coverage_bp"] or 0,
                             10001 if r["subsidised_coverage_bp"] is None else r["subsidised_coverage_bp"],
                             -r["people_short"], r["code"]))
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return rows


def total_of(areas: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """The counts of several places added up (a county from its townships)."""
    keys = ("residents", "covered", "subsidised", "subsidised_covered")
    return {k: sum(int(a[k]) for a in areas.values()) for k in keys}


def _paid_by(steps: Sequence[Sequence[Any]], day: date) -> int:
    paid = 0
    for on, amount in steps:
        if on > day:
            break
        paid = int(amount)
    return paid


def weekly_collection(dues: Iterable[Mapping[str, Any]], start: date, end: date) -> list[dict[str, Any]]:
    """Per week of the concentrated period ``start``..``end`` (the last week may be short): the fen
    due (应缴: every resident due row of the year, formally assessed (核定) or derived from the
    enrollment and the policy table) and collected by the end of that week, cumulative (payments
    before ``start`` count in the first week; refunds lower it; a row counts at most its due), and
    the share collected.

    ``dues`` are resident due rows of one coverage year (``due_fen``, ``paid_steps`` as (day, net
    paid by the end of that day)).
    """
    if end < start:
        return []
    assessed = list(dues)
    assessed_fen = sum(int(d["due_fen"]) for d in assessed)
    weeks = []
    first = start
    n = 1
    while first <= end:
        last = min(first + timedelta(days=6), end)
        collected = sum(min(int(d["due_fen"]), _paid_by(d.get("paid_steps") or (), last)) for d in assessed)
        weeks.append({"week": n, "from": first, "to": last, "assessed_fen": assessed_fen,
                      "collected_fen": collected, "collected_bp": rate_bp(collected, assessed_fen)})
        first, n = last + timedelta(days=1), n + 1
    return weeks


def compare_years(this_year: Sequence[Mapping[str, Any]], last_year: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """This year's weeks beside last year's, by week number of the period (a week one year lacks is None)."""
    out = []
    for i in range(max(len(this_year), len(last_year))):
        this = this_year[i] if i < len(this_year) else None
        last = last_year[i] if i < len(last_year) else None
        out.append({
            "week": i + 1,
            "from": this["from"] if this else None, "to": this["to"] if this else None,
            "assessed_fen": this["assessed_fen"] if this else None,
            "collected_fen": this["collected_fen"] if this else None,
            "collected_bp": this["collected_bp"] if this else None,
            "last_from": last["from"] if last else None, "last_to": last["to"] if last else None,
            "last_assessed_fen": last["assessed_fen"] if last else None,
            "last_collected_fen": last["collected_fen"] if last else None,
            "last_collected_bp": last["collected_bp"] if last else None,
        })
    return out


def arrears_totals(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The arrears list summed: rows, persons, outstanding fen, late fees owed, and per kind
    (RESIDENT / FLEXIBLE / EMPLOYER)."""
    totals = {"rows": 0, "persons": 0, "outstanding_fen": 0, "late_fee_fen": 0, "by_kind": {}}
    persons = set()
    for r in rows:
        totals["rows"] += 1
        persons.add(r["person_id"])
        totals["outstanding_fen"] += int(r["outstanding_fen"])
        totals["late_fee_fen"] += int(r.get("late_fee_fen") or 0)
        kind = totals["by_kind"].setdefault(r["kind"], {"rows": 0, "outstanding_fen": 0, "late_fee_fen": 0})
        kind["rows"] += 1
        kind["outstanding_fen"] += int(r["outstanding_fen"])
        kind["late_fee_fen"] += int(r.get("late_fee_fen") or 0)
    totals["persons"] = len(persons)
    return totals


def reconciliation_state(day: Mapping[str, Any]) -> str:
    """A day's tie-out in one word: a statement overdue (缺对账单), a difference or open discrepancy, receipts
    whose statement is not due yet, statements not reconciled yet, or balanced (the tax bureau's total
    equals the ledger's, nothing open)."""
    if day.get("missing_statements"):
        return "MISSING_STATEMENT"
    if day.get("statements") and (day.get("difference_fen") or day.get("open_discrepancies")):
        return "DIFFERENCE"
    if day.get("open_discrepancies"):
        return "DIFFERENCE"
    if not day.get("statements") and day.get("ledger_rows"):
        return "AWAITING_STATEMENT"
    if day.get("pending_statements"):
        return "PENDING"
    return "BALANCED"


def reconciliation_days(days: Iterable[Mapping[str, Any]], *, last: int | None = None) -> list[dict[str, Any]]:
    """The per-day rows of the reconciliation summary with ``state``, newest first (at most ``last``)."""
    out = [{**d, "state": reconciliation_state(d)} for d in days]
    out.sort(key=lambda d: str(d["business_date"]), reverse=True)
    return out[:last] if last is not None else out


__all__ = ["RECONCILIATION_STATES", "area_row", "arrears_totals", "compare_years", "percent_text", "people_short",
           "ranked_areas", "rate_bp", "reconciliation_days", "reconciliation_state", "total_of",
           "weekly_collection"]
