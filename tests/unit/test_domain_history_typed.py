"""The person's history is ONE typed state (PersonHistory), folded by one function, stored as plain data.

Built from a real ledger's events (registration, enrollments, payments with a refund and a
reversal, a subsidised status granted and revoked, a transfer out cancelled, an account
credit, a death), so every handler of the fold runs.
"""
from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from ledger.domain.history import (
    Enrollment,
    Payment,
    PersonHistory,
    ProjectionError,
    Transfer,
    fold,
    fold_many,
    history_from_plain,
    history_to_plain,
    paid_by,
    person_key,
    subsidy_statuses,
)
from ledger.domain.person_rules import counts_for_months, payment_share, status_last_day
from ledger.inbound_records import StatusRecord
from projections.row_codec import dumps_row, loads_row
from tests.unit.projection_support import (
    API,
    FEED,
    HANYIN,
    enroll,
    grant,
    ledger,  # noqa: F401  (fixture)
    number,
    pay_year,
    refund,
    residence,
    reverse,
)

#: The keys of each item's plain form before the history was typed (stored views hold them).
LEGACY_ENROLLMENT_KEYS = ["enrollment_id", "scheme", "flexible", "region_code", "grid_code", "employer_id", "channel",
                          "duplicate_of", "start_date", "end_date", "end_reason", "event_id", "end_event_id"]
LEGACY_PAYMENT_KEYS = ["voucher_no", "levy_item", "region_code", "amount_fen", "periods", "period_start", "period_end",
                       "paid_on", "paid_at", "credited_on", "channel", "event_id", "refunds", "reversal"]
LEGACY_HISTORY_KEYS = ["person_id", "version", "event_ids", "registered_event_id", "birth_date", "residence",
                       "enrollments", "assessments", "subsidies", "payments", "transfers", "account",
                       "transferred_in_months"]


@pytest.fixture()
def busy(ledger):
    """(ledger, person id, the person's events): every kind of fact the fold keeps."""
    n = number(11)
    pid = enroll(ledger, n, date(2024, 9, 10))
    v1 = pay_year(ledger, n, 2025, date(2024, 10, 8))
    refund(ledger, n, v1, 10000, date(2025, 5, 10))
    v2 = pay_year(ledger, n, 2026, date(2025, 10, 8), amount_fen=30000)
    reverse(ledger, n, v2, 30000, date(2025, 10, 9), year=2026)
    grant(ledger, n, "MIN_LIVING", date(2025, 1, 1))
    revoke = StatusRecord(record_id="MZ-2", id_type="RESIDENT_ID", id_number=n, name="王芳", category="MIN_LIVING",
                          granted=False, valid_from=date(2025, 7, 1), valid_to=None, department="汉滨区民政局",
                          document_no="汉民发〔2025〕MZ-2", grant_id="汉民发〔2024〕MZ-1")
    assert ledger.apply_status(revoke, provenance=FEED).applied
    ledger.transfer_out(pid, transfer_id="T1", counterpart_region=HANYIN, effective_date=date(2025, 6, 30),
                        provenance=API)
    ledger.cancel_transfer(pid, transfer_id="T1", reason="申请人撤回", effective_date=date(2025, 7, 2), provenance=API)
    ledger.credit_account(pid, amount_fen=100, reason="CORRECTION", reference="r", effective_date=date(2025, 1, 2),
                          provenance=API)
    residence(ledger, n, "DECEASED", date(2026, 1, 15))
    return ledger, pid, list(ledger.events.get(pid))


def test_the_fold_gives_typed_facts_of_every_kind(busy):
    ledger, pid, events = busy
    h = fold_many(None, events)
    assert isinstance(h, PersonHistory) and h.person_id == str(pid) and h.version == len(events)
    assert h.event_ids == [str(e.event_id) for e in events]
    (enrollment,) = h.enrollments
    assert isinstance(enrollment, Enrollment)
    # the cancelled transfer gave the enrollment back (not suspended); the death ended it later
    assert (enrollment.end_date, enrollment.end_reason, enrollment.suspended_by) == (date(2026, 1, 15), "DIED", None)
    transfer = h.transfers["T1"]
    assert isinstance(transfer, Transfer)
    assert (transfer.direction, transfer.status, transfer.closed_reason) == ("OUT", "CANCELLED", "申请人撤回")
    refunded, reversed_ = sorted(h.payments.values(), key=lambda p: p.period_start)
    assert isinstance(refunded, Payment) and [r.amount_fen for r in refunded.refunds] == [10000]
    assert refunded.reversal is None and reversed_.reversal is not None and reversed_.reversal.amount_fen == 30000
    assert paid_by(h, "2025") == 30000 and paid_by(h, "2026") == 0
    assert [(c, f, u) for c, f, u, _ in subsidy_statuses(h)] == [("MIN_LIVING", date(2025, 1, 1), date(2025, 6, 30))]
    assert [(x.amount_fen, x.reason) for x in h.account] == [(100, "CORRECTION")]
    assert [(r.status, r.on) for r in h.residence][-1] == ("DECEASED", date(2026, 1, 15))


def test_plain_form_round_trips_through_the_codec_and_keeps_the_stored_shape(busy):
    _, _, events = busy
    h = fold_many(None, events)
    plain = history_to_plain(h)
    assert list(plain) == LEGACY_HISTORY_KEYS
    assert list(plain["enrollments"][0]) == LEGACY_ENROLLMENT_KEYS  # suspended_by left out while None
    # a payment's voucher office and content digest (the write side's resend check) follow the older keys
    assert all(list(p) == LEGACY_PAYMENT_KEYS + ["tax_office", "content_digest"] for p in plain["payments"].values())
    assert history_from_plain(plain) == h
    assert history_from_plain(loads_row(dumps_row(plain))) == h  # what a view store writes and reads back
    assert dumps_row(history_to_plain(history_from_plain(loads_row(dumps_row(plain))))) == dumps_row(plain)


def test_a_stored_history_written_before_the_two_step_transfer_fields_still_reads():
    plain = {"person_id": "p", "version": 1, "event_ids": ["e1"], "registered_event_id": "e1",
             "birth_date": date(1980, 5, 17), "residence": [], "enrollments": [], "assessments": {}, "subsidies": {},
             "payments": {}, "account": [], "transferred_in_months": 0,
             "transfers": {"T": {"transfer_id": "T", "direction": "IN", "enrollment_id": None,
                                 "counterpart_region": "610921", "account_balance_fen": 0, "contribution_months": 3,
                                 "started_on": date(2025, 1, 2), "completed_on": date(2025, 1, 2),
                                 "out_event_id": None, "in_event_id": "e1"}}}
    h = history_from_plain(plain)
    assert h.transfers["T"].status is None and h.transfers["T"].contribution_months == 3
    assert history_to_plain(h) == plain


def test_an_unreadable_stored_history_is_refused_with_a_code():
    with pytest.raises(ProjectionError) as caught:
        history_from_plain({"person_id": "p", "version": 1})
    assert caught.value.code == "HISTORY_UNREADABLE"


def test_duplicates_return_the_same_object_and_a_fold_never_changes_its_input(busy):
    _, _, events = busy
    head = fold_many(None, events[:3])
    before = history_to_plain(head)
    assert fold_many(head, events[:3]) is head and fold(head, events[2]) is head
    whole = fold_many(head, events[3:])
    assert whole is not head and history_to_plain(head) == before  # the refund, the ends ... changed copies only
    assert whole == fold_many(None, events)
    # one at a time equals all at once; owned (the store's copy handed over) gives the same history
    one_by_one = None
    for event in events:
        one_by_one = fold(one_by_one, event)
    assert one_by_one == whole
    assert fold_many(history_from_plain(history_to_plain(head)), events[3:], owned=True) == whole


def test_a_gap_and_a_mismatch_are_refused_with_their_codes(busy):
    _, _, events = busy
    head = fold_many(None, events[:2])
    with pytest.raises(ProjectionError) as gap:
        fold(head, events[3])
    assert gap.value.code == "EVENT_GAP" and gap.value.details["last_version"] == 2
    other = dataclasses.replace(events[1], event_id=events[2].event_id)
    with pytest.raises(ProjectionError) as mismatch:
        fold(head, other)
    assert mismatch.value.code == "EVENT_MISMATCH"
    assert fold_many(head, []) is head and person_key(events[0]) == head.person_id


def test_the_aggregate_and_the_history_answer_with_the_same_rules(busy):
    ledger, pid, events = busy
    person = ledger.repository.get(pid)
    h = fold_many(None, events)
    assert person.subsidy_statuses() == [(c, f, u) for c, f, u, _ in subsidy_statuses(h)]
    for period in ("2025", "2026"):
        assert person.paid_fen_for(period) == paid_by(h, period)


def test_the_shared_rules():
    assert status_last_day(None, None) is None
    assert status_last_day(date(2025, 12, 31), date(2025, 7, 1)) == date(2025, 6, 30)
    assert status_last_day(date(2025, 3, 31), date(2025, 7, 1)) == date(2025, 3, 31)
    assert status_last_day(None, date(2025, 1, 1)) == date(2024, 12, 31)
    months = ["2025-01", "2025-02", "2025-03"]
    assert [payment_share(100, months, m) for m in months] == [34, 33, 33]
    assert sum(payment_share(100_001, months, m) for m in months) == 100_001
    assert counts_for_months(100, 0, False) and not counts_for_months(100, 100, False)
    assert not counts_for_months(100, 0, True)
