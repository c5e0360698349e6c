"""Maker-checker (双人复核): a change one clerk proposes takes effect only once another approves it.

Fund supervision (基金监管) expects a second pair of eyes on the changes that move money or
identity: merging two person records (参保人合并), ending an enrollment (终止参保, e.g. a duplicate
resolved with the refund it implies), waiving a late fee (滞纳金减免), and a payment correction or
account debit above the threshold of the policy tables (``[approval] correction_threshold_fen``).

Such a change is first a :class:`PendingChange` (待审核): one small aggregate per change id
(the proposing request's id), holding who proposed what and until when it may be approved
(``[approval] pending_expiry_hours``). Nothing of it touches a person, so no figure moves.
Another clerk holding the approver role of the change's region approves it (then the
application carries the change out, and the person's own events name both clerks) or
rejects it; past its expiry it can only be marked expired. The rules are pure functions of
the change and the caller (:func:`check_decision`); the aggregate only records them.

Also here: :func:`duplicate_refund`, what ending a duplicate enrollment implies is owed back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.domain.errors import Conflict, DomainError, NotFound
from ledger.domain.history import Enrollment, PersonHistory, paid_share
from ledger.domain.person import BUSINESS_TZ

_NAMESPACE = uuid5(NAMESPACE_URL, "urn:medins-ledger:pending-change")

#: The kinds of change that wait for a second clerk, with their Chinese names.
CHANGE_KINDS = {
    "MERGE_PERSONS": "参保人合并",
    "END_ENROLLMENT": "终止参保",
    "WAIVE_LATE_FEE": "滞纳金减免",
    "PAYMENT_CORRECTION": "缴费退费/冲正",
    "ACCOUNT_DEBIT": "个人账户支出",
}
#: How two records come to be one person.
MERGE_KINDS = {
    "DUPLICATE": "重复登记",
    "ID_UPGRADE": "15 位身份证号升为 18 位",
    "ID_CORRECTION": "证件号码更正",
}
STATUS_LABELS = {"PENDING": "待审核", "APPROVED": "已批准", "REJECTED": "已驳回", "EXPIRED": "已过期"}


class PendingChange(Aggregate):
    """One change waiting for (or decided by) a second clerk (待审核变更). Its id follows from the change id."""

    class Proposed(Aggregate.Created):
        change_id: str
        kind: str
        region_code: str
        person_id: str
        payload: dict[str, Any]
        summary: str
        proposed_by: str
        proposed_at: datetime
        expires_at: datetime

        def apply(self, change: PendingChange) -> None:
            change.change_id = self.change_id
            change.kind = self.kind
            change.region_code = self.region_code
            change.person_id = self.person_id
            change.payload = dict(self.payload)
            change.summary = self.summary
            change.proposed_by = self.proposed_by
            change.proposed_at = self.proposed_at
            change.expires_at = self.expires_at
            change.status = "PENDING"
            change.decided_by = None
            change.decided_at = None
            change.note = ""
            change.result = {}

    class Approved(Aggregate.Event):
        approved_by: str
        approved_at: datetime
        result: dict[str, Any]

        def apply(self, change: PendingChange) -> None:
            change.status = "APPROVED"
            change.decided_by = self.approved_by
            change.decided_at = self.approved_at
            change.result = dict(self.result)

    class Rejected(Aggregate.Event):
        rejected_by: str
        rejected_at: datetime
        reason: str

        def apply(self, change: PendingChange) -> None:
            change.status = "REJECTED"
            change.decided_by = self.rejected_by
            change.decided_at = self.rejected_at
            change.note = self.reason

    class Expired(Aggregate.Event):
        expired_at: datetime

        def apply(self, change: PendingChange) -> None:
            change.status = "EXPIRED"
            change.decided_at = self.expired_at

    @staticmethod
    def id_for(change_id: str) -> UUID:
        return uuid5(_NAMESPACE, str(change_id))

    @classmethod
    def propose(cls, *, change_id: str, kind: str, region_code: str, person_id: str, payload: dict[str, Any],
                summary: str, proposed_by: str, proposed_at: datetime, expiry_hours: int) -> PendingChange:
        if kind not in CHANGE_KINDS:
            raise DomainError("CHANGE_KIND_UNKNOWN", f"未知的变更类型 {kind} (unknown kind of change)")
        if not str(change_id or "").strip():
            raise DomainError("CHANGE_ID_REQUIRED", "变更须有编号（请求编号） (a change needs an id)")
        if not str(proposed_by or "").strip():
            raise DomainError("MAKER_REQUIRED", "变更须记录提出人 (a change needs the clerk proposing it)")
        return cls._create(cls.Proposed, id=cls.id_for(change_id), change_id=str(change_id), kind=kind,
                           region_code=region_code, person_id=str(person_id), payload=dict(payload), summary=summary,
                           proposed_by=proposed_by, proposed_at=proposed_at,
                           expires_at=proposed_at + timedelta(hours=expiry_hours))

    # ------------------------------------------------------------------ decisions
    def approve(self, *, approver: str, at: datetime, result: dict[str, Any]) -> None:
        check_decision(self, approver, at)
        self.trigger_event(self.Approved, approved_by=approver, approved_at=at, result=dict(result))

    def reject(self, *, checker: str, at: datetime, reason: str) -> None:
        check_decision(self, checker, at, rejecting=True)
        if not str(reason or "").strip():
            raise DomainError("REJECT_REASON_REQUIRED", "驳回须写明理由 (a rejection needs a reason)")
        self.trigger_event(self.Rejected, rejected_by=checker, rejected_at=at, reason=str(reason).strip()[:500])

    def expire(self, *, at: datetime) -> bool:
        """Mark a pending change past its expiry as expired; False when it is not (or no longer) pending."""
        if self.status != "PENDING" or not is_expired(self, at):
            return False
        self.trigger_event(self.Expired, expired_at=at)
        return True

    def as_dict(self, now: datetime | None = None) -> dict[str, Any]:
        status = self.status
        if status == "PENDING" and now is not None and is_expired(self, now):
            status = "EXPIRED"
        return {"change_id": self.change_id, "kind": self.kind, "kind_label": CHANGE_KINDS.get(self.kind, self.kind),
                "region_code": self.region_code, "person_id": self.person_id, "summary": self.summary,
                "payload": dict(self.payload), "proposed_by": self.proposed_by,
                "proposed_at": self.proposed_at.isoformat(), "expires_at": self.expires_at.isoformat(),
                "status": status, "status_label": STATUS_LABELS[status], "decided_by": self.decided_by,
                "decided_at": self.decided_at.isoformat() if self.decided_at else None, "note": self.note,
                "result": dict(self.result)}


def is_expired(change: Any, now: datetime) -> bool:
    return now >= change.expires_at


def check_decision(change: Any, checker: str, now: datetime, *, rejecting: bool = False) -> None:
    """May ``checker`` approve (or reject) ``change`` at ``now``? Raises the stable code when not.

    The role and the region (an approver of the change's region) are the entrance's to check: it
    knows the caller's token. Here: the change is still pending, not past its expiry, and the
    checker is not the clerk who proposed it (APPROVAL_BY_MAKER), for a rejection too (a maker
    withdrawing their own change is not a second pair of eyes either).
    """
    checker = str(checker or "").strip()
    if not checker:
        raise DomainError("CHECKER_REQUIRED", "审核须记录审核人 (a decision needs the clerk deciding)")
    if change.status != "PENDING":
        raise Conflict("CHANGE_ALREADY_DECIDED",
                       # the label carries its 已: 该变更已批准，不能再审核
                       f"该变更{STATUS_LABELS.get(change.status, change.status)}，不能再审核 "
                       f"(the change was already {change.status.lower()})", change_id=change.change_id,
                       status=change.status)
    if checker.casefold() == str(change.proposed_by).strip().casefold():  # "Wang" is wang: one person, one pair of eyes
        raise DomainError("APPROVAL_BY_MAKER",
                          "提出人不能审核自己提出的变更，须由另一名有审核权限的经办员审核 "
                          "(the clerk who proposed a change may not approve or reject it)",
                          change_id=change.change_id)
    if is_expired(change, now):
        raise expired(change)


def expired(change: Any) -> Conflict:
    """CHANGE_EXPIRED, its expiry said in Beijing time to the minute (a clerk reads it; UTC stays in the event)."""
    at = change.expires_at.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")
    return Conflict("CHANGE_EXPIRED", f"该变更已于北京时间 {at} 过期，请重新提出 "
                                      f"(the change expired at {at} Beijing time; propose it again)",
                    change_id=change.change_id, expires_at=at)


def merge_warnings(kept: Any, merged: Any) -> list[str]:
    """What the approver should look at twice before approving a merge (核对提示): the two records' name,
    birth date or sex differ. Not a refusal: a typo in any of them is a reason to merge."""
    out = []
    if str(kept.name).strip() != str(merged.name).strip():
        out.append("姓名不一致")
    if kept.birth_date != merged.birth_date:
        out.append(f"出生日期不一致（{kept.birth_date} / {merged.birth_date}）")
    if kept.sex != merged.sex:
        out.append("性别不一致")
    return out


def not_found(change_id: str) -> NotFound:
    return NotFound("CHANGE_NOT_FOUND", f"没有编号为 {change_id} 的待审核变更 (no change with that id)")


def needs_approval(amount_fen: int, threshold_fen: int) -> bool:
    """A correction of more than the threshold waits for a second clerk; up to it, it applies at once."""
    return int(amount_fen) > int(threshold_fen)


# --------------------------------------------------------------------------- the refund a duplicate implies
@dataclass(frozen=True)
class RefundLine:
    voucher_no: str
    period: str
    amount_fen: int
    event_id: str


@dataclass(frozen=True)
class DuplicateRefund:
    """What ending a duplicate enrollment implies is owed back (重复参保退费): the net paid, under the ended
    enrollment's scheme and region, for the periods the kept enrollment covered as well."""

    enrollment_id: str
    kept_enrollment_id: str | None
    owed_back_fen: int
    lines: list[RefundLine] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"enrollment_id": self.enrollment_id, "kept_enrollment_id": self.kept_enrollment_id,
                "owed_back_fen": self.owed_back_fen,
                "lines": [{"voucher_no": x.voucher_no, "period": x.period, "amount_fen": x.amount_fen,
                           "event_id": x.event_id} for x in self.lines]}


def _period_bounds(period: str) -> tuple[date, date] | None:
    try:
        if len(period) == 4:
            y = int(period)
            return date(y, 1, 1), date(y, 12, 31)
        y, m = int(period[:4]), int(period[5:7])
        last = (date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1))
        return date(y, m, 1), last
    except (TypeError, ValueError):
        return None


def _in_force(e: Enrollment, first: date, last: date) -> bool:
    return e.start_date <= last and (e.end_date is None or e.end_date >= first)


def duplicate_refund(history: PersonHistory, enrollment_id: str) -> DuplicateRefund:
    """The refund ending ``enrollment_id`` implies (pure): for each payment made under its scheme to its
    region, the net share (refunds and reversals taken off) of each period in which both it and
    another enrollment of the person were in force. Nothing is owed back for a period only the ended
    enrollment covered: that coverage was real.
    """
    by_id = {e.enrollment_id: e for e in history.enrollments}
    ended = by_id.get(enrollment_id)
    if ended is None:
        raise NotFound("ENROLLMENT_NOT_FOUND", f"没有参保记录 {enrollment_id} (no such enrollment)")
    others = [e for e in history.enrollments if e.enrollment_id != enrollment_id]
    kept = next((e for e in others if e.end_date is None), others[-1] if others else None)
    lines: list[RefundLine] = []
    for payment in history.payments.values():
        if payment.levy_item != ended.scheme or payment.region_code != ended.region_code:
            continue
        for period in payment.periods:
            bounds = _period_bounds(period)
            if bounds is None or not _in_force(ended, *bounds):
                continue
            if not any(_in_force(o, *bounds) for o in others):
                continue
            share = paid_share(payment, period)
            if share > 0:
                lines.append(RefundLine(payment.voucher_no, period, share, payment.event_id))
    return DuplicateRefund(enrollment_id, kept.enrollment_id if kept else None,
                           sum(x.amount_fen for x in lines), lines)
