"""Pure calculations on a policy table: what is due, what is subsidised, when coverage starts.

No I/O and no floats: money is integer fen, rates integer basis points or millionths,
and every division rounds half up to the fen (``round_half_up_div``). Each result
carries ``policy_version`` ("<version>@<digest>") so a recorded assessment can be
traced to the exact table that produced it, and an explanation a clerk can read.
"""
from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ledger.domain.errors import DomainError
from ledger.policy.model import (
    SUBSIDY_CATEGORIES,
    WAITING_EXEMPTIONS,
    PolicyTable,
    StatusRule,
    SubsidyKind,
    SubsidyRule,
    ValueLimits,
    bp_text,
    fen_text,
    round_half_up_div,
)


def _whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _non_negative(name: str, value: int, code: str) -> int:
    if not _whole_number(value):
        raise DomainError(code, f"{name} must be a whole number, got {_shown(value)}", field=name)
    if value < 0:
        raise DomainError(code, f"{name} cannot be negative (got {value})", field=name)
    return value


def _shown(value: Any) -> str:
    """A value in a message, cut short: a 10^30 or a 3 MB string must not fill the error."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------- the value gate


def check_amount_fen(value: Any, field: str, limits: ValueLimits, *, allow_zero: bool = False) -> int:
    """The one gate for money (金额校验) on every entrance: whole fen, positive, at most the ceiling.

    HTTP bodies, the clerk CLI, feed files, the Kafka feeds, the spreadsheet import and the
    person aggregate itself all call this, so a value no real payment reaches (2^63, 10^30)
    is refused everywhere with the same code before anything is written:

    * ``AMOUNT_NOT_INTEGER_FEN``: not an int (a float, text, a bool);
    * ``AMOUNT_NOT_POSITIVE``: zero (unless ``allow_zero``) or negative;
    * ``AMOUNT_TOO_LARGE``: above ``limits.amount_ceiling_fen`` (the policy tables' ``[limits]``).
    """
    if not _whole_number(value):
        raise DomainError(
            "AMOUNT_NOT_INTEGER_FEN",
            f"{field} must be a whole number of fen (分), e.g. 40000 for 400 yuan; got {_shown(value)}",
            field=field,
        )
    if value < 0 or (value == 0 and not allow_zero):
        raise DomainError(
            "AMOUNT_NOT_POSITIVE",
            f"{field} must be {'zero or more' if allow_zero else 'more than zero'} fen; got {_shown(value)}",
            field=field,
        )
    ceiling = limits.amount_ceiling_fen
    if value > ceiling:
        raise DomainError(
            "AMOUNT_TOO_LARGE",
            f"{field} 金额 {_shown(value)} 分超过单笔上限 {ceiling} 分（{fen_text(ceiling)}），"
            f"请核对金额是否多输了位数 ({field} of {_shown(value)} fen is above the ceiling of "
            f"{ceiling} fen per record; check for extra digits)",
            field=field,
            ceiling_fen=ceiling,
        )
    return value


def check_business_date(value: Any, field: str, limits: ValueLimits) -> date:
    """The one gate for business dates (业务日期校验): a calendar date inside the plausible window.

    ``DATE_INVALID`` for anything but a ``date`` (a datetime included);
    ``DATE_OUT_OF_RANGE`` before ``limits.earliest_date`` (1900-01-01) or after
    ``limits.latest_date`` (31 December of the year after the latest policy table).
    """
    if isinstance(value, datetime) or not isinstance(value, date):
        raise DomainError("DATE_INVALID", f"{field} must be a calendar date (YYYY-MM-DD); got {_shown(value)}",
                          field=field)
    if not limits.earliest_date <= value <= limits.latest_date:
        earliest, latest = limits.earliest_date.isoformat(), limits.latest_date.isoformat()
        raise DomainError(
            "DATE_OUT_OF_RANGE",
            f"{field} 日期 {value.isoformat()} 不在合理范围 {earliest} 至 {latest} 之内，请核对年份 "
            f"({field} {value.isoformat()} is outside {earliest}..{latest}; check the year)",
            field=field,
            earliest=earliest,
            latest=latest,
        )
    return value


def check_not_before_birth(value: date, field: str, born_on: date | None) -> date:
    """An enrollment cannot take effect before the person was born (``DATE_BEFORE_BIRTH``).

    ``born_on`` is the birth date read from the ID number when the ID type carries one
    (None otherwise: nothing to check).
    """
    if born_on is not None and value < born_on:
        raise DomainError(
            "DATE_BEFORE_BIRTH",
            f"{field} 日期 {value.isoformat()} 早于参保人出生日期 {born_on.isoformat()}（据身份证号码），"
            f"请核对日期或证件号码 ({field} {value.isoformat()} is before the birth date {born_on.isoformat()} "
            f"in the ID number)",
            field=field,
        )
    return value


# --------------------------------------------------------------------------- subsidies


def _normalise_categories(categories: Iterable[str]) -> list[str]:
    if isinstance(categories, str):  # a single code passed bare: don't iterate its letters
        categories = [categories]
    result = []
    for raw in categories:
        code = str(raw).strip().upper()
        if code not in SUBSIDY_CATEGORIES:
            raise DomainError(
                "SUBSIDY_CATEGORY_UNKNOWN",
                f"subsidy category {str(raw)[:40]!r} is not known; use one of "
                f"{', '.join(SUBSIDY_CATEGORIES)}",
                category=str(raw)[:40],
            )
        result.append(code)
    return result


def _rule_in_force(table: PolicyTable, rule: SubsidyRule) -> bool:
    return rule.in_force_on(table.resident.status_reference_date)


def status_counts(table: PolicyTable, category: str, valid_from: date, valid_until: date | None) -> bool:
    """Does a status held from ``valid_from`` to ``valid_until`` (inclusive; None = open) count for the table's year?

    Applies the table's ``status_rule``: ANY_DAY_IN_COVERAGE_YEAR (the status overlaps
    the coverage year) or ON_DATE (the status holds on ``status_date``). A time-limited
    category (``until``) stops counting after that day. A category the table does not
    subsidise never counts.
    """
    (code,) = _normalise_categories([category])
    rule = table.resident.subsidies.get(code)
    if rule is None:
        return False
    end = valid_until
    if rule.until is not None:
        end = rule.until if end is None else min(end, rule.until)
    if end is not None and end < valid_from:
        return False
    resident = table.resident
    if resident.status_rule is StatusRule.ON_DATE:
        day = resident.status_date
        return valid_from <= day and (end is None or day <= end)
    return valid_from <= resident.coverage_end and (end is None or end >= resident.coverage_start)


def categories_for_year(
    table: PolicyTable, statuses: Iterable[tuple[str, date, date | None]]
) -> set[str]:
    """Categories that count for the table's year from (category, valid_from, valid_until) statuses."""
    return {
        category.strip().upper()
        for category, valid_from, valid_until in statuses
        if status_counts(table, category, valid_from, valid_until)
    }


def resident_subsidy(table: PolicyTable, categories: Iterable[str]) -> tuple[str | None, int]:
    """The most generous subsidy among the person's categories, and which category gives it.

    Several statuses never add up: the largest single subsidy applies. On a tie the
    category listed first in ``SUBSIDY_CATEGORIES`` is named. A category the table
    does not subsidise (or whose time limit has passed) gives nothing; a code that is
    not a category at all raises ``SUBSIDY_CATEGORY_UNKNOWN``.
    """
    codes = _normalise_categories(categories)
    share = table.resident.individual_share_fen
    order = list(SUBSIDY_CATEGORIES)
    best: tuple[str | None, int] = (None, 0)
    for code in sorted(set(codes), key=order.index):
        rule = table.resident.subsidies.get(code)
        if rule is None or not _rule_in_force(table, rule):
            continue
        amount = rule.subsidy_fen(share)
        if amount > best[1]:
            best = (code, amount)
    return best


@dataclass(frozen=True)
class ResidentAssessment:
    """What a resident owes for one coverage year (城乡居民缴费核定)."""

    region_code: str
    coverage_year: int
    standard_fen: int  # the individual share before any subsidy
    subsidy_fen: int
    due_fen: int
    due_date: date
    subsidy_category: str | None
    policy_version: str
    explanation: str


def _subsidy_words(rule: SubsidyRule) -> str:
    """The subsidy rule inside the assessment's own explanation (a recorded English sentence, like the rest of it)."""
    kind, values = rule.describe()
    if kind == SubsidyKind.FULL.value:
        return "full individual share"
    if kind == SubsidyKind.FIXED_FEN.value:
        return f"fixed {fen_text(values['amount_fen'])}"
    return f"{bp_text(values['percent_bp'])} of the individual share"


def resident_assessment(table: PolicyTable, categories: Iterable[str] = ()) -> ResidentAssessment:
    """Assess the individual share for the table's coverage year, net of the best subsidy."""
    category, subsidy = resident_subsidy(table, categories)
    standard = table.resident.individual_share_fen
    due = max(0, standard - subsidy)
    if category is None:
        explanation = f"individual share {fen_text(standard)}, no subsidy; due {fen_text(due)}"
    else:
        rule = table.resident.subsidies[category]
        explanation = (
            f"individual share {fen_text(standard)} - subsidy {fen_text(subsidy)} "
            f"({category} {SUBSIDY_CATEGORIES[category]}: {_subsidy_words(rule)}) = due {fen_text(due)}"
        )
    return ResidentAssessment(
        region_code=table.region_code,
        coverage_year=table.coverage_year,
        standard_fen=standard,
        subsidy_fen=subsidy,
        due_fen=due,
        due_date=table.resident.due_date,
        subsidy_category=category,
        policy_version=table.policy_version,
        explanation=f"{explanation}, by {table.resident.due_date.isoformat()} [{table.policy_version}]",
    )


# --------------------------------------------------------------------------- employees


@dataclass(frozen=True)
class EmployeeAssessment:
    """One month's employee-scheme contribution for one member (职工医保月缴费核定)."""

    region_code: str
    coverage_year: int
    declared_base_fen: int
    base_fen: int  # after clamping to the floor / ceiling
    base_rule: str  # "DECLARED" | "FLOOR" | "CEILING"
    employer_fen: int
    employee_fen: int
    personal_account_fen: int  # credited to the member's personal account from employee_fen
    policy_version: str
    explanation: str

    @property
    def total_fen(self) -> int:
        return self.employer_fen + self.employee_fen


def employee_contribution(table: PolicyTable, declared_base_fen: int) -> EmployeeAssessment:
    """Monthly contributions on a declared base, clamped to 60%-300% (per table) of the average wage."""
    _non_negative("declared base", declared_base_fen, "CONTRIBUTION_BASE_INVALID")
    emp = table.employee
    floor, ceiling = emp.base_floor_fen, emp.base_ceiling_fen
    if declared_base_fen < floor:
        base, rule = floor, "FLOOR"
        base_text = f"declared base {fen_text(declared_base_fen)} raised to the floor {fen_text(floor)}"
    elif declared_base_fen > ceiling:
        base, rule = ceiling, "CEILING"
        base_text = f"declared base {fen_text(declared_base_fen)} lowered to the ceiling {fen_text(ceiling)}"
    else:
        base, rule = declared_base_fen, "DECLARED"
        base_text = f"base {fen_text(base)}"
    employer = round_half_up_div(base * emp.employer_rate_bp, 10_000)
    employee = round_half_up_div(base * emp.employee_rate_bp, 10_000)
    account = min(round_half_up_div(base * emp.personal_account_bp, 10_000), employee)
    return EmployeeAssessment(
        region_code=table.region_code,
        coverage_year=table.coverage_year,
        declared_base_fen=declared_base_fen,
        base_fen=base,
        base_rule=rule,
        employer_fen=employer,
        employee_fen=employee,
        personal_account_fen=account,
        policy_version=table.policy_version,
        explanation=(
            f"{base_text}; employer {emp.employer_rate_bp} bp = {fen_text(employer)}, "
            f"employee {emp.employee_rate_bp} bp = {fen_text(employee)}, of which "
            f"{fen_text(account)} to the personal account [{table.policy_version}]"
        ),
    )


def employee_due_date(table: PolicyTable, year: int, month: int) -> date:
    """Last day to pay a month's employee contributions (缴费截止日); arrears start the day after.

    The table says in which month (``due_month_offset`` after the contribution month)
    and on which day (``due_day``, clamped to the month's length) they are due.
    """
    if not 1 <= month <= 12:
        raise DomainError("PERIOD_INVALID", f"month must be 1 to 12, got {month}", month=month)
    emp = table.employee
    first = add_months(date(year, month, 1), emp.due_month_offset)
    return first.replace(day=min(emp.due_day, calendar.monthrange(first.year, first.month)[1]))


def late_fee_fen(table: PolicyTable, outstanding_fen: int, days_overdue: int) -> int:
    """Late fee (滞纳金) on employer arrears: outstanding × rate per day × days, rounded once, half up.

    Simple, not compound (社会保险法 Art. 86: 0.05% per day from the day the arrears
    arise). Zero or negative ``days_overdue`` means not overdue: no fee.
    """
    _non_negative("outstanding amount", outstanding_fen, "AMOUNT_INVALID")
    if days_overdue <= 0:
        return 0
    return round_half_up_div(outstanding_fen * table.employee.late_fee_ppm_per_day * days_overdue, 1_000_000)


# --------------------------------------------------------------------------- waiting periods


def add_months(day: date, months: int) -> date:
    """Add calendar months, clamping the day to the month's length (31 Jan + 1 month = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class WaitingDecision:
    """Waiting period (待遇等待期) of a resident enrolling for a coverage year, and why."""

    months: int
    coverage_start: date  # first day the fund pays
    reason: str
    exemption: str | None  # the exemption applied, if any
    policy_version: str


def waiting_period(
    table: PolicyTable,
    *,
    paid_on: date,
    first_time: bool,
    gap_years: int,
    back_paid_years: int,
    exemption: str | None,
    covered_last_year: bool,
    born_on: date | None = None,
    switch_gap_months: int | None = None,
) -> WaitingDecision:
    """Decide the waiting period and coverage start (domain.md, "The resident year ...").

    * ``gap_years``: consecutive years right before the coverage year without coverage
      (0 for a first-time enrollee or someone covered last year);
    * ``back_paid_years``: how many of those gap years were back-paid (补缴);
    * ``exemption``: one of NEWBORN (needs ``born_on``), SUBSIDISED, VETERAN,
      SCHEME_SWITCH (needs ``switch_gap_months``), honoured when the table grants it.

    No waiting if paid by the end of the concentrated period and covered last year or
    enrolling for the first time, or if exempt; a continuous payer in an extended
    window the table declares waiting-free is covered from the payment date.
    Otherwise: fixed + max(0, gap - 1 - back-paid) × per-gap months, at least the
    repaired minimum when a gap of 4+ years was back-paid, counted from the later of the
    payment date and 1 January.
    """
    code = "WAITING_INPUT_INVALID"
    _non_negative("gap years", gap_years, code)
    _non_negative("back-paid years", back_paid_years, code)
    resident, waiting = table.resident, table.resident.waiting
    year = table.coverage_year
    jan1 = resident.coverage_start
    if back_paid_years > gap_years:
        raise DomainError(code, f"{back_paid_years} back-paid years exceed the gap of {gap_years} years",
                          gap_years=gap_years, back_paid_years=back_paid_years)
    if first_time and (covered_last_year or gap_years):
        raise DomainError(code, "a first-time enrollee cannot have been covered last year or have a gap; "
                                "check the person's insurance history", gap_years=gap_years)
    if covered_last_year and gap_years:
        raise DomainError(code, f"covered in {year - 1} but a gap of {gap_years} years was given; "
                                "the gap counts only uncovered years right before the coverage year",
                          gap_years=gap_years)
    if not first_time and not covered_last_year and gap_years == 0:
        raise DomainError(code, f"not covered in {year - 1} and not a first-time enrollee, so the gap "
                                "is at least 1 year; check the person's insurance history")
    if paid_on > resident.coverage_end:
        raise DomainError(code, f"payment on {paid_on} is after coverage year {year} ended; a payment for "
                                "a past year is a back payment (补缴), not an enrollment", paid_on=paid_on)
    if exemption is not None:
        exemption = str(exemption).strip().upper()
        if exemption not in WAITING_EXEMPTIONS:
            raise DomainError("WAITING_EXEMPTION_UNKNOWN",
                              f"waiting-period exemption {exemption[:40]!r} is not known; use one of "
                              f"{', '.join(WAITING_EXEMPTIONS)}", exemption=exemption[:40])

    start = max(paid_on, jan1)

    def decide(months: int, coverage: date, reason: str, applied: str | None = None) -> WaitingDecision:
        if coverage > resident.coverage_end:
            reason += f"; the waiting period runs past the end of {year}, so no benefits in {year}"
        return WaitingDecision(months, coverage, reason, applied, table.policy_version)

    notes: list[str] = []
    if exemption is not None:
        if exemption not in waiting.exemptions:
            notes.append(f"exemption {exemption} is not granted by this policy")
        elif exemption == "NEWBORN":
            if born_on is None:
                raise DomainError(code, "the newborn exemption needs the date of birth")
            if born_on > paid_on:
                raise DomainError(code, f"born on {born_on}, after the payment on {paid_on}")
            age_days = (paid_on - born_on).days
            if age_days <= (waiting.newborn_window_days or 0):
                coverage = max(born_on, jan1)
                return decide(0, coverage, f"newborn enrolled {age_days} days after birth (within "
                              f"{waiting.newborn_window_days}): no waiting period; covered from "
                              f"{coverage.isoformat()}", "NEWBORN")
            notes.append(f"newborn enrolled {age_days} days after birth, beyond the "
                         f"{waiting.newborn_window_days}-day window")
        elif exemption == "SCHEME_SWITCH":
            if switch_gap_months is None:
                raise DomainError(code, "the scheme-switch exemption needs the gap in months between schemes")
            _non_negative("switch gap months", switch_gap_months, code)
            limit = waiting.scheme_switch_max_gap_months or 0
            if switch_gap_months <= limit:
                return decide(0, start, f"switched schemes with a paid gap of {switch_gap_months} months "
                              f"(at most {limit}): no waiting period; covered from {start.isoformat()}",
                              "SCHEME_SWITCH")
            notes.append(f"scheme switch gap of {switch_gap_months} months exceeds {limit}")
        else:
            label = {"SUBSIDISED": "subsidised (medical assistance) person",
                     "VETERAN": "soldier leaving service this year"}[exemption]
            return decide(0, start, f"{label}: exempt from waiting; covered from {start.isoformat()}",
                          exemption)
    prefix = "; ".join(notes) + ("; " if notes else "")

    if not waiting.enabled:
        return decide(0, start, f"{prefix}no waiting-period rule for {year} (国办发〔2024〕38号 applies from "
                      f"2025); covered from {start.isoformat()}")

    on_time = paid_on <= resident.concentrated_end
    period = f"{resident.concentrated_start.isoformat()} to {resident.concentrated_end.isoformat()}"
    if on_time and (covered_last_year or first_time):
        who = f"covered in {year - 1}" if covered_last_year else "first enrollment"
        return decide(0, jan1, f"{prefix}paid {paid_on.isoformat()} within the concentrated period "
                      f"({period}), {who}: no waiting period; covered from {jan1.isoformat()}")
    if (covered_last_year and resident.extended_window_waiting_free
            and resident.extended_window_end is not None and paid_on <= resident.extended_window_end):
        return decide(0, start, f"{prefix}paid {paid_on.isoformat()} in the extended window (to "
                      f"{resident.extended_window_end.isoformat()}), covered in {year - 1}: no waiting "
                      f"period; covered from the payment date {start.isoformat()}")

    if not on_time:
        why = f"paid {paid_on.isoformat()}, after the concentrated period ({period})"
    else:
        why = f"paid {paid_on.isoformat()} within the concentrated period but not covered in {year - 1}"
    gap = 0 if first_time else gap_years
    variable_years = max(0, gap - 1 - back_paid_years)
    variable = variable_years * waiting.per_gap_year_months
    months = waiting.fixed_months + variable
    arithmetic = (f"fixed {waiting.fixed_months} + variable max(0, gap {gap} - 1 - back-paid "
                  f"{back_paid_years}) x {waiting.per_gap_year_months} = {months} months")
    if back_paid_years > 0 and gap >= waiting.repaired_min_gap_years and months < waiting.repaired_min_months:
        months = waiting.repaired_min_months
        arithmetic += (f", raised to {months}: a repaired gap of {waiting.repaired_min_gap_years}+ years "
                       f"keeps at least {waiting.repaired_min_months} months")
    coverage = add_months(start, months)
    return decide(months, coverage, f"{prefix}{why}; {arithmetic}; waiting from {start.isoformat()}, "
                  f"covered from {coverage.isoformat()}")


# --------------------------------------------------------------------------- continuity


def continuity_cap_increment_fen(table: PolicyTable, continuous_years: int, claim_free_years: int) -> int:
    """Raise of the critical-illness cap (大病保险封顶线) earned by continuous, claim-free enrollment.

    ``continuous_years``: consecutive covered years up to and including the current
    one (a break resets it); ``claim_free_years``: claim-free years counted since the
    last critical-illness claim (a claim resets it). Each continuous year beyond
    ``after_years`` adds ``increment_fen``; each claim-free year adds
    ``claim_free_increment_fen``; the sum is capped at ``cap_percent`` of the base cap.
    """
    code = "CONTINUITY_INPUT_INVALID"
    _non_negative("continuous years", continuous_years, code)
    _non_negative("claim-free years", claim_free_years, code)
    incentive = table.resident.continuity
    if not incentive.enabled:
        return 0
    raw = (max(0, continuous_years - incentive.after_years) * incentive.increment_fen
           + claim_free_years * incentive.claim_free_increment_fen)
    return min(raw, incentive.max_increment_fen)
