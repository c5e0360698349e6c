"""Late fees (滞纳金) and arrears exports: the fee list, collecting and waiving a fee, the files to download.

* ``GET /fees`` (``.csv``, ``.xlsx``): every employer month with a late fee still owed (``all=true``:
  paid and waived ones too), per employee, with the arithmetic shown, and per employer;
* ``POST /late-fees/payments``: a clerk records a fee paid (from the receipt), for an employer's
  month (split over its employees) or one employee; idempotent on the voucher;
* ``POST /late-fees/waivers``: a fee waived with reason and approver; idempotent on ``X-Request-ID``;
* ``GET /arrears.csv`` / ``.xlsx``: the arrears list (``GET /arrears``) as a file: the XLSX has the
  employer totals (单位欠费合计) and the rows (欠费明细); the CSV the rows, or with ``by=employer`` the totals.

Files carry masked ID numbers whoever asks (they leave the system). Their headers, sheet and file names
and words are Chinese, or English with ``?lang=en`` or ``Accept-Language: en``; in ``GET /fees`` the
``fee_status_label`` and ``arithmetic`` follow Accept-Language (the figures and codes never change).
"""
from __future__ import annotations

from datetime import date
from urllib.parse import quote
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from entrypoints.http import deps
from entrypoints.http import late_fees as lf
from entrypoints.http.auth import Principal, Role
from entrypoints.http.models import ErrorOut
from entrypoints.http.errors import request_lang
from entrypoints.http.routes_export import Lang, download_lang
from entrypoints.http.routes_grids import AsOf, arrears as arrears_read, check_area_code, shown
from entrypoints.http.web import labels
from entrypoints.http.routes_persons import today
from entrypoints.http.web import ledger_exports
from ledger.domain.places import validate_region_code
from ledger.log import get_logger

log = get_logger("entrypoints.http.fees")


def _ascii(text: str) -> str:
    """A file-name part of letters, digits, ``-`` and ``_`` only (an employer id is the caller's text)."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in text)[:40]

router = APIRouter(tags=["late fees and arrears exports (滞纳金)"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut, "description": "not one of your regions or grids"},
    404: {"model": ErrorOut, "description": "unknown region, grid or person"},
    409: {"model": ErrorOut, "description": "voucher or waiver conflict, or already waived"},
    422: {"model": ErrorOut, "description": "malformed body, nothing owed, more than owed, no reason or approver"},
})

Region = Annotated[str | None, Query(description="6-digit region code")]
Grid = Annotated[str | None, Query(description="12-digit grid or 9-digit township code")]
Employer = Annotated[str | None, Query(max_length=40, description="only this employer (单位编号)")]
All = Annotated[bool, Query(description="also fees paid or waived (已缴清/已减免)")]


def _fee_rows(request: Request, who: Principal, region: str | None, grid: str | None, employer: str | None,
              as_of: date, include_cleared: bool) -> list[dict[str, Any]]:
    who.require_role(Role.GRID_WORKER, Role.CLERK, Role.AUDITOR, action="read late fees")
    if region is not None:
        region = validate_region_code(region)
    if grid is not None:
        grid = check_area_code(grid)
    rows = lf.fees_for(request.app.state.reads, who, as_of=as_of, region=region, grid=grid, employer=employer,
                       include_cleared=include_cleared)
    return shown(request, rows, who)


@router.get("/fees", summary="Late fees owed, with the arithmetic (滞纳金清单)")
def fees(request: Request, region: Region = None, grid: Grid = None, employer: Employer = None, as_of: AsOf = None,
         all: All = False, who: Principal = Depends(deps.principal)) -> dict:
    """One line per employee month whose employer owes a late fee on ``as_of``: principal (the month's
    due), due date, ``until`` (the day paid in full, or ``as_of`` while unpaid), days, daily rate, fee
    accrued, paid, waived (with reason and approver) and still owed, and ``arithmetic`` in words
    (``10,000.00 元 × 60 天 × 0.05%/天 = 300.00 元``). ``employers``: the same summed per employer.
    Money in fen. Same scopes as ``GET /arrears``."""
    as_of = as_of or today()
    rows = _fee_rows(request, who, region, grid, employer, as_of, all)
    lang = request_lang(request)
    if lang != labels.DEFAULT_LANG:
        rows = [{**r, "fee_status_label": labels.fee_status(r["fee_status"], lang),
                 "arithmetic": ledger_exports.fee_arithmetic(r, lang)} for r in rows]
    log.info("fees_read", region=region, grid=grid, employer=employer, rows=len(rows))
    return lf.fees_answer(rows, as_of=as_of, region=region, grid=grid, employer=employer)


def _file(body: bytes, name: str, ascii_name: str, extension: str, rows: int) -> Response:
    """The file with an ASCII fallback name and the one in the reader's language (RFC 6266 / 5987)."""
    disposition = f"attachment; filename=\"{ascii_name}.{extension}\"; filename*=UTF-8''{quote(name)}"
    return Response(content=body, media_type=ledger_exports.media_type(extension), headers={
        "Content-Disposition": disposition, "Cache-Control": "no-store", "X-Row-Count": str(rows)})


def _fees_file(request: Request, who: Principal, region: str | None, grid: str | None, employer: str | None,
               as_of: date | None, include_cleared: bool, extension: str, lang: str) -> Response:
    as_of = as_of or today()
    rows = lf.masked(_fee_rows(request, who, region, grid, employer, as_of, include_cleared))
    log.info("fees_exported", region=region, grid=grid, employer=employer, rows=len(rows), format=extension)
    place = _ascii(region or grid or employer or "all")
    name = ledger_exports.file_name("fees", place, as_of, extension, lang=lang)
    return _file(ledger_exports.fees_file(rows, extension, lang), name, f"late-fees_{place}_{as_of}", extension,
                 len(rows))


@router.get("/fees.csv", summary="The late-fee list as CSV (滞纳金清单 CSV)", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
def fees_csv(request: Request, region: Region = None, grid: Grid = None, employer: Employer = None,
             as_of: AsOf = None, all: All = False, lang: Lang = None,
             who: Principal = Depends(deps.principal)) -> Response:
    """The rows of ``GET /fees`` with Chinese headers (English with ``lang=en``), yuan with two decimals, the
    arithmetic in a column."""
    return _fees_file(request, who, region, grid, employer, as_of, all, "csv", download_lang(request, lang))


@router.get("/fees.xlsx", summary="The late-fee list as an Excel workbook (滞纳金清单 XLSX)", response_class=Response,
            responses={200: {"content": {ledger_exports.XLSX_MEDIA_TYPE: {}}}})
def fees_xlsx(request: Request, region: Region = None, grid: Grid = None, employer: Employer = None,
              as_of: AsOf = None, all: All = False, lang: Lang = None,
              who: Principal = Depends(deps.principal)) -> Response:
    """The rows of ``GET /fees`` in one sheet 滞纳金清单 (``Late fees`` with ``lang=en``)."""
    return _fees_file(request, who, region, grid, employer, as_of, all, "xlsx", download_lang(request, lang))


def _arrears_file(request: Request, who: Principal, region: str | None, grid: str | None, as_of: date | None,
                  sort: str | None, by: str, extension: str, lang: str) -> Response:
    as_of = as_of or today()
    answer = arrears_read(request, region=region, grid=grid, as_of=as_of, sort=sort, limit=None, who=who)
    rows = lf.masked(answer["arrears"])
    body = ledger_exports.arrears_file(rows, answer["employers"], extension, by_employer=by == "employer", lang=lang)
    log.info("arrears_exported", region=region, grid=grid, rows=len(rows), format=extension, by=by)
    place = region or grid or "all"
    name = ledger_exports.file_name("arrears", place, as_of, extension, by_employer=by == "employer", lang=lang)
    ascii_name = f"arrears_{place}_{as_of}{'_employers' if by == 'employer' else ''}"
    return _file(body, name, ascii_name, extension, len(answer["employers"]) if by == "employer" else len(rows))


By = Annotated[Literal["row", "employer"], Query(description="CSV only: one line per period owed (row, default) "
                                                             "or per employer with its total (employer)")]
Sort = Annotated[str | None, Query(description="as GET /arrears (e.g. employer_id)")]


@router.get("/arrears.csv", summary="The arrears list as CSV (欠费名单 CSV)", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
def arrears_csv(request: Request, region: Region = None, grid: Grid = None, as_of: AsOf = None, sort: Sort = None,
                by: By = "row", lang: Lang = None, who: Principal = Depends(deps.principal)) -> Response:
    """The rows of ``GET /arrears`` (or ``by=employer``: its employer totals) with Chinese headers (English with
    ``lang=en``)."""
    return _arrears_file(request, who, region, grid, as_of, sort, by, "csv", download_lang(request, lang))


@router.get("/arrears.xlsx", summary="The arrears list as an Excel workbook (欠费名单 XLSX)", response_class=Response,
            responses={200: {"content": {ledger_exports.XLSX_MEDIA_TYPE: {}}}})
def arrears_xlsx(request: Request, region: Region = None, grid: Grid = None, as_of: AsOf = None, sort: Sort = None,
                 lang: Lang = None, who: Principal = Depends(deps.principal)) -> Response:
    """Two sheets: 单位欠费合计 (one row per employer and its total) and 欠费明细 (the rows of ``GET /arrears``);
    ``Employer totals`` and ``Arrears`` with ``lang=en``."""
    return _arrears_file(request, who, region, grid, as_of, sort, "row", "xlsx", download_lang(request, lang))


@router.post("/late-fees/payments", status_code=201, summary="Record a late fee paid (滞纳金缴纳)")
def pay_late_fee(body: lf.LateFeePaymentIn, request: Request, response: Response,
                 who: Principal = Depends(deps.principal)) -> dict:
    """A fee paid as on the receipt, for ``employer_id``'s month (split over its employees, each up to
    what they owe) or one employee (``id_number``). At most what is still owed on ``paid_on``
    (``LATE_FEE_OVERPAID``); nothing owed: ``LATE_FEE_NOT_OWED``. The same voucher again records
    nothing (200, ``applied: false``). Clerks of the month's region only."""
    prov = deps.provenance(request, who, record_key=f"late-fee:{body.tax_office}|{body.voucher_no}")
    answer = lf.pay_late_fee(request.app.state.system.ledger, request.app.state.reads, who, body, provenance=prov)
    answer["message"] = lf.outcome_said(answer, body, request_lang(request))
    response.status_code = 201 if answer["applied"] else 200
    return answer


@router.post("/late-fees/waivers", status_code=201, summary="Waive a late fee (滞纳金减免)")
def waive_late_fee(body: lf.LateFeeWaiverIn, request: Request, response: Response,
                   who: Principal = Depends(deps.principal)) -> dict:
    """Waive the fee of ``employer_id``'s month (every employee's) or one employee's, with ``reason``
    (``WAIVER_REASON_REQUIRED``) and ``approver`` (``WAIVER_APPROVER_REQUIRED``; not yourself:
    ``WAIVER_SELF_APPROVED``). Maker-checker: the answer (202) is a pending change; the fee is waived once
    the named approver, with the approver role of the region, approves it (``POST /changes/{id}/approve``).
    Send ``X-Request-ID`` when retrying: the same request records nothing twice. Clerks of the month's region only."""
    prov = deps.provenance(request, who, record_key=f"late-fee-waiver:{body.period}")
    answer = lf.waive_late_fee(request.app.state.system.ledger, request.app.state.reads, who, body, provenance=prov)
    answer["message"] = lf.outcome_said(answer, body, request_lang(request))
    response.status_code = 202 if answer["applied"] else 200  # pending until the named approver approves
    return answer
