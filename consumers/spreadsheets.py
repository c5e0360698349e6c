"""Batch import of the registration spreadsheet agencies upload (批量参保登记): CSV or XLSX.

One row per person to register and enroll. The columns, their synonyms (身份证号码 / 公民身份号码
-> 证件号码, 参保类别 -> 险种, 手机号码 -> 联系电话, ...) and their accepted values are one table,
:mod:`consumers.sheet_columns`; the template (``GET /imports/template.xlsx``, ``ledger import
--template``) and its 填写说明 sheet are written from it (:mod:`consumers.sheet_workbooks`).

A row with 资助身份 also grants that status after enrolling, through the civil-affairs feed's
own command (``Ledger.apply_status``), keyed per person by the certificate number like
``ledger clerk grant-status``; the status columns are checked before anything of the row is
written.

* A header missing a required column, or naming one column twice, stops the import before
  anything is written (``IMPORT_COLUMNS``, listing the columns). Unknown columns (序号, 性别,
  民族, ...) are ignored with a notice (``COLUMN_IGNORED``). 参保地 may be left out: it
  defaults to the importing clerk's region when they have exactly one, else to the grid code's.
* Each bad row is reported by its row number (the header is row 1) with every problem it has
  (code, column, Chinese message); the good rows are imported. The refused rows come back as
  an error workbook with a 错误说明 column (:func:`consumers.sheet_workbooks.error_workbook`).
* 所属乡镇 / 所属村（社区） are codes (9 / 12 digits) or names, read through the places table on the
  row's 参保日期 within its 参保地 (``IMPORT_PLACE_UNKNOWN`` / ``_AMBIGUOUS`` / ``_MISMATCH``); 联系电话 is a
  mainland mobile or a fixed line with its area code (``IMPORT_PHONE_INVALID``). The village and the
  phone are recorded as the residents feed records them (:mod:`consumers.sheet_residence`).
* Importing the same file again imports nothing twice: each row's events carry
  ``record_key = "<file sha256>:<row>"`` in their provenance, and a row whose key is
  already in the person's history is reported ``already_imported``; a person already
  enrolled in that scheme and region is reported ``already_enrolled`` (not an error).

CSV files are read as UTF-8 (with or without BOM), else GB18030 (a superset of GBK,
what Excel on a Chinese Windows saves).
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
import time
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ledger.domain.errors import Conflict, DomainError
from ledger.domain.places import validate_region_code
from infra.limits import IMPORT_SHEET, MIB, SheetLimits
from ledger.log import get_logger, mask_id_number
from ledger.inbound_records import Provenance, StatusRecord, clerk_status_record_id
from ledger.domain.vocabulary import SubsidyCategory, parse_code
from ledger.policy import rules
from ledger.policy.book import default_value_limits
from consumers.sheet_columns import (BY_NAME, COLUMNS, REQUIRED, closest, column_of, expected_columns_text,
                                     is_known_harmless, label, value_of)
from ledger.domain.identity import parse_identity
from ledger.domain.places import parse_grid_code
from consumers.sheet_residence import SheetResidence

log = get_logger("consumers.spreadsheets")

#: The subsidised-status columns that must be filled when 资助身份 is.
STATUS_REQUIRED = ("status_valid_from", "status_department", "status_document_no")
_YES = {"是", "Y", "YES", "TRUE", "1"}
_NO = {"", "否", "N", "NO", "FALSE", "0"}
_DATE_FORMATS = (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"), re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"),
                 re.compile(r"(\d{4})(\d{2})(\d{2})"))


class ImportFileError(DomainError):
    """The file as a whole cannot be imported (format, encoding, columns); nothing was written."""


@dataclass(frozen=True)
class Sheet:
    format: str  # "csv" | "xlsx"
    encoding: str | None
    header: list[str]
    rows: list[tuple[int, list[Any]]]  # (row number, cells); the header is row 1


# ---------------------------------------------------------------------------- reading the file
class FileTooLarge(ImportFileError):
    """The file is bigger than its limits (bytes, inflated size, rows): nothing was read or written."""

    http_status = 413


def _too_large(limits: SheetLimits, size: int) -> FileTooLarge:
    return FileTooLarge("FILE_TOO_LARGE", f"文件超过 {limits.max_bytes // MIB} MB 上限，未导入；请拆分后重发 "
                        f"(the file has {size:,} bytes; at most {limits.max_bytes:,} are read)",
                        size_bytes=size, limit_bytes=limits.max_bytes)


def _bomb(reason: str, **details: Any) -> FileTooLarge:
    return FileTooLarge("FILE_BOMB", f"该 XLSX 文件解压后过大或压缩比异常，未打开；请另存为普通的 .xlsx 或 CSV 后重发 ({reason})",
                        **details)


def _too_many_rows(limits: SheetLimits, blank_too: bool = False) -> FileTooLarge:
    what = (f"it reaches past line {limits.max_lines:,}, blank lines included" if blank_too
            else f"more than {limits.max_rows:,} rows")
    return FileTooLarge("FILE_TOO_MANY_ROWS", f"文件超过 {limits.max_rows:,} 行上限，未导入；请删除空行或拆分后重发 "
                        f"({what}; split the file)", limit_rows=limits.max_rows, limit_lines=limits.max_lines)


class _Clock:
    """The reading-time limit, looked at every few hundred rows."""

    def __init__(self, limits: SheetLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_seconds

    def check(self, rows: int) -> None:
        if rows % 256 == 0 and time.monotonic() > self.deadline:
            raise ImportFileError("FILE_TOO_SLOW", f"读取文件超过 {self.limits.max_seconds:g} 秒，已停止，未导入；请拆分后重发 "
                                  f"(reading stopped after {rows:,} rows)", limit_seconds=self.limits.max_seconds)


def _decode(data: bytes) -> tuple[str, str]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding), "utf-8" if encoding == "utf-8-sig" else encoding
        except UnicodeDecodeError:
            continue
    raise ImportFileError("IMPORT_ENCODING", "the CSV file is neither UTF-8 nor GBK text; save it as CSV UTF-8")


def _lines(text: str, limits: SheetLimits) -> Iterator[str]:
    """Physical lines, none longer than the limit (a line of a million commas is a million cells)."""
    for line in io.StringIO(text, newline=""):
        if len(line) > limits.max_line_chars:
            raise FileTooLarge("FILE_LINE_TOO_LONG", f"文件中有一行超过 {limits.max_line_chars:,} 个字符，未导入 "
                               f"(a line is longer than {limits.max_line_chars:,} characters)",
                               limit_chars=limits.max_line_chars)
        yield line


def read_csv(data: bytes, limits: SheetLimits = IMPORT_SHEET) -> Sheet:
    if len(data) > limits.max_bytes:
        raise _too_large(limits, len(data))
    text, encoding = _decode(data)
    end = text.find("\n")
    first = text if end < 0 else text[:end]  # not split(): that would copy the whole file once more
    delimiter = "\t" if "\t" in first and "," not in first else ","
    clock = _Clock(limits)
    header: list[str] | None = None
    rows: list[tuple[int, list[Any]]] = []
    try:
        for n, record in enumerate(csv.reader(_lines(text, limits), delimiter=delimiter), start=1):
            clock.check(n)
            if n > limits.max_lines:
                raise _too_many_rows(limits, blank_too=True)
            if header is None:
                header = record
            elif any(record):  # blank lines are not kept: a file of newlines must not become a list of lists
                if len(rows) >= limits.max_rows:
                    raise _too_many_rows(limits)
                rows.append((n, record[:limits.max_columns + 1]))
    except csv.Error as exc:
        raise ImportFileError("IMPORT_FORMAT", f"the CSV file cannot be read ({exc}); save it again as CSV") from None
    if header is None:
        raise ImportFileError("IMPORT_EMPTY", "the file is empty; the first row must be the column headers")
    _check_width(header, limits)
    return Sheet("csv", encoding, header, rows)


def _check_width(header: list[Any], limits: SheetLimits) -> None:
    if len(header) > limits.max_columns and any(str(c or "").strip() for c in header[limits.max_columns:]):
        raise FileTooLarge("FILE_TOO_MANY_COLUMNS", f"表头超过 {limits.max_columns} 列，未导入 "
                           f"(the header has more than {limits.max_columns} columns)", limit_columns=limits.max_columns)


def check_xlsx_container(data: bytes, limits: SheetLimits = IMPORT_SHEET) -> None:
    """Refuse a zip bomb from the zip's own directory, before anything is inflated (FILE_BOMB).

    The declared sizes can be trusted this far: Python's zipfile (which openpyxl reads
    through) never inflates a member past its declared size; a member that would is damaged.
    """
    if len(data) > limits.max_bytes:
        raise _too_large(limits, len(data))
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise ImportFileError("IMPORT_FORMAT", f"the file cannot be read as XLSX ({type(exc).__name__}); "
                              "save it again as .xlsx or CSV") from None
    if len(infos) > limits.xlsx_max_members:
        raise _bomb(f"{len(infos):,} members in the zip, at most {limits.xlsx_max_members}", members=len(infos),
                    limit_members=limits.xlsx_max_members)
    inflated = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if inflated > limits.xlsx_max_inflated:
        raise _bomb(f"{inflated:,} bytes once inflated, at most {limits.xlsx_max_inflated:,}", inflated_bytes=inflated,
                    limit_inflated_bytes=limits.xlsx_max_inflated)
    for info in infos:
        if info.file_size >= limits.xlsx_ratio_from and info.file_size > limits.xlsx_max_ratio * max(info.compress_size, 1):
            raise _bomb(f"{info.filename} inflates {info.file_size // max(info.compress_size, 1):,} times, "
                        f"at most {limits.xlsx_max_ratio}", member=info.filename, limit_ratio=limits.xlsx_max_ratio)
    if inflated >= limits.xlsx_ratio_from and inflated > limits.xlsx_max_ratio * max(packed, 1):
        raise _bomb(f"the workbook inflates {inflated // max(packed, 1):,} times, at most {limits.xlsx_max_ratio}",
                    limit_ratio=limits.xlsx_max_ratio)


def read_xlsx(data: bytes, limits: SheetLimits = IMPORT_SHEET) -> Sheet:
    from openpyxl import load_workbook

    check_xlsx_container(data, limits)
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # zipfile / XML errors: the file is damaged or not XLSX
        raise ImportFileError("IMPORT_FORMAT", f"the file cannot be read as XLSX ({type(exc).__name__}); "
                              "save it again as .xlsx or CSV") from None
    clock = _Clock(limits)
    header: list[Any] | None = None
    rows: list[tuple[int, list[Any]]] = []
    try:
        # max_col: a sheet can declare 16,384 columns and a million rows in a few bytes
        for n, cells in enumerate(book.worksheets[0].iter_rows(values_only=True, max_col=limits.max_columns + 1),
                                  start=1):
            clock.check(n)
            if n > limits.max_lines:
                raise _too_many_rows(limits, blank_too=True)
            if header is None:
                header = list(cells)
            elif any(c is not None and c != "" for c in cells):
                if len(rows) >= limits.max_rows:
                    raise _too_many_rows(limits)
                rows.append((n, list(cells)))
    except ImportFileError:
        raise
    except Exception as exc:  # a member that inflates past its declared size, broken XML
        raise ImportFileError("IMPORT_FORMAT", f"the file cannot be read as XLSX ({type(exc).__name__}); "
                              "save it again as .xlsx or CSV") from None
    finally:
        book.close()
    if header is None:
        raise ImportFileError("IMPORT_EMPTY", "the first sheet is empty; its first row must be the column headers")
    _check_width(header, limits)
    return Sheet("xlsx", None, ["" if c is None else str(c) for c in header], rows)


def read_sheet(data: bytes, filename: str = "", limits: SheetLimits = IMPORT_SHEET) -> Sheet:
    """The file's first sheet, within ``limits`` (the one reader of ``POST /imports``, ``ledger import``, ``ledger feed``)."""
    if len(data) > limits.max_bytes:
        raise _too_large(limits, len(data))
    name = filename.lower()
    if name.endswith(".xls") or data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise ImportFileError("IMPORT_FORMAT", "old Excel .xls files are not read; save the sheet as .xlsx or CSV")
    if name.endswith(".xlsx") or data[:4] == b"PK\x03\x04":
        return read_xlsx(data, limits)
    return read_csv(data, limits)


def read_file(path: str | Path, limits: SheetLimits = IMPORT_SHEET) -> bytes:
    """A file's bytes for :func:`read_sheet`, refused by its size before it is read (the command line's way in)."""
    path = Path(path)
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise _too_large(limits, size)
    with path.open("rb") as f:
        data = f.read(limits.max_bytes + 1)  # the file may grow meanwhile
    if len(data) > limits.max_bytes:
        raise _too_large(limits, len(data))
    return data


@dataclass(frozen=True)
class Header:
    """The header row read: the column of each cell (None: ignored) and the notices about it."""

    columns: list[str | None]
    notices: list[dict[str, Any]]
    #: a column's Chinese header -> the header as the sheet wrote it (所属村（社区） for 网格): problems name the latter
    sent: dict[str, str] = field(default_factory=dict)


def map_header(header: list[Any]) -> Header:
    """The column of each header cell through the synonyms table; unknown columns are ignored with a notice.

    A missing required column or a repeated one is one clear error (``IMPORT_COLUMNS``); 参保地
    is not required here (it defaults per row, see :func:`parse_row`).
    """
    names = [str(h or "").replace("\ufeff", "").strip().rstrip("*").strip() for h in header]
    while names and not names[-1]:
        names.pop()
    mapped = [column_of(n) if n else None for n in names]
    notices: list[dict[str, Any]] = []
    for n, m in zip(names, mapped):
        if m is not None or not n:
            continue
        guess = None if is_known_harmless(n) else closest(n)
        hint = f"；是否指“{guess}”？" if guess else ""
        notices.append({"code": "COLUMN_IGNORED", "column": n[:40],
                        "message": f"列“{n[:40]}”不是登记表的列，已忽略{hint} (column ignored)"})
    for n, m in zip(names, mapped):
        if m is not None and n != BY_NAME[m].header and n != m:
            notices.append({"code": "COLUMN_SYNONYM", "column": n[:40],
                            "message": f"列“{n[:40]}”按“{BY_NAME[m].header}”读取 (read as {m})"})
    missing = [c for c in REQUIRED if c not in mapped]
    repeated = sorted({m for m in mapped if m is not None and mapped.count(m) > 1})
    if missing or repeated:
        problems = []
        if missing:
            problems.append("缺少 " + "、".join(label(c) for c in missing))
        if repeated:
            problems.append("重复 " + "、".join(
                f"{label(c)}（{'、'.join(n for n, m in zip(names, mapped) if m == c)}）" for c in repeated))
        ignored = [x["column"] for x in notices if x["code"] == "COLUMN_IGNORED"]
        if ignored:
            problems.append("未识别 " + "、".join(ignored))
        raise ImportFileError(
            "IMPORT_COLUMNS",
            f"表头与参保登记表不符（{'；'.join(problems)}），未导入任何一行。可用的列：{expected_columns_text()}；"
            "可下载导入模板查看各列的写法 (the header row does not match the registration sheet; nothing was imported)",
            missing=missing, repeated=repeated, unknown=ignored, expected=[c.name for c in COLUMNS],
        )
    return Header(mapped, notices, {label(m): n for n, m in zip(names, mapped) if m is not None})


# ---------------------------------------------------------------------------- reading a row
#: 联系电话 checked without a places table wired (a library caller): the same rule, plain words.
_NO_PLACES = SheetResidence()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _filled(value: Any) -> bool:
    return isinstance(value, (date, datetime)) or _text(value) != ""


def _problem(code: str, column: str | None, message: str, message_en: str | None = None) -> dict[str, Any]:
    """A row problem or warning; ``message_en`` where the English is a text of its own (not in parentheses)."""
    problem = {"code": code, "column": label(column) if column else None, "message": message}
    if message_en is not None:
        problem["message_en"] = message_en
    return problem


#: Chinese messages for the domain checks' codes (their English text follows in parentheses).
_ZH_MESSAGES = {
    "GRID_FORMAT": "网格代码应为 12 位数字：区县 6 位、乡镇 3 位、村（社区）3 位",
    "REGION_FORMAT": "参保地应为 6 位县级行政区划代码，如 610902",
    "ID_TYPE_UNKNOWN": "证件类型无法识别",
    "ID_FORMAT": "证件号码格式不对",
    "ID_CHECKSUM": "证件号码校验位不对，请核对最后一位",
    "ID_BIRTH_DATE": "证件号码中的出生日期不对",
}


def _id_number(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise DomainError("ID_NOT_TEXT", "证件号码是数字格式的单元格，Excel 可能已改掉末几位；请把该列设为文本后重新录入 "
                          "(id_number is a number cell)")
    return _text(value)


def _flexible(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).upper()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise DomainError("FLEXIBLE_INVALID", f"灵活就业应填“是”或“否”（Y/N），现为 {text[:20]!r} (flexible must be Y or N)")


def _date(value: Any, column: str = "effective_date") -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    for pattern in _DATE_FORMATS:
        m = pattern.fullmatch(text)
        if m:
            try:
                return date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                break
    raise DomainError("DATE_INVALID", f"{label(column)}应为日期，写作 YYYY-MM-DD，现为 {text[:20]!r} "
                      f"({column} must be a date)")


def _status(raw: dict[str, Any], problems: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The row's subsidised status, checked by the gates the ledger applies (category, business dates), or None."""
    category = _text(raw.get("status_category"))
    filled = [c for c in STATUS_REQUIRED + ("status_valid_to",) if _filled(raw.get(c))]
    if not category:
        if filled:
            problems.append(_problem("STATUS_FIELDS_INCOMPLETE", "status_category", "资助身份为空，但填写了 " + "、".join(
                label(c) for c in filled) + "：请填写资助身份或清空认定各列 (status columns without a category)"))
        return None
    before = len(problems)
    for c in STATUS_REQUIRED:
        if c not in filled:
            problems.append(_problem("STATUS_FIELDS_INCOMPLETE", c, f"填写了资助身份，还须填写{label(c)} "
                                     "(a status needs its valid-from date, department and document number)"))
    code = valid_from = valid_to = None
    try:
        code = parse_code(SubsidyCategory, value_of("status_category", category), "SUBSIDY_CATEGORY_UNKNOWN",
                          "subsidy category").value
    except DomainError as e:
        problems.append(_problem(e.code, "status_category", f"资助身份“{category[:20]}”无法识别 ({e.message})"))
    if "status_valid_from" in filled:
        try:
            valid_from = rules.check_business_date(_date(raw.get("status_valid_from"), "status_valid_from"),
                                                   "status_valid_from", default_value_limits())
        except DomainError as e:
            problems.append(_problem(e.code, "status_valid_from", e.message))
    if "status_valid_to" in filled:
        try:
            valid_to = _date(raw.get("status_valid_to"), "status_valid_to")
            if valid_from is not None and valid_to < valid_from:
                problems.append(_problem("DATE_INVALID", "status_valid_to", f"认定终止日期 {valid_to} 早于认定起始日期 "
                                         f"{valid_from} (status valid to is before valid from)"))
        except DomainError as e:
            problems.append(_problem(e.code, "status_valid_to", e.message))
    if len(problems) > before:
        return None
    return {"category": code, "valid_from": valid_from, "valid_to": valid_to,
            "department": _text(raw.get("status_department"))[:100],
            "document_no": _text(raw.get("status_document_no"))[:60]}


def _place(raw: dict[str, Any], column: str, digits: int, warnings: list[dict[str, Any]]) -> str | None:
    """A township / village code cell read without a places table: a name is kept out with a warning."""
    text = _text(raw.get(column))
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return text
    if not any(ch.isdigit() for ch in text):
        warnings.append(_problem("PLACE_NAME_NOT_RESOLVED", column, f"{label(column)}“{text[:30]}”是名称，系统暂无地名表，"
                                 f"未据此确定网格；如需记入网格请填写 {digits} 位代码 (place names are not resolved)"))
        return None
    return text  # digits mixed with other characters: the code check below reports it


def _residence(raw: dict[str, Any], residence: SheetResidence | None, region: str | None, day: date | None,
               problems: list[dict[str, Any]], warnings: list[dict[str, Any]]) -> tuple[str | None, str | None,
                                                                                      str | None]:
    """``(grid code text, township code text, phone)`` of the row: codes as written, names through the places
    table (:mod:`consumers.sheet_residence`) in the county ``region`` on ``day``; problems added to ``problems``."""
    phone = None
    phone_text = _text(raw.get("phone"))
    if phone_text:
        phone, why = (residence or _NO_PLACES).phone(phone_text)
        if why:
            problems.append(_problem("IMPORT_PHONE_INVALID", "phone", *why))
    township_text, village_text = _text(raw.get("township")), _text(raw.get("grid_code"))
    if residence is not None and township_text and not village_text:
        warnings.append(_problem("IMPORT_VILLAGE_MISSING", "grid_code", *residence.township_only(township_text)))
    named = any(t and not any(ch.isdigit() for ch in t) for t in (township_text, village_text))
    if residence is None or not named:
        return _place(raw, "grid_code", 12, warnings), _place(raw, "township", 9, warnings), phone
    if region is None:
        return None, None, phone  # the missing 参保地 is the row's problem; names are read within a county only
    found = residence.resolve(township_text, village_text, region=region, day=day or date.today())
    problems.extend(_problem(code, column, zh, en) for code, column, zh, en in found.problems)
    if found.problems:  # the codes written as codes are still checked (their own problems), the names are not
        return (village_text if village_text == found.grid else None,
                township_text if township_text == found.township else None, phone)
    return found.grid, found.township, phone


def parse_row(columns: list[str | None], cells: list[Any], *, default_region: str | None = None,
              residence: SheetResidence | None = None) -> tuple[dict[str, Any] | None, list[dict[str, Any]],
                                                          list[dict[str, Any]]]:
    """The row read and checked: ``(row or None, problems, warnings)``; every problem of the row, not the first.

    Each problem and warning is ``{"code", "column" (its Chinese header), "message" (Chinese)}``.
    参保地 left empty defaults to ``default_region`` (the importing clerk's one region), else to the
    grid code's first six digits. ``residence``: the places table and words that read 所属乡镇 /
    所属村（社区） names and 联系电话 (:mod:`consumers.sheet_residence`); without it a name is only warned about.
    """
    raw = {c: (cells[i] if i < len(cells) else None) for i, c in enumerate(columns) if c is not None}
    problems: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []

    def check(column: str, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except DomainError as e:
            zh = _ZH_MESSAGES.get(e.code)
            problems.append(_problem(e.code, column, f"{zh} ({e.message})" if zh else e.message))
            return None

    for column in ("name", "scheme", "effective_date"):
        if not _filled(raw.get(column)):
            problems.append(_problem("FIELD_REQUIRED", column, f"{label(column)}为空，须填写 ({column} is empty)"))
    id_type = value_of("id_type", _text(raw.get("id_type")) or "RESIDENT_ID")
    id_number = check("id_number", lambda: _id_number(raw.get("id_number")))
    if id_number == "":
        problems.append(_problem("FIELD_REQUIRED", "id_number", "证件号码为空，须填写 (id_number is empty)"))
    elif id_number is not None:
        try:
            id_number = parse_identity(id_type, id_number).id_number
        except DomainError as e:
            column = "id_type" if e.code == "ID_TYPE_UNKNOWN" else "id_number"
            problems.append(_problem(e.code, column, f"{_ZH_MESSAGES.get(e.code, label(column) + '有误')} ({e.message})"))
    scheme_text = _text(raw.get("scheme"))
    scheme = value_of("scheme", scheme_text)
    if scheme_text and scheme.upper() not in ("RESIDENT", "EMPLOYEE"):
        problems.append(_problem("SCHEME_UNKNOWN", "scheme", f"险种“{scheme_text[:20]}”无法识别，请填写“城乡居民”或“职工” "
                                 "(scheme must be RESIDENT or EMPLOYEE)"))
    effective = check("effective_date", lambda: _date(raw.get("effective_date"))) \
        if _filled(raw.get("effective_date")) else None
    region_text = _text(raw.get("region_code"))
    region = check("region_code", lambda: validate_region_code(region_text)) if region_text else None
    grid_text, township, phone = _residence(raw, residence, region or (None if region_text else default_region),
                                            effective, problems, warnings)
    grid = check("grid_code", lambda: parse_grid_code(grid_text)) if grid_text else None
    if township is not None and (len(township) != 9 or not (township.isascii() and township.isdigit())):
        problems.append(_problem("TOWNSHIP_FORMAT", "township", f"所属乡镇代码“{township[:20]}”应为 9 位数字 "
                                 "(township code must be 9 digits)"))
    elif township is not None and grid is not None and grid.township_code != township:
        problems.append(_problem("GRID_TOWNSHIP_MISMATCH", "grid_code", f"网格 {grid.code} 不属于所属乡镇 {township} "
                                 "(the grid is not in that township)"))
    if region_text:
        pass  # read above (REGION_FORMAT when it is no code)
    elif default_region or grid is not None or township:
        region = default_region or (grid.region_code if grid is not None else str(township)[:6])
        warnings.append(_problem("REGION_DEFAULTED", "region_code", f"参保地为空，按 {region} 导入 "
                                 "(region defaulted)"))
    else:
        problems.append(_problem("FIELD_REQUIRED", "region_code", "参保地为空，且无法从导入人或网格确定，须填写 6 位代码 "
                                 "(region_code is empty)"))
    if region and grid is not None and grid.region_code != region:
        problems.append(_problem("GRID_REGION_MISMATCH", "grid_code", f"网格 {grid.code} 不在参保地 {region} "
                                 "(the grid is not in the region)"))
    flexible = check("flexible", lambda: _flexible(raw.get("flexible")))
    status = _status(raw, problems)
    row = {
        "id_type": id_type,
        "id_number": id_number if isinstance(id_number, str) else _text(raw.get("id_number")),
        "name": _text(raw.get("name")),
        "scheme": scheme,
        "region_code": region,
        "grid_code": grid.code if grid is not None else None,
        "flexible": bool(flexible),
        "employer_id": _text(raw.get("employer_id")) or None,
        "effective_date": effective,
        "status": status,
        "phone": phone,
    }
    return (None if problems else row), problems, warnings


# ---------------------------------------------------------------------------- importing
def _already_imported(ledger: Any, person_id: Any, record_key: str) -> bool:
    return any(getattr(e, "provenance", {}).get("record_key") == record_key for e in ledger.events.get(person_id))


def _row_id(columns: list[str | None], cells: list[Any]) -> str:
    i = columns.index("id_number") if "id_number" in columns else -1
    return _text(cells[i]) if 0 <= i < len(cells) else ""


def import_sheet(
    ledger: Any,
    sheet: Sheet,
    *,
    digest: str,
    user: str,
    request_id: str | None = None,
    source: str = "batch",
    region_allowed: Callable[[str], bool] | None = None,
    default_region: str | None = None,
    header: Header | None = None,
    residence: SheetResidence | None = None,
) -> list[dict[str, Any]]:
    """Register and enroll every row; one result per non-blank row, in order.

    A result's ``problems`` lists every problem of the row (``code`` and ``message`` repeat the
    first, and all messages joined, for readers of one line); ``warnings`` what was read with a notice.
    A row's village (所属村（社区）, by code or name) and phone (联系电话) are then recorded as the residents
    feed records them (``Ledger.record_residence``: one ``ResidenceRecorded``, the phone encrypted like the feed's).
    """
    header = header or map_header(sheet.header)
    columns = header.columns
    results = []
    for line, cells in sheet.rows:
        if all(_text(c) == "" for c in cells):
            continue
        result: dict[str, Any] = {"line": line, "status": "error", "code": None, "message": "", "person_id": None,
                                  "id_number": None, "problems": [], "warnings": []}
        results.append(result)
        row, problems, result["warnings"] = parse_row(columns, cells, default_region=default_region,
                                                      residence=residence)
        for p in problems + result["warnings"]:
            p["column"] = header.sent.get(p["column"], p["column"])
        number = row["id_number"] if row else _row_id(columns, cells)
        result["id_number"] = mask_id_number(number) if number else None
        if row is not None and region_allowed is not None and not region_allowed(row["region_code"]):
            problems.append(_problem("REGION_NOT_IN_SCOPE", "region_code", f"你没有参保地 {row['region_code']} 的权限 "
                                     "(the region is not one of yours)"))
        if problems:
            result.update(problems=problems, code=problems[0]["code"],
                          message="；".join(f"{p['column'] or ''}：{p['message']}" if p["column"] else p["message"]
                                           for p in problems))
            continue
        assert row is not None
        try:
            record_key = f"{digest}:{line}"
            person_id = ledger.person_id(row["id_type"], row["id_number"])
            result["person_id"] = str(person_id)
            if _already_imported(ledger, person_id, record_key):
                result.update(status="already_imported", message=f"本文件第 {line} 行此前已导入 "
                                                                 f"(row {line} of this file was imported before)")
                continue
            provenance = Provenance(source=source, user=user, request_id=request_id, record_key=record_key)
            status = row.pop("status")
            phone = row.pop("phone")
            try:
                outcome = ledger.enroll(channel="BATCH_IMPORT", provenance=provenance, **row)
                result.update(status="imported" if outcome.applied else "already_enrolled", message=outcome.message)
            except Conflict as e:
                if e.code != "ALREADY_ENROLLED":
                    raise
                result.update(status="already_enrolled", code=e.code, message=e.message)
            if phone is not None or row["grid_code"] is not None:
                recorded = ledger.record_residence(person_id, record_id=record_key, grid_code=row["grid_code"],
                                                   phone=phone, effective_date=row["effective_date"],
                                                   provenance=provenance)
                if recorded.applied:
                    result["message"] += "; 居住网格、联系电话已记录 (residence recorded)"
            if status is not None:
                try:
                    granted = ledger.apply_status(StatusRecord(
                        record_id=clerk_status_record_id(person_id, status["document_no"]), id_type=row["id_type"],
                        id_number=row["id_number"], name=row["name"], granted=True, **status), provenance=provenance)
                except DomainError as e:
                    raise DomainError(e.code, f"参保登记已处理（{result['status']}），资助身份未认定：{e.message} "
                                          f"(enrollment done, status refused)", **e.details) from None
                result["message"] += f"; 资助身份 {status['category']} " + (
                    "已认定 (status granted)" if granted.applied else "已有 (status already recorded)")
        except DomainError as e:
            problem = _problem(e.code, None, e.message)
            result.update(status="error", code=e.code, message=e.message, problems=[problem])
    return results


def summarize(results: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts = {"rows": 0, "imported": 0, "already_enrolled": 0, "already_imported": 0, "errors": 0}
    for r in results:
        counts["rows"] += 1
        counts["errors" if r["status"] == "error" else r["status"]] += 1
    return counts


def import_file(ledger: Any, data: bytes, filename: str, **options: Any) -> dict[str, Any]:
    """Import one uploaded file; the report says what happened to each row (:func:`import_file_and_sheet`'s
    report, with the same options)."""
    return import_file_and_sheet(ledger, data, filename, **options)[0]


def import_file_and_sheet(
    ledger: Any,
    data: bytes,
    filename: str,
    *,
    user: str,
    request_id: str | None = None,
    source: str = "batch",
    region_allowed: Callable[[str], bool] | None = None,
    default_region: str | None = None,
    residence: SheetResidence | None = None,
) -> tuple[dict[str, Any], Sheet, Header]:
    """Import one uploaded file: the report (what happened to each row), the sheet and its header read (for
    the error workbook). ``residence``: the places table and words (:mod:`consumers.sheet_residence`)."""
    digest = hashlib.sha256(data).hexdigest()
    sheet = read_sheet(data, filename)
    header = map_header(sheet.header)
    results = import_sheet(ledger, sheet, digest=digest, user=user, request_id=request_id, source=source,
                           region_allowed=region_allowed, default_region=default_region, header=header,
                           residence=residence)
    report = {"file": filename, "sha256": digest, "format": sheet.format, "encoding": sheet.encoding,
              **summarize(results), "notices": header.notices, "lines": results}
    log.info("batch_imported", file=filename, sha256=digest, user=user,
             **{k: v for k, v in report.items() if isinstance(v, int)})
    return report, sheet, header
