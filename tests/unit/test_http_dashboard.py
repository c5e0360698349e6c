"""The county dashboard's API: figures against the policy target, scope by token, SVG and a real PNG, the page."""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from entrypoints.http import routes_dashboard
from tests.unit.http_support import (
    AUDITOR,
    CLERK,
    CLERK_HANYIN,
    GRID_A,
    GRID_B,
    GRID_WORKER_A,
    HANBIN,
    TAX,
    TOWNSHIP,
    TOWNSHIP_WORKER,
    client,  # noqa: F401  (fixture)
    system,  # noqa: F401  (fixture)
)
from tests.unit.test_web_page import grids  # noqa: F401  (fixture)

PERIOD = {"year": 2025, "as_of": "2025-03-01"}


def test_a_county_clerk_sees_coverage_against_the_policy_target_ranked_with_links(client, grids):
    r = client.get(f"/regions/{HANBIN}/dashboard", params=PERIOD, headers=CLERK)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["kind"] == "county" and d["year"] == 2025 and d["label"].endswith("汉滨区")
    # The target comes from the policy table (ankang/2025.toml [resident.targets]), with its version.
    assert d["target"] == {"coverage_bp": 9500, "coverage_percent": "95.00%", "subsidised_coverage_bp": 10000,
                           "subsidised_coverage_percent": "100.00%", "policy_version": "610902-2025-d1"}
    # Grid A: 1 of 3 covered (one subsidised, not covered); grid B: 0 of 1.
    assert [(g["code"], g["covered"], g["residents"], g["rank"]) for g in d["grids"]] == [
        (GRID_B, 0, 1, 1), (GRID_A, 1, 3, 2)]
    a = d["grids"][1]
    assert a["coverage_percent"] == "33.33%" and a["gap_bp"] == 9500 - 3333 and a["people_short"] == 2
    assert a["subsidised"] == 1 and a["subsidised_covered"] == 0 and a["subsidised_meets_target"] is False
    assert a["link"] == f"/web/#grid={GRID_A}&year=2025&as_of=2025-03-01"
    assert [t["code"] for t in d["townships"]] == [TOWNSHIP]
    assert d["total"]["residents"] == 4 and d["total"]["covered"] == 1 and d["total"]["coverage_percent"] == "25.00%"
    assert d["total"]["people_short"] == 3 and d["total"]["meets_target"] is False


def test_collection_and_arrears_come_from_the_views(client, grids):
    d = client.get(f"/regions/{HANBIN}/dashboard", params=PERIOD, headers=CLERK).json()
    c = d["collection"]
    assert c["year"] == 2025 and c["last_year"] == 2024 and c["concentrated_start"] == "2024-09-01"
    assert c["weeks"] and c["weeks"][0]["from"] == "2024-09-01" and c["weeks"][0]["last_from"] == "2023-09-01"
    # Four due (one subsidised: 150 yuan less), one paid 400 yuan on 2024-10-08 (week 6).
    last = [w for w in c["weeks"] if w["to"]][-1]
    assert last["assessed_fen"] == c["assessed_fen"] == 3 * 40000 + 25000
    assert c["collected_fen"] == 40000 and c["collected_percent"] == "27.59%"
    assert [w["collected_fen"] for w in c["weeks"][4:6]] == [0, 40000]
    arrears = client.get("/arrears", params={"region": HANBIN, "as_of": "2025-03-01"}, headers=CLERK).json()
    assert d["arrears"]["outstanding_fen"] == arrears["outstanding_fen"] > 0
    assert d["arrears"]["late_fee_fen"] == arrears["late_fee_fen"]
    assert d["arrears"]["rows"] == arrears["count"] and d["arrears"]["outstanding_yuan"].count(".") == 1
    assert d["reconciliation"] == []  # no payment days recorded by the reconciliation side here


def test_a_township_official_sees_their_township_and_its_grids(client, grids):
    r = client.get(f"/regions/{TOWNSHIP}/dashboard", params=PERIOD, headers=TOWNSHIP_WORKER)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["kind"] == "township" and d["code"] == TOWNSHIP
    assert {g["code"] for g in d["grids"]} == {GRID_A, GRID_B}
    assert d["reconciliation"] == []


@pytest.mark.parametrize("path, headers, status, code", [
    (f"/regions/{HANBIN}/dashboard", TOWNSHIP_WORKER, 403, "ROLE_FORBIDDEN"),  # a township official, county asked
    (f"/regions/{HANBIN}/dashboard", GRID_WORKER_A, 403, "ROLE_FORBIDDEN"),
    (f"/regions/{HANBIN}/dashboard", CLERK_HANYIN, 403, "SCOPE_FORBIDDEN"),    # another county's clerk
    (f"/regions/{TOWNSHIP}/dashboard", GRID_WORKER_A, 403, "SCOPE_FORBIDDEN"),  # a grid worker of one grid
    (f"/regions/{TOWNSHIP}/dashboard", CLERK_HANYIN, 403, "SCOPE_FORBIDDEN"),
    (f"/regions/{HANBIN}/dashboard", TAX, 403, "ROLE_FORBIDDEN"),
    (f"/regions/{HANBIN}/dashboard", {}, 401, None),
    (f"/regions/{HANBIN}/dashboard.png", CLERK_HANYIN, 403, "SCOPE_FORBIDDEN"),
    (f"/regions/{HANBIN}/dashboard.svg", TOWNSHIP_WORKER, 403, "ROLE_FORBIDDEN"),
    ("/regions/61090/dashboard", CLERK, 422, None),
    (f"/regions/{GRID_A}/dashboard", CLERK, 422, None),
])
def test_scoped_by_the_viewers_token(client, grids, path, headers, status, code):
    r = client.get(path, params=PERIOD, headers=headers)
    assert r.status_code == status, r.text
    if code:
        assert r.json()["code"] == code
    assert "covered" not in r.text


def test_auditors_read_any_county(client, grids):
    assert client.get(f"/regions/{HANBIN}/dashboard", params=PERIOD, headers=AUDITOR).status_code == 200


def test_an_unknown_year_is_a_404_not_a_crash(client, grids):
    r = client.get(f"/regions/{HANBIN}/dashboard", params={"year": 1999}, headers=CLERK)
    assert r.status_code == 404 and r.json()["code"] == "POLICY_YEAR_UNKNOWN"


@pytest.mark.parametrize("headers, params", [({}, {}), ({"Accept-Language": "en-GB,en;q=0.9"}, {}),
                                             ({}, {"lang": "en"})])
def test_the_png_export_really_is_png_with_the_target_line(client, grids, headers, params):
    r = client.get(f"/regions/{HANBIN}/dashboard.png", params={**PERIOD, **params}, headers={**CLERK, **headers})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert "attachment" in r.headers["content-disposition"]
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(r.content)) as image:
        image.load()
        width, height = image.size
        red = (200, 30, 30)
        rows_with_target = [y for y in range(height) if {c: n for n, c in image.crop((0, y, width, y + 1))
                                                          .getcolors(width)}.get(red, 0) > width // 2]
    assert rows_with_target, "no red target line across the chart"


def test_the_png_speaks_the_language_asked(client, grids):
    def png(headers: dict[str, str], params: dict[str, str]) -> bytes:
        r = client.get(f"/regions/{HANBIN}/dashboard.png", params={**PERIOD, **params}, headers={**CLERK, **headers})
        assert r.status_code == 200, r.text
        return r.content

    zh = png({}, {})
    assert png({"Accept-Language": "en"}, {}) == png({}, {"lang": "en"}) != zh
    assert png({"Accept-Language": "en"}, {"lang": "zh"}) == zh  # the address wins over the header
    r = client.get(f"/regions/{HANBIN}/dashboard.png", params={**PERIOD, "lang": "fr"}, headers=CLERK)
    assert r.status_code == 422 and "image/png" not in r.headers["content-type"]


def test_the_png_names_the_places_from_the_places_table(client, grids, monkeypatch):
    drawn = {}
    real = routes_dashboard.coverage_png

    def spy(rows, **kwargs):
        drawn.update(rows=rows, **kwargs)
        return real(rows, **kwargs)

    monkeypatch.setattr(routes_dashboard, "coverage_png", spy)
    r = client.get(f"/regions/{TOWNSHIP}/dashboard.png", params=PERIOD, headers=TOWNSHIP_WORKER)
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn["place"] == "汉滨区 关庙镇" and drawn["unit"] == "grid" and drawn["target_bp"] == 9500
    assert [(row["township"], row["name"]) for row in drawn["rows"]][0] == (GRID_A, "汉滨区 关庙镇 · 关庙社区")


def test_the_svg_charts_carry_the_target_and_the_ranking(client, grids):
    r = client.get(f"/regions/{HANBIN}/dashboard.svg", params=PERIOD, headers=CLERK)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert "目标 95.00%" in r.text
    assert r.text.index(f'data-code="{GRID_B}"') < r.text.index(f'data-code="{GRID_A}"')  # one township: grids
    r = client.get(f"/regions/{HANBIN}/dashboard.svg", params={**PERIOD, "chart": "collection"}, headers=CLERK)
    assert r.status_code == 200 and "2024 年度" in r.text and "this-year" in r.text
    assert client.get(f"/regions/{HANBIN}/dashboard.svg", params={"chart": "pie"}, headers=CLERK).status_code == 422


def test_the_page_is_chinese_self_contained_and_admits_only_its_own_script(client):
    r = client.get("/web/dashboard")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert '<html lang="zh-CN">' in html and "参保工作看板" in html and "输入访问令牌" in html
    for heading in ("参保率排名", "集中参保缴费期征收进度", "欠费", "对账状态", "导出图表 PNG"):
        assert heading in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "innerHTML" not in html and "document.write" not in html
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert "/*{{" not in html
