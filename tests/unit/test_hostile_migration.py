"""Hostile or clumsy migration files: a reused old record id with other content, amounts beyond the gate,
dates from the wrong century, formulas in cells, rows of another region. Nothing is written for a refused row."""
from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from consumers.migration import migrate_file
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from tests.unit.projection_support import HANBIN, HANYIN, number

HEADER = ["原系统记录号", "记录类型", "证件号码", "姓名", "参保地", "网格", "参保日期", "缴费年度", "缴费金额", "缴费日期"]


def _csv(rows) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(HEADER)
    w.writerows(rows)
    return out.getvalue().encode("utf-8")


@pytest.fixture()
def system():
    s = bootstrap(Settings(persistence="memory", id_key=b"hostile-migration"))
    yield s
    s.close()


def _count(system) -> int:
    return system.ledger.recorder.max_notification_id() or 0


def _load(system, rows, **kw):
    return migrate_file(system.ledger, _csv(rows), "x.csv", user="clerk-h", batch_id="H", **kw)[0]


def test_a_reused_record_id_with_other_content_is_a_conflict_not_a_silent_skip(system, hostile):
    who = number(91)
    first = _load(system, [["R-1", "缴费", who, "王芳", HANBIN, "", "", "2020", "280", "2019-11-05"]])
    assert first["imported"] == 1
    person = system.ledger.find_person("RESIDENT_ID", who)
    before = person.version
    again = _load(system, [["R-1", "缴费", who, "王芳", HANBIN, "", "", "2020", "2800", "2019-11-05"]])
    (line,) = again["lines"]
    # kept as a dead letter for reconciliation (ConflictObserved/Rejected in the log), never applied to the person
    assert line["status"] == "error" and line["code"] == "VOUCHER_CONFLICT", line
    assert system.ledger.get_person(person.id).version == before
    assert system.ledger.get_person(person.id).paid_fen_for("2020") == 28000
    same = _load(system, [["R-1", "缴费", who, "王芳", HANBIN, "", "", "2020", "280", "2019-11-05"]])
    assert same["already_imported"] == 1 and system.ledger.get_person(person.id).version == before
    hostile.attempt("migrate: record id reused with another amount", status=None, crashed=False, written=False,
                    leaked=False)


@pytest.mark.parametrize("row, code", [
    (["R-2", "缴费", number(92), "王芳", HANBIN, "", "", "2020", "99999999999", "2019-11-05"], "AMOUNT_TOO_LARGE"),
    (["R-3", "缴费", number(93), "王芳", HANBIN, "", "", "1820", "280", "1819-11-05"], None),
    (["R-4", "缴费", number(94), "王芳", HANBIN, "", "", "2020", "-5", "2019-11-05"], "AMOUNT_INVALID"),
    (["R-5", "参保", number(95), "王芳", HANYIN, "610921100001", "2019-10-01", "", "", ""], "REGION_NOT_IN_SCOPE"),
    (["R-6", "参保", "=HYPERLINK(\"http://x\")", "王芳", HANBIN, "", "2019-10-01", "", "", ""], None),
])
def test_refused_rows_write_nothing(system, hostile, row, code):
    report = _load(system, [row], region_allowed=lambda r: r == HANBIN)
    (line,) = report["lines"]
    assert line["status"] == "error", line
    if code:
        assert line["code"] == code, line
    assert _count(system) == 0
    hostile.attempt(f"migrate: {row[0]} refused", status=None, crashed=False, written=False, leaked=False)
