"""Garbage-collector settings for the long-running feed processes (``ledger consume``, ``ledger publish``)
and for a projection rebuild's passes (:func:`few_collections`).

Every payment allocates a few hundred short-lived containers (decoded Avro records, the
person's replayed events and state, new events, their JSON), almost none of them in a
reference cycle: reference counting frees them. With CPython's default thresholds
(700, 10, 10) the cyclic collector still runs ~150 young-generation passes per batch of
1,000 payments and, every few batches, a full pass over everything the process holds,
including the ~100,000 objects the imports left (modules, functions, schemas, policy
tables). Measured in-process on the renewals path that was 10–20 % of the consumer's CPU.

:func:`tune_for_streaming` moves what start-up made into the permanent generation (never
scanned again; it lives as long as the process anyway) and lets the young generation
grow to 50,000 objects before a pass. Cycles are still collected, only in fewer, larger
passes; the memory this can hold back is a few megabytes.
"""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Objects allocated (net) before a young-generation pass; CPython's default is 700.
YOUNG_THRESHOLD = 50_000


def tune_for_streaming() -> None:
    """Freeze what start-up allocated and collect less often (call once, after start-up)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)


@contextmanager
def few_collections(first_generation: int = 100_000) -> Iterator[None]:
    """Let the cyclic garbage collector run rarely while a pass holds a large history in memory.

    A rebuild pass reads a shard's events (long-lived) and allocates millions of short-lived
    dicts while folding; the pure rows hold no reference cycles, yet every collection of
    the oldest generation walks all of it (a third of the derivation's time, measured).
    The objects alive at the start are frozen (never scanned) and the youngest
    generation collects after ``first_generation`` allocations instead of 700; both
    are restored at the end.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], first_generation), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
