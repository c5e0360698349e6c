"""The stored history is a base plus appended changes: an event does not rewrite the person's whole history (issue 19).

``view_rows`` holds each person's history as of its last compaction (the base);
``view_history_tail`` one row per later write with what that write changed
(``ledger.domain.history.history_changes``). A read folds base + tail. These tests hold
that the fold of base + tail is the history itself, that a new event leaves the base
row untouched and appends a record whose size does not grow with the history, that the
base is compacted once the tail outgrows it, and that a tampered tail row is that
person's problem alone.
"""
from __future__ import annotations

import random
from datetime import date

import pytest

from ledger.domain.errors import Conflict
from ledger.domain.history import apply_changes, fold_many, history_changes, history_from_plain, history_to_plain
from projections import store as store_module
from projections.row_codec import dumps_row, loads_row
from projections.projection_runner import ProjectionRunner, rebuild
from projections.queries import ViewQueries
from projections.sources import NotificationLogSource
from projections.store import HISTORY, ROWS, TAIL, SQLiteViewStore
from tests.unit.projection_support import enroll, ledger, log_events, number, pay_year, refund  # noqa: F401
from tests.unit.test_hostile_quarantine import stored_events
from tests.unit.test_properties_incremental import _county, _per_person


def _base(store, person_id: str) -> tuple[int, str] | None:
    rows = store._fetch(f"SELECT version, state FROM {store.name(ROWS)} WHERE projection = {store.param} "
                        f"AND person_id = {store.param}", (HISTORY, person_id))
    return (int(rows[0][0]), rows[0][1]) if rows else None


def _tail(store, person_id: str) -> list[tuple[int, str]]:
    return [(int(v), c) for v, c in store._fetch(
        f"SELECT version, changes FROM {store.name(TAIL)} WHERE person_id = {store.param} ORDER BY version",
        (person_id,))]


def _runner(ledger, store):
    return ProjectionRunner(store, NotificationLogSource(ledger), ledger.policies)


def test_every_persons_changes_in_random_batches_applied_to_the_stored_base_give_the_fold():
    """Every event kind a simulated county has, in batches of 1-3 events: base + changes read back = the fold."""
    _, events, _ = _county()
    rng = random.Random(1919)
    kinds: set[str] = set()
    for person_events in _per_person(events).values():
        split = rng.randrange(1, min(3, len(person_events)) + 1)
        base = fold_many(None, person_events[:split])
        stored = history_from_plain(loads_row(dumps_row(history_to_plain(base))))
        history, i = base, split
        while i < len(person_events):
            batch = person_events[i:i + rng.choice((1, 1, 2, 3))]
            i += len(batch)
            new = fold_many(history, batch)  # not in place: ``history`` is what the store holds
            apply_changes(stored, loads_row(dumps_row(history_changes(history, new))))
            history = new
            kinds.update(type(e).__name__ for e in batch)
        assert history_to_plain(stored) == history_to_plain(fold_many(None, person_events))
    assert {"Enrolled", "EnrollmentEnded", "ContributionAssessed", "ContributionPaid", "SubsidyGranted",
            "ResidenceRecorded"} <= kinds, kinds


def test_a_runner_following_in_small_batches_appends_and_reads_back_what_a_rebuild_holds():
    system, _, policies = _county()
    live = SQLiteViewStore()
    ProjectionRunner(live, NotificationLogSource(system.ledger, page_size=50), policies, batch_size=37).run_once()
    fresh = SQLiteViewStore()
    rebuild(fresh, NotificationLogSource(system.ledger), policies)
    raw_live, raw_fresh = live.dump(raw=True), fresh.dump(raw=True)
    assert raw_live[TAIL.name] and not raw_fresh[TAIL.name]  # appended while following; none after a rebuild
    assert raw_live[ROWS.name] != raw_fresh[ROWS.name]  # so the bases differ...
    assert live.dump() == fresh.dump()  # ... and the histories folded from them do not
    pids = [r[1] for r in raw_fresh[ROWS.name]]
    assert live.load_histories(pids) == fresh.load_histories(pids)


def test_a_new_payment_leaves_the_base_row_as_it_was_and_appends_a_record_that_does_not_grow_with_the_history(ledger):
    store = SQLiteViewStore()
    pid = str(enroll(ledger, number(1), date(2024, 1, 1)))
    pay_year(ledger, number(1), 2024, date(2024, 1, 5), voucher="V0000")
    runner = _runner(ledger, store)
    runner.run_once()
    base = _base(store, pid)
    sizes, compactions = [], 0
    for n in range(1, 41):
        pay_year(ledger, number(1), 2024 + n % 3, date(2024, 2, 1), voucher=f"V{n:04d}", amount_fen=100 + n)
        if n % 7 == 0:
            runner = _runner(ledger, store)  # a new runner remembers nothing: the write after a read of the store
        runner.run_once()
        tail = _tail(store, pid)
        if tail:
            assert _base(store, pid) == base  # not rewritten, not even its version column
            sizes.append(len(tail[-1][1]))
        else:  # compacted: the tail had outgrown the base (see the next test)
            compactions += 1
            base = _base(store, pid)
            assert base[0] == store.history(pid).version
    assert 0 < compactions <= 4 and len(sizes) == 40 - compactions  # ever longer tails between compactions
    history = store.history(pid)
    assert history.version == len(stored_events(ledger, pid)) and len(history.payments) == 41
    assert history == fold_many(None, stored_events(ledger, pid))
    assert max(sizes) < 1.2 * min(sizes) < 1000  # the 40th payment's record is the size of the 1st one's
    assert len(_base(store, pid)[1]) > 3 * max(sizes)  # (the whole history would be several times larger)


def test_the_base_is_written_whole_again_once_the_tail_outgrows_it_and_the_tail_rows_go(ledger, monkeypatch):
    monkeypatch.setattr(store_module, "TAIL_MAX_ROWS", 3)
    store = SQLiteViewStore()
    pid = str(enroll(ledger, number(1), date(2024, 1, 1)))
    runner = _runner(ledger, store)
    runner.run_once()
    for n in range(1, 9):
        pay_year(ledger, number(1), 2025, date(2025, 1, 5), voucher=f"V{n}", amount_fen=100 * n)
        runner.run_once()
        base_version, _ = _base(store, pid)
        tail = _tail(store, pid)
        assert len(tail) == n % 4 and [v for v, _ in tail] == list(range(base_version + 1, base_version + 1
                                                                                 + len(tail)))
        assert store.history(pid) == fold_many(None, stored_events(ledger, pid))
    assert store.history_versions([pid]) == {pid: len(stored_events(ledger, pid))}


def test_a_refund_changes_the_payment_it_names_and_the_tail_carries_that_payment_alone(ledger):
    store = SQLiteViewStore()
    pid = str(enroll(ledger, number(1), date(2024, 1, 1)))
    vouchers = [pay_year(ledger, number(1), 2025, date(2025, 1, 5), voucher=f"V{n}") for n in range(5)]
    runner = _runner(ledger, store)
    runner.run_once()
    refund(ledger, number(1), vouchers[2], 1000, date(2025, 2, 1))
    runner.run_once()
    (_, changes), = _tail(store, pid)
    plain = loads_row(changes)
    assert list(plain["payments"]) == [k for k, p in store.history(pid).payments.items() if p.voucher_no == "V2"]
    assert store.history(pid) == fold_many(None, stored_events(ledger, pid))


@pytest.mark.parametrize("text", ['{"version": 99, "event_ids": []}', '{"version": 3, "event_ids": ["x"], "pay'])
def test_a_tampered_tail_row_quarantines_that_person_alone(ledger, hostile, text):
    store = SQLiteViewStore()
    a = str(enroll(ledger, number(1), date(2024, 1, 1)))
    b = str(enroll(ledger, number(3), date(2024, 1, 1)))
    runner = _runner(ledger, store)
    runner.run_once()
    pay_year(ledger, number(3), 2025, date(2025, 1, 5))
    runner.run_once()
    with store.transaction():
        store._exec(f"UPDATE {store.name(TAIL)} SET changes = ? WHERE person_id = ?", (text, b))
    with pytest.raises(Conflict) as refused:
        ViewQueries(store, ledger.policies).entitlement(b, 2025)
    assert refused.value.code == "PERSON_QUARANTINED"
    pay_year(ledger, number(1), 2025, date(2025, 1, 6))
    pay_year(ledger, number(3), 2026, date(2025, 10, 6))
    result = _runner(ledger, store).run_once()  # a new runner: both persons read from the store
    (q,) = store.quarantined()
    assert (result.quarantined, q.person_id) == (1, b) and store.history(b) is None and not _tail(store, b)
    assert store.history(a) == fold_many(None, stored_events(ledger, a))
    hostile.attempt("stored history tail tampered", status=refused.value.http_status, crashed=False,
                    written=store.history(b) is not None, leaked=number(3) in q.message)
    _runner(ledger, store).retry_quarantined()  # released: derived again from all of b's events
    assert store.quarantined() == [] and store.history(b) == fold_many(None, stored_events(ledger, b))


def test_paid_steps_summed_payment_by_payment_give_the_net_paid_by_each_day(ledger):
    """``paid_steps`` (the arrears view's steps, summed from each payment's own steps) = ``paid_by`` on each day."""
    from ledger.domain.arrears import paid_steps
    from ledger.domain.history import paid_by

    _, events, _ = _county()
    enroll(ledger, number(1), date(2024, 1, 1))
    first = pay_year(ledger, number(1), 2025, date(2025, 1, 5), voucher="V1", amount_fen=40000)
    pay_year(ledger, number(1), 2025, date(2025, 1, 5), voucher="V2", amount_fen=300)
    refund(ledger, number(1), first, 1000, date(2025, 1, 5), voucher="R1")  # the payment's own day
    refund(ledger, number(1), first, 500, date(2025, 3, 1), voucher="R2")
    pay_year(ledger, number(1), 2025, date(2025, 2, 1), voucher="V3", amount_fen=700)
    histories = [fold_many(None, e) for e in _per_person(events + log_events(ledger)).values()]
    checked = 0
    for history in histories:
        for period, levy in {(k, p.levy_item) for p in history.payments.values() for k in p.periods}:
            steps = paid_steps(history, period, levy)
            assert steps == [(day, paid_by(history, period, day, levy)) for day, _ in steps]
            changed = {p.paid_on for p in history.payments.values() if period in p.periods and p.levy_item == levy
                       and p.reversal is None}
            assert changed <= {day for day, _ in steps}
            checked += 1
    assert checked > 200
    (mine,) = [fold_many(None, e) for e in _per_person(log_events(ledger)).values()]
    assert paid_steps(mine, "2025", "RESIDENT") == [(date(2025, 1, 5), 39300), (date(2025, 2, 1), 40000),
                                                    (date(2025, 3, 1), 39500)]


def test_a_store_of_the_layout_before_the_tail_must_be_rebuilt_and_the_rebuild_makes_it_current(ledger):
    from projections.store import LAYOUT_VERSION, StoreError

    store = SQLiteViewStore()
    pid = str(enroll(ledger, number(1), date(2024, 1, 1)))
    _runner(ledger, store).run_once()
    with store.transaction():  # what a store written by the version before this one says of itself
        store._set_meta("layout", "2")
    pay_year(ledger, number(1), 2025, date(2025, 1, 5))
    with pytest.raises(StoreError) as outdated:
        _runner(ledger, store).run_once()
    assert outdated.value.code == "VIEWS_OUTDATED" and "ledger project --rebuild" in outdated.value.message
    rebuild(store, NotificationLogSource(ledger), ledger.policies)
    assert store.meta()["layout"] == LAYOUT_VERSION == "3"
    assert store.history(pid) == fold_many(None, stored_events(ledger, pid))


def test_the_changes_carry_every_fact_of_the_history_found_from_its_own_fields():
    """A list or dict of facts added to PersonHistory later is carried by the changes without being named there."""
    from dataclasses import fields

    from ledger.domain.history import _PLAIN, PersonHistory, _layout

    scalars, lists, dicts = _layout()
    names = {f.name for f in fields(PersonHistory)}
    assert names == {"person_id", "version", "event_ids", *scalars, *(n for n, _ in lists), *(n for n, _ in dicts)}
    assert {"residence", "enrollments", "account"} <= {n for n, _ in lists}
    assert {"assessments", "subsidies", "payments", "transfers"} <= {n for n, _ in dicts}
    assert all(isinstance(getattr(PersonHistory("p"), n), (list, dict)) for n, _ in lists + dicts)
    assert "birth_date" in scalars and len(_PLAIN) >= len(lists) + len(dicts)
