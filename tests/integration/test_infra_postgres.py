"""The database is a real PostgreSQL: serializable isolation and constraints are enforced."""
from __future__ import annotations

import threading

import psycopg
import pytest
from psycopg import errors

pytestmark = pytest.mark.integration


def _connect(services, pg_env, **kw):
    return psycopg.connect(host=services["POSTGRES_HOST"], port=int(services["POSTGRES_PORT"]),
                           dbname=services["POSTGRES_DBNAME"], user=services["POSTGRES_USER"],
                           password=services["POSTGRES_PASSWORD"],
                           options=f"-c search_path={pg_env['POSTGRES_SCHEMA']}", **kw)


def test_runs_in_the_modules_own_schema(pg_conn, pg_env):
    schema = pg_conn.execute("SELECT current_schema()").fetchone()[0]
    assert schema == pg_env["POSTGRES_SCHEMA"]
    version = pg_conn.execute("SHOW server_version_num").fetchone()[0]
    assert int(version) >= 150000
    assert pg_conn.execute("SHOW server_encoding").fetchone()[0] == "UTF8"


def test_concurrent_serializable_transactions_conflict(pg_conn, pg_env, services):
    pg_conn.execute("CREATE TABLE duty (doctor text, on_call boolean)")
    pg_conn.execute("INSERT INTO duty VALUES ('a', true), ('b', true)")
    pg_conn.commit()

    # Write skew: each transaction reads that two doctors are on call and takes one off.
    barrier = threading.Barrier(2, timeout=30)
    outcomes: dict[str, str] = {}

    def take_off(doctor: str) -> None:
        with _connect(services, pg_env) as conn:
            try:
                with conn.transaction():
                    conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                    n = conn.execute("SELECT count(*) FROM duty WHERE on_call").fetchone()[0]
                    barrier.wait()
                    if n >= 2:
                        conn.execute("UPDATE duty SET on_call = false WHERE doctor = %s", (doctor,))
                    barrier.wait()
                outcomes[doctor] = "committed"
            except errors.SerializationFailure:
                outcomes[doctor] = "serialization_failure"

    threads = [threading.Thread(target=take_off, args=(d,)) for d in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes.values()) == ["committed", "serialization_failure"], outcomes
    assert pg_conn.execute("SELECT count(*) FROM duty WHERE on_call").fetchone()[0] == 1


def test_unique_and_check_constraints_fire(pg_conn):
    pg_conn.execute(
        "CREATE TABLE payment (voucher text UNIQUE, amount_fen bigint CHECK (amount_fen > 0))")
    pg_conn.execute("INSERT INTO payment VALUES ('V1', 38000)")
    pg_conn.commit()
    with pytest.raises(errors.UniqueViolation):
        pg_conn.execute("INSERT INTO payment VALUES ('V1', 100)")
    pg_conn.rollback()
    with pytest.raises(errors.CheckViolation):
        pg_conn.execute("INSERT INTO payment VALUES ('V2', -5)")
    pg_conn.rollback()
    assert pg_conn.execute("SELECT count(*) FROM payment").fetchone()[0] == 1
