"""A long-running projection runner (``ledger project --follow``) outlives a database or broker that goes away.

``run_forever`` retries a failure that is not the events' or the store's own from the
stored positions, after a growing pause, and ends with the views a clean run gives; a
:class:`DomainError` (the events or the store need a person) is raised at once. Found by
the fault-injection suite (tests/faults): every PostgreSQL restart ended both runners.
"""
from __future__ import annotations

import threading
from datetime import date

import pytest

from projections.projection_runner import ProjectionRunner
from projections.sources import NotificationLogSource, SourceError
from projections.store import SQLiteViewStore
from tests.unit.projection_support import enroll, ledger, number, pay_year  # noqa: F401  (fixture)


class FlakySource:
    """The ledger's log, whose first ``failures`` reads fail as when the server restarts; stops the run after."""

    def __init__(self, ledger, stop: threading.Event, failures: int, error: Exception) -> None:
        self.inner = NotificationLogSource(ledger)
        self.name, self.initial = self.inner.name, self.inner.initial
        self.stop, self.failures, self.error = stop, failures, error
        self.calls = 0

    def end(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        if self.calls > self.failures + 1:  # caught up once after the failures: done
            self.stop.set()
        return self.inner.end()

    def read(self, *args, **kwargs):
        return self.inner.read(*args, **kwargs)

    def commit(self, positions) -> None:
        pass

    def close(self) -> None:
        pass


def recorded(ledger) -> None:
    for seq in (1, 3):
        enroll(ledger, number(seq), date(2024, 9, 10))
        pay_year(ledger, number(seq), 2025, date(2024, 10, 8), voucher=f"V{seq}")


def test_a_runner_retries_a_lost_connection_and_ends_with_the_views_of_a_clean_run(ledger):
    recorded(ledger)
    stop = threading.Event()
    source = FlakySource(ledger, stop, 2, ConnectionError("server closed the connection unexpectedly"))
    store, clean = SQLiteViewStore(":memory:"), SQLiteViewStore(":memory:")
    try:
        result = ProjectionRunner(store, source, ledger.policies).run_forever(stop, idle=0.01)
        ProjectionRunner(clean, NotificationLogSource(ledger), ledger.policies).run_once()
        assert source.calls == 4 and result.events > 0
        assert store.dump() == {t: rows for t, rows in clean.dump().items()}
    finally:
        store.close()
        clean.close()


def test_a_runner_gives_up_after_max_failures_in_a_row(ledger):
    recorded(ledger)
    stop = threading.Event()
    source = FlakySource(ledger, stop, 5, ConnectionError("still away"))
    store = SQLiteViewStore(":memory:")
    try:
        with pytest.raises(ConnectionError):
            ProjectionRunner(store, source, ledger.policies).run_forever(stop, max_failures=2)
        assert source.calls == 2
    finally:
        store.close()


def test_an_error_that_needs_a_person_is_raised_at_once(ledger):
    recorded(ledger)
    stop = threading.Event()
    source = FlakySource(ledger, stop, 5, SourceError("RECORD_UNDECODABLE", "offset 7 is not a ledger event"))
    store = SQLiteViewStore(":memory:")
    try:
        with pytest.raises(SourceError):
            ProjectionRunner(store, source, ledger.policies).run_forever(stop)
        assert source.calls == 1
    finally:
        store.close()
