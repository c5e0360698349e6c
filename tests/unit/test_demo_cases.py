"""The demo's business cases (issue #22) and its story (issue #21).

``ledger demo`` works the next year's cases after the county's season (late fees collected and
waived, clerk-entered statuses, employer arrears exported to XLSX, a statements file with one day
missing) through the public interfaces, and checks each against the generator's own figures
(:mod:`entrypoints.simulation.cases`). The report is scanned as a county official reads it: no
``None``, no Python dict, no fen, aligned columns, Chinese headings, yuan with two decimals.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from dataclasses import replace
from datetime import date

import pytest
import structlog

import ledger.log
from entrypoints import demo as demo_module
from entrypoints import demo_cases
from entrypoints.demo import _print_report, run_demo, run_pipeline
from entrypoints.simulation import generate_county
from entrypoints.simulation.cases import _due_date, _fee, build_cases
from ledger.policy import DEFAULT_TABLES_DIR, PolicyBook

CASE_CHECKS = ("late_fees", "clerk_statuses", "employer_arrears", "statement_file", "person_merge",
               "duplicate_enrollment", "large_correction", "history_migration", "next_year_assessment")
ENV = ("LEDGER_PERSISTENCE", "KAFKA_BOOTSTRAP_SERVERS", "LEDGER_SQLITE_PATH", "LEDGER_VIEWS_PATH",
       "LEDGER_TOPIC_PREFIX", "LEDGER_ID_KEY", "POSTGRES_SCHEMA")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One demo run of 300 people on SQLite and in-process topics; logging restored afterwards."""
    root = tmp_path_factory.mktemp("demo-cases")
    saved, configured = structlog.get_config(), ledger.log._configured
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEDGER_STATE_DIR", str(root))
        for name in ENV:
            mp.delenv(name, raising=False)
        result = run_pipeline(people=300, seed=2025, quiet=True)
        yield result
    structlog.configure(**saved)
    ledger.log._configured = configured


# --------------------------------------------------------------------------- the oracle's own arithmetic
def test_the_oracle_computes_the_issue_fee_and_the_due_date_from_the_tables():
    table = PolicyBook.load().get("610902", 2026)
    assert table.employee.late_fee_ppm_per_day == 500
    assert _fee(table, 1_000_000, 60) == 30_000  # the issue's employer: 0.05 % x 60 days
    assert _fee(table, 38_880, 44) == 855  # 855.36 rounded half up, once
    assert _fee(table, 1_000_000, 0) == 0
    due = _due_date(table, "2026-01")
    assert due.year == 2026 and due >= date(2026, 1, 1) and due.month in (1, 2)


def test_the_cases_have_their_own_people_and_the_expected_figures():
    county = generate_county(2025, 150)
    cases = build_cases(county, PolicyBook.load())
    numbers = [p.id_number for p in cases.fee_staff + cases.arrears_staff] + [
        c["person"].id_number for c in cases.statuses.values()] + [
        cases.merge["kept"].id_number, cases.merge["merged"].id_number, cases.duplicate["person"].id_number,
        cases.correction["person"].id_number]
    assert len(set(numbers)) == len(numbers) and not set(numbers) & {p.id_number for p in county.persons}
    s = cases.expected["statuses"]
    assert s["extreme_poverty"]["due_fen"] == 0
    assert s["two_statuses"]["subsidy_fen"] < s["two_statuses"]["sum_of_subsidies_fen"]  # the max, not the sum
    assert s["owed_back"]["overpayment_fen"] == 40_000
    assert s["revoked"]["due_fen"] > 0
    fees = cases.expected["late_fees"]
    assert fees["owed_after_contributions_fen"] == fees["collected_fen"] + fees["waived_fen"] > 0
    missing = cases.expected["statements"]["missing"]
    assert [m["business_date"] for m in missing] == ["2025-10-01"] and missing[0]["recorded_fen"] == 40_000
    assert all(r["business_date"] != "2025-10-01" for r in cases.statements)


def test_the_oracle_reads_the_threshold_from_the_table_and_works_out_merge_and_refund_itself(tmp_path):
    county = generate_county(2025, 150)
    book = PolicyBook.load()
    cases = build_cases(county, book)
    threshold = book.approval(cases.region, cases.as_of).correction_threshold_fen
    c = cases.expected["correction"]
    assert c["threshold_fen"] == threshold and c["amount_fen"] > threshold
    assert c["paid_while_pending_fen"] == 2 * c["paid_after_fen"]
    # the refund: only the year the employee enrollment also covered, not the year before it
    share = book.get(cases.region, cases.year).resident.individual_share_fen
    assert cases.expected["duplicate"]["refund_owed_fen"] == share
    m = cases.expected["merge"]
    assert m["change_by_merge"] == {"residents": -1, "covered": 0, "gaps": -1, "in_arrears": -1}
    assert m["change_by_later_payment"] == {"residents": 0, "covered": 1, "gaps": -1, "in_arrears": -1}
    assert cases.merge["kept"].id_number != cases.merge["merged"].id_number
    assert [r.id_number for r in cases.later_tax_records] == [cases.merge["merged"].id_number]
    # a stricter table: the oracle follows the number in the table, it does not carry its own
    shutil.copytree(DEFAULT_TABLES_DIR, tmp_path / "tables")
    path = tmp_path / "tables" / "ankang" / f"{cases.year}.toml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        f"correction_threshold_fen = {threshold}", "correction_threshold_fen = 150000"), encoding="utf-8")
    stricter = build_cases(county, PolicyBook.load(tmp_path / "tables"))
    assert stricter.expected["correction"]["threshold_fen"] == 150000


def test_the_oracle_works_out_the_migrated_case_from_the_rule_and_the_table(tmp_path):
    """The issue's case: last covered 2020, pays 2026 on 1 April, back-pays 2021-2024: gap 5, waiting 3 + 4 - 4
    = 3 raised to the repaired floor of 6, covered from 2026-10-01; the floor is the table's number."""
    county = generate_county(2025, 150)
    cases = build_cases(county, PolicyBook.load())
    m, g = cases.expected["migration"], cases.migration
    assert cases.year == 2026 and g["last_covered"] == 2020 and g["back_years"] == [2021, 2022, 2023, 2024]
    assert (m["gap_years"], m["back_paid_years"], m["waiting_months"]) == (5, 4, 6)
    assert m["arithmetic"] == "3 + 4 - 4 = 3" and m["covered_from"] == date(2026, 10, 1)
    assert m["twin_unknown_before"] == 2026 and m["twin_basis"] == "FIRST_RECORD" and m["policy_horizon"] == 2018
    rows = cases.migration_rows
    assert m["rows"] == len(rows) and {r["记录类型"] for r in rows} == {"参保", "缴费"}
    mine = [r for r in rows if r["证件号码"] == g["migrated"].id_number]
    assert [r["缴费年度"] for r in mine if r["记录类型"] == "缴费"] == ["2018", "2019", "2020"]
    assert not [r for r in rows if r["证件号码"] == g["twin"].id_number]  # the twin has no migrated history
    twin_paid = sorted((r.period_start.year, r.paid_at.date()) for r in cases.tax_records
                       if r.id_number == g["twin"].id_number)
    assert twin_paid == sorted((r.period_start.year, r.paid_at.date()) for r in cases.tax_records
                               if r.id_number == g["migrated"].id_number)
    shutil.copytree(DEFAULT_TABLES_DIR, tmp_path / "tables")
    path = tmp_path / "tables" / "national" / "2026.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("repaired_min_months = 6", "repaired_min_months = 8"),
                    encoding="utf-8")
    stricter = build_cases(county, PolicyBook.load(tmp_path / "tables")).expected["migration"]
    assert stricter["waiting_months"] == 8 and stricter["covered_from"] == date(2026, 12, 1)


def test_the_oracle_reads_next_years_due_from_every_regions_table():
    book = PolicyBook.load()
    cases = build_cases(generate_county(2025, 150), book)
    want = cases.expected["next_year"]
    assert want["year"] == 2027 and set(want["regions"]) == book.regions() == set(cases.next_year["people"])
    for region, w in want["regions"].items():
        table = book.get(region, 2027)
        assert w["due_fen"] == table.resident.individual_share_fen > 0
        assert w["provisional"] == ("resident.individual_share_fen" in table.provisional_fields)
        assert cases.next_year["people"][region].id_number.startswith(region)


# --------------------------------------------------------------------------- the demo run
def test_the_demo_runs_every_case_and_the_ledger_agrees(demo_run):
    for name in CASE_CHECKS:
        assert demo_run.checks[name]["ok"], (name, demo_run.checks[name])
    c = demo_run.report["cases"]
    assert c["late_fees"]["owed_fen"] == 0 and c["late_fees"]["collected_fen"] > 0 and c["late_fees"]["waived_fen"] > 0
    assert c["late_fees"]["self_refused"] == "WAIVER_SELF_APPROVED"
    assert c["statuses"]["owed_back"]["overpayment_fen"] == 40_000
    assert [m["code"] for m in c["statements"]["missing"]] == ["STATEMENT_MISSING"]
    assert "cases" in demo_run.seconds


def test_the_arrears_export_has_one_row_per_employer(demo_run):
    from openpyxl import load_workbook

    path = demo_run.report["cases"]["arrears"]["path"]
    sheet = load_workbook(path, read_only=True)["单位欠费合计"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][1] == "单位编号" and "合计（元）" in rows[0]
    ids = [r[1] for r in rows[1:]]
    assert len(ids) == len(set(ids)) == demo_run.report["cases"]["arrears"]["count"]
    assert any(str(i).endswith("MA0DEMO02X") for i in ids)


def _slots(line: str) -> list[str]:
    """The line as terminal columns: a wide character takes two (its second column is '')."""
    out: list[str] = []
    for ch in line:
        out.append(ch)
        if unicodedata.east_asian_width(ch) in ("W", "F"):
            out.append("")
    return out


def _tables(lines: list[str]):
    """(header, dash line, rows) of every table print_table drew."""
    for i, line in enumerate(lines):
        if i and re.fullmatch(r"-+(  -+)*", line):
            rows = []
            first = len(line.split("  ")[0])
            for row in lines[i + 1:]:
                if not row.strip() or "：" in "".join(_slots(row)[:first]):
                    break
                rows.append(row)
            yield lines[i - 1], line, rows


def _report(result, **kw) -> str:
    import io
    from contextlib import redirect_stdout

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        _print_report(result, **kw)
    return buffer.getvalue()


def test_the_report_reads_as_a_county_official_reads_it(demo_run):
    out = _report(demo_run)
    assert "None" not in out and "{'" not in out and "': " not in out and "_fen" not in out
    lines = out.splitlines()
    tables = list(_tables(lines))
    assert len(tables) >= 7
    for header, dashes, rows in tables:
        assert re.search(r"[\u4e00-\u9fff]", header), header  # Chinese headings
        starts = [m.start() for m in re.finditer(r"-+", dashes)][1:]
        for line in [header, *rows]:
            slots = _slots(line)
            for p in starts:
                if len(slots) > p:
                    assert slots[p - 2:p] == [" ", " "], (line, p)
    # the cases, one line each, money in yuan with two decimals
    for key in ("滞纳金：", "资助身份（经办员录入）：", "单位欠费（截至", "对账单文件：", "参保人合并：", "重复参保：",
                "大额退费："):
        line = next(x for x in lines if x.startswith(key))
        assert re.search(r"\d\.\d\d 元", line), line
    assert "应退 400.00 元" in out and "STATEMENT_MISSING" in out and "2025-10-01" in out
    migrated = next(x for x in lines if x.startswith("历史数据迁移："))
    assert "2026-10-01 起享受待遇" in migrated and "3 + 4 - 4 = 3" in migrated and "无从得知" in migrated
    assert "再次迁移写入 0 行" in migrated
    next_year = next(x for x in lines if x.startswith("下一年度核定："))
    assert "2027 年度" in next_year and "暂定" in next_year and re.search(r"\d\.\d\d 元", next_year)
    # the checks: one Chinese line each; their figures only with --check
    for name in CASE_CHECKS:
        assert any(x.startswith("  一致") and demo_module.term(name, "zh") in x for x in lines), name
    assert "expected_accrued_fen" not in out and "按税务机关" not in out
    detailed = _report(demo_run, check=True)
    assert "expected_accrued_fen" in detailed and "按税务机关" in detailed
    english = _report(demo_run, lang="en")
    assert "Late fees:" in english and "owed back" in english
    assert "History migration:" in english and "Next year:" in english and "provisional" in english


def test_the_chart_is_a_png_as_file_says(demo_run, tmp_path):
    chart = tmp_path / "coverage.png"
    demo_module._chart(demo_run, str(chart))
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if shutil.which("file"):  # the issue's own test: `file coverage.png` says PNG
        assert "PNG image data" in subprocess.run(["file", str(chart)], capture_output=True, text=True).stdout


WRONG = {
    "person_merge": lambda e: {**e, "change_by_merge": {**e["change_by_merge"], "residents": 0}},
    "history_migration": lambda e: {**e, "covered_from": date(2026, 7, 1)},  # the floor of 6 months forgotten
    "next_year_assessment": lambda e: {**e, "regions": {**e["regions"], "610981": {
        **e["regions"]["610981"], "due_fen": e["regions"]["610981"]["due_fen"] + 1}}},
    "duplicate_enrollment": lambda e: {**e, "refund_owed_fen": e["refund_owed_fen"] + 1},
    "large_correction": lambda e: {**e, "paid_after_fen": e["paid_after_fen"] + 1},
}
EXPECTED_KEY = {"person_merge": "merge", "duplicate_enrollment": "duplicate", "large_correction": "correction",
                "history_migration": "migration", "next_year_assessment": "next_year"}


@pytest.mark.parametrize("check", sorted(WRONG))
def test_a_wrong_expectation_of_a_case_fails_that_check_alone(check, tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path))
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    real = demo_cases.build_cases

    def wrong(county, policies):
        cases = real(county, policies)
        key = EXPECTED_KEY[check]
        cases.expected[key] = WRONG[check](cases.expected[key])
        return cases

    monkeypatch.setattr(demo_cases, "build_cases", wrong)
    saved, configured = structlog.get_config(), ledger.log._configured
    try:
        result = run_pipeline(people=150, seed=7, quiet=True)
    finally:
        structlog.configure(**saved)
        ledger.log._configured = configured
    assert [name for name, c in result.checks.items() if not c["ok"]] == [check]
    assert not result.ok


def test_a_case_the_ledger_gets_wrong_fails_the_check_mode(tmp_path, monkeypatch, capsys):
    """The generator expects a different fee and another missing day: the checks fail, --check exits 1."""
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path))
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    real = demo_cases.build_cases

    def wrong(county, policies):
        cases = real(county, policies)
        cases.expected["late_fees"] = {**cases.expected["late_fees"],
                                       "waived_fen": cases.expected["late_fees"]["waived_fen"] + 1}
        st = cases.expected["statements"]
        cases.expected["statements"] = {**st, "missing": [{**st["missing"][0], "business_date": "2025-10-02"}]}
        return replace(cases)

    monkeypatch.setattr(demo_cases, "build_cases", wrong)
    saved, configured = structlog.get_config(), ledger.log._configured
    try:
        assert run_demo(people=150, seed=7, check=True) == 1
    finally:
        structlog.configure(**saved)
        ledger.log._configured = configured
    out = capsys.readouterr().out
    assert "不一致" in out and "滞纳金应计、征收、减免与真值一致" in out
    failed = [x for x in out.splitlines() if x.startswith("  不一致")]
    assert len(failed) == 2 and any("late_fees" in x for x in failed) and any("statement_file" in x for x in failed)
