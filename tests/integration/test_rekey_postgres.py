"""Key rotation on PostgreSQL: ``entrypoints.rekey`` moves every stored event and snapshot to the current key."""
from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from events.pii import new_key
from entrypoints.wiring import bootstrap
from infra.settings import load_settings
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import Provenance
from entrypoints.rekey import rekey

pytestmark = pytest.mark.integration


def test_rotation_on_postgres(pg_env, pg_conn, tmp_path):
    old, new = new_key(), new_key()
    env = {**{k: v for k, v in pg_env.items() if k.startswith("POSTGRES_")}, "LEDGER_PERSISTENCE": "postgres",
           "LEDGER_STATE_DIR": str(tmp_path), "LEDGER_ID_KEY": "rekey-pg", "CIPHER_KEY": old}
    numbers = [make_resident_id("610902", date(1970, 1, 2), i) for i in range(1, 5)]
    system = bootstrap(replace(load_settings(env), store_cipher={}, encrypt_at_rest=False))  # one person stored in clear
    pids = []
    try:
        pids.append(_enroll(system, numbers[0]))
    finally:
        system.close()
    system = bootstrap(load_settings({**env, "LEDGER_CIPHER_READ_PLAIN": "1"}))
    try:
        pids += [_enroll(system, n) for n in numbers[1:]]
        system.ledger.take_snapshot(pids[1])
    finally:
        system.close()
    system = bootstrap(load_settings({**env, "CIPHER_KEY": new, "LEDGER_CIPHER_KEYS_OLD": old,
                                      "LEDGER_CIPHER_READ_PLAIN": "1"}))
    try:
        reports = {r.table: r for r in rekey(system, plain=True)}
    finally:
        system.close()
    assert reports["ledger_events"].plain >= 2 and reports["ledger_events"].rekeyed >= 6
    assert reports["ledger_snapshots"].rekeyed == 1
    system = bootstrap(load_settings({**env, "CIPHER_KEY": new}))  # the old key retired
    try:
        assert [system.ledger.repository.get(p).id_number for p in pids] == numbers
    finally:
        system.close()
    pg_conn.rollback()
    states = [bytes(r[0]) for r in pg_conn.execute("SELECT state FROM ledger_events").fetchall()]
    assert states and not any(n.encode() in s for s in states for n in numbers)


def _enroll(system, number: str):
    return system.ledger.enroll(id_type="RESIDENT_ID", id_number=number, name="钱多多", scheme="RESIDENT",
                                region_code="610902", grid_code="610902100001", effective_date=date(2025, 1, 2),
                                provenance=Provenance(source="cli", user="clerk")).person_id
