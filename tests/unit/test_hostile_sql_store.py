"""Hostile values through the SQL store layer: a person id, a statement id or a position name that is SQL.

The layer puts every value in a parameter (the lists of ``{in}`` too, chunk by chunk), so
what a clumsy integrator or an attacker types as an id is looked up as an id: found
nowhere, nothing else read, nothing written, the tables intact.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from infra.sql_store import CHUNK, SQLiteDatabase
from projections.projection_runner import PROJECTIONS
from projections.store import PERSONS, SQLiteViewStore
from reconciliation.store import SQLiteReconciliationStore
from tests.unit.test_sql_store import ITEMS, item, make_tables

INJECTIONS = ["x') OR 1=1 --", "' OR '1'='1", "p00001'); DROP TABLE items; --", "{in}", "?", "%s"]


@pytest.mark.parametrize("value", INJECTIONS)
def test_an_id_that_is_sql_is_looked_up_as_an_id(hostile, value):
    db = make_tables(SQLiteDatabase(":memory:"))
    try:
        db.insert("items", ITEMS.column_names, [item(i) for i in range(CHUNK + 3)])
        before = db.fetch("SELECT id, n FROM items ORDER BY id")
        found = db.fetch_in("SELECT id FROM items WHERE id {in}", [value] * (CHUNK + 1) + ["p00001"])
        changed = db.exec_in("DELETE FROM items WHERE id {in}", [value])
        after = db.fetch("SELECT id, n FROM items ORDER BY id")
        hostile.attempt(f"sql store: id {value!r} in an IN list", crashed=False, written=changed != 0 or after != before,
                        leaked=found != [("p00001",)])
        assert found == [("p00001",)]
        assert changed == 0 and after == before
    finally:
        db.close()


def test_the_view_store_finds_no_person_behind_an_injected_id(hostile):
    store = SQLiteViewStore(":memory:")
    try:
        store._insert(PERSONS, [("p-1", "6109********1234")])
        found = store.masked_ids(["x') OR 1=1 --", "' OR '1'='1"])
        store.write([], source="log'; DELETE FROM view_persons; --", projections=PROJECTIONS,
                    positions={0: (None, 3)})
        written = store.counts()["view_persons"] != 1
        hostile.attempt("view store: injected person id and source name", written=written, leaked=bool(found))
        assert found == {}
        assert not written
        assert store.positions("log'; DELETE FROM view_persons; --", PROJECTIONS) == {0: 3}
    finally:
        store.close()


def test_the_reconciliation_store_finds_no_statement_behind_an_injected_id(hostile):
    store = SQLiteReconciliationStore(":memory:")
    try:
        at = datetime(2026, 3, 1, tzinfo=timezone.utc)
        store.insert_statement({"statement_id": "S1", "state": "RECEIVING", "lines_received": 0, "lines_fen": 0,
                                "max_line_no": 0, "first_seen_at": at})
        found = store.statements(["S1' OR '1'='1", "x') OR 1=1 --"])
        store.mark_dead_lettered(["' OR '1'='1"])
        store.mark_published(["1 OR 1=1"])
        hostile.attempt("reconciliation store: injected statement and error ids", leaked=bool(found),
                        written=store.counts()["recon_statements"] != 1)
        assert found == {}
        assert store.statement("S1")["state"] == "RECEIVING"
    finally:
        store.close()
