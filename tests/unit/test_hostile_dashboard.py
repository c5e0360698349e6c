"""Hostile reads of the county dashboard: other counties, malformed codes and years, odd charts; no 5xx, no leak."""
from __future__ import annotations

import pytest

from tests.unit.http_support import (
    CLERK,
    CLERK_HANYIN,
    GRID_WORKER_A,
    HANBIN,
    TOWNSHIP,
    client,  # noqa: F401  (fixture)
    system,  # noqa: F401  (fixture)
)
from tests.unit.test_web_page import grids  # noqa: F401  (fixture)


@pytest.mark.parametrize("name, path, headers, params", [
    ("dashboard of another county", f"/regions/{HANBIN}/dashboard", CLERK_HANYIN, {}),
    ("dashboard png of another county", f"/regions/{HANBIN}/dashboard.png", CLERK_HANYIN, {}),
    ("township dashboard from a grid token", f"/regions/{TOWNSHIP}/dashboard", GRID_WORKER_A, {}),
    ("county dashboard from a grid token", f"/regions/{HANBIN}/dashboard.svg", GRID_WORKER_A, {}),
    ("dashboard with a forged bearer", f"/regions/{HANBIN}/dashboard", {"Authorization": "Bearer x' OR 1=1"}, {}),
])
def test_out_of_scope_reads_are_refused_without_figures(client, grids, hostile, name, path, headers, params):
    r = client.get(path, params={"year": 2025, "as_of": "2025-03-01", **params}, headers=headers)
    leaked = r.status_code == 200 or "residents" in r.text or "coverage_bp" in r.text  # (own scope may be named)
    hostile.attempt(name, status=r.status_code, crashed=r.status_code >= 500, leaked=leaked)
    assert r.status_code in (401, 403) and not leaked


@pytest.mark.parametrize("code", ["610902'--", "6109O2", "６１０９０２", "000000", "999999", "610902999",
                                  "61090210%", "%2e%2e", "610902100204", "1" * 200, "610902 "])
def test_malformed_or_unknown_places_are_4xx(client, grids, hostile, code):
    r = client.get(f"/regions/{code}/dashboard", params={"year": 2025}, headers=CLERK)
    hostile.attempt(f"dashboard code {code[:12]!r}", status=r.status_code, crashed=r.status_code >= 500)
    assert r.status_code < 500
    if code.strip() != HANBIN:
        assert r.status_code in (403, 404, 422), r.text


@pytest.mark.parametrize("params", [{"year": 0}, {"year": 99999}, {"year": "2025; DROP"}, {"as_of": "2025-02-30"},
                                    {"as_of": "yesterday"}, {"chart": "<svg onload=alert(1)>"}, {"year": 1900}])
def test_malformed_parameters_are_4xx(client, grids, hostile, params):
    r = client.get(f"/regions/{HANBIN}/dashboard.svg", params=params, headers=CLERK)
    hostile.attempt(f"dashboard params {sorted(params)}", status=r.status_code, crashed=r.status_code >= 500)
    assert 400 <= r.status_code < 500 and "onload" not in r.text.replace("\\u003c", "")
