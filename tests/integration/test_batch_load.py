"""Batched loading on the real PostgreSQL server, and the batch path that uses it.

* ``load_aggregates`` returns the same aggregates as ``repository.get``, for persons with
  and without a snapshot (the ledger snapshots a person every 100 events and after each assessment) and for the
  source-record index, in one statement;
* ``Ledger.record_tax_records`` gives the same outcomes and the same ledger as recording
  the same records one by one: resends, a conflicting voucher, a bad amount, new persons,
  a record that would leave its person half-changed, a lost race.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone
from typing import Any, Iterator

import psycopg
import pytest
from psycopg import sql

from infra.event_store.batch_load import load_aggregates
from ledger.application import Outcome, _project_hashing_last
from entrypoints.wiring import System, bootstrap
from infra.settings import Settings
from ledger.domain.chain import event_digest
from ledger.domain.errors import DomainError
from ledger.domain.identity import make_resident_id
from ledger.domain.source_record import SourceRecord
from ledger.inbound_records import Provenance, TaxPaymentRecord

pytestmark = pytest.mark.integration

KEY = b"batch-load-test-key"
HANBIN = "610902"
OFFICE = "16109020000"
FEED = Provenance(source="kafka", topic="tax.payments.v1", partition=0, offset=1)
API = Provenance(source="api", user="clerk01", request_id="req-1")


def number(seq: int) -> str:
    return make_resident_id(HANBIN, date(1981, 4, 5), seq)


def payment(seq: int, voucher: str, amount_fen: int = 40000, year: int = 2025, **over: Any) -> TaxPaymentRecord:
    fields: dict[str, Any] = dict(
        voucher_no=voucher, tax_office=OFFICE, id_type="RESIDENT_ID", id_number=number(seq), name="王芳",
        region_code=HANBIN, levy_item="RESIDENT", period_start=date(year, 1, 1), period_end=date(year, 12, 31),
        amount_fen=amount_fen, paid_at=datetime(year - 1, 10, 8, 9, 30, tzinfo=timezone.utc),
        credited_on=date(year - 1, 10, 9), channel="APP",
    )
    fields.update(over)
    return TaxPaymentRecord(**fields)


def _system(env: dict[str, str]) -> System:
    return bootstrap(Settings(persistence="postgres", id_key=KEY,
                              postgres={k: v for k, v in env.items() if k.startswith("POSTGRES_")}))


@pytest.fixture(scope="module")
def system(pg_env) -> Iterator[System]:
    s = _system(pg_env)
    yield s
    s.close()


@pytest.fixture(scope="module")
def other_schema(pg_env) -> Iterator[dict[str, str]]:
    """A second, empty schema: the same records recorded one by one, for comparison."""
    schema = pg_env["POSTGRES_SCHEMA"] + "_1by1"
    kwargs = dict(host=pg_env["POSTGRES_HOST"], port=int(pg_env["POSTGRES_PORT"]), dbname=pg_env["POSTGRES_DBNAME"],
                  user=pg_env["POSTGRES_USER"], password=pg_env["POSTGRES_PASSWORD"], autocommit=True)
    with psycopg.connect(**kwargs) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield {**pg_env, "POSTGRES_SCHEMA": schema}
    finally:
        with psycopg.connect(**kwargs) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def enroll(ledger, seq: int):
    return ledger.enroll(id_type="RESIDENT_ID", id_number=number(seq), name="王芳", scheme="RESIDENT",
                         region_code=HANBIN, effective_date=date(2024, 9, 1), provenance=API).person_id


def credit(ledger, person_id, times: int) -> None:
    for i in range(times):
        ledger.credit_account(person_id, amount_fen=100, reason="CORRECTION", reference=f"c{i}",
                              effective_date=date(2024, 10, 1), provenance=API)


# --------------------------------------------------------------------------- the loader
def test_the_loader_returns_what_repository_get_returns(system, monkeypatch):
    ledger = system.ledger
    few = enroll(ledger, 1)  # 2 events, no snapshot
    ledger.record_tax_record(payment(1, "L-0001"), provenance=FEED)
    many = enroll(ledger, 2)
    credit(ledger, many, 148)  # 150 events: a snapshot at 100, then 50 events
    exact = enroll(ledger, 3)
    credit(ledger, exact, 98)  # 100 events: a snapshot at 100, nothing after it
    snapshots = {pid: [s.originator_version for s in ledger.snapshots.get(pid)] for pid in (few, many, exact)}
    assert snapshots == {few: [], many: [100], exact: [100]}
    voucher = SourceRecord.id_for("tax-voucher", f"{OFFICE}|L-0001")
    unknown = ledger.person_id("RESIDENT_ID", number(99))
    expected = {pid: ledger.repository.get(pid) for pid in (few, many, exact, voucher)}

    def no_per_id_reads(*args, **kwargs):
        raise AssertionError("the PostgreSQL loader must not read aggregate by aggregate")

    monkeypatch.setattr(ledger.repository, "get", no_per_id_reads)
    ids = [few, many, unknown, exact, voucher, few]
    # The plain fold, and the batch path's own (which hashes only each person's last event).
    for loaded in (load_aggregates(ledger, ids), ledger.person_store.load_many(ids, _project_hashing_last)):
        assert set(loaded) == {few, many, exact, voucher}  # the unknown id is left out, the repeat once
        for pid, aggregate in expected.items():
            assert type(loaded[pid]) is type(aggregate)
            assert loaded[pid].__dict__ == aggregate.__dict__
        assert loaded[many].version == 150 and loaded[many].account_balance_fen == 14800
        assert loaded[exact].version == 100
        assert loaded[voucher].person_id == few
    monkeypatch.undo()
    assert load_aggregates(ledger, []) == {}
    # chain_head is the digest of the last event, whatever the fold skipped on the way.
    last = list(ledger.events.get(many))[-1]
    assert ledger.person_store.load_many([many], _project_hashing_last)[many].chain_head == event_digest(last)


def test_the_loader_falls_back_to_the_repository_on_other_stores():
    s = bootstrap(Settings(persistence="memory", id_key=KEY))
    try:
        pid = enroll(s.ledger, 1)
        other = s.ledger.person_id("RESIDENT_ID", number(2))
        loaded = load_aggregates(s.ledger, [pid, other])
        assert set(loaded) == {pid}
        assert loaded[pid].__dict__ == s.ledger.get_person(pid).__dict__
    finally:
        s.close()


def test_a_clean_batch_reads_no_aggregate_one_by_one(system, monkeypatch):
    ledger = system.ledger
    for seq in (10, 11, 12):
        enroll(ledger, seq)
    calls = []
    original = ledger.repository.get
    monkeypatch.setattr(ledger.repository, "get", lambda *a, **k: calls.append(a) or original(*a, **k))
    records = [(payment(seq, f"CLEAN-{seq}"), FEED) for seq in (10, 11, 12, 13, 14)]  # 13, 14 are new
    outcomes = ledger.record_tax_records(records)
    assert [o.applied for o in outcomes] == [True] * 5
    assert calls == []
    assert ledger.find_person("RESIDENT_ID", number(14)).paid_fen_for("2025") == 40000


# --------------------------------------------------------------------------- batch == one by one
def _prepare(ledger) -> None:
    """The same history in both schemas."""
    enroll(ledger, 20)
    ledger.record_tax_record(payment(20, "V-20"), provenance=FEED)
    pid = enroll(ledger, 21)
    credit(ledger, pid, 120)  # has a snapshot
    ledger.record_tax_record(payment(21, "V-21"), provenance=FEED)
    # Registered, never enrolled: a resident payment for a year without policy would enroll
    # them and then fail -- a half-changed person that must not be written.
    ledger.register_person(id_type="RESIDENT_ID", id_number=number(22), name="王芳",
                           effective_date=date(2024, 1, 1), provenance=API)
    credit(ledger, enroll(ledger, 23), 97)  # version 99: the batch's payment takes it to 100, a snapshot


def _batch() -> list[tuple[TaxPaymentRecord, Provenance]]:
    return [
        (payment(20, "V-20"), FEED),  # resend of a recorded voucher
        (payment(21, "V-21", amount_fen=99999), FEED),  # same voucher, other content: a conflict
        (payment(20, "V-BAD", amount_fen=-5), FEED),  # bad amount
        (payment(30, "V-30"), FEED),  # new person
        (payment(31, "V-31"), FEED),  # new person
        (payment(21, "V-21B", year=2026), FEED),  # the person with a snapshot pays next year
        (payment(30, "V-30B", year=2026), FEED),  # the new person again, in the same batch
        (payment(31, "V-31"), FEED),  # the same voucher twice in one batch: the second is a resend
        (payment(20, "R-20", amount_fen=10000, kind="REFUND", original_voucher_no="V-20"), FEED),
        (payment(40, "R-40", kind="REFUND", original_voucher_no="V-1"), FEED),  # unknown person
        (replace(payment(41, "V-41"), id_number="610902198104050000"), FEED),  # bad ID number
        (payment(22, "E-22", levy_item="EMPLOYEE", period_start=date(2025, 3, 1),
                 period_end=date(2025, 3, 31)), FEED),  # changes person 22 (employee months, no enrollment)
        (payment(22, "V-22", year=2028), FEED),  # enrolls 22, then fails (2028: no table): the round is rebuilt without it
        (payment(32, "V-32", year=2028), FEED),  # a new person failing half-way: nothing written
        (payment(20, "V-20"), FEED),  # the resend again, at the end
        (payment(33, "V-33", levy_item="NOPE"), FEED),  # unknown levy item
        (payment(23, "V-23"), FEED),  # the person's 100th event: snapshotted on save
    ]


def _one_by_one(ledger, records):
    outcomes = []
    for record, provenance in records:
        try:
            outcomes.append(ledger.record_tax_record(record, provenance=provenance))
        except DomainError as e:
            outcomes.append(_error(e))
    return outcomes


def _error(e: DomainError) -> Outcome:
    return Outcome(None, False, e.message, error=e)


def _summary(outcome) -> tuple:
    return (outcome.person_id, outcome.applied, outcome.message, outcome.error.code if outcome.error else None,
            len(outcome.event_ids))  # the ids themselves are new uuids in each schema


def _state(ledger, seqs, vouchers) -> dict:
    out: dict[str, Any] = {}
    for seq in seqs:
        pid = ledger.person_id("RESIDENT_ID", number(seq))
        try:
            p = ledger.get_person(pid)
        except DomainError:
            out[f"person {seq}"] = None
            continue
        out[f"person {seq}"] = (
            p.version, [s.originator_version for s in ledger.snapshots.get(pid)],
            [(e.enrollment_id, e.scheme, e.region_code, e.start_date) for e in p.enrollments],
            {k: (v.amount_fen, v.refunded_fen, v.reversed, v.periods) for k, v in p.payments.items()},
            sorted(r.voucher_no for q in p.payments.values() for r in [*q.refunds, *filter(None, [q.reversal])]),
            p.account_balance_fen,
        )
    for voucher in vouchers:
        record = ledger.source_record("tax-voucher", f"{OFFICE}|{voucher}")
        out[voucher] = None if record is None else (
            record.version, record.person_id, record.content_digest, [c["content_digest"] for c in record.conflicts])
    return out


def test_a_batch_gives_the_same_outcomes_and_ledger_as_one_by_one(pg_env, other_schema):
    batch_system, single_system = _system(pg_env), _system(other_schema)
    try:
        for s in (batch_system, single_system):
            _prepare(s.ledger)
        records = _batch()
        batched = batch_system.ledger.record_tax_records(records)
        single = _one_by_one(single_system.ledger, records)

        assert [_summary(o) for o in batched] == [_summary(o) for o in single]
        codes = [o.error.code if o.error else ("applied" if o.applied else "resend") for o in batched]
        assert codes == ["resend", "VOUCHER_CONFLICT", "AMOUNT_NOT_POSITIVE", "applied", "applied", "applied",
                         "applied", "resend", "applied", "PERSON_NOT_FOUND", "ID_CHECKSUM", "applied",
                         "PERIOD_OUTSIDE_POLICY", "PERIOD_OUTSIDE_POLICY", "resend", "LEVY_ITEM_UNKNOWN",
                         "applied"]

        seqs = (20, 21, 22, 23, 30, 31, 32, 40, 41)
        vouchers = ("V-20", "V-21", "V-BAD", "V-30", "V-31", "V-21B", "V-30B", "R-20", "R-40", "E-22", "V-22", "V-32")
        state = _state(batch_system.ledger, seqs, vouchers)
        assert state == _state(single_system.ledger, seqs, vouchers)
        # Nothing half-written: person 22 has the employee payment but was not enrolled by the failed
        # record; person 32 does not exist; the conflict is kept on the voucher's index.
        assert state["person 22"][2] == [] and list(state["person 22"][3]) == [f"{OFFICE}|E-22"]
        assert state["person 32"] is None and state["V-32"] is None
        assert len(state["V-21"][3]) == 1
        assert state["person 23"][:2] == (100, [100])
    finally:
        batch_system.close()
        single_system.close()


def test_a_batch_that_loses_a_race_falls_back_to_one_by_one_and_loses_nothing(pg_env, system):
    ledger = system.ledger
    pid = enroll(ledger, 50)
    enroll(ledger, 51)
    rival = _system(pg_env)
    real_save = ledger.save
    raced = []

    def save_after_a_rival_wrote(*objs, **kwargs):
        if not raced:  # between the batch's load and its save, another writer pays for person 50
            raced.append(rival.ledger.record_tax_record(payment(50, "RIVAL-50", year=2026), provenance=FEED))
        return real_save(*objs, **kwargs)

    ledger.save = save_after_a_rival_wrote  # type: ignore[method-assign]
    try:
        outcomes = ledger.record_tax_records([(payment(50, "RACE-50"), FEED), (payment(51, "RACE-51"), FEED),
                                              (payment(52, "RACE-52"), FEED)])
    finally:
        del ledger.save
        rival.close()
    assert raced and raced[0].applied
    assert [o.applied for o in outcomes] == [True, True, True]
    person = ledger.get_person(pid)
    assert {f"{OFFICE}|RIVAL-50", f"{OFFICE}|RACE-50"} <= set(person.payments)
    assert ledger.source_record("tax-voucher", f"{OFFICE}|RACE-52").person_id == ledger.person_id(
        "RESIDENT_ID", number(52))
