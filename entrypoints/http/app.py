"""The FastAPI application: ``create_app(system, tokens)``, and ``serve`` for ``ledger serve``.

The app is built around a :class:`entrypoints.wiring.System` (the one wiring function builds
it, for tests on the in-memory store as for production on PostgreSQL) and a
:class:`entrypoints.http.auth.TokenStore`. Every request gets a request id (the caller's
``X-Request-ID`` when it is a sensible one, otherwise a new one), echoed in the response,
bound to every log line of the request and recorded in the provenance of what it writes.
Request paths hold ID numbers; the log configuration masks them, and uvicorn's own access
log (which would not) is off.
"""
from __future__ import annotations

import re
import time
import uuid
from typing import Any, Mapping

import structlog
from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from fastapi.responses import JSONResponse

from entrypoints.wiring import System, bootstrap
from infra.settings import load_settings
from entrypoints.http import routes_commands, routes_grids, routes_imports, routes_persons, routes_tax
from entrypoints.http import routes_approvals, routes_dashboard, routes_export, routes_fees, routes_transfers, routes_web
from entrypoints.http.auth import TokenStore
from entrypoints.http.api_messages import text
from entrypoints.http.errors import error_body, install_error_handlers, request_lang
from entrypoints.http.gate import EntranceGate
from entrypoints.http.read_model import ReadQueries, ViewReads
from ledger.log import get_logger

log = get_logger("entrypoints.http")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,100}")

DESCRIPTION = """\
Enrollment and contribution ledger for basic medical insurance (基本医疗保险参保缴费台账).

**Authentication.** Every route except this documentation needs `Authorization: Bearer <token>`.
Roles: `clerk` (医保经办: commands and imports in their regions, reads there), `grid_worker`
(网格员: gap lists, coverage and arrears of their grids, ID numbers masked), `auditor` (审计:
reads everything, with each person's event history), `tax_integration` (税务: posts collection
records, reads nothing). 401 = no usable token; 403 = the token's role or scope does not cover
the request.

**Money** is integer fen (分) everywhere: `40000` is 400 yuan. Floats and strings are refused
(`AMOUNT_NOT_INTEGER_FEN`). **Dates** are `YYYY-MM-DD` (`DATE_INVALID` otherwise).

**Errors** are `{"code", "message", "details"}`: the code is stable, the message says what to fix.

**Limits** (`infra.limits`). The token is checked before the body is read. Bodies: 64 KiB
(`/imports`: 10 MiB), else 413 `BODY_TOO_LARGE`; at most 256 JSON keys, depth 8 (422
`BODY_TOO_COMPLEX`); a 422 lists at most 20 problems (`details.total`). Imports and exports run a
few at a time: 503 `SERVER_BUSY` with `Retry-After` when all are busy (nothing was started).
Sheets: `FILE_TOO_LARGE`, `FILE_BOMB`, `FILE_TOO_MANY_ROWS`, `FILE_TOO_SLOW`.

**Resends.** Send `X-Request-ID` and reuse it when retrying: a command already applied answers
200 with `applied: false` instead of being applied twice.
"""

TAGS = [
    {"name": "clerk commands (经办)", "description": "Register, enroll, assess, correct, transfer, end, account."},
    {"name": "batch import (批量导入)", "description": "The agencies' registration spreadsheet."},
    {"name": "tax bureau feed (税务)", "description": "Collection records from the tax bureau's integration."},
    {"name": "persons (参保人)", "description": "One person: state, entitlement, history."},
    {"name": "grids and arrears (网格)", "description": "应保尽保 gap lists, coverage rates, arrears."},
    {"name": "transfers (转移接续)", "description": "Each region's incoming and outgoing transfers, overdue first."},
    {"name": "grid worker's page (网格员页面)", "description": "The web page at /web/, who am I, entitlement by person id."},
    {"name": "service", "description": "Health check."},
]


def create_app(system: System, tokens: TokenStore, *, reads: ReadQueries | None = None) -> FastAPI:
    """The HTTP API over ``system`` (from :func:`entrypoints.wiring.bootstrap`), admitting ``tokens``."""
    # /docs and /redoc load Swagger UI and ReDoc from this server (/static-offline-docs/...), not from a CDN:
    # an agency's isolated network never reaches one (issue 21).
    app: FastAPI = FastAPIOffline(
        title="Medical insurance ledger API (医保参保缴费台账)",
        version="1.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
    )
    app.state.system = system
    app.state.tokens = tokens
    app.state.reads = reads if reads is not None else default_reads(system)
    install_error_handlers(app)
    # Added before the request context, so it runs inside it: its refusals get a request id and a log line.
    app.add_middleware(EntranceGate)

    @app.middleware("http")
    async def request_context(request: Request, call_next: Any) -> Any:
        given = request.headers.get("x-request-id", "").strip()
        request.state.request_id_given = bool(given) and bool(_REQUEST_ID.fullmatch(given))
        request_id = given if request.state.request_id_given else uuid.uuid4().hex
        request.state.request_id = request_id
        request.state.user = None
        request.state.role = None
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:
            log.exception("request_failed", method=request.method, path=request.url.path)
            response = JSONResponse(status_code=500, content=error_body(
                "INTERNAL_ERROR", text("internal", request_lang(request), request_id=request_id),
                {"message_en": text("internal", "en", request_id=request_id)}))
        response.headers["X-Request-ID"] = request_id
        log.info("request", method=request.method, path=request.url.path, status=response.status_code,
                 user=request.state.user, role=request.state.role,
                 ms=round((time.perf_counter() - started) * 1000, 1))
        structlog.contextvars.clear_contextvars()
        return response

    @app.get("/health", tags=["service"], summary="Is the service up")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    for module in (routes_commands, routes_imports, routes_tax, routes_persons, routes_grids, routes_export,
                   routes_fees, routes_transfers, routes_approvals, routes_dashboard, routes_web):
        app.include_router(module.router)
    return app


def default_reads(system: System) -> ReadQueries:
    """The read side: the stored views (``projections.queries``); a person fresh from their own events, the lists
    caught up with the ledger before each read (``entrypoints.http.read_model``)."""
    return ViewReads(system)


def serve(host: str = "127.0.0.1", port: int = 8080, env: Mapping[str, str] | None = None) -> int:
    """Run the API with uvicorn on the system the environment (or ``env``) configures (``ledger serve``)."""
    import uvicorn

    tokens = TokenStore.from_env(env)
    system = bootstrap(load_settings(env) if env is not None else None)
    try:
        log.info("api_starting", host=host, port=port, persistence=system.settings.persistence)
        uvicorn.run(create_app(system, tokens), host=host, port=port, access_log=False, log_config=None)
    finally:
        system.close()
    return 0
