"""A clumsy operator's environment (no servers): a value the system cannot use is refused at start with
``SETTING_INVALID`` naming the variable, in one line, before anything is opened or written."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from entrypoints.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


@pytest.mark.parametrize("name, text", [
    ("LEDGER_PERSISTENCE", "mysql"),
    ("LEDGER_API_CATCH_UP", "yes"),
    ("LEDGER_RECON_INCOMPLETE_AFTER_HOURS", "0"),
    ("LEDGER_KAFKA_STARTUP_WAIT", "forever"),
    ("LEDGER_REQUIRE_CIPHER_KEY", "on"),
])
def test_the_ledger_command_refuses_a_bad_setting_in_one_line(hostile, tmp_path, monkeypatch, capsys, name, text):
    state = tmp_path / "state"
    monkeypatch.setenv("LEDGER_STATE_DIR", str(state))
    for other in ("LEDGER_SQLITE_PATH", "LEDGER_VIEWS_PATH", "LEDGER_PERSISTENCE", "KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(name, text)
    code = main(["status"])
    err = capsys.readouterr().err
    hostile.attempt(f"{name}={text} at start", status=None, crashed=code not in (0, 2),
                    written=bool(_files(state)))
    assert code == 2 and err.startswith(f"error SETTING_INVALID: 环境变量 {name}=") and err.count("\n") == 1
    assert name in err and "Traceback" not in err


def test_the_settings_check_refuses_a_bad_setting_without_a_traceback(hostile, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "LEDGER_STATE_DIR": str(tmp_path / "state"), "LEDGER_API_CATCH_UP": "yes"}
    out = subprocess.run([sys.executable, "-m", "infra.settings"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    hostile.attempt("python -m infra.settings with LEDGER_API_CATCH_UP=yes", status=None,
                    crashed="Traceback" in out.stderr, written=bool(_files(tmp_path / "state")))
    assert out.returncode == 2
    assert out.stderr.strip() == ("error SETTING_INVALID: 环境变量 LEDGER_API_CATCH_UP='yes' 无效：只能是 0 或 1"
                                  "（LEDGER_API_CATCH_UP must be 0 or 1）")


def test_the_settings_check_passes_a_good_environment_and_prints_no_secret(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "LEDGER_STATE_DIR": str(tmp_path), "LEDGER_ID_KEY": "id-secret-123",
           "CIPHER_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
    out = subprocess.run([sys.executable, "-m", "infra.settings"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("settings ok: persistence=sqlite")
    assert "id-secret-123" not in out.stdout + out.stderr and "AAECAwQF" not in out.stdout + out.stderr
