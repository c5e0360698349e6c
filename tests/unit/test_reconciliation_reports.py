"""What clerks see: the report functions (also for HTTP), the ``ledger reconcile`` commands, CSV and XLSX."""
from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from entrypoints.cli import main
from ledger.domain.errors import DomainError
from reconciliation import reports
from reconciliation.service import Reconciler
from reconciliation.store import SQLiteReconciliationStore, payment_record
from tests.unit.cli_support import run_as
from tests.unit.test_reconciliation_support import (
    HANBIN,
    HANYIN,
    ID_KEY,
    Clock,
    Feed,
    header_bytes,
    line_bytes,
    row,
    voucher,
)


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LEDGER_ID_KEY", ID_KEY.decode())
    monkeypatch.delenv("LEDGER_PERSISTENCE", raising=False)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("LEDGER_RECON_PATH", raising=False)
    return tmp_path


@pytest.fixture()
def seeded(env):
    """Two counties: 汉滨 with a missing-in-ledger and an amount mismatch, 汉阴 matching."""
    store = SQLiteReconciliationStore(env / "reconciliation.sqlite")
    recon = Reconciler(store, clock=Clock())
    with store.transaction():
        store.copy_ledger_rows([payment_record(r) for r in (row(1), row(3, amount=35000), row(5, region=HANYIN))])
    feed = Feed()
    recon.ingest(feed(header_bytes("DZ-HB", count=3, total=120000), line_bytes(1, 1, statement_id="DZ-HB"),
                      line_bytes(2, 2, statement_id="DZ-HB"), line_bytes(3, 3, statement_id="DZ-HB")))
    recon.ingest(feed(header_bytes("DZ-HY", count=1, total=40000, region=HANYIN),
                      line_bytes(1, 5, statement_id="DZ-HY")))
    recon.reconcile_pending()
    yield recon
    store.close()


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_statement_report(seeded):
    report = reports.statement_report(seeded.store, "DZ-HB")
    assert report["state"] == "RECONCILED" and report["line_count"] == 3
    assert sorted(d["class"] for d in report["discrepancies"]) == ["AMOUNT_MISMATCH", "MISSING_IN_LEDGER"]
    assert report["result"]["tie_out"]["total"] == {"statement": [3, 120000], "ledger": [2, 75000],
                                                   "difference": [1, 45000], "explained": [1, 45000]}
    with pytest.raises(DomainError) as err:
        reports.statement_report(seeded.store, "DZ-none")
    assert err.value.code == "STATEMENT_NOT_FOUND"


def test_open_discrepancies_by_region_and_age(seeded):
    assert len(reports.open_discrepancies(seeded.store)) == 2
    assert reports.open_discrepancies(seeded.store, region=HANYIN) == []
    found_at = seeded.clock()
    assert len(reports.open_discrepancies(seeded.store, older_than_days=2, now=found_at + timedelta(days=3))) == 2
    assert reports.open_discrepancies(seeded.store, older_than_days=2, now=found_at + timedelta(days=1)) == []
    with pytest.raises(DomainError):
        reports.open_discrepancies(seeded.store, older_than_days=-1)


def test_county_summary(seeded):
    rows = {r["region_code"]: r for r in reports.county_summary(seeded.store)}
    assert (rows[HANBIN]["collected_fen"], rows[HANBIN]["recorded_fen"], rows[HANBIN]["difference_fen"]) == (
        120000, 75000, 45000)
    assert (rows[HANBIN]["open_discrepancies"], rows[HANBIN]["open_fen"]) == (2, 45000)
    assert (rows[HANYIN]["difference_fen"], rows[HANYIN]["open_discrepancies"]) == (0, 0)
    assert [r["region_code"] for r in reports.county_summary(seeded.store, county=HANYIN)] == [HANYIN]


def test_csv_export_has_a_bom_and_reads_back(seeded):
    data = reports.export_discrepancies(reports.open_discrepancies(seeded.store), "csv")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert sorted((r["class"], r["voucher_no"], r["delta_yuan"]) for r in rows) == [
        ("AMOUNT_MISMATCH", voucher(3), "50.00"), ("MISSING_IN_LEDGER", voucher(2), "400.00")]
    assert all(r["masked_id"].startswith("6109") and "*" in r["masked_id"] for r in rows)


def test_xlsx_export_opens(seeded):
    data = reports.export_discrepancies(reports.open_discrepancies(seeded.store), "xlsx")
    sheet = load_workbook(io.BytesIO(data)).active
    values = list(sheet.values)
    assert values[0][:3] == ("id", "state", "class") and len(values) == 3
    with pytest.raises(DomainError):
        reports.export_discrepancies([], "pdf")


def test_cli_show_open_summary(seeded, capsys):
    code, out, _ = run(capsys, "reconcile", "show", "DZ-HB")
    assert code == 0
    # the tie-out in Chinese by default, English on request; the figures the same
    assert "合计      对账单 1,200.00 元（3 笔）- 账本 750.00 元（2 笔）= 450.00 元（+1 笔）" in out and "：相符" in out
    assert "不相符" not in out and "ties out" not in out and "statement 1,200.00" not in out
    assert "MISSING_IN_LEDGER" in out and "AMOUNT_MISMATCH" in out
    code, en, _ = run(capsys, "reconcile", "show", "DZ-HB", "--lang", "en")
    assert "TOTAL     statement 1,200.00 (3) - ledger 750.00 (2) = 450.00 (+1)" in en and ": ties out" in en
    assert "differences: " in en and "AMOUNT_MISMATCH" in en and "合计" not in en
    code, out, _ = run(capsys, "reconcile", "open", "--region", HANBIN, "--json")
    assert len(json.loads(out)) == 2
    code, out, _ = run(capsys, "reconcile", "summary", "--county", HANBIN)
    assert "1,200.00" in out and "750.00" in out and "450.00" in out
    code, _, err = run(capsys, "reconcile", "show", "nope")
    assert code == 2 and "STATEMENT_NOT_FOUND" in err


def test_cli_explain_then_history_then_export(seeded, capsys, env, monkeypatch):
    (d,) = [x for x in reports.open_discrepancies(seeded.store) if x["class"] == "MISSING_IN_LEDGER"]
    note = "柜台缴费，税票未回传"
    monkeypatch.delenv("LEDGER_TOKEN", raising=False)
    code, _, err = run(capsys, "reconcile", "explain", d["id"], "--note", note)
    assert code == 2 and "TOKEN_MISSING" in err  # who explains is a token's holder, not a name given
    run_as(monkeypatch, env / "other", "clerk", ["610921"], user="clerk.hanyin")
    code, _, err = run(capsys, "reconcile", "explain", d["id"], "--note", note)
    assert code == 2 and "SCOPE_FORBIDDEN" in err
    run_as(monkeypatch, env, "clerk", [HANBIN], user="clerk07")
    code, out, _ = run(capsys, "reconcile", "explain", d["id"], "--note", note)
    assert code == 0 and "EXPLAINED" in out
    assert "处理记录：" in out and "差额" in out and " 元" in out and "history:" not in out  # Chinese by default
    code, out, _ = run(capsys, "reconcile", "discrepancy", d["id"], "--lang", "en")
    assert code == 0 and "history:" in out and "difference" in out and "处理记录" not in out
    code, out, _ = run(capsys, "reconcile", "open")
    assert code == 0 and "未结差异 2 项；净差额" in out and out.splitlines()[0].split()[:3] == ["编号", "状态", "类别"]
    code, out, _ = run(capsys, "reconcile", "open", "--lang", "en")
    assert code == 0 and "2 open; net difference" in out
    code, out, _ = run(capsys, "reconcile", "discrepancy", d["id"], "--json")
    shown = json.loads(out)
    assert [h["action"] for h in shown["history"]] == ["FOUND", "EXPLAINED"]
    assert (shown["note"], shown["explained_by"]) == ("柜台缴费，税票未回传", "clerk07")
    code, _, err = run(capsys, "reconcile", "explain", d["id"], "--note", "")
    assert code == 2 and "NOTE_REQUIRED" in err
    out_file = env / "open.xlsx"
    code, out, _ = run(capsys, "reconcile", "export", "--format", "xlsx", "--out", str(out_file))
    assert code == 0 and out_file.exists() and "已写出 2 项差异" in out
    code, out, _ = run(capsys, "reconcile", "export", "--format", "xlsx", "--out", str(out_file), "--lang", "en")
    assert code == 0 and "wrote 2 discrepancies" in out


def test_cli_run_and_rerun_on_the_embedded_stack(seeded, capsys):
    code, out, _ = run(capsys, "reconcile", "run", "--json")
    assert code == 0 and json.loads(out)["reconciled"] == []
    before = seeded.store.dump()
    code, out, _ = run(capsys, "reconcile", "rerun", "DZ-HB")
    assert code == 0 and "已重新对账：对账单 DZ-HB" in out and "：相符" in out and "ties out" not in out
    code, out, _ = run(capsys, "reconcile", "rerun", "DZ-HB", "--lang", "en")
    assert code == 0 and "compared again: statement DZ-HB" in out and ": ties out" in out
    assert seeded.store.dump() == before

