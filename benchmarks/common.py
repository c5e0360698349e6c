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

from ledger.config import postgres_from_env  # noqa: E402

PG_KEYS = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DBNAME", "POSTGRES_USER", "POSTGRES_PASSWORD")


# --------------------------------------------------------------------------- connection
def pg_settings(*, start_stack: bool = True) -> dict[str, str]:
    """POSTGRES_* settings from the environment (or DATABASE_URL); start the local stack if unset."""
    settings = postgres_from_env(dict(os.environ))
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
