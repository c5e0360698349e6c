"""``ledger serve --demo``: the demo's data stays in var/demo/ and opens again in the API with printed tokens."""
from __future__ import annotations

import os
import re
import stat
from types import SimpleNamespace

import pytest
import structlog
from fastapi.testclient import TestClient

import ledger.log
from entrypoints.demo import _print_report, run_pipeline
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore, read_token_file
from entrypoints.catalogue import _CJK
from entrypoints.command import run as run_command
from entrypoints.http.cli_commands import cmd_serve, demo_serve_env
from entrypoints.http.demo_state import demo_dir
from entrypoints.wiring import bootstrap
from infra.settings import environment, load_settings


@pytest.fixture()
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path))
    for name in ("LEDGER_PERSISTENCE", "KAFKA_BOOTSTRAP_SERVERS", "LEDGER_SQLITE_PATH", "LEDGER_VIEWS_PATH",
                 "LEDGER_TOPIC_PREFIX", "LEDGER_ID_KEY", "LEDGER_TOKENS_FILE", "POSTGRES_SCHEMA"):
        monkeypatch.delenv(name, raising=False)
    saved, configured = structlog.get_config(), ledger.log._configured
    yield tmp_path
    structlog.configure(**saved)
    ledger.log._configured = configured


def test_serve_demo_opens_the_demos_data_with_the_printed_clerk_token(state, capsys):
    result = run_pipeline(people=300, seed=2025, quiet=True)
    root = demo_dir()
    assert result.state_dir == str(root) == str(state / "demo")
    assert (root / "ledger.sqlite").exists() and stat.S_IMODE((root / "id_key").stat().st_mode) == 0o600
    capsys.readouterr()
    _print_report(result)
    report = capsys.readouterr().out
    grid, year = result.next_steps["grid"], result.next_steps["year"]
    assert "在网页和命令行查看同一份数据" in report and ".venv/bin/ledger serve --demo" in report
    assert "http://127.0.0.1:8080/web/" in report and "http://127.0.0.1:8080/docs" in report
    assert f"LEDGER_STATE_DIR={root} " in report and f"ledger gaps {grid} --year {year}" in report

    served = demo_serve_env(environment())
    out = capsys.readouterr().out
    clerk = re.search(r"clerk\s+demo-clerk，区县 (\d{6})：(\S+)", out)
    auditor = re.search(r"auditor\s+demo-auditor：(\S+)", out)
    assert clerk and auditor and clerk.group(1) == result.report["transfers"]["region"]
    tokens_file = root / "tokens.toml"
    assert served["LEDGER_TOKENS_FILE"] == str(tokens_file)
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
    assert {e.user for e in read_token_file(tokens_file)} == {"demo-clerk", "demo-auditor"}
    assert clerk.group(2) not in tokens_file.read_text()  # only hashes are stored

    system = bootstrap(load_settings(served))
    try:
        client = TestClient(create_app(system, TokenStore.from_env(served)))
        as_of = result.next_steps["as_of"]
        r = client.get(f"/grids/{grid}/gaps", params={"year": year, "as_of": as_of},
                       headers={"Authorization": f"Bearer {clerk.group(2)}"})
        assert r.status_code == 200, r.text
        body = r.json()
        rows = body["gaps"] if isinstance(body, dict) and "gaps" in body else body
        expected = next(g for g in result.report["lowest_grids"] if g["grid"] == grid)["gaps"]
        assert expected > 0 and len(rows) == expected
        assert client.get("/web/").status_code == 200
        refused = client.get(f"/grids/{grid}/gaps", params={"year": year},
                             headers={"Authorization": "Bearer not-a-demo-token"})
        assert refused.status_code == 401
    finally:
        system.close()

    # a second start keeps the tokens (shown once) and says where they are
    demo_serve_env(environment())
    again = capsys.readouterr().out
    assert clerk.group(2) not in again and "令牌沿用" in again
    assert len(read_token_file(tokens_file)) == 2
    demo_serve_env(environment(), lang="en")  # and in English on request: no Chinese but the county's name
    english = capsys.readouterr().out
    assert "the tokens already in" in english and "grid page http://127.0.0.1:8080/web/" in english
    assert not _CJK.search(english.replace(result.region_name, "")), english


def test_serve_demo_without_a_demo_run_says_run_the_demo_first(state, capsys, hostile):
    args = SimpleNamespace(demo=True, host="127.0.0.1", port=8080, func=cmd_serve)
    assert run_command(args) == 2  # the one error line of every command
    err = capsys.readouterr().err
    assert err.startswith("error DEMO_NOT_RUN: ") and "请先运行" in err and "bash infra/dev.sh demo" in err
    assert not (state / "demo").exists()  # nothing created: no tokens for a demo that is not there
    hostile.attempt("serve --demo before any demo run", status=None, crashed=False,
                    written=(state / "demo").exists(), leaked=False)
