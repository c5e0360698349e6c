"""Keeps the ledger side (``recon_ledger_payments``) up to date from the ledger's events.

The same sources as the other views (:mod:`projections.sources`): the ledger's
notification log (embedded default, position = notification id) or Kafka
``ledger.events.v1`` (position per partition = last applied offset). For each batch:

1. the payment events' rows (:func:`reconciliation.ledger_side.payment_rows`;
   originals of refunds and reversals read from the store in one query);
2. in ONE transaction: the rows not stored yet, the new position (compare and set,
   under the name ``ledger:<source>``), and -- through
   :meth:`Reconciler.ledger_changed <reconciliation.service.Reconciler.ledger_changed>`
   -- the comparison of every scope whose current statement the new rows touch, so a
   late payment resolves its MISSING_IN_LEDGER discrepancy in the transaction that
   records it, with a pointer to its event;
3. then (Kafka) the offsets are committed to the group, for monitoring only.

A re-delivered event makes the same row, which is already stored: nothing happens.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ledger.log import get_logger

from ledger.domain.history import event_type
from reconciliation.ledger_side import PAYMENT_EVENTS, original_keys, payment_rows
from reconciliation.service import Reconciler
from reconciliation.store import ReconciliationStore
from projections.sources import Batch, Source


@dataclass
class LedgerSideResult:
    source: str
    batches: int = 0
    consumed: int = 0
    rows: int = 0  # new ledger rows stored
    scopes: int = 0  # scopes compared again
    seconds: float = 0.0
    positions: dict[int, int] = field(default_factory=dict)


class LedgerSideRunner:
    """One source's payment events into one reconciliation store (one runner per store and source)."""

    def __init__(self, store: ReconciliationStore, source: Source, reconciler: Reconciler, *,
                 batch_size: int = 2000) -> None:
        self.store = store
        self.source = source
        self.reconciler = reconciler
        self.batch_size = batch_size
        self.name = f"ledger:{source.name}"
        self.log = get_logger("reconciliation.ledger_side", source=source.name)

    def positions(self) -> dict[int, int]:
        return self.store.positions(self.name)

    def apply(self, batch: Batch, result: LedgerSideResult | None = None) -> int:
        """Store one batch's new rows with its position (one transaction); the number of new rows."""
        events = [e for e in batch.events if event_type(e) in PAYMENT_EVENTS]
        known = self.store.ledger_rows(sorted(original_keys(events))) if events else {}
        rows = payment_rows(events, known.get)
        with self.store.transaction():
            new = self.store.put_ledger_rows(list(rows.values()), source=self.source.name)
            self.store.move_positions(self.name, batch.positions, self.reconciler.clock())
            scopes = self.reconciler.ledger_changed(new, source=self.source.name)
        if batch.positions:
            self.source.commit({p: end for p, (_, end) in batch.positions.items()})
        if result is not None:
            result.rows += len(new)
            result.scopes += len(scopes)
        return len(new)

    def run_once(self) -> LedgerSideResult:
        """Apply everything the source holds now; returns when caught up."""
        started = time.perf_counter()
        until = self.source.end()
        stored = self.positions()
        after: dict[int, Any] = {p: stored.get(p) for p in until}
        result = LedgerSideResult(self.source.name)
        for batch in self.source.read(after, until, max_records=self.batch_size):
            self.apply(batch, result)
            result.batches += 1
            result.consumed += batch.consumed
        result.seconds = time.perf_counter() - started
        result.positions = self.positions()
        if result.batches:
            self.log.info("ledger_side_caught_up", batches=result.batches, rows=result.rows, scopes=result.scopes,
                          seconds=round(result.seconds, 3))
        return result

    def run_forever(self, stop: threading.Event, *, idle: float = 0.5) -> None:
        while not stop.is_set():
            if not self.run_once().batches:
                stop.wait(idle)


__all__ = ["LedgerSideResult", "LedgerSideRunner"]
