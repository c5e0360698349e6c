"""The ``ledger serve``, ``ledger clerk``, ``ledger import`` and ``ledger token add|list|revoke`` subcommands.

Registered into the ``ledger`` parser by :func:`add_http_commands` (see :data:`entrypoints.main.COMMANDS`);
each command runs in the one skeleton, :mod:`entrypoints.command`. FastAPI (about a second to
import) is imported only by the two commands that need it, ``serve`` and ``clerk transfers``.

``ledger clerk COMMAND`` and ``ledger import`` write to the ledger as the clerk whose token
is in ``LEDGER_TOKEN`` (checked against ``LEDGER_TOKENS_FILE``, as the API checks a bearer
token): the same role and region rules, the same request bodies and error codes, and the
token's user in every event's provenance. Each clerk command's options are its API body's
fields (``--region-code`` for ``region_code``), so the two cannot drift apart.
"""
from __future__ import annotations

import argparse
import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import ValidationError

from consumers import migration
from consumers.sheet_workbooks import error_workbook, template_csv, template_xlsx
from consumers.spreadsheets import import_file_and_sheet, read_file
from entrypoints.command import Answer, command
from entrypoints.console import pad, print_table as _print_table
from entrypoints.http.access import cli_principal
from entrypoints.http.auth import (TOKENS_FILE_ENV, Principal, Role, TokenFileError, add_token, read_token_file,
                                   revoke_tokens)
from entrypoints.http.commands import COMMANDS, carry_out, require_clerk
from entrypoints.http.fees_cli import add_late_fee_clerk_commands
from entrypoints.http.approvals_cli import add_approval_clerk_commands, render_change
from entrypoints import catalogue
from entrypoints.catalogue import lang_of
from entrypoints.http.api_messages import text as api_text
from entrypoints.http.errors import validation_problems
from entrypoints.http.import_words import in_language, sheet_residence, template_places
from entrypoints.http.outcome_words import outcome_text
from entrypoints.wiring import place_names
from entrypoints.main import help_of
from entrypoints.http.demo_state import cli_prefix, demo_dir, demo_env, ensure_demo_tokens, read_manifest
from infra.settings import environment, setting_text
from ledger.domain.errors import DomainError
from ledger.inbound_records import Provenance


def _lang(args: argparse.Namespace) -> str:
    return lang_of(getattr(args, "lang", None))


def _say(key: str, lang: str, **values: Any) -> str:
    """A text of these commands' answers (catalogue section ``http_cli_out``)."""
    return catalogue.text("http_cli_out", key, lang, **values)


def _status(status: str, lang: str) -> str:
    key = f"status.{status}"
    return _say(key, lang) if catalogue.has("http_cli_out", key) else status


def _fen_as_yuan(fen: int | None) -> str:
    return "" if fen is None else f"{fen / 100:,.2f}"


def _row_message(line: dict[str, Any], lang: str) -> str:
    if line.get("problems"):  # said in ``lang`` by ``in_language``, problem by problem
        return line["message"]
    return catalogue.error_message(line["code"], line["message"], lang) if line.get("code") else line["message"]


@command(wiring=None)
def cmd_serve(args: argparse.Namespace) -> int:
    from entrypoints.http.app import serve  # FastAPI and the whole API: only for `ledger serve`

    try:
        if args.demo:
            return serve(args.host, args.port, env=demo_serve_env(environment(), host=args.host, port=args.port,
                                                                     lang=_lang(args)))
        return serve(args.host, args.port)
    except TokenFileError as e:  # `error TOKENS_FILE_INVALID: ...` in the run's language (entrypoints.command.run)
        raise _tokens_file_error(e) from None


def _tokens_file_error(e: TokenFileError, code: str = "TOKENS_FILE_INVALID") -> DomainError:
    """A tokens file problem as the command line's error: its stable code, the file's own detail after it."""
    return DomainError(code, str(e))


def _file_to_read(file: str | None, template_option: str = "--template") -> Path:
    """The file ``import`` / ``migrate`` reads: FILE_REQUIRED without one, FILE_NOT_FOUND when it is not a file."""
    if not file:
        raise DomainError("FILE_REQUIRED", f"请指定要读取的文件，或用 {template_option} 文件 写出模板 "
                                           f"(name the file to read, or write a template with {template_option} FILE)")
    if not Path(file).is_file():
        raise DomainError("FILE_NOT_FOUND", f"找不到文件 {file} (no file {file})", path=str(file))
    return Path(file)


def demo_serve_env(env: dict[str, str], *, host: str = "127.0.0.1", port: int = 8080,
                   lang: str = catalogue.DEFAULT_LANG) -> dict[str, str]:
    """``ledger serve --demo``: the settings of the last demo run; its tokens created and shown on first use.

    Raises ``DEMO_NOT_RUN`` when no demo has run in this state directory. What it prints is in ``lang``
    (catalogue ``[serve_demo]``).
    """
    def say(key: str, **values: Any) -> str:
        return catalogue.text("serve_demo", key, lang, **values)

    manifest = read_manifest(env)
    run = manifest["run"]
    made = ensure_demo_tokens(env, manifest)
    served = demo_env(env, manifest)
    base = f"http://{host}:{port}"
    print(say("data", region=run["region"], name=run["region_name"], people=run["people"], year=run["year"],
              as_of=run["as_of"], state=served["LEDGER_STATE_DIR"]))
    if made:
        print(say("tokens_made", path=served[TOKENS_FILE_ENV]))
        for t in made:
            scope = say("token_scope", scope=t["scope"]) if t["scope"] else ""
            print(say("token", role=f"{t['role']:<8}", user=t["user"], scope=scope, token=t["token"]))
    else:
        print(say("tokens_kept", path=served[TOKENS_FILE_ENV]))
    print(say("pages", base=base))
    print(say("command_line", prefix=cli_prefix(demo_dir(env), manifest), grid=run["grid"], year=run["year"],
              as_of=run["as_of"]), flush=True)
    return served


def _clerk() -> Any:
    """The clerk in ``LEDGER_TOKEN``; raises the API's codes (``TOKEN_MISSING``, ``ROLE_FORBIDDEN``, ...)."""
    return require_clerk(cli_principal(purpose="this command writes to the ledger"))


def cmd_import(args: argparse.Namespace) -> int:
    if args.template:
        target = Path(args.template)
        try:
            places = template_places(place_names(), None)
        except DomainError as e:  # PLACES_FILE_INVALID: name the file and line, no traceback
            print(f"error {e.code}: {e.message}", file=sys.stderr)
            return 2
        target.write_bytes(template_csv(None, places) if target.suffix.lower() == ".csv" else template_xlsx(None, places))
        print(catalogue.text("cli_files", "import_template", _lang(args), path=target))
        return 0
    _file_to_read(args.file)
    return _import(args)


@command(check=lambda args: _clerk())
def _import(args: argparse.Namespace, system: Any, who: Principal) -> Answer:
    path = Path(args.file)
    default_region = next(iter(who.scopes)) if len(who.scopes) == 1 else None
    report, sheet, header = import_file_and_sheet(
        system.ledger, read_file(path), path.name, user=who.user, request_id=f"cli-{uuid.uuid4().hex[:12]}",
        source="batch", region_allowed=lambda region: region in who.scopes, default_region=default_region,
        residence=sheet_residence(system.places))
    lang = _lang(args)
    in_language(report, lang)
    if args.errors:
        Path(args.errors).write_bytes(error_workbook(
            sheet.header, header.columns, sheet.rows, report["lines"], reveal=lambda region: region in who.scopes,
            default_region=default_region))

    def render(r: dict[str, Any]) -> None:
        for notice in r["notices"]:
            print(_say("notice", lang, code=notice["code"], message=notice["message"]))
        for line in r["lines"]:
            if line["status"] != "imported" or args.verbose:
                code = f" {line['code']}" if line["code"] else ""
                print(_say("row", lang, line=f"{line['line']:>6}", status=pad(_status(line["status"], lang), 16),
                           code=code, what=line["id_number"] or "", message=_row_message(line, lang)))
        print(_say("import_total", lang, file=path.name, rows=r["rows"], imported=r["imported"],
                   enrolled=r["already_enrolled"], already=r["already_imported"], errors=r["errors"]))
        if args.errors:
            print(_say("import_errors_written", lang, path=args.errors, n=r["errors"]))

    return Answer(report, render, exit_code=1 if report["errors"] else 0)


def cmd_migrate(args: argparse.Namespace) -> int:
    if args.template:
        target = Path(args.template)
        target.write_bytes(migration.template_csv() if target.suffix.lower() == ".csv" else migration.template_xlsx())
        print(catalogue.text("cli_files", "migrate_template", _lang(args), path=target))
        return 0
    _file_to_read(args.file)
    return _migrate(args)


@command(check=lambda args: _clerk())
def _migrate(args: argparse.Namespace, system: Any, who: Principal) -> Answer:
    path = Path(args.file)
    default_region = next(iter(who.scopes)) if len(who.scopes) == 1 else None
    report, sheet, columns = migration.migrate_file(
        system.ledger, read_file(path), path.name, user=who.user, batch_id=args.batch,
        region_allowed=lambda region: region in who.scopes, default_region=default_region)
    if args.errors:
        Path(args.errors).write_bytes(error_workbook(
            sheet.header, columns, sheet.rows, report["lines"], reveal=lambda region: region in who.scopes,
            default_region=default_region))

    lang = _lang(args)
    in_language(report, lang)

    def render(r: dict[str, Any]) -> None:
        for notice in r["notices"]:
            print(_say("notice", lang, code=notice["code"], message=notice["message"]))
        for line in r["lines"]:
            code = f" {line['code']}" if line["code"] else ""
            print(_say("row", lang, line=f"{line['line']:>6}", status=pad(_status(line["status"], lang), 16),
                       code=code, what=f"{line['record_id'] or ''}  {line['id_number'] or ''}",
                       message=_row_message(line, lang)))
        print(_say("migrate_total", lang, file=path.name, batch=r["batch_id"], rows=r["rows"], imported=r["imported"],
                   already=r["already_imported"], enrolled=r["already_enrolled"], errors=r["errors"]))
        if args.errors:
            print(_say("migrate_errors_written", lang, path=args.errors))

    return Answer(report, render, exit_code=1 if report["errors"] else 0)


def _is_int(annotation: Any) -> bool:
    """``int``, or an optional or annotated ``int`` (``NonNegativeFen | None``)."""
    if annotation is int:
        return True
    if get_origin(annotation) is Annotated:
        return _is_int(get_args(annotation)[0])
    args = [a for a in get_args(annotation) if a is not type(None)]
    return get_origin(annotation) is not Literal and len(args) == 1 and _is_int(args[0])


def _body(command: Any, args: argparse.Namespace) -> Any:
    """The command's API body from its options, validated by the API's own model."""
    values: dict[str, Any] = {}
    for name, field in command.body.model_fields.items():
        value = getattr(args, name)
        if value is None:
            continue
        if _is_int(field.annotation) and isinstance(value, str) and value.strip().lstrip("-").isdigit():
            try:
                value = int(value)  # a whole number as the API's JSON would carry it; anything else is refused below
            except ValueError:  # more digits than Python converts (4,300): left as text, refused as not fen
                pass
        values[name] = value
    try:
        return command.body.model_validate(values)
    except ValidationError as e:
        lang = lang_of(getattr(args, "lang", None))
        problems = validation_problems(list(e.errors()), where="body", lang=lang)
        first = problems[0]
        field = first["field"]
        flag = f"--{field.replace('_', '-')}"
        if lang == "en":
            message = first["message"].replace(f"{field}: ", f"{flag}: ", 1)
        else:
            message = first["message"].replace(f"（{field}）", f"（{flag}）", 1)
        n = len(problems) - 1
        more = api_text("more", lang, n=n, s="s" if n > 1 else "") if n else ""
        raise DomainError(first["code"], message + more) from None


def _clerk_and_body(args: argparse.Namespace) -> tuple[Any, Any]:
    who = _clerk()
    return who, _body(args.command, args)


@command(check=_clerk_and_body)
def cmd_clerk(args: argparse.Namespace, system: Any, checked: tuple[Any, Any]) -> Answer:
    who, body = checked
    request_id = args.request_id or f"cli-{uuid.uuid4().hex[:12]}"
    outcome = carry_out(
        system.ledger, who, args.command, body, id_type=args.id_type, id_number=args.id_number,
        provenance=lambda key: Provenance(source="cli", user=who.user, request_id=request_id, record_key=key),
        request_id_given=args.request_id is not None)
    answer = {"applied": outcome.applied, "message": outcome.message, "event_ids": outcome.event_ids,
              "person_id": str(outcome.person_id) if outcome.person_id else None, "request_id": request_id}
    if outcome.change is not None:
        answer["change"] = outcome.change

    def render(a: dict[str, Any]) -> None:
        lang = _lang(args)
        if "change" in a:  # maker-checker: proposed, carried out once another clerk approves
            render_change({**a["change"], "applied": a["applied"]}, lang)
            return
        print(_say("recorded" if a["applied"] else "unchanged", lang, message=outcome_text(a["message"], lang)))
        print(_say("recorded_ids", lang, person=a["person_id"], request=a["request_id"],
                   events=", ".join(a["event_ids"]) or "-"))

    return Answer(answer, render)


def _transfers_reader(args: argparse.Namespace) -> tuple[Any, date]:
    from entrypoints.http.routes_persons import today  # FastAPI's route module: only for `clerk transfers`

    who = _clerk_or_auditor()
    try:
        as_of = date.fromisoformat(args.as_of) if args.as_of else today()
    except ValueError:
        raise DomainError("DATE_INVALID", f"--as-of must be a date YYYY-MM-DD; got {args.as_of!r}") from None
    return who, as_of


@command(check=_transfers_reader)
def cmd_clerk_transfers(args: argparse.Namespace, system: Any, checked: tuple[Any, date]) -> Answer:
    """``ledger clerk transfers --region R [--overdue]``: the region's incoming and outgoing transfers."""
    from entrypoints.http.routes_transfers import region_transfers  # FastAPI's route module, as above

    who, as_of = checked
    lang = _lang(args)
    answer = region_transfers(system.ledger, who, args.region, as_of=as_of, overdue_only=args.overdue, lang=lang)

    def render(a: dict[str, Any]) -> None:
        print(_say("transfers_total", lang, region=a["region"], day=a["as_of"], n=a["count"],
                   incoming=a["incoming_open"], outgoing=a["outgoing_open"], overdue=a["overdue"]))
        for r in a["transfers"]:
            flag = _say("overdue", lang) if r["overdue"] else (_say("external", lang) if r["external"] else "")
            print(f"{r['direction']:<8} {r['transfer_id']:<20} {r['id_number']:<18} {pad(r['name'] or '', 8)} "
                  f"{r['from_region']}→{r['to_region']} "
                  f"{_say('yuan', lang, yuan=_fen_as_yuan(r['account_balance_fen'])):>12} "
                  f"{_say('months', lang, n=r['contribution_months'])} "
                  f"{pad(r['status_label'] or r['status'], 8)} {pad(flag, 4)} {r['explanation']}")

    return Answer(answer, render)


def _clerk_or_auditor() -> Any:
    who = cli_principal(purpose="this command reads the ledger")
    who.require_role(Role.CLERK, Role.AUDITOR, action="read transfer lists")
    return who


def _add_clerk_commands(sub: Any) -> None:
    p = sub.add_parser("clerk", help=help_of("clerk"))
    clerk_sub = p.add_subparsers(dest="clerk_command", required=True)
    for api_command in COMMANDS:
        c = clerk_sub.add_parser(api_command.cli_name, help=api_command.summary, description=api_command.body.__doc__)
        if api_command.on_person:
            c.add_argument("--id-type", default="RESIDENT_ID", help="the person's ID type (证件类型)")
            c.add_argument("--id-number", required=True, help="the person's ID number (证件号码)")
        for name, field in api_command.body.model_fields.items():
            flag = "--" + name.replace("_", "-")
            hint = field.description or ""
            if field.annotation is bool:
                c.add_argument(flag, dest=name, action="store_true", default=None, help=hint)
            else:
                required = field.is_required()
                default = "" if required or field.default is None else f" (default: {field.default})"
                choices = get_args(field.annotation) if get_origin(field.annotation) is Literal else None
                c.add_argument(flag, dest=name, required=required, help=f"{hint}{default}", choices=choices,
                               metavar=None if choices else name.upper())
        c.add_argument("--request-id", help="resend: the request id of the first try, so nothing is done twice")
        c.add_argument("--json", action="store_true")
        c.set_defaults(func=cmd_clerk, command=api_command)
    c = clerk_sub.add_parser("transfers", help="the region's incoming and outgoing transfers, overdue first "
                                                "(转移接续清单)")
    c.add_argument("--region", required=True, help="6-digit region code (one of the clerk's regions)")
    c.add_argument("--overdue", action="store_true", help="only transfers past their time limit (超期)")
    c.add_argument("--as-of", help="the day time limits are counted to, YYYY-MM-DD (default: today)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_clerk_transfers)
    add_late_fee_clerk_commands(clerk_sub)
    add_approval_clerk_commands(clerk_sub)


@command(wiring=None)
def cmd_token_add(args: argparse.Namespace) -> int:
    path = _tokens_path(args)
    try:
        expires = date.fromisoformat(args.expires) if args.expires else None
    except ValueError:
        raise DomainError("DATE_INVALID", f"有效期 --expires 须为日期 YYYY-MM-DD (--expires must be a date YYYY-MM-DD; got "
                                          f"{args.expires!r})") from None
    try:
        token = add_token(path, user=args.user, role=args.role, scopes=args.scope or [], expires=expires)
    except TokenFileError as e:
        raise _tokens_file_error(e) from None
    print(token)
    print(_say("token_added", _lang(args), user=args.user, role=args.role, path=path), file=sys.stderr)
    return 0


def _tokens_path(args: argparse.Namespace) -> str:
    path = args.file or setting_text(TOKENS_FILE_ENV)
    if not path:
        raise DomainError("TOKENS_FILE_REQUIRED", f"请用 --file 指定令牌文件，或设置 {TOKENS_FILE_ENV} "
                                                  f"(give --file or set {TOKENS_FILE_ENV})", env=TOKENS_FILE_ENV)
    return path


@command(wiring=None)
def cmd_token_list(args: argparse.Namespace) -> int | Answer:
    """The tokens file's entries; the token id is the start of the hash: the file holds no token to show."""
    path = _tokens_path(args)
    try:
        rows = [e.listing() for e in read_token_file(path)]
    except TokenFileError as e:
        raise _tokens_file_error(e) from None
    if not args.all:
        rows = [r for r in rows if not r["revoked"]]

    lang = _lang(args)

    def render(rs: list[dict[str, Any]]) -> None:
        _print_table([{**r, "scopes": ",".join(r["scopes"])} for r in rs],
                     ["token_id", "user", "role", "scopes", "created", "expires", "revoked"],
                     {k: v[lang] for k, v in catalogue.table("cli_columns").items() if lang in v})
        print("\n" + _say("tokens_total" if args.all else "tokens_total_active", lang, n=len(rs), path=path))

    return Answer(rows, render)


@command(wiring=None)
def cmd_token_revoke(args: argparse.Namespace) -> int:
    path = _tokens_path(args)
    try:
        revoked = revoke_tokens(path, args.who)
    except TokenFileError as e:
        raise _tokens_file_error(e, "TOKEN_REVOKE_FAILED") from None
    for e in revoked:
        print(_say("token_revoked", _lang(args), id=e.token_id, user=e.user, role=e.role.value, at=e.revoked))
    print(_say("tokens_revoked", _lang(args), n=len(revoked), path=path), file=sys.stderr)
    return 0


def add_http_commands(sub: Any) -> None:
    """Add ``serve``, ``clerk``, ``import`` and ``token`` to the ``ledger`` command's subparsers."""
    p = sub.add_parser("serve", help=help_of("serve"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--demo", action="store_true", help="open the last `ledger demo` run's data (var/demo/); "
                   "creates a clerk and an auditor token on first use and shows them once (打开演示数据)")
    p.set_defaults(func=cmd_serve)

    _add_clerk_commands(sub)

    p = sub.add_parser("import", help=help_of("import"))
    p.add_argument("file", nargs="?")
    p.add_argument("--template", metavar="FILE", help="write the import template (.xlsx, or .csv) and stop; "
                   "导入模板：中文表头、一行示例、填写说明页")
    p.add_argument("--errors", metavar="FILE.xlsx", help="write the refused rows with a 错误说明 column "
                   "(错误行工作簿，改正后可重新导入)")
    p.add_argument("--verbose", action="store_true", help="also list the rows imported")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("migrate", help=help_of("migrate"))
    p.add_argument("file", nargs="?")
    p.add_argument("--template", metavar="FILE", help="write the migration template (.xlsx, or .csv) and stop; "
                   "历史数据迁移模板：中文表头、示例行、填写说明页")
    p.add_argument("--batch", metavar="ID", help="the batch id recorded with every event (default: MIG-<file sha256>)")
    p.add_argument("--errors", metavar="FILE.xlsx", help="write the refused rows with a 错误说明 column")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("token", help=help_of("token"))
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
    t = token_sub.add_parser("list", help="the tokens in the file: id, user, role, scopes, dates (never a token)")
    t.add_argument("--all", action="store_true", help="also the revoked ones")
    t.add_argument("--json", action="store_true")
    t.add_argument("--file", help="tokens file (default: $LEDGER_TOKENS_FILE)")
    t.set_defaults(func=cmd_token_list)
    t = token_sub.add_parser("revoke", help="revoke every token of a user, or one token by its id (from `list`)")
    t.add_argument("who", metavar="USER_OR_TOKEN_ID")
    t.add_argument("--file", help="tokens file (default: $LEDGER_TOKENS_FILE)")
    t.set_defaults(func=cmd_token_revoke)
