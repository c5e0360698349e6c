"""Hostile language requests on the web reads and the files: odd ``?lang=`` and Accept-Language values give
Chinese or a 4xx, never a 5xx; asking in English never widens a scope or unmasks an ID number."""
from __future__ import annotations

import csv
import io

import pytest

from entrypoints.http.web import exports
from tests.unit.http_support import (
    CLERK,
    GRID_A,
    GRID_B,
    GRID_WORKER_A,
    GRID_WORKER_B,
    client,  # noqa: F401  (fixture)
    system,  # noqa: F401  (fixture)
)
from tests.unit.test_web_page import PERIOD, grids, masked  # noqa: F401  (fixture)


def header_row(body: bytes) -> list[str]:
    return next(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize("lang", ["<script>", "en'--", "EN", "en-GB", "fr", "%00", "zh-Hant", " "])
def test_an_odd_lang_gives_chinese_or_english_never_a_crash(client, grids, hostile, lang):
    r = client.get(f"/grids/{GRID_A}/gaps.csv", params={**PERIOD, "lang": lang}, headers=GRID_WORKER_A)
    hostile.attempt(f"export ?lang={lang!r}", status=r.status_code, crashed=r.status_code >= 500)
    assert r.status_code == 200
    english = lang.strip().lower().startswith("en")
    assert header_row(r.content)[0] == ("No." if english else "序号")
    assert "<script>" not in r.headers["content-disposition"]


def test_an_overlong_lang_is_refused_with_a_code(client, grids, hostile):
    r = client.get(f"/grids/{GRID_A}/gaps.xlsx", params={**PERIOD, "lang": "en" * 100}, headers=GRID_WORKER_A)
    hostile.attempt("export ?lang= 200 characters", status=r.status_code, crashed=r.status_code >= 500,
                    written=False, leaked="application/vnd" in r.headers.get("content-type", ""))
    assert r.status_code == 422 and r.json()["code"]


@pytest.mark.parametrize("value", ["en" + ",x" * 50_000, "\x00en", "en;q=abc, zh", "*", "e" * 9])
def test_odd_accept_language_headers_are_harmless(client, grids, hostile, value):
    try:
        r = client.get(f"/grids/{GRID_A}/gaps", params=PERIOD, headers={**GRID_WORKER_A, "Accept-Language": value})
    except Exception:  # noqa: BLE001 -- the HTTP client itself may refuse to send a malformed header
        hostile.attempt(f"Accept-Language {value[:12]!r}", status=None, crashed=False)
        return
    hostile.attempt(f"Accept-Language {value[:12]!r}", status=r.status_code, crashed=r.status_code >= 500)
    assert r.status_code < 500
    if r.status_code == 200:
        assert r.json()["year_basis_label"] in ("按查询的年度", "the year asked for")


def test_english_does_not_open_another_grid(client, grids, hostile):
    for path in (f"/grids/{GRID_B}/gaps.csv", f"/grids/{GRID_B}/gaps"):
        r = client.get(path, params={**PERIOD, "lang": "en"}, headers={**GRID_WORKER_A, "Accept-Language": "en"})
        leaked = r.status_code == 200 or masked(grids["other"])[-4:] in r.text
        hostile.attempt(f"English read of another grid {path[-4:]}", status=r.status_code,
                        crashed=r.status_code >= 500, leaked=leaked)
        assert r.status_code == 403 and not leaked
        assert r.json()["code"] == "SCOPE_FORBIDDEN" and r.json()["message"].isascii()  # refused in English


def test_an_english_file_masks_id_numbers_like_a_chinese_one(client, grids, hostile):
    r = client.get(f"/grids/{GRID_A}/gaps.csv", params={**PERIOD, "lang": "en"}, headers=CLERK)
    leaked = grids["unpaid"] in r.text or grids["subsidised"] in r.content.decode("utf-8-sig")
    hostile.attempt("English file by the region's clerk", status=r.status_code, crashed=False, leaked=leaked)
    assert not leaked and masked(grids["unpaid"]) in r.content.decode("utf-8-sig")
    assert client.get(f"/grids/{GRID_B}/gaps.csv", params=PERIOD, headers=GRID_WORKER_B).status_code == 200


def test_a_crafted_detail_is_quoted_in_both_languages():
    gaps = [{"person_id": "p", "grid_code": GRID_A, "reason": "BOGUS", "subsidised": False, "year": 2025,
             "outstanding_fen": None, "day": "2025-03-01", "detail": "=HYPERLINK(\"http://x\")"}]
    for lang in ("zh", "en"):
        row = exports.table_rows(gaps, {}, lang=lang)[0]
        assert row[12].startswith("'=") and row[6] == "BOGUS"  # an unknown code shown as it is, never run
