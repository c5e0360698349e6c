"""The three inbound feeds and what each record does to the ledger.

=========================  ==========================  =========================================
topic                      handler                     ledger command
=========================  ==========================  =========================================
``tax.payments.v1``        :class:`TaxPaymentsHandler`  ``record_tax_records`` (batch) or
                                                        ``record_tax_record`` (one at a time)
``registry.status.v1``     :class:`StatusHandler`       ``apply_status`` (grant / revoke 资助身份)
``registry.residents.v1``  :class:`ResidentsHandler`    ``apply_residence`` (grid, moves, deaths)
=========================  ==========================  =========================================

A payment for a person the ledger has never seen registers and enrolls them (先缴费后登记);
one that cannot (bad ID, unknown region) is parked as a rejection with its reason.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from eventsourcing.persistence import Tracking

from consumers.feed_consumer import BatchResult, FeedHandler, Message, TransientError, is_rejection
from events import codec
from events.inbound import (
    RESIDENT_RECORD,
    SUBSIDY_STATUS,
    TAX_PAYMENT,
    resident_record_from_avro,
    status_record_from_avro,
    tax_record_from_avro,
)
from ledger.application import Outcome, PreparedTaxRecords
from ledger.domain.errors import DomainError
from ledger.inbound_records import TaxPaymentRecord


def decode_value(value: bytes | None, reader: str) -> Mapping[str, Any]:
    """The Avro record in ``value`` read as ``reader`` (a DecodeError with its code otherwise)."""
    _name, record = codec.decode(value, reader)  # type: ignore[arg-type]  # None is refused with AVRO_BAD_MAGIC
    return record


class TaxPaymentsHandler(FeedHandler):
    """Tax-bureau payments, refunds and reversals (税务征收回传)."""

    feed = "tax"
    base_topic = "tax.payments.v1"

    def __init__(self, *args: Any, batch: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: True: the whole partition-batch through ``record_tax_records`` (several persons per
        #: transaction), then the rejections with the position. False: one transaction per record.
        self.batch = batch

    @staticmethod
    def record_of(message: Message) -> TaxPaymentRecord:
        return tax_record_from_avro(decode_value(message.value, TAX_PAYMENT))

    def prepare(self, messages: Sequence[Message], *, early_load: bool = True,
                ) -> tuple[dict[int, tuple[Any, Any]], PreparedTaxRecords] | None:
        """Per offset: the decoded record (or its DomainError) and what ``Ledger.prepare_tax_records``
        gives for it; and that list, which may carry the batch's load, started early.

        Reads nothing from the ledger itself: the runner does this while the previous batch is
        committed; the early load (``early_load``, PostgreSQL) runs on the writer thread after that commit.
        """
        if not self.batch:
            return None
        out: dict[int, tuple[Any, Any]] = {}
        decoded: list[tuple[Message, TaxPaymentRecord]] = []
        for message in messages:
            try:
                decoded.append((message, self.record_of(message)))
            except DomainError as e:
                out[message.offset] = (e, None)
        ready = self.ledger.prepare_tax_records([record for _m, record in decoded], prefetch=early_load)
        for (message, record), item in zip(decoded, ready):
            out[message.offset] = (record, item)
        return out, ready

    def _process(self, fresh: Sequence[Message], result: BatchResult) -> list[tuple[Message, DomainError]]:
        return self._begin_process(fresh, result, None, False)()

    def _begin_process(
        self, fresh: Sequence[Message], result: BatchResult, prepared: Any, background: bool
    ) -> Callable[[], list[tuple[Message, DomainError]]]:
        if not self.batch:
            rejected_each = self._apply_each(
                fresh, result,
                lambda m, t: self.ledger.record_tax_record(self.record_of(m), provenance=self.provenance(m), tracking=t),
            )
            return lambda: rejected_each
        if prepared is None or any(m.offset not in prepared[0] for m in fresh):
            prepared = self.prepare(fresh, early_load=False)
        by_offset, batch_prepared = prepared
        rejected: list[tuple[Message, DomainError]] = []
        decoded: list[tuple[Message, TaxPaymentRecord]] = []
        ready = PreparedTaxRecords()  # (those of the fresh records, with the batch's early load)
        ready.prefetch, ready.after_writes = batch_prepared.prefetch, batch_prepared.after_writes
        for message in fresh:
            record, item = by_offset[message.offset]
            if isinstance(record, DomainError):
                if not is_rejection(record):
                    raise TransientError(str(record)) from record
                rejected.append((message, record))
            else:
                decoded.append((message, record))
                ready.append(item)
        tracking = self.tracking(fresh[-1])
        if not decoded:
            rejected.sort(key=lambda item: item[0].offset)
            self.save_rejections(tracking, rejected)
            return lambda: rejected

        def refused(outcomes: list[Outcome]) -> list[tuple[Message, DomainError]] | None:
            """The batch's rejections, or None when a record failed for a reason of the moment (redo)."""
            out = list(rejected)
            for (message, _record), outcome in zip(decoded, outcomes):
                if outcome.error is not None:
                    if not is_rejection(outcome.error):
                        return None
                    out.append((message, outcome.error))
            return sorted(out, key=lambda item: item[0].offset)

        def finish(outcomes: list[Outcome]) -> list[Any] | None:
            found = refused(outcomes)
            return None if found is None else [self.rejection(m, e) for m, e in found]

        # The payments' events, the refused records' rejections and the position: one transaction
        # (unless the batch repeats a voucher or lost a race: then the earlier writes are
        # recognised as resends by their vouchers if the process dies before the position).
        pending = self.ledger.begin_tax_records([(r, self.provenance(m)) for m, r in decoded], tracking=tracking,
                                                finish=finish, prepared=ready, background=background)

        def complete() -> list[tuple[Message, DomainError]]:
            outcomes = pending.result()
            for (message, _record), outcome in zip(decoded, outcomes):
                if outcome.error is None:
                    self._count(outcome, result)
                elif not is_rejection(outcome.error):
                    raise TransientError(f"offset {message.offset}: {outcome.error}") from outcome.error
            found = refused(outcomes) or []
            if self.ledger.position_taken(tracking):  # written with the batch
                self.log_rejections(found)
            else:
                self.save_rejections(tracking, found)
            return found

        return complete


class StatusHandler(FeedHandler):
    """Subsidised-group statuses from civil affairs / rural revitalization (资助参保身份)."""

    feed = "status"
    base_topic = "registry.status.v1"

    def _apply(self, message: Message, tracking: Tracking) -> Outcome:
        record = status_record_from_avro(decode_value(message.value, SUBSIDY_STATUS))
        return self.ledger.apply_status(record, provenance=self.provenance(message), tracking=tracking)

    def _process(self, fresh: Sequence[Message], result: BatchResult) -> list[tuple[Message, DomainError]]:
        return self._apply_each(fresh, result, self._apply)


class ResidentsHandler(FeedHandler):
    """Household-registry records (户籍/常住人口): grid changes, moves, deaths."""

    feed = "residents"
    base_topic = "registry.residents.v1"

    def _apply(self, message: Message, tracking: Tracking) -> Outcome:
        record = resident_record_from_avro(decode_value(message.value, RESIDENT_RECORD))
        return self.ledger.apply_residence(record, provenance=self.provenance(message), tracking=tracking)

    def _process(self, fresh: Sequence[Message], result: BatchResult) -> list[tuple[Message, DomainError]]:
        return self._apply_each(fresh, result, self._apply)


HANDLERS: dict[str, type[FeedHandler]] = {
    h.feed: h for h in (TaxPaymentsHandler, StatusHandler, ResidentsHandler)
}

#: The consumer (and Kafka group) name of each feed unless told otherwise.
DEFAULT_CONSUMERS = {
    "tax": "ledger-tax-payments",
    "status": "ledger-registry-status",
    "residents": "ledger-registry-residents",
}
