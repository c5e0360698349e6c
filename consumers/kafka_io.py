"""Kafka adapters (kafka-python): a consumer-group source and a producer sink.

:class:`KafkaSource` joins a consumer group; on every assignment the runner seeks each
partition to the position stored in the ledger (+1), so Kafka's committed offsets are
only a convenience (monitoring, lag). :class:`KafkaSink` produces with an idempotent
producer (``enable_idempotence=True``, ``acks="all"``) and ``flush`` returns only when
every record sent is acknowledged by the broker (or raises).

A process started while the broker is down (restarting, not yet up) waits for it
(:func:`until_broker_answers`, ``LEDGER_KAFKA_STARTUP_WAIT`` seconds, default 300) instead
of exiting with ``KafkaTimeoutError``: the fault suite saw consumers started during a
broker restart die and need a supervisor to start them again.
"""
from __future__ import annotations

import struct
import time
from contextlib import suppress
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka import errors as Errors
from kafka.errors import KafkaTimeoutError
from kafka.partitioner import DefaultPartitioner
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata

from consumers.feed_consumer import Message, RecordRefused
from infra.settings import setting
from ledger.log import get_logger

log = get_logger("consumers.kafka")
T = TypeVar("T")


def until_broker_answers(connect: Callable[[], T], *, what: str, wait: float | None = None,
                         sleep: Callable[[float], None] = time.sleep) -> T:
    """``connect()`` once the broker answers: retried on ``KafkaTimeoutError`` with growing pauses
    (0.5 s doubling up to 5 s) for ``wait`` seconds, then the error is raised."""
    if wait is None:
        wait = setting("LEDGER_KAFKA_STARTUP_WAIT")
    deadline = time.monotonic() + wait
    pause = 0.5
    while True:
        try:
            return connect()
        except KafkaTimeoutError:  # kafka-python: 'Unable to bootstrap from ...' after its own 30 s
            if time.monotonic() + pause > deadline:
                raise
            log.warning("broker_not_available_yet", client=what, retry_in_s=pause)
            sleep(pause)
            pause = min(pause * 2, 5.0)


_M = 0x5BD1E995


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of ``data``, as ``kafka.partitioner.default.murmur2`` computes it.

    The same arithmetic with the 4-byte words read by one ``struct.unpack_from`` and the
    32-bit masks folded together: 4.6 -> 2.4 µs for a 36-byte person-id key (timeit).
    tests/unit/test_kafka_partitioner.py checks it equals kafka-python's for keys of 0-200 bytes.
    """
    length = len(data)
    h = 0x9747B28C ^ length
    for k in struct.unpack_from(f"<{length >> 2}I", data):
        k = (k * _M) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * _M) & 0xFFFFFFFF
        h = ((h * _M) & 0xFFFFFFFF) ^ k
    extra, base = length & 3, length & ~3
    if extra >= 3:
        h ^= data[base + 2] << 16
    if extra >= 2:
        h ^= data[base + 1] << 8
    if extra >= 1:
        h ^= data[base]
        h = (h * _M) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * _M) & 0xFFFFFFFF
    h ^= h >> 15
    return h


class KeyHashPartitioner(DefaultPartitioner):
    """kafka-python's default partitioner (a keyed record goes where the Java client puts it), faster.

    The publisher sends one record per person event, each with the person id as key; the
    default partitioner's pure-Python murmur2 and the list of available partitions it
    builds for every record (used only for records without a key) were a fifth of
    ``KafkaProducer.send``. Records without a key go the default way.
    """

    def partition(self, topic: str, key: Any, serialized_key: bytes | None, value: Any,
                  serialized_value: bytes | None, cluster: Any) -> int:
        if serialized_key is None:
            return super().partition(topic, key, serialized_key, value, serialized_value, cluster)
        if topic not in cluster.topics():
            raise ValueError(f"Topic {topic} not found in ClusterMetadata")
        partitions = sorted(cluster.partitions_for_topic(topic))
        return partitions[(murmur2(serialized_key) & 0x7FFFFFFF) % len(partitions)]


def make_producer(bootstrap_servers: str, **config: Any) -> KafkaProducer:
    """An idempotent producer: per partition, no duplicates from its own retries and no reordering."""
    settings: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": True,
        "max_in_flight_requests_per_connection": 5,
        "linger_ms": 2,
        "client_id": "medins-ledger",
        "partitioner": KeyHashPartitioner(),
    }
    settings.update(config)
    return until_broker_answers(lambda: KafkaProducer(bootstrap_servers=bootstrap_servers, **settings),
                                what="producer")


class KafkaSink:
    """Records to Kafka; ``flush`` waits for the broker's acknowledgement of everything sent."""

    def __init__(self, producer: KafkaProducer, *, flush_timeout: float = 60.0) -> None:
        self.producer = producer
        self.flush_timeout = flush_timeout
        self._futures: list[Any] = []

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> None:
        self._futures.append(self.producer.send(topic, key=key, value=value, headers=list(headers)))

    def flush(self) -> None:
        futures, self._futures = self._futures, []
        if not futures:
            return
        self.producer.flush(timeout=self.flush_timeout)
        for future in futures:
            future.get(timeout=0)  # raises the broker's or the client's error

    def close(self) -> None:
        self.producer.close()


#: Broker errors about one record (not the connection, not the transaction): the record is refused for good.
RECORD_ERRORS: tuple[type[BaseException], ...] = (Errors.MessageSizeTooLargeError, Errors.InvalidRecordError,
                                                  Errors.CorruptRecordError)


def publisher_transactional_id(topic: str) -> str:
    """The publisher's ``transactional.id``: stable per published topic (its name includes the deployment's
    ``LEDGER_TOPIC_PREFIX``), so a restarted publisher fences the one before it, and two deployments sharing a
    broker (tests' prefixes) never fence each other."""
    return f"medins-ledger-publisher:{topic}"


class KafkaTransaction:
    """One Kafka transaction of a :class:`TransactionalKafkaSink` (begun when made)."""

    def __init__(self, sink: TransactionalKafkaSink) -> None:
        self.sink = sink
        self.producer = sink.producer()
        self.producer.begin_transaction()
        self._futures: list[Any] = []

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> None:
        """:class:`~consumers.feed_consumer.RecordRefused` when the client refuses this record (too large): it is not in
        the transaction. Any other error (no metadata, broker away) is raised as it is: the batch fails."""
        try:
            future = self.producer.send(topic, key=key, value=value, headers=list(headers))
        except RECORD_ERRORS as e:
            raise RecordRefused(e) from e
        if future.failed():  # refused before it was queued
            if isinstance(future.exception, RECORD_ERRORS):
                raise RecordRefused(future.exception)
            raise future.exception
        self._futures.append(future)

    def flush(self) -> list[tuple[int, BaseException]]:
        """Sends everything and waits; returns (index in send order, error) of the records the broker refused for
        good (:data:`RECORD_ERRORS`). Any other failure raises: the transaction must be aborted."""
        self.producer.flush(timeout=self.sink.flush_timeout)
        refused, other = [], None
        for i, future in enumerate(self._futures):
            if not future.is_done:
                raise Errors.KafkaTimeoutError(f"record {i} of the transaction not acknowledged after flush")
            if future.failed():
                if isinstance(future.exception, RECORD_ERRORS):
                    refused.append((i, future.exception))
                elif other is None and not isinstance(future.exception, Errors.TransactionAbortedError):
                    other = future.exception
        if other is not None:
            raise other
        return refused

    def commit(self) -> None:
        self.producer.commit_transaction()

    def abort(self) -> None:
        """Abort; when the producer cannot abort (fenced, broker gone), it is dropped: the next one's
        ``init_transactions`` aborts what is open."""
        if getattr(self.producer, "_closed", False):
            self.sink.reset()
            return
        try:
            self.producer.abort_transaction()
        except Exception as e:  # noqa: BLE001 - whatever it was, a fresh producer sorts it out
            log.warning("publisher_transaction_abort_failed", error=str(e), error_type=type(e).__name__)
            self.sink.reset()


def last_committed_value(bootstrap_servers: str, topic: str, key: bytes, *, tail: int = 1000,
                         timeout: float = 120.0) -> bytes | None:
    """The last committed value of ``key`` on ``topic`` (``isolation_level="read_committed"``, to the end).

    The last ``tail`` offsets of each partition are read first (each publisher transaction adds
    its position record and a commit marker); the whole partition only when the key is not there.
    Joins no group, commits nothing, fences nobody (``ledger status`` uses it too).
    """
    consumer = until_broker_answers(lambda: KafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False,
        isolation_level="read_committed", client_id="medins-ledger-publisher-position"),
        what="position reader")
    try:
        deadline = time.monotonic() + timeout
        parts = None
        while not parts:
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"topic {topic!r} does not exist (python -m infra up creates it)")
                time.sleep(0.5)
        found: bytes | None = None
        for partition in sorted(parts):
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            first, end = consumer.beginning_offsets([tp])[tp], consumer.end_offsets([tp])[tp]
            for start in dict.fromkeys((max(first, end - tail), first)):
                value = _last_in(consumer, tp, key, start, end, deadline)
                if value is not None:
                    found = value
                    break
        return found
    finally:
        consumer.close()


def _last_in(consumer: KafkaConsumer, tp: TopicPartition, key: bytes, start: int, end: int,
             deadline: float) -> bytes | None:
    found: bytes | None = None
    consumer.seek(tp, start)
    while consumer.position(tp) < end:
        if time.monotonic() > deadline:
            raise Errors.KafkaTimeoutError(f"reading {tp} up to {end} took too long")
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                if r.key == key and r.offset < end:
                    found = r.value
    return found


class TransactionalKafkaSink:
    """The publisher's producer: transactional (``transactional_id``), created and initialised on first use.

    ``init_transactions`` fences any older producer with the same ``transactional.id`` (a
    zombie publisher: its next send or commit fails with ``ProducerFencedError``) and
    aborts the transaction it left open, BEFORE the publisher reads its position
    (:meth:`last_value`), as Kafka Connect's exactly-once source tasks do (KIP-618).
    """

    def __init__(self, bootstrap_servers: str, *, transactional_id: str, flush_timeout: float = 120.0,
                 **producer_config: Any) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.transactional_id = transactional_id
        self.flush_timeout = flush_timeout
        self.producer_config = {"transaction_timeout_ms": 60_000, **producer_config}
        self._producer: KafkaProducer | None = None

    def producer(self) -> KafkaProducer:
        if self._producer is None:
            producer = make_producer(self.bootstrap_servers, transactional_id=self.transactional_id,
                                     **self.producer_config)
            try:
                until_broker_answers(lambda: producer.init_transactions(), what="transactional producer")
            except BaseException:
                producer.close(timeout=0)
                raise
            self._producer = producer
        return self._producer

    def transaction(self) -> KafkaTransaction:
        return KafkaTransaction(self)

    def last_value(self, topic: str, key: bytes) -> bytes | None:
        """The last committed value of ``key`` on ``topic``, read after fencing (see the class docstring)."""
        self.producer()  # fence first: no zombie commits a newer position after this read
        return last_committed_value(self.bootstrap_servers, topic, key)

    def reset(self) -> None:
        """Drop the producer (after a failure it may not recover from); the next use makes and fences a new one."""
        producer, self._producer = self._producer, None
        if producer is not None:
            with suppress(Exception):
                producer.close(timeout=5)

    def close(self) -> None:
        self.reset()


class _Listener(ConsumerRebalanceListener):
    def __init__(self, on_assigned: Callable[[list[tuple[str, int]]], None],
                 on_revoked: Callable[[list[tuple[str, int]]], None]) -> None:
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._on_revoked(sorted((tp.topic, tp.partition) for tp in revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._on_assigned(sorted((tp.topic, tp.partition) for tp in assigned))


class KafkaSource:
    """A member of a Kafka consumer group, seen as a :class:`consumers.feed_consumer.Source`."""

    def __init__(self, bootstrap_servers: str, *, group_id: str, max_poll_records: int = 500, **config: Any) -> None:
        settings: dict[str, Any] = {
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_records": max_poll_records,
            # A member that died without leaving holds its partitions this long: keep it short.
            "session_timeout_ms": 10_000,
            "heartbeat_interval_ms": 2_000,
            "client_id": f"medins-ledger-{group_id}",
        }
        settings.update(config)
        self.consumer = until_broker_answers(
            lambda: KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group_id, **settings),
            what=f"consumer {group_id}")

    def subscribe(
        self,
        topics: Sequence[str],
        on_assigned: Callable[[list[tuple[str, int]]], None],
        on_revoked: Callable[[list[tuple[str, int]]], None],
        *,
        metadata_timeout: float = 60.0,
    ) -> None:
        # Know the partitions before joining: a group leader without the topic's metadata
        # hands out an empty assignment and may not rebalance until the metadata max age.
        deadline = time.monotonic() + metadata_timeout
        for topic in topics:
            while not self.consumer.partitions_for_topic(topic):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"topic {topic!r} does not exist (no partitions after {metadata_timeout:.0f} s)")
                log.warning("topic_not_available_yet", topic=topic)
                time.sleep(0.5)
        self.consumer.subscribe(list(topics), listener=_Listener(on_assigned, on_revoked))

    def poll(self, timeout: float, max_records: int) -> list[Message]:
        polled = self.consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        out: list[Message] = []
        for records in polled.values():
            for r in records:
                out.append(Message(r.topic, r.partition, r.offset, r.key, r.value,
                                   tuple((k, v) for k, v in (r.headers or ()))))
        return out

    def seek(self, topic: str, partition: int, offset: int | None) -> None:
        tp = TopicPartition(topic, partition)
        try:
            if offset is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)
        except (ValueError, AssertionError) as e:  # no longer assigned: its new owner seeks
            log.info("seek_skipped", topic=topic, partition=partition, reason=str(e))

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        self.consumer.commit({TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()})

    def close(self) -> None:
        self.consumer.close(autocommit=False)
