"""The runner: a view built event by event in two halves equals the one built at once; duplicates change nothing."""
from __future__ import annotations

import dataclasses
from datetime import date
from uuid import UUID, uuid4

import pytest

from projections.arrears import ArrearsProjection
from projections.entitlement import EntitlementProjection
from ledger.domain.history import event_type, person_key, ProjectionError
from projections.in_memory import catch_up, rebuild
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
def history(ledger):
    """A busy little ledger: payments, refunds, reversals, subsidies, transfers, employee months, a death."""
    a, b, c, d, e = (number(i) for i in (1, 3, 5, 7, 9))
    pa = enroll(ledger, a, date(2024, 9, 10))
    v = pay_year(ledger, a, 2025, date(2024, 10, 8))
    refund(ledger, a, v, 10000, date(2025, 5, 10))
    pay_year(ledger, a, 2026, date(2026, 2, 10))
    enroll(ledger, b, date(2024, 9, 10))
    grant(ledger, b, "MIN_LIVING", date(2024, 1, 1))
    vb = pay_year(ledger, b, 2025, date(2024, 11, 2), amount_fen=25000)
    reverse(ledger, b, vb, 25000, date(2024, 11, 3))
    pc = enroll(ledger, c, date(2024, 9, 10))
    pay_year(ledger, c, 2025, date(2024, 10, 8))
    ledger.transfer_out(pc, transfer_id="T1", counterpart_region=HANYIN, effective_date=date(2025, 6, 30), provenance=API)
    ledger.transfer_in(id_type="RESIDENT_ID", id_number=c, name="王芳", transfer_id="T1", counterpart_region="610902",
                       account_balance_fen=0, contribution_months=0, scheme="RESIDENT", region_code=HANYIN,
                       effective_date=date(2025, 7, 8), provenance=API)
    pd = enroll(ledger, d, date(2025, 1, 1), scheme="EMPLOYEE", employer_id="91610902AA")
    ledger.assess_employee_month(pd, "2025-03", declared_base_fen=500000, provenance=API, effective_date=date(2025, 3, 1))
    ledger.record_tax_record(tax(d, "E1", amount_fen=20000, paid_on=date(2025, 4, 10), levy_item="EMPLOYEE",
                                 period=(date(2025, 3, 1), date(2025, 3, 31))), provenance=API)
    enroll(ledger, e, date(2025, 9, 10))
    residence(ledger, e, "DECEASED", date(2026, 1, 15))
    ledger.credit_account(pa, amount_fen=100, reason="CORRECTION", reference="r", effective_date=date(2025, 1, 2),
                          provenance=API)
    return log_events(ledger)


def projections_for(ledger):
    return [EntitlementProjection(ledger.policies), ArrearsProjection(ledger.policies)]


def test_the_log_holds_other_aggregates_and_they_are_skipped(ledger, history):
    persons = {person_key(e) for e in history} - {None}
    assert any(event_type(e) is None for e in history)  # SourceRecord index events
    views = rebuild(history, projections_for(ledger))
    assert set(views["entitlement"]) == set(views["arrears"]) == persons and len(persons) == 5


def test_two_halves_equal_one_go(ledger, history):
    projections = projections_for(ledger)
    whole = rebuild(history, projections)
    for split in (1, len(history) // 3, len(history) // 2, len(history) - 1):
        first = rebuild(history[:split], projections)
        snapshot = rebuild(history[:split], projections)
        assert catch_up(first, history[split:], projections) == whole
        assert catch_up(first, history[split:], projections, batch_size=1) == whole  # strictly event by event
        assert first == snapshot  # catch_up returned new views; the old ones are unchanged


def test_applying_any_event_twice_changes_nothing(ledger, history):
    projections = projections_for(ledger)
    whole = rebuild(history, projections)
    assert rebuild([e for e in history for _ in (1, 2)], projections) == whole
    assert catch_up(whole, history, projections) == whole  # the whole stream re-published after a crash
    entitlement = projections[0]
    view = whole["entitlement"]
    for event in history:
        assert entitlement.apply(view, event) is view  # an old event: the very same view comes back


def test_view_level_apply_equals_the_runner(ledger, history):
    entitlement = EntitlementProjection(ledger.policies)
    view = entitlement.initial()
    for event in history:
        view = entitlement.apply(view, event)
    assert view == rebuild(history, [entitlement])["entitlement"]


def test_persons_may_interleave_in_any_order(ledger, history):
    projections = projections_for(ledger)
    person_by_person = sorted((e for e in history if person_key(e)),
                              key=lambda e: (person_key(e), e.originator_version))
    assert rebuild(person_by_person, projections) == rebuild(history, projections)


def envelope(event) -> dict:
    """The consumer envelope of a domain event (as events.ledger_events.record_to_envelope gives it)."""
    renamed = {"originator_id": "person_id", "originator_version": "version", "timestamp": "recorded_at"}
    out = {"event_type": type(event).__name__}
    for f in dataclasses.fields(event):
        if f.name == "originator_topic":
            continue
        value = getattr(event, f.name)
        out[renamed.get(f.name, f.name)] = str(value) if isinstance(value, UUID) else value
    return out


def test_kafka_envelopes_build_the_same_view(ledger, history):
    projections = projections_for(ledger)
    envelopes = [envelope(e) for e in history if event_type(e)]
    assert rebuild(envelopes, projections) == rebuild(history, projections)


def test_a_missing_event_or_a_different_event_at_a_version_is_refused(ledger, history):
    entitlement = EntitlementProjection(ledger.policies)
    person_events = [envelope(e) for e in history if event_type(e)]
    first = person_events[0]
    later = next(e for e in person_events if e["person_id"] == first["person_id"] and e["version"] == 3)
    row = entitlement.apply_row(None, first)
    with pytest.raises(ProjectionError) as err:
        entitlement.apply_row(row, later)
    assert err.value.code == "EVENT_GAP"
    with pytest.raises(ProjectionError) as err:
        entitlement.apply_row(row, {**first, "event_id": str(uuid4())})
    assert err.value.code == "EVENT_MISMATCH"
