"""The ``ledger serve``, ``ledger import`` and ``ledger token add`` subcommands.

Registered into ``ledger.cli.build_parser`` by :func:`add_http_commands`; nothing heavy is
imported until a command runs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Any


def cmd_serve(args: argparse.Namespace) -> int:
    from ledger.http.app import serve
    from ledger.http.auth import TokenFileError

    try:
        return serve(args.host, args.port)
    except TokenFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def cmd_import(args: argparse.Namespace) -> int:
    from ledger.bootstrap import bootstrap
    from ledger.http.import_batch import import_file

    path = Path(args.file)
    if not path.is_file():
        print(f"error: {path} is not a file", file=sys.stderr)
        return 2
    system = bootstrap()
    try:
        report = import_file(system.ledger, path.read_bytes(), path.name, user=args.user,
                             request_id=f"cli-{uuid.uuid4().hex[:12]}", source="batch")
    finally:
        system.close()
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2, default=str))
    else:
        for line in report["lines"]:
            if line["status"] != "imported" or args.verbose:
                code = f" {line['code']}" if line["code"] else ""
                print(f"row {line['line']:>6}  {line['status']:<16}{code}  {line['id_number'] or ''}  {line['message']}")
        print(f"{path.name}: {report['rows']} rows, {report['imported']} imported, "
              f"{report['already_enrolled']} already enrolled, {report['already_imported']} already imported, "
              f"{report['errors']} errors")
    return 1 if report["errors"] else 0


def cmd_token_add(args: argparse.Namespace) -> int:
    from ledger.domain.errors import DomainError
    from ledger.http.auth import TOKENS_FILE_ENV, TokenFileError, add_token

    path = args.file or os.environ.get(TOKENS_FILE_ENV)
    if not path:
        print(f"error: give --file or set {TOKENS_FILE_ENV}", file=sys.stderr)
        return 2
    try:
        token = add_token(path, user=args.user, role=args.role, scopes=args.scope or [],
                          expires=date.fromisoformat(args.expires) if args.expires else None)
    except (TokenFileError, DomainError, ValueError) as e:
        print(f"error: {getattr(e, 'message', e)}", file=sys.stderr)
        return 2
    print(token)
    print(f"token for {args.user} ({args.role}) added to {path}; it is shown only now", file=sys.stderr)
    return 0


def add_http_commands(sub: Any) -> None:
    """Add ``serve``, ``import`` and ``token`` to the ``ledger`` command's subparsers."""
    p = sub.add_parser("serve", help="run the HTTP API (tokens from LEDGER_TOKENS_FILE)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("import", help="import a registration spreadsheet (CSV or XLSX): register and enroll each row")
    p.add_argument("file")
    p.add_argument("--user", required=True, help="who imports (recorded in every event's provenance)")
    p.add_argument("--verbose", action="store_true", help="also list the rows imported")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("token", help="manage API bearer tokens")
    token_sub = p.add_subparsers(dest="token_command", required=True)
    t = token_sub.add_parser("add", help="add a token to the tokens file and print it once")
    t.add_argument("--user", required=True, help="who holds the token")
    t.add_argument("--role", required=True, choices=["grid_worker", "clerk", "auditor", "tax_integration"])
    t.add_argument("--scope", action="append",
                   help="grid (12 digits) or township (9) for grid_worker; region (6) for clerk and "
                        "tax_integration; repeat for several")
    t.add_argument("--expires", help="last valid day, YYYY-MM-DD")
    t.add_argument("--file", help="tokens file (default: $LEDGER_TOKENS_FILE)")
    t.set_defaults(func=cmd_token_add)
