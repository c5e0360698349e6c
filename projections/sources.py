"""Where a projection runner reads the ledger's person events: the local notification log, or Kafka.

Both adapters give the same thing: batches of person events (library domain events
from the log, consumer envelopes from Kafka -- the pure projections accept both)
with, per partition, the position the batch started after and the one it ends at.

* :class:`NotificationLogSource` -- the ledger's own notification log (embedded
  default): one partition (0), position = notification id (0: nothing read yet).
  Only ``Person`` events are decoded; the ``SourceRecord`` index and other
  aggregates are skipped, but the position moves past them.
* :class:`KafkaEventSource` -- topic ``ledger.events.v1`` (Avro single-object,
  keyed by person id): position per partition = the last applied offset (-1:
  nothing yet). The runner's store holds the positions; every read seeks each
  partition to stored position + 1, so what Kafka's consumer group has committed
  (:meth:`KafkaEventSource.commit`, after the store's transaction) is only there
  for lag monitoring. One runner owns a store: partitions are assigned, not
  balanced by the group.

``read(after, until, shard=...)`` reads the positions in ``(after, until]`` and,
with a shard ``(k, n)``, only the persons whose id falls in the ``k``-th of ``n``
equal ranges of ids (decided on the key, before decoding) -- how a rebuild splits a
long history. On PostgreSQL the log source also reads a rebuild's pass person by
person (:meth:`NotificationLogSource.person_histories`): a range of the events
table's primary key, so a pass reads only its own persons' rows, each once.
"""
from __future__ import annotations

import queue
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger.domain.errors import DomainError
from ledger.domain.person import Person
from ledger.log import get_logger
from events.ledger_events import decode_event
from eventsourcing.persistence import StoredEvent
from infra.event_store.stored_events import stored_event_decoder
from psycopg.rows import tuple_row
from psycopg.sql import Identifier, SQL

log = get_logger("projections.sources")

#: Stored-event topics of Person events start with this (``ledger.domain.person:Person.ContributionPaid``).
PERSON_TOPIC_PREFIX = get_topic(Person) + "."

Shard = tuple[int, int]


class SourceError(DomainError):
    """The event stream cannot be read as it should (a record that does not decode, a broker that stays away)."""


@dataclass
class Batch:
    """Person events read from a source, and how far they go per partition."""

    events: list[Any]
    #: partition -> (position the batch started after, position it ends at)
    positions: dict[int, tuple[int | None, int]]
    #: positions consumed (records or notifications, person events or not): the progress made
    consumed: int = 0
    #: person events left out (other aggregates, other shards)
    skipped: int = 0


class Source(Protocol):
    name: str
    #: The position meaning "nothing read yet".
    initial: int

    def end(self) -> dict[int, int]: ...

    def read(self, after: Mapping[int, int | None], until: Mapping[int, int], *, max_records: int,
             shard: Shard | None = None) -> Iterator[Batch]: ...

    def commit(self, positions: Mapping[int, int]) -> None: ...

    def close(self) -> None: ...


def shard_of(person_id: str, shards: int) -> int:
    """Which of ``shards`` shards a person falls in: the range of ids holding the first 32 bits of the id.

    Person ids are UUIDs from a keyed hash, so those bits are uniform and the ``n``
    ranges hold as many persons each. A range of ids is a range of the events table's
    primary key (``originator_id``, ``originator_version``) in PostgreSQL
    (:func:`shard_bounds`), which a pass reads without looking at the other shards'
    rows. A key that is not a UUID goes by its CRC-32.
    """
    try:
        top = int(person_id[:8], 16)
    except ValueError:
        top = zlib.crc32(person_id.encode())
    return top * shards >> 32


def shard_bounds(shard: Shard) -> tuple[UUID, UUID | None]:
    """The UUIDs shard ``(k, n)`` starts at (included) and ends before (None: the last shard), as :func:`shard_of` splits.

    ``top * n >> 32 == k`` exactly for the first 32 bits ``top`` from ``ceil(k * 2**32 / n)``
    up to (not including) ``ceil((k + 1) * 2**32 / n)``; PostgreSQL orders ``uuid`` as
    these 128-bit numbers.
    """
    k, n = shard

    def start(i: int) -> int:
        return -(-(i << 32) // n) << 96

    return UUID(int=start(k)), (UUID(int=start(k + 1)) if k + 1 < n else None)


def in_shard(person_id: str, shard: Shard | None) -> bool:
    return shard is None or shard_of(person_id, shard[1]) == shard[0]


# --------------------------------------------------------------------------- the notification log
class NotificationLogSource:
    """The ledger's notification log, read in pages (``recorder.select_notifications``)."""

    initial = 0

    def __init__(self, ledger: Any, *, page_size: int = 2000) -> None:
        self.ledger = ledger
        self.page_size = page_size
        self.name = "log"

    def end(self) -> dict[int, int]:
        return {0: self.ledger.recorder.max_notification_id() or 0}

    def read(self, after: Mapping[int, int | None], until: Mapping[int, int], *, max_records: int,
             shard: Shard | None = None) -> Iterator[Batch]:
        expected = after.get(0)  # what the store holds: each batch's position moves from there
        position = expected or 0
        stop = until.get(0, 0)
        to_domain_event = event_decoder(self.ledger.mapper)
        in_sql = _postgres_table(self.ledger.recorder) is not None  # PostgreSQL picks the shard's rows itself
        size = min(self.page_size, max_records)
        pages = (_read_ahead(_postgres_pages(self.ledger.recorder, position, stop, size, shard)) if in_sql
                 else _generic_pages(self.ledger.recorder, position, stop, size, shard))
        check = shard is not None and shard[1] > 1 and not in_sql
        batch = Batch([], {})
        for rows, skipped, reached in pages:
            if not check:
                batch.events += map(to_domain_event, rows)
            else:
                for stored in rows:
                    if in_shard(str(stored.originator_id), shard):
                        batch.events.append(to_domain_event(stored))
                    else:
                        batch.skipped += 1
            batch.skipped += skipped
            batch.consumed += reached - position
            position = reached
            if batch.consumed >= max_records or position >= stop:
                batch.positions = {0: (expected, position)}
                yield batch
                batch, expected = Batch([], {}), position
        if batch.consumed:
            batch.positions = {0: (expected, position)}
            yield batch

    def reads_by_person(self) -> bool:
        """Whether :meth:`person_histories` can read this log (PostgreSQL's recorder)."""
        return _postgres_table(self.ledger.recorder) is not None

    def person_histories(self, until: Mapping[int, int], shard: Shard | None = None,
                         page_size: int = 5000) -> Iterator[tuple[str, list[Any]]] | None:
        """Each person's events up to ``until``, person after person (in id order); None if this log cannot.

        For a rebuild's pass on PostgreSQL (:func:`_postgres_histories`): a range of the
        primary key, so the pass reads its own persons' rows only, and a person's events
        come together, in version order -- the pass can fold each person as soon as the
        next one starts instead of holding its whole shard in memory. Other recorders
        (SQLite, in memory) have no such read: None, and the caller reads by position.
        """
        if _postgres_table(self.ledger.recorder) is None:
            return None
        to_domain_event = event_decoder(self.ledger.mapper)
        pages = _read_ahead(_postgres_histories(self.ledger.recorder, until.get(0, 0), page_size, shard))
        return _by_person(pages, to_domain_event)

    def person_events(self, person_id: str) -> list[Any]:
        """All of one person's stored events, in order (a quarantined person is derived again from them)."""
        return ledger_person_events(self.ledger)(person_id)

    def commit(self, positions: Mapping[int, int]) -> None:
        """Nothing to tell the ledger: the view store holds the position."""

    def close(self) -> None:
        """The ledger belongs to the caller."""


def ledger_person_events(ledger: Any) -> Any:
    """A reader of one person's stored events from the ledger's recorder (whatever source feeds the views:
    the events on ``ledger.events.v1`` are the ledger's own).

    ``read(person_id, after=0)``: the events above version ``after``, in order (one
    indexed query by originator id and version: what a fresh read of one person costs).
    """
    to_domain_event = event_decoder(ledger.mapper)

    def read(person_id: str, after: int = 0) -> list[Any]:
        stored = ledger.recorder.select_events(UUID(str(person_id)), gt=after or None)
        return [to_domain_event(s) for s in stored if s.topic.startswith(PERSON_TOPIC_PREFIX)]

    return read


def event_decoder(mapper: Any) -> Any:
    """``mapper.to_domain_event``, faster for the library's plain JSON mapper (:mod:`infra.event_store.stored_events`)."""
    return stored_event_decoder(mapper)


#: A page of the log: (person stored events in order, other notifications skipped, the last id it covers).
Page = tuple[list[Any], int, int]


def _generic_pages(recorder: Any, position: int, stop: int, size: int, shard: Shard | None) -> Iterator[Page]:
    """Pages of ``(position, stop]`` through the recorder's own ``select_notifications`` (any recorder)."""
    while position < stop:
        page = recorder.select_notifications(position + 1, size, stop=stop)
        if not page:
            return  # nothing more recorded up to ``stop``
        rows = [n for n in page if n.topic.startswith(PERSON_TOPIC_PREFIX)]
        position = page[-1].id
        yield rows, len(page) - len(rows), position


_END = object()


def _read_ahead(pages: Iterator[Page], depth: int = 2) -> Iterator[Page]:
    """``pages``, fetched by a thread of their own up to ``depth`` pages ahead of the caller.

    The server looks up and sends the next page while this process decodes the one it
    has (psycopg waits without holding the GIL). In order; an error fetching a page is
    raised here, where that page would have come; closing this generator stops the thread.
    """
    ahead: queue.Queue[Any] = queue.Queue(maxsize=depth)
    closed = threading.Event()

    def put(item: Any) -> bool:
        while not closed.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for page in pages:
                if not put(page):
                    return
            put(_END)
        except BaseException as err:  # noqa: BLE001 - handed to the reader, raised there
            put(err)

    thread = threading.Thread(target=fetch, name="log-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ahead.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        closed.set()
        thread.join()


def _postgres_table(recorder: Any) -> Any:
    """The events table of the library's PostgreSQL recorder as a composed identifier, or None for another recorder."""
    datastore = getattr(recorder, "datastore", None)
    table = getattr(recorder, "events_table_name", None)
    if table is None or type(datastore).__name__ != "PostgresDatastore":
        return None

    return SQL("{}.{}").format(Identifier(datastore.schema), Identifier(table))


def _postgres_pages(recorder: Any, position: int, stop: int, size: int, shard: Shard | None) -> Iterator[Page]:
    """Pages of ``(position, stop]`` read straight from PostgreSQL: the same stored events, a fraction of the cost.

    ``select_notifications`` returns every notification as a dict row turned into a
    ``Notification``; a rebuild reads millions. Here the rows are plain tuples, only
    the Person events are sent (the ``SourceRecord`` index's rows stay in the server;
    the ids of a range that are not sent count as skipped), and a page is a range of
    notification ids, so the position moves past whatever the range holds. The range
    ends at ``stop``, the log's end when the read began: the library's writers insert
    under a table lock, so every id up to it is committed. With a ``shard``, the other
    shards' rows stay in the server too: a rebuild in several passes scans the log once
    per pass in PostgreSQL, but each row crosses to Python once (at 500,000 residents,
    five passes had sent every pass all 4.9 million rows, the others' without a state).
    """
    ours = "starts_with(topic, %s)"
    bounds: tuple[Any, ...] = ()
    if shard is not None:
        low, high = shard_bounds(shard)
        ours += " AND originator_id >= %s" + ("" if high is None else " AND originator_id < %s")
        bounds = (low,) if high is None else (low, high)
    statement = SQL(
        "SELECT originator_id, originator_version, topic, state FROM {} "
        "WHERE notification_id > %s AND notification_id <= %s AND " + ours + " ORDER BY notification_id"  # type: ignore[arg-type]
    ).format(_postgres_table(recorder))
    while position < stop:
        # Ids can have holes (a rolled-back insert); a page is at most ``size`` ids wide.
        reached = min(stop, position + size)
        with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(statement, (position, reached, PERSON_TOPIC_PREFIX, *bounds), prepare=True, binary=True)
            found = cursor.fetchall()
        rows = [StoredEvent(o, v, t, bytes(s)) for o, v, t, s in found]
        yield rows, reached - position - len(rows), reached
        position = reached


#: For one transaction: read a range in index order (see :func:`_postgres_histories`).
_INDEX_ORDER = ("SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off; SET LOCAL jit = off; "
                "SET LOCAL max_parallel_workers_per_gather = 0")


def _postgres_histories(recorder: Any, stop: int, size: int, shard: Shard | None) -> Iterator[list[Any]]:
    """Pages of the Person stored events up to notification ``stop``, in primary key order, of ``shard``'s ids.

    Keyset pages along the primary key ``(originator_id, originator_version)``: an index
    range scan, each row of the range visited once over the whole pass (the other
    aggregates' rows of the range stay in the server). Ids up to ``stop`` were committed
    when the rebuild began (see :func:`_postgres_pages`); later ones are the catch-up's.

    The planner is told to walk the index (no sort, bitmap scan, parallel workers or JIT) in the page's
    transaction: it cannot tell how many rows of a range the topic filter keeps, and at
    500,000 residents, on a table not yet analysed, it planned a bitmap scan of half the
    table and a sort for every page of 5,000 (and JIT-compiled a generic plan). The
    statement is not prepared, so every page is planned with its own bounds.
    """
    low, high = shard_bounds(shard) if shard is not None else (UUID(int=0), None)
    statement = SQL(
        "SELECT originator_id, originator_version, topic, state FROM {} "
        "WHERE (originator_id, originator_version) > (%s, %s)" + ("" if high is None else " AND originator_id < %s")
        + " AND notification_id <= %s AND starts_with(topic, %s) "  # type: ignore[operator]
        "ORDER BY originator_id, originator_version LIMIT %s"
    ).format(_postgres_table(recorder))
    after: tuple[Any, int] = (low, -1)  # versions start at 1: (low, -1) is before every row of ``low``
    while True:
        params = (*after, *(() if high is None else (high,)), stop, PERSON_TOPIC_PREFIX, size)
        with recorder.datastore.get_connection() as conn, conn.transaction(), \
                conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(_INDEX_ORDER)
            cursor.execute(statement, params, prepare=False, binary=True)
            found = cursor.fetchall()
        if not found:
            return
        yield [StoredEvent(o, v, t, bytes(s)) for o, v, t, s in found]
        if len(found) < size:
            return
        after = (found[-1][0], found[-1][1])


def _by_person(pages: Iterator[list[Any]], to_domain_event: Any) -> Iterator[tuple[str, list[Any]]]:
    """``(person key, events)`` from pages of stored events in originator order, each person once."""
    key: str | None = None
    current: Any = None  # the originator id of ``key``, as read (compared row by row; made text once per person)
    events: list[Any] = []
    for rows in pages:
        for stored in rows:
            event = to_domain_event(stored)
            if stored.originator_id != current:
                if events:
                    yield key, events  # type: ignore[misc]
                current = stored.originator_id
                key, events = str(current), []
            events.append(event)
    if events:
        yield key, events  # type: ignore[misc]


# --------------------------------------------------------------------------- Kafka
class KafkaEventSource:
    """``ledger.events.v1`` on Kafka: every partition assigned to this runner, positions from the store."""

    initial = -1

    def __init__(self, bootstrap_servers: str, topic: str, *, group_id: str = "ledger-projections",
                 poll_timeout: float = 1.0, idle_timeout: float = 30.0, consumer: Any = None, **config: Any) -> None:
        self.topic = topic
        self.name = f"kafka:{topic}"
        self.poll_timeout = poll_timeout
        self.idle_timeout = idle_timeout
        if consumer is None:
            from kafka import KafkaConsumer

            # read_committed: only the publisher's committed transactions (each event exactly once); the
            # transaction markers take offsets but are never returned (read() moves past them by position).
            settings: dict[str, Any] = {"enable_auto_commit": False, "auto_offset_reset": "earliest",
                                        "client_id": f"medins-ledger-{group_id}", "max_poll_records": 2000,
                                        "isolation_level": "read_committed"}
            settings.update(config)
            consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group_id, **settings)
        self.consumer = consumer
        self._partitions: list[int] | None = None

    def partitions(self) -> list[int]:
        if self._partitions is None:
            deadline = time.monotonic() + self.idle_timeout
            found: set[int] = set()
            while not found:
                found = set(self.consumer.partitions_for_topic(self.topic) or ())
                if not found:
                    if time.monotonic() > deadline:
                        raise SourceError("TOPIC_UNKNOWN", f"Kafka has no topic {self.topic!r} (python -m infra up "
                                                           "creates the ledger's topics)")
                    time.sleep(0.2)
            self._partitions = sorted(found)
        return self._partitions

    def _tp(self, partition: int) -> Any:
        from kafka import TopicPartition

        return TopicPartition(self.topic, partition)

    def end(self) -> dict[int, int]:
        tps = [self._tp(p) for p in self.partitions()]
        ends = self.consumer.end_offsets(tps)
        return {tp.partition: ends[tp] - 1 for tp in tps}

    def read(self, after: Mapping[int, int | None], until: Mapping[int, int], *, max_records: int,
             shard: Shard | None = None) -> Iterator[Batch]:
        expected = {p: after.get(p) for p in until}  # what the store holds, per partition
        reached = {p: (self.initial if after.get(p) is None else after[p]) for p in until}
        todo = {p for p in until if until[p] > reached[p]}
        if not todo:
            return
        self.consumer.assign([self._tp(p) for p in sorted(todo)])
        for p in sorted(todo):
            if after.get(p) is None:
                self.consumer.seek_to_beginning(self._tp(p))
            else:
                self.consumer.seek(self._tp(p), reached[p] + 1)
        idle_since = time.monotonic()
        while todo:
            polled = self.consumer.poll(timeout_ms=int(self.poll_timeout * 1000), max_records=max_records)
            batch = Batch([], {})
            moved: set[int] = set()
            for tp, records in polled.items():
                p = tp.partition
                if p not in todo:
                    continue
                for record in records:
                    if record.offset > until[p]:
                        break
                    key = record.key.decode() if record.key else ""
                    if in_shard(key, shard):
                        try:
                            batch.events.append(decode_event(record.value))
                        except DomainError as err:
                            raise SourceError("RECORD_UNDECODABLE", (
                                f"{self.topic} partition {p} offset {record.offset} is not a ledger event "
                                f"({err.code}: {err.message}); the views cannot go past it"),
                                partition=p, offset=record.offset) from None
                    else:
                        batch.skipped += 1
                    batch.consumed += record.offset - reached[p]
                    reached[p] = record.offset
                    moved.add(p)
            for p in sorted(todo):
                if reached[p] < until[p] and self.consumer.position(self._tp(p)) > until[p]:
                    batch.consumed += until[p] - reached[p]  # the rest of the range holds no records
                    reached[p] = until[p]
                    moved.add(p)
                if reached[p] >= until[p]:
                    todo.discard(p)
            if moved:
                batch.positions = {p: (expected[p], reached[p]) for p in sorted(moved)}
                expected.update({p: reached[p] for p in moved})
                idle_since = time.monotonic()
                yield batch
            elif time.monotonic() - idle_since > self.idle_timeout:
                raise SourceError("SOURCE_STALLED", (
                    f"no record from {self.topic} for {self.idle_timeout:.0f} s although partitions "
                    f"{sorted(todo)} hold more; is the broker reachable?"))

    def commit(self, positions: Mapping[int, int]) -> None:
        """Tell the consumer group how far the views are (monitoring only; the store is the truth)."""
        from kafka.structs import OffsetAndMetadata

        try:
            self.consumer.commit({self._tp(p): OffsetAndMetadata(o + 1, "", -1) for p, o in positions.items()})
        except Exception as err:  # noqa: BLE001 - a failed convenience commit must not stop the views
            log.warning("kafka_commit_failed", topic=self.topic, error=str(err))

    def close(self) -> None:
        self.consumer.close(autocommit=False)


__all__ = ["Batch", "KafkaEventSource", "event_decoder", "NotificationLogSource", "PERSON_TOPIC_PREFIX", "Source", "SourceError",
           "in_shard", "shard_bounds", "shard_of"]
