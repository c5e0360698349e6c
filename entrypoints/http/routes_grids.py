"""Grid reads (应保尽保): who in a grid is not covered and why, coverage rates, arrears.

``{code}`` is a 12-digit grid (village / community) code or a 9-digit township code.
Grid workers read their own grids and townships; clerks the grids of their regions;
auditors everything. In these lists the ID number is masked (``6109**********1234``)
except for auditors and the clerks of the row's region.
"""
from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from ledger.domain.errors import DomainError, NotFound
from ledger.domain.places import parse_grid_code, validate_region_code
from entrypoints.http import deps
from entrypoints.http.access import check_arrears_read, clerk_arrears
from projections.arrears import employer_totals
from entrypoints.http.auth import Principal, Role
from entrypoints.http.models import ErrorOut, IsoDate
from entrypoints.http.read_model import identities_of
from entrypoints.http.routes_persons import today
from ledger.log import get_logger, mask_id_number
from events.ledger_events import mask_address, mask_phone
from ledger.domain.gaps import REASONS, evaluation_day
from entrypoints.http.web import labels
from entrypoints.http.web.ledger_exports import fee_arithmetic
from entrypoints.http.errors import request_lang

log = get_logger("entrypoints.http.grids")

router = APIRouter(tags=["grids and arrears (网格)"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut, "description": "not one of your grids or regions"},
    404: {"model": ErrorOut, "description": "unknown grid or township (GRID_UNKNOWN, TOWNSHIP_UNKNOWN) or year "
                                       "(POLICY_YEAR_UNKNOWN)"},
    422: {"model": ErrorOut, "description": "malformed code (GRID_FORMAT) or date (DATE_INVALID)"},
})

Year = Annotated[int | None, Query(ge=1900, le=2200, description="coverage year (default: the year of `as_of`)")]
AsOf = Annotated[IsoDate | None, Query(description="the day asked about, YYYY-MM-DD (default: today)")]


def check_area_code(code: str) -> str:
    """A 12-digit grid code or a 9-digit township code, well formed (GRID_FORMAT otherwise)."""
    code = code.strip()
    if len(code) == 12:
        return parse_grid_code(code).code
    if len(code) == 9 and code.isdigit() and code.isascii():
        try:
            parse_grid_code(code + "001")
        except DomainError as e:
            raise DomainError("GRID_FORMAT", f"township code {code}: {e.message}", area_code=code) from None
        return code
    raise DomainError("GRID_FORMAT", f"{code[:20]!r} is neither a 12-digit grid code nor a 9-digit township code "
                      "(统计用区划代码)", area_code=code[:20])


def _period(year: int | None, as_of: date | None) -> tuple[int, date]:
    as_of = as_of or today()
    return year or as_of.year, as_of


def chosen_period(request: Request, code: str, year: int | None, as_of: date | None) -> tuple[int, date, str]:
    """The year and day asked about, and how the year was chosen.

    Neither given: not blindly this year (a grid whose people have not enrolled for it yet would
    open on 参保率 0.00 %, or on the few people carried into it), but the latest coverage year, up
    to this one, with a policy table for the region and at least half as many people of the place
    covered as its best year (so a year just begun, with a handful covered, does not hide the
    year the data is about); this year when no year has anyone covered.
    """
    if year is not None or as_of is not None:
        basis = "asked" if year is not None else "as_of"
        year, as_of = _period(year, as_of)
        return year, as_of, basis
    day = today()
    try:
        years = request.app.state.system.policies.years(code[:6])
    except DomainError:
        years = []
    covered = {y: _covered(request, code, y, day) for y in years if y <= day.year}
    best = max(covered.values(), default=0)
    if best == 0:
        return day.year, day, "today"
    chosen = max(y for y, n in covered.items() if 2 * n >= best)
    return chosen, day, "today" if chosen == day.year else "latest_with_data"


def _covered(request: Request, code: str, year: int, day: date) -> int:
    """People of the place (grid, township or county) covered in ``year`` on its evaluation day."""
    reads = request.app.state.reads
    try:
        if len(code) == 6:
            return sum(t["covered"] for t in reads.areas(code, year=year, as_of=day)["townships"].values())
        stats = reads.coverage(code, year=year, as_of=day)
    except DomainError:
        return 0
    return int((stats or {}).get("covered") or 0)


def _matches(row: dict[str, Any], q: str) -> bool:
    """A name containing ``q``, or an ID number *as shown to the caller* ending with it (so a masked
    number is matched on its visible last four only, and nothing hidden leaks through the search)."""
    if q.replace("x", "X").rstrip("X").isdigit() or q.upper() == "X":
        return (row.get("id_number") or "").upper().endswith(q.upper())
    return q.casefold() in (row.get("name") or "").casefold()


def _known_place(request: Request, code: str) -> None:
    if not request.app.state.reads.grid_known(code):
        kind, error = ("township", "TOWNSHIP_UNKNOWN") if len(code) == 9 else ("grid", "GRID_UNKNOWN")
        raise NotFound(error, f"the ledger knows nobody living or enrolled in {kind} {code}; check the code",
                       area_code=code)


def contact_of(person: Any, who: Principal, region_code: str | None, grid_code: str | None) -> dict[str, Any]:
    """``address`` and ``phone`` as the registry last gave them (None when it gave none), in full for
    those who act on them (:meth:`Principal.sees_contact`), masked for the others; ``contact_masked``
    says which."""
    address, phone = getattr(person, "address", None), getattr(person, "phone", None)
    if who.sees_contact(region_code, grid_code):
        return {"address": address, "phone": phone, "contact_masked": False}
    return {"address": mask_address(address) if address else None, "phone": mask_phone(phone) if phone else None,
            "contact_masked": True}


def shown(request: Request, rows: list[dict[str, Any]], who: Principal,
          as_of: date | None = None, lang: str = labels.DEFAULT_LANG) -> list[dict[str, Any]]:
    """Rows with who they are: ID type, ID number (masked unless the caller may see it in full), name;
    with ``as_of``, also ``transfers``: each open transfer's state on that day (待转出 / 待转入 / 已逾期
    N 个工作日, computed by the domain's transfer_status when read, never stored)."""
    persons = request.app.state.reads.persons(sorted({r["person_id"] for r in rows}))
    people = identities_of(persons)
    transfers = {}
    if as_of is not None:
        transfers = request.app.state.system.ledger.open_transfers_of(persons, as_of)
        for states in transfers.values():
            for t in states:
                t["label"] = labels.transfer_state(t, lang)
    out = []
    for row in rows:
        id_type, id_number, name = people.get(row["person_id"], (None, None, None))
        row = {k: v for k, v in row.items() if k != "masked_id"}
        full = id_number is not None and who.sees_full_id(row.get("region_code"))
        row.update(id_type=id_type, id_number=id_number if full else (mask_id_number(id_number) if id_number else None),
                   name=name, **contact_of(persons.get(row["person_id"]), who, row.get("region_code"),
                                           row.get("grid_code")))
        if as_of is not None:
            row["transfers"] = transfers.get(row["person_id"], [])
        out.append(row)
    return out


@router.get("/grids/{code}/gaps", summary="Who in the grid is not covered, and why (应保尽保名单)")
def grid_gaps(
    code: str,
    request: Request,
    year: Year = None,
    as_of: AsOf = None,
    reason: Annotated[str | None, Query(description="only this reason, e.g. SUBSIDISED_NOT_COVERED, LAPSED")] = None,
    q: Annotated[str | None, Query(max_length=40, description="search: part of the name, or the last digits of the "
                                                              "ID number as shown to you (按姓名或证件号码后几位查找)")] = None,
    page: Annotated[int | None, Query(ge=1, le=100_000, description="page number, from 1 (with `per_page`)")] = None,
    per_page: Annotated[int | None, Query(ge=1, le=500, description="rows per page (default: all rows)")] = None,
    who: Principal = Depends(deps.principal),
) -> dict:
    """Everyone the household registry places in the grid (or township) on the evaluation day
    who is not covered for ``year``: one reason each, subsidised people first
    (``SUBSIDISED_NOT_COVERED``, ``DUPLICATE_ENROLLMENT``, ``TRANSFER_INCOMPLETE``,
    ``NOT_ENROLLED``, ``ENROLLED_UNPAID``, ``LAPSED``, ``IN_WAITING_PERIOD``), with the Chinese
    label, a sentence saying why, and the outstanding amount.

    Without ``year`` and ``as_of`` the year is the latest with data (see ``year_basis``).
    ``q`` searches names and ID tails; ``page``/``per_page`` page the list (``total`` rows match,
    ``count`` are on this page); ``by_reason`` counts the matching rows per reason before ``reason``
    keeps one; each row's ``grid_label`` names its place and ``label`` its reason in the Accept-Language
    language (Chinese by default; place names from the places table are data, never translated)."""
    code = check_area_code(code)
    who.require_grid(code)
    lang = request_lang(request)
    year, as_of, basis = chosen_period(request, code, year, as_of)
    if reason is not None and reason not in REASONS:
        raise DomainError("REASON_UNKNOWN", f"{reason!r} is not a gap reason; use one of {', '.join(REASONS)} "
                          "（未参保原因代码不正确）")
    rows = request.app.state.reads.gaps(code, year=year, as_of=as_of)
    q = (q or "").strip()
    if q:
        rows = [r for r in shown(request, rows, who, as_of, lang) if _matches(r, q)]
    by_reason: dict[str, int] = {}
    for r in rows:
        by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + 1
    if reason is not None:
        rows = [r for r in rows if r["reason"] == reason]
    total = len(rows)
    if per_page is not None or page is not None:
        size = per_page or 50
        start = ((page or 1) - 1) * size
        rows = rows[start:start + size]
    else:
        size = None
    if not q:
        rows = shown(request, rows, who, as_of, lang)
    names, day = request.app.state.system.places, evaluation_day(year, as_of)
    for r in rows:
        r["grid_label"] = labels.place(r.get("grid_code"), names, day, lang)
        r["label"] = labels.reason(r.get("reason"), lang) if r.get("reason") else r.get("label")
    log.info("grid_gaps_read", area_code=code, year=year, rows=len(rows), total=total, searched=bool(q))
    return {"code": code, "label": labels.place(code, names, day, lang),
            "places_note": labels.places_note(names, [code], day, lang),
            "year": year, "as_of": as_of, "year_basis": basis,
            "year_basis_label": labels.year_basis(basis, lang), "day": evaluation_day(year, as_of),
            "total": total, "count": len(rows), "page": page or 1, "per_page": size,
            "pages": (max(1, -(-total // size)) if size else 1), "by_reason": by_reason, "gaps": rows}


@router.get("/grids/{code}/coverage", summary="Coverage rates of a grid or township (参保率)")
def grid_coverage(
    code: str,
    request: Request,
    year: Year = None,
    as_of: AsOf = None,
    who: Principal = Depends(deps.principal),
) -> dict:
    """Residents, covered, subsidised, subsidised covered; rates in basis points rounded down
    (so 100.00% means everyone) and as text; gaps counted by reason."""
    code = check_area_code(code)
    who.require_grid(code)
    lang = request_lang(request)
    year, as_of, basis = chosen_period(request, code, year, as_of)
    _known_place(request, code)
    stats = request.app.state.reads.coverage(code, year=year, as_of=as_of)
    if stats is None:  # known, but nobody lives there on that day
        stats = {"residents": 0, "covered": 0, "subsidised": 0, "subsidised_covered": 0, "coverage_bp": None,
                 "subsidised_coverage_bp": None, "coverage_percent": None, "subsidised_coverage_percent": None,
                 "gaps_by_reason": {}}
    names, day = request.app.state.system.places, evaluation_day(year, as_of)
    return {"code": code, "label": labels.place(code, names, day, lang),
            "places_note": labels.places_note(names, [code], day, lang),
            "year": year, "as_of": as_of, "year_basis": basis,
            "year_basis_label": labels.year_basis(basis, lang), "day": day, **stats}


@router.get("/regions/{code}/areas", summary="The townships and grids of a county, to pick from (区县下的乡镇和网格)")
def region_areas(
    code: str,
    request: Request,
    year: Year = None,
    as_of: AsOf = None,
    who: Principal = Depends(deps.principal),
) -> dict:
    """For the clerks of the county (6-digit region code) and auditors: each township with people in
    the views, its grids, and their coverage for the year (default: the latest with data, as for a
    grid). Grid workers ask for their own grids instead (403 ``ROLE_FORBIDDEN``)."""
    who.require_role(Role.CLERK, Role.AUDITOR, action="list the townships and grids of a county")
    code = validate_region_code(code)
    who.require_region(code, action="read")
    lang = request_lang(request)
    year, as_of, basis = chosen_period(request, code, year, as_of)
    rates = request.app.state.reads.areas(code, year=year, as_of=as_of)
    names, day = request.app.state.system.places, evaluation_day(year, as_of)

    def entry(area: str, stats: dict[str, Any]) -> dict[str, Any]:
        return {"code": area, "label": labels.place(area, names, day, lang), "residents": stats["residents"],
                "covered": stats["covered"], "coverage_percent": stats["coverage_percent"],
                "subsidised": stats["subsidised"], "subsidised_covered": stats["subsidised_covered"]}

    townships = [{**entry(t, stats), "grids": [entry(g, rates["grids"][g]) for g in sorted(rates["grids"])
                                                if g.startswith(t)]}
                 for t, stats in sorted(rates["townships"].items())]
    log.info("region_areas_read", region=code, year=year, townships=len(townships))
    return {"code": code, "label": labels.region(code),
            "places_note": labels.places_note(names, rates["townships"], day, lang),
            "year": year, "as_of": as_of, "year_basis": basis,
            "year_basis_label": labels.year_basis(basis, lang), "day": day, "townships": townships}


@router.get("/arrears", summary="Contributions due and unpaid past their due date (欠费名单)")
def arrears(
    request: Request,
    region: Annotated[str | None, Query(description="6-digit region code")] = None,
    grid: Annotated[str | None, Query(description="12-digit grid or 9-digit township code")] = None,
    as_of: AsOf = None,
    sort: Annotated[str | None, Query(description="outstanding_fen (default, largest first), days_overdue, "
                                                  "late_fee_fen, due_date, grid_code, region_code, period, "
                                                  "employer_id")] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="at most this many rows")] = None,
    who: Principal = Depends(deps.principal),
) -> dict:
    """One row per period due and unpaid on ``as_of``: outstanding fen, days overdue, and the
    late fee (滞纳金) on employer arrears. An employer month paid late stays listed while its late
    fee is owed (the payment of the contribution does not pay the fee): ``fee_only`` true,
    ``outstanding_fen`` 0, ``late_fee_fen`` frozen at ``paid_in_full_on``. Grid workers give one of
    their grids; clerks a region or grid of theirs (all their regions when neither is given);
    auditors anything. ``employers``: one row per employer with its total (单位欠费合计: outstanding +
    late fee still owed), largest first; ``late_fee_arithmetic`` spells each fee out (see ``GET /fees``)."""
    who.require_role(Role.GRID_WORKER, Role.CLERK, Role.AUDITOR, action="read arrears")
    if region is not None:
        region = validate_region_code(region)
    if grid is not None:
        grid = check_area_code(grid)
    check_arrears_read(who, region=region, grid=grid)
    as_of = as_of or today()
    reads = request.app.state.reads
    sort = sort or "outstanding_fen"
    if who.role == Role.CLERK and region is None and grid is None:  # all the clerk's regions
        rows = clerk_arrears(who, lambda own: reads.arrears(as_of=as_of, region=own, sort=sort), sort=sort,
                             limit=limit)
    else:
        rows = reads.arrears(as_of=as_of, region=region, grid=grid, sort=sort, limit=limit)
    rows = shown(request, rows, who)
    lang = request_lang(request)
    if lang != labels.DEFAULT_LANG:  # the arithmetic said from its figures (the views keep it in Chinese)
        rows = [{**r, "late_fee_arithmetic": fee_arithmetic(r["late_fee_terms"], lang)} if r.get("late_fee_terms")
                else r for r in rows]
    log.info("arrears_read", region=region, grid=grid, rows=len(rows))
    return {
        "as_of": as_of, "region": region, "grid": grid, "count": len(rows),
        "outstanding_fen": sum(r["outstanding_fen"] for r in rows),
        "late_fee_fen": sum(r["late_fee_fen"] for r in rows),
        "employers": employer_totals(rows),
        "arrears": rows,
    }


@router.get("/views/quarantine", summary="Persons whose views are in quarantine (视图隔离名单, auditors)")
def views_quarantine(request: Request, who: Principal = Depends(deps.principal)) -> dict:
    """Persons whose views could not be derived or stored: masked ID, reason code and message,
    the event that caused it, since when. Their rows are left out of every list meanwhile, and
    a read of the person answers 409 ``PERSON_QUARANTINED``; each ``ledger project`` run derives
    them again. Auditors only."""
    who.require_role(Role.AUDITOR, action="list the persons whose views are quarantined")
    rows = request.app.state.reads.quarantined()
    return {"count": len(rows), "persons": rows}
