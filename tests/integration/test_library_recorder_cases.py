"""The eventsourcing library's own recorder test cases, run against the ledger's recorders.

``infra/event_store/recorders.py`` overrides a library internal (``PostgresApplicationRecorder.
_insert_stored_events``: the events go as four binary arrays) and builds the recorders
itself (``process_recorder``, ``snapshot_recorder``: the library factory's table names,
tables created under an advisory lock). So the cases the library runs against its own
recorders (``eventsourcing.tests.persistence``) run here against what the ledger really
uses, on the real PostgreSQL server, each test in a schema of its own (dropped after it):
a library release that changes the internals the override leans on (``_lock_table``,
``_notify_channel``, the pipelined ``_insert_events``, the table layout) fails here, not
in production.

Run here: ``ApplicationRecorderTestCase`` (with its concurrency, throughput and
subscription cases) and ``ProcessRecorderTestCase`` for the binary recorder, with ``uuid``
ids (the ledger's) and ``text`` ids, ``TrackingRecorderTestCase`` and
``NonInterleavingNotificationIDsBaseCase`` with ``uuid`` ids; ``AggregateRecorderTestCase``
for the snapshot recorder (an application recorder returns notification ids where that
case expects None, so the library runs it on aggregate recorders only, as here). The library's
PostgreSQL-only checks that ``eventsourcing.tests.persistence`` does not hold (they live
in the library's own test module, which is not installed) are written here for what the
override touches: the table lock's timeout, and rows readable by the library's recorder.
Left out: the library's connection-retry cases, which kill every backend of the database
(``pg_close_all_connections``): on the shared server that would break every other test.

On SQLite the ledger keeps the library's recorders (no override): the same factory path
is run through ``ProcessRecorderTestCase`` and ``AggregateRecorderTestCase`` so that stays
checked too. The ``test_performance`` cases only print timings; they are kept (a few
seconds each) since they exercise the insert path many times.
"""
from __future__ import annotations

import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any
from unittest import TestCase

import psycopg
import pytest
from eventsourcing.persistence import OperationalError, StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresFactory,
    PostgresProcessRecorder,
    PostgresTrackingRecorder,
)
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteFactory, SQLiteProcessRecorder
from eventsourcing.tests import persistence as library_cases
from eventsourcing.utils import Environment, get_topic
from psycopg import sql

from infra.event_store import HOUSE_POSTGRES_FACTORY, application_env
from infra.event_store.recorders import BinaryPostgresProcessRecorder, Factory, process_recorder, snapshot_recorder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="class")
def postgres_settings(request: pytest.FixtureRequest, services: dict[str, str]) -> None:
    """The shared server's POSTGRES_* settings, on the test class (unittest cases take no fixture arguments)."""
    request.cls.postgres = {k: v for k, v in services.items() if k.startswith("POSTGRES_")}


@pytest.mark.usefixtures("postgres_settings")
class _OnPostgres(TestCase):
    """A ``PostgresFactory`` named as the ledger's ("Ledger": tables ``ledger_events``, ``ledger_tracking``,
    ``ledger_snapshots``) on a schema of the test's own, dropped after the test."""

    postgres: dict[str, str]
    originator_id_type = "uuid"
    lock_timeout = ""

    def setUp(self) -> None:
        super().setUp()
        schema = f"t_libcase_{uuid.uuid4().hex[:10]}"
        self._admin("CREATE SCHEMA {}", schema)
        self.addCleanup(self._admin, "DROP SCHEMA IF EXISTS {} CASCADE", schema)
        env = {**self.postgres, "POSTGRES_SCHEMA": schema, "CREATE_TABLE": "y",
               "ORIGINATOR_ID_TYPE": self.originator_id_type,
               # The library's concurrency cases run 10 writers and 2 readers at once.
               "POSTGRES_POOL_SIZE": "12", "POSTGRES_MAX_OVERFLOW": "2",
               "POSTGRES_LOCK_TIMEOUT": self.lock_timeout}
        self.factory = PostgresFactory(Environment("Ledger", env))
        self.datastore = self.factory.datastore
        self.addCleanup(self.factory.close)  # (cleanups run last-in first-out: closed before the drop)

    def _admin(self, statement: str, schema: str) -> None:
        with psycopg.connect(host=self.postgres["POSTGRES_HOST"], port=int(self.postgres["POSTGRES_PORT"]),
                             dbname=self.postgres["POSTGRES_DBNAME"], user=self.postgres["POSTGRES_USER"],
                             password=self.postgres["POSTGRES_PASSWORD"], autocommit=True) as conn:
            conn.execute(sql.SQL(statement).format(sql.Identifier(schema)))

    def new_originator_id(self) -> Any:
        return uuid.uuid4() if self.originator_id_type == "uuid" else f"person-{uuid.uuid4()}"

    def ledger_recorder(self) -> BinaryPostgresProcessRecorder:
        recorder = process_recorder(self.factory)
        # The factory path must give the project's recorder, else these cases test the library's.
        self.assertIs(type(recorder), BinaryPostgresProcessRecorder)
        self.assertEqual((recorder.events_table_name, recorder.tracking_table_name),
                         ("ledger_events", "ledger_tracking"))
        return recorder


# ----------------------------------------------------------------- the binary event recorder, uuid ids

class TestLedgerRecorderAsApplicationRecorder(_OnPostgres, library_cases.ApplicationRecorderTestCase):
    def create_recorder(self) -> BinaryPostgresProcessRecorder:
        return self.ledger_recorder()

    def test_insert_subscribe(self) -> None:
        # The library runs this "optional" case for its PostgreSQL recorder (LISTEN/NOTIFY).
        self.optional_test_insert_subscribe()


class TestLedgerRecorderAsProcessRecorder(_OnPostgres, library_cases.ProcessRecorderTestCase):
    def create_recorder(self) -> BinaryPostgresProcessRecorder:
        return self.ledger_recorder()


class TestLedgerRecorderAsTrackingRecorder(_OnPostgres, library_cases.TrackingRecorderTestCase):
    def create_recorder(self) -> BinaryPostgresProcessRecorder:
        return self.ledger_recorder()


class TestLedgerRecorderNotificationIdsDoNotInterleave(
        _OnPostgres, library_cases.NonInterleavingNotificationIDsBaseCase):
    """Two transactions inserting 1,000 events each at once: each one's notification ids are one block."""

    def create_recorder(self) -> BinaryPostgresProcessRecorder:
        return self.ledger_recorder()


# ----------------------------------------------------------------- the same with text ids

class TestLedgerRecorderWithTextIdsAsApplicationRecorder(TestLedgerRecorderAsApplicationRecorder):
    originator_id_type = "text"


class TestLedgerRecorderWithTextIdsAsProcessRecorder(TestLedgerRecorderAsProcessRecorder):
    originator_id_type = "text"


# ----------------------------------------------------------------- what the library checks in its own postgres tests

class TestLedgerRecorderTableLock(_OnPostgres):
    """The override takes the library's table lock, with the library's ``lock_timeout`` (POSTGRES_LOCK_TIMEOUT).

    As the library's own PostgreSQL test does, the second insert calls ``_insert_stored_events``
    in a transaction of its own: ``insert_events`` retries a lock timeout (10 attempts).
    """

    lock_timeout = "1"

    def test_an_insert_waits_for_the_table_lock_and_times_out(self) -> None:
        recorder = self.ledger_recorder()
        first = StoredEvent(originator_id=self.new_originator_id(), originator_version=1, topic="t", state=b"1")
        second = StoredEvent(originator_id=self.new_originator_id(), originator_version=1, topic="t", state=b"2")
        locked, release = threading.Event(), threading.Event()

        def hold_the_lock() -> None:
            with self.datastore.transaction(commit=False) as curs:
                recorder._insert_stored_events(curs, [first])
                locked.set()
                release.wait(timeout=4)  # (the server ends a transaction idle for 5 s)

        holder = threading.Thread(target=hold_the_lock, daemon=True)
        holder.start()
        try:
            self.assertTrue(locked.wait(timeout=10))
            with self.assertRaises(OperationalError) as raised, self.datastore.get_connection() as conn, \
                    conn.transaction(), conn.cursor() as curs:
                recorder._insert_stored_events(curs, [second])
            self.assertIn("lock timeout", str(raised.exception))
        finally:
            release.set()
            holder.join(timeout=10)
        # Neither was recorded: the first was rolled back, the second timed out.
        self.assertEqual(recorder.select_notifications(start=None, limit=10), [])
        recorder.insert_events([second])  # (its notification id follows the one the rollback used up)
        self.assertEqual([(n.originator_id, n.state) for n in recorder.select_notifications(start=None, limit=10)],
                         [(second.originator_id, b"2")])


class TestLedgerRecorderNotifiesItsChannel(_OnPostgres):
    """The override sends the library's ``NOTIFY <channel>`` with each insert.

    The library's subscription case passes without it (its subscription also polls, only
    slower), so the notification itself is listened for here.
    """

    def test_each_insert_notifies_the_recorder_channel(self) -> None:
        recorder = self.ledger_recorder()
        self.assertEqual(recorder.channel_name, "ledger_events")
        with psycopg.connect(host=self.postgres["POSTGRES_HOST"], port=int(self.postgres["POSTGRES_PORT"]),
                             dbname=self.postgres["POSTGRES_DBNAME"], user=self.postgres["POSTGRES_USER"],
                             password=self.postgres["POSTGRES_PASSWORD"], autocommit=True) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(recorder.channel_name)))
            recorder.insert_events([StoredEvent(originator_id=self.new_originator_id(), originator_version=1,
                                                topic="t", state=b"")])
            heard = [n.channel for n in conn.notifies(timeout=5, stop_after=1)]
        self.assertEqual(heard, [recorder.channel_name])


class TestLedgerRecorderRowsAreTheLibraryRecorders(_OnPostgres):
    """The library's own recorder, on the same tables, reads what the override wrote and vice versa."""

    def test_each_reads_what_the_other_wrote(self) -> None:
        ours = self.ledger_recorder()
        theirs = PostgresProcessRecorder(self.datastore, events_table_name=ours.events_table_name,
                                         tracking_table_name=ours.tracking_table_name)
        a, b = self.new_originator_id(), self.new_originator_id()
        state = "赵敏 \\ \" ' ( ) , {}".encode() + b"\x00\xff\\x"
        mine = [StoredEvent(originator_id=a, originator_version=v, topic=f"t{v}", state=state * v) for v in (1, 2, 3)]
        yours = [StoredEvent(originator_id=b, originator_version=1, topic="u", state=b"")]
        self.assertEqual(ours.insert_events(mine), [1, 2, 3])
        self.assertEqual(theirs.insert_events(yours), [4])
        self.assertEqual(theirs.select_events(a), mine)
        self.assertEqual(ours.select_events(b), yours)
        self.assertEqual(theirs.select_notifications(start=None, limit=10),
                         ours.select_notifications(start=None, limit=10))


class TestLedgerRecorderWithTextIdsRowsAreTheLibraryRecorders(TestLedgerRecorderRowsAreTheLibraryRecorders):
    originator_id_type = "text"


# ----------------------------------------------------------------- the snapshot recorder

class TestLedgerSnapshotRecorderAsAggregateRecorder(_OnPostgres, library_cases.AggregateRecorderTestCase):
    def create_recorder(self) -> PostgresAggregateRecorder:
        recorder = snapshot_recorder(self.factory)
        self.assertIsInstance(recorder, PostgresAggregateRecorder)
        self.assertEqual(recorder.events_table_name, "ledger_snapshots")
        return recorder


# ----------------------------------------------------------------- the factory the wiring names (PERSISTENCE_MODULE)

class _TrackingSubclass(PostgresTrackingRecorder):
    pass


@pytest.mark.usefixtures("postgres_settings")
class TestLedgerFactoryAsInfrastructureFactory(library_cases.InfrastructureFactoryTestCase):
    """``infra.event_store.recorders:Factory``, which ``application_env`` names for the ledger on PostgreSQL, passes
    the library's own factory cases: its process recorder is the binary one, every other recorder the library's."""

    postgres: dict[str, str]

    def setUp(self) -> None:
        schema = f"t_libfactory_{uuid.uuid4().hex[:10]}"
        _OnPostgres._admin(self, "CREATE SCHEMA {}", schema)  # type: ignore[arg-type]
        self.addCleanup(_OnPostgres._admin, self, "DROP SCHEMA IF EXISTS {} CASCADE", schema)
        env = application_env({"PERSISTENCE_MODULE": "eventsourcing.postgres", **self.postgres,
                               "POSTGRES_SCHEMA": schema, "CREATE_TABLE": "y"})
        self.assertEqual(env["PERSISTENCE_MODULE"], HOUSE_POSTGRES_FACTORY)
        self.env = Environment("Ledger", env)
        super().setUp()  # the factory, by the library's InfrastructureFactory.construct(env)

    def expected_factory_class(self) -> type[Factory]:
        return Factory

    def expected_aggregate_recorder_class(self) -> type[PostgresAggregateRecorder]:
        return PostgresAggregateRecorder

    def expected_application_recorder_class(self) -> type[PostgresApplicationRecorder]:
        return PostgresApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[PostgresTrackingRecorder]:
        return PostgresTrackingRecorder

    def tracking_recorder_subclass(self) -> type[PostgresTrackingRecorder]:
        return _TrackingSubclass

    def expected_process_recorder_class(self) -> type[BinaryPostgresProcessRecorder]:
        return BinaryPostgresProcessRecorder

    def test_snapshots_table_and_an_explicit_process_recorder_topic(self) -> None:
        snapshots = self.factory.aggregate_recorder(purpose="snapshots")
        self.assertIs(type(snapshots), PostgresAggregateRecorder)
        self.assertEqual(snapshots.events_table_name, "ledger_snapshots")
        self.assertEqual(self.factory.process_recorder().events_table_name, "ledger_events")
        self.env[self.factory.PROCESS_RECORDER_TOPIC] = get_topic(PostgresProcessRecorder)
        self.assertIs(type(self.factory.process_recorder()), PostgresProcessRecorder)  # the library's choice kept


# ----------------------------------------------------------------- SQLite: the library's recorders, by the same path

class _OnSQLite(TestCase):
    def setUp(self) -> None:
        super().setUp()
        folder = tempfile.TemporaryDirectory()
        self.addCleanup(folder.cleanup)
        env = {"SQLITE_DBNAME": str(Path(folder.name) / "ledger.sqlite"), "CREATE_TABLE": "y"}
        self.factory = SQLiteFactory(Environment("Ledger", env))
        self.addCleanup(self.factory.close)


class TestLedgerRecorderOnSQLiteAsProcessRecorder(_OnSQLite, library_cases.ProcessRecorderTestCase):
    def create_recorder(self) -> SQLiteProcessRecorder:
        recorder = process_recorder(self.factory)
        self.assertIs(type(recorder), SQLiteProcessRecorder)
        return recorder


class TestLedgerSnapshotRecorderOnSQLiteAsAggregateRecorder(_OnSQLite, library_cases.AggregateRecorderTestCase):
    def create_recorder(self) -> SQLiteAggregateRecorder:
        recorder = snapshot_recorder(self.factory)
        self.assertIs(type(recorder), SQLiteAggregateRecorder)
        return recorder
