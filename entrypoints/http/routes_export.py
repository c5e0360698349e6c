"""The gap list as a file to download: CSV (UTF-8 with BOM, for Excel) and XLSX (应保尽保名单导出).

Same parameters, scope checks and rows as ``GET /grids/{code}/gaps``; the columns and the
masking are :mod:`entrypoints.http.web.exports` (ID numbers always masked in a file). A file's
headers, sheet and file names and words are Chinese, or English with ``?lang=en`` (a plain download
link sends no header) or ``Accept-Language: en`` (:func:`download_lang`).
"""
from __future__ import annotations

from datetime import date
from typing import Annotated, Callable

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from entrypoints import catalogue
from entrypoints.http import deps
from entrypoints.http.errors import request_lang
from entrypoints.http.auth import Principal
from entrypoints.http.models import ErrorOut
from entrypoints.http.routes_grids import AsOf, Year, check_area_code
from entrypoints.http.routes_persons import today
from entrypoints.http.web import exports
from ledger.log import get_logger

log = get_logger("entrypoints.http.export")

router = APIRouter(tags=["grids and arrears (网格)"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut, "description": "not one of your grids"},
    404: {"model": ErrorOut, "description": "unknown grid or township, or year without a policy table"},
    422: {"model": ErrorOut, "description": "malformed code, date or reason"},
})

Reason = Annotated[str | None, Query(description="only this reason, e.g. SUBSIDISED_NOT_COVERED, LAPSED")]
Lang = Annotated[str | None, Query(max_length=16, description="the file's language: `en` for English; default: "
                                                            "the Accept-Language header, else Chinese")]


def download_lang(request: Request, lang: str | None) -> str:
    """``?lang=`` when given (``en``... for English, anything else Chinese), else the Accept-Language header."""
    return catalogue.lang_of(lang) if lang else request_lang(request)


def _export(request: Request, who: Principal, code: str, year: int | None, as_of: date | None, reason: str | None,
            extension: str, media_type: str, render: Callable[[list, str], bytes], lang: str) -> Response:
    code = check_area_code(code)
    who.require_grid(code)
    as_of = as_of or today()
    year = year or as_of.year
    reads = request.app.state.reads
    gaps = reads.gaps(code, year=year, as_of=as_of, reason=reason)
    rows = exports.table_rows(gaps, reads.identities(sorted({g["person_id"] for g in gaps})),
                              request.app.state.system.places, lang)
    body = render(rows, lang)
    log.info("grid_gaps_exported", area_code=code, year=year, reason=reason, rows=len(rows), format=extension)
    name = exports.download_name(code, year, reason, extension, lang)
    return Response(content=body, media_type=media_type, headers={
        "Content-Disposition": exports.content_disposition(name),
        "Cache-Control": "no-store",
        "X-Row-Count": str(len(rows)),
    })


@router.get("/grids/{code}/gaps.csv", summary="The gap list as CSV for Excel (应保尽保名单 CSV)",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def gaps_csv(code: str, request: Request, year: Year = None, as_of: AsOf = None, reason: Reason = None,
             lang: Lang = None, who: Principal = Depends(deps.principal)) -> Response:
    """The rows of ``GET /grids/{code}/gaps`` with Chinese headers (English with ``lang=en``), UTF-8 with a
    byte-order mark (so Excel shows the Chinese), the reason's label and masked ID numbers."""
    return _export(request, who, code, year, as_of, reason, "csv", exports.CSV_MEDIA_TYPE, exports.csv_bytes,
                   download_lang(request, lang))


@router.get("/grids/{code}/gaps.xlsx", summary="The gap list as an Excel workbook (应保尽保名单 XLSX)",
            response_class=Response, responses={200: {"content": {exports.XLSX_MEDIA_TYPE: {}}}})
def gaps_xlsx(code: str, request: Request, year: Year = None, as_of: AsOf = None, reason: Reason = None,
              lang: Lang = None, who: Principal = Depends(deps.principal)) -> Response:
    """The same rows as the CSV in one sheet 应保尽保名单 (``gap list`` in English): bold frozen header, column
    widths, filters."""
    return _export(request, who, code, year, as_of, reason, "xlsx", exports.XLSX_MEDIA_TYPE, exports.xlsx_bytes,
                   download_lang(request, lang))
