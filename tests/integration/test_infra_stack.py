"""infra/stack.py on a SEPARATE stack instance (own temp state dir, own free ports), so the
session's stack is not disturbed: restart keeps data, --clean wipes it, a killed broker is
reported as crashed, bad input fails fast with a one-line reason."""
from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from infra import stack
from infra.stack import CRASHED, DOWN, UNHEALTHY, UP, StackConfig, StackError

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TOPIC = "ledger.events.v1"


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _config(tmp: Path, **kw) -> StackConfig:
    kafka, controller, pg = _free_ports(3)
    return StackConfig(state_dir=tmp, kafka_port=kafka, controller_port=controller, pg_port=pg,
                       timeout=kw.pop("timeout", 90), **kw)


def _cli(cfg: StackConfig, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEDGER_STATE_DIR": str(cfg.state_dir),
           "LEDGER_KAFKA_PORT": str(cfg.kafka_port),
           "LEDGER_KAFKA_CONTROLLER_PORT": str(cfg.controller_port),
           "LEDGER_PG_PORT": str(cfg.pg_port)}
    return subprocess.run([sys.executable, "-m", "infra", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "error:" in lines[0] and " -- " in lines[0], lines[0]  # reason -- what to do
    return lines[0]


@pytest.fixture(scope="module")
def side(tmp_path_factory) -> StackConfig:
    cfg = _config(tmp_path_factory.mktemp("side-stack"))
    yield cfg
    stack.clean(cfg)
    assert not stack.pg_root(cfg).exists()


def _write(settings: dict[str, str], marker: str) -> None:
    with psycopg.connect(settings["DATABASE_URL"]) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (marker text)")
        conn.execute("INSERT INTO kept VALUES (%s)", (marker,))
    producer = KafkaProducer(bootstrap_servers=settings["KAFKA_BOOTSTRAP_SERVERS"], acks="all")
    try:
        producer.send(TOPIC, value=marker.encode(), partition=0).get(timeout=30)
    finally:
        producer.close()


def _row_there(settings: dict[str, str], marker: str) -> bool:
    with psycopg.connect(settings["DATABASE_URL"]) as conn:
        if conn.execute("SELECT to_regclass('kept')").fetchone()[0] is None:
            return False
        return conn.execute("SELECT count(*) FROM kept WHERE marker = %s", (marker,)).fetchone()[0] == 1


def _record_there(settings: dict[str, str], marker: str) -> bool:
    consumer = KafkaConsumer(bootstrap_servers=settings["KAFKA_BOOTSTRAP_SERVERS"],
                             enable_auto_commit=False, consumer_timeout_ms=10000)
    try:
        tp = TopicPartition(TOPIC, 0)
        consumer.assign([tp])
        end = consumer.end_offsets([tp])[tp]
        if end == 0:
            return False
        consumer.seek_to_beginning(tp)
        for record in consumer:
            if record.value == marker.encode():
                return True
            if record.offset + 1 >= end:
                break
        return False
    finally:
        consumer.close()


def test_down_keeps_data_up_is_idempotent_clean_wipes(side):
    settings = stack.up(side)
    assert stack.status(side).healthy
    marker = uuid.uuid4().hex
    _write(settings, marker)

    moved = dataclasses.replace(side, kafka_port=_free_ports(1)[0])
    with pytest.raises(StackError, match=f"already runs on port {side.kafka_port}, not {moved.kafka_port}"):
        stack.up(moved)
    assert stack.status(moved).kafka.state == UNHEALTHY
    moved = dataclasses.replace(side, pg_port=_free_ports(1)[0])
    with pytest.raises(StackError, match=f"already runs on port {side.pg_port}"):
        stack.up(moved)

    again = _cli(side, "up")
    assert again.returncode == 0, again.stderr
    assert "kafka: already running" in again.stdout and "postgres: already running" in again.stdout
    assert f"export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{side.kafka_port}" in again.stdout

    stack.down(side)
    report = stack.status(side)
    assert (report.kafka.state, report.postgres.state) == (DOWN, DOWN), str(report)
    assert _cli(side, "status").returncode == 3

    settings = stack.up(side)
    assert _row_there(settings, marker)
    assert _record_there(settings, marker)

    stack.clean(side)
    assert not side.kafka_dir.exists() and not stack.pg_root(side).exists()
    assert not side.secrets_file.exists()
    settings = stack.up(side)  # a fresh, empty stack
    assert not _row_there(settings, marker)
    assert not _record_there(settings, marker)


def test_hung_broker_is_unhealthy_and_killed_services_are_crashed(side):
    stack.up(side)
    kafka_pid = int(side.kafka_pid_file.read_text())
    os.kill(kafka_pid, signal.SIGSTOP)  # alive, port open, but no answer
    try:
        report = stack.status(side)
    finally:
        os.kill(kafka_pid, signal.SIGCONT)
    assert report.kafka.state == UNHEALTHY and not report.healthy, str(report)
    assert report.postgres.state == UP

    side.kafka_pid_file.unlink()  # a lost pid file: the running broker is still found
    assert stack.status(side).kafka.state == UP
    assert int(side.kafka_pid_file.read_text()) == kafka_pid

    os.kill(kafka_pid, signal.SIGKILL)
    pg_pid = int((stack.pg_root(side) / "data" / "postmaster.pid").read_text().split()[0])
    os.kill(pg_pid, signal.SIGKILL)
    end = time.monotonic() + 30
    while (stack._pid_alive(kafka_pid) or stack._pid_alive(pg_pid)) and time.monotonic() < end:
        time.sleep(0.1)

    report = stack.status(side)
    assert report.kafka.state == CRASHED, str(report)
    assert report.postgres.state == CRASHED, str(report)
    assert not report.healthy
    cli = _cli(side, "status")
    assert cli.returncode == 1 and "kafka: crashed" in cli.stdout, cli.stdout

    stack.up(side)  # removes the stale pid files and starts both again
    report = stack.status(side)
    assert (report.kafka.state, report.postgres.state) == (UP, UP), str(report)
    assert report.kafka.pid != kafka_pid


def test_port_already_taken_is_a_one_line_error(tmp_path):
    cfg = _config(tmp_path)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", cfg.kafka_port))
        squatter.listen()
        started = time.monotonic()
        line = _one_line_error(_cli(cfg, "up", timeout=60))
        assert f"port 127.0.0.1:{cfg.kafka_port} is already in use" in line
        assert "LEDGER_KAFKA_PORT" in line
        assert time.monotonic() - started < 30
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", cfg.pg_port))
        squatter.listen()
        with pytest.raises(StackError, match=f"PostgreSQL port 127.0.0.1:{cfg.pg_port} is already in use"):
            stack.up(cfg)
    assert stack.status(cfg).kafka.state == DOWN  # nothing was started
    stack.clean(cfg)


def test_missing_jdk(tmp_path):
    with pytest.raises(StackError, match="no Java runtime") as exc:
        stack.up(_config(tmp_path, java="/nonexistent/bin/java"))
    assert "openjdk-17-jre-headless" in exc.value.hint


def test_missing_maven_and_unresolvable_jars(tmp_path):
    lib = tmp_path / "lib"
    with pytest.raises(StackError, match=r"Maven \(mvn\) not found"):
        stack.ensure_kafka_jars(_config(tmp_path / "s1", kafka_lib=lib, mvn="/nonexistent/mvn"))
    fake = tmp_path / "mvn"
    fake.write_text("#!/bin/sh\necho '[ERROR] Failed to execute goal on project local-kafka-broker: "
                    "Could not resolve dependencies for project x: artifact not found'\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(StackError, match="Maven could not fetch the Kafka jars: .*Could not resolve"):
        stack.ensure_kafka_jars(_config(tmp_path / "s2", kafka_lib=lib, mvn=str(fake)))
    assert not lib.exists()


def test_old_postgres_data_dir_is_refused(tmp_path):
    cfg = _config(tmp_path)
    (tmp_path / "postgres" / "data").mkdir(parents=True)
    (tmp_path / "postgres" / "data" / "PG_VERSION").write_text("9.6\n")
    line = _one_line_error(_cli(cfg, "up", timeout=60))
    assert "created by PostgreSQL 9.6" in line and "--clean" in line


def test_kafka_log_dir_of_another_cluster_is_refused(tmp_path):
    cfg = _config(tmp_path)
    cfg.kafka_data.mkdir(parents=True)
    (cfg.kafka_data / "meta.properties").write_text(
        "version=1\nnode.id=1\ncluster.id=SomeOtherClusterAAAAAA\ndirectory.id=x\n")
    cfg.cluster_id_file.write_text("OurOwnClusterIdAAAAAAA\n")
    with pytest.raises(StackError, match="belongs to another cluster") as exc:
        stack.up(cfg)
    assert "--clean" in exc.value.hint
    assert not cfg.kafka_pid_file.exists()


def test_stale_kafka_pid_file_reads_as_crashed(tmp_path):
    cfg = _config(tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    cfg.kafka_dir.mkdir(parents=True)
    cfg.kafka_pid_file.write_text(f"{dead.pid}\n")
    assert stack.status(cfg).kafka.state == CRASHED


def test_start_time_limit_is_enforced(tmp_path):
    cfg = _config(tmp_path, timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(StackError, match=r"0\.5 s"):
            stack.up(cfg)
        assert time.monotonic() - started < 30
    finally:
        stack.clean(cfg)
