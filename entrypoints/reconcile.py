"""``ledger reconcile ...``: reconciliation of the tax statements (税务对账) on the command line.

    ledger reconcile show <statement_id>              header, state, tie-out arithmetic, discrepancies, errors
    ledger reconcile open [--office O] [--region R] [--older-than DAYS]
    ledger reconcile summary [--county R] [--date D]  collected, recorded, difference per county and day
    ledger reconcile missing [--county R] [--as-of D] days with ledger receipts and no statement (STATEMENT_MISSING)
    ledger reconcile discrepancy <id>                 one discrepancy with its history
    ledger reconcile explain <id> --note ...          as the clerk in LEDGER_TOKEN (of the discrepancy's region)
    ledger reconcile export --format csv|xlsx --out FILE [--statement ID | open filters]
    ledger reconcile run [--source log|kafka]         catch up the ledger side, compare complete statements,
                                                      apply the time limit, publish results (once)
    ledger reconcile rerun <statement_id>             compare a current statement again
    ledger reconcile consume [--once] [--workers N]   the long-running process on Kafka tax.statements.v1
"""
from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from entrypoints import catalogue
from entrypoints.command import Answer, command
from entrypoints.console import display_width, pad, print_table as _table, stop_on_signals as _stop_on_signals
from entrypoints.http.access import cli_principal
from entrypoints.http.auth import Principal, Role
from entrypoints.main import help_of
from ledger.domain.errors import DomainError
from ledger.domain.person import BUSINESS_TZ
from projections.queries import parse_day
from reconciliation.compare import yuan
from reconciliation.consumer import StatementConsumer
from reconciliation.reports import (county_summary, discrepancy_report, explain_discrepancy, export_discrepancies,
                                    missing_statements, open_discrepancies, statement_report)
from reconciliation.results import RESULTS_TOPIC, ResultsPublisher
from reconciliation.factory import ledger_side_runner, reconciler, statement_consumer, statement_due_days, store_of


def add_reconcile_commands(sub: Any) -> None:
    p = sub.add_parser("reconcile", help=help_of("reconcile"))
    rsub = p.add_subparsers(dest="reconcile_command", required=True)

    q = rsub.add_parser("show", help="one statement: tie-out, discrepancies, errors")
    q.add_argument("statement_id")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_show)

    q = rsub.add_parser("open", help="discrepancies not resolved yet (OPEN, EXPLAINED)")
    q.add_argument("--office", help="tax office code")
    q.add_argument("--region", help="6-digit region code")
    q.add_argument("--older-than", type=int, metavar="DAYS", help="only those found more than DAYS days ago")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_open)

    q = rsub.add_parser("summary", help="per county and day: collected (statements), recorded (ledger), difference")
    q.add_argument("--county", help="6-digit region code")
    q.add_argument("--date", metavar="YYYY-MM-DD", help="business (payment) date")
    q.add_argument("--as-of", metavar="YYYY-MM-DD", help="the day overdue statements are counted to "
                                                         "(STATEMENT_MISSING; default: today, Beijing)")
    q.add_argument("--due-days", type=int, metavar="DAYS",
                   help="days a statement may take (default: LEDGER_RECON_STATEMENT_DUE_DAYS, else 1)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_summary)

    q = rsub.add_parser("missing", help="days with ledger receipts and no tax statement past its due date "
                                        "(STATEMENT_MISSING, 缺对账单)")
    q.add_argument("--county", help="6-digit region code")
    q.add_argument("--office", help="tax office code")
    q.add_argument("--as-of", metavar="YYYY-MM-DD", help="the day counted to (default: today, Beijing)")
    q.add_argument("--due-days", type=int, metavar="DAYS",
                   help="days a statement may take (default: LEDGER_RECON_STATEMENT_DUE_DAYS, else 1)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_missing)

    q = rsub.add_parser("discrepancy", help="one discrepancy with its history")
    q.add_argument("discrepancy_id")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_discrepancy)

    q = rsub.add_parser("explain", help="explain a discrepancy (a note), as the clerk in LEDGER_TOKEN")
    q.add_argument("discrepancy_id")
    q.add_argument("--note", required=True)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_explain)

    q = rsub.add_parser("export", help="discrepancies as CSV (UTF-8 with BOM) or XLSX")
    q.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    q.add_argument("--out", required=True, help="file to write")
    q.add_argument("--statement", help="every discrepancy of this statement's scope (any state)")
    q.add_argument("--office")
    q.add_argument("--region")
    q.add_argument("--older-than", type=int, metavar="DAYS")
    q.set_defaults(func=cmd_export)

    q = rsub.add_parser("run", help="catch up, compare complete statements, check time limits, publish (once)")
    q.add_argument("--source", choices=["log", "kafka"], default="log", help="where the ledger side reads events")
    q.add_argument("--incomplete-after", type=float, metavar="HOURS",
                   help="a statement not complete this long after its first record is INCOMPLETE (default: "
                        "LEDGER_RECON_INCOMPLETE_AFTER_HOURS, else 2)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_run)

    q = rsub.add_parser("rerun", help="compare a current statement again (writes nothing if nothing changed)")
    q.add_argument("statement_id")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_rerun)

    q = rsub.add_parser("consume", help="consume tax.statements.v1 from Kafka and reconcile (long-running)")
    q.add_argument("--group", help="consumer group and position name (default ledger-tax-statements)")
    q.add_argument("--ledger-source", choices=["log", "kafka", "none"], default="log",
                   help="where the ledger side reads events (none: another process keeps it)")
    q.add_argument("--workers", type=int, default=0, help="processes that decode statement records (default 0)")
    q.add_argument("--max-records", type=int, default=5000)
    q.add_argument("--incomplete-after", type=float, metavar="HOURS",
                   help="a statement not complete this long after its first record is INCOMPLETE (default: "
                        "LEDGER_RECON_INCOMPLETE_AFTER_HOURS, else 2)")
    q.add_argument("--once", action="store_true", help="stop after 5 s without anything to do")
    q.set_defaults(func=cmd_consume)


# --------------------------------------------------------------------------- helpers
def _limit(args: argparse.Namespace) -> Any:
    hours = getattr(args, "incomplete_after", None)
    if hours is None:
        return None
    if hours <= 0:
        raise DomainError("SETTING_INVALID", "--incomplete-after must be a number of hours above zero")
    return timedelta(hours=hours)


def _lang(args: argparse.Namespace) -> str:
    return catalogue.lang_of(getattr(args, "lang", None))


def _heads(lang: str) -> dict[str, str]:
    """Column headings (catalogue section ``cli_columns``, shared with the other commands)."""
    return {k: v[lang] for k, v in catalogue.table("cli_columns").items() if lang in v}


def _say(key: str, lang: str, **values: Any) -> str:
    return catalogue.text("reconcile_out", key, lang, **values)


def _y(fen: Any) -> str:
    return "" if fen is None else yuan(int(fen))


def tie_out_lines(tie: dict[str, Any], lang: str) -> list[str]:
    """The tie-out written out in ``lang`` (catalogue ``[reconcile_lines]``), from the stored result's ``tie_out``
    (counts and fen per levy item): one line per levy item, one for the total, one for the differences by class.
    The result's own ``arithmetic`` (English, part of the published StatementReconciled) is left as it is."""
    def say(key: str, **values: Any) -> str:
        return catalogue.text("reconcile_lines", key, lang, **values)

    def pair(d: dict[str, list[int]], scheme: str) -> tuple[int, int]:
        count, fen = d.get(scheme, [0, 0])
        return int(count), int(fen)

    schemes = sorted(set(tie["statement"]) | set(tie["ledger"]) | set(tie["explained"]))
    rows = [(s, pair(tie["statement"], s), pair(tie["ledger"], s), pair(tie["explained"], s)) for s in schemes]
    total = tie["total"]
    rows.append((say("total"), tuple(total["statement"]), tuple(total["ledger"]), tuple(total["explained"])))
    width = max(display_width(r[0]) for r in rows)
    lines = []
    for name, (sn, sf), (ln, lf), (en, ef) in rows:
        dn, df = sn - ln, sf - lf
        lines.append(say("line", scheme=pad(name, width), statement=yuan(sf), statement_n=sn, ledger=yuan(lf),
                         ledger_n=ln, difference=yuan(df), difference_n=f"{dn:+d}", explained=yuan(ef),
                         explained_n=f"{en:+d}", mark=say("ties_out" if (dn, df) == (en, ef) else "does_not_tie_out")))
    parts = [say("difference_part", klass=k, yuan=yuan(int(v[1]), sign=True), n=f"{int(v[0]):+d}")
             for k, v in sorted(tie["by_class"].items())]
    lines.append(say("differences", parts=say("joiner").join(parts) if parts else say("no_differences")))
    return lines


def _discrepancy_rows(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for v in views:
        ptr = v.get("resolved_by") or {}
        out.append({**v, "date": v["scope"]["business_date"], "region": v["scope"]["region_code"],
                    "statement": _y(v["statement_fen"]), "ledger": _y(v["ledger_fen"]), "delta": _y(v["delta_fen"]),
                    "resolved_by": ptr.get("event_id") or ptr.get("statement_id") or "",
                    "note": (v.get("note") or "")[:40]})
    return out


DISCREPANCY_COLUMNS = ["id", "state", "class", "date", "region", "voucher_no", "line_no", "statement", "ledger",
                       "delta", "note", "resolved_by"]


# --------------------------------------------------------------------------- commands
@command
def cmd_show(args: argparse.Namespace, system: Any) -> Answer:
    report = statement_report(store_of(system), args.statement_id)

    lang = _lang(args)

    def render(r: dict[str, Any]) -> None:
        for k in ("statement_id", "state", "business_date", "tax_office", "region_code", "line_count",
                  "lines_received", "first_seen_at", "reconciled_at", "superseded_by"):
            print(f"{pad(_say('field.' + k, lang), 16)} {r[k] if r[k] is not None else ''}")
        print(_say("totals", lang, header=_y(r["header_total_fen"]), lines=_y(r["lines_total_fen"]),
                   label=pad(_say("field.header_total", lang), 16)))
        if r.get("missing_lines"):
            print(f"{pad(_say('field.missing_lines', lang), 16)} {', '.join(r['missing_lines'])}")
        if r["result"]:
            print("\n" + _say("tie_out", lang))
            for line in tie_out_lines(r["result"]["tie_out"], lang):
                print("  " + line)
        print("\n" + _say("discrepancies_of", lang, day=r["business_date"], office=r["tax_office"],
                          region=r["region_code"]))
        _table(_discrepancy_rows(r["discrepancies"]), DISCREPANCY_COLUMNS, _heads(lang))
        if r["errors"]:
            print("\n" + _say("errors", lang))
            _table([{**e, "message": catalogue.error_message(e["code"], e["message"], lang)[:90]} for e in r["errors"]],
                   ["code", "line_no", "source", "message"], _heads(lang))

    return Answer(report, render)


@command
def cmd_open(args: argparse.Namespace, system: Any) -> Answer:
    views = open_discrepancies(store_of(system), office=args.office, region=args.region,
                               older_than_days=args.older_than)

    lang = _lang(args)

    def render(vs: list[dict[str, Any]]) -> None:
        _table(_discrepancy_rows(vs), DISCREPANCY_COLUMNS, _heads(lang))
        print("\n" + _say("open_total", lang, n=len(vs), net=_y(sum(v["delta_fen"] for v in vs))))

    return Answer(views, render)


def _missing(system: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The STATEMENT_MISSING rows for the command's filters (``--as-of``, ``--due-days``, county, office)."""
    as_of_text = getattr(args, "as_of", None)
    as_of = parse_day(as_of_text, "as-of") if as_of_text else datetime.now(BUSINESS_TZ).date()
    due = getattr(args, "due_days", None)
    if due is not None and due < 0:
        raise DomainError("SETTING_INVALID", "--due-days must be zero or more (天数不能为负)")
    return missing_statements(store_of(system), as_of=as_of, due_days=statement_due_days() if due is None else due,
                              region=args.county, office=getattr(args, "office", None))


@command
def cmd_missing(args: argparse.Namespace, system: Any) -> Answer:
    rows = _missing(system, args)

    lang = _lang(args)

    def render(rs: list[dict[str, Any]]) -> None:
        _table([{**r, "recorded": r["recorded_yuan"]} for r in rs],
               ["code", "business_date", "tax_office", "region_code", "ledger_rows", "recorded", "days_overdue"],
               _heads(lang))
        print("\n" + _say("missing_total", lang, n=len(rs), recorded=_y(sum(r["recorded_fen"] for r in rs))))

    return Answer(rows, render)


@command
def cmd_summary(args: argparse.Namespace, system: Any) -> Answer:
    day = parse_day(args.date, "date") if args.date else None
    rows = county_summary(store_of(system), county=args.county, day=day, missing=_missing(system, args))

    def render(rs: list[dict[str, Any]]) -> None:
        _table([{**r, "collected": r["collected_yuan"], "recorded": r["recorded_yuan"],
                 "difference": r["difference_yuan"], "open": f"{r['open_discrepancies']} ({r['open_yuan']})",
                 "missing": "STATEMENT_MISSING" if r["missing_statements"] else ""}
                for r in rs],
               ["business_date", "region_code", "statements", "collected", "recorded", "difference", "open",
                "pending_statements", "missing"], _heads(_lang(args)))

    return Answer(rows, render)


@command
def cmd_discrepancy(args: argparse.Namespace, system: Any) -> Answer:
    report = discrepancy_report(store_of(system), args.discrepancy_id)
    return Answer(report, lambda d: _render_discrepancy(d, _lang(args)))


def _render_discrepancy(d: dict[str, Any], lang: str) -> None:
    for k in ("id", "class", "state", "tax_office", "voucher_no", "statement_id", "line_no", "note", "explained_by"):
        print(f"{pad(_say('field.' + k, lang), 14)} {d[k] if d[k] is not None else ''}")
    print(_say("amounts", lang, label=pad(_say("field.statement", lang), 14), statement=_y(d["statement_fen"]),
               ledger=_y(d["ledger_fen"]), delta=_y(d["delta_fen"]), count=f"{d['delta_count']:+d}"))
    details = d.get("details") or {}
    print(f"{pad(_say('field.detail', lang), 14)} {details.get('note') or ', '.join(details.get('differs', []))}")
    print("\n" + _say("history", lang))
    _table([{**h, "pointer": _pointer(h["pointer"], lang)} for h in d.get("history", [])],
           ["seq", "at", "action", "state", "user", "note", "pointer"], _heads(lang))


def _pointer(p: dict[str, Any] | None, lang: str = catalogue.DEFAULT_LANG) -> str:
    if not p:
        return ""
    if p.get("kind") == "ledger_event":
        return _say("pointer_event", lang, type=p["event_type"], id=p["event_id"], person=p["person_id"],
                    version=p["version"])
    if p.get("kind") == "statement":
        return _say("pointer_statement", lang, id=p["statement_id"], source=p.get("source") or "")
    return str(p.get("kind"))


def _explaining_clerk(args: argparse.Namespace) -> Principal:
    """Who explains is the token's clerk, of the discrepancy's region: never a name taken on trust."""
    who = cli_principal(purpose="explaining a discrepancy writes to the reconciliation record")
    who.require_role(Role.CLERK, action="explain discrepancies")
    return who


@command(check=_explaining_clerk)
def cmd_explain(args: argparse.Namespace, system: Any, who: Principal) -> Answer:
    found = discrepancy_report(store_of(system), args.discrepancy_id)
    who.require_region((found.get("scope") or {}).get("region_code"))
    report = explain_discrepancy(reconciler(system), args.discrepancy_id, note=args.note, user=who.user)
    return Answer(report, lambda d: _render_discrepancy(d, _lang(args)))


@command
def cmd_export(args: argparse.Namespace, system: Any) -> None:
    store = store_of(system)
    if args.statement:
        views = statement_report(store, args.statement)["discrepancies"]
    else:
        views = open_discrepancies(store, office=args.office, region=args.region, older_than_days=args.older_than)
    data = export_discrepancies(views, args.format)
    Path(args.out).write_bytes(data)
    print(_say("exported", _lang(args), n=len(views), path=args.out, format=args.format, size=len(data)))


@command
def cmd_run(args: argparse.Namespace, system: Any) -> Answer:
    recon = reconciler(system, incomplete=_limit(args))
    publisher = (ResultsPublisher(recon.store, system.record_sink(), topic=system.topic(RESULTS_TOPIC))
                 if system.settings.kafka_bootstrap_servers else None)
    loop = StatementConsumer(None, recon, ledger_side=ledger_side_runner(system, recon, source=args.source),
                             publisher=publisher)
    r = loop.run_once()
    payload = {"ledger_rows": r.ledger_rows, "reconciled": r.reconciled, "incomplete": r.incomplete,
               "published": r.published}
    return Answer(payload, lambda p: print(_say(
        "run", _lang(args), rows=p["ledger_rows"], n=len(p["reconciled"]), ids=" ".join(p["reconciled"]),
        incomplete=len(p["incomplete"]), published=p["published"])))


@command
def cmd_rerun(args: argparse.Namespace, system: Any) -> Answer:
    result = reconciler(system).rerun(args.statement_id)
    lang = _lang(args)

    def render(r: dict[str, Any]) -> None:
        print(catalogue.text("reconcile_lines", "rerun", lang, id=r["statement_id"]))
        print(_say("tie_out", lang))
        for line in tie_out_lines(r["tie_out"], lang):
            print("  " + line)

    return Answer(result, render)


@command(needs_kafka="nothing_to_consume")
def cmd_consume(args: argparse.Namespace, system: Any) -> None:
    if args.workers < 0:
        raise DomainError("WORKERS_INVALID", "--workers must be 0 or more")
    recon = reconciler(system, incomplete=_limit(args))
    loop = statement_consumer(system, recon, group=args.group, decode_workers=args.workers,
                              max_records=args.max_records,
                              ledger_source=None if args.ledger_source == "none" else args.ledger_source)
    loop.run(_stop_on_signals(), idle_stop=5.0 if args.once else None)


__all__ = ["add_reconcile_commands"]
