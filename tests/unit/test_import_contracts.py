"""The layering is a test (issue #20): the import-linter contracts in pyproject.toml hold.

``[tool.importlinter]`` says, for every import at module level or inside a function:

* ``layers``: entrypoints -> reconciliation -> consumers | projections -> events -> infra ->
  ledger; no package imports one above it, so there is no cycle between packages, and the
  consumers and the views do not import each other;
* ``core-layers``, ``entrypoints-layers``: the same inside ledger/ (application -> ports, records,
  log -> domain, policy) and inside entrypoints/ (cli -> the commands -> audit -> http -> wiring);
* ``core``: ledger.domain and ledger.policy import nothing of the project but each other, and
  no third-party package (tests/unit/test_layering_domain.py: only ``eventsourcing.domain``);
* ``no-file-cycles``: no two files or folders of one package import each other.

Run by hand: ``.venv/bin/lint-imports`` from the repository root.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def lint_imports(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run import-linter on ``cwd``'s pyproject.toml (a process of its own: grimp builds the graph afresh)."""
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code, "--no-cache", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_the_import_contracts_hold():
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(contracts)} kept, 0 broken" in result.stdout, result.stdout


def test_the_contracts_name_every_top_level_package():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert set(config["root_packages"]) == packages - {"tests", "benchmarks", "schemas"}
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    named = {name.strip() for layer in layers for name in layer.split("|")}
    assert named == set(config["root_packages"])


@pytest.mark.parametrize(("module", "line", "named"), [
    ("ledger/application.py", "import projections.store  # an upward import: the core reaching a view store",
     "ledger.application -> projections.store"),
    ("events/codec.py", "import entrypoints.wiring  # the formats reaching the wiring", "events.codec -> entrypoints.wiring"),
    ("ledger/domain/gaps.py", "import structlog  # a third-party package in the domain", "ledger.domain.gaps -> structlog"),
    ("entrypoints/audit/stored_rows.py", "import entrypoints.audit.verify  # a cycle between two files of audit/",
     ".stored_rows -> .verify"),
    ("ledger/ports.py", "import ledger.application  # a port reaching the service that uses it",
     "ledger.ports -> ledger.application"),
    ("entrypoints/wiring.py", "import entrypoints.http.app  # the wiring reaching an entrypoint",
     "entrypoints.wiring -> entrypoints.http.app"),
])
def test_a_deliberate_break_fails_the_contracts(tmp_path, module, line, named):
    """The contracts can fail: a copy of the tree with one forbidden import added is refused."""
    for name in ("pyproject.toml", *(p.parent.name for p in ROOT.glob("*/__init__.py"))):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (tmp_path / name).write_text(source.read_text())
    target = tmp_path / module
    target.write_text(target.read_text() + "\n" + line + "\n")
    result = lint_imports(cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    assert named in result.stdout  # the edge is named
