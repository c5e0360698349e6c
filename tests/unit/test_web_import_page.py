"""The clerk's import page (/web/import, issue 21): one self-contained Chinese page, its own script and the
grid page's style admitted by hash, no data in it; the grid page links to it for clerks."""
from __future__ import annotations

import base64
import hashlib
import re

from tests.unit.http_support import client, system  # noqa: F401  (fixtures)


def test_the_import_page_is_chinese_self_contained_and_admits_only_its_own_script(client):
    r = client.get("/web/import")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    for words in ("批量参保登记 · 导入表格", "下载导入模板（Excel）", "下载错误行工作簿（含错误说明）", "未导入的行", "输入访问令牌"):
        assert words in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html) and "/*{{" not in html
    csp = r.headers["content-security-policy"]
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    for source, directive in ((script, "script-src"), (style, "style-src")):
        digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in csp
    assert "form-action 'none'" in csp and r.headers["cache-control"] == "no-store"
    # the page posts the sheet itself (fetch with the token), never as a form submission elsewhere
    assert "/imports?errors=xlsx" in script and "Authorization" in script


def test_the_grid_page_links_clerks_to_it(client):
    html = client.get("/web/").text
    assert 'id="import-link" href="/web/import" hidden' in html
    assert '$("import-link").hidden = state.me.role !== "clerk"' in html
