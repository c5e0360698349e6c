"""A rebuild by worker processes on a fresh PostgreSQL schema (the freshness benchmark found a race).

The parent creates every view table before the workers start; a worker that opened its
store with ``create=True`` wrote the layout row of a still-empty store at the same time
as its sibling: ``UniqueViolation view_meta_pkey`` in one run of two. Workers now open the
store without creating anything.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from infra.settings import Settings
from projections.factory import open_view_store

pytestmark = pytest.mark.integration


@pytest.fixture
def schema_settings(services):
    schema = f"t_rebuild_{uuid.uuid4().hex[:8]}"
    kwargs = {"host": services["POSTGRES_HOST"], "port": int(services["POSTGRES_PORT"]),
              "dbname": services["POSTGRES_DBNAME"], "user": services["POSTGRES_USER"],
              "password": services["POSTGRES_PASSWORD"], "autocommit": True}
    with psycopg.connect(**kwargs) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    postgres = {k: v for k, v in services.items() if k.startswith("POSTGRES_")} | {"POSTGRES_SCHEMA": schema}
    try:
        yield Settings(persistence="postgres", postgres=postgres, id_key=b"parallel-rebuild-tests"), kwargs, schema
    finally:
        with psycopg.connect(**kwargs) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _view_tables(kwargs, schema):
    with psycopg.connect(**kwargs) as conn:
        return {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_name LIKE 'view_%%'",
            (schema,))}


def test_a_worker_store_creates_nothing_and_the_parents_store_creates_every_table(schema_settings):
    settings, kwargs, schema = schema_settings
    open_view_store(settings, create=False).close()
    assert _view_tables(kwargs, schema) == set()
    store = open_view_store(settings)
    try:
        assert {"view_rows", "view_meta", "view_positions"} <= _view_tables(kwargs, schema)
        assert store.meta().get("layout")
    finally:
        store.close()


def test_ledger_project_rebuild_with_two_workers_on_a_fresh_schema(schema_settings):
    """End to end through the worker path. The race itself depends on timing (the test above pins its cause)."""
    settings, kwargs, schema = schema_settings
    env = {**os.environ, "LEDGER_PERSISTENCE": "postgres", "LEDGER_ID_KEY": "parallel-rebuild-tests",
           **settings.postgres}
    ledger = Path(sys.executable).with_name("ledger")
    done = subprocess.run([str(ledger), "project", "--rebuild", "--workers", "2", "--quiet", "--json"],
                          env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["rebuilt"] is True
    assert "view_rows" in _view_tables(kwargs, schema)
