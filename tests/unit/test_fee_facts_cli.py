"""Late fees and employer arrears on the command line (embedded default, SQLite): ``ledger fees``,
``ledger clerk pay-late-fee`` / ``waive-late-fee``, ``ledger arrears --by-employer --sort employer_id
--csv/--xlsx`` — the issue #22 case of tests/unit/late_fee_support.py (30,000 fen of fee owed after
the employer paid 1,000,000 fen 60 days late)."""
from __future__ import annotations

from entrypoints.catalogue import _CJK
from entrypoints.http.web.labels import fee_status
from entrypoints.http.web.ledger_exports import fee_arithmetic

import csv
import io
import json

import pytest

from entrypoints.wiring import bootstrap
from infra.settings import load_settings
from tests.unit import late_fee_support as case
from tests.unit.cli_support import embedded, refused, run, run_as

AFTER = "2026-04-01"


@pytest.fixture()
def deployment(tmp_path, monkeypatch, capsys):
    embedded(monkeypatch, tmp_path, "fee-facts-cli")
    monkeypatch.setenv("LEDGER_POLICY_DIR", str(case.policy_dir(tmp_path)))
    system = bootstrap(load_settings())
    try:
        numbers = case.employer_owes_january(system.ledger)
        case.employer_pays_january(system.ledger, numbers)
    finally:
        system.close()
    assert run(capsys, "project", "--quiet")[0] == 0
    run_as(monkeypatch, tmp_path, "clerk", [case.HANBIN], user="clerk.wang")
    return tmp_path, numbers


def fees_json(capsys, *extra: str) -> dict:
    status, out, err = run(capsys, "fees", "--region", case.HANBIN, "--as-of", AFTER, "--json", *extra)
    assert status == 0, err
    return json.loads(out)


def test_fees_shows_the_arithmetic_then_a_payment_clears_it(deployment, capsys):
    status, out, _ = run(capsys, "fees", "--region", case.HANBIN, "--as-of", AFTER)
    assert status == 0
    assert "1,250.00 元 × 60 天 × 0.05%/天 = 37.50 元" in out
    assert f"单位 {case.EMPLOYER}（610902）：8 条，应计 300.00 元，已缴 0.00 元，减免 0.00 元，尚欠 300.00 元" in out
    assert out.splitlines()[0].split()[:4] == ["单位编号", "证件号（脱敏）", "所属期", "本金（元）"]
    status, out, _ = run(capsys, "fees", "--region", case.HANBIN, "--as-of", AFTER, "--lang", "en")
    assert status == 0 and out.splitlines()[0].split()[:2] == ["employer", "ID"]
    assert f"employer {case.EMPLOYER} (610902): 8 rows, accrued 300.00 yuan" in out and "late fees owed 300.00 yuan" in out
    pay = ["clerk", "pay-late-fee", "--employer-id", case.EMPLOYER, "--period", case.MONTH, "--amount-fen", "10000",
           "--voucher-no", "SP-9", "--tax-office", "16109020000", "--paid-on", "2026-03-20"]
    status, out, _ = run(capsys, *pay)
    assert status == 0 and out.startswith("已记录：滞纳金缴纳 100.00 元（票号 SP-9），3 名职工") and "请求 " in out
    assert fees_json(capsys, "--all")["owed_fen"] == 20_000
    status, out, _ = run(capsys, *pay)  # the same voucher again
    assert status == 0 and out.startswith("未变更")
    status, out, _ = run(capsys, *pay, "--lang", "en")
    assert status == 0 and out.startswith("nothing changed: late fee payment of 100.00 yuan (voucher SP-9), 3 employee(s)")
    assert "request " in out and not _CJK.search(out)
    fees = fees_json(capsys, "--all")
    assert fees["fee_paid_fen"] == 10_000
    # the list says each row's arithmetic and status in the run's language: in Chinese the domain's own sentence
    rows = fees["fees"]
    assert [fee_arithmetic(r) for r in rows] == [r["arithmetic"] for r in rows]
    assert [fee_status(r["fee_status"]) for r in rows] == [r["fee_status_label"] for r in rows]
    status, out, _ = run(capsys, "fees", "--region", case.HANBIN, "--as-of", AFTER, "--all", "--lang", "en")
    assert status == 0 and " yuan × 60 days × 0.05%/day = " in out and " yuan paid" in out and not _CJK.search(out), out
    status, _, _ = run(capsys, *pay[:6], "--amount-fen", "20000", "--voucher-no", "SP-10", *pay[10:])
    assert status == 0
    assert fees_json(capsys)["count"] == 0


def test_waiver_needs_reason_and_another_approver_then_clears_it(deployment, capsys, monkeypatch):
    base = ["clerk", "waive-late-fee", "--employer-id", case.EMPLOYER, "--period", case.MONTH]
    refused(capsys, "WAIVER_REASON_REQUIRED", *base, "--reason", " ", "--approver", "li")
    refused(capsys, "WAIVER_SELF_APPROVED", *base, "--reason", "系统故障", "--approver", "clerk.wang")
    assert fees_json(capsys)["owed_fen"] == 30_000  # nothing written
    status, out, _ = run(capsys, *base, "--reason", "系统故障致逾期", "--approver", "li.approver",
                         "--effective-date", "2026-03-25", "--request-id", "w-1")
    assert status == 0 and "待审批人 li.approver 审核" in out
    assert fees_json(capsys)["owed_fen"] == 30_000  # pending: nothing waived yet
    home = deployment[0]
    run_as(monkeypatch, home, "approver", [case.HANBIN], user="li.approver")
    status, out, err = run(capsys, "clerk", "pending")
    assert status == 0 and "双人复核变更（待审核）：1 项" in out, err
    status, out, err = run(capsys, "clerk", "pending", "--lang", "en")
    assert status == 0 and "maker-checker changes (pending): 1" in out, err
    # the pending change's line follows --lang (its reason is the clerk's own words); times in Beijing time
    assert "[pending] late fee waiver (region 610902): waive the late fee of 2026-01" in out
    assert "Beijing time" in out and "待审核" not in out and "滞纳金" not in out and "+00:00" not in out
    status, out, err = run(capsys, "clerk", "approve", "w-1")
    assert status == 0 and out.startswith("已批准：w-1  [已批准] 滞纳金减免（参保地 610902）"), out
    assert "已已" not in out and "北京时间" in out
    status, out, err = run(capsys, "clerk", "approve", "w-1", "--lang", "en")
    assert status == 0 and out.startswith("nothing changed (the change is approved): w-1  [approved] late fee"), out
    run_as(monkeypatch, home, "clerk", [case.HANBIN], user="clerk.wang")
    status, out, _ = run(capsys, "fees", "--region", case.HANBIN, "--as-of", AFTER, "--all")
    assert "已减免" in out and "减免理由：系统故障致逾期，审批人：li.approver" in out
    assert fees_json(capsys)["count"] == 0


def test_arrears_by_employer_sorted_and_exported(deployment, capsys, tmp_path):
    status, out, _ = run(capsys, "arrears", "--region", case.HANBIN, "--as-of", AFTER, "--sort", "employer_id")
    assert status == 0 and case.EMPLOYER in out
    assert f"{case.EMPLOYER}（610902）：8 人，月份 2026-01；欠缴 0.00 元 + 滞纳金 300.00 元 = 300.00 元" in out
    status, out, _ = run(capsys, "arrears", "--region", case.HANBIN, "--as-of", AFTER, "--sort", "employer_id",
                         "--lang", "en")
    assert f"{case.EMPLOYER} (610902): 8 persons, months 2026-01; outstanding 0.00 + late fee 300.00 = 300.00 yuan" \
        in out
    status, out, _ = run(capsys, "arrears", "--region", case.HANBIN, "--as-of", AFTER, "--by-employer", "--json")
    totals = json.loads(out)
    assert [(t["employer_id"], t["persons"], t["total_fen"]) for t in totals] == [(case.EMPLOYER, 8, 30_000)]
    target = tmp_path / "arrears.xlsx"
    assert run(capsys, "arrears", "--region", case.HANBIN, "--as-of", AFTER, "--xlsx", str(target))[0] == 0
    from openpyxl import load_workbook

    book = load_workbook(target)
    assert book.sheetnames == ["单位欠费合计", "欠费明细"]
    assert list(book["单位欠费合计"].iter_rows(values_only=True))[1][1] == case.EMPLOYER
    target = tmp_path / "arrears.csv"
    assert run(capsys, "arrears", "--region", case.HANBIN, "--as-of", AFTER, "--csv", str(target),
               "--by-employer")[0] == 0
    lines = list(csv.reader(io.StringIO(target.read_bytes().decode("utf-8-sig"))))
    assert lines[1][1] == case.EMPLOYER and lines[1][7] == "300.00"
    target = tmp_path / "fees.csv"
    assert run(capsys, "fees", "--region", case.HANBIN, "--as-of", AFTER, "--csv", str(target))[0] == 0
    text = target.read_bytes().decode("utf-8-sig")
    assert text.count("× 60 天") == 8 and not any(n in text for n in deployment[1])
