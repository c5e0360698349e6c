"""The ``ledger`` program: its table of commands, the parser, ``main``.

This module imports only the standard library, so that ``ledger --help`` and a command's
start are quick: :data:`COMMANDS` names each top-level command's module, and only the module
of the command being run is imported (``importlib``, in :func:`build_parser`). That is the
one deliberate lazy import of the command line; the command modules themselves import what
they use at module level. ``ledger --help`` lists the commands from this table without
importing any of them.

A new top-level command: add ``name: Command(module, help)`` here, in the order ``--help``
lists it; its module's ``add_*_commands(sub)`` (``Command.adder``) adds its parser, taking the
help from here with :func:`help_of`. tests/unit/test_cli_skeleton.py checks the two agree.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NamedTuple

DESCRIPTION = """The ``ledger`` command: the local stack, policy tables, people, the feeds, the views
(``project``, ``entitlement``, ``arrears``, ``gaps``, ``coverage``), and the demo.

Readable tables by default, ``--json`` for machines. Errors a user can cause print
their code and message and exit 2; nothing is half-written.
"""


class Command(NamedTuple):
    module: str  # imported when the command runs
    adder: str  # the module's function that adds its parsers: adder(subparsers)
    help: str


_LEDGER = ("entrypoints.cli", "add_ledger_commands")
_FEEDS = ("entrypoints.cli", "add_feed_commands")
_VIEWS = ("entrypoints.cli", "add_view_commands")
_HTTP = ("entrypoints.http.cli_commands", "add_http_commands")
_RECONCILE = ("entrypoints.reconcile", "add_reconcile_commands")
_AUDIT = ("entrypoints.audit.cli_commands", "add_audit_commands")

#: Every top-level command, in the order ``ledger --help`` lists them.
COMMANDS: dict[str, Command] = {
    "infra": Command(*_LEDGER, "start, stop or inspect the local Kafka + PostgreSQL stack"),
    "policy": Command(*_LEDGER, "list policy tables, or show one region's table for a year"),
    "person": Command(*_LEDGER, "show one person's ledger state"),
    "demo": Command("entrypoints.demo", "add_demo_command",
                    "generate a small county and run it through the ledger (embedded, no servers)"),
    "consume": Command(*_FEEDS, "apply an inbound feed from Kafka to the ledger (exactly once)"),
    "status": Command(*_FEEDS, "where each consumer, the publisher and the views stand: positions and lag"),
    "feed": Command(*_FEEDS, "put an integrator's CSV/XLSX export on its feed topic as Avro (bad rows by line); "
                             "without KAFKA_BOOTSTRAP_SERVERS, apply it to the ledger at once"),
    "dlq": Command(*_FEEDS, "dead letters: the feed records the consumers refused; list, re-submit after a fix"),
    "publish": Command(*_FEEDS, "publish the ledger's person events to ledger.events.v1"),
    "serve": Command(*_HTTP, "run the HTTP API (tokens from LEDGER_TOKENS_FILE)"),
    "clerk": Command(*_HTTP, "clerk commands (经办): enroll, assess, correct a payment, transfer, end, "
                             "move the account, grant or revoke a subsidised status, take or waive a late fee; "
                             "as the clerk in LEDGER_TOKEN"),
    "import": Command(*_HTTP, "import a registration spreadsheet (CSV or XLSX): register and enroll each "
                              "row, as the clerk in LEDGER_TOKEN (rows outside their regions are refused); "
                              "--template FILE writes the template, --errors FILE the refused rows to fix"),
    "migrate": Command(*_HTTP, "load history from the old system (CSV or XLSX): enrollments and paid coverage "
                               "years with their original dates, marked as migrated, idempotent per old record id; "
                               "--template FILE writes the template"),
    "token": Command(*_HTTP, "manage API bearer tokens"),
    "project": Command(*_VIEWS, "bring the views (entitlement, arrears, gaps) up to date with the ledger"),
    "entitlement": Command(*_VIEWS, "is a person covered (待遇资格): one coverage year, or one day"),
    "arrears": Command(*_VIEWS, "the arrears list (欠费名单) on a day: contributions outstanding, and employer "
                                 "months paid late whose late fee is unpaid (滞纳金未缴)"),
    "gaps": Command(*_VIEWS, "who in a grid or township is not covered, and why (应保尽保)"),
    "coverage": Command(*_VIEWS, "coverage rates per grid and township"),
    "fees": Command("entrypoints.http.fees_cli", "add_fee_commands",
                    "late fees owed (滞纳金清单) per employer and region, with the arithmetic; CSV/XLSX"),
    "reconcile": Command(*_RECONCILE, "reconcile the tax bureau's statements against the ledger (对账)"),
    "history": Command(*_AUDIT, "one person's full history, the state after each event, and as-of replay (审计)"),
    "verify": Command(*_AUDIT, "verify the hash chains and daily digests (tamper evidence, 防篡改)"),
}


def help_of(name: str) -> str:
    """The help line ``ledger --help`` shows for top-level command ``name``."""
    return COMMANDS[name].help


def _chosen(argv: Sequence[str] | None) -> str | None:
    """The top-level command ``argv`` runs (its first word that is not an option), if it names one."""
    for word in argv or ():
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: the chosen command's module is imported and adds its full parser; every other
    command is a line of ``--help`` from :data:`COMMANDS`. Without ``argv``: every command's full parser."""
    parser = argparse.ArgumentParser(prog="ledger", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = _chosen(argv)
    wanted = {(c.module, c.adder) for n, c in COMMANDS.items() if argv is None or n == chosen}
    added: set[tuple[str, str]] = set()
    for name, c in COMMANDS.items():
        if (c.module, c.adder) in wanted:
            if (c.module, c.adder) not in added:
                added.add((c.module, c.adder))
                getattr(importlib.import_module(c.module), c.adder)(sub)
        else:
            sub.add_parser(name, help=c.help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    # The skeleton's runner (entrypoints.command) comes with the command's module, imported above.
    run = importlib.import_module("entrypoints.command").run
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
