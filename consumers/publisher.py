"""The ledger-events publisher: the event store's notification log, in order, onto ``ledger.events.v1``, exactly once.

A long-running process follows the ledger's notification log (read in bulk with
``select_notifications``, woken by LISTEN/NOTIFY on PostgreSQL, polled on SQLite) and
produces each *Person* event, Avro single-object encoded
(:func:`events.ledger_events.encode_event`), keyed by person id so one person's
events stay in one partition and in order.

**Exactly once (KIP-618's way).** Each batch of notifications is one Kafka transaction:
the batch's events AND the publisher's position record go in it, then it is committed.
The position record goes to the compacted topic ``ledger.publisher.positions`` (key: the
position name ``publisher:<topic>``; value: JSON ``{"position": <notification id>, "held":
[...]}``), so a ``read_committed`` reader sees the events of a batch and the position
past them together, or neither. The producer's ``transactional.id`` is stable per
published topic (:func:`consumers.kafka_io.publisher_transactional_id`,
``medins-ledger-publisher:<prefix>ledger.events.v1``). On start the publisher calls
``init_transactions`` (fencing any older publisher with the same id, aborting the
transaction it left open) and only then reads its position from the positions topic
(read_committed, to the end). A crash at any point therefore leaves either the whole
batch with its position committed, or neither: nothing is published twice, nothing lost.

The ledger's tracking table (``Tracking("publisher:<topic>", notification_id)``) gets a
copy of the position after each commit, for ``ledger status`` and the benchmarks. It is
never read to decide what to publish, except that it may move the start forward (an
upgrade from the at-least-once publisher, an operator or benchmark starting "at the
end"): a copy is written only after its commit, so it is never ahead in normal running.

On the embedded transport (:class:`consumers.inprocess.InProcessBroker`) the same code
runs: the batch's records and its position record are appended in one step under the
broker's lock (:meth:`~consumers.inprocess.InProcessBroker.transaction`).

**One bad event holds only its person.** An event the publisher cannot publish (it does
not decode, the Avro encoder refuses a value, the client or the broker refuses the
record) is *held*: logged loudly (``publisher_event_held``), kept in the position
record's ``held`` list (notification id, person, code, reason), and every later event of
that person is held behind it, in order; the rest of the batch is published. Every run
retries the held events first, in order (a fix deployed, e.g. a new encoder), and
releases a person whose held events all go through. ``ledger status`` lists the held
persons (masked) with the reason.

Only person events are read (``select_notifications(topics=...)``): every payment also
writes a ``SourceRecord`` row, and reading, converting and skipping it was a tenth of the
publisher's CPU. The position may still move past the rows it did not read, by this rule:
the recorder issues notification ids in commit order (it inserts under an ``EXCLUSIVE``
table lock held until commit, the same guarantee the bulk read relied on before), so
once ``max_notification_id()`` returns M, every id up to M is committed or will never
exist. A read bounded by ``stop=M`` that returns fewer rows than its limit has therefore
seen every person event up to M, and the position becomes M; a full read stops at its
last row.

Fault-injection hook (tests only): with ``LEDGER_FAULT_PUBLISHER_PAUSE`` set to
``before_kafka_commit`` or ``after_kafka_commit`` the publisher prints
``FAULT-PAUSE <point>`` and sleeps (``LEDGER_FAULT_PUBLISHER_PAUSE_S``, default 120 s) at
that point of its first batch with events, so the fault suite can SIGKILL it there. Unset
(production) it does nothing: the variable is read once, at construction.
"""
from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from dataclasses import dataclass, replace
from datetime import datetime
from threading import Event
from typing import Any

from eventsourcing.persistence import IntegrityError, Notification, Tracking
from eventsourcing.utils import get_topic

from consumers.feed_consumer import RecordRefused
from events.ledger_events import encode_event
from events.pii import KeyRing, deployment_keys
from infra.settings import setting
from ledger.application import Ledger
from ledger.domain.errors import DomainError
from ledger.domain.person import Person
from ledger.log import get_logger, mask_text
from infra.event_store.stored_events import row_decoder

#: Stored-event topics of Person events start with this (``ledger.domain.person:Person.ContributionPaid``).
PERSON_EVENT_TOPIC_PREFIX = get_topic(Person) + "."
#: Every stored-event topic of a Person event class (a class renamed one day must keep its old topic here).
PERSON_EVENT_TOPICS = tuple(sorted(
    get_topic(cls) for cls in vars(Person).values()
    if isinstance(cls, type) and issubclass(cls, Person.Event) and cls is not Person.Event
))
EVENTS_TOPIC = "ledger.events.v1"
#: The compacted topic holding each publisher's committed position (declared in infra/topics.toml).
POSITIONS_TOPIC = "ledger.publisher.positions"
#: Code of an event held because an earlier event of the same person is held.
HELD_BEHIND = "PUBLISH_HELD_BEHIND"
#: Code of an event that failed with an error that carries no code of its own.
NOT_PUBLISHABLE = "EVENT_NOT_PUBLISHABLE"
FAULT_PAUSE_ENV = "LEDGER_FAULT_PUBLISHER_PAUSE"
FAULT_PAUSE_POINTS = ("before_kafka_commit", "after_kafka_commit")


def is_person_event(notification: Notification) -> bool:
    return notification.topic.startswith(PERSON_EVENT_TOPIC_PREFIX)


def positions_topic_for(topic: str) -> str:
    """The positions topic beside ``topic`` (same deployment prefix): ``<prefix>ledger.publisher.positions``."""
    if topic.endswith(EVENTS_TOPIC):
        return topic[: -len(EVENTS_TOPIC)] + POSITIONS_TOPIC
    return topic + ".positions"


def mask_person(person: str) -> str:
    """A person id as ``ledger status`` shows it: enough to find it, not the whole key."""
    return person[:8] + "…" if len(person) > 8 else person


@dataclass(frozen=True)
class HeldEvent:
    """An event the publisher holds (暂缓发布): its own failure, or an earlier held event of the same person."""

    notification_id: int
    person: str
    code: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"notification_id": self.notification_id, "person": self.person, "code": self.code,
                "reason": self.reason}


@dataclass(frozen=True)
class PublisherState:
    """What the positions topic holds for a publisher: every notification up to ``position`` is published
    or in ``held`` (in notification order)."""

    position: int
    held: tuple[HeldEvent, ...] = ()

    def to_bytes(self) -> bytes:
        return json.dumps({"position": self.position, "held": [h.as_dict() for h in self.held]},
                          ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> PublisherState:
        d = json.loads(data)
        return cls(int(d["position"]), tuple(HeldEvent(int(h["notification_id"]), str(h["person"]), str(h["code"]),
                                                        str(h["reason"])) for h in d.get("held", ())))

    def held_persons(self) -> dict[str, list[HeldEvent]]:
        """Held events per person, the one that failed first."""
        out: dict[str, list[HeldEvent]] = {}
        for h in self.held:
            out.setdefault(h.person, []).append(h)
        return out


class LedgerPublisher:
    """Publishes the ledger's person events to Kafka exactly once, in per-person order; a bad event holds only
    its person."""

    def __init__(
        self,
        ledger: Ledger,
        sink: Any,
        *,
        topic: str,
        name: str | None = None,
        positions_topic: str | None = None,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        on_published: Callable[[list[Any], float], None] | None = None,
        keys: KeyRing | None = None,
    ) -> None:
        if not (hasattr(sink, "transaction") and hasattr(sink, "last_value")):
            raise TypeError(f"the publisher needs a transactional sink (transaction(), last_value()), "
                            f"not {type(sink).__name__}")
        self.ledger = ledger
        self.sink = sink
        self.topic = topic
        self.position_name = name or self.position_name_for(topic)
        self.position_key = self.position_name.encode()
        self.positions_topic = positions_topic or positions_topic_for(topic)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.on_published = on_published
        #: The ring that encrypts the personal fields on the topic: the system's (``entrypoints.wiring``);
        #: a publisher built by hand takes the environment's deployment ring.
        self.keys = keys or deployment_keys()
        #: The encoder of one event (a test may put a failing one here).
        self.encode: Callable[[Any], bytes] = partial(encode_event, keys=self.keys)
        #: Seconds from each event's recording to Kafka's acknowledgement (the newest 10,000).
        self.latencies: deque[float] = deque(maxlen=10_000)
        self.log = get_logger("consumers.publisher", topic=topic)
        self._state: PublisherState | None = None
        self._held_untried = True  # held events are retried at the first batch of a run, and with every batch
        #: ``ledger.mapper.to_domain_event`` on a row's columns, with orjson where that gives the same event.
        self._decode = row_decoder(ledger.mapper)
        self._pause_at = setting(FAULT_PAUSE_ENV)  # one of FAULT_PAUSE_POINTS, or None
        self._fenced: BaseException | None = None

    # ------------------------------------------------------------ position
    @staticmethod
    def position_name_for(topic: str) -> str:
        """The name under which the publisher to ``topic`` keeps its position (positions topic key, tracking copy)."""
        return f"publisher:{topic}"

    @property
    def state(self) -> PublisherState:
        """The committed position and held events, read from the positions topic (after fencing) on first use."""
        if self._state is None:
            raw = self.sink.last_value(self.positions_topic, self.position_key)
            state = PublisherState.from_bytes(raw) if raw else PublisherState(0)
            copy = self.ledger.recorder.max_tracking_id(self.position_name) or 0
            if copy > state.position:  # never in normal running: the copy is written after its commit
                self.log.info("publisher_start_moved_forward_by_tracking_copy", committed=state.position, copy=copy)
                state = replace(state, position=copy)
            elif copy < state.position:  # killed between a commit and its copy: catch the copy up
                self._store_position(state.position)
            self._state = state
        return self._state

    @property
    def position(self) -> int:
        """The last notification id committed with its events (held ones aside)."""
        return self.state.position

    @property
    def held(self) -> tuple[HeldEvent, ...]:
        return self.state.held

    def _store_position(self, notification_id: int) -> None:
        """The tracking-table copy of the committed position (for ``ledger status``; Kafka holds the truth)."""
        try:
            self.ledger.recorder.insert_tracking(Tracking(self.position_name, notification_id))
        except IntegrityError:
            pass  # the copy is there already (written before a crash, or by the start-up catch-up)

    def _fault_pause(self, point: str) -> None:
        """The fault suite's kill point; inert unless LEDGER_FAULT_PUBLISHER_PAUSE names ``point``."""
        if self._pause_at != point:
            return
        self._pause_at = None
        self.log.warning("publisher_fault_pause", point=point, pid=os.getpid())
        print(f"FAULT-PAUSE {point}", flush=True)
        time.sleep(setting("LEDGER_FAULT_PUBLISHER_PAUSE_S"))

    # ------------------------------------------------------------ publishing
    def publish(self, notifications: Sequence[Notification], *, upto: int | None = None) -> int:
        """One transaction: the held events retried, the person events among ``notifications``, the position.

        The position committed is ``upto`` when given (every notification up to it that is not in
        ``notifications`` is known not to be a person event), else the last notification's id.
        Returns the number of events published.
        """
        if self._fenced is not None:  # a zombie stays one: a new producer would fence the publisher that took over
            raise self._fenced
        state = self.state
        fresh = [n for n in notifications if n.id > state.position]
        if upto is None:
            upto = fresh[-1].id if fresh else 0
        if fresh and fresh[-1].id > upto:
            raise ValueError(f"notification {fresh[-1].id} is beyond the position to store ({upto})")
        retry = bool(state.held) and (self._held_untried or upto > state.position)
        if upto <= state.position and not retry:
            return 0
        upto = max(upto, state.position)
        refused: dict[int, BaseException] = {}  # notification id -> the broker's refusal of its record
        while True:
            transaction = self.sink.transaction()
            try:
                sent, held = self._fill(transaction, state, fresh, refused)
                new_state = PublisherState(upto, tuple(held))
                transaction.send(self.positions_topic, key=self.position_key, value=new_state.to_bytes())
                failed = transaction.flush()
                if failed:
                    for index, error in failed:
                        if index >= len(sent):
                            raise error  # the position record itself: nothing to hold, the batch is retried
                        refused[sent[index][0]] = error
                    transaction.abort()
                    continue  # again, with those events held
                if sent:
                    self._fault_pause("before_kafka_commit")
                transaction.commit()
            except Exception as e:  # (a SystemExit / KeyboardInterrupt is not aborted: the next start's fencing does)
                self._state = None  # whatever happened, the committed state is read again (after fencing)
                if _is_fenced(e):
                    self._fenced = e
                    self.log.error("publisher_fenced", error=str(e))
                    raise
                with suppress(Exception):
                    transaction.abort()
                raise
            break
        acked_at = time.time()
        if sent:
            self._fault_pause("after_kafka_commit")
        self._held_untried = False
        self._state = new_state
        self._store_position(upto)
        self._report_held(state, new_state)
        events = [event for _, event in sent]
        for event in events:
            self.latencies.append(acked_at - _epoch(event.timestamp))
        if self.on_published is not None:
            self.on_published(events, acked_at)
        if events:
            self.log.info("events_published", count=len(events), position=upto, held=len(new_state.held))
        return len(events)

    def _fill(self, transaction: Any, state: PublisherState, fresh: Sequence[Notification],
              refused: dict[int, BaseException]) -> tuple[list[tuple[int, Any]], list[HeldEvent]]:
        """Send the held events (in order) then the fresh ones into ``transaction``; what was sent, what is held."""
        sent: list[tuple[int, Any]] = []
        held: list[HeldEvent] = []
        blocked: dict[str, int] = {}  # person -> the notification id their events wait behind

        def attempt(notification: Notification) -> BaseException | None:
            try:
                if notification.id in refused:
                    raise refused[notification.id]
                event = self._decode(notification.originator_id, notification.originator_version,
                                     notification.topic, notification.state)
                value = self.encode(event)
            except Exception as e:  # noqa: BLE001 - whatever it is, it is this event's: it holds this person only
                return e
            try:
                transaction.send(
                    self.topic,
                    key=str(event.originator_id).encode(),
                    value=value,
                    headers=[("event_type", type(event).__name__.encode()),
                             ("event_id", str(event.event_id).encode())],
                )
            except RecordRefused as e:  # this record only (too large...); the transport's errors fail the batch
                return e.error
            sent.append((notification.id, event))
            return None

        def hold(notification_id: int, person: str, error: BaseException) -> None:
            if isinstance(error, DomainError):
                code, reason = error.code, error.message
            else:
                code, reason = NOT_PUBLISHABLE, f"{type(error).__name__}: {error}"
            reason = mask_text(reason)[:500]
            held.append(HeldEvent(notification_id, person, code, reason))
            blocked[person] = notification_id

        def behind(notification_id: int, person: str) -> None:
            first = blocked[person]
            held.append(HeldEvent(notification_id, person, HELD_BEHIND,
                                  f"同一参保人的通知 {first} 未能发布，本事件按顺序排在其后暂缓发布"
                                  f"(waits behind notification {first} of the same person)"))

        if state.held:
            rows = self._notifications(h.notification_id for h in state.held)
            for h in state.held:
                if h.person in blocked:
                    behind(h.notification_id, h.person)
                    continue
                row = rows.get(h.notification_id)
                error = attempt(row) if row is not None else LookupError(
                    f"notification {h.notification_id} is not in the event store")
                if error is not None:
                    hold(h.notification_id, h.person, error)
        for notification in fresh:
            if not is_person_event(notification):
                continue
            person = str(notification.originator_id)
            if person in blocked:
                behind(notification.id, person)
                continue
            error = attempt(notification)
            if error is not None:
                hold(notification.id, person, error)
        return sent, held

    def _notifications(self, ids: Any) -> dict[int, Notification]:
        out: dict[int, Notification] = {}
        for notification_id in ids:
            rows = self.ledger.recorder.select_notifications(start=notification_id, limit=1, stop=notification_id)
            if rows and rows[0].id == notification_id:
                out[notification_id] = rows[0]
        return out

    def _report_held(self, before: PublisherState, after: PublisherState) -> None:
        was = before.held_persons()
        now = after.held_persons()
        for person, events in now.items():
            first = events[0]
            if person not in was:
                self.log.error("publisher_event_held", person=mask_person(person), notification_id=first.notification_id,
                               code=first.code, reason=first.reason, held_events=len(events))
            elif first.notification_id == was[person][0].notification_id and first.code != HELD_BEHIND:
                self.log.warning("publisher_person_still_held", person=mask_person(person),
                                 notification_id=first.notification_id, code=first.code, held_events=len(events))
        for person, events in was.items():
            if person not in now:
                self.log.info("publisher_person_released", person=mask_person(person), events=len(events))

    def publish_pending(self) -> int:
        """Publish everything recorded so far (``ledger publish --once``); returns the number of events."""
        total = 0
        recorder = self.ledger.recorder
        while True:
            # Read M first: every id up to M is committed (or never will be), see the module docstring.
            latest = recorder.max_notification_id() or 0
            if latest <= self.position:
                if self._held_untried and self.state.held:
                    total += self.publish([], upto=self.position)  # a run starts with the held events
                return total
            notifications = recorder.select_notifications(
                start=self.position, limit=self.batch_size, stop=latest, topics=PERSON_EVENT_TOPICS,
                inclusive_of_start=False,
            )
            upto = notifications[-1].id if len(notifications) >= self.batch_size else latest
            total += self.publish(notifications, upto=upto)

    def run(self, stop: Event | None = None, *, max_failures: int | None = None) -> None:
        """Follow the notification log until ``stop`` is set; errors are retried from the committed position."""
        stop = stop or Event()
        failures = 0
        while not stop.is_set():
            try:
                self._follow(stop)
                return
            except Exception as e:
                if _is_fenced(e):  # another publisher took over: this one is a zombie and stops
                    raise
                failures += 1
                self._state = None  # re-read from the positions topic: an aborted batch is published again
                reset = getattr(self.sink, "reset", None)
                if reset is not None:
                    with suppress(Exception):
                        reset()  # a fresh producer: init_transactions aborts whatever the failed one left open
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


def _is_fenced(error: BaseException) -> bool:
    """Kafka's ProducerFencedError (by name: the in-process transport has no Kafka client to import)."""
    return type(error).__name__ in {"ProducerFencedError", "InvalidProducerEpochError"}


def _epoch(instant: datetime) -> float:
    return instant.timestamp()
