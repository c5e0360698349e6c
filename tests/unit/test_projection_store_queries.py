"""Queries over the stored views give what the pure functions give over the whole view; bad input has its code.

The town of tests/unit/test_projection_coverage_gaps.py (one person per gap reason)
is projected into a SQLite view store; the gap list is compared with the pure
``gap_list`` on every day of two coverage years.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, timedelta

import pytest

from entrypoints.wiring import bootstrap
from entrypoints.cli import main
from infra.settings import load_settings
from ledger.domain.errors import DomainError
from projections import arrears as pure_arrears
from projections import coverage_gaps as pure_gaps
from ledger.domain.coverage import covered_on
from projections.projection_runner import ProjectionRunner
from projections.queries import ViewQueries
from projections.sources import NotificationLogSource
from projections.store import SQLiteViewStore
from tests.unit.cli_support import run_as
from tests.unit.projection_support import (
    API,
    HANBIN,
    arrears_view,
    enroll,
    entitlement_view,
    grant,
    ledger,  # noqa: F401  (fixture)
    number,
    pay_year,
    refund,
    tax,
)
from tests.unit.test_projection_coverage_gaps import AS_OF, GRID_A, GRID_B, GRID_C, town  # noqa: F401  (fixture)


def project(ledger) -> ViewQueries:
    store = SQLiteViewStore(":memory:")
    ProjectionRunner(store, NotificationLogSource(ledger), ledger.policies, batch_size=5).run_once()
    return ViewQueries(store, ledger.policies)


def without_masked(lines):
    return [{k: v for k, v in line.items() if k != "masked_id"} for line in lines]


def days(year):
    day = date(year, 1, 1)
    while day.year == year:
        yield day
        day += timedelta(days=1)


def test_gap_list_equals_the_pure_list_on_every_day_of_two_years(ledger, town):
    queries = project(ledger)
    view = entitlement_view(ledger)
    for year in (2025, 2026):
        for day in days(year):
            for grid in (GRID_A, GRID_B, GRID_C):
                assert without_masked(queries.gap_list(grid, year, day)) == pure_gaps.gap_list(
                    view, year, day, ledger.policies, grid=grid), (grid, day)
            assert without_masked(queries.gap_list("610902100", year, day)) == pure_gaps.gap_list(
                view, year, day, ledger.policies, township="610902100"), day
    # asked before or after the year: the evaluation day is 1 January / 31 December
    assert without_masked(queries.gap_list(GRID_B, 2026, date(2025, 12, 1))) == pure_gaps.gap_list(
        view, 2026, date(2025, 12, 1), ledger.policies, grid=GRID_B)


def test_gap_lines_put_subsidised_people_first_and_carry_a_masked_id_only(ledger, town):
    queries = project(ledger)
    gaps = queries.gap_list("610902100", 2026, AS_OF)
    assert gaps[0]["reason"] == "SUBSIDISED_NOT_COVERED" and gaps[0]["person_id"] == town["subsidised_gap"]
    for line in gaps:
        masked = line["masked_id"]
        assert masked.startswith("6109") and "*" * 10 in masked and len(masked) == 18
        assert line["person_id"] and "id_number" not in line and "name" not in line
    only = queries.gap_list(GRID_B, 2026, AS_OF, reason="LAPSED")
    assert [g["person_id"] for g in only] == [town["lapsed"]]


def test_coverage_rates_equal_the_pure_rates(ledger, town):
    queries = project(ledger)
    view = entitlement_view(ledger)
    for as_of in (date(2025, 12, 1), date(2026, 1, 16), AS_OF, date(2026, 6, 1), date(2027, 2, 1)):
        assert queries.coverage_rates(2026, as_of) == pure_gaps.coverage_rates(view, 2026, as_of, ledger.policies)
    rates = queries.coverage_rates(2026, AS_OF, region=HANBIN)
    assert rates["grids"][GRID_A]["coverage_percent"] == "40.00%"
    assert queries.coverage_rates(2026, AS_OF, region="610921") == {"grids": {}, "townships": {}}


def test_entitlement_and_covered_on_answer_from_the_stored_row(ledger, town):
    queries = project(ledger)
    view = entitlement_view(ledger)
    pid = town["covered"]
    answer = queries.entitlement(pid, 2026)
    assert answer["resident"] == view[pid]["years"][2026] and answer["summary"] == view[pid]["summary"]
    assert answer["employee"] is None and answer["masked_id"].endswith(number(1)[-4:])
    for day in (date(2025, 12, 31), date(2026, 1, 1), AS_OF):
        assert queries.covered_on(pid, day) == covered_on(view, pid, day)
    assert queries.covered_on(pid, "2026-03-01").covered
    waiting = queries.covered_on(town["waiting"], AS_OF)
    assert not waiting.covered and "covered from 2026-05-01" in waiting.reason and waiting.sources


@pytest.fixture()
def arrears_town(ledger):
    """Residents owing their year and employees owing March (one paid in part, late)."""
    enroll(ledger, number(1), date(2025, 9, 15))
    enroll(ledger, number(3), date(2025, 9, 15), grid=GRID_B)
    n = number(5)
    enroll(ledger, n, date(2025, 9, 15))
    pay_year(ledger, n, 2026, date(2026, 1, 20))
    for seq, employer in ((7, "91610902AA"), (9, "91610902BB")):
        e = number(seq)
        pid = enroll(ledger, e, date(2025, 1, 1), scheme="EMPLOYEE", employer_id=employer)
        ledger.assess_employee_month(pid, "2025-03", declared_base_fen=500000, provenance=API,
                                     effective_date=date(2025, 3, 1))
    ledger.record_tax_record(tax(number(7), "E1", amount_fen=20000, paid_on=date(2025, 4, 20), levy_item="EMPLOYEE",
                                 period=(date(2025, 3, 1), date(2025, 3, 31))), provenance=API)
    # March paid in full: by number 13's employer 10 days late (its fee stays owed), by 15's on the due date
    for seq, employer, paid_on in ((13, "91610902CC", date(2025, 4, 10)), (15, "91610902DD", date(2025, 3, 31))):
        pid = enroll(ledger, number(seq), date(2025, 1, 1), scheme="EMPLOYEE", employer_id=employer)
        ledger.assess_employee_month(pid, "2025-03", declared_base_fen=500000, provenance=API,
                                     effective_date=date(2025, 3, 1))
        ledger.record_tax_record(tax(number(seq), f"E{seq}", amount_fen=45000, paid_on=paid_on, levy_item="EMPLOYEE",
                                     period=(date(2025, 3, 1), date(2025, 3, 31))), provenance=API)
    n = number(11)  # paid in full, then part refunded: in arrears again from the refund
    enroll(ledger, n, date(2025, 9, 15))
    voucher = pay_year(ledger, n, 2026, date(2025, 10, 8))
    refund(ledger, n, voucher, 10000, date(2026, 1, 15), year=2026)


def test_arrears_equal_the_pure_list(ledger, arrears_town):
    queries = project(ledger)
    view = arrears_view(ledger)
    for as_of in (date(2025, 4, 1), date(2025, 4, 10), date(2025, 4, 30), date(2025, 12, 31), date(2026, 1, 10),
                  date(2026, 1, 15), date(2026, 1, 25), date(2027, 1, 5)):
        pure = pure_arrears.arrears_list(view, as_of, ledger.policies)
        assert without_masked(queries.arrears(as_of, sort=None)) == pure, as_of
        assert without_masked(queries.arrears(as_of)) == pure_arrears.sort_arrears(pure, "outstanding_fen")
        assert without_masked(queries.arrears(as_of, grid=GRID_B, sort="days_overdue", limit=1)) == \
            pure_arrears.sort_arrears(pure_arrears.filter_arrears(pure, grid=GRID_B), "days_overdue")[:1]
    rows = queries.arrears(date(2026, 1, 10), region=HANBIN)
    assert {r["kind"] for r in rows} == {"RESIDENT", "EMPLOYER"} and all(r["masked_id"] for r in rows)
    assert max(r["late_fee_fen"] for r in rows) > 0
    reopened = [r for r in queries.arrears(date(2026, 1, 25)) if r["outstanding_fen"] == 10000]
    assert len(reopened) == 1 and reopened[0]["paid_fen"] == 30000
    # selected although settled in full (settled_from): the employer month paid late, for its fee alone
    for as_of in (date(2025, 4, 10), date(2025, 4, 30), date(2027, 1, 5)):
        (fee_only,) = [r for r in queries.arrears(as_of) if r["fee_only"]]
        assert (fee_only["employer_id"], fee_only["outstanding_fen"]) == ("91610902CC", 0)
        assert (fee_only["late_fee_fen"], fee_only["days_overdue"]) == (225, 10)  # 45,000 x 0.05 % x 10 days
    assert not [r for r in queries.arrears(date(2025, 4, 9)) if r["fee_only"]]  # still outstanding then
    assert not [r for r in queries.arrears(date(2025, 4, 30)) if r["employer_id"] == "91610902DD"]


@pytest.mark.parametrize("ask, code", [
    (lambda q: q.gap_list("610902100009", 2026, AS_OF), "GRID_UNKNOWN"),
    (lambda q: q.gap_list("610902300", 2026, AS_OF), "TOWNSHIP_UNKNOWN"),
    (lambda q: q.gap_list("61090210000", 2026, AS_OF), "GRID_FORMAT"),
    (lambda q: q.gap_list("610101100001", 2026, AS_OF), "REGION_UNKNOWN"),
    (lambda q: q.gap_list(GRID_A, 2031, AS_OF), "POLICY_YEAR_UNKNOWN"),
    (lambda q: q.gap_list(GRID_A, "20x6", AS_OF), "YEAR_INVALID"),
    (lambda q: q.gap_list(GRID_A, 2026, "2026-02-30"), "DATE_INVALID"),
    (lambda q: q.gap_list(GRID_A, 2026, "1/3/2026"), "DATE_INVALID"),
    (lambda q: q.gap_list(GRID_A, 2026, AS_OF, reason="LAZY"), "REASON_UNKNOWN"),
    (lambda q: q.coverage_rates(2017, AS_OF), "POLICY_YEAR_UNKNOWN"),
    (lambda q: q.coverage_rates(2026, AS_OF, region="6109"), "REGION_FORMAT"),
    (lambda q: q.arrears("2026-13-01"), "DATE_INVALID"),
    (lambda q: q.arrears(AS_OF, grid="610902100009"), "GRID_UNKNOWN"),
    (lambda q: q.arrears(AS_OF, sort="name"), "SORT_KEY_UNKNOWN"),
    (lambda q: q.arrears(AS_OF, limit=0), "LIMIT_INVALID"),
    (lambda q: q.entitlement("00000000-0000-0000-0000-000000000000", 2026), "PERSON_NOT_FOUND"),
    (lambda q: q.entitlement("not a person", 2026), "PERSON_NOT_FOUND"),
    (lambda q: q.covered_on("00000000-0000-0000-0000-000000000000", AS_OF), "PERSON_NOT_FOUND"),
])
def test_bad_input_raises_its_code(ledger, town, ask, code):
    queries = project(ledger)
    with pytest.raises(DomainError) as err:
        ask(queries)
    assert err.value.code == code and err.value.message


def test_empty_views_say_so(ledger, town):
    queries = ViewQueries(SQLiteViewStore(":memory:"), ledger.policies)
    for ask in (lambda: queries.gap_list(GRID_A, 2026, AS_OF), lambda: queries.covered_on(town["covered"], AS_OF)):
        with pytest.raises(DomainError) as err:
            ask()
        assert err.value.code == "VIEWS_EMPTY" and "ledger project" in err.value.message


def test_unknown_year_for_a_person(ledger, town):
    with pytest.raises(DomainError) as err:
        project(ledger).entitlement(town["covered"], 2031)
    assert err.value.code == "POLICY_YEAR_UNKNOWN"


# --------------------------------------------------------------------------- the CLI
@pytest.fixture()
def deployment(tmp_path, monkeypatch):
    """An embedded deployment in tmp_path (SQLite ledger and views), as the ``ledger`` command finds it."""
    for key in ("LEDGER_PERSISTENCE", "KAFKA_BOOTSTRAP_SERVERS", "LEDGER_TOPIC_PREFIX", "LEDGER_POLICY_DIR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LEDGER_SQLITE_PATH", str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("LEDGER_VIEWS_PATH", str(tmp_path / "views.sqlite"))
    monkeypatch.setenv("LEDGER_ID_KEY", "cli-views-test")
    run_as(monkeypatch, tmp_path, "auditor")
    system = bootstrap(load_settings())
    ledger = system.ledger
    enroll(ledger, number(1), date(2024, 9, 10), grid=GRID_A)
    pay_year(ledger, number(1), 2025, date(2024, 10, 8))
    enroll(ledger, number(3), date(2025, 9, 10), grid=GRID_A)
    grant(ledger, number(3), "MIN_LIVING", date(2024, 1, 1))
    enroll(ledger, number(5), date(2025, 9, 10), grid=GRID_A)
    yield system
    system.close()


def test_the_cli_projects_and_answers(deployment, capsys):
    assert main(["project", "--quiet"]) == 0
    assert "视图已追上 log" in capsys.readouterr().out
    assert main(["project", "--quiet", "--lang", "en"]) == 0
    assert "views up to date from log" in capsys.readouterr().out

    assert main(["gaps", GRID_A, "--as-of", "2026-03-01"]) == 0
    out = capsys.readouterr().out
    assert out.index("SUBSIDISED_NOT_COVERED") < out.index("LAPSED") and "共 3 人未参保" in out
    assert number(3) not in out and f"{number(3)[:4]}**********{number(3)[-4:]}" in out

    assert main(["gaps", GRID_A, "--as-of", "2026-03-01", "--reason", "LAPSED", "--json"]) == 0
    (line,) = json.loads(capsys.readouterr().out)
    assert line["reason"] == "LAPSED" and line["day"] == "2026-03-01"

    assert main(["entitlement", number(1), "--year", "2025", "--on", "2025-06-01"]) == 0
    out = capsys.readouterr().out
    assert "2025-06-01 是否享受待遇" in out and "是：享受待遇：2025 年度城乡居民医保" in out and number(1) not in out
    assert "resident scheme" not in out  # the reason from the catalogue, not the domain's English sentence
    assert main(["entitlement", number(1), "--year", "2025", "--on", "2025-06-01", "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert "covered on 2025-06-01" in out and "YES: covered: resident scheme 2025 in" in out
    assert main(["entitlement", number(1), "--on", "2026-02-01", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["year"] == 2026 and payload["covered_on"]["covered"] is False

    assert main(["arrears", "--as-of", "2026-01-10", "--json"]) == 0
    assert {r["period"] for r in json.loads(capsys.readouterr().out)} == {"2026"}
    assert main(["arrears", "--as-of", "2026-01-10", "--grid", GRID_A]) == 0
    assert "其中 0 笔已缴本金、滞纳金未缴；欠缴" in capsys.readouterr().out

    assert main(["coverage", "--year", "2026", "--as-of", "2026-03-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["grids"][GRID_A]["residents"] == 3

    assert main(["project", "--rebuild", "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rebuilt"] is True


def test_a_rebuild_by_worker_processes_gives_the_same_tables(deployment, capsys):
    assert main(["project", "--rebuild", "--quiet", "--json"]) == 0
    events = json.loads(capsys.readouterr().out)["events"]
    store = SQLiteViewStore(deployment.settings.sqlite_path.replace("ledger.sqlite", "views.sqlite"))
    serial = store.dump()
    assert main(["project", "--rebuild", "--quiet", "--workers", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == events > 0
    assert store.dump() == serial
    store.close()


@pytest.mark.parametrize("argv, code", [
    (["gaps", "610902100009"], "GRID_UNKNOWN"),
    (["gaps", GRID_A, "--as-of", "2026-02-30"], "DATE_INVALID"),
    (["gaps", GRID_A, "--year", "2040"], "POLICY_YEAR_UNKNOWN"),
    (["arrears", "--as-of", "tomorrow"], "DATE_INVALID"),
    (["entitlement", "610902198005170000"], "ID_CHECKSUM"),
    (["entitlement", number(7)], "PERSON_NOT_FOUND"),
    (["project", "--source", "kafka", "--quiet"], "KAFKA_NOT_CONFIGURED"),
])
def test_the_cli_says_what_is_wrong_and_exits_2(deployment, capsys, argv, code):
    main(["project", "--quiet"])
    capsys.readouterr()
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(f"error {code}: ")


def test_decisions_serialise_for_json(ledger, town):
    decision = project(ledger).covered_on(town["covered"], AS_OF)
    assert json.loads(json.dumps(asdict(decision), default=str))["covered"] is True
