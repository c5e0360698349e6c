"""Inbound feed records (外部数据) between their Avro contracts and :mod:`ledger.inbound_records`.

Other departments produce to Kafka with the schemas in ``schemas/inbound/``:

=========================  ==========================================  ========================
topic                      record (full name)                           ledger record
=========================  ==========================================  ========================
``tax.payments.v1``        ``cn.medins.tax.v1.TaxPayment``              ``TaxPaymentRecord``
``tax.statements.v1``      ``cn.medins.tax.v1.TaxStatementHeader``,     (reconciliation)
                           ``cn.medins.tax.v1.TaxStatementLine``
``registry.status.v1``     ``cn.medins.registry.v1.SubsidyStatus``      ``StatusRecord``
``registry.residents.v1``  ``cn.medins.registry.v1.ResidentRecord``     ``ResidentRecord``
=========================  ==========================================  ========================

``*_from_avro`` turns a decoded record into the ledger's record and checks its
shape (a rule broken raises :class:`DomainError`: ``FIELD_MISSING``,
``FIELD_INVALID``, or the vocabulary's own ``*_UNKNOWN`` code, so the consumer can
dead-letter it); business rules stay in the domain. ``*_to_avro`` is the inverse,
for producers, simulators and test-data generators.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from ledger.domain.errors import DomainError
from ledger.domain.places import parse_grid_code
from ledger.domain.vocabulary import LevyItem, PaymentKind, ResidenceStatus, Scheme, SubsidyCategory
from ledger.policy import rules
from ledger.policy.book import default_value_limits
from ledger.inbound_records import ResidentRecord, StatusRecord, TaxPaymentRecord

TAX_PAYMENT = "cn.medins.tax.v1.TaxPayment"
TAX_STATEMENT_HEADER = "cn.medins.tax.v1.TaxStatementHeader"
TAX_STATEMENT_LINE = "cn.medins.tax.v1.TaxStatementLine"
SUBSIDY_STATUS = "cn.medins.registry.v1.SubsidyStatus"
RESIDENT_RECORD = "cn.medins.registry.v1.ResidentRecord"

#: Which records may arrive on which topic (consumers pass one as ``reader`` or check the name).
TOPIC_RECORDS: Mapping[str, tuple[str, ...]] = {
    "tax.payments.v1": (TAX_PAYMENT,),
    "tax.statements.v1": (TAX_STATEMENT_HEADER, TAX_STATEMENT_LINE),
    "registry.status.v1": (SUBSIDY_STATUS,),
    "registry.residents.v1": (RESIDENT_RECORD,),
}

GRANT, REVOKE = "GRANT", "REVOKE"


# ------------------------------------------------------------------ field checks
def _missing(field: str) -> DomainError:
    return DomainError("FIELD_MISSING", f"{field} is required but missing or empty", field=field)


def _invalid(field: str, expected: str, value: Any) -> DomainError:
    shown = value if not isinstance(value, str) else value[:40]
    return DomainError("FIELD_INVALID", f"{field} must be {expected}; got {shown!r}", field=field)


def _text(record: Mapping[str, Any], field: str, *, optional: bool = False, blank_ok: bool = False) -> Any:
    value = record.get(field)
    if value is None:
        if optional:
            return None
        if blank_ok:
            return ""
        raise _missing(field)
    if not isinstance(value, str):
        raise _invalid(field, "text", value)
    if not value.strip() and not blank_ok:
        if optional:
            return None
        raise _missing(field)
    return value


def _fen(record: Mapping[str, Any], field: str, *, optional: bool = False, allow_zero: bool = False) -> Any:
    value = record.get(field)
    if value is None:
        if optional:
            return None
        raise _missing(field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(field, "a whole number of fen (分)", value)
    # The one value gate (positive, at most the policy ceiling: AMOUNT_TOO_LARGE), before the ledger sees it.
    return rules.check_amount_fen(value, field, default_value_limits(), allow_zero=allow_zero)


def _date(record: Mapping[str, Any], field: str, *, optional: bool = False, window: bool = True) -> Any:
    """A calendar date; a business date (``window``) must fall in the gate's plausible range."""
    value = record.get(field)
    if value is None:
        if optional:
            return None
        raise _missing(field)
    if isinstance(value, datetime) or not isinstance(value, date):
        raise _invalid(field, "a calendar date", value)
    limits = default_value_limits()
    if window or value < limits.earliest_date:
        rules.check_business_date(value, field, limits)
    return value


def _instant(record: Mapping[str, Any], field: str) -> datetime:
    value = record.get(field)
    if value is None:
        raise _missing(field)
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise _invalid(field, "a date and time with a time zone", value)
    rules.check_business_date(value.date(), field, default_value_limits())
    return value


def _code(record: Mapping[str, Any], field: str, enum: type[StrEnum], error_code: str, what: str) -> Any:
    value = record.get(field)
    if value is None:
        raise _missing(field)
    try:
        return enum(value)
    except ValueError:
        # UNKNOWN is what an older reader's enum default turns a newer symbol into.
        allowed = ", ".join(m.value for m in enum)
        raise DomainError(
            error_code, f"unknown {what} {value!r}; the ledger takes: {allowed}", field=field
        ) from None


def _value(code: Any) -> Any:
    return code.value if isinstance(code, StrEnum) else code


# ---------------------------------------------------------------- tax payments
def _levy_item(record: Mapping[str, Any]) -> Any:
    """A scheme's contribution (``Scheme``) or a late fee (``LevyItem.LATE_FEE``, 滞纳金)."""
    levy = _code(record, "levy_item", LevyItem, "LEVY_ITEM_UNKNOWN", "levy item")
    return levy if levy == LevyItem.LATE_FEE else Scheme(levy.value)


def tax_record_from_avro(record: Mapping[str, Any]) -> TaxPaymentRecord:
    """A ``cn.medins.tax.v1.TaxPayment`` record as the ledger's :class:`TaxPaymentRecord`."""
    return TaxPaymentRecord(
        voucher_no=_text(record, "voucher_no"),
        tax_office=_text(record, "tax_office"),
        id_type=_text(record, "id_type"),
        id_number=_text(record, "id_number"),
        name=_text(record, "name"),
        region_code=_text(record, "region_code"),
        levy_item=_levy_item(record),
        period_start=_date(record, "period_start"),
        period_end=_date(record, "period_end"),
        amount_fen=_fen(record, "amount_fen"),
        paid_at=_instant(record, "paid_at"),
        credited_on=_date(record, "credited_on", optional=True),
        channel=_text(record, "channel", blank_ok=True),
        kind=_code(record, "kind", PaymentKind, "PAYMENT_KIND_UNKNOWN", "record kind"),
        original_voucher_no=_text(record, "original_voucher_no", optional=True),
        original_tax_office=_text(record, "original_tax_office", optional=True),
        assessed_base_fen=_fen(record, "assessed_base_fen", optional=True, allow_zero=True),
        subsidy_fen=_fen(record, "subsidy_fen", optional=True, allow_zero=True),
        subsidy_type=_text(record, "subsidy_type", optional=True),
        reason=_text(record, "reason", blank_ok=True),
    )


def tax_record_to_avro(record: TaxPaymentRecord) -> dict[str, Any]:
    """The inverse of :func:`tax_record_from_avro`, for producers and generators."""
    return {
        "voucher_no": record.voucher_no,
        "tax_office": record.tax_office,
        "id_type": record.id_type,
        "id_number": record.id_number,
        "name": record.name,
        "region_code": record.region_code,
        "levy_item": _value(record.levy_item),
        "period_start": record.period_start,
        "period_end": record.period_end,
        "assessed_base_fen": record.assessed_base_fen,
        "amount_fen": record.amount_fen,
        "paid_at": record.paid_at,
        "credited_on": record.credited_on,
        "channel": record.channel or "",
        "subsidy_fen": record.subsidy_fen,
        "subsidy_type": record.subsidy_type,
        "kind": _value(record.kind),
        "original_voucher_no": record.original_voucher_no,
        "original_tax_office": record.original_tax_office,
        "reason": record.reason or "",
    }


# ------------------------------------------------------------ subsidy statuses
def status_record_from_avro(record: Mapping[str, Any]) -> StatusRecord:
    """A ``cn.medins.registry.v1.SubsidyStatus`` record as the ledger's :class:`StatusRecord`."""
    action = record.get("action")
    if action is None:
        raise _missing("action")
    if action not in (GRANT, REVOKE):
        raise DomainError(
            "STATUS_ACTION_UNKNOWN", f"unknown status action {action!r}; the ledger takes: GRANT, REVOKE", field="action"
        )
    category = _code(record, "category", SubsidyCategory, "SUBSIDY_CATEGORY_UNKNOWN", "subsidy category")
    return StatusRecord(
        record_id=_text(record, "record_id"),
        id_type=_text(record, "id_type"),
        id_number=_text(record, "id_number"),
        name=_text(record, "name"),
        category=category.value,
        granted=action == GRANT,
        valid_from=_date(record, "valid_from"),
        valid_to=_date(record, "valid_to", optional=True, window=False),
        department=_text(record, "department"),
        document_no=_text(record, "document_no"),
        grant_id=_text(record, "grant_id", optional=True),
    )


def status_record_to_avro(record: StatusRecord) -> dict[str, Any]:
    """The inverse of :func:`status_record_from_avro`."""
    return {
        "record_id": record.record_id,
        "id_type": record.id_type,
        "id_number": record.id_number,
        "name": record.name,
        "category": _value(record.category),
        "action": GRANT if record.granted else REVOKE,
        "valid_from": record.valid_from,
        "valid_to": record.valid_to,
        "department": record.department,
        "document_no": record.document_no,
        "grant_id": record.grant_id,
    }


# ------------------------------------------------------------ registry residents
def resident_record_from_avro(record: Mapping[str, Any]) -> ResidentRecord:
    """A ``cn.medins.registry.v1.ResidentRecord`` record as the ledger's :class:`ResidentRecord`.

    A grid code, when given, must have the 12-digit shape (``GRID_FORMAT``).
    """
    grid_code = _text(record, "grid_code", optional=True)
    if grid_code is not None:
        grid_code = parse_grid_code(grid_code).code
    extra = record.get("extra") or {}
    if not isinstance(extra, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise _invalid("extra", "a mapping of text to text", extra)
    return ResidentRecord(
        record_id=_text(record, "record_id"),
        id_type=_text(record, "id_type"),
        id_number=_text(record, "id_number"),
        name=_text(record, "name"),
        grid_code=grid_code,
        status=_code(record, "status", ResidenceStatus, "RESIDENCE_STATUS_UNKNOWN", "residence status"),
        effective_date=_date(record, "effective_date"),
        extra=dict(extra),
        address=_text(record, "address", optional=True),
        phone=_text(record, "phone", optional=True),
    )


def resident_record_to_avro(record: ResidentRecord) -> dict[str, Any]:
    """The inverse of :func:`resident_record_from_avro`."""
    return {
        "record_id": record.record_id,
        "id_type": record.id_type,
        "id_number": record.id_number,
        "name": record.name,
        "grid_code": record.grid_code,
        "status": _value(record.status),
        "effective_date": record.effective_date,
        "extra": dict(record.extra),
        "address": record.address,
        "phone": record.phone,
    }


__all__ = [
    "RESIDENT_RECORD",
    "SUBSIDY_STATUS",
    "TAX_PAYMENT",
    "TAX_STATEMENT_HEADER",
    "TAX_STATEMENT_LINE",
    "TOPIC_RECORDS",
    "resident_record_from_avro",
    "resident_record_to_avro",
    "status_record_from_avro",
    "status_record_to_avro",
    "tax_record_from_avro",
    "tax_record_to_avro",
]
