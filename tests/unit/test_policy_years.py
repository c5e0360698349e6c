"""Policy tables 2018-2027: national floors with their sources, provisional figures marked and shown,
next year ready before its concentrated period opens (a CI check on today's date + a startup warning)."""
from __future__ import annotations

import io
import json
import shutil
from datetime import date

import pytest

from entrypoints.wiring import bootstrap, policy_book, warn_missing_policy_years
from infra.settings import load_settings
from ledger.policy.book import DEFAULT_TABLES_DIR, PolicyBook, PolicyFileError
from ledger.policy.readiness import concentrated_period, missing_years, years_needed
from tests.unit.cli_support import embedded, run, run_as
from tests.unit.projection_support import HANBIN, number

# domain.md, "Two schemes": national floors (individual share / fiscal subsidy, yuan) 2018-2025.
FLOORS = {2018: (220, 490), 2019: (250, 520), 2020: (280, 550), 2021: (320, 580), 2022: (350, 610),
          2023: (380, 640), 2024: (400, 670), 2025: (400, 700)}
BOOK = PolicyBook.load()


def test_every_region_has_tables_from_2018_through_2027():
    assert len(BOOK.regions()) == 10
    for region in BOOK.regions():
        assert BOOK.years(region) == list(range(2018, 2028)), region


@pytest.mark.parametrize("year", sorted(FLOORS))
def test_the_national_floors_of_each_year(year):
    share, subsidy = FLOORS[year]
    for region in BOOK.regions():
        t = BOOK.get(region, year)
        assert (t.resident.individual_share_fen, t.resident.fiscal_subsidy_fen) == (share * 100, subsidy * 100)
        assert t.resident.concentrated_start == date(year - 1, 9, 1)
        assert t.resident.coverage_start == date(year, 1, 1)


@pytest.mark.parametrize("year", range(2018, 2024))
def test_historical_years_mark_national_floors_sourced_and_the_rest_provisional(year):
    t = BOOK.get(HANBIN, year)
    marks = {f.field: f for f in t.provenance}
    for field in ("resident.individual_share_fen", "resident.fiscal_subsidy_fen"):
        assert marks[field].scope == "national" and not marks[field].provisional
        assert "国家医保局 财政部" in marks[field].source and str(year) in marks[field].source
    assert marks["employee.employer_rate_bp"].scope == "local" and marks["employee.employer_rate_bp"].provisional
    assert "resident.concentrated_start" in t.provisional_fields
    assert t.status == "provisional" and t.version == f"{HANBIN}-{year}-p1"
    assert not t.resident.waiting.enabled  # 国办发〔2024〕38号 applies from 2025


def test_2027_is_carried_from_2026_and_marked_provisional_in_every_region():
    for region in BOOK.regions():
        t, before = BOOK.get(region, 2027), BOOK.get(region, 2026)
        assert t.status == "provisional"
        assert t.resident.individual_share_fen == before.resident.individual_share_fen
        assert t.resident.fiscal_subsidy_fen == before.resident.fiscal_subsidy_fen
        assert {"resident.individual_share_fen", "resident.fiscal_subsidy_fen"} <= set(t.provisional_fields)
        assert (t.resident.concentrated_start, t.resident.concentrated_end) == (date(2026, 9, 1), date(2026, 12, 31))
        assert t.digest != before.digest


def test_the_sourced_years_have_no_provisional_marks():
    for year in (2024, 2025, 2026):
        assert BOOK.get(HANBIN, year).provisional_fields == ()


def _copy(tmp_path):
    tables = tmp_path / "tables"
    shutil.copytree(DEFAULT_TABLES_DIR, tables)
    return tables


def test_a_provenance_entry_for_a_figure_the_table_lacks_is_refused(tmp_path):
    tables = _copy(tmp_path)
    f = tables / "national" / "2020.toml"
    f.write_text(f.read_text() + '"resident.individual_shar_fen" = { scope = "national", source = "x" }\n')
    with pytest.raises(PolicyFileError, match="individual_shar_fen"):
        PolicyBook.load(tables)


def test_a_provisional_table_must_say_which_figures_are_provisional(tmp_path):
    tables = _copy(tmp_path)
    f = tables / HANBIN / "2026.toml"
    f.write_text(f.read_text().replace('status = "default"', 'status = "provisional"'))
    with pytest.raises(PolicyFileError, match="status"):
        PolicyBook.load(tables)


def test_ledger_policy_shows_the_provisional_marks(tmp_path, monkeypatch, capsys):
    embedded(monkeypatch, tmp_path, "policy-years-test")
    status, out, _ = run(capsys, "policy", HANBIN, "2027", "--json")
    assert status == 0
    shown = json.loads(out)
    assert "resident.individual_share_fen" in shown["provisional_fields"]
    assert shown["provenance"]["resident.individual_share_fen"]["provisional"] is True
    status, out, _ = run(capsys, "policy", HANBIN, "2027")
    assert status == 0 and "暂定数值" in out and "【暂定】" in out
    status, out, _ = run(capsys, "policy", HANBIN, "2019")
    assert "全国 国家医保局 财政部" in out  # the sourced floor is shown without the mark
    status, out, _ = run(capsys, "policy")
    assert "2018,2019,2020,2021,2022,2023,2027" in out  # the provisional years per region


# ------------------------------------------------------------------ next year ready before it starts


def test_the_tables_cover_the_year_whose_concentrated_period_contains_today():
    """The CI check: run every day, it fails from the first day of a concentrated period with no table."""
    assert missing_years(policy_book(), date.today()) == []


def test_the_needed_years_follow_the_concentrated_period():
    assert years_needed(BOOK, HANBIN, date(2026, 8, 31)) == {2026: "RUNNING_YEAR"}
    assert years_needed(BOOK, HANBIN, date(2026, 9, 1)) == {2026: "RUNNING_YEAR", 2027: "CONCENTRATED_PERIOD_OPEN"}
    assert years_needed(BOOK, HANBIN, date(2026, 12, 31))[2027] == "CONCENTRATED_PERIOD_OPEN"
    # a year without a table: its period is the nearest table's, moved by whole years
    assert concentrated_period(BOOK, HANBIN, 2030) == (date(2029, 9, 1), date(2029, 12, 31))


def _without(tables, year):
    for region_dir in (p for p in tables.iterdir() if p.is_dir()):
        (region_dir / f"{year}.toml").unlink(missing_ok=True)
    return PolicyBook.load(tables)


def test_a_missing_next_year_is_found_on_the_first_day_of_its_period(tmp_path):
    book = _without(_copy(tmp_path), 2027)
    assert missing_years(book, date(2026, 8, 31)) == []
    missing = missing_years(book, date(2026, 9, 1))
    assert {(m.region_code, m.coverage_year) for m in missing} == {(r, 2027) for r in book.regions()}
    assert all(m.reason == "CONCENTRATED_PERIOD_OPEN" for m in missing)
    assert [m.coverage_year for m in missing_years(book, date(2027, 3, 1))] == [2027] * 10  # running year too


def test_a_missing_year_is_a_loud_startup_warning_not_a_failure(tmp_path, monkeypatch, capsys):
    tables = _copy(tmp_path)
    _without(tables, 2027)
    stream = io.StringIO()
    warned = warn_missing_policy_years(PolicyBook.load(tables), date(2026, 10, 1), stream=stream)
    assert len(warned) == 10
    line = stream.getvalue()
    assert line.startswith("警告 POLICY_YEAR_MISSING") and "2027年度（集中参保缴费期已开始）" in line and HANBIN in line
    # at startup (bootstrap reads LEDGER_POLICY_DIR and today's date): the system starts and says so on stderr
    embedded(monkeypatch, tmp_path, "policy-years-test")
    monkeypatch.setenv("LEDGER_POLICY_DIR", str(tables))
    capsys.readouterr()
    system = bootstrap(load_settings())
    system.close()
    expected = missing_years(PolicyBook.load(tables), date.today())
    err = capsys.readouterr().err
    assert ("POLICY_YEAR_MISSING" in err) == bool(expected)


def test_no_warning_when_the_tables_are_ready(capsys):
    stream = io.StringIO()
    assert warn_missing_policy_years(BOOK, date(2026, 12, 6), stream=stream) == []
    assert stream.getvalue() == ""


@pytest.mark.parametrize("region", sorted(BOOK.regions()))
def test_assess_resident_year_2027_works_in_every_region(region, tmp_path, monkeypatch, capsys):
    embedded(monkeypatch, tmp_path, "policy-years-test")
    run_as(monkeypatch, tmp_path, "clerk", [region])
    who = number(int(region[-3:]))
    status, _, err = run(capsys, "clerk", "enroll", "--id-number", who, "--name", "张三", "--scheme", "RESIDENT",
                         "--region-code", region, "--grid-code", region + "100001", "--effective-date", "2026-09-10")
    assert status == 0, err
    status, out, err = run(capsys, "clerk", "assess-resident-year", "--id-number", who, "--year", "2027", "--json")
    assert status == 0, err
    system = bootstrap(load_settings())
    try:
        person = system.ledger.find_person("RESIDENT_ID", who)
        assessment = person.assessments["2027"]
        assert assessment.standard_fen == BOOK.get(region, 2027).resident.individual_share_fen
        assert assessment.policy_version == BOOK.get(region, 2027).policy_version
    finally:
        system.close()


def test_the_startup_warning_speaks_the_runs_language(tmp_path, monkeypatch, capsys):
    """``--lang en`` (or ``LEDGER_LANG=en``) reaches the startup check, said before the command runs; Chinese
    otherwise, and the language does not outlive the run."""
    from entrypoints import catalogue
    from entrypoints.main import main

    tables = _copy(tmp_path)
    _without(tables, 2027)
    stream = io.StringIO()
    with catalogue.speaking("en"):
        warn_missing_policy_years(PolicyBook.load(tables), date(2026, 10, 1), stream=stream)
    line = stream.getvalue()
    assert line.startswith("warning POLICY_YEAR_MISSING: no policy table for 2027 (its concentrated enrollment "
                           "period has begun)") and HANBIN in line and not any("\u4e00" <= ch <= "\u9fff" for ch in line)
    assert catalogue.run_lang() == "zh"
    embedded(monkeypatch, tmp_path, "policy-years-lang")
    monkeypatch.setenv("LEDGER_POLICY_DIR", str(tables))
    capsys.readouterr()
    main(["status", "--lang", "en"])
    err = capsys.readouterr().err
    if missing_years(PolicyBook.load(tables), date.today()):
        assert "warning POLICY_YEAR_MISSING" in err and "警告" not in err
    assert catalogue.run_lang() == "zh"
