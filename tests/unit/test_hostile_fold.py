"""A stored history that does not read back as a PersonHistory (a view row written by hand, a torn write).

The view store keeps each person's typed history as plain JSON (``history_to_plain``).
A row that is not of that shape must be that person's problem alone: the runner
quarantines them (and rebuilds them from their events once released), everyone else's
views are written; a read of that person answers 409 ``PERSON_QUARANTINED``, not 500.
"""
from __future__ import annotations

from datetime import date

import pytest

from ledger.domain.errors import Conflict
from projections.queries import ViewQueries
from projections.store import HISTORY, ROWS
from tests.unit.projection_support import ledger, number, pay_year  # noqa: F401  (fixture)
from tests.unit.test_hostile_quarantine import (  # noqa: F401  (fixture)
    clean_rebuild,
    runner_for,
    store,
    stored_events,
    three_persons,
)

TAMPERED = {
    "a history of the wrong shape": '{"person_id":"x","version":2}',
    "text that is not JSON": '{"person_id": "x", "ver',
}


def _tamper(store, person_id: str, text: str) -> None:
    with store.transaction():
        store._exec(f"UPDATE {store.name(ROWS)} SET state = {store.param} WHERE projection = {store.param} "
                    f"AND person_id = {store.param}", (text, HISTORY, person_id))


@pytest.mark.parametrize("what", sorted(TAMPERED))
def test_a_tampered_stored_history_quarantines_that_person_alone(ledger, store, hostile, what):
    ids = three_persons(ledger)
    runner_for(ledger, store).run_once()
    _tamper(store, ids["b"], TAMPERED[what])

    # a read of that person: 409 in a clerk's words, not a crash
    with pytest.raises(Conflict) as refused:
        ViewQueries(store, ledger.policies).entitlement(ids["b"], 2025)
    assert refused.value.code == "PERSON_QUARANTINED" and refused.value.http_status == 409
    assert refused.value.details["reason"] in ("HISTORY_UNREADABLE", "JSONDecodeError")

    # new events of everyone: b is quarantined, a and c are applied
    for seq in (1, 3, 5):
        pay_year(ledger, number(seq), 2026, date(2025, 10, 8))
    result = runner_for(ledger, store).run_once()
    (q,) = store.quarantined()
    assert (result.quarantined, q.person_id, q.code) == (1, ids["b"], "VIEW_DERIVATION_FAILED")
    assert store.history(ids["b"]) is None  # withheld, not half-updated
    for key in ("a", "c"):
        assert store.history(ids[key]).version == len(stored_events(ledger, ids[key]))
    hostile.attempt(f"stored history tampered: {what}", status=refused.value.http_status, crashed=False,
                    written=store.history(ids["b"]) is not None, leaked=number(3) in q.message)

    # released by the next runner: b is derived again from all their events, as if nothing had happened
    assert runner_for(ledger, store).run_once().released == 1 and store.quarantined() == []
    assert store.dump() == clean_rebuild(ledger).dump()
