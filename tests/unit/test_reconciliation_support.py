"""Builders shared by the reconciliation tests: statement records, lines, ledger rows, a clock.

(Helpers only, no tests; imported by the other test_reconciliation_* files.)
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

from events.codec import encode
from events.inbound import TAX_STATEMENT_HEADER, TAX_STATEMENT_LINE
from ledger.domain.identity import make_resident_id, mask_id_number, parse_identity, person_id_for
from reconciliation.intake import decode_value, line_row
from reconciliation.model import LedgerPayment, StatementHeader, StatementLine
from reconciliation.service import Received
from reconciliation.store import line_from_row

ID_KEY = b"reconciliation-tests"
OFFICE = "16109020000"
HANBIN = "610902"  # 汉滨区
HANYIN = "610921"  # 汉阴县
DAY = date(2025, 3, 3)
TOPIC = "tax.statements.v1"


def number(seq: int) -> str:
    return make_resident_id(HANBIN, date(1980, 5, 17), seq)


def person(seq: int) -> str:
    return str(person_id_for(parse_identity("RESIDENT_ID", number(seq)), ID_KEY))


def at(day: date = DAY, hour: int = 2) -> datetime:
    """09:xx or 10:xx Beijing time on ``day`` (02:00 UTC + hour offset)."""
    return datetime(day.year, day.month, day.day, hour, 30, tzinfo=timezone.utc)


def voucher(i: int) -> str:
    return f"3246109{i:011d}"


def header(statement_id: str = "DZ-1", *, count: int, total: int, day: date = DAY, region: str = HANBIN,
           office: str = OFFICE) -> StatementHeader:
    return StatementHeader(statement_id, day, office, region, count, total)


def line(line_no: int, i: int, *, seq: int | None = None, amount: int = 40000, kind: str = "PAYMENT",
         levy: str = "RESIDENT", statement_id: str = "DZ-1", paid: datetime | None = None,
         original: str | None = None,
         period: tuple[date, date] = (date(2025, 1, 1), date(2025, 12, 31))) -> StatementLine:
    seq = i if seq is None else seq
    return StatementLine(statement_id, line_no, voucher(i), "RESIDENT_ID", mask_id_number(number(seq)), person(seq),
                         levy, period[0], period[1], amount, paid or at(), None, kind, original, None, "d", "")


def row(i: int, *, seq: int | None = None, amount: int = 40000, kind: str = "PAYMENT", levy: str = "RESIDENT",
        day: date = DAY, region: str = HANBIN, paid: datetime | None = None, original: str | None = None,
        office: str = OFFICE, period: tuple[date, date] = (date(2025, 1, 1), date(2025, 12, 31))) -> LedgerPayment:
    seq = i if seq is None else seq
    return LedgerPayment(office, voucher(i), day, region, levy, person(seq), kind, amount, paid or at(day), None,
                         period[0], period[1], None if original is None else office, original,
                         f"event-{i}", "ContributionPaid" if kind == "PAYMENT" else "ContributionRefunded", 3)


def line_record(line_no: int, i: int, *, statement_id: str = "DZ-1", seq: int | None = None, amount: int = 40000,
                kind: str = "PAYMENT", levy: str = "RESIDENT", paid: datetime | None = None,
                original: str | None = None, **over: Any) -> dict[str, Any]:
    seq = i if seq is None else seq
    record = {"statement_id": statement_id, "line_no": line_no, "voucher_no": voucher(i), "id_type": "RESIDENT_ID",
              "id_number": number(seq), "levy_item": levy, "period_start": date(2025, 1, 1),
              "period_end": date(2025, 12, 31), "amount_fen": amount, "paid_at": paid or at(), "credited_on": None,
              "kind": kind, "original_voucher_no": original, "original_tax_office": None}
    record.update(over)
    return record


def header_record(statement_id: str = "DZ-1", *, count: int, total: int, day: date = DAY, region: str = HANBIN,
                  office: str = OFFICE) -> dict[str, Any]:
    return {"statement_id": statement_id, "business_date": day, "tax_office": office, "region_code": region,
            "line_count": count, "total_amount_fen": total}


def line_bytes(*args: Any, **kwargs: Any) -> bytes:
    return encode(TAX_STATEMENT_LINE, line_record(*args, **kwargs))


def header_bytes(*args: Any, **kwargs: Any) -> bytes:
    return encode(TAX_STATEMENT_HEADER, header_record(*args, **kwargs))


def stored_line(record: dict[str, Any]) -> StatementLine:
    """A line record as the store gives it back (checked, person id computed)."""
    row_ = line_row(record, ID_KEY, DAY)
    return line_from_row((*row_, ""))


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = datetime(2025, 3, 4, 1, 0, tzinfo=timezone.utc)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


class Feed:
    """Statement records with made-up positions, as a consumer would hand them to ``Reconciler.ingest``."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self, *values: bytes) -> list[Received]:
        out = []
        for value in values:
            out.append(Received(decode_value(value, ID_KEY, DAY), f"{TOPIC}/0/{self.offset}", value))
            self.offset += 1
        return out


__all__ = ["Clock", "DAY", "Feed", "HANBIN", "HANYIN", "ID_KEY", "OFFICE", "at", "header", "header_bytes",
           "header_record", "line", "line_bytes", "line_record", "number", "person", "replace", "row", "stored_line",
           "voucher"]
