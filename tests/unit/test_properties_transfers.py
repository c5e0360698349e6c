"""Conservation of transfers (转移守恒), checked over random transfer histories.

Random sequences of transfer-outs, transfer-ins (matched, with wrong figures, duplicated,
before their out half), external transfer-ins, cancellations, rejections, account
movements and crashes between the halves (a crash: the person is dropped and reloaded
from the events committed so far, the way a restarted process finds it) run against
the Person aggregate's own commands. After every step:

* the balance and contribution months the ledger holds for the person over all regions
  (what the region in force holds plus what is in transit) equal what they were, plus
  exactly what external documents, credits and debits said: an internal transfer never
  creates or loses a fen or a month;
* a refused command triggered no event and changed nothing (no partial write);
* the person rebuilt from its committed events equals the live one.
"""
from __future__ import annotations

import copy
from datetime import date, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain.errors import DomainError
from ledger.domain.person import Person
from ledger.domain.transfers import DONE, OUT_COMPLETED, holdings
from ledger.domain.vocabulary import AccountEntryReason, EnrollmentChannel, Scheme
from ledger.policy.book import default_policy_book

POLICIES = default_policy_book()
INTERNAL = ("610902", "610921", "610922")
EXTERNAL = ("330502", "440305")
TRANSFER_IDS = ("T0", "T1", "T2", "T3", "T4", "T5")
PROV = {"source": "test", "user": "property"}
#: The codes a random history may meet; anything else is a bug.
EXPECTED_REFUSALS = {
    "TRANSFER_EXISTS", "TRANSFER_NOT_ACTIVE", "TRANSFER_SAME_REGION", "TRANSFER_OUT_MISSING", "TRANSFER_MISMATCH",
    "TRANSFER_NOT_OPEN", "TRANSFER_UNKNOWN", "TRANSFER_FIGURES_REQUIRED", "ALREADY_ENROLLED", "ACCOUNT_INSUFFICIENT",
    "ENROLLED_ELSEWHERE",  # e.g. a transfer in from another province while enrolled in another region here
}

fen = st.integers(min_value=0, max_value=500_000)
months = st.integers(min_value=0, max_value=400)
maybe_fen = st.one_of(st.none(), fen)
maybe_months = st.one_of(st.none(), months)
tid = st.sampled_from(TRANSFER_IDS)
internal = st.sampled_from(INTERNAL)

out_step = st.tuples(st.just("out"), tid, st.sampled_from(INTERNAL[1:]))
# The receiving clerk completes the open transfer from the inbox, no figures typed (or a random id).
in_as_sent = st.tuples(st.just("in_as_sent"), st.one_of(st.just(None), tid))
steps = st.one_of(
    out_step, out_step, in_as_sent, in_as_sent, in_as_sent, in_as_sent,
    st.tuples(st.just("out"), tid, internal),
    st.tuples(st.just("in"), tid, internal, internal, st.booleans(), maybe_fen, maybe_months),
    st.tuples(st.just("external"), tid, st.sampled_from(EXTERNAL), internal, fen, months),
    st.tuples(st.just("external"), tid, st.sampled_from(EXTERNAL), internal, maybe_fen, maybe_months),
    st.tuples(st.just("cancel"), st.one_of(st.just(None), tid), st.booleans()),
    st.tuples(st.just("request"), tid, internal),  # asked at the receiving region before the out half
    st.tuples(st.just("credit"), st.integers(min_value=1, max_value=50_000)),
    st.tuples(st.just("debit"), st.integers(min_value=1, max_value=50_000)),
    st.tuples(st.just("crash"),),
    # Both halves back to back, with a crash and reload between them or not.
    st.tuples(st.just("pair"), tid, st.sampled_from(INTERNAL[1:]), st.booleans()),
    st.tuples(st.just("pair"), tid, st.sampled_from(INTERNAL[1:]), st.booleans()),
)


def _new_person(balance: int, paid_months: int) -> Person:
    person = Person.register(
        person_id=uuid4(), id_type="RESIDENT_ID", id_number="610902196607077075", name="李四",
        birth_date=date(1966, 7, 7), sex="M", household_grid=None, effective_date=date(2024, 1, 1), provenance=PROV,
    )
    person.enroll(scheme=Scheme.EMPLOYEE, region_code="610902", grid_code=None, flexible=False,
                  employer_id="91610900MA0001", channel=EnrollmentChannel.COUNTER, effective_date=date(2024, 1, 1),
                  provenance=PROV, policies=POLICIES)
    if balance:
        person.credit_account(amount_fen=balance, reason=AccountEntryReason.CONTRIBUTION, reference="seed",
                              effective_date=date(2024, 1, 2), provenance=PROV)
    if paid_months:
        person.record_payment(
            voucher_no="V-SEED", tax_office="16109020000", levy_item=Scheme.EMPLOYEE, region_code="610902",
            amount_fen=10_000 * paid_months, period_start=date(2024, 1, 1),
            period_end=date(2024, paid_months, 28), paid_at=datetime(2024, 12, 1, tzinfo=timezone.utc),
            credited_on=None, channel="BANK", provenance=PROV, policies=POLICIES,
        )
    return person


def _replay(events: list[Any]) -> Person:
    person = None
    for event in events:
        person = event.mutate(person)
    assert person is not None
    return person


def _state(person: Person) -> dict[str, Any]:
    return copy.deepcopy({
        "balance": person.account_balance_fen, "months": person.contribution_months,
        "transfers": person.transfers, "enrollments": person.enrollments, "version": person.version,
    })


def _run(person: Person, step: tuple[Any, ...], day: date) -> tuple[int, int]:
    """Carry out one step; the change to the holdings it is allowed to make (external documents, account moves)."""
    kind = step[0]
    if kind in ("in_as_sent", "cancel") and step[1] is None:  # the open transfer, if any
        open_ids = [t for t, x in person.transfers.items() if x.status in (OUT_COMPLETED, "REQUESTED")]
        step = (kind, open_ids[0] if open_ids else "T0", *step[2:])
    enroll = {"scheme": Scheme.EMPLOYEE, "grid_code": None, "flexible": False, "employer_id": "91610900MA0002"}
    if kind == "out":
        person.transfer_out(transfer_id=step[1], counterpart_region=step[2], effective_date=day, provenance=PROV)
    elif kind == "in":
        _, t, source, receiving, with_enroll, given_fen, given_months = step
        person.transfer_in(transfer_id=t, counterpart_region=source, region_code=receiving, effective_date=day,
                           account_balance_fen=given_fen, contribution_months=given_months, provenance=PROV,
                           policies=POLICIES, enroll=enroll if with_enroll else None)
    elif kind == "in_as_sent":
        out = person.transfers.get(step[1])
        source = out.region_code if out and out.region_code else "610902"
        receiving = out.counterpart_region if out else "610921"
        person.transfer_in(transfer_id=step[1], counterpart_region=source, region_code=receiving, effective_date=day,
                           provenance=PROV, policies=POLICIES, enroll=enroll)
    elif kind == "external":
        _, t, source, receiving, given_fen, given_months = step
        person.transfer_in(transfer_id=t, counterpart_region=source, region_code=receiving, effective_date=day,
                           account_balance_fen=given_fen, contribution_months=given_months, provenance=PROV,
                           policies=POLICIES, source_document_no=f"{source}-{t}", enroll=enroll)
        return given_fen or 0, given_months or 0
    elif kind == "request":
        current = person.active_enrollment
        person.request_transfer(transfer_id=step[1], sending_region=current.region_code if current else "610902",
                                receiving_region=step[2], effective_date=day, provenance=PROV, policies=POLICIES)
    elif kind == "cancel":
        person.cancel_transfer(transfer_id=step[1], reason="申请人撤回", effective_date=day, provenance=PROV,
                               rejected=step[2])
    elif kind == "credit":
        person.credit_account(amount_fen=step[1], reason=AccountEntryReason.CONTRIBUTION, reference="c",
                              effective_date=day, provenance=PROV)
        return step[1], 0
    elif kind == "debit":
        person.debit_account(amount_fen=step[1], reason=AccountEntryReason.MEDICAL_EXPENSE, reference="d",
                             effective_date=day, provenance=PROV)
        return -step[1], 0
    return 0, 0


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(balance=st.integers(min_value=0, max_value=300_000), paid_months=st.integers(min_value=0, max_value=12),
       history=st.lists(steps, min_size=1, max_size=14))
def test_transfers_never_create_or_lose_balance_or_months(balance, paid_months, history):
    person = _new_person(balance, paid_months)
    committed = person.collect_events()
    expected_fen, expected_months = holdings(person)
    assert (expected_fen, expected_months) == (balance, paid_months)
    day = date(2025, 1, 6)
    for step in history:
        day += timedelta(days=2)
        if step[0] == "crash":  # the process died between two halves: reload from what was committed
            reloaded = _replay(committed)
            assert _state(reloaded) == _state(person)
            person = reloaded
            continue
        if step[0] == "pair":
            _, t, target, crash = step
            step = ("out", t, target)
            try:
                _run(person, step, day)
            except DomainError as refusal:
                assert refusal.code in EXPECTED_REFUSALS and not person.pending_events, refusal
                person = _replay(committed)
                continue
            committed += person.collect_events()
            assert holdings(person) == (expected_fen, expected_months)
            if crash:
                person = _replay(committed)
            day += timedelta(days=1)
            step = ("in_as_sent", t)
        before = _state(person)
        try:
            fen_change, month_change = _run(person, step, day)
        except DomainError as refusal:
            assert refusal.code in EXPECTED_REFUSALS, refusal
            assert not person.pending_events, f"{refusal.code} left a partial write"
            assert _state(person) == before, f"{refusal.code} changed the person"
        else:
            committed += person.collect_events()
            expected_fen += fen_change
            expected_months += month_change
        assert holdings(person) == (expected_fen, expected_months), step
        assert person.account_balance_fen >= 0
        assert len([e for e in person.enrollments if e.end_date is None and not e.suspended_by]) <= 1 or \
            person.has_duplicate_enrollment
    # Every completed internal transfer's halves agree: the in event carried exactly what the out event sent.
    sent = {e.transfer_id: e for e in committed if isinstance(e, Person.TransferOutCompleted)}
    for received in (e for e in committed if isinstance(e, Person.TransferInCompleted) and not e.external):
        out = sent[received.transfer_id]
        assert (received.account_balance_fen, received.contribution_months) == \
            (out.account_balance_fen, out.contribution_months)
    assert _state(_replay(committed)) == _state(person)
    # An open out half leaves the enrollment suspended (中止): marked by the transfer, stopped as of the
    # out date for coverage, never in force; a cancellation resumes it.
    for t in person.transfers.values():
        if t.status == OUT_COMPLETED:
            assert person.enrollment(t.enrollment_id).suspended_by == t.transfer_id
            assert person.enrollment(t.enrollment_id) in person.suspended_enrollments
            assert person.enrollment(t.enrollment_id) not in person.active_enrollments
        if t.status == DONE and not t.external:
            assert person.enrollment(t.enrollment_id).end_reason == "TRANSFERRED_OUT"


def test_sixty_months_transferred_within_the_ledger_stay_sixty():
    """Finding 2 at the domain level: 60 months + one transfer within the ledger = 60, not 120."""
    person = _new_person(50_000, 12)
    person.history.transferred_in_months = 48  # as if 48 months came from earlier transfers
    assert person.contribution_months == 60
    person.transfer_out(transfer_id="T", counterpart_region="610921", effective_date=date(2025, 3, 1),
                        provenance=PROV)
    assert person.contribution_months == 0 and person.account_balance_fen == 0
    person.transfer_in(transfer_id="T", counterpart_region="610902", region_code="610921",
                       effective_date=date(2025, 3, 5), provenance=PROV, policies=POLICIES)
    assert person.contribution_months == 60 and person.account_balance_fen == 50_000
