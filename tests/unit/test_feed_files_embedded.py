"""``ledger feed FEED FILE`` on the embedded default (no broker): straight into the ledger through the feed's
own consumer, with refusals by file line; ``ledger feed statements`` reconciled end to end, and a day with
ledger receipts and no statement reported ``STATEMENT_MISSING`` once it is overdue."""
from __future__ import annotations

import json
from datetime import date

import pytest

from entrypoints.wiring import bootstrap
from infra.settings import load_settings
from ledger.domain.identity import make_resident_id
from tests.unit.cli_support import embedded, run, run_as

OFFICE = "16109020000"
A = make_resident_id("610902", date(1980, 5, 17), 11)
B = make_resident_id("610902", date(1981, 6, 18), 13)
C = make_resident_id("610902", date(1982, 7, 19), 15)

TAX_HEADER = ("voucher_no,tax_office,id_type,id_number,name,region_code,levy_item,period_start,period_end,"
              "amount_fen,paid_at,kind")
STATEMENT_HEADER = ("statement_id,business_date,tax_office,region_code,voucher_no,id_type,id_number,levy_item,"
                    "period_start,period_end,amount_fen,paid_at,kind")


def tax_row(voucher: str, who: str, paid: str, amount: int = 40000) -> str:
    return (f"{voucher},{OFFICE},RESIDENT_ID,{who},王芳,610902,RESIDENT,2026-01-01,2026-12-31,{amount},"
            f"{paid}T10:00:00+08:00,PAYMENT")


def statement_row(statement: str, day: str, voucher: str, who: str, amount: int = 40000) -> str:
    return (f"{statement},{day},{OFFICE},610902,{voucher},RESIDENT_ID,{who},RESIDENT,2026-01-01,2026-12-31,"
            f"{amount},{day}T10:00:00+08:00,PAYMENT")


@pytest.fixture()
def home(tmp_path, monkeypatch):
    embedded(monkeypatch, tmp_path, "feed-embedded-test")
    return tmp_path


def write(path, header: str, *rows: str):
    path.write_text("\n".join((header, *rows)) + "\n", encoding="utf-8")
    return str(path)


def subsidy_events(id_number: str) -> list:
    system = bootstrap(load_settings())
    try:
        person = system.ledger.find_person("RESIDENT_ID", id_number)
        return [e for e in system.ledger.events.get(person.id) if "Subsidy" in type(e).__name__]
    finally:
        system.close()


def test_a_status_file_goes_straight_into_the_ledger_and_again_changes_nothing(home, capsys):
    path = write(home / "status.csv", "record_id,id_type,id_number,name,category,action,valid_from,valid_to,"
                                      "department,document_no",
                 f"R1,RESIDENT_ID,{A},王芳,EXTREME_POVERTY,GRANT,2026-01-01,2026-12-31,汉滨区民政局,TK-1",
                 f"R2,RESIDENT_ID,{B},李四,ORPHAN,REVOKE,2026-01-01,,汉滨区民政局,QX-1")
    status, out, _ = run(capsys, "feed", "status", path, "--json")
    report = json.loads(out)
    assert status == 1  # line 3 refused by the ledger
    assert report["embedded"] is True and report["applied"] == 1 and report["unchanged"] == 0
    assert [(r["line"], r["code"]) for r in report["refused"]] == [(3, "PERSON_NOT_FOUND")]
    granted = subsidy_events(A)
    assert len(granted) == 1 and granted[0].provenance["source"] == "file"
    assert granted[0].provenance["topic"] == "registry.status.v1@file"
    # The same file again: the record is a resend; the refusal is kept again at its new position.
    status, out, _ = run(capsys, "feed", "status", path, "--json")
    again = json.loads(out)
    assert again["applied"] == 0 and again["unchanged"] == 1 and again["refused_rows"] == 1
    assert len(subsidy_events(A)) == 1


def test_refusals_are_dead_letters_a_clerk_lists(home, capsys, monkeypatch):
    path = write(home / "status.csv", "record_id,id_type,id_number,name,category,action,valid_from,valid_to,"
                                      "department,document_no",
                 f"R2,RESIDENT_ID,{B},李四,ORPHAN,REVOKE,2026-01-01,,汉滨区民政局,QX-1")
    for _ in range(2):
        assert run(capsys, "feed", "status", path)[0] == 1
    run_as(monkeypatch, home, "auditor")
    status, out, _ = run(capsys, "dlq", "list", "--topic", "registry.status.v1@file", "--json")
    letters = json.loads(out)
    assert status == 0 and len(letters) == 2 and {d["code"] for d in letters} == {"PERSON_NOT_FOUND"}


def test_a_statements_file_is_reconciled_end_to_end_and_a_missing_day_is_flagged(home, capsys):
    tax = write(home / "tax.csv", TAX_HEADER, tax_row("V1", A, "2025-10-01"), tax_row("V2", B, "2025-10-01"),
                tax_row("V3", C, "2025-10-02"))
    assert run(capsys, "feed", "tax", tax)[0] == 0
    statements = write(home / "s.csv", STATEMENT_HEADER, statement_row("S-1001", "2025-10-01", "V1", A),
                       statement_row("S-1001", "2025-10-01", "V2", B))
    status, out, _ = run(capsys, "feed", "statements", statements, "--json")
    report = json.loads(out)
    assert status == 0 and report["sent"] == 3 and report["applied"] == 3  # the header and two lines
    status, out, _ = run(capsys, "reconcile", "show", "S-1001", "--json")
    shown = json.loads(out)
    assert shown["state"] == "RECONCILED" and shown["discrepancies"] == []

    status, out, _ = run(capsys, "reconcile", "missing", "--as-of", "2025-10-05", "--json")
    missing = json.loads(out)
    assert [(m["code"], m["business_date"], m["recorded_fen"], m["days_overdue"]) for m in missing] == [
        ("STATEMENT_MISSING", "2025-10-02", 40000, 2)]
    # Not overdue yet on the day after (one day allowed by default), nor with a longer allowance.
    assert json.loads(run(capsys, "reconcile", "missing", "--as-of", "2025-10-03", "--json")[1]) == []
    assert json.loads(run(capsys, "reconcile", "missing", "--as-of", "2025-10-05", "--due-days", "3",
                          "--json")[1]) == []
    status, out, _ = run(capsys, "reconcile", "summary", "--as-of", "2025-10-05", "--json")
    rows = {r["business_date"]: r for r in json.loads(out)}
    assert rows["2025-10-02"]["missing_statements"] == 1 and rows["2025-10-01"]["missing_statements"] == 0

    late = write(home / "s2.csv", STATEMENT_HEADER, statement_row("S-1002", "2025-10-02", "V3", C))
    assert run(capsys, "feed", "statements", late)[0] == 0
    assert json.loads(run(capsys, "reconcile", "missing", "--as-of", "2025-10-05", "--json")[1]) == []


def test_a_statements_file_with_a_bad_line_is_not_reconciled_without_it(home, capsys):
    bad_id = A[:-1] + ("0" if A[-1] != "0" else "1")
    statements = write(home / "s.csv", STATEMENT_HEADER, statement_row("S-2001", "2025-10-01", "V1", A),
                       statement_row("S-2001", "2025-10-01", "V2", bad_id),
                       statement_row("S-2001", "2025-10-03", "V4", B))
    status, out, _ = run(capsys, "feed", "statements", statements, "--json")
    report = json.loads(out)
    assert status == 1
    assert [(b["line"], b["code"]) for b in report["errors"]] == [(3, "ID_CHECKSUM"), (4, "STATEMENT_HEADER_MISMATCH")]
    shown = json.loads(run(capsys, "reconcile", "show", "S-2001", "--json")[1])
    assert shown["state"] == "RECEIVING" and shown["line_count"] == 2 and shown["lines_received"] == 1


def test_a_statements_file_with_other_columns_sends_nothing(home, capsys):
    path = write(home / "s.csv", STATEMENT_HEADER + ",colour", statement_row("S-3", "2025-10-01", "V1", A) + ",red")
    status, _, err = run(capsys, "feed", "statements", path)
    assert status == 2 and "error FEED_COLUMNS" in err and "colour" in err
