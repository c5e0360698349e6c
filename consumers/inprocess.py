"""The embedded transport: in-memory topics with partitions and offsets, no Kafka.

The embedded default (SQLite, one process) feeds the very same feed handlers as
production: :class:`InProcessBroker` keeps each topic as partitions of numbered
messages, :class:`InProcessSource` reads them like a one-member consumer group
(seek, poll, commit), and the broker itself is a record sink (dead letters,
published ledger events). Unit tests use it to exercise the handler logic fast.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from itertools import count
from threading import Condition

from consumers.feed_consumer import Message


class InMemoryTopic:
    """One topic: ``partitions`` append-only lists; a message's offset is its index."""

    def __init__(self, name: str, partitions: int = 1) -> None:
        if partitions < 1:
            raise ValueError("a topic needs at least one partition")
        self.name = name
        self.partitions: list[list[Message]] = [[] for _ in range(partitions)]
        #: The offset of each partition's first message (0 unless :meth:`start_at` moved it).
        self.bases: list[int] = [0] * partitions
        self._round_robin = count()

    def start_at(self, partition: int, offset: int) -> None:
        """Number an empty partition's messages from ``offset``: a topic that lives only as long as the
        process (a feed file applied embedded) continues the offsets its consumer's positions stored."""
        if self.partitions[partition]:
            raise ValueError("only an empty partition can start at another offset")
        self.bases[partition] = offset

    def partition_for(self, key: bytes | None) -> int:
        if key is None:
            return next(self._round_robin) % len(self.partitions)
        return zlib.crc32(key) % len(self.partitions)

    def append(
        self, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> Message:
        p = self.partition_for(key) if partition is None else partition
        log = self.partitions[p]
        message = Message(self.name, p, self.bases[p] + len(log), key, value, tuple(headers))
        log.append(message)
        return message

    def messages(self, partition: int | None = None) -> list[Message]:
        if partition is not None:
            return list(self.partitions[partition])
        return [m for log in self.partitions for m in log]


class InProcessBroker:
    """Topics by name (created on first use) and the committed offsets of groups.

    It is also a record sink (``send`` / ``flush``), for dead letters and published events.
    """

    def __init__(self, partitions: Mapping[str, int] | None = None, *, default_partitions: int = 1) -> None:
        self._partitions = dict(partitions or {})
        self.default_partitions = default_partitions
        self.topics: dict[str, InMemoryTopic] = {}
        self.committed: dict[tuple[str, str, int], int] = {}
        self.changed = Condition()

    def topic(self, name: str) -> InMemoryTopic:
        with self.changed:
            if name not in self.topics:
                self.topics[name] = InMemoryTopic(name, self._partitions.get(name, self.default_partitions))
            return self.topics[name]

    def produce(
        self, topic: str, *, key: bytes | None, value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (), partition: int | None = None,
    ) -> Message:
        t = self.topic(topic)
        with self.changed:
            message = t.append(key, value, headers, partition)
            self.changed.notify_all()
        return message

    # -- record sink
    def send(self, topic: str, *, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> None:
        self.produce(topic, key=key, value=value, headers=headers)

    def flush(self) -> None:
        """Nothing to wait for: an in-memory append is acknowledged at once."""

    # -- transactional sink (the ledger publisher)
    def transaction(self) -> InProcessTransaction:
        """Records kept aside until ``commit`` appends them all at once (or ``abort`` drops them).

        The publisher's events and its position record go in one transaction: readers see
        both or neither, as a ``read_committed`` Kafka consumer would.
        """
        return InProcessTransaction(self)

    def last_value(self, topic: str, key: bytes) -> bytes | None:
        """The value of the last record with ``key`` on ``topic`` (a compacted topic's current value)."""
        with self.changed:
            if topic not in self.topics:
                return None
            for log in self.topics[topic].partitions:
                for message in reversed(log):
                    if message.key == key:
                        return message.value
        return None


class InProcessTransaction:
    """One transaction on an :class:`InProcessBroker`: ``send`` keeps records aside, ``commit`` appends them in one
    step under the broker's lock, ``abort`` forgets them."""

    def __init__(self, broker: InProcessBroker) -> None:
        self.broker = broker
        self._pending: list[tuple[str, bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]] = []

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> None:
        self._pending.append((topic, key, value, tuple(headers)))

    def flush(self) -> list[tuple[int, BaseException]]:
        """Nothing is sent before ``commit``: no record can have failed."""
        return []

    def commit(self) -> None:
        pending, self._pending = self._pending, []
        topics = {name: self.broker.topic(name) for name in {p[0] for p in pending}}
        with self.broker.changed:
            for topic, key, value, headers in pending:
                topics[topic].append(key, value, headers)
            self.broker.changed.notify_all()

    def abort(self) -> None:
        self._pending.clear()


class InProcessSource:
    """Reads topics of an :class:`InProcessBroker` as the only member of ``group``."""

    def __init__(self, broker: InProcessBroker, *, group: str = "embedded") -> None:
        self.broker = broker
        self.group = group
        self.positions: dict[tuple[str, int], int] = {}
        self._next = 0

    def subscribe(
        self,
        topics: Sequence[str],
        on_assigned: Callable[[list[tuple[str, int]]], None],
        on_revoked: Callable[[list[tuple[str, int]]], None],
    ) -> None:
        assigned = []
        for name in topics:
            topic = self.broker.topic(name)
            for p in range(len(topic.partitions)):
                self.positions[(name, p)] = self.broker.committed.get((self.group, name, p), 0)
                assigned.append((name, p))
        on_assigned(assigned)

    def seek(self, topic: str, partition: int, offset: int | None) -> None:
        self.positions[(topic, partition)] = offset or 0

    def poll(self, timeout: float, max_records: int) -> list[Message]:
        with self.broker.changed:
            out = self._take(max_records)
            if not out and timeout > 0:
                self.broker.changed.wait(timeout)
                out = self._take(max_records)
        return out

    def _take(self, max_records: int) -> list[Message]:
        """Up to ``max_records`` messages, starting with a different partition each poll (fairness)."""
        keys = list(self.positions)
        if not keys:
            return []
        self._next = (self._next + 1) % len(keys)
        out: list[Message] = []
        for tp in keys[self._next:] + keys[: self._next]:
            room = max_records - len(out)
            if room <= 0:
                break
            topic = self.broker.topics[tp[0]]
            log, base = topic.partitions[tp[1]], topic.bases[tp[1]]
            start = max(self.positions[tp], base)
            taken = log[start - base:start - base + room]
            out.extend(taken)
            self.positions[tp] = start + len(taken)
        return out

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        for (topic, partition), offset in offsets.items():
            self.broker.committed[(self.group, topic, partition)] = offset

    def close(self) -> None:
        self.positions.clear()
