"""The ledger side of the comparison: every voucher the ledger recorded, one row each (台账缴费明细).

A pure projection of the person events ``ContributionPaid``, ``ContributionRefunded``,
``ContributionReversed`` and ``LateFeePaid`` (levy item LATE_FEE) (either event shape: the library's domain events from the
notification log, or the consumer envelopes of ``ledger.events.v1``) into
:class:`~reconciliation.model.LedgerPayment` rows keyed by
``(tax_office, voucher_no)`` -- the ledger's own idempotency key, so a voucher is one
row whatever happens.

* A payment's row: its region, levy item, period, amount, person, and business date =
  the Beijing date of ``paid_at``.
* A refund's or reversal's row is a voucher of its own, on the day it happened
  (``refunded_at`` / ``reversed_at``), with a negative signed amount; region, levy item,
  period and person are those of the original payment it names (the events do not
  repeat them). The ledger never records a correction without its original, and one
  person's events arrive in order, so the original's row is already known: in the same
  batch, or through ``known`` (the stored rows).

Rows never change once written: a re-delivered event gives the identical row, which
is how the adapter (:mod:`reconciliation.ledger_side_runner`) recognises it.
"""
from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from ledger.domain.person import business_date

from ledger.domain.history import event_type, ProjectionError, value
from reconciliation.model import LedgerPayment

PAYMENT_EVENTS = frozenset({"ContributionPaid", "ContributionRefunded", "ContributionReversed", "LateFeePaid"})

Known = Callable[[tuple[str, str]], "LedgerPayment | None"]


def _text(v: Any) -> str:
    return str(v.value) if hasattr(v, "value") else str(v)


def payment_row(event: Any, known: Known) -> LedgerPayment | None:
    """The row one person event makes (None: not a payment event)."""
    kind = event_type(event)
    if kind not in PAYMENT_EVENTS:
        return None
    person_id = str(value(event, "person_id"))
    common = {"event_id": str(value(event, "event_id")), "event_type": kind, "person_id": person_id,
              "person_version": int(value(event, "version"))}
    if kind == "ContributionPaid":
        paid_at = value(event, "paid_at")
        return LedgerPayment(
            tax_office=value(event, "tax_office"), voucher_no=value(event, "voucher_no"),
            business_date=business_date(paid_at), region_code=value(event, "region_code"),
            levy_item=_text(value(event, "levy_item")), kind="PAYMENT", amount_fen=int(value(event, "amount_fen")),
            paid_at=paid_at, credited_on=value(event, "credited_on"), period_start=value(event, "period_start"),
            period_end=value(event, "period_end"), original_tax_office=None, original_voucher_no=None, **common,
        )
    if kind == "LateFeePaid":  # a late fee (滞纳金) collected: levy item LATE_FEE, its period the month it is for
        paid_at = value(event, "paid_at")
        year, month = (int(x) for x in str(value(event, "period")).split("-"))
        return LedgerPayment(
            tax_office=value(event, "tax_office"), voucher_no=value(event, "voucher_no"),
            business_date=business_date(paid_at), region_code=value(event, "region_code"),
            levy_item="LATE_FEE", kind="PAYMENT", amount_fen=int(value(event, "amount_fen")),
            paid_at=paid_at, credited_on=None, period_start=date(year, month, 1),
            period_end=date(year, month, calendar.monthrange(year, month)[1]), original_tax_office=None,
            original_voucher_no=None, **common,
        )
    refund = kind == "ContributionRefunded"
    original_key = (value(event, "original_tax_office"), value(event, "original_voucher_no"))
    original = known(original_key)
    if original is None:
        raise ProjectionError("PAYMENT_UNKNOWN", f"person {person_id}: {kind} of voucher {original_key[1]} "
                                                 f"(office {original_key[0]}) whose payment was never projected")
    at = value(event, "refunded_at" if refund else "reversed_at")
    return LedgerPayment(
        tax_office=value(event, "tax_office"),
        voucher_no=value(event, "refund_voucher_no" if refund else "reversal_voucher_no"),
        business_date=business_date(at), region_code=original.region_code, levy_item=original.levy_item,
        kind="REFUND" if refund else "REVERSAL", amount_fen=int(value(event, "amount_fen")), paid_at=at,
        credited_on=None, period_start=original.period_start, period_end=original.period_end,
        original_tax_office=original_key[0], original_voucher_no=original_key[1], **common,
    )


def payment_rows(events: Iterable[Any], known: Known) -> dict[tuple[str, str], LedgerPayment]:
    """The rows a batch of events makes, by voucher key, in event order (an earlier row of the batch is known)."""
    rows: dict[tuple[str, str], LedgerPayment] = {}

    def lookup(key: tuple[str, str]) -> LedgerPayment | None:
        return rows.get(key) or known(key)

    for event in events:
        row = payment_row(event, lookup)
        if row is not None:
            rows[row.key] = row
    return rows


def original_keys(events: Iterable[Any]) -> set[tuple[str, str]]:
    """The original vouchers the corrections in ``events`` name (to load their rows in one query)."""
    return {(value(e, "original_tax_office"), value(e, "original_voucher_no"))
            for e in events if event_type(e) in ("ContributionRefunded", "ContributionReversed")}


__all__ = ["PAYMENT_EVENTS", "original_keys", "payment_row", "payment_rows"]
