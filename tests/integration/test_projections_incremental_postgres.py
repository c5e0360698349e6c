"""The incremental runner on PostgreSQL: remembered persons, narrowed derivations and upserts give a rebuild's tables.

A 250-person simulated county is followed in small batches by one runner (each
person's later batches find them remembered: only the touched years are derived again
and only the changed records upserted, ``INSERT ... ON CONFLICT DO UPDATE``), then the
views are built again from scratch in another schema; every table must be equal, the
histories compared folded (the live ones are bases with appended changes).
"""
from __future__ import annotations

import psycopg
from psycopg import sql

from entrypoints.wiring import bootstrap
from infra.settings import Settings, postgres_from_env
from entrypoints.simulation import timeline as feeds
from entrypoints.simulation.county import CountyProfile, generate_county
from projections.projection_runner import PolicyCache, ProjectionRunner, rebuild
from projections.sources import NotificationLogSource
from projections.store import PostgresViewStore


def test_following_a_county_in_small_batches_on_postgres_writes_what_a_rebuild_writes(pg_env):
    settings = postgres_from_env(pg_env)
    system = bootstrap(Settings(persistence="memory", id_key=b"incremental-pg"))
    try:
        county = generate_county(seed=20250331, people=250, profile=CountyProfile(street_offices=1, towns=1,
                                                                                  townships=1))
        feeds.replay(county.actions, system.ledger)
        policies = PolicyCache(system.ledger.policies)
        live = PostgresViewStore(settings)
        clean_schema = settings["POSTGRES_SCHEMA"] + "_clean"
        with psycopg.connect(host=settings["POSTGRES_HOST"], port=settings["POSTGRES_PORT"],
                             dbname=settings["POSTGRES_DBNAME"], user=settings["POSTGRES_USER"],
                             password=settings["POSTGRES_PASSWORD"], autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(clean_schema)))
            try:
                clean = PostgresViewStore({**settings, "POSTGRES_SCHEMA": clean_schema})
                try:
                    runner = ProjectionRunner(live, NotificationLogSource(system.ledger, page_size=50), policies,
                                              batch_size=37)
                    runner.run_once()
                    assert len(runner._memory) > 200  # the later batches found their persons remembered
                    rebuild(clean, NotificationLogSource(system.ledger), policies)
                    assert live.dump() == clean.dump()  # the histories compared folded (base + tail)
                    # Following appended the histories' changes (view_history_tail); a rebuild writes bases only.
                    assert live.dump(raw=True)["view_history_tail"] and not clean.dump(raw=True)["view_history_tail"]
                    assert live.load_histories(sorted(runner._memory)) == clean.load_histories(sorted(runner._memory))
                finally:
                    clean.close()
                    live.close()
            finally:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(clean_schema)))
    finally:
        system.close()
