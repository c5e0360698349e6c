"""No function-level imports in the shipped packages, but for the few listed here with their reason.

An import inside a function hides a dependency (and often a cycle) from the reader and from the
layering contracts. The command line stays quick to start another way: ``entrypoints.main``
imports only the module of the command being run. What is left below is a heavy third-party
library that only some runs need (the embedded setup never loads Kafka's client), a POSIX-only
module, or an optional dependency behind ``except ImportError``.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("entrypoints", "ledger", "events", "projections", "reconciliation", "consumers", "infra")

#: Imported in a function anywhere: module (or its parent package) -> why.
LAZY_ANYWHERE = {
    "kafka": "kafka-python takes ~0.4 s to import; only a run with a broker loads it (never the embedded setup)",
    "consumers.kafka_io": "the Kafka adapter, imports kafka-python: as above",
    "openpyxl": "~0.3 s to import; only reading or writing an XLSX file needs it",
    "uvicorn": "the ASGI server: only `ledger serve` runs one",
    "fcntl": "POSIX only (the tokens file's lock)",
    "pwd": "POSIX only (the local stack's user)",
}
#: Imported in a function in one file only: (file, module) -> why.
LAZY_HERE = {
    ("entrypoints/http/cli_commands.py", "entrypoints.http.app"):
        "FastAPI and the whole API (~1 s): only `ledger serve`, not every `ledger clerk ...`",
    ("entrypoints/http/cli_commands.py", "entrypoints.http.routes_persons"):
        "a FastAPI route module: only `ledger clerk transfers`",
    ("entrypoints/http/cli_commands.py", "entrypoints.http.routes_transfers"):
        "a FastAPI route module: only `ledger clerk transfers`",
}


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return ["." * node.level + (node.module or "")]
    return [a.name for a in node.names]


def _allowed(rel: str, module: str, optional: bool) -> bool:
    if optional:  # try: import x / except ImportError: an optional dependency, by design
        return True
    if (rel, module) in LAZY_HERE:
        return True
    return any(module == m or module.startswith(m + ".") for m in LAZY_ANYWHERE)


def function_level_imports(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> list[tuple[str, int, str, bool]]:
    """(file, line, module, inside try/except ImportError) of every import inside a function."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"))

            def walk(node: ast.AST, in_function: bool, optional: bool) -> None:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, (ast.Import, ast.ImportFrom)) and in_function:
                        found.extend((rel, child.lineno, m, optional) for m in _imported(child))
                    guarded = optional or (isinstance(child, ast.Try) and any(
                        isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                        for h in child.handlers))
                    walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)), guarded)

            walk(tree, False, False)
    return found


def test_no_function_level_import_outside_the_allowed_list():
    found = function_level_imports()
    unexplained = [f"{rel}:{line} imports {module}" for rel, line, module, optional in found
                   if not _allowed(rel, module, optional)]
    assert unexplained == [], ("move these imports to the top of their module (a cycle is a layering bug to fix, "
                               "not to hide), or list them here with the reason:\n" + "\n".join(unexplained))
    # The walk sees what it should: the lazy imports it allows are there (a walk that found nothing passes too).
    assert {m for rel, _, m, _ in found if rel == "entrypoints/http/cli_commands.py"} == {m for _, m in LAZY_HERE}


def test_every_allowed_entry_is_still_used():
    found = function_level_imports()
    used = {m for _, _, module, _ in found for m in LAZY_ANYWHERE if module == m or module.startswith(m + ".")}
    assert set(LAZY_ANYWHERE) == used, f"no longer imported in a function, drop from the list: {set(LAZY_ANYWHERE) - used}"
    assert set(LAZY_HERE) <= {(rel, module) for rel, _, module, _ in found}


def test_the_walk_catches_an_import_in_a_method_and_knows_an_optional_one(tmp_path):
    """The check itself can fail: an import inside a method is reported; one behind except ImportError is optional."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(
        "import os\n"
        "class A:\n"
        "    def f(self):\n"
        "        from ledger.domain import errors\n"
        "def g():\n"
        "    try:\n"
        "        import orjson\n"
        "    except ImportError:\n"
        "        orjson = None\n")
    found = function_level_imports(tmp_path, ("pkg",))
    assert found == [("pkg/mod.py", 4, "ledger.domain", False), ("pkg/mod.py", 7, "orjson", True)]
    assert not _allowed("pkg/mod.py", "ledger.domain", False) and _allowed("pkg/mod.py", "orjson", True)


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_the_program_starts_on_the_standard_library_alone():
    """``ledger --help`` and the parser of every command but the one run: entrypoints.main imports no third-party
    library and of the project only the message catalogue (for the help's language), the settings (LEDGER_LANG)
    and the domain's error type they raise, all three on the standard library alone (the command table names
    modules; only the chosen one is imported)."""
    loaded = _loaded_after("import entrypoints.main")
    ours = {m for m in loaded if m.split(".")[0] in PACKAGES} - {"entrypoints", "entrypoints.main"}
    assert ours <= {"entrypoints.catalogue", "infra", "infra.settings", "ledger", "ledger.domain",
                    "ledger.domain.errors"}
    assert not {"eventsourcing", "pydantic", "fastapi", "kafka", "psycopg", "structlog"} & loaded


def test_the_embedded_system_loads_no_broker_client_no_xlsx_and_no_web_framework():
    loaded = _loaded_after("import entrypoints.cli, entrypoints.reconcile, entrypoints.audit.cli_commands")
    assert "entrypoints.wiring" in loaded and "reconciliation.factory" in loaded
    assert not {"kafka", "openpyxl", "fastapi", "uvicorn"} & loaded
