"""The grid worker's web page and the two reads it needs besides the grid routes.

* ``GET /web/`` -- the page (:mod:`entrypoints.http.web`); no token needed to load it, every
  request it makes sends the token the worker pasted (or opened as ``/web/?token=...``,
  which the page then removes from the address bar);
* ``GET /web/changes`` -- the maker-checker page (双人复核 · 待审核变更), for clerks, approvers and auditors;
* every page in Chinese, or in English with ``?lang=en`` or ``Accept-Language: en`` (:func:`page_lang`);
* ``GET /me`` -- the caller's user, role and scopes, for the page's grid picker;
* ``GET /entitlements/{person_id}`` -- the entitlement route by the person id of a gap
  line (a grid worker only sees masked ID numbers, so cannot name the person by number),
  with the explanation in Chinese. The same answer and the same scope rules as
  ``GET /persons/{id_type}/{id_number}/entitlement``.
"""
from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ledger.domain.errors import NotFound
from ledger.domain.person import Person
from ledger.domain.places import NO_PLACE_NAMES, PlaceNames
from entrypoints import catalogue
from entrypoints.http import deps
from entrypoints.http.api_messages import lang_of_header
from entrypoints.http.auth import Principal, Role
from entrypoints.http.errors import request_lang
from entrypoints.http.models import ErrorOut, IsoDate
from entrypoints.http.routes_grids import contact_of
from entrypoints.http.routes_persons import get_entitlement, today
from entrypoints.http.web import Page, changes_page, import_page, labels, page
from entrypoints.http.web.explain import explain_entitlement

router = APIRouter(tags=["grid worker's page (网格员页面)"])

_SCOPE_KINDS = {12: "grid", 9: "township", 6: "region"}



def page_lang(request: Request) -> str:
    """A page's language: ``?lang=`` in its address, else the request's Accept-Language, else Chinese."""
    asked = request.query_params.get("lang")
    if asked is not None:
        return catalogue.lang_of(asked)
    return lang_of_header(request.headers.get("accept-language"))


def page_response(built: Page) -> HTMLResponse:
    """A page as served: its CSP, no referrer (the address may still hold ``?token=`` until the script
    removes it), no sniffing, never cached; its language said, and that it depends on Accept-Language."""
    return HTMLResponse(built.html, headers={
        "Content-Security-Policy": built.content_security_policy,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Content-Language": "en" if built.lang == "en" else "zh-CN",
        "Vary": "Accept-Language",
    })


@router.get("/web", include_in_schema=False)
def web_without_slash(request: Request) -> RedirectResponse:
    query = request.url.query
    return RedirectResponse("/web/" + (f"?{query}" if query else ""), status_code=307)


@router.get("/web/", include_in_schema=False, response_class=HTMLResponse)
def web_page(request: Request) -> HTMLResponse:
    """The page. It holds no data: everything personal comes from the API with the worker's token."""
    return page_response(page(page_lang(request)))


@router.get("/web/import", include_in_schema=False, response_class=HTMLResponse)
def web_import_page(request: Request) -> HTMLResponse:
    """The clerk's import page (批量参保登记): like the grid page, it holds no data and asks the API with the token."""
    return page_response(import_page(page_lang(request)))


@router.get("/web/changes", include_in_schema=False, response_class=HTMLResponse)
def web_changes_page(request: Request) -> HTMLResponse:
    """The maker-checker page (双人复核): no data in it; the changes come from ``GET /changes`` with the token,
    so each viewer sees their own regions' changes, and only an approver's token can approve or reject."""
    return page_response(changes_page(page_lang(request)))


def scope_entry(code: str, names: PlaceNames = NO_PLACE_NAMES, day: date | None = None,
                lang: str = labels.DEFAULT_LANG) -> dict[str, str]:
    """A scope to pick from: a county by code and name, a grid or township by the places table's names
    (``汉滨区 关庙镇 · 东坝村``), else by code (``汉滨区 网格 610902100204``; ``汉滨区 grid 610902100204`` in English)."""
    kind = _SCOPE_KINDS.get(len(code), "other")
    word = labels.scope_word(kind, lang)
    day = day or today()
    if kind in ("grid", "township") and names.name_on(code, day) is not None:
        return {"code": code, "kind": kind, "label": labels.place(code, names, day, lang)}
    region = labels.region(code[:6]).partition(" ")[2]
    label = labels.region(code) if kind == "region" else " ".join(x for x in (region, word, code) if x)
    return {"code": code, "kind": kind, "label": label}


@router.get("/me", summary="Who the token belongs to: user, role and scopes (当前用户)",
            responses={401: {"model": ErrorOut}})
def me(request: Request, who: Principal = Depends(deps.principal)) -> dict[str, Any]:
    """The caller's user, role (with its name in the Accept-Language language, Chinese by default) and scopes: grid (12 digits) and township
    (9 digits) codes for grid workers, region codes for clerks and the tax integration, none for
    auditors (who read everything). ``reads_grids`` says whether the role may read gap lists."""
    lang = request_lang(request)
    return {
        "user": who.user,
        "role": who.role.value,
        "role_label": labels.role(who.role.name, lang),
        "scopes": [scope_entry(code, request.app.state.system.places, lang=lang) for code in sorted(who.scopes)],
        "reads_grids": who.role in (Role.GRID_WORKER, Role.CLERK, Role.AUDITOR),
    }


@router.get("/entitlements/{person_id}", summary="A person's entitlement by person id, explained in words (待遇资格)",
            responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut},
                       404: {"model": ErrorOut, "description": "unknown person (PERSON_NOT_FOUND) or year"},
                       409: {"model": ErrorOut, "description": "the person's views are quarantined "
                                                               "(PERSON_QUARANTINED), or their stored events "
                                                               "cannot be applied (EVENT_GAP, EVENT_MISMATCH)"},
                       422: {"model": ErrorOut}})
def entitlement_by_person_id(
    person_id: str,
    request: Request,
    year: Annotated[int | None, Query(ge=1900, le=2200,
                                      description="coverage year (default: the year of `on`)")] = None,
    on: Annotated[IsoDate | None, Query(description="the day asked about, YYYY-MM-DD (default: today, "
                                                    "kept inside `year`)")] = None,
    who: Principal = Depends(deps.principal),
) -> dict[str, Any]:
    """The answer of ``GET /persons/{id_type}/{id_number}/entitlement`` for the person with this
    id (the ``person_id`` of a gap line), plus ``transfers`` (each open transfer's state on ``on``:
    ``awaiting``, ``due_on``, ``overdue``, ``overdue_working_days``, ``label`` in words) and ``explanation``: ``headline``, ``lines`` (topic and
    sentence each) and ``advice`` (what the grid worker can do; null when covered), in the Accept-Language
    language (Chinese by default; names and place names are data, never translated)."""
    who.require_role(Role.CLERK, Role.AUDITOR, Role.GRID_WORKER, action="read persons")
    lang = request_lang(request)
    unknown = NotFound("PERSON_NOT_FOUND", f"{person_id[:40]!r} is not a person id of this ledger")
    try:
        person = request.app.state.system.ledger.get_person(UUID(person_id))
    except ValueError:
        raise unknown from None
    if not isinstance(person, Person):  # another kind of aggregate (a source record) under that id
        raise unknown
    answer = get_entitlement(person.id_type, person.id_number, request, year=year, on=on, who=who)
    # Each open transfer's state on the day asked about (待转出 / 待转入 / 已逾期 N 个工作日), by the domain's rule.
    day = answer["on"] if isinstance(answer["on"], date) else date.fromisoformat(str(answer["on"])[:10])
    transfers = request.app.state.system.ledger.open_transfer_states(person, day)
    for t in transfers:
        t["label"] = labels.transfer_state(t, lang)
    answer = {**answer, "transfers": transfers}
    # Address and phone where the registry gave them: in full for the grid worker of the person's grid and
    # the clerks of the region, masked for others (the grid page's rows are shown the same way).
    residence = person.history.residence
    enrollment = person.active_enrollment
    grid = (residence[-1].grid if residence else None) or (enrollment.grid_code if enrollment else None)
    region = (enrollment.region_code if enrollment else None) or (grid[:6] if grid else None)
    answer.update(contact_of(person, who, region, grid))
    # The grids named in words (the places table's names on the day asked about), for the explanation.
    grids = {g for g in (grid, enrollment.grid_code if enrollment else None) if g}
    answer["place_labels"] = {g: labels.place(g, request.app.state.system.places, day, lang) for g in sorted(grids)}
    return {**answer, "explanation": explain_entitlement(answer, lang)}
