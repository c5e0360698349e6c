"""The county dashboard in a real browser: headless Chromium at 390 px (phone) and 1280 px (desktop).

The same harness as the grid page's browser test (tests/integration/test_web_chromium.py: its DevTools
and Tab helpers, its PNG decoder): uvicorn on a loopback port over an in-memory ledger holding the
generated county (300 people, seed 3), the ledger side of the reconciliation brought up to date so
the reconciliation table has days. Screenshots go to ``var/screenshots/dashboard-*.png``.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from typing import Any, Iterator
from urllib.parse import quote
from urllib.request import Request, urlopen

import pytest

from tests.integration.test_web_chromium import (  # noqa: F401  (fixtures: chromium, browser, tab)
    BRAND,
    PHONE,
    SCREENSHOTS,
    browser,
    chromium,
    decode_png,
    near,
    pixel,
    tab,
)

pytestmark = pytest.mark.integration

YEAR, AS_OF = 2025, "2025-03-31"
COUNTY, TOWNSHIP = "610902", "610902100"
TOKENS = {
    "tok-county": ("county.clerk", "clerk", [COUNTY]),
    "tok-township": ("township.official", "grid_worker", [TOWNSHIP]),
}
DESKTOP = {"width": 1280, "height": 900}
TARGET_RED = (0xC8, 0x1E, 0x1E)


@pytest.fixture(scope="module")
def site() -> Iterator[dict[str, Any]]:
    import uvicorn

    from entrypoints.http.app import create_app
    from entrypoints.http.auth import TokenStore
    from entrypoints.http.read_model import ViewReads
    from entrypoints.simulation import generate_county
    from entrypoints.wiring import bootstrap
    from infra.settings import Settings
    from reconciliation.factory import ledger_side_runner, reconciler
    from tests.unit.http_support import policies

    system = bootstrap(Settings(persistence="memory", id_key=b"dashboard-test"), policies=policies())
    generate_county(3, 300).apply_to(system.ledger)
    reads = ViewReads(system)
    reads.catch_up()
    ledger_side_runner(system, reconciler(system)).run_once()
    app = create_app(system, TokenStore.from_tokens(TOKENS), reads=reads)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        yield {"base": base, "county": _api(base, f"/regions/{COUNTY}/dashboard", "tok-county"),
               "township": _api(base, f"/regions/{TOWNSHIP}/dashboard", "tok-township")}
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        system.close()


def _api(base: str, path: str, token: str) -> dict[str, Any]:
    request = Request(f"{base}{path}?year={YEAR}&as_of={AS_OF}", headers={"Authorization": f"Bearer {token}"})
    with urlopen(request, timeout=30) as response:
        return json.load(response)


def url(site: dict[str, Any], token: str, code: str) -> str:
    return f"{site['base']}/web/dashboard?token={quote(token)}#code={code}&year={YEAR}&as_of={AS_OF}"


def open_board(tab, site, token: str, code: str) -> None:
    tab.goto(url(site, token, code))
    tab.wait_for("document.body.dataset.state === 'ready'", timeout=30)


def test_a_county_official_on_a_phone_sees_the_headline_the_target_line_and_the_ranking(site, tab):
    expected = site["county"]
    assert len(expected["townships"]) >= 5, "the generated county changed"
    open_board(tab, site, "tok-county", COUNTY)
    assert "token" not in tab.js("location.href")
    assert tab.js("document.querySelector('h1').innerText") == "参保工作看板"
    assert tab.js("document.getElementById('board-title').innerText") == f"{expected['label']} · {YEAR} 年度"
    headline = tab.js("[...document.querySelectorAll('#headline .stat')].map(s => s.innerText.replace(/\\s+/g, ' '))")
    total = expected["total"]
    assert headline[0].startswith("参保率") and total["coverage_percent"] in headline[0]
    assert f"目标 95.00%，还差 {total['people_short']} 人" in headline[0]
    assert headline[1].startswith("资助对象参保率") and "目标 100.00%" in headline[1]
    assert headline[2].startswith("征收进度") and expected["collection"]["collected_percent"] in headline[2]
    assert headline[3].startswith("欠费合计") and "滞纳金" in headline[3]
    # The chart: a dashed red target line labelled with the policy's target, one row per township in rank order.
    chart = tab.js("""(() => { const s = document.querySelector('#coverage-chart svg');
        const t = s.querySelector('line.coverage-target'), b = t.getBoundingClientRect();
        return {label: s.querySelector('.target-label').textContent, x: b.left, top: b.top, bottom: b.bottom,
                width: s.getBoundingClientRect().width, ticks: [...s.querySelectorAll('.tick-label')].map(e => e.textContent),
                rows: [...s.querySelectorAll('g.row')].map(g => g.dataset.code)}; })()""")
    assert chart["label"] == "目标 95.00%"
    assert chart["rows"] == [t["code"] for t in expected["townships"]]
    assert chart["width"] <= PHONE["width"]
    lowest = min(t["coverage_bp"] for t in expected["townships"] if t["coverage_bp"] is not None)
    # The axis starts at the lowest coverage rounded down to 5 %, not at 0 %, so the differences show.
    assert int(chart["ticks"][0].rstrip("%")) * 100 == lowest // 500 * 500 - (500 if lowest % 500 < 100 else 0)
    assert chart["ticks"][0] != "0%"
    # The ranking table: furthest from the target first, with the gap and a link to the grid page.
    rows = tab.js("[...document.querySelectorAll('#rank-table tbody tr')].map(r => ({code: r.dataset.code, "
                  "cells: [...r.cells].map(c => c.innerText), href: r.querySelector('a.drill').getAttribute('href')}))")
    assert [r["code"] for r in rows] == [t["code"] for t in expected["townships"]]
    rates = [t["coverage_bp"] for t in expected["townships"]]
    assert rates == sorted(rates), "not ranked lowest coverage first"
    first = rows[0]
    assert first["cells"][0] == "1" and first["cells"][2] == expected["townships"][0]["coverage_percent"]
    assert first["cells"][3].replace("\n", "").startswith("差 ")
    assert f"（{expected['townships'][0]['people_short']} 人）" in first["cells"][3].replace("\n", "")
    # Every column, the drill-down link included, fits the phone's width (no sideways scrolling needed).
    assert tab.js("document.querySelector('#rank-table').getBoundingClientRect().right") <= PHONE["width"]
    assert first["href"].startswith(f"/web/#grid={first['code']}&year={YEAR}")
    assert tab.js("document.documentElement.scrollWidth") <= PHONE["width"], "the page is wider than the phone"

    tab.js("window.scrollTo(0, 0)")
    png = tab.screenshot(SCREENSHOTS / "dashboard-390.png")
    width, height, pixels = decode_png(png)
    assert (width, height) == (PHONE["width"], PHONE["height"])
    colours = Counter(pixel(pixels, x, y) for y in range(0, height, 4) for x in range(0, width, 4))
    assert len(colours) > 20 and colours.most_common(1)[0][1] < 0.8 * sum(colours.values())
    assert near(pixel(pixels, 4, 4), BRAND), "the header band is missing"
    tab.screenshot(SCREENSHOTS / "dashboard-390-full.png", full_page=True)
    # The red target line is drawn (pixels of its colour in the full-page chart area).
    full = decode_png((SCREENSHOTS / "dashboard-390-full.png").read_bytes())
    reds = sum(1 for row in full[2] for i in range(0, len(row), 3) if near(tuple(row[i:i + 3]), TARGET_RED, 40))
    assert reds > 50, "no red target line in the screenshot"


def test_the_drill_down_link_opens_the_grid_page_for_that_township(site, tab):
    open_board(tab, site, "tok-county", COUNTY)
    code = tab.js("document.querySelector('#rank-table tbody tr').dataset.code")
    tab.js("window.__left = true")
    tab.tap("#rank-table tbody tr a.drill")
    tab.wait_for("!window.__left && document.readyState === 'complete' && document.body.dataset.state === 'ready'",
                 timeout=30)
    assert tab.js("location.pathname") == "/web/"
    assert tab.js("document.querySelector('h1').innerText") == "应保尽保 · 网格员工作台"
    assert code in tab.js("document.body.innerText") or code in tab.js("location.hash")
    assert tab.js("document.getElementById('stat-all').innerText").startswith("参保率")


def test_a_desktop_shows_collection_arrears_and_reconciliation(site, tab):
    tab.viewport(DESKTOP["width"], DESKTOP["height"], mobile=False)
    expected = site["county"]
    open_board(tab, site, "tok-county", COUNTY)
    assert tab.js("getComputedStyle(document.getElementById('headline')).gridTemplateColumns.split(' ').length") == 4
    lines = tab.js("({this: !!document.querySelector('#collection-chart svg polyline.this-year'), "
                   "last: !!document.querySelector('#collection-chart svg polyline.last-year'), "
                   "legend: document.querySelector('#collection-chart svg').textContent})")
    assert lines["this"] and lines["last"] and f"{YEAR} 年度" in lines["legend"] and f"{YEAR - 1} 年度" in lines["legend"]
    arrears = tab.js("document.getElementById('arrears-body').innerText")
    assert expected["arrears"]["outstanding_yuan"] in arrears and "滞纳金" in arrears
    recon = tab.js("[...document.querySelectorAll('#recon-table tbody tr')].map(r => [...r.cells].map(c => c.innerText))")
    assert len(recon) == len(expected["reconciliation"]) > 0
    assert recon[0][0] == expected["reconciliation"][0]["business_date"]
    assert recon[0][1] == expected["reconciliation"][0]["state_label"]
    grids = tab.js("document.querySelectorAll('#grid-table tbody tr').length")
    assert grids == len(expected["grids"])
    tab.screenshot(SCREENSHOTS / "dashboard-1280.png")
    tab.screenshot(SCREENSHOTS / "dashboard-1280-full.png", full_page=True)


def test_a_township_official_sees_the_grids_of_their_township(site, tab):
    expected = site["township"]
    open_board(tab, site, "tok-township", TOWNSHIP)
    assert tab.js("document.getElementById('rank-place-head').innerText") == "网格"
    codes = tab.js("[...document.querySelectorAll('#rank-table tbody tr')].map(r => r.dataset.code)")
    assert codes == [g["code"] for g in expected["grids"]] and all(c.startswith(TOWNSHIP) for c in codes)
    assert tab.js("document.getElementById('recon-panel').hidden") is True
    tab.screenshot(SCREENSHOTS / "dashboard-township-390.png")
    # The county is not theirs: the page says so in Chinese.
    tab.goto(url(site, "tok-township", COUNTY))
    tab.wait_for("document.body.dataset.state === 'error'", timeout=30)
    assert tab.js("document.getElementById('message-title').innerText") == "没有权限查看"


def test_the_png_export_downloads_a_real_png(site):
    request = Request(f"{site['base']}/regions/{COUNTY}/dashboard.png?year={YEAR}&as_of={AS_OF}",
                      headers={"Authorization": "Bearer tok-county"})
    with urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"] == "image/png"
        data = response.read()
    width, height, _ = decode_png(data)
    assert width > 300 and height > 200
    (SCREENSHOTS / "dashboard-export.png").write_bytes(data)


def test_a_desktop_official_switches_to_english_and_keeps_the_board(site, tab):
    """The 中文 / English link: the same board in English, signed in (the token stays in the tab) on the same
    county and year (the hash stays); every fixed text English, Chinese left only in the data (place names)."""
    tab.viewport(DESKTOP["width"], DESKTOP["height"], mobile=False)
    open_board(tab, site, "tok-county", COUNTY)
    assert tab.js("document.getElementById('lang-switch').innerText") == "English"
    tab.js("window.__left = true")
    tab.tap("#lang-switch")
    # wait for the new document and for its board to be drawn before reading or tapping anything
    tab.wait_for("!window.__left && document.readyState === 'complete' && document.body.dataset.state === 'ready' "
                 "&& document.querySelectorAll('#rank-table tbody tr').length > 0", timeout=30)
    assert tab.js("document.documentElement.lang") == "en"
    assert "lang=en" in tab.js("location.search") and "token" not in tab.js("location.href")
    assert f"code={COUNTY}" in tab.js("location.hash") and f"year={YEAR}" in tab.js("location.hash")
    assert tab.js("document.querySelector('h1').innerText") == "Enrollment dashboard"
    headings = tab.js("[...document.querySelectorAll('h2.section-title')].filter(h => h.checkVisibility())"
                      ".map(h => h.innerText)")
    assert headings == ["Coverage ranking (furthest from the target first)",
                        "Collection during the concentrated enrollment period", "Arrears",
                        "Reconciliation by day (newest first)"]
    headline = tab.js("[...document.querySelectorAll('#headline .stat-label')].map(s => s.innerText)")
    assert headline == ["Coverage", "Subsidised people covered", "Collection", "Arrears"]
    assert tab.js("document.getElementById('board-title').innerText").endswith(f" · coverage year {YEAR}")
    # Every visible text outside the data (place names, the server's charts, the way back to Chinese) is free of
    # Chinese; the ranking's place names still are Chinese (they are data).
    leftover = tab.js(r"""(() => {
        const data = '#lang-switch, .chart-box, td.place, #board-title, #query-summary, #place-select';
        const out = [], walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        for (let n = walk.nextNode(); n; n = walk.nextNode()) {
            const e = n.parentElement;
            if (!e || e.closest(data) || e.closest('script') || !e.checkVisibility()) continue;
            if (/[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]/.test(n.textContent)) out.push(n.textContent.trim());
        }
        return out; })()""")
    assert leftover == []
    assert any("\u4e00" <= ch <= "\u9fff" for ch in tab.js("document.querySelector('td.place').innerText"))
    recon = tab.js("[...document.querySelectorAll('#recon-table tbody tr')].map(r => r.cells[1].innerText)")
    assert recon and set(recon) <= {"statement missing", "difference", "awaiting statement", "reconciling", "balanced"}
    # drill-down links keep the language; the way back is one tap
    assert "lang=en" in tab.js("document.querySelector('#rank-table a.drill').getAttribute('href')")
    assert tab.js("document.getElementById('lang-switch').innerText") == "中文"
    tab.screenshot(SCREENSHOTS / "dashboard-1280-en.png")
    tab.js("window.__left = true")
    tab.tap("#lang-switch")
    tab.wait_for("!window.__left && document.readyState === 'complete' && document.body.dataset.state === 'ready'",
                 timeout=30)
    assert tab.js("document.querySelector('h1').innerText") == "参保工作看板"
    assert f"code={COUNTY}" in tab.js("location.hash")
