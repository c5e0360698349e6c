"""Coverage gaps per grid (应保尽保): the gap list and coverage rates over many persons.

Who counts, what covered means and the one reason per person not covered are the domain's
rules (:mod:`ledger.domain.gaps`); this module lists and counts the domain's answers.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from ledger.domain.gaps import REASONS, person_gap
from ledger.policy.model import bp_text


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

    Ordered by the list order of :data:`REASONS` (subsidised people not enrolled or not paid
    first), then grid, then person.
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


def coverage_counts() -> dict[str, Any]:
    """Empty counts of one grid or township (residents, covered, subsidised, gaps by reason)."""
    return {"residents": 0, "covered": 0, "subsidised": 0, "subsidised_covered": 0,
            "gaps_by_reason": {r: 0 for r in REASONS}}


def with_rates(stats: dict[str, Any]) -> dict[str, Any]:
    """The counts with their rates: basis points rounded down, and as text (None when nobody counts)."""
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
        for stats in (grids.setdefault(line["grid_code"], coverage_counts()),
                      townships.setdefault(line["township_code"], coverage_counts())):
            stats["residents"] += 1
            stats["covered"] += line["covered"]
            stats["subsidised"] += line["subsidised"]
            stats["subsidised_covered"] += line["subsidised"] and line["covered"]
            if line["reason"]:
                stats["gaps_by_reason"][line["reason"]] += 1
    return {
        "grids": {g: with_rates(s) for g, s in sorted(grids.items())},
        "townships": {t: with_rates(s) for t, s in sorted(townships.items())},
    }


__all__ = ["coverage_counts", "coverage_rates", "gap_list", "rate_bp", "with_rates"]
