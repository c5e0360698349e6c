"""The four web pages in two languages, on one shared script (issue 21).

A page is Chinese by default and English on ``?lang=en`` or ``Accept-Language: en``: its HTML fixed texts come
from the catalogue's ``[web_*]`` sections, its script's texts are embedded as a JSON block it reads through one
``t()``, and the helpers every page needs (token, API call, DOM builder, yuan) are defined once, in common.js.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from importlib import resources

import pytest

from entrypoints import catalogue
from entrypoints.http import web
from entrypoints.http.web import _json_block, _labels_json, labels
from ledger.domain.approvals import CHANGE_KINDS, STATUS_LABELS
from ledger.domain.arrears import FEE_ONLY_LABEL, FEE_STATUS_LABELS, OUTSTANDING_LABEL
from tests.unit.http_support import client, system  # noqa: F401  (fixtures)

PAGES = {"/web/": ("page.html", "page.js", "web_grid"), "/web/dashboard": ("dashboard.html", "dashboard.js", "web_dashboard"),
         "/web/import": ("import.html", "import.js", "web_import"), "/web/changes": ("changes.html", "changes.js", "web_changes")}
#: Han ideographs and the full-width punctuation that goes with them (，：（）「」“” ...).
CHINESE = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")
EN = {"Accept-Language": "en-US,en;q=0.9"}


def _source(name: str) -> str:
    return resources.files(web).joinpath(name).read_text(encoding="utf-8")


def _fixed_html(html: str) -> str:
    """The page's own markup and texts: without its scripts, style and the link to the other language."""
    html = re.sub(r"<script\b[^>]*>.*?</script>", "", html, flags=re.S)
    html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    return re.sub(r'<a class="link lang-switch"[^>]*>[^<]*</a>', "", html)


def _block(html: str, block_id: str) -> dict:
    return json.loads(re.search(rf'<script type="application/json" id="{block_id}">(.*?)</script>', html, re.S).group(1))


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return [value] if isinstance(value, str) else []


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("ask", [{"params": {"lang": "en"}}, {"headers": EN}], ids=["query", "header"])
def test_a_page_asked_in_english_has_no_chinese_fixed_text(client, path, ask):
    r = client.get(path, **ask)
    assert r.status_code == 200 and r.headers["content-language"] == "en"
    html = r.text
    assert '<html lang="en">' in html and "{{" not in _fixed_html(html)
    fixed = _fixed_html(html)
    assert CHINESE.findall(fixed) == [], path
    assert 'id="lang-switch" href="?lang=zh" hreflang="zh" lang="zh-CN">中文</a>' in html  # the way back
    texts = _block(html, "ledger-texts")
    assert texts["lang"] == "en" and len(texts["texts"]) > 20
    assert [s for s in texts["texts"].values() if CHINESE.search(s)] == []
    if 'id="labels"' in html:  # the grid and changes pages' code labels, in English too
        assert [s for s in _strings(_block(html, "labels")) if CHINESE.search(s)] == []
    # the script that reads them is the one admitted, and it asks the API in English
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in r.headers["content-security-policy"]


@pytest.mark.parametrize("path", PAGES)
def test_a_page_is_chinese_by_default_and_when_asked_for_chinese(client, path):
    for r in (client.get(path), client.get(path, headers={"Accept-Language": "zh-CN,zh;q=0.9"}),
              client.get(path, params={"lang": "zh"}, headers=EN), client.get(path, params={"lang": "fr"})):
        html = r.text
        assert '<html lang="zh-CN">' in html and r.headers["content-language"] == "zh-CN"
        assert r.headers["vary"] == "Accept-Language"
        texts = _block(html, "ledger-texts")
        assert texts["lang"] == "zh" and texts["texts"]["login_title"] == "输入访问令牌"
        assert CHINESE.search(re.search(r"<h1>(.*?)</h1>", html).group(1))
        assert 'id="lang-switch" href="?lang=en" hreflang="en" lang="en">English</a>' in html


def test_the_english_page_says_the_same_things_as_the_chinese_one(client):
    zh, en = client.get("/web/dashboard").text, client.get("/web/dashboard?lang=en").text
    assert "<h1>参保工作看板</h1>" in zh and "<h1>Enrollment dashboard</h1>" in en
    assert "<th>税务征收（元）</th>" in zh and "<th>Tax collected (yuan)</th>" in en
    # the same markup, only the texts differ: every element id is in both
    assert re.findall(r'id="([^"]+)"', _fixed_html(zh)) == re.findall(r'id="([^"]+)"', _fixed_html(en))
    grid = _block(client.get("/web/?lang=en").text, "labels")
    assert grid["reasons"]["SUBSIDISED_NOT_COVERED"] == labels.reason("SUBSIDISED_NOT_COVERED", "en")  # the API's own words
    assert _block(client.get("/web/changes?lang=en").text, "labels")["statuses"]["PENDING"] == "pending"


@pytest.mark.parametrize("path", PAGES)
def test_every_text_a_page_uses_is_in_the_catalogue_in_both_languages(path):
    html_name, js_name, section = PAGES[path]
    keys = set(web.texts(section, "zh"))
    assert keys == set(web.texts(section, "en"))
    used_html = set(re.findall(r"\{\{t:(\w+)\}\}", _source(html_name) + _source("head.html")))
    used_js = set(re.findall(r'\bt\("(\w+)"', _source(js_name) + _source("common.js")))
    # t("basis_" + code) and the like are prefixes whose keys are listed (checked below for the codes)
    assert {k for k in used_html | used_js if not k.endswith("_")} - keys == set()
    assert used_html and used_js


@pytest.mark.parametrize("section", ["web_common", "web_grid", "web_dashboard", "web_import", "web_changes"])
def test_both_languages_have_the_same_keys_and_placeholders(section):
    table = catalogue.table(section)
    assert table and all(set(t) == {"zh", "en"} for t in table.values()), section
    different = {k: t for k, t in table.items() if catalogue.placeholders(t["zh"]) != catalogue.placeholders(t["en"])}
    assert different == {}
    assert [k for k, t in table.items() if CHINESE.search(t["en"]) and k != "lang_name"] == []


def test_the_chinese_code_labels_are_the_domain_s_own():
    # the Chinese page shows the domain's words; the catalogue's zh copies must not drift from them
    grid = catalogue.table("web_grid")
    assert {code: grid["fee_status_" + code]["zh"] for code in FEE_STATUS_LABELS} == dict(FEE_STATUS_LABELS)
    shown = json.loads(_labels_json("zh"))  # the page's code labels: the domain's words in Chinese
    assert shown["reasons"] == dict(labels.REASON_LABELS)
    assert shown["subsidy_categories"] == dict(labels.SUBSIDY_CATEGORIES)
    assert shown["arrears_kinds"] == dict(labels.ARREARS_KINDS)
    assert shown["arrears_status"] == {"outstanding": OUTSTANDING_LABEL, "fee_only": FEE_ONLY_LABEL}
    english = json.loads(_labels_json("en"))
    assert set(english["reasons"]) == set(shown["reasons"]) and not CHINESE.search(json.dumps(english))
    changes = catalogue.table("web_changes")
    assert {k: changes["kind_" + k]["zh"] for k in CHANGE_KINDS} == CHANGE_KINDS
    assert {k: changes["status_" + k]["zh"] for k in STATUS_LABELS} == STATUS_LABELS


def test_the_embedded_texts_cannot_end_their_script_block():
    block = _json_block({"x": "</script><script>alert(1)</script>"})
    assert "</" not in block and "<" not in block and json.loads(block) == {"x": "</script><script>alert(1)</script>"}


def test_the_shared_helpers_are_defined_once_in_common_js():
    common = _source("common.js")
    pages = {name: _source(name) for name in ("page.js", "dashboard.js", "import.js", "changes.js")}
    once = ["ledger.web.token", "class ApiError", "sessionStorage", "fetch(", "function el(", "function yuan(",
            "function takeTokenFromAddress", "function fileName", "function saveFile", "createObjectURL",
            "history.replaceState", "new URLSearchParams"]
    for needle in once:
        assert needle in common, needle
        assert [name for name, text in pages.items() if needle in text] == [], needle
    for name, text in pages.items():
        assert "= Web;" in text and not CHINESE.search(re.sub(r"//[^\n]*", "", text).replace("[区县市]", "")), name


def test_a_page_in_english_asks_the_api_in_english():
    common = _source("common.js")
    assert '"Accept-Language": LANG === "en" ? "en" : "zh-CN"' in common
    # every page calls the API through that one function (fetch() of its own is refused above)
    for name in ("page.js", "dashboard.js", "import.js", "changes.js"):
        assert re.search(r"const \{[^}]*\bapi\b[^}]*\} = Web;|Web\.api\(", _source(name)), name
