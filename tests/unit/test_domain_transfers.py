"""The transfer rules as pure functions (ledger.domain.transfers): scheme effect, gaps, old records."""
from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest

from ledger.domain.errors import DomainError
from ledger.domain.person import Person
from ledger.domain.transfers import gap_months, gap_rule, holdings, status_of, transfer_effect, transfer_findings
from ledger.domain.vocabulary import AccountEntryReason, EnrollmentChannel, Scheme
from ledger.policy.book import default_policy_book

POLICIES = default_policy_book()
PROV = {"source": "test"}
TABLE = POLICIES.get("610921", 2025)


def test_a_resident_to_resident_transfer_takes_effect_from_the_next_coverage_year():
    effect = transfer_effect("RESIDENT", "RESIDENT", date(2025, 3, 10))
    assert effect.start == date(2026, 1, 1) and "次年" in effect.explanation


@pytest.mark.parametrize("sending, receiving", [("EMPLOYEE", "EMPLOYEE"), ("EMPLOYEE", "RESIDENT"),
                                                 ("RESIDENT", "EMPLOYEE"), (None, "RESIDENT")])
def test_other_transfers_take_effect_when_the_in_half_completes(sending, receiving):
    assert transfer_effect(sending, receiving, date(2025, 3, 10)).start == date(2025, 3, 10)


@pytest.mark.parametrize("last, resumed, months", [
    (date(2025, 3, 31), date(2025, 4, 15), 0), (date(2025, 3, 3), date(2025, 3, 20), 0),
    (date(2025, 1, 31), date(2025, 5, 2), 3), (date(2024, 6, 30), date(2025, 7, 1), 12),
])
def test_gap_months_counts_whole_months_without_coverage(last, resumed, months):
    assert gap_months(last, resumed) == months


def test_gaps_of_three_months_are_back_paid_longer_ones_wait_at_most_the_policy_cap():
    transfer, waiting = TABLE.transfer, TABLE.resident.waiting
    assert gap_rule(0, transfer, waiting).waiting_months == 0
    short = gap_rule(transfer.back_pay_max_gap_months, transfer, waiting)
    assert short.back_pay_allowed and short.retroactive and short.waiting_months == 0 and "追溯" in short.explanation
    longer = gap_rule(4, transfer, waiting)
    assert not longer.back_pay_allowed and longer.waiting_months == waiting.fixed_months
    years = gap_rule(60, transfer, waiting)
    assert years.waiting_months == transfer.waiting_max_months == 6  # 3 + 4 = 7 declared, capped at 6


def _old_out_person():
    person = Person.register(person_id=uuid4(), id_type="RESIDENT_ID", id_number="610902196607077075", name="李四",
                             birth_date=None, sex=None, household_grid=None, effective_date=date(2024, 1, 1),
                             provenance=PROV)
    person.enroll(scheme=Scheme.EMPLOYEE, region_code="610902", grid_code=None, flexible=True, employer_id=None,
                  channel=EnrollmentChannel.COUNTER, effective_date=date(2024, 1, 1), provenance=PROV,
                  policies=POLICIES)
    person.credit_account(amount_fen=900, reason=AccountEntryReason.CONTRIBUTION, reference="c",
                          effective_date=date(2024, 1, 2), provenance=PROV)
    person.trigger_event(Person.TransferredOut, transfer_id="OLD", enrollment_id="E000002",
                         counterpart_region="610921", account_balance_fen=900, contribution_months=7,
                         effective_date=date(2025, 3, 1), provenance=PROV)
    return person


def test_an_old_open_out_half_is_received_with_its_balance_but_never_cancelled():
    person = _old_out_person()
    assert status_of(person.transfers["OLD"]) == "LEGACY_OPEN"
    with pytest.raises(DomainError) as e:
        person.cancel_transfer(transfer_id="OLD", reason="x", effective_date=date(2025, 3, 2), provenance=PROV)
    assert e.value.code == "TRANSFER_NOT_OPEN"
    person.transfer_in(transfer_id="OLD", counterpart_region="610902", region_code="610921",
                       effective_date=date(2025, 3, 5), provenance=PROV, policies=POLICIES,
                       enroll={"scheme": Scheme.EMPLOYEE, "flexible": True})
    assert person.account_balance_fen == 900 and person.contribution_months == 0  # the old half kept no months
    assert person.transfers["OLD"].status == "DONE" and person.active_enrollment.region_code == "610921"
    assert transfer_findings(person.collect_events()) == []


def test_holdings_count_what_is_in_transit():
    person = _old_out_person()
    person.transfer_in(transfer_id="OLD", counterpart_region="610902", region_code="610921",
                       effective_date=date(2025, 3, 5), provenance=PROV, policies=POLICIES,
                       enroll={"scheme": Scheme.EMPLOYEE, "flexible": True})
    person.transfer_out(transfer_id="NEW", counterpart_region="610922", effective_date=date(2025, 4, 1),
                        provenance=PROV)
    assert person.account_balance_fen == 0 and holdings(person) == (900, 0)


def test_a_person_enrolled_in_the_receiving_region_first_completes_the_transfer_without_a_second_enrollment():
    person = _old_out_person()
    person.enroll(scheme=Scheme.EMPLOYEE, region_code="610921", grid_code=None, flexible=True, employer_id=None,
                  channel=EnrollmentChannel.COUNTER, effective_date=date(2025, 3, 2), provenance=PROV,
                  policies=POLICIES)
    person.transfer_in(transfer_id="OLD", counterpart_region="610902", region_code="610921",
                       effective_date=date(2025, 3, 5), provenance=PROV, policies=POLICIES,
                       enroll={"scheme": Scheme.EMPLOYEE, "flexible": True})
    assert [e.region_code for e in person.active_enrollments] == ["610921"]
    assert person.transfers["OLD"].status == "DONE" and person.account_balance_fen == 900
