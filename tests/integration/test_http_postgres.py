"""The HTTP API on the real PostgreSQL store: commands, a resend, the tax feed, an import, reads."""
from __future__ import annotations

import io
from datetime import date

import pytest
from fastapi.testclient import TestClient

from entrypoints.wiring import bootstrap
from infra.settings import Settings, postgres_from_env
from ledger.domain.identity import make_resident_id
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore

pytestmark = pytest.mark.integration

HANBIN, GRID = "610902", "610902100001"
TOKENS = {
    "clerk": ("clerk.hanbin", "clerk", [HANBIN]),
    "grid": ("grid.a", "grid_worker", [GRID]),
    "auditor": ("auditor", "auditor", []),
    "tax": ("tax.bureau", "tax_integration", [HANBIN]),
}


def bearer(token: str, request_id: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **({"X-Request-ID": request_id} if request_id else {})}


def number(seq: int) -> str:
    return make_resident_id(HANBIN, date(1979, 4, 2), seq)


@pytest.fixture(scope="module")
def system(pg_env):
    s = bootstrap(Settings(persistence="postgres",
                           postgres=postgres_from_env(pg_env), id_key=b"k"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def client(system):
    return TestClient(create_app(system, TokenStore.from_tokens(TOKENS)))


def test_enroll_resend_assess_pay_and_read_back(client, system):
    n = number(1)
    body = {"id_number": n, "name": "陈静", "scheme": "RESIDENT", "region_code": HANBIN, "grid_code": GRID,
            "effective_date": "2024-09-10"}
    first = client.post("/enrollments", json=body, headers=bearer("clerk", "pg-req-1"))
    assert first.status_code == 201, first.json()
    again = client.post("/enrollments", json=body, headers=bearer("clerk", "pg-req-1"))
    assert again.status_code == 200 and again.json()["applied"] is False
    r = client.post(f"/persons/RESIDENT_ID/{n}/assessments/resident-year", json={"year": 2025},
                    headers=bearer("clerk"))
    assert r.status_code == 201
    r = client.post(f"/persons/RESIDENT_ID/{n}/account/credits",
                    json={"amount_fen": 12.5, "reason": "CORRECTION", "reference": "x", "effective_date": "2025-01-01"},
                    headers=bearer("clerk"))
    assert (r.status_code, r.json()["code"]) == (422, "AMOUNT_NOT_INTEGER_FEN")

    gaps = client.get(f"/grids/{GRID}/gaps", params={"year": 2025, "as_of": "2025-03-01"}, headers=bearer("grid"))
    assert gaps.status_code == 200 and gaps.json()["count"] == 1
    assert gaps.json()["gaps"][0]["id_number"] != n

    payment = {"voucher_no": "PG-V1", "tax_office": "16109020000", "id_number": n, "name": "陈静",
               "region_code": HANBIN, "levy_item": "RESIDENT", "period_start": "2025-01-01",
               "period_end": "2025-12-31", "amount_fen": 40000, "paid_at": "2024-10-08T09:30:00+08:00"}
    assert client.post("/tax/payments", json=payment, headers=bearer("tax")).status_code == 201
    assert client.post("/tax/payments", json=payment, headers=bearer("tax")).status_code == 200

    r = client.get(f"/persons/RESIDENT_ID/{n}/entitlement", params={"year": 2025, "on": "2025-03-01"},
                   headers=bearer("clerk"))
    assert r.status_code == 200 and r.json()["covered"] is True
    gaps = client.get(f"/grids/{GRID}/gaps", params={"year": 2025, "as_of": "2025-03-01"}, headers=bearer("grid"))
    assert gaps.json()["count"] == 0
    history = client.get(f"/persons/RESIDENT_ID/{n}/history", headers=bearer("auditor")).json()
    assert history["chain_intact"] is True
    assert [e["provenance"].get("request_id") for e in history["events"][:2]] == ["pg-req-1", "pg-req-1"]


def test_import_twice_imports_once(client, system):
    csv = ("证件号码,姓名,险种,参保地,网格,参保日期\n"
           + "".join(f"{number(seq)},参保人{seq},城乡居民,{HANBIN},{GRID},2024-09-10\n" for seq in (11, 12, 13))
           + "110105194912310021,坏号码,城乡居民,610902,,2024-09-10\n").encode()
    first = client.post("/imports", files={"file": ("register.csv", io.BytesIO(csv))}, headers=bearer("clerk"))
    assert first.status_code == 201, first.json()
    assert (first.json()["imported"], first.json()["errors"]) == (3, 1)
    position = system.ledger.recorder.max_notification_id()
    second = client.post("/imports", files={"file": ("register.csv", io.BytesIO(csv))}, headers=bearer("clerk"))
    assert (second.json()["imported"], second.json()["already_imported"]) == (0, 3)
    assert system.ledger.recorder.max_notification_id() == position
