"""The tax bureau's daily statements from a file (对账单文件): CSV / XLSX to ``tax.statements.v1`` records.

``ledger feed statements FILE`` reads one row per statement line; the statement's header
fields are repeated on each of its rows:

========================  ========  ==========================================================
column                    required  meaning
========================  ========  ==========================================================
``statement_id``          yes       对账单编号; the rows of one statement share it
``business_date``         yes       对账日期 (the Beijing payment date the statement covers)
``tax_office``            yes       征收税务机关代码
``region_code``           yes       参保地行政区划代码 (6 digits)
``line_count``            no        明细笔数 as the bureau declares it (default: the statement's rows)
``total_amount_fen``      no        合计金额 in fen, payments minus refunds (default: the rows' sum)
``line_no``               no        明细序号 from 1 (default: the row's place in its statement)
``voucher_no``            yes       电子税票号码; empty on a statement's only row: a day without lines
``id_type``, ``id_number`` yes      证件类型, 证件号码
``levy_item``             yes       RESIDENT or EMPLOYEE (征收品目)
``period_start``, ``period_end``  yes  费款所属期起止
``amount_fen``            yes       金额 in whole fen, positive; ``kind`` gives the direction
``paid_at``               yes       缴款时间, ISO 8601 (China Standard Time when no offset)
``credited_on``           no        入库日期
``kind``                  no        PAYMENT (default), REFUND or REVERSAL
``original_voucher_no``, ``original_tax_office``  no  the corrected voucher of a refund or reversal
========================  ========  ==========================================================

Cells as :mod:`consumers.file_feeder` reads them (fen as whole numbers; dates ``YYYY-MM-DD``,
``YYYY/MM/DD``, ``YYYYMMDD`` or an Excel date). Each statement becomes its header record and
its line records, keyed by statement id, each checked as the statement consumer checks it
(:func:`reconciliation.intake.decode_value`: the same codes). A bad line is reported by its
file line and not sent; the statement then lacks it and is reported INCOMPLETE, never
reconciled without it. Rows of one statement that disagree on its header fields are refused
(``STATEMENT_HEADER_MISMATCH``), as is every row of a statement whose header is invalid.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from consumers.file_feeder import FeedReport, _cell_value
from consumers.spreadsheets import ImportFileError, read_sheet
from events import codec
from events.inbound import TAX_STATEMENT_HEADER, TAX_STATEMENT_LINE
from infra.limits import FEED_SHEET
from ledger.domain.errors import DomainError
from ledger.log import mask_text
from reconciliation.intake import ERROR, decode_value
from reconciliation.model import SIGN

HEADER_FIELDS = ("statement_id", "business_date", "tax_office", "region_code")
TOTAL_FIELDS = ("line_count", "total_amount_fen")
#: Line columns a row may leave empty (a header-only row leaves every line column empty).
OPTIONAL = {"line_count", "total_amount_fen", "line_no", "credited_on", "kind", "original_voucher_no",
            "original_tax_office"}


def _fields() -> dict[str, Any]:
    """Every column of the file, with its Avro type (the header's and the line's contracts)."""
    registry = codec.default_registry()
    out: dict[str, Any] = {}
    for record in (TAX_STATEMENT_HEADER, TAX_STATEMENT_LINE):
        for f in registry.current(record).schema["fields"]:
            out.setdefault(f["name"], f["type"])
    return out


def _columns(header: Sequence[Any]) -> dict[str, int]:
    fields = _fields()
    names = [str(h or "").replace("\ufeff", "").strip() for h in header]
    while names and not names[-1]:
        names.pop()
    unknown = [n or "(blank)" for n in names if n not in fields]
    repeated = sorted({n for n in names if names.count(n) > 1})
    missing = [n for n in fields if n not in OPTIONAL and n not in names]
    if unknown or repeated or missing:
        problems = ([f"缺少 missing {', '.join(missing)}"] if missing else []) + \
                   ([f"未知 unknown {', '.join(unknown)}"] if unknown else []) + \
                   ([f"重复 repeated {', '.join(repeated)}"] if repeated else [])
        raise DomainError("FEED_COLUMNS", f"对账单文件表头不符（{'; '.join(problems)}），未发送任何记录 "
                                          f"(the header row does not match tax.statements.v1; nothing was sent). "
                                          f"Columns: " + ", ".join(n + ("" if n in OPTIONAL else " (required)")
                                                                   for n in fields),
                          missing=missing, unknown=unknown, repeated=repeated)
    return {n: i for i, n in enumerate(names)}


def _row(columns: dict[str, int], cells: Sequence[Any]) -> dict[str, Any]:
    fields = _fields()
    return {name: _cell_value(name, fields[name], cells[at] if at < len(cells) else None)
            for name, at in columns.items()}


def _checked(record_name: str, record: dict[str, Any], id_key: bytes, today: date) -> bytes:
    """The record's Avro bytes, checked by the statement consumer's own decoder (its codes)."""
    value = codec.encode(record_name, record)
    decoded = decode_value(value, id_key, today)
    if decoded[0] == ERROR:
        raise DomainError(decoded[1], decoded[2])
    return value


def statement_file(data: bytes, filename: str, sink: Any, *, topic: str, id_key: bytes, dry_run: bool = False,
                   today: date | None = None) -> FeedReport:
    """Check every row and (unless ``dry_run``) send each statement's header and good lines to ``topic``.

    Raises DomainError (``FEED_COLUMNS``, ``IMPORT_FORMAT``, ``FILE_BOMB``, ...) when the file as a
    whole cannot be read: nothing is sent then.
    """
    today = today or date.today()
    try:
        sheet = read_sheet(data, filename, FEED_SHEET)
    except ImportFileError as e:
        raise DomainError(e.code, e.message, **e.details) from None
    columns = _columns(sheet.header)
    report = FeedReport("statements", topic, dry_run=dry_run)
    statements: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for line, cells in sheet.rows:
        if not any(c is not None and str(c).strip() for c in cells):
            continue
        report.rows += 1
        try:
            row = _row(columns, cells)
        except DomainError as e:
            report.bad.append({"line": line, "code": e.code, "message": mask_text(e.message)})
            continue
        statements.setdefault(str(row.get("statement_id") or ""), []).append((line, row))
    for statement_id, rows in statements.items():
        _statement(report, statement_id, rows, sink, id_key, today)
    report.bad.sort(key=lambda b: b["line"])
    if report.sent:
        sink.flush()
    return report


def _statement(report: FeedReport, statement_id: str, rows: list[tuple[int, dict[str, Any]]], sink: Any,
               id_key: bytes, today: date) -> None:
    """One statement's rows: its lines checked, its header made and checked, then sent (header first)."""
    first_line, first = rows[0]
    agreed: list[tuple[int, dict[str, Any]]] = []
    declared: dict[str, Any] = {name: None for name in TOTAL_FIELDS}
    for line, row in rows:
        differs = [n for n in HEADER_FIELDS if row.get(n) != first.get(n)]
        differs += [n for n in TOTAL_FIELDS if row.get(n) is not None and declared[n] is not None
                    and row[n] != declared[n]]
        if differs:
            report.bad.append({"line": line, "code": "STATEMENT_HEADER_MISMATCH", "message": (
                f"对账单 {statement_id} 的表头字段 {', '.join(differs)} 与第 {first_line} 行不一致，本行未发送 "
                f"(this row's {', '.join(differs)} differ from line {first_line} of the same statement)")})
            continue
        for n in TOTAL_FIELDS:
            if row.get(n) is not None:
                declared[n] = row[n]
        agreed.append((line, row))
    line_rows = [(line, row) for line, row in agreed if row.get("voucher_no")]
    lines: list[tuple[int, bytes]] = []
    total = 0
    for number, (line, row) in enumerate(line_rows, start=1):
        record = {k: row.get(k) for k in _fields() if k not in ("business_date", "tax_office", "region_code",
                                                                 "line_count", "total_amount_fen")}
        record["line_no"] = row.get("line_no") or number
        record["kind"] = row.get("kind") or "PAYMENT"
        try:
            lines.append((line, _checked(TAX_STATEMENT_LINE, record, id_key, today)))
        except DomainError as e:
            report.bad.append({"line": line, "code": e.code, "message": mask_text(e.message)})
            continue
        total += SIGN[record["kind"]] * record["amount_fen"]
    header = {"statement_id": statement_id, "business_date": first.get("business_date"),
              "tax_office": first.get("tax_office"), "region_code": first.get("region_code"),
              # A bad line still counts: the statement then waits for it (INCOMPLETE), it is not
              # reconciled as if the bureau had not listed it.
              "line_count": declared["line_count"] if declared["line_count"] is not None else len(line_rows),
              "total_amount_fen": declared["total_amount_fen"] if declared["total_amount_fen"] is not None else total}
    try:
        header_value = _checked(TAX_STATEMENT_HEADER, header, id_key, today)
    except DomainError as e:
        already = {b["line"] for b in report.bad}
        for line, _row in agreed:
            if line not in already:
                report.bad.append({"line": line, "code": e.code, "message": mask_text(
                    f"对账单 {statement_id} 表头无效，整张对账单未发送 (the statement's header is invalid; nothing of "
                    f"it was sent): {e.message}")})
        return
    key = statement_id.encode()
    out = [(first_line, header_value)] + lines
    if report.dry_run:
        return
    for line, value in out:
        sink.send(report.topic, key=key, value=value)
        report.sent += 1
        report.sent_lines.append(line)


__all__ = ["statement_file"]
