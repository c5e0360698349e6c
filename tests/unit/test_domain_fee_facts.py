"""The late-fee facts in the domain (issue #22): the Person commands that record them, the fold that keeps
them (PersonHistory.late_fee_payments / late_fee_waivers, stored and read back), the fee they leave
owed (ledger.domain.arrears.late_fee_owed reads them from the due row), and the split of one employer
receipt over its employees (allocate_fee_payment)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from uuid import uuid4

import pytest

from ledger.domain.arrears import allocate_fee_payment, fee_row, late_fee_owed, rate_text, yuan
from ledger.domain.errors import Conflict, DomainError
from ledger.domain.history import PersonHistory, fold_many, history_from_plain, history_to_plain
from ledger.domain.person import Person
from ledger.domain.vocabulary import EnrollmentChannel, Scheme
from ledger.policy import PolicyBook, rules

PROV = {"source": "api", "user": "clerk.wang", "request_id": "r1"}


@pytest.fixture(scope="module")
def policies():
    return PolicyBook.load()


@pytest.fixture()
def employee(policies):
    person = Person.register(person_id=uuid4(), id_type="RESIDENT_ID", id_number="610902198005171012", name="职工",
                             birth_date=date(1980, 5, 17), sex="M", household_grid=None,
                             effective_date=date(2025, 12, 1), provenance=PROV)
    person.enroll(scheme=Scheme.EMPLOYEE, region_code="610902", grid_code="610902100001", flexible=False,
                  employer_id="91610902MA0LATE1X", channel=EnrollmentChannel.COUNTER, effective_date=date(2025, 12, 1),
                  provenance=PROV, policies=policies)
    table = policies.get("610902", 2026)
    person.assess_employee_month(month="2026-01", table=table, result=rules.employee_contribution(table, 1_388_889),
                                 due_date=date(2026, 1, 15), effective_date=date(2026, 1, 1), provenance=PROV)
    return person


def pay(person, voucher="V1", amount=1_000, period="2026-01", region="610902", day=20):
    return person.pay_late_fee(voucher_no=voucher, tax_office="16109020000", region_code=region, period=period,
                               amount_fen=amount, paid_at=datetime(2026, 3, day, 2, tzinfo=timezone.utc),
                               channel="BANK", provenance=PROV)


def test_commands_record_once_and_refuse_what_is_not_an_assessed_employee_month(employee):
    assert pay(employee) is True and pay(employee) is False  # a resend of the same voucher
    with pytest.raises(Conflict) as e:
        pay(employee, amount=2_000)
    assert e.value.code == "VOUCHER_CONFLICT"
    with pytest.raises(DomainError) as e:
        pay(employee, voucher="V2", period="2026-02")
    assert e.value.code == "LATE_FEE_PERIOD_UNKNOWN"
    with pytest.raises(DomainError) as e:
        pay(employee, voucher="V3", region="610921")
    assert e.value.code == "LATE_FEE_REGION_MISMATCH"
    waive = dict(waiver_id="W1", region_code="610902", period="2026-01", approver="li",
                 effective_date=date(2026, 3, 25), provenance=PROV)
    with pytest.raises(DomainError) as e:
        employee.waive_late_fee(reason=" ", **waive)
    assert e.value.code == "WAIVER_REASON_REQUIRED"
    assert employee.waive_late_fee(reason="系统故障", **waive) is True
    assert employee.waive_late_fee(reason="系统故障", **waive) is False
    with pytest.raises(Conflict) as e:
        employee.waive_late_fee(reason="系统故障", **{**waive, "waiver_id": "W2"})
    assert e.value.code == "LATE_FEE_ALREADY_WAIVED"


def test_the_fold_keeps_the_facts_and_the_stored_history_reads_back_equal(employee):
    pay(employee)
    employee.waive_late_fee(waiver_id="W1", region_code="610902", period="2026-01", reason="系统故障", approver="li",
                            effective_date=date(2026, 3, 25), provenance=PROV)
    history = fold_many(None, employee.collect_events())
    (payment,) = history.late_fee_payments.values()
    (waiver,) = history.late_fee_waivers.values()
    assert (payment.period, payment.amount_fen, payment.paid_on, payment.voucher_no) == ("2026-01", 1_000,
                                                                                         date(2026, 3, 20), "V1")
    assert (waiver.reason, waiver.approver, waiver.recorded_by, waiver.on) == ("系统故障", "li", "clerk.wang",
                                                                               date(2026, 3, 25))
    assert history_from_plain(history_to_plain(history)) == history
    without = history_to_plain(PersonHistory(history.person_id))
    assert "late_fee_payments" not in without and "late_fee_waivers" not in without  # older stored shape unchanged


def due(**over):
    return {"person_id": "p", "kind": "EMPLOYER", "period": "2026-01", "region_code": "610902", "grid_code": None,
            "due_fen": 1_000_000, "due_date": date(2026, 1, 15), "paid_steps": [(date(2026, 3, 16), 1_000_000)],
            "employer_id": "E", **over}


def test_fee_payments_and_a_waiver_count_from_their_own_day(policies):
    table = policies.get("610902", 2026)
    row = due(fee_payments=[(date(2026, 3, 20), 10_000, "V1"), (date(2026, 5, 1), 20_000, "V2")],
              fee_waiver=None)
    assert late_fee_owed(row, date(2026, 3, 19), table).owed_fen == 30_000
    assert late_fee_owed(row, date(2026, 4, 1), table).owed_fen == 20_000
    assert late_fee_owed(row, date(2026, 5, 1), table).owed_fen == 0
    waived = due(fee_waiver={"waiver_id": "W", "on": date(2026, 4, 1), "reason": "r", "approver": "a",
                             "recorded_by": "c"})
    assert late_fee_owed(waived, date(2026, 3, 31), table).owed_fen == 30_000
    fee = late_fee_owed(waived, date(2026, 4, 1), table)
    assert (fee.owed_fen, fee.waived, fee.waiver["approver"]) == (0, True, "a")
    line = fee_row(waived, fee, date(2026, 4, 1))
    assert (line["days"], line["accrued_fen"], line["waived_fen"], line["fee_status_label"]) == (60, 30_000, 30_000,
                                                                                                 "已减免")
    assert line["arithmetic"] == "10,000.00 元 × 60 天 × 0.05%/天 = 300.00 元；已减免"
    assert late_fee_owed(due(), date(2026, 4, 1), table).owed_fen == 30_000  # a row stored before the facts existed


def test_part_payments_of_the_contribution_show_fen_days(policies):
    table = policies.get("610902", 2026)
    row = due(paid_steps=[(date(2026, 2, 14), 500_000), (date(2026, 3, 16), 1_000_000)])
    fee = late_fee_owed(row, date(2026, 4, 1), table)
    line = fee_row(row, fee, date(2026, 4, 1))
    assert fee.fen_days == 1_000_000 * 30 + 500_000 * 30 and fee.accrued_fen == 22_500
    assert line["arithmetic"] == "逐日欠款累计 450,000.00 元·天 × 0.05%/天 = 225.00 元（含部分缴款，本金 10,000.00 元）"


def rows(*owed):
    return [{"person_id": f"p{i}", "owed_fen": o, "waived": False, "fee_payments": []} for i, o in enumerate(owed)]


def test_one_receipt_is_split_in_person_order_and_a_replay_splits_the_same():
    shares = allocate_fee_payment(rows(3_750, 3_750, 3_750), "V", 10_000)
    assert [(r["person_id"], s) for r, s in shares] == [("p0", 3_750), ("p1", 3_750), ("p2", 2_500)]
    after = rows(0, 0, 1_250)  # the same receipt, recorded: what is owed now, and what it paid
    for r, (_, share) in zip(after, shares):
        r["fee_payments"] = [{"voucher_no": "V", "amount_fen": share}]
    assert [s for _, s in allocate_fee_payment(after, "V", 10_000)] == [3_750, 3_750, 2_500]
    with pytest.raises(DomainError) as e:
        allocate_fee_payment(rows(3_750), "V", 3_751)
    assert e.value.code == "LATE_FEE_OVERPAID"
    with pytest.raises(DomainError) as e:
        allocate_fee_payment(rows(0, 0), "V", 1)
    assert e.value.code == "LATE_FEE_NOT_OWED"


def test_money_and_rate_texts():
    assert (yuan(30_000), yuan(125_000_000), yuan(5), yuan(-150)) == ("300.00", "1,250,000.00", "0.05", "-1.50")
    assert (rate_text(500), rate_text(10_000), rate_text(1)) == ("0.05%", "1%", "0.0001%")
