"""``LEDGER_POLICY_DIR``: ``ledger policy`` shows the tables the ledger assesses with, and a malformed
table file is ``error POLICY_FILE_INVALID: <file>:<line> ...`` (exit 2) from every command, never a traceback."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from entrypoints.wiring import bootstrap, policy_book
from infra.settings import load_settings
from ledger.domain.errors import DomainError
from ledger.policy.book import DEFAULT_TABLES_DIR, PolicyBook, PolicyFileError
from tests.unit.cli_support import embedded, refused, run, run_as
from tests.unit.projection_support import HANBIN


@pytest.fixture()
def agency_dir(tmp_path, monkeypatch):
    """An embedded ledger whose LEDGER_POLICY_DIR is a copy of the packaged tables, 汉滨 2026 locally changed."""
    embedded(monkeypatch, tmp_path, "policy-dir-test")
    tables = tmp_path / "tables"
    shutil.copytree(DEFAULT_TABLES_DIR, tables)
    local = tables / HANBIN / "2026.toml"
    local.write_text(local.read_text().replace('version = "610902-2026-d1"', 'version = "610902-2026-c1"')
                     + "\n[employee]\nemployer_rate_bp = 800\n")
    monkeypatch.setenv("LEDGER_POLICY_DIR", str(tables))
    return tables


def test_ledger_policy_shows_the_table_the_ledger_assesses_with(agency_dir, capsys):
    status, out, _ = run(capsys, "policy", HANBIN, "2026", "--json")
    assert status == 0
    shown = json.loads(out)
    system = bootstrap(load_settings())
    try:
        used = system.policies.get(HANBIN, 2026)
    finally:
        system.close()
    assert shown["policy_version"] == used.policy_version
    assert shown["policy_version"].startswith("610902-2026-c1@")
    assert shown["employee_rates_bp"]["employer"] == 800 == used.employee.employer_rate_bp
    assert shown["policy_dir"] == str(agency_dir)
    packaged = PolicyBook.load().get(HANBIN, 2026)
    assert packaged.digest != used.digest  # the content changed, so the version string did too


def test_the_packaged_tables_without_the_setting(tmp_path, monkeypatch, capsys):
    embedded(monkeypatch, tmp_path, "policy-dir-test")
    status, out, _ = run(capsys, "policy", HANBIN, "2026", "--json")
    assert status == 0
    assert json.loads(out)["policy_version"] == PolicyBook.load().get(HANBIN, 2026).policy_version


def _break(tables: Path) -> Path:
    bad = tables / HANBIN / "2025.toml"
    lines = bad.read_text().splitlines()
    lines.insert(3, "version = = 'oops'")  # line 4: not TOML
    bad.write_text("\n".join(lines) + "\n")
    return bad


@pytest.mark.parametrize("argv", [
    ("policy",),
    ("policy", HANBIN, "2025"),
    ("clerk", "assess-resident-year", "--id-number", "11010519491231002X", "--year", "2025"),
    ("arrears", "--region", HANBIN),
    ("status",),
])
def test_a_malformed_policy_file_is_a_stable_code_from_every_command(agency_dir, capsys, monkeypatch, argv):
    bad = _break(agency_dir)
    run_as(monkeypatch, agency_dir.parent, "clerk", [HANBIN])
    err = refused(capsys, "POLICY_FILE_INVALID", *argv)
    assert f"{bad}:4" in err and "策略表文件无效" in err
    assert "Traceback" not in err


def test_an_invalid_value_names_the_file_and_the_fields_line(agency_dir):
    local = agency_dir / HANBIN / "2026.toml"
    local.write_text(local.read_text().replace("employer_rate_bp = 800", "employer_rate_bp = -5"))
    line = next(n for n, text in enumerate(local.read_text().splitlines(), 1) if "employer_rate_bp" in text)
    with pytest.raises(DomainError) as info:
        policy_book(load_settings())
    assert info.value.code == "POLICY_FILE_INVALID"
    assert f"{local}:{line}" in info.value.message and "employee.employer_rate_bp" in info.value.message
    assert info.value.details == {"file": str(local), "line": line}


def test_a_missing_policy_dir_is_the_same_code(tmp_path, monkeypatch, capsys):
    embedded(monkeypatch, tmp_path, "policy-dir-test")
    monkeypatch.setenv("LEDGER_POLICY_DIR", str(tmp_path / "nowhere"))
    err = refused(capsys, "POLICY_FILE_INVALID", "policy")
    assert "nowhere" in err


def test_the_error_stays_a_value_error_inside_the_policy_package():
    error = PolicyFileError("/x/610902/2025.toml: not valid TOML: Invalid value (at line 7, column 3)")
    assert error.location() == ("/x/610902/2025.toml", 7, "not valid TOML: Invalid value (at line 7, column 3)")
    assert error.as_domain_error().code == "POLICY_FILE_INVALID"
