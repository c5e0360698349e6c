"""Coverage gaps per grid (应保尽保): one person per reason, subsidised first, and the rates per grid and township.

Also the rules the generator's truth (entrypoints.simulation.county.expected_outcome) decides
with: an open transfer or a duplicate enrollment counts as not covered whatever the
entitlement says, those record problems come before the subsidised reason, and LAPSED
means nothing (net) paid for the year.
"""
from __future__ import annotations

from datetime import date

import pytest

from entrypoints.simulation.county import GAP_REASONS
from ledger.domain.gaps import gap_reason, PRECEDENCE, REASON_LABELS, REASONS
from ledger.domain.history import Enrollment, PersonHistory
from projections.coverage_gaps import coverage_rates, gap_list, rate_bp
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
    enroll(ledger, n, date(2025, 11, 1), scheme="EMPLOYEE", employer_id="91610902XX")  # same region
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
    assert view[town["transfer"]]["history"].transfers["T9"].out_event_id in transfer["sources"]
    assert transfer["detail"].startswith(
        "not counted as covered: transfer T9 out of 610902 汉滨区 to 610921 汉阴县 on 2025-06-30 has no transfer in")
    # Monday 30 June 2025 + 5 working days (the policy's receiving limit): Monday 7 July.
    assert "must complete it by 2025-07-07 (5 working days, 转入地办结时限), overdue after that" in transfer["detail"]
    duplicate = next(g for g in gaps if g["reason"] == "DUPLICATE_ENROLLMENT")
    enrollments = view[town["duplicate"]]["history"].enrollments
    assert len(enrollments) == 2 and all(e.event_id in duplicate["sources"] for e in enrollments)
    assert duplicate["detail"].startswith("not counted as covered: 2 enrollments in force (RESIDENT in 610902 汉滨区 "
                                          "from 2025-09-10, EMPLOYEE in 610902 汉滨区 from 2025-11-01)")
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
    # in the 2025 list the lapsed person is covered; the transferred person is covered until the out half
    # (2025-06-30), then not counted as covered: the in half never came
    gaps_2025 = {g["person_id"]: g for g in gap_list(view, 2025, date(2025, 8, 1), ledger.policies)}
    assert town["lapsed"] not in gaps_2025 and gaps_2025[town["transfer"]]["reason"] == "TRANSFER_INCOMPLETE"
    assert town["transfer"] not in {g["person_id"] for g in gap_list(view, 2025, date(2025, 6, 29), ledger.policies)}


def test_rate_rounds_down_so_100_percent_means_everyone():
    assert rate_bp(19_999, 20_000) == 9_999 and rate_bp(3, 3) == 10_000 and rate_bp(0, 0) is None


# --------------------------------------------------------------------------- the rules of the generator's truth
def _line(view, ledger, pid, day, year=2026):
    return next((g for g in gap_list(view, year, day, ledger.policies) if g["person_id"] == str(pid)), None)


def test_a_duplicate_enrollment_is_not_counted_as_covered_even_when_paid_until_resolved(ledger):
    n = number(41)
    pid = enroll(ledger, n, date(2024, 9, 10), grid=GRID_A)
    pay_year(ledger, n, 2025, date(2024, 10, 8))
    pay_year(ledger, n, 2026, date(2025, 10, 8))
    enroll(ledger, n, date(2026, 1, 10), scheme="EMPLOYEE", employer_id="91610902XX")  # same region
    view = entitlement_view(ledger)
    assert _line(view, ledger, pid, date(2026, 1, 9)) is None  # one enrollment in force: covered
    line = _line(view, ledger, pid, AS_OF)
    assert line["reason"] == "DUPLICATE_ENROLLMENT" and line["covered"] is False and line["label"] == "重复参保"
    assert line["scheme"] == "RESIDENT" and "; entitlement: covered: resident scheme 2026" in line["detail"]
    rates = coverage_rates(view, 2026, AS_OF, ledger.policies)["grids"][GRID_A]
    assert (rates["residents"], rates["covered"], rates["gaps_by_reason"]["DUPLICATE_ENROLLMENT"]) == (1, 0, 1)
    # resolved: the employee enrollment ends on 2026-03-10, which resolves the duplicate from that day
    employee = next(e for e in view[str(pid)]["history"].enrollments if e.scheme == "EMPLOYEE")
    ledger.end_enrollment(pid, reason="DUPLICATE_RESOLVED", effective_date=date(2026, 3, 10),
                          enrollment_id=employee.enrollment_id, provenance=API)
    view = entitlement_view(ledger)
    assert _line(view, ledger, pid, date(2026, 3, 9))["reason"] == "DUPLICATE_ENROLLMENT"
    assert _line(view, ledger, pid, date(2026, 3, 10)) is None
    assert coverage_rates(view, 2026, date(2026, 3, 10), ledger.policies)["grids"][GRID_A]["covered"] == 1


def test_a_transfer_completed_the_same_day_is_a_handover_not_a_duplicate(ledger):
    n = number(47)
    pid = enroll(ledger, n, date(2024, 9, 10), grid=GRID_A)
    pay_year(ledger, n, 2025, date(2024, 10, 8))
    pay_year(ledger, n, 2026, date(2025, 10, 8))
    ledger.transfer_out(pid, transfer_id="T47", counterpart_region=HANYIN, effective_date=date(2026, 2, 2),
                        provenance=API)
    ledger.transfer_in(id_type="RESIDENT_ID", id_number=n, name="王芳", transfer_id="T47", counterpart_region=HANBIN,
                       account_balance_fen=0, contribution_months=0, scheme="RESIDENT", region_code=HANYIN,
                       grid_code="610921100001", effective_date=date(2026, 2, 2), provenance=API)
    view = entitlement_view(ledger)
    assert len(view[str(pid)]["history"].enrollments) == 2
    for day in (date(2026, 2, 1), date(2026, 2, 2), date(2026, 2, 3)):
        assert _line(view, ledger, pid, day) is None, day


def test_an_open_transfer_is_not_counted_as_covered_from_its_out_half_until_the_in_half(ledger):
    n = number(43)
    pid = enroll(ledger, n, date(2024, 9, 10), grid=GRID_A)
    pay_year(ledger, n, 2025, date(2024, 10, 8))
    pay_year(ledger, n, 2026, date(2025, 10, 8))
    ledger.transfer_out(pid, transfer_id="T43", counterpart_region=HANYIN, effective_date=date(2026, 2, 2),
                        provenance=API)
    view = entitlement_view(ledger)
    assert _line(view, ledger, pid, date(2026, 2, 1)) is None
    for day in (date(2026, 2, 2), date(2026, 12, 31)):  # no grace period: suspended from the out half on
        line = _line(view, ledger, pid, day)
        assert line["reason"] == "TRANSFER_INCOMPLETE" and not line["covered"], day
        assert "; entitlement: covered: resident scheme 2026" in line["detail"]
    assert coverage_rates(view, 2026, AS_OF, ledger.policies)["grids"][GRID_A]["covered"] == 0
    ledger.transfer_in(id_type="RESIDENT_ID", id_number=n, name="王芳", transfer_id="T43", counterpart_region=HANBIN,
                       account_balance_fen=0, contribution_months=0, scheme="RESIDENT", region_code=HANYIN,
                       grid_code="610921100001", effective_date=date(2026, 2, 9), provenance=API)
    view = entitlement_view(ledger)
    assert _line(view, ledger, pid, date(2026, 2, 8))["reason"] == "TRANSFER_INCOMPLETE"
    assert _line(view, ledger, pid, date(2026, 2, 9)) is None  # completed: the paid year stays covered
    assert coverage_rates(view, 2026, AS_OF, ledger.policies)["grids"][GRID_A]["covered"] == 1


def test_record_problems_come_before_the_subsidised_reason(ledger):
    n = number(45)
    pid = enroll(ledger, n, date(2025, 9, 10), grid=GRID_A)
    grant(ledger, n, "MIN_LIVING", date(2024, 1, 1), record_id="MZ-45")  # owes 250 yuan, paid nothing
    enroll(ledger, n, date(2025, 11, 1), scheme="EMPLOYEE", employer_id="91610902XX")  # same region
    line = _line(entitlement_view(ledger), ledger, pid, AS_OF)
    assert line["reason"] == "DUPLICATE_ENROLLMENT" and line["subsidised"] and line["subsidy_category"] == "MIN_LIVING"
    assert _line(entitlement_view(ledger), ledger, pid, date(2025, 12, 1))["reason"] == "DUPLICATE_ENROLLMENT"


def test_lapsed_means_nothing_paid_for_the_year_a_partial_payer_is_enrolled_unpaid(ledger):
    people = {}
    for seq, name in ((51, "nothing"), (53, "part"), (55, "reversed"), (57, "refunded"), (59, "part_late")):
        n = number(seq)
        people[name] = (n, enroll(ledger, n, date(2024, 9, 10), grid=GRID_B))
        pay_year(ledger, n, 2025, date(2024, 10, 8))  # all insured in 2025
    n, _ = people["part"]
    pay_year(ledger, n, 2026, date(2025, 10, 8), amount_fen=35000)  # 50 yuan short
    n, _ = people["reversed"]
    v = pay_year(ledger, n, 2026, date(2025, 10, 8))
    reverse(ledger, n, v, 40000, date(2025, 10, 10), year=2026)  # 冲正: as if never paid
    n, _ = people["refunded"]
    v = pay_year(ledger, n, 2026, date(2025, 10, 8))
    refund(ledger, n, v, 40000, date(2026, 2, 1), year=2026)  # all of it refunded on 2026-02-01
    n, _ = people["part_late"]
    pay_year(ledger, n, 2026, date(2026, 2, 20), amount_fen=10000)
    view = entitlement_view(ledger)

    def reason(name, day):
        return _line(view, ledger, people[name][1], day)["reason"]

    assert reason("nothing", AS_OF) == "LAPSED" and reason("reversed", AS_OF) == "LAPSED"
    assert reason("part", AS_OF) == "ENROLLED_UNPAID"
    assert _line(view, ledger, people["refunded"][1], date(2026, 1, 31)) is None
    assert reason("refunded", date(2026, 2, 1)) == "LAPSED"
    assert reason("part_late", date(2026, 2, 19)) == "LAPSED" and reason("part_late", date(2026, 2, 20)) == "ENROLLED_UNPAID"
    # never insured before: unpaid, not lapsed, whatever was paid
    n = number(61)
    pid = enroll(ledger, n, date(2025, 9, 10), grid=GRID_B)
    assert _line(entitlement_view(ledger), ledger, pid, AS_OF)["reason"] == "ENROLLED_UNPAID"


def test_reasons_are_decided_in_the_order_of_the_generators_truth():
    assert PRECEDENCE == GAP_REASONS and set(PRECEDENCE) == set(REASONS)
    # a subsidised person who paid and waits is in a waiting period (the subsidised label says "not enrolled or
    # not paid"); not enrolled or not paid, the subsidised reason comes first
    enrollment = Enrollment("E1", "RESIDENT", False, "610902", None, None, "CLERK", None, date(2025, 9, 10), None, None,
                            "e1", None)
    row = {"history": PersonHistory("p1", enrollments=[enrollment]), "employee_years": {},
           "years": {2026: {"funding": [{"from": date(2026, 2, 1), "until": None}], "insured": False}}}
    assert gap_reason(row, 2026, date(2026, 3, 1), True) == ("IN_WAITING_PERIOD", [])
    assert gap_reason(row, 2026, date(2026, 1, 15), True) == ("SUBSIDISED_NOT_COVERED", [])
    assert gap_reason(row, 2026, date(2026, 1, 15), False) == ("ENROLLED_UNPAID", [])
    assert gap_reason({**row, "history": PersonHistory("p1")}, 2026, date(2026, 3, 1), True) == (
        "SUBSIDISED_NOT_COVERED", [])
