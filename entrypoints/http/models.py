"""Request bodies of the HTTP API: strict about money, dates and unknown fields.

* Money (every ``*_fen`` field) is a JSON integer number of fen (分), checked by the domain's
  one gate (:func:`ledger.policy.rules.check_amount_fen`). ``400.0``, ``"40000"``
  and ``true`` are refused with ``AMOUNT_NOT_INTEGER_FEN``; ``0`` or less with
  ``AMOUNT_NOT_POSITIVE`` (a transferred balance may be 0); above the policy ceiling
  (2^63, 10^30, ...) with ``AMOUNT_TOO_LARGE``.
* Dates are ISO text ``YYYY-MM-DD`` (``DATE_INVALID`` otherwise); instants are ISO text
  with a time zone (``INSTANT_INVALID``). In a command body both must fall inside the
  plausible window (:func:`ledger.policy.rules.check_business_date`: ``DATE_OUT_OF_RANGE``).
* A field the model does not know is refused (``BODY_INVALID``): a misspelt optional field
  must not be dropped silently.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from ledger.domain.errors import DomainError
from ledger.policy import rules
from ledger.policy.book import default_value_limits

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

#: Validation error types raised here, and the API error code each becomes.
ERROR_CODES = {
    "amount_not_integer_fen": "AMOUNT_NOT_INTEGER_FEN",
    "amount_not_positive": "AMOUNT_NOT_POSITIVE",
    "amount_too_large": "AMOUNT_TOO_LARGE",
    "date_out_of_range": "DATE_OUT_OF_RANGE",
    "date_invalid": "DATE_INVALID",
    "instant_invalid": "INSTANT_INVALID",
}


def _gate(check: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a domain gate rule; its DomainError becomes a validation error carrying the same code."""
    try:
        return check(*args, **kwargs)
    except DomainError as e:
        raise PydanticCustomError(e.code.lower(), e.message.replace("{", "(").replace("}", ")")) from None


def _fen(value: Any, *, allow_zero: bool) -> int:
    # The one domain gate (whole fen, positive, at most the policy ceiling): a JSON integer of
    # any size (2^63, 10^30) is an int here and gets AMOUNT_TOO_LARGE, never a 201 or a 500.
    return _gate(rules.check_amount_fen, value, "amount", default_value_limits(), allow_zero=allow_zero)


def _positive_fen(value: Any) -> int:
    return _fen(value, allow_zero=False)


def _non_negative_fen(value: Any) -> int:
    return _fen(value, allow_zero=True)


def parse_iso_date(value: Any) -> date:
    """A calendar date written ``YYYY-MM-DD`` (nothing else: no timestamps, no datetimes)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise PydanticCustomError(
        "date_invalid", "must be a calendar date written YYYY-MM-DD, e.g. 2025-01-01; got {value}",
        {"value": repr(value)[:40]},
    )


def _instant(value: Any) -> datetime:
    parsed = value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            parsed = None
    if not isinstance(parsed, datetime) or parsed.tzinfo is None:
        raise PydanticCustomError(
            "instant_invalid",
            "must be a date and time with a time zone, e.g. 2024-10-08T09:30:00+08:00; got {value}",
            {"value": repr(value)[:40]},
        )
    return parsed


def _business_date(value: Any) -> date:
    return _gate(rules.check_business_date, parse_iso_date(value), "date", default_value_limits())


def _business_instant(value: Any) -> datetime:
    parsed = _instant(value)
    _gate(rules.check_business_date, parsed.date(), "instant", default_value_limits())
    return parsed


_CEILING = default_value_limits().amount_ceiling_fen
PositiveFen = Annotated[int, BeforeValidator(_positive_fen),
                        Field(json_schema_extra={"type": "integer", "minimum": 1, "maximum": _CEILING})]
NonNegativeFen = Annotated[int, BeforeValidator(_non_negative_fen),
                           Field(json_schema_extra={"type": "integer", "minimum": 0, "maximum": _CEILING})]
IsoDate = Annotated[date, BeforeValidator(parse_iso_date)]
Instant = Annotated[datetime, BeforeValidator(_instant)]
#: A date or instant in a command body: inside the plausible window of the value gate (DATE_OUT_OF_RANGE).
BusinessDate = Annotated[date, BeforeValidator(_business_date)]
BusinessInstant = Annotated[datetime, BeforeValidator(_business_instant)]

Scheme = Literal["RESIDENT", "EMPLOYEE"]
GridCode = Annotated[str, Field(pattern=r"^\d{12}$", description="12-digit grid / village code (统计用区划代码)")]
RegionCode = Annotated[str, Field(pattern=r"^\d{6}$", description="6-digit region code (行政区划代码)")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Identity(Body):
    id_type: str = Field("RESIDENT_ID", description="RESIDENT_ID, PASSPORT, HK_MACAU_PERMIT, TAIWAN_PERMIT or "
                                                    "FOREIGN_PERMANENT_RESIDENT (证件类型)")
    id_number: str = Field(..., min_length=1, max_length=40, description="ID number (证件号码)")
    name: str = Field(..., min_length=1, max_length=100, description="Name as on the ID (姓名)")


class EnrollmentIn(Identity):
    """Register the person (if new) and enroll them in a scheme (参保登记)."""

    scheme: Scheme
    region_code: RegionCode
    grid_code: GridCode | None = None
    flexible: bool = Field(False, description="flexible worker (灵活就业) in the employee scheme")
    employer_id: str | None = Field(None, max_length=40, description="employer (单位编号), employee scheme")
    effective_date: BusinessDate


class ResidentAssessmentIn(Body):
    """Assess the resident contribution for a coverage year (城乡居民缴费核定)."""

    year: int = Field(..., ge=2000, le=2100, description="coverage year")
    effective_date: BusinessDate | None = Field(None, description="business date of the assessment (default: today)")


class EmployeeAssessmentIn(Body):
    """Assess one employee-scheme month on the declared contribution base (职工缴费核定)."""

    month: str = Field(..., pattern=r"^\d{4}-\d{2}$", description="month YYYY-MM")
    declared_base_fen: PositiveFen = Field(..., description="declared contribution base (缴费基数) in fen")
    effective_date: BusinessDate | None = None


class PaymentCorrectionIn(Body):
    """A counter payment correction (窗口退费/冲正): a new record pointing at the original voucher."""

    kind: Literal["REFUND", "REVERSAL"]
    voucher_no: str = Field(..., min_length=1, max_length=40, description="number of the correction voucher")
    tax_office: str = Field(..., min_length=1, max_length=20, description="tax office of the correction voucher")
    original_voucher_no: str = Field(..., min_length=1, max_length=40, description="the payment corrected")
    original_tax_office: str | None = Field(None, max_length=20, description="default: tax_office")
    amount_fen: PositiveFen
    corrected_at: BusinessInstant | None = Field(None, description="when it was made (default: now); "
                                                           "resend with the same value and X-Request-ID")
    reason: str = Field(..., min_length=1, max_length=200)


class TransferOutIn(Body):
    """Transfer out (医保关系转出) to another region."""

    transfer_id: str = Field(..., min_length=1, max_length=60)
    counterpart_region: str = Field(..., min_length=1, max_length=12, description="the receiving region")
    effective_date: BusinessDate


class TransferInIn(Identity):
    """Transfer in (医保关系转入): receive what the sending region sent, then enroll here.

    Within this ledger, leave ``account_balance_fen`` and ``contribution_months`` out: the
    ledger takes them from the out half (given figures must equal them, else
    ``TRANSFER_MISMATCH``). From another province, state them from the source document.
    """

    transfer_id: str = Field(..., min_length=1, max_length=60)
    counterpart_region: str = Field(..., min_length=1, max_length=12, description="the sending region")
    account_balance_fen: NonNegativeFen | None = Field(None, description="default: what the out half sent")
    contribution_months: int | None = Field(None, ge=0, strict=True, description="default: what the out half sent")
    source_document_no: str | None = Field(None, max_length=60, description="external transfers: the source "
                                                                             "region's document (default: transfer_id)")
    scheme: Scheme
    region_code: RegionCode
    grid_code: GridCode | None = None
    flexible: bool = False
    employer_id: str | None = Field(None, max_length=40)
    effective_date: BusinessDate


class TransferRequestIn(Body):
    """A transfer request (转移接续申请) made at the receiving region: the sending region then has its
    time limit (working days, policy tables) to complete the transfer-out."""

    transfer_id: str = Field(..., min_length=1, max_length=60)
    counterpart_region: RegionCode = Field(..., description="the sending region, where the person is enrolled")
    region_code: RegionCode = Field(..., description="the receiving region (the clerk's)")
    effective_date: IsoDate


class TransferCancelIn(Body):
    """Cancel (撤销, by the sending region) or reject (拒绝接收, by the receiving region) an open transfer."""

    transfer_id: str = Field(..., min_length=1, max_length=60)
    reason: str = Field(..., min_length=1, max_length=200)
    rejected: bool = Field(False, description="true: the receiving region rejects it")
    effective_date: IsoDate


class EndEnrollmentIn(Body):
    """End an enrollment (终止参保): the one in force unless ``enrollment_id`` names another."""

    reason: Literal["DIED", "MOVED_OUT", "TRANSFERRED_OUT", "SWITCHED_SCHEME", "DUPLICATE_RESOLVED"]
    effective_date: BusinessDate
    enrollment_id: str | None = None


class AccountEntryIn(Body):
    """A personal-account movement (个人账户划入/支出)."""

    amount_fen: PositiveFen
    reason: Literal["CONTRIBUTION", "RETIREE_CREDIT", "TRANSFER_IN", "MEDICAL_EXPENSE", "FAMILY_MUTUAL_AID",
                    "CORRECTION"]
    reference: str = Field(..., min_length=1, max_length=80)
    effective_date: BusinessDate
    relative_person_id: str | None = Field(None, description="family mutual aid (家庭共济): the relative")
    relative_relationship: str | None = None


#: The subsidised groups (资助参保身份) a status may name; anything else is SUBSIDY_CATEGORY_UNKNOWN (the feed's code).
STATUS_CATEGORIES = ("EXTREME_POVERTY", "ORPHAN", "DE_FACTO_ORPHAN", "MIN_LIVING", "RELAPSED_POVERTY", "MONITORED",
                     "LOW_INCOME_MARGINAL")


class StatusGrantIn(Identity):
    """Grant a subsidised-group status from its certificate (资助参保身份认定), entered by a clerk when the
    department's feed is late: the same rule and events as the civil-affairs feed, keyed by the document number."""

    region_code: RegionCode = Field(..., description="the clerk's region; for a person enrolled or living "
                                                     "elsewhere, that region's clerks enter it")
    category: str = Field(..., min_length=1, max_length=40,
                          description="status category: " + ", ".join(STATUS_CATEGORIES) + " (身份类别)")
    valid_from: BusinessDate = Field(..., description="first day the status is valid (认定起始日期)")
    valid_to: IsoDate | None = Field(None, description="last day it is valid (认定终止日期); none: open-ended")
    department: str = Field(..., min_length=1, max_length=100, description="issuing department (认定部门), "
                                                                           "e.g. 汉滨区民政局")
    document_no: str = Field(..., min_length=1, max_length=60, description="certificate or decision number "
                                                                           "(证书/认定文书编号): the status's key")


class StatusRevokeIn(Body):
    """Revoke a subsidised-group status from a date (身份取消), with the revoking document."""

    grant_id: str = Field(..., min_length=1, max_length=60, description="the document number of the status "
                                                                        "revoked (原认定文书编号)")
    revoked_from: BusinessDate = Field(..., description="first day the status no longer holds (取消生效日期)")
    department: str = Field(..., min_length=1, max_length=100, description="department revoking it (取消部门)")
    document_no: str = Field(..., min_length=1, max_length=60, description="the revoking document's number "
                                                                           "(取消文书编号)")
    region_code: RegionCode | None = Field(None, description="only for a person with no enrollment or "
                                                             "residence yet: the clerk's region")


class TaxPaymentIn(Identity):
    """One tax-bureau collection record (税务征收回传): payment, refund or reversal."""

    voucher_no: str = Field(..., min_length=1, max_length=40, description="电子税票号码")
    tax_office: str = Field(..., min_length=1, max_length=20, description="征收税务机关")
    region_code: RegionCode
    levy_item: Literal["RESIDENT", "EMPLOYEE", "LATE_FEE"] = Field(
        ..., description="RESIDENT, EMPLOYEE, or LATE_FEE (滞纳金: an employer's late fee on one employee month, "
                         "period_start..period_end that month)")
    period_start: BusinessDate
    period_end: BusinessDate
    amount_fen: PositiveFen
    paid_at: BusinessInstant
    credited_on: BusinessDate | None = None
    channel: str = Field("", max_length=20)
    kind: Literal["PAYMENT", "REFUND", "REVERSAL"] = "PAYMENT"
    original_voucher_no: str | None = None
    original_tax_office: str | None = None
    reason: str = Field("", max_length=200)


class OutcomeOut(BaseModel):
    """What a command did; ``applied`` is false for a resend or when nothing needed changing."""

    applied: bool
    message: str = Field(description="what was done, in the Accept-Language language (Chinese by default): "
                                     "已参保登记 / enrolled; a resend says when it was first done, in Beijing time")
    event_ids: list[str]
    person_id: str | None
    change: dict[str, Any] | None = Field(None, description="a change waiting for a second clerk (待审核变更, "
                                                              "maker-checker): the command proposed it, nothing else "
                                                              "changed yet")


class ErrorOut(BaseModel):
    """Every error answer: a stable code, a message a clerk understands, details."""

    code: str
    message: str
    details: dict[str, Any] = {}
