"""The tax-statement consumer: ``tax.statements.v1`` into the reconciliation store, exactly once.

Headers and lines of the daily statements (税务对账单) arrive as Avro single-object
records (``cn.medins.tax.v1.TaxStatementHeader`` / ``TaxStatementLine``, keyed by
statement id). :class:`StatementsHandler` has the interface
:class:`consumers.feed_consumer.ConsumerRunner` drives (``position``, ``handle``, ``forget``),
so the same runner, Kafka source (:class:`consumers.kafka_io.KafkaSource`) and
in-process topics (:mod:`consumers.inprocess`) serve it. It differs from the ledger's
feed handlers in one way: what it writes is the reconciliation store, not the event
store, so its position lives there (``recon_positions``, name
``<consumer>:<topic>``), written in the same transaction as the lines it read
(:meth:`Reconciler.ingest <reconciliation.service.Reconciler.ingest>`).

Per partition-batch:

1. skip what the stored position says was taken already;
2. decode and check each record (:func:`reconciliation.intake.decode_values`),
   in ``decode_workers`` processes when asked -- the per-record work (Avro, ID check,
   keyed person id) is most of the CPU on a large statement;
3. ingest the batch with its position (one transaction); refused records (bad bytes,
   malformed voucher or amount, ``STATEMENT_CONFLICT``, ``LINE_NO_OUT_OF_RANGE``) are kept
   in ``recon_errors`` with their bytes;
4. produce the refused records to ``tax.statements.v1.dlq`` (headers ``error.code``,
   ``error.message``, ``source.*`` as the other feeds) and mark them sent; a crash in
   between resends them on the next batch (at least once).

:class:`StatementConsumer` is the long-running loop: statements, the ledger side
(:class:`~reconciliation.ledger_side_runner.LedgerSideRunner`), comparisons of the
statements completed, the INCOMPLETE time limit, and the results to
``reconciliation.results.v1``.
"""
from __future__ import annotations

import functools
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from threading import Event
from typing import Any

from consumers.dead_letters import seal
from events.pii import KeyRing
from consumers.feed_consumer import BatchResult, ConsumerRunner, Message, RecordSink, dead_letter_key, dead_letter_topic
from ledger.log import get_logger
from reconciliation.intake import decode_values
from reconciliation.service import Reconciler, Received

DEFAULT_CONSUMER = "ledger-tax-statements"
#: Below this many records a batch is decoded in the consumer's own process.
POOL_MIN_RECORDS = 400


@dataclass
class _Pending:
    """A batch being decoded, not stored yet."""

    topic: str
    partition: int
    messages: list[Message]
    parts: list[Any]  # decoded chunks, or futures of them
    expected: int | None  # the stored position the batch follows

    @property
    def last_offset(self) -> int:
        return self.messages[-1].offset


class StatementsHandler:
    """Statement records of one partition-batch into the reconciliation store (see the module docstring)."""

    feed = "statements"
    base_topic = "tax.statements.v1"

    def __init__(self, reconciler: Reconciler, *, id_key: bytes, dead_letters: RecordSink,
                 consumer: str = DEFAULT_CONSUMER, decode_workers: int = 0,
                 clock: Callable[[], datetime] | None = None, keys: KeyRing | None = None) -> None:
        if not id_key:
            raise ValueError("the identity key (LEDGER_ID_KEY) must not be empty")
        self.reconciler = reconciler
        self.store = reconciler.store
        self.id_key = id_key
        self.dead_letters = dead_letters
        #: Dead letters are sealed with the store's ring (the system's, given by the wiring).
        self.keys = keys or self.store.key_ring()
        self.consumer = consumer
        self.clock = clock or reconciler.clock
        self.decode_workers = decode_workers
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[tuple[str, int], _Pending] = {}
        self._repaired = False
        self.log = get_logger("reconciliation.consumer", consumer=consumer)

    # ------------------------------------------------------------ positions (ConsumerRunner's interface)
    def position_name(self, topic: str) -> str:
        return f"{self.consumer}:{topic}"

    def position(self, topic: str, partition: int) -> int | None:
        return self.store.positions(self.position_name(topic)).get(partition)

    # ------------------------------------------------------------ decoding
    def decode(self, values: Sequence[bytes | None]) -> list[tuple[Any, ...]]:
        return self._collect(self._submit(values))

    def _submit(self, values: Sequence[bytes | None]) -> list[Any]:
        """Start decoding (in the worker processes when there are any); :meth:`_collect` waits for it."""
        today: date = self.clock().date()
        if self.decode_workers < 1 or len(values) < POOL_MIN_RECORDS:
            return [decode_values(values, self.id_key, today)]
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.decode_workers, mp_context=multiprocessing.get_context("spawn"))
        size = -(-len(values) // (self.decode_workers * 2))
        job = functools.partial(decode_values, id_key=self.id_key, today=today)
        return [self._pool.submit(job, list(values[i:i + size])) for i in range(0, len(values), size)]

    @staticmethod
    def _collect(parts: list[Any]) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for part in parts:
            out += part if isinstance(part, list) else part.result()
        return out

    # ------------------------------------------------------------ one batch
    def handle(self, messages: Sequence[Message]) -> BatchResult:
        """Take one partition's batch.

        With decoding processes the handler runs one batch behind: it starts decoding
        this batch, then stores the previous one (decoded meanwhile) with its position, so
        the workers decode while the consumer reads the next batch from Kafka. The batch
        left pending is stored by :meth:`flush` (the loop calls it when a poll comes back
        short, i.e. when the consumer has caught up), by the next ``handle`` or, when the
        partition is revoked, by :meth:`forget`. A pending batch whose storing fails stays
        pending and is tried again first; after a crash the stored position makes the
        consumer read it again.
        """
        if not messages:
            raise ValueError("an empty batch has no position")
        topic, partition = messages[0].topic, messages[0].partition
        if any(m.topic != topic or m.partition != partition for m in messages):
            raise ValueError("a batch holds the messages of one partition")
        if not self._repaired:
            self.send_dead_letters()
            self._repaired = True
        pending = self._pending.get((topic, partition))
        stored = pending.last_offset if pending is not None else self.position(topic, partition)
        fresh = [m for m in messages if stored is None or m.offset > stored]
        result = BatchResult(topic, partition, messages[0].offset, messages[-1].offset)
        result.skipped = len(messages) - len(fresh)
        if not fresh:
            return result
        job = _Pending(topic, partition, fresh, self._submit([m.value for m in fresh]), stored)
        if self.decode_workers < 1:
            self._store(job, result)
            return result
        if pending is not None:
            self._store(pending, result)  # if this raises, ``pending`` stays and is tried again next time
        self._pending[(topic, partition)] = job
        return result

    def flush(self) -> list[BatchResult]:
        """Store every batch left pending (see :meth:`handle`)."""
        out = []
        for key in sorted(self._pending):
            job = self._pending[key]
            result = BatchResult(job.topic, job.partition, job.messages[0].offset, job.last_offset)
            self._store(job, result)
            del self._pending[key]
            out.append(result)
        return out

    def forget(self, topic: str, partition: int) -> None:
        """The partition went to another member: store what is pending for it, or leave it to the new owner."""
        job = self._pending.pop((topic, partition), None)
        if job is None:
            return
        try:
            self._store(job, BatchResult(topic, partition, job.messages[0].offset, job.last_offset))
        except Exception as err:  # the new owner reads it again from the stored position
            self.log.warning("pending_batch_dropped", topic=topic, partition=partition, error=str(err))

    def _store(self, job: _Pending, result: BatchResult) -> None:
        """Ingest a decoded batch with its position (one transaction), then send its dead letters."""
        decoded = self._collect(job.parts)
        items = [Received(d, f"{job.topic}/{job.partition}/{m.offset}", m.value)
                 for d, m in zip(decoded, job.messages)]
        ingested = self.reconciler.ingest(items, position=self.position_name(job.topic),
                                          moves={job.partition: (job.expected, job.last_offset)})
        result.applied += ingested.applied
        result.unchanged += ingested.unchanged
        result.rejected += [(int(source.rsplit("/", 1)[1]), code) for source, code in ingested.rejected]
        if ingested.new_errors:
            self.send_dead_letters()
        self.log.info("batch_processed", topic=job.topic, partition=job.partition,
                      first_offset=job.messages[0].offset, last_offset=job.last_offset, applied=ingested.applied,
                      unchanged=ingested.unchanged, rejected=len(ingested.rejected))

    def send_dead_letters(self) -> int:
        """Produce every refused record not yet dead-lettered to ``<topic>.dlq``; returns how many."""
        pending = self.store.errors(undelivered=True)
        if not pending:
            return 0
        try:
            for e in pending:
                topic, partition, offset = e["source"].rsplit("/", 2)
                key = dead_letter_key(topic, int(partition), int(offset))
                value, headers = seal(e["raw"] or b"", keys=self.keys, headers=[  # encrypted: dead_letters.seal
                    ("error.code", e["code"].encode()), ("error.message", e["message"].encode()),
                    ("source.topic", topic.encode()), ("source.partition", partition.encode()),
                    ("source.offset", offset.encode())])
                self.dead_letters.send(dead_letter_topic(topic), key=key, value=value, headers=headers)
            self.dead_letters.flush()
        except Exception as err:  # kept in recon_errors; the next batch sends them again
            self.log.warning("dead_letters_not_acknowledged", count=len(pending), error=str(err))
            return 0
        with self.store.transaction():
            self.store.mark_dead_lettered([e["id"] for e in pending])
        return len(pending)

    def close(self) -> None:
        try:
            self.flush()
        except Exception as err:  # read again from the stored position next time
            self.log.warning("pending_batches_dropped", error=str(err))
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


@dataclass
class LoopResult:
    batches: list[BatchResult] = field(default_factory=list)
    ledger_rows: int = 0
    reconciled: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    published: int = 0

    @property
    def idle(self) -> bool:
        return not (self.batches or self.ledger_rows or self.reconciled or self.incomplete or self.published)


class StatementConsumer:
    """The reconciliation process: statements in, ledger side caught up, comparisons, time limits, results out."""

    def __init__(self, runner: ConsumerRunner | None, reconciler: Reconciler, *, ledger_side: Any = None,
                 publisher: Any = None) -> None:
        self.runner = runner
        self.reconciler = reconciler
        self.ledger_side = ledger_side
        self.publisher = publisher
        self.log = get_logger("reconciliation.consumer.loop")

    def run_once(self, timeout: float | None = None) -> LoopResult:
        out = LoopResult()
        if self.runner is not None:
            out.batches = self.runner.run_once(timeout)
            polled = sum(b.last_offset - b.first_offset + 1 for b in out.batches)
            flush = getattr(self.runner.handler, "flush", None)
            if flush is not None and polled < self.runner.max_records:  # caught up: store what is pending
                out.batches += flush()
        if self.ledger_side is not None:
            out.ledger_rows = self.ledger_side.run_once().rows
        out.reconciled = self.reconciler.reconcile_pending()
        out.incomplete = self.reconciler.check_incomplete()
        if self.publisher is not None:
            out.published = self.publisher.publish_pending()
        return out

    def run(self, stop: Event | None = None, *, idle_stop: float | None = None, max_backoff: float = 30.0) -> None:
        """Until ``stop``; a failing round is retried with backoff. ``idle_stop``: end after that many idle seconds."""
        stop = stop or Event()
        failures = 0
        idle_since = time.monotonic()
        while not stop.is_set():
            try:
                result = self.run_once()
            except Exception as err:
                failures += 1
                self.log.error("round_failed_will_retry", error=str(err), error_type=type(err).__name__,
                               failures=failures)
                stop.wait(min(max_backoff, 0.5 * 2 ** (failures - 1)))
                continue
            failures = 0
            if not result.idle:
                idle_since = time.monotonic()
            elif idle_stop is not None and time.monotonic() - idle_since >= idle_stop:
                return

    def close(self) -> None:
        if self.runner is not None:
            handler = self.runner.handler
            self.runner.close()
            if hasattr(handler, "close"):
                handler.close()


__all__ = ["DEFAULT_CONSUMER", "LoopResult", "StatementConsumer", "StatementsHandler"]
