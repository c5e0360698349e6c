"""The county dashboard (区县参保工作看板): its figures as JSON, its charts as SVG and PNG, its page.

* ``GET /regions/{code}/dashboard`` -- for a county (6 digits) or a township (9 digits): coverage and
  subsidised coverage per township and grid against the targets of the policy table, ranked furthest
  from the target first, each with a link to the grid page; collection progress per week of the
  concentrated enrollment period, this coverage year against the last; arrears and late fees owed;
  the tax-statement reconciliation per day (county only);
* ``GET /regions/{code}/dashboard.svg`` -- the two charts (hand-written SVG, :mod:`entrypoints.http.web.dashboard_chart`);
* ``GET /regions/{code}/dashboard.png`` -- the coverage chart as a real PNG with Chinese labels (English with
  ``?lang=en`` or ``Accept-Language: en``), drawn by :mod:`entrypoints.chart` as ``ledger demo --chart`` is;
* ``GET /web/dashboard`` -- the page (Chinese, phone and desktop), token login as on the grid page.

Scoped like every read: a county for its clerks and auditors (grid workers: ``ROLE_FORBIDDEN``), a
township for the grid workers holding it and the clerks of its county (``SCOPE_FORBIDDEN`` otherwise).
The figures come from the stored views (:mod:`projections.queries`) through the pure functions of
:mod:`projections.dashboard`.
"""
from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from entrypoints.chart import coverage_png
from entrypoints.http import deps
from entrypoints.http.api_messages import lang_of_header
from entrypoints.http.auth import Principal, Role
from entrypoints.http.models import ErrorOut, IsoDate
from entrypoints.http.errors import request_lang
from entrypoints.http.routes_grids import check_area_code, chosen_period
from entrypoints.http.routes_web import page_lang, page_response
from entrypoints.http.web import dashboard_chart, dashboard_page, labels
from entrypoints.messages import text
from ledger.domain.errors import DomainError, NotFound
from ledger.domain.gaps import evaluation_day
from ledger.domain.places import validate_region_code
from ledger.log import get_logger
from projections import dashboard as figures
from reconciliation.factory import statement_due_days, store_of
from reconciliation.reports import county_summary, missing_statements

log = get_logger("entrypoints.http.dashboard")

router = APIRouter(tags=["county dashboard (区县看板)"], responses={
    401: {"model": ErrorOut},
    403: {"model": ErrorOut, "description": "not your county or township (SCOPE_FORBIDDEN), or a role that does not "
                                           "read county figures (ROLE_FORBIDDEN)"},
    404: {"model": ErrorOut, "description": "unknown region (REGION_UNKNOWN), township (TOWNSHIP_UNKNOWN) or year "
                                           "(POLICY_YEAR_UNKNOWN)"},
    422: {"model": ErrorOut, "description": "malformed code (REGION_FORMAT, GRID_FORMAT) or date (DATE_INVALID)"},
})

Year = Annotated[int | None, Query(ge=1900, le=2200, description="coverage year (default: the latest with data)")]
AsOf = Annotated[IsoDate | None, Query(description="the day asked about, YYYY-MM-DD (default: today)")]

#: How many days of reconciliation the dashboard lists (newest first).
RECONCILIATION_DAYS = 14


class TargetOut(BaseModel):
    """The targets of the policy table (参保目标), in basis points and as text; null when none is declared."""

    coverage_bp: int | None
    coverage_percent: str | None
    subsidised_coverage_bp: int | None
    subsidised_coverage_percent: str | None
    policy_version: str


class AreaOut(BaseModel):
    """One township or grid (or the whole place): counts, rates (bp rounded half up, and as text), the gap to the
    target (bp, positive = short; people still to cover), its rank (1 = furthest from the target), its page."""

    code: str
    label: str
    rank: int | None = None
    residents: int
    covered: int
    coverage_bp: int | None
    coverage_percent: str | None
    gap_bp: int | None
    people_short: int
    meets_target: bool | None
    subsidised: int
    subsidised_covered: int
    subsidised_coverage_bp: int | None
    subsidised_coverage_percent: str | None
    subsidised_people_short: int
    subsidised_meets_target: bool | None
    link: str | None = Field(None, description="the grid page of this township or grid (网格员页面)")


class WeekOut(BaseModel):
    """One week of the concentrated period: assessed and collected by its end (cumulative, fen), this year and last."""

    week: int
    from_: date | None = Field(None, alias="from")
    to: date | None
    assessed_fen: int | None
    collected_fen: int | None
    collected_bp: int | None
    last_from: date | None
    last_to: date | None
    last_assessed_fen: int | None
    last_collected_fen: int | None
    last_collected_bp: int | None

    model_config = {"populate_by_name": True}


class CollectionOut(BaseModel):
    year: int
    last_year: int
    concentrated_start: date
    concentrated_end: date
    last_concentrated_start: date | None
    last_concentrated_end: date | None
    assessed_fen: int
    collected_fen: int
    collected_percent: str | None
    weeks: list[WeekOut]


class ArrearsKindOut(BaseModel):
    rows: int
    outstanding_fen: int
    late_fee_fen: int


class ArrearsOut(BaseModel):
    """The arrears list on ``as_of`` summed (欠费合计): fen in the fields, yuan text for people."""

    as_of: date
    rows: int
    persons: int
    outstanding_fen: int
    late_fee_fen: int
    outstanding_yuan: str
    late_fee_yuan: str
    by_kind: dict[str, ArrearsKindOut]


class ReconciliationDayOut(BaseModel):
    """One business day of the tax-statement tie-out (对账) in the county."""

    business_date: str
    statements: int
    collected_fen: int
    recorded_fen: int
    difference_fen: int
    open_discrepancies: int
    pending_statements: int
    missing_statements: int
    state: str
    state_label: str


class DashboardOut(BaseModel):
    code: str
    label: str
    kind: str = Field(description="county or township")
    year: int
    as_of: date
    day: date
    year_basis: str
    year_basis_label: str
    target: TargetOut
    total: AreaOut
    townships: list[AreaOut]
    grids: list[AreaOut]
    collection: CollectionOut
    arrears: ArrearsOut
    reconciliation: list[ReconciliationDayOut] = Field(description="per day, newest first (county only)")


def _place(code: str, who: Principal) -> str:
    """The county or township asked for, checked against the caller's token."""
    code = code.strip()
    if len(code) == 9:
        code = check_area_code(code)
        who.require_role(Role.GRID_WORKER, Role.CLERK, Role.AUDITOR, action="read a township's dashboard")
        who.require_grid(code)
        return code
    who.require_role(Role.CLERK, Role.AUDITOR, action="read a county's dashboard")
    code = validate_region_code(code)
    who.require_region(code, action="read")
    return code


def _link(code: str, year: int, as_of: date) -> str:
    return f"/web/#grid={code}&year={year}&as_of={as_of.isoformat()}"


def _labelled(rows: list[dict[str, Any]], year: int, as_of: date, names: Any, lang: str) -> list[dict[str, Any]]:
    """Each place named from the places table on the evaluation day (the kind and code where it has no name)."""
    day = evaluation_day(year, as_of)
    return [{**r, "label": labels.place(r["code"], names, day, lang), "link": _link(r["code"], year, as_of)}
            for r in rows]


def dashboard_figures(request: Request, code: str, who: Principal, year: int | None,
                      as_of: date | None) -> dict[str, Any]:
    """Everything the dashboard shows, for a county or township the caller may read; the words (place kinds,
    states, how the year was chosen) in the Accept-Language language, Chinese by default."""
    lang = request_lang(request)
    names = request.app.state.system.places
    code = _place(code, who)
    year, as_of, basis = chosen_period(request, code, year, as_of)
    reads, policies = request.app.state.reads, request.app.state.system.policies
    region = code[:6]
    table = policies.get(region, year)
    resident = table.resident
    target, sub_target = resident.coverage_target_bp, resident.subsidised_coverage_target_bp
    rates = reads.areas(region, year=year, as_of=as_of)
    if len(code) == 9:
        if code not in rates["townships"] and not reads.grid_known(code):
            raise NotFound("TOWNSHIP_UNKNOWN", f"the ledger knows nobody living or enrolled in township {code}; "
                                               "check the code（乡镇代码不存在）", area_code=code)
        townships = {t: s for t, s in rates["townships"].items() if t == code}
        grids = {g: s for g, s in rates["grids"].items() if g.startswith(code)}
    else:
        townships, grids = rates["townships"], rates["grids"]
    total = figures.area_row(code, figures.total_of(townships), target, sub_target)
    total.update(label=labels.region(code) if len(code) == 6
                 else labels.place(code, names, evaluation_day(year, as_of), lang), link=None)

    def collection_of(y: int) -> tuple[Any, list[dict[str, Any]]]:
        try:
            r = policies.get(region, y).resident
        except DomainError:
            return None, []
        dues = reads.resident_collection(region, year=y, township=code if len(code) == 9 else None)
        return r, figures.weekly_collection(dues, r.concentrated_start, r.concentrated_end)

    _, this_weeks = collection_of(year)
    last_resident, last_weeks = collection_of(year - 1)
    last_row = this_weeks[-1] if this_weeks else {"assessed_fen": 0, "collected_fen": 0}
    collection = {
        "year": year, "last_year": year - 1,
        "concentrated_start": resident.concentrated_start, "concentrated_end": resident.concentrated_end,
        "last_concentrated_start": last_resident.concentrated_start if last_resident else None,
        "last_concentrated_end": last_resident.concentrated_end if last_resident else None,
        "assessed_fen": last_row["assessed_fen"], "collected_fen": last_row["collected_fen"],
        "collected_percent": figures.percent_text(figures.rate_bp(last_row["collected_fen"], last_row["assessed_fen"])),
        "weeks": figures.compare_years(this_weeks, last_weeks),
    }
    arrears_rows = reads.arrears(as_of=as_of, region=region, grid=code if len(code) == 9 else None, sort=None)
    arrears = figures.arrears_totals(arrears_rows)
    arrears.update(as_of=as_of, outstanding_yuan=labels.yuan(arrears["outstanding_fen"]),
                   late_fee_yuan=labels.yuan(arrears["late_fee_fen"]))
    reconciliation = []
    if len(code) == 6:
        store = store_of(request.app.state.system)
        missing = missing_statements(store, as_of=as_of, due_days=statement_due_days(), region=code)
        days = figures.reconciliation_days(county_summary(store, county=code, missing=missing),
                                           last=RECONCILIATION_DAYS)
        reconciliation = [{**d, "state_label": labels.reconciliation_state(d["state"], lang)} for d in days]
    log.info("dashboard_read", code=code, year=year, townships=len(townships), grids=len(grids))
    return {
        "code": code, "label": total["label"], "kind": "county" if len(code) == 6 else "township",
        "year": year, "as_of": as_of, "day": evaluation_day(year, as_of), "year_basis": basis,
        "year_basis_label": labels.year_basis(basis, lang),
        "target": {"coverage_bp": target, "coverage_percent": figures.percent_text(target),
                   "subsidised_coverage_bp": sub_target, "subsidised_coverage_percent": figures.percent_text(sub_target),
                   "policy_version": table.version},
        "total": total,
        "townships": _labelled(figures.ranked_areas(townships, target, sub_target), year, as_of, names, lang),
        "grids": _labelled(figures.ranked_areas(grids, target, sub_target), year, as_of, names, lang),
        "collection": collection, "arrears": arrears, "reconciliation": reconciliation,
    }


@router.get("/regions/{code}/dashboard", response_model=DashboardOut, response_model_by_alias=True,
            summary="The county dashboard's figures (区县参保工作看板)")
def region_dashboard(code: str, request: Request, year: Year = None, as_of: AsOf = None,
                     who: Principal = Depends(deps.principal)) -> dict[str, Any]:
    """For a county (6-digit region code: its clerks, auditors) or a township (9 digits: also the grid workers
    holding it): coverage and subsidised coverage per township and grid against the policy table's targets
    (``target``; ``gap_bp`` positive = short of it, ``people_short`` = people still to cover), ranked
    furthest from the target first (``rank`` 1), each with ``link`` to the grid page; ``collection``:
    assessed and collected (cumulative fen) per week of the concentrated enrollment period, this coverage
    year beside the last (``last_*``); ``arrears``: the arrears list on ``as_of`` summed, with the late
    fees owed; ``reconciliation``: the tax-statement tie-out per day, newest first (county only)."""
    return dashboard_figures(request, code, who, year, as_of)


def _chart_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    return data["townships"] if data["kind"] == "county" and len(data["townships"]) > 1 else data["grids"]


@router.get("/regions/{code}/dashboard.svg", response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}, "description": "the dashboard's two charts"}},
            summary="The dashboard's charts as SVG (看板图表)")
def region_dashboard_svg(code: str, request: Request, year: Year = None, as_of: AsOf = None,
                         chart: Annotated[str, Query(pattern="^(coverage|collection)$",
                                                     description="coverage (default) or collection")] = "coverage",
                         width: Annotated[int, Query(ge=300, le=1600, description="the pixels the chart is shown "
                                                                                  "at (default 720)")] = 720,
                         who: Principal = Depends(deps.principal)) -> Response:
    """The coverage chart (ranked places against the target line) or the collection chart (this year against
    the last), as the page shows them; the same scope as the figures."""
    data = dashboard_figures(request, code, who, year, as_of)
    lang = request_lang(request)
    if chart == "collection":
        svg = dashboard_chart.collection_svg(data["collection"]["weeks"], year=data["year"],
                                             title=text("dash_collection_title", lang), lang=lang, width=width)
    else:
        svg = dashboard_chart.coverage_svg(_chart_rows(data), target_bp=data["target"]["coverage_bp"],
                                           subsidised_target_bp=data["target"]["subsidised_coverage_bp"],
                                           title=text("dash_coverage_title", lang, year=data["year"]), lang=lang,
                                           width=width)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store",
                                                              "X-Content-Type-Options": "nosniff"})


@router.get("/regions/{code}/dashboard.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "the coverage chart as PNG"}},
            summary="The coverage chart as PNG, for a report (参保率图表 PNG)")
def region_dashboard_png(code: str, request: Request, year: Year = None, as_of: AsOf = None,
                         lang: Annotated[Literal["zh", "en"] | None, Query(
                             description="the chart's language: zh (default) or en; else Accept-Language")] = None,
                         who: Principal = Depends(deps.principal)) -> Response:
    """Coverage (blue) and subsidised coverage (orange) per township (per grid for a township or a county
    of one township), in code order, each with its rate, name and code, on an axis spanning the data, with
    the policy table's coverage target as a dashed red line; titles and legend in Chinese, or English."""
    data = dashboard_figures(request, code, who, year, as_of)
    rows = sorted(_chart_rows(data), key=lambda r: r["code"])
    unit = "grid" if rows and len(rows[0]["code"]) == 12 else "township"
    names, day = request.app.state.system.places, data["day"]  # the names valid on the day shown, under the bars
    place = data["label"] if data["kind"] == "county" else labels.place(data["code"], names, day)
    png = coverage_png([{"township": r["code"], "name": labels.place(r["code"], names, day), "covered": r["covered"],
                         "residents": r["residents"], "subsidised_covered": r["subsidised_covered"],
                         "subsidised": r["subsidised"]} for r in rows], year=data["year"],
                       lang=lang or lang_of_header(request.headers.get("accept-language")),
                       target_bp=data["target"]["coverage_bp"], place=place, as_of=data["as_of"], unit=unit)
    return Response(png, media_type="image/png", headers={
        "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="dashboard-{data["code"]}-{data["year"]}.png"'})


@router.get("/web/dashboard", include_in_schema=False, response_class=HTMLResponse)
def dashboard_web_page(request: Request) -> HTMLResponse:
    """The page. It holds no data: the figures and charts come from the API with the viewer's token."""
    return page_response(dashboard_page(page_lang(request)))
