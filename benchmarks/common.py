"""Shared helpers of the benchmarks: connection settings, a throw-away schema, raw baselines, the table.

The raw baselines tell what this machine and this PostgreSQL server can do at all,
measured in the same run as the figure they are compared with:

* ``copy``        psycopg ``COPY ... FROM STDIN`` of 200-byte rows into an indexed table;
* ``executemany`` plain ``INSERT`` of 1,000 rows per transaction (psycopg pipelines it);
* ``recorder``    the eventsourcing PostgreSQL recorder, 100 events of ~200 bytes per
                  transaction (its own table lock, ``unnest`` insert, ``RETURNING``).
"""
from __future__ import annotations

import os
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as `python benchmarks/bench_payments.py`
    sys.path.insert(0, str(REPO_ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from infra.settings import postgres_from_env, setting_text  # noqa: E402

PG_KEYS = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DBNAME", "POSTGRES_USER", "POSTGRES_PASSWORD")


# --------------------------------------------------------------------------- connection
def pg_settings(*, start_stack: bool = True) -> dict[str, str]:
    """POSTGRES_* settings from the environment (or DATABASE_URL); start the local stack if unset."""
    settings = postgres_from_env()
    if not settings.get("POSTGRES_HOST"):
        if not start_stack:
            raise SystemExit("no POSTGRES_* / DATABASE_URL in the environment; "
                             'run eval "$(python -m infra env)" first')
        from infra import stack

        print("POSTGRES_* not set: starting the local stack (python -m infra up) ...", flush=True)
        settings = postgres_from_env(stack.up(stack.StackConfig.from_env()))
    settings.setdefault("POSTGRES_PORT", "5432")
    return {k: settings[k] for k in PG_KEYS}


def connect_kwargs(settings: dict[str, str]) -> dict[str, object]:
    return {"host": settings["POSTGRES_HOST"], "port": int(settings["POSTGRES_PORT"]),
            "dbname": settings["POSTGRES_DBNAME"], "user": settings["POSTGRES_USER"],
            "password": settings["POSTGRES_PASSWORD"], "connect_timeout": 10}


def connect(settings: dict[str, str], schema: str | None = None, **kwargs: object) -> psycopg.Connection:
    options = f"-c search_path={schema}" if schema else None
    return psycopg.connect(**connect_kwargs(settings), options=options, **kwargs)  # type: ignore[arg-type]


@contextmanager
def dedicated_schema(settings: dict[str, str], prefix: str = "bench", *, keep: bool = False) -> Iterator[str]:
    """A new schema of the benchmark's own, dropped afterwards (unless ``keep``)."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with connect(settings, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        if not keep:
            with connect(settings, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# --------------------------------------------------------------------------- results
@dataclass
class Result:
    scenario: str
    count: int
    seconds: float
    unit: str  # "rows", "events", "payments"
    goal: float | None = None

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


def format_table(results: list[Result], copy_rate: float | None) -> str:
    header = ("scenario", "count", "seconds", "rate /s", "goal /s", "vs goal", "ratio to COPY")
    rows = [header]
    for r in results:
        rows.append((
            r.scenario,
            f"{r.count:,} {r.unit}",
            f"{r.seconds:.2f}",
            f"{r.rate:,.0f}",
            f"{r.goal:,.0f}" if r.goal else "-",
            f"{r.rate / r.goal:.2f}" if r.goal else "-",
            f"{r.rate / copy_rate:.3f}" if copy_rate else "-",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------- raw baselines
ROW_BYTES = 200


def _payload(i: int) -> str:
    # 8 (id) + 16 (uuid) + the text makes a ~200-byte row.
    text = f"row {i:010d} "
    return (text * (1 + (ROW_BYTES - 24) // len(text)))[: ROW_BYTES - 24]


def _raw_table(conn: psycopg.Connection, name: str) -> None:
    conn.execute(sql.SQL("CREATE TABLE {} (id bigint PRIMARY KEY, k uuid NOT NULL, payload text NOT NULL)")
                 .format(sql.Identifier(name)))
    conn.execute(sql.SQL("CREATE INDEX ON {} (k)").format(sql.Identifier(name)))
    conn.commit()


def bench_copy(settings: dict[str, str], schema: str, rows: int = 100_000) -> Result:
    """COPY of ``rows`` 200-byte rows into a table with a primary key and a second index."""
    data = [(i, uuid.uuid4(), _payload(i)) for i in range(rows)]
    with connect(settings, schema) as conn:
        _raw_table(conn, "raw_copy")
        start = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY raw_copy (id, k, payload) FROM STDIN") as copy:
            for row in data:
                copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - start
    return Result("raw: COPY 200-byte rows, indexed table", rows, seconds, "rows")


def bench_executemany(settings: dict[str, str], schema: str, rows_per_txn: int = 1000, txns: int = 20) -> Result:
    """Plain INSERT via executemany, ``rows_per_txn`` rows per transaction, ``txns`` transactions."""
    data = [(i, uuid.uuid4(), _payload(i)) for i in range(rows_per_txn * txns)]
    stmt = "INSERT INTO raw_insert (id, k, payload) VALUES (%s, %s, %s)"
    with connect(settings, schema) as conn:
        _raw_table(conn, "raw_insert")
        start = time.perf_counter()
        for t in range(txns):
            with conn.cursor() as cur:
                cur.executemany(stmt, data[t * rows_per_txn:(t + 1) * rows_per_txn])
            conn.commit()
        seconds = time.perf_counter() - start
    return Result(f"raw: executemany INSERT, {rows_per_txn}/txn", rows_per_txn * txns, seconds, "rows")


def bench_recorder(settings: dict[str, str], schema: str, per_txn: int = 100, txns: int = 200) -> Result:
    """The eventsourcing PostgreSQL application recorder, ``per_txn`` ~200-byte events per insert."""
    from eventsourcing.persistence import InfrastructureFactory, StoredEvent
    from eventsourcing.utils import Environment

    env = Environment("BenchRaw", {"PERSISTENCE_MODULE": "eventsourcing.postgres", **settings,
                                   "POSTGRES_SCHEMA": schema})
    factory = InfrastructureFactory.construct(env)
    try:
        recorder = factory.application_recorder()  # creates benchraw_events
        state = _payload(0).encode()
        batches = []
        for _ in range(txns):
            batches.append([StoredEvent(uuid.uuid4(), 1, "bench:Event", state) for _ in range(per_txn)])
        start = time.perf_counter()
        for batch in batches:
            recorder.insert_events(batch)
        seconds = time.perf_counter() - start
    finally:
        factory.close()
    return Result(f"raw: eventsourcing recorder, {per_txn}/txn", per_txn * txns, seconds, "events")


# --------------------------------------------------------------------------- raw Kafka baselines
def kafka_bootstrap_servers(*, start_stack: bool = True) -> str:
    """KAFKA_BOOTSTRAP_SERVERS from the environment; start the local stack if unset."""
    servers = setting_text("KAFKA_BOOTSTRAP_SERVERS")
    if servers:
        return servers
    if not start_stack:
        raise SystemExit('no KAFKA_BOOTSTRAP_SERVERS in the environment; run eval "$(python -m infra env)" first')
    from infra import stack

    return stack.up(stack.StackConfig.from_env())["KAFKA_BOOTSTRAP_SERVERS"]


def bench_kafka(bootstrap: str, records: int = 100_000, partitions: int = 1) -> tuple[Result, Result]:
    """Raw kafka-python: produce ``records`` ~200-byte records to a fresh topic, then consume them all.

    Producer: ``acks="all"``, ``linger_ms=5``, 1 MiB batches, one ``flush()`` at the end (timed).
    Consumer: no group, the partitions assigned, from the beginning, ``poll`` of up to 5,000
    records, until every record was seen; the first fetch's metadata round trip is timed too.
    The topic is deleted afterwards. Returns (produce, consume).
    """
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"bench.raw.{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-raw")
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    try:
        values = [_payload(i).encode() for i in range(records)]  # 176 bytes + a 24-byte key = 200
        keys = [uuid.uuid4().hex[:24].encode() for _ in range(min(records, 1024))]
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=1024 * 1024,
                                 max_request_size=8 * 1024 * 1024)
        producer.partitions_for(topic)  # metadata before the clock
        start = time.perf_counter()
        for i, v in enumerate(values):
            producer.send(topic, key=keys[i % len(keys)], value=v)
        producer.flush()
        produce_s = time.perf_counter() - start
        producer.close()

        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                 max_poll_records=5000, fetch_max_bytes=50 * 1024 * 1024,
                                 max_partition_fetch_bytes=10 * 1024 * 1024)
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        seen = 0
        start = time.perf_counter()
        while seen < records:
            for batch in consumer.poll(timeout_ms=1000, max_records=5000).values():
                seen += len(batch)
        consume_s = time.perf_counter() - start
        consumer.close()
    finally:
        try:
            admin.delete_topics([topic])
        except Exception:  # noqa: BLE001 - best effort
            pass
        admin.close()
    return (Result("raw: kafka-python produce, 200-byte records, acks=all", records, produce_s, "records"),
            Result("raw: kafka-python consume, 200-byte records", records, consume_s, "records"))


# --------------------------------------------------------------------------- machine-readable figures
def _proc_stat(pid: int | str) -> tuple[str, list[str]] | None:
    """A local process's name and the fields of ``/proc/PID/stat`` after it (state first); None when not shown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a local process; NaN when /proc does not show it (a remote server)."""
    found = _proc_stat(pid)
    if found is None:
        return float("nan")
    fields = found[1]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU seconds used so far by this machine's PostgreSQL processes, from /proc.

    The live processes' own time, plus the time of those that exited: the postmaster
    waits for its backends, so theirs is in its children's time (a backend has none).
    """
    total = 0
    for entry in os.listdir("/proc"):
        found = _proc_stat(entry) if entry.isdigit() else None
        if found is not None and found[0].startswith("postgres"):
            fields = found[1]
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / os.sysconf("SC_CLK_TCK")


def figure(scenario: str, value: float, unit: str, *, size: int | None = None, size_unit: str = "",
           goal: float | None = None, better: str = "higher", kind: str = "rate", baseline: str | None = None,
           count: int | None = None, seconds: float | None = None, key: str | None = None) -> dict:
    """One figure of a benchmark, for ``--json`` (read by ``benchmarks/run_all.py``).

    ``kind``: ``rate`` (things per second: ``value`` = count / seconds), ``latency`` (ms of one
    query) or ``seconds`` (wall time of one whole job of ``size``). ``better``: ``higher`` or
    ``lower`` (how ``goal`` is met). ``baseline``: which raw baseline a rate compares with
    (``copy``, ``kafka_produce``, ``kafka_consume``). ``key``: a name stable across sizes (for the
    scale series); defaults to ``scenario``.
    """
    return {"key": key or scenario, "scenario": scenario, "value": value, "unit": unit, "size": size,
            "size_unit": size_unit, "goal": goal, "better": better, "kind": kind, "baseline": baseline,
            "count": count, "seconds": seconds}


def write_json(path: str | None, figures: list[dict], **extra: object) -> None:
    """Write ``{"figures": [...], "loadavg_end": [...], ...}`` to ``path`` (nothing if ``path`` is None)."""
    if not path:
        return
    import json

    Path(path).write_text(json.dumps({"figures": figures, "loadavg_end": list(os.getloadavg()), **extra},
                                     indent=1, default=str))


def machine_speed() -> float:
    """µs of CPU for a fixed piece of pure Python (canonical JSON and SHA-256 of a payment-like dict),
    the best of 5 rounds: how fast this machine's cores are right now, for comparing runs.

    Identical code has shown 25-40 % more CPU per payment from one run to the next on this
    shared machine while nothing else ran here; a run whose probe is slower by as much was
    measured on slower cores, not on slower code.
    """
    import hashlib
    import json

    record = {"voucher_no": "BK202500000001", "tax_office": "16109020000", "amount_fen": 40000,
              "period": ["2025-01-01", "2025-12-31"], "paid_at": "2024-10-08T00:00:01+00:00",
              "provenance": {"source": "kafka", "topic": "tax.payments.v1", "partition": "3", "offset": "1234"}}
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for i in range(2000):
            record["amount_fen"] = i
            hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        best = min(best, (time.process_time() - started) / 2000 * 1e6)
    return best
