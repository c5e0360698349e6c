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

from datetime import date, datetime, timezone
from typing import Any, Callable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from ledger.application import Ledger, Outcome
from ledger.domain.approvals import (CHANGE_KINDS, MERGE_KINDS, PendingChange, check_decision, duplicate_refund,
                                     needs_approval, not_found)
from ledger.domain.chain import content_digest
from ledger.domain.errors import Conflict, DomainError
from ledger.domain.identity import mask_id_number
from ledger.domain.person import Person, business_date
from ledger.domain.vocabulary import EnrollmentEndReason, parse_code
from ledger.inbound_records import Provenance
from ledger.log import get_logger

log = get_logger("ledger.maker_checker")

_PROPOSED_TOPIC = get_topic(PendingChange.Proposed)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class MakerChecker:
    """The ledger's pending changes (待审核变更): proposed by one clerk, decided by another."""

    #: Retries of an approval that lost a race with another writer of the same persons.
    max_attempts = 10

    def __init__(self, ledger: Ledger, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.ledger = ledger
        self.clock = clock

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
        payload = {**payload, "digest": content_digest({"kind": kind, "region_code": region_code,
                                                        "person_id": str(person_id), **payload})}
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
        summary = (f"将参保人 {mask_id_number(merged.id_number)} 合并至 {mask_id_number(survivor.id_number)}"
                   f"（{MERGE_KINDS[merge_kind]}）")
        return self._propose(kind="MERGE_PERSONS", region_code=region_code, person_id=survivor_id, payload={
            "survivor_person_id": str(survivor_id), "merged_person_id": str(merged_id), "merge_kind": merge_kind,
            "reason": str(reason).strip()[:500]}, summary=summary, provenance=provenance)

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
            raise DomainError("ENROLLMENT_NOT_ACTIVE", "there is no enrollment in force to end (没有可终止的参保记录)")
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

    # ------------------------------------------------------------------ deciding
    def approve(self, change_id: str, *, approver: str, provenance: Provenance) -> dict[str, Any]:
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
            change.approve(approver=approver, at=now, result=result)
            event_ids = [str(e.event_id) for a in aggregates for e in a.pending_events]
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
        raise Conflict("CHANGE_EXPIRED", f"该变更已于 {change.expires_at.isoformat()} 过期，请重新提出 "
                                         "(the change expired; propose it again)", change_id=change.change_id)

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
                   now: datetime) -> tuple[list[Person], dict[str, Any]]:
        """The persons changed by the approved change (not saved yet) and what it did."""
        p = change.payload
        prov = {**provenance.as_dict(), "change_id": change.change_id, "proposed_by": change.proposed_by,
                "approved_by": approver}
        today = business_date(now)
        if change.kind == "MERGE_PERSONS":
            survivor = self.ledger.get_person(UUID(p["survivor_person_id"]))
            merged = self.ledger.get_person(UUID(p["merged_person_id"]))
            self._check_merge(survivor, merged)
            common = dict(change_id=change.change_id, merge_kind=p["merge_kind"], reason=p["reason"],
                          proposed_by=change.proposed_by, approved_by=approver, effective_date=today, provenance=prov)
            merged.merge_into(survivor_person_id=str(survivor.id), **common)
            survivor.absorb(merged_person_id=str(merged.id), **common)
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
        raise DomainError("CHANGE_KIND_UNKNOWN", f"未知的变更类型 {change.kind} (unknown kind of change)")


def outcome_of(answer: dict[str, Any]) -> Outcome:
    """A maker-checker answer as the ledger's :class:`Outcome` (for entrances that show outcomes)."""
    person = answer.get("person_id")
    return Outcome(UUID(person) if person else None, bool(answer.get("applied")),
                   f"{CHANGE_KINDS.get(answer.get('kind', ''), '')} {answer.get('status_label', '')}".strip(),
                   list(answer.get("event_ids", [])))


__all__ = ["MakerChecker", "outcome_of"]
