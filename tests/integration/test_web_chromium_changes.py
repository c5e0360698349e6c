"""The maker-checker page (/web/changes, issue 22) in a real browser: headless Chromium at 390 px and 1280 px.

A clerk of 汉滨区 proposes merging two records of one person through the API; an approver of the county opens
the page on a phone, sees the change (kind, persons masked, proposer, Beijing time, expiry, reason), approves it
with a note, and it moves to 已批准. The proposing clerk sees the change without an approve button, also with an
approver token of their own; a refusal of the API (a change decided meanwhile) is shown in Chinese. The
browser, the DevTools client and the screenshots are those of tests/integration/test_web_chromium.py;
screenshots under ``var/screenshots/web-changes-*.png``.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.error import HTTPError
from urllib.parse import quote
from urllib.request import Request, urlopen

import pytest

from tests.integration.test_web_chromium import (  # noqa: F401  (fixtures)
    PHONE,
    SCREENSHOTS,
    browser,
    chromium,
    tab,
)
from tests.unit.http_support import HANBIN, enrollment, number

pytestmark = pytest.mark.integration

TOKENS = {
    "tok-clerk": ("clerk.hanbin", "clerk", [HANBIN]),
    "tok-approver": ("approver.hanbin", "approver", [HANBIN]),
    "tok-approver-2": ("approver2.hanbin", "approver", [HANBIN]),
    "tok-maker-approver": ("Clerk.Hanbin", "approver", [HANBIN]),  # the proposing clerk's own approver token
    "tok-hanyin": ("approver.hanyin", "approver", ["610921"]),
}
DESKTOP = {"width": 1280, "height": 800}
CARDS = "document.querySelectorAll('#change-list article.change-card')"


def call(base: str, method: str, path: str, token: str, body: Any = None,
         request_id: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept-Language": "zh-CN"}
    if request_id:
        headers["X-Request-ID"] = request_id
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urlopen(Request(f"{base}{path}", data=data, headers=headers, method=method), timeout=20) as r:
            return r.status, json.load(r)
    except HTTPError as e:
        return e.code, json.load(e)


def propose_merge(base: str, kept: str, merged: str, change_id: str, reason: str = "同一人在两个村重复登记") -> None:
    status, answer = call(base, "POST", f"/persons/RESIDENT_ID/{kept}/merges", "tok-clerk",
                          {"merged_id_number": merged, "merge_kind": "DUPLICATE", "reason": reason}, change_id)
    assert status == 202, answer


@pytest.fixture(scope="module")
def site() -> Iterator[dict[str, Any]]:
    """uvicorn on a free loopback port over an in-memory ledger; six people enrolled by the clerk, one merge
    proposed (M-100): 王芳's second record into her first."""
    import uvicorn

    from entrypoints.http.app import create_app
    from entrypoints.http.auth import TokenStore
    from entrypoints.wiring import bootstrap
    from infra.settings import Settings
    from tests.unit.http_support import policies

    system = bootstrap(Settings(persistence="memory", id_key=b"web-changes"), policies=policies())
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
    base = f"http://127.0.0.1:{port}"
    numbers = [number(700 + i) for i in range(6)]
    for i, n in enumerate(numbers):
        status, answer = call(base, "POST", "/enrollments", "tok-clerk", enrollment(n, name="王芳" if i < 2 else "李强"))
        assert status == 201, answer
    propose_merge(base, numbers[0], numbers[1], "M-100")
    try:
        yield {"base": base, "numbers": numbers, "system": system}
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        system.close()


def open_page(site: dict[str, Any], tab, token: str, status: str = "PENDING") -> None:
    tab.goto(f"{site['base']}/web/changes?token={quote(token)}#status={status}")
    tab.wait_for("document.body.dataset.state === 'ready'")


def card(tab, change_id: str) -> dict[str, Any] | None:
    return tab.js(f"""(() => {{
        const c = [...{CARDS}].find(c => c.dataset.changeId === {json.dumps(change_id)});
        if (!c) return null;
        const r = c.getBoundingClientRect();
        return {{text: c.innerText, status: c.dataset.status, approve: !!c.querySelector('button.approve'),
                 reject: !!c.querySelector('button.reject'), width: r.width, right: r.right,
                 error: (c.querySelector('.decision-error') || {{}}).innerText || ''}};
    }})()""")


def chips(tab) -> dict[str, str]:
    return tab.js("Object.fromEntries([...document.querySelectorAll('#status-chips .chip')]"
                  ".map(c => [c.dataset.status, c.innerText.replace(/\\s+/g, ' ').trim()]))")


def no_sideways_scroll(tab) -> None:
    assert tab.js("document.documentElement.scrollWidth") <= tab.js("document.documentElement.clientWidth") + 1


def test_an_approver_on_a_phone_sees_the_merge_approves_it_and_it_moves_to_approved(site, tab):
    kept, merged = site["numbers"][:2]
    open_page(site, tab, "tok-approver")
    assert "token" not in tab.js("location.href")
    assert tab.js("document.querySelector('h1').innerText") == "双人复核 · 待审核变更"
    assert tab.js("document.getElementById('who-text').innerText") == "医保审核 approver.hanbin"
    assert chips(tab)["PENDING"] == "待审核 1"
    shown = card(tab, "M-100")
    assert shown is not None and shown["status"] == "PENDING", shown
    text = shown["text"]
    for words in ("参保人合并", "待审核", "编号 M-100", f"保留 王* {kept[:4]}{'*' * 10}{kept[-4:]}",
                  f"并入 王* {merged[:4]}{'*' * 10}{merged[-4:]}", "同一人在两个村重复登记", "提出人\nclerk.hanbin",
                  "（北京时间）", "有效期至", "剩余 71 小时", "610902 汉滨区", "金额\n—"):
        assert words in text, (words, text)
    assert kept not in text and merged not in text  # ID numbers masked
    assert shown["approve"] and shown["reject"] and shown["width"] <= PHONE["width"] and shown["right"] <= PHONE["width"]
    no_sideways_scroll(tab)
    tab.screenshot(SCREENSHOTS / "web-changes-390.png")

    tab.js("document.querySelector('[data-change-id=\"M-100\"] input.decision-note').value = '已核对户籍信息，同意合并'")
    tab.tap("[data-change-id='M-100'] button.approve")
    tab.wait_for("document.getElementById('decision-status').innerText.includes('已批准')")
    assert tab.js("document.getElementById('decision-status').innerText") == "参保人合并（编号 M-100）已批准。"
    tab.wait_for("document.body.dataset.state === 'ready'")
    assert card(tab, "M-100") is None  # no longer pending
    assert chips(tab)["PENDING"] == "待审核 0" and chips(tab)["APPROVED"] == "已批准 1"
    assert tab.js("document.getElementById('changes-empty').innerText") == "没有待审核的变更。"
    tab.tap("#status-chips .chip[data-status='APPROVED']")
    tab.wait_for(f"{CARDS}.length === 1")
    shown = card(tab, "M-100")
    assert shown["status"] == "APPROVED" and not shown["approve"]
    assert "已批准" in shown["text"] and "approver.hanbin 于 " in shown["text"] and " 批准" in shown["text"]
    assert "审核意见\n已核对户籍信息，同意合并" in shown["text"]
    assert tab.js("location.hash") == "#status=APPROVED"
    tab.screenshot(SCREENSHOTS / "web-changes-approved-390.png")
    # the ledger agrees: the change is approved, the merged record's history names both clerks
    status, answer = call(site["base"], "GET", "/changes/M-100", "tok-approver")
    assert (status, answer["status"], answer["decided_by"], answer["proposed_by"]) == \
        (200, "APPROVED", "approver.hanbin", "clerk.hanbin")


def test_the_proposing_clerk_sees_the_change_but_no_approve_button(site, tab):
    propose_merge(site["base"], site["numbers"][2], site["numbers"][3], "M-200")
    for token in ("tok-clerk", "tok-maker-approver"):  # also with an approver token of their own (Clerk.Hanbin)
        open_page(site, tab, token)
        shown = card(tab, "M-200")
        assert shown is not None and not shown["approve"] and not shown["reject"], (token, shown)
        assert "这是你提出的变更，须由另一名有审核权限的人员审核。" in shown["text"]
    # an approver of another county sees nothing of 汉滨区
    open_page(site, tab, "tok-hanyin")
    assert tab.js(f"{CARDS}.length") == 0 and chips(tab)["ALL"] == "全部 0"


def test_a_rejection_needs_a_reason_and_a_refusal_of_the_api_is_shown_in_chinese(site, tab):
    propose_merge(site["base"], site["numbers"][4], site["numbers"][5], "M-300", reason="疑似重复")
    open_page(site, tab, "tok-approver")
    tab.tap("[data-change-id='M-300'] button.reject")
    tab.wait_for("document.querySelector('[data-change-id=\"M-300\"] .decision-error').innerText !== ''")
    assert card(tab, "M-300")["error"] == "驳回须填写理由。"
    # Meanwhile another approver approves it; this page still shows it pending and now rejects it.
    assert call(site["base"], "POST", "/changes/M-300/approve", "tok-approver-2", {})[0] == 201
    tab.js("document.querySelector('[data-change-id=\"M-300\"] input.decision-note').value = '证件信息不一致'")
    tab.tap("[data-change-id='M-300'] button.reject")
    tab.wait_for("document.getElementById('decision-status').innerText.includes('CHANGE_ALREADY_DECIDED')")
    notice = tab.js("document.getElementById('decision-status').innerText")
    assert notice == "该变更已批准，不能再审核（CHANGE_ALREADY_DECIDED） 该变更已由他人审核，列表已刷新。", notice
    tab.wait_for("document.body.dataset.state === 'ready'")
    assert card(tab, "M-300") is None and chips(tab)["APPROVED"] == "已批准 2"


def test_an_account_debit_shows_its_amount_in_yuan_and_its_reason_in_chinese(site, tab):
    path = f"/persons/RESIDENT_ID/{site['numbers'][2]}/account"
    debit = {"amount_fen": 200000, "reason": "MEDICAL_EXPENSE", "reference": "JS-1", "effective_date": "2025-03-01"}
    assert call(site["base"], "POST", f"{path}/credits", "tok-clerk", {**debit, "amount_fen": 300000,
                                                                       "reason": "CORRECTION"})[0] == 201
    status, answer = call(site["base"], "POST", f"{path}/debits", "tok-clerk", debit, "D-1")  # above 1,000 yuan: waits
    assert status == 202, answer
    open_page(site, tab, "tok-approver")
    text = card(tab, "D-1")["text"]
    assert "个人账户支出" in text and "金额\n2,000.00 元" in text, text
    assert "个人账户支出 2,000.00 元：医疗支出，参考号 JS-1" in text and "MEDICAL_EXPENSE" not in text
    number = site["numbers"][2]
    assert f"李* {number[:4]}{'*' * 10}{number[-4:]}" in text


def test_desktop_shows_the_same_list_in_two_columns(site, tab):
    tab.viewport(DESKTOP["width"], DESKTOP["height"], mobile=False)
    open_page(site, tab, "tok-approver", status="ALL")
    assert tab.js(f"{CARDS}.length") >= 2
    lefts = tab.js(f"[...{CARDS}].map(c => Math.round(c.getBoundingClientRect().left))")
    assert len(set(lefts)) == 2, lefts  # two columns
    no_sideways_scroll(tab)
    tab.screenshot(SCREENSHOTS / "web-changes-1280.png")
    # the approver rejects the clerk's other merge with a reason: it moves to 已驳回 with that reason
    tab.js("document.querySelector('[data-change-id=\"M-200\"] input.decision-note').value = '两人出生日期不同，不是同一人'")
    tab.tap("[data-change-id='M-200'] button.reject")
    tab.wait_for("document.getElementById('decision-status').innerText === '参保人合并（编号 M-200）已驳回。'")
    tab.wait_for("document.body.dataset.state === 'ready'")
    tab.tap("#status-chips .chip[data-status='REJECTED']")
    tab.wait_for(f"{CARDS}.length === 1")
    shown = card(tab, "M-200")
    assert shown["status"] == "REJECTED" and "approver.hanbin 于 " in shown["text"] and " 驳回" in shown["text"]
    assert "驳回理由\n两人出生日期不同，不是同一人" in shown["text"]
    assert call(site["base"], "GET", "/changes/M-200", "tok-clerk")[1]["status"] == "REJECTED"


def test_the_grid_page_header_takes_an_approver_to_the_changes(site, tab):
    tab.viewport(PHONE["width"], PHONE["height"], mobile=True)
    tab.goto(f"{site['base']}/web/?token=tok-approver")
    tab.wait_for("document.body.dataset.state === 'error'")  # an approver reads no grid lists
    assert "待审核变更" in tab.js("document.getElementById('message-text').innerText")
    assert tab.js("document.getElementById('changes-link').hidden") is False
    tab.tap("#changes-link")
    tab.wait_for("location.pathname === '/web/changes' && !!document.body && document.body.dataset.state === 'ready'")
    assert tab.js("document.getElementById('who-text').innerText") == "医保审核 approver.hanbin"  # the tab's token
