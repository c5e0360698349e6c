"""A PostgreSQL view store whose connection the server closed (a restart, a crash) opens a new one.

The statement that meets the closed connection fails; the next one works on a new
connection, so a long-running runner or the HTTP API keeps serving after PostgreSQL
restarts. Found by the fault-injection suite (tests/faults).
"""
from __future__ import annotations

import psycopg
import pytest

from projections.projection_runner import PROJECTIONS
from projections.store import PostgresViewStore


def test_the_store_reconnects_after_the_server_ended_its_connection(pg_env):
    store = PostgresViewStore(pg_env)
    try:
        store.write([], source="log", projections=PROJECTIONS, positions={0: (None, 5)})
        backend = store.conn.info.backend_pid
        with psycopg.connect(host=pg_env["POSTGRES_HOST"], port=int(pg_env["POSTGRES_PORT"]),
                             dbname=pg_env["POSTGRES_DBNAME"], user=pg_env["POSTGRES_USER"],
                             password=pg_env["POSTGRES_PASSWORD"], autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        with pytest.raises(psycopg.OperationalError):
            store.positions("log", PROJECTIONS)
        assert store.positions("log", PROJECTIONS) == {0: 5}
        assert store.conn.info.backend_pid != backend
        store.write([], source="log", projections=PROJECTIONS, positions={0: (5, 9)})
        assert store.positions("log", PROJECTIONS) == {0: 9}
    finally:
        store.close()
