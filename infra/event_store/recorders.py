"""The ledger's PostgreSQL event recorder: the library's process recorder, inserting events as binary arrays.

``PostgresApplicationRecorder`` inserts a transaction's events as one text-encoded
array of the composite type ``stored_event_uuid``
(``INSERT ... SELECT ... FROM unnest(%s::stored_event_uuid[])``): psycopg writes every
row as ``(id,version,"topic","\\\\x<hex state>")`` text and PostgreSQL parses it back,
about a fifth of the Python time of a recorded payment (issue 3). Here the four columns
go as four binary arrays instead::

    INSERT INTO <schema>.<table> (originator_id, originator_version, topic, state)
    SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[])
    RETURNING notification_id

Everything else is the library's, unchanged and in the same order within the same
pipelined transaction: the tracking row first (``PostgresProcessRecorder._insert_events``),
then ``SET LOCAL lock_timeout`` and ``LOCK TABLE ... IN EXCLUSIVE MODE`` (notification
ids issued in commit order), ``NOTIFY <channel>`` (subscriptions), the insert, and the
notification ids read back from ``RETURNING``. Same tables, same rows: a store written
by either recorder is read by both. The composite type is still created (the library's
insert function uses it), only not used for inserting.

:func:`process_recorder` builds it the way ``PostgresFactory.process_recorder`` builds the
library's (same table names, same ``CREATE_TABLE`` rule); an explicit
``PROCESS_RECORDER_TOPIC`` and every other persistence module keep the library's choice.

:class:`Factory` is how an application gets them: the library's own way to choose a
store, ``PERSISTENCE_MODULE`` (here ``infra.event_store.recorders:Factory``, set by the
wiring, :func:`infra.event_store.application_env`), names a ``PostgresFactory`` whose
process recorder is the binary one and whose snapshots table is created in turn. The
ledger's application service itself asks only the library's factory for its recorders.
"""
from __future__ import annotations

from typing import Any, Sequence
from uuid import UUID

from eventsourcing.persistence import ProcessRecorder, StoredEvent
from eventsourcing.postgres import PostgresDatastore, PostgresFactory, PostgresProcessRecorder
from psycopg.sql import SQL, Identifier


class BinaryPostgresProcessRecorder(PostgresProcessRecorder):
    """``PostgresProcessRecorder`` whose event insert sends binary column arrays (see the module docstring)."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        tracking_table_name: str = "notification_tracking",
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name, tracking_table_name=tracking_table_name)
        self._uuid_ids = self.datastore.originator_id_type == "uuid"
        self.insert_events_binary_statement = SQL(
            "INSERT INTO {schema}.{table} AS t (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::{originator_id_type}[], %b::bigint[], %b::text[], %b::bytea[])"
            " RETURNING notification_id"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            originator_id_type=Identifier(self.datastore.originator_id_type),
        )

    def _insert_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        # As PostgresApplicationRecorder._insert_stored_events: lock, notify, insert (then the
        # library's insert_events syncs the pipeline and reads the notification ids).
        self._lock_table(curs)
        self._notify_channel(curs)
        ids: list[Any] = []
        versions: list[int] = []
        topics: list[str] = []
        states: list[bytes] = []
        for e in stored_events:
            ids.append(e.originator_id)
            versions.append(e.originator_version)
            topics.append(e.topic)
            states.append(e.state)
        if self._uuid_ids:
            # A binary uuid[] needs UUID objects (the composite's text form also took strings).
            ids = [i if type(i) is UUID else UUID(str(i)) for i in ids]
        else:
            ids = [str(i) for i in ids]
        curs.execute(self.insert_events_binary_statement, (ids, versions, topics, states), prepare=True)


def process_recorder(factory: Any) -> ProcessRecorder:
    """The application's process recorder: :class:`BinaryPostgresProcessRecorder` on PostgreSQL, else the factory's.

    On PostgreSQL without an explicit ``PROCESS_RECORDER_TOPIC`` this is
    ``PostgresFactory.process_recorder`` with the binary recorder class (the same
    table names and table creation).
    """
    if not isinstance(factory, PostgresFactory) or factory.env.get(factory.PROCESS_RECORDER_TOPIC):
        return factory.process_recorder()
    return _binary_process_recorder(factory)


def _binary_process_recorder(factory: PostgresFactory) -> BinaryPostgresProcessRecorder:
    events_table_name = (factory.env.name.lower() or "stored") + "_events"
    tracking_table_name = (factory.env.name.lower() or "notification") + "_tracking"
    recorder = BinaryPostgresProcessRecorder(
        datastore=factory.datastore,
        events_table_name=events_table_name,
        tracking_table_name=tracking_table_name,
    )
    if factory.env_create_table():
        create_tables(recorder, factory.datastore)
    return recorder


def snapshot_recorder(factory: Any) -> Any:
    """The snapshot store's recorder: ``factory.aggregate_recorder("snapshots")``, its tables created in turn.

    The library creates the snapshots table (and its composite type) outside the lock
    :func:`create_tables` takes for the events table, so processes started together still
    collided on it (``type "ledger_snapshots" already exists``).
    """
    if not isinstance(factory, PostgresFactory):
        return factory.aggregate_recorder(purpose="snapshots")
    return _snapshot_recorder(factory)


def _snapshot_recorder(factory: PostgresFactory) -> Any:
    recorder = type(factory).aggregate_recorder_class(
        datastore=factory.datastore,
        events_table_name=(factory.env.name.lower() or "stored") + "_snapshots",
    )
    if factory.env_create_table():
        create_tables(recorder, factory.datastore)
    return recorder


#: The advisory lock taken while a process creates the tables (any 64-bit number, the same in every process).
CREATE_TABLES_LOCK = 0x6C65646765720001


def create_tables(recorder: Any, datastore: Any) -> None:
    """``recorder.create_table()``, one process at a time.

    Every process runs the library's idempotent creation statements at start, but two
    transactions running them at once collide ("tuple concurrently updated" on the insert
    function, a duplicate ``pg_type`` row, "relation already exists"), so processes started
    together (a deployment, a restart after an outage) died of it. A session-level
    advisory lock, on a pooled connection of its own, makes them take turns.
    """
    with datastore.get_connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (CREATE_TABLES_LOCK,))
        try:
            recorder.create_table()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (CREATE_TABLES_LOCK,))


class Factory(PostgresFactory):
    """The library's PostgreSQL factory, with the ledger's recorders (``PERSISTENCE_MODULE`` names it).

    Its process recorder is :class:`BinaryPostgresProcessRecorder` unless
    ``PROCESS_RECORDER_TOPIC`` names another (then the library's choice, as
    :func:`process_recorder`); its snapshots table is created one process at a time
    (:func:`snapshot_recorder`). Every other recorder is the library's.
    """

    def process_recorder(self) -> ProcessRecorder:
        if self.env.get(self.PROCESS_RECORDER_TOPIC):
            return super().process_recorder()
        return _binary_process_recorder(self)

    def aggregate_recorder(self, purpose: str = "events") -> Any:
        if purpose == "snapshots":
            return _snapshot_recorder(self)
        return super().aggregate_recorder(purpose)
