"""The county dashboard's figures (projections.dashboard): rates rounded, ranking, weeks, arrears, reconciliation."""
from __future__ import annotations

from datetime import date

from projections import dashboard as f


def stats(residents: int, covered: int, subsidised: int = 0, subsidised_covered: int = 0) -> dict[str, int]:
    return {"residents": residents, "covered": covered, "subsidised": subsidised,
            "subsidised_covered": subsidised_covered}


def test_rates_are_rounded_half_up_not_truncated():
    assert f.rate_bp(144, 166) == 8675  # 86.746... truncation would say 86.74
    assert f.percent_text(f.rate_bp(144, 166)) == "86.75%"
    assert f.rate_bp(1, 3) == 3333 and f.rate_bp(2, 3) == 6667
    assert f.rate_bp(0, 0) is None and f.percent_text(None) is None
    assert f.percent_text(10000) == "100.00%" and f.percent_text(5) == "0.05%"


def test_people_short_is_the_smallest_number_that_reaches_the_target():
    assert f.people_short(94, 100, 9500) == 1
    assert f.people_short(95, 100, 9500) == 0
    assert f.people_short(188, 303, 9500) == 100  # 288 / 303 = 95.05 %, 287 / 303 = 94.72 %
    assert f.rate_bp(188 + 100, 303) >= 9500 > f.rate_bp(188 + 99, 303)
    assert f.people_short(3, 4, None) == 0 and f.people_short(0, 0, 9500) == 0


def test_areas_are_ranked_furthest_from_the_target_first_with_the_gap():
    areas = {"610902100": stats(100, 93, 10, 10), "610902101": stats(100, 87, 10, 9),
             "610902102": stats(100, 96, 10, 8), "610902103": stats(0, 0)}
    rows = f.ranked_areas(areas, 9500, 10000)
    assert [r["code"] for r in rows] == ["610902101", "610902100", "610902102", "610902103"]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    first = rows[0]
    assert first["gap_bp"] == 800 and first["people_short"] == 8 and first["meets_target"] is False
    assert first["subsidised_meets_target"] is False and first["subsidised_people_short"] == 1
    third = rows[2]
    assert third["meets_target"] is True and third["gap_bp"] == -100 and third["people_short"] == 0
    assert third["subsidised_coverage_percent"] == "80.00%" and third["subsidised_meets_target"] is False
    assert rows[3]["coverage_bp"] is None and rows[3]["meets_target"] is None


def test_equal_rates_rank_by_subsidised_coverage_then_people_short():
    rows = f.ranked_areas({"a": stats(10, 9, 2, 2), "b": stats(10, 9, 2, 1), "c": stats(20, 18, 0, 0)}, 9500, 10000)
    assert [r["code"] for r in rows] == ["b", "a", "c"]


def test_no_target_declared_means_no_gap():
    row = f.area_row("610902100", stats(10, 9), None, None)
    assert row["gap_bp"] is None and row["meets_target"] is None and row["people_short"] == 0


def test_total_of_adds_the_counts():
    assert f.total_of({"a": stats(3, 2, 1, 1), "b": stats(5, 1, 2, 0)}) == stats(8, 3, 3, 1)


def due(fen: int, *steps: tuple[date, int], assessed: bool = True) -> dict:
    return {"due_fen": fen, "assessed": assessed, "paid_steps": list(steps)}


def test_weekly_collection_is_cumulative_per_week_and_counts_refunds_and_early_payments():
    start, end = date(2024, 9, 1), date(2024, 9, 20)
    dues = [due(40000, (date(2024, 8, 20), 40000)),            # paid before the period: in week 1
            due(40000, (date(2024, 9, 9), 40000)),             # week 2
            due(40000, (date(2024, 9, 3), 40000), (date(2024, 9, 16), 0)),  # refunded in week 3
            due(40000, (date(2024, 9, 30), 40000)),            # after the period
            due(40000, (date(2024, 9, 2), 40000), assessed=False)]  # due from the enrollment, not assessed: counts
    weeks = f.weekly_collection(dues, start, end)
    assert [(w["from"], w["to"]) for w in weeks] == [
        (date(2024, 9, 1), date(2024, 9, 7)), (date(2024, 9, 8), date(2024, 9, 14)),
        (date(2024, 9, 15), date(2024, 9, 20))]
    assert [w["assessed_fen"] for w in weeks] == [200000] * 3
    assert [w["collected_fen"] for w in weeks] == [120000, 160000, 120000]
    assert [w["collected_bp"] for w in weeks] == [6000, 8000, 6000]
    assert f.weekly_collection(dues, end, start) == []


def test_an_overpayment_counts_only_up_to_what_was_due():
    weeks = f.weekly_collection([due(100, (date(2024, 9, 1), 250))], date(2024, 9, 1), date(2024, 9, 7))
    assert weeks[0]["collected_fen"] == 100 and weeks[0]["collected_bp"] == 10000


def test_compare_years_pairs_weeks_by_number():
    this = f.weekly_collection([due(100, (date(2024, 9, 2), 50))], date(2024, 9, 1), date(2024, 9, 14))
    last = f.weekly_collection([due(80, (date(2023, 9, 9), 80))], date(2023, 9, 1), date(2023, 9, 21))
    rows = f.compare_years(this, last)
    assert [r["week"] for r in rows] == [1, 2, 3]
    assert [r["collected_bp"] for r in rows] == [5000, 5000, None]
    assert [r["last_collected_bp"] for r in rows] == [0, 10000, 10000]
    assert rows[2]["from"] is None and rows[2]["last_from"] == date(2023, 9, 15)


def test_arrears_totals_sum_outstanding_and_late_fees_per_kind():
    rows = [{"person_id": "p1", "kind": "RESIDENT", "outstanding_fen": 40000, "late_fee_fen": 0},
            {"person_id": "p1", "kind": "EMPLOYER", "outstanding_fen": 0, "late_fee_fen": 123},
            {"person_id": "p2", "kind": "EMPLOYER", "outstanding_fen": 50000, "late_fee_fen": 25}]
    t = f.arrears_totals(rows)
    assert (t["rows"], t["persons"], t["outstanding_fen"], t["late_fee_fen"]) == (3, 2, 90000, 148)
    assert t["by_kind"]["EMPLOYER"] == {"rows": 2, "outstanding_fen": 50000, "late_fee_fen": 148}
    assert f.arrears_totals([])["outstanding_fen"] == 0


def test_reconciliation_days_get_a_state_newest_first():
    days = [
        {"business_date": "2024-10-01", "statements": 1, "ledger_rows": 3, "difference_fen": 0, "open_discrepancies": 0,
         "pending_statements": 0, "missing_statements": 0},
        {"business_date": "2024-10-02", "statements": 1, "ledger_rows": 3, "difference_fen": -500,
         "open_discrepancies": 1, "pending_statements": 0, "missing_statements": 0},
        {"business_date": "2024-10-03", "statements": 0, "ledger_rows": 2, "difference_fen": -800,
         "open_discrepancies": 0, "pending_statements": 0, "missing_statements": 1},
        {"business_date": "2024-10-04", "statements": 0, "ledger_rows": 2, "difference_fen": -800,
         "open_discrepancies": 0, "pending_statements": 0, "missing_statements": 0},
        {"business_date": "2024-10-05", "statements": 1, "ledger_rows": 0, "difference_fen": 0,
         "open_discrepancies": 0, "pending_statements": 1, "missing_statements": 0},
    ]
    out = f.reconciliation_days(days)
    assert [d["business_date"] for d in out] == ["2024-10-05", "2024-10-04", "2024-10-03", "2024-10-02", "2024-10-01"]
    assert [d["state"] for d in out] == ["PENDING", "AWAITING_STATEMENT", "MISSING_STATEMENT", "DIFFERENCE", "BALANCED"]
    assert set(d["state"] for d in out) == set(f.RECONCILIATION_STATES)
    assert len(f.reconciliation_days(days, last=2)) == 2
