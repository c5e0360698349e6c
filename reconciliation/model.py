"""The vocabulary of reconciliation (对账): statements, the ledger's payment rows, discrepancies.

Which day a statement is about
------------------------------
A daily statement (税务对账单) covers one **business date**, one tax office and one
insured region: its *scope*. The business date is the **payment date** -- the Beijing
(China Standard Time) date of ``paid_at`` (缴款时间), the same date the ledger gives a
``ContributionPaid`` as its ``effective_date`` -- and not the treasury credit date
(入库日期). Why:

* every record has a payment time, but the credit date is often unknown when the
  record reaches the ledger (``credited_on`` is optional in both contracts), so rows
  keyed by credit date would have nowhere to go;
* the collection statement answers "what did the office collect that day"; what the
  treasury credited is reconciled with the treasury (国库对账), against ``credited_on``;
* a refund (退费) or reversal (冲正) belongs to the day it happened (its own
  ``refunded_at`` / ``reversed_at``), not to the day of the payment it corrects.

A statement line whose own ``paid_at`` falls on another Beijing date than the header's
is still compared under the header's scope; the difference is reported.

Amounts
-------
Lines and ledger rows carry a positive ``amount_fen`` and a kind; the *signed* amount
is ``+amount`` for a payment and ``-amount`` for a refund or reversal, and every total
(statement header, ledger, discrepancy) is a sum of signed amounts, in fen.

Discrepancy classes
-------------------
Each voucher (number + tax office) of a scope is classified once; the first rule that
holds wins (see :mod:`reconciliation.compare` for the exact order):

==========================  ==================================================================
DUPLICATE_VOUCHER           the voucher is on more than one line of the statement (each line
                            after the first), or already on the current statement of the scope
                            where the ledger has it
PERSON_OR_REGION_MISMATCH   the ledger has the voucher for another person or another region
BUSINESS_DATE_MISMATCH      the ledger has the voucher under another payment date
REFUND_WITHOUT_ORIGINAL     a refund or reversal the ledger does not have, whose original
                            voucher is unknown (to the ledger and to every current statement)
                            or not named at all
MISSING_IN_LEDGER           on the statement, never recorded by the ledger
MISSING_IN_STATEMENT        recorded by the ledger in this scope, not on the statement
AMOUNT_MISMATCH             both have it; the signed amounts differ (amount or direction)
DETAIL_MISMATCH             both have it with the same signed amount; levy item, kind, period
                            or payment date differ (money counted under another scheme or year)
==========================  ==================================================================

The last two of the first list and DETAIL_MISMATCH go beyond the six classes of the
domain notes: without them a voucher recorded on another day, or for another levy item,
would leave the totals unexplained or be filed under a class that says something false.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from ledger.domain.errors import DomainError
from ledger.domain.person import business_date
from ledger.policy.book import default_value_limits
from ledger.policy.rules import check_amount_fen

_NAMESPACE = uuid5(NAMESPACE_URL, "urn:medins-ledger:reconciliation")

#: Direction of each kind of collection record.
SIGN = {"PAYMENT": 1, "REFUND": -1, "REVERSAL": -1}
KINDS = tuple(SIGN)
LEVY_ITEMS = ("RESIDENT", "EMPLOYEE", "LATE_FEE")

# An e-tax voucher number (电子税票号码) is 18-20 digits in practice; the ledger takes any
# non-empty number, so only what cannot be a voucher at all is refused here.
_VOUCHER = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,39}")
_STATEMENT_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.:-]{0,63}")
_TAX_OFFICE = re.compile(r"[0-9A-Za-z]{1,20}")
_REGION = re.compile(r"[0-9]{6}")


class ReconciliationError(DomainError):
    """A reconciliation request that cannot be done as asked (unknown statement, resolved discrepancy...)."""


class DiscrepancyClass(StrEnum):
    """Kinds of difference between a tax statement and the ledger (对账差异类型)."""

    MISSING_IN_LEDGER = "MISSING_IN_LEDGER"  # 单边账: 税务有, 台账无
    MISSING_IN_STATEMENT = "MISSING_IN_STATEMENT"  # 单边账: 台账有, 税务无
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"  # 金额不符
    DUPLICATE_VOUCHER = "DUPLICATE_VOUCHER"  # 重复税票
    PERSON_OR_REGION_MISMATCH = "PERSON_OR_REGION_MISMATCH"  # 人员或参保地不符
    REFUND_WITHOUT_ORIGINAL = "REFUND_WITHOUT_ORIGINAL"  # 退费/冲正无原票
    BUSINESS_DATE_MISMATCH = "BUSINESS_DATE_MISMATCH"  # 缴款日期不符
    DETAIL_MISMATCH = "DETAIL_MISMATCH"  # 征收品目/所属期/类型不符


class DiscrepancyState(StrEnum):
    OPEN = "OPEN"
    EXPLAINED = "EXPLAINED"  # a clerk wrote why (note + who); still there
    RESOLVED = "RESOLVED"  # gone: a later ledger event or statement removed it (pointer kept)


class StatementState(StrEnum):
    RECEIVING = "RECEIVING"  # header and/or lines missing
    COMPLETE = "COMPLETE"  # every line of the header's count is in; waiting to be compared
    RECONCILED = "RECONCILED"  # compared; the current statement of its scope
    INCOMPLETE = "INCOMPLETE"  # still not complete after the time limit; not compared
    SUPERSEDED = "SUPERSEDED"  # a later statement of the same scope (a correction) replaced it


#: States of a statement that is the one compared for its scope.
CURRENT_STATES = (StatementState.RECONCILED.value,)


@dataclass(frozen=True, slots=True, order=True)
class Scope:
    """What one statement covers: business (payment) date, tax office, insured region."""

    business_date: date
    tax_office: str
    region_code: str

    @property
    def key(self) -> str:
        return f"{self.business_date.isoformat()}|{self.tax_office}|{self.region_code}"

    def as_dict(self) -> dict[str, str]:
        return {"business_date": self.business_date.isoformat(), "tax_office": self.tax_office,
                "region_code": self.region_code}


@dataclass(frozen=True, slots=True)
class StatementHeader:
    """The head of a statement (对账单): its scope and the totals its lines must add up to."""

    statement_id: str
    business_date: date
    tax_office: str
    region_code: str
    line_count: int
    total_amount_fen: int

    @property
    def scope(self) -> Scope:
        return Scope(self.business_date, self.tax_office, self.region_code)

    @property
    def digest(self) -> str:
        return content_digest(self.statement_id, self.business_date.isoformat(), self.tax_office,
                              self.region_code, self.line_count, self.total_amount_fen)


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One line of a statement; the person is kept as the ledger's person id and a masked ID number."""

    statement_id: str
    line_no: int
    voucher_no: str
    id_type: str
    masked_id: str
    person_id: str
    levy_item: str
    period_start: date
    period_end: date
    amount_fen: int
    paid_at: datetime
    credited_on: date | None
    kind: str
    original_voucher_no: str | None
    original_tax_office: str | None
    digest: str = ""
    source: str = ""

    @property
    def signed_fen(self) -> int:
        return SIGN[self.kind] * self.amount_fen

    @property
    def business_date(self) -> date:
        return business_date(self.paid_at)


@dataclass(frozen=True, slots=True)
class LedgerPayment:
    """One voucher as the ledger recorded it (payment, refund or reversal): a row of the ledger side."""

    tax_office: str
    voucher_no: str
    business_date: date
    region_code: str
    levy_item: str
    person_id: str
    kind: str
    amount_fen: int
    paid_at: datetime
    credited_on: date | None
    period_start: date
    period_end: date
    original_tax_office: str | None
    original_voucher_no: str | None
    event_id: str
    event_type: str
    person_version: int

    @property
    def signed_fen(self) -> int:
        return SIGN[self.kind] * self.amount_fen

    @property
    def key(self) -> tuple[str, str]:
        return (self.tax_office, self.voucher_no)

    @property
    def scope(self) -> Scope:
        return Scope(self.business_date, self.tax_office, self.region_code)

    def pointer(self, source: str | None = None) -> dict[str, Any]:
        """Where this row came from: the ledger event (what resolves a discrepancy points here)."""
        out = {"kind": "ledger_event", "event_id": self.event_id, "event_type": self.event_type,
               "person_id": self.person_id, "version": self.person_version,
               "voucher": f"{self.tax_office}|{self.voucher_no}"}
        if source:
            out["source"] = source
        return out


@dataclass(frozen=True)
class Discrepancy:
    """One difference found in a scope, with what it does to the totals (statement minus ledger)."""

    id: str
    scope: Scope
    statement_id: str
    klass: DiscrepancyClass
    tax_office: str
    voucher_no: str
    occurrence: int
    line_no: int | None
    statement_fen: int | None  # the line's signed amount (None: no line)
    ledger_fen: int | None  # the ledger row's signed amount, when the row is in this scope
    delta_count: int
    delta_fen: int
    #: levy item -> (count, fen) contribution to (statement - ledger) of that scheme
    by_scheme: dict[str, tuple[int, int]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def values(self) -> dict[str, Any]:
        """What a later run compares to tell whether the discrepancy changed (plain JSON types)."""
        return {
            "statement_id": self.statement_id, "line_no": self.line_no, "statement_fen": self.statement_fen,
            "ledger_fen": self.ledger_fen, "delta_count": self.delta_count, "delta_fen": self.delta_fen,
            "by_scheme": {k: list(v) for k, v in sorted(self.by_scheme.items())}, "details": self.details,
        }


def discrepancy_id(scope: Scope, klass: str, tax_office: str, voucher_no: str, occurrence: int = 1) -> str:
    """Deterministic id: the same difference found again (a re-run, a corrected statement) is the same record.

    The scope, not the statement id, is in the key, so a corrected statement for the
    same day, office and region finds (and resolves) the discrepancies of the one it replaces.
    """
    return str(uuid5(_NAMESPACE, f"discrepancy|{scope.key}|{klass}|{tax_office}|{voucher_no}|{occurrence}"))


def derived_id(*parts: Any) -> str:
    """A deterministic id for an error, a history entry or a published result."""
    return str(uuid5(_NAMESPACE, "|".join(str(p) for p in parts)))


def content_digest(*parts: Any) -> str:
    return hashlib.blake2b("\x1f".join("" if p is None else str(p) for p in parts).encode(), digest_size=16).hexdigest()


# --------------------------------------------------------------------------- checking input
def _err(code: str, message: str, **details: Any) -> DomainError:
    return DomainError(code, message, **details)


def check_statement_id(value: Any) -> str:
    if not isinstance(value, str) or not _STATEMENT_ID.fullmatch(value):
        raise _err("STATEMENT_ID_INVALID", f"statement id {str(value)[:70]!r} is empty or has characters a "
                                           "statement id cannot have")
    return value


def check_voucher(value: Any, field_name: str = "voucher_no") -> str:
    if not isinstance(value, str) or not _VOUCHER.fullmatch(value):
        raise _err("VOUCHER_MALFORMED", f"{field_name} {str(value)[:50]!r} is not an e-tax voucher number "
                                        "(letters and digits, at most 40)", field=field_name)
    return value


def check_amount(value: Any, field_name: str = "amount_fen") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _err("AMOUNT_INVALID", f"{field_name} must be a whole number of fen above zero (the kind says "
                                     f"the direction); got {value!r}", field=field_name)
    # The ledger's one value gate: a statement line above the policy ceiling is refused (AMOUNT_TOO_LARGE)
    # like the payment it should match, so no day's sum can overflow.
    return check_amount_fen(value, field_name, default_value_limits())


def header_from_record(record: dict[str, Any]) -> StatementHeader:
    """A decoded ``TaxStatementHeader`` checked (codes: STATEMENT_ID_INVALID, TAX_OFFICE_INVALID,
    REGION_INVALID, LINE_COUNT_INVALID)."""
    statement_id = check_statement_id(record.get("statement_id"))
    office = record.get("tax_office")
    if not isinstance(office, str) or not _TAX_OFFICE.fullmatch(office):
        raise _err("TAX_OFFICE_INVALID", f"tax office {str(office)[:30]!r} is not a tax office code")
    region = record.get("region_code")
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise _err("REGION_INVALID", f"region code {str(region)[:30]!r} is not 6 digits")
    count = record.get("line_count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise _err("LINE_COUNT_INVALID", f"line count {count!r} must be zero or more")
    total = record.get("total_amount_fen")
    if isinstance(total, bool) or not isinstance(total, int):
        raise _err("AMOUNT_INVALID", f"total_amount_fen {total!r} must be a whole number of fen")
    day = record.get("business_date")
    if isinstance(day, datetime) or not isinstance(day, date):
        raise _err("DATE_INVALID", f"business_date {day!r} must be a calendar date")
    return StatementHeader(statement_id, day, office, region, count, total)


def utc_iso(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).isoformat()


__all__ = [
    "CURRENT_STATES",
    "Discrepancy",
    "DiscrepancyClass",
    "DiscrepancyState",
    "KINDS",
    "LEVY_ITEMS",
    "LedgerPayment",
    "ReconciliationError",
    "SIGN",
    "Scope",
    "StatementHeader",
    "StatementLine",
    "StatementState",
    "check_amount",
    "check_statement_id",
    "check_voucher",
    "content_digest",
    "derived_id",
    "discrepancy_id",
    "header_from_record",
    "utc_iso",
]
