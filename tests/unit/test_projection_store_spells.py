"""Gap spells reproduce ``person_gap`` on every day: the stored form of the gap list and coverage rates."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

import projections.gap_spells as spells_module
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from entrypoints.simulation.county import generate_county
from ledger.domain.gaps import person_gap
from projections.entitlement import EntitlementProjection
from projections.gap_spells import gap_spells, line_on, year_spells
from ledger.domain.history import PersonHistory, ResidenceRecord, person_key
from projections.in_memory import rebuild
from tests.unit.projection_support import log_events

YEARS = (2024, 2025, 2026)


def every_day(year):
    day = date(year, 1, 1)
    while day.year == year:
        yield day
        day += timedelta(days=1)


@pytest.fixture(scope="module")
def county_view():
    system = bootstrap(Settings(persistence="memory", id_key=b"spells"))
    generate_county(5, 160).apply_to(system.ledger)
    events = [e for e in log_events(system.ledger) if person_key(e)]
    view = rebuild(events, [EntitlementProjection(system.policies)])["entitlement"]
    yield view, system.policies
    system.close()


@pytest.fixture(scope="module")
def rare_rows():
    """The rows of a 300-person county (every rare scenario occurs) with a transfer, two enrollments or a reversal."""
    system = bootstrap(Settings(persistence="memory", id_key=b"spells-rare"))
    generate_county(11, 300).apply_to(system.ledger)
    events = [e for e in log_events(system.ledger) if person_key(e)]
    view = rebuild(events, [EntitlementProjection(system.policies)])["entitlement"]
    rows = [row for row in view.values()
            if row["history"].transfers or len(row["history"].enrollments) > 1
            or any(p.reversal for p in row["history"].payments.values())]
    yield rows, system.policies
    system.close()


def _check_every_day(rows, policies) -> list[dict]:
    """Spells of each row against ``person_gap`` on every day of YEARS; returns all spells."""
    out = []
    for row in rows:
        spells = gap_spells(row, YEARS, policies)
        out += spells
        for year in YEARS:
            mine = [s for s in spells if s["year"] == year]
            assert all(a["valid_until"] < b["valid_from"] for a, b in zip(mine, mine[1:]))  # no overlaps
            for day in every_day(year):
                expected = person_gap(row, year, day, policies)
                found = [s for s in mine if s["valid_from"] <= day <= s["valid_until"]]
                if expected is None:
                    assert found == []
                else:
                    assert len(found) == 1 and line_on(found[0], day) == expected, (row["history"].person_id, day)
    return out


def test_spells_give_person_gap_on_every_day_of_three_years(county_view):
    view, policies = county_view
    spells = _check_every_day(view.values(), policies)
    assert "month" in {s["detail_mode"] for s in spells}  # employee months merged into one spell


def test_spells_of_transfers_duplicates_and_reversals_on_every_day(rare_rows):
    rows, policies = rare_rows
    spells = _check_every_day(rows, policies)
    reasons = {s["reason"] for s in spells}
    assert {"TRANSFER_INCOMPLETE", "DUPLICATE_ENROLLMENT"} <= reasons


def _stub(detail_for):
    def year_lines_stub(row, year, policies):
        def line(day):
            return ("p", year, "610902100001", "610902100", "610902", False, "NOT_ENROLLED", "未参保登记",
                    detail_for(day), False, None, None, None, None, [])
        return line
    return year_lines_stub


ROW = {"history": PersonHistory("p", residence=[ResidenceRecord(date(2020, 1, 1), "610902100001", "RESIDENT", "e1")]),
       "employee_years": {}, "years": {}, "summary": {}}


@pytest.mark.parametrize("detail_for, mode, count", [
    (lambda day: "not enrolled", "fixed", 1),
    (lambda day: f"no resident enrollment in force on {day.isoformat()}", "day", 1),
])
def test_texts_that_name_the_day_are_kept_as_templates(monkeypatch, detail_for, mode, count):
    # (A text may name the day by its ISO date, or -- for employee-scheme persons, whose
    # spells break at every month -- by its month; see projections/gap_spells.py.)
    monkeypatch.setattr(spells_module, "year_lines", _stub(detail_for))
    spells = year_spells(ROW, 2025, None)
    assert len(spells) == count and spells[0]["detail_mode"] == mode
    for day in every_day(2025):
        (spell,) = [s for s in spells if s["valid_from"] <= day <= s["valid_until"]]
        assert line_on(spell, day)["detail"] == detail_for(day)


def test_months_of_an_employee_are_merged_into_one_spell(monkeypatch):
    monkeypatch.setattr(spells_module, "year_lines", _stub(lambda day: f"no contribution for {day:%Y-%m}"))
    row = {**ROW, "employee_years": {2025: {}}}
    (spell,) = year_spells(row, 2025, None)
    assert spell["detail_mode"] == "month" and spell["detail"] == "no contribution for {month}"
    assert line_on(spell, date(2025, 7, 9))["detail"] == "no contribution for 2025-07"
