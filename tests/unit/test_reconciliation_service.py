"""The reconciliation service on the SQLite store: statements arriving in pieces, bad input, time limits,
the discrepancy lifecycle, corrections and re-runs."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from ledger.domain.errors import DomainError
from reconciliation.compare import reconcile
from reconciliation.model import DiscrepancyClass as C
from reconciliation.model import Scope
from reconciliation.service import Reconciler, missing_ranges
from reconciliation.store import SQLiteReconciliationStore, payment_record
from tests.unit.test_reconciliation_compare import everything
from tests.unit.test_reconciliation_support import (
    DAY,
    HANBIN,
    OFFICE,
    Clock,
    Feed,
    header_bytes,
    line_bytes,
    row,
    voucher,
)

SCOPE = Scope(DAY, OFFICE, HANBIN)


@pytest.fixture()
def clock():
    return Clock()


@pytest.fixture()
def recon(clock):
    store = SQLiteReconciliationStore(":memory:")
    yield Reconciler(store, clock=clock, incomplete_after=timedelta(hours=2))
    store.close()


@pytest.fixture()
def feed():
    return Feed()


def put_ledger(recon, *rows):
    with recon.store.transaction():
        recon.store.copy_ledger_rows([payment_record(r) for r in rows])


def by_class(recon, **filters):
    return sorted((r.klass, r.voucher_no, r.state) for r in recon.store.find_discrepancies(**filters))


def state(recon, sid="DZ-1"):
    return recon.store.statement(sid)["state"]


def codes(recon, sid=None):
    return sorted(e["code"] for e in recon.store.errors(statement_id=sid))


# --------------------------------------------------------------------------- arriving in pieces
def test_lines_before_their_header_then_the_header_completes_the_statement(recon, feed):
    put_ledger(recon, row(1))
    r = recon.ingest(feed(line_bytes(2, 2), line_bytes(1, 1)))
    assert (r.applied, r.completed, state(recon)) == (2, [], "RECEIVING")
    assert recon.reconcile_pending() == []
    r = recon.ingest(feed(header_bytes(count=2, total=80000)))
    assert r.completed == ["DZ-1"] and state(recon) == "COMPLETE"
    assert recon.reconcile_pending() == ["DZ-1"]
    assert state(recon) == "RECONCILED"
    assert by_class(recon) == [(C.MISSING_IN_LEDGER, voucher(2), "OPEN")]
    result = recon.store.statement("DZ-1")["result"]
    assert result["tie_out"]["ok"] and result["tie_out"]["total"]["difference"] == [1, 40000]


def test_a_header_first_and_lines_over_several_batches(recon, feed):
    put_ledger(recon, row(1), row(2), row(3))
    recon.ingest(feed(header_bytes(count=3, total=120000), line_bytes(1, 1)))
    recon.ingest(feed(line_bytes(2, 2)))
    assert state(recon) == "RECEIVING"
    r = recon.ingest(feed(line_bytes(3, 3)))
    assert r.completed == ["DZ-1"]
    recon.reconcile_pending()
    assert by_class(recon) == []
    assert recon.store.statement("DZ-1")["result"]["tie_out"]["total"]["statement"] == [3, 120000]


def test_an_empty_day_is_complete_with_its_header(recon, feed):
    put_ledger(recon, row(1))
    assert recon.ingest(feed(header_bytes(count=0, total=0))).completed == ["DZ-1"]
    recon.reconcile_pending()
    assert by_class(recon) == [(C.MISSING_IN_STATEMENT, voucher(1), "OPEN")]


def test_resends_change_nothing_and_a_different_resend_is_kept_as_a_conflict(recon, feed):
    put_ledger(recon, row(1), row(2))
    recon.ingest(feed(header_bytes(count=2, total=80000), line_bytes(1, 1)))
    r = recon.ingest(feed(line_bytes(1, 1), header_bytes(count=2, total=80000), line_bytes(2, 2), line_bytes(2, 2)))
    assert (r.applied, r.unchanged, r.rejected) == (1, 3, [])
    before = recon.store.dump()
    r = recon.ingest(feed(line_bytes(2, 2, amount=1), header_bytes(count=3, total=80000)))
    assert sorted(code for _, code in r.rejected) == ["STATEMENT_CONFLICT", "STATEMENT_CONFLICT"]
    after = recon.store.dump()
    assert after["recon_lines"] == before["recon_lines"] and after["recon_statements"] == before["recon_statements"]
    kept = recon.store.errors(statement_id="DZ-1")
    assert {e["code"] for e in kept} == {"STATEMENT_CONFLICT"} and all(e["raw"] for e in kept)
    assert kept[0]["line_no"] == 2 or kept[1]["line_no"] == 2
    recon.reconcile_pending()
    assert by_class(recon) == []  # the conflicting versions were not applied


def test_lines_numbered_beyond_the_header_count_are_refused_whichever_comes_first(recon, feed):
    recon.ingest(feed(line_bytes(3, 3), line_bytes(1, 1)))
    r = recon.ingest(feed(header_bytes(count=2, total=80000), line_bytes(4, 4), line_bytes(2, 2)))
    assert [c for _, c in r.rejected] == ["LINE_NO_OUT_OF_RANGE"]
    assert codes(recon, "DZ-1") == ["LINE_NO_OUT_OF_RANGE", "LINE_NO_OUT_OF_RANGE"]
    assert recon.store.line_numbers("DZ-1") == [1, 2]
    assert r.completed == ["DZ-1"]
    s = recon.store.statement("DZ-1")
    assert (s["lines_received"], s["lines_fen"]) == (2, 80000)


# --------------------------------------------------------------------------- bad input
def test_malformed_records_are_kept_with_a_code_and_the_statement_waits_for_a_corrected_resend(recon, feed):
    put_ledger(recon, row(1), row(2), row(3))
    items = feed(header_bytes(count=3, total=120000), line_bytes(1, 1), line_bytes(2, 2, voucher_no="32 46/ 1"),
                 line_bytes(3, 3, amount=-5), b"not avro at all",
                 line_bytes(3, 3, id_number="610902198005170000"))
    r = recon.ingest(items)
    assert [c for _, c in r.rejected] == ["VOUCHER_MALFORMED", "AMOUNT_INVALID", "AVRO_BAD_MAGIC", "ID_CHECKSUM"]
    errors = recon.store.errors()
    assert {e["code"]: e["line_no"] for e in errors if e["statement_id"]} == {
        "VOUCHER_MALFORMED": 2, "AMOUNT_INVALID": 3, "ID_CHECKSUM": 3}
    assert all(e["raw"] is not None and not e["dead_lettered"] for e in errors)
    assert state(recon) == "RECEIVING"
    r = recon.ingest(feed(line_bytes(2, 2), line_bytes(3, 3)))
    assert r.completed == ["DZ-1"] and r.rejected == []
    recon.reconcile_pending()
    assert by_class(recon) == []


def test_a_header_whose_total_disagrees_with_its_lines_is_reported_and_the_lines_are_compared(recon, feed):
    put_ledger(recon, row(1))
    recon.ingest(feed(header_bytes(count=2, total=90000), line_bytes(1, 1), line_bytes(2, 2)))
    recon.reconcile_pending()
    assert codes(recon, "DZ-1") == ["HEADER_TOTAL_MISMATCH"]
    error = recon.store.errors(statement_id="DZ-1")[0]
    assert error["detail"] == {"header_total_fen": 90000, "lines_total_fen": 80000}
    result = recon.store.statement("DZ-1")["result"]
    assert not result["header_total_ok"] and result["tie_out"]["ok"]
    assert by_class(recon) == [(C.MISSING_IN_LEDGER, voucher(2), "OPEN")]


# --------------------------------------------------------------------------- the time limit
def test_a_statement_that_never_completes_is_incomplete_after_the_time_limit_not_reconciled(recon, feed, clock):
    put_ledger(recon, row(1))
    recon.ingest(feed(header_bytes(count=5, total=200000), line_bytes(1, 1), line_bytes(3, 3)))
    clock.advance(hours=1, minutes=59)
    assert recon.check_incomplete() == []
    clock.advance(minutes=2)
    assert recon.check_incomplete() == ["DZ-1"]
    assert state(recon) == "INCOMPLETE"
    error = recon.store.errors(statement_id="DZ-1")[0]
    assert error["code"] == "STATEMENT_INCOMPLETE" and error["detail"]["missing"] == ["2", "4-5"]
    assert "2 of 5 lines" in error["message"]
    assert recon.reconcile_pending() == [] and by_class(recon) == []
    assert recon.check_incomplete() == []  # reported once
    # the rest arrives late: compared then
    r = recon.ingest(feed(line_bytes(2, 2), line_bytes(4, 4), line_bytes(5, 5)))
    assert r.completed == ["DZ-1"]
    recon.reconcile_pending()
    assert state(recon) == "RECONCILED"
    assert len(by_class(recon)) == 4


def test_a_statement_without_its_header_is_incomplete_too(recon, feed, clock):
    recon.ingest(feed(line_bytes(1, 1)))
    clock.advance(hours=3)
    assert recon.check_incomplete() == ["DZ-1"]
    assert "no header yet" in recon.store.errors(statement_id="DZ-1")[0]["message"]


def test_missing_ranges():
    assert missing_ranges([1, 3, 4, 8], 10) == ["2", "5-7", "9-10"]
    assert missing_ranges([], 0) == []


# --------------------------------------------------------------------------- the store path is the pure path
def test_the_stored_comparison_gives_what_the_pure_comparison_gives(recon, feed):
    lines, rows, context = everything()
    put_ledger(recon, *rows, *context.elsewhere.values())
    records = []
    for x in lines:
        extra = {"original": x.original_voucher_no, "kind": x.kind, "amount": x.amount_fen, "levy": x.levy_item,
                 "paid": x.paid_at}
        seq = 70 if x.voucher_no == voucher(7) else int(x.voucher_no[-3:])
        records.append(line_bytes(x.line_no, int(x.voucher_no[-3:]), seq=seq, **extra))
    total = sum(x.signed_fen for x in lines)
    recon.ingest(feed(header_bytes(count=len(lines), total=total), *records))
    recon.reconcile_pending()
    from tests.unit.test_reconciliation_support import header

    pure = reconcile(header(count=len(lines), total=total), recon.store.lines("DZ-1"), rows, context)
    stored = {r.id: r for r in recon.store.find_discrepancies()}
    assert {d.id: d.values() for d in pure.discrepancies} == {i: r.values for i, r in stored.items()}
    assert recon.store.statement("DZ-1")["result"]["tie_out"] == pure.totals.as_dict()
    assert sorted(r.klass for r in stored.values()) == sorted(c.value for c in C)


# --------------------------------------------------------------------------- lifecycle
def test_explain_then_a_late_payment_resolves_it_with_a_pointer_to_its_event(recon, feed, clock):
    put_ledger(recon, row(1))
    recon.ingest(feed(header_bytes(count=2, total=80000), line_bytes(1, 1), line_bytes(2, 2)))
    recon.reconcile_pending()
    (d,) = recon.store.find_discrepancies()
    clock.advance(hours=1)
    with pytest.raises(DomainError) as err:
        recon.explain(d.id, note=" ", user="clerk01")
    assert err.value.code == "NOTE_REQUIRED"
    explained = recon.explain(d.id, note="paid at the counter, voucher scanned late", user="clerk01")
    assert (explained.state, explained.explained_by) == ("EXPLAINED", "clerk01")
    clock.advance(hours=1)
    late = row(2)
    with recon.store.transaction():
        new = recon.store.put_ledger_rows([late], source="log")
        assert new == [late]
        recon.ledger_changed(new, source="log")
    resolved = recon.store.discrepancy(d.id)
    assert resolved.state == "RESOLVED"
    assert resolved.resolved_by == late.pointer("log")
    assert resolved.resolved_by["event_id"] == "event-2"
    history = recon.store.history(d.id)
    assert [(h.seq, h.action, h.state) for h in history] == [
        (1, "FOUND", "OPEN"), (2, "EXPLAINED", "EXPLAINED"), (3, "RESOLVED", "RESOLVED")]
    assert history[0].pointer["kind"] == "statement" and history[1].user == "clerk01"
    assert recon.store.statement("DZ-1")["result"]["tie_out"]["total"]["difference"] == [0, 0]
    with pytest.raises(DomainError) as err:
        recon.explain(d.id, note="again", user="clerk01")
    assert err.value.code == "DISCREPANCY_RESOLVED"


def test_a_late_payment_with_another_amount_resolves_one_class_and_opens_another(recon, feed):
    recon.ingest(feed(header_bytes(count=1, total=40000), line_bytes(1, 1)))
    recon.reconcile_pending()
    (missing,) = recon.store.find_discrepancies()
    with recon.store.transaction():
        recon.ledger_changed(recon.store.put_ledger_rows([row(1, amount=30000)]), source="log")
    assert recon.store.discrepancy(missing.id).state == "RESOLVED"
    assert by_class(recon, states=["OPEN"]) == [(C.AMOUNT_MISMATCH, voucher(1), "OPEN")]


def test_the_original_of_a_refund_arriving_resolves_refund_without_original(recon, feed):
    recon.ingest(feed(header_bytes(count=1, total=-10000),
                      line_bytes(1, 9, kind="REFUND", amount=10000, original=voucher(99))))
    recon.reconcile_pending()
    (d,) = recon.store.find_discrepancies()
    assert d.klass == C.REFUND_WITHOUT_ORIGINAL
    original = row(99, day=DAY - timedelta(days=30))
    with recon.store.transaction():
        recon.ledger_changed(recon.store.put_ledger_rows([original]), source="log")
    assert recon.store.discrepancy(d.id).resolved_by["event_id"] == original.event_id
    assert by_class(recon, states=["OPEN"]) == [(C.MISSING_IN_LEDGER, voucher(9), "OPEN")]


def test_a_corrected_statement_supersedes_the_first_and_resolves_what_it_corrects(recon, feed, clock):
    put_ledger(recon, row(1), row(2))
    recon.ingest(feed(header_bytes("DZ-1", count=2, total=80001), line_bytes(1, 1), line_bytes(2, 2, amount=40001)))
    recon.reconcile_pending()
    (d,) = recon.store.find_discrepancies()
    assert d.klass == C.AMOUNT_MISMATCH
    clock.advance(hours=5)
    recon.ingest(feed(header_bytes("DZ-1b", count=2, total=80000), line_bytes(1, 1, statement_id="DZ-1b"),
                      line_bytes(2, 2, statement_id="DZ-1b")))
    recon.reconcile_pending()
    assert (state(recon, "DZ-1"), state(recon, "DZ-1b")) == ("SUPERSEDED", "RECONCILED")
    assert recon.store.statement("DZ-1")["superseded_by"] == "DZ-1b"
    resolved = recon.store.discrepancy(d.id)
    assert resolved.state == "RESOLVED" and resolved.resolved_by["statement_id"] == "DZ-1b"
    assert resolved.resolved_by["source"].startswith("tax.statements.v1/0/")


def test_a_correction_that_keeps_a_difference_keeps_the_same_discrepancy(recon, feed, clock):
    recon.ingest(feed(header_bytes("DZ-1", count=1, total=40000), line_bytes(1, 1)))
    recon.reconcile_pending()
    (d,) = recon.store.find_discrepancies()
    recon.explain(d.id, note="ask the bureau", user="clerk01")
    clock.advance(hours=5)
    recon.ingest(feed(header_bytes("DZ-2", count=1, total=40000), line_bytes(1, 1, statement_id="DZ-2")))
    recon.reconcile_pending()
    again = recon.store.discrepancy(d.id)
    assert again.state == "OPEN" and again.statement_id == "DZ-2"  # figures moved to the new statement
    assert [h.action for h in recon.store.history(d.id)] == ["FOUND", "EXPLAINED", "CHANGED"]


def test_an_older_statement_completing_after_its_correction_does_not_replace_it(recon, feed, clock):
    recon.ingest(feed(header_bytes("DZ-old", count=2, total=80000), line_bytes(1, 1, statement_id="DZ-old")))
    clock.advance(hours=1)
    recon.ingest(feed(header_bytes("DZ-new", count=1, total=40000), line_bytes(1, 1, statement_id="DZ-new")))
    recon.reconcile_pending()
    recon.ingest(feed(line_bytes(2, 2, statement_id="DZ-old")))
    recon.reconcile_pending()
    assert (state(recon, "DZ-old"), state(recon, "DZ-new")) == ("SUPERSEDED", "RECONCILED")


def test_a_resolved_discrepancy_found_again_is_reopened(recon, feed, clock):
    recon.ingest(feed(header_bytes("DZ-1", count=1, total=40000), line_bytes(1, 1)))
    recon.reconcile_pending()
    (d,) = recon.store.find_discrepancies()
    clock.advance(hours=1)
    recon.ingest(feed(header_bytes("DZ-2", count=0, total=0)))
    recon.reconcile_pending()
    assert recon.store.discrepancy(d.id).state == "RESOLVED"
    clock.advance(hours=1)
    recon.ingest(feed(header_bytes("DZ-3", count=1, total=40000), line_bytes(1, 1, statement_id="DZ-3")))
    recon.reconcile_pending()
    assert [h.action for h in recon.store.history(d.id)] == ["FOUND", "RESOLVED", "REOPENED"]
    assert recon.store.discrepancy(d.id).state == "OPEN"


def test_statements_of_two_counties_see_each_other(recon, feed):
    """The ledger has voucher 8 in 汉阴 and 汉阴's statement does not list it; 汉滨's does."""
    put_ledger(recon, row(8, region="610921"))
    recon.ingest(feed(header_bytes("DZ-HY", count=0, total=0, region="610921")))
    recon.reconcile_pending()
    assert by_class(recon) == [(C.MISSING_IN_STATEMENT, voucher(8), "OPEN")]
    recon.ingest(feed(header_bytes("DZ-HB", count=1, total=40000), line_bytes(1, 8, statement_id="DZ-HB")))
    recon.reconcile_pending()
    assert by_class(recon, states=["OPEN"]) == [(C.PERSON_OR_REGION_MISMATCH, voucher(8), "OPEN"),
                                                (C.PERSON_OR_REGION_MISMATCH, voucher(8), "OPEN")]
    assert {s: recon.store.statement(s)["result"]["tie_out"]["ok"] for s in ("DZ-HY", "DZ-HB")} == {
        "DZ-HY": True, "DZ-HB": True}


# --------------------------------------------------------------------------- re-running
def test_rerunning_a_reconciliation_gives_the_same_result_and_writes_nothing(recon, feed, clock):
    lines, rows, context = everything()
    put_ledger(recon, *rows, *context.elsewhere.values())
    recon.ingest(feed(header_bytes(count=3, total=40000), line_bytes(1, 1), line_bytes(2, 3), line_bytes(3, 5)))
    recon.ingest(feed(line_bytes(3, 5)))
    recon.reconcile_pending()
    before = recon.store.dump()
    clock.advance(days=3)
    result = recon.rerun("DZ-1")
    assert recon.store.dump() == before
    assert result == json.loads(json.dumps(recon.store.statement("DZ-1")["result"]))
    with pytest.raises(DomainError) as err:
        recon.rerun("DZ-nope")
    assert err.value.code == "STATEMENT_NOT_FOUND"


def test_every_change_is_queued_as_a_result(recon, feed):
    recon.ingest(feed(header_bytes(count=1, total=40000), line_bytes(1, 1), b"junk"))
    recon.reconcile_pending()
    kinds = [json.loads(v)["type"] for _, _, _, v in recon.store.outbox()]
    assert kinds == ["StatementRecordRejected", "DiscrepancyFound", "StatementReconciled"]
    (_, _, key, value) = recon.store.outbox()[1]
    assert key == SCOPE.key and json.loads(value)["discrepancy"]["class"] == "MISSING_IN_LEDGER"
    recon.rerun("DZ-1")
    assert len(recon.store.outbox()) == 3
