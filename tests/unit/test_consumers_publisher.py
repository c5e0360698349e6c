"""The ledger-events publisher on the in-process transport: person events only, keyed, in order, exactly once."""
from __future__ import annotations

import threading
import time
from datetime import date, datetime, timezone

import pytest

from consumers.inprocess import InProcessBroker
from consumers.publisher import LedgerPublisher
from events.ledger_events import decode_event
from entrypoints.wiring import bootstrap, ledger_publisher
from infra.settings import SettingError, Settings
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import Provenance, TaxPaymentRecord

EVENTS = "ledger.events.v1"
FEED = Provenance(source="kafka", topic="tax.payments.v1", partition=0, offset=1)


def pay(system, seq: int, voucher: str) -> str:
    """A payment for the resident ``seq`` of 610902 (voucher ``voucher``), from the tax feed; the person's id."""
    number = make_resident_id("610902", date(1990, 1, 1), seq)
    system.ledger.record_tax_record(TaxPaymentRecord(
        voucher_no=voucher, tax_office="16109020000", id_type="RESIDENT_ID", id_number=number, name="李雷",
        region_code="610902", levy_item="RESIDENT", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
        amount_fen=40000, paid_at=datetime(2024, 10, 8, 1, 30, tzinfo=timezone.utc),
    ), provenance=FEED)
    return str(system.ledger.person_id("RESIDENT_ID", number))


@pytest.fixture()
def system():
    s = bootstrap(Settings(persistence="memory", id_key=b"test-key"))
    yield s
    s.close()


def published(broker: InProcessBroker) -> list:
    return broker.topic(EVENTS).messages()


def test_person_events_are_published_keyed_by_person_and_in_order_and_the_index_is_skipped(system):
    broker = system.inprocess_broker()
    pay(system, 1, "V1")
    pay(system, 3, "V2")
    pay(system, 1, "V3")
    publisher = ledger_publisher(system)
    count = publisher.publish_pending()

    records = published(broker)
    assert count == len(records) == 3 + 3 + 1  # Registered, Enrolled, ContributionPaid; then one more payment
    decoded = [decode_event(m.value) for m in records]
    assert all(m.key == d["person_id"].encode() for m, d in zip(records, decoded))
    by_person: dict[str, list[int]] = {}
    for d in decoded:
        by_person.setdefault(d["person_id"], []).append(d["version"])
    assert all(versions == sorted(versions) for versions in by_person.values())
    assert {dict(m.headers)["event_type"] for m in records} >= {b"Registered", b"ContributionPaid"}
    # The SourceRecord index events are not published, but the position is past them.
    assert publisher.position == system.ledger.recorder.max_notification_id()
    assert publisher.publish_pending() == 0


def test_reading_only_person_events_in_small_batches_skips_none_and_ends_past_the_index(system):
    """The publisher reads person rows only; the position jumps past the other rows, never past an unread event."""
    broker = system.inprocess_broker()
    for seq, voucher in [(1, "V1"), (3, "V2"), (1, "V3"), (5, "V4")]:
        pay(system, seq, voucher)
    recorder = system.ledger.recorder
    everything = recorder.select_notifications(start=1, limit=1000)
    expected = [n.id for n in everything if n.topic.startswith("ledger.domain.person:Person.")]
    assert len(expected) < len(everything)  # the SourceRecord index rows are in between
    positions = []
    publisher = LedgerPublisher(system.ledger, system.record_sink(), topic=EVENTS, batch_size=2,
                                on_published=lambda events, _at: positions.append(publisher.position))
    assert publisher.publish_pending() == len(expected)
    records = published(broker)
    assert sorted(decode_event(m.value)["event_id"] for m in records) == sorted(
        str(system.ledger.mapper.to_domain_event(n).event_id) for n in everything if n.id in set(expected)
    )
    assert positions == sorted(positions) and positions[-1] == recorder.max_notification_id()
    # A payment recorded later is published from where the position stopped.
    pay(system, 7, "V5")
    assert publisher.publish_pending() == 3
    assert publisher.position == recorder.max_notification_id()


def test_a_crash_after_the_commit_before_the_tracking_copy_publishes_nothing_twice(system, monkeypatch):
    """The position is committed with the events (positions topic); the tracking row is only a copy."""
    broker = system.inprocess_broker()

    def event_ids() -> list[str]:
        return [decode_event(m.value)["event_id"] for m in published(broker)]

    pay(system, 5, "W1")
    ledger_publisher(system).publish_pending()
    first = set(event_ids())
    pay(system, 7, "W2")

    crashing = ledger_publisher(system)
    monkeypatch.setattr(crashing, "_store_position", lambda notification_id: (_ for _ in ()).throw(SystemExit))
    with pytest.raises(SystemExit):
        crashing.publish_pending()
    assert len(set(event_ids()) - first) == 3
    copy_before = system.ledger.recorder.max_tracking_id("publisher:" + EVENTS)
    assert copy_before < system.ledger.recorder.max_notification_id()  # the copy lags: the crash came first

    restarted = ledger_publisher(system)
    assert restarted.position == system.ledger.recorder.max_notification_id()  # read from the positions topic
    assert restarted.publish_pending() == 0
    ids = event_ids()
    assert len(ids) == len(set(ids)) == 6  # every event once


def test_a_crash_before_the_commit_leaves_nothing_visible_and_the_restart_publishes_the_batch_once(system,
                                                                                                 monkeypatch):
    from consumers.inprocess import InProcessTransaction

    broker = system.inprocess_broker()
    pay(system, 5, "W1")
    pay(system, 7, "W2")

    def killed(self):
        raise SystemExit("killed before the commit")

    with monkeypatch.context() as m:
        m.setattr(InProcessTransaction, "commit", killed)
        with pytest.raises(SystemExit):
            ledger_publisher(system).publish_pending()
    assert published(broker) == []  # neither the events nor the position
    assert broker.last_value("ledger.publisher.positions", b"publisher:" + EVENTS.encode()) is None

    assert ledger_publisher(system).publish_pending() == 6
    ids = [decode_event(m.value)["event_id"] for m in published(broker)]
    assert len(ids) == len(set(ids)) == 6


def test_the_position_record_is_committed_with_the_events_on_the_positions_topic(system):
    from consumers.publisher import PublisherState

    broker = system.inprocess_broker()
    pay(system, 5, "W1")
    publisher = ledger_publisher(system)
    publisher.publish_pending()
    raw = broker.last_value("ledger.publisher.positions", b"publisher:" + EVENTS.encode())
    assert PublisherState.from_bytes(raw) == PublisherState(system.ledger.recorder.max_notification_id())
    # The tracking copy follows the commit.
    assert system.ledger.recorder.max_tracking_id("publisher:" + EVENTS) == publisher.position


def test_a_tracking_copy_ahead_of_the_committed_position_moves_the_start_forward_only(system):
    """An upgrade from the at-least-once publisher (or a benchmark starting at the end) starts from the copy."""
    from eventsourcing.persistence import Tracking

    broker = system.inprocess_broker()
    pay(system, 5, "W1")
    system.ledger.recorder.insert_tracking(Tracking("publisher:" + EVENTS, system.ledger.recorder.max_notification_id()))
    pay(system, 7, "W2")
    assert ledger_publisher(system).publish_pending() == 3
    assert [decode_event(m.value)["version"] for m in published(broker)] == [1, 2, 3]


def test_the_fault_pause_hook_is_inert_unless_set_and_refuses_unknown_points(system, monkeypatch):
    monkeypatch.delenv("LEDGER_FAULT_PUBLISHER_PAUSE", raising=False)
    publisher = ledger_publisher(system)
    assert publisher._pause_at is None
    monkeypatch.setenv("LEDGER_FAULT_PUBLISHER_PAUSE", "sometime")
    with pytest.raises(SettingError, match="before_kafka_commit") as refused:
        ledger_publisher(system)
    assert refused.value.code == "SETTING_INVALID" and refused.value.variable == "LEDGER_FAULT_PUBLISHER_PAUSE"


def test_a_plain_record_sink_is_refused(system):
    class Plain:
        def send(self, *a, **k): ...
        def flush(self): ...

    with pytest.raises(TypeError, match="transactional"):
        LedgerPublisher(system.ledger, Plain(), topic=EVENTS)


def test_a_running_publisher_follows_new_events(system):
    broker = system.inprocess_broker()
    publisher = LedgerPublisher(system.ledger, broker, topic=EVENTS, poll_interval=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        pay(system, 9, "X1")
        deadline = time.monotonic() + 30  # generous: a loaded CI machine; the loop ends as soon as it holds
        while len(published(broker)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert [dict(m.headers)["event_type"] for m in published(broker)] == [
        b"Registered", b"Enrolled", b"ContributionPaid"]
    assert not thread.is_alive()


def test_the_embedded_default_on_sqlite_consumes_and_publishes_in_process(tmp_path):
    """SQLite has no LISTEN/NOTIFY: the publisher polls; the consumer's positions live in its tracking table."""
    from consumers.feed_consumer import position_name
    from events.codec import encode
    from events.inbound import TAX_PAYMENT, tax_record_to_avro
    from entrypoints.wiring import feed_consumer

    s = bootstrap(Settings(persistence="sqlite", sqlite_path=str(tmp_path / "ledger.sqlite"), id_key=b"k"))
    try:
        broker = s.inprocess_broker()
        number = make_resident_id("610902", date(1990, 1, 1), 11)
        record = TaxPaymentRecord(
            voucher_no="E1", tax_office="16109020000", id_type="RESIDENT_ID", id_number=number, name="韩梅梅",
            region_code="610902", levy_item="RESIDENT", period_start=date(2025, 1, 1),
            period_end=date(2025, 12, 31), amount_fen=40000, paid_at=datetime(2024, 10, 8, 1, 30, tzinfo=timezone.utc))
        message = broker.produce("tax.payments.v1", key=b"E1", value=encode(TAX_PAYMENT, tax_record_to_avro(record)))
        broker.produce("tax.payments.v1", key=b"E2", value=b"?", partition=message.partition)
        runner = feed_consumer(s, "tax")
        runner.run_once(timeout=0)
        assert s.ledger.position(position_name("ledger-tax-payments", "tax.payments.v1", message.partition)) == 1

        publisher = ledger_publisher(s)
        publisher.poll_interval = 0.02
        stop = threading.Event()
        thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
        thread.start()
        deadline = time.monotonic() + 30  # generous: a loaded CI machine; the loop ends as soon as it holds
        while len(published(broker)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()
        thread.join(timeout=5)
        assert [dict(m.headers)["event_type"] for m in published(broker)] == [
            b"Registered", b"Enrolled", b"ContributionPaid"]
        assert publisher.position == s.ledger.recorder.max_notification_id()  # past the index and the rejection
    finally:
        s.close()
