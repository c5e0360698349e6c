"""Arrears list (欠费): residents past the due date, employer months with their late fee (滞纳金)."""
from __future__ import annotations

from datetime import date

import pytest

from ledger.domain.errors import DomainError
from projections.arrears import arrears_list, employer_arrears, filter_arrears, sort_arrears
from tests.unit.projection_support import (
    API,
    HANBIN,
    HANYIN,
    arrears_view,
    enroll,
    ledger,  # noqa: F401  (fixture)
    number,
    pay_year,
    tax,
)

GRID_B = "610902100002"


def employee_with_march_assessed(ledger, seq: int, *, flexible: bool = False, employer: str = "91610902AA"):
    n = number(seq)
    over = {"flexible": True} if flexible else {"employer_id": employer}
    pid = enroll(ledger, n, date(2025, 1, 1), scheme="EMPLOYEE", **over)
    # base 5000 yuan: employer 7% = 350 yuan + employee 2% = 100 yuan; due by 2025-03-31
    ledger.assess_employee_month(pid, "2025-03", declared_base_fen=500000, provenance=API,
                                 effective_date=date(2025, 3, 1))
    return n, pid


def pay_march(ledger, n: str, voucher: str, amount_fen: int, on: date):
    ledger.record_tax_record(tax(n, voucher, amount_fen=amount_fen, paid_on=on, levy_item="EMPLOYEE",
                                 period=(date(2025, 3, 1), date(2025, 3, 31))), provenance=API)


def test_resident_unpaid_after_the_due_date_is_in_arrears_until_the_year_ends(ledger):
    n = number(1)
    pid = enroll(ledger, n, date(2025, 9, 15))  # for coverage year 2026, due 2025-12-31
    view = arrears_view(ledger)
    assert arrears_list(view, date(2025, 12, 31), ledger.policies) == []  # paying on the due date is on time
    (row,) = arrears_list(view, date(2026, 1, 10), ledger.policies)
    assert row["person_id"] == str(pid) and row["kind"] == "RESIDENT" and row["period"] == "2026"
    assert (row["due_fen"], row["paid_fen"], row["outstanding_fen"]) == (40000, 0, 40000)
    assert (row["days_overdue"], row["late_fee_fen"]) == (10, 0)  # residents owe no late fee
    assert (row["grid_code"], row["township_code"], row["region_code"]) == ("610902100001", "610902100", HANBIN)
    assert row["assessed"] is False and row["sources"]  # due from the table, resting on the enrollment event
    # a past year is a break, not arrears: on 2027-01-05 only 2027 (due 2026-12-31, enrollment still open) is owed
    assert [r["period"] for r in arrears_list(view, date(2027, 1, 5), ledger.policies)] == ["2027"]
    pay_year(ledger, n, 2026, date(2026, 1, 20))
    view = arrears_view(ledger)
    assert len(arrears_list(view, date(2026, 1, 19), ledger.policies)) == 1  # as of a day before the payment
    assert arrears_list(view, date(2026, 1, 20), ledger.policies) == []


def test_employer_month_accrues_the_daily_late_fee(ledger):
    n, pid = employee_with_march_assessed(ledger, 3)
    view = arrears_view(ledger)
    (row,) = arrears_list(view, date(2025, 4, 20), ledger.policies)
    assert row["kind"] == "EMPLOYER" and row["employer_id"] == "91610902AA" and row["period"] == "2025-03"
    assert (row["due_fen"], row["outstanding_fen"], row["days_overdue"]) == (45000, 45000, 20)
    assert row["late_fee_fen"] == 450  # 45000 x 0.05% x 20 days
    assert row["due_date"] == date(2025, 3, 31)

    pay_march(ledger, n, "E1", 20000, date(2025, 4, 10))  # part paid on day 10
    view = arrears_view(ledger)
    (row,) = arrears_list(view, date(2025, 4, 20), ledger.policies)
    assert (row["paid_fen"], row["outstanding_fen"]) == (20000, 25000)
    assert row["late_fee_fen"] == 350  # (45000 x 10 + 25000 x 10) fen-days x 0.05%
    assert len(row["sources"]) == 2  # the assessment and the payment

    (group,) = employer_arrears(arrears_list(view, date(2025, 4, 20), ledger.policies))
    assert (group["employer_id"], group["period"], group["persons"]) == ("91610902AA", "2025-03", 1)
    assert (group["outstanding_fen"], group["late_fee_fen"], group["days_overdue"]) == (25000, 350, 20)


def test_flexible_worker_owes_no_late_fee(ledger):
    employee_with_march_assessed(ledger, 5, flexible=True)
    (row,) = arrears_list(arrears_view(ledger), date(2025, 4, 20), ledger.policies)
    assert row["kind"] == "FLEXIBLE" and row["employer_id"] is None
    assert (row["outstanding_fen"], row["late_fee_fen"]) == (45000, 0)
    assert employer_arrears([row]) == []


def test_filter_and_sort_by_region_grid_and_amount(ledger):
    enroll(ledger, number(7), date(2025, 9, 15))
    enroll(ledger, number(9), date(2025, 9, 15), grid=GRID_B)
    enroll(ledger, number(11), date(2025, 9, 15), grid="610921100001", region=HANYIN)
    pay_year(ledger, number(9), 2026, date(2026, 1, 5), amount_fen=10000)  # a quarter paid
    employee_with_march_assessed(ledger, 13)
    view = arrears_view(ledger)
    rows = arrears_list(view, date(2026, 2, 1), ledger.policies)
    assert {r["period"] for r in rows} == {"2026", "2025-03"}  # the employer month stays until paid
    assert [r["grid_code"] for r in filter_arrears(rows, region=HANYIN)] == ["610921100001"]
    assert [r["outstanding_fen"] for r in filter_arrears(rows, grid=GRID_B)] == [30000]
    assert len(filter_arrears(rows, township="610902100", kind="RESIDENT")) == 2
    assert len(filter_arrears(rows, period="2025")) == 1  # a year matches its months
    by_amount = sort_arrears(rows, "outstanding_fen")
    assert [r["outstanding_fen"] for r in by_amount] == [45000, 40000, 40000, 30000]
    by_fee = sort_arrears(rows, "late_fee_fen")
    assert by_fee[0]["kind"] == "EMPLOYER" and by_fee[0]["late_fee_fen"] == 6908  # 45000 x 0.05% x 307 days = 6907.5, half up
    assert [r["days_overdue"] for r in sort_arrears(rows, "days_overdue", descending=False)][0] == 32
    with pytest.raises(DomainError) as err:
        sort_arrears(rows, "name")
    assert err.value.code == "SORT_KEY_UNKNOWN"


# ------------------------------------------------------------------ a fee outlives its contribution (issue #19)
@pytest.fixture()
def late_payer(tmp_path):
    """The issue's employer on the real Ledger (tests/unit/late_fee_support.py): owes January, pays it 60 days late."""
    from entrypoints.wiring import bootstrap
    from infra.settings import Settings
    from tests.unit import late_fee_support as case

    system = bootstrap(Settings(persistence="memory", id_key=b"late-fee", policy_dir=str(case.policy_dir(tmp_path))))
    numbers = case.employer_owes_january(system.ledger)
    yield system.ledger, numbers
    system.close()


def test_a_month_paid_late_stays_listed_for_its_fee_which_stops_growing_at_payment(late_payer):
    from tests.unit import late_fee_support as case

    ledger, numbers = late_payer
    before = arrears_list(arrears_view(ledger), date(2026, 3, 15), ledger.policies)
    assert len(before) == case.EMPLOYEES and not any(r["fee_only"] for r in before)
    assert {r["due_date"] for r in before} == {case.DUE}
    assert sum(r["outstanding_fen"] for r in before) == case.OWED_FEN
    # 59 days so far, still growing: 125,000 x 0.05 % x 59 = 3,687.5 per row, rounded half up per row
    assert [r["late_fee_fen"] for r in before] == [3_688] * case.EMPLOYEES
    assert all(r["late_fee_accruing"] for r in before)

    case.employer_pays_january(ledger, numbers)
    view = arrears_view(ledger)
    for as_of in (case.PAID_ON, date(2026, 4, 1), date(2027, 6, 30)):
        rows = arrears_list(view, as_of, ledger.policies)
        assert len(rows) == case.EMPLOYEES, as_of
        for r in rows:
            assert (r["kind"], r["fee_only"], r["outstanding_fen"], r["paid_fen"]) == ("EMPLOYER", True, 0, case.EACH_FEN)
            assert (r["late_fee_fen"], r["late_fee_accruing"]) == (case.FEE_EACH_FEN, False)
            assert (r["days_overdue"], r["paid_in_full_on"]) == (60, case.PAID_ON)  # frozen at the payment
            assert r["late_fee_policy_version"].startswith("610902-2026-t15@") and r["policy_version"]
            assert len(r["sources"]) == 2  # the assessment and the payment
        (group,) = employer_arrears(rows)
        assert (group["employer_id"], group["persons"], group["fee_only_persons"]) == (case.EMPLOYER, 8, 8)
        assert (group["outstanding_fen"], group["late_fee_fen"]) == (0, case.FEE_FEN)
    # the day before the payment the rows are ordinary arrears, not fee-only
    assert not any(r["fee_only"] for r in arrears_list(view, date(2026, 3, 15), ledger.policies))


def test_a_month_paid_on_its_due_date_leaves_the_list(late_payer):
    from tests.unit import late_fee_support as case

    ledger, numbers = late_payer
    case.employer_pays_january(ledger, numbers, on=case.DUE)
    assert arrears_list(arrears_view(ledger), date(2026, 4, 1), ledger.policies) == []
