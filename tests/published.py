"""``ledger.events.v1`` read back from the beginning, and what a publisher must have put there.

Shared by the crash test (tests/integration/test_kafka_crash.py) and the fault-injection
suite (tests/faults): read with ``read_committed`` (the publisher writes in Kafka
transactions), every stored person event exactly once (:func:`duplicates` counts the
repeats), nothing else, keyed by its person, and per person in version order 1..n.
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from events.ledger_events import decode_event


def read_topic(bootstrap: str, topic: str, expect: set[str], timeout: float = 60.0,
               isolation_level: str = "read_committed") -> list[dict[str, Any]]:
    """Every record of ``topic`` decoded (with ``_key`` and ``_partition``), read until the ``expect``-ed
    event ids were all seen and the end offsets reached, or ``timeout``. ``read_committed`` by default: what
    the publisher's downstream consumers see."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=2000,
                             isolation_level=isolation_level)
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    deadline = time.monotonic() + timeout

    def poll() -> None:
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                d = decode_event(r.value)
                d["_key"], d["_partition"] = r.key, r.partition
                out.append(d)
                seen.add(d["event_id"])

    try:
        while not expect <= seen and time.monotonic() < deadline:
            poll()
        ends = consumer.end_offsets(parts)
        while any(consumer.position(tp) < ends[tp] for tp in parts) and time.monotonic() < deadline:
            poll()
    finally:
        consumer.close()
    return out


def duplicates(published: list[dict[str, Any]]) -> int:
    """Records beyond the first of each event id (0: every event exactly once)."""
    return len(published) - len({d["event_id"] for d in published})


def publication_problems(stored: dict[str, tuple[str, int]], published: list[dict[str, Any]]) -> dict[str, int]:
    """What is wrong with ``published`` (records of the topic, in topic order) given the ledger's person
    events ``stored`` (event id -> (person id, version)); every count 0 when the publisher did its job."""
    seen: set[str] = set()
    first: dict[str, list[int]] = defaultdict(list)
    wrong_key = 0
    for d in published:
        if d["_key"] != d["person_id"].encode():
            wrong_key += 1
        if d["event_id"] not in seen:
            seen.add(d["event_id"])
            first[d["person_id"]].append(d["version"])
    expected_order = defaultdict(list)
    for person, version in stored.values():
        expected_order[person].append(version)
    out_of_order = sum(1 for person, versions in first.items()
                       if versions != list(range(1, len(versions) + 1)))
    return {
        "missing": len(stored.keys() - seen),
        "unknown": len(seen - stored.keys()),
        "wrong_key": wrong_key,
        "persons_out_of_order": out_of_order,
        "persons_incomplete": sum(1 for person, versions in expected_order.items()
                                  if len(first.get(person, ())) != len(versions)),
    }
