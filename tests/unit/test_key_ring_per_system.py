"""Each system reads its own personal data with its own keys: the key ring comes from the system's settings.

Two deployments bootstrapped in one process (the demo beside the default, a test's two
deployments), each with its own state directory and so its own generated cipher key, while the
process environment points at a third one. Each encrypts its topic fields, dead letters and
reconciliation's refused records with its own ring and reads them back; neither reads the other's,
and nothing follows the process environment.
"""
from __future__ import annotations

import os
from datetime import date

import pytest

from consumers.dead_letters import open_sealed, seal
from entrypoints.wiring import bootstrap, feed_consumer, ledger_publisher
from events.ledger_events import decode_event
from events.pii import CipherKeyError, KeyRing
from infra.settings import load_settings
from ledger.inbound_records import Provenance
from reconciliation.factory import store_of

ID_NUMBER = "612401197212058649"


@pytest.fixture
def two_systems(tmp_path, monkeypatch):
    for key in ("KAFKA_BOOTSTRAP_SERVERS", "LEDGER_TOPIC_PREFIX", "POSTGRES_HOST", "DATABASE_URL", "CIPHER_KEY",
                "CIPHER_TOPIC", "LEDGER_CIPHER_KEY", "LEDGER_CIPHER_KEYS_OLD", "LEDGER_PERSISTENCE",
                "LEDGER_SQLITE_PATH", "LEDGER_VIEWS_PATH", "LEDGER_RECON_PATH", "LEDGER_ID_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path / "process"))  # the process's own: used by neither
    systems = []
    for name in ("a", "b"):
        env = {**os.environ, "LEDGER_STATE_DIR": str(tmp_path / name)}
        systems.append(bootstrap(load_settings(env)))
    yield systems
    for system in systems:
        system.close()


def _register(system) -> None:
    system.ledger.enroll(
        id_type="RESIDENT_ID", id_number=ID_NUMBER, name="张三", region_code="610902", scheme="RESIDENT",
        effective_date=date(2025, 1, 1), provenance=Provenance(source="cli", user="clerk01", request_id="r1"))


def test_each_system_has_the_key_ring_of_its_own_state_dir(two_systems, tmp_path):
    a, b = two_systems
    assert a.keys.current != b.keys.current
    for system, name in ((a, "a"), (b, "b")):
        assert (tmp_path / name / "cipher_key").read_text().strip() == system.settings.cipher_keys[0]
        assert system.keys.current == KeyRing.for_settings(system.settings).current
    assert not (tmp_path / "process" / "cipher_key").exists()  # nobody asked the process environment


def test_each_systems_publisher_encrypts_with_its_own_ring(two_systems):
    a, b = two_systems
    records = {}
    for system in (a, b):
        _register(system)
        publisher = ledger_publisher(system)
        publisher.publish_pending()
        topic = system.inprocess_broker().topic(system.topic("ledger.events.v1"))
        records[id(system)] = [m.value for part in topic.partitions for m in part]
    for own, other in ((a, b), (b, a)):
        values = records[id(own)]
        registered = [decode_event(v, keys=own.keys) for v in values
                      if decode_event(v)["event_type"] == "Registered"]
        assert [r["id_number"] for r in registered] == [ID_NUMBER]
        with pytest.raises(CipherKeyError):
            for v in values:
                decode_event(v, keys=other.keys)


def test_each_systems_dead_letters_open_with_its_own_ring_only(two_systems):
    a, b = two_systems
    for own, other in ((a, b), (b, a)):
        handler = feed_consumer(own, "tax").handler
        assert handler.keys is own.keys
        value, headers = seal(b"612401197212058649,40000", keys=handler.keys, headers=[])
        assert open_sealed(value, headers, own.keys) == b"612401197212058649,40000"
        with pytest.raises(CipherKeyError):
            open_sealed(value, headers, other.keys)


def test_each_systems_reconciliation_store_keeps_refused_records_under_its_own_ring(two_systems):
    from datetime import datetime, timezone

    a, b = two_systems
    for system in (a, b):
        store = store_of(system)
        assert store.keys is system.keys
        with store.transaction():
            store.add_errors([{"id": "e1", "statement_id": "S1", "line_no": 1, "code": "LINE_MALFORMED", "message": "bad",
                               "source": "tax.statements.v1/0/7", "raw": ID_NUMBER.encode(), "detail": None,
                               "at": datetime(2025, 3, 1, tzinfo=timezone.utc)}])
    for own, other in ((a, b), (b, a)):
        (error,) = store_of(own).errors()
        assert error["raw"] == ID_NUMBER.encode()
        other_store = type(store_of(own))(own.settings.recon_file())
        other_store.keys = other.keys
        try:
            with pytest.raises(CipherKeyError):
                other_store.errors()
        finally:
            other_store.close()


def test_each_system_reads_its_own_event_store(two_systems):
    import sqlite3

    a, b = two_systems
    for system in (a, b):
        _register(system)
    for own, other in ((a, b), (b, a)):
        assert own.ledger.find_person("RESIDENT_ID", ID_NUMBER).name == "张三"
        with sqlite3.connect(own.settings.sqlite_path) as conn:
            state = conn.execute("SELECT state FROM stored_events WHERE topic LIKE '%Registered'").fetchone()[0]
        assert b"\xe5\xbc\xa0" in own.keys.decrypt_store(state)  # 张, in the own key's clear text
        with pytest.raises(CipherKeyError):
            other.keys.decrypt_store(state)
