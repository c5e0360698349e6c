"""The ledger-events publisher: the event store's notification log, in order, onto ``ledger.events.v1``.

A long-running process follows the ledger's notification log (read in bulk with
``select_notifications``, woken by LISTEN/NOTIFY on PostgreSQL, polled on SQLite) and
produces each *Person* event, Avro single-object encoded
(:func:`events.ledger_events.encode_event`), keyed by person id so one person's
events stay in one partition and in order. The producer is idempotent
(``enable_idempotence=True``, ``acks="all"``).

The last published notification id is stored in the ledger's tracking table
(``Tracking("publisher:<topic>", notification_id)``) only AFTER Kafka acknowledged
every record up to it. A crash in between re-publishes at most that tail on
restart; consumers recognise the repeats by ``event_id`` (the record header and the
record's first field). Events of other aggregates (the ``SourceRecord`` index,
``FeedRejection``) are not published, but the position moves past them.

Only person events are read (``select_notifications(topics=...)``): every payment also
writes a ``SourceRecord`` row, and reading, converting and skipping it was a tenth of the
publisher's CPU. The position may still move past the rows it did not read, by this rule:
the recorder issues notification ids in commit order (it inserts under an ``EXCLUSIVE``
table lock held until commit, the same guarantee the bulk read relied on before), so
once ``max_notification_id()`` returns M, every id up to M is committed or will never
exist. A read bounded by ``stop=M`` that returns fewer rows than its limit has therefore
seen every person event up to M, and the position becomes M; a full read stops at its
last row.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from threading import Event
from typing import Any

from eventsourcing.persistence import IntegrityError, Notification, Tracking
from eventsourcing.utils import get_topic

from consumers.runner import RecordSink
from events.ledger_events import encode_event
from ledger.application import Ledger
from ledger.domain.person import Person
from ledger.log import get_logger
from ledger.stored_events import row_decoder

#: Stored-event topics of Person events start with this (``ledger.domain.person:Person.ContributionPaid``).
PERSON_EVENT_TOPIC_PREFIX = get_topic(Person) + "."
#: Every stored-event topic of a Person event class (a class renamed one day must keep its old topic here).
PERSON_EVENT_TOPICS = tuple(sorted(
    get_topic(cls) for cls in vars(Person).values()
    if isinstance(cls, type) and issubclass(cls, Person.Event) and cls is not Person.Event
))


def is_person_event(notification: Notification) -> bool:
    return notification.topic.startswith(PERSON_EVENT_TOPIC_PREFIX)


class LedgerPublisher:
    """Publishes the ledger's person events to Kafka, at least once and in per-person order."""

    def __init__(
        self,
        ledger: Ledger,
        sink: RecordSink,
        *,
        topic: str,
        name: str | None = None,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        on_published: Callable[[list[Any], float], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.sink = sink
        self.topic = topic
        self.position_name = name or self.position_name_for(topic)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.on_published = on_published
        #: Seconds from each event's recording to Kafka's acknowledgement (the newest 10,000).
        self.latencies: deque[float] = deque(maxlen=10_000)
        self.log = get_logger("consumers.publisher", topic=topic)
        self._position: int | None = None
        #: ``ledger.mapper.to_domain_event`` on a row's columns, with orjson where that gives the same event.
        self._decode = row_decoder(ledger.mapper)

    # ------------------------------------------------------------ position
    @staticmethod
    def position_name_for(topic: str) -> str:
        """The tracking name under which the publisher to ``topic`` stores its position."""
        return f"publisher:{topic}"

    @property
    def position(self) -> int:
        """The last notification id whose event (if any) Kafka has acknowledged."""
        if self._position is None:
            self._position = self.ledger.recorder.max_tracking_id(self.position_name) or 0
        return self._position

    def _store_position(self, notification_id: int) -> None:
        try:
            self.ledger.recorder.insert_tracking(Tracking(self.position_name, notification_id))
        except IntegrityError:
            # Another publisher got further (two should not run; the repeats are recognisable).
            self._position = None
            self.log.warning("publisher_position_taken", notification_id=notification_id, stored=self.position)
            return
        self._position = notification_id

    # ------------------------------------------------------------ publishing
    def publish(self, notifications: Sequence[Notification], *, upto: int | None = None) -> int:
        """Produce the person events among ``notifications``, wait for the acks, then store the position.

        The position stored is ``upto`` when given (every notification up to it that is not in
        ``notifications`` is known not to be a person event), else the last notification's id.
        """
        fresh = [n for n in notifications if n.id > self.position]
        if upto is None:
            upto = fresh[-1].id if fresh else 0
        if upto <= self.position:
            return 0
        if fresh and fresh[-1].id > upto:
            raise ValueError(f"notification {fresh[-1].id} is beyond the position to store ({upto})")
        events = []
        decode = self._decode
        for notification in fresh:
            if not is_person_event(notification):
                continue
            event = decode(notification.originator_id, notification.originator_version, notification.topic,
                           notification.state)
            self.sink.send(
                self.topic,
                key=str(event.originator_id).encode(),
                value=encode_event(event),
                headers=[("event_type", type(event).__name__.encode()), ("event_id", str(event.event_id).encode())],
            )
            events.append(event)
        self.sink.flush()  # raises if anything was not acknowledged: the position stays where it was
        acked_at = time.time()
        for event in events:
            self.latencies.append(acked_at - _epoch(event.timestamp))
        self._store_position(upto)
        if self.on_published is not None:
            self.on_published(events, acked_at)
        if events:
            self.log.info("events_published", count=len(events), position=upto)
        return len(events)

    def publish_pending(self) -> int:
        """Publish everything recorded so far (``ledger publish --once``); returns the number of events."""
        total = 0
        recorder = self.ledger.recorder
        while True:
            # Read M first: every id up to M is committed (or never will be), see the module docstring.
            latest = recorder.max_notification_id() or 0
            if latest <= self.position:
                return total
            notifications = recorder.select_notifications(
                start=self.position, limit=self.batch_size, stop=latest, topics=PERSON_EVENT_TOPICS,
                inclusive_of_start=False,
            )
            upto = notifications[-1].id if len(notifications) >= self.batch_size else latest
            total += self.publish(notifications, upto=upto)

    def run(self, stop: Event | None = None, *, max_failures: int | None = None) -> None:
        """Follow the notification log until ``stop`` is set; errors are retried from the stored position."""
        stop = stop or Event()
        failures = 0
        while not stop.is_set():
            try:
                self._follow(stop)
                return
            except Exception as e:
                failures += 1
                self._position = None  # re-read: what was not acknowledged is published again
                self.log.error("publisher_failed_will_retry", error=str(e), error_type=type(e).__name__,
                               failures=failures)
                if max_failures is not None and failures >= max_failures:
                    raise
                stop.wait(min(30.0, 0.5 * 2 ** (failures - 1)))

    def _follow(self, stop: Event) -> None:
        """Publish everything recorded, then wait for the next commit (LISTEN/NOTIFY) or ``poll_interval``.

        The log is read in bulk (``batch_size`` notifications per statement, the same
        ``select_notifications`` as ``publish --once``); the notification channel only
        wakes the loop. On a timeout the log is read again anyway, so a wake-up lost
        between a read and the wait costs at most ``poll_interval``. Stores without
        LISTEN/NOTIFY (SQLite) are polled.
        """
        with _commit_waiter(self.ledger.recorder) as wait:
            while not stop.is_set():
                if not self.publish_pending():
                    wait(stop, self.poll_interval)


@contextmanager
def _commit_waiter(recorder: Any) -> Iterator[Callable[[Event, float], None]]:
    """``wait(stop, timeout)``: returns at the next commit into the event store's table (or the timeout)."""
    try:  # the postgres extra is installed wherever the ledger runs on PostgreSQL
        from eventsourcing.postgres import PostgresApplicationRecorder
        from psycopg.sql import SQL, Identifier
    except ImportError:  # pragma: no cover - SQLite-only installs
        PostgresApplicationRecorder = None  # type: ignore[assignment,misc]
    if PostgresApplicationRecorder is None or not isinstance(recorder, PostgresApplicationRecorder):
        yield lambda stop, timeout: stop.wait(timeout)
        return
    # As the library's PostgresSubscription listens: a pooled connection, LISTEN on the recorder's channel.
    with recorder.datastore.get_connection() as conn:
        conn.execute(SQL("LISTEN {0}").format(Identifier(recorder.channel_name)))

        def wait(stop: Event, timeout: float) -> None:
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                pass

        try:
            yield wait
        finally:
            with suppress(Exception):  # a broken connection is not reused anyway; keep the original error
                conn.execute(SQL("UNLISTEN {0}").format(Identifier(recorder.channel_name)))


def _epoch(instant: datetime) -> float:
    return instant.timestamp()
