"""Publishing reconciliation results to ``reconciliation.results.v1`` (JSON, from the outbox).

Every change the :class:`~reconciliation.service.Reconciler` makes is
queued in ``recon_outbox`` in the same transaction as the change itself; this
publisher sends the queue in order and marks what the broker acknowledged (at least
once; ``event_id`` is deterministic, so a consumer drops a repeat by it).

Format: **JSON** (UTF-8), not Avro. The results are the ledger's report to clerks,
dashboards and the finance side, not a contract other systems write; their shape
follows the report (discrepancy with details, history step, tie-out) and evolves with
it, and a JSON reader needs no schema to show them. Every value carries
``"schema": "medins.reconciliation.result.v1"`` and ``"type"``:

=========================  ==================================================================
``StatementReconciled``    ``result``: tie-out per levy item and overall, the arithmetic, counts
                           per class, header total check (sent again only when it changes)
``DiscrepancyFound``,      ``discrepancy`` (id, class, state, voucher, figures, details,
``DiscrepancyChanged``,    explanation, resolution pointer) and ``history`` (the step: action,
``DiscrepancyReopened``,   state, pointer to the ledger event or statement that caused it, note,
``DiscrepancyResolved``,   user)
``DiscrepancyExplained``
``StatementSuperseded``    a corrected statement of the same scope replaced it
``StatementRecordRejected``  ``error``: a record refused (malformed, ``STATEMENT_CONFLICT``,
                           ``LINE_NO_OUT_OF_RANGE``); also on ``tax.statements.v1.dlq``
``StatementProblem``       ``error``: ``HEADER_TOTAL_MISMATCH`` or ``STATEMENT_INCOMPLETE``
=========================  ==================================================================

Key: the scope ``"<business date>|<tax office>|<region>"`` (a refused record's statement
id or position), so one scope's results stay in order on one partition. Headers:
``type`` and ``event_id``.
"""
from __future__ import annotations

import json
from typing import Any

from ledger.log import get_logger

from reconciliation.store import ReconciliationStore

RESULTS_TOPIC = "reconciliation.results.v1"


class ResultsPublisher:
    """Sends the outbox to a record sink (a Kafka producer, or the in-process broker)."""

    def __init__(self, store: ReconciliationStore, sink: Any, *, topic: str, batch_size: int = 500) -> None:
        self.store = store
        self.sink = sink
        self.topic = topic
        self.batch_size = batch_size
        self.log = get_logger("reconciliation.results", topic=topic)

    def publish_pending(self) -> int:
        """Send everything queued; returns how many results were sent."""
        sent = 0
        while True:
            batch = self.store.outbox(pending=True, limit=self.batch_size)
            if not batch:
                return sent
            for _seq, event_id, key, value in batch:
                kind = json.loads(value).get("type", "")
                self.sink.send(self.topic, key=key.encode(), value=value.encode("utf-8"),
                               headers=[("type", kind.encode()), ("event_id", event_id.encode())])
            self.sink.flush()  # raises unless every record was acknowledged
            with self.store.transaction():
                self.store.mark_published([seq for seq, *_ in batch])
            sent += len(batch)
            self.log.info("results_published", count=len(batch))


__all__ = ["RESULTS_TOPIC", "ResultsPublisher"]
