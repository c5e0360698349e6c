"""The gap list (应保尽保名单) as a spreadsheet: CSV for Excel (UTF-8 with BOM) and XLSX.

One row per person not covered, in the order of the gap list (subsidised people first),
with Chinese headers. ID numbers are always masked here, whoever asks: a file leaves the
system and is passed around, so it carries no more than the grid worker's page shows
(个人信息保护法). Money is yuan with two decimals, computed from integer fen.

A text cell that a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``) gets a
leading apostrophe, so a crafted name cannot run anything on the reader's machine.
"""
from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any, Iterable, Mapping
from urllib.parse import quote

from entrypoints.http.web import labels
from ledger.domain.places import NO_PLACE_NAMES, PlaceNames
from ledger.log import mask_id_number

#: (header, column width in characters) of each column, in order.
COLUMNS: tuple[tuple[str, int], ...] = (
    ("序号", 6),
    ("姓名", 10),
    ("证件类型", 12),
    ("证件号码（已脱敏）", 22),
    ("网格代码", 15),
    ("所在乡镇及村（社区）", 30),
    ("未参保原因", 28),
    ("原因代码", 26),
    ("资助参保对象", 13),
    ("资助类别", 18),
    ("欠缴金额（元）", 15),
    ("统计日期", 12),
    ("系统说明", 80),
)
HEADERS = tuple(h for h, _ in COLUMNS)
SHEET_TITLE = "应保尽保名单"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def table_rows(gaps: Iterable[Mapping[str, Any]],
               identities: Mapping[str, tuple[str, str, str]],
               names: PlaceNames = NO_PLACE_NAMES) -> list[tuple[Any, ...]]:
    """The spreadsheet rows of gap lines (``ReadQueries.gaps``) with who they are (``ReadQueries.identities``)
    and where (the places table's names on the line's evaluation day, else the code's kind and number).

    Values are text except the row number (int) and the outstanding amount (``Decimal``
    yuan, or None when the ledger assessed nothing).
    """
    rows = []
    for n, gap in enumerate(gaps, start=1):
        id_type, id_number, name = identities.get(gap["person_id"], (None, None, None))
        masked = mask_id_number(id_number) if id_number else gap.get("masked_id")
        outstanding = gap.get("outstanding_fen")
        rows.append((
            n,
            _text(name),
            labels.id_type(id_type),
            _text(masked),
            gap["grid_code"],
            labels.place(gap["grid_code"], names, _day(gap.get("day"))),
            labels.reason(gap["reason"]),
            gap["reason"],
            "是" if gap.get("subsidised") else "否",
            labels.subsidy_category(gap.get("subsidy_category")) if gap.get("subsidised") else "",
            None if outstanding is None else Decimal(int(outstanding)) / 100,
            str(gap.get("day") or "")[:10],
            _text(gap.get("detail")),
        ))
    return rows


def _day(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def csv_bytes(rows: Iterable[tuple[Any, ...]]) -> bytes:
    """CSV with a byte-order mark and CRLF line ends: what Excel on a Chinese Windows opens without garbling."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADERS)
    for row in rows:
        writer.writerow(["" if v is None else (f"{v:.2f}" if isinstance(v, Decimal) else v) for v in row])
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def xlsx_bytes(rows: Iterable[tuple[Any, ...]]) -> bytes:
    """An XLSX workbook of one sheet: bold frozen header row, column widths, filters, yuan as numbers."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = SHEET_TITLE
    sheet.append(HEADERS)
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for cell in sheet[1]:
        cell.font = bold
        cell.fill = fill
    money_col = HEADERS.index("欠缴金额（元）") + 1
    for row in rows:
        sheet.append(row)
        sheet.cell(row=sheet.max_row, column=money_col).number_format = "0.00"
    for i, (_, width) in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{sheet.max_row}"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def download_name(code: str, year: int, reason: str | None, extension: str) -> str:
    return f"{SHEET_TITLE}_{code}_{year}{'_' + reason if reason else ''}.{extension}"


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the Chinese one (RFC 6266 / 5987)."""
    ascii_name = "gaps" + filename[len(SHEET_TITLE):]
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


__all__ = ["COLUMNS", "CSV_MEDIA_TYPE", "HEADERS", "SHEET_TITLE", "XLSX_MEDIA_TYPE", "content_disposition",
           "csv_bytes", "download_name", "table_rows", "xlsx_bytes"]
