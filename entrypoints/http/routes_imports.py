"""Upload of the registration spreadsheet (批量参保登记): see :mod:`consumers.spreadsheets`."""
from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from ledger.domain.errors import DomainError
from entrypoints.http.auth import Principal
from entrypoints.http.api_messages import lang_of_header
from entrypoints.http.import_words import in_language, sheet_residence, template_places
from consumers.sheet_columns import expected_columns_text
from consumers.sheet_workbooks import XLSX_MEDIA_TYPE, error_workbook, template_csv, template_xlsx
from consumers.spreadsheets import import_file_and_sheet
from infra.limits import MIB, body_limit
from entrypoints.http.models import ErrorOut
from entrypoints.http.multipart import parse_multipart
from entrypoints.http.routes_commands import clerk

router = APIRouter(tags=["batch import (批量导入)"])

DESCRIPTION = (
    "Registers and enrolls one person per row, in the clerk's regions only.\n\n"
    f"Columns (Chinese headers, their synonyms, or English): {expected_columns_text()}. "
    "The template `GET /imports/template.xlsx` has a 填写说明 sheet listing each column, its synonyms "
    "and accepted values. Unknown columns (序号, 性别, 民族, ...) are ignored with a notice "
    "(`notices`); 参保地 left out defaults to the clerk's region when they have exactly one.\n\n"
    "所属乡镇 / 所属村（社区） take a name or a code: a name is read through the places table "
    "(`LEDGER_PLACES_FILE`) by the name valid on the row's 参保日期 within its 参保地, a village within its "
    "township (`IMPORT_PLACE_UNKNOWN`, `IMPORT_PLACE_AMBIGUOUS`, `IMPORT_PLACE_MISMATCH`). 联系电话 is a mainland "
    "mobile or a fixed line with its area code (`IMPORT_PHONE_INVALID`); it is kept encrypted with the village "
    "as the residents feed keeps them, and never exported.\n\n"
    "Bad rows are reported by row number (the header is row 1) with every problem (`problems`: code, "
    "column, Chinese message); the others are imported. `?errors=xlsx` answers with the error workbook "
    "instead: the refused rows with a 错误说明 column (ID numbers masked unless yours to read), the "
    "report's counts in the `X-Import-*` headers. A header missing a required column, or with a "
    "repeated one, imports nothing (`IMPORT_COLUMNS`, listing the columns). "
    "Sending the same file again imports nothing twice (`already_imported`); a person already enrolled "
    "in the scheme and region is `already_enrolled`. Send the file as the form field `file`, or as the "
    "raw body (`text/csv` or XLSX) with `?filename=`."
)

_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FILE_SCHEMA = {"type": "string", "format": "binary"}


async def _read_upload(request: Request) -> tuple[bytes, str]:
    # The entrance gate (entrypoints.http.gate) has checked the token and counts this body against the
    # route's limit (infra.limits) as it arrives; the sheet's own limits are read_sheet's.
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        files = [p for p in await run_in_threadpool(parse_multipart, body, content_type) if p.name == "file"]
        if len(files) != 1:
            raise DomainError("BODY_INVALID", "send exactly one file in the form field 'file'")
        return files[0].data, files[0].filename or request.query_params.get("filename", "upload")
    if not body:
        raise DomainError("BODY_INVALID", "the upload is empty; send the sheet as multipart/form-data field 'file'")
    return body, request.query_params.get("filename", "upload")


@router.post(
    "/imports",
    summary="Import a registration spreadsheet, CSV or XLSX (批量参保登记)",
    description=DESCRIPTION,
    responses={
        200: {"description": "report: nothing new imported (every row already imported, enrolled, or bad)"},
        201: {"description": "report: at least one row imported"},
        401: {"model": ErrorOut}, 403: {"model": ErrorOut},
        413: {"model": ErrorOut, "description": f"body larger than {body_limit('/imports') // MIB} MiB "
              "(BODY_TOO_LARGE), or a sheet over its limits: FILE_BOMB, FILE_TOO_MANY_ROWS, ... "
              "(see infra.limits)"},
        503: {"model": ErrorOut, "description": "SERVER_BUSY: every import slot is taken; nothing was "
              "started, send it again after Retry-After seconds"},
        422: {"model": ErrorOut, "description": "wrong columns (IMPORT_COLUMNS, nothing imported), unreadable file"},
    },
    openapi_extra={"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {"file": _FILE_SCHEMA}, "required": ["file"]}},
        "text/csv": {"schema": _FILE_SCHEMA},
        _XLSX: {"schema": _FILE_SCHEMA},
    }}},
)
async def upload(request: Request, response: Response, who: Principal = Depends(clerk),
                 errors: Literal["xlsx"] | None = Query(None, description="xlsx: answer with the error workbook")
                 ) -> Any:
    data, filename = await _read_upload(request)
    default_region = _own_region(who)
    system = request.app.state.system
    report, sheet, header = await run_in_threadpool(
        import_file_and_sheet, system.ledger, data, filename, user=who.user,
        request_id=request.state.request_id, source="batch", region_allowed=lambda region: region in who.scopes,
        default_region=default_region, residence=sheet_residence(system.places),
    )
    status = 201 if report["imported"] else 200
    in_language(report, lang_of_header(request.headers.get("accept-language")))
    if errors == "xlsx":
        book = await run_in_threadpool(error_workbook, sheet.header, header.columns, sheet.rows, report["lines"],
                                       reveal=lambda region: region in who.scopes, default_region=default_region)
        counts = {f"X-Import-{k.replace('_', '-').title()}": str(report[k])
                  for k in ("rows", "imported", "already_enrolled", "already_imported", "errors")}
        return Response(book, status_code=status, media_type=XLSX_MEDIA_TYPE, headers={
            **counts, "Content-Disposition": _attachment(f"错误行-{filename}")})
    response.status_code = status
    return report


def _own_region(who: Principal) -> str | None:
    """The clerk's region when they have exactly one: 参保地's default, the template's example."""
    return next(iter(who.scopes)) if len(who.scopes) == 1 else None


def _attachment(name: str) -> str:
    stem = name.rsplit(".", 1)[0] if name.lower().endswith((".csv", ".xlsx")) else name
    return f"attachment; filename=\"errors.xlsx\"; filename*=UTF-8''{quote(stem + '.xlsx')}"


@router.get("/imports/template.xlsx", summary="The registration sheet's template, XLSX (批量参保登记模板)",
            description="Chinese headers, one example row (delete it before importing) and a 填写说明 sheet "
                        "listing each column: required or not, accepted values, synonyms.",
            responses={200: {"content": {XLSX_MEDIA_TYPE: {}}}, 401: {"model": ErrorOut}, 403: {"model": ErrorOut}},
            response_class=Response)
def template_workbook(request: Request, who: Principal = Depends(clerk)) -> Response:
    region = _own_region(who)
    places = template_places(request.app.state.system.places, region)
    return Response(template_xlsx(region, places), media_type=XLSX_MEDIA_TYPE, headers={
        "Content-Disposition": "attachment; filename=\"template.xlsx\"; filename*=UTF-8''"
                               + quote("参保登记导入模板.xlsx")})


@router.get("/imports/template.csv", summary="The registration sheet's template, CSV UTF-8 (批量参保登记模板)",
            description="The template's header and example row, UTF-8 with a BOM (Excel opens it as Chinese); "
                        "the column help is in the XLSX template's 填写说明 sheet.",
            responses={200: {"content": {"text/csv": {}}}, 401: {"model": ErrorOut}, 403: {"model": ErrorOut}},
            response_class=Response)
def template_text(request: Request, who: Principal = Depends(clerk)) -> Response:
    region = _own_region(who)
    places = template_places(request.app.state.system.places, region)
    return Response(template_csv(region, places), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": "attachment; filename=\"template.csv\"; filename*=UTF-8''"
                               + quote("参保登记导入模板.csv")})

