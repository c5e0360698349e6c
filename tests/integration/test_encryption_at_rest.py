"""Personal data (个人信息保护): encrypted at rest in PostgreSQL, masked in the logs.

(a) With ``CIPHER_TOPIC=eventsourcing.cipher:AESCipher`` and a ``CIPHER_KEY`` in the
    environment the settings are loaded from, the ledger's events and snapshots are
    stored encrypted: the raw rows of ``ledger_events`` and ``ledger_snapshots`` (and of
    every other table in the schema) hold neither the ID number nor the name in clear,
    while the ledger still reads the person back -- and a ledger without the key cannot.
(b) A feed consumer with rejections, and HTTP requests with an ID number in the path,
    write JSON log lines none of which holds a full ID number.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest
from eventsourcing.cipher import AESCipher
from fastapi.testclient import TestClient
from psycopg import sql

from events.codec import encode
from events.inbound import TAX_PAYMENT, tax_record_to_avro
from ledger.application import Ledger
from entrypoints.wiring import bootstrap, feed_consumer
from infra.settings import Settings, load_settings
from ledger.domain.identity import make_resident_id
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from ledger.log import configure_logging
from ledger.inbound_records import Provenance, TaxPaymentRecord

HANBIN = "610902"
NAME = "欧阳淑芬"
API = Provenance(source="api", user="clerk01", request_id="enc-1")
FEED = Provenance(source="kafka", topic="tax.payments.v1", partition=0, offset=1)
ID_NUMBER = make_resident_id(HANBIN, date(1975, 3, 9), 123)
OTHER = make_resident_id(HANBIN, date(1990, 12, 1), 456)


def payment(id_number: str, voucher: str, **over) -> TaxPaymentRecord:
    fields = dict(
        voucher_no=voucher, tax_office="16109020000", id_type="RESIDENT_ID", id_number=id_number, name=NAME,
        region_code=HANBIN, levy_item="RESIDENT", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
        amount_fen=40000, paid_at=datetime(2024, 10, 8, 1, 30, tzinfo=timezone.utc), credited_on=date(2024, 10, 9),
        channel="APP",
    )
    fields.update(over)
    return TaxPaymentRecord(**fields)


@pytest.fixture(scope="module")
def cipher_env(pg_env):
    """The environment a deployment would have: PostgreSQL, the identity key, the cipher."""
    return {**pg_env, "LEDGER_PERSISTENCE": "postgres", "LEDGER_ID_KEY": "enc-test-key",
            "CIPHER_TOPIC": "eventsourcing.cipher:AESCipher", "CIPHER_KEY": AESCipher.create_key(16)}


def test_settings_carry_the_cipher_to_the_event_store(cipher_env, monkeypatch):
    settings = load_settings(cipher_env)
    env = settings.event_store_env()
    assert env["CIPHER_TOPIC"] == "eventsourcing.cipher:AESCipher"
    assert env["CIPHER_KEY"] == cipher_env["CIPHER_KEY"]
    assert cipher_env["CIPHER_KEY"] not in repr(settings)
    # ... also when they come from the process environment
    monkeypatch.setenv("CIPHER_TOPIC", "eventsourcing.cipher:AESCipher")
    monkeypatch.setenv("CIPHER_KEY", cipher_env["CIPHER_KEY"])
    monkeypatch.setenv("LEDGER_ID_KEY", "enc-test-key")
    assert load_settings().event_store_env()["CIPHER_KEY"] == cipher_env["CIPHER_KEY"]
    assert "CIPHER_KEY" not in Settings(persistence="memory", id_key=b"k").event_store_env()


def raw_rows(pg_conn, schema: str) -> dict[str, list[tuple]]:
    """Every row of every table in the test schema, as stored."""
    tables = [r[0] for r in pg_conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)).fetchall()]
    return {t: pg_conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, t))).fetchall()
            for t in tables}


def needles(text: str) -> list[bytes]:
    """The ways a text could appear in a stored value: UTF-8, JSON-escaped, UTF-16."""
    return [text.encode(), json.dumps(text).strip('"').encode(), text.encode("utf-16-le")]


def assert_nowhere(rows: dict[str, list[tuple]], *texts: str) -> None:
    for table, values in rows.items():
        for row in values:
            for value in row:
                raw = bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
                for text in texts:
                    for needle in needles(text):
                        assert needle not in raw, f"{text!r} in clear in {table}"


def test_events_and_snapshots_are_encrypted_at_rest(cipher_env, pg_env, pg_conn):
    system = bootstrap(load_settings(cipher_env))
    ledger = system.ledger
    try:
        assert ledger.mapper.cipher is not None and type(ledger.mapper.cipher).__name__ == "AESCipher"
        outcome = ledger.enroll(id_type="RESIDENT_ID", id_number=ID_NUMBER, name=NAME, scheme="RESIDENT",
                                region_code=HANBIN, grid_code="610902100001", effective_date=date(2024, 9, 10),
                                provenance=API)
        assert outcome.applied
        assert ledger.record_tax_record(payment(ID_NUMBER, "ENC-V1"), provenance=FEED).applied
        # the batch path (one statement for many aggregates, infra.event_store.batch_load) reads through the cipher too
        [batch] = ledger.record_tax_records([(payment(OTHER, "ENC-V2"), FEED)])
        assert batch.applied, batch.message
        ledger.take_snapshot(outcome.person_id)
        pg_conn.commit()

        rows = raw_rows(pg_conn, pg_env["POSTGRES_SCHEMA"])
        assert rows["ledger_events"] and rows["ledger_snapshots"], sorted(rows)
        assert_nowhere(rows, ID_NUMBER, NAME, OTHER, "RESIDENT_ID", "610902100001")
    finally:
        system.close()

    # A fresh ledger with the key reads the person back (from the snapshot and the events) ...
    again = bootstrap(load_settings(cipher_env))
    try:
        person = again.ledger.find_person("RESIDENT_ID", ID_NUMBER)
        assert (person.id_number, person.name) == (ID_NUMBER, NAME)
        assert person.paid_fen_for("2025") == 40000
        assert again.ledger.find_person("RESIDENT_ID", OTHER).name == NAME
    finally:
        again.close()
    # ... and one without the key cannot.
    plain = {k: v for k, v in cipher_env.items() if not k.startswith("CIPHER_")}
    blind = Ledger(load_settings(plain).event_store_env(), policies=again.policies, id_key=b"enc-test-key")
    try:
        with pytest.raises(Exception):
            blind.find_person("RESIDENT_ID", ID_NUMBER)
    finally:
        blind.close()


# --------------------------------------------------------------------------- (b) logs
@pytest.fixture()
def json_log(capsys):
    """JSON logging on (the log goes to whatever sys.stderr is: pytest's capture here)."""
    configure_logging(json=True, force=True)
    capsys.readouterr()
    yield capsys
    configure_logging(force=True)


def test_no_full_id_number_in_any_log_line(json_log):
    system = bootstrap(Settings(persistence="memory", id_key=b"log-test"))
    try:
        broker = system.inprocess_broker()
        bad_checksum = ID_NUMBER[:-1] + ("0" if ID_NUMBER[-1] != "0" else "1")
        values = [
            encode(TAX_PAYMENT, tax_record_to_avro(payment(ID_NUMBER, "LOG-V1"))),
            b"not avro at all" + ID_NUMBER.encode(),
            encode(TAX_PAYMENT, tax_record_to_avro(payment(bad_checksum, "LOG-V2"))),
            encode(TAX_PAYMENT, tax_record_to_avro(payment(OTHER, "LOG-V3", region_code="999999"))),
            encode(TAX_PAYMENT, tax_record_to_avro(payment(OTHER, "LOG-V4", kind="REFUND",
                                                           original_voucher_no="NO-SUCH"))),
        ]
        for value in values:
            broker.produce("tax.payments.v1", key=ID_NUMBER.encode(), value=value, partition=0)
        for batch in (True, False):
            runner = feed_consumer(system, "tax", batch=batch, group=f"log-test-{batch}")
            results = []
            for _ in range(5):
                got = runner.run_once(timeout=0)
                if not got:
                    break
                results += got
            assert sum(len(r.rejected) for r in results) >= 3

        tokens = TokenStore.from_tokens({"tok-auditor": ("auditor", "auditor", []),
                                         "tok-clerk": ("clerk", "clerk", [HANBIN])})
        client = TestClient(create_app(system, tokens), raise_server_exceptions=False)
        for path in (f"/persons/RESIDENT_ID/{ID_NUMBER}", f"/persons/RESIDENT_ID/{ID_NUMBER}/entitlement",
                     f"/persons/RESIDENT_ID/{ID_NUMBER}/history", f"/persons/RESIDENT_ID/{bad_checksum}",
                     f"/persons/RESIDENT_ID/{ID_NUMBER.lower()}x", f"/no-such-route/{ID_NUMBER}"):
            client.get(path, headers={"Authorization": "Bearer tok-auditor"})
        client.get(f"/persons/RESIDENT_ID/{ID_NUMBER}")  # unauthenticated: refused, still logged
        client.post(f"/persons/RESIDENT_ID/{ID_NUMBER}/enrollments/end", json={"reason": "nope", "id": ID_NUMBER},
                    headers={"Authorization": "Bearer tok-clerk"})
    finally:
        system.close()

    lines = [line for line in json_log.readouterr().err.splitlines() if line.strip()]
    assert len(lines) >= 8
    records = [json.loads(line) for line in lines]  # every line is JSON
    assert any(r.get("event") == "request" for r in records)
    for line in lines:
        for number in (ID_NUMBER, OTHER, bad_checksum):
            assert number not in line and number.lower() not in line, line
