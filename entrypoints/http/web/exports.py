"""The gap list (应保尽保名单) as a spreadsheet: CSV for Excel (UTF-8 with BOM) and XLSX.

One row per person not covered, in the order of the gap list (subsidised people first),
with Chinese headers by default and English ones on request (``lang``; the catalogue's ``[exports]``:
headers, sheet and file names, the 系统说明 sentence; codes in words from ``[web_labels]``). Data
(names, place names) is never translated. ID numbers are always masked here, whoever asks: a file leaves the
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

from entrypoints import catalogue
from entrypoints.catalogue import DEFAULT_LANG
from entrypoints.http.web import labels
from ledger.domain.places import NO_PLACE_NAMES, PlaceNames
from ledger.log import mask_id_number

SECTION = "exports"

#: (header key in ``[exports]``, column width in characters) of each column, in order.
COLUMN_KEYS: tuple[tuple[str, int], ...] = (
    ("gap_no", 6),
    ("gap_name", 10),
    ("gap_id_type", 12),
    ("gap_id_number", 22),
    ("gap_grid_code", 15),
    ("gap_place", 30),
    ("gap_reason", 28),
    ("gap_reason_code", 26),
    ("gap_subsidised", 13),
    ("gap_subsidy_category", 18),
    ("gap_outstanding", 15),
    ("gap_day", 12),
    ("gap_detail", 80),
)
MONEY_COLUMN = "gap_outstanding"


def say(key: str, lang: str = DEFAULT_LANG, **values: Any) -> str:
    """One text of the catalogue's ``[exports]`` in ``lang``."""
    return catalogue.text(SECTION, key, lang, **values)


def columns(lang: str = DEFAULT_LANG) -> tuple[tuple[str, int], ...]:
    """(header, width) of each column in ``lang``."""
    return tuple((say(key, lang), width) for key, width in COLUMN_KEYS)


def headers(lang: str = DEFAULT_LANG) -> tuple[str, ...]:
    return tuple(h for h, _ in columns(lang))


def sheet_title(lang: str = DEFAULT_LANG) -> str:
    return say("gaps_sheet", lang)


#: The Chinese ones, under their old names.
COLUMNS = columns()
HEADERS = headers()
SHEET_TITLE = sheet_title()
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def table_rows(gaps: Iterable[Mapping[str, Any]],
               identities: Mapping[str, tuple[str, str, str]],
               names: PlaceNames = NO_PLACE_NAMES, lang: str = DEFAULT_LANG) -> list[tuple[Any, ...]]:
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
            labels.id_type(id_type, lang),
            _text(masked),
            gap["grid_code"],
            labels.place(gap["grid_code"], names, _day(gap.get("day")), lang),
            labels.reason(gap["reason"], lang),
            gap["reason"],
            labels.yes_no(gap.get("subsidised"), lang),
            labels.subsidy_category(gap.get("subsidy_category"), lang) if gap.get("subsidised") else "",
            None if outstanding is None else Decimal(int(outstanding)) / 100,
            str(gap.get("day") or "")[:10],
            _text(detail(gap, lang)),
        ))
    return rows


def detail(gap: Mapping[str, Any], lang: str = DEFAULT_LANG) -> str:
    """The 系统说明 column: why the person is not counted as covered.

    In English, the domain's own sentence (``detail``: the entitlement decision, with its dates and
    sums). In Chinese, the catalogue's sentence for the gap's reason code, with the day, the year,
    the subsidised group and the amount outstanding from the line (the domain's sentence is English
    and the gap lines keep no finer code); a reason the catalogue does not know keeps ``detail``.
    """
    code = gap.get("reason") or ""
    if lang == "en" and gap.get("detail"):
        return str(gap["detail"])
    key = f"detail_{code}"
    if not catalogue.has(SECTION, key):
        return str(gap.get("detail") or "")
    day = str(gap.get("day") or "")[:10]
    text = say(key, lang, day=day, year=gap.get("year") or day[:4],
               category=labels.subsidy_category(gap.get("subsidy_category"), lang))
    outstanding = gap.get("outstanding_fen")
    if outstanding and code not in ("IN_WAITING_PERIOD",):
        text += say("detail_outstanding", lang, amount=labels.yuan(outstanding))
    return text


def _day(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def csv_bytes(rows: Iterable[tuple[Any, ...]], lang: str = DEFAULT_LANG) -> bytes:
    """CSV with a byte-order mark and CRLF line ends: what Excel on a Chinese Windows opens without garbling."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers(lang))
    for row in rows:
        writer.writerow(["" if v is None else (f"{v:.2f}" if isinstance(v, Decimal) else v) for v in row])
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def xlsx_bytes(rows: Iterable[tuple[Any, ...]], lang: str = DEFAULT_LANG) -> bytes:
    """An XLSX workbook of one sheet: bold frozen header row, column widths, filters, yuan as numbers."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = sheet_title(lang)
    sheet.append(headers(lang))
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for cell in sheet[1]:
        cell.font = bold
        cell.fill = fill
    money_col = [k for k, _ in COLUMN_KEYS].index(MONEY_COLUMN) + 1
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


def download_name(code: str, year: int, reason: str | None, extension: str, lang: str = DEFAULT_LANG) -> str:
    return f"{sheet_title(lang).replace(' ', '-')}_{code}_{year}{'_' + reason if reason else ''}.{extension}"


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name (``gaps_...``) and the name in the reader's language (RFC 6266 / 5987)."""
    ascii_name = "gaps_" + filename.split("_", 1)[1] if "_" in filename else "gaps"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


__all__ = ["COLUMNS", "COLUMN_KEYS", "CSV_MEDIA_TYPE", "HEADERS", "SHEET_TITLE", "XLSX_MEDIA_TYPE", "columns",
           "content_disposition", "csv_bytes", "detail", "download_name", "headers", "say", "sheet_title", "table_rows",
           "xlsx_bytes"]
