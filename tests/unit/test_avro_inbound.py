"""Inbound feed records: Avro bytes <-> ledger records, and the shape errors a consumer dead-letters."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone

import pytest

from events.codec import default_registry
from events.inbound import (
    RESIDENT_RECORD,
    SUBSIDY_STATUS,
    TAX_PAYMENT,
    TOPIC_RECORDS,
    resident_record_from_avro,
    resident_record_to_avro,
    status_record_from_avro,
    status_record_to_avro,
    tax_record_from_avro,
    tax_record_to_avro,
)
from events.make_fixtures import SAMPLES
from ledger.domain.errors import DomainError
from ledger.domain.vocabulary import PaymentKind, ResidenceStatus, Scheme
from ledger.inbound_records import ResidentRecord, StatusRecord, TaxPaymentRecord

BEIJING = timezone(timedelta(hours=8))

PAYMENT = TaxPaymentRecord(
    voucher_no="324610900000012345", tax_office="16109020000", id_type="RESIDENT_ID",
    id_number="11010519491231002X", name="张三", region_code="610902", levy_item=Scheme.RESIDENT,
    period_start=date(2025, 1, 1), period_end=date(2025, 12, 31), amount_fen=40000,
    paid_at=datetime(2024, 11, 3, 10, 15, tzinfo=BEIJING), credited_on=date(2024, 11, 5), channel="APP",
)
REFUND = dataclasses.replace(
    PAYMENT, voucher_no="324610900000019999", kind=PaymentKind.REFUND, amount_fen=15000, credited_on=None,
    original_voucher_no=PAYMENT.voucher_no, original_tax_office="16109020001", subsidy_fen=15000,
    subsidy_type="低保", assessed_base_fen=None, reason="资助到账后退还", channel="",
)
GRANT = StatusRecord(
    record_id="MZ-REC-1", id_type="RESIDENT_ID", id_number="11010519491231002X", name="张三", category="ORPHAN",
    granted=True, valid_from=date(2024, 1, 1), valid_to=None, department="民政局", document_no="文号1",
)
REVOCATION = dataclasses.replace(GRANT, record_id="MZ-REC-2", granted=False, valid_from=date(2025, 7, 1), grant_id="文号1")
RESIDENT = ResidentRecord(
    record_id="HJ-1", id_type="RESIDENT_ID", id_number="11010519491231002X", name="张三",
    grid_code="610902100201", status=ResidenceStatus.RESIDENT, effective_date=date(2025, 9, 1),
    extra={"household_no": "HH-0042"},
)
DECEASED = dataclasses.replace(RESIDENT, record_id="HJ-2", grid_code=None, status=ResidenceStatus.DECEASED, extra={})


def _through_bytes(name: str, record: dict) -> dict:
    registry = default_registry()
    decoded_name, decoded = registry.decode(registry.encode(name, record))
    assert decoded_name == name
    return decoded


@pytest.mark.parametrize("record", [PAYMENT, REFUND], ids=["payment", "refund"])
def test_tax_records_round_trip_through_avro_bytes(record):
    back = tax_record_from_avro(_through_bytes(TAX_PAYMENT, tax_record_to_avro(record)))
    assert back == record
    assert back.paid_at.utcoffset() == timedelta(0)  # same instant, now in UTC
    assert isinstance(back.levy_item, Scheme) and isinstance(back.kind, PaymentKind)


@pytest.mark.parametrize("record", [GRANT, REVOCATION], ids=["grant", "revocation"])
def test_status_records_round_trip_through_avro_bytes(record):
    assert status_record_from_avro(_through_bytes(SUBSIDY_STATUS, status_record_to_avro(record))) == record


@pytest.mark.parametrize("record", [RESIDENT, DECEASED], ids=["resident", "deceased"])
def test_resident_records_round_trip_through_avro_bytes(record):
    assert resident_record_from_avro(_through_bytes(RESIDENT_RECORD, resident_record_to_avro(record))) == record


def test_the_fixture_samples_map_to_ledger_records():
    assert tax_record_from_avro(SAMPLES[TAX_PAYMENT]).subsidy_fen == 15000
    assert status_record_from_avro(SAMPLES[SUBSIDY_STATUS]).granted is True
    assert resident_record_from_avro(SAMPLES[RESIDENT_RECORD]).extra == {"household_no": "HH-0042"}


def test_every_topic_names_records_the_registry_knows():
    names = set(default_registry().names())
    for topic, records in TOPIC_RECORDS.items():
        assert set(records) <= names, topic


def _error(fn, record) -> DomainError:
    with pytest.raises(DomainError) as e:
        fn(record)
    return e.value


@pytest.mark.parametrize(
    "change,code,field",
    [
        ({"voucher_no": None}, "FIELD_MISSING", "voucher_no"),
        ({"tax_office": "   "}, "FIELD_MISSING", "tax_office"),
        ({"id_number": 11010519491231002}, "FIELD_INVALID", "id_number"),
        ({"amount_fen": 400.0}, "FIELD_INVALID", "amount_fen"),
        ({"amount_fen": True}, "FIELD_INVALID", "amount_fen"),
        ({"period_start": "2025-01-01"}, "FIELD_INVALID", "period_start"),
        ({"period_end": datetime(2025, 12, 31, tzinfo=timezone.utc)}, "FIELD_INVALID", "period_end"),
        ({"paid_at": datetime(2024, 11, 3, 10, 15)}, "FIELD_INVALID", "paid_at"),
        ({"paid_at": None}, "FIELD_MISSING", "paid_at"),
        ({"levy_item": "UNKNOWN"}, "LEVY_ITEM_UNKNOWN", "levy_item"),
        ({"kind": "UNKNOWN"}, "PAYMENT_KIND_UNKNOWN", "kind"),
        ({"subsidy_fen": "150"}, "FIELD_INVALID", "subsidy_fen"),
    ],
)
def test_tax_record_shape_errors(change, code, field):
    record = dict(SAMPLES[TAX_PAYMENT], **change)
    error = _error(tax_record_from_avro, record)
    assert (error.code, error.details.get("field")) == (code, field)


def test_a_missing_key_is_field_missing():
    record = dict(SAMPLES[TAX_PAYMENT])
    del record["region_code"]
    assert _error(tax_record_from_avro, record).code == "FIELD_MISSING"


def test_optional_blank_text_becomes_none_and_defaults_fill_in():
    record = dict(SAMPLES[TAX_PAYMENT], original_voucher_no=" ", subsidy_type="")
    del record["channel"], record["reason"]
    mapped = tax_record_from_avro(record)
    assert mapped.original_voucher_no is None and mapped.subsidy_type is None
    assert mapped.channel == "" and mapped.reason == ""


@pytest.mark.parametrize(
    "change,code",
    [
        ({"category": "UNKNOWN"}, "SUBSIDY_CATEGORY_UNKNOWN"),
        ({"action": "UNKNOWN"}, "STATUS_ACTION_UNKNOWN"),
        ({"action": None}, "FIELD_MISSING"),
        ({"valid_from": None}, "FIELD_MISSING"),
        ({"document_no": ""}, "FIELD_MISSING"),
    ],
)
def test_status_record_shape_errors(change, code):
    assert _error(status_record_from_avro, dict(SAMPLES[SUBSIDY_STATUS], **change)).code == code


@pytest.mark.parametrize(
    "change,code",
    [
        ({"status": "UNKNOWN"}, "RESIDENCE_STATUS_UNKNOWN"),
        ({"grid_code": "61090210020"}, "GRID_FORMAT"),
        ({"effective_date": None}, "FIELD_MISSING"),
        ({"extra": {"n": 1}}, "FIELD_INVALID"),
    ],
)
def test_resident_record_shape_errors(change, code):
    assert _error(resident_record_from_avro, dict(SAMPLES[RESIDENT_RECORD], **change)).code == code
