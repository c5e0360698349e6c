"""Transfer lists (转移接续清单): each region's incoming and outgoing transfers, open and overdue first.

The receiving region's clerks see the transfers sent to them (their inbox, 待转入) before the
person is enrolled there, so they can complete the transfer-in without retyping figures;
the sending region's clerks see what they sent. Each row says where the transfer stands,
the time limit of the awaited half in working days (from the policy tables) and whether it
is overdue (超期). ID numbers are shown in full to the clerks of the region (who need them
to complete the transfer) and to auditors. ``status_label`` and ``explanation`` are Chinese, or English
with ``Accept-Language: en`` (the codes and figures never change).
"""
from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from ledger.domain.identity import mask_id_number
from ledger.domain.places import validate_region_code
from entrypoints.http import deps
from entrypoints.http.routes_persons import today
from entrypoints.http.auth import Forbidden, Principal, Role
from entrypoints.http.errors import request_lang
from entrypoints.http.web import labels
from entrypoints.http.models import ErrorOut
from ledger.log import get_logger

log = get_logger("entrypoints.http.transfers")

router = APIRouter(tags=["transfers (转移接续)"], responses={
    401: {"model": ErrorOut, "description": "no usable bearer token"},
    403: {"model": ErrorOut, "description": "not a clerk of this region, nor an auditor"},
    422: {"model": ErrorOut, "description": "a malformed region code or date"},
})


def region_transfers(ledger: Any, who: Principal, region: str, *, as_of: date, overdue_only: bool,
                     lang: str = labels.DEFAULT_LANG) -> dict[str, Any]:
    """The list the route and ``ledger clerk transfers`` answer with (checks the caller's region); the words
    (``status_label``, ``explanation``) in ``lang``."""
    who.require_role(Role.CLERK, Role.AUDITOR, action="read transfer lists")
    region = validate_region_code(region)
    if who.role == Role.CLERK and not who.has_region(region):
        raise Forbidden("SCOPE_FORBIDDEN", f"no access to region {region}: your token covers {who.scope_text()} "
                                           f"(你没有参保地 {region} 的权限)", region_code=region)
    rows = ledger.transfers_of_region(region, today=as_of, overdue_only=overdue_only)
    full = who.sees_full_id(region)
    for row in rows:
        if not full:
            row["id_number"] = mask_id_number(row["id_number"])
        if lang != labels.DEFAULT_LANG:
            row.update(status_label=labels.transfer_status(row["status"], lang),
                       explanation=labels.transfer_explanation(row, lang))
    log.info("transfers_read", region=region, rows=len(rows), overdue_only=overdue_only)
    return {
        "region": region, "as_of": as_of, "count": len(rows),
        "incoming_open": sum(1 for r in rows if r["direction"] == "INCOMING" and r["awaiting"]),
        "outgoing_open": sum(1 for r in rows if r["direction"] == "OUTGOING" and r["awaiting"]),
        "overdue": sum(1 for r in rows if r["overdue"]),
        "transfers": rows,
    }


@router.get("/transfers", summary="A region's incoming and outgoing transfers (转移接续清单)")
def list_transfers(
    request: Request,
    region: Annotated[str, Query(description="6-digit region code")],
    overdue: Annotated[bool, Query(description="only transfers past their time limit (超期)")] = False,
    as_of: Annotated[date | None, Query(description="the day the time limits are counted to (default: today)")] = None,
    who: Principal = Depends(deps.principal),
) -> dict:
    """Incoming transfers (the in half is this region's to complete: 待转入; or received from another
    province, marked ``external``) and outgoing ones, with status, figures sent, the awaited half's
    due date in working days and ``overdue``. Clerks of the region and auditors."""
    return region_transfers(request.app.state.system.ledger, who, region, as_of=as_of or today(),
                            overdue_only=overdue, lang=request_lang(request))
