"""Rules on a person's own facts, asked by the aggregate (write side) and the views (read side) alike.

The aggregate (:class:`ledger.domain.person.Person`) checks commands against its state, which
is the history (:mod:`ledger.domain.history`) every view derives from, folded by the same
handlers. The arithmetic both ask of it lives here, once:

* :func:`status_last_day`: the last day a subsidised status (参保资助身份) is valid,
  its revocation applied;
* :func:`payment_share`: one period's part of a payment that covers several
  (multi-month employee contributions, 多月缴费);
* :func:`counts_for_months`: does a payment count towards the contribution months
  (缴费月数);
* :func:`voucher_key` and :func:`payment_period_keys`: which voucher a payment is, and which
  periods it pays for.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Sequence

from ledger.domain.errors import DomainError
from ledger.domain.vocabulary import Scheme


def months_between(start: date, end: date) -> list[str]:
    """Month keys ``YYYY-MM`` from start's month to end's month, inclusive."""
    out, y, m = [], start.year, start.month
    while (y, m) <= (end.year, end.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def voucher_key(tax_office: str, voucher_no: str) -> str:
    """Idempotency key of a tax voucher (电子税票号码 + 征收税务机关)."""
    return f"{tax_office.strip()}|{voucher_no.strip()}"


def payment_period_keys(levy_item: str, start: date, end: date) -> list[str]:
    """Which ledger periods a payment covers: a coverage year, or employee months."""
    if end < start:
        raise DomainError("PERIOD_INVALID", f"period ends ({end}) before it starts ({start})")
    if levy_item == Scheme.RESIDENT:
        if start.year != end.year:
            raise DomainError(
                "PERIOD_INVALID",
                f"a resident contribution covers one coverage year; {start}..{end} spans several",
            )
        return [str(start.year)]
    return months_between(start, end)


def status_last_day(valid_to: date | None, revoked_from: date | None) -> date | None:
    """The last valid day of a subsidised status (资助身份有效期): its ``valid_to``, cut the day before a
    revocation takes effect (撤销); None: open-ended."""
    if revoked_from is None:
        return valid_to
    revoked_until = revoked_from - timedelta(days=1)
    return revoked_until if valid_to is None else min(valid_to, revoked_until)


def payment_share(total_fen: int, periods: Sequence[str], period: str) -> int:
    """One period's part of ``total_fen`` spread evenly over ``periods`` (分摊): the remainder in fen goes
    to the first periods, one fen each."""
    share, remainder = divmod(total_fen, len(periods))
    return share + (1 if periods.index(period) < remainder else 0)


def counts_for_months(amount_fen: int, refunded_fen: int, reversed_: bool) -> bool:
    """Does a payment count towards the contribution months (缴费月数): not reversed (冲正), not refunded in full."""
    return not reversed_ and refunded_fen < amount_fen


__all__ = ["counts_for_months", "months_between", "payment_period_keys", "payment_share", "status_last_day",
           "voucher_key"]
