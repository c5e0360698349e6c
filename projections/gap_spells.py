"""Coverage-gap spells: a person's gap-list line as a step function of the day (pure).

:func:`projections.coverage_gaps.person_gap` answers for one evaluation day: does the
person live in a grid, are they covered, and if not, why. A grid worker's list asks
that of thousands of people at once, for any day; folding the whole entitlement row
of each at query time is far too slow. But the answer only changes on days the row
names: every rule compares the day with a date the row holds (a payment, a refund, a
residence record, the start of coverage after a waiting period, the start or end of
an enrollment -- two in force make a duplicate --, either half of a transfer...), as
``date <= day`` or ``date < day``. So between two consecutive
*breakpoints* -- 1 January, every such date of the row and the day after it, and
(for anyone with employee-scheme months) the first of every month with an employee
month row and of the month after it -- the answer is constant. :func:`gap_spells` evaluates ``person_gap`` once per breakpoint, with the
pure function itself, and merges equal neighbours into spells ``[valid_from,
valid_until]``. The dates taken are the ones those rules compare the day with
(:func:`gap_dates`), not every date of the row: an assessment's due date, a subsidy's
validity, an account movement or the birth date reach a line only through the year's
funding and coverage, whose own dates are taken. A store keeps the spells as rows, and the gap list and coverage rates
for a day become an indexed lookup (``valid_from <= day <= valid_until``) giving
exactly what the pure functions give (tests/unit/test_projection_store_queries.py
compares them on every day of two years).

The one part of a line that may name the day itself is the clerk's text
(``detail``, e.g. "no resident enrollment in force on 2025-03-04"). When it does, the
line is evaluated at both ends of the spell: if the texts agree once the day is
replaced by ``{day}``, the spell keeps that template (``detail_mode="day"``);
otherwise the spell is split into single days. Texts naming the day's month
("no employee contribution recorded for 2025-03") make one spell per month at
first; consecutive months whose texts agree once the month is replaced by
``{month}`` are merged into one spell (``detail_mode="month"``); a stretch of
months without an employee row is asked at its two ends only when that settles
every month (:func:`_months_pieces`: "no employee contribution recorded for ..."
is the common text; asking each of 36 months was two thirds of all evaluations).
That is how projections.entitlement words its decisions today: the day by its ISO
date, the month only for the employee scheme (whose persons get month pieces). A
text naming the day in another way would need another breakpoint rule here; the
every-day tests (tests/unit/test_projection_store_spells.py and _queries.py) fail
if that happens.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Iterable

from projections.coverage_gaps import REASONS, person_gap

DAY = timedelta(days=1)
DAY_PLACEHOLDER = "{day}"
MONTH_PLACEHOLDER = "{month}"

#: The keys of a gap line that a spell keeps (everything but the evaluation ``day``).
LINE_KEYS = (
    "person_id", "year", "grid_code", "township_code", "region_code", "covered", "reason", "label", "detail",
    "subsidised", "subsidy_category", "outstanding_fen", "scheme", "policy_version", "sources",
)


def row_dates(value: Any, out: set[date] | None = None) -> set[date]:
    """Every calendar date (not instant) anywhere in a row (more than the spells need: see :func:`gap_dates`)."""
    out = set() if out is None else out
    for item in (value.values() if type(value) is dict else value):
        kind = type(item)
        if kind is date:
            out.add(item)
        elif kind is dict or kind is list or kind is tuple:
            row_dates(item, out)
    return out


def gap_dates(row: dict[str, Any], year: int | None = None) -> set[date]:
    """The days on which :func:`~projections.coverage_gaps.person_gap` may change its answer (for ``year``).

    Every date the rules compare the evaluation day with: residence records (who lives
    where), every enrollment's start and end (in force, employee scheme, duplicates),
    both halves of every transfer, the date of every payment for a period of the year
    and of its refunds (paid anything for the year by the day), and the year's resident
    row: its funding periods (from, until), their coverage periods and waiting-period
    ends, and the enrollment end (``entitlement.row_covered_on``). Without ``year``: the
    payments and resident rows of every year. A rule ``date <= day`` changes on the date; a rule
    ``date < day`` (the deceased after the day of death, an enrollment or a coverage
    period after its last day) on the day after, which is taken for those dates. A rule
    comparing the day with another date needs it here: the every-day tests
    (tests/unit/test_projection_store_spells.py and _queries.py) fail otherwise.
    """
    h = row["history"]
    on: set[Any] = set()  # the answer may change on the date
    after: set[Any] = set()  # ... and on the day after it
    for r in h["residence"]:
        after.add(r["on"])
    for e in h["enrollments"]:
        on.add(e["start_date"])
        after.add(e["end_date"])
    for t in h.get("transfers", {}).values():  # (.get: rows built by hand in tests hold only some facts)
        on.add(t["started_on"])
        on.add(t["completed_on"])
    prefix = None if year is None else f"{year:04d}"
    for p in h.get("payments", {}).values():
        if prefix is not None and not any(k[:4] == prefix for k in p["periods"]):
            continue
        on.add(p["paid_on"])
        for r in p["refunds"]:
            on.add(r["on"])
    years = row["years"].values() if year is None else ([row["years"][year]] if year in row["years"] else [])
    for y in years:
        after.add(y["enrollment_end"])
        for entry in y["funding"]:
            on.add(entry["from"])
            on.add(entry["until"])
            if entry["waiting"] is not None:
                on.add(entry["waiting"]["coverage_start"])
            for first, last in entry["coverage"]:
                on.add(first)
                after.add(last)
    after.discard(None)
    on.update(after)
    on.update(d + DAY for d in after if d < date.max)
    on.discard(None)
    return on


def _has_employee_months(row: dict[str, Any]) -> bool:
    return bool(row["employee_years"]) or any(e["scheme"] == "EMPLOYEE" for e in row["history"]["enrollments"])


def ever_in_a_grid(row: dict[str, Any], until: date) -> bool:
    """True when some residence record on or before ``until`` puts the person in a grid (else no spell at all)."""
    return any(r["status"] == "RESIDENT" and r["grid"] and r["on"] <= until for r in row["history"]["residence"])


def breakpoints(year: int, dates: Iterable[date], *, months: Iterable[int] = (), next_days: bool = True) -> list[date]:
    """The days of ``year`` on which a gap line may change, ascending, starting with 1 January.

    ``months``: the months whose first day is a breakpoint too (see :func:`employee_month_breaks`).
    ``next_days``: each date's next day too (``dates`` from :func:`gap_dates` hold the ones needed).
    """
    first, last = date(year, 1, 1), date(year, 12, 31)
    points = {first}
    points.update(date(year, m, 1) for m in months)
    for d in dates:
        if first <= d <= last:
            points.add(d)
        if next_days:
            after = d + DAY if d < date.max else d
            if first <= after <= last:
                points.add(after)
    return sorted(points)


def employee_month_breaks(row: dict[str, Any], year: int) -> set[int]:
    """The months of ``year`` on whose first day the employee-month part of a gap line may change.

    The rules look the day's month up in the row's employee months of the year (covered,
    paid, the month's text): the answer changes only where a month with a row starts
    and where the month after one starts. Between those, every month finds no row, and
    its line differs from its neighbours' at most by the month named in the text
    ("no employee contribution recorded for 2025-04"): :func:`_months_pieces` handles
    that without asking every month.
    """
    keys = row["employee_years"].get(year, {}).get("months", {})
    held = {int(k[5:7]) for k in keys}
    return {m for m in range(2, 13) if m in held or m - 1 in held}


def _line(row: dict[str, Any], year: int, day: date, policies: Any,
          categories: dict[str, str | None] | None = None) -> dict[str, Any] | None:
    line = person_gap(row, year, day, policies, categories=categories)
    if line is not None:
        del line["day"]  # a line is a fresh dict: LINE_KEYS are the other keys
    return line


def _spell(line: dict[str, Any], first: date, last: date, mode: str) -> dict[str, Any]:
    return {**line, "valid_from": first, "valid_until": last, "detail_mode": mode,
            "reason_rank": REASONS.index(line["reason"]) if line["reason"] else None}


_SAME_KEYS = {but: tuple(k for k in LINE_KEYS if k != but) for but in ("", "detail")}


def _same(a: dict[str, Any], b: dict[str, Any], but: str = "") -> bool:
    for k in _SAME_KEYS[but]:
        if a[k] != b[k]:
            return False
    return True


def _stretch_pieces(line_at: Any, first: date, last: date, pieces: list[tuple[dict[str, Any], date, date, str]]) -> None:
    """The pieces (line, first, last, detail mode) of a stretch of days between two breakpoints."""
    line = line_at(first)
    if line is None:
        return
    iso = first.isoformat()
    if iso not in line["detail"]:
        pieces.append((line, first, last, "fixed"))
        return
    if first == last:
        pieces.append((line, first, last, "fixed"))
        return
    at_end = line_at(last)
    if at_end is not None and at_end["detail"] == line["detail"] and _same(line, at_end):
        # The date in the text is not the day (e.g. coverage "2025-01-01 to 2025-12-31" asked on 1 January).
        pieces.append((line, first, last, "fixed"))
        return
    template = line["detail"].replace(iso, DAY_PLACEHOLDER)
    if (at_end is not None and DAY_PLACEHOLDER not in line["detail"]
            and at_end["detail"].replace(last.isoformat(), DAY_PLACEHOLDER) == template
            and _same({**line, "detail": template}, {**at_end, "detail": template})):
        pieces.append(({**line, "detail": template}, first, last, "day"))
        return
    day = first  # the text depends on the day in another way: one spell per day
    while day <= last:
        one = line_at(day)
        if one is not None:
            pieces.append((one, day, day, "fixed"))
        day += DAY


def _month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _month_stretches(first: date, last: date) -> list[tuple[date, date]]:
    """[first, last] cut at the first of every month: (first, last) per month, ascending."""
    out = []
    start = first
    while start <= last:
        following = date(start.year + 1, 1, 1) if start.month == 12 else date(start.year, start.month + 1, 1)
        end = min(last, following - DAY)
        out.append((start, end))
        start = following
    return out


def _months_pieces(line_at: Any, first: date, last: date, pieces: list[tuple[dict[str, Any], date, date, str]]) -> None:
    """:func:`_stretch_pieces` of each month of a stretch spanning several, for a row whose spells break at months.

    The pieces are the ones asking each month would give, but the line is asked at the
    two ends only where that settles it. No rule changes its answer inside the stretch
    (no breakpoint, no employee-month row: :func:`employee_month_breaks`), so the lines
    of its months differ at most in the day or month their text names: a text naming
    neither, or the same at both ends, is every month's; a text naming the month (and
    not the day) whose template ``{month}`` agrees at both ends is every month's with
    its own month. Anything else is asked month by month.
    """
    line = line_at(first)
    if line is None:
        return  # the residence record decides None, and it does not change inside the stretch
    detail = line["detail"]
    month = _month_key(first)
    if month not in detail:  # (the day's ISO text holds its month: this names neither)
        pieces.append((line, first, last, "fixed"))
        return
    at_end = line_at(last)
    if at_end is not None and _same(line, at_end, but="detail"):
        if at_end["detail"] == detail:
            pieces.append((line, first, last, "fixed"))
            return
        template = detail.replace(month, MONTH_PLACEHOLDER)
        if (first.isoformat() not in detail and MONTH_PLACEHOLDER not in detail
                and at_end["detail"].replace(_month_key(last), MONTH_PLACEHOLDER) == template):
            months = []
            for start, end in _month_stretches(first, last):
                text = template.replace(MONTH_PLACEHOLDER, _month_key(start))
                if start.isoformat() in text:
                    break  # that month's text would name its first day: ask month by month
                months.append(({**line, "detail": text, "sources": list(line["sources"])}, start, end, "fixed"))
            else:
                pieces.extend(months)
                return
    for start, end in _month_stretches(first, last):
        _stretch_pieces(line_at, start, end, pieces)


def year_spells(row: dict[str, Any], year: int, policies: Any, dates: set[date] | None = None) -> list[dict[str, Any]]:
    """The spells of one coverage year, ascending; days the person lives in no grid have none."""
    if not ever_in_a_grid(row, date(year, 12, 31)):
        return []
    dates = gap_dates(row, year) if dates is None else dates
    monthly = _has_employee_months(row)
    points = breakpoints(year, dates, months=employee_month_breaks(row, year) if monthly else (), next_days=False)
    ends = [p - DAY for p in points[1:]] + [date(year, 12, 31)]
    categories: dict[str, str | None] = {}  # subsidy category per grid: the same on every day of the year

    def line_at(day: date) -> dict[str, Any] | None:
        return _line(row, year, day, policies, categories)

    pieces: list[tuple[dict[str, Any], date, date, str]] = []
    for first, last in zip(points, ends):
        if monthly and first.month != last.month:
            _months_pieces(line_at, first, last, pieces)
        else:
            _stretch_pieces(line_at, first, last, pieces)
    spells: list[dict[str, Any]] = []
    for line, first, last, mode in pieces:
        previous = spells[-1] if spells else None
        if previous is not None and previous["valid_until"] + DAY == first and _same(previous, line, but="detail"):
            if previous["detail_mode"] == mode and previous["detail"] == line["detail"]:
                previous["valid_until"] = last
                continue
            # Employee months: "no employee contribution recorded for 2025-03", then "... 2025-04".
            template = _month_template(line["detail"], first, last, mode)
            if template is not None and (
                    (previous["detail_mode"] == "month" and previous["detail"] == template)
                    or previous.get("_month_template") == template):
                previous.update(detail=template, detail_mode="month", valid_until=last)
                continue
        spell = _spell(line, first, last, mode)
        spell["_month_template"] = _month_template(line["detail"], first, last, mode)
        spells.append(spell)
    for spell in spells:
        del spell["_month_template"]
    return spells


def _month_template(detail: str, first: date, last: date, mode: str) -> str | None:
    """The text with its month ("2025-03") as ``{month}``, for a stretch of days inside that month (else None)."""
    if mode != "fixed" or (first.year, first.month) != (last.year, last.month):
        return None
    month = f"{first.year:04d}-{first.month:02d}"
    return detail.replace(month, MONTH_PLACEHOLDER) if month in detail and MONTH_PLACEHOLDER not in detail else None


def gap_spells(row: dict[str, Any], years: Iterable[int], policies: Any) -> list[dict[str, Any]]:
    """The spells of every year in ``years`` for one entitlement row (see the module docstring).

    A spell is the gap line of :func:`~projections.coverage_gaps.person_gap` without
    ``day``, plus ``valid_from`` and ``valid_until`` (both inclusive), ``reason_rank``
    (the reason's place in ``REASONS``, None when covered) and ``detail_mode``
    (``"fixed"``; ``"day"``: ``detail`` holds ``{day}`` for the evaluation day;
    ``"month"``: ``{month}`` for its month, ``YYYY-MM``).
    """
    return [spell for year in years for spell in year_spells(row, year, policies)]


def line_on(spell: dict[str, Any], day: date) -> dict[str, Any]:
    """The gap line a spell gives for ``day`` (which must lie in the spell): what ``person_gap`` returns."""
    line = {k: spell[k] for k in LINE_KEYS}
    line["day"] = day
    if spell["detail_mode"] == "day":
        line["detail"] = spell["detail"].replace(DAY_PLACEHOLDER, day.isoformat())
    elif spell["detail_mode"] == "month":
        line["detail"] = spell["detail"].replace(MONTH_PLACEHOLDER, f"{day.year:04d}-{day.month:02d}")
    line["sources"] = list(spell["sources"])
    return line


__all__ = ["LINE_KEYS", "breakpoints", "gap_dates", "gap_spells", "line_on", "row_dates", "year_spells"]
