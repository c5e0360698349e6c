"""What every route needs: the caller, and the provenance of what the request writes.

The system (``app.state.system``), the tokens and the read side (``app.state.reads``) hang
off the app; ``request.state.request_id`` is set by the request-context middleware.
"""
from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from entrypoints.http.auth import Principal
from ledger.inbound_records import Provenance

#: Only for the OpenAPI document (the "Authorize" button); the header is checked in :func:`principal`.
bearer = HTTPBearer(auto_error=False, description="a token from the tokens file (ledger token add)")


def principal(request: Request, _: Any = Depends(bearer)) -> Principal:
    """The authenticated caller (401 without a usable token).

    The entrance gate (:mod:`entrypoints.http.gate`) has checked the token before the body was read
    and left the principal in the request state; the check here is for an app without the gate.
    """
    who = getattr(request.state, "principal", None)
    if who is None:
        who = request.app.state.tokens.authenticate(request.headers.get("authorization"))
    request.state.user = who.user
    request.state.role = who.role.value
    return who


def provenance(request: Request, who: Principal, *, record_key: str | None = None, source: str = "api") -> Provenance:
    return Provenance(source=source, user=who.user, request_id=request.state.request_id, record_key=record_key)
