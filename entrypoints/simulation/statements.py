"""The tax bureau's daily collection statements (税务对账单) of a generated county, with known discrepancies.

One statement per business day (the Beijing date of ``paid_at``, as the contract and
:mod:`reconciliation.model` say), tax office and insured region: a header
(statement id, business date, office, region, line count, net total in fen) and its
lines (voucher, ID, levy item, period, amount, paid_at, credited_on, kind, original
voucher of a refund or reversal).

What a statement lists: what the tax bureau actually collected (or paid back), not
what the feed carried. So, from the county's tax records:

* every voucher once, as first collected: a **resend** of the feed is the same voucher
  (listed once), and a **VOUCHER_CONFLICT** row (the same voucher sent again with another
  amount) is a corrupted copy: the statement keeps the amount first collected, which is
  what the ledger kept -- no discrepancy;
* a payment whose ID number has a wrong check digit (**ID_CHECKSUM**, refused by the
  ledger) *was* collected: the e-tax system verifies ID numbers when a payer registers,
  so the mistyped digit is the feed's, and the statement lists the payment under the
  valid number -> ``MISSING_IN_LEDGER`` (with the feed's number the line itself would be
  refused at intake and the statement would never complete);
* a payment for a region the ledger does not serve (**REGION_UNKNOWN**) was collected by
  one of the county's offices: listed on that office's statement of that region ->
  ``MISSING_IN_LEDGER``;
* a refund naming a voucher nobody paid with (**REFUND_UNKNOWN_VOUCHER**) was paid out:
  listed with the original the bureau names -> ``REFUND_WITHOUT_ORIGINAL``;
* the malformed rows are corrupted copies of good records (already listed); clerk
  actions are not collections.

On top of these, a few lines are changed on purpose (:data:`INJECTED`), each on a
different statement, on plain payments that no refund or reversal names: an amount
changed (``AMOUNT_MISMATCH``), a line left out (``MISSING_IN_STATEMENT``), a line listed
twice (``DUPLICATE_VOUCHER``), a line under another person's ID number
(``PERSON_OR_REGION_MISMATCH``). Headers are computed from the lines as listed, so
every header ties out to its lines. Everything is deterministic by seed (a random
generator of its own, so the county itself is unchanged).
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Sequence

from ledger.domain.identity import resident_id_check_char

TAX = "tax"
#: Injected discrepancies: class -> how many (fewer when the county has too few plain payments).
INJECTED = {"AMOUNT_MISMATCH": 2, "MISSING_IN_STATEMENT": 2, "DUPLICATE_VOUCHER": 1, "PERSON_OR_REGION_MISMATCH": 1}
#: The class each kind of refused tax record gives on the statements (None: not listed).
FROM_REFUSED = {"ID_CHECKSUM": "MISSING_IN_LEDGER", "REGION_UNKNOWN": "MISSING_IN_LEDGER",
                "REFUND_UNKNOWN_VOUCHER": "REFUND_WITHOUT_ORIGINAL", "VOUCHER_CONFLICT": None}
SIGN = {"PAYMENT": 1, "REFUND": -1, "REVERSAL": -1}


def _value(v: Any) -> Any:
    return v.value if hasattr(v, "value") else v


def business_date(paid_at: datetime) -> date:
    return (paid_at + timedelta(hours=8)).date()


@dataclass(frozen=True)
class StatementLine:
    """One line of a daily statement (税务对账单明细), as the tax bureau sends it."""

    statement_id: str
    line_no: int
    voucher_no: str
    id_type: str
    id_number: str
    levy_item: str
    period_start: date
    period_end: date
    amount_fen: int
    paid_at: datetime
    credited_on: date | None
    kind: str
    original_voucher_no: str | None = None
    original_tax_office: str | None = None

    @property
    def signed_fen(self) -> int:
        return SIGN[self.kind] * self.amount_fen

    def as_avro(self) -> dict[str, Any]:
        """The ``cn.medins.tax.v1.TaxStatementLine`` record."""
        return {"statement_id": self.statement_id, "line_no": self.line_no, "voucher_no": self.voucher_no,
                "id_type": self.id_type, "id_number": self.id_number, "levy_item": self.levy_item,
                "period_start": self.period_start, "period_end": self.period_end, "amount_fen": self.amount_fen,
                "paid_at": self.paid_at, "credited_on": self.credited_on, "kind": self.kind,
                "original_voucher_no": self.original_voucher_no, "original_tax_office": self.original_tax_office}


@dataclass(frozen=True)
class DailyStatement:
    """A daily collection statement (对账单): the header's fields and the lines."""

    statement_id: str
    business_date: date
    tax_office: str
    region_code: str
    line_count: int
    total_amount_fen: int
    lines: tuple[StatementLine, ...]

    def header_avro(self) -> dict[str, Any]:
        """The ``cn.medins.tax.v1.TaxStatementHeader`` record."""
        return {"statement_id": self.statement_id, "business_date": self.business_date,
                "tax_office": self.tax_office, "region_code": self.region_code, "line_count": self.line_count,
                "total_amount_fen": self.total_amount_fen}


@dataclass(frozen=True)
class InjectedDiscrepancy:
    klass: str
    statement_id: str
    tax_office: str
    voucher_no: str
    what: str


def statement_id(day: date, office: str, region: str) -> str:
    return f"DZ-{day:%Y%m%d}-{office}-{region}"


def _line(record: Any, *, id_number: str | None = None) -> StatementLine:
    day = business_date(record.paid_at)
    return StatementLine(
        statement_id(day, record.tax_office, record.region_code), 0, record.voucher_no, record.id_type,
        id_number or record.id_number, str(_value(record.levy_item)), record.period_start, record.period_end,
        record.amount_fen, record.paid_at, record.credited_on, str(_value(record.kind)),
        record.original_voucher_no, record.original_tax_office)


def _statement(sid: str, first: StatementLine, lines: Sequence[StatementLine], office: str,
               region: str) -> DailyStatement:
    numbered = tuple(replace(x, statement_id=sid, line_no=i) for i, x in enumerate(lines, 1))
    return DailyStatement(sid, business_date(first.paid_at), office, region, len(numbered),
                          sum(x.signed_fen for x in numbered), numbered)


def build_statements(actions: Sequence[Any], seed: int) -> tuple[list[DailyStatement], list[InjectedDiscrepancy],
                                                                  dict[str, int]]:
    """The statements of a county's timeline, the injected changes, and the discrepancies expected per class."""
    expected: Counter[str] = Counter()
    seen: set[str] = set()
    scopes: dict[tuple[date, str, str], list[StatementLine]] = {}
    plain: dict[tuple[str, str], bool] = {}  # voucher key -> a plain payment the ledger recorded as listed
    named: set[tuple[str, str]] = set()  # vouchers a refund or reversal names
    for a in sorted((a for a in actions if a.kind == TAX), key=lambda a: (a.when, a.rank, a.seq)):
        if a.resend or a.key in seen:
            continue
        record, error = a.record, a.expected_error
        if error is not None and error not in FROM_REFUSED:
            raise ValueError(f"no statement rule for a tax record refused with {error}")
        if error is not None and FROM_REFUSED[error] is None:
            continue
        seen.add(a.key)
        id_number = record.id_number
        if error == "ID_CHECKSUM":
            id_number = id_number[:17] + resident_id_check_char(id_number[:17])
        line = _line(record, id_number=id_number)
        scopes.setdefault((business_date(record.paid_at), record.tax_office, record.region_code), []).append(line)
        if error is not None:
            expected[FROM_REFUSED[error]] += 1
        if line.original_voucher_no:
            named.add((line.original_tax_office or record.tax_office, line.original_voucher_no))
        plain[(record.tax_office, record.voucher_no)] = error is None and line.kind == "PAYMENT"

    ordered = {k: sorted(v, key=lambda x: (x.paid_at, x.voucher_no)) for k, v in sorted(scopes.items())}
    # Candidates: plain payments on statements of two lines or more (a statement keeps a line when one is left out).
    candidates = [(k, i) for k, lines in ordered.items() if len(lines) >= 2 for i, x in enumerate(lines)
                  if plain[(k[1], x.voucher_no)] and (k[1], x.voucher_no) not in named]
    rng = random.Random(f"statements:{seed}")
    wanted = [klass for klass, n in INJECTED.items() for _ in range(n)]
    picks: list[tuple[tuple[date, str, str], int]] = []
    used: set[tuple[date, str, str]] = set()
    for k, i in rng.sample(candidates, len(candidates)):
        if len(picks) == len(wanted):
            break
        if k not in used:
            used.add(k)
            picks.append((k, i))
    injected: list[InjectedDiscrepancy] = []
    for klass, (k, i) in zip(wanted, picks):
        lines = ordered[k]
        x = lines[i]
        sid = statement_id(*k)
        if klass == "AMOUNT_MISMATCH":
            sign = -1 if x.amount_fen > 5000 and rng.random() < 0.5 else 1
            delta = sign * rng.randint(1, 50) * 100
            lines[i] = replace(x, amount_fen=x.amount_fen + delta)
            what = f"amount {x.amount_fen} -> {x.amount_fen + delta} fen"
        elif klass == "MISSING_IN_STATEMENT":
            del lines[i]
            what = "line left out"
        elif klass == "DUPLICATE_VOUCHER":
            lines.append(x)
            what = "line listed twice"
        else:  # PERSON_OR_REGION_MISMATCH: another payer's (valid) ID number
            other = next(y.id_number for y in _others(ordered, rng) if y.id_number != x.id_number
                         and y.id_type == x.id_type)
            lines[i] = replace(x, id_number=other)
            what = "listed under another person's ID number"
        injected.append(InjectedDiscrepancy(klass, sid, k[1], x.voucher_no, what))
        expected[klass] += 1
    statements = [_statement(statement_id(*k), lines[0], lines, k[1], k[2]) for k, lines in ordered.items()]
    return statements, injected, dict(sorted(expected.items()))


def _others(ordered: dict[Any, list[StatementLine]], rng: random.Random) -> list[StatementLine]:
    """Payment lines of the whole county in a random (seeded) order."""
    pool = [x for lines in ordered.values() for x in lines if x.kind == "PAYMENT"]
    return rng.sample(pool, min(len(pool), 50))


__all__ = ["DailyStatement", "FROM_REFUSED", "INJECTED", "InjectedDiscrepancy", "StatementLine",
           "build_statements", "statement_id"]
