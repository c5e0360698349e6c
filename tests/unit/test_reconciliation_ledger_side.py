"""The ledger side: payment events of a real (in-memory) ledger into rows, and the late payment that resolves."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from events.ledger_events import decode_event, encode_event
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.inbound_records import Provenance, TaxPaymentRecord
from ledger.domain.history import ProjectionError
from reconciliation.ledger_side import payment_rows
from reconciliation.model import DiscrepancyClass as C
from reconciliation.ledger_side_runner import LedgerSideRunner
from reconciliation.service import Reconciler
from reconciliation.store import SQLiteReconciliationStore, StoreError
from projections.sources import NotificationLogSource
from tests.unit.test_reconciliation_support import (
    HANBIN,
    HANYIN,
    ID_KEY,
    OFFICE,
    Clock,
    Feed,
    header_bytes,
    line_bytes,
    number,
    person,
    voucher,
)

FEED = Provenance(source="kafka", topic="tax.payments.v1", partition=0, offset=1)
# 01:00 on 3 March in Beijing is still 2 March in UTC: the business date is the Beijing one.
LATE_EVENING_UTC = datetime(2025, 3, 2, 17, 0, tzinfo=timezone.utc)


@pytest.fixture()
def ledger():
    system = bootstrap(Settings(persistence="memory", id_key=ID_KEY))
    yield system.ledger
    system.close()


@pytest.fixture()
def recon():
    store = SQLiteReconciliationStore(":memory:")
    yield Reconciler(store, clock=Clock())
    store.close()


def record(seq: int, i: int, *, kind: str = "PAYMENT", amount: int = 40000, paid_at: datetime = LATE_EVENING_UTC,
           original: str | None = None, region: str = HANBIN, levy: str = "RESIDENT") -> TaxPaymentRecord:
    return TaxPaymentRecord(
        voucher_no=voucher(i), tax_office=OFFICE, id_type="RESIDENT_ID", id_number=number(seq), name="王芳",
        region_code=region, levy_item=levy, period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
        amount_fen=amount, paid_at=paid_at, credited_on=date(2025, 3, 5), channel="APP", kind=kind,
        original_voucher_no=original, reason="" if kind == "PAYMENT" else "退费")


def pay(ledger, *records):
    for r in records:
        outcome = ledger.record_tax_record(r, provenance=FEED)
        assert outcome.applied, outcome.message


def runner(ledger, recon, batch_size=3):
    return LedgerSideRunner(recon.store, NotificationLogSource(ledger, page_size=2), recon, batch_size=batch_size)


def test_payments_refunds_and_reversals_become_one_row_per_voucher(ledger, recon):
    pay(ledger, record(1, 1), record(2, 2, region=HANYIN, amount=38000),
        record(1, 3, kind="REFUND", amount=15000, original=voucher(1), paid_at=LATE_EVENING_UTC + timedelta(days=2)),
        record(2, 4, kind="REVERSAL", amount=38000, original=voucher(2), paid_at=LATE_EVENING_UTC + timedelta(days=9)))
    result = runner(ledger, recon).run_once()
    assert result.rows == 4 and result.batches >= 2
    rows = recon.store.ledger_rows([(OFFICE, voucher(i)) for i in (1, 2, 3, 4)])
    paid, other, refund, reversal = (rows[(OFFICE, voucher(i))] for i in (1, 2, 3, 4))
    assert (paid.business_date, paid.region_code, paid.levy_item, paid.person_id, paid.signed_fen) == (
        date(2025, 3, 3), HANBIN, "RESIDENT", person(1), 40000)
    assert paid.event_type == "ContributionPaid" and paid.credited_on == date(2025, 3, 5)
    assert (refund.business_date, refund.region_code, refund.person_id, refund.signed_fen, refund.original_voucher_no) \
        == (date(2025, 3, 5), HANBIN, person(1), -15000, voucher(1))
    assert (reversal.kind, reversal.region_code, reversal.signed_fen, reversal.business_date) == (
        "REVERSAL", HANYIN, -38000, date(2025, 3, 12))
    assert other.region_code == HANYIN
    # caught up: nothing more; the position is the log's end
    again = runner(ledger, recon).run_once()
    assert (again.batches, again.rows) == (0, 0)
    assert recon.store.positions("ledger:log") == {0: ledger.recorder.max_notification_id()}


def test_kafka_envelopes_give_the_same_rows_as_the_log(ledger, recon):
    pay(ledger, record(1, 1), record(1, 3, kind="REFUND", amount=15000, original=voucher(1)))
    events = [ledger.mapper.to_domain_event(n) for n in ledger.recorder.select_notifications(1, 100)]
    person_events = [e for e in events if type(e).__module__ == "ledger.domain.person"]
    from_log = payment_rows(person_events, lambda key: None)
    from_kafka = payment_rows([decode_event(encode_event(e)) for e in person_events], lambda key: None)
    assert from_log == from_kafka and len(from_log) == 2


def test_a_redelivered_event_changes_nothing_and_a_second_writer_is_refused(ledger, recon):
    pay(ledger, record(1, 1))
    r = runner(ledger, recon)
    r.run_once()
    before = recon.store.dump()
    events = [ledger.mapper.to_domain_event(n) for n in ledger.recorder.select_notifications(1, 100)]
    rows = payment_rows([e for e in events if type(e).__module__ == "ledger.domain.person"], lambda key: None)
    with recon.store.transaction():
        assert recon.store.put_ledger_rows(list(rows.values())) == []
    assert recon.store.dump() == before
    from projections.sources import Batch

    with pytest.raises(StoreError) as err:
        r.apply(Batch([], {0: (None, 5)}))
    assert err.value.code == "POSITION_MOVED"


def test_a_refund_whose_payment_was_never_projected_is_refused():
    refund = {"event_type": "ContributionRefunded", "person_id": person(1), "version": 4, "event_id": "e4",
              "tax_office": OFFICE, "refund_voucher_no": voucher(3), "original_tax_office": OFFICE,
              "original_voucher_no": voucher(1), "amount_fen": 100, "refunded_at": LATE_EVENING_UTC}
    with pytest.raises(ProjectionError) as err:
        payment_rows([refund], lambda key: None)
    assert err.value.code == "PAYMENT_UNKNOWN"


def test_a_late_payment_in_the_ledger_resolves_missing_in_ledger_with_a_pointer_to_its_event(ledger, recon):
    pay(ledger, record(1, 1))
    side = runner(ledger, recon)
    side.run_once()
    feed = Feed()
    recon.ingest(feed(header_bytes(count=2, total=80000), line_bytes(1, 1, paid=LATE_EVENING_UTC),
                      line_bytes(2, 2, paid=LATE_EVENING_UTC)))
    recon.reconcile_pending()
    (d,) = recon.store.find_discrepancies()
    assert (d.klass, d.voucher_no, d.state) == (C.MISSING_IN_LEDGER, voucher(2), "OPEN")
    outcome = ledger.record_tax_record(record(2, 2), provenance=FEED)
    paid_event = next(str(e.event_id) for e in ledger.events.get(outcome.person_id)
                      if type(e).__name__ == "ContributionPaid")
    assert paid_event in outcome.event_ids
    result = side.run_once()
    assert (result.rows, result.scopes) == (1, 1)
    resolved = recon.store.discrepancy(d.id)
    assert resolved.state == "RESOLVED"
    assert resolved.resolved_by == {"kind": "ledger_event", "event_id": paid_event, "event_type": "ContributionPaid",
                                    "person_id": str(outcome.person_id), "version": resolved.resolved_by["version"],
                                    "voucher": f"{OFFICE}|{voucher(2)}", "source": "log"}
    assert recon.store.statement("DZ-1")["result"]["tie_out"]["total"]["difference"] == [0, 0]
