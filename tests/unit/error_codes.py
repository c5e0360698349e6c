"""Every stable error code the system can raise, found in its source, and those the OpenAPI document names.

(A helper module, no tests: used by tests/unit/test_catalogue.py and test_http_error_languages.py.)
The scan reads the packages' source with ``ast``: the first argument of a call to an error class
(``DomainError``, ``NotFound``, ``Conflict``, ``Unauthenticated``, ``Forbidden``...), the code
argument of ``refusal(status, CODE, ...)`` and ``parse_code(..., CODE, ...)``, ``code=`` / ``error_code=``
keywords and defaults, and the values of ``ERROR_CODES`` tables.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ledger", "events", "infra", "projections", "consumers", "reconciliation", "entrypoints")
CODE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$|^[A-Z]{4,}$")
_RAISERS = re.compile(r"(Error|NotFound|Conflict|Unauthenticated|Unavailable|Forbidden|Refused|Large|_error|_problem)$")


def _code(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.match(node.value):
        return node.value
    return None


def raised_codes() -> dict[str, set[str]]:
    """code -> the files that raise it."""
    found: dict[str, set[str]] = {}

    def add(node: ast.AST | None, where: Path) -> None:
        code = _code(node) if node is not None else None
        if code:
            found.setdefault(code, set()).add(str(where.relative_to(ROOT)))

    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            for n in ast.walk(ast.parse(f.read_text())):
                if isinstance(n, ast.Call):
                    name = n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
                    if _RAISERS.search(name) and n.args:
                        add(n.args[0], f)
                    if name == "refusal" and len(n.args) > 1:
                        add(n.args[1], f)
                    if name == "parse_code" and len(n.args) > 2:
                        add(n.args[2], f)
                    for k in n.keywords:
                        if k.arg in ("code", "error_code"):
                            add(k.value, f)
                elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    a = n.args
                    pairs = list(zip(a.args[len(a.args) - len(a.defaults):], a.defaults))
                    pairs += [(x, d) for x, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
                    for arg, default in pairs:
                        if arg.arg in ("code", "error_code"):
                            add(default, f)
                elif isinstance(n, ast.Assign) and any(getattr(t, "id", "").endswith("ERROR_CODES") or
                                                       getattr(t, "id", "") == "_STATUS_CODES" for t in n.targets):
                    if isinstance(n.value, ast.Dict):
                        for v in n.value.values:
                            add(v, f)
    return found


def openapi_codes(document: dict[str, Any]) -> set[str]:
    """The codes the OpenAPI document declares: named in its error responses' descriptions, ``(CODE, CODE)``."""
    codes: set[str] = set()
    for path in document.get("paths", {}).values():
        for op in path.values():
            if not isinstance(op, dict):
                continue
            for status, response in op.get("responses", {}).items():
                if str(status).startswith(("4", "5")):
                    for word in re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", response.get("description", "")):
                        codes.add(word)
    return codes
