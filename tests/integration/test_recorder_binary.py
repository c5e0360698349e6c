"""The binary-array event recorder on the real PostgreSQL server: the library's recorder, row for row.

infra/event_store/recorders.py replaces only how the event rows are sent (four binary arrays
instead of one text composite array); the rows, the notification ids, the tracking
row in the same transaction, the table lock and NOTIFY must be the library's.
"""
from __future__ import annotations

import threading
import uuid
from datetime import date, datetime, timezone

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking
from eventsourcing.postgres import PostgresFactory, PostgresProcessRecorder
from psycopg import sql

from entrypoints.audit.digest import PostgresDigestStore, digest_store
from entrypoints.audit.stored_rows import PostgresEventRows, event_rows
from entrypoints.wiring import bootstrap
from infra.settings import Settings, postgres_from_env
from ledger.domain.identity import make_resident_id
from infra.event_store.recorders import BinaryPostgresProcessRecorder, process_recorder
from ledger.inbound_records import Provenance, TaxPaymentRecord

pytestmark = pytest.mark.integration

FEED = Provenance(source="kafka", topic="tax.payments.v1", partition=0, offset=1)


@pytest.fixture()
def recorders(pg_env):
    """The library's process recorder and the binary one, each on tables of its own (same schema)."""
    suffix = uuid.uuid4().hex[:8]
    library_factory = PostgresFactory(_env(pg_env, f"LibRec{suffix}"))
    binary_factory = PostgresFactory(_env(pg_env, f"BinRec{suffix}"))
    library = library_factory.process_recorder()
    binary = process_recorder(binary_factory)
    yield library, binary
    library_factory.close()
    binary_factory.close()


def _env(pg_env: dict[str, str], name: str):
    from eventsourcing.utils import Environment

    return Environment(name, {**pg_env, "CREATE_TABLE": "y"})


def _events(originator_id: uuid.UUID, start: int, count: int) -> list[StoredEvent]:
    return [
        StoredEvent(originator_id=originator_id, originator_version=v, topic=f"ledger.domain.person:Person.Paid{v % 3}",
                    state=bytes([v % 256]) * (v % 7) + "赵敏 \\ \" ' ( ) , {}".encode() + b"\x00\xff\\x")
        for v in range(start, start + count)
    ]


def _rows(pg_env: dict[str, str], table: str) -> list[tuple]:
    with psycopg.connect(host=pg_env["POSTGRES_HOST"], port=int(pg_env["POSTGRES_PORT"]),
                         dbname=pg_env["POSTGRES_DBNAME"], user=pg_env["POSTGRES_USER"],
                         password=pg_env["POSTGRES_PASSWORD"]) as conn:
        return conn.execute(sql.SQL(
            "SELECT originator_id, originator_version, topic, state, notification_id FROM {}.{} "
            "ORDER BY notification_id").format(sql.Identifier(pg_env["POSTGRES_SCHEMA"]), sql.Identifier(table))
        ).fetchall()


def test_the_factory_path_gives_the_binary_recorder_with_the_library_table_names(recorders):
    library, binary = recorders
    assert type(library) is PostgresProcessRecorder
    assert type(binary) is BinaryPostgresProcessRecorder
    suffix = library.events_table_name[len("librec"):-len("_events")]
    assert (library.events_table_name, library.tracking_table_name) == (f"librec{suffix}_events",
                                                                        f"librec{suffix}_tracking")
    assert (binary.events_table_name, binary.tracking_table_name) == (f"binrec{suffix}_events",
                                                                      f"binrec{suffix}_tracking")
    assert binary.channel_name == f"binrec{suffix}_events"


def test_rows_notification_ids_and_tracking_are_the_library_s(recorders, pg_env):
    library, binary = recorders
    a, b = uuid.uuid4(), uuid.uuid4()
    batches = [(_events(a, 1, 1), None), (_events(a, 2, 250), Tracking("c:t:0", 5)),
               (_events(b, 1, 3) + _events(a, 252, 2), Tracking("c:t:0", 9)), ([], Tracking("c:t:1", 1))]
    for batch, tracking in batches:
        kwargs = {"tracking": tracking} if tracking else {}
        assert library.insert_events(batch, **kwargs) == binary.insert_events(batch, **kwargs)
    assert _rows(pg_env, binary.events_table_name) == _rows(pg_env, library.events_table_name)
    assert len(_rows(pg_env, binary.events_table_name)) == 256
    for recorder in (library, binary):
        assert recorder.max_tracking_id("c:t:0") == 9
        assert recorder.max_tracking_id("c:t:1") == 1
        assert recorder.max_notification_id() == 256
        assert recorder.select_events(a, gt=250) == _events(a, 251, 1) + _events(a, 252, 2)
    assert binary.select_notifications(1, 1000) == library.select_notifications(1, 1000)


def test_a_conflict_rolls_back_the_events_and_the_tracking_row(recorders):
    _, binary = recorders
    a = uuid.uuid4()
    binary.insert_events(_events(a, 1, 2))
    with pytest.raises(IntegrityError):
        binary.insert_events(_events(uuid.uuid4(), 1, 1) + _events(a, 2, 1), tracking=Tracking("c:t:2", 3))
    assert binary.max_tracking_id("c:t:2") is None
    assert len(binary.select_notifications(1, 100)) == 2  # (the failed insert took ids: a hole, as the library leaves)
    with pytest.raises(IntegrityError):  # a position taken twice
        binary.insert_events(_events(uuid.uuid4(), 1, 1), tracking=Tracking("c:t:3", 1))
        binary.insert_events(_events(uuid.uuid4(), 1, 1), tracking=Tracking("c:t:3", 1))
    assert len(binary.select_notifications(1, 100)) == 3
    assert binary.max_tracking_id("c:t:3") == 1


def test_subscribers_are_notified(recorders):
    _, binary = recorders
    binary.insert_events(_events(uuid.uuid4(), 1, 2))
    with binary.subscribe(gt=2) as subscription:
        got: list = []

        def read() -> None:
            for notification in subscription:
                got.append(notification)
                if len(got) == 3:
                    subscription.stop()

        reader = threading.Thread(target=read)
        reader.start()
        binary.insert_events(_events(uuid.uuid4(), 1, 3))
        reader.join(timeout=10)
        assert not reader.is_alive()
    assert [n.id for n in got] == [3, 4, 5]


def test_the_ledger_on_postgres_records_through_the_binary_recorder(pg_env):
    settings = Settings(persistence="postgres", id_key=b"binary-recorder",
                        postgres=postgres_from_env(pg_env))
    system = bootstrap(settings)
    try:
        ledger = system.ledger
        assert type(ledger.recorder) is BinaryPostgresProcessRecorder
        # The auditing tools take it for the PostgreSQL store it is (not the in-memory fallback).
        assert isinstance(event_rows(ledger), PostgresEventRows)
        assert isinstance(digest_store(ledger), PostgresDigestStore)
        number = make_resident_id("610902", date(1980, 1, 2), 7)
        payment = TaxPaymentRecord(
            voucher_no="B1", tax_office="16109020000", id_type="RESIDENT_ID", id_number=number, name="赵敏",
            region_code="610902", levy_item="RESIDENT", period_start=date(2025, 1, 1),
            period_end=date(2025, 12, 31), amount_fen=40000,
            paid_at=datetime(2024, 11, 20, 9, 30, tzinfo=timezone.utc))
        outcome = ledger.record_tax_record(payment, provenance=FEED, tracking=Tracking("c:tax:0", 41))
        assert outcome.applied
        assert ledger.position("c:tax:0") == 41
        person = ledger.get_person(outcome.person_id)
        assert person.version >= 2
        again = ledger.record_tax_record(payment, provenance=FEED)
        assert not again.applied
    finally:
        system.close()


def test_an_explicit_recorder_topic_is_kept(pg_env):
    from eventsourcing.utils import get_topic

    factory = PostgresFactory(_env({**pg_env, "PROCESS_RECORDER_TOPIC": get_topic(PostgresProcessRecorder)},
                                   "TopicRec"))
    try:
        assert type(process_recorder(factory)) is PostgresProcessRecorder
    finally:
        factory.close()


def test_text_originator_ids(pg_env):
    factory = PostgresFactory(_env({**pg_env, "ORIGINATOR_ID_TYPE": "text"}, f"TxtRec{uuid.uuid4().hex[:8]}"))
    try:
        recorder = process_recorder(factory)
        assert type(recorder) is BinaryPostgresProcessRecorder
        events = [StoredEvent(originator_id=f"person-{n}", originator_version=1, topic="t", state=b"\x00")
                  for n in range(3)]
        assert recorder.insert_events(events, tracking=Tracking("c:t:0", 1)) == [1, 2, 3]
        assert recorder.select_events("person-2") == events[2:]
    finally:
        factory.close()
