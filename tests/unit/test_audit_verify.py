"""Tamper evidence on a real SQL store (SQLite file): a changed byte, a deleted row, swapped rows.

The rows are edited behind the ledger's back with plain SQL, as someone with
database access would. Every case must be reported with the person (id and masked
ID number) and the position (version), and a row that no longer decodes must be a
finding, not a crash. The same cases run on PostgreSQL in
tests/integration/test_audit_postgres.py.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta, timezone

import pytest

from entrypoints.audit import digest_channel, seal, verify_all, verify_digests, verify_person
from entrypoints.audit.verify import cross_check
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.identity import make_resident_id
from ledger.domain.person import business_date
from ledger.log import mask_id_number
from ledger.inbound_records import Provenance, TaxPaymentRecord

from dataclasses import fields as _fields
from ledger.domain.history import PersonHistory as _PersonHistory

#: where a snapshot's rows hold the history's transferred_in_months (rows follow the field order)
TRANSFERRED_IN_MONTHS = [f.name for f in _fields(_PersonHistory)].index("transferred_in_months")

HANBIN = "610902"
CLERK = Provenance(source="api", user="clerk01", request_id="req-1")


def today() -> date:
    return business_date(datetime.now(timezone.utc))


@pytest.fixture()
def system(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGER_DIGESTS_PATH", str(tmp_path / "digests.jsonl"))  # the copy outside the database
    path = tmp_path / "ledger.sqlite"
    s = bootstrap(Settings(persistence="sqlite", sqlite_path=str(path), id_key=b"audit-verify-tests"))
    s.sqlite_path = path  # type: ignore[attr-defined]
    RING[:] = [s.ledger.mapper.cipher.ring]  # encrypted at rest by default: the insider here holds the key
    yield s
    s.close()


def person_with_events(ledger, seq: int, account_moves: int = 6):
    """A flexible worker: registered, enrolled, 2 payments (versions 3, 4), then account credits (5...)."""
    number = make_resident_id(HANBIN, date(1985, 6, 1), seq)
    pid = ledger.enroll(id_type="RESIDENT_ID", id_number=number, name="李强", scheme="EMPLOYEE", region_code=HANBIN,
                        flexible=True, effective_date=date(2025, 1, 1), provenance=CLERK).person_id
    for month in (1, 2):
        ledger.record_tax_record(TaxPaymentRecord(
            voucher_no=f"V{seq}-{month}", tax_office="16109020000", id_type="RESIDENT_ID", id_number=number,
            name="李强", region_code=HANBIN, levy_item="EMPLOYEE", period_start=date(2025, month, 1),
            period_end=date(2025, month, 28), amount_fen=60000 + month, paid_at=datetime(2025, month, 5, tzinfo=timezone.utc),
        ), provenance=Provenance(source="kafka", topic="tax.payments.v1", partition=0, offset=seq * 10 + month))
    for n in range(account_moves):
        ledger.credit_account(pid, amount_fen=1000 + n, reason="CONTRIBUTION", reference=f"C{n}",
                              effective_date=date(2025, 3, 1) + timedelta(days=n), provenance=CLERK)
    return number, pid


def db(system) -> sqlite3.Connection:
    return sqlite3.connect(system.sqlite_path)


#: The deployment key's ring of the current test's ledger.
RING: list = []


def state_of(conn, pid, version) -> bytes:
    """The event's plain state (decrypted with the deployment key)."""
    return RING[0].decrypt_store(conn.execute(
        "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = ?",
        (pid.hex, version)).fetchone()[0])


def set_state(conn, pid, version, state) -> None:
    """Write a plain state back, encrypted with the deployment key (a forged but well-encrypted event)."""
    conn.execute("UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = ?",
                 (RING[0].encrypt_store(state), pid.hex, version))
    conn.commit()


def flip_digit(state: bytes, field: str) -> bytes:
    """Change one byte: the last digit of a numeric field (the JSON stays valid)."""
    i = state.index(f'"{field}":'.encode()) + len(field) + 3
    while chr(state[i + 1]).isdigit():
        i += 1
    return state[:i] + bytes([ord("0") + (state[i] - ord("0") + 1) % 10]) + state[i + 1:]


def where(result, number):
    return {(f.code, f.version) for f in result.findings if f.masked_id == mask_id_number(number)}


# ------------------------------------------------------------------ clean
def test_a_clean_ledger_verifies_clean(system):
    ledger = system.ledger
    number, pid = person_with_events(ledger, 1)
    person_with_events(ledger, 2)
    everything = verify_all(ledger)
    assert everything.clean, everything.findings
    assert everything.persons == 2 and everything.events == ledger.recorder.max_notification_id()
    one = verify_person(ledger, pid)
    assert one.clean and one.events == 10
    assert any("not sealed yet" in n for n in one.notes)


# ------------------------------------------------------------------ one byte changed
def test_one_changed_byte_is_found_with_the_person_and_the_version(system):
    ledger = system.ledger
    number, pid = person_with_events(ledger, 1)
    other, _ = person_with_events(ledger, 2)
    with db(system) as conn:
        set_state(conn, pid, 4, flip_digit(state_of(conn, pid, 4), "amount_fen"))
    result = verify_all(ledger)
    assert where(result, number) == {("CHAIN_BROKEN", 4)}
    finding = result.findings[0]
    assert finding.person_id == str(pid) and finding.masked_id == mask_id_number(number)
    assert str(pid) in finding.message and mask_id_number(number) in finding.message
    assert not where(result, other)
    assert verify_person(ledger, pid).findings == [f for f in result.findings if f.person_id == str(pid)]


def test_a_row_that_no_longer_decodes_is_reported_not_raised(system):
    ledger = system.ledger
    number, pid = person_with_events(ledger, 1)
    with db(system) as conn:
        state = state_of(conn, pid, 6)
        set_state(conn, pid, 6, state[:-2])  # truncated JSON
        set_state(conn, pid, 8, state_of(conn, pid, 8).replace(b'"reference"', b'"reference_"'))  # a field renamed
    result = verify_all(ledger)
    assert ("EVENT_UNREADABLE", 6) in where(result, number)
    assert ("EVENT_UNREADABLE", 8) in where(result, number)
    assert "cannot be read" in next(f.message for f in result.findings if f.version == 6)


def test_the_last_event_is_covered_by_the_sealed_anchor(system):
    ledger = system.ledger
    number, pid = person_with_events(ledger, 1)
    seal(ledger, digest_channel(system), through=today())
    assert verify_person(ledger, pid).clean
    with db(system) as conn:
        set_state(conn, pid, 10, flip_digit(state_of(conn, pid, 10), "amount_fen"))
    result = verify_person(ledger, pid)
    assert where(result, number) == {("ANCHOR_MISMATCH", 10)}


# ------------------------------------------------------------------ deleted
def test_a_deleted_row_is_found_with_its_version(system):
    ledger = system.ledger
    number, pid = person_with_events(ledger, 1)
    with db(system) as conn:
        conn.execute("DELETE FROM stored_events WHERE originator_id = ? AND originator_version = 5", (pid.hex,))
    result = verify_all(ledger)
    assert where(result, number) == {("VERSION_MISSING", 5)}


def test_a_deleted_tail_is_found_once_sealed(system):
    ledger = system.ledger
    number, pid = person_with_events(ledger, 1)
    seal(ledger, digest_channel(system), through=today())
    with db(system) as conn:
        conn.execute("DELETE FROM stored_events WHERE originator_id = ? AND originator_version >= 9", (pid.hex,))
    assert where(verify_all(ledger), number) == {("TAIL_MISSING", 9)}


# ------------------------------------------------------------------ swapped
def test_two_swapped_rows_are_found_at_their_versions(system):
    ledger = system.ledger
    number, pid = person_with_events(ledger, 1)
    with db(system) as conn:  # versions 7 and 8 are both AccountCredited: both still decode
        a, b = state_of(conn, pid, 7), state_of(conn, pid, 8)
        set_state(conn, pid, 7, b)
        set_state(conn, pid, 8, a)
    found = where(verify_all(ledger), number)
    assert {("CHAIN_BROKEN", 7), ("CHAIN_BROKEN", 8)} <= found
    assert ("ROWS_REORDERED", 8) in found  # version 8 now says it was recorded before version 7
    assert {v for _, v in found} <= {7, 8}


def test_renumbered_rows_are_found(system):
    ledger = system.ledger
    number, pid = person_with_events(ledger, 1)
    with db(system) as conn:  # swap the version numbers of two rows (through a free number)
        for old, new in ((7, 1000), (8, 7), (1000, 8)):
            conn.execute("UPDATE stored_events SET originator_version = ? WHERE originator_id = ? AND "
                         "originator_version = ?", (new, pid.hex, old))
    found = where(verify_all(ledger), number)
    assert ("ROWS_REORDERED", 8) in found
    assert {v for code, v in found if code == "CHAIN_BROKEN"} == {7, 8}


# ------------------------------------------------------------------ snapshots
def test_snapshots_never_mask_tampering_and_a_wrong_snapshot_is_reported(system):
    ledger = system.ledger
    number, pid = person_with_events(ledger, 1)
    ledger.take_snapshot(pid)
    with db(system) as conn:
        set_state(conn, pid, 4, flip_digit(state_of(conn, pid, 4), "amount_fen"))
        snap = json.loads(RING[0].decrypt_store(conn.execute(
            "SELECT state FROM stored_snapshots WHERE originator_id = ?", (pid.hex,)).fetchone()[0]))
        snap["state"]["history"][TRANSFERRED_IN_MONTHS] += 100  # the history's transferred_in_months (its snapshot is rows of values)
        conn.execute("UPDATE stored_snapshots SET state = ? WHERE originator_id = ?",
                     (RING[0].encrypt_store(json.dumps(snap).encode()), pid.hex))
    assert ledger.get_person(pid).contribution_months >= 100  # the application now loads the wrong snapshot
    found = where(verify_person(ledger, pid), number)
    assert ("CHAIN_BROKEN", 4) in found  # the events are checked, whatever the snapshot says
    assert ("SNAPSHOT_MISMATCH", 10) in found


def test_an_untouched_snapshot_agrees(system):
    ledger = system.ledger
    _, pid = person_with_events(ledger, 1)
    ledger.take_snapshot(pid)
    assert verify_person(ledger, pid).clean
    assert verify_all(ledger).clean


# ------------------------------------------------------------------ daily digests
def test_a_changed_row_changes_its_day_digest(system):
    ledger = system.ledger
    channel = digest_channel(system)
    number, pid = person_with_events(ledger, 1)
    sealed = seal(ledger, channel, through=today())
    assert [s.day for s in sealed.segments] == [today()] and sealed.published == [1]
    record = channel.published()[0]
    assert record["format"] == "medins-ledger.audit-digest/1" and record["event_count"] == sealed.events
    assert verify_digests(ledger, channel).clean
    with db(system) as conn:
        set_state(conn, pid, 3, flip_digit(state_of(conn, pid, 3), "amount_fen"))
    result = verify_digests(ledger, channel)
    assert [(f.code, f.day) for f in result.findings] == [("DIGEST_MISMATCH", today().isoformat())]


def test_a_deleted_or_edited_digest_row_is_found_against_the_published_copy(system):
    ledger = system.ledger
    channel = digest_channel(system)
    person_with_events(ledger, 1)
    seal(ledger, channel, through=today())
    with db(system) as conn:
        conn.execute("UPDATE audit_digests SET digest = ? WHERE seq = 1", ("f" * 64,))
    assert [f.code for f in verify_digests(ledger, channel).findings] == ["DIGEST_STORE_CHANGED"]
    with db(system) as conn:
        conn.execute("DELETE FROM audit_digests")
    assert [f.code for f in verify_digests(ledger, channel).findings] == ["DIGEST_MISSING_IN_STORE"]


def test_sealing_continues_the_chain_and_refuses_to_seal_a_damaged_row(system):
    ledger = system.ledger
    channel = digest_channel(system)
    _, pid = person_with_events(ledger, 1)
    first = seal(ledger, channel, through=today())
    assert seal(ledger, channel, through=today()).segments == []  # nothing new
    _, pid2 = person_with_events(ledger, 2)
    second = seal(ledger, channel, through=today()).segments
    assert [s.seq for s in second] == [2] and second[0].day == today()  # the rest of the same day
    assert second[0].prev_digest == first.segments[0].digest
    assert second[0].first_notification_id == first.segments[0].last_notification_id + 1
    assert verify_digests(ledger, channel).clean
    person_with_events(ledger, 3)
    with db(system) as conn:
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = (SELECT max(rowid) FROM stored_events)",
                     (b"{",))
    from ledger.domain.errors import DomainError

    with pytest.raises(DomainError) as err:
        seal(ledger, channel, through=today())
    assert err.value.code == "SEAL_UNREADABLE_EVENT"


def test_days_after_through_are_left_for_later(system):
    ledger = system.ledger
    person_with_events(ledger, 1)
    assert seal(ledger, digest_channel(system), through=today() - timedelta(days=1)).segments == []


# ------------------------------------------------------------------ views
def test_the_cross_check_reports_a_stored_view_field_that_differs(system):
    from projections.store import SQLiteViewStore
    from projections.projection_runner import PolicyCache, ProjectionRunner
    from projections.sources import NotificationLogSource

    ledger = system.ledger
    number, pid = person_with_events(ledger, 1)
    store = SQLiteViewStore(":memory:")
    ProjectionRunner(store, NotificationLogSource(ledger), PolicyCache(ledger.policies)).run_once()
    events = list(ledger.events.get(pid))
    assert cross_check(ledger, pid, events, store) == ([], [])
    assert verify_person(ledger, pid, views=store).clean

    history = store.history(str(pid))
    history.transferred_in_months += 1
    from ledger.domain.history import history_to_plain
    from projections.row_codec import dumps_row

    with store.transaction():
        store._exec(f"UPDATE {store.name(store_rows())} SET state = ? WHERE person_id = ?",
                    (dumps_row(history_to_plain(history)), str(pid)))
        # a flexible worker has no resident coverage year: a years line of theirs is one the events do not give
        store._insert(store_years(), [(str(pid), 2025, HANBIN, None, None, "ACTIVE", False, None, 1, 0, 1, False, False,
                                       None, None, None, None)])
    findings, _ = cross_check(ledger, pid, events, store)
    assert [(f.code, f.version) for f in findings] == [("VIEW_MISMATCH", 10)] * 2
    assert "history.transferred_in_months: stored 1, recomputed from the events 0" in findings[0].message
    assert "view_entitlement_years[2025]: stored 'present'" in findings[1].message
    assert findings[0].masked_id == mask_id_number(number)


def store_rows():
    from projections.store import ROWS

    return ROWS


def store_years():
    from projections.store import YEARS

    return YEARS
