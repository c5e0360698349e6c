"""The shape of a policy table (政策参数表): what a region's figures for one coverage year are.

Values come only from the TOML files under ``ledger/policy/tables`` (loaded and
checked by :mod:`ledger.policy.book`); nothing here holds a policy number.
Money is integer fen, rates are basis points (bp, 1/10000) or whole percents as the
field name says, so every calculation stays in integers.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType

#: Subsidised groups (资助参保对象) the ledger knows, in order of precedence when two
#: categories give the same amount. Chinese names for display and explanations.
SUBSIDY_CATEGORIES: Mapping[str, str] = MappingProxyType({
    "EXTREME_POVERTY": "特困人员",
    "ORPHAN": "孤儿",
    "DE_FACTO_ORPHAN": "事实无人抚养儿童",
    "MIN_LIVING": "低保对象",
    "RELAPSED_POVERTY": "返贫致贫人口",
    "MONITORED": "防止返贫监测对象",
    "LOW_INCOME_MARGINAL": "低保边缘",
})

#: Exemptions from the waiting period (待遇等待期豁免) a table may grant.
WAITING_EXEMPTIONS: Mapping[str, str] = MappingProxyType({
    "NEWBORN": "新生儿",
    "SUBSIDISED": "医疗救助对象 (资助参保)",
    "VETERAN": "当年退役军人",
    "SCHEME_SWITCH": "职工医保与居民医保转换",
})


class SubsidyKind(StrEnum):
    """How a subsidy (资助) is computed from the individual share."""

    FULL = "FULL"  # 全额资助
    FIXED_FEN = "FIXED_FEN"  # 定额资助: a fixed sum
    PERCENT = "PERCENT"  # 定比资助: basis points of the individual share


class StatusRule(StrEnum):
    """Which date makes a subsidised status (身份) count for a coverage year."""

    ANY_DAY_IN_COVERAGE_YEAR = "ANY_DAY_IN_COVERAGE_YEAR"  # valid on at least one day of year Y
    ON_DATE = "ON_DATE"  # valid on the table's status_date (e.g. the list's cut-off day)


def round_half_up_div(numerator: int, denominator: int) -> int:
    """Integer division rounding half up (to the fen); both arguments non-negative."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("round_half_up_div takes a non-negative numerator and a positive denominator")
    return (2 * numerator + denominator) // (2 * denominator)


@dataclass(frozen=True)
class SubsidyRule:
    """The subsidy of one category (资助标准), and how long the category is subsidised."""

    category: str
    kind: SubsidyKind
    amount_fen: int | None = None  # FIXED_FEN only
    percent_bp: int | None = None  # PERCENT only, 10000 = the whole share
    until: date | None = None  # last day a status of this category can count (time-limited groups)

    def subsidy_fen(self, individual_fen: int) -> int:
        """Subsidy against an individual share; never more than the share itself."""
        if individual_fen < 0:
            raise ValueError("individual share cannot be negative")
        if self.kind is SubsidyKind.FULL:
            return individual_fen
        if self.kind is SubsidyKind.FIXED_FEN:
            return min(self.amount_fen or 0, individual_fen)
        return min(round_half_up_div(individual_fen * (self.percent_bp or 0), 10_000), individual_fen)

    def in_force_on(self, day: date) -> bool:
        return self.until is None or day <= self.until

    def describe(self) -> tuple[str, dict[str, int]]:
        """The rule as a code and its figures, for a person to read in their language (the entrypoints phrase it):
        ``("FULL", {})``, ``("FIXED_FEN", {"amount_fen": 15000})``, ``("PERCENT", {"percent_bp": 5000})``."""
        if self.kind is SubsidyKind.FULL:
            return self.kind.value, {}
        if self.kind is SubsidyKind.FIXED_FEN:
            return self.kind.value, {"amount_fen": self.amount_fen or 0}
        return self.kind.value, {"percent_bp": self.percent_bp or 0}


@dataclass(frozen=True)
class WaitingRules:
    """Waiting periods (待遇等待期), 国办发〔2024〕38号. ``enabled=False`` before the rule applied."""

    enabled: bool
    fixed_months: int = 0
    per_gap_year_months: int = 0
    repaired_min_months: int = 0
    repaired_min_gap_years: int = 0
    exemptions: frozenset[str] = frozenset()
    newborn_window_days: int | None = None
    scheme_switch_max_gap_months: int | None = None


@dataclass(frozen=True)
class ContinuityIncentive:
    """Continuous-enrollment incentive (连续参保激励) on the critical-illness cap (大病保险封顶线)."""

    enabled: bool
    after_years: int = 0
    increment_fen: int = 0
    claim_free_increment_fen: int = 0
    cap_percent: int = 0
    base_critical_illness_cap_fen: int = 0

    @property
    def max_increment_fen(self) -> int:
        return round_half_up_div(self.base_critical_illness_cap_fen * self.cap_percent, 100)


@dataclass(frozen=True)
class ResidentPolicy:
    """Urban-rural resident scheme (城乡居民基本医疗保险) figures for one region and year."""

    individual_share_fen: int  # 个人缴费标准
    fiscal_subsidy_fen: int  # 财政补助标准 (per person, paid by government, not by the person)
    concentrated_start: date  # 集中参保缴费期 first day
    concentrated_end: date  # 集中参保缴费期 last day
    due_date: date  # 缴费截止日: unpaid after this day is late
    extended_window_end: date | None  # 延长缴费期 last day, if any
    extended_window_waiting_free: bool  # continuous payers in the extended window have no waiting
    coverage_start: date  # 待遇享受起始日 for on-time payers (1 Jan of Y)
    status_rule: StatusRule
    status_date: date | None  # for StatusRule.ON_DATE
    subsidies: Mapping[str, SubsidyRule]
    waiting: WaitingRules
    continuity: ContinuityIncentive
    #: 参保目标 (basis points of the residents of a place): the coverage rate a county or township is held
    #: to (扩面目标任务, 应保尽保), and the rate for subsidised people (资助参保对象); None when the table
    #: declares none. Read by the county dashboard, never by the entitlement rules.
    coverage_target_bp: int | None = None
    subsidised_coverage_target_bp: int | None = None

    @property
    def coverage_end(self) -> date:
        return date(self.coverage_start.year, 12, 31)

    @property
    def status_reference_date(self) -> date:
        """The day a time-limited subsidy rule must still be in force on."""
        if self.status_rule is StatusRule.ON_DATE and self.status_date is not None:
            return self.status_date
        return self.coverage_start


@dataclass(frozen=True)
class EmployeePolicy:
    """Urban employee scheme (职工基本医疗保险) figures for one region and year; amounts are monthly."""

    employer_rate_bp: int  # 单位缴费费率 (maternity insurance merged in)
    employee_rate_bp: int  # 个人缴费费率
    average_monthly_wage_fen: int  # 上年度全口径城镇单位就业人员月平均工资
    base_floor_percent: int  # 缴费基数下限, % of the average wage
    base_ceiling_percent: int  # 缴费基数上限, % of the average wage
    personal_account_bp: int  # 在职职工个人账户划入: bp of the base, from the member's own share
    retiree_monthly_credit_fen: int  # 退休人员个人账户定额划入
    min_contribution_years_male: int  # 最低缴费年限
    min_contribution_years_female: int
    late_fee_ppm_per_day: int  # 滞纳金, millionths of the arrears per calendar day
    due_month_offset: int  # a month's contributions are due in the month this many months later
    due_day: int  # ... on this day (clamped to the month's length; 31 = last day)

    @property
    def base_floor_fen(self) -> int:
        return round_half_up_div(self.average_monthly_wage_fen * self.base_floor_percent, 100)

    @property
    def base_ceiling_fen(self) -> int:
        return round_half_up_div(self.average_monthly_wage_fen * self.base_ceiling_percent, 100)


@dataclass(frozen=True)
class ValueLimits:
    """The plausible range of any amount or business date an entrance may take (录入值合理范围).

    ``amount_ceiling_fen`` and ``earliest_date`` come from the policy tables (``[limits]``,
    set nationally); ``latest_date`` is the last day of the year after the latest coverage
    year with a table (the policy horizon + 1 year), so it moves when next year's tables
    are added. :func:`ledger.policy.rules.check_amount_fen` and
    :func:`ledger.policy.rules.check_business_date` apply them.
    """

    amount_ceiling_fen: int  # 单笔金额上限, fen per record
    earliest_date: date  # no business date before this day
    latest_date: date  # no business date after this day


@dataclass(frozen=True)
class TransferPolicy:
    """Transfer rules (医保关系转移接续, 医保办发〔2021〕43号) and the working-day calendar of the year."""

    sending_working_days: int  # 转出地办结时限, working days
    receiving_working_days: int  # 转入地办结时限, working days
    back_pay_max_gap_months: int  # 中断不超过此月数可补缴并追溯享受待遇
    waiting_max_months: int  # 更长中断的待遇等待期上限
    holidays: frozenset[date]  # 法定节假日 (days off on weekdays)
    extra_workdays: frozenset[date]  # 调休上班 (weekend days worked)


@dataclass(frozen=True)
class ApprovalPolicy:
    """Maker-checker (双人复核, 基金监管): which corrections wait for a second clerk, and for how long.

    Every merge of persons, late-fee waiver and enrollment end waits; a payment correction or
    account debit waits when its amount is above ``correction_threshold_fen``.
    """

    correction_threshold_fen: int  # 单笔更正金额超过此数须经另一经办员审核
    pending_expiry_hours: int  # 待审核变更逾期未审即失效


@dataclass(frozen=True)
class FigureSource:
    """The provenance of one figure of a table: national or local, its source, provisional or not."""

    field: str  # dotted name, e.g. "resident.individual_share_fen"
    scope: str  # "national" | "local"
    source: str
    provisional: bool = False  # no source for this year: carried from the nearest sourced year

    def describe(self) -> str:
        scope = "全国" if self.scope == "national" else "地方"
        mark = "（暂定）" if self.provisional else ""
        return f"{scope}{mark}：{self.source}"


@dataclass(frozen=True)
class PolicyTable:
    """All policy parameters of one region (统筹区/区县) for one coverage year, with their provenance."""

    region_code: str
    coverage_year: int
    version: str  # e.g. "610902-2025-d1"
    digest: str  # first 12 hex chars of sha256 over the merged canonical content
    status: str  # "default" (not yet confirmed locally) | "confirmed"
    source: str
    resident: ResidentPolicy
    employee: EmployeePolicy
    amount_ceiling_fen: int  # [limits]: no single amount above this (see ValueLimits)
    earliest_date: date  # [limits]: no business date before this day
    transfer: TransferPolicy
    #: ``[approval]``; None in a table without the section (an older year's): the ledger then takes the
    #: latest table of the region that has one (``PolicyBook.approval``).
    approval: ApprovalPolicy | None = None

    #: Where figures come from (the ``[provenance]`` entries of the table and the files it extends):
    #: national or local, the source, and whether the figure is provisional (no source for this year;
    #: carried from the nearest sourced year). Figures not listed have their provenance in ``source``.
    provenance: tuple[FigureSource, ...] = ()

    @property
    def provisional_fields(self) -> tuple[str, ...]:
        """Dotted names of the figures marked provisional (no source for this year), sorted."""
        return tuple(sorted(f.field for f in self.provenance if f.provisional))

    @property
    def policy_version(self) -> str:
        """What an assessment records: "<version>@<digest>"."""
        return f"{self.version}@{self.digest}"


def bp_text(bp: int) -> str:
    """Show basis points as a percent without floats: 6000 → '60.00%'."""
    return f"{bp // 100}.{bp % 100:02d}%"


def fen_text(fen: int) -> str:
    """Show fen as yuan for messages: 15000 → '150.00 yuan'."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d} yuan"
