"""Hostile and clumsy language requests to the four web pages (issue 21): whatever ``?lang=`` or Accept-Language
says, a page is served (Chinese unless English is asked for), nothing asked is echoed into it, and the page is
the same fixed document for everyone (no data, no token in it)."""
from __future__ import annotations

import re

import pytest

from tests.unit.http_support import client, system  # noqa: F401  (fixtures)

PAGES = ["/web/", "/web/dashboard", "/web/import", "/web/changes"]
PROBE = "zz<script>alert(7)</script>"
ATTEMPTS = [
    ("script in ?lang", {"params": {"lang": PROBE}}, "zh-CN"),
    ("?lang twice: zh then en (the last one counts)", {"params": [("lang", "zh"), ("lang", "en")]}, "en"),
    ("?lang=EN-gb upper case", {"params": {"lang": "EN-gb"}}, "en"),
    ("100 kB Accept-Language", {"headers": {"Accept-Language": "en-" + "x" * 100_000}}, "zh-CN"),
    ("Accept-Language with a script", {"headers": {"Accept-Language": PROBE}}, "zh-CN"),
    ("Accept-Language q-values favouring zh", {"headers": {"Accept-Language": "zh-CN;q=1, en;q=0.9"}}, "zh-CN"),
    ("token and script in the address", {"params": {"token": PROBE, "lang": "en"}}, "en"),
]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("name,ask,lang", ATTEMPTS, ids=[a[0] for a in ATTEMPTS])
def test_a_page_asked_in_a_strange_language_is_served_plainly(client, hostile, path, name, ask, lang):
    r = client.get(path, **ask)
    leaked = "alert(7)" in r.text or "xxxxxxxxxx" in r.text
    hostile.attempt(f"web page {path} {name}", status=r.status_code, leaked=leaked)
    assert r.status_code == 200 and r.headers["content-language"] == lang
    assert f'<html lang="{lang}">' in r.text
    assert len(re.findall(r"<script>", r.text)) == 1  # the one admitted script, nothing injected
