"""Inbound records as the application service takes them, whatever the channel.

The Kafka consumers, the HTTP API, the CLI and the batch import all turn their
input into one of these plain records and hand it to :class:`ledger.application.Ledger`.
Field names follow the tax bureau's and the registry's contracts (see ``schemas/``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from ledger.domain.vocabulary import LevyItem, PaymentKind, ResidenceStatus, Scheme


@dataclass(frozen=True)
class Provenance:
    """Where a command came from: a feed record, or an API user and request."""

    source: str  # "kafka", "api", "cli", "batch", "system"
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    record_key: str | None = None  # tax voucher, registry record id, document number
    user: str | None = None
    request_id: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class TaxPaymentRecord:
    """One collection record from the tax bureau (税务征收回传): payment, refund or reversal."""

    voucher_no: str  # 电子税票号码
    tax_office: str  # 征收税务机关
    id_type: str
    id_number: str
    name: str
    region_code: str  # 参保地行政区划
    levy_item: LevyItem | Scheme  # 征收品目: employee / resident medical insurance, or LATE_FEE (滞纳金)
    period_start: date  # 费款所属期起
    period_end: date  # 费款所属期止
    amount_fen: int  # 实缴金额
    paid_at: datetime  # 缴款时间
    credited_on: date | None = None  # 入库日期
    channel: str = ""
    kind: PaymentKind = PaymentKind.PAYMENT
    original_voucher_no: str | None = None
    original_tax_office: str | None = None
    assessed_base_fen: int | None = None
    subsidy_fen: int | None = None
    subsidy_type: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class StatusRecord:
    """A subsidised-group status from civil affairs / rural revitalization (身份认定)."""

    record_id: str
    id_type: str
    id_number: str
    name: str
    category: str
    granted: bool  # False = revocation
    valid_from: date
    valid_to: date | None
    department: str
    document_no: str
    grant_id: str | None = None  # the grant a revocation ends; defaults to the document number


def clerk_status_record_id(person_id: object, document_no: str, *, revokes: str | None = None) -> str:
    """The record id of a status a clerk entered (by hand or in a spreadsheet) rather than the department's
    feed (whose records carry its own record id): one per person and certificate, so entering the same
    certificate again is a resend, and a revocation is keyed by the grant it ends and its own document."""
    return f"clerk-status:{person_id}:{document_no}" + (f":revokes:{revokes}" if revokes else "")


@dataclass(frozen=True)
class ResidentRecord:
    """A household-registry record (户籍/常住人口): who lives in which grid, moves, deaths."""

    record_id: str
    id_type: str
    id_number: str
    name: str
    grid_code: str | None
    status: ResidenceStatus
    effective_date: date
    extra: dict[str, str] = field(default_factory=dict)
    #: Address (居住地址) and phone (联系电话) when the registry gives them (contract version 2).
    address: str | None = None
    phone: str | None = None
