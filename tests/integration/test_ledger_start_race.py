"""Ledger processes started together on one database all start.

Every start creates the store's tables, types and functions (idempotent statements); two
transactions replacing the same function at once make PostgreSQL answer "tuple
concurrently updated". The fault-injection suite (tests/faults) saw a projection runner
die of it when it started beside the consumers and the publisher.
"""
from __future__ import annotations

import threading

from entrypoints.wiring import bootstrap
from infra.settings import Settings

STARTS = 8
ROUNDS = 3


def test_processes_starting_at_the_same_moment_all_start(pg_env):
    postgres = {k: v for k, v in pg_env.items() if k.startswith("POSTGRES_")}
    for _ in range(ROUNDS):
        barrier = threading.Barrier(STARTS)
        errors: list[BaseException] = []

        def start() -> None:
            barrier.wait()
            try:
                bootstrap(Settings(persistence="postgres", postgres=postgres, id_key=b"race")).close()
            except BaseException as e:  # noqa: BLE001 - collected and asserted below
                errors.append(e)

        threads = [threading.Thread(target=start) for _ in range(STARTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, [f"{type(e).__name__}: {e}" for e in errors]
