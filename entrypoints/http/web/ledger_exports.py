"""The arrears list (欠费名单) and the late-fee list (滞纳金清单) as spreadsheets: CSV (UTF-8 with BOM) and XLSX.

The same conventions as the gap list's export (:mod:`entrypoints.http.web.exports`): Chinese
headers by default, English with ``lang="en"`` (the catalogue's ``[exports]``: headers, sheet and
file names, the late-fee arithmetic; codes in words from ``[web_labels]``), yuan with two decimals
computed from integer fen (``Decimal``, never a float), ID numbers always masked (a file leaves
the system), text that a spreadsheet would take for a formula prefixed with an apostrophe. Data
(names, employer ids, waiver reasons) is never translated. The arrears workbook has two sheets:
one row per employer with its total (单位欠费合计) and one row per period owed (欠费明细).
"""
from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

from entrypoints.catalogue import DEFAULT_LANG
from entrypoints.http.web import labels
from entrypoints.http.web.exports import _text, say
from ledger.domain.arrears import rate_text, yuan

#: (header key in ``[exports]``, column width in characters) of each column, in order.
Columns = Sequence[tuple[str, int]]

ARREARS_COLUMNS: Columns = (
    ("col_no", 6), ("col_kind", 10), ("col_employer", 22), ("col_name", 10), ("col_id_number", 22), ("col_region", 9),
    ("col_grid", 15), ("col_period", 11), ("col_due", 13), ("col_due_date", 12), ("col_paid", 13),
    ("col_outstanding", 13), ("col_days_overdue", 9), ("col_late_fee", 13), ("col_status", 11),
    ("col_late_fee_arithmetic", 60),
)
EMPLOYER_COLUMNS: Columns = (
    ("col_no", 6), ("col_employer", 22), ("col_region", 9), ("col_months", 30), ("col_persons", 12),
    ("col_outstanding_total", 15), ("col_late_fee_total", 15), ("col_total", 15), ("col_max_days", 12),
)
FEE_COLUMNS: Columns = (
    ("col_no", 6), ("col_employer", 22), ("col_region", 9), ("col_grid", 15), ("col_name", 10), ("col_id_number", 22),
    ("col_period", 11), ("col_principal", 13), ("col_due_date", 12), ("col_until", 12), ("col_days", 7),
    ("col_rate", 8), ("col_accrued", 15), ("col_fee_paid", 15), ("col_waived", 12), ("col_owed", 15),
    ("col_status", 10), ("col_arithmetic", 60), ("col_waiver_reason", 30), ("col_approver", 12),
)
#: The columns holding yuan (shown with two decimals in a workbook).
MONEY_COLUMNS = frozenset({"col_due", "col_paid", "col_outstanding", "col_late_fee", "col_outstanding_total",
                           "col_late_fee_total", "col_total", "col_principal", "col_accrued", "col_fee_paid",
                           "col_waived", "col_owed"})
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def headers(columns: Columns, lang: str = DEFAULT_LANG) -> list[str]:
    return [say(key, lang) for key, _ in columns]


def _yuan(fen: Any) -> Decimal | None:
    return None if fen is None else Decimal(int(fen)) / 100


def fee_arithmetic(terms: Mapping[str, Any], lang: str = DEFAULT_LANG) -> str:
    """A late fee's arithmetic in words, from its figures (a fee row of ``GET /fees``, or an arrears row's
    ``late_fee_terms``): ``10,000.00 元 × 60 天 × 0.05%/天 = 300.00 元``, then paid, owed or waived.
    The Chinese is the domain's own sentence (:func:`ledger.domain.arrears.fee_row`), word for word."""
    rate = rate_text(terms["rate_ppm_per_day"])
    principal, accrued = yuan(terms["principal_fen"]), yuan(terms["accrued_fen"])
    if terms["fen_days"] == terms["principal_fen"] * terms["days"]:
        text = say("arith", lang, principal=principal, days=terms["days"], rate=rate, accrued=accrued)
    else:
        text = say("arith_partial", lang, fen_days=yuan(terms["fen_days"]), rate=rate, accrued=accrued,
                   principal=principal)
    status = terms.get("fee_status")
    if status == "WAIVED":
        text += say("arith_waived", lang)
    elif status == "PAID":
        text += say("arith_paid", lang, paid=yuan(terms["fee_paid_fen"]))
    elif status == "PART_PAID":
        text += say("arith_part_paid", lang, paid=yuan(terms["fee_paid_fen"]), owed=yuan(terms["owed_fen"]))
    return text


def _arrears_arithmetic(row: Mapping[str, Any], lang: str) -> str:
    terms = row.get("late_fee_terms")
    if terms:
        return fee_arithmetic(terms, lang)
    return row.get("late_fee_arithmetic") or ""


def arrears_rows(rows: Iterable[Mapping[str, Any]], lang: str = DEFAULT_LANG) -> list[tuple[Any, ...]]:
    """One line per arrears row (``GET /arrears``' rows, ID numbers masked by the caller)."""
    out = []
    for n, r in enumerate(rows, start=1):
        out.append((
            n, labels.arrears_kind(r["kind"], lang), _text(r.get("employer_id")), _text(r.get("name")),
            _text(r.get("id_number") or r.get("masked_id")), r["region_code"], r.get("grid_code") or "", r["period"],
            _yuan(r["due_fen"]), str(r["due_date"]), _yuan(r["paid_fen"]), _yuan(r["outstanding_fen"]),
            r["days_overdue"], _yuan(r["late_fee_fen"]), labels.listed_because(dict(r), lang),
            _text(_arrears_arithmetic(r, lang)),
        ))
    return out


def employer_rows(totals: Iterable[Mapping[str, Any]], lang: str = DEFAULT_LANG) -> list[tuple[Any, ...]]:
    """One line per employer (``projections.arrears.employer_totals``)."""
    return [(n, _text(t["employer_id"]), t["region_code"], say("month_sep", lang).join(t["months"]), t["persons"],
             _yuan(t["outstanding_fen"]), _yuan(t["late_fee_fen"]), _yuan(t["total_fen"]), t["days_overdue"])
            for n, t in enumerate(totals, start=1)]


def fee_rows(rows: Iterable[Mapping[str, Any]], lang: str = DEFAULT_LANG) -> list[tuple[Any, ...]]:
    """One line per fee row (``GET /fees``' rows, ID numbers masked by the caller), the arithmetic spelt out."""
    out = []
    for n, r in enumerate(rows, start=1):
        out.append((
            n, _text(r["employer_id"]), r["region_code"], r.get("grid_code") or "", _text(r.get("name")),
            _text(r.get("id_number") or r.get("masked_id")), r["period"], _yuan(r["principal_fen"]),
            str(r["due_date"]), str(r["until"]), r["days"], say("per_day", lang, rate=rate_text(r["rate_ppm_per_day"])),
            _yuan(r["accrued_fen"]), _yuan(r["fee_paid_fen"]), _yuan(r["waived_fen"]), _yuan(r["owed_fen"]),
            labels.fee_status(r.get("fee_status"), lang) or r.get("fee_status_label"),
            _text(fee_arithmetic(r, lang) if "fen_days" in r else r["arithmetic"]),
            _text(r.get("waiver_reason") or ""), _text(r.get("waiver_approver") or ""),
        ))
    return out


def csv_bytes(columns: Columns, rows: Iterable[tuple[Any, ...]], lang: str = DEFAULT_LANG) -> bytes:
    """CSV with a byte-order mark and CRLF line ends (Excel on a Chinese Windows opens it without garbling)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers(columns, lang))
    for row in rows:
        writer.writerow(["" if v is None else (f"{v:.2f}" if isinstance(v, Decimal) else v) for v in row])
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def xlsx_bytes(sheets: Sequence[tuple[str, Columns, list[tuple[Any, ...]]]], lang: str = DEFAULT_LANG) -> bytes:
    """An XLSX workbook, one sheet per (title, columns, rows): bold frozen header, widths, filters, yuan as numbers."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for title, columns, rows in sheets:
        sheet = book.create_sheet(title)
        sheet.append(headers(columns, lang))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor="DDEBF7")
        money = [i for i, (key, _) in enumerate(columns, start=1) if key in MONEY_COLUMNS]
        for row in rows:
            sheet.append(list(row))
            for col in money:
                sheet.cell(row=sheet.max_row, column=col).number_format = "0.00"
        for i, (_, width) in enumerate(columns, start=1):
            sheet.column_dimensions[get_column_letter(i)].width = width
        sheet.freeze_panes = "A2"
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(sheet.max_row, 1)}"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def arrears_file(rows: list[dict[str, Any]], totals: list[dict[str, Any]], extension: str,
                 by_employer: bool = False, lang: str = DEFAULT_LANG) -> bytes:
    """The arrears list as CSV (rows, or the employer totals with ``by_employer``) or XLSX (both sheets)."""
    if extension == "csv":
        return (csv_bytes(EMPLOYER_COLUMNS, employer_rows(totals, lang), lang) if by_employer
                else csv_bytes(ARREARS_COLUMNS, arrears_rows(rows, lang), lang))
    return xlsx_bytes([(say("sheet_employers", lang), EMPLOYER_COLUMNS, employer_rows(totals, lang)),
                       (say("sheet_arrears", lang), ARREARS_COLUMNS, arrears_rows(rows, lang))], lang)


def fees_file(rows: list[dict[str, Any]], extension: str, lang: str = DEFAULT_LANG) -> bytes:
    """The fee list as CSV or XLSX (one sheet 滞纳金清单)."""
    lines = fee_rows(rows, lang)
    return (csv_bytes(FEE_COLUMNS, lines, lang) if extension == "csv"
            else xlsx_bytes([(say("sheet_fees", lang), FEE_COLUMNS, lines)], lang))


def file_name(kind: str, place: str, as_of: Any, extension: str, by_employer: bool = False,
              lang: str = DEFAULT_LANG) -> str:
    """``欠费名单_610902_2026-03-31.xlsx`` (``kind``: ``arrears`` or ``fees``), English with ``lang="en"``."""
    suffix = f"_{say('file_by_employer', lang)}" if by_employer else ""
    return f"{say('file_' + kind, lang)}_{place}_{as_of}{suffix}.{extension}"


def media_type(extension: str) -> str:
    return CSV_MEDIA_TYPE if extension == "csv" else XLSX_MEDIA_TYPE


__all__ = ["ARREARS_COLUMNS", "EMPLOYER_COLUMNS", "FEE_COLUMNS", "MONEY_COLUMNS", "arrears_file", "csv_bytes",
           "fee_arithmetic", "fees_file", "file_name", "headers", "media_type", "xlsx_bytes"]
