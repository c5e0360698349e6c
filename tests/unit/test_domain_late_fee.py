"""The late fee (滞纳金) as the domain decides it: accrued on the amount outstanding each late day, and
still owed after the contribution is paid (ledger.domain.arrears.late_fee_owed).

Due rows are built by hand in the shape of ledger.domain.arrears.due_rows, so each case shows its
arithmetic; the policy table is the built-in one of 汉滨区 2026 (0.05 % a day).
"""
from __future__ import annotations

from datetime import date

import pytest

from ledger.domain.arrears import NO_FEE, late_fee_owed, late_fees_owed
from ledger.policy import PolicyBook

DUE = date(2026, 1, 15)


@pytest.fixture(scope="module")
def policies():
    return PolicyBook.load()


@pytest.fixture(scope="module")
def table(policies):
    t = policies.get("610902", 2026)
    assert t.employee.late_fee_ppm_per_day == 500  # 0.05 % a day: the figures below rest on it
    return t


def due(*steps: tuple[date, int], kind: str = "EMPLOYER", due_fen: int = 1_000_000, region: str = "610902"):
    """A due row of 2026-01 owing ``due_fen`` by 2026-01-15; ``steps``: (day, net paid by the end of it)."""
    return {"person_id": "p", "kind": kind, "period": "2026-01", "region_code": region, "due_fen": due_fen,
            "due_date": DUE, "paid_steps": list(steps), "employer_id": "91610902AA" if kind == "EMPLOYER" else None}


def test_the_issue_case_60_days_late_leaves_30000_fen_owed_after_payment(table):
    row = due((date(2026, 3, 16), 1_000_000))
    before = late_fee_owed(row, date(2026, 3, 15), table)
    assert (before.accrued_fen, before.owed_fen, before.accruing) == (29_500, 29_500, True)  # 59 days so far
    paid = late_fee_owed(row, date(2026, 3, 16), table)
    assert paid.fen_days == 1_000_000 * 60 and paid.accrued_fen == 30_000  # 2026-01-16 .. 2026-03-16
    assert (paid.owed_fen, paid.accruing, paid.paid_in_full_on) == (30_000, False, date(2026, 3, 16))
    assert paid.policy_version == table.policy_version
    later = late_fee_owed(row, date(2026, 12, 1), table)
    assert later == paid  # frozen at the payment day, and still owed: paying the contribution is not paying the fee


def test_a_part_paid_late_stops_accruing_on_its_payment_day(table):
    row = due((date(2026, 1, 25), 400_000), (date(2026, 2, 14), 1_000_000))
    mid = late_fee_owed(row, date(2026, 2, 1), table)
    assert mid.fen_days == 1_000_000 * 10 + 600_000 * 7 and mid.accrued_fen == 7_100 and mid.accruing
    done = late_fee_owed(row, date(2026, 6, 30), table)
    assert done.fen_days == 1_000_000 * 10 + 600_000 * 20 and done.accrued_fen == 11_000
    assert (done.owed_fen, done.paid_in_full_on, done.accruing) == (11_000, date(2026, 2, 14), False)


def test_a_part_paid_before_the_due_date_never_accrues(table):
    row = due((date(2026, 1, 10), 900_000), (date(2026, 1, 20), 1_000_000))
    fee = late_fee_owed(row, date(2026, 3, 1), table)
    assert fee.fen_days == 100_000 * 5 and fee.owed_fen == 250 and fee.paid_in_full_on == date(2026, 1, 20)


def test_paid_on_the_due_date_owes_no_fee(table):
    row = due((DUE, 1_000_000))
    for day in (DUE, date(2026, 1, 16), date(2026, 12, 31)):
        fee = late_fee_owed(row, day, table)
        assert (fee.accrued_fen, fee.owed_fen, fee.accruing, fee.paid_in_full_on) == (0, 0, False, None)


def test_not_yet_paid_the_fee_grows_with_the_day_asked(table):
    row = due()
    assert late_fee_owed(row, DUE, table) == NO_FEE  # the due date itself is on time
    assert [late_fee_owed(row, d, table).owed_fen for d in (date(2026, 1, 16), date(2026, 2, 14), date(2026, 3, 16))] \
        == [500, 15_000, 30_000]
    assert late_fee_owed(row, date(2026, 2, 14), table).accruing is True


def test_a_refund_reopens_the_month_and_the_fee_runs_again_until_paid_back(table):
    row = due((DUE, 1_000_000), (date(2026, 2, 1), 500_000), (date(2026, 2, 11), 1_000_000))
    fee = late_fee_owed(row, date(2026, 5, 1), table)
    assert fee.fen_days == 500_000 * 10 and fee.owed_fen == 2_500 and fee.paid_in_full_on == date(2026, 2, 11)


@pytest.mark.parametrize("kind", ["RESIDENT", "FLEXIBLE"])
def test_residents_and_flexible_workers_owe_no_fee(table, policies, kind):
    row = due(kind=kind)
    assert late_fee_owed(row, date(2026, 6, 1), table) == NO_FEE
    assert late_fees_owed([row], date(2026, 6, 1), policies) == [NO_FEE]


def test_fee_payments_and_waivers_plug_in_and_reduce_what_is_owed(table):
    """No event feeds these yet (issue #22); the function already answers for them."""
    row = due((date(2026, 3, 16), 1_000_000))
    part = late_fee_owed(row, date(2026, 4, 1), table, fees_paid_fen=10_000)
    assert (part.accrued_fen, part.fees_paid_fen, part.owed_fen) == (30_000, 10_000, 20_000)
    assert late_fee_owed(row, date(2026, 4, 1), table, fees_paid_fen=30_000).owed_fen == 0
    waived = late_fee_owed(row, date(2026, 4, 1), table, waived="waiver-event-id")
    assert (waived.accrued_fen, waived.waived, waived.owed_fen) == (30_000, True, 0)


def test_the_list_form_answers_per_row_and_a_row_without_a_table_carries_no_fee(policies):
    rows = [due((date(2026, 3, 16), 1_000_000)), due(kind="RESIDENT"), due(region="110101")]
    fees = late_fees_owed(rows, date(2026, 4, 1), policies)
    assert [f.owed_fen for f in fees] == [30_000, 0, 0]
    assert fees[2] == NO_FEE  # 110101 (Beijing) has no table here: shown without a fee, the list still answers


def test_a_row_is_listed_while_something_is_outstanding_or_its_fee_is_owed(table):
    from ledger.domain.arrears import listed_for

    row = due((date(2026, 3, 16), 1_000_000))
    assert listed_for(1_000_000, late_fee_owed(row, date(2026, 3, 15), table)) == "OUTSTANDING"
    assert listed_for(0, late_fee_owed(row, date(2026, 4, 1), table)) == "LATE_FEE_UNPAID"
    assert listed_for(0, late_fee_owed(row, date(2026, 4, 1), table, waived="w-1")) is None  # issue #22's waiver
    assert listed_for(0, late_fee_owed(due((DUE, 1_000_000)), date(2026, 4, 1), table)) is None
    assert listed_for(500, NO_FEE) == "OUTSTANDING"  # a resident's year: no fee, listed for the amount
