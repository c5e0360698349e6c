"""Versioned policy tables (政策参数) per region and coverage year, and the calculations on them.

The numbers live in ``ledger/policy/tables/**.toml``, never in code. Load them with
:meth:`PolicyBook.load` (or the cached :func:`default_policy_book`), pick a
:class:`PolicyTable` with ``book.get(region_code, coverage_year)`` and pass it to the
pure functions of :mod:`ledger.policy.rules`. Every result records
``policy_version`` = "<version>@<digest>".
"""
from ledger.policy.book import DEFAULT_TABLES_DIR, PolicyBook, PolicyFileError, default_policy_book, load_table
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
    WaitingRules,
    round_half_up_div,
)
from ledger.policy.rules import (
    EmployeeAssessment,
    ResidentAssessment,
    WaitingDecision,
    add_months,
    categories_for_year,
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
    "WaitingRules",
    "add_months",
    "categories_for_year",
    "continuity_cap_increment_fen",
    "default_policy_book",
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
