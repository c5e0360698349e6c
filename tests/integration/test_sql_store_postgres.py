"""The SQL store layer (infra/sql_store.py) on the real PostgreSQL: the same tests as on SQLite, and PostgreSQL's own.

tests/unit/test_sql_store.py holds the contract both dialects keep (values, transactions,
trials and savepoints, bulk COPY, ``= ANY`` lists, upserts, position moves); here each
of those runs on a fresh schema of the shared server. Then what only PostgreSQL does:
the schema made when missing, a connection the server ended replaced by the next
statement, session settings a server may not know.
"""
from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from infra.sql_store import PostgresDatabase
from reconciliation.store import TABLES as RECON_TABLES
from reconciliation.store import PostgresReconciliationStore
from tests.unit import test_sql_store as contract

pytestmark = pytest.mark.integration


@pytest.fixture
def db(pg_env):
    database = PostgresDatabase(pg_env)
    with database.transaction():
        database.exec("DROP TABLE IF EXISTS items, marks")
    contract.make_tables(database)
    yield database
    database.close()


for _name in ("test_dates_instants_booleans_and_bytes_come_back_as_written",
              "test_an_instant_in_another_zone_is_the_same_instant",
              "test_a_date_parameter_compares_as_a_date",
              "test_a_transaction_keeps_everything_or_nothing",
              "test_a_nested_transaction_fails_with_the_outer_one",
              "test_a_trial_keeps_nothing_and_a_savepoint_undoes_only_its_part",
              "test_a_duplicate_key_is_a_refusal_of_the_values",
              "test_another_thread_waits_for_the_transaction_and_sees_all_of_it",
              "test_many_rows_go_in_at_once_and_in_lists_are_cut_to_the_dialects_size",
              "test_exec_in_counts_what_it_changed_over_every_chunk",
              "test_upsert_inserts_new_keys_and_updates_the_others_columns",
              "test_an_upsert_larger_than_one_statement",
              "test_many_runs_one_statement_per_row",
              "test_a_position_is_inserted_then_moved_only_from_where_it_was"):
    globals()[_name] = getattr(contract, _name)


def admin(pg_env) -> psycopg.Connection:
    return psycopg.connect(host=pg_env["POSTGRES_HOST"], port=int(pg_env["POSTGRES_PORT"]),
                           dbname=pg_env["POSTGRES_DBNAME"], user=pg_env["POSTGRES_USER"],
                           password=pg_env["POSTGRES_PASSWORD"], autocommit=True)


def test_the_schema_is_made_when_missing_and_is_where_tables_go(pg_env):
    schema = f"t_sql_store_{uuid.uuid4().hex[:8]}"
    database = PostgresDatabase({**pg_env, "POSTGRES_SCHEMA": schema})
    try:
        database.exec("CREATE TABLE here (x int)")
        with admin(pg_env) as conn:
            found = conn.execute("SELECT table_schema FROM information_schema.tables WHERE table_name = 'here' "
                                 "AND table_schema = %s", (schema,)).fetchall()
        assert found == [(schema,)]
    finally:
        database.close()
        with admin(pg_env) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_a_connection_the_server_ended_is_replaced_by_the_next_statement(db, pg_env):
    db.exec("INSERT INTO marks VALUES ('a', 0, 1, now())")
    backend = db.conn.info.backend_pid
    with admin(pg_env) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (backend,))
    with pytest.raises(psycopg.OperationalError):
        db.fetch("SELECT position FROM marks")
    assert db.fetch("SELECT position FROM marks") == [(1,)]
    assert db.conn.info.backend_pid != backend
    with db.transaction():  # a transaction too works on the new connection
        assert db.move_position("marks", {"name": "a", "source_partition": 0}, 1, 2, contract.AT)
    assert db.fetch("SELECT position FROM marks") == [(2,)]


def test_session_settings_a_server_does_not_know_are_passed_over(pg_env):
    database = PostgresDatabase(pg_env, session=("SET default_toast_compression = 'no-such-method'",
                                                 "SET application_name = 'sql-store-test'"))
    try:
        assert database.fetch("SHOW application_name") == [("sql-store-test",)]
        again = database.connect()  # every new connection gets them
        try:
            assert again.execute("SHOW application_name").fetchall() == [("sql-store-test",)]
        finally:
            again.close()
    finally:
        database.close()


def test_the_reconciliation_tables_keep_their_postgres_layout(pg_env):
    """The layer writes the same DDL the store wrote before it (no migration): types, keys, partial index."""
    store = PostgresReconciliationStore(pg_env)
    try:
        kinds = dict(store._fetch(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name LIKE 'recon_%'"))
        assert kinds["recon_ledger_payments.paid_at"] == "timestamp with time zone"
        assert kinds["recon_errors.raw"] == "bytea"
        assert kinds["recon_errors.dead_lettered"] == "boolean"
        assert kinds["recon_outbox.seq"] == "bigint"
        assert kinds["recon_lines.line_no"] == "integer"
        indexes = dict(store._fetch("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                                    "AND tablename LIKE 'recon_%'"))
        assert indexes["ix_recon_lines_original_voucher_no"].endswith("WHERE (original_voucher_no IS NOT NULL)")
        assert "UNIQUE" in indexes["ux_recon_outbox_event_id"]
        assert {f"{t.name}_pkey" for t in RECON_TABLES} <= set(indexes)
        assert len(indexes) == len(RECON_TABLES) + sum(len(t.indexes) for t in RECON_TABLES) + 1
    finally:
        store.close()
