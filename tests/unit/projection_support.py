"""Shared helpers for the projection tests: drive the real Ledger (in-memory store), read its log.

(A module of helpers and fixtures, no tests; imported by the other test_projection_* files.)
"""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import Provenance, ResidentRecord, StatusRecord, TaxPaymentRecord
from projections.arrears import ArrearsProjection
from projections.entitlement import EntitlementProjection
from projections.in_memory import rebuild

HANBIN = "610902"  # 汉滨区
HANYIN = "610921"  # 汉阴县
GRID = "610902100001"
API = Provenance(source="api", user="clerk01", request_id="req-1")
FEED = Provenance(source="kafka", topic="tax.payments.v1", partition=0, offset=7)
TAX_OFFICE = "16109020000"


@pytest.fixture()
def ledger():
    system = bootstrap(Settings(persistence="memory", id_key=b"projection-tests"))
    yield system.ledger
    system.close()


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 30, tzinfo=timezone.utc)


def number(seq: int, birth: date = date(1980, 5, 17)) -> str:
    return make_resident_id(HANBIN, birth, seq)


def enroll(ledger, id_number: str, on: date, *, grid: str = GRID, region: str = HANBIN, channel: str = "COUNTER",
           scheme: str = "RESIDENT", **over):
    return ledger.enroll(id_type="RESIDENT_ID", id_number=id_number, name="王芳", scheme=scheme, region_code=region,
                         grid_code=grid, channel=channel, effective_date=on, provenance=API, **over).person_id


def tax(id_number: str, voucher: str, *, amount_fen: int, paid_on: date, period: tuple[date, date],
        levy_item: str = "RESIDENT", region: str = HANBIN, **over) -> TaxPaymentRecord:
    fields = dict(voucher_no=voucher, tax_office=TAX_OFFICE, id_type="RESIDENT_ID", id_number=id_number, name="王芳",
                  region_code=region, levy_item=levy_item, period_start=period[0], period_end=period[1],
                  amount_fen=amount_fen, paid_at=at(paid_on), credited_on=paid_on, channel="APP")
    fields.update(over)
    return TaxPaymentRecord(**fields)


def pay_year(ledger, id_number: str, year: int, on: date, *, voucher: str | None = None, amount_fen: int = 40000,
             region: str = HANBIN):
    voucher = voucher or f"V{year}-{id_number[-6:]}-{on.isoformat()}"
    outcome = ledger.record_tax_record(
        tax(id_number, voucher, amount_fen=amount_fen, paid_on=on, period=(date(year, 1, 1), date(year, 12, 31)),
            region=region), provenance=FEED)
    assert outcome.applied, outcome.message
    return voucher


def refund(ledger, id_number: str, original: str, amount_fen: int, on: date, *, voucher: str = "R1", year: int = 2025):
    record = tax(id_number, voucher, amount_fen=amount_fen, paid_on=on, period=(date(year, 1, 1), date(year, 12, 31)),
                 kind="REFUND", original_voucher_no=original, reason="退费")
    assert ledger.record_tax_record(record, provenance=FEED).applied


def reverse(ledger, id_number: str, original: str, amount_fen: int, on: date, *, voucher: str = "C1", year: int = 2025):
    record = tax(id_number, voucher, amount_fen=amount_fen, paid_on=on, period=(date(year, 1, 1), date(year, 12, 31)),
                 kind="REVERSAL", original_voucher_no=original, reason="冲正")
    assert ledger.record_tax_record(record, provenance=FEED).applied


def grant(ledger, id_number: str, category: str, valid_from: date, *, record_id: str = "MZ-1", valid_to=None):
    record = StatusRecord(record_id=record_id, id_type="RESIDENT_ID", id_number=id_number, name="王芳",
                          category=category, granted=True, valid_from=valid_from, valid_to=valid_to,
                          department="汉滨区民政局", document_no=f"汉民发〔2024〕{record_id}")
    assert ledger.apply_status(record, provenance=FEED).applied


def residence(ledger, id_number: str, status: str, on: date, *, grid: str | None = None, record_id: str | None = None):
    record = ResidentRecord(record_id=record_id or f"HJ-{id_number[-6:]}-{status}-{on}", id_type="RESIDENT_ID",
                            id_number=id_number, name="王芳", grid_code=grid, status=status, effective_date=on)
    return ledger.apply_residence(record, provenance=FEED).person_id


def log_events(ledger) -> list:
    """Every event of the ledger's notification log, in order (person events and SourceRecord events)."""
    events, start = [], 1
    while True:
        batch = ledger.recorder.select_notifications(start, 200)
        if not batch:
            return events
        events += [ledger.mapper.to_domain_event(n) for n in batch]
        start = batch[-1].id + 1


def entitlement_view(ledger, policies=None) -> dict:
    return rebuild(log_events(ledger), [EntitlementProjection(policies or ledger.policies)])["entitlement"]


def arrears_view(ledger) -> dict:
    return rebuild(log_events(ledger), [ArrearsProjection(ledger.policies)])["arrears"]
