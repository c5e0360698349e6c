"""Coverage-gap spells: a person's gap-list line as a step function of the day (pure).

:func:`ledger.domain.gaps.person_gap` answers for one evaluation day: does the
person live in a grid, are they covered, and if not, why. A grid worker's list asks
that of thousands of people at once, for any day; folding the whole entitlement row
of each at query time is far too slow. But the answer only changes on days the row
names: every rule compares the day with a date the row holds (a payment, a refund, a
residence record, the start of coverage after a waiting period, the start or end of
an enrollment -- two in force make a duplicate --, either half of a transfer...), as
``date <= day`` or ``date < day``. So between two consecutive
*breakpoints* -- 1 January, every such date of the row and the day after it, and
(for anyone with employee-scheme months) the first of every month with an employee
month row and of the month after it -- the answer is constant. :func:`gap_spells`
evaluates ``person_gap`` once per breakpoint, with the pure function itself (its
:class:`~ledger.domain.gaps.YearLines` form, which looks up once what does
not depend on the day), and merges equal neighbours into spells ``[valid_from,
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

from ledger.domain.gaps import LINE_KEYS, REASONS, YearLines
from ledger.domain.history import PersonHistory

DAY = timedelta(days=1)
DAY_PLACEHOLDER = "{day}"
MONTH_PLACEHOLDER = "{month}"

# A gap line here is a tuple in LINE_KEYS order (the keys of a gap line but the evaluation
# ``day``: what a spell keeps), from YearLines.fields: no dict per day asked.
DETAIL = LINE_KEYS.index("detail")
#: The mode of a piece standing for a run of month pieces whose texts differ only in their month.
MONTHS = "months"
REASON = LINE_KEYS.index("reason")
Line = tuple  # type: ignore[type-arg]


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
    """The days on which :func:`~ledger.domain.gaps.person_gap` may change its answer (for ``year``).

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
    on, after = _shared_dates(row["history"])
    return _with_year_dates(row, year, on, after)


def gap_dates_by_year(row: dict[str, Any], years: Iterable[int]) -> dict[int, set[date]]:
    """:func:`gap_dates` of each year, the dates every year shares (residence, enrollments, transfers) taken once."""
    on, after = _shared_dates(row["history"])
    paid: dict[str, set[Any]] = {}  # year ("2025") -> the dates of the payments for it and of their refunds
    for p in row["history"].payments.values():
        days = {p.paid_on, *(r.on for r in p.refunds)}
        for prefix in {k[:4] for k in p.periods}:
            paid.setdefault(prefix, set()).update(days)
    return {year: _with_year_dates(row, year, on | paid.get(f"{year:04d}", set()), set(after), paid_known=True)
            for year in years}


def _shared_dates(h: PersonHistory) -> tuple[set[Any], set[Any]]:
    """(the dates on which the answer may change, the dates after which it may) of every year: see :func:`gap_dates`."""
    on: set[Any] = set()  # the answer may change on the date
    after: set[Any] = set()  # ... and on the day after it
    for r in h.residence:
        after.add(r.on)
    for e in h.enrollments:
        on.add(e.start_date)
        after.add(e.end_date)
    for t in h.transfers.values():
        on.add(t.started_on)
        on.add(t.completed_on)
    return on, after


def _with_year_dates(row: dict[str, Any], year: int | None, on: set[Any], after: set[Any], *,
                     paid_known: bool = False) -> set[date]:
    """:func:`gap_dates` from :func:`_shared_dates` (changed in place): the year's payments and resident row added.

    ``paid_known``: ``on`` holds the dates of the year's payments and refunds already.
    """
    prefix = None if year is None else f"{year:04d}"
    for p in () if paid_known else row["history"].payments.values():
        if prefix is not None and not any(k[:4] == prefix for k in p.periods):
            continue
        on.add(p.paid_on)
        for r in p.refunds:
            on.add(r.on)
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
    return bool(row["employee_years"]) or any(e.scheme == "EMPLOYEE" for e in row["history"].enrollments)


def ever_in_a_grid(row: dict[str, Any], until: date) -> bool:
    """True when some residence record on or before ``until`` puts the person in a grid (else no spell at all)."""
    return any(r.status == "RESIDENT" and r.grid and r.on <= until for r in row["history"].residence)


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


def year_lines(row: dict[str, Any], year: int, policies: Any) -> Any:
    """day -> the gap line of ``row`` for ``year`` on that day (a tuple in LINE_KEYS order), or None."""
    return YearLines(row, year, policies).fields


def _same_but_detail(a: Line, b: Line) -> bool:
    return a[:DETAIL] == b[:DETAIL] and a[DETAIL + 1:] == b[DETAIL + 1:]


def _with_detail(line: Line, detail: str) -> Line:
    return line[:DETAIL] + (detail,) + line[DETAIL + 1:]


def _stretch_pieces(line_at: Any, first: date, last: date, pieces: list[tuple[Line, date, date, str]]) -> None:
    """The pieces (line, first, last, detail mode) of a stretch of days between two breakpoints."""
    line = line_at(first)
    if line is None:
        return
    iso = first.isoformat()
    detail = line[DETAIL]
    if iso not in detail:
        pieces.append((line, first, last, "fixed"))
        return
    if first == last:
        pieces.append((line, first, last, "fixed"))
        return
    at_end = line_at(last)
    if at_end is not None and at_end == line:
        # The date in the text is not the day (e.g. coverage "2025-01-01 to 2025-12-31" asked on 1 January).
        pieces.append((line, first, last, "fixed"))
        return
    template = detail.replace(iso, DAY_PLACEHOLDER)
    if (at_end is not None and DAY_PLACEHOLDER not in detail
            and at_end[DETAIL].replace(last.isoformat(), DAY_PLACEHOLDER) == template
            and _same_but_detail(line, at_end)):
        pieces.append((_with_detail(line, template), first, last, "day"))
        return
    day = first  # the text depends on the day in another way: one spell per day
    while day <= last:
        one = line_at(day)
        if one is not None:
            pieces.append((one, day, day, "fixed"))
        day += DAY


def _month_key(day: date) -> str:
    return _months_of(day.year)[day.month - 1][2]


_MONTHS: dict[int, tuple[tuple[date, date, str, str], ...]] = {}


def _months_of(year: int) -> tuple[tuple[date, date, str, str], ...]:
    """(first day, last day, "YYYY-MM", first day's ISO text) of each month of ``year``, made once per year."""
    found = _MONTHS.get(year)
    if found is None:
        starts = [date(year, m, 1) for m in range(1, 13)] + [date(year + 1, 1, 1)]
        found = _MONTHS[year] = tuple((starts[i], starts[i + 1] - DAY, f"{year:04d}-{i + 1:02d}", starts[i].isoformat())
                                      for i in range(12))
    return found


def _month_stretches(first: date, last: date) -> list[tuple[date, date, str, str]]:
    """[first, last] (one year) cut at the first of every month: (first, last, "YYYY-MM", first's ISO text) per month."""
    out = list(_months_of(first.year)[first.month - 1:last.month])
    start, end, key, iso = out[0]
    if first != start:
        out[0] = (first, end, key, first.isoformat())
    start, end, key, iso = out[-1]
    if last != end:
        out[-1] = (start, last, key, iso)
    return out


def _months_pieces(line_at: Any, first: date, last: date, pieces: list[tuple[Line, date, date, str]]) -> None:
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
    detail = line[DETAIL]
    month = _month_key(first)
    if month not in detail:  # (the day's ISO text holds its month: this names neither)
        pieces.append((line, first, last, "fixed"))
        return
    at_end = line_at(last)
    if at_end is not None and _same_but_detail(line, at_end):
        if at_end[DETAIL] == detail:
            pieces.append((line, first, last, "fixed"))
            return
        template = detail.replace(month, MONTH_PLACEHOLDER)
        if (first.isoformat() not in detail and MONTH_PLACEHOLDER not in detail
                and at_end[DETAIL].replace(_month_key(last), MONTH_PLACEHOLDER) == template):
            for _, _, key, iso in _month_stretches(first, last):
                text = template.replace(MONTH_PLACEHOLDER, key)
                if iso in text or text.replace(key, MONTH_PLACEHOLDER) != template:
                    break  # that month's text would name its first day, or more than its month: ask month by month
            else:
                # One piece standing for the month pieces: the line (first month's text) and its template.
                pieces.append((line, first, last, MONTHS))
                return
    for start, end, _, _ in _month_stretches(first, last):
        _stretch_pieces(line_at, start, end, pieces)


def year_spells(row: dict[str, Any], year: int, policies: Any, dates: set[date] | None = None) -> list[dict[str, Any]]:
    """The spells of one coverage year, ascending; days the person lives in no grid have none."""
    if not ever_in_a_grid(row, date(year, 12, 31)):
        return []
    dates = gap_dates(row, year) if dates is None else dates
    monthly = _has_employee_months(row)
    points = breakpoints(year, dates, months=employee_month_breaks(row, year) if monthly else (), next_days=False)
    ends = [p - DAY for p in points[1:]] + [date(year, 12, 31)]
    line_at = year_lines(row, year, policies)
    pieces: list[tuple[Line, date, date, str]] = []
    for first, last in zip(points, ends):
        if monthly and first.month != last.month:
            _months_pieces(line_at, first, last, pieces)
        else:
            _stretch_pieces(line_at, first, last, pieces)
    merged: list[list[Any]] = []  # [line, valid_from, valid_until, detail mode, month template when made]
    for line, first, last, mode in pieces:
        if mode != MONTHS:
            _merge(merged, line, first, last, mode)
            continue
        # A run of months from _months_pieces: its first month's piece, then the others, which
        # (each month's text giving the run's template) all join the first one's spell as "month"
        # when the second one does (merging them one by one would give that too).
        months = _month_stretches(first, last)
        start, end, _, _ = months[0]
        _merge(merged, line, start, end, "fixed")
        template = _month_template(line[DETAIL], start, end, "fixed")
        previous = merged[-1]
        if (previous[3] == "month" and previous[0][DETAIL] == template) or previous[4] == template:
            previous[0] = _with_detail(previous[0], template)
            previous[2:4] = [last, "month"]
            continue
        for start, end, key, _ in months[1:]:
            _merge(merged, _with_detail(line, template.replace(MONTH_PLACEHOLDER, key)), start, end, "fixed")
    spells = []
    for line, first, last, mode, _ in merged:
        spell = dict(zip(LINE_KEYS, line))
        spell["sources"] = list(spell["sources"])  # each spell its own list (a piece's line may be shared)
        spell.update(valid_from=first, valid_until=last, detail_mode=mode,
                     reason_rank=REASONS.index(line[REASON]) if line[REASON] else None)
        spells.append(spell)
    return spells


def _merge(merged: list[list[Any]], line: Line, first: date, last: date, mode: str) -> None:
    """Add a piece to the spells made so far: it extends the last one where it continues it, else starts one."""
    if merged:
        previous = merged[-1]
        if previous[2] + DAY == first and _same_but_detail(previous[0], line):
            if previous[3] == mode and previous[0][DETAIL] == line[DETAIL]:
                previous[2] = last
                return
            # Employee months: "no employee contribution recorded for 2025-03", then "... 2025-04".
            template = _month_template(line[DETAIL], first, last, mode)
            if template is not None and (
                    (previous[3] == "month" and previous[0][DETAIL] == template) or previous[4] == template):
                previous[0] = _with_detail(previous[0], template)
                previous[2:4] = [last, "month"]
                return
    merged.append([line, first, last, mode, _month_template(line[DETAIL], first, last, mode)])


def _month_template(detail: str, first: date, last: date, mode: str) -> str | None:
    """The text with its month ("2025-03") as ``{month}``, for a stretch of days inside that month (else None)."""
    if mode != "fixed" or (first.year, first.month) != (last.year, last.month):
        return None
    month = f"{first.year:04d}-{first.month:02d}"
    return detail.replace(month, MONTH_PLACEHOLDER) if month in detail and MONTH_PLACEHOLDER not in detail else None


def gap_spells(row: dict[str, Any], years: Iterable[int], policies: Any) -> list[dict[str, Any]]:
    """The spells of every year in ``years`` for one entitlement row (see the module docstring).

    A spell is the gap line of :func:`~ledger.domain.gaps.person_gap` without
    ``day``, plus ``valid_from`` and ``valid_until`` (both inclusive), ``reason_rank``
    (the reason's place in ``REASONS``, None when covered) and ``detail_mode``
    (``"fixed"``; ``"day"``: ``detail`` holds ``{day}`` for the evaluation day;
    ``"month"``: ``{month}`` for its month, ``YYYY-MM``).
    """
    years = list(years)
    dates = gap_dates_by_year(row, years)
    return [spell for year in years for spell in year_spells(row, year, policies, dates[year])]


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


__all__ = ["LINE_KEYS", "breakpoints", "gap_dates", "gap_dates_by_year", "gap_spells", "line_on", "row_dates", "year_spells"]
