"""The ledger core on the real PostgreSQL server: concurrency, idempotency, snapshots."""
from __future__ import annotations

import multiprocessing
from datetime import date, datetime, timedelta, timezone

import pytest

from entrypoints.wiring import bootstrap
from infra.settings import Settings, postgres_from_env
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import Provenance, TaxPaymentRecord

pytestmark = pytest.mark.integration

KEY = b"integration-key"
NUMBER = make_resident_id("610902", date(1975, 3, 9), 21)
FEED = Provenance(source="kafka", topic="tax.payments.v1", partition=0, offset=1)


def _settings(pg_env: dict[str, str]) -> Settings:
    return Settings(persistence="postgres", postgres=postgres_from_env(pg_env),
                    id_key=KEY)


def _employee_payment(voucher: str, month: int, amount_fen: int = 10000) -> TaxPaymentRecord:
    start = date(2025, month, 1)
    return TaxPaymentRecord(
        voucher_no=voucher, tax_office="16109020000", id_type="RESIDENT_ID", id_number=NUMBER, name="李强",
        region_code="610902", levy_item="EMPLOYEE", period_start=start, period_end=start,
        amount_fen=amount_fen, paid_at=datetime(2025, month, 10, 8, tzinfo=timezone.utc),
    )


def _writer(pg_env: dict[str, str], prefix: str, count: int, queue) -> None:
    system = bootstrap(_settings(pg_env))
    applied = 0
    try:
        for i in range(count):
            outcome = system.ledger.record_tax_record(_employee_payment(f"{prefix}{i:04d}", 1 + i % 12),
                                                      provenance=FEED)
            applied += outcome.applied
    except Exception as e:  # say why in the parent's assertion, not only in a child's stderr
        queue.put(f"writer {prefix} failed after {applied} payments: {type(e).__name__}: {e}")
        raise
    finally:
        system.close()
    queue.put(applied)


@pytest.fixture(scope="module")
def system(pg_env):
    s = bootstrap(_settings(pg_env))
    s.ledger.enroll(id_type="RESIDENT_ID", id_number=NUMBER, name="李强", scheme="EMPLOYEE", flexible=True,
                    region_code="610902", effective_date=date(2025, 1, 1), provenance=FEED)
    yield s
    s.close()


def test_two_processes_writing_one_person_lose_nothing(system, pg_env):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    per_process = 60
    workers = [ctx.Process(target=_writer, args=(pg_env, p, per_process, queue)) for p in ("A", "B")]
    for w in workers:
        w.start()
    results = [queue.get(timeout=240) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0], results
    assert sum(results) == 2 * per_process
    person = system.ledger.find_person("RESIDENT_ID", NUMBER)
    recorded = {p.voucher_no for p in person.payments.values()}
    assert {f"{p}{i:04d}" for p in "AB" for i in range(per_process)} <= recorded


def test_a_voucher_recorded_twice_changes_nothing_the_second_time(system):
    record = _employee_payment("TWICE-1", 3, 12345)
    first = system.ledger.record_tax_record(record, provenance=FEED)
    max_before = system.ledger.recorder.max_notification_id()
    second = system.ledger.record_tax_record(record, provenance=FEED)
    assert first.applied and not second.applied
    assert system.ledger.recorder.max_notification_id() == max_before


def test_a_person_with_1000_events_loads_from_a_snapshot(system):
    ledger = system.ledger
    number = make_resident_id("610902", date(1990, 1, 2), 33)
    pid = ledger.enroll(id_type="RESIDENT_ID", id_number=number, name="赵敏", scheme="RESIDENT",
                        region_code="610902", effective_date=date(2024, 9, 1), provenance=FEED).person_id
    start = date(2024, 1, 1)
    for i in range(998):
        ledger.credit_account(pid, amount_fen=100, reason="CORRECTION", reference=f"c{i}",
                              effective_date=start + timedelta(days=i % 365), provenance=FEED)
    snapshot = next(ledger.snapshots.get(pid, desc=True, limit=1))
    assert snapshot.originator_version == 1000

    read = []
    original_get = ledger.repository.event_store.get

    def counting_get(*args, **kwargs):
        for event in original_get(*args, **kwargs):
            read.append(event)
            yield event

    ledger.repository.event_store.get = counting_get  # type: ignore[method-assign]
    try:
        person = ledger.get_person(pid)
    finally:
        ledger.repository.event_store.get = original_get  # type: ignore[method-assign]
    assert person.version == 1000 and person.account_balance_fen == 99800
    assert len(read) == 0  # nothing after the snapshot had to be replayed
    replayed = None
    for event in ledger.events.get(pid):
        replayed = event.mutate(replayed)
    assert replayed.__dict__ == person.__dict__


def test_each_assessment_snapshots_the_person_and_drops_their_older_snapshots(system):
    from infra.event_store.batch_load import load_aggregates

    ledger = system.ledger
    pids = [ledger.enroll(id_type="RESIDENT_ID", id_number=make_resident_id("610902", date(1991, 1, 2), seq),
                          name="赵敏", scheme="RESIDENT", region_code="610902", effective_date=date(2023, 9, 1),
                          provenance=FEED).person_id for seq in (41, 43)]
    for year in (2024, 2025, 2026):
        ledger.assess_resident_year(pids[0], year, provenance=FEED)
    ledger.assess_resident_year(pids[1], 2024, provenance=FEED)
    assert [s.originator_version for s in ledger.snapshots.get(pids[0])] == [5]
    assert [s.originator_version for s in ledger.snapshots.get(pids[1])] == [3]
    loaded = load_aggregates(ledger, pids)  # one statement, from each person's latest snapshot
    for pid in pids:
        replayed = None
        for event in ledger.events.get(pid):
            replayed = event.mutate(replayed)
        assert loaded[pid].__dict__ == replayed.__dict__
        assert ledger.repository.get(pid).__dict__ == replayed.__dict__
