"""Migration from the old system (历史数据迁移): enrollments and paid coverage years with their original dates.

One row per record of the old system, kind in 记录类型:

* ``ENROLLMENT`` (参保): a resident enrollment from 参保日期 (its original date) — the ledger's
  ``enroll`` (channel BATCH_IMPORT);
* ``PAYMENT`` (缴费): the individual share of one coverage year (缴费年度) paid on 缴费日期 — recorded
  as a tax record of the pseudo tax office ``MIGRATION`` with voucher ``MIG-<原系统记录号>``, so it counts
  exactly like a collected payment (on time, late or back payment by its original date).

Every event written carries provenance ``source = "migration"``, ``record_key = "MIG:<原系统记录号>"``
(the old system's record id) and ``request_id = <batch id>``: imported facts are told apart from the
ledger's own in every history and audit. Idempotent per old-system record id: a record loaded before
is reported ``already_imported`` and writes nothing (payments are also keyed by their voucher, so the
same id with other content is refused as a conflict).

The columns reuse the registration sheet's machinery (:mod:`consumers.sheet_columns`: Column, the header
normaliser, the value synonyms; :mod:`consumers.spreadsheets`: reading CSV/XLSX with its limits;
:mod:`consumers.sheet_workbooks`: the error workbook). Only the resident scheme is migrated for now.
"""
from __future__ import annotations

import csv
import hashlib
import io
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Callable

from consumers.sheet_columns import ID_TYPE_VALUES, Column, _key
from consumers.spreadsheets import ImportFileError, Sheet, _date, _id_number, _text, read_sheet
from ledger.domain.errors import Conflict, DomainError
from ledger.inbound_records import Provenance, TaxPaymentRecord
from ledger.log import get_logger, mask_id_number

log = get_logger("consumers.migration")

#: The pseudo tax office of migrated payments (their voucher: MIG-<old record id>).
MIGRATION_TAX_OFFICE = "MIGRATION"
SOURCE = "migration"
KIND_VALUES = {"参保": "ENROLLMENT", "参保登记": "ENROLLMENT", "登记": "ENROLLMENT",
               "缴费": "PAYMENT", "缴费记录": "PAYMENT", "参保缴费": "PAYMENT"}
_BEIJING = timezone(timedelta(hours=8))

COLUMNS: tuple[Column, ...] = (
    Column("record_id", "原系统记录号", True, "旧系统中该记录的唯一编号（幂等键：同一编号再次导入不重复写入）", "HIS-2020-000123",
           ("原记录号", "原系统编号", "记录编号", "业务流水号", "流水号")),
    Column("kind", "记录类型", True, "参保 / 缴费（或 ENROLLMENT / PAYMENT）", "缴费", ("业务类型", "类型"), KIND_VALUES),
    Column("id_type", "证件类型", False, "居民身份证（默认）等，同参保登记表", "居民身份证", ("证件种类",), ID_TYPE_VALUES,
           "空白即居民身份证"),
    Column("id_number", "证件号码", True, "请把该列设为“文本”格式", "610902199001010128",
           ("身份证号码", "身份证号", "公民身份号码", "证件号")),
    Column("name", "姓名", True, "证件上的姓名", "张三", ("参保人姓名", "人员姓名")),
    Column("region_code", "参保地", False, "6 位县级行政区划代码", "610902", ("所属区县", "行政区划代码", "区县代码"),
           note="留空时取导入人唯一的参保地"),
    Column("grid_code", "网格", False, "12 位村（社区）代码（参保记录）", "610902100001", ("网格代码", "村社区代码")),
    Column("effective_date", "参保日期", False, "参保记录的原始参保日期 YYYY-MM-DD", "2019-10-01",
           ("参保时间", "参保开始日期"), note="记录类型为参保时必填"),
    Column("coverage_year", "缴费年度", False, "缴费记录所属的待遇年度，如 2020", "2020", ("所属年度", "参保年度", "费款所属年度"),
           note="记录类型为缴费时必填"),
    Column("amount", "缴费金额", False, "个人缴费金额，元，最多两位小数", "280.00", ("金额", "缴费金额（元）", "实缴金额"),
           note="记录类型为缴费时必填"),
    Column("paid_on", "缴费日期", False, "原始缴费日期 YYYY-MM-DD", "2019-11-05", ("缴款日期", "缴费时间"),
           note="记录类型为缴费时必填"),
)
BY_NAME = MappingProxyType({c.name: c for c in COLUMNS})
HEADERS = MappingProxyType({_key(h): c.name for c in COLUMNS for h in (c.header, c.name, *c.synonyms)})
REQUIRED = tuple(c.name for c in COLUMNS if c.required)


def _label(name: str) -> str:
    return BY_NAME[name].header


def template_csv() -> bytes:
    """The migration template: Chinese headers and one example row (delete it before loading)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c.header for c in COLUMNS])
    writer.writerow([c.example for c in COLUMNS])
    writer.writerow(["HIS-2019-000045", "参保", "居民身份证", "610902199001010128", "张三", "610902", "610902100001",
                     "2019-10-01", "", "", ""])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def template_xlsx() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "历史数据迁移"
    for i, c in enumerate(COLUMNS, start=1):
        sheet.cell(row=1, column=i, value=c.header)
        cell = sheet.cell(row=2, column=i, value=c.example)
        cell.number_format = "@"
    notes = book.create_sheet("填写说明")
    for r, values in enumerate([("列", "必填", "写法", "说明")] + [
            (c.header, "是" if c.required else "否", c.accepted, c.note) for c in COLUMNS], start=1):
        for i, v in enumerate(values, start=1):
            notes.cell(row=r, column=i, value=v)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def map_header(header: list[Any]) -> tuple[list[str | None], list[dict[str, Any]]]:
    names = [str(h or "").replace("\ufeff", "").strip().rstrip("*").strip() for h in header]
    mapped = [HEADERS.get(_key(n)) if n else None for n in names]
    notices = [{"code": "COLUMN_IGNORED", "column": n[:40], "message": f"列“{n[:40]}”不是迁移表的列，已忽略 (column ignored)"}
               for n, m in zip(names, mapped) if n and m is None]
    missing = [c for c in REQUIRED if c not in mapped]
    repeated = sorted({m for m in mapped if m is not None and mapped.count(m) > 1})
    if missing or repeated:
        parts = (["缺少 " + "、".join(_label(c) for c in missing)] if missing else []) + (
            ["重复 " + "、".join(_label(c) for c in repeated)] if repeated else [])
        raise ImportFileError(
            "MIGRATION_COLUMNS",
            f"表头与历史数据迁移表不符（{'；'.join(parts)}），未导入任何一行；可用 ledger migrate --template FILE 查看模板 "
            "(the header row does not match the migration sheet; nothing was loaded)",
            missing=missing, repeated=repeated, expected=[c.name for c in COLUMNS])
    return mapped, notices


def _fen(text: str) -> int:
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")):
        raise DomainError("AMOUNT_INVALID", f"缴费金额应为大于 0、最多两位小数的元数，现为 {text[:20]!r} "
                          "(amount must be yuan with at most two decimals)")
    return int(value * 100)


def _value(name: str, text: str) -> str:
    column = BY_NAME[name]
    if not column.values:
        return text
    code = column.values.get(text) or (text.upper() if text.upper() in column.values.values() else None)
    if code is None:
        raise DomainError(f"{name.upper()}_UNKNOWN", f"{column.header}“{text[:20]}”无法识别；可填：{column.accepted} "
                          f"({name} unknown)")
    return code


def parse_row(columns: list[str | None], cells: list[Any], default_region: str | None) -> tuple[dict | None, list]:
    raw = {c: v for c, v in zip(columns, cells) if c is not None}
    problems: list[dict[str, Any]] = []

    def get(name: str, convert: Callable[[Any], Any], required: bool) -> Any:
        value = raw.get(name)
        if value is None or _text(value) == "":
            if required:
                problems.append({"code": "VALUE_MISSING", "column": _label(name), "message": f"缺少{_label(name)} (missing)"})
            return None
        try:
            return convert(value)
        except DomainError as e:
            problems.append({"code": e.code, "column": _label(name), "message": e.message})
            return None

    kind = get("kind", lambda v: _value("kind", _text(v)), True)
    row = {
        "record_id": get("record_id", lambda v: _text(v)[:64], True),
        "kind": kind,
        "id_type": get("id_type", lambda v: _value("id_type", _text(v)), False) or "RESIDENT_ID",
        "id_number": get("id_number", _id_number, True),
        "name": get("name", lambda v: _text(v)[:50], True),
        "region_code": get("region_code", _text, False) or default_region,
        "grid_code": get("grid_code", _text, False),
        "effective_date": get("effective_date", lambda v: _day(v, "effective_date"), kind == "ENROLLMENT"),
        "coverage_year": get("coverage_year", _year, kind == "PAYMENT"),
        "amount_fen": get("amount", lambda v: _fen(_text(v)), kind == "PAYMENT"),
        "paid_on": get("paid_on", lambda v: _day(v, "paid_on"), kind == "PAYMENT"),
    }
    if row["region_code"] is None:
        problems.append({"code": "REGION_MISSING", "column": _label("region_code"),
                         "message": "缺少参保地，且导入人不止一个参保地 (region missing)"})
    return (None if problems else row), problems


def _day(value: Any, name: str) -> date:
    try:
        return _date(value)
    except DomainError:
        raise DomainError("DATE_INVALID", f"{_label(name)}应为日期，写作 YYYY-MM-DD，现为 {_text(value)[:20]!r} "
                          f"({name} must be a date)") from None


def _year(value: Any) -> int:
    text = _text(value)
    if not (len(text) == 4 and text.isdigit()):
        raise DomainError("YEAR_INVALID", f"缴费年度应为四位年份，如 2020，现为 {text[:20]!r} (year must be like 2020)")
    return int(text)


def _already_imported(ledger: Any, person_id: Any, record_key: str) -> bool:
    try:
        events = ledger.events.get(person_id)
        return any(getattr(e, "provenance", {}).get("record_key") == record_key for e in events)
    except Exception:  # noqa: BLE001 - a person the ledger has never seen has no events
        return False


def migrate_sheet(ledger: Any, sheet: Sheet, *, batch_id: str, user: str,
                  region_allowed: Callable[[str], bool] | None = None,
                  default_region: str | None = None) -> tuple[list[dict[str, Any]], list[str | None], list[dict]]:
    """Load every row; one result per non-blank row, in order (status imported / already_imported / error)."""
    columns, notices = map_header(sheet.header)
    results: list[dict[str, Any]] = []
    for line, cells in sheet.rows:
        if all(_text(c) == "" for c in cells):
            continue
        result: dict[str, Any] = {"line": line, "status": "error", "code": None, "message": "", "record_id": None,
                                  "kind": None, "person_id": None, "id_number": None, "problems": []}
        results.append(result)
        row, problems = parse_row(columns, cells, default_region)
        if row is not None:
            result.update(record_id=row["record_id"], kind=row["kind"], id_number=mask_id_number(row["id_number"]))
            if region_allowed is not None and not region_allowed(row["region_code"]):
                problems.append({"code": "REGION_NOT_IN_SCOPE", "column": _label("region_code"),
                                 "message": f"你没有参保地 {row['region_code']} 的权限 (the region is not one of yours)"})
        if problems:
            result.update(problems=problems, code=problems[0]["code"],
                          message="；".join(f"{p['column']}：{p['message']}" for p in problems))
            continue
        assert row is not None
        record_key = f"MIG:{row['record_id']}"
        provenance = Provenance(source=SOURCE, user=user, request_id=batch_id, record_key=record_key)
        try:
            person_id = ledger.person_id(row["id_type"], row["id_number"])
            result["person_id"] = str(person_id)
            # A payment is keyed by its voucher MIG-<record id>: the same content again is a resend, other
            # content under the same id a conflict (never silently dropped). An enrollment by its record key.
            if row["kind"] == "ENROLLMENT" and _already_imported(ledger, person_id, record_key):
                result.update(status="already_imported",
                              message=f"原系统记录 {row['record_id']} 此前已迁移 (record migrated before)")
                continue
            if row["kind"] == "ENROLLMENT":
                try:
                    outcome = ledger.enroll(
                        id_type=row["id_type"], id_number=row["id_number"], name=row["name"], scheme="RESIDENT",
                        region_code=row["region_code"], grid_code=row["grid_code"], channel="BATCH_IMPORT",
                        effective_date=row["effective_date"], provenance=provenance)
                    result.update(status="imported" if outcome.applied else "already_imported", message=outcome.message)
                except Conflict as e:
                    if e.code != "ALREADY_ENROLLED":
                        raise
                    result.update(status="already_enrolled", code=e.code, message=e.message)
            else:
                year = row["coverage_year"]
                outcome = ledger.record_tax_record(TaxPaymentRecord(
                    voucher_no=f"MIG-{row['record_id']}", tax_office=MIGRATION_TAX_OFFICE, id_type=row["id_type"],
                    id_number=row["id_number"], name=row["name"], region_code=row["region_code"], levy_item="RESIDENT",
                    period_start=date(year, 1, 1), period_end=date(year, 12, 31), amount_fen=row["amount_fen"],
                    paid_at=datetime.combine(row["paid_on"], time(12, 0), _BEIJING), credited_on=row["paid_on"],
                    channel="MIGRATION"), provenance=provenance)
                result.update(status="imported" if outcome.applied else "already_imported", message=outcome.message)
        except DomainError as e:
            result.update(status="error", code=e.code, message=e.message,
                          problems=[{"code": e.code, "column": None, "message": e.message}])
    return results, columns, notices


def summarize(results: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"rows": 0, "imported": 0, "already_imported": 0, "already_enrolled": 0, "errors": 0}
    for r in results:
        counts["rows"] += 1
        counts["errors" if r["status"] == "error" else r["status"]] += 1
    return counts


def migrate_file(ledger: Any, data: bytes, filename: str, *, user: str, batch_id: str | None = None,
                 region_allowed: Callable[[str], bool] | None = None,
                 default_region: str | None = None) -> tuple[dict[str, Any], Sheet, list[str | None]]:
    """Load one file from the old system; the report says what happened to each line."""
    digest = hashlib.sha256(data).hexdigest()
    batch = batch_id or f"MIG-{digest[:12]}"
    sheet = read_sheet(data, filename)
    results, columns, notices = migrate_sheet(ledger, sheet, batch_id=batch, user=user,
                                              region_allowed=region_allowed, default_region=default_region)
    report = {"file": filename, "sha256": digest, "batch_id": batch, "format": sheet.format,
              **summarize(results), "notices": notices, "lines": results}
    log.info("history_migrated", file=filename, batch_id=batch, user=user,
             **{k: v for k, v in report.items() if isinstance(v, int)})
    return report, sheet, columns


__all__ = ["COLUMNS", "MIGRATION_TAX_OFFICE", "migrate_file", "migrate_sheet", "template_csv", "template_xlsx"]
