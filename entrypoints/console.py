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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) if rows else len(c) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns))


def write_file(path: str, body: bytes) -> None:
    """Write an export (CSV/XLSX bytes) a command produced, and say so on stderr."""
    Path(path).write_bytes(body)
    print(f"已写入 {path} ({len(body)} 字节)", file=sys.stderr)


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
