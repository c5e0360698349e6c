"""Cluster mode on real servers: 3 Kafka brokers (RF 3, min.insync.replicas 2) and a PostgreSQL pair.

A private cluster of its own (a temp state dir, ports from 29100-29199 / 56100-56199), started
by the project's script (``infra.cluster.up``) and removed at the end. The tests run in file
order on the one cluster: brokers killed and restarted, the standby stopped, the primary
SIGKILLed and the standby promoted by ``python -m infra failover``.

Runs only with ``LEDGER_CLUSTER_TESTS=1`` (about two minutes on an idle 2-core box; it starts
five servers of its own).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from infra import cluster, stack
from infra.stack import StackConfig

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("LEDGER_CLUSTER_TESTS") != "1",
                       reason="cluster tests start 5 servers: set LEDGER_CLUSTER_TESTS=1"),
]
REPO = Path(__file__).resolve().parents[2]
TOOLS = ("LEDGER_JAVA", "LEDGER_MVN", "LEDGER_PG_BINDIR", "LEDGER_KAFKA_LIB_DIR", "LEDGER_FETCH_TIMEOUT")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    state = tmp_path_factory.mktemp("cluster")
    cfg = StackConfig.from_env({k: v for k, v in os.environ.items() if k in TOOLS}, state_dir=state, timeout=240)
    cluster.cluster_dir(cfg).mkdir(parents=True)
    cluster.save_state(cfg, cluster.ClusterState(kafka_port=cluster.free_port_run(29100, 29200, 6),
                                                 pg_port=cluster.free_port_run(56100, 56200, 2)))
    try:
        settings = cluster.up(cfg)
        yield cfg, settings
    finally:
        cluster.clean(cfg)


def _status(cfg: StackConfig) -> dict[str, str]:
    return {s.name: f"{s.state}: {s.detail}" for s in cluster.status(cfg).services}


def _cli(cfg: StackConfig, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEDGER_STATE_DIR": str(cfg.state_dir)}
    return subprocess.run([sys.executable, "-m", "infra", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_up_starts_three_brokers_and_a_synchronous_standby(pair):
    cfg, settings = pair
    assert len(settings["KAFKA_BOOTSTRAP_SERVERS"].split(",")) == 3
    states = _status(cfg)
    assert [states[f"kafka-{n}"].split(":")[0] for n in (1, 2, 3)] == ["up"] * 3
    assert states["postgres pg-a"] == "up: primary, standby pg_b streaming (sync)"
    assert states["postgres pg-b"].startswith("up: standby, streaming from port")
    env = _cli(cfg, "env")
    assert env.returncode == 0 and settings["KAFKA_BOOTSTRAP_SERVERS"] in env.stdout


def test_a_produce_fails_loudly_when_only_one_broker_of_three_is_up(pair):
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    from consumers.kafka_io import KafkaSink, make_producer
    from infra.topics import ensure_topics, load_cluster_replication, load_topics

    cfg, settings = pair
    bootstrap = settings["KAFKA_BOOTSTRAP_SERVERS"]
    prefix = f"c{uuid.uuid4().hex[:8]}."
    ensure_topics(bootstrap, prefix, topics=[t for t in load_topics() if t.name == "tax.payments.v1"],
                  cluster=load_cluster_replication())
    topic = prefix + "tax.payments.v1"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        deadline = time.monotonic() + 30
        while not (parts := admin.describe_topics([topic])[0]["partitions"]):  # metadata still spreading
            assert time.monotonic() < deadline
            time.sleep(0.3)
    finally:
        admin.close()
    assert {len(p["replica_nodes"]) for p in parts} == {3}
    leader = next(p["leader_id"] for p in parts if p["partition_index"] == 0)

    acked: list[bytes] = []
    steady = make_producer(bootstrap)  # the defaults: waits out a leader change

    def send_all(values: list[bytes]) -> None:
        futures = [steady.send(topic, key=v, value=v) for v in values]
        steady.flush(timeout=120)
        for v, f in zip(values, futures):
            f.get(timeout=0)
            acked.append(v)

    send_all([f"three-{i}".encode() for i in range(30)])
    cluster.stop_kafka_node(cfg, leader, sig=signal.SIGKILL)  # the leader of partition 0
    assert _status(cfg)[f"kafka-{leader}"].startswith("crashed")
    send_all([f"two-{i}".encode() for i in range(30)])  # one broker lost: still acknowledged
    second = next(n for n in (1, 2, 3) if n != leader)
    cluster.stop_kafka_node(cfg, second)  # a second broker stopped while the first is down
    states = _status(cfg)
    assert states[f"kafka-{second}"].startswith("down") and states[f"kafka-{leader}"].startswith("crashed")

    # One broker left, min.insync.replicas 2: the records are refused (NOT_ENOUGH_REPLICAS) or time
    # out (no controller quorum to move leaders); either way the sender hears of it.
    loud = make_producer(bootstrap, request_timeout_ms=3_000, delivery_timeout_ms=8_000, max_block_ms=8_000)
    futures = [loud.send(topic, key=b"k", value=f"one-{i}".encode()) for i in range(5)]
    with pytest.raises(KafkaError):  # the ledger's own sink: flush raises
        sink = KafkaSink(loud, flush_timeout=15)
        sink._futures = list(futures)
        sink.flush()
    for f in futures:  # none is reported acknowledged
        assert not (f.is_done and f.succeeded())
        if f.is_done:
            assert isinstance(f.exception, KafkaError)
    # Abort what it still holds, so nothing of it reaches the topic once the brokers are back
    # (kafka-python's close(timeout=0) flushes first, raises, and never gets to this).
    loud._sender.force_close()
    loud._sender.join(10)
    for f in futures:
        assert f.is_done and f.failed()
    cluster.up(cfg)  # the two brokers come back
    assert [_status(cfg)[f"kafka-{n}"].split(":")[0] for n in (1, 2, 3)] == ["up"] * 3
    send_all([f"again-{i}".encode() for i in range(10)])
    steady.close(timeout=10)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=5_000)
    try:
        tps = [TopicPartition(topic, p["partition_index"]) for p in parts]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        seen: list[bytes] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=2_000).values():
                seen.extend(r.value for r in records)
    finally:
        consumer.close()
    assert sorted(v for v in seen if v in set(acked)) == sorted(acked)  # every acknowledged record, once
    assert not [v for v in seen if v.startswith(b"one-")]  # the refused ones were not kept either
    assert len(acked) == 70


def _conn(settings: dict[str, str], **kw) -> psycopg.Connection:
    return psycopg.connect(host=settings["POSTGRES_HOST"], port=settings["POSTGRES_PORT"],
                           dbname=settings["POSTGRES_DBNAME"], user=settings["POSTGRES_USER"],
                           password=settings["POSTGRES_PASSWORD"], connect_timeout=5, **kw)


def _node_conn(settings: dict[str, str], port: int) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, dbname=settings["POSTGRES_DBNAME"],
                           user=settings["POSTGRES_USER"], password=settings["POSTGRES_PASSWORD"],
                           connect_timeout=5, autocommit=True, target_session_attrs="any")


def test_a_commit_waits_for_the_standby_and_is_on_it_when_acknowledged(pair):
    cfg, settings = pair
    st = cluster.load_state(cfg)
    with _conn(settings, autocommit=True, target_session_attrs="read-write") as conn:
        conn.execute("CREATE TABLE sync_probe (id int PRIMARY KEY)")
        conn.execute("INSERT INTO sync_probe VALUES (1)")
    with _node_conn(settings, st.pg_node_port(st.standby)) as standby:
        assert standby.execute("SELECT count(*) FROM sync_probe").fetchone()[0] == 1

    cluster.stop_pg_node(cfg, st.standby)
    states = _status(cfg)
    assert states[f"postgres {st.standby}"].startswith("down")
    assert "NO standby connected: commits wait" in states[f"postgres {st.primary}"]
    done = threading.Event()

    def commit() -> None:
        with _conn(settings, autocommit=True, target_session_attrs="read-write") as conn:
            conn.execute("INSERT INTO sync_probe VALUES (2)")
        done.set()

    writer = threading.Thread(target=commit, daemon=True)
    writer.start()
    assert not done.wait(3.0)  # no standby: the primary does not acknowledge the commit
    cluster.up(cfg)  # the standby comes back
    assert done.wait(60.0)
    writer.join(10)
    with _node_conn(settings, st.pg_node_port(st.standby)) as standby:
        deadline = time.monotonic() + 10
        while standby.execute("SELECT count(*) FROM sync_probe").fetchone()[0] != 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_after_failover_a_read_write_connection_reaches_the_new_primary(pair, monkeypatch):
    from eventsourcing.postgres import PostgresDatastore

    cfg, settings = pair
    st = cluster.load_state(cfg)
    old, new = st.primary, st.standby
    # The eventsourcing library's pool, as the ledger processes use it: host and port lists,
    # read-write asked for through libpq's environment variable (set by entrypoints.wiring).
    monkeypatch.setenv("PGTARGETSESSIONATTRS", "read-write")
    store = PostgresDatastore(settings["POSTGRES_DBNAME"], settings["POSTGRES_HOST"], settings["POSTGRES_PORT"],
                              settings["POSTGRES_USER"], settings["POSTGRES_PASSWORD"], pre_ping=True)
    try:
        with store.transaction(commit=True) as curs:
            curs.execute("CREATE TABLE failover_probe (id int PRIMARY KEY)")
        with _conn(settings, autocommit=True, target_session_attrs="read-write") as conn:
            for i in range(50):
                conn.execute("INSERT INTO failover_probe VALUES (%s)", (i,))  # each acknowledged
            assert conn.execute("SELECT inet_server_port()").fetchone()[0] == st.pg_node_port(old)
        cluster.kill_pg_node(cfg, old)  # right after the last acknowledged commit
        assert _status(cfg)[f"postgres {old}"].startswith("crashed")

        t0 = time.monotonic()
        run = _cli(cfg, "failover")
        assert run.returncode == 0, run.stderr
        done = json.loads(run.stdout.strip().splitlines()[-1])
        assert (done["promoted"], done["old_primary"], done["rejoined"]) == (new, old, old)
        assert time.monotonic() - t0 < 120

        with _conn(settings, autocommit=True, target_session_attrs="read-write") as conn:
            port, recovering = conn.execute("SELECT inet_server_port(), pg_is_in_recovery()").fetchone()
            assert (port, recovering) == (st.pg_node_port(new), False)
            assert conn.execute("SELECT count(*) FROM failover_probe").fetchone()[0] == 50  # nothing lost
        for attempt in range(10):  # the pool's connection died with the old primary: a new one, read-write
            try:
                with store.transaction(commit=True) as curs:
                    curs.execute("INSERT INTO failover_probe VALUES (50)")
                    curs.execute("SELECT inet_server_port()")
                    assert list(curs.fetchone().values()) == [st.pg_node_port(new)]
                break
            except psycopg.OperationalError:
                time.sleep(0.5 * 2 ** min(attempt, 3))
        else:
            pytest.fail("the eventsourcing pool never reached the new primary")
        states = _status(cfg)
        assert states[f"postgres {new}"] == f"up: primary, standby {cluster._app_name(old)} streaming (sync)"
        assert states[f"postgres {old}"].startswith("up: standby")
        with _node_conn(settings, st.pg_node_port(old)) as rejoined:  # the old primary follows the new one
            deadline = time.monotonic() + 10
            while rejoined.execute("SELECT count(*) FROM failover_probe").fetchone()[0] != 51:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        store.close()
