"""Wiring of the views: which store and which event source a system uses, built the same way everywhere.

Every entrypoint (the CLI, the HTTP API, the grid worker's page, a long-running
projection process, tests) asks here rather than constructing stores itself:

* :func:`open_view_store` -- PostgreSQL (psycopg 3, the ``POSTGRES_*`` schema) when
  ``LEDGER_PERSISTENCE=postgres``; otherwise the embedded SQLite file
  ``var/views.sqlite`` (``LEDGER_VIEWS_PATH`` to move it), or an in-memory SQLite
  database for the in-memory ledger;
* :func:`event_source` -- ``"log"``: the ledger's own notification log (embedded
  default); ``"kafka"``: ``ledger.events.v1`` (with the deployment's topic prefix);
* :func:`projection_runner`, :func:`view_queries` -- the runner and the queries over them (a read of
  one person fresh from the ledger's events of that person);
* :func:`parallel_shards` -- a rebuild's bulk load spread over worker processes
  (:func:`default_workers`: how many when not told).
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from infra.settings import Settings, views_path
from ledger.domain.errors import DomainError

from projections.projection_runner import PolicyCache, ProjectionRunner, RunResult, ShardRunner
from projections.queries import ViewQueries
from projections.sources import KafkaEventSource, NotificationLogSource, Source, ledger_person_events
from projections.store import PostgresViewStore, SQLiteViewStore, ViewStore

LEDGER_EVENTS_TOPIC = "ledger.events.v1"
#: Kafka consumer group the projection runner commits its offsets under (monitoring only).
PROJECTION_GROUP = "ledger-projections"
SOURCES = ("log", "kafka")


def open_view_store(settings: Settings, *, create: bool = True) -> ViewStore:
    """The view store for these settings (tables created if missing, unless ``create`` is False); the caller closes it."""
    if settings.persistence == "postgres":
        return PostgresViewStore(settings.postgres, create=create)
    if settings.persistence == "memory":
        return SQLiteViewStore(":memory:")
    return SQLiteViewStore(settings.views_file())


def event_source(system: Any, kind: str = "log", *, group_id: str = PROJECTION_GROUP) -> Source:
    """Where the runner reads person events: ``"log"`` or ``"kafka"``."""
    if kind == "log":
        return NotificationLogSource(system.ledger)
    if kind == "kafka":
        servers = system.settings.kafka_bootstrap_servers
        if not servers:
            raise DomainError("KAFKA_NOT_CONFIGURED", "KAFKA_BOOTSTRAP_SERVERS is not set: there is no Kafka to read "
                                                      'from (eval "$(python -m infra env)" for the local stack)')
        return KafkaEventSource(servers, system.topic(LEDGER_EVENTS_TOPIC), group_id=group_id)
    raise DomainError("SOURCE_UNKNOWN", f"unknown event source {kind!r}; use one of {', '.join(SOURCES)}")


def views(system: Any) -> ViewStore:
    """The system's view store, opened on first use and closed with the system."""
    store = getattr(system, "_view_store", None)
    if store is None:
        store = open_view_store(system.settings)
        system._view_store = store  # one per system: entrypoints.wiring.System has no field for it (yet)
        system.closers.append(store.close)
    return store


def projection_runner(system: Any, *, source: str | Source = "log", store: ViewStore | None = None,
                      batch_size: int = 2000) -> ProjectionRunner:
    """A runner keeping the system's views up to date from ``source``."""
    src = event_source(system, source) if isinstance(source, str) else source
    if isinstance(source, str):
        system.closers.append(src.close)
    # A quarantined person is derived again from the ledger's own copy of their events, whatever the source.
    return ProjectionRunner(store if store is not None else views(system), src, PolicyCache(system.policies),
                            batch_size=batch_size, person_events=ledger_person_events(system.ledger))


def view_queries(system: Any, store: ViewStore | None = None) -> ViewQueries:
    """The queries over the system's views; a read of one person is brought up to date from the ledger's
    own events of that person (read your writes, see :mod:`projections.queries`)."""
    return ViewQueries(store if store is not None else views(system), system.policies,
                       person_events=ledger_person_events(system.ledger))


def default_workers(settings: Settings) -> int:
    """Worker processes a rebuild uses when not told: one per core up to 4 with a PostgreSQL store, else 1.

    A rebuild is CPU-bound in Python (the pure fold and derivation), so a second
    process on a second core nearly doubles its rate; PostgreSQL's share of the work is
    a fifth to a quarter of Python's. A SQLite file takes one writer at a time, and an
    in-memory ledger cannot be shared with worker processes.
    """
    if settings.persistence != "postgres":
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def parallel_shards(settings: Settings, source: str, workers: int, *, bootstrap: Callable[[Settings], Any]) -> ShardRunner:
    """Run the passes of a rebuild's bulk load in ``workers`` processes (a file or server store only).

    Each worker builds its own system with ``bootstrap`` (the one wiring function,
    :func:`entrypoints.wiring.bootstrap`, passed in: the views sit below the entrypoints; a
    module-level function, so a spawned worker can unpickle it), its source and ``_rebuild``
    store from the settings (the parent created those tables) and writes the rows of the shards it is given.
    """
    if settings.persistence == "memory":
        raise DomainError("WORKERS_NEED_A_SHARED_STORE", "an in-memory ledger cannot be rebuilt by worker processes")

    def run(until: dict[int, int], shards: int, chunk: int) -> RunResult:
        shards = max(shards, workers)
        context = multiprocessing.get_context("spawn")
        result = RunResult(source)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for done in pool.map(_rebuild_shard, [(bootstrap, settings, source, k, shards, until, chunk)
                                                       for k in range(shards)]):
                result.add(done)
        return result

    return run


def _rebuild_shard(task: tuple[Callable[[Settings], Any], Settings, str, int, int, dict[int, int], int]) -> RunResult:
    bootstrap, settings, source, k, shards, until, chunk = task
    # The parent created every table; workers starting together must not race on CREATE TABLE
    # ("tuple concurrently updated"). This runs in a spawned worker process of its own.
    os.environ["CREATE_TABLE"] = "no"
    system = bootstrap(settings)
    try:
        # Nor on the layout row, which creating an empty store writes (a UniqueViolation on view_meta).
        store = open_view_store(settings, create=False)
        system.closers.append(store.close)
        runner = projection_runner(system, source=source, store=store.rebuilding(fresh=False))
        return runner.bulk_shard(k, shards, until, chunk=chunk)
    finally:
        system.close()


__all__ = ["LEDGER_EVENTS_TOPIC", "PROJECTION_GROUP", "SOURCES", "default_workers", "event_source", "open_view_store",
           "parallel_shards", "projection_runner", "view_queries", "views", "views_path"]
