"""Policy tables: loading and checking the shipped files, and the calculations on them."""
from __future__ import annotations

import dataclasses
import re
import shutil
from datetime import date
from pathlib import Path
from types import MappingProxyType

import pytest

from ledger.domain.errors import DomainError, NotFound
from ledger.domain.places import ANKANG_REGIONS
from ledger.policy import (
    DEFAULT_TABLES_DIR,
    PolicyBook,
    PolicyFileError,
    PolicyTable,
    StatusRule,
    SubsidyKind,
    SubsidyRule,
    add_months,
    categories_for_year,
    continuity_cap_increment_fen,
    default_policy_book,
    employee_contribution,
    employee_due_date,
    late_fee_fen,
    resident_assessment,
    resident_subsidy,
    round_half_up_div,
    status_counts,
    waiting_period,
)

YEARS = [2024, 2025, 2026]


@pytest.fixture(scope="module")
def book() -> PolicyBook:
    return PolicyBook.load()


@pytest.fixture(scope="module")
def t2025(book: PolicyBook) -> PolicyTable:
    return book.get("610902", 2025)


# --------------------------------------------------------------------------- the shipped book


def test_every_region_year_is_present(book: PolicyBook) -> None:
    # 2018-2023 (history) and 2027 (next year) are provisional tables: tests/unit/test_policy_years.py
    assert len(book) == 100
    assert book.regions() == set(ANKANG_REGIONS)
    for region in ANKANG_REGIONS:
        assert book.years(region) == list(range(2018, 2028))
        for year in YEARS:
            table = book.get(region, year)
            assert (table.region_code, table.coverage_year) == (region, year)
            assert table.version == f"{region}-{year}-d1"
            assert table.status == "default"
            assert re.fullmatch(r"[0-9a-f]{12}", table.digest)
            assert table.policy_version == f"{table.version}@{table.digest}"


def test_versions_and_digests_differ(book: PolicyBook) -> None:
    tables = list(book.tables())
    assert len({t.version for t in tables}) == 100
    assert len({t.digest for t in tables}) == 100
    assert len({book.get("610902", y).digest for y in YEARS}) == 3


def test_digest_is_stable_across_loads(book: PolicyBook) -> None:
    again = PolicyBook.load(DEFAULT_TABLES_DIR)
    assert [t.policy_version for t in again.tables()] == [t.policy_version for t in book.tables()]


def test_national_figures_per_year(book: PolicyBook) -> None:
    expected = {2024: 67000, 2025: 70000, 2026: 72400}
    for year in YEARS:
        resident = book.get("610925", year).resident
        assert resident.individual_share_fen == 40000
        assert resident.fiscal_subsidy_fen == expected[year]
        assert resident.coverage_start == date(year, 1, 1)
        assert resident.concentrated_start == date(year - 1, 9, 1)
        assert resident.concentrated_end == resident.due_date == date(year - 1, 12, 31)
        assert resident.waiting.enabled is (year >= 2025)
        assert resident.continuity.enabled is (year >= 2025)
    assert book.get("610925", 2024).resident.extended_window_end == date(2024, 2, 29)
    waiting = book.get("610925", 2025).resident.waiting
    assert (waiting.fixed_months, waiting.per_gap_year_months, waiting.repaired_min_months,
            waiting.repaired_min_gap_years) == (3, 1, 6, 4)
    assert waiting.exemptions == {"NEWBORN", "SUBSIDISED", "VETERAN", "SCHEME_SWITCH"}


def test_subsidy_rules_shipped(t2025: PolicyTable) -> None:
    subsidies = t2025.resident.subsidies
    assert set(subsidies) == {"EXTREME_POVERTY", "ORPHAN", "DE_FACTO_ORPHAN", "MIN_LIVING",
                              "RELAPSED_POVERTY", "MONITORED", "LOW_INCOME_MARGINAL"}
    for code in ("EXTREME_POVERTY", "ORPHAN", "DE_FACTO_ORPHAN"):
        assert subsidies[code].kind is SubsidyKind.FULL
    assert subsidies["MONITORED"].until == date(2025, 12, 31)
    assert t2025.resident.status_rule is StatusRule.ANY_DAY_IN_COVERAGE_YEAR


def test_default_book_is_cached() -> None:
    assert default_policy_book() is default_policy_book()


def test_unknown_region(book: PolicyBook) -> None:
    with pytest.raises(NotFound) as info:
        book.get("610900", 2025)
    assert info.value.code == "REGION_UNKNOWN"
    assert "610902" in info.value.message


def test_unknown_year_lists_the_years(book: PolicyBook) -> None:
    with pytest.raises(NotFound) as info:
        book.get("610902", 2035)
    assert info.value.code == "POLICY_YEAR_UNKNOWN"
    assert "2018, 2019, 2020, 2021, 2022, 2023, 2024, 2025, 2026, 2027" in info.value.message
    assert info.value.http_status == 404


def test_malformed_region_code(book: PolicyBook) -> None:
    with pytest.raises(DomainError) as info:
        book.get("61-902", 2025)
    assert info.value.code == "REGION_FORMAT"


# --------------------------------------------------------------------------- broken files


@pytest.fixture()
def tables(tmp_path: Path) -> Path:
    root = tmp_path / "tables"
    shutil.copytree(DEFAULT_TABLES_DIR, root)
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")


def _load_error(root: Path) -> str:
    with pytest.raises(PolicyFileError) as info:
        PolicyBook.load(root)
    return str(info.value)


def test_copy_of_shipped_tables_loads(tables: Path) -> None:
    assert len(PolicyBook.load(tables)) == 100


def test_negative_value_names_the_file_that_holds_it(tables: Path) -> None:
    _edit(tables / "national" / "2025.toml", "individual_share_fen = 40000", "individual_share_fen = -100")
    message = _load_error(tables)
    assert "national/2025.toml" in message
    assert "'resident.individual_share_fen'" in message
    assert "negative" in message


def test_decimal_amount_is_refused(tables: Path) -> None:
    _append(tables / "610922" / "2025.toml", "[resident]\nindividual_share_fen = 400.0\n")
    message = _load_error(tables)
    assert "610922/2025.toml" in message
    assert "'resident.individual_share_fen'" in message
    assert "whole number" in message


def test_missing_value(tables: Path) -> None:
    _edit(tables / "national" / "2026.toml", "fiscal_subsidy_fen = 72400", "")
    message = _load_error(tables)
    assert "'resident.fiscal_subsidy_fen' is missing" in message
    assert "/2026.toml" in message


def test_missing_version_in_region_file(tables: Path) -> None:
    _edit(tables / "610923" / "2024.toml", 'version = "610923-2024-d1"\n', "")
    message = _load_error(tables)
    assert "610923/2024.toml" in message and "'version' is missing" in message


def test_unknown_subsidy_category(tables: Path) -> None:
    _append(tables / "ankang" / "2025.toml", '[resident.subsidy.categories.VIP]\nkind = "FULL"\n')
    message = _load_error(tables)
    assert "ankang/2025.toml" in message
    assert "'resident.subsidy.categories.VIP'" in message and "unknown subsidy category" in message


def test_fixed_subsidy_needs_an_amount(tables: Path) -> None:
    _edit(tables / "ankang" / "2025.toml", "[resident.subsidy.categories.MIN_LIVING]\nkind = \"FIXED_FEN\"\n"
          "amount_fen = 15000", "[resident.subsidy.categories.MIN_LIVING]\nkind = \"FIXED_FEN\"")
    message = _load_error(tables)
    assert "'resident.subsidy.categories.MIN_LIVING.amount_fen' is missing" in message


def test_period_end_before_start(tables: Path) -> None:
    _append(tables / "610926" / "2025.toml", "[resident]\nconcentrated_end = 2024-08-01\n")
    message = _load_error(tables)
    assert "610926/2025.toml" in message
    assert "'resident.concentrated_end'" in message and "before concentrated_start" in message


def test_misspelt_field(tables: Path) -> None:
    _append(tables / "610927" / "2026.toml", "[employee]\nemployer_rate_pb = 650\n")
    message = _load_error(tables)
    assert "'employee.employer_rate_pb' is not a known field" in message


def test_bad_status_and_duplicate_version(tables: Path) -> None:
    _edit(tables / "610929" / "2025.toml", 'status = "default"', 'status = "final"')
    assert "'status' must be one of default, confirmed" in _load_error(tables)
    _edit(tables / "610929" / "2025.toml", 'status = "final"', 'status = "default"')
    _edit(tables / "610929" / "2025.toml", '"610929-2025-d1"', '"610929-2024-d1"')
    assert "already used" in _load_error(tables)


def test_extends_problems(tables: Path) -> None:
    _edit(tables / "610981" / "2025.toml", 'extends = "ankang/2025"', 'extends = "ankang/2031"')
    assert "ankang/2031" in _load_error(tables)
    _edit(tables / "610981" / "2025.toml", 'extends = "ankang/2031"', 'extends = "610981/2025"')
    assert "cycle" in _load_error(tables)


def test_invalid_toml(tables: Path) -> None:
    _append(tables / "610921" / "2024.toml", "this is = = not toml\n")
    message = _load_error(tables)
    assert "610921/2024.toml" in message and "not valid TOML" in message


def test_local_override_wins_and_changes_the_digest(tables: Path, book: PolicyBook) -> None:
    _append(tables / "610924" / "2025.toml", "[resident.subsidy.categories.MIN_LIVING]\namount_fen = 20000\n")
    local = PolicyBook.load(tables)
    table = local.get("610924", 2025)
    assert table.resident.subsidies["MIN_LIVING"].amount_fen == 20000
    assert table.resident.subsidies["MIN_LIVING"].kind is SubsidyKind.FIXED_FEN  # merged from the base
    assert table.digest != book.get("610924", 2025).digest
    assert local.get("610902", 2025).digest == book.get("610902", 2025).digest


def test_error_is_a_value_error_not_a_domain_error() -> None:
    assert issubclass(PolicyFileError, ValueError)
    assert not issubclass(PolicyFileError, DomainError)


# --------------------------------------------------------------------------- subsidies


def test_rounding_half_up() -> None:
    assert round_half_up_div(5, 10) == 1
    assert round_half_up_div(4, 10) == 0
    assert round_half_up_div(15, 10) == 2
    assert round_half_up_div(0, 7) == 0


def test_subsidy_rule_kinds() -> None:
    assert SubsidyRule("ORPHAN", SubsidyKind.FULL).subsidy_fen(40000) == 40000
    assert SubsidyRule("MIN_LIVING", SubsidyKind.FIXED_FEN, amount_fen=15000).subsidy_fen(40000) == 15000
    assert SubsidyRule("MIN_LIVING", SubsidyKind.FIXED_FEN, amount_fen=50000).subsidy_fen(40000) == 40000
    assert SubsidyRule("MIN_LIVING", SubsidyKind.PERCENT, percent_bp=6000).subsidy_fen(40000) == 24000
    assert SubsidyRule("MIN_LIVING", SubsidyKind.PERCENT, percent_bp=5000).subsidy_fen(1) == 1  # 0.5 fen up
    assert SubsidyRule("MIN_LIVING", SubsidyKind.PERCENT, percent_bp=3333).subsidy_fen(40001) == 13332


def test_most_generous_subsidy_not_the_sum(t2025: PolicyTable) -> None:
    assert resident_subsidy(t2025, ["MIN_LIVING", "MONITORED"]) == ("MIN_LIVING", 15000)
    assert resident_subsidy(t2025, ["MONITORED", "ORPHAN", "MIN_LIVING"]) == ("ORPHAN", 40000)
    assert resident_subsidy(t2025, []) == (None, 0)
    assert resident_subsidy(t2025, "orphan") == ("ORPHAN", 40000)


def test_most_generous_with_a_percent_rule(t2025: PolicyTable) -> None:
    subsidies = dict(t2025.resident.subsidies)
    subsidies["LOW_INCOME_MARGINAL"] = SubsidyRule("LOW_INCOME_MARGINAL", SubsidyKind.PERCENT, percent_bp=6000)
    table = _with_resident(t2025, subsidies=MappingProxyType(subsidies))
    assert resident_subsidy(table, ["MIN_LIVING", "LOW_INCOME_MARGINAL"]) == ("LOW_INCOME_MARGINAL", 24000)


def test_unknown_category(t2025: PolicyTable) -> None:
    with pytest.raises(DomainError) as info:
        resident_subsidy(t2025, ["MIN_LIVING", "VIP"])
    assert info.value.code == "SUBSIDY_CATEGORY_UNKNOWN"
    assert "MIN_LIVING" in info.value.message


def test_full_subsidy_means_nothing_due(t2025: PolicyTable) -> None:
    a = resident_assessment(t2025, ["EXTREME_POVERTY"])
    assert (a.standard_fen, a.subsidy_fen, a.due_fen) == (40000, 40000, 0)
    assert a.subsidy_category == "EXTREME_POVERTY"
    assert a.due_date == date(2024, 12, 31)
    assert a.policy_version == t2025.policy_version
    assert t2025.policy_version in a.explanation


def test_assessment_without_and_with_fixed_subsidy(t2025: PolicyTable) -> None:
    assert resident_assessment(t2025).due_fen == 40000
    a = resident_assessment(t2025, ["RELAPSED_POVERTY"])
    assert (a.subsidy_fen, a.due_fen) == (15000, 25000)
    assert "150.00 yuan" in a.explanation


def _with_resident(table: PolicyTable, **changes: object) -> PolicyTable:
    return dataclasses.replace(table, resident=dataclasses.replace(table.resident, **changes))


def test_time_limited_category_lapses(book: PolicyBook) -> None:
    t2026 = book.get("610902", 2026)
    subsidies = dict(t2026.resident.subsidies)
    subsidies["MONITORED"] = dataclasses.replace(subsidies["MONITORED"], until=date(2025, 12, 31))
    lapsed = _with_resident(t2026, subsidies=MappingProxyType(subsidies))
    assert resident_subsidy(lapsed, ["MONITORED"]) == (None, 0)
    assert not status_counts(lapsed, "MONITORED", date(2024, 1, 1), None)
    assert status_counts(t2026, "MONITORED", date(2024, 1, 1), None)


def test_status_rule_any_day_in_coverage_year(t2025: PolicyTable) -> None:
    assert status_counts(t2025, "MIN_LIVING", date(2025, 11, 1), None)  # granted late in the year
    assert status_counts(t2025, "MIN_LIVING", date(2023, 1, 1), date(2025, 1, 1))  # revoked on 1 Jan
    assert not status_counts(t2025, "MIN_LIVING", date(2023, 1, 1), date(2024, 12, 31))
    assert not status_counts(t2025, "MIN_LIVING", date(2026, 1, 1), None)
    statuses = [("MIN_LIVING", date(2025, 3, 1), None), ("ORPHAN", date(2010, 1, 1), date(2024, 6, 30))]
    assert categories_for_year(t2025, statuses) == {"MIN_LIVING"}


def test_status_rule_on_date(t2025: PolicyTable) -> None:
    table = _with_resident(t2025, status_rule=StatusRule.ON_DATE, status_date=date(2024, 12, 31))
    assert status_counts(table, "MIN_LIVING", date(2024, 1, 1), None)
    assert not status_counts(table, "MIN_LIVING", date(2025, 3, 1), None)  # granted after the cut-off
    assert not status_counts(table, "MIN_LIVING", date(2024, 1, 1), date(2024, 12, 30))
    assert status_counts(table, "MIN_LIVING", date(2024, 12, 31), date(2024, 12, 31))


# --------------------------------------------------------------------------- employees


def test_employee_base_clamped_to_floor(t2025: PolicyTable) -> None:
    emp = t2025.employee
    assert (emp.base_floor_fen, emp.base_ceiling_fen) == (420000, 2100000)  # 60% / 300% of 7000 yuan
    a = employee_contribution(t2025, 100000)
    assert (a.base_fen, a.base_rule) == (420000, "FLOOR")
    assert (a.employer_fen, a.employee_fen, a.personal_account_fen) == (29400, 8400, 8400)
    assert a.total_fen == 37800


def test_employee_base_clamped_to_ceiling(t2025: PolicyTable) -> None:
    a = employee_contribution(t2025, 5_000_000)
    assert (a.base_fen, a.base_rule) == (2_100_000, "CEILING")
    assert (a.employer_fen, a.employee_fen) == (147000, 42000)


def test_employee_base_within_limits_and_rounding(t2025: PolicyTable) -> None:
    a = employee_contribution(t2025, 800_000)
    assert (a.base_fen, a.base_rule, a.employer_fen, a.employee_fen) == (800_000, "DECLARED", 56000, 16000)
    b = employee_contribution(t2025, 800_025)  # employee 2% = 16000.5 fen -> 16001
    assert b.employee_fen == 16001 and b.employer_fen == 56002  # 56001.75 -> 56002
    assert b.policy_version == t2025.policy_version


def test_employee_negative_base(t2025: PolicyTable) -> None:
    with pytest.raises(DomainError) as info:
        employee_contribution(t2025, -1)
    assert info.value.code == "CONTRIBUTION_BASE_INVALID"


def test_employee_due_date(t2025: PolicyTable) -> None:
    assert employee_due_date(t2025, 2025, 2) == date(2025, 2, 28)  # last day of the month
    assert employee_due_date(t2025, 2025, 12) == date(2025, 12, 31)
    next_month_15th = dataclasses.replace(
        t2025, employee=dataclasses.replace(t2025.employee, due_month_offset=1, due_day=15))
    assert employee_due_date(next_month_15th, 2025, 12) == date(2026, 1, 15)
    with pytest.raises(DomainError) as info:
        employee_due_date(t2025, 2025, 13)
    assert info.value.code == "PERIOD_INVALID"


def test_late_fee(t2025: PolicyTable) -> None:
    assert late_fee_fen(t2025, 100_000, 30) == 1500  # 0.05% x 30 days of 1000 yuan = 15 yuan
    assert late_fee_fen(t2025, 100_000, 1) == 50
    assert late_fee_fen(t2025, 1000, 1) == 1  # 0.5 fen rounds up
    assert late_fee_fen(t2025, 12345, 1) == 6  # 6.1725 fen
    assert late_fee_fen(t2025, 100_000, 0) == 0
    assert late_fee_fen(t2025, 100_000, -3) == 0
    with pytest.raises(DomainError):
        late_fee_fen(t2025, -1, 3)


# --------------------------------------------------------------------------- waiting periods


def _wait(table: PolicyTable, paid_on: date, *, first_time: bool = False, gap_years: int = 0,
          back_paid_years: int = 0, exemption: str | None = None, covered_last_year: bool = False,
          **extra: object):
    return waiting_period(table, paid_on=paid_on, first_time=first_time, gap_years=gap_years,
                          back_paid_years=back_paid_years, exemption=exemption,
                          covered_last_year=covered_last_year, **extra)


def test_on_time_continuous_payer(t2025: PolicyTable) -> None:
    d = _wait(t2025, date(2024, 11, 15), covered_last_year=True)
    assert (d.months, d.coverage_start, d.exemption) == (0, date(2025, 1, 1), None)
    assert "no waiting" in d.reason
    assert d.policy_version == t2025.policy_version


def test_on_time_first_enrollment(t2025: PolicyTable) -> None:
    d = _wait(t2025, date(2024, 12, 31), first_time=True)
    assert (d.months, d.coverage_start) == (0, date(2025, 1, 1))


def test_late_payer_after_one_year_gap(t2025: PolicyTable) -> None:
    # fixed 3 + variable max(0, 1 - 1) = 3 months from the payment date
    d = _wait(t2025, date(2025, 3, 10), gap_years=1)
    assert (d.months, d.coverage_start) == (3, date(2025, 6, 10))
    assert "fixed 3 + variable max(0, gap 1 - 1 - back-paid 0) x 1 = 3 months" in d.reason


def test_gap_three_back_paid_one(t2025: PolicyTable) -> None:
    # fixed 3 + variable (3 - 1 - 1) = 4 months
    d = _wait(t2025, date(2025, 3, 10), gap_years=3, back_paid_years=1)
    assert (d.months, d.coverage_start) == (4, date(2025, 7, 10))
    assert "= 4 months" in d.reason


def test_gap_three_fully_repaired_is_not_raised(t2025: PolicyTable) -> None:
    d = _wait(t2025, date(2025, 3, 10), gap_years=3, back_paid_years=2)
    assert d.months == 3  # gap below 4 years: the 6-month minimum does not apply


def test_gap_five_repaired_keeps_six_months(t2025: PolicyTable) -> None:
    # fixed 3 + variable max(0, 5 - 1 - 4) = 3, raised to the repaired minimum 6
    d = _wait(t2025, date(2025, 3, 10), gap_years=5, back_paid_years=4)
    assert (d.months, d.coverage_start) == (6, date(2025, 9, 10))
    assert "raised to 6" in d.reason
    unrepaired = _wait(t2025, date(2025, 3, 10), gap_years=5)
    assert unrepaired.months == 7  # 3 + 4


def test_on_time_payer_after_a_gap_still_waits_from_1_january(t2025: PolicyTable) -> None:
    d = _wait(t2025, date(2024, 12, 1), gap_years=2)
    assert (d.months, d.coverage_start) == (4, date(2025, 5, 1))


def test_newborn_exempt(t2025: PolicyTable) -> None:
    d = _wait(t2025, date(2025, 5, 20), first_time=True, exemption="NEWBORN", born_on=date(2025, 4, 1))
    assert (d.months, d.coverage_start, d.exemption) == (0, date(2025, 4, 1), "NEWBORN")
    late = _wait(t2025, date(2025, 9, 1), first_time=True, exemption="NEWBORN", born_on=date(2025, 4, 1))
    assert (late.months, late.exemption) == (3, None)
    assert "beyond the 90-day window" in late.reason
    with pytest.raises(DomainError):
        _wait(t2025, date(2025, 5, 20), first_time=True, exemption="NEWBORN")


def test_newborn_born_before_the_year_covered_from_1_january(t2025: PolicyTable) -> None:
    d = _wait(t2025, date(2025, 1, 20), first_time=True, exemption="NEWBORN", born_on=date(2024, 12, 10))
    assert (d.months, d.coverage_start) == (0, date(2025, 1, 1))


def test_other_exemptions(t2025: PolicyTable) -> None:
    d = _wait(t2025, date(2025, 4, 2), gap_years=3, exemption="subsidised")
    assert (d.months, d.coverage_start, d.exemption) == (0, date(2025, 4, 2), "SUBSIDISED")
    d = _wait(t2025, date(2025, 4, 2), gap_years=1, exemption="SCHEME_SWITCH", switch_gap_months=2)
    assert (d.months, d.exemption) == (0, "SCHEME_SWITCH")
    d = _wait(t2025, date(2025, 4, 2), gap_years=1, exemption="SCHEME_SWITCH", switch_gap_months=5)
    assert (d.months, d.exemption) == (3, None)
    with pytest.raises(DomainError) as info:
        _wait(t2025, date(2025, 4, 2), gap_years=1, exemption="VIP")
    assert info.value.code == "WAITING_EXEMPTION_UNKNOWN"


def test_extended_window_continuous_payer(t2025: PolicyTable) -> None:
    d = _wait(t2025, date(2025, 2, 10), covered_last_year=True)
    assert (d.months, d.coverage_start) == (0, date(2025, 2, 10))
    assert "extended window" in d.reason
    first = _wait(t2025, date(2025, 2, 10), first_time=True)  # not continuous: waits
    assert (first.months, first.coverage_start) == (3, date(2025, 5, 10))
    after = _wait(t2025, date(2025, 3, 1), covered_last_year=True)  # window over: fixed 3
    assert (after.months, after.coverage_start) == (3, date(2025, 6, 1))


def test_extended_window_not_waiting_free(t2025: PolicyTable) -> None:
    table = _with_resident(t2025, extended_window_waiting_free=False)
    d = _wait(table, date(2025, 2, 10), covered_last_year=True)
    assert (d.months, d.coverage_start) == (3, date(2025, 5, 10))


def test_2024_has_no_waiting_rule(book: PolicyBook) -> None:
    t2024 = book.get("610902", 2024)
    d = _wait(t2024, date(2024, 5, 5), gap_years=3)
    assert (d.months, d.coverage_start) == (0, date(2024, 5, 5))
    assert _wait(t2024, date(2023, 10, 1), covered_last_year=True).coverage_start == date(2024, 1, 1)
    # SUBSIDISED is not an exemption the 2024 table grants; nothing to exempt from anyway
    d = _wait(t2024, date(2024, 5, 5), gap_years=1, exemption="SUBSIDISED")
    assert (d.months, d.exemption) == (0, None)


def test_waiting_running_past_year_end(t2025: PolicyTable) -> None:
    d = _wait(t2025, date(2025, 11, 30), gap_years=1)
    assert d.coverage_start == date(2026, 2, 28)  # 30 Nov + 3 months, day clamped
    assert "no benefits in 2025" in d.reason


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gap_years": 1, "back_paid_years": 2},
        {"first_time": True, "gap_years": 1},
        {"covered_last_year": True, "gap_years": 2},
        {"gap_years": 0},
        {"gap_years": -1},
    ],
)
def test_inconsistent_history_is_refused(t2025: PolicyTable, kwargs: dict) -> None:
    with pytest.raises(DomainError) as info:
        _wait(t2025, date(2025, 3, 1), **kwargs)
    assert info.value.code == "WAITING_INPUT_INVALID"


def test_payment_after_the_year_is_not_an_enrollment(t2025: PolicyTable) -> None:
    with pytest.raises(DomainError) as info:
        _wait(t2025, date(2026, 1, 5), gap_years=1)
    assert info.value.code == "WAITING_INPUT_INVALID"


def test_add_months_clamps() -> None:
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2025, 10, 15), 3) == date(2026, 1, 15)
    assert add_months(date(2025, 3, 10), 0) == date(2025, 3, 10)


# --------------------------------------------------------------------------- continuity


def test_continuity_increment(t2025: PolicyTable, book: PolicyBook) -> None:
    assert continuity_cap_increment_fen(t2025, 4, 0) == 0
    assert continuity_cap_increment_fen(t2025, 6, 0) == 200_000  # 2 years beyond 4 x 1000 yuan
    assert continuity_cap_increment_fen(t2025, 6, 3) == 500_000  # + 3 claim-free years
    # capped at 20% of the 300000-yuan base cap = 60000 yuan
    assert continuity_cap_increment_fen(t2025, 70, 10) == 6_000_000
    assert continuity_cap_increment_fen(book.get("610902", 2024), 10, 5) == 0
    with pytest.raises(DomainError):
        continuity_cap_increment_fen(t2025, -1, 0)
