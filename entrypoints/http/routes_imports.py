"""Upload of the registration spreadsheet (批量参保登记): see :mod:`consumers.spreadsheets`."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from ledger.domain.errors import DomainError
from entrypoints.http.auth import Principal
from consumers.spreadsheets import expected_columns_text, import_file
from infra.limits import MIB, body_limit
from entrypoints.http.models import ErrorOut
from entrypoints.http.multipart import parse_multipart
from entrypoints.http.routes_commands import clerk

router = APIRouter(tags=["batch import (批量导入)"])

DESCRIPTION = (
    "Registers and enrolls one person per row, in the clerk's regions only.\n\n"
    f"Columns (Chinese or English headers): {expected_columns_text()}.\n\n"
    "Bad rows are reported by row number (the header is row 1) with a code and a message; the others "
    "are imported. A wrong header imports nothing (`IMPORT_COLUMNS`, listing the expected columns). "
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
async def upload(request: Request, response: Response, who: Principal = Depends(clerk)) -> dict[str, Any]:
    data, filename = await _read_upload(request)
    report = await run_in_threadpool(
        import_file, request.app.state.system.ledger, data, filename, user=who.user,
        request_id=request.state.request_id, source="batch", region_allowed=lambda region: region in who.scopes,
    )
    response.status_code = 201 if report["imported"] else 200
    return report

