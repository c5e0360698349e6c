"""The statement consumer on the in-process transport: exactly once, dead letters, results published.

The same handler runs on Kafka and PostgreSQL in tests/integration/test_reconciliation_e2e.py.
"""
from __future__ import annotations

import json
from datetime import date

import pytest

import reconciliation.consumer as statements_module
from consumers.feed_consumer import dead_letter_key
from reconciliation.consumer import StatementsHandler
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.inbound_records import Provenance, TaxPaymentRecord
from reconciliation.model import DiscrepancyClass as C
from reconciliation.factory import reconciler, statement_consumer
from tests.unit.test_reconciliation_support import (
    HANBIN,
    ID_KEY,
    OFFICE,
    Clock,
    at,
    header_bytes,
    line_bytes,
    number,
    voucher,
)

TOPIC = "tax.statements.v1"


@pytest.fixture()
def system():
    s = bootstrap(Settings(persistence="memory", id_key=ID_KEY))
    yield s
    s.close()


def pay(ledger, seq: int, i: int, amount: int = 40000):
    record = TaxPaymentRecord(
        voucher_no=voucher(i), tax_office=OFFICE, id_type="RESIDENT_ID", id_number=number(seq), name="王芳",
        region_code=HANBIN, levy_item="RESIDENT", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
        amount_fen=amount, paid_at=at(), credited_on=None, channel="APP")
    assert ledger.record_tax_record(record, provenance=Provenance(source="kafka")).applied


def produce(broker, *values, key=b"DZ-1"):
    for v in values:
        broker.produce(TOPIC, key=key, value=v)


def drain(loop, rounds=4):
    for _ in range(rounds):
        loop.run_once(timeout=0)


def test_statements_from_the_topic_are_reconciled_and_the_results_published(system):
    broker = system.inprocess_broker()
    recon = reconciler(system, clock=Clock())
    pay(system.ledger, 1, 1)
    pay(system.ledger, 3, 3, amount=35000)
    produce(broker, line_bytes(2, 2), line_bytes(3, 3), b"\xc3\x01garbage", header_bytes(count=3, total=120000),
            line_bytes(1, 1), line_bytes(1, 1))
    loop = statement_consumer(system, recon)
    drain(loop)
    found = sorted((r.klass, r.voucher_no) for r in recon.store.find_discrepancies())
    assert found == [(C.AMOUNT_MISMATCH, voucher(3)), (C.MISSING_IN_LEDGER, voucher(2))]
    # the garbage went to the dead-letter topic with its code, once
    dlq = broker.topic(f"{TOPIC}.dlq").messages()
    assert len(dlq) == 1
    headers = dict(dlq[0].headers)
    assert headers["error.code"] == b"AVRO_BODY_INVALID" and dlq[0].key == dead_letter_key(TOPIC, 0, 2)
    assert all(e["dead_lettered"] for e in recon.store.errors())
    # every change went out as a JSON result, keyed by scope
    results = [json.loads(m.value) for m in broker.topic("reconciliation.results.v1").messages()]
    kinds = sorted(r["type"] for r in results)
    assert kinds == ["DiscrepancyFound", "DiscrepancyFound", "StatementReconciled", "StatementRecordRejected"]
    reconciled = next(r for r in results if r["type"] == "StatementReconciled")
    assert reconciled["result"]["tie_out"]["ok"] and reconciled["schema"] == "medins.reconciliation.result.v1"
    assert recon.store.outbox() == []


def test_a_restarted_consumer_takes_nothing_twice(system):
    broker = system.inprocess_broker()
    recon = reconciler(system, clock=Clock())
    produce(broker, header_bytes(count=2, total=80000), line_bytes(1, 1), b"junk")
    loop = statement_consumer(system, recon)
    drain(loop)
    name = f"ledger-tax-statements:{TOPIC}"
    assert recon.store.positions(name) == {0: 2}
    before = recon.store.dump()
    loop.close()
    again = statement_consumer(system, recon)  # same group: resumes after the stored position
    drain(again)
    assert recon.store.dump() == before
    produce(broker, line_bytes(2, 2))
    drain(again)
    assert recon.store.statement("DZ-1")["state"] == "RECONCILED"
    assert len(broker.topic(f"{TOPIC}.dlq").messages()) == 1


def test_another_consumer_group_reading_everything_again_changes_nothing(system):
    broker = system.inprocess_broker()
    recon = reconciler(system, clock=Clock())
    produce(broker, header_bytes(count=1, total=40000), line_bytes(1, 1), b"junk")
    drain(statement_consumer(system, recon))
    before = {k: v for k, v in recon.store.dump().items() if k != "recon_positions"}
    drain(statement_consumer(system, recon, group="replay"))
    after = {k: v for k, v in recon.store.dump().items() if k != "recon_positions"}
    assert after == before


def test_a_refused_dead_letter_is_sent_again_later(system):
    broker = system.inprocess_broker()
    recon = reconciler(system, clock=Clock())

    class Down:
        def send(self, *a, **k):
            raise RuntimeError("broker down")

        def flush(self):
            pass

    handler = StatementsHandler(recon, id_key=ID_KEY, dead_letters=Down())
    produce(broker, b"junk")
    handler.handle(broker.topic(TOPIC).messages())
    assert [e["dead_lettered"] for e in recon.store.errors()] == [False]
    handler.dead_letters = broker
    assert handler.send_dead_letters() == 1
    assert len(broker.topic(f"{TOPIC}.dlq").messages()) == 1


def test_decoding_in_worker_processes_gives_the_same_rows(system, monkeypatch):
    monkeypatch.setattr(statements_module, "POOL_MIN_RECORDS", 1)
    recon = reconciler(system, clock=Clock())
    values = [header_bytes(count=30, total=30 * 40000)] + [line_bytes(n, n) for n in range(1, 31)] + [b"junk"]
    pooled = StatementsHandler(recon, id_key=ID_KEY, dead_letters=system.inprocess_broker(), decode_workers=2)
    inline = StatementsHandler(recon, id_key=ID_KEY, dead_letters=system.inprocess_broker(), decode_workers=0)
    try:
        assert pooled.decode(values) == inline.decode(values)
    finally:
        pooled.close()


def test_with_decoding_processes_the_handler_stores_one_batch_behind_and_retries_a_failed_one(system, monkeypatch):
    monkeypatch.setattr(statements_module, "POOL_MIN_RECORDS", 1)
    broker = system.inprocess_broker()
    recon = reconciler(system, clock=Clock())
    produce(broker, header_bytes(count=6, total=6 * 40000), *(line_bytes(n, n) for n in range(1, 7)))
    messages = broker.topic(TOPIC).messages()
    handler = StatementsHandler(recon, id_key=ID_KEY, dead_letters=broker, decode_workers=2)
    name = handler.position_name(TOPIC)
    try:
        handler.handle(messages[0:3])
        assert recon.store.positions(name) == {}  # decoding; nothing stored yet
        real_ingest = recon.ingest
        calls = []

        def failing_once(*args, **kwargs):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("database went away")
            return real_ingest(*args, **kwargs)

        monkeypatch.setattr(recon, "ingest", failing_once)
        with pytest.raises(RuntimeError):
            handler.handle(messages[3:5])
        assert recon.store.positions(name) == {}
        handler.handle(messages[3:5])  # the runner hands the batch again: the pending one is stored first
        assert recon.store.positions(name) == {0: 2}
        handler.handle(messages[2:7])  # overlaps what is pending: only the new records are taken
        handler.flush()
        assert recon.store.positions(name) == {0: 6}
        assert recon.store.statement("DZ-1")["lines_received"] == 6
    finally:
        handler.close()
