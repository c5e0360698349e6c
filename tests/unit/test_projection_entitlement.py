"""Entitlement view (待遇资格): hand-worked cases, histories built through the real Ledger.

Policy figures used (ledger/policy/tables, Ankang defaults): individual share 400 yuan;
concentrated period 1 Sep - 31 Dec of Y-1; extended window to end of February,
waiting-free for continuous payers; from 2025 waiting = 3 + max(0, gap - 1 - back-paid)
months; newborn window 90 days; 低保 (MIN_LIVING) fixed 150 yuan; 2024 has no waiting rule.
"""
from __future__ import annotations

import dataclasses
from datetime import date, timedelta

from ledger.policy import PolicyBook
from ledger.domain.coverage import covered_on
from projections.entitlement import entitlement_rows
from tests.unit.projection_support import (
    API,
    HANBIN,
    HANYIN,
    enroll,
    entitlement_view,
    grant,
    ledger,  # noqa: F401  (fixture)
    number,
    pay_year,
    refund,
    residence,
    reverse,
    tax,
)


def row_of(view, pid, year):
    return view[str(pid)]["years"][year]


def test_on_time_payer_is_covered_all_year_without_waiting(ledger):
    n = number(1)
    pid = enroll(ledger, n, date(2024, 9, 10))
    voucher = pay_year(ledger, n, 2025, date(2024, 10, 8))
    view = entitlement_view(ledger)
    y = row_of(view, pid, 2025)
    assert (y["standard_fen"], y["subsidy_fen"], y["due_fen"], y["net_paid_fen"]) == (40000, 0, 40000, 40000)
    assert (y["outstanding_fen"], y["overpayment_fen"]) == (0, 0)
    assert y["coverage_periods"] == [(date(2025, 1, 1), date(2025, 12, 31))]
    assert y["waiting_months"] == 0 and y["waiting_until"] is None and y["first_time"] is True
    assert y["enrollment_state"] == "ACTIVE" and y["assessed"] is False  # due derived from the policy table
    assert y["policy_version"] == ledger.policies.get(HANBIN, 2025).policy_version
    assert [(r["person_id"], r["year"]) for r in entitlement_rows(view)] == [(str(pid), y) for y in (2025, 2026, 2027)]
    paid_event = ledger.get_person(pid).payments[f"16109020000|{voucher}"].event_id
    assert y["sources"]["paid"] == [paid_event] and paid_event in y["sources"]["coverage"]

    yes = covered_on(view, pid, date(2025, 1, 1))
    assert yes.covered and yes.scheme == "RESIDENT" and yes.period == "2025"
    assert "no waiting period" in yes.reason and paid_event in yes.sources
    no = covered_on(view, pid, date(2024, 12, 31))
    assert not no.covered and "no enrollment or contribution for 2024" in no.reason
    assert not covered_on(view, "no-such-person", date(2025, 1, 1)).covered


def test_continuous_payer_in_the_extended_window_is_covered_from_the_payment_date(ledger):
    n = number(2)
    pid = enroll(ledger, n, date(2024, 9, 10))
    pay_year(ledger, n, 2025, date(2024, 10, 8))
    pay_year(ledger, n, 2026, date(2026, 2, 10))  # extended window ends 2026-02-28
    view = entitlement_view(ledger)
    y = row_of(view, pid, 2026)
    assert y["covered_last_year"] is True and y["waiting_months"] == 0
    assert y["coverage_periods"] == [(date(2026, 2, 10), date(2026, 12, 31))]
    assert "extended window" in y["waiting_reason"]
    assert y["continuous_years"] == 2 and y["cap_increment_fen"] == 0  # the incentive starts after 4 years
    early = covered_on(view, pid, date(2026, 2, 9))
    assert not early.covered and "paid only on 2026-02-10" in early.reason
    assert covered_on(view, pid, date(2026, 2, 10)).covered


def test_non_continuous_payer_in_the_extended_window_waits_three_months(ledger):
    n = number(3)
    pid = enroll(ledger, n, date(2024, 3, 1))
    pay_year(ledger, n, 2024, date(2024, 3, 1))  # 2024: no waiting rule yet, covered from payment
    # 2025 skipped; 2026 paid in the extended window
    pay_year(ledger, n, 2026, date(2026, 2, 10))
    view = entitlement_view(ledger)
    assert row_of(view, pid, 2024)["coverage_periods"] == [(date(2024, 3, 1), date(2024, 12, 31))]
    assert row_of(view, pid, 2025)["insured"] is False and row_of(view, pid, 2025)["outstanding_fen"] == 40000
    y = row_of(view, pid, 2026)
    assert (y["first_time"], y["covered_last_year"], y["gap_years"], y["back_paid_years"]) == (False, False, 1, 0)
    assert y["waiting_months"] == 3  # fixed 3 + variable max(0, 1 - 1 - 0)
    assert y["coverage_start"] == date(2026, 5, 10) and y["waiting_until"] == date(2026, 5, 9)
    decision = covered_on(view, pid, date(2026, 4, 1))
    assert not decision.covered
    assert decision.reason.startswith("not covered: in waiting period until 2026-05-09, covered from 2026-05-10 (")
    assert "paid 2026-02-10, after the concentrated period" in decision.reason and "= 3 months" in decision.reason
    assert y["continuous_years"] == 1  # the break in 2025 reset the count


def test_two_skipped_years_one_back_paid_shortens_the_variable_waiting(ledger):
    repaired, unrepaired = number(4), number(5)
    pid = enroll(ledger, repaired, date(2024, 3, 1))  # enrolled for 2024, paid neither 2024 nor 2025
    other = enroll(ledger, unrepaired, date(2024, 3, 1))
    pay_year(ledger, repaired, 2025, date(2026, 4, 8), voucher="BACK2025")  # back payment (补缴)
    pay_year(ledger, repaired, 2026, date(2026, 4, 8), voucher="PAY2026A")
    pay_year(ledger, unrepaired, 2026, date(2026, 4, 8), voucher="PAY2026B")
    view = entitlement_view(ledger)

    y = row_of(view, pid, 2026)
    assert (y["gap_years"], y["back_paid_years"]) == (2, 1)
    assert y["waiting_months"] == 3 and y["coverage_start"] == date(2026, 7, 8)  # 3 + max(0, 2 - 1 - 1)
    back_event = ledger.get_person(pid).payments["16109020000|BACK2025"].event_id
    assert back_event in y["sources"]["waiting"]
    z = row_of(view, other, 2026)
    assert (z["gap_years"], z["back_paid_years"]) == (2, 0)
    assert z["waiting_months"] == 4 and z["coverage_start"] == date(2026, 8, 8)  # 3 + max(0, 2 - 1 - 0)

    back = row_of(view, pid, 2025)
    assert back["back_paid_on"] == date(2026, 4, 8) and back["coverage_periods"] == []
    assert back["insured"] is False and back["outstanding_fen"] == 0
    decision = covered_on(view, pid, date(2025, 6, 1))
    assert not decision.covered and "back payment" in decision.reason


def test_newborn_enrolled_in_the_window_is_covered_from_birth(ledger):
    born = date(2025, 3, 1)
    baby, late_baby = number(7, born), number(9, born)
    pid = enroll(ledger, baby, date(2025, 3, 20), channel="NEWBORN")
    pay_year(ledger, baby, 2025, date(2025, 3, 20))
    late = enroll(ledger, late_baby, date(2025, 7, 15), channel="NEWBORN")  # 136 days: beyond the 90-day window
    pay_year(ledger, late_baby, 2025, date(2025, 7, 15))
    view = entitlement_view(ledger)
    y = row_of(view, pid, 2025)
    assert y["waiting_exemption"] == "NEWBORN" and y["waiting_months"] == 0
    assert y["coverage_periods"] == [(born, date(2025, 12, 31))]
    assert view[str(pid)]["history"].registered_event_id in y["sources"]["waiting"]
    assert covered_on(view, pid, date(2025, 3, 2)).covered  # before the enrollment date
    z = row_of(view, late, 2025)
    assert z["waiting_exemption"] is None and z["waiting_months"] == 3
    assert z["coverage_start"] == date(2025, 10, 15) and "beyond the 90-day window" in z["waiting_reason"]


def test_extremely_poor_person_who_paid_nothing_is_covered(ledger):
    n = number(11)
    pid = enroll(ledger, n, date(2024, 9, 10))
    grant(ledger, n, "EXTREME_POVERTY", date(2024, 1, 1))
    ledger.assess_resident_year(pid, 2025, provenance=API, effective_date=date(2024, 9, 10))
    view = entitlement_view(ledger)
    y = row_of(view, pid, 2025)
    assert y["assessed"] is True and y["subsidy_category"] == "EXTREME_POVERTY"
    assert (y["standard_fen"], y["subsidy_fen"], y["due_fen"], y["net_paid_fen"], y["outstanding_fen"]) == (
        40000, 40000, 0, 0, 0)
    assert y["funded"] and y["funded_on"] == date(2024, 9, 10)
    assert y["coverage_periods"] == [(date(2025, 1, 1), date(2025, 12, 31))]
    grant_event = view[str(pid)]["history"].subsidies["汉民发〔2024〕MZ-1"].event_id
    assert y["sources"]["subsidy"] == [grant_event] and grant_event in y["sources"]["coverage"]
    assert covered_on(view, pid, date(2025, 8, 1)).covered
    # Without a recorded assessment the view derives the same figures from the table.
    n2 = number(13)
    pid2 = enroll(ledger, n2, date(2024, 9, 10))
    grant(ledger, n2, "ORPHAN", date(2024, 1, 1), record_id="MZ-2")
    y2 = row_of(entitlement_view(ledger), pid2, 2025)
    assert y2["assessed"] is False and y2["due_fen"] == 0 and y2["coverage_start"] == date(2025, 1, 1)


def test_subsidised_late_payer_is_exempt_from_waiting(ledger):
    n = number(15)
    pid = enroll(ledger, n, date(2025, 3, 1))
    grant(ledger, n, "MIN_LIVING", date(2025, 1, 1))
    pay_year(ledger, n, 2025, date(2025, 4, 8), amount_fen=25000)  # 400 - 150 yuan
    y = row_of(entitlement_view(ledger), pid, 2025)
    assert (y["due_fen"], y["outstanding_fen"]) == (25000, 0)
    assert y["waiting_exemption"] == "SUBSIDISED" and y["coverage_start"] == date(2025, 4, 8)


def test_subsidy_granted_after_full_payment_leaves_an_overpayment_owed_back(ledger):
    n = number(17)
    pid = enroll(ledger, n, date(2024, 9, 10))
    ledger.assess_resident_year(pid, 2025, provenance=API, effective_date=date(2024, 9, 10))
    pay_year(ledger, n, 2025, date(2024, 10, 8))
    grant(ledger, n, "MIN_LIVING", date(2025, 3, 1))  # re-assesses 2025: 400 - 150 = 250 yuan due
    view = entitlement_view(ledger)
    y = row_of(view, pid, 2025)
    assert (y["due_fen"], y["net_paid_fen"], y["outstanding_fen"], y["overpayment_fen"]) == (25000, 40000, 0, 15000)
    assert len(y["sources"]["assessment"]) == 2  # the assessment in force and the one it superseded
    assert y["coverage_periods"] == [(date(2025, 1, 1), date(2025, 12, 31))]
    # Refunding the overpayment does not un-cover the year.
    original = next(p.voucher_no for p in view[str(pid)]["history"].payments.values())
    refund(ledger, n, original, 15000, date(2025, 4, 1))
    y = row_of(entitlement_view(ledger), pid, 2025)
    assert (y["net_paid_fen"], y["refunded_fen"], y["overpayment_fen"]) == (25000, 15000, 0)
    assert y["coverage_periods"] == [(date(2025, 1, 1), date(2025, 12, 31))]


def test_refund_below_the_due_uncovers_the_year_from_the_refund_date(ledger):
    n = number(19)
    pid = enroll(ledger, n, date(2024, 9, 10))
    voucher = pay_year(ledger, n, 2025, date(2024, 10, 8))
    refund(ledger, n, voucher, 10000, date(2025, 5, 10))
    view = entitlement_view(ledger)
    y = row_of(view, pid, 2025)
    assert (y["paid_fen"], y["refunded_fen"], y["net_paid_fen"], y["outstanding_fen"]) == (40000, 10000, 30000, 10000)
    assert y["coverage_periods"] == [(date(2025, 1, 1), date(2025, 5, 9))] and not y["funded"]
    assert covered_on(view, pid, date(2025, 5, 9)).covered
    after = covered_on(view, pid, date(2025, 5, 10))
    assert not after.covered and after.reason.startswith("not covered since 2025-05-10: a refund")
    assert view[str(pid)]["history"].payments[f"16109020000|{voucher}"].refunds[0].event_id in after.sources


def test_paying_again_after_a_refund_starts_a_new_period_with_its_own_waiting(ledger):
    n = number(20)
    pid = enroll(ledger, n, date(2024, 9, 10))
    voucher = pay_year(ledger, n, 2025, date(2024, 10, 8))
    refund(ledger, n, voucher, 40000, date(2025, 5, 10))
    pay_year(ledger, n, 2025, date(2025, 6, 1), voucher="AGAIN")
    view = entitlement_view(ledger)
    y = row_of(view, pid, 2025)
    assert y["coverage_periods"] == [(date(2025, 1, 1), date(2025, 5, 9)), (date(2025, 9, 1), date(2025, 12, 31))]
    assert [e["waiting"]["months"] for e in y["funding"]] == [0, 3]  # paid outside the concentrated period
    assert y["waiting_until"] == date(2025, 8, 31) and y["insured"] and y["net_paid_fen"] == 40000
    assert covered_on(view, pid, date(2025, 7, 1)).reason.startswith("not covered: in waiting period until 2025-08-31")


def test_reversal_removes_the_payment_entirely(ledger):
    n = number(21)
    pid = enroll(ledger, n, date(2024, 9, 10))
    voucher = pay_year(ledger, n, 2025, date(2024, 10, 8))
    reverse(ledger, n, voucher, 40000, date(2025, 3, 1))
    view = entitlement_view(ledger)
    y = row_of(view, pid, 2025)
    assert (y["paid_fen"], y["reversed_fen"], y["net_paid_fen"], y["outstanding_fen"]) == (0, 40000, 0, 40000)
    assert y["coverage_periods"] == [] and len(y["sources"]["reversed"]) == 2
    decision = covered_on(view, pid, date(2025, 2, 1))  # even before the reversal date
    assert not decision.covered and "not paid" in decision.reason


def test_transfer_between_counties_mid_year_keeps_the_paid_year_covered(ledger):
    n = number(23)
    pid = enroll(ledger, n, date(2024, 9, 10))
    pay_year(ledger, n, 2025, date(2024, 10, 8))
    ledger.credit_account(pid, amount_fen=5000, reason="CONTRIBUTION", reference="x", effective_date=date(2025, 2, 1),
                          provenance=API)
    ledger.transfer_out(pid, transfer_id="T1", counterpart_region=HANYIN, effective_date=date(2025, 6, 30),
                        provenance=API)
    between = entitlement_view(ledger)
    assert covered_on(between, pid, date(2025, 7, 3)).covered  # out half done, in half not yet
    assert between[str(pid)]["summary"]["open_transfers"] == ["T1"]
    ledger.transfer_in(id_type="RESIDENT_ID", id_number=n, name="王芳", transfer_id="T1", counterpart_region=HANBIN,
                       account_balance_fen=5000, contribution_months=0, scheme="RESIDENT", region_code=HANYIN,
                       grid_code="610921100001", effective_date=date(2025, 7, 8), provenance=API)
    pay_year(ledger, n, 2026, date(2025, 11, 3), region=HANYIN)
    view = entitlement_view(ledger)
    y = row_of(view, pid, 2025)
    assert y["region_code"] == HANBIN and y["coverage_periods"] == [(date(2025, 1, 1), date(2025, 12, 31))]
    assert covered_on(view, pid, date(2025, 7, 3)).covered
    z = row_of(view, pid, 2026)
    assert z["region_code"] == HANYIN and z["enrollment_channel"] == "TRANSFER_IN"
    assert z["covered_last_year"] and z["waiting_months"] == 0 and z["coverage_start"] == date(2026, 1, 1)
    summary = view[str(pid)]["summary"]
    assert summary["open_transfers"] == [] and summary["account_balance_fen"] == 5000
    assert summary["enrollment"]["region_code"] == HANYIN


def test_death_ends_coverage_on_the_day(ledger):
    n = number(25)
    pid = enroll(ledger, n, date(2024, 9, 10))
    pay_year(ledger, n, 2025, date(2024, 10, 8))
    residence(ledger, n, "DECEASED", date(2025, 4, 2))
    view = entitlement_view(ledger)
    assert row_of(view, pid, 2025)["coverage_periods"] == [(date(2025, 1, 1), date(2025, 4, 2))]
    assert covered_on(view, pid, date(2025, 4, 2)).covered
    decision = covered_on(view, pid, date(2025, 4, 3))
    assert not decision.covered and "deceased on 2025-04-02" in decision.reason


def test_duplicate_enrollment_is_flagged(ledger):
    n = number(27)
    pid = enroll(ledger, n, date(2024, 9, 10))
    enroll(ledger, n, date(2025, 3, 1), scheme="EMPLOYEE", employer_id="91610902XX")  # same region
    view = entitlement_view(ledger)
    assert row_of(view, pid, 2025)["duplicate_enrollment"] is True
    assert len(row_of(view, pid, 2025)["sources"]["duplicate_enrollment"]) == 1
    assert view[str(pid)]["summary"]["duplicate_enrollment"] is True
    assert row_of(view, pid, 2026)["duplicate_enrollment"] is True


def test_employee_months_are_summarised_per_year(ledger):
    n = number(28)
    pid = enroll(ledger, n, date(2025, 1, 1), scheme="EMPLOYEE", employer_id="91610902AA")
    for month in ("2025-03", "2025-04"):
        ledger.assess_employee_month(pid, month, declared_base_fen=500000, provenance=API,
                                     effective_date=date(2025, 3, 1))
    ledger.record_tax_record(
        tax(n, "E1", amount_fen=45000, paid_on=date(2025, 3, 20), period=(date(2025, 3, 1), date(2025, 3, 31)),
            levy_item="EMPLOYEE"), provenance=API)
    view = entitlement_view(ledger)
    year = view[str(pid)]["employee_years"][2025]
    march, april = year["months"]["2025-03"], year["months"]["2025-04"]
    assert (march["due_fen"], march["net_paid_fen"], march["covered"]) == (45000, 45000, True)  # 7% + 2% of 5000 yuan
    assert (april["due_fen"], april["outstanding_fen"], april["covered"]) == (45000, 45000, False)
    assert (year["months_assessed"], year["months_covered"], year["outstanding_fen"]) == (2, 1, 45000)
    assert view[str(pid)]["summary"]["contribution_months"] == 1
    assert covered_on(view, pid, date(2025, 3, 15)).covered
    decision = covered_on(view, pid, date(2025, 4, 15))
    assert not decision.covered and "2025-04 not paid" in decision.reason and decision.scheme == "EMPLOYEE"


def test_continuity_raises_the_critical_illness_cap_per_the_table(ledger):
    # A table variant whose incentive starts after 1 year (the shipped one: after 4).
    book = ledger.policies
    tables = {}
    for table in book.tables():
        continuity = dataclasses.replace(table.resident.continuity, after_years=1) \
            if table.resident.continuity.enabled else table.resident.continuity
        tables[(table.region_code, table.coverage_year)] = dataclasses.replace(
            table, resident=dataclasses.replace(table.resident, continuity=continuity))
    variant = PolicyBook(tables)
    n = number(29)
    pid = enroll(ledger, n, date(2024, 3, 1))
    pay_year(ledger, n, 2024, date(2024, 3, 1))
    pay_year(ledger, n, 2025, date(2024, 10, 8))
    pay_year(ledger, n, 2026, date(2025, 10, 8))
    view = entitlement_view(ledger, variant)
    y = row_of(view, pid, 2026)
    assert y["continuous_years"] == 3 and y["cap_increment_fen"] == 200000  # (3 - 1) x 1000 yuan
    assert len(y["sources"]["continuity"]) == 3
    assert row_of(view, pid, 2024)["cap_increment_fen"] == 0  # no incentive in 2024


def _employee_transfer(ledger, n: str, out_on: date, in_on: date, paid_months: list[str]):
    """An employee of Hanbin transferred to Hanyin (out on ``out_on``, in on ``in_on``), paying ``paid_months``."""
    pid = enroll(ledger, n, date(2024, 12, 1), scheme="EMPLOYEE", employer_id="91610902AA")
    ledger.transfer_out(pid, transfer_id=f"TE-{n[-4:]}", counterpart_region=HANYIN, effective_date=out_on,
                        provenance=API)
    ledger.transfer_in(id_type="RESIDENT_ID", id_number=n, name="王芳", transfer_id=f"TE-{n[-4:]}",
                       counterpart_region=HANBIN, scheme="EMPLOYEE", region_code=HANYIN, grid_code="610921100001",
                       employer_id="91610921BB", effective_date=in_on, provenance=API)
    for month in paid_months:
        y, m = int(month[:4]), int(month[5:])
        end = date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1)
        ledger.record_tax_record(tax(n, f"E-{n[-4:]}-{month}", amount_fen=45000, paid_on=max(in_on, date(y, m, 20)),
                                     period=(date(y, m, 1), end), levy_item="EMPLOYEE", region=HANYIN),
                                 provenance=API)
    return pid


def test_a_transfer_gap_longer_than_three_months_carries_the_waiting_period_of_the_policy(ledger):
    """Out of Hanbin on 31 Jan, in at Hanyin on 10 Jun 2025: February to May, 4 whole months without
    coverage, more than the 3 the policy lets be back-paid, so the domain's gap_rule gives the waiting
    period of the tables (fixed 3 months): June, July and August are paid but not covered; September is."""
    n = number(61)
    pid = _employee_transfer(ledger, n, date(2025, 1, 31), date(2025, 6, 10),
                             ["2025-06", "2025-07", "2025-08", "2025-09"])
    view = entitlement_view(ledger)
    months = view[str(pid)]["employee_years"][2025]["months"]
    assert [(k, m["covered"]) for k, m in sorted(months.items())] == \
        [("2025-06", False), ("2025-07", False), ("2025-08", False), ("2025-09", True)]
    assert "中断 4 个月" in months["2025-06"]["transfer_waiting"] and "3 个月待遇等待期" in months["2025-06"]["transfer_waiting"]
    decision = covered_on(view, pid, date(2025, 8, 20))
    assert not decision.covered and "waiting period after a transfer" in decision.reason
    assert covered_on(view, pid, date(2025, 9, 2)).covered
    assert view[str(pid)]["summary"]["contribution_months"] == 4  # waiting months still count as contributions


def test_a_gap_of_at_most_three_months_back_paid_is_covered_retroactively(ledger):
    """Out on 31 Jan, in on 15 Apr: February and March (2 months) may be back-paid; once paid, the gap's
    days are covered (retroactive) though no enrollment was in force, and nothing waits after it. The gap
    month left unpaid stays uncovered."""
    n = number(62)
    pid = _employee_transfer(ledger, n, date(2025, 1, 31), date(2025, 4, 15), ["2025-02", "2025-04", "2025-05"])
    view = entitlement_view(ledger)
    months = view[str(pid)]["employee_years"][2025]["months"]
    assert {k: m["covered"] for k, m in months.items()} == {"2025-02": True, "2025-04": True, "2025-05": True}
    assert all(m["transfer_waiting"] is None for m in months.values())
    decision = covered_on(view, pid, date(2025, 2, 14))
    assert decision.covered and "back-paid for the gap" in decision.reason and "追溯" in decision.reason
    assert not covered_on(view, pid, date(2025, 3, 14)).covered  # March not paid back
    assert covered_on(view, pid, date(2025, 4, 20)).covered


def test_without_a_gap_a_transfer_changes_no_employee_month(ledger):
    n = number(63)
    pid = _employee_transfer(ledger, n, date(2025, 3, 31), date(2025, 4, 3), ["2025-04", "2025-05"])
    months = entitlement_view(ledger)[str(pid)]["employee_years"][2025]["months"]
    assert [(m["covered"], m["transfer_waiting"], m["transfer_back_paid"]) for _, m in sorted(months.items())] == \
        [(True, None, None), (True, None, None)]


def test_rows_with_a_transfer_gap_read_back_equal_from_the_store_codec(ledger):
    from ledger.domain.history import history_from_plain, history_to_plain
    from projections.row_codec import dumps_row, loads_row

    long_gap = _employee_transfer(ledger, number(64), date(2025, 1, 31), date(2025, 6, 10), ["2025-06"])
    short_gap = _employee_transfer(ledger, number(65), date(2025, 1, 31), date(2025, 4, 15), ["2025-02"])
    view = entitlement_view(ledger)
    for pid in (long_gap, short_gap):
        stored = {**view[str(pid)], "history": history_to_plain(view[str(pid)]["history"])}
        back = loads_row(dumps_row(stored))
        assert back == stored and history_from_plain(back["history"]) == view[str(pid)]["history"]
    assert view[str(long_gap)]["employee_years"][2025]["months"]["2025-06"]["transfer_waiting"]
    assert view[str(short_gap)]["employee_years"][2025]["months"]["2025-02"]["transfer_back_paid"]["until"] == "2025-04-14"
