"""The arrears list (欠费名单) and the late-fee list (滞纳金清单) as spreadsheets: CSV (UTF-8 with BOM) and XLSX.

The same conventions as the gap list's export (:mod:`entrypoints.http.web.exports`): Chinese
headers, yuan with two decimals computed from integer fen (``Decimal``, never a float), ID
numbers always masked (a file leaves the system), text that a spreadsheet would take for a
formula prefixed with an apostrophe. The arrears workbook has two sheets: one row per
employer with its total (单位欠费合计) and one row per period owed (欠费明细).
"""
from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

from entrypoints.http.web import labels
from entrypoints.http.web.exports import _text
from ledger.domain.arrears import listed_because, rate_text

Columns = Sequence[tuple[str, int]]

ARREARS_COLUMNS: Columns = (
    ("序号", 6), ("类别", 10), ("单位编号", 22), ("姓名", 10), ("证件号码（已脱敏）", 22), ("参保地", 9),
    ("网格代码", 15), ("费款所属期", 11), ("应缴（元）", 13), ("缴费截止日", 12), ("已缴（元）", 13),
    ("欠缴（元）", 13), ("逾期天数", 9), ("滞纳金（元）", 13), ("状态", 11), ("滞纳金计算", 60),
)
EMPLOYER_COLUMNS: Columns = (
    ("序号", 6), ("单位编号", 22), ("参保地", 9), ("欠费月份", 30), ("涉及职工人数", 12), ("欠缴合计（元）", 15),
    ("滞纳金合计（元）", 15), ("合计（元）", 15), ("最长逾期天数", 12),
)
FEE_COLUMNS: Columns = (
    ("序号", 6), ("单位编号", 22), ("参保地", 9), ("网格代码", 15), ("姓名", 10), ("证件号码（已脱敏）", 22),
    ("费款所属期", 11), ("本金（元）", 13), ("缴费截止日", 12), ("计至", 12), ("天数", 7), ("日费率", 8),
    ("应计滞纳金（元）", 15), ("已缴滞纳金（元）", 15), ("减免（元）", 12), ("尚欠滞纳金（元）", 15), ("状态", 10),
    ("计算过程", 60), ("减免理由", 30), ("审批人", 12),
)
MONEY = "（元）"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _yuan(fen: Any) -> Decimal | None:
    return None if fen is None else Decimal(int(fen)) / 100


def arrears_rows(rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """One line per arrears row (``GET /arrears``' rows, ID numbers masked by the caller)."""
    out = []
    for n, r in enumerate(rows, start=1):
        out.append((
            n, labels.ARREARS_KINDS.get(r["kind"], r["kind"]), _text(r.get("employer_id")), _text(r.get("name")),
            _text(r.get("id_number") or r.get("masked_id")), r["region_code"], r.get("grid_code") or "", r["period"],
            _yuan(r["due_fen"]), str(r["due_date"]), _yuan(r["paid_fen"]), _yuan(r["outstanding_fen"]),
            r["days_overdue"], _yuan(r["late_fee_fen"]), listed_because(r), _text(r.get("late_fee_arithmetic") or ""),
        ))
    return out


def employer_rows(totals: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """One line per employer (``projections.arrears.employer_totals``)."""
    return [(n, _text(t["employer_id"]), t["region_code"], "、".join(t["months"]), t["persons"],
             _yuan(t["outstanding_fen"]), _yuan(t["late_fee_fen"]), _yuan(t["total_fen"]), t["days_overdue"])
            for n, t in enumerate(totals, start=1)]


def fee_rows(rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """One line per fee row (``GET /fees``' rows, ID numbers masked by the caller), the arithmetic spelt out."""
    out = []
    for n, r in enumerate(rows, start=1):
        out.append((
            n, _text(r["employer_id"]), r["region_code"], r.get("grid_code") or "", _text(r.get("name")),
            _text(r.get("id_number") or r.get("masked_id")), r["period"], _yuan(r["principal_fen"]),
            str(r["due_date"]), str(r["until"]), r["days"], rate_text(r["rate_ppm_per_day"]) + "/天",
            _yuan(r["accrued_fen"]), _yuan(r["fee_paid_fen"]), _yuan(r["waived_fen"]), _yuan(r["owed_fen"]),
            r["fee_status_label"], _text(r["arithmetic"]), _text(r.get("waiver_reason") or ""),
            _text(r.get("waiver_approver") or ""),
        ))
    return out


def csv_bytes(columns: Columns, rows: Iterable[tuple[Any, ...]]) -> bytes:
    """CSV with a byte-order mark and CRLF line ends (Excel on a Chinese Windows opens it without garbling)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([h for h, _ in columns])
    for row in rows:
        writer.writerow(["" if v is None else (f"{v:.2f}" if isinstance(v, Decimal) else v) for v in row])
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def xlsx_bytes(sheets: Sequence[tuple[str, Columns, list[tuple[Any, ...]]]]) -> bytes:
    """An XLSX workbook, one sheet per (title, columns, rows): bold frozen header, widths, filters, yuan as numbers."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for title, columns, rows in sheets:
        sheet = book.create_sheet(title)
        sheet.append([h for h, _ in columns])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor="DDEBF7")
        money = [i for i, (h, _) in enumerate(columns, start=1) if MONEY in h]
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
                 by_employer: bool = False) -> bytes:
    """The arrears list as CSV (rows, or the employer totals with ``by_employer``) or XLSX (both sheets)."""
    if extension == "csv":
        return (csv_bytes(EMPLOYER_COLUMNS, employer_rows(totals)) if by_employer
                else csv_bytes(ARREARS_COLUMNS, arrears_rows(rows)))
    return xlsx_bytes([("单位欠费合计", EMPLOYER_COLUMNS, employer_rows(totals)),
                       ("欠费明细", ARREARS_COLUMNS, arrears_rows(rows))])


def fees_file(rows: list[dict[str, Any]], extension: str) -> bytes:
    """The fee list as CSV or XLSX (one sheet 滞纳金清单)."""
    lines = fee_rows(rows)
    return csv_bytes(FEE_COLUMNS, lines) if extension == "csv" else xlsx_bytes([("滞纳金清单", FEE_COLUMNS, lines)])


def media_type(extension: str) -> str:
    return CSV_MEDIA_TYPE if extension == "csv" else XLSX_MEDIA_TYPE


__all__ = ["ARREARS_COLUMNS", "EMPLOYER_COLUMNS", "FEE_COLUMNS", "arrears_file", "csv_bytes", "fees_file",
           "media_type", "xlsx_bytes"]
