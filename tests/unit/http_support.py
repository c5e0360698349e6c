"""Shared helpers for the HTTP API tests: the app on the in-memory ledger, one token per role and scope.

(A module of helpers and fixtures, no tests; imported by the test_http_* files.)
"""
from __future__ import annotations

import functools
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient

from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.identity import make_resident_id
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from ledger.policy import PolicyBook

HANBIN = "610902"  # 汉滨区
HANYIN = "610921"  # 汉阴县
GRID_A = "610902100001"
GRID_B = "610902100002"
TOWNSHIP = "610902100"
GRID_HANYIN = "610921100001"
TAX_OFFICE = "16109020000"

#: token -> (user, role, scopes)
TOKENS = {
    "tok-clerk": ("clerk.hanbin", "clerk", [HANBIN]),
    "tok-clerk-hanyin": ("clerk.hanyin", "clerk", [HANYIN]),
    "tok-grid-a": ("grid.a", "grid_worker", [GRID_A]),
    "tok-grid-b": ("grid.b", "grid_worker", [GRID_B]),
    "tok-township": ("township", "grid_worker", [TOWNSHIP]),
    "tok-auditor": ("auditor", "auditor", []),
    "tok-tax": ("tax.bureau", "tax_integration", [HANBIN, HANYIN]),
    "tok-approver": ("approver.hanbin", "approver", [HANBIN]),
}


def auth(token: str, request_id: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if request_id:
        headers["X-Request-ID"] = request_id
    return headers


CLERK = auth("tok-clerk")
CLERK_HANYIN = auth("tok-clerk-hanyin")
GRID_WORKER_A = auth("tok-grid-a")
GRID_WORKER_B = auth("tok-grid-b")
TOWNSHIP_WORKER = auth("tok-township")
AUDITOR = auth("tok-auditor")
TAX = auth("tok-tax")
APPROVER = auth("tok-approver")


def approve(client: TestClient, proposed: Any, headers: dict[str, str] = APPROVER) -> dict[str, Any]:
    """An approver of the region approves the change a command proposed (maker-checker); its answer."""
    body = proposed.json() if hasattr(proposed, "json") else proposed
    change_id = body["change"]["change_id"] if "change" in body else body["change_id"]
    r = client.post(f"/changes/{change_id}/approve", headers=headers)
    assert r.status_code == 201, r.json()
    return r.json()


@functools.cache
def policies() -> PolicyBook:
    return PolicyBook.load()  # loaded once: the tables are read-only


@pytest.fixture()
def system():
    s = bootstrap(Settings(persistence="memory", id_key=b"k"), policies=policies())
    yield s
    s.close()


@pytest.fixture()
def client(system):
    return TestClient(create_app(system, TokenStore.from_tokens(TOKENS)))


def number(seq: int, birth: date = date(1980, 5, 17), region: str = HANBIN) -> str:
    return make_resident_id(region, birth, seq)


def enrollment(id_number: str, **over: Any) -> dict[str, Any]:
    body = {"id_type": "RESIDENT_ID", "id_number": id_number, "name": "王芳", "scheme": "RESIDENT",
            "region_code": HANBIN, "grid_code": GRID_A, "effective_date": "2024-09-10"}
    body.update(over)
    return body


def enroll(client: TestClient, id_number: str, headers: dict[str, str] = CLERK, **over: Any) -> dict[str, Any]:
    r = client.post("/enrollments", json=enrollment(id_number, **over), headers=headers)
    assert r.status_code == 201, r.json()
    return r.json()


def tax_payment(id_number: str, voucher: str = "V0001", **over: Any) -> dict[str, Any]:
    body = {"voucher_no": voucher, "tax_office": TAX_OFFICE, "id_type": "RESIDENT_ID", "id_number": id_number,
            "name": "王芳", "region_code": HANBIN, "levy_item": "RESIDENT", "period_start": "2025-01-01",
            "period_end": "2025-12-31", "amount_fen": 40000, "paid_at": "2024-10-08T09:30:00+08:00",
            "credited_on": "2024-10-09", "channel": "APP"}
    body.update(over)
    return body


def pay(client: TestClient, id_number: str, voucher: str = "V0001", **over: Any) -> dict[str, Any]:
    r = client.post("/tax/payments", json=tax_payment(id_number, voucher, **over), headers=TAX)
    assert r.status_code == 201, r.json()
    return r.json()


def person_path(id_number: str, suffix: str = "") -> str:
    return f"/persons/RESIDENT_ID/{id_number}{suffix}"


def event_count(system) -> int:
    return system.ledger.recorder.max_notification_id() or 0
