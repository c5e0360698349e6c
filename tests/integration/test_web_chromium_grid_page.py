"""The grid page for the field in headless Chromium (issue 21): 5,000 people in pages of 50, search, the year
shown and why, place labels, and a clerk's county picker. Screenshots under ``var/screenshots/``.

The browser, DevTools driver and tab come from tests/integration/test_web_chromium.py.
"""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import quote

import pytest

from tests.integration.test_web_chromium import (  # noqa: F401  (fixtures)
    PHONE,
    SCREENSHOTS,
    browser,
    chromium,
    tab,
)

pytestmark = pytest.mark.integration

TOKENS = {
    "tok-grid-a": ("grid.a", "grid_worker", ["610902100001"]),
    "tok-clerk": ("clerk.hanbin", "clerk", ["610902"]),
}
CARDS = "document.querySelectorAll('#gap-rows tr.gap-card')"


@contextmanager
def _serve(app: Any) -> Iterator[str]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _system():
    from entrypoints.wiring import bootstrap
    from infra.settings import Settings
    from tests.unit.http_support import policies

    return bootstrap(Settings(persistence="memory", id_key=b"web-test"), policies=policies())


@pytest.fixture(scope="module")
def crowd() -> Iterator[str]:
    """A grid of 5,000 people not covered (the read model's rows are synthetic; the routes and page are real)."""
    from entrypoints.http.app import create_app
    from entrypoints.http.auth import TokenStore
    from tests.unit.test_web_grid_page import ManyPeople

    system = _system()
    try:
        with _serve(create_app(system, TokenStore.from_tokens(TOKENS), reads=ManyPeople(system, 5000))) as base:
            yield base
    finally:
        system.close()


@pytest.fixture(scope="module")
def county() -> Iterator[str]:
    """A generated county (300 people, seed 3), the ledger's own views."""
    from entrypoints.http.app import create_app
    from entrypoints.http.auth import TokenStore
    from entrypoints.http.read_model import ViewReads
    from entrypoints.simulation import generate_county

    system = _system()
    generate_county(3, 300).apply_to(system.ledger)
    reads = ViewReads(system)
    reads.catch_up()
    try:
        with _serve(create_app(system, TokenStore.from_tokens(TOKENS), reads=reads)) as base:
            yield base
    finally:
        system.close()


def url(base: str, token: str, **state: str) -> str:
    return f"{base}/web/?token={quote(token)}#" + "&".join(f"{k}={quote(v)}" for k, v in state.items())


def text(tab, element_id: str) -> str:
    return tab.js(f"document.getElementById('{element_id}').innerText")


def test_5000_people_open_on_a_short_first_page_with_next_and_previous(crowd, tab):
    tab.viewport(PHONE["width"], PHONE["height"], mobile=True)
    tab.goto(url(crowd, "tok-grid-a", grid="610902100001", year="2025", as_of="2025-03-01"))
    tab.wait_for("document.body.dataset.state === 'ready'")
    assert tab.js(f"{CARDS}.length") == 50
    assert text(tab, "gap-count") == "共 5000 人 · 第 1/100 页"
    assert text(tab, "page-text") == "第 1 / 100 页，共 5000 人"
    assert tab.js("document.getElementById('page-prev').disabled") is True
    height = tab.js("document.documentElement.scrollHeight")
    assert height < 60_000, height  # one page of 50 cards, not 1,150,416 px
    assert text(tab, "result-basis").startswith("显示 2025 年度（按查询的年度）")
    # The place in words from the places table (the packaged sample's names, said to be samples), the code as its title.
    assert tab.js(f"{CARDS}[0].querySelector('td[data-label=\"网格\"]').innerText") == "汉滨区 关庙镇 · 关庙社区"
    assert "地名为示例数据" in text(tab, "result-basis")
    tab.screenshot(SCREENSHOTS / "web-5000-page1-390.png")
    tab.tap("#page-next")
    tab.wait_for("document.getElementById('page-text').innerText.startsWith('第 2 / 100 页')")
    assert "page=2" in tab.js("location.hash")
    assert tab.js(f"{CARDS}[0].dataset.personId") == "00000000-0000-0000-0000-000000000033"  # the 51st
    tab.tap("#page-prev")
    tab.wait_for("document.getElementById('page-text').innerText.startsWith('第 1 / 100 页')")


def test_search_by_name_and_by_id_tail_in_the_browser(crowd, tab):
    tab.viewport(PHONE["width"], PHONE["height"], mobile=True)
    tab.goto(url(crowd, "tok-grid-a", grid="610902100001", year="2025", as_of="2025-03-01"))
    tab.wait_for("document.body.dataset.state === 'ready'")
    tab.js("document.getElementById('search-input').value = '张七4999'")
    tab.tap("#search-form button[type=submit]")
    tab.wait_for(f"{CARDS}.length === 1")
    assert text(tab, "gap-count") == "找到 1 人"
    assert tab.js(f"{CARDS}[0].querySelector('.name').innerText") == "张七4999"
    assert "q=" in tab.js("location.hash")
    tab.screenshot(SCREENSHOTS / "web-search-390.png")
    tab.js("document.getElementById('search-input').value = '<b>王</b>'")
    tab.tap("#search-form button[type=submit]")
    tab.wait_for(f"{CARDS}.length === 0")
    assert text(tab, "empty") == "没有找到“<b>王</b>”。"  # shown as text, not markup
    tab.tap("#search-clear")
    tab.wait_for(f"{CARDS}.length === 50")


def test_without_a_year_the_page_says_which_year_it_shows(county, tab):
    tab.viewport(PHONE["width"], PHONE["height"], mobile=True)
    tab.goto(url(county, "tok-clerk", grid="610902100"))
    tab.wait_for("document.body.dataset.state === 'ready'")
    basis = text(tab, "result-basis")
    assert basis.startswith("显示 2025 年度（最近有参保数据的年度），统计日 2025-12-31。"), basis
    assert text(tab, "coverage-rate") not in ("0.00%", "—")
    assert tab.js("document.getElementById('year-input').value") == ""  # left for the server to choose


def test_a_clerk_picks_a_township_of_their_county(county, tab):
    tab.viewport(1024, 768, mobile=False)
    tab.goto(url(county, "tok-clerk"))
    tab.wait_for("document.body.dataset.state === 'areas'")
    assert text(tab, "areas-title") == "610902 汉滨区 · 请选择乡镇或网格"
    # The generated county's data is about 2025 (a handful are covered into 2026): 2025 is shown, and why.
    assert text(tab, "areas-note").startswith("2025 年度（最近有参保数据的年度）"), text(tab, "areas-note")
    tab.screenshot(SCREENSHOTS / "web-county-picker-1024.png")
    tab.tap("#areas-list button[data-code='610902100']")
    tab.wait_for("document.body.dataset.state === 'ready'")
    assert text(tab, "result-title").startswith("汉滨区 关庙镇 · ")
    assert "grid=610902100" in tab.js("location.hash")
