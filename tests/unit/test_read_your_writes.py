"""Read your writes: a command that returned is in the next entitlement read, with no runner and no catch-up.

The read brings the asked person up to date itself (projections.queries, "Fresh reads"):
their stored history row plus the ledger's events of them above its version, folded and
derived in memory; nothing is written. These tests turn the API's catch-up off
(``LEDGER_API_CATCH_UP=0``) and run no follower, so only that can make the answer fresh;
on the in-memory ledger and on the embedded SQLite default (files), over HTTP, the web
person sheet and two CLI invocations in a row.
"""
from __future__ import annotations

import json
from datetime import date

import pytest
from fastapi.testclient import TestClient

from entrypoints.wiring import bootstrap
from infra.settings import Settings, load_settings
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from entrypoints.http.read_model import CATCH_UP_ENV
from projections.queries import ViewQueries
from projections.factory import projection_runner
from tests.unit import http_support as web
from tests.unit.cli_support import embedded, run, run_as
from tests.unit.projection_support import HANBIN, pay_year

YEAR_2025 = {"year": 2025, "on": "2025-03-01"}


@pytest.fixture(params=["memory", "sqlite"])
def system(request, tmp_path, monkeypatch):
    """The in-memory ledger, or the embedded default (SQLite ledger and views files), with the catch-up off."""
    monkeypatch.setenv(CATCH_UP_ENV, "0")
    if request.param == "memory":
        s = bootstrap(Settings(persistence="memory", id_key=b"k"), policies=web.policies())
    else:
        embedded(monkeypatch, tmp_path, "read-your-writes")
        s = bootstrap(load_settings())
    yield s
    s.close()


@pytest.fixture()
def client(system):
    return TestClient(create_app(system, TokenStore.from_tokens(web.TOKENS)))


def entitlement(client, n: str, headers=web.CLERK, **params) -> dict:
    r = client.get(web.person_path(n, "/entitlement"), params=params or YEAR_2025, headers=headers)
    assert r.status_code == 200, r.json()
    return r.json()


def as_json(value):
    return json.loads(json.dumps(value, default=str))


def runner(client):
    """A projection runner on the API's own view store (what ``ledger project`` or a follower does)."""
    reads = client.app.state.reads
    return projection_runner(client.app.state.system, store=reads.store)


# ------------------------------------------------------------------ HTTP
def test_enroll_then_read_right_after_shows_the_enrollment_and_then_the_payment(client):
    n = web.number(1)
    web.enroll(client, n)
    first = entitlement(client, n)
    assert first["resident_year"]["enrollment_state"] == "ACTIVE"
    assert first["resident_year"]["enrollment_start"] == "2024-09-10"
    assert (first["covered"], first["resident_year"]["outstanding_fen"]) == (False, 40000)

    web.pay(client, n, "V1")
    second = entitlement(client, n)
    assert second["covered"] is True
    assert second["resident_year"]["net_paid_fen"] == 40000 and second["resident_year"]["outstanding_fen"] == 0

    store = client.app.state.reads.store
    assert store.all_positions() == [] and store.history(second["person_id"]) is None  # nothing caught up or written


def test_a_read_folds_only_the_events_the_views_lack_and_writes_nothing(client):
    n = web.number(2)
    web.enroll(client, n)
    runner(client).run_once()  # the views hold the person at their enrollment
    store = client.app.state.reads.store
    pid = entitlement(client, n)["person_id"]
    held = store.history(pid).version
    positions = store.all_positions()

    queries = client.app.state.reads.queries
    asked: list[tuple[str, int, int]] = []
    real = queries.person_events

    def recording(person_id, after):
        events = real(person_id, after)
        asked.append((person_id, after, len(events)))
        return events

    queries.person_events = recording
    web.pay(client, n, "V2")
    answer = entitlement(client, n)
    assert answer["covered"] is True and answer["resident_year"]["net_paid_fen"] == 40000
    assert asked == [(pid, held, 1)]  # one query, for the payment alone
    assert store.history(pid).version == held and store.all_positions() == positions


def test_the_fresh_answer_is_the_answer_of_views_caught_up(client):
    """Fresh from nothing, fresh on a stale row, and caught up: the same figures."""
    n, m = web.number(3), web.number(4)
    web.enroll(client, n)
    web.enroll(client, m, grid_code=web.GRID_B)
    runner(client).run_once()
    web.pay(client, n, "V3")
    web.enroll(client, web.number(5))
    fresh = {k: entitlement(client, k) for k in (n, m, web.number(5))}
    runner(client).run_once()
    caught_up = {k: entitlement(client, k) for k in (n, m, web.number(5))}
    assert fresh == caught_up
    store = client.app.state.reads.store
    no_reader = ViewQueries(store, client.app.state.system.policies)  # the stored rows alone
    for k, answer in caught_up.items():
        stored = as_json(no_reader.entitlement(answer["person_id"], 2025))
        assert stored["resident"] == answer["resident_year"] and stored["summary"] == answer["summary"]


def test_the_entitlement_read_no_longer_waits_for_the_global_catch_up(system, monkeypatch):
    """With the catch-up on, a list read still catches the views up; the entitlement read does not need to."""
    monkeypatch.setenv(CATCH_UP_ENV, "1")
    client = TestClient(create_app(system, TokenStore.from_tokens(web.TOKENS)))
    n = web.number(6)
    web.enroll(client, n)
    web.pay(client, n, "V6")
    assert entitlement(client, n)["covered"] is True
    store = client.app.state.reads.store
    assert store.all_positions() == []
    r = client.get(f"/grids/{web.GRID_A}/gaps", params={"year": 2025, "as_of": "2025-03-01"}, headers=web.GRID_WORKER_A)
    assert r.status_code == 200 and store.all_positions() != []


def test_the_web_person_sheet_right_after_the_commands(client):
    n = web.number(7)
    person_id = web.enroll(client, n)["person_id"]
    r = client.get(f"/entitlements/{person_id}", params=YEAR_2025, headers=web.GRID_WORKER_A)
    assert r.status_code == 200 and r.json()["covered"] is False and r.json()["explanation"]["advice"]
    web.pay(client, n, "V7")
    r = client.get(f"/entitlements/{person_id}", params=YEAR_2025, headers=web.GRID_WORKER_A)
    assert r.status_code == 200 and r.json()["covered"] is True and r.json()["explanation"]["advice"] is None
    assert r.json()["id_number"] != n  # still masked for the grid worker


def test_a_person_unknown_to_the_ledger_is_not_found_not_views_empty(client):
    r = client.get(web.person_path(web.number(8), "/entitlement"), params=YEAR_2025, headers=web.CLERK)
    assert (r.status_code, r.json()["code"]) == (404, "PERSON_NOT_FOUND")


# ------------------------------------------------------------------ CLI, embedded SQLite default
GRID_A = "610902100001"


def cli_entitlement(capsys, n: str) -> dict:
    status, out, err = run(capsys, "entitlement", n, "--year", "2025", "--on", "2025-03-01", "--json")
    assert status == 0, err
    return json.loads(out)


def test_cli_command_then_cli_read_in_the_next_invocation(tmp_path, monkeypatch, capsys):
    embedded(monkeypatch, tmp_path, "read-your-writes-cli")
    run_as(monkeypatch, tmp_path, "clerk", [HANBIN], user="clerk09")
    n = web.number(11)
    status, _, err = run(capsys, "clerk", "enroll", "--id-number", n, "--name", "张三", "--scheme", "RESIDENT",
                         "--region-code", HANBIN, "--grid-code", GRID_A, "--effective-date", "2024-09-10")
    assert status == 0, err
    first = cli_entitlement(capsys, n)  # no `ledger project` ran: the views file is empty
    assert first["resident"]["enrollment_state"] == "ACTIVE" and first["covered_on"]["covered"] is False
    assert first["masked_id"] == n[:4] + "*" * 10 + n[-4:]

    system = bootstrap(load_settings())
    try:
        pay_year(system.ledger, n, 2025, date(2024, 10, 8), voucher="V11")  # what the tax consumer records
    finally:
        system.close()
    paid = cli_entitlement(capsys, n)
    assert paid["covered_on"]["covered"] is True and paid["resident"]["net_paid_fen"] == 40000

    status, _, err = run(capsys, "project", "--quiet")  # the views now hold the person ...
    assert status == 0, err
    status, _, err = run(capsys, "clerk", "end-enrollment", "--id-number", n, "--reason", "DIED",
                         "--effective-date", "2025-06-30", "--request-id", "end-11")
    assert status == 0, err
    run_as(monkeypatch, tmp_path, "approver", [HANBIN], user="approver09")  # maker-checker: a second clerk
    status, _, err = run(capsys, "clerk", "approve", "end-11")
    assert status == 0, err
    run_as(monkeypatch, tmp_path, "clerk", [HANBIN], user="clerk09")
    ended = cli_entitlement(capsys, n)  # ... and the read adds what came after them
    assert ended["resident"]["enrollment_state"] == "ENDED"
    assert ended["resident"]["enrollment_end"] == "2025-06-30"
