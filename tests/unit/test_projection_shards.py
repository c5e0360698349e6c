"""Shards of persons: ranges of ids, which PostgreSQL reads as ranges of the events table's primary key."""
import random
import uuid

import pytest

from projections.sources import shard_bounds, shard_of


@pytest.mark.parametrize("shards", [1, 2, 3, 5, 7, 64])
def test_a_person_falls_in_the_range_of_ids_of_their_shard(shards):
    rng = random.Random(shards)
    edges = [0, 2**128 - 1] + [shard_bounds((k, shards))[0].int + d for k in range(shards) for d in (-1, 0, 1)]
    for n in [rng.getrandbits(128) for _ in range(3000)] + [e % 2**128 for e in edges]:
        person = uuid.UUID(int=n)
        k = shard_of(str(person), shards)
        low, high = shard_bounds((k, shards))
        assert 0 <= k < shards and low <= person and (high is None or person < high)


def test_shards_split_the_ids_evenly_and_a_key_that_is_no_uuid_still_has_one():
    counts = [0, 0, 0]
    for _ in range(30000):
        counts[shard_of(str(uuid.uuid4()), 3)] += 1
    assert min(counts) > 9000
    assert 0 <= shard_of("not-a-uuid", 3) < 3


def test_a_rebuild_uses_a_worker_process_per_core_up_to_four_on_postgres_only(monkeypatch):
    from types import SimpleNamespace

    from projections import factory as wiring

    for cores, want in ((1, 1), (2, 2), (16, 4), (None, 1)):
        monkeypatch.setattr(wiring.os, "cpu_count", lambda cores=cores: cores)
        assert wiring.default_workers(SimpleNamespace(persistence="postgres")) == want
        assert wiring.default_workers(SimpleNamespace(persistence="sqlite")) == 1
        assert wiring.default_workers(SimpleNamespace(persistence="memory")) == 1
