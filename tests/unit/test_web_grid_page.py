"""The grid page's reads for the field (issue 21): the year shown, search, paging, place labels, a county's areas.

(The page itself in a browser: tests/integration/test_web_chromium.py.)
"""
from __future__ import annotations

import uuid
from datetime import date
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

import entrypoints.http.routes_grids as routes_grids
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from entrypoints.http.read_model import ViewReads
from entrypoints.http.web import labels
from tests.unit.http_support import (
    AUDITOR,
    CLERK,
    CLERK_HANYIN,
    GRID_A,
    GRID_B,
    GRID_WORKER_A,
    TOKENS,
    TOWNSHIP,
    TOWNSHIP_WORKER,
    client,  # noqa: F401  (fixture)
    number,
    system,  # noqa: F401  (fixture)
)
from tests.unit.test_web_page import grids  # noqa: F401  (fixture: grid A has 2 people not covered in 2025, 1 paid)


@pytest.fixture()
def in_2026(monkeypatch):
    """Today is 1 March 2026: the policy tables cover 2026, but nobody has paid for it yet."""
    monkeypatch.setattr(routes_grids, "today", lambda: date(2026, 3, 1))


# ------------------------------------------------------------------ the year shown
def test_without_a_year_the_page_opens_on_the_latest_year_with_data_and_says_so(client, grids, in_2026):
    cover = client.get(f"/grids/{GRID_A}/coverage", headers=GRID_WORKER_A).json()
    assert (cover["year"], cover["year_basis"], cover["day"]) == (2025, "latest_with_data", "2025-12-31")
    assert cover["year_basis_label"] == "最近有参保数据的年度"
    assert cover["coverage_percent"] == "33.33%"  # not 0.00 %: 1 of 3 paid for 2025
    gaps = client.get(f"/grids/{GRID_A}/gaps", headers=GRID_WORKER_A).json()
    assert (gaps["year"], gaps["year_basis"], gaps["total"]) == (2025, "latest_with_data", 2)


def test_a_year_asked_for_is_kept_even_when_it_has_no_data(client, grids, in_2026):
    cover = client.get(f"/grids/{GRID_A}/coverage", params={"year": 2026}, headers=GRID_WORKER_A).json()
    assert (cover["year"], cover["year_basis"], cover["coverage_percent"]) == (2026, "asked", "0.00%")


def test_this_year_is_shown_when_it_has_data(client, grids, monkeypatch):
    monkeypatch.setattr(routes_grids, "today", lambda: date(2025, 6, 1))
    cover = client.get(f"/grids/{GRID_A}/coverage", headers=GRID_WORKER_A).json()
    assert (cover["year"], cover["year_basis"], cover["year_basis_label"]) == (2025, "today", "本年度")


# ------------------------------------------------------------------ place labels
def test_places_are_named_by_district_and_kind_with_the_code():
    assert labels.place("610902105") == "汉滨区 镇 610902105"
    assert labels.place("610902105204") == "汉滨区 镇 610902105 · 村 204"
    assert labels.place("610902003001") == "汉滨区 街道 610902003 · 社区 001"
    assert labels.place("610921201210") == "汉阴县 乡 610921201 · 村 210"


def test_gap_rows_carry_their_place_names_from_the_places_table(client, grids):
    # The packaged sample table names 610902100 and its community 001, not 002: that one keeps its code.
    body = client.get(f"/grids/{TOWNSHIP}/gaps", params={"year": 2025, "as_of": "2025-03-01"},
                      headers=TOWNSHIP_WORKER).json()
    assert body["label"] == "汉滨区 关庙镇"
    assert {(g["grid_code"], g["grid_label"]) for g in body["gaps"]} == {
        (GRID_A, "汉滨区 关庙镇 · 关庙社区"), (GRID_B, "汉滨区 关庙镇 · 社区 002")}
    assert body["places_note"].startswith("地名为示例数据")


# ------------------------------------------------------------------ search
PERIOD = {"year": 2025, "as_of": "2025-03-01"}


def test_search_by_name(client, grids):
    found = client.get(f"/grids/{GRID_A}/gaps", params={**PERIOD, "q": "芳"}, headers=GRID_WORKER_A).json()
    assert [g["name"] for g in found["gaps"]] == ["王芳", "王芳"] and found["total"] == 2
    none = client.get(f"/grids/{GRID_A}/gaps", params={**PERIOD, "q": "李"}, headers=GRID_WORKER_A).json()
    assert (none["total"], none["gaps"], none["by_reason"]) == (0, [], {})


def test_search_by_the_last_digits_of_the_id_number(client, grids):
    tail = grids["subsidised"][-4:]
    found = client.get(f"/grids/{GRID_A}/gaps", params={**PERIOD, "q": tail}, headers=GRID_WORKER_A).json()
    assert [g["person_id"] for g in found["gaps"]] and all(g["id_number"].endswith(tail) for g in found["gaps"])
    assert found["by_reason"] == {"SUBSIDISED_NOT_COVERED": 1}


def test_a_grid_worker_cannot_search_digits_the_mask_hides(client, grids):
    """Six digits end inside the mask for a grid worker: no row matches, so the search reveals nothing hidden."""
    tail6 = grids["subsidised"][-6:]
    worker = client.get(f"/grids/{GRID_A}/gaps", params={**PERIOD, "q": tail6}, headers=GRID_WORKER_A).json()
    clerk = client.get(f"/grids/{GRID_A}/gaps", params={**PERIOD, "q": tail6}, headers=CLERK).json()
    assert worker["total"] == 0 and clerk["total"] == 1


def test_search_and_reason_combine(client, grids):
    body = client.get(f"/grids/{GRID_A}/gaps", params={**PERIOD, "q": "王", "reason": "ENROLLED_UNPAID"},
                      headers=GRID_WORKER_A).json()
    assert body["total"] == 1 and body["gaps"][0]["reason"] == "ENROLLED_UNPAID"
    assert body["by_reason"] == {"SUBSIDISED_NOT_COVERED": 1, "ENROLLED_UNPAID": 1}


# ------------------------------------------------------------------ paging, 5,000 people
class ManyPeople(ViewReads):
    """The real reads, with a grid of ``n`` people not covered (the route's search, paging and masking are real)."""

    def __init__(self, system, n: int) -> None:
        super().__init__(system)
        self.rows = [{"person_id": str(uuid.UUID(int=i + 1)), "year": 2025, "grid_code": GRID_A,
                      "township_code": TOWNSHIP, "region_code": "610902", "covered": False,
                      "reason": "SUBSIDISED_NOT_COVERED" if i < 100 else "NOT_ENROLLED",
                      "label": "未参保", "detail": "not enrolled " * 8, "subsidised": i < 100,
                      "subsidy_category": "MIN_LIVING" if i < 100 else None, "outstanding_fen": 38000,
                      "scheme": "RESIDENT", "policy_version": "610902-2025-d1@abc", "sources": [], "day": "2025-03-01",
                      "masked_id": None} for i in range(n)]
        self.people = {r["person_id"]: SimpleNamespace(id_type="RESIDENT_ID", id_number=number(i % 1000, date(1950 + i // 1000, 1, 1)),
                                                       name=f"张{'三四五六七'[i % 5]}{i}", transfers={})
                       for i, r in enumerate(self.rows)}

    def grid_known(self, code):
        return True

    def coverage(self, code, *, year, as_of):
        n, sub = len(self.rows), sum(r["subsidised"] for r in self.rows)
        return {"residents": n + 1000, "covered": 1000, "subsidised": sub, "subsidised_covered": 0,
                "coverage_bp": 1666, "subsidised_coverage_bp": 0, "coverage_percent": "16.66%",
                "subsidised_coverage_percent": "0.00%", "gaps_by_reason": {}}

    def gaps(self, code, *, year, as_of, reason=None):
        return [dict(r) for r in self.rows if reason is None or r["reason"] == reason]

    def persons(self, person_ids):
        known = {p: self.people[p] for p in person_ids if p in self.people}
        return {**super().persons([p for p in person_ids if p not in known]), **known}  # also real ones (imports)


@pytest.fixture()
def crowd(system):
    return TestClient(create_app(system, TokenStore.from_tokens(TOKENS), reads=ManyPeople(system, 5000)))


def test_5000_people_come_50_a_page_in_a_small_response(crowd):
    whole = crowd.get(f"/grids/{GRID_A}/gaps", params=PERIOD, headers=GRID_WORKER_A)
    first = crowd.get(f"/grids/{GRID_A}/gaps", params={**PERIOD, "page": 1, "per_page": 50}, headers=GRID_WORKER_A)
    assert whole.status_code == first.status_code == 200
    assert len(whole.content) > 2_000_000  # what the page used to load on a phone
    assert len(first.content) < 60_000, len(first.content)
    body = first.json()
    assert (body["total"], body["count"], body["pages"], body["page"]) == (5000, 50, 100, 1)
    assert body["by_reason"] == {"SUBSIDISED_NOT_COVERED": 100, "NOT_ENROLLED": 4900}
    last = crowd.get(f"/grids/{GRID_A}/gaps", params={**PERIOD, "page": 100, "per_page": 50},
                     headers=GRID_WORKER_A).json()
    assert last["count"] == 50 and last["gaps"][-1]["person_id"] == str(uuid.UUID(int=5000))
    beyond = crowd.get(f"/grids/{GRID_A}/gaps", params={**PERIOD, "page": 101, "per_page": 50},
                       headers=GRID_WORKER_A).json()
    assert (beyond["count"], beyond["total"]) == (0, 5000)
    assert all(g["id_number"].startswith("6109****") for g in body["gaps"])  # a grid worker: masked


def test_pages_of_a_reason_and_a_search_among_5000(crowd):
    sub = crowd.get(f"/grids/{GRID_A}/gaps", params={**PERIOD, "reason": "SUBSIDISED_NOT_COVERED", "page": 2,
                                                     "per_page": 50}, headers=GRID_WORKER_A).json()
    assert (sub["total"], sub["count"], sub["pages"]) == (100, 50, 2)
    found = crowd.get(f"/grids/{GRID_A}/gaps", params={**PERIOD, "q": "张七", "per_page": 50},
                      headers=GRID_WORKER_A).json()
    assert found["total"] == 1000 and found["count"] == 50 and all(g["name"].startswith("张七") for g in found["gaps"])


# ------------------------------------------------------------------ a county (6 digits)
def test_a_clerk_gets_the_townships_and_grids_of_their_county(client, grids, in_2026):
    body = client.get("/regions/610902/areas", headers=CLERK).json()
    assert (body["label"], body["year"], body["year_basis"]) == ("610902 汉滨区", 2025, "latest_with_data")
    [township] = body["townships"]
    assert (township["code"], township["label"], township["residents"], township["covered"]) == \
        (TOWNSHIP, "汉滨区 关庙镇", 4, 1)
    assert [(g["code"], g["residents"], g["coverage_percent"]) for g in township["grids"]] == \
        [(GRID_A, 3, "33.33%"), (GRID_B, 1, "0.00%")]


def test_an_auditor_reads_any_county_and_others_are_refused(client, grids):
    assert client.get("/regions/610902/areas", headers=AUDITOR).status_code == 200
    other = client.get("/regions/610902/areas", headers=CLERK_HANYIN)
    assert (other.status_code, other.json()["code"]) == (403, "SCOPE_FORBIDDEN")
    worker = client.get("/regions/610902/areas", headers=GRID_WORKER_A)
    assert (worker.status_code, worker.json()["code"]) == (403, "ROLE_FORBIDDEN")
    assert client.get("/regions/610902/areas").status_code == 401


def test_the_page_has_search_paging_and_a_county_picker(client):
    html = client.get("/web/").text
    for needle in ('id="search-input"', "按姓名或证件号码后 4 位查找", 'id="pager"', "上一页", "下一页",
                   'id="areas"', "6 位区县", 'id="result-basis"', "PER_PAGE = 50", '"/regions/"'):
        assert needle in html, needle


class CoveredByYear(ManyPeople):
    def __init__(self, system, covered: dict[int, int]) -> None:
        super().__init__(system, 3)
        self.covered = covered

    def coverage(self, code, *, year, as_of):
        return {**super().coverage(code, year=year, as_of=as_of), "covered": self.covered.get(year, 0)}


@pytest.mark.parametrize("covered, year, basis", [
    ({2025: 900, 2026: 3}, 2025, "latest_with_data"),  # a year just begun, a few carried in: not the default
    ({2025: 900, 2026: 450}, 2026, "today"),  # half as many or more: this year
    ({2025: 0, 2026: 0}, 2026, "today"),  # nobody anywhere: this year, as before
])
def test_the_default_year_is_the_latest_with_at_least_half_the_best_years_covered(system, in_2026, covered, year,
                                                                                  basis):
    app = TestClient(create_app(system, TokenStore.from_tokens(TOKENS), reads=CoveredByYear(system, covered)))
    body = app.get(f"/grids/{GRID_A}/coverage", headers=GRID_WORKER_A).json()
    assert (body["year"], body["year_basis"]) == (year, basis)
