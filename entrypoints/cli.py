"""The ``ledger`` command's own commands: the local stack, policy tables, people, the feeds, the views
(``project``, ``entitlement``, ``arrears``, ``gaps``, ``coverage``); ``ledger demo`` is in
:mod:`entrypoints.demo`.

Readable tables by default, ``--json`` for machines. Errors a user can cause print
their code and message and exit 2; nothing is half-written. Each command runs in the one
skeleton (:mod:`entrypoints.command`); the program, its table of commands and ``main`` are in
:mod:`entrypoints.main` (``main`` and ``build_parser`` are also importable from here, and
``python -m entrypoints.cli`` runs the program).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from ledger.domain.history import item_to_plain
from consumers.dead_letters import dead_letters, parse_ids, resubmit
from consumers.spreadsheets import read_file
from entrypoints.command import Answer, command
from entrypoints import catalogue
from entrypoints.http.coverage_reasons import history_note, reason_text
from entrypoints.console import pad, print_table as _print_table, stop_on_signals as _stop_on_signals, write_file
from entrypoints.http.access import check_arrears_read, clerk_arrears, cli_principal, person_access
from entrypoints.http.auth import Forbidden, Principal, Role
from entrypoints.main import build_parser, help_of, main
from entrypoints.status import held_persons, kafka_ends, pipeline_status, quarantined_persons
from entrypoints.wiring import bootstrap, feed_consumer, file_feed, ledger_publisher, policy_book
from infra.command import main as infra_main
from infra.gc_tuning import tune_for_streaming
from infra.limits import FEED_SHEET
from ledger.domain.errors import DomainError
from ledger.domain.places import validate_region_code
from ledger.policy.model import SUBSIDY_CATEGORIES, bp_text
from ledger.log import get_logger, mask_id_number
from projections.projection_runner import rebuild
from projections.arrears import employer_totals
from projections.queries import parse_day
from entrypoints.http.late_fees import masked
from entrypoints.http.web.ledger_exports import arrears_file
from entrypoints.http.web.exports import detail as gap_detail
from entrypoints.http.web import labels as web_labels
from projections.factory import default_workers, event_source, parallel_shards, projection_runner, view_queries, views


def _reader() -> Principal:
    """Who runs a command that shows personal data: the token in LEDGER_TOKEN (see entrypoints.http.access)."""
    return cli_principal()


# ------------------------------------------------------------------ infra
@command(wiring=None)
def cmd_infra(args: argparse.Namespace) -> int:
    return infra_main([args.action, *(["--clean"] if args.clean else [])])


# ------------------------------------------------------------------ policy
@command(wiring=None)
def cmd_policy(args: argparse.Namespace) -> Answer:
    book = policy_book()  # the tables the ledger assesses with (LEDGER_POLICY_DIR, else the packaged ones)
    if args.region is None:
        rows = [
            {"region": r, "years": ",".join(str(y) for y in book.years(r)),
             # years with figures marked provisional (no source for that year; carried from the nearest one)
             "provisional": ",".join(str(y) for y in book.years(r) if book.get(r, y).provisional_fields)}
            for r in sorted(book.regions())
        ]
        return Answer(rows, lambda rs: _print_table(rs, ["region", "years", "provisional"], _heads(_lang(args))))
    table = book.get(args.region, args.year)
    payload = {
        "region_code": table.region_code,
        "coverage_year": table.coverage_year,
        "policy_version": table.policy_version,
        "policy_dir": str(book.directory),
        "status": table.status,
        "source": table.source,
        "individual_share_fen": table.resident.individual_share_fen,
        "fiscal_subsidy_fen": table.resident.fiscal_subsidy_fen,
        "concentrated_period": f"{table.resident.concentrated_start}..{table.resident.concentrated_end}",
        "extended_window_end": table.resident.extended_window_end,
        # each category's rule as its kind and figures (FULL; FIXED_FEN amount_fen; PERCENT percent_bp)
        "subsidies": {c: {"kind": kind, **values} for c, (kind, values) in
                      ((c, r.describe()) for c, r in table.resident.subsidies.items())},
        "waiting_enabled": table.resident.waiting.enabled,
        "employee_rates_bp": {"employer": table.employee.employer_rate_bp, "employee": table.employee.employee_rate_bp},
        # The value gate every entrance applies (ledger/policy/rules.py: check_amount_fen, check_business_date).
        "amount_ceiling_fen": table.amount_ceiling_fen,
        "business_dates": f"{book.value_limits().earliest_date}..{book.value_limits().latest_date}",
        # Which figures are national and which local, with their sources; provisional = no source for this
        # year, carried from the nearest sourced year (figures not listed: see "source").
        "provisional_fields": list(table.provisional_fields),
        "provenance": {f.field: {"scope": f.scope, "source": f.source, "provisional": f.provisional}
                       for f in table.provenance},
    }

    lang = _lang(args)

    def render(p: dict[str, Any]) -> None:
        for k, v in p.items():
            if k in ("provenance", "provisional_fields"):
                continue
            if k.endswith("_fen") and isinstance(v, int):  # money a person reads: yuan
                v = _say("yuan_value", lang, yuan=_fen(v))
            elif isinstance(v, bool):
                v = _say("yes" if v else "no", lang)
            elif k == "subsidies":
                v = catalogue.text("policy_describe", "joiner", lang).join(
                    subsidy_text(c, d["kind"], d, lang) for c, d in v.items())
            elif k == "status" and catalogue.has("policy_describe", f"status.{v}"):
                v = catalogue.text("policy_describe", f"status.{v}", lang)
            elif k == "employee_rates_bp":
                v = _say("policy_rates", lang, employer=v["employer"] / 100, employee=v["employee"] / 100)
            print(f"{pad(_out('policy.' + k, lang), 28)} {v}")
        if p["provisional_fields"]:
            print("\n" + _out("policy_provisional", lang, n=len(p["provisional_fields"]),
                              fields=", ".join(p["provisional_fields"])))
        if p["provenance"]:
            print("\n" + _out("policy_provenance", lang))
            for field_name, f in p["provenance"].items():
                scope = _out("policy_national" if f["scope"] == "national" else "policy_local", lang)
                mark = _out("policy_mark_provisional", lang) if f["provisional"] else ""
                print(f"  {field_name:48} {scope}{mark} {f['source']}")

    return Answer(payload, render)


def gap_label(reason: str, lang: str, default: str | None = None) -> str:
    """A gap reason code in words: the web's and the API's (:func:`entrypoints.http.web.labels.reason`; the
    Chinese is the domain's ``REASON_LABELS``); a code it does not know, ``default`` or the code."""
    said = web_labels.reason(reason, lang)
    return said if said != reason else (default or reason)


def subsidy_text(category: str, kind: str, values: dict[str, Any], lang: str) -> str:
    """One subsidy category's rule in ``lang`` (catalogue ``[policy_describe]``), from the policy's code and figures."""
    name = SUBSIDY_CATEGORIES.get(category) if lang == "zh" else None
    rule = catalogue.text("policy_describe", kind, lang, yuan=_fen(values.get("amount_fen") or 0),
                          percent=bp_text(values.get("percent_bp") or 0))
    return catalogue.text("policy_describe", "category", lang, category=category, name=f" {name}" if name else "",
                          rule=rule)


# ------------------------------------------------------------------ person
@command(check=lambda args: _reader())
def cmd_person(args: argparse.Namespace, system: Any, who: Principal) -> Answer:
    person = system.ledger.find_person(args.id_type, args.id_number)
    full_id = person_access(who, person)
    if args.reveal and not full_id:
        raise Forbidden("REVEAL_FORBIDDEN", "only auditors and the clerks of the person's region see full ID "
                                            "numbers; run it without --reveal (无权查看完整证件号码)")
    shown_id = person.id_number if args.reveal else mask_id_number(person.id_number)
    payload = {
        "person_id": str(person.id),
        "id_type": person.id_type,
        "id_number": shown_id,
        "name": person.name,
        "birth_date": person.birth_date,
        "household_grid": person.household_grid,
        "residence": person.residence_status,
        "enrollments": [item_to_plain(e) for e in person.enrollments],
        "assessments": {k: item_to_plain(a) for k, a in person.assessments.items()},
        "paid_fen": {period: person.paid_fen_for(period) for period in person.assessments},
        "subsidies": [item_to_plain(g) for g in person.subsidies.values()],
        "account_balance_fen": person.account_balance_fen,
        "contribution_months": person.contribution_months,
        "events": person.version,
        "merged_into": person.merged_into,  # 参保人合并: this record counts as that person now
    }

    lang = _lang(args)

    def render(p: dict[str, Any]) -> None:
        for k in ("person_id", "id_type", "id_number", "name", "birth_date", "household_grid", "residence",
                  "account_balance_fen", "contribution_months", "events"):
            value = _say("yuan_value", lang, yuan=_fen(p[k])) if k.endswith("_fen") else p[k]
            print(f"{pad(_out('person.' + k, lang), 22)} {'' if value is None else value}")
        if p["merged_into"]:
            print(f"{pad(_out('person.merged_into', lang), 22)} {p['merged_into']}{_out('person_merged_note', lang)}")
        print("\n" + _out("person_enrollments", lang))
        _print_table(p["enrollments"], ["enrollment_id", "scheme", "region_code", "grid_code", "start_date",
                                        "end_date", "end_reason", "duplicate_of"], _heads(lang))
        print("\n" + _out("person_assessments", lang))
        _print_table([{**a, "standard": _fen(a["standard_fen"]), "subsidy": _fen(a["subsidy_fen"]),
                       "due": _fen(a["due_fen"]), "paid": _fen(p["paid_fen"][a["period"]])}
                      for a in p["assessments"].values()],
                     ["period", "standard", "subsidy", "due", "paid", "due_date",
                      "subsidy_category", "policy_version"], _heads(lang))

    return Answer(payload, render)


def add_ledger_commands(sub: Any) -> None:
    """Add the ``ledger`` program's own commands (their help lines: :data:`entrypoints.main.COMMANDS`)."""
    p = sub.add_parser("infra", help=help_of("infra"))
    p.add_argument("action", choices=["up", "down", "status", "env"])
    p.add_argument("--clean", action="store_true", help="with down: wipe the Kafka and PostgreSQL data")
    p.set_defaults(func=cmd_infra)

    p = sub.add_parser("policy", help=help_of("policy"))
    p.add_argument("region", nargs="?")
    p.add_argument("year", nargs="?", type=int, default=date.today().year)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_policy)

    p = sub.add_parser("person", help=help_of("person"))
    p.add_argument("id_number")
    p.add_argument("--id-type", default="RESIDENT_ID")
    p.add_argument("--reveal", action="store_true", help="show the full ID number (clerks and auditors only)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_person)


def add_feed_commands(sub: Any) -> None:
    """Add the feeds' commands: ``consume``, ``status``, ``feed``, ``dlq``, ``publish``."""
    p = sub.add_parser("consume", help=help_of("consume"))
    p.add_argument("feed", choices=["tax", "status", "residents"])
    p.add_argument("--group", help="consumer group and position name (default: ledger-<feed topic>)")
    p.add_argument("--max-records", type=int, default=500, help="records per poll (one batch per partition)")
    p.add_argument("--once", action="store_true", help="stop after 5 s without a new record")
    p.set_defaults(func=cmd_consume)

    p = sub.add_parser("status", help=help_of("status"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("feed", help=help_of("feed"))
    p.add_argument("feed", choices=["tax", "status", "residents", "statements"])
    p.add_argument("file")
    p.add_argument("--dry-run", action="store_true", help="check every row, send nothing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_feed)

    p = sub.add_parser("dlq", help=help_of("dlq"))
    dlq = p.add_subparsers(dest="dlq_command", required=True)
    d = dlq.add_parser("list", help="refused records not re-submitted yet (--all: every one), oldest first; "
                                    "a clerk's regions only, an auditor's all")
    d.add_argument("--topic", help="only this feed topic (e.g. tax.payments.v1)")
    d.add_argument("--code", help="only this error code (e.g. POLICY_REGION_UNKNOWN)")
    d.add_argument("--all", action="store_true", help="also those already re-submitted")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_dlq_list)
    d = dlq.add_parser("resubmit", help="put refused records back on their topic, unchanged, after fixing the cause")
    d.add_argument("ids", nargs="*", metavar="ID", help="dead letters by the id `dlq list` shows")
    d.add_argument("--topic", help="every open dead letter of this topic")
    d.add_argument("--code", help="every open dead letter with this error code")
    d.add_argument("--reason", required=True, help="what was fixed (kept with the record)")
    d.add_argument("--again", action="store_true", help="also those re-submitted before")
    d.add_argument("--dry-run", action="store_true", help="list what would be re-submitted, send nothing")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_dlq_resubmit)

    p = sub.add_parser("publish", help=help_of("publish"))
    p.add_argument("--once", action="store_true", help="publish what is recorded now, then stop")
    p.set_defaults(func=cmd_publish)



# ------------------------------------------------------------------ feeds
@command(needs_kafka="nothing_to_consume")
def cmd_consume(args: argparse.Namespace, system: Any) -> int:
    log = get_logger("entrypoints.cli", command="consume", feed=args.feed)
    runner = feed_consumer(system, args.feed, group=args.group, max_records=args.max_records)
    tune_for_streaming()
    log.info("consumer_started", topics=runner.topics, consumer=runner.handler.consumer)
    runner.run(_stop_on_signals(), idle_stop=5.0 if args.once else None)
    return 0


@command
def cmd_status(args: argparse.Namespace, system: Any) -> Answer:
    ends = None
    if system.settings.kafka_bootstrap_servers:
        ends, close = kafka_ends(system.settings.kafka_bootstrap_servers)
        system.closers.append(close)
    rows = [r.as_dict() for r in pipeline_status(system, ends)]
    held = held_persons(system)
    quarantined = quarantined_persons(system)
    rows += held + quarantined

    lang = _lang(args)

    def render(rs: list[dict[str, Any]]) -> None:
        _print_table([{k: ("" if v is None else v) for k, v in r.items()} for r in rs
                      if r not in held and r not in quarantined],
                     ["part", "name", "source", "partition", "position", "end", "lag", "dead_letters"], _heads(lang))
        if held:
            print("\n" + _out("status_held", lang, n=len(held)))
            _print_table(held, ["person", "notification_id", "events", "code", "reason"], _heads(lang))
        if ends is None:
            print("\n" + _out("status_no_broker", lang))
        if quarantined:
            print("\n" + _out("status_quarantined", lang, n=len(quarantined)))
            _print_table([{k: ("" if v is None else v) for k, v in r.items()} for r in quarantined],
                         ["masked_id", "person_id", "code", "event_type", "event_id", "position", "since",
                          "message"], _heads(lang))

    return Answer(rows, render)


def _feed_path(args: argparse.Namespace) -> Path:
    path = Path(args.file)
    if not path.is_file():
        raise DomainError("FILE_NOT_FOUND", f"{path} is not a file")
    return path


@command(check=_feed_path)
def cmd_feed(args: argparse.Namespace, system: Any, path: Path) -> Answer:
    """``ledger feed tax|status|residents|statements FILE``: onto the feed's Kafka topic, or, without a
    broker (the embedded default), straight into the ledger through the feed's own consumer."""
    report = file_feed(system, args.feed, read_file(path, FEED_SHEET), path.name, dry_run=args.dry_run)

    lang = _lang(args)

    def render(r: dict[str, Any]) -> None:
        for bad in r["errors"]:
            print(_out("feed_error_line", lang, line=bad["line"], code=f"{bad['code']:<24}",
                       message=catalogue.error_message(bad["code"], bad["message"], lang)))
        for bad in r.get("refused", []):
            print(_out("feed_refused_line", lang, line=bad["line"] or "?", code=f"{bad['code']:<24}",
                       message=catalogue.error_message(bad["code"], bad["message"], lang)))
        sent = r["rows"] - r["bad_rows"] if r["dry_run"] else r["sent"]
        print(_out("feed_dry_run" if r["dry_run"] else "feed_sent", lang, file=path.name, rows=r["rows"], sent=sent,
                   topic=r["topic"], bad=r["bad_rows"]))
        if r.get("embedded"):
            print(_out("feed_embedded", lang, applied=r["applied"], unchanged=r["unchanged"],
                       refused=r["refused_rows"], topic=r["topic"]))

    return Answer(report.as_dict(), render, exit_code=1 if report.bad or report.refused else 0)


def _print_dead_letters(letters: list[dict[str, Any]], lang: str) -> None:
    _print_table([{**d, "resubmitted": d["resubmitted"][-1]["at"][:19] if d["resubmitted"] else "",
                   "region": d["region_code"] or "",
                   "message": catalogue.error_message(d["code"], d["message"], lang)} for d in letters],
                 ["id", "source", "region", "code", "received_at", "resubmitted", "message"], _heads(lang))
    print("\n" + _out("dlq_total", lang, n=len(letters)))


def _dead_letter_reader(args: argparse.Namespace) -> Principal:
    who = _reader()
    who.require_role(Role.CLERK, Role.AUDITOR, action="read dead letters")
    return who


@command(check=_dead_letter_reader)
def cmd_dlq_list(args: argparse.Namespace, system: Any, who: Principal) -> Answer:
    letters = [d.as_dict() for d in dead_letters(system.ledger, topic=args.topic, code=args.code,
                                                  resubmitted=None if args.all else False, who=who)]
    return Answer(letters, lambda ds: _print_dead_letters(ds, _lang(args)))


def _resubmitter(args: argparse.Namespace) -> Principal:
    who = _reader()
    who.require_role(Role.CLERK, action="re-submit dead letters")
    if not (args.ids or args.topic or args.code):
        raise DomainError("SELECTION_REQUIRED", "name the dead letters: ids, --topic or --code (see `ledger dlq list`)")
    return who


@command(check=_resubmitter)
def cmd_dlq_resubmit(args: argparse.Namespace, system: Any, who: Principal) -> Answer:
    if not system.settings.kafka_bootstrap_servers:
        raise DomainError("KAFKA_NOT_CONFIGURED", "re-submitting puts records on Kafka: set KAFKA_BOOTSTRAP_SERVERS "
                                                  '(eval "$(python -m infra env)" for the local stack)')
    letters = dead_letters(system.ledger, topic=args.topic, code=args.code,
                           resubmitted=None if args.again else False,
                           ids=parse_ids(args.ids) if args.ids else None, who=who)
    if not args.ids:  # a selection by topic or code takes what can go back on a topic
        letters = [d for d in letters if d.on_feed]
    if not args.dry_run:
        letters = resubmit(system.ledger, system.record_sink(), letters, user=who.user, reason=args.reason,
                           again=args.again)
    shown = [d.as_dict() for d in letters]
    return Answer(shown, lambda ds: (_print_dead_letters(ds, _lang(args)),
                                     print(_out("dlq_dry_run" if args.dry_run else "dlq_resubmitted", _lang(args)))))


@command(needs_kafka="nowhere_to_publish")
def cmd_publish(args: argparse.Namespace, system: Any) -> int:
    log = get_logger("entrypoints.cli", command="publish")
    publisher = ledger_publisher(system)
    tune_for_streaming()
    log.info("publisher_started", topic=publisher.topic, position=publisher.position)
    if args.once:
        count = publisher.publish_pending()
        print(_out("published", _lang(args), n=count, topic=publisher.topic, position=publisher.position))
    else:
        publisher.run(_stop_on_signals())
    return 0


# ------------------------------------------------------------------ views (projections)
def add_view_commands(sub: Any) -> None:
    """Add the views' commands: ``project``, ``entitlement``, ``arrears``, ``gaps``, ``coverage``."""
    p = sub.add_parser("project", help=help_of("project"))
    p.add_argument("--source", choices=["log", "kafka"], default="log",
                   help="the ledger's notification log (default) or Kafka ledger.events.v1")
    p.add_argument("--rebuild", action="store_true", help="rebuild from the beginning into fresh tables, then swap")
    p.add_argument("--follow", action="store_true", help="keep following new events until stopped (SIGINT/SIGTERM)")
    p.add_argument("--batch-size", type=int, default=2000, help="positions per transaction (default 2000)")
    p.add_argument("--workers", type=int, default=None,
                   help="with --rebuild: worker processes (default: one per core up to 4 on PostgreSQL, else 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("entitlement", help=help_of("entitlement"))
    p.add_argument("id_number")
    p.add_argument("--id-type", default="RESIDENT_ID")
    p.add_argument("--year", help="coverage year (default: the year of --on, or this year)")
    p.add_argument("--on", metavar="DATE", help="also say whether the person is covered on this day (YYYY-MM-DD)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_entitlement)

    p = sub.add_parser("arrears", help=help_of("arrears"))
    p.add_argument("--region", help="6-digit region code")
    p.add_argument("--grid", help="12-digit grid code")
    p.add_argument("--as-of", metavar="DATE", help="day asked about (default today)")
    p.add_argument("--sort", default="outstanding_fen", help="outstanding_fen (default), days_overdue, late_fee_fen, "
                                                             "employer_id, ...")
    p.add_argument("--limit", type=int)
    p.add_argument("--by-employer", action="store_true", help="one row per employer with its total (单位欠费合计)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true")
    group.add_argument("--csv", metavar="FILE", help="write the list as CSV (UTF-8 with BOM; with --by-employer: "
                                                     "the employer totals)")
    group.add_argument("--xlsx", metavar="FILE", help="write an Excel workbook: employer totals and the rows")
    p.set_defaults(func=cmd_arrears)

    p = sub.add_parser("gaps", help=help_of("gaps"))
    p.add_argument("place", metavar="GRID_OR_TOWNSHIP", help="12-digit grid code or 9-digit township code")
    p.add_argument("--year", help="coverage year (default: the year of --as-of)")
    p.add_argument("--as-of", metavar="DATE", help="day asked about (default today)")
    p.add_argument("--reason", help="only this reason (e.g. SUBSIDISED_NOT_COVERED, LAPSED)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_gaps)

    p = sub.add_parser("coverage", help=help_of("coverage"))
    p.add_argument("--region", help="6-digit region code")
    p.add_argument("--year", help="coverage year (default: the year of --as-of)")
    p.add_argument("--as-of", metavar="DATE", help="day asked about (default today)")
    p.add_argument("--townships", action="store_true", help="one line per township instead of per grid")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_coverage)


def _fen(fen: int | None) -> str:
    return "" if fen is None else f"{fen / 100:,.2f}"


def _lang(args: argparse.Namespace) -> str:
    return catalogue.lang_of(getattr(args, "lang", None))


def _heads(lang: str) -> dict[str, str]:
    """The tables' column headings in ``lang`` (catalogue section ``cli_columns``)."""
    return {k: v[lang] for k, v in catalogue.table("cli_columns").items()}


def _say(key: str, lang: str, **values: Any) -> str:
    return catalogue.text("cli_views", key, lang, **values)


def _out(key: str, lang: str, **values: Any) -> str:
    """A text of the other commands' answers (catalogue section ``cli_out``)."""
    return catalogue.text("cli_out", key, lang, **values)


@command
def cmd_project(args: argparse.Namespace, system: Any) -> Answer:
    if args.workers is None:
        args.workers = default_workers(system.settings)
    if args.batch_size < 1 or args.workers < 1:
        raise DomainError("COUNT_INVALID", "--batch-size and --workers must be at least 1")
    source = event_source(system, args.source)
    system.closers.append(source.close)
    runner = projection_runner(system, source=source, batch_size=args.batch_size)
    if args.rebuild:
        shards = parallel_shards(system.settings, args.source, args.workers, bootstrap=bootstrap) if args.workers > 1 else None
        result = rebuild(views(system), source, system.policies, batch_size=args.batch_size,
                         progress=not args.quiet, run_shards=shards)
    elif args.follow:
        result = runner.run_forever(_stop_on_signals())
    else:
        result = runner.run_once(progress=not args.quiet)
    quarantined = views(system).quarantined()
    payload = {"source": result.source, "rebuilt": args.rebuild, "batches": result.batches,
               "events": result.events, "persons_written": result.persons, "seconds": round(result.seconds, 3),
               "events_per_second": round(result.rate), "positions": result.positions,
               "quarantined_now": result.quarantined, "released": result.released,
               "in_quarantine": len(quarantined)}

    lang = _lang(args)

    def render(p: dict[str, Any]) -> None:
        positions = ", ".join(f"{k}:{v}" for k, v in p["positions"].items()) or "-"  # partition:offset, not a dict
        print(_out("project_rebuilt" if p["rebuilt"] else "project_caught_up", lang, source=p["source"],
                   events=p["events"], persons=p["persons_written"], seconds=p["seconds"], positions=positions))
        if p["released"]:
            print(_out("project_released", lang, n=p["released"]))
        if quarantined:
            print(_out("project_quarantined", lang, n=len(quarantined)))

    return Answer(payload, render)


@command(check=lambda args: _reader())
def cmd_entitlement(args: argparse.Namespace, system: Any, who: Principal) -> Answer:
    person = system.ledger.find_person(args.id_type, args.id_number)
    person_access(who, person)
    person_id = person.id
    queries = view_queries(system)  # fresh for this person: their events the views lack are folded in
    day = parse_day(args.on, "date") if args.on else None
    year = args.year if args.year else (day.year if day else None)
    if day is None:
        payload = queries.entitlement(person_id, year)
    else:
        payload, decision = queries.entitlement_on(person_id, year, day)
        payload["covered_on"] = asdict(decision)

    lang = _lang(args)

    def line(label: str, value: Any) -> None:
        print(f"{pad(label, 22)} {value}")

    def render(p: dict[str, Any]) -> None:
        y = p["resident"]
        line(_say("ent_person", lang), f"{p['masked_id'] or ''}  ({p['person_id']})")
        line(_say("ent_year", lang), p["year"])
        merged = (p.get("summary") or {}).get("merged_into")
        if merged:  # 参保人合并: the figures are the person kept's
            line(_say("ent_merged_into", lang), merged)
        if y is None:
            line(_say("ent_resident", lang), _say("ent_nothing", lang, year=p["year"]))
        else:
            periods = ", ".join(f"{a} .. {b}" for a, b in y["coverage_periods"]) or _say("ent_none", lang)
            for label, value in (
                ("ent_region", f"{y['region_code']} / {y['grid_code'] or ''}"),
                ("ent_enrollment", y["enrollment_state"]),
                ("ent_due", _say("ent_due_value", lang, due=_fen(y["due_fen"]), by=y["due_date"])
                 + (_say("ent_subsidised", lang, category=y["subsidy_category"]) if y["subsidy_category"] else "")),
                ("ent_paid", f"{_fen(y['net_paid_fen'])} / {_fen(y['outstanding_fen'])}"),
                ("ent_coverage", periods),
                ("ent_waiting", y["waiting_reason"] or ""),
                ("ent_policy", y["policy_version"]),
            ):
                line(_say(label, lang), value)
            if y.get("history_note"):  # the policy horizon: the waiting period rests on years the ledger cannot see
                line(_say("ent_history", lang), history_note(y, p["year"], lang))
        e = p["employee"]
        if e is not None:
            line(_say("ent_employee", lang), _say("ent_employee_value", lang, covered=e["months_covered"],
                                                   n=len(e["months"]), outstanding=_fen(e["outstanding_fen"])))
        d = p.get("covered_on")
        if d is not None:
            line(_say("ent_covered_on", lang, day=d["day"]),
                 f"{_say('ent_yes' if d['covered'] else 'ent_no', lang)}{_say('ent_colon', lang)}{reason_text(d, lang)}")
            line(_say("ent_sources", lang), ", ".join(d["sources"]))

    return Answer(payload, render)


def _arrears_reader(args: argparse.Namespace) -> Principal:
    who = _reader()
    if args.region is not None:
        args.region = validate_region_code(args.region)
    check_arrears_read(who, region=args.region, grid=args.grid, grid_option="--grid")
    return who


@command(check=_arrears_reader)
def cmd_arrears(args: argparse.Namespace, system: Any, who: Principal) -> Answer:
    queries = view_queries(system)
    if who.role == Role.CLERK and args.region is None and args.grid is None:  # all the clerk's regions
        sort = args.sort or "outstanding_fen"
        rows = clerk_arrears(who, lambda own: queries.arrears(args.as_of, region=own, sort=sort), sort=sort,
                             limit=args.limit)
    else:
        rows = queries.arrears(args.as_of, region=args.region, grid=args.grid, sort=args.sort or None,
                               limit=args.limit)
    totals = employer_totals(rows)
    if args.csv or args.xlsx:
        write_file(args.csv or args.xlsx, arrears_file(masked(rows), totals, "csv" if args.csv else "xlsx",
                                                       by_employer=args.by_employer, lang=_lang(args)), _lang(args))
        return 0  # the file is the answer

    lang = _lang(args)

    def render_employers(ts: list[dict[str, Any]]) -> None:
        _print_table([{**t, "months": ",".join(t["months"]), "outstanding": _fen(t["outstanding_fen"]),
                       "late_fee": _fen(t["late_fee_fen"]), "total": _fen(t["total_fen"])} for t in ts],
                     ["employer_id", "region_code", "months", "persons", "outstanding", "late_fee", "total",
                      "days_overdue"], _heads(lang))
        print("\n" + _say("arrears_employers", lang, n=len(ts), total=_fen(sum(t["total_fen"] for t in ts))))

    if args.by_employer:
        return Answer(totals, render_employers)

    def render(rs: list[dict[str, Any]]) -> None:
        _print_table([{**r, "due": _fen(r["due_fen"]), "paid": _fen(r["paid_fen"]),
                       "outstanding": _fen(r["outstanding_fen"]), "late_fee": _fen(r["late_fee_fen"]),
                       "status": web_labels.listed_because(r, lang),
                       "employer_id": r["employer_id"] or ""}
                      for r in rs],
                     ["masked_id", "kind", "employer_id", "period", "region_code", "grid_code", "due", "paid",
                      "outstanding", "days_overdue", "late_fee", "status"], _heads(lang))
        fee_only = sum(1 for r in rs if r["fee_only"])
        print("\n" + _say("arrears_total", lang, n=len(rs), fee_only=fee_only,
                          outstanding=_fen(sum(r["outstanding_fen"] for r in rs)),
                          late_fee=_fen(sum(r["late_fee_fen"] for r in rs))))
        if totals:
            print(_say("arrears_per_employer", lang))
            for t in totals:
                print(_say("arrears_employer_line", lang, employer=t["employer_id"], region=t["region_code"],
                           persons=t["persons"], months=",".join(t["months"]), outstanding=_fen(t["outstanding_fen"]),
                           late_fee=_fen(t["late_fee_fen"]), total=_fen(t["total_fen"])))

    return Answer(rows, render)


@command(check=lambda args: _reader().require_grid(args.place))
def cmd_gaps(args: argparse.Namespace, system: Any, _checked: Any) -> Answer:
    lines = view_queries(system).gap_list(args.place, args.year, args.as_of, reason=args.reason)

    lang = _lang(args)

    def render(ls: list[dict[str, Any]]) -> None:
        _print_table([{**g, "subsidised": _say("yes", lang) if g["subsidised"] else "",
                       "label": gap_label(g["reason"], lang, g.get("label")),
                       "outstanding": _fen(g["outstanding_fen"]), "detail": gap_detail(g, lang)} for g in ls],
                     ["reason", "label", "masked_id", "grid_code", "subsidised", "outstanding", "detail"], _heads(lang))
        print("\n" + _say("gaps_total", lang, n=len(ls)))

    return Answer(lines, render)


@command
def cmd_coverage(args: argparse.Namespace, system: Any) -> Answer:
    rates = view_queries(system).coverage_rates(args.year, args.as_of, region=args.region)
    level = "townships" if args.townships else "grids"

    def render(r: dict[str, Any]) -> None:
        _print_table([{"code": code, **s, "coverage": s["coverage_percent"] or "",
                       "subsidised_coverage": s["subsidised_coverage_percent"] or ""}
                      for code, s in r[level].items()],
                     ["code", "residents", "covered", "coverage", "subsidised", "subsidised_covered",
                      "subsidised_coverage"], _heads(_lang(args)))

    return Answer(rates, render)


__all__ = ["add_feed_commands", "add_ledger_commands", "add_view_commands", "build_parser", "main"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
