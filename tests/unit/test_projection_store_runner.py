"""The projection runner on the SQLite view store, fed by the in-memory ledger's notification log.

Built incrementally (several ``run_once`` with new events in between, small batches)
the stored views equal a rebuild, row by row and table by table, and equal the pure
views of projections.in_memory; a re-delivered event changes nothing; a batch that cannot
be applied writes nothing, not even its position.
"""
from __future__ import annotations

import io
from datetime import date

import pytest

from ledger.policy import PolicyBook
from projections.arrears import ArrearsProjection
from projections.entitlement import EntitlementProjection
from ledger.domain.history import person_key, ProjectionError
from projections.progress import ProgressBar
from projections.projection_runner import PolicyCache, ProjectionRunner, policy_fingerprint, rebuild, stored_rows
from projections.in_memory import rebuild as pure_rebuild
from projections.sources import Batch, NotificationLogSource
from projections.store import ARREARS, ENTITLEMENT, LAYOUT_VERSION, TABLES, SQLiteViewStore, StoreError
from tests.unit.projection_support import (
    API,
    HANYIN,
    enroll,
    grant,
    ledger,  # noqa: F401  (fixture)
    log_events,
    number,
    pay_year,
    refund,
    residence,
    reverse,
    tax,
)


@pytest.fixture()
def store():
    s = SQLiteViewStore(":memory:")
    yield s
    s.close()


def runner_for(ledger, store, batch_size=2000):
    return ProjectionRunner(store, NotificationLogSource(ledger, page_size=7), ledger.policies, batch_size=batch_size)


def pure_views(ledger):
    events = [e for e in log_events(ledger) if person_key(e)]
    return pure_rebuild(events, [EntitlementProjection(ledger.policies), ArrearsProjection(ledger.policies)])


def stored_views(store, ledger):
    persons = list(pure_views(ledger)["entitlement"])
    return stored_rows(store, ledger.policies, persons)


def rebuilt(ledger):
    fresh = SQLiteViewStore(":memory:")
    rebuild(fresh, NotificationLogSource(ledger), ledger.policies, shards=2)
    return fresh


# --- a life in three chapters, the views caught up after each
def chapter_one(ledger):
    a, b = number(1), number(3)
    enroll(ledger, a, date(2024, 9, 10))
    voucher = pay_year(ledger, a, 2025, date(2024, 10, 8))
    enroll(ledger, b, date(2024, 9, 10))
    return a, b, voucher


def chapter_two(ledger, a, b, voucher):
    refund(ledger, a, voucher, 10000, date(2025, 5, 10))
    grant(ledger, b, "MIN_LIVING", date(2024, 1, 1))
    vb = pay_year(ledger, b, 2025, date(2024, 11, 2), amount_fen=25000)
    reverse(ledger, b, vb, 25000, date(2024, 11, 3))
    c = number(5)
    pc = enroll(ledger, c, date(2024, 9, 10))
    pay_year(ledger, c, 2025, date(2024, 10, 8))
    ledger.transfer_out(pc, transfer_id="T1", counterpart_region=HANYIN, effective_date=date(2025, 6, 30),
                        provenance=API)
    return c


def chapter_three(ledger, a, c):
    ledger.transfer_in(id_type="RESIDENT_ID", id_number=c, name="王芳", transfer_id="T1", counterpart_region="610902",
                       account_balance_fen=0, contribution_months=0, scheme="RESIDENT", region_code=HANYIN,
                       effective_date=date(2025, 7, 8), provenance=API)
    d = number(7)
    pd = enroll(ledger, d, date(2025, 1, 1), scheme="EMPLOYEE", employer_id="91610902AA")
    ledger.assess_employee_month(pd, "2025-03", declared_base_fen=500000, provenance=API,
                                 effective_date=date(2025, 3, 1))
    ledger.record_tax_record(tax(d, "E1", amount_fen=20000, paid_on=date(2025, 4, 10), levy_item="EMPLOYEE",
                                 period=(date(2025, 3, 1), date(2025, 3, 31))), provenance=API)
    e = number(9)
    enroll(ledger, e, date(2025, 9, 10))
    residence(ledger, e, "DECEASED", date(2026, 1, 15))
    pay_year(ledger, a, 2026, date(2026, 2, 10))


def test_built_in_steps_with_new_events_in_between_equals_a_rebuild(ledger, store):
    runner = runner_for(ledger, store, batch_size=3)  # many small batches, each its own transaction
    a, b, voucher = chapter_one(ledger)
    first = runner.run_once()
    assert first.batches > 1 and first.positions == {0: ledger.recorder.max_notification_id()}
    c = chapter_two(ledger, a, b, voucher)
    runner.run_once()
    assert runner.run_once().batches == 0  # nothing new: nothing read, nothing written
    chapter_three(ledger, a, c)
    runner.run_once()

    fresh = rebuilt(ledger)
    assert store.dump() == fresh.dump()  # every table, row by row (positions included)
    assert stored_views(store, ledger) == pure_views(ledger)  # and the rows are the pure projections' rows
    counts = store.counts()
    assert counts["view_rows"] == 5 and counts["view_persons"] == 5  # one history row per person
    assert counts["view_coverage_spells"] > 0 and counts["view_arrears_dues"] > 0
    assert store.all_positions() == [(p, "log", 0, ledger.recorder.max_notification_id()) for p in (ARREARS,
                                                                                                      ENTITLEMENT)]


def test_a_rebuild_replaces_the_live_tables(ledger, store):
    a, b, voucher = chapter_one(ledger)
    runner_for(ledger, store).run_once()
    chapter_two(ledger, a, b, voucher)
    result = rebuild(store, NotificationLogSource(ledger), ledger.policies)  # into fresh tables, then swapped in
    assert result.positions == {0: ledger.recorder.max_notification_id()}
    assert stored_views(store, ledger) == pure_views(ledger)
    assert store.dump() == rebuilt(ledger).dump()
    assert {t.name for t in TABLES} <= {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
    assert not [r for r in store.conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '%rebuild%'")]
    # the incremental runner goes on from the rebuilt positions
    chapter_three(ledger, a, number(5))
    runner_for(ledger, store, batch_size=4).run_once()
    assert store.dump() == rebuilt(ledger).dump()


def test_a_duplicate_event_changes_nothing(ledger, store):
    a, b, voucher = chapter_one(ledger)
    chapter_two(ledger, a, b, voucher)
    runner = runner_for(ledger, store)
    runner.run_once()
    before = store.dump()
    events = log_events(ledger)
    position = runner.positions()[0]
    # the whole history delivered again (a publisher re-sending after a crash), twice over
    runner.apply(Batch(events + events, {0: (position, position)}))
    assert store.dump() == before
    changes, seen = runner.person_changes(events)
    assert changes == [] and seen == sum(1 for e in events if person_key(e))


def test_a_batch_that_cannot_be_applied_writes_nothing(ledger, store):
    a, b, voucher = chapter_one(ledger)
    runner = runner_for(ledger, store)
    runner.run_once()
    before = store.dump()
    pay_year(ledger, a, 2026, date(2025, 10, 8))
    chapter_two(ledger, a, b, voucher)
    new = [e for e in log_events(ledger)[before["view_positions"][0][3]:] if person_key(e)]
    position = runner.positions()[0]
    with pytest.raises(ProjectionError) as err:
        runner.apply(Batch(new[1:], {0: (position, position + 50)}))  # the first new event is missing
    assert err.value.code == "EVENT_GAP"
    assert store.dump() == before  # not the rows, not the position
    runner.run_once()
    assert stored_views(store, ledger) == pure_views(ledger)


def test_a_second_runner_on_the_same_store_is_refused(ledger, store):
    a, b, voucher = chapter_one(ledger)
    first = runner_for(ledger, store)
    first.run_once()
    chapter_two(ledger, a, b, voucher)
    stale = first.positions()[0]
    runner_for(ledger, store).run_once()  # someone else caught up meanwhile
    with pytest.raises(StoreError) as err:
        first.apply(Batch([], {0: (stale, stale + 1)}))
    assert err.value.code == "POSITION_MOVED"


def test_the_bulk_phase_splits_the_history_by_person_and_gives_the_same_rows(ledger):
    a, b, voucher = chapter_one(ledger)
    c = chapter_two(ledger, a, b, voucher)
    chapter_three(ledger, a, c)
    one, three = SQLiteViewStore(":memory:"), SQLiteViewStore(":memory:")
    rebuild(one, NotificationLogSource(ledger), ledger.policies, shards=1)
    result = rebuild(three, NotificationLogSource(ledger), ledger.policies, shards=3)
    assert one.dump() == three.dump()
    assert result.events == sum(1 for e in log_events(ledger) if person_key(e)) and result.persons == 5


def test_views_built_with_other_policy_tables_must_be_rebuilt(ledger, store):
    a, b, voucher = chapter_one(ledger)
    runner_for(ledger, store).run_once()
    fewer = PolicyBook({(t.region_code, t.coverage_year): t for t in ledger.policies.tables() if t.coverage_year < 2026})
    stale = ProjectionRunner(store, NotificationLogSource(ledger), fewer)
    with pytest.raises(StoreError) as err:
        stale.run_once()
    assert err.value.code == "VIEWS_OUTDATED" and "ledger project --rebuild" in err.value.message
    rebuild(store, NotificationLogSource(ledger), fewer)
    chapter_two(ledger, a, b, voucher)
    stale.run_once()  # the rebuilt views carry the new tables' fingerprint
    assert store.meta()["policies"] == policy_fingerprint(fewer) != policy_fingerprint(ledger.policies)
    assert store.meta()["layout"] == LAYOUT_VERSION


def test_the_progress_bar_reports_on_stderr_without_a_terminal():
    out = io.StringIO()
    bar = ProgressBar(200, label="rebuild", stream=out)
    for _ in range(200):
        bar.advance()
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1].startswith("rebuild [##############################] 100%  200/200 events")


def test_the_policy_cache_answers_like_the_book(ledger):
    cache = PolicyCache(ledger.policies)
    assert cache.get("610902", 2025) is ledger.policies.get("610902", 2025)
    assert cache.years("610902") == ledger.policies.years("610902")
    for _ in range(2):  # errors are remembered and raised afresh each time
        with pytest.raises(Exception) as err:
            cache.get("610902", 1999)
        assert err.value.code == "POLICY_YEAR_UNKNOWN"
    assert cache.regions() == ledger.policies.regions()
