"""Issue #19's case on every public surface: an employer owes 1,000,000 fen for January 2026, due
2026-01-15, and pays it all on 2026-03-16. Sixty days late at 0.05 % a day, its late fee (滞纳金) is
30,000 fen, and it is still owed after the payment: on the CLI (``ledger arrears``), the HTTP API
(``GET /arrears``) and the grid worker's page (its arrears section reads ``/arrears``; the page in a
real browser: tests/integration/test_web_chromium_late_fee.py).

The case is built in tests/unit/late_fee_support.py (eight employees of one employer, 125,000 fen
each; 汉滨区's 2026 table with contributions due on the 15th).
"""
from __future__ import annotations

import json
from datetime import date

import pytest
from fastapi.testclient import TestClient

from entrypoints.wiring import bootstrap
from infra.settings import Settings, load_settings
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from ledger.policy import PolicyBook
from tests.unit import late_fee_support as case
from tests.unit.cli_support import embedded, run, run_as
from tests.unit.http_support import AUDITOR, CLERK, GRID_A, GRID_WORKER_A, TOKENS

AFTER = "2026-04-01"


def masked(n: str) -> str:
    return n[:4] + "*" * 10 + n[-4:]


def assert_fee_only_rows(rows: list[dict], numbers: list[str] | None = None) -> None:
    """Eight rows, each paid in full on 2026-03-16 with 3,750 fen of fee owed; together 30,000 fen."""
    assert len(rows) == case.EMPLOYEES
    assert sum(r["late_fee_fen"] for r in rows) == case.FEE_FEN
    assert sum(r["paid_fen"] for r in rows) == case.OWED_FEN
    for r in rows:
        assert (r["kind"], r["employer_id"], r["period"]) == ("EMPLOYER", case.EMPLOYER, case.MONTH)
        assert (r["fee_only"], r["outstanding_fen"], r["late_fee_fen"]) == (True, 0, case.FEE_EACH_FEN)
        assert (str(r["due_date"]), str(r["paid_in_full_on"]), r["days_overdue"]) == ("2026-01-15", "2026-03-16", 60)
        assert r["late_fee_accruing"] is False
        assert str(r["late_fee_policy_version"]).startswith("610902-2026-t15@")
        assert len(set(r["sources"])) == 2  # the assessment's and the payment's event ids
    if numbers is not None:
        assert sorted(r.get("id_number") or r.get("masked_id") for r in rows) == sorted(numbers)


# ------------------------------------------------------------------ the CLI
@pytest.fixture()
def deployment(tmp_path, monkeypatch):
    """The embedded default (SQLite ledger and views) with the 15th-of-the-month tables; the case recorded."""
    embedded(monkeypatch, tmp_path, "late-fee-cli")
    monkeypatch.setenv("LEDGER_POLICY_DIR", str(case.policy_dir(tmp_path)))
    system = bootstrap(load_settings())
    try:
        numbers = case.employer_owes_january(system.ledger)
    finally:
        system.close()
    return tmp_path, numbers


def pay_and_project(capsys, numbers) -> None:
    from entrypoints.cli import main

    system = bootstrap(load_settings())
    try:
        case.employer_pays_january(system.ledger, numbers)
    finally:
        system.close()
    assert main(["project", "--quiet"]) == 0
    capsys.readouterr()


def test_cli_arrears_keeps_the_fee_after_the_employer_pays(deployment, capsys, monkeypatch):
    directory, numbers = deployment
    from entrypoints.cli import main

    assert main(["project", "--quiet"]) == 0
    capsys.readouterr()
    run_as(monkeypatch, directory, "clerk", [case.HANBIN])
    status, out, _ = run(capsys, "arrears", "--as-of", "2026-03-15", "--json")
    assert status == 0
    before = json.loads(out)
    assert len(before) == case.EMPLOYEES and not any(r["fee_only"] for r in before)
    assert sum(r["outstanding_fen"] for r in before) == case.OWED_FEN

    pay_and_project(capsys, numbers)
    status, out, _ = run(capsys, "arrears", "--as-of", AFTER, "--json")
    assert status == 0
    assert_fee_only_rows(json.loads(out))

    status, out, _ = run(capsys, "arrears", "--as-of", AFTER, "--sort", "late_fee_fen")
    assert status == 0
    lines = [line for line in out.splitlines() if "EMPLOYER" in line]
    assert len(lines) == case.EMPLOYEES and all("滞纳金未缴" in line and "37.50" in line for line in lines)
    assert "共 8 笔，其中 8 笔已缴本金、滞纳金未缴；欠缴 0.00 元；滞纳金 300.00 元" in out  # Chinese by default
    status, out, _ = run(capsys, "arrears", "--as-of", AFTER, "--sort", "late_fee_fen", "--lang", "en")
    assert "8 rows, 8 of them paid late with the late fee unpaid; outstanding 0.00 yuan; late fee 300.00 yuan" in out
    # a year later the fee has not grown: it stopped at the payment
    status, out, _ = run(capsys, "arrears", "--as-of", "2027-04-01", "--json")
    assert_fee_only_rows(json.loads(out))


def test_cli_grid_worker_sees_the_fee_rows_of_the_grid_with_masked_ids(deployment, capsys, monkeypatch):
    directory, numbers = deployment
    pay_and_project(capsys, numbers)
    run_as(monkeypatch, directory, "grid_worker", [case.GRID])
    status, out, _ = run(capsys, "arrears", "--grid", case.GRID, "--as-of", AFTER, "--json")
    assert status == 0 and not any(n in out for n in numbers)
    assert_fee_only_rows(json.loads(out), [masked(n) for n in numbers])


# ------------------------------------------------------------------ the HTTP API (and what the page reads)
@pytest.fixture()
def api(tmp_path):
    system = bootstrap(Settings(persistence="memory", id_key=b"late-fee-http"),
                       policies=PolicyBook.load(case.policy_dir(tmp_path)))
    numbers = case.employer_owes_january(system.ledger)
    yield TestClient(create_app(system, TokenStore.from_tokens(TOKENS))), system, numbers
    system.close()


def test_http_arrears_keeps_the_fee_after_the_employer_pays(api):
    client, system, numbers = api
    r = client.get("/arrears", params={"region": case.HANBIN, "as_of": "2026-03-15"}, headers=CLERK)
    assert r.status_code == 200, r.json()
    body = r.json()
    assert (body["count"], body["outstanding_fen"]) == (case.EMPLOYEES, case.OWED_FEN)
    assert body["late_fee_fen"] == 8 * 3_688 and not any(a["fee_only"] for a in body["arrears"])  # 59 days, growing

    case.employer_pays_january(system.ledger, numbers)
    for as_of in ("2026-03-16", AFTER, "2027-12-31"):
        r = client.get("/arrears", params={"region": case.HANBIN, "as_of": as_of}, headers=CLERK)
        assert r.status_code == 200, r.json()
        body = r.json()
        assert (body["count"], body["outstanding_fen"], body["late_fee_fen"]) == (case.EMPLOYEES, 0, case.FEE_FEN)
        assert_fee_only_rows(body["arrears"], numbers)  # a clerk of the region sees full ID numbers
    r = client.get("/arrears", params={"as_of": AFTER, "sort": "late_fee_fen"}, headers=AUDITOR)
    assert r.status_code == 200 and r.json()["late_fee_fen"] == case.FEE_FEN


def test_the_page_reads_the_fee_rows_and_labels_them_in_chinese(api):
    client, system, numbers = api
    case.employer_pays_january(system.ledger, numbers)
    html = client.get("/web/").text
    assert 'id="arrears-section"' in html and "欠费名单" in html and "滞纳金（元）</th>" in html
    labels = json.loads(html.split('<script type="application/json" id="labels">')[1].split("</script>")[0])
    assert labels["arrears_status"] == {"outstanding": "欠费", "fee_only": "滞纳金未缴"}
    assert labels["arrears_kinds"]["EMPLOYER"] == "单位职工"
    # the request the page makes for its arrears section, with the grid worker's token
    assert case.GRID == GRID_A
    r = client.get("/arrears", params={"grid": GRID_A, "as_of": AFTER}, headers=GRID_WORKER_A)
    assert r.status_code == 200, r.json()
    body = r.json()
    assert (body["count"], body["late_fee_fen"]) == (case.EMPLOYEES, case.FEE_FEN)
    assert_fee_only_rows(body["arrears"], [masked(n) for n in numbers])


def test_a_month_paid_on_time_is_not_listed_anywhere(api):
    client, system, numbers = api
    case.employer_pays_january(system.ledger, numbers, on=case.DUE)
    r = client.get("/arrears", params={"region": case.HANBIN, "as_of": AFTER}, headers=CLERK)
    assert r.status_code == 200 and r.json()["count"] == 0


def test_the_case_dates_are_the_issue_dates():
    """The fixture's arithmetic, spelled out: 16 + 28 + 16 late days, 0.05 % of 1,000,000 fen a day."""
    assert (case.PAID_ON - case.DUE).days == 60 and case.OWED_FEN == 1_000_000
    assert case.FEE_FEN == case.OWED_FEN * 500 * 60 // 1_000_000
    assert PolicyBook.load().get(case.HANBIN, 2026).employee.late_fee_ppm_per_day == 500
    assert case.DUE == date(2026, 1, 15) and case.PAID_ON == date(2026, 3, 16)
