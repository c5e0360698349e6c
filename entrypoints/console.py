"""What every command-line command shares: a table on stdout, ``--json`` output, a stop on SIGINT/SIGTERM.

Its own module so that the command modules (those :data:`entrypoints.main.COMMANDS` names:
the ledger's own, audit, HTTP tokens and import, reconciliation, the demo) import it rather than
each other; :mod:`entrypoints.command`, the one command skeleton, shows every answer with :func:`emit`.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from entrypoints import catalogue


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: wide and full-width characters (汉字, ％) take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 0 if unicodedata.combining(ch) else 1
               for ch in text)


def pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` terminal columns (counting wide characters as two)."""
    return text + " " * max(0, width - display_width(text))


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str],
                headers: dict[str, str] | None = None) -> None:
    """Rows as aligned columns; ``headers`` gives a column's heading (its key when absent).

    Widths count terminal columns, so Chinese cells line up; ``None`` prints as an empty cell.
    """
    heads = {c: (headers or {}).get(c, c) for c in columns}
    cells = [{c: "" if r.get(c) is None else str(r.get(c)) for c in columns} for r in rows]
    widths = {c: max([display_width(heads[c])] + [display_width(r[c]) for r in cells]) for c in columns}
    print("  ".join(pad(heads[c], widths[c]) for c in columns).rstrip())
    print("  ".join("-" * widths[c] for c in columns))
    for r in cells:
        print("  ".join(pad(r[c], widths[c]) for c in columns).rstrip())


def write_file(path: str, body: bytes, lang: str = catalogue.DEFAULT_LANG) -> None:
    """Write an export (CSV/XLSX bytes) a command produced, and say so on stderr (in ``lang``)."""
    Path(path).write_bytes(body)
    print(catalogue.text("cli_files", "written", lang, path=path, size=len(body)), file=sys.stderr)


def emit(args: argparse.Namespace, payload: Any, render: Callable[[Any], None]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
    else:
        render(payload)


def stop_on_signals() -> Any:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop
