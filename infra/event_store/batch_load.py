"""Batched loading of many aggregates for the high-volume paths (e.g. ``Ledger.record_tax_records``).

``Repository.get`` costs two round trips per aggregate (the latest snapshot, then the
events after it). For a batch of a few hundred records that is most of the time
spent, so on PostgreSQL :func:`load_aggregates` fetches every aggregate of the batch
in ONE statement: the latest snapshot of each id (primary key read backwards,
``LIMIT 1``) and the events after it (or all its events when it has no snapshot),
rows ordered by id and version. Rows go through the application's own mapper
(``mapper.to_domain_event``: transcoder, cipher, compressor, upcasting as configured;
for the plain JSON mapper the same done with orjson, :mod:`infra.event_store.stored_events`)
and are folded with ``event.mutate`` (or the caller's projector), as ``Repository.get``
does, so the aggregates are equal to what it returns.

Any other store (SQLite, in-memory) falls back to ``repository.get`` per id.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.utils import retry

from infra.event_store.stored_events import row_decoder

try:  # the postgres extra is installed wherever the ledger runs on PostgreSQL
    from eventsourcing.postgres import PostgresAggregateRecorder
    from psycopg.rows import tuple_row
    from psycopg.sql import SQL, Identifier
except ImportError:  # pragma: no cover - SQLite-only installs
    PostgresAggregateRecorder = None  # type: ignore[assignment,misc]

#: Ids per statement: keeps the arrays (and the rows held at once) bounded.
CHUNK = 4000

#: Folds one aggregate's events (a snapshot first, if any) into the aggregate.
Project = Callable[[Sequence[Any]], Any]


def project(events: Sequence[Any]) -> Any:
    """``event.mutate`` over the events in order, as ``Repository.get`` does."""
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def load_aggregates(app: Application[Any], ids: Iterable[UUID], *, projector: Project = project) -> dict[UUID, Any]:
    """The current state of every aggregate in ``ids`` that exists (missing ids are left out).

    Deduplicates the ids. On PostgreSQL one statement per ``CHUNK`` ids, each aggregate's
    events folded by ``projector``; elsewhere ``app.repository.get`` for each id.
    """
    unique = list(dict.fromkeys(ids))
    if not unique:
        return {}
    loader = _postgres_loader(app)
    if loader is None:
        return _load_one_by_one(app, unique)
    out: dict[UUID, Any] = {}
    for start in range(0, len(unique), CHUNK):
        out.update(loader.load(unique[start:start + CHUNK], projector))
    return out


def _load_one_by_one(app: Application[Any], ids: list[UUID]) -> dict[UUID, Any]:
    out: dict[UUID, Any] = {}
    for aggregate_id in ids:
        try:
            out[aggregate_id] = app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            continue
    return out


class _PostgresLoader:
    """One ``SELECT`` for the latest snapshot and the later events of many aggregates."""

    def __init__(self, app: Application[Any]) -> None:
        events = app.events.recorder
        self.datastore = events.datastore  # type: ignore[attr-defined]
        self.mapper = app.mapper
        self.repository = app.repository  # (for an aggregate whose latest snapshot is of an older shape)
        # The mapper's to_domain_event, done with orjson where that gives the same events (infra.event_store.stored_events).
        self.decode = row_decoder(app.mapper)
        schema = Identifier(self.datastore.schema)
        events_table = Identifier(events.events_table_name)  # type: ignore[attr-defined]
        snapshots = app.snapshots.recorder if app.snapshots is not None else None
        self._no_jit = SQL("SET LOCAL jit = off")
        # Index lookups per id (LATERAL; OFFSET 0 keeps the planner from flattening it into a
        # join over the whole table), whatever it thinks of the tables' sizes: the latest
        # snapshot (primary key read backwards, LIMIT 1), then the events after it.
        # Snapshot rows carry kind 0 and event rows kind 1, so each aggregate's rows come in order.
        if isinstance(snapshots, PostgresAggregateRecorder):
            self.statement = SQL(
                "WITH snap AS ("
                "  SELECT s.originator_id, s.originator_version, s.topic, s.state"
                "  FROM unnest(%(ids)s::uuid[]) AS ids(id) CROSS JOIN LATERAL ("
                "    SELECT originator_id, originator_version, topic, state FROM {schema}.{snapshots}"
                "    WHERE originator_id = ids.id ORDER BY originator_version DESC LIMIT 1) s) "
                "SELECT 0 AS kind, originator_id, originator_version, topic, state FROM snap "
                "UNION ALL "
                "SELECT 1 AS kind, e.originator_id, e.originator_version, e.topic, e.state "
                "FROM unnest(%(ids)s::uuid[]) AS ids(id) "
                "LEFT JOIN snap ON snap.originator_id = ids.id CROSS JOIN LATERAL ("
                "  SELECT originator_id, originator_version, topic, state FROM {schema}.{events}"
                "  WHERE originator_id = ids.id AND originator_version > COALESCE(snap.originator_version, 0)"
                "  OFFSET 0) e "
                "ORDER BY originator_id, kind, originator_version"
            ).format(schema=schema, events=events_table,
                     snapshots=Identifier(snapshots.events_table_name))
        else:
            self.statement = SQL(
                "SELECT 1 AS kind, e.originator_id, e.originator_version, e.topic, e.state "
                "FROM unnest(%(ids)s::uuid[]) AS ids(id) CROSS JOIN LATERAL ("
                "  SELECT originator_id, originator_version, topic, state FROM {schema}.{events}"
                "  WHERE originator_id = ids.id OFFSET 0) e "
                "ORDER BY e.originator_id, e.originator_version"
            ).format(schema=schema, events=events_table)

    def load(self, ids: list[UUID], projector: Project) -> dict[UUID, Any]:
        return self.build(self.fetch(ids), projector)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library's own reads
    def fetch(self, ids: list[UUID]) -> list[tuple[Any, ...]]:
        """The rows of ``ids`` (the statement only: it may run on another thread than :meth:`build`)."""
        with self.datastore.get_connection() as conn, conn.pipeline(), conn.transaction(), \
                conn.cursor(row_factory=tuple_row) as curs:
            # JIT compiling this plan costs far more (~200 ms) than running it (a few ms), and a
            # table never analyzed yet (a new schema) makes its cost estimate high enough to JIT.
            curs.execute(self._no_jit)
            # Binary results: each event's state arrives as its bytes, not as hex text psycopg
            # decodes (twice the bytes), and ids as 16 bytes; the Python values are the same.
            curs.execute(self.statement, {"ids": ids}, prepare=True, binary=True)
            return curs.fetchall()

    def build(self, rows: list[tuple[Any, ...]], projector: Project) -> dict[UUID, Any]:
        """The aggregates of :meth:`fetch`'s rows."""
        decode = self.decode
        out: dict[UUID, Any] = {}
        current_id: Any = None
        events: list[Any] = []
        for kind, originator_id, originator_version, topic, state in rows:
            if originator_id != current_id:
                if events:
                    out[current_id] = self._fold(current_id, events, projector)
                current_id, events = originator_id, []
            event = decode(originator_id, originator_version, topic, bytes(state))
            if kind == 0:
                event = _current_snapshot(event)
            events.append(event)
        if events:
            out[current_id] = self._fold(current_id, events, projector)
        return out

    def _fold(self, aggregate_id: Any, events: list[Any], projector: Project) -> Any:
        if events[0] is None:  # a snapshot of an older shape: a cache only, so replay every event
            return self.repository.get(aggregate_id)
        return projector(events)


def _current_snapshot(snapshot: Any) -> Any:
    """The snapshot, or None when it is of an older shape than its aggregate class (``class_version``):
    the ``Repository.get`` of the ledger's snapshot store leaves such snapshots out the same way."""
    current = getattr(getattr(snapshot, "__class__", None), "is_current", None)
    return snapshot if current is None or current(snapshot) else None


class Prefetch:
    """A :func:`load_aggregates` whose statement was started early (see :func:`start_loading`)."""

    def __init__(self, ids: set[UUID], rows: Callable[[], list[tuple[Any, ...]]], loader: _PostgresLoader) -> None:
        self.ids = ids
        self._rows = rows
        self._loader = loader

    def result(self, ids: Iterable[UUID], projector: Project = project) -> dict[UUID, Any] | None:
        """What ``load_aggregates(app, ids, projector=projector)`` gives, from the early statement's rows;
        None when ``ids`` are not all among those it read or it failed (load them now instead)."""
        if not self.ids.issuperset(ids):
            return None
        try:
            rows = self._rows()
        except Exception:  # noqa: BLE001 - the caller loads them the ordinary way (and sees the error then)
            return None
        return self._loader.build(rows, projector)


def start_loading(app: Application[Any], ids: Iterable[UUID],
                  submit: Callable[..., Callable[[], Any]]) -> Prefetch | None:
    """Run the statement of ``load_aggregates(app, ids)`` through ``submit`` (a writer thread), or None
    (not PostgreSQL, or more ids than one statement takes).

    The rows are read when the statement runs: the caller must know that no write it cares
    about can happen between then and the use of the result.
    """
    unique = list(dict.fromkeys(ids))
    loader = _postgres_loader(app)
    if loader is None or not unique or len(unique) > CHUNK:
        return None
    return Prefetch(set(unique), submit(loader.fetch, unique), loader)


def _postgres_loader(app: Application[Any]) -> _PostgresLoader | None:
    """The application's PostgreSQL loader (built once per application), or None on other stores."""
    if PostgresAggregateRecorder is None or not isinstance(app.events.recorder, PostgresAggregateRecorder):
        return None
    if app.events.recorder.datastore.originator_id_type != "uuid":  # type: ignore[attr-defined]
        return None
    loader = app.__dict__.get("_batch_loader")
    if loader is None:
        loader = _PostgresLoader(app)
        app.__dict__["_batch_loader"] = loader
    return loader
