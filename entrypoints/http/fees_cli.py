"""Late fees (滞纳金) on the command line: ``ledger fees`` (the list, with the arithmetic), ``ledger clerk
pay-late-fee`` / ``waive-late-fee`` (the API's ``POST /late-fees/payments`` / ``waivers``), and the
arrears and fee files (``--csv FILE`` / ``--xlsx FILE``).

The same rules and codes as the API (:mod:`entrypoints.http.late_fees`), as the token's holder in
``LEDGER_TOKEN``. Money is shown in yuan with two decimals; ``--json`` gives fen.
"""
from __future__ import annotations

import argparse
import uuid
from datetime import date
from typing import Any

from pydantic import ValidationError

from entrypoints.command import Answer, command
from entrypoints.console import print_table, write_file
from entrypoints.http.access import cli_principal
from entrypoints.http.commands import require_clerk
from entrypoints import catalogue
from entrypoints.catalogue import lang_of
from entrypoints.http.errors import validation_problems
from entrypoints.http.late_fees import (LateFeePaymentIn, LateFeeWaiverIn, fees_answer, fees_for, masked,
                                        outcome_said as lf_outcome_said, pay_late_fee, waive_late_fee)
from entrypoints.http.read_model import ViewReads
from entrypoints.http.routes_persons import today
from entrypoints.http.web import labels, ledger_exports
from entrypoints.main import help_of
from ledger.domain.arrears import rate_text, yuan as _yuan
from ledger.domain.errors import DomainError
from ledger.domain.places import validate_region_code
from ledger.inbound_records import Provenance


def _day(text: str | None, option: str) -> date:
    if not text:
        return today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise DomainError("DATE_INVALID", f"{option} 须为日期 YYYY-MM-DD (must be a date); got {text!r}") from None


def _file_kind(args: argparse.Namespace) -> tuple[str, str] | None:
    if getattr(args, "csv", None):
        return "csv", args.csv
    if getattr(args, "xlsx", None):
        return "xlsx", args.xlsx
    return None


# --------------------------------------------------------------------------- ledger fees
def _fees_reader(args: argparse.Namespace) -> tuple[Any, str | None, date]:
    who = cli_principal()
    region = validate_region_code(args.region) if args.region else None
    return who, region, _day(args.as_of, "--as-of")


@command(check=_fees_reader)
def cmd_fees(args: argparse.Namespace, system: Any, checked: tuple[Any, str | None, date]) -> Any:
    who, region, as_of = checked
    reads = ViewReads(system)  # caught up first (LEDGER_API_CATCH_UP), so a fee just paid is off the list
    rows = fees_for(reads, who, as_of=as_of, region=region, grid=args.grid, employer=args.employer,
                    include_cleared=args.all)
    for r in rows:
        r["id_number"] = r.get("masked_id")
    lang = lang_of(getattr(args, "lang", None))
    out = _file_kind(args)
    if out is not None:
        write_file(out[1], ledger_exports.fees_file(masked(rows), out[0], lang), lang)
        return 0  # the file is the answer
    answer = fees_answer(rows, as_of=as_of, region=region, grid=args.grid, employer=args.employer)

    def render(a: dict[str, Any]) -> None:
        print_table([{**r, "principal": _yuan(r["principal_fen"]),
                      "rate": rate_text(r["rate_ppm_per_day"]) + _say("per_day", lang),
                      "accrued": _yuan(r["accrued_fen"]), "paid": _yuan(r["fee_paid_fen"]),
                      "waived": _yuan(r["waived_fen"]), "owed": _yuan(r["owed_fen"]), "status": labels.fee_status(r["fee_status"], lang)}
                     for r in rows],
                    ["employer_id", "masked_id", "period", "principal", "due_date", "until", "days", "rate", "accrued",
                     "paid", "waived", "owed", "status"],
                    {k: v[lang] for k, v in catalogue.table("fees_columns").items() if lang in v})
        for r in rows:
            waiver = (_say("waiver", lang, reason=r["waiver_reason"], approver=r["waiver_approver"])
                      if r["waived"] else "")
            print(f"  {r['masked_id']} {r['period']}: {ledger_exports.fee_arithmetic(r, lang)}{waiver}")
        print()
        for e in a["employers"]:
            print(_say("employer", lang, employer=e["employer_id"], region=e["region_code"], rows=e["rows"],
                       accrued=_yuan(e["accrued_fen"]), paid=_yuan(e["fee_paid_fen"]), waived=_yuan(e["waived_fen"]),
                       owed=_yuan(e["owed_fen"])))
        print(_say("total", lang, n=a["count"], owed=_yuan(a["owed_fen"]), day=as_of))

    return Answer(answer, render)


# --------------------------------------------------------------------------- ledger clerk pay/waive-late-fee
def _say(key: str, lang: str, **values: object) -> str:
    """A text of the late-fee commands' answers (catalogue section ``fees_out``)."""
    return catalogue.text("fees_out", key, lang, **values)


def _fee_body(args: argparse.Namespace, body_class: Any) -> tuple[Any, Any, str]:
    """The clerk and the request body, checked before anything is opened."""
    who = require_clerk(cli_principal(purpose="this command writes to the ledger"))
    values = {name: getattr(args, name) for name in body_class.model_fields if getattr(args, name, None) is not None}
    fen = values.get("amount_fen")
    if isinstance(fen, str) and fen.strip().lstrip("-").isdigit() and len(fen) < 4000:
        values["amount_fen"] = int(fen)  # a whole number as the API's JSON carries it; anything else is refused
    try:
        body = body_class.model_validate(values)
    except ValidationError as e:
        first = validation_problems(list(e.errors()), where="body", lang=lang_of(getattr(args, "lang", None)))[0]
        raise DomainError(first["code"], first["message"]) from None
    return who, body, args.request_id or f"cli-{uuid.uuid4().hex[:12]}"


def _fee_answer(args: argparse.Namespace, system: Any, checked: tuple[Any, Any, str], run: Any) -> Answer:
    who, body, request_id = checked
    reads = ViewReads(system, catch_up=True)  # the split needs every fee row as of now
    answer = run(system.ledger, reads, who, body, provenance=Provenance(
        source="cli", user=who.user, request_id=request_id, record_key=f"late-fee:{body.period}"))
    answer["request_id"] = request_id

    lang = lang_of(getattr(args, "lang", None))

    def outcome(a: dict[str, Any]) -> str:
        return lf_outcome_said(a, body, lang)

    def render(a: dict[str, Any]) -> None:
        if "change" in a:  # a waiver waits for its approver (maker-checker): `ledger clerk approve CHANGE`
            print(_say("proposed" if a["applied"] else "proposed_before", lang, message=outcome(a)))
        else:
            print(_say("recorded" if a["applied"] else "unchanged", lang, message=outcome(a)))
        for p in a["persons"]:
            print(_say("person_amount", lang, who=p["masked_id"] or p["person_id"], yuan=_yuan(p["amount_fen"])))
        print(_say("request_line", lang, request=request_id, n=len(a["event_ids"])))

    return Answer(answer, render)


@command(check=lambda args: _fee_body(args, LateFeePaymentIn))
def cmd_pay_late_fee(args: argparse.Namespace, system: Any, checked: tuple[Any, Any, str]) -> Answer:
    return _fee_answer(args, system, checked, pay_late_fee)


@command(check=lambda args: _fee_body(args, LateFeeWaiverIn))
def cmd_waive_late_fee(args: argparse.Namespace, system: Any, checked: tuple[Any, Any, str]) -> Answer:
    return _fee_answer(args, system, checked, waive_late_fee)

def add_late_fee_clerk_commands(clerk_sub: Any) -> None:
    """``ledger clerk pay-late-fee`` and ``waive-late-fee``."""
    for name, func, summary in (
        ("pay-late-fee", cmd_pay_late_fee, "record a late fee paid (滞纳金缴纳), for an employer's month or one employee"),
        ("waive-late-fee", cmd_waive_late_fee, "waive a late fee (滞纳金减免) with reason and approver"),
    ):
        c = clerk_sub.add_parser(name, help=summary, description=summary)
        c.add_argument("--employer-id", help="the employer (单位编号): every employee's fee of the month")
        c.add_argument("--id-type", default="RESIDENT_ID")
        c.add_argument("--id-number", help="or one employee (证件号码)")
        c.add_argument("--period", required=True, help="the month, YYYY-MM (费款所属期)")
        if name == "pay-late-fee":
            c.add_argument("--amount-fen", dest="amount_fen", required=True, help="fee paid, in fen (分)")
            c.add_argument("--voucher-no", required=True, help="receipt / e-tax voucher number (电子税票号码)")
            c.add_argument("--tax-office", required=True, help="collecting tax office (征收税务机关)")
            c.add_argument("--paid-on", required=True, help="the day paid, YYYY-MM-DD (缴款日期)")
            c.add_argument("--channel", help="payment channel (default COUNTER)")
        else:
            c.add_argument("--reason", required=True, help="why (减免理由)")
            c.add_argument("--approver", required=True, help="who approved (审批人), not yourself")
            c.add_argument("--effective-date", help="YYYY-MM-DD (default: today)")
        c.add_argument("--request-id", help="resend: the request id of the first try (a waiver's id)")
        c.add_argument("--json", action="store_true")
        c.set_defaults(func=func)


def add_fee_commands(sub: Any) -> None:
    """``ledger fees``."""
    p = sub.add_parser("fees", help=help_of("fees"))
    p.add_argument("--region", help="6-digit region code")
    p.add_argument("--grid", help="12-digit grid code")
    p.add_argument("--employer", help="only this employer (单位编号)")
    p.add_argument("--as-of", metavar="DATE", help="day asked about (default today)")
    p.add_argument("--all", action="store_true", help="also fees paid or waived (已缴清/已减免)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true")
    group.add_argument("--csv", metavar="FILE", help="write the list as CSV (UTF-8 with BOM, for Excel)")
    group.add_argument("--xlsx", metavar="FILE", help="write the list as an Excel workbook")
    p.set_defaults(func=cmd_fees)


__all__ = ["add_fee_commands", "add_late_fee_clerk_commands"]
