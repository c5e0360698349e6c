"""What the ledger asks of the store of persons' histories beyond load-one-save-one: the port of its batch path.

The ledger's commands load one person, change them and save (the eventsourcing library's
``Repository.get`` and ``Application.save``). The high-volume path (a tax bureau's feed of
payments, 税务缴费明细, hundreds of persons per transaction) and the snapshots kept for
loading need more of the store: many persons read at once, a batch written while the
feed's next records are decoded, a person's snapshot kept only in its latest version.
:class:`PersonStore` says that in the ledger's terms; :class:`Ledger` depends on it only.

The adapter that does it fast on PostgreSQL (and SQLite) lives outside the core,
``infra.event_store.PersonBatches``, and the one wiring function (``entrypoints.wiring``)
plugs it in. :class:`PlainPersonStore` does the same through the library's public
application API only: the reference the adapter must agree with, and what a ledger built
without the wiring (a test, the in-memory store) uses.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import Tracking

#: Folds one person's (or index's) events, its latest snapshot first if any, into the aggregate.
Fold = Callable[[Sequence[Any]], Any]
#: Waits for a handed-over write, raises its error (``IntegrityError``: a lost race), then finishes it.
WriteDone = Callable[[], None]


class EarlyLoad(Protocol):
    """A load of many persons started before it is needed (behind a write still in flight)."""

    def result(self, ids: Iterable[UUID], fold: Fold) -> dict[UUID, Any] | None:
        """The aggregates of ``ids`` that exist, or None when the early read does not cover them
        (or failed): then load them now."""
        ...


class PersonStore(Protocol):
    """The store of persons' histories (参保人档案), read and written many persons at a time."""

    def load_many(self, ids: Iterable[UUID], fold: Fold | None = None) -> dict[UUID, Any]:
        """The current state of every aggregate in ``ids`` that exists (missing ones left out), each
        folded by ``fold`` (``event.mutate`` in order, as ``Repository.get``, by default)."""
        ...

    def start_loading(self, ids: Iterable[UUID]) -> EarlyLoad | None:
        """Start reading ``ids`` now, behind any batch write in flight (so it sees what that write
        committed); None when this store cannot (then :meth:`load_many` when they are needed)."""
        ...

    def save_batch(self, aggregates: Sequence[Any], *, tracking: Tracking | None = None,
                   background: bool = False) -> WriteDone:
        """Save many aggregates (and a feed position) in one transaction, as ``Application.save`` does.

        With ``background`` the insert and commit may run on a writer thread: call the result
        before the store is read or written again. Without it, the write is done on return.
        """
        ...

    def take_snapshots(self, saved: ProcessingEvent[UUID], versions: Mapping[UUID, Sequence[int]]) -> None:
        """Snapshot each aggregate of ``saved`` (a save just recorded) at the ``versions`` given for it."""
        ...

    def drop_older_snapshots(self, latest: Mapping[UUID, int]) -> None:
        """Forget each person's snapshots older than the version given (a newer one is stored)."""
        ...

    def close(self) -> None:
        """Finish what is in flight and release what the store holds for batches."""
        ...


class PlainPersonStore:
    """:class:`PersonStore` through the library's public application API: one person at a time.

    ``repository.get`` per id, ``save`` in this thread, ``take_snapshot`` per version, every
    snapshot kept. The adapter ``infra.event_store.PersonBatches`` does the same in fewer
    round trips.
    """

    def __init__(self, app: Application[UUID]) -> None:
        self.app = app

    def load_many(self, ids: Iterable[UUID], fold: Fold | None = None) -> dict[UUID, Any]:
        out: dict[UUID, Any] = {}
        for aggregate_id in dict.fromkeys(ids):
            try:
                out[aggregate_id] = self.app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                continue
        return out

    def start_loading(self, ids: Iterable[UUID]) -> EarlyLoad | None:
        return None

    def save_batch(self, aggregates: Sequence[Any], *, tracking: Tracking | None = None,
                   background: bool = False) -> WriteDone:
        self.app.save(*aggregates, **({"tracking": tracking} if tracking is not None else {}))
        return _done

    def take_snapshots(self, saved: ProcessingEvent[UUID], versions: Mapping[UUID, Sequence[int]]) -> None:
        for aggregate_id, wanted in versions.items():
            for version in sorted(wanted):
                self.app.take_snapshot(aggregate_id, version=version)

    def drop_older_snapshots(self, latest: Mapping[UUID, int]) -> None:
        return None

    def close(self) -> None:
        return None


def _done() -> None:
    return None
