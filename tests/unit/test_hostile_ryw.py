"""Fresh reads of one person under faults: events that cannot be applied, a person who cannot be derived,
a quarantined person, ids that are no person. Each answers its stable code, never a 500, and writes nothing.

The read folds the ledger's events of the person (projections.queries, "Fresh reads"); the
faults here are a reader handing back a history with a version missing or two events at one
version (a damaged or half-restored event store), and a rule that fails for one person.
"""
from __future__ import annotations

import dataclasses
import uuid

import pytest
from fastapi.testclient import TestClient

from entrypoints.wiring import bootstrap
from infra.settings import Settings
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from entrypoints.http.read_model import CATCH_UP_ENV
from projections.entitlement import EntitlementProjection
from projections.factory import projection_runner
from tests.unit import http_support as web

YEAR_2025 = {"year": 2025, "on": "2025-03-01"}


@pytest.fixture()
def client(monkeypatch):
    monkeypatch.setenv(CATCH_UP_ENV, "0")
    system = bootstrap(Settings(persistence="memory", id_key=b"k"), policies=web.policies())
    yield TestClient(create_app(system, TokenStore.from_tokens(web.TOKENS)))
    system.close()


def read(client, n: str):
    return client.get(web.person_path(n, "/entitlement"), params=YEAR_2025, headers=web.CLERK)


def views_of(client):
    return client.app.state.reads.store.dump()


def reader_changed(client, change):
    """Make the read's event reader hand back ``change(events)`` instead of the ledger's events."""
    queries = client.app.state.reads.queries
    real = queries.person_events
    queries.person_events = lambda pid, after: change(list(real(pid, after)))


def person_of(history) -> str:
    """The person id of a folded history (a dict, or the domain's typed state)."""
    return history.person_id


def enrolled_and_paid(client, seq: int) -> str:
    n = web.number(seq)
    web.enroll(client, n)
    web.pay(client, n, f"V{seq}")
    return n


@pytest.mark.parametrize(("label", "change", "code"), [
    ("a version missing from the person's events", lambda es: es[:1] + es[2:], "EVENT_GAP"),
    ("two events at one version", lambda es: es[:2] + [dataclasses.replace(es[1], event_id=uuid.uuid4())] + es[2:],
     "EVENT_MISMATCH"),
])
def test_events_that_cannot_be_applied_answer_409_with_their_code(client, hostile, label, change, code):
    n = enrolled_and_paid(client, 51)
    other = enrolled_and_paid(client, 52)
    pid = str(client.app.state.system.ledger.find_person("RESIDENT_ID", n).id)
    assert read(client, n).status_code == 200  # readable before its events are damaged
    before = views_of(client)
    reader_changed(client, lambda es: change(es) if es and str(es[0].originator_id) == pid else es)
    r = read(client, n)
    hostile.attempt(f"entitlement read: {label}", status=r.status_code, written=views_of(client) != before)
    assert (r.status_code, r.json()["code"]) == (409, code)
    assert "事件" in r.json()["message"] and n not in r.text
    r = read(client, other)  # one person's damaged events are theirs alone
    assert r.status_code == 200 and r.json()["covered"] is True


def test_a_person_whose_rules_fail_answers_409_person_quarantined_and_others_200(client, hostile, monkeypatch):
    sick, healthy = enrolled_and_paid(client, 53), enrolled_and_paid(client, 54)
    sick_id = str(client.app.state.system.ledger.find_person("RESIDENT_ID", sick).id)
    real = EntitlementProjection.row

    def row(self, history, **incremental):
        if person_of(history) == sick_id:
            raise KeyError("coverage_start")  # what a rule's bug looks like
        return real(self, history, **incremental)

    monkeypatch.setattr(EntitlementProjection, "row", row)
    before = views_of(client)
    r = read(client, sick)
    hostile.attempt("entitlement read of a person whose derivation fails", status=r.status_code,
                    written=views_of(client) != before)
    assert (r.status_code, r.json()["code"]) == (409, "PERSON_QUARANTINED")
    assert read(client, healthy).status_code == 200


def test_a_quarantined_person_stays_409_until_released_even_with_new_events(client, hostile, monkeypatch):
    sick = enrolled_and_paid(client, 55)
    sick_id = str(client.app.state.system.ledger.find_person("RESIDENT_ID", sick).id)
    real = EntitlementProjection.row
    broken = {sick_id}

    def row(self, history, **incremental):
        if person_of(history) in broken:
            raise KeyError("coverage_start")
        return real(self, history, **incremental)

    monkeypatch.setattr(EntitlementProjection, "row", row)
    runner = projection_runner(client.app.state.system, store=client.app.state.reads.store)
    runner.run_once()
    assert [q.person_id for q in runner.quarantined()] == [sick_id]
    broken.clear()  # the rule is fixed, but the views still hold the person in quarantine
    r = client.post(web.person_path(sick, "/assessments/resident-year"), json={"year": 2026}, headers=web.CLERK)
    assert r.status_code == 201
    r = read(client, sick)
    hostile.attempt("entitlement read of a quarantined person with newer events", status=r.status_code)
    assert (r.status_code, r.json()["code"]) == (409, "PERSON_QUARANTINED")
    assert runner.run_once(retry=True).released == 1  # the next run derives them again and releases them
    r = read(client, sick)
    assert r.status_code == 200 and r.json()["covered"] is True


@pytest.mark.parametrize(("label", "path", "status", "code"), [
    ("an unknown person id", f"/entitlements/{uuid.uuid4()}", 404, "PERSON_NOT_FOUND"),
    ("a person id that is not an id", "/entitlements/not-a-person-id%27--", 404, "PERSON_NOT_FOUND"),
    ("a person not registered", web.person_path(web.number(59), "/entitlement"), 404, "PERSON_NOT_FOUND"),
])
def test_ids_that_are_no_person_answer_404(client, hostile, label, path, status, code):
    enrolled_and_paid(client, 58)
    before = views_of(client)
    r = client.get(path, params=YEAR_2025, headers=web.CLERK)
    hostile.attempt(f"entitlement read of {label}", status=r.status_code, written=views_of(client) != before)
    assert (r.status_code, r.json().get("code")) == (status, code)
