"""The synthetic county: deterministic, realistic in its shares, and its truth is what the ledger does.

The replay tests drive the real application service (in-memory event store) with a
~2,000-person county and check that exactly the injected bad records fail, that the
resends are recognised, and that the ledger's own figures per person (net paid,
assessed due, enrollments in force) agree with the generator's facts.
"""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest

from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.errors import DomainError
from ledger.domain.identity import make_resident_id, parse_identity
from ledger.domain.places import parse_grid_code
from ledger.policy import default_policy_book
from entrypoints.simulation import (
    GAP_REASONS,
    IN_COUNTY,
    IN_WAITING_PERIOD,
    LAPSED,
    NOT_ENROLLED,
    SUBSIDISED_NOT_COVERED,
    County,
    SimPerson,
    expected_outcome,
    generate_county,
    write_csv,
)
from entrypoints.simulation.county import (
    BACK_PAY,
    LATE,
    NON_PAYER,
    ON_TIME,
    UNDERPAY,
    SimEnrollment,
    SimPayment,
    SimStatus,
)

YEAR = 2025
AS_OF = date(2025, 3, 31)


@pytest.fixture(scope="module")
def county() -> County:
    return generate_county(seed=20250331, people=2000)


@pytest.fixture(scope="module")
def replayed(county):
    system = bootstrap(Settings(persistence="memory", id_key=b"k"))
    progress: list[tuple[int, int]] = []
    summary = county.apply_to(system.ledger, batch_size=250, progress=lambda done, total: progress.append((done, total)))
    assert progress[-1] == (len(county.actions), len(county.actions))
    yield system.ledger, summary
    system.close()


@pytest.fixture(scope="module")
def large() -> County:
    return generate_county(seed=7, people=20_000)


# ------------------------------------------------------------------ determinism
def test_same_seed_gives_byte_identical_csv_files(tmp_path):
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_csv(generate_county(seed=42, people=1200), first)
    write_csv(generate_county(seed=42, people=1200), second)
    write_csv(generate_county(seed=43, people=1200), other)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert {"tax_payments.csv", "statuses.csv", "residents.csv"} <= set(names)
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "tax_payments.csv").read_bytes() != (other / "tax_payments.csv").read_bytes()
    raw = (first / "tax_payments.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, as spreadsheet tools expect
    header, row = raw.decode("utf-8-sig").splitlines()[:2]
    assert header.split(",")[:2] == ["voucher_no", "tax_office"]
    amount = row.split(",")[header.split(",").index("amount_fen")]
    assert amount.isdigit()  # money in fen, as integers


_DIGEST = """
import hashlib, pathlib, sys, tempfile
from entrypoints.simulation import generate_county, write_csv
with tempfile.TemporaryDirectory() as d:
    write_csv(generate_county(seed=5, people=400), d)
    h = hashlib.sha256()
    for f in sorted(pathlib.Path(d).iterdir()):
        h.update(f.name.encode() + f.read_bytes())
    print(h.hexdigest())
"""


def test_same_seed_gives_the_same_files_whatever_the_hash_seed():
    import os
    import subprocess
    import sys

    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", _DIGEST], env=env, capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


# ------------------------------------------------------------------ identities and places
def test_every_generated_id_number_parses_and_is_unique(county):
    seen = set()
    for p in county.persons:
        identity = parse_identity("RESIDENT_ID", p.id_number, today=county.as_of)
        assert identity.birth_date == p.birth and identity.sex == p.sex
        assert p.id_number not in seen
        seen.add(p.id_number)
        assert p.name and all("\u4e00" <= ch <= "\u9fff" for ch in p.name)
    assert sum(p.id_number.startswith(county.region_code) for p in county.persons) > len(county.persons) * 0.6
    # Every ID number in the feeds parses, except the mistyped ones injected as bad records.
    for action in county.actions:
        if action.expected_error == "ID_CHECKSUM":
            with pytest.raises(DomainError) as err:
                parse_identity("RESIDENT_ID", action.record.id_number, today=county.as_of)
            assert err.value.code == "ID_CHECKSUM"
        else:
            parse_identity("RESIDENT_ID", action.record.id_number, today=county.as_of)


def test_grid_codes_follow_the_township_blocks(county):
    kinds = {"STREET": range(1, 100), "TOWN": range(100, 200), "TOWNSHIP": range(200, 400)}
    assert {t.kind for t in county.townships} == set(kinds)
    for township in county.townships:
        assert int(township.code[6:]) in kinds[township.kind]
        assert len(township.grids) >= 3
        for grid in township.grids:
            parsed = parse_grid_code(grid.code)
            assert parsed.township_code == township.code and parsed.region_code == county.region_code
    grids = {g.code for g in county.grids}
    assert all(p.grid_code in grids for p in county.persons)


# ------------------------------------------------------------------ shares
def test_population_shares_are_within_tolerance(large):
    people = 20_000
    natives = [p for p in large.persons if "NEWBORN" not in p.tags and not p.origin_region]
    assert len(natives) == people
    plans = Counter(p.plan for p in natives)
    assert plans["EMPLOYEE"] / people == pytest.approx(0.25, abs=0.01)
    assert plans["FLEXIBLE"] / people == pytest.approx(0.05, abs=0.005)
    tags = Counter(t for p in large.persons for t in p.tags)
    assert tags["NEWBORN"] / people == pytest.approx(0.008, abs=0.002)
    assert tags["DIED"] / people == pytest.approx(0.007, abs=0.002)
    assert tags["MOVED_OUT"] / people == pytest.approx(0.01, abs=0.002)
    held = Counter(s.category for p in natives for s in p.statuses
                   if s.granted_at.date() <= large.start + timedelta(days=1))
    expected = {"EXTREME_POVERTY": 0.005, "MIN_LIVING": 0.04, "MONITORED": 0.01, "LOW_INCOME_MARGINAL": 0.01,
                "ORPHAN": 0.0005, "DE_FACTO_ORPHAN": 0.0005}
    for category, rate in expected.items():
        assert held[category] / people == pytest.approx(rate, rel=0.15, abs=0.0003), category
    residents = [p for p in natives if p.plan == "RESIDENT" and p.behaviour != "SUBSIDY_ONLY" and not p.statuses]
    behaviour = Counter(p.behaviour for p in residents)
    share = {b: behaviour[b] / len(residents) for b in (ON_TIME, LATE, BACK_PAY, UNDERPAY, NON_PAYER)}
    assert share[ON_TIME] == pytest.approx(0.85, abs=0.03)
    assert share[LATE] == pytest.approx(0.04, abs=0.005)
    assert share[BACK_PAY] == pytest.approx(0.01, abs=0.003)
    assert 0.05 <= share[NON_PAYER] <= 0.08
    tax = [a for a in large.actions if a.kind == "tax"]
    resends = sum(a.resend for a in tax)
    assert resends / len(tax) == pytest.approx(0.01, abs=0.003)
    truth = [t for t in large.truth.persons if t.scope == IN_COUNTY]
    assert 0.85 <= sum(t.covered for t in truth) / len(truth) <= 0.95


def test_each_gap_reason_occurs_a_few_times_at_3000_people():
    reasons = generate_county(seed=3, people=3000).truth.reasons()
    assert set(reasons) == set(GAP_REASONS)
    assert all(n >= 3 for n in reasons.values()), reasons


# ------------------------------------------------------------------ the feeds
def test_feeds_are_in_time_order_with_realistic_tax_fields(county):
    instants = [a.when for a in county.actions]
    assert instants == sorted(instants)
    payments = [r for r in county.tax_records if r.kind == "PAYMENT"]
    # Each record arrives at its own payment time, except re-deliveries of an earlier voucher
    # (exact resends, and corrected rows that conflict with it), which carry the original's.
    for a in county.actions:
        if a.kind == "tax" and not a.resend and a.expected_error != "VOUCHER_CONFLICT":
            assert a.record.paid_at == a.when
    for r in payments:
        assert r.paid_at.tzinfo is not None and r.paid_at.utcoffset() == timedelta(0)
        assert 1 <= (r.credited_on - r.paid_at.date()).days <= 3
    firsts = [a for a in county.actions if a.kind == "tax" and not a.resend and a.expected_error != "VOUCHER_CONFLICT"]
    keys = [(a.record.tax_office, a.record.voucher_no) for a in firsts]
    assert len(keys) == len(set(keys))  # vouchers are unique per tax office
    corrections = [r for r in county.tax_records if r.kind != "PAYMENT" and r.original_voucher_no]
    known = {(r.tax_office, r.voucher_no) for r in payments}
    real = [r for r in corrections if (r.original_tax_office, r.original_voucher_no) in known]
    assert real and {r.kind for r in real} == {"REFUND", "REVERSAL"}
    departments = {r.department for r in county.status_records}
    assert departments == {"汉滨区民政局", "汉滨区乡村振兴局"}
    statuses = Counter(str(r.status) for r in county.resident_records)
    assert statuses["RESIDENT"] >= len(county.persons) - 100 and statuses["DECEASED"] and statuses["MOVED_OUT"]


def test_malformed_rows_fail_decoding_with_the_expected_code(county):
    inbound = pytest.importorskip("events.inbound")
    decode = {"tax.payments.v1": inbound.tax_record_from_avro, "registry.status.v1": inbound.status_record_from_avro,
              "registry.residents.v1": inbound.resident_record_from_avro}
    assert len({m.expected_code for m in county.malformed_rows}) >= 7
    for row in county.malformed_rows:
        with pytest.raises(DomainError) as err:
            decode[row.topic](row.row)
        assert err.value.code == row.expected_code, row.what


# ------------------------------------------------------------------ replay through the ledger
def test_replay_fails_exactly_the_injected_bad_records(county, replayed):
    _, summary = replayed
    got = Counter((e.kind, e.key, e.code) for e in summary.errors)
    expected = Counter((e.kind, e.key, e.code) for e in county.truth.expected_errors)
    assert got == expected
    assert summary.errors_by_code == county.truth.error_counts()
    assert {"ID_CHECKSUM", "REGION_UNKNOWN", "VOUCHER_CONFLICT", "REFUND_UNKNOWN_VOUCHER", "ALREADY_ENROLLED",
            "GRANT_UNKNOWN"} <= set(summary.errors_by_code)
    assert summary.total == len(county.actions)


def test_replay_recognises_every_resend(county, replayed):
    _, summary = replayed
    assert summary.unchanged == county.truth.expected_resends
    assert county.truth.expected_resends["tax"] > 0


def test_ledger_figures_agree_with_the_generators_facts(county, replayed):
    ledger, _ = replayed
    checked = 0
    for p, truth in zip(county.persons, county.truth.persons):
        person = ledger.find_person("RESIDENT_ID", p.id_number)  # everyone reached the ledger
        net = sum(x.net_fen for x in p.payments if x.levy == "RESIDENT" and x.period_start.year == YEAR)
        assert person.paid_fen_for(str(YEAR)) == net, p.tags
        assert (str(YEAR) in person.assessments) == (YEAR in p.assessed)
        assessment = person.assessments.get(str(YEAR))
        if assessment and truth.scheme == "RESIDENT" and not person.has_duplicate_enrollment:
            assert assessment.due_fen == truth.due_fen, p.tags
            assert assessment.subsidy_category == truth.subsidy_category
            checked += 1
        assert len(person.active_enrollments) == len(p.active_enrollments(county.as_of))
        assert person.has_duplicate_enrollment == (truth.reason == "DUPLICATE_ENROLLMENT")
        incomplete = [t for t in person.transfers.values() if t.direction == "OUT" and t.completed_on is None]
        assert bool(incomplete) == (truth.reason == "TRANSFER_INCOMPLETE")
        assert (person.residence_status == "DECEASED") == (truth.scope == "DECEASED")
    assert checked > len(county.persons) // 2


def test_grid_and_township_figures_add_up(county):
    truth = county.truth
    in_county = [t for t in truth.persons if t.scope == IN_COUNTY]
    assert sum(a.population for a in truth.grids.values()) == len(in_county)
    assert sum(a.covered for a in truth.townships.values()) == sum(t.covered for t in in_county)
    for code, township in truth.townships.items():
        grids = [a for g, a in truth.grids.items() if g.startswith(code)]
        assert township.population == sum(a.population for a in grids)
        assert sum(township.gaps.values()) == township.population - township.covered


# ------------------------------------------------------------------ the truth rules, on hand-made people
def _utc(day: date, hour: int = 3) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc)


def _person(*, history: bool = True, birth: date = date(1980, 5, 17)) -> SimPerson:
    p = SimPerson(0, make_resident_id("610902", birth, 11), "王伟", "M", birth, "610902100201")
    if history:
        p.enrollments.append(SimEnrollment("RESIDENT", "610902", date(2020, 1, 1)))
        p.assessed[YEAR - 1] = date(2023, 9, 4)
        p.assessed[YEAR] = date(2024, 9, 1)
    return p


def _pay(p: SimPerson, day: date, amount: int = 40000, year: int = YEAR) -> SimPayment:
    payment = SimPayment(f"V{len(p.payments)}", "16109020000", "RESIDENT", "610902", date(year, 1, 1),
                         date(year, 12, 31), amount, _utc(day))
    p.payments.append(payment)
    return payment


def _truth(p: SimPerson):
    return expected_outcome(p, coverage_year=YEAR, as_of=AS_OF, region_code="610902", policies=default_policy_book())


def test_truth_continuous_on_time_payer_is_covered_from_1_january():
    p = _person()
    _pay(p, date(2023, 11, 2), year=YEAR - 1)
    _pay(p, date(2024, 12, 20))
    t = _truth(p)
    assert t.covered and t.coverage_start == date(2025, 1, 1) and t.outstanding_fen == 0


def test_truth_extended_window_and_waiting_periods():
    late = _person()
    _pay(late, date(2023, 11, 2), year=YEAR - 1)
    _pay(late, date(2025, 2, 10))
    assert _truth(late).covered and _truth(late).coverage_start == date(2025, 2, 10)  # waiting-free window
    gap = _person()  # enrolled in 2024 but never paid for it
    _pay(gap, date(2024, 12, 1))
    t = _truth(gap)
    assert t.reason == IN_WAITING_PERIOD and t.coverage_start == date(2025, 4, 1)
    newcomer = _person(history=False)  # first enrollment, paid on time: no waiting
    newcomer.enrollments.append(SimEnrollment("RESIDENT", "610902", date(2024, 10, 1)))
    _pay(newcomer, date(2024, 10, 1))
    assert _truth(newcomer).covered
    newborn = _person(history=False, birth=date(2025, 1, 20))
    newborn.enrollments.append(SimEnrollment("RESIDENT", "610902", date(2025, 1, 20)))
    _pay(newborn, date(2025, 3, 1))
    assert _truth(newborn).covered and _truth(newborn).coverage_start == date(2025, 1, 20)


def test_truth_unpaid_lapsed_and_not_enrolled():
    lapsed = _person()
    _pay(lapsed, date(2023, 11, 2), year=YEAR - 1)
    assert _truth(lapsed).reason == LAPSED and _truth(lapsed).outstanding_fen == 40000
    short = _person()
    _pay(short, date(2023, 11, 2), year=YEAR - 1)
    _pay(short, date(2024, 11, 2), amount=38000)
    assert _truth(short).reason == "ENROLLED_UNPAID" and _truth(short).outstanding_fen == 2000
    assert _truth(_person(history=False)).reason == NOT_ENROLLED


def test_truth_subsidised_people():
    granted = _utc(date(2023, 9, 2))
    full = _person()
    full.statuses.append(SimStatus("G1", "EXTREME_POVERTY", date(2021, 1, 1), None, granted))
    assert _truth(full).covered and _truth(full).due_fen == 0  # enrolled and assessed: covered without paying
    del full.assessed[YEAR]
    assert _truth(full).reason == SUBSIDISED_NOT_COVERED
    fixed = _person()
    fixed.statuses.append(SimStatus("G2", "MIN_LIVING", date(2021, 1, 1), None, granted))
    t = _truth(fixed)
    assert t.reason == SUBSIDISED_NOT_COVERED and t.outstanding_fen == 40000 - t.subsidy_fen > 0
    _pay(fixed, date(2025, 3, 1), amount=t.due_fen)  # late, but subsidised people are exempt from waiting
    assert _truth(fixed).covered
    overpaid = _person()
    _pay(overpaid, date(2024, 10, 1))
    overpaid.statuses.append(SimStatus("G3", "ORPHAN", date(2024, 11, 1), None, _utc(date(2024, 11, 3))))
    t = _truth(overpaid)
    assert t.covered and t.overpaid_fen == 40000 and t.outstanding_fen == 0
    revoked = _person()
    status = SimStatus("G4", "MIN_LIVING", date(2021, 1, 1), None, granted, date(2024, 11, 1), _utc(date(2024, 11, 5)))
    revoked.statuses.append(status)
    _pay(revoked, date(2024, 10, 1), amount=25000)  # paid the reduced share, then lost the status before 2025
    t = _truth(revoked)
    assert not t.subsidised and t.reason == "ENROLLED_UNPAID" and t.outstanding_fen == 15000
