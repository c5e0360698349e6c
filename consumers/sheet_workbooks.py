"""Workbooks the importer hands out: the template (导入模板) and the error workbook (错误行).

Both are written from :data:`consumers.sheet_columns.COLUMNS`, so what the 填写说明 sheet says is
what the importer reads. The error workbook gives back the refused rows as they were sent, with
a 错误说明 column listing every problem of the row, ready to fix and send again. Two things are
never handed back as they came:

* a text cell that a spreadsheet would run as a formula (``=HYPERLINK(...)``, ``+``, ``-``,
  ``@``, tab, carriage return at the start) is written as text with a leading ``'``;
* an ID number is masked (``6109**********0128``) unless the caller may read that person in
  full, the rule of :mod:`entrypoints.http.access` (a clerk of the row's region): ``reveal``;
  so is the row's 联系电话 (``138****0001``) then.
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any, Callable, Iterable

from consumers.sheet_columns import COLUMNS, IGNORED_HEADERS, Column
from ledger.domain.places import PlaceNames
from events.ledger_events import mask_phone
from ledger.log import mask_id_number

ERRORS_HEADER = "错误说明"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A cell value a spreadsheet will not run: text starting like a formula gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def example_places(names: PlaceNames, region: str, day: date) -> tuple[str, str] | None:
    """A township and one of its villages in ``region``, both named on ``day`` (the template's example), or None."""
    named = sorted((n.code, n.name) for n in names if n.code.startswith(region) and n.valid_on(day))
    townships = {code: name for code, name in named if len(code) == 9}
    return next(((townships[code[:9]], name) for code, name in named if len(code) == 12 and code[:9] in townships),
                None)


def _example(column: Column, region: str | None, places: tuple[str, str] | None) -> str:
    if region and column.name == "region_code":
        return region
    if column.name in ("township", "grid_code") and (places is not None or region):
        # The places table's names for the clerk's county; none known there: left for the clerk to fill.
        return "" if places is None else places[0 if column.name == "township" else 1]
    return column.example


def _required_text(column: Column) -> str:
    return "必填" + (f"（{column.note}）" if column.note else "") if column.required else (
        f"选填（{column.note}）" if column.note else "选填")


def template_rows(region: str | None = None, places: tuple[str, str] | None = None) -> tuple[list[str], list[str]]:
    """The template's header and its one example row (``region``: the clerk's own, when they have one;
    ``places``: a township and village named in the places table, :func:`example_places`)."""
    return [c.header for c in COLUMNS], [_example(c, region, places) for c in COLUMNS]


def template_csv(region: str | None = None, places: tuple[str, str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(template_rows(region, places))
    return out.getvalue().encode("utf-8-sig")  # the BOM: Excel on Windows then reads UTF-8


def _book() -> Any:
    from openpyxl import Workbook

    return Workbook()


def _write(sheet: Any, row: int, values: Iterable[Any]) -> None:
    for col, value in enumerate(values, start=1):
        cell = sheet.cell(row=row, column=col, value=neutralise(value))
        if isinstance(cell.value, str):
            cell.data_type = "s"  # never a formula, whatever the text
        elif isinstance(value, (date, datetime)):
            cell.number_format = "yyyy-mm-dd"


def _text_column(sheet: Any, index: int, rows: int) -> None:
    """Format an ID-number column as text, so Excel keeps all 18 characters when the clerk types."""
    from openpyxl.utils import get_column_letter

    letter = get_column_letter(index)
    sheet.column_dimensions[letter].width = 22
    for r in range(1, rows + 1):
        sheet[f"{letter}{r}"].number_format = "@"


def _instructions(book: Any) -> None:
    sheet = book.create_sheet("填写说明")
    _write(sheet, 1, ["第 1 行为表头，请勿改动列名（也可用“也可用的列名”中的写法）；第 2 行为示例，导入前请删除或改为真实数据。"])
    _write(sheet, 2, ["以下列可保留，导入时忽略并提示：" + "、".join(IGNORED_HEADERS)])
    _write(sheet, 4, ["列名", "是否必填", "填写说明", "可用写法", "也可用的列名", "示例", "系统字段"])
    for n, c in enumerate(COLUMNS, start=5):
        values = "、".join(f"{k} → {v}" for k, v in c.values.items())
        _write(sheet, n, [c.header, _required_text(c), c.accepted, values, "、".join(c.synonyms), c.example, c.name])
    for letter, width in zip("ABCDEFG", (14, 30, 60, 50, 40, 22, 20)):
        sheet.column_dimensions[letter].width = width


def _save(book: Any) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def template_xlsx(region: str | None = None, places: tuple[str, str] | None = None) -> bytes:
    """The import template: 登记表 (Chinese headers, one example row) and 填写说明 (each column)."""
    book = _book()
    sheet = book.active
    sheet.title = "登记表"
    header, example = template_rows(region, places)
    _write(sheet, 1, header)
    _write(sheet, 2, example)
    for i, c in enumerate(COLUMNS, start=1):
        if c.name in ("id_number", "phone"):  # text: Excel would turn a long number into 1.38E+10
            _text_column(sheet, i, 200)
        else:
            sheet.column_dimensions[sheet.cell(row=1, column=i).column_letter].width = max(10, 2 * len(c.header) + 4)
    sheet.freeze_panes = "A2"
    _instructions(book)
    return _save(book)


def error_workbook(header: list[Any], columns: list[str | None], rows: list[tuple[int, list[Any]]],
                   results: list[dict[str, Any]], *, reveal: Callable[[str | None], bool],
                   default_region: str | None = None) -> bytes:
    """The refused rows, as sent, with 错误说明 (every problem of the row); see the module docstring.

    ``header``/``rows``: the sheet read; ``columns``: the column of each header cell;
    ``results``: :func:`consumers.spreadsheets.import_sheet`'s; ``reveal(region)``: whether the
    caller may read full ID numbers of a person of that region.
    """
    refused = {r["line"]: r for r in results if r["status"] == "error"}
    id_at = columns.index("id_number") if "id_number" in columns else None
    region_at = columns.index("region_code") if "region_code" in columns else None
    phone_at = columns.index("phone") if "phone" in columns else None
    width = len(columns)
    book = _book()
    sheet = book.active
    sheet.title = "错误行"
    _write(sheet, 1, ["" if h is None else str(h) for h in header[:width]] + [ERRORS_HEADER])
    out = 1
    for line, cells in rows:
        result = refused.get(line)
        if result is None:
            continue
        values = list(cells[:width]) + [None] * (width - len(cells[:width]))
        masked = ""
        if id_at is not None and values[id_at] not in (None, ""):
            region = str(values[region_at]).strip() if region_at is not None and values[region_at] else default_region
            if not reveal(region):
                values[id_at] = mask_id_number(str(values[id_at]))
                masked = "；证件号码已遮蔽（你无权查看该参保地人员的完整号码），请按原表填写完整"
                if phone_at is not None and values[phone_at] not in (None, ""):
                    values[phone_at] = mask_phone(str(values[phone_at]))
        problems = result.get("problems") or [{"code": result["code"], "column": None, "message": result["message"]}]
        text = f"第{line}行：" + "；".join(f"{p['column'] + ' ' if p['column'] else ''}[{p['code']}] {p['message']}"
                                        for p in problems) + masked
        out += 1
        _write(sheet, out, values + [text])
    if id_at is not None:
        _text_column(sheet, id_at + 1, out)
    sheet.column_dimensions[sheet.cell(row=1, column=width + 1).column_letter].width = 80
    sheet.freeze_panes = "A2"
    _instructions(book)
    return _save(book)
