"""The house's adapter of the eventsourcing event store (PostgreSQL, SQLite): what the library's
stores do for the ledger beyond the library's own API, kept out of the core.

* :mod:`~infra.event_store.recorders`: the PostgreSQL process recorder inserting events as
  binary arrays, tables created one process at a time, and the library ``Factory`` that
  gives an application those recorders (named by ``PERSISTENCE_MODULE``, see :func:`application_env`);
* :mod:`~infra.event_store.batches`: :class:`PersonBatches`, the ledger's port
  :class:`ledger.ports.PersonStore` (many persons loaded in one statement, a batch written on
  a background thread, snapshots taken from the saved persons and the older ones dropped);
* :mod:`~infra.event_store.batch_load`, :mod:`~infra.event_store.stored_events`,
  :mod:`~infra.event_store.snapshots`: the reads, the orjson decoding and the snapshot pruning they use.

``entrypoints.wiring`` (the one wiring function) plugs them into the ledger.
"""
from __future__ import annotations

from typing import Mapping

from infra.event_store.batches import PersonBatches

#: ``PERSISTENCE_MODULE`` of the library's PostgreSQL factory, and of the ledger's own (its recorders).
LIBRARY_POSTGRES = "eventsourcing.postgres"
HOUSE_POSTGRES_FACTORY = "infra.event_store.recorders:Factory"

__all__ = ["HOUSE_POSTGRES_FACTORY", "PersonBatches", "application_env"]


def application_env(env: Mapping[str, str]) -> dict[str, str]:
    """The ledger application's library environment: ``env`` (the settings' event store), with the
    ledger's PostgreSQL factory in place of the library's (the binary recorder, tables created in turn).

    SQLite and the in-memory store keep the library's factories: their recorders are the library's.
    """
    out = dict(env)
    if out.get("PERSISTENCE_MODULE") == LIBRARY_POSTGRES:
        out["PERSISTENCE_MODULE"] = HOUSE_POSTGRES_FACTORY
    return out
