"""The discrepancy lifecycle as pure steps: found, unchanged, changed, explained, resolved, reopened."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from ledger.domain.errors import DomainError
from reconciliation.compare import reconcile
from reconciliation.lifecycle import explain, plan
from tests.unit.test_reconciliation_support import header, line, row

T0 = datetime(2025, 3, 4, 1, 0, tzinfo=timezone.utc)
STATEMENT = {"kind": "statement", "statement_id": "DZ-1"}


def cause(*_):
    return STATEMENT


def found(amount=40000):
    return reconcile(header(count=1, total=amount), [line(1, 1, amount=amount)], [row(1, amount=35000)]).discrepancies


def records(p):
    return {r.id: r for r in p.records}


def test_found_then_found_again_unchanged_writes_nothing():
    first = plan({}, found(), at=T0, cause=cause)
    (r,) = first.records
    assert (r.state, r.seq, r.first_found_at) == ("OPEN", 1, T0)
    assert [(h.seq, h.action, h.state, h.pointer) for h in first.history] == [(1, "FOUND", "OPEN", STATEMENT)]
    again = plan(records(first), found(), at=T0 + timedelta(days=1), cause=cause)
    assert again.records == [] and again.history == []


def test_changed_figures_are_recorded_and_an_explanation_no_longer_holds():
    first = plan({}, found(), at=T0, cause=cause)
    explained = explain(first.records[0], note="bank fee", user="clerk01", at=T0 + timedelta(hours=1))
    (r,) = explained.records
    assert (r.state, r.note, r.explained_by, r.seq) == ("EXPLAINED", "bank fee", "clerk01", 2)
    changed = plan(records(explained), found(amount=41000), at=T0 + timedelta(hours=2), cause=cause)
    (c,) = changed.records
    assert (c.state, c.delta_fen, c.note, c.seq) == ("OPEN", 6000, "bank fee", 3)
    assert changed.history[0].action == "CHANGED" and "EXPLAINED" in changed.history[0].note


def test_not_found_any_more_is_resolved_with_the_pointer_and_found_again_is_reopened():
    first = plan({}, found(), at=T0, cause=cause)
    pointer = {"kind": "ledger_event", "event_id": "e-9"}
    gone = plan(records(first), [], at=T0 + timedelta(hours=1), cause=lambda *_: pointer)
    (r,) = gone.records
    assert (r.state, r.resolved_by, r.resolved_at) == ("RESOLVED", pointer, T0 + timedelta(hours=1))
    assert plan(records(gone), [], at=T0 + timedelta(hours=2), cause=cause).records == []  # stays resolved, once
    back = plan(records(gone), found(), at=T0 + timedelta(hours=3), cause=cause)
    (b,) = back.records
    assert (b.state, b.resolved_by, b.seq, back.history[0].action) == ("OPEN", None, 3, "REOPENED")


def test_explanations_need_a_note_and_a_user_and_an_unresolved_discrepancy():
    (r,) = plan({}, found(), at=T0, cause=cause).records
    for note, user, code in (("", "clerk01", "NOTE_REQUIRED"), ("why", " ", "USER_REQUIRED")):
        with pytest.raises(DomainError) as err:
            explain(r, note=note, user=user, at=T0)
        assert err.value.code == code
    with pytest.raises(DomainError) as err:
        explain(replace(r, state="RESOLVED"), note="why", user="clerk01", at=T0)
    assert err.value.code == "DISCREPANCY_RESOLVED"
