"""``ledger migrate FILE``: history from the old system with its original dates, marked as migrated,
idempotent per old-system record id, a per-line report; and the issue's case through public interfaces."""
from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from openpyxl import load_workbook

from entrypoints.wiring import bootstrap
from infra.settings import load_settings
from tests.unit.cli_support import embedded, run, run_as
from tests.unit.projection_support import HANBIN, HANYIN, number

HEADER = ["原系统记录号", "记录类型", "证件号码", "姓名", "参保地", "网格", "参保日期", "缴费年度", "缴费金额", "缴费日期"]


def sheet(path, rows, header=HEADER):
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    w.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return str(path)


@pytest.fixture()
def home(tmp_path, monkeypatch):
    embedded(monkeypatch, tmp_path, "migrate-test")
    run_as(monkeypatch, tmp_path, "clerk", [HANBIN], user="clerk-mig")
    return tmp_path


WHO = number(81)
HISTORY = [
    ["OLD-1", "参保", WHO, "王芳", HANBIN, "610902100001", "2019-10-01", "", "", ""],
    ["OLD-2", "缴费", WHO, "王芳", HANBIN, "", "", "2020", "280.00", "2019-11-05"],
]


def events_of(id_number):
    system = bootstrap(load_settings())
    try:
        return list(system.ledger.events.get(system.ledger.find_person("RESIDENT_ID", id_number).id))
    finally:
        system.close()


def test_migrated_history_keeps_original_dates_and_provenance_and_is_idempotent(home, capsys):
    path = sheet(home / "old.csv", HISTORY)
    status, out, err = run(capsys, "migrate", path, "--batch", "B-2026-01", "--json")
    assert status == 0, err
    report = json.loads(out)
    assert (report["rows"], report["imported"], report["errors"]) == (2, 2, 0)
    assert [ln["record_id"] for ln in report["lines"]] == ["OLD-1", "OLD-2"]
    events = events_of(WHO)
    migrated = [e for e in events if e.provenance.get("source") == "migration"]
    assert migrated and {e.provenance["request_id"] for e in migrated} == {"B-2026-01"}
    assert {e.provenance["record_key"] for e in migrated} == {"MIG:OLD-1", "MIG:OLD-2"}
    kinds = {type(e).__name__: e for e in migrated}
    assert kinds["Enrolled"].effective_date == date(2019, 10, 1)  # the original dates
    assert kinds["ContributionPaid"].paid_at.date() == date(2019, 11, 5)
    assert kinds["ContributionPaid"].voucher_no == "MIG-OLD-2" and kinds["ContributionPaid"].tax_office == "MIGRATION"
    count = len(events)
    status, out, _ = run(capsys, "migrate", path, "--batch", "B-2026-02", "--json")
    again = json.loads(out)
    assert status == 0 and again["imported"] == 0 and again["already_imported"] == 2
    assert len(events_of(WHO)) == count  # nothing written twice
    status, out, _ = run(capsys, "migrate", path, "--batch", "B-2026-03")  # Chinese by default
    assert status == 0 and "（批次 B-2026-03）：共 2 行，迁移 0 行，此前已迁移 2 行" in out and "此前已导入" in out
    status, out, _ = run(capsys, "migrate", path, "--batch", "B-2026-03", "--lang", "en")
    assert status == 0 and "(batch B-2026-03): 2 rows, 0 migrated, 2 migrated before" in out
    assert "already imported" in out


def test_bad_rows_are_reported_per_line_and_written_to_the_error_workbook(home, capsys):
    path = sheet(home / "bad.csv", [
        ["OLD-9", "缴费", WHO, "王芳", HANBIN, "", "", "2020", "280.005", "2019-11-05"],
        ["OLD-10", "转移", WHO, "王芳", HANBIN, "", "", "", "", ""],
        ["OLD-11", "参保", number(82), "李四", HANYIN, "610921100001", "2019-10-01", "", "", ""],
        ["OLD-12", "缴费", WHO, "王芳", HANBIN, "", "", "20x0", "280", "2019/13/05"],
    ])
    errors = home / "errors.xlsx"
    status, out, _ = run(capsys, "migrate", path, "--errors", str(errors), "--json")
    report = json.loads(out)
    assert status == 1 and report["errors"] == 4 and report["imported"] == 0
    codes = [ln["code"] for ln in report["lines"]]
    assert codes == ["AMOUNT_INVALID", "KIND_UNKNOWN", "REGION_NOT_IN_SCOPE", "YEAR_INVALID"]
    assert "缴费日期" in report["lines"][3]["message"]
    book = load_workbook(errors)
    assert book.active.max_row == 5 and "错误说明" in [c.value for c in book.active[1]]


def test_a_sheet_without_the_required_columns_loads_nothing(home, capsys):
    path = sheet(home / "wrong.csv", [["x", "y"]], header=["姓名", "证件号码"])
    status, _, err = run(capsys, "migrate", path)
    assert status == 2 and "MIGRATION_COLUMNS" in err and "原系统记录号" in err


def test_the_template_round_trips(home, capsys):
    target = home / "template.xlsx"
    status, out, _ = run(capsys, "migrate", "--template", str(target))
    assert status == 0
    header = [c.value for c in load_workbook(target).active[1]]
    assert header[:2] == ["原系统记录号", "记录类型"] and "缴费日期" in header
    csv_target = home / "template.csv"
    assert run(capsys, "migrate", "--template", str(csv_target))[0] == 0
    assert csv_target.read_text(encoding="utf-8-sig").splitlines()[0].startswith("原系统记录号,记录类型")


def _pay_2026_and_back_pay(rows, who):
    rows.append(["NEW-2026", "缴费", who, "王芳", HANBIN, "", "", "2026", "400", "2026-04-01"])
    for year, share in ((2021, "320"), (2022, "350"), (2023, "380"), (2024, "400")):
        rows.append([f"BACK-{year}", "缴费", who, "王芳", HANBIN, "", "", str(year), share, "2026-03-20"])
    return rows


def test_issue_case_migrated_2020_then_back_paid_is_covered_from_october(home, capsys):
    """Last covered in 2020 (migrated), pays 2026 on 2026-04-01, back-pays 2021-2024: covered from 2026-10-01."""
    path = sheet(home / "case.csv", _pay_2026_and_back_pay([r[:] for r in HISTORY], WHO))
    status, out, err = run(capsys, "migrate", path, "--json")
    assert status == 0, (out, err)
    status, out, err = run(capsys, "entitlement", WHO, "--year", "2026", "--json")
    assert status == 0, err
    y = json.loads(out)["resident"]
    assert (y["gap_years"], y["back_paid_years"], y["waiting_months"]) == (5, 4, 6)
    assert y["coverage_start"] == "2026-10-01"
    assert y["history_note"] is None


def test_issue_case_without_migrated_history_says_earlier_years_are_unknown(home, capsys):
    who = number(83)
    path = sheet(home / "nohist.csv", _pay_2026_and_back_pay([], who)[:1])
    assert run(capsys, "migrate", path, "--json")[0] == 0
    status, out, err = run(capsys, "entitlement", who, "--year", "2026")
    assert status == 0, err
    assert "无从得知" in out and "政策视界" in out
