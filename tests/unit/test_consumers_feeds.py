"""The feed consumers' logic on the in-process transport: exactly once, rejections kept, nothing silent.

The same handlers run on Kafka (tests/integration/test_kafka_consumers.py); here the
messages come from in-memory topics with partitions and offsets, and the ledger is
the in-memory event store.
"""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from eventsourcing.persistence import OperationalError

from consumers.dead_letters import open_sealed
from consumers.inprocess import InProcessBroker, InProcessSource
from consumers.feed_consumer import TransientError, dead_letter_key, position_name
from events.codec import encode
from events.inbound import (
    RESIDENT_RECORD,
    SUBSIDY_STATUS,
    TAX_PAYMENT,
    resident_record_to_avro,
    status_record_to_avro,
    tax_record_to_avro,
)
from entrypoints.wiring import bootstrap, feed_consumer
from infra.settings import Settings
from ledger.domain.feed_rejection import FeedRejection
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import ResidentRecord, StatusRecord, TaxPaymentRecord

HANBIN = "610902"
TAX = "tax.payments.v1"
STATUS = "registry.status.v1"
RESIDENTS = "registry.residents.v1"


def resident_id(seq: int) -> str:
    return make_resident_id(HANBIN, date(1980, 5, 17), seq)


def bad_checksum(number: str) -> str:
    last = "0" if number[-1] != "0" else "1"
    return number[:-1] + last


def payment_bytes(number: str, voucher: str, *, region: str = HANBIN, amount_fen: int = 40000) -> bytes:
    record = TaxPaymentRecord(
        voucher_no=voucher, tax_office="16109020000", id_type="RESIDENT_ID", id_number=number, name="王芳",
        region_code=region, levy_item="RESIDENT", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
        amount_fen=amount_fen, paid_at=datetime(2024, 10, 8, 1, 30, tzinfo=timezone.utc),
        credited_on=date(2024, 10, 9), channel="APP",
    )
    return encode(TAX_PAYMENT, tax_record_to_avro(record))


def status_bytes(number: str, record_id: str, *, granted: bool = True) -> bytes:
    record = StatusRecord(
        record_id=record_id, id_type="RESIDENT_ID", id_number=number, name="王芳", category="MIN_LIVING",
        granted=granted, valid_from=date(2025, 1, 1), valid_to=None, department="汉滨区民政局",
        document_no="汉民发〔2025〕1号",
    )
    return encode(SUBSIDY_STATUS, status_record_to_avro(record))


def resident_bytes(number: str, record_id: str, status: str, *, on: date = date(2025, 3, 1)) -> bytes:
    record = ResidentRecord(
        record_id=record_id, id_type="RESIDENT_ID", id_number=number, name="王芳", grid_code="610902100001",
        status=status, effective_date=on,
    )
    return encode(RESIDENT_RECORD, resident_record_to_avro(record))


@pytest.fixture()
def system():
    s = bootstrap(Settings(persistence="memory", id_key=b"test-key"))
    yield s
    s.close()


@pytest.fixture()
def broker(system) -> InProcessBroker:
    return system.inprocess_broker()


def consume_all(runner, rounds: int = 10):
    results = []
    for _ in range(rounds):
        got = runner.run_once(timeout=0)
        if not got:
            break
        results.extend(got)
    return results


def paid_vouchers(system, number: str) -> list[str]:
    person = system.ledger.find_person("RESIDENT_ID", number)
    return sorted(p.voucher_no for p in person.payments.values())


def rejection(system, topic: str, partition: int, offset: int) -> FeedRejection:
    return system.ledger.repository.get(FeedRejection.id_for(topic, partition, offset))


# ------------------------------------------------------------------ payments
@pytest.mark.parametrize("batch", [True, False], ids=["batch", "per-record"])
def test_a_payment_for_a_new_person_registers_enrolls_and_pays_and_the_position_is_stored(system, broker, batch):
    number = resident_id(1)
    message = broker.produce(TAX, key=b"V1", value=payment_bytes(number, "V1"))
    runner = feed_consumer(system, "tax", batch=batch)
    [result] = consume_all(runner)
    assert result.applied == 1 and not result.rejected
    person = system.ledger.find_person("RESIDENT_ID", number)
    assert [type(e).__name__ for e in system.ledger.events.get(person.id)] == [
        "Registered", "Enrolled", "ContributionPaid"]
    assert system.ledger.position(position_name("ledger-tax-payments", TAX, message.partition)) == message.offset
    assert broker.committed[("ledger-tax-payments", TAX, message.partition)] == message.offset + 1


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "per-record"])
def test_the_same_payment_sent_twice_is_one_payment(system, broker, batch):
    number = resident_id(3)
    for _ in range(2):
        broker.produce(TAX, key=b"V2", value=payment_bytes(number, "V2"), partition=0)
    runner = feed_consumer(system, "tax", batch=batch)
    [result] = consume_all(runner)
    assert (result.applied, result.unchanged) == (1, 1)
    assert paid_vouchers(system, number) == ["V2"]
    assert system.ledger.position(position_name("ledger-tax-payments", TAX, 0)) == 1


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "per-record"])
def test_bad_records_are_kept_as_rejections_dead_lettered_and_the_good_ones_go_on(system, broker, batch):
    good_before, good_after = resident_id(5), resident_id(7)
    values = [
        payment_bytes(good_before, "G1"),
        b"not avro at all",
        payment_bytes(bad_checksum(resident_id(9)), "B1"),
        payment_bytes(resident_id(11), "B2", region="999999"),
        payment_bytes(good_after, "G2"),
    ]
    for i, value in enumerate(values):
        broker.produce(TAX, key=f"k{i}".encode(), value=value, partition=1)
    runner = feed_consumer(system, "tax", batch=batch)
    [result] = consume_all(runner)
    assert result.applied == 2
    assert result.rejected == [(1, "AVRO_BAD_MAGIC"), (2, "ID_CHECKSUM"), (3, "REGION_UNKNOWN")]
    assert paid_vouchers(system, good_before) == ["G1"] and paid_vouchers(system, good_after) == ["G2"]

    kept = rejection(system, TAX, 1, 1)
    assert (kept.code, kept.key, kept.raw) == ("AVRO_BAD_MAGIC", "k1", b"not avro at all")
    assert rejection(system, TAX, 1, 3).code == "REGION_UNKNOWN"

    dlq = broker.topic(f"{TAX}.dlq").messages()
    assert [m.key for m in dlq] == [dead_letter_key(TAX, 1, o) for o in (1, 2, 3)]
    headers = dict(dlq[1].headers)
    assert headers["error.code"] == b"ID_CHECKSUM"
    assert headers["source.topic"] == TAX.encode() and headers["source.offset"] == b"2"
    # Encrypted on the topic (the record may hold ID numbers), the original bytes back with the key.
    assert dlq[0].value != b"not avro at all" and b"not avro" not in dlq[0].value
    assert dict(dlq[0].headers)["enc"] == b"aesgcm-v1"
    assert open_sealed(dlq[0].value, dlq[0].headers, system.keys) == b"not avro at all"
    assert system.ledger.position(position_name("ledger-tax-payments", TAX, 1)) == 4


def test_a_restarted_consumer_resumes_from_the_ledger_not_from_the_brokers_offsets(system, broker):
    number = resident_id(13)
    broker.produce(TAX, key=b"a", value=payment_bytes(number, "R1"), partition=2)
    broker.produce(TAX, key=b"b", value=b"\xc3\x01garbage", partition=2)
    consume_all(feed_consumer(system, "tax"))
    events_before = system.ledger.recorder.max_notification_id()
    # The "crash": the broker never got the commit, a new consumer starts from offset 0.
    broker.committed.clear()
    broker.produce(TAX, key=b"c", value=payment_bytes(number, "R2"), partition=2)
    [result] = consume_all(feed_consumer(system, "tax", source=InProcessSource(broker, group="ledger-tax-payments")))
    assert (result.first_offset, result.skipped, result.applied) == (2, 0, 1)  # seeked past 0 and 1
    assert paid_vouchers(system, number) == ["R1", "R2"]
    assert system.ledger.recorder.max_notification_id() > events_before
    assert len(broker.topic(f"{TAX}.dlq").messages()) == 1


def test_a_replayed_batch_is_skipped_by_position(system, broker):
    number = resident_id(15)
    broker.produce(TAX, key=b"a", value=payment_bytes(number, "S1"), partition=0)
    runner = feed_consumer(system, "tax")
    consume_all(runner)
    before = system.ledger.recorder.max_notification_id()
    runner.source.seek(TAX, 0, 0)  # e.g. a rebalance handed it the old offset
    [result] = consume_all(runner)
    assert result.skipped == 1 and result.applied == 0
    assert system.ledger.recorder.max_notification_id() == before


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "per-record"])
def test_a_database_failure_is_not_a_rejection_and_the_batch_is_redone(system, broker, monkeypatch, batch):
    number = resident_id(17)
    broker.produce(TAX, key=b"a", value=payment_bytes(number, "D1"), partition=0)
    runner = feed_consumer(system, "tax", batch=batch)
    name = "begin_tax_records" if batch else "record_tax_record"  # (record_tax_records goes through it)
    real = getattr(system.ledger, name)

    def database_down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(system.ledger, name, database_down)
    with pytest.raises((OperationalError, TransientError)):
        runner.run_once(timeout=0)
    assert system.ledger.position(position_name("ledger-tax-payments", TAX, 0)) is None
    assert broker.topic(f"{TAX}.dlq").messages() == []
    assert ("ledger-tax-payments", TAX, 0) not in broker.committed

    monkeypatch.setattr(system.ledger, name, real)
    [result] = consume_all(runner)  # the runner rewound to the failed batch
    assert result.applied == 1
    assert paid_vouchers(system, number) == ["D1"]


def test_dead_letters_lost_in_a_crash_are_resent_on_the_partitions_next_batch(system, broker):
    class Unreachable:
        def send(self, *args, **kwargs):
            raise ConnectionError("broker unreachable")

        def flush(self):
            pass

    broker.produce(TAX, key=b"x", value=b"junk", partition=0)
    runner = feed_consumer(system, "tax", sink=Unreachable())
    with pytest.raises(TransientError):
        runner.run_once(timeout=0)
    # The rejection and the position were committed before the dead letter failed.
    assert rejection(system, TAX, 0, 0).code == "AVRO_BAD_MAGIC"
    assert broker.topic(f"{TAX}.dlq").messages() == []

    restarted = feed_consumer(system, "tax", source=InProcessSource(broker, group="other"))
    broker.produce(TAX, key=b"y", value=payment_bytes(resident_id(19), "OK1"), partition=0)
    consume_all(restarted)
    assert [m.key for m in broker.topic(f"{TAX}.dlq").messages()] == [dead_letter_key(TAX, 0, 0)]


def test_a_voucher_reused_with_other_content_is_rejected_and_kept_for_reconciliation(system, broker):
    number = resident_id(21)
    broker.produce(TAX, key=b"a", value=payment_bytes(number, "C1", amount_fen=40000), partition=0)
    broker.produce(TAX, key=b"b", value=payment_bytes(number, "C1", amount_fen=99999), partition=0)
    [result] = consume_all(feed_consumer(system, "tax"))
    assert result.rejected == [(1, "VOUCHER_CONFLICT")]
    assert system.ledger.find_person("RESIDENT_ID", number).paid_fen_for("2025") == 40000


# ------------------------------------------------------------------ statuses and residents
def test_status_grants_and_an_unknown_persons_revocation(system, broker):
    granted, unknown = resident_id(23), resident_id(25)
    broker.produce(STATUS, key=b"s1", value=status_bytes(granted, "MZ-1"), partition=0)
    broker.produce(STATUS, key=b"s2", value=status_bytes(unknown, "MZ-2", granted=False), partition=0)
    broker.produce(STATUS, key=b"s1", value=status_bytes(granted, "MZ-1"), partition=0)
    [result] = consume_all(feed_consumer(system, "status"))
    assert (result.applied, result.unchanged, result.rejected) == (1, 1, [(1, "PERSON_NOT_FOUND")])
    person = system.ledger.find_person("RESIDENT_ID", granted)
    assert [s.category for s in person.subsidies.values()] == ["MIN_LIVING"]
    assert system.ledger.position(position_name("ledger-registry-status", STATUS, 0)) == 2
    assert [m.key for m in broker.topic(f"{STATUS}.dlq").messages()] == [dead_letter_key(STATUS, 0, 1)]


def test_a_death_from_the_registry_ends_the_enrollment(system, broker):
    number = resident_id(27)
    broker.produce(TAX, key=b"p", value=payment_bytes(number, "P1"), partition=0)
    consume_all(feed_consumer(system, "tax"))
    broker.produce(RESIDENTS, key=b"r", value=resident_bytes(number, "HJ-1", "DECEASED"), partition=0)
    broker.produce(RESIDENTS, key=b"r", value=resident_bytes(number, "HJ-2", "UNKNOWN"), partition=0)
    [result] = consume_all(feed_consumer(system, "residents"))
    assert result.applied == 1
    assert result.rejected and result.rejected[0][0] == 1
    person = system.ledger.find_person("RESIDENT_ID", number)
    assert person.residence_status == "DECEASED"
    assert person.active_enrollment is None


def test_a_batch_that_fails_half_way_keeps_its_committed_part_and_dead_letters_it_later(system, broker, monkeypatch):
    good = resident_id(29)
    broker.produce(STATUS, key=b"a", value=b"bad status", partition=0)
    broker.produce(STATUS, key=b"b", value=status_bytes(good, "MZ-9"), partition=0)
    runner = feed_consumer(system, "status")
    real = system.ledger.apply_status

    def database_down(*args, **kwargs):
        raise OperationalError("connection lost")

    monkeypatch.setattr(system.ledger, "apply_status", database_down)
    with pytest.raises(TransientError):
        runner.run_once(timeout=0)
    # The first record's rejection and position were committed (one transaction per record).
    assert system.ledger.position(position_name("ledger-registry-status", STATUS, 0)) == 0
    assert broker.topic(f"{STATUS}.dlq").messages() == []

    monkeypatch.setattr(system.ledger, "apply_status", real)
    [result] = consume_all(runner)
    assert (result.skipped, result.applied) == (1, 1)
    assert [m.key for m in broker.topic(f"{STATUS}.dlq").messages()] == [dead_letter_key(STATUS, 0, 0)]


def test_a_batch_of_payments_its_rejections_and_its_position_are_one_transaction(system, broker, monkeypatch):
    """The ground rule: the position is recorded in the same transaction as the effects (no crash window)."""
    good1, good2 = resident_id(41), resident_id(43)
    for voucher, value in (("T1", payment_bytes(good1, "T1")), ("T2", payment_bytes(bad_checksum(good2), "T2")),
                           ("T3", payment_bytes(good2, "T3")), ("T4", b"not avro")):
        broker.produce(TAX, key=b"k", value=value, partition=0)
    writes = []
    record = system.ledger._record

    def spy(processing_event):
        writes.append((processing_event.tracking, [type(e).__qualname__ for e in processing_event.events]))
        return record(processing_event)

    monkeypatch.setattr(system.ledger, "_record", spy)
    [result] = consume_all(feed_consumer(system, "tax"))
    assert result.applied == 2 and [code for _, code in result.rejected] == ["ID_CHECKSUM", "AVRO_BAD_MAGIC"]
    (tracking, events), = writes
    assert (tracking.application_name, tracking.notification_id) == (position_name("ledger-tax-payments", TAX, 0), 3)
    assert events.count("Person.ContributionPaid") == 2 and events.count("FeedRejection.Rejected") == 2


def test_a_batch_with_a_record_to_redo_writes_no_position(system, broker, monkeypatch):
    """A record failing for a reason of the moment: nothing of the batch's position is written; it is redone."""
    from ledger.domain.errors import DomainError

    good1, good2 = resident_id(45), resident_id(47)
    broker.produce(TAX, key=b"k", value=payment_bytes(good1, "U1"), partition=0)
    broker.produce(TAX, key=b"k", value=payment_bytes(good2, "U2"), partition=0)
    command = system.ledger._payment_command
    calls = []

    def flaky(record, provenance):
        calls.append(record.voucher_no)
        if record.voucher_no == "U2" and calls.count("U2") == 1:
            raise DomainError("CONCURRENT_UPDATE", "lost a race")  # transient: not the record's fault
        return command(record, provenance)

    monkeypatch.setattr(system.ledger, "_payment_command", flaky)
    runner = feed_consumer(system, "tax")
    with pytest.raises(TransientError):
        runner.handler.handle(broker.topic(TAX).messages(0))
    assert system.ledger.position(position_name("ledger-tax-payments", TAX, 0)) is None
    result = runner.handler.handle(broker.topic(TAX).messages(0))  # the redo
    assert system.ledger.position(position_name("ledger-tax-payments", TAX, 0)) == 1
    assert paid_vouchers(system, good1) == ["U1"] and paid_vouchers(system, good2) == ["U2"]
    assert (result.applied, result.unchanged) == (1, 1)  # U1 was written by the first try: a resend now


# ------------------------------------------------------------------ run(): batch N finished while N+1 is polled
def test_run_finishes_each_batch_after_polling_the_next_and_a_failed_write_loses_nothing(system, broker, monkeypatch):
    """``run`` leaves batch N's write in flight (on PostgreSQL, on the ledger's writer thread)
    while it polls and decodes batch N+1. When that write fails, the partition is read
    again from batch N, not from N+1 (whose position would cover N): every payment ends
    up recorded, once."""
    from ledger.application import PendingOutcomes

    numbers = [resident_id(301 + 2 * i) for i in range(12)]
    for i, number in enumerate(numbers):
        broker.produce(TAX, key=f"P{i}".encode(), value=payment_bytes(number, f"P{i}"), partition=0)
    runner = feed_consumer(system, "tax", max_records=3, poll_timeout=0.05)
    real = system.ledger.begin_tax_records
    calls = []

    def flaky(records, **kwargs):
        calls.append(kwargs["tracking"].notification_id)
        if len(calls) == 2:  # batch 2 (offsets 3-5): its write fails after batch 3 was polled
            def failed_commit():
                raise OperationalError("the commit failed on the writer thread")
            return PendingOutcomes(failed_commit)
        return real(records, **kwargs)

    monkeypatch.setattr(system.ledger, "begin_tax_records", flaky)
    runner.run(idle_stop=0.3, max_failures=5)
    assert calls == [2, 5, 5, 8, 11]  # batch 2 again, then the rest
    assert system.ledger.position(position_name("ledger-tax-payments", TAX, 0)) == 11
    for i, number in enumerate(numbers):
        assert paid_vouchers(system, number) == [f"P{i}"]
