"""The grid worker's page, the import page and the changes page in English, in headless Chromium (issue 21).

The same harness and generated county as tests/integration/test_web_chromium.py. A grid worker who opens the page
with ?lang=en (or whose browser asks for English) reads English fixed texts and code labels; the names, ID numbers
and place names stay as the ledger holds them. The switch back to Chinese keeps the token and the hash.
"""
from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from tests.integration.test_web_chromium import (  # noqa: F401  (fixtures: site, chromium, browser, tab)
    AS_OF,
    CARDS,
    PHONE,
    SCREENSHOTS,
    TOWNSHIP,
    YEAR,
    browser,
    chromium,
    site,
    tab,
)

from entrypoints.http.web import labels  # noqa: E402

pytestmark = pytest.mark.integration
CHINESE = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
REASONS_EN = {labels.reason(code, "en") for code in labels.REASON_LABELS}  # the API's own English words


def test_a_grid_worker_reads_the_list_in_english_and_switches_back(site, tab):
    tab.goto(f"{site['base']}/web/?lang=en&token={quote('tok-township')}#grid={TOWNSHIP}&year={YEAR}&as_of={AS_OF}")
    tab.wait_for(f"document.body.dataset.state === 'ready' && {CARDS}.length > 0", timeout=30)
    assert tab.js("document.documentElement.lang") == "en" and "token" not in tab.js("location.href")
    assert tab.js("document.querySelector('h1').innerText") == "Cover everyone · grid worker's page"
    assert tab.js("document.querySelector('.section-title').innerText").startswith("People not covered")
    assert tab.js("document.querySelector('#stat-all .stat-label').innerText") == "Coverage"
    assert re.fullmatch(r"\d+ / \d+ people covered", tab.js("document.getElementById('coverage-note').innerText"))
    chips = tab.js("[...document.querySelectorAll('#chips .chip')].map(c => c.firstChild.textContent.trim())")
    assert chips[0] == "All" and set(chips[1:]) <= REASONS_EN and len(chips) > 1
    reasons = tab.js(f"[...{CARDS}].map(r => r.querySelector('.reason').innerText)")
    assert reasons and set(reasons) <= REASONS_EN
    assert tab.js(f"{CARDS}[0].querySelector('.badge').innerText").startswith("subsidised")
    # the fixed texts the worker reads: buttons, headings, labels, counts, the row's field names
    selector = "h1, h2, h3, button, label, th, .stat-label, #gap-count, #arrears-count, #fees-count"
    fixed = tab.js(f"[...document.querySelectorAll('{selector}')].filter(e => e.checkVisibility())"
                   ".map(e => e.innerText)")
    # the result's title and basis hold the place name (data); the rest of the basis is the page's
    fixed = [t for t in fixed if not t.startswith(tab.js("document.getElementById('result-title').innerText"))]
    fixed.append(tab.js("document.querySelector('#controls summary').firstChild.textContent"))
    # the basis names the year and day in the page's words; a note on the places table may follow (the server's)
    basis = tab.js("document.getElementById('result-basis').innerText")
    assert basis.startswith(f"Showing coverage year {YEAR} (")
    fixed.append(basis[:basis.index(f"as of {AS_OF}.")])
    assert [t for t in fixed if CHINESE.search(t)] == [], fixed
    tab.screenshot(SCREENSHOTS / "web-gaps-390-en.png")
    assert tab.js("document.documentElement.scrollWidth") <= PHONE["width"]
    # back to Chinese: the same grid, signed in
    tab.js("window.__left = true")
    tab.tap("#lang-switch")
    tab.wait_for(f"!window.__left && document.readyState === 'complete' && document.body.dataset.state === 'ready' "
                 f"&& {CARDS}.length > 0", timeout=30)
    assert tab.js("document.querySelector('h1').innerText") == "应保尽保 · 网格员工作台"
    assert f"grid={TOWNSHIP}" in tab.js("location.hash") and "lang=zh" in tab.js("location.search")


def test_a_browser_asking_for_english_gets_the_import_and_changes_pages_in_english(site, tab):
    tab.send("Network.enable")
    tab.send("Network.setExtraHTTPHeaders", headers={"Accept-Language": "en-GB,en;q=0.9"})
    try:
        tab.goto(f"{site['base']}/web/import")
        tab.wait_for("document.body.dataset.state === 'login'")
        assert tab.js("document.querySelector('h1').innerText") == "Bulk enrollment · import a sheet"
        assert tab.js("document.getElementById('login-title').innerText") == "Enter your access token"
        assert not CHINESE.search(tab.js("document.getElementById('login').innerText"))
        tab.goto(f"{site['base']}/web/changes?token={quote('tok-township')}")
        # a grid worker may not read changes: the refusal is the page's own, in English
        tab.wait_for("document.body.dataset.state === 'error'", timeout=30)
        assert tab.js("document.getElementById('message-title').innerText") == \
            "Your role (grid worker) cannot view changes awaiting approval"
        assert not CHINESE.search(tab.js("document.querySelector('header').innerText").replace("中文", ""))
    finally:
        tab.send("Network.setExtraHTTPHeaders", headers={})
