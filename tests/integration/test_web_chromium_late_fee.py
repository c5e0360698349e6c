"""Issue #19's late fee on the grid worker's page, in a real browser (headless Chromium, phone-sized).

An employer owes 1,000,000 fen for January 2026, due 2026-01-15 (tests/unit/late_fee_support.py:
eight employees in one grid), and pays it all on 2026-03-16. On 2026-04-01 the page's arrears
section (欠费名单) lists the eight months with nothing outstanding and 30,000 fen of late fee in
all, each marked 滞纳金未缴. The browser, the DevTools client and the screenshots are those of
tests/integration/test_web_chromium.py.
"""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.test_web_chromium import (  # noqa: F401  (fixtures)
    PHONE,
    SCREENSHOTS,
    browser,
    chromium,
    tab,
)
from tests.unit import late_fee_support as case

pytestmark = pytest.mark.integration

TOKENS = {"tok-grid": ("grid.late", "grid_worker", [case.GRID])}
AS_OF = "2026-04-01"
ROWS = "document.querySelectorAll('#arrears-rows tr.arrears-card')"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """uvicorn on a free loopback port over an in-memory ledger holding the issue's case, paid late."""
    import uvicorn

    from entrypoints.wiring import bootstrap
    from infra.settings import Settings
    from entrypoints.http.app import create_app
    from entrypoints.http.auth import TokenStore
    from ledger.policy import PolicyBook

    policies = PolicyBook.load(case.policy_dir(tmp_path_factory.mktemp("late-fee")))
    system = bootstrap(Settings(persistence="memory", id_key=b"web-late-fee"), policies=policies)
    numbers = case.employer_owes_january(system.ledger)
    case.employer_pays_january(system.ledger, numbers)
    app = create_app(system, TokenStore.from_tokens(TOKENS))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield {"base": f"http://127.0.0.1:{port}", "numbers": numbers}
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        system.close()


def test_the_page_lists_the_months_paid_late_with_their_fee_still_owed(site, tab):
    tab.goto(f"{site['base']}/web/?token={quote('tok-grid')}#grid={case.GRID}&year=2026&as_of={AS_OF}")
    tab.wait_for("document.body.dataset.state === 'ready'")
    tab.wait_for("document.getElementById('arrears-section').dataset.state === 'ready'")
    rows = tab.js(f"[...{ROWS}].map(r => ({{text: r.innerText, feeOnly: r.dataset.feeOnly, period: r.dataset.period, "
                  "status: r.querySelector('.status').innerText, fee: r.querySelector('.late-fee').innerText, "
                  "width: r.getBoundingClientRect().width}))")
    assert len(rows) == case.EMPLOYEES
    for row in rows:
        assert (row["feeOnly"], row["period"], row["status"]) == ("true", case.MONTH, "滞纳金未缴")
        assert row["fee"] == "37.50"  # 3,750 fen each
        assert "1250.00" in row["text"] and "0.00" in row["text"] and "单位职工" in row["text"]
        assert "逾期 60 天，2026-03-16 缴清费款" in row["text"]
        assert "**********" in row["text"] and not any(n in row["text"] for n in site["numbers"])
        assert row["width"] <= PHONE["width"]
    count = tab.js("document.getElementById('arrears-count').innerText")
    assert count == "共 8 条 · 欠缴 0.00 元 · 滞纳金 300.00 元（其中 8 条滞纳金未缴）"
    assert tab.js("document.documentElement.scrollWidth") <= PHONE["width"]
    tab.js("document.getElementById('arrears-section').scrollIntoView()")
    tab.screenshot(SCREENSHOTS / "web-arrears-late-fee-390.png")


def test_before_the_payment_day_the_rows_are_ordinary_arrears(site, tab):
    tab.goto(f"{site['base']}/web/?token={quote('tok-grid')}#grid={case.GRID}&year=2026&as_of=2026-03-15")
    tab.wait_for("document.getElementById('arrears-section').dataset.state === 'ready'")
    statuses = tab.js(f"[...{ROWS}].map(r => r.querySelector('.status').innerText)")
    assert statuses == ["欠费"] * case.EMPLOYEES
    count = tab.js("document.getElementById('arrears-count').innerText")
    assert count == "共 8 条 · 欠缴 10000.00 元 · 滞纳金 295.04 元"  # 59 days: 3,687.5 fen a row, rounded half up


def test_the_fee_list_shows_the_arithmetic_and_the_employer_total(site, tab):
    """Issue #22: the page's 滞纳金清单 spells each fee out; the arrears section gives the employer's total."""
    tab.goto(f"{site['base']}/web/?token={quote('tok-grid')}#grid={case.GRID}&year=2026&as_of={AS_OF}")
    tab.wait_for("document.getElementById('fees-section').dataset.state === 'ready'")
    tab.wait_for("document.getElementById('arrears-section').dataset.state === 'ready'")
    fees = tab.js("[...document.querySelectorAll('#fees-rows tr')].map(r => ({status: r.dataset.status, "
                  "arithmetic: r.querySelector('.arithmetic').innerText, text: r.innerText, "
                  "width: r.getBoundingClientRect().width}))")
    assert len(fees) == case.EMPLOYEES
    for row in fees:
        assert row["status"] == "OWED" and row["arithmetic"] == "1,250.00 元 × 60 天 × 0.05%/天 = 37.50 元"
        assert case.EMPLOYER in row["text"] and not any(n in row["text"] for n in site["numbers"])
        assert row["width"] <= PHONE["width"]
    count = tab.js("document.getElementById('fees-count').innerText")
    assert count == "共 8 条 · 应计 300.00 元 · 已缴 0.00 元 · 减免 0.00 元 · 尚欠 300.00 元"
    employers = tab.js("[...document.querySelectorAll('#arrears-employers li')].map(li => li.innerText)")
    assert employers == [f"单位 {case.EMPLOYER}：8 名职工，欠缴 0.00 元 + 滞纳金 300.00 元 = 合计 300.00 元"]
    assert tab.js("document.getElementById('arrears-xlsx').innerText") == "导出欠费名单 Excel（含单位合计）"
    assert tab.js("document.documentElement.scrollWidth") <= PHONE["width"]
    tab.js("document.getElementById('fees-section').scrollIntoView()")
    tab.screenshot(SCREENSHOTS / "web-fees-390.png")
