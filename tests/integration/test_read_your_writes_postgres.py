"""Read your writes on PostgreSQL: a command that returned is in the next entitlement read, while the
views' global position is behind, and while a follower (``ledger project --follow``) writes the views.

The API's catch-up is off: the read brings the asked person up to date itself from the
ledger's events of them (projections.queries, "Fresh reads") and writes nothing, so it
neither waits for the follower nor races its transactions.
"""
from __future__ import annotations

import threading
from datetime import date

import pytest
from fastapi.testclient import TestClient

from entrypoints.wiring import bootstrap
from infra.settings import Settings, postgres_from_env
from ledger.domain.identity import make_resident_id
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from entrypoints.http.read_model import ViewReads
from projections.queries import ViewQueries
from projections.factory import open_view_store, projection_runner

pytestmark = pytest.mark.integration

HANBIN, GRID = "610902", "610902100001"
TOKENS = {"clerk": ("clerk.hanbin", "clerk", [HANBIN]), "tax": ("tax.bureau", "tax_integration", [HANBIN])}
CLERK = {"Authorization": "Bearer clerk"}
TAX = {"Authorization": "Bearer tax"}


def number(seq: int) -> str:
    return make_resident_id(HANBIN, date(1981, 7, 3), seq)


@pytest.fixture(scope="module")
def system(pg_env):
    s = bootstrap(Settings(persistence="postgres", postgres=postgres_from_env(pg_env), id_key=b"k"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def client(system):
    return TestClient(create_app(system, TokenStore.from_tokens(TOKENS), reads=ViewReads(system, catch_up=False)))


def enroll(client, n: str) -> str:
    r = client.post("/enrollments", json={"id_number": n, "name": "陈静", "scheme": "RESIDENT", "region_code": HANBIN,
                                          "grid_code": GRID, "effective_date": "2024-09-10"}, headers=CLERK)
    assert r.status_code == 201, r.json()
    return r.json()["person_id"]


def pay(client, n: str, voucher: str) -> None:
    r = client.post("/tax/payments", json={
        "voucher_no": voucher, "tax_office": "16109020000", "id_number": n, "name": "陈静", "region_code": HANBIN,
        "levy_item": "RESIDENT", "period_start": "2025-01-01", "period_end": "2025-12-31", "amount_fen": 40000,
        "paid_at": "2024-10-08T09:30:00+08:00"}, headers=TAX)
    assert r.status_code == 201, r.json()


def entitlement(client, n: str) -> dict:
    r = client.get(f"/persons/RESIDENT_ID/{n}/entitlement", params={"year": 2025, "on": "2025-03-01"}, headers=CLERK)
    assert r.status_code == 200, r.json()
    return r.json()


def test_reads_are_fresh_while_the_global_position_is_behind(client, system):
    store = client.app.state.reads.store
    a, b = number(1), number(2)
    a_id = enroll(client, a)
    projection_runner(system, store=store).run_once()  # the views hold a's enrollment, then stop
    positions = store.all_positions()
    b_id = enroll(client, b)
    pay(client, a, "RYW-A")
    pay(client, b, "RYW-B")
    assert positions and max(p for *_, p in positions) < system.ledger.recorder.max_notification_id()  # behind

    for n in (a, b):
        answer = entitlement(client, n)
        assert answer["covered"] is True and answer["resident_year"]["net_paid_fen"] == 40000
    assert store.all_positions() == positions  # the reads moved nothing ...
    assert store.history(b_id) is None and store.history(a_id).version == 2  # ... and wrote nothing


def test_every_read_right_after_its_command_is_fresh_while_a_follower_writes_the_views(client, system):
    follower_store = open_view_store(system.settings)  # the follower's own connection, as in its own process
    follower = projection_runner(system, store=follower_store, batch_size=4)
    stop, failures = threading.Event(), []

    def follow():
        try:
            follower.run_forever(stop, idle=0.01, max_failures=1)
        except Exception as error:  # noqa: BLE001 - reported by the test below
            failures.append(error)

    thread = threading.Thread(target=follow, name="follower")
    thread.start()
    ids = {}
    try:
        for seq in range(10, 25):
            n = number(seq)
            ids[n] = enroll(client, n)
            assert entitlement(client, n)["resident_year"]["enrollment_state"] == "ACTIVE"
            pay(client, n, f"RYW-{seq}")
            assert entitlement(client, n)["covered"] is True
    finally:
        stop.set()
        thread.join(timeout=60)
    try:
        assert not thread.is_alive() and failures == []
        follower.run_once()
        stored = ViewQueries(follower_store, system.policies)  # the follower's rows alone, no fresh read
        for n, pid in ids.items():
            assert stored.covered_on(pid, date(2025, 3, 1)).covered is True
    finally:
        follower_store.close()
