"""One fold of the person (issue 19): the aggregate's state IS the history every view folds.

* For random command sequences (through the ledger service, and transfers on the aggregate
  itself), the aggregate's state equals ``fold_many(None, its own events)``: the same
  :class:`PersonHistory` object shape, compared field by field, items included.
* No dict of state remains on the aggregate: its only state is ``history`` (a PersonHistory),
  ``identity`` (an Identity) and ``chain_head`` (text), besides the library's plumbing.
* A snapshot stored in the older shape (dict state, no ``class_version``) is a cache, never
  evidence: loading ignores it and replays the events, the audit notes it without calling it a
  discrepancy, and the next snapshot of that person replaces it.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.errors import DomainError
from ledger.domain.history import PersonHistory, fold_many, history_to_plain
from ledger.domain.person import Identity, Person, StaleSnapshot
from tests.unit import test_properties_ledger as ledger_props
from tests.unit import test_properties_transfers as transfer_props
from tests.unit.projection_support import ledger  # noqa: F401  (fixture of busy)
from tests.unit.test_domain_history_typed import busy  # noqa: F401  (fixture: every kind of fact)
from tests.unit.test_ledger_core import API, enroll_resident, payment, replayed, resident_id

#: What the library keeps on every aggregate (ids, version, timestamps, pending events): not the person's facts.
LIBRARY_PLUMBING = {"_id", "_version", "_created_on", "_modified_on", "_pending_events"}


def assert_one_fold(person: Person, events: list[Any]) -> None:
    """The aggregate's state is the typed history the views fold from the same events, and nothing else."""
    assert type(person.history) is PersonHistory and type(person.identity) is Identity
    # identity and contact (address, phone) are the write side's own personal facts, never in the views
    assert set(vars(person)) - LIBRARY_PLUMBING == {"history", "identity", "contact", "chain_head"}
    folded = fold_many(None, events)
    assert person.history == folded
    assert history_to_plain(person.history) == history_to_plain(folded)  # the same items, field by field
    assert person.history.version == person.version == len(events)


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(ledger_props.PROPERTY_SETTINGS.suppress_health_check))
@given(cmds=ledger_props.commands())
def test_through_the_ledger_the_aggregate_state_is_the_fold_of_its_events(cmds: list[tuple]) -> None:
    system = bootstrap(Settings(persistence="memory", id_key=b"prop"), policies=ledger_props.policies())
    ledger = system.ledger
    try:
        ledger_props.run(ledger, cmds)
        for p in range(3):
            pid = ledger.person_id("RESIDENT_ID", ledger_props.number(p + 1))
            events = list(ledger.events.get(pid))
            if events:
                assert_one_fold(ledger.get_person(pid), events)
    finally:
        system.close()


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(balance=st.integers(min_value=0, max_value=300_000), paid_months=st.integers(min_value=0, max_value=12),
       history=st.lists(transfer_props.steps, min_size=1, max_size=14))
def test_through_transfers_the_aggregate_state_is_the_fold_of_its_events(balance, paid_months, history):
    person = transfer_props._new_person(balance, paid_months)
    events = person.collect_events()
    day = date(2025, 1, 6)
    for step in history:
        day += timedelta(days=2)
        if step[0] == "crash":  # reload from what was recorded: the replay is the same fold
            person = transfer_props._replay(events)
            assert_one_fold(person, events)
            continue
        todo = [("out", step[1], step[2]), ("in_as_sent", step[1])] if step[0] == "pair" else [step]
        for one in todo:
            try:
                transfer_props._run(person, one, day)
            except DomainError as e:
                assert e.code in transfer_props.EXPECTED_REFUSALS, e.code
        events += person.collect_events()
        assert_one_fold(person, events)


def test_a_transfer_request_is_a_fact_of_the_history_and_its_out_half_keeps_its_date():
    person = transfer_props._new_person(1_000, 2)
    person.request_transfer(transfer_id="R1", sending_region="610902", receiving_region="610921",
                            effective_date=date(2025, 3, 3), provenance=transfer_props.PROV,
                            policies=transfer_props.POLICIES)
    request = person.history.transfers["R1"]
    assert (request.direction, request.status, request.requested_on) == ("REQUEST", "REQUESTED", date(2025, 3, 3))
    person.transfer_out(transfer_id="R1", counterpart_region="610921", effective_date=date(2025, 3, 5),
                        provenance=transfer_props.PROV)
    out = person.history.transfers["R1"]
    assert (out.direction, out.status, out.requested_on, out.request_event_id) == \
        ("OUT", "OUT_COMPLETED", date(2025, 3, 3), request.request_event_id)
    assert_one_fold(person, person.collect_events())


# ------------------------------------------------------------------ snapshots of the older shape
def _old_shape_snapshot(ledger: Any, pid: Any) -> Any:
    """A snapshot as the ledger stored them before the one fold (class_version 1): the person's dicts."""
    person = ledger.get_person(pid)
    enrollment = person.enrollments[0]
    state = {
        "_created_on": person.created_on, "_modified_on": person.modified_on,
        "id_type": person.id_type, "id_number": person.id_number, "name": person.name,
        "birth_date": person.birth_date, "sex": person.sex, "household_grid": person.household_grid,
        "residence_status": "RESIDENT",
        "enrollments": [{"enrollment_id": enrollment.enrollment_id, "scheme": enrollment.scheme,
                         "flexible": False, "region_code": enrollment.region_code, "grid_code": None,
                         "employer_id": None, "channel": "COUNTER", "start_date": enrollment.start_date,
                         "end_date": None, "end_reason": None, "duplicate_of": None}],
        "assessments": {}, "subsidies": {}, "payments": {}, "refunds": {}, "transfers": {},
        "account_balance_fen": 999_999, "transferred_in_months": 0, "chain_head": person.chain_head,
    }
    return Person.Snapshot(originator_id=pid, originator_version=person.version,  # type: ignore[call-arg]
                           timestamp=datetime.now(timezone.utc), topic="ledger.domain.person:Person", state=state)


def test_a_snapshot_of_the_older_shape_is_ignored_and_the_person_replayed(tmp_path, hostile):
    system = bootstrap(Settings(persistence="sqlite", sqlite_path=str(tmp_path / "ledger.sqlite"), id_key=b"k"))
    ledger = system.ledger
    try:
        number = resident_id(1)
        pid = enroll_resident(ledger, number).person_id
        old = _old_shape_snapshot(ledger, pid)
        ledger.snapshots.put([old])  # as a ledger of before this change left it
        raw = list(ledger.snapshots.recorder.select_events(pid))
        assert [r.originator_version for r in raw] == [2]
        with pytest.raises(StaleSnapshot):
            ledger.mapper.to_domain_event(raw[0]).mutate(None)
        assert list(ledger.snapshots.get(pid)) == []  # the snapshot store leaves it out ...
        loaded = ledger.get_person(pid)  # ... so the load replays the events
        assert loaded.__dict__ == replayed(ledger, pid).__dict__ and loaded.account_balance_fen == 0
        hostile.attempt("load a person over a snapshot of the older shape", status=None, crashed=False,
                        written=False, leaked=False)
        # Commands go on from the replayed person; the next snapshot (after an assessment) replaces the old one.
        assert ledger.record_tax_record(payment(number), provenance=API).applied
        ledger.assess_resident_year(pid, 2025, provenance=API)
        kept = list(ledger.snapshots.recorder.select_events(pid))
        assert [r.originator_version for r in kept] == [4]
        (current,) = ledger.snapshots.get(pid)
        assert current.state["class_version"] == Person.class_version == 2
        assert current.mutate(None).__dict__ == replayed(ledger, pid).__dict__
        assert_one_fold(ledger.get_person(pid), list(ledger.events.get(pid)))
    finally:
        system.close()


def test_the_audit_notes_a_snapshot_of_the_older_shape_without_calling_it_a_discrepancy(tmp_path):
    from entrypoints.audit.verify import verify_person

    system = bootstrap(Settings(persistence="sqlite", sqlite_path=str(tmp_path / "ledger.sqlite"), id_key=b"k"))
    ledger = system.ledger
    try:
        pid = enroll_resident(ledger, resident_id(2)).person_id
        ledger.snapshots.put([_old_shape_snapshot(ledger, pid)])
        check = verify_person(ledger, pid)
        assert check.clean, check.findings
        assert any("older shape" in note for note in check.notes), check.notes
    finally:
        system.close()


def test_the_snapshot_rows_give_back_the_same_history_refunds_and_reversals_included(busy):
    """The aggregate's snapshot holds its history as rows (about half the bytes of the plain form): they read
    back equal, and a snapshot of another shape of the history's classes is never read."""
    from ledger.domain.history import STATE_SHAPE, history_from_rows, history_to_rows

    ledger, pid, events = busy
    h = fold_many(None, events)
    assert any(p.refunds for p in h.payments.values()) and any(p.reversal for p in h.payments.values())
    assert history_from_rows(history_to_rows(h)) == h
    ledger.take_snapshot(pid)
    (stored,) = ledger.snapshots.get(pid)
    assert stored.mutate(None).__dict__ == replayed(ledger, pid).__dict__ == ledger.get_person(pid).__dict__
    person = transfer_props._new_person(5_000, 3)
    person.collect_events()
    snapshot = Person.Snapshot.take(person)
    assert snapshot.state["shape"] == STATE_SHAPE and Person.Snapshot.is_current(snapshot)
    assert snapshot.mutate(None).__dict__ == person.__dict__
    other = Person.Snapshot(originator_id=snapshot.originator_id, originator_version=snapshot.originator_version,
                            timestamp=snapshot.timestamp, topic=snapshot.topic,  # type: ignore[call-arg]
                            state={**snapshot.state, "shape": "a-field-since-added"})
    assert not Person.Snapshot.is_current(other)
    with pytest.raises(StaleSnapshot):
        other.mutate(None)
