"""Issue 4, end to end: feed records on Kafka (Avro) -> the ledger (PostgreSQL) -> ``ledger.events.v1``.

A small hand-made scenario on the real broker and PostgreSQL: payments (one resent), a
refund of one of them, a subsidy grant that re-assesses a year a clerk had assessed, and
a household-registry death that ends an enrollment. The three feed consumers and the
publisher run in-process; the test then reads ``{prefix}ledger.events.v1`` back and
checks that every person event of the ledger is there, once, and per person in order
(versions 1..n, no gaps).
"""
from __future__ import annotations

import threading
import time
import uuid
from datetime import date, datetime, timezone

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from consumers.publisher import is_person_event
from consumers.feed_consumer import position_name
from events.codec import encode
from events.inbound import (
    RESIDENT_RECORD,
    SUBSIDY_STATUS,
    TAX_PAYMENT,
    resident_record_to_avro,
    status_record_to_avro,
    tax_record_to_avro,
)
from events.ledger_events import decode_event
from entrypoints.wiring import bootstrap, feed_consumer, ledger_publisher
from infra.settings import Settings, postgres_from_env
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import Provenance, ResidentRecord, StatusRecord, TaxPaymentRecord

pytestmark = pytest.mark.integration

KEY = b"kafka-end-to-end-test-key"
OFFICE = "16109020000"
CLERK = Provenance(source="api", user="clerk01")


def number(seq: int) -> str:
    return make_resident_id("610902", date(1975, 3, 4), seq)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def payment(id_number: str, voucher: str, amount_fen: int = 40000, **over) -> bytes:
    fields = dict(
        voucher_no=voucher, tax_office=OFFICE, id_type="RESIDENT_ID", id_number=id_number, name="李娜",
        region_code="610902", levy_item="RESIDENT", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
        amount_fen=amount_fen, paid_at=utc(2024, 10, 8, 1, 30), channel="APP",
    )
    fields.update(over)
    return encode(TAX_PAYMENT, tax_record_to_avro(TaxPaymentRecord(**fields)))


@pytest.fixture()
def system(pg_env, kafka_bootstrap, prefix):
    s = bootstrap(Settings(persistence="postgres",
                           postgres=postgres_from_env(pg_env),
                           kafka_bootstrap_servers=kafka_bootstrap, id_key=KEY, topic_prefix=prefix))
    yield s
    s.close()


def end_offsets(kafka_bootstrap: str, topic: str) -> dict[int, int]:
    probe = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(probe.partitions_for_topic(topic) or ())]
        return {tp.partition: o for tp, o in probe.end_offsets(parts).items()}
    finally:
        probe.close()


def drain(system, runner, kafka_bootstrap: str, timeout: float = 60.0) -> None:
    """Run ``runner`` until the ledger's positions reach the end of every partition of its topic."""
    topic = runner.topics[0]
    ends = end_offsets(kafka_bootstrap, topic)
    consumer = runner.handler.consumer

    def done() -> bool:
        return all(system.ledger.position(position_name(consumer, topic, p)) == end - 1
                   for p, end in ends.items() if end > 0)

    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"the {runner.handler.feed} consumer did not get through {topic}"
        runner.run_once(timeout=0.3)


def ledger_person_events(ledger) -> list:
    out = []
    for n in ledger.recorder.select_notifications(start=None, limit=1_000_000):
        if is_person_event(n):
            out.append(ledger.mapper.to_domain_event(n))
    return out


def read_events(kafka_bootstrap: str, topic: str, expect_ids: set[str], timeout: float = 60.0) -> list:
    """Every record of ``topic`` (all partitions, in partition order) once all ``expect_ids`` were seen."""
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False, isolation_level="read_committed")
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    out: list = []
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    try:
        while not expect_ids <= seen and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    out.append(r)
                    seen.add(dict(r.headers)["event_id"].decode())
        ends = consumer.end_offsets(parts)
        while any(consumer.position(tp) < ends[tp] for tp in parts) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                out.extend(records)
    finally:
        consumer.close()
    return out


def test_feed_records_reach_the_ledger_and_ledger_events_in_order_per_person(system, prefix, kafka_bootstrap):
    ledger = system.ledger
    p_refund, p_subsidy, p_death, p_plain = number(11), number(13), number(15), number(17)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    publisher = ledger_publisher(system)
    publisher.poll_interval = 0.1
    stop = threading.Event()
    publishing = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
    publishing.start()  # follows the ledger live, from its first event
    try:
        # 1. Tax payments, keyed by ID number so a person's records stay in order in one partition.
        tax = [
            (p_refund, payment(p_refund, "E2E-V1")),
            (p_subsidy, payment(p_subsidy, "E2E-V2")),
            (p_death, payment(p_death, "E2E-V3")),
            (p_plain, payment(p_plain, "E2E-V4", amount_fen=38000)),
            (p_refund, payment(p_refund, "E2E-V1")),  # the bureau resends: no effect
            (p_refund, payment(p_refund, "E2E-R1", kind="REFUND", original_voucher_no="E2E-V1",
                               paid_at=utc(2024, 11, 2, 3, 0), reason="重复缴费")),
            (p_plain, payment(p_plain, "E2E-V5", amount_fen=2000, paid_at=utc(2024, 10, 9, 2, 0))),
        ]
        for id_number, value in tax:
            producer.send(prefix + "tax.payments.v1", key=id_number.encode(), value=value)
        producer.flush()
        drain(system, feed_consumer(system, "tax", group=f"e2e-tax-{uuid.uuid4().hex[:6]}"), kafka_bootstrap)

        # 2. A clerk assesses 2025 for one of them (直接核定); the grant below must re-assess it.
        subsidised = ledger.find_person("RESIDENT_ID", p_subsidy)
        ledger.assess_resident_year(subsidised.id, 2025, provenance=CLERK)
        assert ledger.get_person(subsidised.id).assessments["2025"].subsidy_fen == 0

        # 3. The registries: a subsidy grant (特困人员) and a death.
        grant = StatusRecord("E2E-MZ-1", "RESIDENT_ID", p_subsidy, "李娜", "EXTREME_POVERTY", True,
                             date(2024, 1, 1), None, "汉滨区民政局", "汉民发〔2024〕E2E-1")
        producer.send(prefix + "registry.status.v1", key=p_subsidy.encode(),
                      value=encode(SUBSIDY_STATUS, status_record_to_avro(grant)))
        death = ResidentRecord("E2E-HJ-1", "RESIDENT_ID", p_death, "李娜", None, "DECEASED", date(2025, 4, 2))
        producer.send(prefix + "registry.residents.v1", key=p_death.encode(),
                      value=encode(RESIDENT_RECORD, resident_record_to_avro(death)))
        producer.flush()
        drain(system, feed_consumer(system, "status", group=f"e2e-status-{uuid.uuid4().hex[:6]}"), kafka_bootstrap)
        drain(system, feed_consumer(system, "residents", group=f"e2e-res-{uuid.uuid4().hex[:6]}"), kafka_bootstrap)

        deadline = time.monotonic() + 30
        while publisher.position < (ledger.recorder.max_notification_id() or 0):
            assert publishing.is_alive(), "the publisher stopped"
            assert time.monotonic() < deadline, "the publisher did not catch up with the ledger"
            time.sleep(0.05)
    finally:
        stop.set()
        publishing.join(timeout=15)
        producer.close()
    assert not publishing.is_alive()

    # The ledger: what each person went through.
    history = {n: [type(e).__name__ for e in ledger.events.get(ledger.find_person("RESIDENT_ID", n).id)]
               for n in (p_refund, p_subsidy, p_death, p_plain)}
    assert history == {
        p_refund: ["Registered", "Enrolled", "ContributionPaid", "ContributionRefunded"],
        p_subsidy: ["Registered", "Enrolled", "ContributionPaid", "ContributionAssessed", "SubsidyGranted",
                    "ContributionAssessed"],
        p_death: ["Registered", "Enrolled", "ContributionPaid", "ResidenceRecorded", "EnrollmentEnded"],
        p_plain: ["Registered", "Enrolled", "ContributionPaid", "ContributionPaid"],
    }
    assert ledger.find_person("RESIDENT_ID", p_refund).paid_fen_for("2025") == 0
    assert ledger.find_person("RESIDENT_ID", p_plain).paid_fen_for("2025") == 40000
    reassessed = ledger.find_person("RESIDENT_ID", p_subsidy).assessments["2025"]
    assert reassessed.subsidy_category == "EXTREME_POVERTY" and reassessed.due_fen == 0
    died = ledger.find_person("RESIDENT_ID", p_death)
    assert died.active_enrollment is None and died.enrollments[0].end_reason == "DIED"

    # ledger.events.v1: every person event of the ledger, once, keyed by person, in order per person.
    stored = ledger_person_events(ledger)
    assert len(stored) == sum(len(v) for v in history.values())
    stored_ids = {str(e.event_id) for e in stored}
    records = read_events(kafka_bootstrap, prefix + "ledger.events.v1", stored_ids)
    decoded = [decode_event(r.value) for r in records]
    assert sorted(d["event_id"] for d in decoded) == sorted(stored_ids)  # none missing, none twice
    versions: dict[str, list[int]] = {}
    partitions: dict[str, set[int]] = {}
    for r, d in zip(records, decoded):
        assert r.key == d["person_id"].encode()
        assert dict(r.headers)["event_type"] == d["event_type"].encode()
        versions.setdefault(d["person_id"], []).append(d["version"])
        partitions.setdefault(d["person_id"], set()).add(r.partition)
    assert all(len(p) == 1 for p in partitions.values())  # one person, one partition
    assert {pid: v for pid, v in versions.items()} == {
        str(ledger.find_person("RESIDENT_ID", n).id): list(range(1, len(h) + 1)) for n, h in history.items()}
    by_id = {d["event_id"]: d for d in decoded}
    for event in stored:  # the published record is the stored event
        published = by_id[str(event.event_id)]
        assert published["event_type"] == type(event).__name__
        assert published["person_id"] == str(event.originator_id)
        assert published["version"] == event.originator_version
    feeds = {d["provenance"].get("topic") for d in decoded if d["provenance"].get("source") == "kafka"}
    assert feeds == {prefix + t for t in ("tax.payments.v1", "registry.status.v1", "registry.residents.v1")}
