"""The producers' partitioner puts every keyed record where kafka-python's default (and the Java client) puts it."""
from __future__ import annotations

import random

from kafka.cluster import ClusterMetadata
from kafka.partitioner.default import DefaultPartitioner
from kafka.partitioner.default import murmur2 as kafka_murmur2

from consumers.kafka_io import KeyHashPartitioner, murmur2


def test_murmur2_equals_kafka_pythons_for_every_length():
    rng = random.Random(4)
    for length in range(0, 201):
        for _ in range(20):
            data = bytes(rng.randrange(256) for _ in range(length))
            assert murmur2(data) == kafka_murmur2(data), length
    for data in (b"", b"\x00", b"\xff" * 37, "张三".encode(), b"21"):
        assert murmur2(data) == kafka_murmur2(data)


class _Cluster:
    """The two calls a partitioner makes of kafka-python's ClusterMetadata."""

    def __init__(self, partitions: set[int]) -> None:
        self._partitions = partitions

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self._partitions

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self._partitions


def test_keyed_records_go_to_the_default_partitioners_partition():
    ours, theirs = KeyHashPartitioner(), DefaultPartitioner()
    rng = random.Random(7)
    for partitions in ({0}, {0, 1, 2}, set(range(12)), {0, 2, 5}):
        cluster = _Cluster(partitions)
        for _ in range(500):
            key = str(rng.getrandbits(128)).encode()
            assert ours.partition("t", None, key, None, b"v", cluster) == \
                theirs.partition("t", None, key, None, b"v", cluster)
    assert ours.partition("t", None, None, None, b"v", _Cluster({0, 1, 2})) in {0, 1, 2}  # unkeyed: random


def test_an_unknown_topic_is_refused_like_the_default():
    cluster = ClusterMetadata()
    try:
        KeyHashPartitioner().partition("nope", None, b"k", None, b"v", cluster)
    except ValueError as e:
        assert "nope" in str(e)
    else:
        raise AssertionError("expected ValueError")
