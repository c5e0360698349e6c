"""Reconciliation end to end on the real Kafka broker and PostgreSQL.

Payments are recorded in the ledger (PostgreSQL event store), published to
``ledger.events.v1`` by the ledger's publisher and projected from Kafka into the
ledger side; a daily statement (header + lines, Avro) is produced to
``tax.statements.v1`` with one discrepancy of each class among matching lines, plus
bad records; the statement consumer reconciles it into PostgreSQL. Each class is found
exactly once and the totals tie out. Then a late payment is recorded in the ledger:
its MISSING_IN_LEDGER discrepancy resolves with a pointer to the ledger event.
"""
from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from events.codec import encode
from events.inbound import TAX_STATEMENT_HEADER, TAX_STATEMENT_LINE
from entrypoints.wiring import bootstrap, ledger_publisher
from infra.settings import Settings, postgres_from_env
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import Provenance, TaxPaymentRecord
from reconciliation.model import DiscrepancyClass
from reconciliation.store import PostgresReconciliationStore
from reconciliation.factory import reconciler, statement_consumer

pytestmark = pytest.mark.integration

KEY = b"reconciliation-e2e-key"
OFFICE = "16109020000"
HANBIN = "610902"
DAY = date(2025, 3, 3)
STATEMENT = "DZ-16109020000-610902-20250303"
FEED = Provenance(source="kafka", topic="tax.payments.v1")


def number(seq: int) -> str:
    return make_resident_id(HANBIN, date(1980, 5, 17), seq)


def voucher(i: int) -> str:
    return f"3246109{i:011d}"


def paid_at(day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, 2, 30, tzinfo=timezone.utc)  # 10:30 in Beijing


def payment(i: int, *, seq: int | None = None, amount: int = 40000, day: date = DAY) -> TaxPaymentRecord:
    return TaxPaymentRecord(
        voucher_no=voucher(i), tax_office=OFFICE, id_type="RESIDENT_ID", id_number=number(i if seq is None else seq),
        name="李娜", region_code=HANBIN, levy_item="RESIDENT", period_start=date(2025, 1, 1),
        period_end=date(2025, 12, 31), amount_fen=amount, paid_at=paid_at(day), credited_on=day + timedelta(days=2),
        channel="APP")


def line(line_no: int, i: int, *, seq: int | None = None, amount: int = 40000, kind: str = "PAYMENT",
         levy: str = "RESIDENT", original: str | None = None) -> dict:
    return {"statement_id": STATEMENT, "line_no": line_no, "voucher_no": voucher(i), "id_type": "RESIDENT_ID",
            "id_number": number(i if seq is None else seq), "levy_item": levy, "period_start": date(2025, 1, 1),
            "period_end": date(2025, 12, 31), "amount_fen": amount, "paid_at": paid_at(), "credited_on": None,
            "kind": kind, "original_voucher_no": original, "original_tax_office": None}


# One line per row: (statement line, what the ledger holds for that voucher)
LINES = [
    line(1, 1), line(2, 2, amount=25000),                           # match
    line(3, 3),                                                     # MISSING_IN_LEDGER (paid late, below)
    line(4, 4),                                                     # AMOUNT_MISMATCH (ledger: 350.00)
    line(5, 5), line(6, 5),                                         # DUPLICATE_VOUCHER (line 6)
    line(7, 7, seq=70),                                             # PERSON_OR_REGION_MISMATCH (ledger: person 7)
    line(8, 8, kind="REFUND", amount=10000, original=voucher(99)),  # REFUND_WITHOUT_ORIGINAL
    line(9, 9),                                                     # BUSINESS_DATE_MISMATCH (ledger: the day before)
    line(10, 10, levy="EMPLOYEE"),                                  # DETAIL_MISMATCH (ledger: RESIDENT)
    line(11, 11),                                                   # match
]
LEDGER = [payment(1), payment(2, amount=25000), payment(4, amount=35000), payment(5), payment(7),
          payment(9, day=DAY - timedelta(days=1)), payment(10), payment(11),
          payment(20, amount=12345)]                                # MISSING_IN_STATEMENT
STATEMENT_TOTAL = sum(-x["amount_fen"] if x["kind"] != "PAYMENT" else x["amount_fen"] for x in LINES)


@pytest.fixture()
def system(pg_env, kafka_bootstrap, topic_prefix):
    postgres = postgres_from_env(pg_env)
    s = bootstrap(Settings(persistence="postgres", postgres=postgres, kafka_bootstrap_servers=kafka_bootstrap,
                           id_key=KEY, topic_prefix=topic_prefix))
    yield s
    s.close()


def read_topic(kafka_bootstrap: str, topic: str, expect: int, timeout: float = 30.0) -> list:
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False, consumer_timeout_ms=1000)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list = []
        deadline = time.monotonic() + timeout
        while len(out) < expect and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                out += records
        return out
    finally:
        consumer.close()


def until(loop, done, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the reconciliation did not get there in time"
        loop.run_once(timeout=1.0)


def test_a_statement_with_one_of_each_discrepancy_and_a_late_payment(system, kafka_bootstrap, topic_prefix):
    ledger = system.ledger
    for record in LEDGER:
        assert ledger.record_tax_record(record, provenance=FEED).applied
    publisher = ledger_publisher(system)
    assert publisher.publish_pending() > 0

    recon = reconciler(system)
    assert isinstance(recon.store, PostgresReconciliationStore)
    loop = statement_consumer(system, recon, ledger_source="kafka")

    # the statement: some lines before the header, a resend, a conflicting resend and a record that is no Avro
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    topic = f"{topic_prefix}tax.statements.v1"
    key = STATEMENT.encode()
    values = [encode(TAX_STATEMENT_LINE, x) for x in LINES[:5]]
    values.append(encode(TAX_STATEMENT_HEADER, {"statement_id": STATEMENT, "business_date": DAY, "tax_office": OFFICE,
                                                "region_code": HANBIN, "line_count": len(LINES),
                                                "total_amount_fen": STATEMENT_TOTAL}))
    values += [encode(TAX_STATEMENT_LINE, x) for x in LINES[5:]]
    values.append(encode(TAX_STATEMENT_LINE, LINES[0]))  # identical resend: nothing
    values.append(encode(TAX_STATEMENT_LINE, {**LINES[0], "amount_fen": 1}))  # STATEMENT_CONFLICT
    values.append(b"\x00 not an Avro record")  # AVRO_BAD_MAGIC
    for value in values:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()

    until(loop, lambda: (recon.store.statement(STATEMENT) or {}).get("state") == "RECONCILED")
    found = recon.store.find_discrepancies()
    assert sorted(d.klass for d in found) == sorted(c.value for c in DiscrepancyClass)  # each class exactly once
    by_class = {d.klass: d for d in found}
    assert by_class["MISSING_IN_LEDGER"].voucher_no == voucher(3)
    assert by_class["DUPLICATE_VOUCHER"].line_no == 6
    assert by_class["MISSING_IN_STATEMENT"].voucher_no == voucher(20)

    result = recon.store.statement(STATEMENT)["result"]
    t = result["tie_out"]
    assert t["ok"] and result["header_total_ok"]
    # statement - ledger = sum of the listed differences, to the fen
    ledger_in_scope = sum(p.amount_fen for p in LEDGER if p.paid_at.date() == DAY)
    assert t["total"]["statement"] == [len(LINES), STATEMENT_TOTAL]
    assert t["total"]["ledger"] == [len(LEDGER) - 1, ledger_in_scope]
    assert t["total"]["difference"] == t["total"]["explained"] == [
        sum(d.delta_count for d in found), STATEMENT_TOTAL - ledger_in_scope]
    assert sum(d.delta_fen for d in found) == STATEMENT_TOTAL - ledger_in_scope == 375000 - 272345 == 102655

    errors = {e["code"] for e in recon.store.errors()}
    assert errors == {"STATEMENT_CONFLICT", "AVRO_BAD_MAGIC"}
    dlq = read_topic(kafka_bootstrap, f"{topic}.dlq", 2)
    assert sorted(dict(r.headers)["error.code"] for r in dlq) == [b"AVRO_BAD_MAGIC", b"STATEMENT_CONFLICT"]

    # the late payment: recorded, published, projected -> resolved with the pointer to its event
    outcome = ledger.record_tax_record(payment(3), provenance=FEED)
    assert outcome.applied
    paid_event = next(str(e.event_id) for e in ledger.events.get(outcome.person_id)
                      if type(e).__name__ == "ContributionPaid")
    publisher.publish_pending()
    missing = by_class["MISSING_IN_LEDGER"]
    until(loop, lambda: recon.store.discrepancy(missing.id).state == "RESOLVED")
    resolved = recon.store.discrepancy(missing.id)
    assert resolved.resolved_by["kind"] == "ledger_event"
    assert resolved.resolved_by["event_id"] == paid_event
    assert resolved.resolved_by["event_type"] == "ContributionPaid"
    assert resolved.resolved_by["source"] == f"kafka:{topic_prefix}ledger.events.v1"
    assert [h.action for h in recon.store.history(missing.id)] == ["FOUND", "RESOLVED"]
    assert len(recon.store.find_discrepancies(states=["OPEN"])) == len(DiscrepancyClass) - 1
    after = recon.store.statement(STATEMENT)["result"]["tie_out"]
    assert after["ok"] and after["total"]["difference"][1] == STATEMENT_TOTAL - ledger_in_scope - 40000

    # every step was published as JSON on reconciliation.results.v1
    until(loop, lambda: not recon.store.outbox())
    results = [json.loads(r.value) for r in read_topic(kafka_bootstrap, f"{topic_prefix}reconciliation.results.v1",
                                                       expect=len(DiscrepancyClass) + 4)]
    kinds = [r["type"] for r in results]
    assert kinds.count("DiscrepancyFound") == len(DiscrepancyClass)
    assert kinds.count("DiscrepancyResolved") == 1 and kinds.count("StatementReconciled") == 2
    resolved_msg = next(r for r in results if r["type"] == "DiscrepancyResolved")
    assert resolved_msg["history"]["pointer"]["event_id"] == paid_event
