"""Coverage gaps per grid (应保尽保): who lives in a grid and is not covered, and why; coverage rates.

A query over the entitlement view (:mod:`projections.entitlement`), whose rows
already hold everything needed (the registry's residence history, enrollments,
transfers, statuses, and per coverage year the funding and coverage periods). The
answer depends on the day asked about (a waiting period ends, a transfer
completes), so it is computed at query time rather than folded; an adapter can
store :func:`coverage_rates` per grid each night.

**Who counts.** People the household registry says live in the grid on the
evaluation day: the latest residence record on or before that day
(``Registered.household_grid``, then every ``ResidenceRecorded``) has status
``RESIDENT`` and a grid. The deceased and the moved-out do not count. People the
ledger only knows from a tax payment have no household grid until the registry
reports them.

**Evaluation day** for coverage year Y asked on ``as_of``: ``as_of`` itself when it
falls in Y; 1 Jan Y when asked before Y (e.g. during the concentrated period, "who
will not be covered on 1 January"); 31 Dec Y when asked after Y.

**Covered** means :func:`projections.entitlement.row_covered_on` says so for that day
(either scheme).

**One reason per person not covered**, the first that applies in this order:

1. ``SUBSIDISED_NOT_COVERED`` -- a subsidised status counts for Y (subsidised people
   must be 100% covered, so they come first whatever the cause; ``detail`` says it);
2. ``DUPLICATE_ENROLLMENT`` -- an enrollment flagged duplicate (重复参保) and its
   original are both in force on the day;
3. ``TRANSFER_INCOMPLETE`` -- a transfer-out half without its in half on the day;
4. ``NOT_ENROLLED`` -- no enrollment in force on the day;
5. ``ENROLLED_UNPAID`` -- enrolled, Y not paid on the day, and not insured in Y-1;
6. ``LAPSED`` -- enrolled, Y not paid on the day, insured in Y-1 (断保: the renewal to
   chase). 5 and 6 exclude each other, so their order only matters for reading;
7. ``IN_WAITING_PERIOD`` -- Y is paid but coverage starts later (待遇等待期).

**Rates** (per grid and per township, the first 9 digits of the grid code): counts,
and rates in basis points rounded *down* (so 100.00% means everyone, never "nearly
everyone"); ``None`` when nobody counts. A display percentage is given as text.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from ledger.domain.errors import DomainError
from ledger.policy import rules
from ledger.policy.model import bp_text

from projections.entitlement import row_covered_on
from projections.history import residence_on, subsidy_statuses

#: The reasons, in priority order.
REASONS = (
    "SUBSIDISED_NOT_COVERED",
    "DUPLICATE_ENROLLMENT",
    "TRANSFER_INCOMPLETE",
    "NOT_ENROLLED",
    "ENROLLED_UNPAID",
    "LAPSED",
    "IN_WAITING_PERIOD",
)

#: Chinese labels for the grid worker's page.
REASON_LABELS = {
    "SUBSIDISED_NOT_COVERED": "资助参保对象未参保缴费",
    "DUPLICATE_ENROLLMENT": "重复参保",
    "TRANSFER_INCOMPLETE": "转移接续未完成",
    "NOT_ENROLLED": "未参保登记",
    "ENROLLED_UNPAID": "已登记未缴费",
    "LAPSED": "断保（上年参保，本年未续缴）",
    "IN_WAITING_PERIOD": "待遇等待期内",
}


def evaluation_day(year: int, as_of: date) -> date:
    return min(max(as_of, date(year, 1, 1)), date(year, 12, 31))


def lives_in(row: dict[str, Any], day: date) -> str | None:
    """The grid the registry says the person lives in on ``day`` (None: not resident, dead, moved out)."""
    record = residence_on(row["history"], day)
    if record is None or record["status"] != "RESIDENT" or not record["grid"]:
        return None
    return record["grid"]


def subsidy_category(row: dict[str, Any], year: int, grid: str, policies: Any) -> str | None:
    """The subsidised category that counts for the year (None: not subsidised)."""
    y = row["years"].get(year)
    if y is not None:
        return y["subsidy_category"]
    try:
        table = policies.get(grid[:6], year)
    except DomainError:
        return None
    statuses = [(c, f, u) for c, f, u, _ in subsidy_statuses(row["history"])]
    category, _ = rules.resident_subsidy(table, rules.categories_for_year(table, statuses))
    return category


def _in_force(enrollment: dict[str, Any], day: date) -> bool:
    return enrollment["start_date"] <= day and (enrollment["end_date"] is None or day <= enrollment["end_date"])


def _insured_in(row: dict[str, Any], year: int) -> bool:
    y = row["years"].get(year)
    if y is not None and y["insured"]:
        return True
    months = row["employee_years"].get(year, {"months": {}})["months"]
    return any(m["net_paid_fen"] > 0 for m in months.values())


def _funded_on(row: dict[str, Any], year: int, day: date) -> bool:
    y = row["years"].get(year)
    if y is not None and any(e["from"] <= day and (e["until"] is None or day < e["until"]) for e in y["funding"]):
        return True
    month = row["employee_years"].get(year, {"months": {}})["months"].get(f"{day.year:04d}-{day.month:02d}")
    return bool(month and month["covered"])


def gap_reason(row: dict[str, Any], year: int, day: date, subsidised: bool) -> tuple[str, list[str]]:
    """The one reason (see the module docstring) a person who lives in a grid is not covered on ``day``."""
    h = row["history"]
    if subsidised:
        return "SUBSIDISED_NOT_COVERED", []
    active = [e for e in h["enrollments"] if _in_force(e, day)]
    ids = {e["enrollment_id"] for e in active}
    duplicates = [e for e in active if e["duplicate_of"] in ids]
    if duplicates:
        return "DUPLICATE_ENROLLMENT", [e["event_id"] for e in duplicates]
    open_out = [t for t in h["transfers"].values()
                if t["direction"] == "OUT" and t["started_on"] <= day
                and (t["completed_on"] is None or t["completed_on"] > day)]
    if open_out:
        return "TRANSFER_INCOMPLETE", [t["out_event_id"] for t in open_out]
    if not active:
        return "NOT_ENROLLED", []
    if not _funded_on(row, year, day):
        if _insured_in(row, year - 1):
            return "LAPSED", []
        return "ENROLLED_UNPAID", []
    return "IN_WAITING_PERIOD", []


def person_gap(row: dict[str, Any], year: int, as_of: date, policies: Any) -> dict[str, Any] | None:
    """The person's line for the year: None if not living in a grid; ``reason`` None if covered."""
    day = evaluation_day(year, as_of)
    grid = lives_in(row, day)
    if grid is None:
        return None
    category = subsidy_category(row, year, grid, policies)
    decision = row_covered_on(row, day)
    reason, reason_sources = (None, []) if decision.covered else gap_reason(row, year, day, category is not None)
    y = row["years"].get(year)
    return {
        "person_id": row["history"]["person_id"],
        "year": year,
        "day": day,
        "grid_code": grid,
        "township_code": grid[:9],
        "region_code": grid[:6],
        "covered": decision.covered,
        "reason": reason,
        "label": REASON_LABELS[reason] if reason else None,
        "detail": decision.reason,
        "subsidised": category is not None,
        "subsidy_category": category,
        "outstanding_fen": y["outstanding_fen"] if y else None,
        "scheme": decision.scheme,
        "policy_version": decision.policy_version,
        "sources": list(dict.fromkeys(list(decision.sources) + reason_sources)),
    }


def gap_list(
    view: dict[str, Any],
    year: int,
    as_of: date,
    policies: Any,
    *,
    grid: str | None = None,
    township: str | None = None,
) -> list[dict[str, Any]]:
    """Everyone living in the grid (or township, or everywhere) not covered for ``year`` on ``as_of``.

    Ordered by reason priority (subsidised people first), then grid, then person.
    """
    out = []
    for person_id in sorted(view):
        line = person_gap(view[person_id], year, as_of, policies)
        if line is None or line["covered"]:
            continue
        if grid is not None and line["grid_code"] != grid:
            continue
        if township is not None and line["township_code"] != township:
            continue
        out.append(line)
    out.sort(key=lambda r: (REASONS.index(r["reason"]), r["grid_code"], r["person_id"]))
    return out


def rate_bp(part: int, whole: int) -> int | None:
    """part / whole in basis points, rounded down (None when whole is 0)."""
    return None if whole == 0 else part * 10_000 // whole


def _stats() -> dict[str, Any]:
    return {"residents": 0, "covered": 0, "subsidised": 0, "subsidised_covered": 0,
            "gaps_by_reason": {r: 0 for r in REASONS}}


def _finish(stats: dict[str, Any]) -> dict[str, Any]:
    stats["coverage_bp"] = rate_bp(stats["covered"], stats["residents"])
    stats["subsidised_coverage_bp"] = rate_bp(stats["subsidised_covered"], stats["subsidised"])
    stats["coverage_percent"] = None if stats["coverage_bp"] is None else bp_text(stats["coverage_bp"])
    stats["subsidised_coverage_percent"] = (None if stats["subsidised_coverage_bp"] is None
                                            else bp_text(stats["subsidised_coverage_bp"]))
    return stats


def coverage_rates(view: dict[str, Any], year: int, as_of: date, policies: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Per grid and per township: residents, covered, subsidised, subsidised covered, rates, gaps by reason.

    Returns ``{"grids": {grid_code: stats}, "townships": {township_code: stats}}``; stats
    = residents, covered, subsidised, subsidised_covered (ints), coverage_bp and
    subsidised_coverage_bp (int basis points, rounded down, or None), the same as
    display text (coverage_percent, subsidised_coverage_percent), gaps_by_reason.
    """
    grids: dict[str, dict[str, Any]] = {}
    townships: dict[str, dict[str, Any]] = {}
    for person_id in sorted(view):
        line = person_gap(view[person_id], year, as_of, policies)
        if line is None:
            continue
        for stats in (grids.setdefault(line["grid_code"], _stats()),
                      townships.setdefault(line["township_code"], _stats())):
            stats["residents"] += 1
            stats["covered"] += line["covered"]
            stats["subsidised"] += line["subsidised"]
            stats["subsidised_covered"] += line["subsidised"] and line["covered"]
            if line["reason"]:
                stats["gaps_by_reason"][line["reason"]] += 1
    return {
        "grids": {g: _finish(s) for g, s in sorted(grids.items())},
        "townships": {t: _finish(s) for t, s in sorted(townships.items())},
    }


__all__ = [
    "REASONS",
    "REASON_LABELS",
    "coverage_rates",
    "evaluation_day",
    "gap_list",
    "gap_reason",
    "lives_in",
    "person_gap",
    "rate_bp",
]
