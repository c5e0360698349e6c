"""Coverage gaps per grid (应保尽保): one person per reason, subsidised first, and the rates per grid and township."""
from __future__ import annotations

from datetime import date

import pytest

from projections.coverage_gaps import REASON_LABELS, REASONS, coverage_rates, gap_list, rate_bp
from tests.unit.projection_support import (
    API,
    HANYIN,
    enroll,
    entitlement_view,
    grant,
    ledger,  # noqa: F401  (fixture)
    number,
    pay_year,
    residence,
)

GRID_A = "610902100001"
GRID_B = "610902100002"  # same township (610902100) as A
GRID_C = "610902200001"  # another township
AS_OF = date(2026, 3, 1)


@pytest.fixture()
def town(ledger):
    """A small township: who is who, by the reason we expect for coverage year 2026."""
    p = {}
    # grid A
    n = number(1)
    p["covered"] = enroll(ledger, n, date(2024, 9, 10), grid=GRID_A)
    pay_year(ledger, n, 2025, date(2024, 10, 8))
    pay_year(ledger, n, 2026, date(2025, 10, 8))
    n = number(3)
    p["subsidised_covered"] = enroll(ledger, n, date(2025, 9, 10), grid=GRID_A)
    grant(ledger, n, "EXTREME_POVERTY", date(2024, 1, 1), record_id="MZ-3")
    n = number(5)
    p["subsidised_gap"] = enroll(ledger, n, date(2025, 9, 10), grid=GRID_A)
    grant(ledger, n, "MIN_LIVING", date(2024, 1, 1), record_id="MZ-5")  # owes 250 yuan, paid nothing
    n = number(7)
    p["duplicate"] = enroll(ledger, n, date(2025, 9, 10), grid=GRID_A)
    enroll(ledger, n, date(2025, 11, 1), scheme="EMPLOYEE", region=HANYIN, employer_id="91610921XX")
    n = number(9)
    p["transfer"] = enroll(ledger, n, date(2024, 9, 10), grid=GRID_A)
    pay_year(ledger, n, 2025, date(2024, 10, 8))
    ledger.transfer_out(p["transfer"], transfer_id="T9", counterpart_region=HANYIN, effective_date=date(2025, 6, 30),
                        provenance=API)
    # grid B
    p["not_enrolled"] = residence(ledger, number(11), "RESIDENT", date(2020, 1, 1), grid=GRID_B)
    p["unpaid"] = enroll(ledger, number(13), date(2025, 9, 15), grid=GRID_B)
    n = number(15)
    p["lapsed"] = enroll(ledger, n, date(2024, 9, 10), grid=GRID_B)
    pay_year(ledger, n, 2025, date(2024, 10, 8))
    # grid C
    n = number(17)
    p["waiting"] = enroll(ledger, n, date(2026, 2, 1), grid=GRID_C)
    pay_year(ledger, n, 2026, date(2026, 2, 1))  # first enrollment, late: covered from 2026-05-01
    n = number(19)
    p["dead"] = enroll(ledger, n, date(2025, 9, 10), grid=GRID_C)
    residence(ledger, n, "DECEASED", date(2026, 1, 15))
    n = number(21)
    p["moved"] = enroll(ledger, n, date(2025, 9, 10), grid=GRID_C)
    residence(ledger, n, "MOVED_OUT", date(2026, 2, 1))
    # known only from a tax payment: no household grid, so in no grid's list
    pay_year(ledger, number(23), 2026, date(2025, 10, 8))
    return {k: str(v) for k, v in p.items()}


def test_one_reason_per_person_subsidised_first(ledger, town):
    view = entitlement_view(ledger)
    gaps = gap_list(view, 2026, AS_OF, ledger.policies)
    by_person = {g["person_id"]: g["reason"] for g in gaps}
    assert by_person == {
        town["subsidised_gap"]: "SUBSIDISED_NOT_COVERED",
        town["duplicate"]: "DUPLICATE_ENROLLMENT",
        town["transfer"]: "TRANSFER_INCOMPLETE",
        town["not_enrolled"]: "NOT_ENROLLED",
        town["unpaid"]: "ENROLLED_UNPAID",
        town["lapsed"]: "LAPSED",
        town["waiting"]: "IN_WAITING_PERIOD",
    }
    assert [g["reason"] for g in gaps] == list(REASONS)  # the list is in priority order
    first = gaps[0]
    assert first["subsidised"] and first["subsidy_category"] == "MIN_LIVING" and first["outstanding_fen"] == 25000
    assert first["label"] == REASON_LABELS["SUBSIDISED_NOT_COVERED"] and "not paid" in first["detail"]
    waiting = next(g for g in gaps if g["reason"] == "IN_WAITING_PERIOD")
    assert "covered from 2026-05-01" in waiting["detail"]
    transfer = next(g for g in gaps if g["reason"] == "TRANSFER_INCOMPLETE")
    assert view[town["transfer"]]["history"]["transfers"]["T9"]["out_event_id"] in transfer["sources"]
    assert set(REASON_LABELS) == set(REASONS)
    # per grid and per township
    assert {g["person_id"] for g in gap_list(view, 2026, AS_OF, ledger.policies, grid=GRID_B)} == {
        town["not_enrolled"], town["unpaid"], town["lapsed"]}
    assert [g["person_id"] for g in gap_list(view, 2026, AS_OF, ledger.policies, township="610902200")] == [
        town["waiting"]]


def test_coverage_rates_per_grid_and_township_in_basis_points(ledger, town):
    rates = coverage_rates(entitlement_view(ledger), 2026, AS_OF, ledger.policies)
    a, b, c = (rates["grids"][g] for g in (GRID_A, GRID_B, GRID_C))
    assert (a["residents"], a["covered"], a["coverage_bp"], a["coverage_percent"]) == (5, 2, 4000, "40.00%")
    assert (a["subsidised"], a["subsidised_covered"], a["subsidised_coverage_bp"]) == (2, 1, 5000)
    assert a["gaps_by_reason"]["SUBSIDISED_NOT_COVERED"] == 1
    assert (b["residents"], b["covered"], b["coverage_bp"], b["subsidised_coverage_bp"]) == (3, 0, 0, None)
    assert (c["residents"], c["covered"]) == (1, 0)  # the dead and the moved-out do not count
    town_a = rates["townships"]["610902100"]
    assert (town_a["residents"], town_a["covered"], town_a["coverage_bp"]) == (8, 2, 2500)
    assert set(rates["townships"]) == {"610902100", "610902200"}
    assert all(isinstance(s["coverage_bp"], int) for s in rates["grids"].values())


def test_before_the_year_the_list_shows_who_will_not_be_covered_on_1_january(ledger, town):
    view = entitlement_view(ledger)
    gaps = {g["person_id"]: g for g in gap_list(view, 2026, date(2025, 12, 1), ledger.policies)}
    assert town["covered"] not in gaps and town["subsidised_covered"] not in gaps
    assert gaps[town["lapsed"]]["day"] == date(2026, 1, 1)
    # the waiting person was registered only on 2026-02-01: on 1 Jan nobody said they lived there
    assert town["waiting"] not in gaps
    assert gaps[town["dead"]]["reason"] == "ENROLLED_UNPAID"  # alive and unpaid on 1 Jan (died on 15 Jan)
    # in the 2025 list the lapsed person is covered, the transferred person too (the paid year stays covered)
    gaps_2025 = {g["person_id"] for g in gap_list(view, 2025, date(2025, 8, 1), ledger.policies)}
    assert town["lapsed"] not in gaps_2025 and town["transfer"] not in gaps_2025


def test_rate_rounds_down_so_100_percent_means_everyone():
    assert rate_bp(19_999, 20_000) == 9_999 and rate_bp(3, 3) == 10_000 and rate_bp(0, 0) is None
