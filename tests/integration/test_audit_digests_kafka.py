"""Daily digests on PostgreSQL and Kafka: sealed, published to ``<prefix>ledger.audit.digests.v1``, re-checked.

A row changed in ``ledger_events`` after sealing makes ``ledger verify --digests``
report the day (and ``ledger verify`` the person and the version).
"""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest
from kafka import KafkaConsumer, TopicPartition

from entrypoints.audit import DIGEST_TOPIC, digest_channel, seal, verify_digests
from entrypoints.wiring import bootstrap
from entrypoints.cli import main
from infra.settings import Settings, postgres_from_env
from ledger.domain.identity import make_resident_id
from ledger.domain.person import business_date
from ledger.log import mask_id_number
from ledger.inbound_records import Provenance, TaxPaymentRecord

pytestmark = pytest.mark.integration

HANBIN = "610902"
KEY = "audit-digest-integration"
CLERK = Provenance(source="api", user="clerk01", request_id="req-1")


def _today() -> date:
    return business_date(datetime.now(timezone.utc))


@pytest.fixture(scope="module")
def system(pg_env, kafka_bootstrap, topic_prefix):
    s = bootstrap(Settings(persistence="postgres",
                           postgres=postgres_from_env(pg_env),
                           kafka_bootstrap_servers=kafka_bootstrap, id_key=KEY.encode(), topic_prefix=topic_prefix))
    people = []
    for seq in (1, 2, 3):
        number = make_resident_id(HANBIN, date(1990, 7, 1), seq)
        pid = s.ledger.enroll(id_type="RESIDENT_ID", id_number=number, name="孙丽", scheme="RESIDENT",
                              region_code=HANBIN, grid_code="610902100001", effective_date=date(2024, 9, 15),
                              provenance=CLERK).person_id
        s.ledger.record_tax_record(TaxPaymentRecord(
            voucher_no=f"D{seq}", tax_office="16109020000", id_type="RESIDENT_ID", id_number=number, name="孙丽",
            region_code=HANBIN, levy_item="RESIDENT", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
            amount_fen=40000, paid_at=datetime(2024, 10, 3, 4, tzinfo=timezone.utc)),
            provenance=Provenance(source="kafka", topic="tax.payments.v1", partition=0, offset=seq))
        people.append((number, pid))
    s.people = people  # type: ignore[attr-defined]
    yield s
    s.close()


def _topic_records(kafka_bootstrap: str, topic: str) -> list[dict]:
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        out = []
        while consumer.position(tp) < end:
            for records in consumer.poll(timeout_ms=1000).values():
                out += [json.loads(r.value) for r in records]
        return out
    finally:
        consumer.close()


@pytest.fixture()
def cli_env(monkeypatch, pg_env, kafka_bootstrap, topic_prefix):
    monkeypatch.setenv("LEDGER_PERSISTENCE", "postgres")
    for k, v in pg_env.items():
        if k.startswith("POSTGRES_"):
            monkeypatch.setenv(k, v)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("LEDGER_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("LEDGER_ID_KEY", KEY)
    monkeypatch.delenv("DATABASE_URL", raising=False)


def test_the_day_is_sealed_stored_and_published(system, kafka_bootstrap, topic_prefix, pg_conn):
    result = seal(system.ledger, digest_channel(system), through=_today())
    assert [s.day for s in result.segments] == [_today()] and result.published == [1]
    published = _topic_records(kafka_bootstrap, f"{topic_prefix}{DIGEST_TOPIC}")
    assert published == [result.segments[0].record()]
    assert published[0]["event_count"] == result.events == system.ledger.recorder.max_notification_id()
    stored = pg_conn.execute("SELECT day, digest, published_at IS NOT NULL FROM audit_digests").fetchall()
    assert stored == [(_today(), published[0]["digest"], True)]
    assert verify_digests(system.ledger, digest_channel(system)).clean


def test_a_changed_row_makes_verify_digests_report_the_day(system, pg_conn, cli_env, capsys):
    assert main(["verify", "--digests"]) == 0
    capsys.readouterr()
    number, pid = system.people[1]
    # An insider with the deployment key (events are encrypted at rest by default) adds one fen to the payment.
    ring = system.ledger.mapper.cipher.ring
    state = ring.decrypt_store(bytes(pg_conn.execute(
        "SELECT state FROM ledger_events WHERE originator_id = %s AND originator_version = 3", (pid,)).fetchone()[0]))
    assert b'"amount_fen":40000' in state
    changed = pg_conn.execute(
        "UPDATE ledger_events SET state = %s WHERE originator_id = %s AND originator_version = 3",
        (ring.encrypt_store(state.replace(b'"amount_fen":40000', b'"amount_fen":40001')), pid)).rowcount
    assert changed == 1
    pg_conn.commit()
    assert main(["verify", "--digests", "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    codes = {(f["code"], f["day"] or f["version"]) for f in result["findings"]}
    assert ("DIGEST_MISMATCH", _today().isoformat()) in codes
    chain = [f for f in result["findings"] if f["code"] != "DIGEST_MISMATCH"]
    assert chain and all(f["masked_id"] == mask_id_number(number) and f["version"] == 3 for f in chain)
