"""Maker-checker (双人复核) as a service of the ledger: propose, list, approve, reject.

A change that needs a second pair of eyes (see :mod:`ledger.domain.approvals`) is proposed by
one clerk as a :class:`~ledger.domain.approvals.PendingChange` (待审核), checked at once as far
as it can be (the persons exist, the enrollment is in force) and saved alone: no person is
touched, so no figure moves. Approving it carries it out: the person events (a merge on both
records, an enrollment ended) and the change's own ``Approved`` event are saved in one
transaction, and the person events name both clerks (the merge's fields, or ``proposed_by`` /
``approved_by`` / ``change_id`` in the provenance). Every step is idempotent on the change id
(the proposing request's id): proposing it again with the same content, or approving an
approved change again, changes nothing.

Who may approve is the entrance's question (a token with the approver role of the change's
region, :mod:`entrypoints.http.approvals`); that it is not the clerk who proposed, that the
change is still pending and not past its expiry (``[approval] pending_expiry_hours``) is the
domain's (:func:`ledger.domain.approvals.check_decision`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Callable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from ledger.application import Ledger, Outcome
from ledger.domain.approvals import (CHANGE_KINDS, MERGE_KINDS, PendingChange, check_decision, duplicate_refund,
                                     expired, merge_warnings, needs_approval, not_found)
from ledger.domain.chain import content_digest
from ledger.domain.errors import Conflict, DomainError
from ledger.domain.history import carried_facts
from ledger.domain.identity import mask_id_number
from ledger.domain.person import Person, business_date
from ledger.domain.vocabulary import AccountEntryReason, EnrollmentEndReason, parse_code
from ledger.inbound_records import Provenance, TaxPaymentRecord
from ledger.log import get_logger

log = get_logger("ledger.maker_checker")

_PROPOSED_TOPIC = get_topic(PendingChange.Proposed)
#: Payload fields the ledger works out at the proposal (left out of the request's digest).
_DERIVED = frozenset({"refund_owed_fen", "warnings"})


@dataclass(frozen=True)
class ApprovedProvenance(Provenance):
    """The provenance of what an approval carries out: the approver's request, and the change with both clerks."""

    change_id: str | None = None
    proposed_by: str | None = None
    approved_by: str | None = None


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class MakerChecker:
    """The ledger's pending changes (待审核变更): proposed by one clerk, decided by another."""

    #: Retries of an approval that lost a race with another writer of the same persons.
    max_attempts = 10

    def __init__(self, ledger: Ledger, *, clock: Callable[[], datetime] | None = None) -> None:
        self.ledger = ledger
        self.clock = clock if clock is not None else (lambda: _utc_now())

    # ------------------------------------------------------------------ reading
    def get(self, change_id: str) -> PendingChange:
        try:
            return self.ledger.repository.get(PendingChange.id_for(change_id))
        except AggregateNotFoundError:
            raise not_found(change_id) from None

    def changes(self, *, regions: set[str] | None = None, status: str | None = "PENDING") -> list[dict[str, Any]]:
        """The changes of ``regions`` (None: every region), oldest first; ``status`` PENDING (still
        approvable: expired ones are left out), or APPROVED / REJECTED / EXPIRED, or None for all."""
        now = self.clock()
        out: list[dict[str, Any]] = []
        start: int | None = 1
        while start is not None:
            batch = self.ledger.recorder.select_notifications(start=start, limit=1000, topics=[_PROPOSED_TOPIC])
            for n in batch:
                change = self.ledger.repository.get(n.originator_id)
                if regions is not None and change.region_code not in regions:
                    continue
                row = change.as_dict(now)
                if status is None or row["status"] == status:
                    out.append(row)
            start = batch[-1].id + 1 if len(batch) == 1000 else None
        return out

    def threshold_fen(self, region_code: str) -> int:
        return self.ledger.policies.approval(region_code, business_date(self.clock())).correction_threshold_fen

    def correction_needs_approval(self, region_code: str, amount_fen: int) -> bool:
        """Does a payment correction or account debit of ``amount_fen`` in the region wait for a second clerk?"""
        return needs_approval(amount_fen, self.threshold_fen(region_code))

    # ------------------------------------------------------------------ proposing
    def _propose(self, *, kind: str, region_code: str, person_id: UUID, payload: dict[str, Any], summary: str,
                 provenance: Provenance) -> dict[str, Any]:
        change_id = str(provenance.request_id or "").strip()
        maker = str(provenance.user or "").strip()
        # The digest is of what was asked, not of what the ledger worked out for it (a refund owed, the warnings):
        # a resend after a new payment is still the same request.
        asked = {k: v for k, v in payload.items() if k not in _DERIVED}
        payload = {**payload, "digest": content_digest({"kind": kind, "region_code": region_code,
                                                        "person_id": str(person_id), **asked})}
        try:
            existing = self.ledger.repository.get(PendingChange.id_for(change_id)) if change_id else None
        except AggregateNotFoundError:
            existing = None
        if existing is not None:
            if existing.payload.get("digest") == payload["digest"] and existing.proposed_by == maker:
                return {**existing.as_dict(self.clock()), "applied": False}
            raise Conflict("CHANGE_CONFLICT", f"变更编号 {change_id} 已用于另一项变更 "
                                              "(that change id was used for another change)", change_id=change_id)
        policy = self.ledger.policies.approval(region_code, business_date(self.clock()))
        change = PendingChange.propose(change_id=change_id, kind=kind, region_code=region_code,
                                       person_id=str(person_id), payload=payload, summary=summary,
                                       proposed_by=maker, proposed_at=self.clock(),
                                       expiry_hours=policy.pending_expiry_hours)
        try:
            self.ledger.save(change)
        except IntegrityError:  # the same request raced itself: answer as a resend
            return {**self.get(change_id).as_dict(self.clock()), "applied": False}
        log.info("change_proposed", change_id=change_id, kind=kind, region=region_code, user=maker)
        return {**change.as_dict(self.clock()), "applied": True}

    def propose_merge(self, *, survivor_id: UUID, merged_id: UUID, merge_kind: str, reason: str, region_code: str,
                      provenance: Provenance) -> dict[str, Any]:
        """Propose merging person ``merged_id`` into ``survivor_id`` (参保人合并)."""
        if merge_kind not in MERGE_KINDS:
            raise DomainError("MERGE_KIND_UNKNOWN", f"合并原因须为 {', '.join(MERGE_KINDS)} 之一 "
                                                    f"(merge kind must be one of {', '.join(MERGE_KINDS)})")
        if not str(reason or "").strip():
            raise DomainError("MERGE_REASON_REQUIRED", "合并须写明理由 (a merge needs a reason)")
        survivor, merged = self.ledger.get_person(survivor_id), self.ledger.get_person(merged_id)
        self._check_merge(survivor, merged)
        warnings = merge_warnings(survivor, merged)
        summary = (f"将参保人 {mask_id_number(merged.id_number)} 合并至 {mask_id_number(survivor.id_number)}"
                   f"（{MERGE_KINDS[merge_kind]}）" + (f"；请核对：{'、'.join(warnings)}" if warnings else ""))
        return self._propose(kind="MERGE_PERSONS", region_code=region_code, person_id=survivor_id, payload={
            "survivor_person_id": str(survivor_id), "merged_person_id": str(merged_id), "merge_kind": merge_kind,
            "reason": str(reason).strip()[:500], "warnings": warnings}, summary=summary, provenance=provenance)

    @staticmethod
    def _check_merge(survivor: Person, merged: Person) -> None:
        if survivor.id == merged.id:
            raise DomainError("MERGE_SAME_PERSON", "不能把参保人合并到其本人 (a person cannot be merged into itself)")
        survivor.check_not_merged()
        merged.check_not_merged()

    def propose_end_enrollment(self, *, person_id: UUID, enrollment_id: str | None, reason: str,
                               effective_date: date, region_code: str, provenance: Provenance) -> dict[str, Any]:
        """Propose ending an enrollment (终止参保); for a duplicate (DUPLICATE_RESOLVED) with the refund it implies."""
        reason_code = parse_code(EnrollmentEndReason, reason, "END_REASON_UNKNOWN", "reason")
        person = self.ledger.get_person(person_id)
        enrollment = person.enrollment(enrollment_id) if enrollment_id else person.active_enrollment
        if enrollment is None or enrollment.end_date is not None:
            raise DomainError("ENROLLMENT_NOT_ACTIVE", "没有可终止的在保参保记录 (there is no enrollment in force to end)")
        # Checked now on a copy that is never saved, so a change that could never be carried out is refused at once.
        person.end_enrollment(enrollment_id=enrollment.enrollment_id, reason=reason_code,
                              effective_date=effective_date, provenance=provenance.as_dict())
        payload: dict[str, Any] = {"enrollment_id": enrollment.enrollment_id, "reason": reason_code.value,
                                   "effective_date": effective_date.isoformat()}
        summary = f"终止参保 {enrollment.enrollment_id}（{reason_code.value}），自 {effective_date.isoformat()}"
        if reason_code == EnrollmentEndReason.DUPLICATE_RESOLVED:
            refund = duplicate_refund(self.ledger.get_person(person_id).history, enrollment.enrollment_id)
            payload["refund_owed_fen"] = refund.owed_back_fen
            summary += f"，应退重复缴费 {refund.owed_back_fen // 100}.{refund.owed_back_fen % 100:02d} 元"
        return self._propose(kind="END_ENROLLMENT", region_code=region_code, person_id=person_id, payload=payload,
                             summary=summary, provenance=provenance)

    def propose_payment_correction(self, record: TaxPaymentRecord, *, region_code: str,
                                   provenance: Provenance) -> dict[str, Any]:
        """Propose a counter refund or reversal (窗口退费/冲正) above the threshold; checked now on a copy."""
        person_id = self.ledger.person_id(record.id_type, record.id_number)
        self.ledger._payment_command(record, provenance)(self.ledger.get_person(person_id))  # the rules, now
        what = "退费" if str(record.kind) == "REFUND" else "冲正"
        summary = (f"{what} {_yuan(record.amount_fen)} 元：原凭证 {record.original_voucher_no}，"
                   f"{what}凭证 {record.voucher_no}{('；' + record.reason) if record.reason else ''}")
        return self._propose(kind="PAYMENT_CORRECTION", region_code=region_code, person_id=person_id,
                             payload={"record": _record_payload(record), "amount_fen": record.amount_fen},
                             summary=summary, provenance=provenance)

    def propose_account_debit(self, *, person_id: UUID, amount_fen: int, reason: str, reference: str,
                              effective_date: date, relative_person_id: str | None,
                              relative_relationship: str | None, region_code: str,
                              provenance: Provenance) -> dict[str, Any]:
        """Propose a personal-account debit (个人账户支出) above the threshold; checked now on a copy."""
        reason_code = parse_code(AccountEntryReason, reason, "ACCOUNT_REASON_UNKNOWN", "account reason")
        self.ledger.get_person(person_id).debit_account(
            amount_fen=amount_fen, reason=reason_code, reference=reference, effective_date=effective_date,
            provenance=provenance.as_dict(), relative_person_id=relative_person_id,
            relative_relationship=relative_relationship)
        return self._propose(kind="ACCOUNT_DEBIT", region_code=region_code, person_id=person_id, payload={
            "amount_fen": amount_fen, "reason": reason_code.value, "reference": reference,
            "effective_date": effective_date.isoformat(), "relative_person_id": relative_person_id or "",
            "relative_relationship": relative_relationship or ""},
            summary=f"个人账户支出 {_yuan(amount_fen)} 元：{reason_code.value}，参考号 {reference}", provenance=provenance)

    def propose_late_fee_waiver(self, *, persons: list[tuple[UUID, str]], period: str, reason: str, approver: str,
                                effective_date: date, provenance: Provenance) -> dict[str, Any]:
        """Propose waiving the late fee of ``period`` (滞纳金减免) for these employees ((person id, region) each).

        ``approver`` is the approver the clerk names (审批人): only that clerk, with the approver role of the
        month's region, may approve it (APPROVER_NOT_NAMED otherwise); the waiver records them as approver.
        """
        if not persons:
            raise DomainError("LATE_FEE_NOT_OWED", f"{period} 的滞纳金已缴清或已减免 (nothing left to waive)",
                              period=period)
        regions = sorted({region for _, region in persons})
        return self._propose(kind="WAIVE_LATE_FEE", region_code=regions[0], person_id=persons[0][0], payload={
            "persons": [[str(pid), region] for pid, region in persons], "regions": regions, "period": period,
            "reason": reason, "approver": approver, "effective_date": effective_date.isoformat()},
            summary=f"减免 {period} 滞纳金（{len(persons)} 名职工）：{reason}；指定审批人 {approver}",
            provenance=provenance)

    # ------------------------------------------------------------------ deciding
    def approve(self, change_id: str, *, approver: str, provenance: Provenance,
                note: str | None = None) -> dict[str, Any]:
        """Approve and carry out a pending change (as ``approver``); an approved change again changes nothing."""
        for _attempt in range(self.max_attempts):
            change = self.get(change_id)
            now = self.clock()
            if change.status == "APPROVED":
                return {**change.as_dict(now), "applied": False}
            if change.status == "PENDING" and now >= change.expires_at and approver != change.proposed_by:
                self._record_expiry(change, now)
            check_decision(change, approver, now)
            aggregates, result = self._carry_out(change, approver, provenance, now)
            if note and note.strip():
                result["note"] = note.strip()[:500]
            change.approve(approver=approver, at=now, result=result)
            event_ids = [str(e.event_id) for a in aggregates if isinstance(a, Person) for e in a.pending_events]
            try:
                self.ledger.save(*aggregates, change)
            except IntegrityError:
                continue  # another writer changed one of the persons (or decided the change): again, on fresh state
            log.info("change_approved", change_id=change_id, kind=change.kind, user=approver)
            return {**change.as_dict(now), "applied": True, "event_ids": event_ids}
        raise Conflict("CONCURRENT_UPDATE", "同时有其他写入，请重试 (another writer changed the same persons; try again)")

    def _record_expiry(self, change: PendingChange, now: datetime) -> None:
        if change.expire(at=now):
            try:
                self.ledger.save(change)
            except IntegrityError:
                pass  # decided or expired by another request meanwhile
        raise expired(change)

    def reject(self, change_id: str, *, checker: str, reason: str, provenance: Provenance) -> dict[str, Any]:
        """Reject a pending change: nothing of it is ever carried out. Rejecting a rejected change again is a no-op."""
        change = self.get(change_id)
        now = self.clock()
        if change.status == "REJECTED" and change.decided_by == checker:
            return {**change.as_dict(now), "applied": False}
        if change.status == "PENDING" and now >= change.expires_at and checker != change.proposed_by:
            self._record_expiry(change, now)
        change.reject(checker=checker, at=now, reason=reason)
        try:
            self.ledger.save(change)
        except IntegrityError:
            raise Conflict("CHANGE_ALREADY_DECIDED", "该变更刚被他人审核 (the change was decided meanwhile)",
                           change_id=change_id) from None
        log.info("change_rejected", change_id=change_id, kind=change.kind, user=checker)
        return {**change.as_dict(now), "applied": True}

    def _carry_out(self, change: PendingChange, approver: str, provenance: Provenance,
                   now: datetime) -> tuple[list[Any], dict[str, Any]]:
        """The persons changed by the approved change (not saved yet) and what it did."""
        p = change.payload
        approved = ApprovedProvenance(**provenance.__dict__, change_id=change.change_id,
                                      proposed_by=change.proposed_by, approved_by=approver)
        prov = approved.as_dict()
        today = business_date(now)
        if change.kind == "MERGE_PERSONS":
            survivor = self.ledger.get_person(UUID(p["survivor_person_id"]))
            merged = self.ledger.get_person(UUID(p["merged_person_id"]))
            self._check_merge(survivor, merged)
            common = dict(change_id=change.change_id, merge_kind=p["merge_kind"], reason=p["reason"],
                          proposed_by=change.proposed_by, approved_by=approver, effective_date=today, provenance=prov)
            facts = carried_facts(merged.history)  # (before its last event: the facts it held)
            merged.merge_into(survivor_person_id=str(survivor.id), **common)
            survivor.absorb(merged_person_id=str(merged.id), merged_facts=facts, **common)
            return [survivor, merged], {"survivor_person_id": str(survivor.id), "merged_person_id": str(merged.id)}
        if change.kind == "END_ENROLLMENT":
            person = self.ledger.get_person(UUID(change.person_id))
            result: dict[str, Any] = {"enrollment_id": p["enrollment_id"]}
            if p["reason"] == EnrollmentEndReason.DUPLICATE_RESOLVED:
                refund = duplicate_refund(person.history, p["enrollment_id"])
                result["refund_owed_fen"] = refund.owed_back_fen
                result["refund_vouchers"] = sorted({x.voucher_no for x in refund.lines})
            person.end_enrollment(enrollment_id=p["enrollment_id"], reason=EnrollmentEndReason(p["reason"]),
                                  effective_date=date.fromisoformat(p["effective_date"]), provenance=prov)
            return [person], result
        if change.kind == "WAIVE_LATE_FEE":
            if approver != p["approver"]:
                raise DomainError("APPROVER_NOT_NAMED", f"该减免指定由 {p['approver']} 审批，你不能代为审批 "
                                                        f"(this waiver names {p['approver']} as its approver)",
                                  change_id=change.change_id)
            on = date.fromisoformat(p["effective_date"])
            waived: list[Person] = []
            for pid_text, region in p["persons"]:
                pid = UUID(pid_text)
                person = self.ledger.get_person(pid)
                if person.late_fee_waiver(change.change_id) is None:
                    try:
                        self.ledger._check_fee_owed(pid, p["period"], on, None)
                    except DomainError as e:
                        if e.code != "LATE_FEE_NOT_OWED":
                            raise
                        continue  # paid meanwhile: nothing left to waive for this employee
                if person.waive_late_fee(waiver_id=change.change_id, region_code=region, period=p["period"],
                                         reason=p["reason"], approver=approver, effective_date=on, provenance=prov):
                    waived.append(person)
            if not waived:
                raise DomainError("LATE_FEE_NOT_OWED", f"{p['period']} 的滞纳金已缴清或已减免 (nothing left to waive)",
                                  period=p["period"])
            return waived, {"persons": len(waived), "period": p["period"]}
        if change.kind == "ACCOUNT_DEBIT":
            person = self.ledger.get_person(UUID(change.person_id))
            person.debit_account(
                amount_fen=int(p["amount_fen"]), reason=AccountEntryReason(p["reason"]), reference=p["reference"],
                effective_date=date.fromisoformat(p["effective_date"]), provenance=prov,
                relative_person_id=p["relative_person_id"] or None,
                relative_relationship=p["relative_relationship"] or None)
            return [person], {"amount_fen": int(p["amount_fen"])}
        if change.kind == "PAYMENT_CORRECTION":
            person = self.ledger.get_person(UUID(change.person_id))
            record = _record_from_payload(p["record"], person)
            source = self.ledger._payment_source(record)
            taken = self.ledger.source_record(source.kind, source.key)
            if taken is not None:
                raise Conflict("VOUCHER_CONFLICT", f"凭证 {record.voucher_no} 已入账，不能再次更正 "
                                                   "(that voucher was recorded meanwhile)", key=source.key)
            self.ledger._payment_command(record, approved)(person)
            index = self.ledger._source_index(source, person.id, approved)
            return [person, index], {"amount_fen": record.amount_fen, "voucher_no": record.voucher_no}
        raise DomainError("CHANGE_KIND_UNKNOWN", f"未知的变更类型 {change.kind} (unknown kind of change)")


def _yuan(fen: int) -> str:
    return f"{'-' if fen < 0 else ''}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


#: The fields of a counter correction kept in its pending change, and how each is read back. Not the ID number
#: nor the name: a change list is read by approvers too, and the person (by id) gives them back at approval.
_RECORD_FIELDS: dict[str, Callable[[str], Any]] = {
    "voucher_no": str, "tax_office": str, "region_code": str,
    "levy_item": str, "period_start": date.fromisoformat, "period_end": date.fromisoformat, "amount_fen": int,
    "paid_at": datetime.fromisoformat, "channel": str, "kind": str, "original_voucher_no": str,
    "original_tax_office": str, "reason": str,
}


def _record_payload(record: TaxPaymentRecord) -> dict[str, str]:
    out = {}
    for name in _RECORD_FIELDS:
        value = getattr(record, name)
        out[name] = value.isoformat() if isinstance(value, (date, datetime)) else str(value if value is not None else "")
    return out


def _record_from_payload(payload: dict[str, str], person: Person) -> TaxPaymentRecord:
    return TaxPaymentRecord(id_type=person.id_type, id_number=person.id_number, name=person.name,
                            **{name: read(payload[name]) for name, read in _RECORD_FIELDS.items()})


def outcome_of(answer: dict[str, Any]) -> Outcome:
    """A proposed change as the ledger's :class:`Outcome` of the command that proposed it: nothing of the
    person changed yet (no event), the change recorded (``applied``) or recognised as a resend."""
    person = answer.get("person_id")
    kind = CHANGE_KINDS.get(answer.get("kind", ""), "")
    message = (f"{kind}已提交，待另一名有审核权限的经办员审核（变更 {answer['change_id']}，{answer['status_label']}）"
               f"(waiting for approval: change {answer['change_id']})")
    return Outcome(UUID(person) if person else None, bool(answer.get("applied")), message,
                   list(answer.get("event_ids", [])), change=answer)


__all__ = ["MakerChecker", "outcome_of"]
