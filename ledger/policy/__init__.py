"""Versioned policy tables (政策参数) per region and coverage year, and the calculations on them.

The numbers live in ``ledger/policy/tables/**.toml``, never in code. Load them with
:meth:`PolicyBook.load` (or the cached :func:`default_policy_book`), pick a
:class:`PolicyTable` with ``book.get(region_code, coverage_year)`` and pass it to the
pure functions of :mod:`ledger.policy.rules`. Every result records
``policy_version`` = "<version>@<digest>".
"""
from ledger.policy.book import (
    DEFAULT_TABLES_DIR,
    PolicyBook,
    PolicyFileError,
    default_policy_book,
    default_value_limits,
    load_table,
)
from ledger.policy.model import (
    SUBSIDY_CATEGORIES,
    WAITING_EXEMPTIONS,
    ContinuityIncentive,
    EmployeePolicy,
    PolicyTable,
    ResidentPolicy,
    StatusRule,
    SubsidyKind,
    SubsidyRule,
    ValueLimits,
    WaitingRules,
    round_half_up_div,
)
from ledger.policy.rules import (
    EmployeeAssessment,
    ResidentAssessment,
    WaitingDecision,
    add_months,
    categories_for_year,
    check_amount_fen,
    check_business_date,
    check_not_before_birth,
    continuity_cap_increment_fen,
    employee_contribution,
    employee_due_date,
    late_fee_fen,
    resident_assessment,
    resident_subsidy,
    status_counts,
    waiting_period,
)

__all__ = [
    "DEFAULT_TABLES_DIR",
    "SUBSIDY_CATEGORIES",
    "WAITING_EXEMPTIONS",
    "ContinuityIncentive",
    "EmployeeAssessment",
    "EmployeePolicy",
    "PolicyBook",
    "PolicyFileError",
    "PolicyTable",
    "ResidentAssessment",
    "ResidentPolicy",
    "StatusRule",
    "SubsidyKind",
    "SubsidyRule",
    "WaitingDecision",
    "ValueLimits",
    "WaitingRules",
    "add_months",
    "categories_for_year",
    "check_amount_fen",
    "check_business_date",
    "check_not_before_birth",
    "continuity_cap_increment_fen",
    "default_policy_book",
    "default_value_limits",
    "employee_contribution",
    "employee_due_date",
    "late_fee_fen",
    "load_table",
    "resident_assessment",
    "resident_subsidy",
    "round_half_up_div",
    "status_counts",
    "waiting_period",
]
