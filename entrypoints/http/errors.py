"""Error answers: every one is ``{"code", "message", "details"}`` with a stable code.

Messages are Chinese unless the request's ``Accept-Language`` starts with ``en``
(:mod:`entrypoints.http.api_messages` holds the texts); each validation problem also carries
``message_en``. Codes never depend on the language.

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

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.domain.errors import DomainError
from infra.limits import MAX_REPORTED_ERRORS
from entrypoints.http.api_messages import (DEFAULT_LANG, PROBLEMS, choices, field_label, lang_of_header, localized,
                                           shape, text)
from entrypoints.http.models import ERROR_CODES

_DATE_TYPES = {"date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact",
               "date_future", "date_past", "datetime_type", "datetime_parsing", "datetime_from_date_parsing"}
_STATUS_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "BODY_TOO_LARGE", 415: "MEDIA_TYPE_UNSUPPORTED"}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details or {}}


def request_lang(request: Request) -> str:
    """``en`` when the request's Accept-Language starts with English, ``zh`` otherwise."""
    return lang_of_header(request.headers.get("accept-language"))


def _field(loc: tuple[Any, ...]) -> tuple[str, str]:
    where = str(loc[0]) if loc else "body"
    rest = [str(p) for p in loc[1:]]
    return where, ".".join(rest) or where


class _Blank(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "?"


def _sentence(kind: str, field: str, lang: str, error: dict[str, Any]) -> str:
    ctx = {k: str(v) for k, v in (error.get("ctx") or {}).items()}
    detail = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    values = _Blank(ctx, field=field_label(field, lang), detail=detail)
    if kind in ("literal_error", "enum"):
        values["choices"] = choices(re.findall(r"'([^']*)'", ctx.get("expected", "")) or ["?"], lang)
    elif kind == "string_pattern_mismatch":
        values["shape"] = shape(ctx.get("pattern", ""), lang)
    elif kind == "json_invalid":
        values["error"] = ctx.get("error", "syntax error")
    if kind in PROBLEMS:
        key = kind
    elif kind in _DATE_TYPES:
        key = "date_any"
    elif kind.startswith("value_error"):
        key = "value_error"
    else:
        key = "other"
    if lang == "en" and key in ("date_invalid", "instant_invalid", "date_any", "other") and kind not in _DATE_TYPES:
        return f"{field}: {detail}"  # our own English sentence (or pydantic's, for a type not in the catalogue)
    return PROBLEMS[key][lang].format_map(values)


def _problem(error: dict[str, Any], lang: str = DEFAULT_LANG) -> dict[str, str]:
    kind = error.get("type", "")
    where, field = _field(tuple(error.get("loc", ())))
    if kind in ERROR_CODES:
        code = ERROR_CODES[kind]
    elif kind in _DATE_TYPES:
        code = "DATE_INVALID"
    else:
        code = "BODY_INVALID" if where == "body" else "PARAMETER_INVALID"
    if kind == "json_invalid":
        field = "body"
    english = _sentence(kind, field, "en", error)
    message = english if lang == "en" else _sentence(kind, field, lang, error)
    return {"field": field, "code": code, "message": message, "message_en": english}


def validation_problems(errors: list[dict[str, Any]], *, where: str | None = None,
                        lang: str = DEFAULT_LANG) -> list[dict[str, str]]:
    """Each problem pydantic found as ``{field, code, message, message_en}`` (``message`` in ``lang``, Chinese
    unless asked); ``where`` puts a model's own errors in that place. The HTTP handlers pass the request's
    language, the command line its run's (``--lang`` / ``LEDGER_LANG``)."""
    if where is not None:
        errors = [{**e, "loc": (where, *e.get("loc", ()))} for e in errors]
    return [_problem(e, lang) for e in errors]


def validation_error_response(errors: list[dict[str, Any]], lang: str = DEFAULT_LANG) -> JSONResponse:
    """422 with the first problem's code; at most MAX_REPORTED_ERRORS problems listed, the total beside them."""
    total = len(errors)
    problems = validation_problems(errors[:MAX_REPORTED_ERRORS], lang=lang)
    first = problems[0] if problems else {"code": "BODY_INVALID", "message": text("invalid", lang)}
    more = text("more", lang, n=total - 1, s="s" if total > 2 else "") if total > 1 else ""
    details: dict[str, Any] = {"errors": problems}
    if total > len(problems):
        details.update(total=total, truncated=True)
    return JSONResponse(status_code=422, content=error_body(first["code"], first["message"] + more, details))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return JSONResponse(status_code=exc.http_status, content=localized(exc, request_lang(request)),
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error_response(list(exc.errors()), request_lang(request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        lang = request_lang(request)
        if exc.status_code == 400:
            return JSONResponse(status_code=422, content=error_body(
                "BODY_INVALID", text("unreadable", lang), {"message_en": text("unreadable", "en")}))
        code = _STATUS_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        if exc.status_code == 404:
            key, values = "not_found", {"path": request.url.path[:200]}
        elif exc.status_code == 405:
            key, values = "method", {"method": request.method}
        else:
            key, values = "refused", {"status": exc.status_code}
        message = text(key, lang, **values)
        if exc.status_code not in (404, 405) and isinstance(exc.detail, str) and exc.detail and lang == "en":
            message = exc.detail
        return JSONResponse(status_code=exc.status_code, content=error_body(
            code, message, {"message_en": text(key, "en", **values)}), headers=exc.headers)
