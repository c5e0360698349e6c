"""The module renames of issue #20 (tools/rename_modules.py): done in this tree, and the rewrites it makes.

Run again on a tree where nothing refers to an old name any more, the script moves nothing and rewrites
nothing: a reference to an old module path brought back (a merge, a copy from an old branch) fails here.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "rename_modules.py"

spec = importlib.util.spec_from_file_location("rename_modules", SCRIPT)
rename_modules = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rename_modules)  # type: ignore[union-attr]


def test_every_rename_is_done_and_no_reference_to_an_old_module_is_left():
    result = subprocess.run([sys.executable, str(SCRIPT), "--dry-run"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    states = [line.split()[0] for line in result.stdout.splitlines() if " -> " in line and "(" in line]
    assert states == ["done"] * len(rename_modules.RENAMES)
    assert "0 files rewritten, 0 conflicts" in result.stdout, result.stdout


def test_references_are_rewritten_by_module_path_not_by_line():
    text = "\n".join([
        "from projections.projector import ProjectionRunner, rebuild",
        "import projections.projector as projector_module",
        "from projections import projector, store",
        "from projections import (store,",
        "    projector as p)",
        'monkeypatch.setattr("projections.projector.ProjectionRunner.run_once", boom)',
        "see projections/projector.py and /repo/projections/projector.py.",
        "projections.projector_old and my_projections.projector and self.projections.projector stay",
    ])
    out, count = rename_modules.rewrite_text(text, "projections/projector.py", "projections/projection_runner.py")
    assert out.splitlines() == [
        "from projections.projection_runner import ProjectionRunner, rebuild",
        "import projections.projection_runner as projector_module",
        "from projections import projection_runner as projector, store",
        "from projections import (store,",
        "    projection_runner as p)",
        'monkeypatch.setattr("projections.projection_runner.ProjectionRunner.run_once", boom)',
        "see projections/projection_runner.py and /repo/projections/projection_runner.py.",
        "projections.projector_old and my_projections.projector and self.projections.projector stay",
    ]
    assert count == 7
    again, none = rename_modules.rewrite_text(out, "projections/projector.py", "projections/projection_runner.py")
    assert (again, none) == (out, 0)


def test_bare_layer_names_change_only_in_contracts_of_that_package():
    toml = "\n".join([
        "[[tool.importlinter.contracts]]", 'containers = ["ledger"]', "layers = [",
        '    "application",', '    "ports | records | log",  # provenance records', "]",
        "[[tool.importlinter.contracts]]", 'containers = ["entrypoints"]', "layers = [", '    "records",', "]",
    ])
    out, count = rename_modules.rewrite_contract_layers(toml, "ledger/records.py", "ledger/inbound_records.py")
    assert count == 1
    assert '"ports | inbound_records | log",  # provenance records' in out
    assert '    "records",' in out  # another package's layer of that name
