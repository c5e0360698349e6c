"""Payments migrated from the old system (``ledger migrate``, pseudo tax office MIGRATION) were collected years
ago and never get a tax statement: ``ledger reconcile missing`` must not flag their days STATEMENT_MISSING, while
a day of the tax bureau's own receipts without a statement still is (found by the demo's migration case)."""
from __future__ import annotations

import json
from datetime import date

import pytest

from ledger.domain.identity import make_resident_id
from tests.unit.cli_support import embedded, run, run_as

OFFICE = "16109020000"
A = make_resident_id("610902", date(1980, 5, 17), 21)
B = make_resident_id("610902", date(1981, 6, 18), 23)
C = make_resident_id("610902", date(1982, 7, 19), 25)


def tax_row(voucher: str, who: str, day: str) -> str:
    return (f"{voucher},{OFFICE},RESIDENT_ID,{who},李四,610902,RESIDENT,2026-01-01,2026-12-31,40000,"
            f"{day}T10:00:00+08:00,PAYMENT")


@pytest.fixture()
def home(tmp_path, monkeypatch):
    embedded(monkeypatch, tmp_path, "missing-migration-test")
    run_as(monkeypatch, tmp_path, "clerk", ["610902"], user="clerk-mig")
    return tmp_path


def test_migrated_payments_are_not_missing_statements_but_a_tax_day_is(home, capsys):
    old = home / "old.csv"
    old.write_text("原系统记录号,记录类型,证件号码,姓名,参保地,网格,参保日期,缴费年度,缴费金额,缴费日期\n"
                   f"OLD-1,参保,{A},王芳,610902,610902100001,2019-10-01,,,\n"
                   f"OLD-2,缴费,{A},王芳,610902,,,2020,280.00,2019-11-05\n", encoding="utf-8")
    status, out, err = run(capsys, "migrate", str(old), "--json")
    assert status == 0 and json.loads(out)["imported"] == 2, (out, err)
    tax = home / "tax.csv"
    tax.write_text("voucher_no,tax_office,id_type,id_number,name,region_code,levy_item,period_start,period_end,"
                   "amount_fen,paid_at,kind\n" + tax_row("V1", B, "2025-10-01") + "\n" + tax_row("V2", C, "2025-10-02")
                   + "\n", encoding="utf-8")
    assert run(capsys, "feed", "tax", str(tax))[0] == 0
    statements = home / "s.csv"  # the bureau's statement of the first day only
    statements.write_text("statement_id,business_date,tax_office,region_code,voucher_no,id_type,id_number,levy_item,"
                          "period_start,period_end,amount_fen,paid_at,kind\n"
                          f"S-1,2025-10-01,{OFFICE},610902,V1,RESIDENT_ID,{B},RESIDENT,2026-01-01,2026-12-31,40000,"
                          "2025-10-01T10:00:00+08:00,PAYMENT\n", encoding="utf-8")
    status, out, err = run(capsys, "feed", "statements", str(statements), "--json")
    assert status == 0, (out, err)
    status, out, err = run(capsys, "reconcile", "missing", "--as-of", "2025-10-05", "--json")
    assert status == 0, err
    missing = json.loads(out)
    assert [(m["business_date"], m["tax_office"]) for m in missing] == [("2025-10-02", OFFICE)]
