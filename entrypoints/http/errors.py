"""Error answers: every one is ``{"code", "message", "details"}`` with a stable code.

* :class:`~ledger.domain.errors.DomainError` -> its ``http_status`` (422, 404 NotFound,
  409 Conflict, 401/403 from :mod:`entrypoints.http.auth`);
* a body or parameter pydantic refuses -> 422 with the first problem's code
  (``AMOUNT_NOT_INTEGER_FEN``, ``AMOUNT_NOT_POSITIVE``, ``DATE_INVALID``, ``INSTANT_INVALID``,
  otherwise ``BODY_INVALID`` for the body and ``PARAMETER_INVALID`` for the URL) and every
  problem in ``details.errors`` as ``{field, code, message}`` (at most
  :data:`infra.limits.MAX_REPORTED_ERRORS`; beyond that ``details.total`` and
  ``details.truncated``);
* routing errors (unknown path, wrong method) -> their status with ``NOT_FOUND`` /
  ``METHOD_NOT_ALLOWED``;
* a body the framework cannot parse at all (nested too deeply for the JSON parser, for
  instance: it answers 400 before validation) -> 422 ``BODY_INVALID``, like any other
  unreadable body, so the API answers the one status its OpenAPI document declares.
"""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.domain.errors import DomainError
from infra.limits import MAX_REPORTED_ERRORS
from entrypoints.http.models import ERROR_CODES

_DATE_TYPES = {"date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact",
               "date_future", "date_past"}
_STATUS_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "BODY_TOO_LARGE", 415: "MEDIA_TYPE_UNSUPPORTED"}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details or {}}


def _field(loc: tuple[Any, ...]) -> tuple[str, str]:
    where = str(loc[0]) if loc else "body"
    rest = [str(p) for p in loc[1:]]
    return where, ".".join(rest) or where


def _problem(error: dict[str, Any]) -> dict[str, str]:
    kind = error.get("type", "")
    where, field = _field(tuple(error.get("loc", ())))
    if kind in ERROR_CODES:
        code = ERROR_CODES[kind]
    elif kind in _DATE_TYPES:
        code = "DATE_INVALID"
    else:
        code = "BODY_INVALID" if where == "body" else "PARAMETER_INVALID"
    message = error.get("msg", "is not valid")
    if kind == "missing":
        message = "is required"
    elif kind == "extra_forbidden":
        message = "is not a field of this request; remove it or check its spelling"
    elif kind == "json_invalid":
        field = "body"
        message = f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'syntax error')})"
    elif kind == "string_pattern_mismatch":
        message = f"has the wrong shape: {error.get('ctx', {}).get('pattern', '')} expected"
    elif kind.startswith("value_error") or kind in ERROR_CODES:
        message = error.get("msg", "").removeprefix("Value error, ")
    if kind != "json_invalid":
        message = f"{field}: {message}"
    return {"field": field, "code": code, "message": message}


def validation_problems(errors: list[dict[str, Any]], *, where: str | None = None) -> list[dict[str, str]]:
    """Each problem pydantic found as ``{field, code, message}``; ``where`` puts a model's own errors in that place."""
    if where is not None:
        errors = [{**e, "loc": (where, *e.get("loc", ()))} for e in errors]
    return [_problem(e) for e in errors]


def validation_error_response(errors: list[dict[str, Any]]) -> JSONResponse:
    """422 with the first problem's code; at most MAX_REPORTED_ERRORS problems listed, the total beside them."""
    total = len(errors)
    problems = validation_problems(errors[:MAX_REPORTED_ERRORS])
    first = problems[0] if problems else {"code": "BODY_INVALID", "message": "the request is not valid"}
    more = f" (and {total - 1} more problem{'s' if total > 2 else ''})" if total > 1 else ""
    details: dict[str, Any] = {"errors": problems}
    if total > len(problems):
        details.update(total=total, truncated=True)
    return JSONResponse(status_code=422, content=error_body(first["code"], first["message"] + more, details))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return JSONResponse(status_code=exc.http_status, content=exc.as_dict(), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error_response(list(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            return JSONResponse(status_code=422, content=error_body(
                "BODY_INVALID", "the body could not be read; send one JSON object with the fields of this request"))
        code = _STATUS_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404:
            message = f"there is no route {request.url.path}; see /docs for the routes"
        return JSONResponse(status_code=exc.status_code, content=error_body(code, message), headers=exc.headers)
