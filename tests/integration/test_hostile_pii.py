"""Personal data at rest and on the topics, PostgreSQL and Kafka, default settings (issue 17, item 9).

The demo's county runs through the real services with no cipher setting (the key is the
one the deployment generates in its state directory); then every table of the schema is
read with ``SELECT`` (every column cast to text, bytea as its bytes) and every record of
every topic of the prefix is read raw (key, value, headers), and all of it is scanned for
the county's ID numbers and names and any valid 18-character ID (tests/pii_scan.py). The
inbound topics are the integrators' bytes (outside the ledger's control): scanned apart,
they prove the scanner finds what is there.
"""
from __future__ import annotations

import os

import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.pii_scan import Findings, Needles, postgres_tables, scan_rows, scan_topics

pytestmark = pytest.mark.integration

SEED = 43


def _raw_topics(bootstrap: str, prefix: str) -> list[tuple[str, list[tuple[bytes, bytes, list]]]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=5000)
    try:
        names = sorted(t for t in consumer.topics() if t.startswith(prefix))
        parts = [TopicPartition(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        out: dict[str, list] = {t: [] for t in names}
        idle = 0
        while any(consumer.position(tp) < ends[tp] for tp in parts) and idle < 40:
            polled = consumer.poll(timeout_ms=500)
            idle = 0 if polled else idle + 1
            for tp, records in polled.items():
                out[tp.topic] += [(r.key, r.value, list(r.headers or ())) for r in records]
        return list(out.items())
    finally:
        consumer.close()


def test_demo_on_postgres_and_kafka_leaves_no_id_and_no_name_in_clear(pg_env, pg_conn, kafka_bootstrap,
                                                                       topic_prefix, tmp_path, hostile):
    from entrypoints.demo import run_pipeline
    from entrypoints.simulation import generate_county

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CIPHER_", "LEDGER_CIPHER"))}
    env.update({k: v for k, v in pg_env.items() if k.startswith("POSTGRES_")})
    env.update(LEDGER_PERSISTENCE="postgres", KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
               LEDGER_TOPIC_PREFIX=topic_prefix, LEDGER_STATE_DIR=str(tmp_path), LEDGER_ID_KEY="pii-integration")
    result = run_pipeline(100, SEED, env=env, quiet=True)
    assert result.ok, {k: v for k, v in result.checks.items() if not v["ok"]}
    assert (tmp_path / "cipher_key").exists()  # the generated deployment key: nothing was configured
    needles = Needles.of(generate_county(SEED, 100))

    pg_conn.rollback()
    tables = list(postgres_tables(pg_conn, pg_env["POSTGRES_SCHEMA"]))
    names = {t for t, _c, _r in tables}
    assert {"ledger_events", "ledger_snapshots"} <= names and any(n.startswith("view_") for n in names)
    assert any(n.startswith("recon_") for n in names)
    rows = scan_rows(tables, needles, Findings())
    assert rows.scanned > 10_000
    hostile.attempt("raw rows scan postgresql (every table of the schema)", leaked=bool(rows))
    assert rows.hits == []

    topics = _raw_topics(kafka_bootstrap, topic_prefix)
    counts = {t: len(r) for t, r in topics}
    assert counts[f"{topic_prefix}ledger.events.v1"] > 500
    assert sum(n for t, n in counts.items() if t.endswith(".dlq")) > 0
    ours, inbound = scan_topics(topics, needles, topic_prefix)
    hostile.attempt("raw topic bytes scan kafka (every topic of the prefix)", leaked=bool(ours))
    assert ours.hits == []
    assert len(inbound.hits) > 100  # the integrators' bytes hold IDs: the scanner finds them
