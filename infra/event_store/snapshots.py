"""Dropping a person's older snapshots (快照) once a newer one is stored.

A snapshot is a cache for loading: ``Repository.get`` and the batch loader start from a
person's latest snapshot, and nothing reads an older one but ``repository.get`` asked
for an old version, which replays the events instead when no snapshot is that old. The
audit never trusts snapshots (it replays the events and reports a snapshot that
disagrees). A person is snapshotted after every coverage-year assessment, and each
snapshot holds the whole state, which grows year by year: keeping them all would make
the snapshots' storage grow with the square of the years (after ten years about 2.7
times the person's events, against about half with only the latest kept).

So after the ledger stores such snapshots it drops the older ones of the same persons,
in one statement, on PostgreSQL and SQLite. A crash between the two leaves an older
snapshot behind, which does no harm. The in-memory store keeps them all (tests, demos).
"""
from __future__ import annotations

from typing import Any, Mapping
from uuid import UUID

try:  # the postgres extra is installed wherever the ledger runs on PostgreSQL
    from eventsourcing.postgres import PostgresAggregateRecorder
    from psycopg.sql import SQL, Identifier
except ImportError:  # pragma: no cover - SQLite-only installs
    PostgresAggregateRecorder = None  # type: ignore[assignment,misc]
from eventsourcing.sqlite import SQLiteAggregateRecorder


def drop_older_snapshots(recorder: Any, latest: Mapping[UUID, int]) -> bool:
    """Delete the snapshots of each person in ``latest`` older than the version given for them.

    ``recorder`` is the application's snapshot recorder (``app.snapshots.recorder``).
    Returns False, deleting nothing, for a store this does not know (the in-memory one).
    """
    if not latest:
        return True
    ids, versions = list(latest), list(latest.values())
    if PostgresAggregateRecorder is not None and isinstance(recorder, PostgresAggregateRecorder):
        datastore = recorder.datastore
        statement = SQL(
            "DELETE FROM {schema}.{table} AS s USING unnest(%s::{id_type}[], %s::bigint[]) AS n(id, version) "
            "WHERE s.originator_id = n.id AND s.originator_version < n.version"
        ).format(schema=Identifier(datastore.schema), table=Identifier(recorder.events_table_name),
                 id_type=Identifier(datastore.originator_id_type))
        if datastore.originator_id_type != "uuid":
            ids = [str(i) for i in ids]
        with datastore.transaction(commit=True) as curs:
            # A new table (never analysed) makes the planner's cost estimate high enough to JIT-compile
            # the plan: ~350 ms for a statement that runs in ~2 ms (as in infra.event_store.batch_load).
            curs.execute(SQL("SET LOCAL jit = off"))
            curs.execute(statement, (ids, versions))
        return True
    if isinstance(recorder, SQLiteAggregateRecorder):
        statement = f"DELETE FROM {recorder.events_table_name} WHERE originator_id = ? AND originator_version < ?"
        with recorder.datastore.transaction(commit=True) as curs:
            curs.executemany(statement, [(i.hex if isinstance(i, UUID) else i, v) for i, v in zip(ids, versions)])
        return True
    return False
