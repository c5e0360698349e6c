"""Maker-checker (双人复核) over HTTP: changes proposed by one clerk, approved or rejected by another.

* ``POST /persons/{id_type}/{id_number}/merges``: a clerk proposes merging another record into this
  person (参保人合并); 202 with the pending change;
* ``POST /persons/{id_type}/{id_number}/enrollments/end`` (:mod:`entrypoints.http.routes_commands`)
  proposes an enrollment end the same way;
* ``GET /changes?status=&region=``: the changes of the caller's regions (auditors: all), pending by default;
* ``GET /changes/{change_id}``: one change;
* ``POST /changes/{change_id}/approve`` and ``/reject``: an approver of the change's region decides;
  the change is carried out on approval (201), an approved change approved again is 200 ``applied: false``.

The change id is the proposing request's ``X-Request-ID`` (or one generated): proposing again with
the same id and body is 200 ``applied: false``. Rules: :mod:`entrypoints.http.approvals`.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from entrypoints.http import approvals as ap
from entrypoints.http import deps
from entrypoints.http.auth import Principal
from entrypoints.http.models import ErrorOut

router = APIRouter(tags=["maker-checker (双人复核)"], responses={
    401: {"model": ErrorOut, "description": "no usable bearer token"},
    403: {"model": ErrorOut, "description": "not a clerk / approver of this region"},
    404: {"model": ErrorOut, "description": "unknown person or change"},
    409: {"model": ErrorOut, "description": "already decided, expired, change id reused"},
    422: {"model": ErrorOut, "description": "approval by the clerk who proposed (APPROVAL_BY_MAKER), malformed body"},
})


def _answer(response: Response, answer: dict[str, Any], *, pending_status: int = 202) -> dict[str, Any]:
    response.status_code = (pending_status if answer["status"] == "PENDING" else 201) if answer["applied"] else 200
    return answer


@router.post("/persons/{id_type}/{id_number}/merges", status_code=202,
             summary="Propose merging another person record into this one (参保人合并)")
def propose_merge(id_type: str, id_number: str, body: ap.MergeIn, request: Request, response: Response,
                  who: Principal = Depends(deps.principal)) -> dict:
    """The record ``merged_id_type``/``merged_id_number`` is to be merged into this person (kept). Nothing
    changes until an approver of the region approves: then this person's history records the merge
    (naming both clerks), the other record takes no new fact, its inbound records (tax, status,
    registry) go to this person, and the views count the person once."""
    answer = ap.propose_merge(request.app.state.system.ledger, who, id_type, id_number, body,
                              provenance=deps.provenance(request, who, record_key="merge"))
    return _answer(response, answer)


Status = Annotated[ap.ChangeStatus, Query(description="PENDING (default), APPROVED, REJECTED, EXPIRED or ALL")]
Region = Annotated[str | None, Query(pattern=r"^\d{6}$", description="6-digit region code")]


@router.get("/changes", summary="Changes waiting for (or decided by) a second clerk (待审核变更)")
def list_changes(request: Request, status: Status = "PENDING", region: Region = None,
                 who: Principal = Depends(deps.principal)) -> dict:
    """Clerks and approvers see their regions' changes, auditors all. Each row: change id, kind, region,
    summary (ID numbers masked), proposer and when, expiry, status and, once decided, who and when; the
    persons it touches (``persons``: ID number and name masked, at most 3; ``person_count``)."""
    ledger = request.app.state.system.ledger
    rows = ap.with_persons(ledger, ap.list_changes(ledger, who, region=region, status=status))
    return {"status": status, "count": len(rows), "changes": rows}


@router.get("/changes/{change_id}", summary="One change (变更详情)")
def get_change(change_id: str, request: Request, who: Principal = Depends(deps.principal)) -> dict:
    """The change with its status now (a pending change past its expiry shows EXPIRED), to clerks and
    approvers of its region and to auditors."""
    regions = ap.visible_regions(who)
    change = ap.service(request.app.state.system.ledger).get(change_id)
    if regions is not None and change.region_code not in regions:
        who.require_region(change.region_code, action="read")
    return change.as_dict(ap.service(request.app.state.system.ledger).clock())


@router.post("/changes/{change_id}/approve", status_code=201, summary="Approve and carry out a change (审核通过)")
def approve(change_id: str, request: Request, response: Response, body: ap.ApproveIn | None = None,
            who: Principal = Depends(deps.principal)) -> dict:
    """Only an approver of the change's region, never the clerk who proposed it (422 ``APPROVAL_BY_MAKER``);
    a change past its expiry is 409 ``CHANGE_EXPIRED``; approving an approved change again changes nothing."""
    answer = ap.approve(request.app.state.system.ledger, who, change_id, note=body.note if body else None,
                        provenance=deps.provenance(request, who, record_key=f"change:{change_id}"))
    return _answer(response, answer)


@router.post("/changes/{change_id}/reject", status_code=201, summary="Reject a change (驳回)")
def reject(change_id: str, body: ap.RejectIn, request: Request, response: Response,
           who: Principal = Depends(deps.principal)) -> dict:
    """Only an approver of the change's region, never the clerk who proposed it, with a reason; nothing of
    the change is ever carried out. Rejecting it again (same approver) changes nothing."""
    answer = ap.reject(request.app.state.system.ledger, who, change_id, body,
                       provenance=deps.provenance(request, who, record_key=f"change:{change_id}"))
    return _answer(response, answer)
