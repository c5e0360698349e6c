"""Tamper evidence on the real PostgreSQL server: rows of ``ledger_events`` edited with plain SQL.

Each test tampers with a person of its own and expects the verifier to name that
person (id and masked ID number) and the position (version); the other persons stay
clean. The days are sealed before any tampering, so the last event of each person
is anchored too.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from entrypoints.audit import seal, verify_all, verify_person
from entrypoints.audit.stored_rows import event_rows
from entrypoints.wiring import bootstrap
from infra.settings import Settings, postgres_from_env
from ledger.domain.identity import make_resident_id
from ledger.domain.person import business_date
from ledger.log import mask_id_number
from ledger.inbound_records import Provenance, TaxPaymentRecord

from dataclasses import fields as _fields
from ledger.domain.history import PersonHistory as _PersonHistory

#: where a snapshot's rows hold the history's transferred_in_months (rows follow the field order)
TRANSFERRED_IN_MONTHS = [f.name for f in _fields(_PersonHistory)].index("transferred_in_months")

pytestmark = pytest.mark.integration

HANBIN = "610902"
KEY = b"audit-integration-key"
CLERK = Provenance(source="api", user="clerk01", request_id="req-1")
PERSONS = 8  # 0: stays clean; 1..: one kind of tampering each


def _settings(pg_env: dict[str, str]) -> Settings:
    return Settings(persistence="postgres", postgres=postgres_from_env(pg_env),
                    id_key=KEY)


def _person(ledger, seq: int) -> tuple[str, object]:
    """Registered (1), enrolled (2), two payments (3, 4), six account credits (5..10)."""
    number = make_resident_id(HANBIN, date(1982, 4, 5), seq)
    pid = ledger.enroll(id_type="RESIDENT_ID", id_number=number, name="陈静", scheme="EMPLOYEE", region_code=HANBIN,
                        flexible=True, effective_date=date(2025, 1, 1), provenance=CLERK).person_id
    for month in (1, 2):
        ledger.record_tax_record(TaxPaymentRecord(
            voucher_no=f"A{seq}-{month}", tax_office="16109020000", id_type="RESIDENT_ID", id_number=number,
            name="陈静", region_code=HANBIN, levy_item="EMPLOYEE", period_start=date(2025, month, 1),
            period_end=date(2025, month, 28), amount_fen=61000 + month,
            paid_at=datetime(2025, month, 6, tzinfo=timezone.utc)),
            provenance=Provenance(source="kafka", topic="tax.payments.v1", partition=1, offset=100 * seq + month))
    for n in range(6):
        ledger.credit_account(pid, amount_fen=1200 + n, reason="CONTRIBUTION", reference=f"{seq}-{n}",
                              effective_date=date(2025, 3, 1) + timedelta(days=n), provenance=CLERK)
    return number, pid


@pytest.fixture(scope="module")
def system(pg_env):
    s = bootstrap(_settings(pg_env))
    RING[:] = [s.ledger.mapper.cipher.ring]
    s.people = [_person(s.ledger, seq) for seq in range(1, PERSONS + 1)]  # type: ignore[attr-defined]
    seal(s.ledger, None, through=business_date(datetime.now(timezone.utc)))  # anchors every chain (not published)
    yield s
    s.close()


#: The deployment key's ring (events are encrypted at rest by default): the insider of these tests holds it.
RING: list = []


def _state(pg_conn, pid, version) -> bytes:
    """The event's plain state (decrypted, as an insider with the key reads it)."""
    return RING[0].decrypt_store(bytes(pg_conn.execute(
        "SELECT state FROM ledger_events WHERE originator_id = %s AND originator_version = %s",
        (pid, version)).fetchone()[0]))


def _digit_offset(state: bytes, field: str) -> int:
    """Byte offset (0-based) of the last digit of a numeric field."""
    i = state.index(f'"{field}":'.encode()) + len(field) + 3
    while chr(state[i + 1]).isdigit():
        i += 1
    return i


def _set_byte(pg_conn, pid, version, offset, value) -> None:
    """One byte of the plain state changed, encrypted again with the key (a forged, well-encrypted event)."""
    state = bytearray(_state(pg_conn, pid, version))
    state[offset] = value
    pg_conn.execute("UPDATE ledger_events SET state = %s WHERE originator_id = %s AND originator_version = %s",
                    (RING[0].encrypt_store(bytes(state)), pid, version))
    pg_conn.commit()


def _findings(result, number):
    return {(f.code, f.version) for f in result.findings if f.masked_id == mask_id_number(number)}


def test_a_clean_ledger_verifies_clean(system):
    result = verify_all(system.ledger)
    assert result.clean, result.findings
    assert result.persons == PERSONS
    assert result.events == event_rows(system.ledger).max_notification_id()
    assert not any("not sealed" in n for n in result.notes)
    number, pid = system.people[0]
    assert verify_person(system.ledger, pid).clean


def test_one_edited_byte_is_found_with_person_and_version(system, pg_conn):
    number, pid = system.people[1]
    state = _state(pg_conn, pid, 4)
    offset = _digit_offset(state, "amount_fen")
    _set_byte(pg_conn, pid, 4, offset, ord("0") + (state[offset] - ord("0") + 1) % 10)
    result = verify_all(system.ledger)
    assert _findings(result, number) == {("CHAIN_BROKEN", 4)}
    finding = next(f for f in result.findings if f.person_id == str(pid))
    assert mask_id_number(number) in finding.message and str(pid) in finding.message
    assert not _findings(result, system.people[0][0])
    assert _findings(verify_person(system.ledger, pid), number) == {("CHAIN_BROKEN", 4)}


def test_an_edited_byte_that_breaks_decoding_is_a_finding_not_a_crash(system, pg_conn):
    number, pid = system.people[2]
    _set_byte(pg_conn, pid, 6, 0, ord("x"))  # the JSON no longer parses
    result = verify_all(system.ledger)
    assert _findings(result, number) == {("EVENT_UNREADABLE", 6)}


def test_an_edited_last_event_is_caught_by_its_anchor(system, pg_conn):
    number, pid = system.people[3]
    state = _state(pg_conn, pid, 10)
    offset = _digit_offset(state, "amount_fen")
    _set_byte(pg_conn, pid, 10, offset, ord("0") + (state[offset] - ord("0") + 3) % 10)
    assert _findings(verify_person(system.ledger, pid), number) == {("ANCHOR_MISMATCH", 10)}


def test_a_deleted_event_is_found_with_its_version(system, pg_conn):
    number, pid = system.people[4]
    pg_conn.execute("DELETE FROM ledger_events WHERE originator_id = %s AND originator_version = 7", (pid,))
    pg_conn.commit()
    assert _findings(verify_all(system.ledger), number) == {("VERSION_MISSING", 7)}
    number, pid = system.people[5]
    pg_conn.execute("DELETE FROM ledger_events WHERE originator_id = %s AND originator_version = 10", (pid,))
    pg_conn.commit()
    assert _findings(verify_person(system.ledger, pid), number) == {("TAIL_MISSING", 10)}


def test_two_swapped_events_are_found_at_their_versions(system, pg_conn):
    number, pid = system.people[6]
    pg_conn.execute(
        "UPDATE ledger_events e SET state = o.state FROM ledger_events o "
        "WHERE e.originator_id = %s AND o.originator_id = e.originator_id AND "
        "((e.originator_version = 7 AND o.originator_version = 8) OR (e.originator_version = 8 AND o.originator_version = 7))",
        (pid,))
    pg_conn.commit()
    found = _findings(verify_all(system.ledger), number)
    assert {("CHAIN_BROKEN", 7), ("CHAIN_BROKEN", 8), ("ROWS_REORDERED", 8)} <= found
    assert {v for _, v in found} == {7, 8}


def test_snapshots_do_not_mask_tampering_and_a_changed_snapshot_is_reported(system, pg_conn):
    number, pid = system.people[7]
    system.ledger.take_snapshot(pid)
    snapshot = json.loads(RING[0].decrypt_store(bytes(pg_conn.execute(
        "SELECT state FROM ledger_snapshots WHERE originator_id = %s", (pid,)).fetchone()[0])))
    snapshot["state"]["history"][TRANSFERRED_IN_MONTHS] = 99_999  # the history's transferred_in_months (its snapshot is rows of values)
    pg_conn.execute("UPDATE ledger_snapshots SET state = %s WHERE originator_id = %s",
                    (RING[0].encrypt_store(json.dumps(snapshot).encode()), pid))
    state = _state(pg_conn, pid, 5)
    offset = _digit_offset(state, "amount_fen")
    _set_byte(pg_conn, pid, 5, offset, ord("0") + (state[offset] - ord("0") + 1) % 10)
    assert system.ledger.get_person(pid).contribution_months >= 99_999  # what the repository now loads
    found = _findings(verify_person(system.ledger, pid), number)
    assert ("CHAIN_BROKEN", 5) in found  # from the events, not the snapshot
    assert ("SNAPSHOT_MISMATCH", 10) in found


def test_the_whole_ledger_check_split_over_forked_workers_finds_the_same(system):
    one = verify_all(system.ledger, workers=1)
    three = verify_all(system.ledger, workers=3)
    assert not one.clean
    key = lambda f: (f.aggregate_id, f.version or 0, f.code)  # noqa: E731
    assert sorted(map(key, three.findings)) == sorted(map(key, one.findings))
    assert (three.events, three.aggregates, three.persons) == (one.events, one.aggregates, one.persons)
