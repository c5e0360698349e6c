"""Hostile input to the grid page's search, paging and county reads (issue 21): nothing crashes, leaks or widens scope."""
from __future__ import annotations

import pytest

from tests.unit.http_support import (
    CLERK_HANYIN,
    GRID_A,
    GRID_B,
    GRID_HANYIN,
    GRID_WORKER_A,
    client,  # noqa: F401  (fixture)
    system,  # noqa: F401  (fixture)
)
from tests.unit.test_web_page import grids  # noqa: F401  (fixture)

PERIOD = {"year": 2025, "as_of": "2025-03-01"}


@pytest.mark.parametrize("q", [
    "' OR 1=1 --", "王'; DROP TABLE spells; --", "%", "_", "*", "\\", "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>", "\x00", "王\u202e芳", "6109", "1234 OR 1=1",
])
def test_search_text_is_only_text(client, grids, hostile, q):
    r = client.get(f"/grids/{GRID_A}/gaps", params={**PERIOD, "q": q}, headers=GRID_WORKER_A)
    ok = r.status_code in (200, 422)
    body = r.json()
    # No wildcard or SQL widens the search: a pattern that is not a name part or an ID tail finds nobody.
    widened = r.status_code == 200 and q not in ("6109",) and body["total"] > 0
    leaked = GRID_B in r.text  # another grid's rows
    hostile.attempt(f"grid search {q[:20]!r}", status=r.status_code, leaked=bool(widened or leaked))
    assert ok and not widened
    if r.status_code == 200:
        assert client.get(f"/grids/{GRID_A}/gaps", params=PERIOD, headers=GRID_WORKER_A).json()["total"] == 2


def test_the_page_writes_what_it_reads_as_text_never_as_html(client):
    """Names and search words reach the screen through textContent: markup in them stays text."""
    html = client.get("/web/").text
    assert "innerHTML" not in html and "insertAdjacentHTML" not in html and "document.write" not in html


def test_a_search_longer_than_40_characters_is_refused(client, grids, hostile):
    r = client.get(f"/grids/{GRID_A}/gaps", params={**PERIOD, "q": "王" * 2_000}, headers=GRID_WORKER_A)
    hostile.attempt("grid search 2,000 characters", status=r.status_code)
    assert r.status_code == 422


@pytest.mark.parametrize("params", [
    {"page": 10**12}, {"page": 0}, {"page": -1}, {"page": "1e9"}, {"page": "NaN"},
    {"per_page": 10**9}, {"per_page": 0}, {"per_page": 501},
])
def test_page_numbers_out_of_range_are_refused(client, grids, hostile, params):
    r = client.get(f"/grids/{GRID_A}/gaps", params={**PERIOD, **params}, headers=GRID_WORKER_A)
    hostile.attempt(f"grid page {params}", status=r.status_code)
    assert r.status_code == 422 and r.json()["code"]


def test_a_far_page_within_bounds_is_empty_not_an_error(client, grids, hostile):
    r = client.get(f"/grids/{GRID_A}/gaps", params={**PERIOD, "page": 100_000, "per_page": 500},
                   headers=GRID_WORKER_A)
    hostile.attempt("grid page 100,000", status=r.status_code)
    assert r.status_code == 200 and (r.json()["count"], r.json()["total"]) == (0, 2)


def test_searching_another_grid_is_refused(client, grids, hostile):
    name_of_b = "王芳"  # everyone in the fixture is 王芳: a found row would be grid B's person
    r = client.get(f"/grids/{GRID_B}/gaps", params={**PERIOD, "q": name_of_b}, headers=GRID_WORKER_A)
    hostile.attempt("search another grid", status=r.status_code, leaked=grids["other"][-4:] in r.text)
    assert (r.status_code, r.json()["code"]) == (403, "SCOPE_FORBIDDEN")


def test_another_regions_grid_and_county_are_refused_to_a_clerk(client, grids, hostile):
    for path in (f"/grids/{GRID_A}/gaps", "/regions/610902/areas"):
        r = client.get(path, params={**PERIOD, "q": "王"}, headers=CLERK_HANYIN)
        hostile.attempt(f"hanyin clerk reads {path}", status=r.status_code, leaked="王芳" in r.text)
        assert (r.status_code, r.json()["code"]) == (403, "SCOPE_FORBIDDEN")
    r = client.get(f"/grids/{GRID_HANYIN}/gaps", params=PERIOD, headers=GRID_WORKER_A)
    hostile.attempt("grid worker reads another county's grid", status=r.status_code)
    assert r.status_code == 403


@pytest.mark.parametrize("code", ["61090", "6109021", "abcdef", "610902' OR '1'='1", "６１０９０２", "000000"])
def test_malformed_county_codes_are_refused(client, grids, hostile, code):
    from tests.unit.http_support import AUDITOR
    r = client.get(f"/regions/{code}/areas", headers=AUDITOR)
    hostile.attempt(f"county code {code!r}", status=r.status_code)
    assert r.status_code in (404, 422) and r.json()["code"]
