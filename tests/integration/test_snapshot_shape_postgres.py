"""A snapshot of the older shape on the real PostgreSQL server (issue 19, one fold of the person).

Snapshots are a cache, never evidence. One stored before the person's state became the typed
history (``Person.class_version`` 1: dicts) is left out by ``Repository.get`` and by the batch
loader (``load_aggregates``, one statement for many persons): both replay the person's events,
the batch path's payment goes on from there, and the next snapshot replaces the old one.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from entrypoints.wiring import System, bootstrap
from infra.event_store.batch_load import load_aggregates
from infra.settings import Settings
from ledger.application import _project_hashing_last
from tests.unit.test_ledger_core import API, enroll_resident, payment, replayed, resident_id
from tests.unit.test_person_one_fold import _old_shape_snapshot, assert_one_fold

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def system(pg_env) -> Iterator[System]:
    s = bootstrap(Settings(persistence="postgres", id_key=b"snapshot-shape-key",
                           postgres={k: v for k, v in pg_env.items() if k.startswith("POSTGRES_")}))
    yield s
    s.close()


def test_an_older_shape_snapshot_is_replayed_over_by_both_loads_and_then_replaced(system, hostile):
    ledger = system.ledger
    number = resident_id(41)
    pid = enroll_resident(ledger, number).person_id
    other = enroll_resident(ledger, resident_id(42)).person_id
    ledger.assess_resident_year(other, 2025, provenance=API)  # a current snapshot, for contrast
    ledger.snapshots.put([_old_shape_snapshot(ledger, pid)])
    assert [r.originator_version for r in ledger.snapshots.recorder.select_events(pid)] == [2]

    loaded = load_aggregates(ledger, [pid, other], projector=_project_hashing_last)
    assert loaded[pid].__dict__ == replayed(ledger, pid).__dict__
    assert loaded[other].__dict__ == replayed(ledger, other).__dict__
    assert ledger.repository.get(pid).__dict__ == replayed(ledger, pid).__dict__
    hostile.attempt("batch-load a person over a snapshot of the older shape", status=None, crashed=False,
                    written=False, leaked=False)

    [outcome] = ledger.record_tax_records([(payment(number), API)])  # the batch path
    assert outcome.applied
    ledger.assess_resident_year(pid, 2025, provenance=API)
    assert [r.originator_version for r in ledger.snapshots.recorder.select_events(pid)] == [4]
    assert_one_fold(ledger.get_person(pid), list(ledger.events.get(pid)))
