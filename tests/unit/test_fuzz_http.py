"""Fuzzer (hypothesis) over the HTTP API's bodies: random JSON to every POST route via TestClient.

Each POST route of the served OpenAPI document gets (1) random JSON of any shape and
(2) bodies with the route's own fields filled from a mix of plausible and hostile values.
The answer is never a 5xx; every refusal is JSON ``{"code", "message", "details"}`` with a
stable UPPER_SNAKE code. The upload route gets random bytes under every content type.

Runs on the in-memory ledger; deterministic (``derandomize=True``, no example database).
"""
from __future__ import annotations

import functools
import re
from datetime import date
from urllib.parse import quote
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrypoints.wiring import bootstrap
from infra.settings import Settings
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from tests.unit.http_support import AUDITOR, CLERK, GRID_A, HANBIN, TAX, TOKENS, enrollment, number, policies, tax_payment

CODE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
PERSON = number(7)


@functools.cache
def client() -> TestClient:
    """One app for the module, with a person enrolled and paid so person routes reach the domain."""
    system = bootstrap(Settings(persistence="memory", id_key=b"fuzz-http"), policies=policies())
    c = TestClient(create_app(system, TokenStore.from_tokens(TOKENS)), raise_server_exceptions=False)
    assert c.post("/enrollments", json=enrollment(PERSON), headers=CLERK).status_code == 201
    assert c.post("/tax/payments", json=tax_payment(PERSON), headers=TAX).status_code == 201
    return c


@functools.cache
def openapi() -> dict[str, Any]:
    return client().get("/openapi.json").json()


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = openapi()["components"]["schemas"][name]
    return schema


def json_routes() -> list[tuple[str, dict[str, Any]]]:
    """(path, body schema) of every POST route taking JSON."""
    out = []
    for path, item in sorted(openapi()["paths"].items()):
        post = item.get("post")
        if post is None:
            continue
        content = post.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            out.append((path, resolve(content["application/json"]["schema"])))
    return out


def test_every_post_route_is_fuzzed():
    paths = {p for p, item in openapi()["paths"].items() if "post" in item}
    assert paths == {p for p, _ in json_routes()} | {"/imports"}
    assert len(paths) >= 10


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=10,
)
plausible = st.sampled_from([
    "RESIDENT_ID", "PASSPORT", "RESIDENT", "EMPLOYEE", "PAYMENT", "REFUND", "REVERSAL", "COUNTER", "DIED",
    "MOVED_OUT", "CONTRIBUTION", "FAMILY_MUTUAL_AID", HANBIN, "610921", "999999", "610902100001", PERSON,
    number(8), "11010519491231002X", "V0001", "16109020000", "2025-01-01", "2024-09-10", "2025-02-30",
    "2025-03", "2025-13", "2024-10-08T09:30:00+08:00", "2024-10-08T09:30:00", "", " ", "王芳", "X" * 300,
    0, 1, -1, 40000, 2025, 1999, 10**12, 2**63, True, None, 1.5,
])


@st.composite
def bodies_for(draw: Any, schema: dict[str, Any]) -> Any:
    props = schema.get("properties", {})
    if not props or draw(st.integers(0, 4)) == 0:
        return draw(json_values)
    body = {}
    for name in props:
        if draw(st.integers(0, 6)) == 0:
            continue  # leave it out
        body[name] = draw(st.one_of(plausible, plausible, json_values))
    if draw(st.integers(0, 8)) == 0:
        body[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    return body


def check(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        body = response.json()
        assert CODE.match(body.get("code", "")), body
        assert isinstance(body.get("message"), str) and body["message"]


def fill(path: str, id_type: str, id_number: str) -> str:
    return path.replace("{id_type}", quote(id_type, safe="")).replace("{id_number}", quote(id_number, safe=""))


path_ids = st.one_of(st.just(("RESIDENT_ID", PERSON)), st.tuples(plausible.map(str), plausible.map(str)),
                     st.tuples(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=20)))


@FUZZ
@given(data=st.data())
def test_random_bodies_to_every_post_route_get_a_coded_4xx_or_success(data):
    c = client()
    for path, schema in json_routes():
        id_type, id_number = data.draw(path_ids)
        url = fill(path, id_type, id_number)
        headers = dict(TAX if path.startswith("/tax") else data.draw(st.sampled_from([CLERK, CLERK, AUDITOR, {}])))
        if data.draw(st.booleans()):
            r = c.post(url, json=data.draw(bodies_for(schema)), headers=headers)
        else:
            raw = data.draw(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
            r = c.post(url, content=raw, headers={**headers, "Content-Type": "application/json"})
        check(r)


@FUZZ
@given(data=st.data())
def test_valid_bodies_with_one_field_replaced(data):
    """Closer to the happy path: a valid body of each main route with one field swapped for junk."""
    c = client()
    n = data.draw(st.integers(1, 999))
    valid = {
        "/enrollments": (CLERK, enrollment(number(n))),
        "/tax/payments": (TAX, tax_payment(number(n), voucher=f"VF{n}")),
    }
    for path, (headers, body) in valid.items():
        key = data.draw(st.sampled_from(sorted(body)))
        body = {**body, key: data.draw(st.one_of(plausible, json_values))}
        check(c.post(path, json=body, headers=headers))


@settings(FUZZ, max_examples=30)
@given(data=st.binary(max_size=1500), content_type=st.sampled_from([
    "text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/octet-stream",
    "multipart/form-data", "multipart/form-data; boundary=xyz", "multipart/form-data; boundary=", "",
    "application/json"]), filename=st.sampled_from(["x.csv", "x.xlsx", "x.xls", ""]))
def test_random_uploads_get_a_coded_answer(data, content_type, filename):
    r = client().post(f"/imports?filename={filename}", content=data, headers={**CLERK, "Content-Type": content_type})
    check(r)


@settings(FUZZ, max_examples=30)
@given(boundary=st.text(alphabet="abcXYZ019-", min_size=1, max_size=10), name=st.sampled_from(["file", "other"]),
       payload=st.binary(max_size=300), extra=st.binary(max_size=50))
def test_random_multipart_uploads_get_a_coded_answer(boundary, name, payload, extra):
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"a.csv\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode() + extra
    r = client().post("/imports", content=body,
                      headers={**CLERK, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    check(r)


def test_reads_with_hostile_ids_are_coded():
    c = client()
    for id_type, id_number in [("RESIDENT_ID", "x" * 5000), ("%00", "%2e%2e"), ("RESIDENT_ID", "11010519491231002x"),
                               ("PASSPORT", "E12345678"), ("RESIDENT_ID", PERSON)]:
        for suffix in ("", "/entitlement", "/history"):
            check(c.get(f"/persons/{id_type}/{id_number}{suffix}", headers=AUDITOR))
    for code in ("610902100001", "6109", "x", "9" * 40):
        for route in (f"/grids/{code}/gaps", f"/grids/{code}/coverage", f"/grids/{code}/gaps.csv"):
            check(c.get(route, headers=dict(zip(["Authorization"], ["Bearer tok-grid-a"]))))
    check(c.get("/arrears?year=abc", headers=AUDITOR))
    check(c.get("/entitlements/not-a-uuid", headers=CLERK))
    assert GRID_A and date(2025, 1, 1)
