"""Is the policy book ready for today? (下一年度政策参数是否就绪)

Clerks assess coverage year Y+1 while year Y runs: its concentrated enrollment period
(集中参保缴费期, typically 1 Sep - 31 Dec of Y) opens before Y+1 starts. So on any day the
tables must cover the running year and the coverage year whose concentrated period
contains the day. A missing year is reported at startup (``entrypoints.wiring``) and by a
CI test, long before the first assessment of that year fails with POLICY_YEAR_UNKNOWN.

Pure: the day is an argument (the caller reads the clock).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ledger.policy.book import PolicyBook


@dataclass(frozen=True)
class MissingYear:
    region_code: str
    coverage_year: int
    reason: str  # "RUNNING_YEAR" | "CONCENTRATED_PERIOD_OPEN"

    def text(self) -> str:
        why = ("本年度" if self.reason == "RUNNING_YEAR"
               else f"{self.coverage_year}年度集中参保缴费期已开始")
        return f"{self.region_code} 缺少 {self.coverage_year} 年度政策参数表（{why}）"


def _shift(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 Feb in a year without one
        return date(day.year + years, 2, 28)


def concentrated_period(book: PolicyBook, region: str, coverage_year: int) -> tuple[date, date] | None:
    """The concentrated period of a coverage year: its table's dates, else the nearest table's moved by whole years."""
    years = book.years(region)
    if not years:
        return None
    if coverage_year in years:
        r = book.get(region, coverage_year).resident
        return r.concentrated_start, r.concentrated_end
    nearest = min(years, key=lambda y: (abs(y - coverage_year), -y))
    r = book.get(region, nearest).resident
    shift = coverage_year - nearest
    return _shift(r.concentrated_start, shift), _shift(r.concentrated_end, shift)


def years_needed(book: PolicyBook, region: str, today: date) -> dict[int, str]:
    """The coverage years a region's clerks work on today: the running year and any year whose concentrated period is open."""
    needed = {today.year: "RUNNING_YEAR"}
    for year in (today.year + 1, today.year + 2):
        period = concentrated_period(book, region, year)
        if period is not None and period[0] <= today <= period[1]:
            needed.setdefault(year, "CONCENTRATED_PERIOD_OPEN")
    return needed


def missing_years(book: PolicyBook, today: date) -> list[MissingYear]:
    """Every (region, coverage year) the tables must cover on ``today`` but do not, sorted."""
    out = []
    for region in sorted(book.regions()):
        have = set(book.years(region))
        for year, reason in sorted(years_needed(book, region, today).items()):
            if year not in have:
                out.append(MissingYear(region, year, reason))
    return out


__all__ = ["MissingYear", "concentrated_period", "missing_years", "years_needed"]
