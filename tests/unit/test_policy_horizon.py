"""The policy horizon (政策视界): a waiting period that rests on years the ledger cannot see says so.

Case of issue 22: a person last covered in 2020, paying 2026 on 2026-04-01 and back-paying 2021-2024, is
covered from 2026-10-01 (gap 5, waiting 3 + (5 - 1) - 4 = 3, raised to the 6-month floor of a repaired
break of 4+ years, domain.md); with no history before 2026 the same payments give a note instead.
"""
from __future__ import annotations

from datetime import date

from tests.unit.http_support import client, system  # noqa: F401  (fixtures)
from tests.unit.projection_support import (
    HANBIN,
    enroll,
    entitlement_view,
    ledger,  # noqa: F401  (fixture)
    number,
    pay_year,
)


def _pay_2026_and_back_pay(ledger, n):
    pay_year(ledger, n, 2026, date(2026, 4, 1), voucher=f"P2026-{n[-4:]}")
    for year in (2021, 2022, 2023, 2024):
        pay_year(ledger, n, year, date(2026, 3, 20), voucher=f"B{year}-{n[-4:]}",
                 amount_fen=ledger.policies.get(HANBIN, year).resident.individual_share_fen)


def test_last_covered_in_2020_back_paying_four_years_waits_six_months(ledger):
    n = number(71)
    pid = enroll(ledger, n, date(2019, 10, 1))  # enrolled for 2020 (its concentrated period), history from 2019
    pay_year(ledger, n, 2020, date(2019, 11, 5), amount_fen=28000)  # 2020's national floor: 280 yuan
    _pay_2026_and_back_pay(ledger, n)
    y = entitlement_view(ledger)[str(pid)]["years"][2026]
    assert (y["gap_years"], y["back_paid_years"]) == (5, 4)
    assert y["waiting_months"] == 6  # 3 + max(0, 5 - 1 - 4) = 3, raised to 6 for a repaired break of 4+ years
    assert y["coverage_start"] == date(2026, 10, 1)
    assert y["history_unknown_before"] is None and y["history_note"] is None  # the count ended on 2020, a known year


def test_without_earlier_history_the_explanation_says_earlier_years_are_unknown(ledger):
    n = number(72)
    pid = enroll(ledger, n, date(2026, 3, 1))  # the ledger's first record of the person: 2026
    pay_year(ledger, n, 2026, date(2026, 4, 1), voucher="P2026-only")
    y = entitlement_view(ledger)[str(pid)]["years"][2026]
    assert y["first_time"] is True and y["gap_years"] == 0
    assert y["history_unknown_before"] == 2026 and y["history_horizon_basis"] == "FIRST_RECORD"
    assert "2026 年以前的参保情况无从得知" in y["history_note"] and "未迁移" in y["history_note"]


def test_a_count_that_reaches_the_first_policy_table_names_the_policy_horizon(ledger):
    n = number(73)
    pid = enroll(ledger, n, date(2017, 3, 1))  # before the first table (2018): the horizon is the limit
    pay_year(ledger, n, 2026, date(2026, 4, 1), voucher="P2026-h")
    y = entitlement_view(ledger)[str(pid)]["years"][2026]
    first = min(ledger.policies.years(HANBIN))
    assert y["gap_years"] == 2026 - first  # every year back to the first table, none before
    assert y["history_unknown_before"] == first and y["history_horizon_basis"] == "POLICY_HORIZON"
    assert f"{first} 年以前的参保情况超出本账本的政策视界" in y["history_note"]


def test_a_covered_last_year_needs_no_note(ledger):
    n = number(74)
    pid = enroll(ledger, n, date(2024, 9, 10))
    pay_year(ledger, n, 2025, date(2024, 10, 8), voucher="P2025-c")
    pay_year(ledger, n, 2026, date(2025, 10, 8), voucher="P2026-c")
    y = entitlement_view(ledger)[str(pid)]["years"][2026]
    assert y["covered_last_year"] is True and y["history_note"] is None


def test_the_api_gives_the_horizon_as_a_field_and_chinese_text(client):
    from tests.unit.http_support import CLERK, enroll as api_enroll, pay, person_path

    who = number(75)
    api_enroll(client, who, effective_date="2026-03-01")
    pay(client, who, "H-API-2026", period_start="2026-01-01", period_end="2026-12-31",
        paid_at="2026-04-01T09:30:00+08:00", credited_on="2026-04-01")
    r = client.get(person_path(who, "/entitlement"), params={"year": 2026, "on": "2026-04-02"}, headers=CLERK)
    assert r.status_code == 200, r.text
    year = r.json()["resident_year"]
    assert year["history_unknown_before"] == 2026 and year["history_horizon_basis"] == "FIRST_RECORD"
    assert "无从得知" in year["history_note"]


def test_the_note_is_said_from_its_code_the_same_chinese_as_the_domains_and_english_on_request(ledger):
    """``ledger entitlement`` says the note from the basis and the year (catalogue ``[horizon]``): in Chinese the
    domain's own sentence, word for word; in English no Chinese at all."""
    from entrypoints.catalogue import _CJK
    from entrypoints.http.coverage_reasons import history_note

    n = number(76)
    pid = enroll(ledger, n, date(2017, 3, 1))
    pay_year(ledger, n, 2026, date(2026, 4, 1), voucher="P2026-say")
    horizon = entitlement_view(ledger)[str(pid)]["years"][2026]
    m = number(77)
    qid = enroll(ledger, m, date(2026, 3, 1))
    pay_year(ledger, m, 2026, date(2026, 4, 1), voucher="P2026-first")
    first = entitlement_view(ledger)[str(qid)]["years"][2026]
    for y in (horizon, first):
        assert history_note(y, 2026) == y["history_note"]
        en = history_note(y, 2026, "en")
        assert en and not _CJK.search(en) and str(y["history_unknown_before"]) in en
    assert "policy horizon" in history_note(horizon, 2026, "en")
    assert "not migrated" in history_note(first, 2026, "en") and "first enrollment" in history_note(first, 2026, "en")
