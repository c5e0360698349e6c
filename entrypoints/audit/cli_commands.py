"""``ledger history`` and ``ledger verify``: the auditor's commands (审计).

``ledger history <ID number> [--id-type T] [--as-of INSTANT] [--year Y] [--on DAY] [--json] [--html FILE]``
    every event of the person with its source and the state after it; with
    ``--as-of``, the state as known then against now, with the causes of each change.

``ledger verify [--person ID] [--digests] [--seal [--through DAY]] [--json]``
    the hash chains (one person, or the whole ledger), optionally the daily digests
    against their published copies; ``--seal`` seals the days not sealed yet (after a
    clean verification) and publishes their digests. Exit 0 when clean, 1 when
    something was found, 2 on bad input (``error CODE: message``).
"""
from __future__ import annotations

import argparse
from datetime import date, datetime, timezone
from typing import Any

from entrypoints.audit.digest import digest_channel, seal
from entrypoints.audit.replay import PRINTABLE_KEYS, history_report
from entrypoints.audit.pdf import html_to_pdf
from entrypoints.audit.report import FIGURE_LABELS, figure_text, render_html, state_line, yuan
from entrypoints.audit.verify import Note, note_text, verify_all, verify_digests, verify_person
from entrypoints.command import Answer, command, run
from entrypoints import catalogue
from entrypoints.console import display_width, pad, print_table as _print_table
from entrypoints.http.access import cli_principal, person_access
from entrypoints.http.auth import Forbidden, Role
from entrypoints.main import help_of
from entrypoints.audit.describe import english
from entrypoints.messages import lang_of
from entrypoints.http.coverage_reasons import reason_text
from ledger.domain.errors import DomainError
from ledger.domain.person import business_date
from projections.factory import views


def add_audit_commands(sub: Any) -> None:
    p = sub.add_parser("history", help=help_of("history"))
    p.add_argument("id_number")
    p.add_argument("--id-type", default="RESIDENT_ID")
    p.add_argument("--as-of", metavar="INSTANT",
                   help="what the ledger knew at this instant (ISO; no offset = China Standard Time; a date = its end)")
    p.add_argument("--year", help="coverage year of the figures (default: each event's own year / the latest)")
    p.add_argument("--on", metavar="DATE", help="covered on this day? (default with --as-of: the as-of day)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--html", metavar="FILE", help="also write the printable report (A4) to this file")
    p.add_argument("--pdf", metavar="FILE", help="also write the printable report as PDF (A4; printed by headless "
                                                 "Chromium, PDF_PRINTER_MISSING without it)")
    p.add_argument("--lang", choices=("zh", "en"), default="zh",
                   help="language of the answer and the printable report (default: zh, 中文)")
    p.add_argument("--reveal", action="store_true",
                   help="show the person's name in full in the printable report (auditors; masked otherwise)")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("verify", help=help_of("verify"))
    p.add_argument("--person", metavar="ID_NUMBER", help="only this person (with --id-type); default: every chain")
    p.add_argument("--id-type", default="RESIDENT_ID")
    p.add_argument("--digests", action="store_true",
                   help="also recompute every sealed day and compare with the published digests")
    p.add_argument("--seal", action="store_true",
                   help="after a clean verification, seal the days not sealed yet and publish their digests")
    p.add_argument("--through", metavar="DATE", help="with --seal: last day to seal (default yesterday, CST)")
    p.add_argument("--workers", type=int, help="processes for the whole-ledger check (PostgreSQL; default: one per "
                                               "CPU up to 4 from 50,000 events on)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)


def _fen(fen: int | None) -> str:
    return yuan(fen)


# ------------------------------------------------------------------ history
@command(check=lambda args: cli_principal().require_role(Role.AUDITOR, action="read a person's event history"))
def cmd_history(args: argparse.Namespace, system: Any, _checked: Any) -> Answer:
    pdf = getattr(args, "pdf", None)
    # The Chinese text answer shows each event's Chinese line, which the printable report computes.
    chinese_text = _lang(args) == "zh" and not getattr(args, "json", False)
    report = history_report(system.ledger, args.id_type, args.id_number, as_of=args.as_of, year=args.year,
                            on=args.on, views=_views_or_none(system),
                            printable=bool(args.html or pdf) or chinese_text)
    if chinese_text and not (args.html or pdf):
        for key in PRINTABLE_KEYS:
            report.pop(key, None)
        for line in report["events"]:
            line.pop("digest", None)
            line.pop("record", None)
    if args.html or pdf:
        reveal = bool(getattr(args, "reveal", False))
        if reveal and not person_access(cli_principal(), system.ledger.find_person(args.id_type, args.id_number)):
            raise Forbidden("REVEAL_FORBIDDEN", "only auditors and the clerks of the person's region see full "
                                                "personal data; run it without --reveal (无权查看完整个人信息)")
        html = render_html(report, lang_of(getattr(args, "lang", None)), reveal=reveal)
        # The JSON and text answers stay as they were: the printable extras are for the page only.
        for key in PRINTABLE_KEYS:
            report.pop(key, None)
        for line in report["events"]:
            line.pop("digest", None)
            line.pop("record", None)
            if not chinese_text:
                line.pop("description_zh", None)
        if args.html:
            try:
                with open(args.html, "w", encoding="utf-8") as out:
                    out.write(html)
            except OSError as exc:
                raise DomainError("OUTPUT_UNWRITABLE", f"cannot write the report to {args.html}: {exc.strerror}") from None
        if pdf:
            html_to_pdf(html, pdf)

    def render(r: dict[str, Any]) -> None:
        print_history(r, _lang(args))
        if args.html:
            print("\n" + _t("html_written", _lang(args), path=args.html))
        if pdf:
            print("\n" + _t("pdf_written", _lang(args), path=pdf))

    return Answer(report, render)


def _lang(args: argparse.Namespace) -> str:
    return lang_of(getattr(args, "lang", None))


def _t(key: str, lang: str, **values: Any) -> str:
    return catalogue.text("audit_cli", key, lang, **values)


def _yes(covered: bool, lang: str) -> str:
    return _t("yes" if covered else "no", lang)


def print_history(r: dict[str, Any], lang: str = catalogue.DEFAULT_LANG) -> None:
    """The history as text, its labels in ``lang``; each event's line in Chinese when the report has it."""
    labels = [_t(k, lang) for k in ("person", "events", "source", "after")]
    width = max(display_width(x) for x in labels) + 2
    print(f"{pad(labels[0], width)}{r['masked_id']}  ({r['person_id']}, {r['id_type']})")
    print(f"{pad(labels[1], width)}{r['version']}    {_t('position', lang)} {r['ledger_position']}    "
          f"{_t('generated', lang)} {r['generated_at']}")
    print()
    for e in r["events"]:
        described = e.get("description_zh") or e["description"] if lang == "zh" else english(e["description"])
        print(f"v{e['version']:<4} {e['recorded_at'][:19].replace('T', ' ')}  {_t('effective', lang)} "
              f"{e['effective_date']}  {described}")
        doc = f" · {e['document']}" if e["document"] else ""
        print(f"      {pad(labels[2], width)}{e['source']}{doc}")
        print(f"      {pad(labels[3], width)}{state_line(e['state_after'])}")
    a = r.get("as_of")
    if a:
        print("\n" + _t("as_known", lang, as_of=a["as_of"], known=a["known_version"], current=a["current_version"],
                        year=a["year"]))
        if not a["changes"]:
            print(_t("nothing_changed", lang))
        for c in a["changes"]:
            label = FIGURE_LABELS.get(c["figure"], c["figure"])
            print(f"  {label}: {figure_text(c['figure'], c['then'])} -> {figure_text(c['figure'], c['now'])}"
                  + ("" if c["traced"] else _t("untraced", lang)))
            for x in c["causes"]:
                print(_t("because", lang, version=x["version"], at=x["recorded_at"][:19].replace("T", " "),
                         description=x["description"] if lang == "zh" else english(x["description"])))
        cov = a["covered_on"]
        print(_t("covered_then", lang, day=cov["day"], answer=_yes(cov["then"]["covered"], lang),
                 reason=reason_text(cov["then"], lang)))
        print(_t("covered_now", lang, pad=" " * (len(str(cov["day"])) + 12), answer=_yes(cov["now"]["covered"], lang),
                 reason=reason_text(cov["now"], lang)))
    if r.get("covered_on"):
        c = r["covered_on"]
        print("\n" + _t("covered_on", lang, day=c["day"], answer=_yes(c["now"]["covered"], lang), reason=reason_text(c["now"], lang)))
    v = r.get("verification")
    if v is not None:
        print()
        _print_verification(v, lang)


# ------------------------------------------------------------------ verify
def _views_or_none(system: Any) -> Any:
    """The system's view store, if it can be opened (the cross-check is skipped otherwise)."""
    try:
        return views(system)
    except Exception:  # noqa: BLE001 - no views is not an error for an auditor's read
        return None


def _parse_through(value: str | None) -> date | None:
    if not value:
        return None
    if value == "today":
        return business_date(datetime.now(timezone.utc))
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError("DATE_INVALID", f"--through must be a date YYYY-MM-DD or 'today'; got {value!r}") from None


def _verify_options(args: argparse.Namespace) -> date | None:
    """The options checked before anything is opened; the last day to seal."""
    if args.through and not args.seal:
        raise DomainError("ARGUMENT_INVALID", "--through goes with --seal")
    if args.seal and args.person:
        raise DomainError("ARGUMENT_INVALID", "--seal seals the whole ledger; leave out --person")
    return _parse_through(args.through)


@command(check=_verify_options)
def cmd_verify(args: argparse.Namespace, system: Any, through: date | None) -> Answer:
    ledger = system.ledger
    if args.person:
        person_id = ledger.person_id(args.id_type, args.person)
        result = verify_person(ledger, person_id, views=_views_or_none(system))
    else:
        if args.workers is not None and args.workers < 1:
            raise DomainError("ARGUMENT_INVALID", "--workers must be at least 1")
        result = verify_all(ledger, workers=args.workers)
    channel = digest_channel(system) if (args.digests or args.seal) else None
    if args.digests:
        digests = verify_digests(ledger, channel)
        result.extend(digests)
        result.notes.insert(0, Note("segments_recomputed", segments=digests.segments, events=digests.events))
    payload = result.as_dict()
    if args.seal:
        if result.clean:
            sealed = seal(ledger, channel, through=through)
            payload["sealed"] = sealed.as_dict()
        else:
            payload["sealed"] = None
            result.notes.append(Note("not_sealed_unclean"))
            payload["notes"] = list(result.notes)

    def render(p: dict[str, Any]) -> None:
        lang = _lang(args)
        _print_verification(p, lang)
        if p.get("sealed"):
            s = p["sealed"]
            days = ", ".join(f"{x['day']}#{x['seq']}" for x in s["segments"]) or _t("none_new", lang)
            print(_t("sealed", lang, days=days, events=s["events_sealed"],
                     published=s["published_seqs"] or _t("none", lang)))

    return Answer(payload, render, exit_code=0 if result.clean else 1)


def _print_verification(v: dict[str, Any], lang: str = catalogue.DEFAULT_LANG) -> None:
    scope = f"scope_{v['scope']}"
    what = _t(scope, lang) if catalogue.has("audit_cli", scope) else v["scope"]
    status = _t("clean", lang) if v["clean"] else _t("not_clean", lang, n=len(v["findings"]))
    print(_t("verification", lang, what=what, status=status))
    print(_t("counts", lang, events=v["events"], aggregates=v["aggregates"], persons=v["persons"], seconds=v["seconds"],
             rate=v["events_per_second"], position=v["ledger_position"]))
    if v["findings"]:
        print()
        columns = ["code", "who", "version", "day", "message"]
        _print_table([{**f, "who": f["masked_id"] or f["person_id"] or f["aggregate_id"] or "", "version": f["version"]
                       if f["version"] is not None else "", "day": f["day"] or "",
                       "message": catalogue.error_message(f["code"], f["message"], lang)} for f in v["findings"]],
                     columns, {c: _t(f"col_{c}", lang) for c in columns})
    for note in v["notes"]:
        print(_t("note", lang, note=note_text(note, lang)))


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - `python -m entrypoints.audit.cli_commands`
    parser = argparse.ArgumentParser(prog="ledger")
    add_audit_commands(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))
