"""Raw stored-event rows for the auditing tools, read in big batches straight from the recorder.

Verification must see exactly what is stored, including rows that no longer decode,
so it does not go through ``Repository.get`` (which would use snapshots) nor through
``EventStore.get`` (which stops at the first row that fails to decode). It reads the
event table's rows -- notification id, originator id, version, topic, state bytes --
and decodes each one itself with the application's mapper, so a decoding failure
becomes a finding at that row's position instead of an exception.

Three adapters, chosen from the application's recorder:

* PostgreSQL: keyset-paged ``SELECT`` statements (no long transaction, no snapshot of
  the table held open), rows as tuples, binary transfer;
* SQLite: the same statements (``rowid`` is the notification id);
* in-memory (POPO): the recorder's list of stored events.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
import psycopg
import copy
from concurrent.futures import ThreadPoolExecutor
from psycopg.rows import tuple_row
from psycopg.sql import Identifier, SQL

#: Rows fetched per statement.
BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Row:
    """One stored event as the table holds it (``state`` is the encoded bytes)."""

    notification_id: int | None
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes

    def stored_event(self) -> StoredEvent:
        return StoredEvent(self.originator_id, self.originator_version, self.topic, self.state)


def as_bytes(state: Any) -> bytes:
    """A state column as bytes, whatever a hand-edited row now holds (text, NULL)."""
    if state is None:
        return b""
    if isinstance(state, str):
        return state.encode()
    return bytes(state)


class EventRows:
    """Read access to the event and snapshot tables of one application."""

    def by_aggregate(self, *, batch: int = BATCH) -> Iterator[Row]:
        """Every event row, ordered by originator id then version."""
        raise NotImplementedError

    def by_notification(self, *, after: int = 0, upto: int | None = None, batch: int = BATCH) -> Iterator[Row]:
        """Event rows with ``after < notification_id <= upto``, in notification order."""
        raise NotImplementedError

    def of_aggregate(self, originator_id: UUID) -> list[Row]:
        """One aggregate's event rows in version order, with their notification ids."""
        raise NotImplementedError

    def snapshot_ids(self) -> set[UUID]:
        """Originator ids that have at least one snapshot."""
        raise NotImplementedError

    def snapshots_of(self, originator_id: UUID) -> list[Row]:
        """One aggregate's snapshot rows in version order (notification_id is None)."""
        raise NotImplementedError

    def max_notification_id(self) -> int:
        raise NotImplementedError

    #: True when ``by_aggregate`` takes ``lo`` / ``hi`` bounds (the whole-ledger check can then be split).
    ranges: bool = False

    #: Where the rows live, for reports ("postgres schema x, table ledger_events").
    description: str = ""


# --------------------------------------------------------------------------- PostgreSQL
class PostgresEventRows(EventRows):
    """Keyset-paged reads; a stream uses a connection of its own and fetches the next page while the
    caller works on the current one (the server's and the network's time overlap the decoding)."""

    ranges = True

    def __init__(self, app: Any) -> None:
        recorder = app.recorder
        self.datastore = recorder.datastore
        self._kwargs = {k: v for k, v in self.datastore.pool.kwargs.items() if k != "row_factory"}
        self._conn: Any = None  # a connection of this reader's own (a forked worker's), else the pool
        schema = Identifier(self.datastore.schema)
        events = Identifier(recorder.events_table_name)
        snapshots = getattr(getattr(app, "snapshots", None), "recorder", None)
        cols = SQL("notification_id, originator_id, originator_version, topic, state")
        self._by_aggregate = SQL(
            "SELECT {c} FROM {s}.{t} WHERE (originator_id, originator_version) > (%s, %s) "
            "ORDER BY originator_id, originator_version LIMIT %s").format(c=cols, s=schema, t=events)
        self._by_aggregate_below = SQL(
            "SELECT {c} FROM {s}.{t} WHERE (originator_id, originator_version) > (%s, %s) AND originator_id < %s "
            "ORDER BY originator_id, originator_version LIMIT %s").format(c=cols, s=schema, t=events)
        self._by_notification = SQL(
            "SELECT {c} FROM {s}.{t} WHERE notification_id > %s AND notification_id <= %s "
            "ORDER BY notification_id LIMIT %s").format(c=cols, s=schema, t=events)
        self._of_aggregate = SQL("SELECT {c} FROM {s}.{t} WHERE originator_id = %s ORDER BY originator_version").format(
            c=cols, s=schema, t=events)
        self._max = SQL("SELECT max(notification_id) FROM {s}.{t}").format(s=schema, t=events)
        self._snapshot_ids = self._snapshots_of = None
        if snapshots is not None and hasattr(snapshots, "events_table_name"):
            snap = Identifier(snapshots.events_table_name)
            self._snapshot_ids = SQL("SELECT DISTINCT originator_id FROM {s}.{t}").format(s=schema, t=snap)
            self._snapshots_of = SQL(
                "SELECT NULL, originator_id, originator_version, topic, state FROM {s}.{t} "
                "WHERE originator_id = %s ORDER BY originator_version").format(s=schema, t=snap)
        self.description = f"PostgreSQL schema {self.datastore.schema}, table {recorder.events_table_name}"

    def _connect(self) -> Any:
        return psycopg.connect(**self._kwargs, autocommit=True)

    def detached(self) -> PostgresEventRows:
        """A copy reading through a connection of its own (for a forked worker: never the parent's pool)."""
        other = copy.copy(self)
        other._conn = self._connect()
        return other

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @staticmethod
    def _run(conn: Any, statement: Any, params: Sequence[Any]) -> list[tuple]:
        with conn.cursor(row_factory=tuple_row, binary=True) as cur:
            cur.execute(statement, params, prepare=True)
            return cur.fetchall()

    def _fetch(self, statement: Any, params: Sequence[Any]) -> list[tuple]:
        if self._conn is not None:
            return self._run(self._conn, statement, params)
        with self.datastore.get_connection() as conn:
            return self._run(conn, statement, params)

    def _pages(self, statement: Any, first: Sequence[Any], after: Any, batch: int) -> Iterator[list[tuple]]:
        """Pages of a keyset query on a dedicated connection, the next one fetched while this one is used."""
        conn = self._connect()
        executor = ThreadPoolExecutor(1, thread_name_prefix="audit-rows")
        try:
            future: Any = executor.submit(self._run, conn, statement, first)
            while future is not None:
                rows = future.result()
                future = executor.submit(self._run, conn, statement, after(rows[-1])) if len(rows) >= batch else None
                yield rows
        finally:
            executor.shutdown(wait=True)
            conn.close()

    def by_aggregate(self, *, batch: int = BATCH, lo: UUID | None = None, hi: UUID | None = None) -> Iterator[Row]:
        """Rows of aggregates ``lo <= originator_id < hi`` (open ends when None), by id then version."""
        start = lo or UUID(int=0)
        if hi is None:
            statement, first, after = self._by_aggregate, (start, 0, batch), lambda r: (r[1], r[2], batch)
        else:
            statement, first, after = (self._by_aggregate_below, (start, 0, hi, batch),
                                       lambda r: (r[1], r[2], hi, batch))
        for rows in self._pages(statement, first, after, batch):
            for r in rows:
                yield Row(r[0], r[1], r[2], r[3], as_bytes(r[4]))

    def by_notification(self, *, after: int = 0, upto: int | None = None, batch: int = BATCH) -> Iterator[Row]:
        upto = self.max_notification_id() if upto is None else upto
        if after >= upto:
            return
        for rows in self._pages(self._by_notification, (after, upto, batch), lambda r: (r[0], upto, batch), batch):
            for r in rows:
                yield Row(r[0], r[1], r[2], r[3], as_bytes(r[4]))

    def of_aggregate(self, originator_id: UUID) -> list[Row]:
        return [Row(r[0], r[1], r[2], r[3], as_bytes(r[4])) for r in self._fetch(self._of_aggregate, (originator_id,))]

    def snapshot_ids(self) -> set[UUID]:
        if self._snapshot_ids is None:
            return set()
        return {r[0] for r in self._fetch(self._snapshot_ids, ())}

    def snapshots_of(self, originator_id: UUID) -> list[Row]:
        if self._snapshots_of is None:
            return []
        return [Row(r[0], r[1], r[2], r[3], as_bytes(r[4])) for r in self._fetch(self._snapshots_of, (originator_id,))]

    def max_notification_id(self) -> int:
        rows = self._fetch(self._max, ())
        return int(rows[0][0] or 0)


# --------------------------------------------------------------------------- SQLite
class SQLiteEventRows(EventRows):
    def __init__(self, app: Any) -> None:
        recorder = app.recorder
        self.datastore = recorder.datastore
        self.table = recorder.events_table_name
        self.uuid_ids = self.datastore.originator_id_type == "uuid"
        snapshots = getattr(getattr(app, "snapshots", None), "recorder", None)
        self.snapshot_table = getattr(snapshots, "events_table_name", None)
        self.description = f"SQLite table {self.table}"

    @staticmethod
    def _key(originator_id: Any) -> str:
        # The library stores a UUID originator id as its 32-digit hex text.
        return originator_id.hex if isinstance(originator_id, UUID) else str(originator_id)

    def _fetch(self, statement: str, params: Sequence[Any]) -> list[Row]:
        with self.datastore.transaction(commit=False) as cur:
            cur.execute(statement, list(params))
            raw = cur.fetchall()
        convert = UUID if self.uuid_ids else str
        return [Row(r[0], convert(r[1]), r[2], r[3], as_bytes(r[4])) for r in raw]

    def by_aggregate(self, *, batch: int = BATCH) -> Iterator[Row]:
        cols = f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.table}"
        rows = self._fetch(f"{cols} ORDER BY originator_id, originator_version LIMIT ?", (batch,))
        while rows:
            yield from rows
            if len(rows) < batch:
                return
            last = rows[-1]
            rows = self._fetch(
                f"{cols} WHERE originator_id > ? OR (originator_id = ? AND originator_version > ?) "
                "ORDER BY originator_id, originator_version LIMIT ?",
                (self._key(last.originator_id), self._key(last.originator_id), last.originator_version, batch))

    def by_notification(self, *, after: int = 0, upto: int | None = None, batch: int = BATCH) -> Iterator[Row]:
        upto = self.max_notification_id() if upto is None else upto
        while after < upto:
            rows = self._fetch(
                f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.table} "
                "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?", (after, upto, batch))
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1].notification_id  # type: ignore[assignment]

    def of_aggregate(self, originator_id: UUID) -> list[Row]:
        return self._fetch(f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.table} "
                           "WHERE originator_id = ? ORDER BY originator_version", (self._key(originator_id),))

    def snapshot_ids(self) -> set[UUID]:
        if self.snapshot_table is None:
            return set()
        with self.datastore.transaction(commit=False) as cur:
            cur.execute(f"SELECT DISTINCT originator_id FROM {self.snapshot_table}")
            return {UUID(r[0]) if self.uuid_ids else r[0] for r in cur.fetchall()}

    def snapshots_of(self, originator_id: UUID) -> list[Row]:
        if self.snapshot_table is None:
            return []
        return self._fetch(f"SELECT NULL, originator_id, originator_version, topic, state FROM {self.snapshot_table} "
                           "WHERE originator_id = ? ORDER BY originator_version", (self._key(originator_id),))

    def max_notification_id(self) -> int:
        with self.datastore.transaction(commit=False) as cur:
            cur.execute(f"SELECT max(rowid) FROM {self.table}")
            row = cur.fetchone()
        return int(row[0] or 0)


# --------------------------------------------------------------------------- in memory
class MemoryEventRows(EventRows):
    """The in-memory recorder's list of stored events (notification id = position + 1)."""

    description = "in-memory event store"

    def __init__(self, app: Any) -> None:
        self.recorder = app.recorder
        self.snapshots = getattr(getattr(app, "snapshots", None), "recorder", None)

    def _all(self) -> list[Row]:
        with self.recorder._database_lock:
            stored = list(self.recorder._stored_events)
        return [Row(i + 1, s.originator_id, s.originator_version, s.topic, s.state)
                for i, s in enumerate(stored) if s is not None]

    def by_aggregate(self, *, batch: int = BATCH) -> Iterator[Row]:
        yield from sorted(self._all(), key=lambda r: (str(r.originator_id), r.originator_version))

    def by_notification(self, *, after: int = 0, upto: int | None = None, batch: int = BATCH) -> Iterator[Row]:
        for row in self._all():
            if row.notification_id > after and (upto is None or row.notification_id <= upto):  # type: ignore[operator]
                yield row

    def of_aggregate(self, originator_id: UUID) -> list[Row]:
        return sorted((r for r in self._all() if r.originator_id == originator_id), key=lambda r: r.originator_version)

    def _snapshot_rows(self) -> list[Row]:
        if self.snapshots is None:
            return []
        with self.snapshots._database_lock:
            stored = list(self.snapshots._stored_events)
        return [Row(None, s.originator_id, s.originator_version, s.topic, s.state) for s in stored if s is not None]

    def snapshot_ids(self) -> set[UUID]:
        return {r.originator_id for r in self._snapshot_rows()}

    def snapshots_of(self, originator_id: UUID) -> list[Row]:
        return sorted((r for r in self._snapshot_rows() if r.originator_id == originator_id),
                      key=lambda r: r.originator_version)

    def max_notification_id(self) -> int:
        return len(self.recorder._stored_events)


def event_rows(app: Any) -> EventRows:
    """The row reader for this application's store (built once per application)."""
    rows = app.__dict__.get("_audit_rows")
    if rows is not None:
        return rows
    module = type(app.recorder).__module__
    if module.startswith(("eventsourcing.postgres", "infra.event_store.recorders")):  # (the binary recorder: PostgreSQL)
        rows = PostgresEventRows(app)
    elif module.startswith("eventsourcing.sqlite"):
        rows = SQLiteEventRows(app)
    elif hasattr(app.recorder, "_stored_events"):
        rows = MemoryEventRows(app)
    else:  # pragma: no cover - a store this project does not use
        raise TypeError(f"the auditing tools cannot read rows of {type(app.recorder).__name__}")
    app.__dict__["_audit_rows"] = rows
    return rows
