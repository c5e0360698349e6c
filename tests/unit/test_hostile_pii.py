"""Personal data at rest and on the topics, embedded default: an attacker with a copy of the files and topics
reads no ID number and no name (issue 17, item 9).

The demo's county runs through the embedded default (SQLite, in-process topics) with no
cipher setting at all; then every column of every row of every SQLite file, the files'
raw bytes, and every record (key, value, headers) of every topic the ledger writes are
scanned (tests/pii_scan.py). The inbound topics hold what the tax bureau and the registry
sent, outside the ledger's control: they are scanned too, as the proof that the scanner
finds IDs where they are.
"""
from __future__ import annotations

import os
import sqlite3
import stat
from datetime import date
from base64 import b64encode
from pathlib import Path

import pytest

import entrypoints.wiring as bootstrap_module
from events.pii import CipherKeyError, KeyRing, new_key
from infra.settings import load_settings
from tests.pii_scan import Findings, Needles, scan_rows, scan_topics, scan_value, sqlite_tables

SEED = 41


@pytest.fixture
def embedded_env(tmp_path, monkeypatch):
    for key in ("KAFKA_BOOTSTRAP_SERVERS", "LEDGER_TOPIC_PREFIX", "POSTGRES_HOST", "DATABASE_URL", "CIPHER_KEY",
                "CIPHER_TOPIC", "LEDGER_CIPHER_KEY", "LEDGER_CIPHER_KEYS_OLD", "LEDGER_PERSISTENCE",
                "LEDGER_SQLITE_PATH", "LEDGER_VIEWS_PATH"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def demo(embedded_env, monkeypatch):
    """The demo's pipeline on the embedded default; yields (state dir, county, the system's in-process broker)."""
    from entrypoints.demo import run_pipeline
    from entrypoints.simulation import generate_county

    systems = []
    real = bootstrap_module.bootstrap

    def capture(*args, **kwargs):
        systems.append(real(*args, **kwargs))
        return systems[-1]

    monkeypatch.setattr(bootstrap_module, "bootstrap", capture)
    result = run_pipeline(100, SEED, quiet=True)
    assert result.ok, {k: v for k, v in result.checks.items() if not v["ok"]}
    (system,) = systems
    return embedded_env / "demo", generate_county(SEED, 100), system.broker


def test_no_id_number_and_no_name_in_any_sqlite_row_or_file(demo, hostile):
    root, county, _broker = demo
    needles = Needles.of(county)
    files = sorted(root.glob("*.sqlite"))
    assert {f.name for f in files} >= {"ledger.sqlite", "views.sqlite", "reconciliation.sqlite"}
    rows = Findings()
    for path in files:
        scan_rows(sqlite_tables(str(path)), needles, rows)
    assert rows.scanned > 10_000
    hostile.attempt("raw rows scan sqlite (every table, every column)", leaked=bool(rows))
    assert rows.hits == []
    # The files' raw bytes too (free pages, the write-ahead log): nothing dropped left a copy in clear.
    raw = Findings()
    for path in sorted(root.glob("*.sqlite*")):
        scan_value(path.read_bytes(), needles, path.name, raw)
    hostile.attempt("raw file bytes scan sqlite", leaked=bool(raw))
    assert raw.hits == []

    # The scanner finds them where they are: a Registered event decrypted with the deployment key.
    ring = KeyRing.for_settings(load_settings({**os.environ, "LEDGER_STATE_DIR": str(root)}))  # the demo's own key

    with sqlite3.connect(root / "ledger.sqlite") as conn:
        state = conn.execute("SELECT state FROM stored_events WHERE topic LIKE '%Registered' LIMIT 1").fetchone()[0]
    clear = Findings()
    scan_value(ring.decrypt_store(state), needles, "decrypted", clear)
    assert clear.hits and clear.hits[0][1].startswith("id ")


def test_no_id_number_and_no_name_on_the_ledgers_topics_and_dead_letters(demo, hostile):
    _root, county, broker = demo
    needles = Needles.of(county)
    topics = [(name, [(m.key, m.value, m.headers) for part in topic.partitions for m in part])
              for name, topic in broker.topics.items()]
    counts = {name: len(records) for name, records in topics}
    assert counts["ledger.events.v1"] > 500
    assert sum(n for name, n in counts.items() if name.endswith(".dlq")) > 0  # malformed rows were dead-lettered
    ours, inbound = scan_topics(topics, needles)
    hostile.attempt("raw topic bytes scan in-process (ledger.events.v1, *.dlq, results)", leaked=bool(ours))
    assert ours.hits == []
    assert len(inbound.hits) > 100  # the integrators' own bytes: the scanner does find IDs and names

    # The documented downstream path: the deployment's key gives the clear values back.
    from events.ledger_events import decode_event

    ring = KeyRing.for_settings(load_settings({**os.environ, "LEDGER_STATE_DIR": str(_root)}))
    registered = [e for e in (decode_event(m.value) for m in broker.topic("ledger.events.v1").partitions[0])
                  if e["event_type"] == "Registered"]
    assert registered and all("*" in e["id_number"] for e in registered)
    clear = decode_event(next(m.value for m in broker.topic("ledger.events.v1").partitions[0]
                              if decode_event(m.value)["event_id"] == registered[0]["event_id"]), keys=ring)
    assert clear["id_number"].encode() in needles.ids and clear["name"].encode() in needles.names


def test_the_cipher_key_is_generated_once_private_and_required_in_production(embedded_env):
    first = load_settings()
    path = embedded_env / "cipher_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_settings().cipher_keys == first.cipher_keys  # stable across runs
    assert first.store_cipher["CIPHER_TOPIC"] == "events.cipher:LedgerCipher"
    assert first.cipher_keys[0] not in repr(first)
    explicit = new_key()
    assert load_settings({**os.environ, "LEDGER_CIPHER_KEY": explicit}).store_cipher["CIPHER_KEY"] == explicit
    with pytest.raises(SystemExit, match="CIPHER_KEY is not set"):
        load_settings({"LEDGER_STATE_DIR": str(embedded_env / "prod"), "LEDGER_PERSISTENCE": "postgres",
                       "LEDGER_ID_KEY": "k", "LEDGER_REQUIRE_ID_KEY": "1"})


def test_a_rotated_key_still_reads_what_the_old_one_wrote(embedded_env, hostile):
    """Rotation: the new key in CIPHER_KEY, the old one in LEDGER_CIPHER_KEYS_OLD; without it, a clear refusal."""
    from entrypoints.wiring import bootstrap
    from ledger.domain.identity import make_resident_id
    from ledger.inbound_records import Provenance

    old, new = new_key(), new_key()
    env = {**os.environ, "LEDGER_ID_KEY": "rotation", "CIPHER_KEY": old}
    number = make_resident_id("610902", date(1980, 5, 6), 12)
    system = bootstrap(load_settings(env))
    try:
        pid = system.ledger.enroll(id_type="RESIDENT_ID", id_number=number, name="钱多多", scheme="RESIDENT",
                                   region_code="610902", grid_code="610902100001", effective_date=date(2025, 1, 2),
                                   provenance=Provenance(source="cli", user="clerk")).person_id
    finally:
        system.close()
    rotated = bootstrap(load_settings({**env, "CIPHER_KEY": new, "LEDGER_CIPHER_KEYS_OLD": old}))
    try:
        assert rotated.ledger.repository.get(pid).id_number == number
    finally:
        rotated.close()
    forgot = bootstrap(load_settings({**env, "CIPHER_KEY": new}))
    try:
        with pytest.raises(ValueError, match="key not configured"):
            forgot.ledger.repository.get(pid)
    finally:
        forgot.close()
    hostile.attempt("read the store with another deployment's key", leaked=False)


def test_field_values_name_their_key_and_refuse_tampering(hostile):
    old, new = new_key(), new_key()
    ring = KeyRing.from_texts(old)
    value = ring.encrypt("612401197212058649".encode())
    assert b"612401197212058649" not in value and value[:1] == b"\xe1"
    assert KeyRing.from_texts(new, [old]).decrypt(value) == b"612401197212058649"
    with pytest.raises(CipherKeyError, match="not configured"):
        KeyRing.from_texts(new).decrypt(value)
    flipped = value[:-1] + bytes([value[-1] ^ 1])
    with pytest.raises(CipherKeyError, match="damaged"):
        ring.decrypt(flipped)
    hostile.attempt("flip a bit of an encrypted field", leaked=False)
    assert b64encode(ring.current).decode() == old


def test_the_slow_path_is_not_a_bypass(embedded_env):
    """The fast decoders and the library's mapper agree on an encrypted store (the same events)."""
    from entrypoints.wiring import bootstrap
    from entrypoints.simulation.county import generate_county
    from infra.event_store.stored_events import is_plain_json_mapper, row_decoder

    system = bootstrap(load_settings({**os.environ, "LEDGER_ID_KEY": "fast"}))
    try:
        generate_county(3, 100).apply_to(system.ledger)
        mapper = system.ledger.mapper
        assert mapper.cipher is not None and is_plain_json_mapper(mapper)
        decode = row_decoder(mapper)
        stored = system.ledger.recorder.select_notifications(1, 300)
        assert len(stored) == 300 and not any(_is_json(s.state) for s in stored)
        for s in stored:
            assert vars(decode(s.originator_id, s.originator_version, s.topic, s.state)) == vars(
                mapper.to_domain_event(s))
    finally:
        system.close()


def test_state_dir_key_is_the_one_the_publisher_uses(embedded_env):
    """The store's key and the topics' key are the same deployment key (one file, one ring)."""
    from events.pii import deployment_keys

    assert Path(embedded_env / "cipher_key").exists() is False
    settings = load_settings()
    assert deployment_keys().current == KeyRing.for_settings(settings).current


def _is_json(data: bytes) -> bool:
    import json

    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def test_an_integrator_keying_by_id_number_does_not_put_it_on_the_ledger_topic(embedded_env, hostile):
    """The inbound key lands in provenance (record_key): published masked, the ledger's copy encrypted."""
    from events.codec import encode
    from events.inbound import TAX_PAYMENT, tax_record_to_avro
    from events.ledger_events import decode_event
    from entrypoints.wiring import bootstrap, feed_consumer, ledger_publisher
    from ledger.domain.identity import make_resident_id
    from ledger.inbound_records import TaxPaymentRecord
    from datetime import datetime, timezone

    number = make_resident_id("610902", date(1975, 3, 9), 123)
    system = bootstrap(load_settings({**os.environ, "LEDGER_ID_KEY": "keyed"}))
    try:
        broker = system.inprocess_broker()
        record = TaxPaymentRecord(
            voucher_no="K-1", tax_office="16109020000", id_type="RESIDENT_ID", id_number=number, name="欧阳淑芬",
            region_code="610902", levy_item="RESIDENT", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
            amount_fen=40000, paid_at=datetime(2024, 10, 8, 1, 30, tzinfo=timezone.utc), credited_on=date(2024, 10, 9),
            channel="APP")
        broker.produce("tax.payments.v1", key=number.encode(), value=encode(TAX_PAYMENT, tax_record_to_avro(record)),
                       partition=0)
        broker.produce("tax.payments.v1", key=number.encode(), value=b"garbage " + number.encode(), partition=0)
        runner = feed_consumer(system, "tax", group="keyed")
        while runner.run_once(timeout=0):
            pass
        assert ledger_publisher(system).publish_pending() >= 3
        topics = [(name, [(m.key, m.value, m.headers) for part in t.partitions for m in part])
                  for name, t in broker.topics.items()]
        needles = Needles({number.encode()}, {"欧阳淑芬".encode()})
        ours, inbound = scan_topics(topics, needles)
        hostile.attempt("inbound records keyed by ID number, then published", leaked=bool(ours))
        assert ours.hits == [] and inbound.hits
        published = [decode_event(m.value) for part in broker.topic("ledger.events.v1").partitions for m in part]
        paid = [e for e in published if e["event_type"] == "ContributionPaid"]
        assert paid and paid[0]["provenance"]["record_key"] == number[:4] + "*" * 10 + number[-4:]
    finally:
        system.close()


def _enroll(system, number: str) -> object:
    from ledger.inbound_records import Provenance

    return system.ledger.enroll(id_type="RESIDENT_ID", id_number=number, name="钱多多", scheme="RESIDENT",
                                region_code="610902", grid_code="610902100001", effective_date=date(2025, 1, 2),
                                provenance=Provenance(source="cli", user="clerk")).person_id


def test_rekey_moves_every_row_to_the_current_key_and_encrypts_a_store_written_in_clear(embedded_env, hostile):
    from dataclasses import replace

    from entrypoints.wiring import bootstrap
    from ledger.domain.identity import make_resident_id
    from entrypoints.rekey import rekey

    numbers = [make_resident_id("610902", date(1981, 2, 3), i) for i in range(1, 4)]
    old, new = new_key(), new_key()
    env = {**os.environ, "LEDGER_ID_KEY": "rekey", "CIPHER_KEY": old}
    # A store from before encryption was the default: one person in clear ...
    clear_settings = replace(load_settings(env), store_cipher={}, encrypt_at_rest=False)
    system = bootstrap(clear_settings)
    try:
        first = _enroll(system, numbers[0])
    finally:
        system.close()
    with sqlite3.connect(embedded_env / "ledger.sqlite") as conn:
        assert any(numbers[0].encode() in bytes(r[0]) for r in conn.execute("SELECT state FROM stored_events"))
    # ... then two more under the old key (read-plain bridge on), then the key rotated.
    system = bootstrap(load_settings({**env, "LEDGER_CIPHER_READ_PLAIN": "1"}))
    try:
        others = [_enroll(system, n) for n in numbers[1:]]
    finally:
        system.close()
    rotated = {**env, "CIPHER_KEY": new, "LEDGER_CIPHER_KEYS_OLD": old, "LEDGER_CIPHER_READ_PLAIN": "1"}
    system = bootstrap(load_settings(rotated))
    try:
        reports = rekey(system, plain=True)
    finally:
        system.close()
    events = next(r for r in reports if r.table == "stored_events")
    assert events.plain >= 2 and events.rekeyed >= 4 and events.unreadable == 0
    # Only the new key now, no bridge: everyone reads, nothing in clear.
    system = bootstrap(load_settings({**env, "CIPHER_KEY": new}))
    try:
        for pid, number in zip([first, *others], numbers):
            assert system.ledger.repository.get(pid).id_number == number
        assert all(r.current == r.rows for r in rekey(system, dry_run=True))
    finally:
        system.close()
    found = scan_rows(sqlite_tables(str(embedded_env / "ledger.sqlite")), Needles(
        {n.encode() for n in numbers}, {"钱多多".encode()}), Findings())
    hostile.attempt("raw rows scan after rekey of a store written in clear", leaked=bool(found))
    assert found.hits == []


def test_processes_starting_together_share_one_generated_key(embedded_env):
    import multiprocessing

    from infra.settings import cipher_keys

    with multiprocessing.get_context("fork").Pool(4) as pool:
        keys = pool.map(_key_in_child, [str(embedded_env)] * 8)
    assert len(set(keys)) == 1 and keys[0] == cipher_keys({"LEDGER_STATE_DIR": str(embedded_env)})[0]
    assert [p.name for p in embedded_env.iterdir()] == ["cipher_key"]  # no temporary file left behind


def _key_in_child(directory: str) -> str:
    from infra.settings import cipher_keys

    return cipher_keys({"LEDGER_STATE_DIR": directory})[0]


def test_settings_built_by_hand_encrypt_with_the_deployment_key_too(embedded_env):
    """A process whose Settings were built by hand (tests, tools) writes what load_settings() processes read."""
    from infra.settings import Settings

    by_hand = Settings(persistence="sqlite", sqlite_path=str(embedded_env / "x.sqlite"), id_key=b"k")
    env = by_hand.event_store_env()
    assert env["CIPHER_TOPIC"] == "events.cipher:LedgerCipher"
    assert env["CIPHER_KEY"] == load_settings().store_cipher["CIPHER_KEY"]
    assert "CIPHER_KEY" not in Settings(persistence="memory", id_key=b"k").event_store_env()
    assert "CIPHER_KEY" not in Settings(persistence="sqlite", id_key=b"k", encrypt_at_rest=False).event_store_env()
