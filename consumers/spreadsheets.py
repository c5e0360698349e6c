"""Batch import of the registration spreadsheet agencies upload (批量参保登记): CSV or XLSX.

One row per person to register and enroll. Columns (header names in English or Chinese,
in any order; ``*`` marks a required column):

==========  ==============  =========================================================
中文         English          value
==========  ==============  =========================================================
证件类型     id_type          RESIDENT_ID (default), PASSPORT, ... or 居民身份证, 护照, ...
证件号码 *   id_number        the number, as text (an Excel number cell loses digits)
姓名 *       name
险种 *       scheme           RESIDENT / EMPLOYEE, or 城乡居民 / 职工
参保地 *     region_code      6-digit region code (行政区划代码)
网格         grid_code        12-digit grid / village code
灵活就业     flexible         是/否, Y/N, 1/0, true/false (default no)
单位编号     employer_id      employee scheme, unless flexible
参保日期 *   effective_date   YYYY-MM-DD (also YYYY/MM/DD, YYYYMMDD, or an Excel date)
资助身份     status_category  a subsidised status: EXTREME_POVERTY ... or 特困人员, 低保对象, 孤儿, ...
认定起始日期  status_valid_from  the status's first valid day (with 资助身份: required)
认定终止日期  status_valid_to    its last valid day (empty: open-ended)
认定部门     status_department  the certifying department (with 资助身份: required)
认定文书编号  status_document_no the certificate number, the status's key (with 资助身份: required)
==========  ==============  =========================================================

A row with 资助身份 also grants that status after enrolling, through the civil-affairs feed's
own command (``Ledger.apply_status``), keyed per person by the certificate number like
``ledger clerk grant-status``; the status columns are checked before anything of the row is
written.

* A header that is not exactly these columns (a missing required column, an unknown or
  repeated one) stops the import before anything is written, with one error listing the
  expected columns.
* Each bad row is reported by its row number (the header is row 1) with a code and a
  message; the good rows are imported.
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
from dataclasses import dataclass
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

log = get_logger("consumers.spreadsheets")

#: (column, Chinese header, required)
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("id_type", "证件类型", False),
    ("id_number", "证件号码", True),
    ("name", "姓名", True),
    ("scheme", "险种", True),
    ("region_code", "参保地", True),
    ("grid_code", "网格", False),
    ("flexible", "灵活就业", False),
    ("employer_id", "单位编号", False),
    ("effective_date", "参保日期", True),
    # A subsidised status from its certificate (资助参保身份), entered with the registration: the
    # civil-affairs feed's own command, keyed by the certificate number (all four, or none).
    ("status_category", "资助身份", False),
    ("status_valid_from", "认定起始日期", False),
    ("status_valid_to", "认定终止日期", False),
    ("status_department", "认定部门", False),
    ("status_document_no", "认定文书编号", False),
)
#: The status columns that must be filled when 资助身份 is.
STATUS_REQUIRED = ("status_valid_from", "status_department", "status_document_no")
CATEGORY_ALIASES = {
    "特困人员": "EXTREME_POVERTY", "特困": "EXTREME_POVERTY", "孤儿": "ORPHAN",
    "事实无人抚养儿童": "DE_FACTO_ORPHAN", "低保对象": "MIN_LIVING", "低保": "MIN_LIVING",
    "返贫致贫人口": "RELAPSED_POVERTY", "防止返贫监测对象": "MONITORED", "监测对象": "MONITORED",
    "低保边缘": "LOW_INCOME_MARGINAL",
}
ALIASES = {**{c: c for c, _, _ in COLUMNS}, **{zh: c for c, zh, _ in COLUMNS}}
REQUIRED = [c for c, _, required in COLUMNS if required]

ID_TYPE_ALIASES = {
    "居民身份证": "RESIDENT_ID", "身份证": "RESIDENT_ID",
    "护照": "PASSPORT",
    "港澳居民来往内地通行证": "HK_MACAU_PERMIT", "港澳居民居住证": "HK_MACAU_PERMIT",
    "台湾居民来往大陆通行证": "TAIWAN_PERMIT", "台湾居民居住证": "TAIWAN_PERMIT",
    "外国人永久居留身份证": "FOREIGN_PERMANENT_RESIDENT",
}
SCHEME_ALIASES = {
    "城乡居民": "RESIDENT", "居民": "RESIDENT", "居民医保": "RESIDENT", "城乡居民基本医疗保险": "RESIDENT",
    "职工": "EMPLOYEE", "职工医保": "EMPLOYEE", "职工基本医疗保险": "EMPLOYEE",
}
_YES = {"是", "Y", "YES", "TRUE", "1"}
_NO = {"", "否", "N", "NO", "FALSE", "0"}
_DATE_FORMATS = (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"), re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"),
                 re.compile(r"(\d{4})(\d{2})(\d{2})"))


class ImportFileError(DomainError):
    """The file as a whole cannot be imported (format, encoding, columns); nothing was written."""


def expected_columns_text() -> str:
    return ", ".join(f"{zh} {c}{' (required)' if req else ''}" for c, zh, req in COLUMNS)


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


def map_header(header: list[Any]) -> list[str | None]:
    """Column names of the header cells (None for trailing blank cells); one clear error when wrong."""
    names = [str(h or "").replace("\ufeff", "").strip().rstrip("*").strip() for h in header]
    while names and not names[-1]:
        names.pop()
    mapped = [ALIASES.get(n, ALIASES.get(n.lower())) for n in names]
    unknown = [n or "(blank)" for n, m in zip(names, mapped) if m is None]
    missing = [c for c in REQUIRED if c not in mapped]
    repeated = sorted({m for m in mapped if m is not None and mapped.count(m) > 1})
    if unknown or missing or repeated:
        problems = []
        if missing:
            zh = {c: z for c, z, _ in COLUMNS}
            problems.append("missing " + ", ".join(f"{zh[c]} {c}" for c in missing))
        if unknown:
            problems.append("not known " + ", ".join(unknown))
        if repeated:
            problems.append("repeated " + ", ".join(repeated))
        raise ImportFileError(
            "IMPORT_COLUMNS",
            f"the header row does not match the registration sheet ({'; '.join(problems)}); nothing was imported. "
            f"Expected columns: {expected_columns_text()}",
            missing=missing, unknown=unknown, repeated=repeated, expected=[c for c, _, _ in COLUMNS],
        )
    return mapped


# ---------------------------------------------------------------------------- reading a row
def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _code(value: Any) -> str:
    return _text(value)


def _id_number(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise DomainError("ID_NOT_TEXT", "证件号码 id_number is a number cell in the sheet, so Excel may have changed "
                          "its last digits; format the column as text and type the numbers again")
    return _text(value)


def _flexible(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).upper()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise DomainError("FLEXIBLE_INVALID", f"灵活就业 flexible must be 是 or 否 (Y/N); got {text[:20]!r}")


def _date(value: Any, column: str = "参保日期 effective_date") -> date:
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
    raise DomainError("DATE_INVALID", f"{column} must be a date written YYYY-MM-DD; got {text[:20]!r}")


def _status(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The row's subsidised status, checked by the gates the ledger applies (category, business dates), or None."""
    category = _text(raw.get("status_category"))
    filled = [c for c in STATUS_REQUIRED + ("status_valid_to",) if _text(raw.get(c))
              or isinstance(raw.get(c), (date, datetime))]
    if not category:
        if filled:
            raise DomainError("STATUS_FIELDS_INCOMPLETE", f"资助身份 status_category 为空，但填写了 {', '.join(filled)}："
                                                          "请填写资助身份或清空认定各列 (status columns without a category)")
        return None
    missing = [c for c in STATUS_REQUIRED if c not in filled]
    if missing:
        zh = {c: z for c, z, _ in COLUMNS}
        raise DomainError("STATUS_FIELDS_INCOMPLETE", "填写了资助身份，还须填写 " + "、".join(
            f"{zh[c]} {c}" for c in missing) + " (a status needs its valid-from date, department and document number)")
    code = parse_code(SubsidyCategory, CATEGORY_ALIASES.get(category, category), "SUBSIDY_CATEGORY_UNKNOWN",
                      "subsidy category")
    limits = default_value_limits()
    valid_from = rules.check_business_date(_date(raw.get("status_valid_from"), "认定起始日期 status_valid_from"),
                                           "status_valid_from", limits)
    valid_to = None
    if _text(raw.get("status_valid_to")) or isinstance(raw.get("status_valid_to"), (date, datetime)):
        valid_to = _date(raw.get("status_valid_to"), "认定终止日期 status_valid_to")
        if valid_to < valid_from:
            raise DomainError("DATE_INVALID", f"认定终止日期 {valid_to} 早于认定起始日期 {valid_from} "
                                              f"(status valid to is before valid from)")
    return {"category": code.value, "valid_from": valid_from, "valid_to": valid_to,
            "department": _text(raw.get("status_department"))[:100],
            "document_no": _text(raw.get("status_document_no"))[:60]}


def parse_row(columns: list[str | None], cells: list[Any]) -> dict[str, Any]:
    raw = {c: (cells[i] if i < len(cells) else None) for i, c in enumerate(columns) if c is not None}
    for column in REQUIRED:
        if column != "id_number" and not _text(raw.get(column)) and not isinstance(raw.get(column), (date, datetime)):
            zh = next(z for c, z, _ in COLUMNS if c == column)
            raise DomainError("FIELD_REQUIRED", f"{zh} {column} is empty")
    id_number = _id_number(raw.get("id_number"))
    if not id_number:
        raise DomainError("FIELD_REQUIRED", "证件号码 id_number is empty")
    id_type = _text(raw.get("id_type")) or "RESIDENT_ID"
    scheme = _text(raw.get("scheme"))
    return {
        "id_type": ID_TYPE_ALIASES.get(id_type, id_type),
        "id_number": id_number,
        "name": _text(raw.get("name")),
        "scheme": SCHEME_ALIASES.get(scheme, scheme),
        "region_code": validate_region_code(_code(raw.get("region_code"))),
        "grid_code": _code(raw.get("grid_code")) or None,
        "flexible": _flexible(raw.get("flexible")),
        "employer_id": _text(raw.get("employer_id")) or None,
        "effective_date": _date(raw.get("effective_date")),
        "status": _status(raw),
    }


# ---------------------------------------------------------------------------- importing
def _already_imported(ledger: Any, person_id: Any, record_key: str) -> bool:
    return any(getattr(e, "provenance", {}).get("record_key") == record_key for e in ledger.events.get(person_id))


def import_sheet(
    ledger: Any,
    sheet: Sheet,
    *,
    digest: str,
    user: str,
    request_id: str | None = None,
    source: str = "batch",
    region_allowed: Callable[[str], bool] | None = None,
) -> list[dict[str, Any]]:
    """Register and enroll every row; one result per non-blank row, in order."""
    columns = map_header(sheet.header)
    results = []
    for line, cells in sheet.rows:
        if all(_text(c) == "" for c in cells):
            continue
        result: dict[str, Any] = {"line": line, "status": "error", "code": None, "message": "", "person_id": None,
                                  "id_number": None}
        results.append(result)
        try:
            row = parse_row(columns, cells)
            result["id_number"] = mask_id_number(row["id_number"])
            if region_allowed is not None and not region_allowed(row["region_code"]):
                raise DomainError("REGION_NOT_IN_SCOPE", f"参保地 {row['region_code']} is not one of your regions "
                                  "(你没有该参保地的权限)")
            record_key = f"{digest}:{line}"
            person_id = ledger.person_id(row["id_type"], row["id_number"])
            result["person_id"] = str(person_id)
            if _already_imported(ledger, person_id, record_key):
                result.update(status="already_imported", message=f"row {line} of this file was imported before")
                continue
            provenance = Provenance(source=source, user=user, request_id=request_id, record_key=record_key)
            status = row.pop("status")
            try:
                outcome = ledger.enroll(channel="BATCH_IMPORT", provenance=provenance, **row)
                result.update(status="imported" if outcome.applied else "already_enrolled", message=outcome.message)
            except Conflict as e:
                if e.code != "ALREADY_ENROLLED":
                    raise
                result.update(status="already_enrolled", code=e.code, message=e.message)
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
            result.update(status="error", code=e.code, message=e.message)
    return results


def summarize(results: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts = {"rows": 0, "imported": 0, "already_enrolled": 0, "already_imported": 0, "errors": 0}
    for r in results:
        counts["rows"] += 1
        counts["errors" if r["status"] == "error" else r["status"]] += 1
    return counts


def import_file(
    ledger: Any,
    data: bytes,
    filename: str,
    *,
    user: str,
    request_id: str | None = None,
    source: str = "batch",
    region_allowed: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """Import one uploaded file; the report says what happened to each row."""
    digest = hashlib.sha256(data).hexdigest()
    sheet = read_sheet(data, filename)
    results = import_sheet(ledger, sheet, digest=digest, user=user, request_id=request_id, source=source,
                           region_allowed=region_allowed)
    report = {"file": filename, "sha256": digest, "format": sheet.format, "encoding": sheet.encoding,
              **summarize(results), "lines": results}
    log.info("batch_imported", file=filename, sha256=digest, user=user,
             **{k: v for k, v in report.items() if isinstance(v, int)})
    return report
