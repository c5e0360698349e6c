"""The ledger's :class:`~ledger.ports.PersonStore` on the eventsourcing library's stores, in few round trips.

What ``ledger.ports.PlainPersonStore`` does through the library's public API, done here
with the library's internals for speed (every copied internal is pinned by
``tests/unit/test_library_internals_pinned.py``, and
``tests/integration/test_library_reads_ledger_writes.py`` checks the library reads what
this writes):

* :meth:`PersonBatches.load_many`: every person of a batch in one statement on PostgreSQL
  (:mod:`infra.event_store.batch_load`), not two round trips each;
* :meth:`PersonBatches.save_batch`: ``Application.save``'s steps without its per-object
  protocol check, and, in the background, ``EventStore.put``'s insert and commit on one
  writer thread (:class:`BackgroundWriter`) while the feed consumer decodes its next batch;
* :meth:`PersonBatches.take_snapshots`: snapshots of the persons just saved taken from the
  saved persons themselves, put in one statement, instead of replayed from the store one
  by one; :meth:`PersonBatches.drop_older_snapshots` then drops the older ones
  (:mod:`infra.event_store.snapshots`).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Mapping, Sequence
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import EventStore, Notification, Recording, Tracking

from infra.event_store.batch_load import Prefetch, load_aggregates, project, start_loading
from infra.event_store.snapshots import drop_older_snapshots
from ledger.application import Ledger
from ledger.ports import Fold, WriteDone


class BackgroundWriter:
    """One thread that runs a transaction at a time for ``Ledger.begin_tax_records``.

    While it waits for PostgreSQL (psycopg releases the GIL), the feed consumer polls and
    decodes its next batch. One write at a time: whoever handed a write over waits for it
    (``PendingOutcomes.result``) before the next.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer")

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
        """Run ``fn`` on the writer thread; the returned function waits and returns its result (or raises)."""
        return self._pool.submit(fn, *args, **kwargs).result

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def is_postgres(recorder: Any) -> bool:
    try:
        from eventsourcing.postgres import PostgresProcessRecorder
    except ImportError:  # pragma: no cover - SQLite-only installs
        return False
    return isinstance(recorder, PostgresProcessRecorder)


class PersonBatches:
    """:class:`ledger.ports.PersonStore` for a :class:`~ledger.application.Ledger` on the library's stores."""

    def __init__(self, app: Ledger) -> None:
        self.app = app
        self.writer: BackgroundWriter | None = None

    # ------------------------------------------------------------ reads
    def load_many(self, ids: Iterable[UUID], fold: Fold | None = None) -> dict[UUID, Any]:
        """Persons and source records of a batch, one statement on PostgreSQL (see infra.event_store.batch_load)."""
        return load_aggregates(self.app, ids, projector=fold or project)

    def start_loading(self, ids: Iterable[UUID]) -> Prefetch | None:
        """The statement of :meth:`load_many`, queued on the writer thread behind the write in flight (PostgreSQL)."""
        if not is_postgres(self.app.recorder):
            return None
        return start_loading(self.app, ids, self._writer().submit)

    # ------------------------------------------------------------ writes
    def _saves_as_library(self) -> bool:
        """True when the application's ``save`` is the library's (or ``Ledger.save``, which adds only a position)."""
        app = self.app
        return "save" not in app.__dict__ and type(app).save in (Application.save, Ledger.save)

    def save_batch(self, aggregates: Sequence[Any], *, tracking: Tracking | None = None,
                   background: bool = False) -> WriteDone:
        if background:
            return self._save_in_background(aggregates, tracking=tracking)
        self._save(aggregates, tracking=tracking)
        return _done

    def _save(self, aggregates: Sequence[Any], *, tracking: Tracking | None = None) -> None:
        """What ``app.save(*aggregates)`` does, less the library's per-object ``isinstance`` against a
        runtime-checkable Protocol (~25 µs an object on Python 3.11, a fifth of a batch's save).

        The steps are Application.save's own (``Ledger.save`` without ``tracking`` is exactly
        that). If ``save`` is overridden anywhere else (a subclass, the instance), that
        ``save`` is called instead, so nothing it adds is bypassed. Keep this in step with
        ``Ledger.save`` if that ever does more than the library's save.
        """
        app = self.app
        if not self._saves_as_library():
            app.save(*aggregates, **({"tracking": tracking} if tracking is not None else {}))
            return
        processing_event: ProcessingEvent[UUID] = ProcessingEvent(tracking)
        for aggregate in aggregates:
            processing_event.events.extend(aggregate.collect_events())
            processing_event.aggregates[aggregate.id] = aggregate
        recordings = app._record(processing_event)
        app._take_snapshots(processing_event)
        app._notify(recordings)
        app.notify(processing_event.events)

    def _save_in_background(self, aggregates: Sequence[Any], *, tracking: Tracking | None = None) -> WriteDone:
        """:meth:`_save` with the insert and commit on the writer thread; call the result to finish it.

        The events are converted to stored events here (CPU, in the caller's thread); the
        recorder's ``insert_events`` (one transaction: position, lock, events, commit; mostly
        waiting for PostgreSQL) runs on the writer thread. The returned function waits for
        it, raises its error (IntegrityError for a lost race), then does what ``_record``
        does after the insert (the repository cache), takes the snapshots and notifies, as
        :meth:`_save` does. Off PostgreSQL (SQLite connections belong to their thread), or
        with anything but the library's own ``_record``, ``EventStore.put`` or a ``save`` of
        its own: :meth:`_save` in this thread, finished already.
        """
        app = self.app
        if (
            not is_postgres(app.recorder)
            or not self._saves_as_library()
            or "_record" in app.__dict__ or type(app)._record is not Ledger._record
            or type(app.events).put is not EventStore.put
        ):
            self._save(aggregates, tracking=tracking)
            return _done
        processing_event: ProcessingEvent[UUID] = ProcessingEvent(tracking)
        for aggregate in aggregates:
            processing_event.events.extend(aggregate.collect_events())
            processing_event.aggregates[aggregate.id] = aggregate
        domain_events = processing_event.events
        to_stored_event = app.mapper.to_stored_event
        stored_events = [to_stored_event(e) for e in domain_events]
        inserted = self._writer().submit(app.recorder.insert_events, stored_events, tracking=tracking)

        def finish() -> None:
            notification_ids = inserted()
            recordings: list[Recording[UUID]] = []
            if notification_ids:  # as EventStore.put
                assert len(notification_ids) == len(stored_events)
                for d, s, n_id in zip(domain_events, stored_events, notification_ids):
                    recordings.append(Recording(d, Notification(
                        originator_id=s.originator_id, originator_version=s.originator_version, topic=s.topic,
                        state=s.state, id=n_id,
                    )))
            if app.repository.cache and not app.repository.fastforward:  # as Application._record
                for aggregate_id, aggregate in processing_event.aggregates.items():
                    app.repository.cache.put(aggregate_id, aggregate)
            app._take_snapshots(processing_event)
            app._notify(recordings)
            app.notify(processing_event.events)

        return finish

    # ------------------------------------------------------------ snapshots
    def take_snapshots(self, saved: ProcessingEvent[UUID], versions: Mapping[UUID, Sequence[int]]) -> None:
        """Snapshots of the aggregates just saved, at the versions asked.

        Taken from the saved aggregates themselves, at the version just recorded, and put in
        one statement. The library would replay each from the store (``take_snapshot``: two
        round trips and a fold per snapshot) and insert them one by one. A snapshot at any
        other version goes the library's way: an interval falling inside a save of several
        events, or an aggregate that has moved on since its save (a new event triggered
        before this ran: its state is no longer the recorded one).
        """
        app = self.app
        if app.snapshots is None:
            return
        recorded: dict[UUID, int] = {}  # each aggregate's last version recorded by this save
        for event in saved.events:
            recorded[event.originator_id] = event.originator_version
        live: list[Any] = []
        for aggregate_id, wanted in versions.items():
            aggregate = saved.aggregates[aggregate_id]
            for version in sorted(wanted):
                if version == recorded[aggregate_id] == aggregate.version:
                    live.append(aggregate)
                else:
                    app.take_snapshot(aggregate_id, version=version)
        if live:
            app.snapshots.put([getattr(type(a), "Snapshot", app.snapshot_class).take(a) for a in live])

    def drop_older_snapshots(self, latest: Mapping[UUID, int]) -> None:
        """Loads start from the latest snapshot only: the older ones of these persons go (infra.event_store.snapshots)."""
        if latest and self.app.snapshots is not None:
            drop_older_snapshots(self.app.snapshots.recorder, latest)

    # ------------------------------------------------------------
    def _writer(self) -> BackgroundWriter:
        if self.writer is None:
            self.writer = BackgroundWriter()
        return self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _done() -> None:
    return None
