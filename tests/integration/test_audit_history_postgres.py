"""The auditor's as-of replay on the real PostgreSQL: the same story and assertions as the unit tests.

A resident pays, is found to be an orphan (late full subsidy, re-assessed), is
refunded and transfers out; what the ledger knew at three recorded instants must
come back from PostgreSQL exactly as from memory. Each test gets a schema of its own.
"""
from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from ledger.bootstrap import bootstrap
from ledger.config import Settings
from tests.unit import test_audit_history as story_tests

pytestmark = pytest.mark.integration


@pytest.fixture()
def ledger(services):
    schema = f"t_audit_asof_{uuid.uuid4().hex[:8]}"
    connect = dict(host=services["POSTGRES_HOST"], port=int(services["POSTGRES_PORT"]),
                   dbname=services["POSTGRES_DBNAME"], user=services["POSTGRES_USER"],
                   password=services["POSTGRES_PASSWORD"], autocommit=True)
    with psycopg.connect(**connect) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    postgres = {k: v for k, v in services.items() if k.startswith("POSTGRES_")} | {"POSTGRES_SCHEMA": schema}
    system = bootstrap(Settings(persistence="postgres", postgres=postgres, id_key=b"audit-history-tests"))
    try:
        yield system.ledger
    finally:
        system.close()
        with psycopg.connect(**connect) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


story = story_tests.story
test_as_of_three_instants_gives_what_the_ledger_knew_then = story_tests.test_as_of_three_instants_gives_what_the_ledger_knew_then
test_each_change_since_an_instant_names_the_events_that_caused_it = (
    story_tests.test_each_change_since_an_instant_names_the_events_that_caused_it)
test_covered_on_a_day_as_known_then_and_now = story_tests.test_covered_on_a_day_as_known_then_and_now
