"""The business vocabulary: codes every feed, event and view shares.

These are names, not numbers: the amounts and dates that go with them live in the
policy tables (``ledger/policy/tables``).
"""
from __future__ import annotations

from enum import StrEnum
from ledger.domain.errors import DomainError


class Scheme(StrEnum):
    """Insurance scheme (险种)."""

    RESIDENT = "RESIDENT"  # 城乡居民基本医疗保险
    EMPLOYEE = "EMPLOYEE"  # 职工基本医疗保险


class LevyItem(StrEnum):
    """Levy item of a tax collection record (征收品目): a scheme's contribution, or a late fee."""

    RESIDENT = "RESIDENT"  # 城乡居民基本医疗保险
    EMPLOYEE = "EMPLOYEE"  # 职工基本医疗保险
    LATE_FEE = "LATE_FEE"  # 滞纳金 (职工医保单位欠费, 社会保险法第八十六条)


class EnrollmentChannel(StrEnum):
    """How an enrollment (参保登记) reached the ledger."""

    COUNTER = "COUNTER"  # 经办窗口
    BATCH_IMPORT = "BATCH_IMPORT"  # 批量导入
    TAX_PAYMENT = "TAX_PAYMENT"  # 税务缴费回传
    TRANSFER_IN = "TRANSFER_IN"  # 转移接续转入
    NEWBORN = "NEWBORN"  # 新生儿参保


class EnrollmentEndReason(StrEnum):
    """Why an enrollment ended (终止参保)."""

    DIED = "DIED"
    MOVED_OUT = "MOVED_OUT"
    TRANSFERRED_OUT = "TRANSFERRED_OUT"
    SWITCHED_SCHEME = "SWITCHED_SCHEME"
    DUPLICATE_RESOLVED = "DUPLICATE_RESOLVED"


class SubsidyCategory(StrEnum):
    """Subsidised groups (资助参保对象), 国办发〔2021〕42号 and seed 000."""

    EXTREME_POVERTY = "EXTREME_POVERTY"  # 特困人员
    ORPHAN = "ORPHAN"  # 孤儿
    DE_FACTO_ORPHAN = "DE_FACTO_ORPHAN"  # 事实无人抚养儿童
    MIN_LIVING = "MIN_LIVING"  # 低保对象
    RELAPSED_POVERTY = "RELAPSED_POVERTY"  # 返贫致贫人口
    MONITORED = "MONITORED"  # 防止返贫监测对象
    LOW_INCOME_MARGINAL = "LOW_INCOME_MARGINAL"  # 低保边缘


class PaymentKind(StrEnum):
    """Kind of a tax-bureau collection record (税务回传)."""

    PAYMENT = "PAYMENT"  # 缴费
    REFUND = "REFUND"  # 退费
    REVERSAL = "REVERSAL"  # 冲正


class ResidenceStatus(StrEnum):
    """What the household registry (户籍/常住人口) says about a person."""

    RESIDENT = "RESIDENT"
    MOVED_OUT = "MOVED_OUT"
    DECEASED = "DECEASED"


class AccountEntryReason(StrEnum):
    """Why the personal account (个人账户) moved."""

    CONTRIBUTION = "CONTRIBUTION"  # 个人缴费划入
    RETIREE_CREDIT = "RETIREE_CREDIT"  # 退休人员定额划入
    TRANSFER_IN = "TRANSFER_IN"
    MEDICAL_EXPENSE = "MEDICAL_EXPENSE"
    FAMILY_MUTUAL_AID = "FAMILY_MUTUAL_AID"  # 家庭共济
    CORRECTION = "CORRECTION"


def parse_code(enum: type[StrEnum], value: str, error_code: str, what: str) -> StrEnum:
    """Parse a code from input, raising a clerk-readable error naming the allowed values."""
    try:
        return enum(str(value).strip().upper())
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise DomainError(error_code, f"unknown {what} {value!r}; use one of: {allowed}") from None
