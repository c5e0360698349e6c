"""Maker-checker (双人复核) for clerks and approvers: propose, list, approve, reject.

What the HTTP routes (:mod:`entrypoints.http.routes_approvals`) and ``ledger clerk ...``
(:mod:`entrypoints.http.approvals_cli`) share, so both refuse the same input with the same
codes. The rules of a change are the domain's (:mod:`ledger.domain.approvals`) and the
ledger's (:mod:`ledger.maker_checker`); here is who may do what:

* a **clerk** (医保经办) proposes a change on persons of their regions: a merge of two person
  records (both must be theirs to read), an enrollment end, a correction above the threshold;
* an **approver** (医保审核, role ``approver``, scopes: region codes) approves or rejects a change
  of one of their regions; the approver is the token's user, never a name in the body, and
  never the clerk who proposed (``APPROVAL_BY_MAKER``, whichever token that clerk uses);
* clerks and approvers list the changes of their regions, auditors every region's.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from entrypoints import catalogue
from entrypoints.http.access import acting_region, person_access
from entrypoints.http.auth import Forbidden, Principal, Role
from entrypoints.http.models import Body, BusinessDate
from events.ledger_events import mask_name
from ledger.domain.approvals import MERGE_KINDS, STATUS_LABELS
from ledger.domain.errors import NotFound
from ledger.domain.identity import mask_id_number
from ledger.domain.person import BUSINESS_TZ
from ledger.inbound_records import Provenance
from ledger.maker_checker import MakerChecker


class MergeIn(Body):
    """Merge another person record into this one (参保人合并): the same person registered twice, an old
    15-digit number upgraded to 18 digits, or a mistyped number corrected. Waits for an approver."""

    merged_id_type: str = Field("RESIDENT_ID", description="ID type of the record merged away (被合并记录的证件类型)")
    merged_id_number: str = Field(..., min_length=1, max_length=40,
                                  description="ID number of the record merged away (被合并记录的证件号码)")
    merge_kind: Literal["DUPLICATE", "ID_UPGRADE", "ID_CORRECTION"] = Field(
        ..., description="DUPLICATE (重复登记), ID_UPGRADE (15 位升 18 位), ID_CORRECTION (证件号码更正)")
    reason: str = Field(..., min_length=1, max_length=500, description="why (合并说明)")


class EndEnrollmentProposalIn(Body):
    """End an enrollment (终止参保), e.g. a duplicate resolved (DUPLICATE_RESOLVED, with the refund it implies)."""

    reason: Literal["DIED", "MOVED_OUT", "TRANSFERRED_OUT", "SWITCHED_SCHEME", "DUPLICATE_RESOLVED"]
    effective_date: BusinessDate
    enrollment_id: str | None = Field(None, max_length=40)


class ApproveIn(Body):
    """Approve a pending change (审核通过), optionally with a note (审核意见) kept with the decision."""

    note: str | None = Field(None, max_length=500, description="the approver's note (审核意见), optional")


class RejectIn(Body):
    """Reject a pending change (驳回): why."""

    reason: str = Field(..., min_length=1, max_length=500, description="why it is rejected (驳回理由)")


ChangeStatus = Literal["PENDING", "APPROVED", "REJECTED", "EXPIRED", "ALL"]


def service(ledger: Any) -> MakerChecker:
    return MakerChecker(ledger)


def _clerk_of_person(who: Principal, person: Any) -> None:
    who.require_role(Role.CLERK, action="propose changes")
    person_access(who, person)  # SCOPE_FORBIDDEN when not one of the clerk's persons


def propose_merge(ledger: Any, who: Principal, id_type: str, id_number: str, body: MergeIn, *,
                  provenance: Provenance) -> dict[str, Any]:
    """The clerk proposes merging ``body``'s record into the person ``id_type``/``id_number`` (kept)."""
    who.require_role(Role.CLERK, action="propose changes")
    survivor = ledger.find_person(id_type, id_number)
    merged = ledger.find_person(body.merged_id_type, body.merged_id_number)
    _clerk_of_person(who, survivor)
    _clerk_of_person(who, merged)
    region = acting_region(survivor)
    who.require_region(region)
    return service(ledger).propose_merge(survivor_id=survivor.id, merged_id=merged.id, merge_kind=body.merge_kind,
                                         reason=body.reason, region_code=str(region), provenance=provenance)


def propose_end_enrollment(ledger: Any, who: Principal, person: Any, *, reason: str, effective_date: date,
                           enrollment_id: str | None, provenance: Provenance) -> dict[str, Any]:
    """The clerk proposes ending an enrollment of ``person``; the region is the enrollment's."""
    _clerk_of_person(who, person)
    enrollment = person.enrollment(enrollment_id) if enrollment_id else person.active_enrollment
    region = enrollment.region_code if enrollment is not None else acting_region(person)
    who.require_region(region)
    return service(ledger).propose_end_enrollment(
        person_id=person.id, enrollment_id=enrollment_id, reason=reason, effective_date=effective_date,
        region_code=str(region), provenance=provenance)


def visible_regions(who: Principal) -> set[str] | None:
    """The regions whose changes ``who`` lists (None: every region, for auditors)."""
    who.require_role(Role.CLERK, Role.APPROVER, Role.AUDITOR, action="list pending changes")
    return None if who.role == Role.AUDITOR else set(who.scopes)


def list_changes(ledger: Any, who: Principal, *, region: str | None = None,
                 status: str = "PENDING") -> list[dict[str, Any]]:
    regions = visible_regions(who)
    if region is not None:
        if regions is not None and region not in regions:
            who.require_region(region, action="read")
        regions = {region}
    return service(ledger).changes(regions=regions, status=None if status == "ALL" else status)


#: How many of a change's persons a listed row names (a late-fee waiver may cover a whole employer).
PERSONS_SHOWN = 3


def with_persons(ledger: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with ``persons`` (参保人: ID number and name masked, as a grid page shows them; for a merge the
    record kept first, then the record merged away; at most :data:`PERSONS_SHOWN`) and ``person_count``.
    An approver can tell whom a change touches without the change list holding a full ID number."""
    shown: dict[str, dict[str, str] | None] = {}

    def person(pid: str) -> dict[str, str] | None:
        if pid not in shown:
            try:
                p = ledger.get_person(UUID(pid))
                shown[pid] = {"id_number_masked": mask_id_number(p.id_number), "name_masked": mask_name(p.name)}
            except (NotFound, ValueError):
                shown[pid] = None
        return shown[pid]

    out = []
    for row in rows:
        p = row.get("payload") or {}
        if row.get("kind") == "MERGE_PERSONS":
            ids = [p.get("survivor_person_id", row["person_id"]), p.get("merged_person_id", "")]
        elif p.get("persons"):
            ids = [str(pair[0]) for pair in p["persons"]]
        else:
            ids = [row["person_id"]]
        named = [x for x in (person(pid) for pid in ids[:PERSONS_SHOWN] if pid) if x is not None]
        out.append({**row, "persons": named, "person_count": len(ids)})
    return out


def _approver_of(ledger: Any, who: Principal, change_id: str) -> None:
    who.require_role(Role.APPROVER, action="approve or reject changes")
    change = service(ledger).get(change_id)
    regions = change.payload.get("regions") or [change.region_code]
    outside = [r for r in regions if not who.has_region(r)]
    if outside:
        raise Forbidden("SCOPE_FORBIDDEN", f"该变更属于参保地 {change.region_code}，你没有该地的审核权限 (no approver rights "
                                           f"for region {change.region_code}: your token covers {who.scope_text()})",
                        region_code=change.region_code)


def approve(ledger: Any, who: Principal, change_id: str, *, provenance: Provenance,
            note: str | None = None) -> dict[str, Any]:
    _approver_of(ledger, who, change_id)
    return service(ledger).approve(change_id, approver=who.user, provenance=provenance, note=note)


def reject(ledger: Any, who: Principal, change_id: str, body: RejectIn, *, provenance: Provenance) -> dict[str, Any]:
    _approver_of(ledger, who, change_id)
    return service(ledger).reject(change_id, checker=who.user, reason=body.reason, provenance=provenance)


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def _beijing(instant: str | None) -> str:
    """A stored UTC instant (ISO) as a clerk reads it: Beijing time to the minute."""
    if not instant:
        return ""
    return datetime.fromisoformat(instant).astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")


def _summary(row: dict[str, Any], lang: str) -> str:
    """What the change does: the Chinese summary written when it was proposed; in English, said from its payload
    (catalogue ``[approvals_lines]``, ``summary.KIND``), the stored summary when the kind has no English line."""
    if lang == "zh":
        return str(row["summary"])
    p = row.get("payload") or {}
    record = p.get("record") or {}
    values = {**p, **{f"record_{k}": v for k, v in record.items()},
              "amount": yuan(int(p.get("amount_fen") or record.get("amount_fen") or 0)),
              "persons_n": len(p.get("persons") or [])}
    key = f"summary.{row.get('kind')}"
    if row.get("kind") == "PAYMENT_CORRECTION":
        key += ".REFUND" if record.get("kind") == "REFUND" else ".REVERSAL"
    try:
        return catalogue.text("approvals_lines", key, lang, **values)
    except KeyError:
        return str(row["summary"])


def change_line(row: dict[str, Any], lang: str = catalogue.DEFAULT_LANG) -> str:
    """One change in a clerk's words, in ``lang`` (catalogue ``[approvals_lines]``); times in Beijing time."""
    def say(key: str, **values: Any) -> str:
        return catalogue.text("approvals_lines", key, lang, **values)

    zh = lang == "zh"
    status = row["status_label"] if zh else say(f"status.{row['status']}")
    kind_key = f"kind.{row['kind']}"
    kind = row["kind_label"] if zh else say(kind_key) if catalogue.has("approvals_lines", kind_key) else row["kind"]
    refund = row.get("result", {}).get("refund_owed_fen", row.get("payload", {}).get("refund_owed_fen"))
    summary = _summary(row, lang)
    # the refund owed once: the Chinese summary of an end of enrollment already names it (应退重复缴费)
    owed = say("owed", yuan=yuan(int(refund))) if refund is not None and not (zh and "应退" in summary) else ""
    decided = say("decided", user=row["decided_by"], at=_beijing(row.get("decided_at"))) if row.get("decided_by") else ""
    return say("line", change=row["change_id"], status=status, kind=kind, region=row["region_code"],
               summary=summary, owed=owed, maker=row["proposed_by"], at=_beijing(row["proposed_at"]),
               until=_beijing(row["expires_at"]), decided=decided)


__all__ = ["ApproveIn", "ChangeStatus", "EndEnrollmentProposalIn", "MERGE_KINDS", "MergeIn", "RejectIn", "STATUS_LABELS", "approve",
           "change_line", "list_changes", "propose_end_enrollment", "propose_merge", "reject", "visible_regions",
           "with_persons", "yuan"]
