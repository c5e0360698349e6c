"""Clerk-entered statuses, attacked: another region's clerk, the wrong roles, unknown categories, dates
outside the window, replays with another body, oversized and unknown fields. Each ends in a refusal
with a code and nothing written, or in a resend that changes nothing."""
from __future__ import annotations

import pytest

from tests.unit.http_support import (  # noqa: F401 - fixtures
    AUDITOR,
    CLERK,
    CLERK_HANYIN,
    GRID_WORKER_A,
    HANBIN,
    TAX,
    auth,
    client,
    enrollment,
    number,
    system,
)


def grant(id_number: str, **over):
    body = {"id_type": "RESIDENT_ID", "id_number": id_number, "name": "王芳", "region_code": HANBIN,
            "category": "EXTREME_POVERTY", "valid_from": "2026-01-01", "valid_to": "2026-12-31",
            "department": "汉滨区民政局", "document_no": "TK-1"}
    body.update(over)
    return body


def subsidy_events(system, id_number: str) -> int:
    try:
        person = system.ledger.find_person("RESIDENT_ID", id_number)
    except Exception:
        return 0
    return sum(1 for e in system.ledger.events.get(person.id) if "Subsidy" in type(e).__name__)


@pytest.fixture()
def enrolled(client):
    who = number(40)
    assert client.post("/enrollments", json=enrollment(who), headers=CLERK).status_code == 201
    return who


@pytest.mark.parametrize("name,headers,over,status,code", [
    ("status grant by another region's clerk", CLERK_HANYIN, {"region_code": "610921"}, 403, "SCOPE_FORBIDDEN"),
    ("status grant naming another region", CLERK, {"region_code": "610921"}, 422, "STATUS_REGION_MISMATCH"),
    ("status grant by a grid worker", GRID_WORKER_A, {}, 403, "ROLE_FORBIDDEN"),
    ("status grant by the tax integration", TAX, {}, 403, "ROLE_FORBIDDEN"),
    ("status grant by an auditor", AUDITOR, {}, 403, "ROLE_FORBIDDEN"),
    ("status grant without a token", {}, {}, 401, None),
    ("status grant of an unknown category", CLERK, {"category": "BILLIONAIRE"}, 422, "SUBSIDY_CATEGORY_UNKNOWN"),
    ("status grant of an injected category", CLERK, {"category": "ORPHAN'; DROP TABLE events;--"}, 422,
     "SUBSIDY_CATEGORY_UNKNOWN"),
    ("status valid from 1850", CLERK, {"valid_from": "1850-01-01"}, 422, "DATE_OUT_OF_RANGE"),
    ("status valid from 2999", CLERK, {"valid_from": "2999-01-01"}, 422, "DATE_OUT_OF_RANGE"),
    ("status valid to before valid from", CLERK, {"valid_to": "2025-01-01"}, 422, "DATE_INVALID"),
    ("status valid to in 1066", CLERK, {"valid_to": "1066-10-14"}, 422, None),
    ("status valid from as a timestamp", CLERK, {"valid_from": "2026-01-01T00:00:00+08:00"}, 422, "DATE_INVALID"),
    ("status with a 10 kB document number", CLERK, {"document_no": "X" * 10_000}, 422, None),
    ("status with an empty department", CLERK, {"department": ""}, 422, None),
    ("status with an unknown field", CLERK, {"approved_by": "myself"}, 422, "BODY_INVALID"),
    ("status for a bad ID number", CLERK, {"id_number": "610902198005170000"}, 422, None),
])
def test_refused_grants_write_nothing(hostile, client, system, enrolled, name, headers, over, status, code):
    body = {**grant(enrolled), **over}
    r = client.post("/statuses", json=body, headers=headers)
    if code is not None and r.status_code < 500:
        assert r.json().get("code") == code, r.text
    written = subsidy_events(system, enrolled) > 0
    hostile.attempt(name, status=r.status_code, written=written,
                    leaked=headers is CLERK_HANYIN and enrolled in r.text)
    assert r.status_code == status, r.text


def test_replays(hostile, client, system, enrolled):
    first = client.post("/statuses", json=grant(enrolled), headers=auth("tok-clerk", "req-1"))
    assert first.status_code == 201
    same = client.post("/statuses", json=grant(enrolled), headers=auth("tok-clerk", "req-1"))
    hostile.attempt("status grant replayed with its request id", status=same.status_code,
                    written=subsidy_events(system, enrolled) != 1)
    assert same.status_code == 200 and same.json()["applied"] is False
    reused = client.post("/statuses", json=grant(enrolled, document_no="TK-2"), headers=auth("tok-clerk", "req-1"))
    hostile.attempt("status request id reused for another certificate", status=reused.status_code,
                    written=subsidy_events(system, enrolled) != 1)
    assert reused.status_code == 409 and reused.json()["code"] == "REQUEST_ID_REUSED"
    no_id = client.post("/statuses", json=grant(enrolled), headers=CLERK)
    hostile.attempt("status grant replayed without a request id", status=no_id.status_code,
                    written=subsidy_events(system, enrolled) != 1)
    assert no_id.status_code == 200 and no_id.json()["applied"] is False
    widened = client.post("/statuses", json=grant(enrolled, valid_to=None), headers=CLERK)
    hostile.attempt("status certificate replayed with a wider validity", status=widened.status_code,
                    written=subsidy_events(system, enrolled) != 1)
    assert widened.status_code == 409


def test_revocations_attacked(hostile, client, system, enrolled):
    assert client.post("/statuses", json=grant(enrolled), headers=CLERK).status_code == 201
    path = f"/persons/RESIDENT_ID/{enrolled}/statuses/revoke"
    body = {"grant_id": "TK-1", "revoked_from": "2026-03-01", "department": "汉滨区民政局", "document_no": "QX-1"}
    for name, headers, over, status in [
        ("status revoked by another region's clerk", CLERK_HANYIN, {}, 403),
        ("status revoked naming another region", CLERK, {"region_code": "610921"}, 422),
        ("status revoked by a grid worker", GRID_WORKER_A, {}, 403),
        ("unknown status revoked", CLERK, {"grant_id": "NOPE"}, 422),
        ("status revoked from 1850", CLERK, {"revoked_from": "1850-01-01"}, 422),
    ]:
        r = client.post(path, json={**body, **over}, headers=headers)
        hostile.attempt(name, status=r.status_code, written=subsidy_events(system, enrolled) != 1,
                        leaked=headers is CLERK_HANYIN and "王芳" in r.text)
        assert r.status_code == status, (name, r.text)
    r = client.post(f"/persons/RESIDENT_ID/{number(41)}/statuses/revoke", json=body, headers=CLERK)
    hostile.attempt("status revoked for an unknown person", status=r.status_code)
    assert r.status_code == 404 and r.json()["code"] == "PERSON_NOT_FOUND"
    assert client.post(path, json=body, headers=CLERK).status_code == 201
    again = client.post(path, json=body, headers=CLERK)
    hostile.attempt("status revocation replayed", status=again.status_code,
                    written=subsidy_events(system, enrolled) != 2)
    assert again.status_code == 200 and again.json()["applied"] is False
