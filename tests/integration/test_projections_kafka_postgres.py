"""Ledger events through the real Kafka broker into PostgreSQL views.

A small county is recorded by the real Ledger (in memory); its person events are
Avro-encoded (events.ledger_events.encode_event) and produced to
``<prefix>ledger.events.v1`` keyed by person id, with the tail sent twice (a
publisher re-sending after a crash). The projection runner consumes them into a
PostgreSQL view store. A runner SIGKILLed mid-stream and restarted ends with views
identical, table by table, to a clean rebuild -- and to the pure projections.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from kafka import KafkaProducer
from psycopg import sql

from events.ledger_events import encode_event
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from entrypoints.simulation.county import generate_county
from projections.arrears import ArrearsProjection
from projections.coverage_gaps import gap_list
from projections.entitlement import EntitlementProjection
from ledger.domain.history import person_key
from projections.projection_runner import ProjectionRunner, rebuild, stored_rows
from projections.queries import ViewQueries
from projections.in_memory import rebuild as pure_rebuild
from projections.sources import KafkaEventSource, NotificationLogSource
from projections.store import ARREARS, ENTITLEMENT, PostgresViewStore

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ID_KEY = b"projection-integration"
RESENT_TAIL = 60


@pytest.fixture(scope="module")
def county():
    """(ledger system, person events in log order, pure views) of a county of 150 residents."""
    system = bootstrap(Settings(persistence="memory", id_key=ID_KEY))
    generated = generate_county(11, 150)
    generated.apply_to(system.ledger)
    events, start = [], 1
    while True:
        page = system.ledger.recorder.select_notifications(start, 500)
        if not page:
            break
        events += [system.ledger.mapper.to_domain_event(n) for n in page]
        start = page[-1].id + 1
    events = [e for e in events if person_key(e)]
    views = pure_rebuild(events, [EntitlementProjection(system.policies), ArrearsProjection(system.policies)])
    yield system, events, views, generated
    system.close()


@pytest.fixture(scope="module")
def topic(county, kafka_bootstrap, topic_prefix):
    """``ledger.events.v1`` under the module's prefix, holding the county's events (the tail twice)."""
    _, events, _, _ = county
    name = f"{topic_prefix}ledger.events.v1"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    try:
        for event in events + events[-RESENT_TAIL:]:
            producer.send(name, key=str(event.originator_id).encode(), value=encode_event(event))
        producer.flush(timeout=60)
    finally:
        producer.close()
    return name


@pytest.fixture()
def schema(services):
    """A PostgreSQL schema of the test's own (the view store creates its tables there)."""
    name = f"t_views_{uuid.uuid4().hex[:10]}"
    kwargs = dict(host=services["POSTGRES_HOST"], port=int(services["POSTGRES_PORT"]),
                  dbname=services["POSTGRES_DBNAME"], user=services["POSTGRES_USER"],
                  password=services["POSTGRES_PASSWORD"], autocommit=True)
    with psycopg.connect(**kwargs) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(**kwargs) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def pg_settings(services, schema):
    keys = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DBNAME", "POSTGRES_USER", "POSTGRES_PASSWORD")
    return {**{k: services[k] for k in keys}, "POSTGRES_SCHEMA": schema}


def source(kafka_bootstrap, topic):
    return KafkaEventSource(kafka_bootstrap, topic, group_id=f"test-views-{uuid.uuid4().hex[:8]}", idle_timeout=60)


def assert_rows_are_the_pure_views(store, views, policies):
    persons = sorted(views["entitlement"])
    stored = stored_rows(store, policies, persons)
    assert stored[ENTITLEMENT] == views["entitlement"]
    assert stored[ARREARS] == views["arrears"]
    assert store.counts()["view_rows"] == len(persons)  # one history row per person


def test_events_from_kafka_build_the_postgres_views(county, kafka_bootstrap, topic, services, schema):
    system, events, views, generated = county
    store = PostgresViewStore(pg_settings(services, schema))
    src = source(kafka_bootstrap, topic)
    try:
        runner = ProjectionRunner(store, src, system.policies, batch_size=100)
        result = runner.run_once()
        assert result.events == len(events) + RESENT_TAIL and result.batches > 1
        assert sum(runner.positions().values()) + len(runner.positions()) == len(events) + RESENT_TAIL
        assert_rows_are_the_pure_views(store, views, system.policies)
        assert runner.run_once().batches == 0

        # the queries over PostgreSQL answer what the pure functions answer
        queries = ViewQueries(store, system.policies)
        as_of = generated.as_of
        grids = sorted({g["grid_code"] for g in gap_list(views["entitlement"], 2025, as_of, system.policies)})
        for grid in grids[:5]:
            got = [{k: v for k, v in line.items() if k != "masked_id"} for line in queries.gap_list(grid, 2025, as_of)]
            assert got == gap_list(views["entitlement"], 2025, as_of, system.policies, grid=grid)
        assert queries.coverage_rates(2025, as_of)["grids"]

        # a rebuild from Kafka into fresh tables, swapped in, gives the same tables
        before = store.dump()
        rebuild(store, src, system.policies, shards=2)
        assert store.dump() == before
    finally:
        src.close()
        store.close()


def _positions(settings) -> int:
    try:
        with psycopg.connect(host=settings["POSTGRES_HOST"], port=int(settings["POSTGRES_PORT"]),
                             dbname=settings["POSTGRES_DBNAME"], user=settings["POSTGRES_USER"],
                             password=settings["POSTGRES_PASSWORD"],
                             options=f"-c search_path={settings['POSTGRES_SCHEMA']}") as conn:
            row = conn.execute("SELECT COALESCE(SUM(position + 1), 0) FROM view_positions "
                               "WHERE projection = 'entitlement'").fetchone()
            return int(row[0])
    except psycopg.errors.UndefinedTable:
        return 0


def _cli_env(services, schema, kafka_bootstrap, topic_prefix):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "LEDGER_"))}
    env.pop("DATABASE_URL", None)
    env.update(pg_settings(services, schema))
    env.update(LEDGER_PERSISTENCE="postgres", LEDGER_ID_KEY=ID_KEY.decode(), KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
               LEDGER_TOPIC_PREFIX=topic_prefix, PYTHONPATH=str(REPO))
    return env


def test_a_runner_killed_mid_stream_and_restarted_ends_identical_to_a_clean_rebuild(
        county, kafka_bootstrap, topic, topic_prefix, services, schema):
    system, events, views, _ = county
    settings = pg_settings(services, schema)
    env = _cli_env(services, schema, kafka_bootstrap, topic_prefix)
    total = len(events) + RESENT_TAIL
    command = [sys.executable, "-m", "entrypoints.cli", "project", "--source", "kafka", "--follow", "--quiet",
               "--batch-size", "10"]
    runner = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _positions(settings) < total // 4:
            assert runner.poll() is None, runner.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the projection runner made no progress"
            time.sleep(0.01)
        runner.send_signal(signal.SIGKILL)  # no clean shutdown: maybe in the middle of a transaction
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    killed_at = _positions(settings)
    assert 0 < killed_at < total, "killed after the stream ended: the test proves nothing (make batches smaller)"

    restarted = subprocess.run([sys.executable, "-m", "entrypoints.cli", "project", "--source", "kafka", "--quiet",
                                "--json", "--batch-size", "25"], env=env, cwd=REPO, capture_output=True, text=True,
                               timeout=300)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert _positions(settings) == total

    store = PostgresViewStore(settings)
    try:
        after_restart = store.dump()
        assert_rows_are_the_pure_views(store, views, system.policies)
    finally:
        store.close()

    clean = subprocess.run([sys.executable, "-m", "entrypoints.cli", "project", "--source", "kafka", "--rebuild",
                            "--quiet", "--json"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr[-3000:]
    store = PostgresViewStore(settings)
    try:
        assert store.dump() == after_restart  # every table, row by row, positions included
    finally:
        store.close()


def _log_batches(source, **kwargs):
    return [([(type(e), e.__dict__) for e in b.events], b.positions, b.consumed, b.skipped)
            for b in source.read({}, source.end(), max_records=100, **kwargs)]


def test_the_log_read_straight_from_postgres_is_what_the_library_reads_and_rebuilds_the_same_views(
        county, services, schema, monkeypatch):
    """The PostgreSQL fast path of NotificationLogSource (plain SQL, tuple rows) against select_notifications."""
    import projections.sources as sources
    from eventsourcing.persistence import StoredEvent

    memory, _, views, _ = county
    settings = pg_settings(services, schema)
    system = bootstrap(Settings(persistence="postgres", postgres=settings, id_key=ID_KEY))
    store = PostgresViewStore(settings)
    try:
        start = 1
        encrypt = system.ledger.mapper.cipher.encrypt  # encrypted at rest by default: the fast path decrypts
        while page := memory.ledger.recorder.select_notifications(start, 500):
            system.ledger.recorder.insert_events(
                [StoredEvent(n.originator_id, n.originator_version, n.topic, encrypt(n.state)) for n in page])
            start = page[-1].id + 1
        log = NotificationLogSource(system.ledger, page_size=37)
        assert sources._postgres_table(system.ledger.recorder) is not None  # the fast path is taken
        fast = [_log_batches(log), _log_batches(log, shard=(1, 2)), _log_batches(log, shard=(2, 3))]
        monkeypatch.setattr(sources, "_postgres_table", lambda recorder: None)
        generic = [_log_batches(log), _log_batches(log, shard=(1, 2)), _log_batches(log, shard=(2, 3))]
        assert fast == generic
        monkeypatch.undo()

        # A rebuild's passes read person by person along the primary key (pages cut persons in two here):
        # each person once, with the events the log holds for them, in order, each in its shard.
        whole: dict[str, list] = {}
        for batch in log.read({}, log.end(), max_records=100):
            for e in batch.events:
                whole.setdefault(str(e.originator_id), []).append((type(e), e.__dict__))
        assert log.reads_by_person()
        for shards in (1, 3):
            passes = [list(log.person_histories(log.end(), (k, shards) if shards > 1 else None, page_size=7))
                      for k in range(shards)]
            for k, histories in enumerate(passes):
                assert all(sources.shard_of(key, shards) == k for key, _ in histories)
            found = [(key, [(type(e), e.__dict__) for e in events]) for histories in passes for key, events in histories]
            assert len({key for key, _ in found}) == len(found) and dict(found) == whole

        rebuild(store, NotificationLogSource(system.ledger), system.policies)
        assert_rows_are_the_pure_views(store, views, system.policies)
        before = store.dump()
        rebuild(store, NotificationLogSource(system.ledger), system.policies, shards=3)
        assert store.dump() == before
        # The live spells table went in ordered by its grid index (a grid's gap list reads few pages) and analysed.
        from projections.store import SPELLS
        clustered = store._fetch(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_class t ON t.oid = i.indrelid WHERE i.indisclustered AND t.relname = %s "
            "AND t.relnamespace = to_regnamespace(current_schema())::oid", [store.name(SPELLS)])
        assert [r[0] for r in clustered] == [store._index_name(SPELLS, SPELLS.cluster)]
        analysed = store._fetch("SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = %s "
                                "AND schemaname = current_schema()", [store.name(SPELLS)])
        assert analysed == [(True,)]
    finally:
        store.close()
        system.close()
