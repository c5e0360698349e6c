"""The domain owns the truth and imports no infrastructure (issue #19).

``ledger/domain`` and ``ledger/policy`` may import the standard library,
``eventsourcing.domain`` and each other -- nothing else: no projection, consumer,
adapter or entrypoint, and no third-party package. Every import is checked, at module
level and inside functions, so a rule cannot reach a view or a database by the back
door.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ("ledger/domain", "ledger/policy")
ALLOWED_PREFIXES = ("ledger.domain", "ledger.policy", "eventsourcing.domain")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def allowed(module: str) -> bool:
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top == "__future__":
        return True
    return any(module == p or module.startswith(p + ".") for p in ALLOWED_PREFIXES)


def test_domain_and_policy_import_only_the_standard_library_eventsourcing_domain_and_each_other():
    offenders = []
    for folder in CORE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line, module in imported_modules(path):
                if not allowed(module):
                    offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offenders == []


def test_the_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from projections.store import ViewStore\n    import psycopg\n")
    found = [m for _, m in imported_modules(bad) if not allowed(m)]
    assert found == ["projections.store", "psycopg"]
