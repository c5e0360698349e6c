"""Late fees (滞纳金) on the command line: ``ledger fees`` (the list, with the arithmetic), ``ledger clerk
pay-late-fee`` / ``waive-late-fee`` (the API's ``POST /late-fees/payments`` / ``waivers``), and the
arrears and fee files (``--csv FILE`` / ``--xlsx FILE``).

The same rules and codes as the API (:mod:`entrypoints.http.late_fees`), as the token's holder in
``LEDGER_TOKEN``. Money is shown in yuan with two decimals; ``--json`` gives fen.
"""
from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from entrypoints.console import print_table


def _yuan(fen: int) -> str:
    from ledger.domain.arrears import yuan

    return yuan(fen)


def _day(text: str | None, option: str) -> date:
    from entrypoints.http.routes_persons import today
    from ledger.domain.errors import DomainError

    if not text:
        return today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise DomainError("DATE_INVALID", f"{option} 须为日期 YYYY-MM-DD (must be a date); got {text!r}") from None


def write_file(path: str, body: bytes) -> None:
    Path(path).write_bytes(body)
    print(f"已写入 {path} ({len(body)} 字节)", file=sys.stderr)


def _file_kind(args: argparse.Namespace) -> tuple[str, str] | None:
    if getattr(args, "csv", None):
        return "csv", args.csv
    if getattr(args, "xlsx", None):
        return "xlsx", args.xlsx
    return None


# --------------------------------------------------------------------------- ledger fees
def cmd_fees(args: argparse.Namespace) -> int:
    from entrypoints.http.access import cli_principal
    from entrypoints.http.late_fees import fees_answer, fees_for, masked
    from entrypoints.http.read_model import ViewReads
    from entrypoints.http.web import ledger_exports
    from entrypoints.wiring import bootstrap
    from ledger.domain.arrears import rate_text
    from ledger.domain.places import validate_region_code

    who = cli_principal()
    region = validate_region_code(args.region) if args.region else None
    as_of = _day(args.as_of, "--as-of")
    system = bootstrap()
    try:
        reads = ViewReads(system)  # caught up first (LEDGER_API_CATCH_UP), so a fee just paid is off the list
        rows = fees_for(reads, who, as_of=as_of, region=region, grid=args.grid, employer=args.employer,
                        include_cleared=args.all)
        masked_ids = {r["person_id"]: r.get("masked_id") for r in rows}
    finally:
        system.close()
    for r in rows:
        r["id_number"] = masked_ids.get(r["person_id"])
    out = _file_kind(args)
    if out is not None:
        write_file(out[1], ledger_exports.fees_file(masked(rows), out[0]))
        return 0
    answer = fees_answer(rows, as_of=as_of, region=region, grid=args.grid, employer=args.employer)
    if args.json:
        print(json.dumps(answer, ensure_ascii=False, indent=2, default=str))
        return 0
    print_table([{**r, "principal": _yuan(r["principal_fen"]), "rate": rate_text(r["rate_ppm_per_day"]) + "/天",
                  "accrued": _yuan(r["accrued_fen"]), "paid": _yuan(r["fee_paid_fen"]),
                  "waived": _yuan(r["waived_fen"]), "owed": _yuan(r["owed_fen"]), "status": r["fee_status_label"]}
                 for r in rows],
                ["employer_id", "masked_id", "period", "principal", "due_date", "until", "days", "rate", "accrued",
                 "paid", "waived", "owed", "status"])
    for r in rows:
        waiver = f"；减免理由：{r['waiver_reason']}，审批人：{r['waiver_approver']}" if r["waived"] else ""
        print(f"  {r['masked_id']} {r['period']}: {r['arithmetic']}{waiver}")
    print()
    for e in answer["employers"]:
        print(f"单位 {e['employer_id']}（{e['region_code']}）：{e['rows']} 条，应计 {_yuan(e['accrued_fen'])} 元，"
              f"已缴 {_yuan(e['fee_paid_fen'])} 元，减免 {_yuan(e['waived_fen'])} 元，尚欠 {_yuan(e['owed_fen'])} 元")
    print(f"共 {answer['count']} 条；尚欠滞纳金合计 {_yuan(answer['owed_fen'])} 元（统计日 {as_of}）")
    return 0


# --------------------------------------------------------------------------- ledger clerk pay/waive-late-fee
def _fee_command(args: argparse.Namespace, body_class: Any, run: Any) -> int:
    from pydantic import ValidationError

    from entrypoints.http.access import cli_principal
    from entrypoints.http.commands import require_clerk
    from entrypoints.http.errors import validation_problems
    from entrypoints.http.read_model import ViewReads
    from entrypoints.wiring import bootstrap
    from ledger.domain.errors import DomainError
    from ledger.records import Provenance

    who = require_clerk(cli_principal(purpose="this command writes to the ledger"))
    values = {name: getattr(args, name) for name in body_class.model_fields if getattr(args, name, None) is not None}
    fen = values.get("amount_fen")
    if isinstance(fen, str) and fen.strip().lstrip("-").isdigit() and len(fen) < 4000:
        values["amount_fen"] = int(fen)  # a whole number as the API's JSON carries it; anything else is refused
    try:
        body = body_class.model_validate(values)
    except ValidationError as e:
        first = validation_problems(list(e.errors()), where="body")[0]
        raise DomainError(first["code"], first["message"]) from None
    request_id = args.request_id or f"cli-{uuid.uuid4().hex[:12]}"
    system = bootstrap()
    try:
        reads = ViewReads(system, catch_up=True)  # the split needs every fee row as of now
        answer = run(system.ledger, reads, who, body, provenance=Provenance(
            source="cli", user=who.user, request_id=request_id, record_key=f"late-fee:{body.period}"))
    finally:
        system.close()
    answer["request_id"] = request_id
    if args.json:
        print(json.dumps(answer, ensure_ascii=False, indent=2, default=str))
    else:
        print(("已记录" if answer["applied"] else "未变更") + f"：{answer['message']}")
        for p in answer["persons"]:
            print(f"  {p['masked_id'] or p['person_id']}  {_yuan(p['amount_fen'])} 元")
        print(f"request {request_id}, events: {len(answer['event_ids'])}")
    return 0


def cmd_pay_late_fee(args: argparse.Namespace) -> int:
    from entrypoints.http.late_fees import LateFeePaymentIn, pay_late_fee

    return _fee_command(args, LateFeePaymentIn, pay_late_fee)


def cmd_waive_late_fee(args: argparse.Namespace) -> int:
    from entrypoints.http.late_fees import LateFeeWaiverIn, waive_late_fee

    return _fee_command(args, LateFeeWaiverIn, waive_late_fee)


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
    p = sub.add_parser("fees", help="late fees owed (滞纳金清单) per employer and region, with the arithmetic; "
                                    "--csv/--xlsx FILE writes the list")
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


__all__ = ["add_fee_commands", "add_late_fee_clerk_commands", "write_file"]
