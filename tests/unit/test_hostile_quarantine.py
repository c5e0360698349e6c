"""No single person can stop the views: a person whose rows cannot be derived or stored is quarantined.

A poisoned history (an absurd amount written straight to the event store, past any gate;
two payments of 2^63-1 summing past bigint) or a derivation forced to fail for one person:
``ledger project`` completes for everyone else (incremental, rebuild, sharded rebuild),
the person is listed with the reason and the event, their rows are withheld, reads of
others answer 200 and a read of them 409 ``PERSON_QUARANTINED``; once the fault is gone
the next run derives them again and releases them, and the views equal a clean rebuild.
"""
from __future__ import annotations

from datetime import date
from uuid import UUID

import pytest

from entrypoints.wiring import bootstrap
from entrypoints.cli import main
from ledger.domain.person import Person
from projections import projection_runner as projector_module
from projections.entitlement import EntitlementProjection
from projections.projection_runner import ProjectionRunner, rebuild
from projections.queries import ViewQueries
from projections.sources import NotificationLogSource
from projections.store import SQLiteViewStore
from tests.unit import http_support as web
from tests.unit.projection_support import (
    API,
    HANBIN,
    TAX_OFFICE,
    at,
    enroll,
    ledger,  # noqa: F401  (fixture)
    number,
    pay_year,
)

BIGINT_MAX = 2**63 - 1


def poison(ledger, person_id, amount_fen: int, voucher: str = "POISON") -> None:
    """A ContributionPaid of ``amount_fen`` saved straight into the event store (no command, no gate)."""
    person = ledger.repository.get(UUID(str(person_id)))
    person.trigger_event(
        Person.ContributionPaid, voucher_no=voucher, tax_office=TAX_OFFICE, levy_item="RESIDENT", region_code=HANBIN,
        amount_fen=amount_fen, period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
        paid_at=at(date(2024, 10, 9)), credited_on=date(2024, 10, 9), channel="APP", content_digest="0" * 64,
        effective_date=date(2024, 10, 9), provenance=API.as_dict())
    ledger.save(person)


def stored_events(ledger, person_id) -> list:
    return NotificationLogSource(ledger).person_events(str(person_id))


def _last_event_id(ledger, person_id) -> str:
    return str(stored_events(ledger, person_id)[-1].event_id)


def runner_for(ledger, store, batch_size=2000):
    return ProjectionRunner(store, NotificationLogSource(ledger, page_size=5), ledger.policies, batch_size=batch_size)


def clean_rebuild(ledger):
    fresh = SQLiteViewStore(":memory:")
    rebuild(fresh, NotificationLogSource(ledger), ledger.policies)
    return fresh


def three_persons(ledger):
    """Two healthy persons (enrolled, paid) and a third enrolled and paid, to be poisoned or made to fail."""
    ids = {}
    for key, seq in (("a", 1), ("b", 3), ("c", 5)):
        ids[key] = str(enroll(ledger, number(seq), date(2024, 9, 10)))
        pay_year(ledger, number(seq), 2025, date(2024, 10, 8))
    return ids


def assert_built_for(store, ledger, person_ids):
    """The persons' rows are there, and are those a pure derivation of their history gives."""
    queries = ViewQueries(store, ledger.policies)
    for pid in person_ids:
        assert store.history(pid) is not None
        answer = queries.entitlement(pid, 2025)
        assert answer["resident"]["net_paid_fen"] == 40000 and answer["resident"]["insured"] is not None


@pytest.fixture()
def store():
    s = SQLiteViewStore(":memory:")
    yield s
    s.close()


@pytest.fixture()
def failing_for(monkeypatch):
    """``failing_for(pid)``: the entitlement derivation raises for that person (a bug in a rule, say)."""
    real = EntitlementProjection.row
    broken: set[str] = set()

    def row(self, history, **incremental):
        if history.person_id in broken:
            raise KeyError("coverage_start")  # what a rule's bug looks like
        return real(self, history, **incremental)

    monkeypatch.setattr(EntitlementProjection, "row", row)
    return broken


# ------------------------------------------------------------------ a poisoned amount in the event store
@pytest.mark.parametrize(("label", "amounts"), [
    ("10^30 fen", [10**30]),
    ("2^63 fen", [2**63]),
    ("two payments of 2^63-1 summing past 2^63", [BIGINT_MAX, BIGINT_MAX]),
])
def test_a_poisoned_amount_stored_quarantines_one_person_and_the_views_still_build(ledger, store, hostile, label,
                                                                                    amounts):
    ids = three_persons(ledger)
    runner = runner_for(ledger, store, batch_size=4)
    runner.run_once()
    for i, amount in enumerate(amounts):
        poison(ledger, ids["c"], amount, voucher=f"POISON{i}")
    bad_event = _last_event_id(ledger, ids["c"]) if len(amounts) == 1 else None
    pay_year(ledger, number(1), 2026, date(2025, 10, 8))  # someone else's event after the poison
    try:
        result = runner.run_once()
        crashed = False
    except Exception:  # noqa: BLE001 - counted, then failed below
        crashed = True
    hostile.attempt(f"poisoned amount stored ({label}) -> views still build", crashed=crashed)
    assert not crashed and result.quarantined == 1
    assert runner.positions() == {0: ledger.recorder.max_notification_id()}  # the position moved on
    (q,) = store.quarantined()
    assert (q.person_id, q.code, q.event_type) == (ids["c"], "VIEW_VALUE_OUT_OF_RANGE", "ContributionPaid")
    assert q.masked_id == number(5)[:4] + "*" * 10 + number(5)[-4:] and q.quarantined_at is not None
    if bad_event is not None:
        assert q.event_id == bad_event
    assert "net_paid_fen" in q.message
    assert_built_for(store, ledger, [ids["a"], ids["b"]])
    assert store.history(ids["a"]).version == len(stored_events(ledger, ids["a"]))  # a's 2026 payment too
    # the quarantined person's rows are withheld everywhere, not half-updated
    assert store.history(ids["c"]) is None
    for table in ("view_entitlement_years", "view_coverage_spells", "view_arrears_dues"):
        assert not store.conn.execute(f"SELECT 1 FROM {table} WHERE person_id = ?", (ids["c"],)).fetchall()
    with pytest.raises(Exception) as err:
        ViewQueries(store, ledger.policies).entitlement(ids["c"], 2025)
    assert (getattr(err.value, "code", None), err.value.http_status) == ("PERSON_QUARANTINED", 409)
    # a later run tries again: still poisoned (the ledger is append-only), still quarantined, nothing crashes
    assert runner_for(ledger, store).run_once().released == 0
    assert [x.person_id for x in store.quarantined()] == [ids["c"]]


def test_a_poisoned_history_is_quarantined_by_a_rebuild_too_sharded_or_not(ledger, hostile):
    ids = three_persons(ledger)
    poison(ledger, ids["b"], 10**30)
    for shards in (1, 3):
        fresh = SQLiteViewStore(":memory:")
        try:
            result = rebuild(fresh, NotificationLogSource(ledger), ledger.policies, shards=shards)
            crashed = False
        except Exception:  # noqa: BLE001
            crashed = True
        hostile.attempt(f"poisoned amount stored -> ledger project --rebuild ({shards} shards)", crashed=crashed)
        assert not crashed and result.quarantined == 1
        assert [q.person_id for q in fresh.quarantined()] == [ids["b"]]
        assert_built_for(fresh, ledger, [ids["a"], ids["c"]])
        assert fresh.history(ids["b"]) is None


def test_rows_the_database_refuses_are_found_person_by_person(ledger, store, monkeypatch, hostile):
    """Without the range check, SQLite refuses 2^64-2 (OverflowError): the batch is retried person by person."""
    ids = three_persons(ledger)
    poison(ledger, ids["a"], BIGINT_MAX, "P1")
    poison(ledger, ids["a"], BIGINT_MAX, "P2")
    monkeypatch.setattr(projector_module, "check_ranges", lambda views: None)
    runner = runner_for(ledger, store)
    try:
        result = runner.run_once()
        crashed = False
    except Exception:  # noqa: BLE001
        crashed = True
    hostile.attempt("rows past bigint reach the database -> only that person is quarantined", crashed=crashed)
    assert not crashed and result.quarantined == 1 and result.persons == 2
    (q,) = store.quarantined()
    assert (q.person_id, q.code) == (ids["a"], "VIEW_ROWS_REFUSED")
    assert_built_for(store, ledger, [ids["b"], ids["c"]])
    assert store.history(ids["a"]) is None


def test_the_happy_path_never_tries_persons_one_by_one(ledger, store, monkeypatch):
    three_persons(ledger)

    def refuse(*args, **kwargs):
        raise AssertionError("find_refused called without a refused batch")

    monkeypatch.setattr(store, "find_refused", refuse)
    result = runner_for(ledger, store, batch_size=3).run_once()
    assert result.persons >= 3 and result.quarantined == 0 and store.quarantined() == []


# ------------------------------------------------------------------ a derivation that fails for one person
def test_a_person_whose_derivation_fails_is_quarantined_then_released_once_fixed(ledger, store, failing_for):
    ids = three_persons(ledger)
    failing_for.add(ids["b"])
    runner = runner_for(ledger, store, batch_size=3)
    result = runner.run_once()
    assert result.quarantined == 1 and runner.positions() == {0: ledger.recorder.max_notification_id()}
    (q,) = store.quarantined()
    assert (q.person_id, q.code) == (ids["b"], "VIEW_DERIVATION_FAILED")
    assert "KeyError" in q.message and q.event_type in ("Registered", "Enrolled", "ContributionPaid")
    assert_built_for(store, ledger, [ids["a"], ids["c"]])
    # new events of the quarantined person wait for the retry; the others' are applied
    pay_year(ledger, number(3), 2026, date(2025, 10, 8))
    pay_year(ledger, number(1), 2026, date(2025, 10, 8))
    runner.run_once()  # same runner, within retry_every: no retry
    assert [x.person_id for x in store.quarantined()] == [ids["b"]]
    assert store.history(ids["a"]).version == len(stored_events(ledger, ids["a"]))
    # the fix is deployed: the next ledger project (a new runner) derives b again from all their stored events
    failing_for.clear()
    result = runner_for(ledger, store).run_once()
    assert result.released == 1 and store.quarantined() == []
    assert store.history(ids["b"]).version == len(stored_events(ledger, ids["b"]))
    assert store.dump() == clean_rebuild(ledger).dump()  # every table, row by row, as if nothing had happened


def test_a_following_runner_retries_every_retry_every_seconds(ledger, store, failing_for):
    ids = three_persons(ledger)
    failing_for.add(ids["c"])
    runner = runner_for(ledger, store)
    runner.run_once()
    failing_for.clear()
    assert runner.run_once().released == 0  # not yet due
    runner.retry_every = 0
    assert runner.run_once().released == 1 and store.quarantined() == []


def test_a_rebuild_releases_a_fixed_person(ledger, store, failing_for):
    ids = three_persons(ledger)
    failing_for.add(ids["a"])
    rebuild(store, NotificationLogSource(ledger), ledger.policies, shards=2)
    assert [q.person_id for q in store.quarantined()] == [ids["a"]]
    failing_for.clear()
    rebuild(store, NotificationLogSource(ledger), ledger.policies)
    assert store.quarantined() == [] and store.dump() == clean_rebuild(ledger).dump()


def test_a_gap_in_the_event_stream_still_stops_the_batch(ledger, store):
    """EVENT_GAP is not one person's data (events are missing): nothing written, as before."""
    from ledger.domain.history import ProjectionError
    from projections.sources import Batch
    from tests.unit.projection_support import log_events

    three_persons(ledger)
    runner = runner_for(ledger, store)
    events = [e for e in log_events(ledger) if getattr(e, "originator_version", 0) != 1]
    with pytest.raises(ProjectionError) as err:
        runner.apply(Batch(events, {0: (None, 5)}))
    assert err.value.code == "EVENT_GAP" and store.quarantined() == [] and store.all_positions() == []


# ------------------------------------------------------------------ ledger status, ledger project
def test_ledger_project_completes_and_ledger_status_names_the_quarantined_person(tmp_path, monkeypatch, capsys,
                                                                                  hostile):
    for key in ("KAFKA_BOOTSTRAP_SERVERS", "LEDGER_TOPIC_PREFIX"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LEDGER_PERSISTENCE", "sqlite")
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LEDGER_SQLITE_PATH", str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("LEDGER_VIEWS_PATH", str(tmp_path / "views.sqlite"))
    system = bootstrap()
    try:
        ids = three_persons(system.ledger)
        poison(system.ledger, ids["c"], 10**30)
    finally:
        system.close()
    code = main(["project", "--quiet"])
    hostile.attempt("poisoned amount stored -> ledger project", crashed=code != 0)
    out = capsys.readouterr().out
    assert code == 0 and "1 人处于视图隔离" in out
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    masked = number(5)[:4] + "*" * 10 + number(5)[-4:]
    assert "1 人处于视图隔离" in out and "事件类型" in out and masked in out and "VIEW_VALUE_OUT_OF_RANGE" in out and "ContributionPaid" in out
    assert number(5) not in out  # the ID number only masked
    import json

    assert main(["status", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    (held,) = [r for r in rows if r["part"] == "views quarantined"]
    assert (held["person_id"], held["code"], held["masked_id"]) == (ids["c"], "VIEW_VALUE_OUT_OF_RANGE", masked)
    assert held["since"] and held["event_id"]


# ------------------------------------------------------------------ HTTP
def test_reads_of_others_answer_200_the_quarantined_person_409_and_auditors_list_them(failing_for, hostile):
    system = bootstrap(web.Settings(persistence="memory", id_key=b"k"), policies=web.policies())
    try:
        from fastapi.testclient import TestClient

        from entrypoints.http.app import create_app
        from entrypoints.http.auth import TokenStore

        client = TestClient(create_app(system, TokenStore.from_tokens(web.TOKENS)))
        healthy, sick = web.number(41), web.number(42)
        web.enroll(client, healthy)
        sick_id = web.enroll(client, sick)["person_id"]
        web.pay(client, healthy, "V41")
        failing_for.add(str(sick_id))
        web.pay(client, sick, "V42")
        reads = {
            "entitlement of another person": client.get(web.person_path(healthy, "/entitlement"),
                                                        params={"year": 2025}, headers=web.CLERK),
            "grid gaps": client.get(f"/grids/{web.GRID_A}/gaps", params={"year": 2025}, headers=web.GRID_WORKER_A),
            "grid coverage": client.get(f"/grids/{web.GRID_A}/coverage", params={"year": 2025},
                                        headers=web.GRID_WORKER_A),
            "arrears": client.get("/arrears", params={"region": web.HANBIN}, headers=web.CLERK),
            "gaps export": client.get(f"/grids/{web.GRID_A}/gaps.csv", params={"year": 2025},
                                      headers=web.GRID_WORKER_A),
        }
        for name, r in reads.items():
            hostile.attempt(f"one person quarantined -> {name}", status=r.status_code)
            assert r.status_code == 200, (name, r.text)
        assert reads["entitlement of another person"].json()["resident_year"]["net_paid_fen"] == 40000
        assert sick not in reads["grid gaps"].text
        r = client.get(web.person_path(sick, "/entitlement"), params={"year": 2025}, headers=web.CLERK)
        hostile.attempt("one person quarantined -> read of that person", status=r.status_code)
        assert (r.status_code, r.json()["code"]) == (409, "PERSON_QUARANTINED")
        assert "隔离" in r.json()["message"]
        r = client.get("/views/quarantine", headers=web.AUDITOR)
        assert r.status_code == 200 and r.json()["count"] == 1
        (listed,) = r.json()["persons"]
        assert (listed["person_id"], listed["code"]) == (str(sick_id), "VIEW_DERIVATION_FAILED")
        assert listed["masked_id"] == sick[:4] + "*" * 10 + sick[-4:] and sick not in r.text
        for headers in (web.CLERK, web.GRID_WORKER_A, web.TAX):
            r = client.get("/views/quarantine", headers=headers)
            hostile.attempt("quarantine list by a non-auditor", status=r.status_code, leaked=r.status_code == 200)
            assert (r.status_code, r.json()["code"]) == (403, "ROLE_FORBIDDEN")
    finally:
        system.close()


def test_a_reason_naming_an_id_number_is_stored_and_shown_masked(ledger, store, monkeypatch, hostile):
    ids = three_persons(ledger)
    real = EntitlementProjection.row

    def row(self, history, **incremental):
        if history.person_id == ids["a"]:
            raise ValueError(f"rule broke on {number(1)}\x00 here")
        return real(self, history, **incremental)

    monkeypatch.setattr(EntitlementProjection, "row", row)
    runner_for(ledger, store).run_once()
    (q,) = store.quarantined()
    hostile.attempt("derivation error naming an ID number -> quarantine reason", leaked=number(1) in q.message)
    assert q.message == f"ValueError: rule broke on {number(1)[:6]}********{number(1)[-4:]}  here"
