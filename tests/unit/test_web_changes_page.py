"""The maker-checker page (/web/changes, issue 22): one self-contained Chinese page, its own script and the grid
page's style admitted by hash, no data in it; the list it reads (GET /changes) is scoped to the viewer's regions
and names each change's persons masked; the grid page links clerks and approvers to it."""
from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
from fastapi.testclient import TestClient

from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from tests.unit.http_support import (APPROVER, AUDITOR, CLERK, CLERK_HANYIN, GRID_WORKER_A, HANBIN, TOKENS,  # noqa: F401
                                     auth, enroll, number, person_path, system)

TOKENS_WITH_MAKER = {**TOKENS, "tok-maker-approver": ("clerk.hanbin", "approver", [HANBIN])}


@pytest.fixture()
def client(system):  # noqa: F811
    return TestClient(create_app(system, TokenStore.from_tokens(TOKENS_WITH_MAKER)))


@pytest.fixture()
def merge(client):
    """Two records of one person in 汉滨区 (王芳 and 王方), a merge proposed by clerk.hanbin (change W-1)."""
    a, b = number(41), number(42)
    enroll(client, a)
    enroll(client, b, name="王方")
    r = client.post(person_path(a, "/merges"), json={"merged_id_number": b, "merge_kind": "DUPLICATE",
                                                      "reason": "同一人两次登记"}, headers=auth("tok-clerk", "W-1"))
    assert r.status_code == 202, r.json()
    return a, b


def _inline(html: str, tag: str) -> str:
    return re.search(rf"<{tag}>(.*?)</{tag}>", html, re.S).group(1)


def test_the_page_is_chinese_self_contained_and_admits_only_its_own_script(client):
    r = client.get("/web/changes")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    for words in ("双人复核 · 待审核变更", "输入访问令牌", "返回网格员工作台", "未批准前不影响任何统计数字"):
        assert words in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html) and "/*{{" not in html and "{{labels}}" not in html
    csp = r.headers["content-security-policy"]
    for source, directive in ((_inline(html, "script"), "script-src"), (_inline(html, "style"), "style-src")):
        digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "form-action 'none'" in csp
    assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
    script = _inline(html, "script")
    # the page calls the existing API with the token, in the page's language (Chinese unless it is English)
    assert "/changes?status=ALL" in script and "`/changes/${encodeURIComponent(row.change_id)}/${verb}`" in script
    assert 'decide(row, "approve"' in script and 'decide(row, "reject"' in script
    assert '"Accept-Language": LANG === "en" ? "en" : "zh-CN"' in script and "Authorization" in script


def test_the_page_carries_the_domain_s_words_for_kinds_and_statuses(client):
    html = client.get("/web/changes").text
    labels = json.loads(re.search(r'<script type="application/json" id="labels">(.*?)</script>', html, re.S).group(1))
    assert labels["statuses"] == {"PENDING": "待审核", "APPROVED": "已批准", "REJECTED": "已驳回", "EXPIRED": "已过期"}
    assert {"参保人合并", "终止参保", "滞纳金减免", "个人账户支出"} <= set(labels["kinds"].values())
    assert labels["values"]["DUPLICATE_RESOLVED"] == "重复参保清理" and labels["values"]["DIED"] == "死亡"


def test_the_page_holds_no_data_whoever_asks(client, merge):
    a, b = merge
    for headers in ({}, CLERK, APPROVER):
        html = client.get("/web/changes", headers=headers).text
        assert "W-1" not in html and a not in html and b not in html and a[-4:] not in html


def test_the_list_names_the_persons_masked_and_is_scoped_to_the_viewer_s_regions(client, merge):
    a, b = merge
    r = client.get("/changes", headers=APPROVER)
    assert r.status_code == 200
    (row,) = r.json()["changes"]
    assert (row["change_id"], row["kind_label"], row["status_label"]) == ("W-1", "参保人合并", "待审核")
    assert row["persons"] == [{"id_number_masked": f"{a[:4]}{'*' * 10}{a[-4:]}", "name_masked": "王*"},
                              {"id_number_masked": f"{b[:4]}{'*' * 10}{b[-4:]}", "name_masked": "王*"}]
    assert row["person_count"] == 2
    assert a not in r.text and b not in r.text and "王芳" not in r.text and "王方" not in r.text
    assert client.get("/changes", headers=CLERK_HANYIN).json()["changes"] == []  # another county's clerk
    assert [c["change_id"] for c in client.get("/changes", headers=AUDITOR).json()["changes"]] == ["W-1"]
    r = client.get("/changes", headers=GRID_WORKER_A)
    assert (r.status_code, r.json()["code"]) == (403, "ROLE_FORBIDDEN")


def test_an_enrollment_end_names_its_one_person(client):
    a = number(43)
    enroll(client, a)
    r = client.post(person_path(a, "/enrollments/end"), json={"reason": "DIED", "effective_date": "2026-03-01"},
                    headers=auth("tok-clerk", "E-1"))
    assert r.status_code == 202, r.json()
    (row,) = client.get("/changes", headers=APPROVER).json()["changes"]
    assert row["kind_label"] == "终止参保" and row["person_count"] == 1
    assert row["persons"] == [{"id_number_masked": f"{a[:4]}{'*' * 10}{a[-4:]}", "name_masked": "王*"}]


def test_the_maker_s_refusal_the_page_shows_is_chinese(client, merge):
    """What the page puts on screen when the proposing clerk approves with an approver token: the API's Chinese
    message and code, whatever language the browser prefers (the page asks for zh-CN)."""
    r = client.post("/changes/W-1/approve", json={}, headers={**auth("tok-maker-approver"),
                                                                 "Accept-Language": "zh-CN"})
    assert (r.status_code, r.json()["code"]) == (422, "APPROVAL_BY_MAKER")
    assert r.json()["message"].startswith("提出人不能审核自己提出的变更")


def test_the_grid_page_links_clerks_and_approvers_to_it(client):
    html = client.get("/web/").text
    assert 'id="changes-link" href="/web/changes" hidden' in html
    assert '$("changes-link").hidden = !["clerk", "approver"].includes(state.me.role)' in html
    assert "审核人员请点上方「待审核变更」" in html
