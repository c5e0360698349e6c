"""Wiring of reconciliation: which store, which sources, built the same way by every entrypoint.

* :func:`reconciliation_store` -- PostgreSQL (``LEDGER_PERSISTENCE=postgres``, the
  ``POSTGRES_*`` schema, next to the views), else the SQLite file
  ``var/reconciliation.sqlite`` (``LEDGER_RECON_PATH`` to move it), or in memory for the
  in-memory ledger; :func:`store_of` keeps one per system;
* :func:`statement_due_days` -- ``LEDGER_RECON_STATEMENT_DUE_DAYS``: a day with ledger receipts
  and no statement that many days later is ``STATEMENT_MISSING`` (default 1);
* :func:`reconciler` -- the service; ``LEDGER_RECON_INCOMPLETE_AFTER_HOURS`` sets the
  time limit after which a statement that never completes is INCOMPLETE (default 2);
* :func:`ledger_side_runner` -- the ledger side, from the notification log (``"log"``,
  embedded default) or Kafka ``ledger.events.v1`` (``"kafka"``);
* :func:`statement_consumer` -- the whole reconciliation process
  (:class:`reconciliation.consumer.StatementConsumer`): Kafka (or in-process) statements,
  ledger side, comparisons, time limit, results to ``reconciliation.results.v1``.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from events.pii import KeyRing
from infra.settings import Settings, recon_path, setting
from consumers.inprocess import InProcessSource
from consumers.feed_consumer import ConsumerRunner
from projections.factory import event_source
from reconciliation.consumer import DEFAULT_CONSUMER, StatementConsumer, StatementsHandler

from reconciliation.results import RESULTS_TOPIC, ResultsPublisher
from reconciliation.ledger_side_runner import LedgerSideRunner
from reconciliation.service import DEFAULT_INCOMPLETE_AFTER, Reconciler
from reconciliation.store import (
    PostgresReconciliationStore,
    ReconciliationStore,
    SQLiteReconciliationStore,
)

STATEMENTS_TOPIC = "tax.statements.v1"
INCOMPLETE_ENV = "LEDGER_RECON_INCOMPLETE_AFTER_HOURS"
#: The statement consumer's Kafka settings: big fetches (a statement is many small records).
KAFKA_FETCH = {"fetch_max_bytes": 50 * 1024 * 1024, "max_partition_fetch_bytes": 10 * 1024 * 1024}


def reconciliation_store(settings: Settings, keys: KeyRing | None = None) -> ReconciliationStore:
    """The store for these settings (tables created if missing), its refused records encrypted with
    ``keys`` (the system's ring; else the settings'); the caller closes it."""
    if settings.persistence == "postgres":
        store: ReconciliationStore = PostgresReconciliationStore(settings.postgres)
    elif settings.persistence == "memory":
        store = SQLiteReconciliationStore(":memory:")
    else:
        store = SQLiteReconciliationStore(settings.recon_file())
    store.keys = keys or KeyRing.for_settings(settings)
    return store


def store_of(system: Any) -> ReconciliationStore:
    """The system's reconciliation store, opened on first use and closed with the system."""
    store = getattr(system, "_recon_store", None)
    if store is None:
        store = reconciliation_store(system.settings, system.keys)
        object.__setattr__(system, "_recon_store", store)
        system.closers.append(store.close)
    return store


def incomplete_after(env: dict[str, str] | None = None) -> timedelta:
    """``LEDGER_RECON_INCOMPLETE_AFTER_HOURS`` (``SETTING_INVALID`` unless above zero), else the default."""
    hours = setting(INCOMPLETE_ENV, env)
    return DEFAULT_INCOMPLETE_AFTER if hours is None else timedelta(hours=hours)


STATEMENT_DUE_ENV = "LEDGER_RECON_STATEMENT_DUE_DAYS"
DEFAULT_STATEMENT_DUE_DAYS = 1


def statement_due_days(env: dict[str, str] | None = None) -> int:
    """``LEDGER_RECON_STATEMENT_DUE_DAYS``: days after a payment date its statement may take (default 1)."""
    days = setting(STATEMENT_DUE_ENV, env)
    return DEFAULT_STATEMENT_DUE_DAYS if days is None else int(days)


def reconciler(system: Any, *, store: ReconciliationStore | None = None, clock: Any = None,
               incomplete: timedelta | None = None) -> Reconciler:
    kwargs: dict[str, Any] = {"incomplete_after": incomplete or incomplete_after()}
    if clock is not None:
        kwargs["clock"] = clock
    return Reconciler(store if store is not None else store_of(system), **kwargs)


def ledger_side_runner(system: Any, recon: Reconciler, *, source: Any = "log",
                       batch_size: int = 2000) -> LedgerSideRunner:
    src = event_source(system, source, group_id="ledger-reconciliation") if isinstance(source, str) else source
    if isinstance(source, str):
        system.closers.append(src.close)
    return LedgerSideRunner(recon.store, src, recon, batch_size=batch_size)


def statement_consumer(system: Any, recon: Reconciler, *, group: str | None = None, source: Any = None,
                       sink: Any = None, decode_workers: int = 0, max_records: int = 5000,
                       ledger_source: Any = "log", publish: bool = True, poll_timeout: float = 1.0) -> Any:
    """The reconciliation process for this system (Kafka when configured, else the in-process topics)."""
    name = group or DEFAULT_CONSUMER
    sink = sink if sink is not None else system.record_sink()
    handler = StatementsHandler(recon, id_key=system.settings.id_key, dead_letters=sink, consumer=name,
                                decode_workers=decode_workers, keys=system.keys)
    if source is None:
        if system.settings.kafka_bootstrap_servers:
            from consumers.kafka_io import KafkaSource

            source = KafkaSource(system.settings.kafka_bootstrap_servers, group_id=name, max_poll_records=max_records,
                                 **KAFKA_FETCH)
        else:
            source = InProcessSource(system.inprocess_broker(), group=name)
    # The runner takes any handler with position / handle / forget (StatementsHandler is not a FeedHandler).
    runner = ConsumerRunner(handler, source, topics=[system.topic(STATEMENTS_TOPIC)],  # type: ignore[arg-type]
                            max_records=max_records, poll_timeout=poll_timeout)
    ledger_side = None if ledger_source is None else ledger_side_runner(system, recon, source=ledger_source)
    publisher = ResultsPublisher(recon.store, sink, topic=system.topic(RESULTS_TOPIC)) if publish else None
    loop = StatementConsumer(runner, recon, ledger_side=ledger_side, publisher=publisher)
    system.closers.append(loop.close)
    return loop


__all__ = ["INCOMPLETE_ENV", "KAFKA_FETCH", "STATEMENTS_TOPIC", "incomplete_after", "ledger_side_runner",
           "reconciler", "reconciliation_store", "statement_due_days", "recon_path", "statement_consumer", "store_of"]
