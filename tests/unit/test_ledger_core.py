"""The ledger core, read as the business: register, enroll, assess, pay, subsidise, refund, transfer.

Runs on the in-memory event store; the same application runs on SQLite and
PostgreSQL (see tests/integration/test_ledger_postgres.py).
"""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.chain import GENESIS_HASH, event_digest
from ledger.domain.errors import Conflict, DomainError, NotFound
from ledger.domain.identity import make_resident_id
from ledger.domain.vocabulary import Scheme
from ledger.inbound_records import Provenance, ResidentRecord, StatusRecord, TaxPaymentRecord

HANBIN = "610902"
GRID = "610902100001"
API = Provenance(source="api", user="clerk01", request_id="req-1")
FEED = Provenance(source="kafka", topic="tax.payments.v1", partition=0, offset=7)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture()
def ledger():
    system = bootstrap(Settings(persistence="memory", id_key=b"test-key"))
    yield system.ledger
    system.close()


def resident_id(seq: int = 1, birth: date = date(1980, 5, 17)) -> str:
    return make_resident_id(HANBIN, birth, seq)


def enroll_resident(ledger, id_number: str, *, grid: str = GRID, on: date = date(2024, 9, 10)):
    return ledger.enroll(
        id_type="RESIDENT_ID", id_number=id_number, name="王芳", scheme="RESIDENT",
        region_code=HANBIN, grid_code=grid, effective_date=on, provenance=API,
    )


def payment(id_number: str, voucher: str = "V0001", amount_fen: int = 40000, **over) -> TaxPaymentRecord:
    fields = dict(
        voucher_no=voucher, tax_office="16109020000", id_type="RESIDENT_ID", id_number=id_number, name="王芳",
        region_code=HANBIN, levy_item="RESIDENT", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
        amount_fen=amount_fen, paid_at=utc(2024, 10, 8, 9, 30), credited_on=date(2024, 10, 9), channel="APP",
    )
    fields.update(over)
    return TaxPaymentRecord(**fields)


def status(id_number: str, category: str, *, record_id: str = "MZ-1", granted: bool = True, **over) -> StatusRecord:
    fields = dict(
        record_id=record_id, id_type="RESIDENT_ID", id_number=id_number, name="王芳", category=category,
        granted=granted, valid_from=date(2024, 1, 1), valid_to=None, department="汉滨区民政局",
        document_no=f"汉民发〔2024〕{record_id}",
    )
    fields.update(over)
    return StatusRecord(**fields)


def events_of(ledger, person_id):
    return list(ledger.events.get(person_id))


def replayed(ledger, person_id):
    """The person folded from their stored events alone (no snapshot)."""
    person = None
    for ev in events_of(ledger, person_id):
        person = ev.mutate(person)
    return person


def save_assessment_then_move_on(ledger, person_id):
    """Save the person's 2025 assessment, then trigger (never save) the 2026 one; returns the person and
    the processing event of that save, as ``Ledger._take_snapshots`` would see it after the person moved on."""
    from eventsourcing.application import ProcessingEvent

    person = ledger.get_person(person_id)
    person.assess_resident_year(table=ledger.policies.get("610902", 2025), effective_date=date(2024, 9, 1),
                                provenance=API.as_dict())
    saved = person.collect_events()
    ledger.events.put(saved)
    person.assess_resident_year(table=ledger.policies.get("610902", 2026), effective_date=date(2025, 9, 1),
                                provenance=API.as_dict())  # triggered, never saved
    processing_event = ProcessingEvent(None)
    processing_event.events.extend(saved)
    processing_event.aggregates[person_id] = person
    return person, processing_event


# ------------------------------------------------------------------ identity & registration
def test_registration_keeps_the_raw_number_and_derives_birth_and_sex(ledger):
    number = resident_id(seq=13)
    outcome = enroll_resident(ledger, number)
    person = ledger.get_person(outcome.person_id)
    assert person.id_number == number
    assert person.birth_date == date(1980, 5, 17)
    assert person.sex == "M"  # odd sequence
    registered = events_of(ledger, outcome.person_id)[0]
    assert registered.id_number == number and registered.prev_hash == GENESIS_HASH


def test_person_id_is_a_keyed_hash_not_the_number(ledger):
    number = resident_id()
    pid = ledger.person_id("RESIDENT_ID", number)
    assert pid == ledger.person_id("RESIDENT_ID", number.lower())
    assert number not in str(pid)
    other = bootstrap(Settings(persistence="memory", id_key=b"another-deployment")).ledger
    assert other.person_id("RESIDENT_ID", number) != pid


@pytest.mark.parametrize(
    ("number", "code"),
    [("110105194912310021", "ID_CHECKSUM"), ("110105194902300020", "ID_BIRTH_DATE"), ("11010519491231", "ID_FORMAT")],
)
def test_bad_id_numbers_are_refused_and_nothing_is_written(ledger, number, code):
    with pytest.raises(DomainError) as err:
        ledger.enroll(id_type="RESIDENT_ID", id_number=number, name="x", scheme="RESIDENT", region_code=HANBIN,
                      effective_date=date(2024, 9, 1), provenance=API)
    assert err.value.code == code
    assert number not in err.value.message
    assert ledger.recorder.max_notification_id() in (None, 0)


# ------------------------------------------------------------------ enrollment rules
def test_unknown_region_is_refused(ledger):
    with pytest.raises(DomainError) as err:
        ledger.enroll(id_type="RESIDENT_ID", id_number=resident_id(), name="x", scheme="RESIDENT",
                      region_code="110105", effective_date=date(2024, 9, 1), provenance=API)
    assert err.value.code == "REGION_UNKNOWN"


def test_one_enrollment_at_a_time_and_duplicates_are_flagged(ledger):
    number = resident_id()
    pid = enroll_resident(ledger, number).person_id
    with pytest.raises(Conflict) as err:
        enroll_resident(ledger, number)
    assert err.value.code == "ALREADY_ENROLLED"
    with pytest.raises(Conflict) as err:  # another region: the transfer procedure, not a second enrollment
        ledger.enroll(id_type="RESIDENT_ID", id_number=number, name="王芳", scheme="EMPLOYEE", region_code="610921",
                      employer_id="91610900MA123", effective_date=date(2025, 3, 1), provenance=API)
    assert err.value.code == "ENROLLED_ELSEWHERE" and "转移接续" in err.value.message
    assert ledger.get_person(pid).version == 2  # nothing written
    ledger.enroll(id_type="RESIDENT_ID", id_number=number, name="王芳", scheme="EMPLOYEE", region_code=HANBIN,
                  employer_id="91610900MA123", effective_date=date(2025, 3, 1), provenance=API)
    person = ledger.get_person(pid)
    assert person.has_duplicate_enrollment
    assert person.enrollments[1].duplicate_of == person.enrollments[0].enrollment_id
    ledger.end_enrollment(pid, reason="DUPLICATE_RESOLVED", enrollment_id=person.enrollments[1].enrollment_id,
                          effective_date=date(2025, 3, 5), provenance=API)
    assert not ledger.get_person(pid).has_duplicate_enrollment


def test_employee_enrollment_needs_an_employer_unless_flexible(ledger):
    with pytest.raises(DomainError) as err:
        ledger.enroll(id_type="RESIDENT_ID", id_number=resident_id(), name="x", scheme="EMPLOYEE",
                      region_code=HANBIN, effective_date=date(2025, 1, 1), provenance=API)
    assert err.value.code == "EMPLOYER_REQUIRED"
    ok = ledger.enroll(id_type="RESIDENT_ID", id_number=resident_id(), name="x", scheme="EMPLOYEE", flexible=True,
                       region_code=HANBIN, effective_date=date(2025, 1, 1), provenance=API)
    assert ok.applied


# ------------------------------------------------------------------ assessment & subsidies
def test_assessment_records_the_policy_version(ledger):
    pid = enroll_resident(ledger, resident_id()).person_id
    ledger.assess_resident_year(pid, 2025, provenance=API)
    a = ledger.get_person(pid).assessments["2025"]
    table = ledger.policies.get(HANBIN, 2025)
    assert a.due_fen == a.standard_fen == table.resident.individual_share_fen
    assert a.policy_version == table.policy_version
    again = ledger.assess_resident_year(pid, 2025, provenance=API)
    assert not again.applied  # nothing changed, nothing recorded


def test_year_outside_the_policy_tables_is_refused(ledger):
    pid = enroll_resident(ledger, resident_id()).person_id
    with pytest.raises(NotFound) as err:
        ledger.assess_resident_year(pid, 2031, provenance=API)
    assert err.value.code == "POLICY_YEAR_UNKNOWN"


def test_most_generous_subsidy_applies_never_the_sum(ledger):
    number = resident_id()
    pid = enroll_resident(ledger, number).person_id
    ledger.assess_resident_year(pid, 2025, provenance=API)
    ledger.apply_status(status(number, "MIN_LIVING", record_id="MZ-1"), provenance=FEED)
    partial = ledger.get_person(pid).assessments["2025"]
    assert partial.subsidy_category == "MIN_LIVING"
    assert 0 < partial.subsidy_fen < partial.standard_fen
    ledger.apply_status(status(number, "EXTREME_POVERTY", record_id="MZ-2"), provenance=FEED)
    full = ledger.get_person(pid).assessments["2025"]
    assert full.subsidy_category == "EXTREME_POVERTY"
    assert full.subsidy_fen == full.standard_fen and full.due_fen == 0


def test_unknown_subsidy_category_is_refused(ledger):
    with pytest.raises(DomainError) as err:
        ledger.apply_status(status(resident_id(), "VERY_POOR"), provenance=FEED)
    assert err.value.code == "SUBSIDY_CATEGORY_UNKNOWN"


def test_subsidy_after_full_payment_creates_an_overpayment_not_a_negative_due(ledger):
    number = resident_id()
    pid = enroll_resident(ledger, number).person_id
    ledger.assess_resident_year(pid, 2025, provenance=API)
    ledger.record_tax_record(payment(number), provenance=FEED)
    ledger.apply_status(status(number, "ORPHAN"), provenance=FEED)
    person = ledger.get_person(pid)
    assert person.assessments["2025"].due_fen == 0
    assert person.paid_fen_for("2025") - person.assessments["2025"].due_fen == 40000  # owed back


def test_revocation_reassesses_the_touched_year(ledger):
    number = resident_id()
    pid = enroll_resident(ledger, number).person_id
    ledger.apply_status(status(number, "EXTREME_POVERTY", record_id="G1"), provenance=FEED)
    ledger.assess_resident_year(pid, 2025, provenance=API)
    assert ledger.get_person(pid).assessments["2025"].due_fen == 0
    revoke = status(number, "EXTREME_POVERTY", record_id="R1", granted=False, valid_from=date(2024, 12, 1),
                    grant_id="汉民发〔2024〕G1")
    ledger.apply_status(revoke, provenance=FEED)
    assert ledger.get_person(pid).assessments["2025"].subsidy_fen == 0


# ------------------------------------------------------------------ payments
def test_payment_from_an_unknown_person_registers_and_enrolls_them(ledger):
    number = resident_id(seq=22)
    outcome = ledger.record_tax_record(payment(number), provenance=FEED)
    person = ledger.get_person(outcome.person_id)
    assert person.active_enrollment.channel == "TAX_PAYMENT"
    assert person.paid_fen_for("2025") == 40000


def test_same_voucher_twice_is_a_no_op_that_says_so(ledger):
    number = resident_id()
    first = ledger.record_tax_record(payment(number), provenance=FEED)
    before = len(events_of(ledger, first.person_id))
    second = ledger.record_tax_record(payment(number), provenance=FEED)
    assert first.applied and not second.applied
    assert "already recorded" in second.message
    assert len(events_of(ledger, first.person_id)) == before


def test_same_voucher_with_different_content_is_a_conflict_kept_for_reconciliation(ledger):
    number = resident_id()
    ledger.record_tax_record(payment(number), provenance=FEED)
    with pytest.raises(Conflict) as err:
        ledger.record_tax_record(payment(number, amount_fen=38000), provenance=FEED)
    assert err.value.code == "VOUCHER_CONFLICT"
    record = ledger.source_record("tax-voucher", "16109020000|V0001")
    assert len(record.conflicts) == 1 and record.conflicts[0]["summary"]["amount_fen"] == "38000"
    # The same voucher under another person's ID is a conflict too.
    with pytest.raises(Conflict):
        ledger.record_tax_record(payment(resident_id(seq=3)), provenance=FEED)


@pytest.mark.parametrize(("amount", "code"), [(400.0, "AMOUNT_NOT_INTEGER_FEN"), ("40000", "AMOUNT_NOT_INTEGER_FEN"),
                                             (-100, "AMOUNT_NOT_POSITIVE"), (0, "AMOUNT_NOT_POSITIVE"),
                                             (True, "AMOUNT_NOT_INTEGER_FEN")])
def test_payments_only_in_positive_integer_fen(ledger, amount, code):
    with pytest.raises(DomainError) as err:
        ledger.record_tax_record(payment(resident_id(), amount_fen=amount), provenance=FEED)
    assert err.value.code == code
    assert ledger.recorder.max_notification_id() in (None, 0)  # not even the registration


def test_period_outside_the_policy_is_refused(ledger):
    with pytest.raises(DomainError) as err:
        ledger.record_tax_record(
            # 2028: inside the plausible window (to the end of the year after the last table, 2027), no table yet
            payment(resident_id(), period_start=date(2028, 1, 1), period_end=date(2028, 12, 31)), provenance=FEED
        )
    assert err.value.code == "PERIOD_OUTSIDE_POLICY"


def test_refunds_and_reversals_point_at_an_existing_voucher_and_never_exceed_it(ledger):
    number = resident_id()
    pid = ledger.record_tax_record(payment(number), provenance=FEED).person_id
    refund = payment(number, voucher="R0001", amount_fen=10000, kind="REFUND", original_voucher_no="V0001")
    ledger.record_tax_record(refund, provenance=FEED)
    assert ledger.get_person(pid).paid_fen_for("2025") == 30000
    with pytest.raises(DomainError) as err:
        ledger.record_tax_record(payment(number, voucher="R0002", amount_fen=30001, kind="REFUND",
                                         original_voucher_no="V0001"), provenance=FEED)
    assert err.value.code == "REFUND_EXCEEDS_PAID"
    with pytest.raises(DomainError) as err:
        ledger.record_tax_record(payment(number, voucher="R0003", amount_fen=1, kind="REFUND",
                                         original_voucher_no="NOPE"), provenance=FEED)
    assert err.value.code == "REFUND_UNKNOWN_VOUCHER"
    with pytest.raises(DomainError) as err:
        ledger.record_tax_record(payment(number, voucher="C0001", amount_fen=40000, kind="REVERSAL",
                                         original_voucher_no="V0001"), provenance=FEED)
    assert err.value.code == "REVERSAL_AMOUNT_MISMATCH"
    ledger.record_tax_record(payment(number, voucher="C0002", amount_fen=30000, kind="REVERSAL",
                                     original_voucher_no="V0001"), provenance=FEED)
    assert ledger.get_person(pid).paid_fen_for("2025") == 0
    with pytest.raises(DomainError) as err:
        ledger.record_tax_record(payment(number, voucher="R0004", amount_fen=1, kind="REFUND",
                                         original_voucher_no="V0001"), provenance=FEED)
    assert err.value.code == "REFUND_OF_REVERSED"


def test_refund_for_an_unknown_person_is_not_found(ledger):
    with pytest.raises(NotFound) as err:
        ledger.record_tax_record(payment(resident_id(), voucher="R9", kind="REFUND", original_voucher_no="V1"),
                                 provenance=FEED)
    assert err.value.code == "PERSON_NOT_FOUND"


def test_batch_records_many_persons_and_reports_bad_rows_individually(ledger):
    good = [(payment(resident_id(seq=i), voucher=f"B{i:04d}"), FEED) for i in range(1, 30)]
    bad = (payment(resident_id(seq=40), voucher="BAD1", amount_fen=-5), FEED)
    dup = good[3]
    outcomes = ledger.record_tax_records([*good[:10], bad, *good[10:], dup])
    assert [o.applied for o in outcomes[:10]] == [True] * 10
    assert outcomes[10].error.code == "AMOUNT_NOT_POSITIVE"
    assert all(o.applied for o in outcomes[11:-1])
    assert not outcomes[-1].applied and outcomes[-1].error is None  # the resend
    assert ledger.get_person(outcomes[0].person_id).paid_fen_for("2025") == 40000


# ------------------------------------------------------------------ transfers & account
def test_transfer_out_needs_an_active_enrollment_and_carries_the_balance(ledger):
    number = resident_id()
    pid = ledger.enroll(id_type="RESIDENT_ID", id_number=number, name="王芳", scheme="EMPLOYEE",
                        employer_id="91610900MA123", region_code=HANBIN, effective_date=date(2024, 1, 1),
                        provenance=API).person_id
    ledger.credit_account(pid, amount_fen=12345, reason="CONTRIBUTION", reference="2024-01",
                          effective_date=date(2024, 2, 1), provenance=API)
    ledger.transfer_out(pid, transfer_id="T1", counterpart_region="610921", effective_date=date(2025, 6, 30),
                        provenance=API)
    person = ledger.get_person(pid)
    out = [e for e in events_of(ledger, pid) if type(e).__name__ == "TransferOutCompleted"][0]
    assert out.account_balance_fen == 12345 and person.account_balance_fen == 0
    assert person.active_enrollment is None
    assert [e.suspended_by for e in person.suspended_enrollments] == ["T1"]  # 中止 while the transfer is open
    # (the history marks it stopped as of the out date, as coverage reads it; a cancellation resumes it)
    assert person.enrollments[0].end_date == date(2025, 6, 30) and person.transfers["T1"].status == "OUT_COMPLETED"
    with pytest.raises(DomainError) as err:
        ledger.transfer_out(pid, transfer_id="T2", counterpart_region="610921", effective_date=date(2025, 7, 1),
                            provenance=API)
    assert err.value.code == "TRANSFER_NOT_ACTIVE"
    ledger.transfer_in(id_type="RESIDENT_ID", id_number=number, name="王芳", transfer_id="T1",
                       counterpart_region=HANBIN, scheme="EMPLOYEE", employer_id="91610921XX", region_code="610921",
                       effective_date=date(2025, 7, 8), provenance=API)
    person = ledger.get_person(pid)
    assert person.account_balance_fen == 12345 and person.contribution_months == 0
    assert person.transfers["T1"].completed_on == date(2025, 7, 8)
    assert person.transfers["T1"].status == "DONE"
    assert person.enrollments[0].end_date == date(2025, 6, 30)
    assert person.enrollments[0].end_reason == "TRANSFERRED_OUT"
    assert person.active_enrollment.region_code == "610921"
    assert person.active_enrollment.start_date == date(2025, 7, 8)  # an employee transfer: when the in half completes


def test_account_debits_never_overdraw_and_family_aid_names_the_relative(ledger):
    pid = enroll_resident(ledger, resident_id()).person_id
    ledger.credit_account(pid, amount_fen=5000, reason="CONTRIBUTION", reference="x", effective_date=date(2025, 1, 1),
                          provenance=API)
    with pytest.raises(DomainError) as err:
        ledger.debit_account(pid, amount_fen=5001, reason="MEDICAL_EXPENSE", reference="y",
                             effective_date=date(2025, 1, 2), provenance=API)
    assert err.value.code == "ACCOUNT_INSUFFICIENT"
    with pytest.raises(DomainError) as err:
        ledger.debit_account(pid, amount_fen=100, reason="FAMILY_MUTUAL_AID", reference="y",
                             effective_date=date(2025, 1, 2), provenance=API)
    assert err.value.code == "RELATIVE_REQUIRED"
    ledger.debit_account(pid, amount_fen=100, reason="FAMILY_MUTUAL_AID", reference="y", effective_date=date(2025, 1, 2),
                         provenance=API, relative_person_id="some-person", relative_relationship="CHILD")
    assert ledger.get_person(pid).account_balance_fen == 4900


# ------------------------------------------------------------------ residence
def test_a_death_ends_the_enrollment_and_blocks_new_ones(ledger):
    number = resident_id()
    pid = enroll_resident(ledger, number).person_id
    rec = ResidentRecord(record_id="HJ-9", id_type="RESIDENT_ID", id_number=number, name="王芳", grid_code=None,
                         status="DECEASED", effective_date=date(2025, 4, 2))
    ledger.apply_residence(rec, provenance=FEED)
    person = ledger.get_person(pid)
    assert person.active_enrollment is None and person.enrollments[0].end_reason == "DIED"
    assert not ledger.apply_residence(rec, provenance=FEED).applied  # the same registry record again
    with pytest.raises(DomainError) as err:
        enroll_resident(ledger, number)
    assert err.value.code == "PERSON_DECEASED"


# ------------------------------------------------------------------ the envelope & the chain
def test_every_event_carries_the_envelope_and_chains_to_the_previous(ledger):
    number = resident_id()
    pid = enroll_resident(ledger, number).person_id
    ledger.assess_resident_year(pid, 2025, provenance=API)
    ledger.record_tax_record(payment(number), provenance=FEED)
    events = events_of(ledger, pid)
    assert len(events) == 4
    assert len({e.event_id for e in events}) == 4
    for prev, ev in zip(events, events[1:]):
        assert ev.prev_hash == event_digest(prev)
    paid = events[-1]
    assert paid.provenance == {"source": "kafka", "topic": "tax.payments.v1", "partition": "0", "offset": "7"}
    assert paid.effective_date == date(2024, 10, 8) and paid.timestamp.tzinfo is not None
    assert ledger.get_person(pid).chain_head == event_digest(paid)


def test_a_new_events_digest_is_taken_when_read_and_is_the_same(ledger):
    """A triggered event's chain head is computed lazily (PendingDigest): same value, same chain."""
    import copy
    import pickle

    from ledger.domain.person import PendingDigest

    number = resident_id()
    pid = enroll_resident(ledger, number).person_id
    person = ledger.get_person(pid)
    person.record_payment(
        voucher_no="V9", tax_office="16109020000", levy_item=Scheme.RESIDENT, region_code="610902",
        amount_fen=40000, period_start=date(2025, 1, 1), period_end=date(2025, 12, 31), paid_at=utc(2024, 10, 8),
        credited_on=None, channel="APP", provenance=FEED.as_dict(), policies=ledger.policies,
    )
    paid = person.pending_events[-1]
    assert type(person.__dict__["chain_head"]) is PendingDigest  # not hashed yet
    assert person.__dict__["chain_head"] == event_digest(paid)  # compares as the digest
    assert copy.deepcopy(person).__dict__["chain_head"] == event_digest(paid)
    assert type(copy.deepcopy(person).__dict__["chain_head"]) is str
    assert pickle.loads(pickle.dumps(person.__dict__["chain_head"])) == event_digest(paid)
    ledger.save(person)
    ledger.take_snapshot(pid)  # a replay: snapshots never see a pending digest
    assert ledger.get_person(pid) == person
    # The next event of the same live person links to it, and reading resolves it for good.
    person.assess_resident_year(table=ledger.policies.get("610902", 2025), effective_date=date(2024, 9, 1),
                                provenance=API.as_dict())
    assert person.pending_events[-1].prev_hash == event_digest(paid)
    assert person.chain_head == event_digest(person.pending_events[-1])
    assert type(person.__dict__["chain_head"]) is str


def test_replayed_state_equals_live_state(ledger):
    number = resident_id()
    pid = enroll_resident(ledger, number).person_id
    ledger.assess_resident_year(pid, 2025, provenance=API)
    ledger.record_tax_record(payment(number), provenance=FEED)
    live = ledger.get_person(pid)
    assert replayed(ledger, pid).__dict__ == live.__dict__


# ------------------------------------------------------------------ snapshots after an assessment
def test_an_assessment_snapshots_the_person_and_loads_start_from_it(ledger):
    """A coverage year's assessment snapshots the person (taken from the live person, in one put):
    the year's payment then loads from that snapshot, and every load equals a full replay."""
    from infra.event_store.batch_load import load_aggregates
    from ledger.domain.person import Person

    number = resident_id()
    pid = enroll_resident(ledger, number).person_id
    assert list(ledger.snapshots.get(pid)) == []  # registered and enrolled: no snapshot yet
    person = ledger.get_person(pid)
    person.record_payment(
        voucher_no="V9", tax_office="16109020000", levy_item=Scheme.RESIDENT, region_code="610902",
        amount_fen=40000, period_start=date(2024, 1, 1), period_end=date(2024, 12, 31), paid_at=utc(2024, 1, 8),
        credited_on=None, channel="APP", provenance=FEED.as_dict(), policies=ledger.policies,
    )
    person.assess_resident_year(table=ledger.policies.get("610902", 2025), effective_date=date(2024, 9, 1),
                                provenance=API.as_dict())
    ledger.save(person)  # payment and assessment in one save: the snapshot is at the person's latest version
    snapshots = list(ledger.snapshots.get(pid))
    assert [(type(s), s.originator_version) for s in snapshots] == [(Person.Snapshot, 4)]
    assert type(snapshots[0].state["chain_head"]) is str  # the pending digest, settled
    assert snapshots[0].state["chain_head"] == event_digest(list(events_of(ledger, pid))[-1])

    folded = replayed(ledger, pid)
    assert snapshots[0].mutate(None).__dict__ == folded.__dict__
    assert ledger.repository.get(pid).__dict__ == folded.__dict__

    # The year's payment: loaded from the snapshot; the chain goes on from the snapshot's head.
    ledger.record_tax_record(payment(number, "V2025", period_start=date(2025, 1, 1),
                                     period_end=date(2025, 12, 31)), provenance=FEED)
    assert [s.originator_version for s in ledger.snapshots.get(pid)] == [4]  # a payment takes none
    folded = replayed(ledger, pid)
    assert ledger.get_person(pid).__dict__ == folded.__dict__
    assert load_aggregates(ledger, [pid])[pid].__dict__ == folded.__dict__

    # The next year's assessment takes another.
    ledger.assess_resident_year(pid, 2026, provenance=API)
    assert [s.originator_version for s in ledger.snapshots.get(pid)] == [4, 6]
    assert ledger.get_person(pid).version == 6


def test_a_person_that_moved_on_since_its_save_is_snapshotted_from_the_store(ledger):
    """The snapshot after an assessment is taken from the saved person only while it is still at the
    version just recorded; a person with a newer (unsaved) event is replayed from the store instead."""
    pid = enroll_resident(ledger, resident_id()).person_id
    person, processing_event = save_assessment_then_move_on(ledger, pid)
    ledger._take_snapshots(processing_event)
    (snapshot,) = ledger.snapshots.get(pid)
    assert snapshot.originator_version == processing_event.events[-1].originator_version == 3
    assert snapshot.mutate(None).__dict__ == replayed(ledger, pid).__dict__
    assert person.version == 4 and ledger.get_person(pid).version == 3


def test_on_sqlite_a_new_assessment_snapshot_drops_the_persons_older_ones(tmp_path):
    """Each assessment's snapshot holds the whole (growing) state: only the latest is kept, per person."""
    system = bootstrap(Settings(persistence="sqlite", sqlite_path=str(tmp_path / "ledger.sqlite"), id_key=b"k"))
    ledger = system.ledger
    try:
        a = enroll_resident(ledger, resident_id(1)).person_id
        b = enroll_resident(ledger, resident_id(2)).person_id
        for year in (2024, 2025, 2026):
            ledger.assess_resident_year(a, year, provenance=API)
        ledger.assess_resident_year(b, 2024, provenance=API)
        assert [s.originator_version for s in ledger.snapshots.get(a)] == [5]
        assert [s.originator_version for s in ledger.snapshots.get(b)] == [3]  # another person's: untouched
        assert ledger.repository.get(a).__dict__ == replayed(ledger, a).__dict__
        assert ledger.repository.get(a, version=4).version == 4  # an older version: replayed from the events
    finally:
        system.close()


def test_on_sqlite_a_snapshot_replayed_from_the_store_drops_the_older_ones_too(tmp_path):
    system = bootstrap(Settings(persistence="sqlite", sqlite_path=str(tmp_path / "ledger.sqlite"), id_key=b"k"))
    ledger = system.ledger
    try:
        pid = enroll_resident(ledger, resident_id(1)).person_id
        ledger.assess_resident_year(pid, 2024, provenance=API)  # snapshot at 3
        _, processing_event = save_assessment_then_move_on(ledger, pid)  # moved on: the snapshot at 4 is replayed
        ledger._take_snapshots(processing_event)
        assert [s.originator_version for s in ledger.snapshots.get(pid)] == [4]
    finally:
        system.close()
