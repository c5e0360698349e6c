"""Maker-checker (双人复核) and person merges on the real PostgreSQL (ledger events and views), through the API.

The pending change is its own small aggregate in the event store (no new table): proposed by a
clerk, approved by an approver of the region in one transaction with the merge's two person events.
Afterwards the gap list, coverage and arrears count the person once, a tax payment naming the
merged record's ID goes to the person kept, and the history of either record shows both clerks.
"""
from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient

from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from entrypoints.wiring import bootstrap
from infra.settings import Settings, postgres_from_env
from ledger.domain.approvals import PendingChange
from ledger.inbound_records import Provenance
from tests.unit.http_support import (AUDITOR, CLERK, GRID_A, HANBIN, TAX, TOKENS, auth, enroll, number, person_path,
                                     policies, tax_payment)

pytestmark = pytest.mark.integration
AS_OF = "2025-06-01"


@pytest.fixture()
def deployment(pg_env):
    system = bootstrap(Settings(persistence="postgres", postgres=postgres_from_env(pg_env), id_key=b"mc-pg"),
                       policies=policies())
    client = TestClient(create_app(system, TokenStore.from_tokens(
        {**TOKENS, "tok-approver": ("approver.hanbin", "approver", [HANBIN])})))
    yield client, system
    system.close()


def lists(client):
    gaps = client.get(f"/grids/{GRID_A}/gaps", params={"year": 2025, "as_of": AS_OF}, headers=CLERK).json()
    coverage = client.get(f"/grids/{GRID_A}/coverage", params={"year": 2025, "as_of": AS_OF}, headers=CLERK).json()
    arrears = client.get("/arrears", params={"grid": GRID_A, "as_of": AS_OF}, headers=CLERK).json()
    return gaps["total"], (coverage["residents"], coverage["covered"]), arrears["count"]


def test_merge_on_postgres_counts_once_routes_payments_and_shows_both_clerks(deployment):
    client, system = deployment
    assert system.settings.persistence == "postgres"
    a, b = number(51), number(52)
    enroll(client, a)
    enroll(client, b)
    assert client.post("/tax/payments", json=tax_payment(a, "PG-A"), headers=TAX).status_code == 201
    pid_b = system.ledger.person_id("RESIDENT_ID", b)
    system.ledger.assess_resident_year(pid_b, 2025, provenance=Provenance("api", user="clerk.hanbin"),
                                       effective_date=date(2024, 9, 10))
    assert lists(client) == (1, (2, 1), 1)

    proposed = client.post(person_path(a, "/merges"), json={"merged_id_number": b, "merge_kind": "DUPLICATE",
                                                            "reason": "重复登记"}, headers=auth("tok-clerk", "PG-M-1"))
    assert proposed.status_code == 202
    stored = system.ledger.repository.get(PendingChange.id_for("PG-M-1"))
    assert (stored.status, stored.proposed_by) == ("PENDING", "clerk.hanbin")
    assert lists(client) == (1, (2, 1), 1)  # pending: nothing moved
    assert client.get("/changes", headers=auth("tok-approver")).json()["count"] == 1

    approved = client.post("/changes/PG-M-1/approve", headers=auth("tok-approver"))
    assert approved.status_code == 201 and len(approved.json()["event_ids"]) == 2
    assert client.post("/changes/PG-M-1/approve", headers=auth("tok-approver")).status_code == 200  # replayed
    assert lists(client) == (0, (1, 1), 0)

    # A later payment naming the merged record's ID is the person kept's.
    r = client.post("/tax/payments", json=tax_payment(b, "PG-B-26", period_start="2026-01-01",
                                                      period_end="2026-12-31", paid_at="2025-10-08T09:30:00+08:00"),
                    headers=TAX)
    assert r.status_code == 201 and r.json()["person_id"] == str(system.ledger.person_id("RESIDENT_ID", a))

    for n, kind in ((a, "PersonMerged"), (b, "PersonMergedInto")):
        events = client.get(person_path(n, "/history"), headers=AUDITOR).json()["events"]
        merge = [e for e in events if e["type"] == kind]
        assert len(merge) == 1 and merge[0]["provenance"]["approved_by"] == "approver.hanbin"
        assert merge[0]["provenance"]["proposed_by"] == "clerk.hanbin"
    assert client.get(person_path(b, "/history"), headers=AUDITOR).json()["chain_intact"] is True
