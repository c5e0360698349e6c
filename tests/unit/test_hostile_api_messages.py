"""Hostile and clumsy requests against the API's message language (#21).

* Accept-Language headers an integrator or an attacker may send (huge, malformed, odd bytes): the
  answer is the usual 422 with its code, in Chinese unless the first tag is English, never a 500,
  and the header is not echoed back;
* a sweep of bad bodies over every JSON command route and bad query parameters over the reads:
  no 4xx answer carries pydantic's raw English ("Input should be", "Field required").
"""
from __future__ import annotations

import re

import pytest

from tests.unit.http_support import CLERK, HANBIN, TAX, client, enrollment, number, system  # noqa: F401

RAW = ("Input should be", "Field required", "Value error", "Extra inputs are not permitted", "valid dictionary")
_HAN = re.compile(r"[\u4e00-\u9fff]")

ODD_HEADERS = [
    ("huge Accept-Language (100 kB)", "zh-CN," * 17_000, False),
    ("huge Accept-Language starting with en", "en," + "x" * 100_000, True),
    ("malformed Accept-Language", ";;;,,,q=", False),
    ("Accept-Language with a bad q", "en;q=abc", True),
    ("Accept-Language of latin-1 bytes", "\u00e9\u00e8;q=1", False),
    ("Accept-Language wildcard", "*", False),
    ("Accept-Language with markup", "<script>alert(1)</script>", False),
]


@pytest.mark.parametrize("name,header,english", ODD_HEADERS, ids=[h[0] for h in ODD_HEADERS])
def test_odd_accept_language_headers_get_the_usual_422(client, system, hostile, name, header, english):
    body = enrollment(number(1))
    del body["name"]
    r = client.post("/enrollments", json=body, headers={**CLERK, "Accept-Language": header.encode("latin-1")})
    crashed = r.status_code >= 500
    leaked = header[:20] in r.text
    hostile.attempt(name, status=r.status_code, crashed=crashed, written=r.status_code < 300, leaked=leaked)
    assert r.status_code == 422 and r.json()["code"] == "BODY_INVALID"
    assert r.json()["message"] == ("name: is required" if english else "缺少必填项：姓名（name）")
    assert not leaked


def _command_routes(client):
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        op = ops.get("post")
        if op and "application/json" in op.get("requestBody", {}).get("content", {}):
            yield path.replace("{id_type}", "RESIDENT_ID").replace("{id_number}", number(1)), op


BAD_BODIES = {
    "empty object": {}, "a list": [1, 2], "a string": "hello", "null": None,
    "every field a wrong type": None,  # filled per route from its schema
}


def test_no_4xx_answer_carries_pydantic_raw_english(client, hostile):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    seen = 0
    for path, op in _command_routes(client):
        ref = op["requestBody"]["content"]["application/json"]["schema"].get("$ref", "")
        fields = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
        for label, body in BAD_BODIES.items():
            if label == "every field a wrong type":
                body = {f: {"a": 1} for f in fields} | {"stray_field": 1}
            for headers in (CLERK, TAX):
                r = client.post(path, json=body, headers=headers)
                if r.status_code in (401, 403):
                    continue
                seen += 1
                raw = [s for s in RAW if s in r.text]
                hostile.attempt(f"bad body ({label}) to {path}", status=r.status_code,
                                crashed=r.status_code >= 500, written=r.status_code < 300, leaked=False)
                assert 400 <= r.status_code < 500 and not raw, (path, label, r.text[:300])
                assert _HAN.search(r.json()["message"]), (path, label, r.json()["message"])
    assert seen >= 20  # the sweep really reached the routes


@pytest.mark.parametrize("path,params", [
    ("/grids/610902100001/gaps", {"page": "abc", "per_page": "0", "year": "x"}),
    ("/grids/610902100001/coverage", {"year": "1800", "as_of": "tomorrow"}),
    ("/transfers", {"region": HANBIN, "as_of": "2025-13-01", "overdue": "perhaps"}),
    ("/arrears", {"limit": "-1"}),
    ("/arrears.csv", {"by": "town"}),
    ("/persons/RESIDENT_ID/x/entitlement", {"on": "2025-02-30", "year": "two"}),
])
def test_bad_query_parameters_are_answered_in_chinese(client, hostile, path, params):
    r = client.get(path, params=params, headers=CLERK)
    raw = [s for s in RAW if s in r.text]
    hostile.attempt(f"bad query to {path}", status=r.status_code, crashed=r.status_code >= 500, leaked=False)
    assert r.status_code == 422 and not raw, r.text[:300]
    assert r.json()["code"] in ("PARAMETER_INVALID", "DATE_INVALID") and _HAN.search(r.json()["message"])
    assert all(_HAN.search(e["message"]) and e["message_en"] for e in r.json()["details"]["errors"])
