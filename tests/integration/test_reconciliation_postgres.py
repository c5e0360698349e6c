"""The reconciliation service's tests again, on the PostgreSQL store (COPY, ``= ANY``, dates, bytea, JSON).

Every test of tests/unit/test_reconciliation_service.py runs here with the ``recon``
fixture replaced: a PostgreSQL store in a schema of the test's own.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from infra.settings import postgres_from_env
from reconciliation.service import Reconciler
from reconciliation.store import PostgresReconciliationStore
from tests.unit.test_reconciliation_service import *  # noqa: F401,F403  (the tests themselves)
from tests.unit.test_reconciliation_service import clock, feed  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration


@pytest.fixture()
def recon(pg_env, clock):  # noqa: F811 - replaces the SQLite store of the unit tests
    schema = f"{pg_env['POSTGRES_SCHEMA']}_{uuid.uuid4().hex[:6]}"
    settings = postgres_from_env(pg_env) | {"POSTGRES_SCHEMA": schema}
    store = PostgresReconciliationStore(settings)
    yield Reconciler(store, clock=clock, incomplete_after=timedelta(hours=2))
    store.close()
    with psycopg.connect(host=settings["POSTGRES_HOST"], port=int(settings["POSTGRES_PORT"]),
                         dbname=settings["POSTGRES_DBNAME"], user=settings["POSTGRES_USER"],
                         password=settings["POSTGRES_PASSWORD"], autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
