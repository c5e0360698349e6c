"""Property tests: deriving only the years an event touches gives the full derivation's answer (issue 19).

:func:`ledger.domain.coverage.years_touched` names the first resident coverage year a
batch of events may change; :func:`ledger.domain.coverage.derive` with ``previous`` and
``from_year`` keeps the earlier years of the previous answer. For every person of a
simulated county (events split into random batches, as the projection runner gets them)
and for generated command sequences over three coverage years (payments, refunds and
reversals of earlier vouchers, assessments, subsidised statuses, enrollments and their
end, residence, back payments), the incremental answer after each batch must equal a
full ``derive`` of the same history. Deterministic (fixed seeds, ``derandomize``).
"""
from __future__ import annotations

import functools
import random
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.coverage import NO_YEAR, derive, years_touched
from ledger.domain.errors import DomainError
from ledger.domain.history import fold_many, new_history, person_key
from entrypoints.simulation import timeline as feeds
from entrypoints.simulation.county import CountyProfile, generate_county
from projections import projection_runner as projector
from projections.projection_runner import PolicyCache, ProjectionRunner, rebuild
from projections.sources import NotificationLogSource
from projections.store import SQLiteViewStore
from tests.unit.projection_support import (
    API,
    enroll,
    grant,
    log_events,
    number,
    pay_year,
    refund,
    residence,
    reverse,
)


def _per_person(events: list) -> dict[str, list]:
    out: dict[str, list] = {}
    for event in events:
        key = person_key(event)
        if key is not None:
            out.setdefault(key, []).append(event)
    return out


def _check_incrementally(events: list, policies, rng: random.Random) -> int:
    """Fold ``events`` in random batches; after each, the incremental answer must equal the full one.

    Returns how many batches re-derived fewer than every year (so the test shows it exercised reuse)."""
    history, answer, partial = None, None, 0
    i = 0
    while i < len(events):
        batch = events[i:i + rng.choice((1, 1, 1, 2, 3))]
        i += len(batch)
        history = fold_many(history, batch, owned=True)  # as the runner does: parts changed in place
        from_year = years_touched(history, batch)
        incremental = derive(history, policies, previous=answer, from_year=from_year)
        full = derive(history, policies)
        assert incremental == full, (from_year, [type(e).__name__ for e in batch])
        if answer is not None and from_year is not None and any(y < from_year for y in full["years"]):
            partial += 1
        answer = incremental
    return partial


@functools.cache
def _county() -> tuple[object, list, PolicyCache]:
    county = generate_county(seed=20250331, people=250, profile=CountyProfile(street_offices=1, towns=1, townships=1))
    system = bootstrap(Settings(persistence="memory", id_key=b"incremental-tests"))  # kept for the module's tests
    feeds.replay(county.actions, system.ledger)
    return system, log_events(system.ledger), PolicyCache(system.ledger.policies)


def _county_events() -> tuple[list, PolicyCache]:
    _, events, policies = _county()
    return events, policies


def test_a_simulated_county_derived_year_by_year_equals_the_full_derivation():
    events, policies = _county_events()
    persons = _per_person(events)
    assert len(persons) > 200
    rng = random.Random(19)
    partial = sum(_check_incrementally(person_events, policies, rng) for person_events in persons.values())
    assert partial > 0  # some batches kept earlier years: the reuse was exercised, not only full derivations


def test_a_payment_for_a_year_touches_that_year_and_later_ones_and_an_account_movement_none():
    events, _ = _county_events()
    for person_events in _per_person(events).values():
        history = fold_many(None, person_events)
        for event in person_events:
            name = type(event).__name__
            touched = years_touched(history, [event])
            if name == "ContributionPaid" and event.levy_item == "RESIDENT":
                assert touched == event.period_start.year
            elif name in ("AccountCredited", "AccountDebited"):
                assert touched == NO_YEAR
            elif name in ("Enrolled", "SubsidyGranted", "ResidenceRecorded", "Registered"):
                assert touched is None  # unsure: every year


def test_a_runner_following_the_county_in_small_batches_writes_what_a_rebuild_writes(monkeypatch):
    """The runner's memory, the narrowed derivation, the kept gap spells and the upserts give the rebuild's tables."""
    system, _, policies = _county()
    narrowed = []

    def spy(history, events):
        touched = years_touched(history, events)
        narrowed.append(touched is not None)
        return touched

    monkeypatch.setattr(projector, "years_touched", spy)
    live = SQLiteViewStore()
    runner = ProjectionRunner(live, NotificationLogSource(system.ledger, page_size=50), policies, batch_size=37)
    runner.run_once()
    fresh = SQLiteViewStore()
    rebuild(fresh, NotificationLogSource(system.ledger), policies)
    assert any(narrowed) and len(runner._memory) > 200  # persons remembered, some batches narrowed
    assert live.dump() == fresh.dump()


# --------------------------------------------------------------------------- generated command sequences
YEARS = (2024, 2025, 2026)
FIRST_DAY, LAST_DAY = date(2023, 9, 1), date(2027, 3, 31)
days = st.integers(0, (LAST_DAY - FIRST_DAY).days).map(lambda n: FIRST_DAY + timedelta(days=n))
commands = st.lists(st.one_of(
    st.tuples(st.just("pay"), st.sampled_from(YEARS), days, st.sampled_from([40000, 38000, 20000, 1, 90000])),
    st.tuples(st.just("refund"), st.integers(0, 9), st.integers(0, 400), st.integers(1, 20000)),
    st.tuples(st.just("reverse"), st.integers(0, 9), st.integers(0, 400)),
    st.tuples(st.just("assess"), st.sampled_from(YEARS), days),
    st.tuples(st.just("grant"), st.sampled_from(["EXTREME_POVERTY", "MIN_LIVING", "LOW_INCOME_MARGINAL"]), days),
    st.tuples(st.just("enroll"), days),
    st.tuples(st.just("end"), days, st.sampled_from(["DECEASED", "MOVED_OUT", "SCHEME_SWITCH", "TRANSFERRED_OUT"])),
    st.tuples(st.just("residence"), st.sampled_from(["RESIDENT", "MOVED_OUT"]), days),
), min_size=1, max_size=14)


@functools.cache
def _policies():
    system = bootstrap(Settings(persistence="memory", id_key=b"incremental-tests"))
    return PolicyCache(system.ledger.policies)


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(first_enrolled=days, steps=commands, seed=st.integers(0, 1000))
def test_generated_histories_derived_year_by_year_equal_the_full_derivation(first_enrolled, steps, seed):
    system = bootstrap(Settings(persistence="memory", id_key=b"incremental-tests"))
    ledger = system.ledger
    id_number = number(seed % 900 + 1)
    try:
        person_id = enroll(ledger, id_number, first_enrolled)
        vouchers: list[tuple[str, int, date]] = []
        for n, step in enumerate(steps):
            try:
                kind = step[0]
                if kind == "pay":
                    _, year, on, amount = step
                    vouchers.append((pay_year(ledger, id_number, year, on, voucher=f"P{n}", amount_fen=amount), year, on))
                elif kind in ("refund", "reverse") and vouchers:
                    original, year, paid_on = vouchers[step[1] % len(vouchers)]
                    on = paid_on + timedelta(days=step[2])
                    if kind == "refund":
                        refund(ledger, id_number, original, step[3], on, voucher=f"R{n}", year=year)
                    else:
                        reverse(ledger, id_number, original, 1, on, voucher=f"C{n}", year=year)
                elif kind == "assess":
                    ledger.assess_resident_year(person_id, step[1], provenance=API, effective_date=step[2])
                elif kind == "grant":
                    grant(ledger, id_number, step[1], step[2], record_id=f"MZ-{n}")
                elif kind == "enroll":
                    enroll(ledger, id_number, step[1])
                elif kind == "end":
                    ledger.end_enrollment(person_id, reason=step[2], effective_date=step[1], provenance=API)
                elif kind == "residence":
                    residence(ledger, id_number, step[1], step[2], record_id=f"HJ-{n}")
            except (DomainError, AssertionError):
                continue  # refused by the ledger (a rule): nothing written, the sequence goes on
        person_events = _per_person(log_events(ledger))[str(person_id)]
    finally:
        system.close()
    _check_incrementally(person_events, _policies(), random.Random(seed))
    SEEN.update(type(e).__name__ for e in person_events)


SEEN: set[str] = set()


def test_the_generated_sequences_hold_every_kind_of_event_the_rule_distinguishes():
    # Runs after the property test above (file order): the sequences must not all have been refused.
    assert {"ContributionPaid", "ContributionRefunded", "ContributionReversed", "ContributionAssessed",
            "SubsidyGranted", "EnrollmentEnded", "ResidenceRecorded"} <= SEEN, " ".join(sorted(SEEN))


@pytest.mark.parametrize("name", ["AccountCredited", "EnrollmentEnded", "TransferredOut", "Unknown"])
def test_events_other_than_resident_money_are_not_narrowed_except_account_movements(name):
    event = {"event_type": name, "person_id": "p"}
    assert years_touched({"payments": {}}, [event]) == (NO_YEAR if name == "AccountCredited" else None)


def test_a_refund_of_an_unknown_voucher_is_unsure():
    event = {"event_type": "ContributionRefunded", "original_tax_office": "1", "original_voucher_no": "X"}
    assert years_touched(new_history("p-1"), [event]) is None
