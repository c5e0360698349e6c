"""/docs and /redoc work on a network without internet: every asset they load comes from this server."""
from __future__ import annotations

import re

import pytest

from tests.unit.http_support import client, system  # noqa: F401  (fixtures)

_ASSET = re.compile(r"""(?:src|href|url)\s*[=:]\s*["']([^"']+)["']""")


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_docs_load_nothing_from_outside(client, path):
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not re.search(r"https?://", html), re.findall(r"https?://\S+", html)
    assets = [a for a in _ASSET.findall(html) if a != "/openapi.json"]
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        answer = client.get(asset)
        assert answer.status_code == 200, asset
        assert len(answer.content) > 1000, asset  # the real bundle, not an empty placeholder
    assert client.get("/openapi.json").status_code == 200
