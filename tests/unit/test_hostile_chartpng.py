"""Hostile inputs to the PNG chart: odd languages asked of dashboard.png, and place names a county's places file
(LEDGER_PLACES_FILE) may carry, clumsy or malicious. The chart answers a PNG of its usual height or a 4xx, never a
5xx or a crash, and draws no name it cannot draw (the place's code instead)."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from entrypoints.chart import HEIGHT, MAX_WIDTH, bar_label, coverage_png
from tests.unit.http_support import (
    CLERK,
    CLERK_HANYIN,
    HANBIN,
    client,  # noqa: F401  (fixture)
    system,  # noqa: F401  (fixture)
)
from tests.unit.test_web_page import grids  # noqa: F401  (fixture)

PERIOD = {"year": 2025, "as_of": "2025-03-01"}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("lang", ["fr", "EN", "en-US", "../../etc/passwd", "<script>", "en\x00", "e" * 5000, ""])
def test_an_unknown_language_in_the_address_is_refused_not_guessed(client, grids, hostile, lang):
    r = client.get(f"/regions/{HANBIN}/dashboard.png", params={**PERIOD, "lang": lang}, headers=CLERK)
    hostile.attempt(f"dashboard.png lang={lang[:12]!r}", status=r.status_code, crashed=r.status_code >= 500)
    assert r.status_code == 422, r.status_code
    assert r.json()["code"] and not r.content.startswith(PNG)


@pytest.mark.parametrize("header", ["*", "en;q=0", "x" * 20000, "en-" + "A" * 5000, ";;;,,,", "zh-CN,en;q=0.9",
                                    "\u00e9n", "en\t"])
def test_any_accept_language_gets_a_png(client, grids, hostile, header):
    try:
        r = client.get(f"/regions/{HANBIN}/dashboard.png", params=PERIOD,
                       headers={**CLERK, "Accept-Language": header})
    except UnicodeEncodeError:  # a header the HTTP client itself cannot send never reaches the server
        hostile.attempt(f"dashboard.png Accept-Language {header[:12]!r}", status=None)
        return
    hostile.attempt(f"dashboard.png Accept-Language {header[:12]!r}", status=r.status_code,
                    crashed=r.status_code >= 500)
    assert r.status_code == 200, r.status_code
    assert r.content.startswith(PNG) and r.headers["content-type"] == "image/png"


def test_an_english_png_of_another_county_is_still_refused(client, grids, hostile):
    r = client.get(f"/regions/{HANBIN}/dashboard.png", params={**PERIOD, "lang": "en"}, headers=CLERK_HANYIN)
    leaked = r.content.startswith(PNG) or "residents" in r.text
    hostile.attempt("dashboard.png in English of another county", status=r.status_code, leaked=leaked)
    assert r.status_code == 403 and not leaked


NAMES = {
    "ten thousand characters": "镇" * 10000,
    "terminal escapes and NUL": "\x00\x1b[31m关庙镇\x1b[0m",
    "right-to-left override": "\u202e镇庙关",
    "emoji": "关庙镇🎉",
    "combining marks": "关\u0301\u0301\u0301庙镇",
    "only spaces": "   ",
    "private use": "\ue000\ue001",
    "lone surrogate": "关\udc00镇",
    "markup": "<b>关庙镇</b>&amp;",
    "line break": "关庙\n镇",
    "tab and zero-width space": "关\t庙\u200b镇",
}


@pytest.mark.parametrize("what", list(NAMES))
def test_a_places_file_name_that_cannot_be_drawn_becomes_the_code(hostile, what):
    name = NAMES[what]
    rows = [{"township": "610902105", "name": name, "residents": 100, "covered": 90, "subsidised": 5,
             "subsidised_covered": 5}]
    try:
        body = coverage_png(rows, year=2025, target_bp=9500)
        label, is_name = bar_label("610902105", name)
        crashed = False
    except Exception:  # noqa: BLE001  (any exception is the finding)
        crashed = True
    hostile.attempt(f"chart place name: {what}", crashed=crashed)
    assert not crashed
    with Image.open(io.BytesIO(body)) as image:
        assert image.size[1] == HEIGHT
    drawable_name = what in ("ten thousand characters", "markup")
    assert is_name is drawable_name, label
    assert label == ("105" if not drawable_name else label) and len(label) <= 24


def test_five_thousand_places_make_a_bounded_png(hostile):
    rows = [{"township": f"610902{i:06d}", "name": "关庙镇", "residents": 10, "covered": i % 11, "subsidised": 1,
             "subsidised_covered": i % 2} for i in range(5000)]
    rows.append({"township": "610902999", "name": "x", "residents": 0, "covered": 3, "subsidised": 0,
                 "subsidised_covered": 0})  # nobody living there: no bar
    rows.append({"township": "610902998", "name": "y", "residents": 1, "covered": 5, "subsidised": 1,
                 "subsidised_covered": 2})  # more covered than living there (a broken view): clamped to the axis
    body = coverage_png(rows, year=2025, target_bp=9500)
    hostile.attempt("chart of 5,002 places", crashed=False)
    with Image.open(io.BytesIO(body)) as image:
        assert image.size == (MAX_WIDTH, HEIGHT)
    assert len(body) < 5 * 1024 * 1024
