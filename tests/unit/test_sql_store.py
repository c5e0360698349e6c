"""The SQL store layer (infra/sql_store.py) on SQLite: what the view store and the reconciliation store rely on.

Every test takes a ``db`` (an empty database with the ``items`` and ``marks``
tables below); tests/integration/test_sql_store_postgres.py runs the same tests on
the real PostgreSQL, so the two dialects are held to one contract.
"""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone

import pytest

from infra.sql_store import CHUNK, SQLiteDatabase, SqlDatabase, Table, columns

ITEMS = Table("items", columns("id text !, n bigint !, day date, at timestamp, flag bool, note json, raw blob"),
              ("id",), (("n",), ("day",)), partial=((("day",), "day IS NOT NULL"),))
MARKS = Table("marks", columns("name text !, source_partition int !, position bigint !, updated_at timestamp !"),
              ("name", "source_partition"))
AT = datetime(2026, 3, 1, 8, 30, tzinfo=timezone.utc)


def make_tables(db: SqlDatabase) -> SqlDatabase:
    with db.transaction():
        for table in (ITEMS, MARKS):
            db.exec(db.table_sql(table.name, table.columns, table.key, f"{table.name}_pkey"))
            for cols in table.indexes:
                db.exec(db.index_sql(f"ix_{table.name}_{'_'.join(cols)}", table.name, cols, table.where(cols)))
    return db


@pytest.fixture
def db():
    database = make_tables(SQLiteDatabase(":memory:"))
    yield database
    database.close()


def ids(db: SqlDatabase) -> list[str]:
    return [r[0] for r in db.fetch("SELECT id FROM items ORDER BY id")]


def item(i: int, **values) -> tuple:
    row = {"id": f"p{i:05d}", "n": i, "day": None, "at": None, "flag": None, "note": None, "raw": None, **values}
    return tuple(row[c] for c in ITEMS.column_names)


# --------------------------------------------------------------------------- values
def test_dates_instants_booleans_and_bytes_come_back_as_written(db):
    db.insert("items", ITEMS.column_names, [item(1, day=date(2026, 1, 31), at=AT, flag=True, note='{"a": 1}',
                                                 raw=b"\x00\xffsealed")])
    (day, at, flag, note, raw), = db.fetch("SELECT day, at, flag, note, raw FROM items")
    assert db.read_date(day) == date(2026, 1, 31)
    assert db.read_instant(at) == AT
    assert bool(flag) is True
    assert note == '{"a": 1}'
    assert bytes(raw) == b"\x00\xffsealed"


def test_an_instant_in_another_zone_is_the_same_instant(db):
    beijing = timezone(timedelta(hours=8))
    db.insert("items", ITEMS.column_names, [item(1, at=AT.astimezone(beijing))])
    (at,), = db.fetch("SELECT at FROM items")
    assert db.read_instant(at) == AT
    assert db.fetch(f"SELECT id FROM items WHERE at = {db.param}", (AT,)) == [("p00001",)]


def test_a_date_parameter_compares_as_a_date(db):
    db.insert("items", ITEMS.column_names, [item(i, day=date(2026, 1, i)) for i in range(1, 11)])
    found = db.fetch(f"SELECT id FROM items WHERE day >= {db.param} AND day < {db.param} ORDER BY id",
                     (date(2026, 1, 3), date(2026, 1, 5)))
    assert found == [("p00003",), ("p00004",)]


# --------------------------------------------------------------------------- transactions
def test_a_transaction_keeps_everything_or_nothing(db):
    with db.transaction():
        db.insert("items", ITEMS.column_names, [item(1)])
    with pytest.raises(RuntimeError):
        with db.transaction():
            db.insert("items", ITEMS.column_names, [item(2)])
            raise RuntimeError("the batch failed")
    assert ids(db) == ["p00001"]


def test_a_nested_transaction_fails_with_the_outer_one(db):
    with pytest.raises(RuntimeError):
        with db.transaction():
            db.insert("items", ITEMS.column_names, [item(1)])
            with db.transaction():
                db.insert("items", ITEMS.column_names, [item(2)])
            raise RuntimeError("after the inner one")
    assert ids(db) == []


def test_a_trial_keeps_nothing_and_a_savepoint_undoes_only_its_part(db):
    refused = []
    with db.trial():
        for i in (1, 1, 2):
            try:
                with db.savepoint():
                    db.insert("items", ITEMS.column_names, [item(i)])
            except db.refusals() as error:
                refused.append((i, error))
        assert ids(db) == ["p00001", "p00002"]  # the duplicate alone was undone
    assert [i for i, _ in refused] == [1]
    assert ids(db) == []


def test_a_duplicate_key_is_a_refusal_of_the_values(db):
    db.insert("items", ITEMS.column_names, [item(1)])
    with pytest.raises(db.refusals()):
        with db.transaction():
            db.insert("items", ITEMS.column_names, [item(1)])


def test_another_thread_waits_for_the_transaction_and_sees_all_of_it(db):
    inside, seen = threading.Event(), []

    def reader() -> None:
        inside.wait(5)
        seen.append(db.fetch("SELECT COUNT(*) FROM items")[0][0])

    thread = threading.Thread(target=reader)
    thread.start()
    with db.transaction():
        db.insert("items", ITEMS.column_names, [item(1)])
        inside.set()
        thread.join(0.3)  # the reader is blocked on the store's lock meanwhile
        db.insert("items", ITEMS.column_names, [item(2)])
    thread.join(5)
    assert seen == [2]


# --------------------------------------------------------------------------- bulk statements
def test_many_rows_go_in_at_once_and_in_lists_are_cut_to_the_dialects_size(db):
    rows = [item(i) for i in range(2 * CHUNK + 7)]
    db.insert("items", ITEMS.column_names, rows)
    wanted = [f"p{i:05d}" for i in range(0, 2 * CHUNK + 7, 2)] + ["nobody"]
    found = db.fetch_in(f"SELECT id FROM items WHERE n >= {db.param} AND id {{in}} AND n < {db.param}", wanted,
                        (2,), (2 * CHUNK,))
    assert sorted(r[0] for r in found) == [f"p{i:05d}" for i in range(2, 2 * CHUNK, 2)]
    assert db.fetch_in("SELECT id FROM items WHERE id {in}", []) == []


def test_exec_in_counts_what_it_changed_over_every_chunk(db):
    db.insert("items", ITEMS.column_names, [item(i) for i in range(CHUNK + 10)])
    changed = db.exec_in(f"UPDATE items SET flag = {db.param} WHERE id {{in}}",
                         [f"p{i:05d}" for i in range(5, CHUNK + 10)] + ["nobody"], (True,))
    assert changed == CHUNK + 5
    assert db.fetch(f"SELECT COUNT(*) FROM items WHERE flag = {db.param}", (True,))[0][0] == CHUNK + 5
    assert db.exec_in("DELETE FROM items WHERE id {in}", []) == 0


def test_upsert_inserts_new_keys_and_updates_the_others_columns(db):
    db.insert("items", ITEMS.column_names, [item(1, note="old"), item(2, note="kept")])
    db.upsert("items", ITEMS.column_names, ITEMS.key, [item(1, n=10, note="new"), item(3, note="added")])
    rows = db.fetch("SELECT id, n, note FROM items ORDER BY id")
    assert rows == [("p00001", 10, "new"), ("p00002", 2, "kept"), ("p00003", 3, "added")]


def test_an_upsert_larger_than_one_statement(db):
    if hasattr(db, "upsert_rows"):
        db.upsert_rows = 7
    db.upsert("items", ITEMS.column_names, ITEMS.key, [item(i) for i in range(30)])
    db.upsert("items", ITEMS.column_names, ITEMS.key, [item(i, n=-i) for i in range(25, 40)])
    assert db.fetch("SELECT COUNT(*), SUM(n) FROM items")[0] == (40, sum(range(25)) - sum(range(25, 40)))


def test_many_runs_one_statement_per_row(db):
    db.insert("items", ITEMS.column_names, [item(i) for i in range(5)])
    db.many(f"DELETE FROM items WHERE id = {db.param} AND n = {db.param}", [("p00001", 1), ("p00003", 99)])
    assert ids(db) == ["p00000", "p00002", "p00003", "p00004"]
    db.many("DELETE FROM items", [])  # nothing to run: nothing happens
    assert len(ids(db)) == 4


# --------------------------------------------------------------------------- read positions
def test_a_position_is_inserted_then_moved_only_from_where_it_was(db):
    key = {"name": "ledger", "source_partition": 3}
    assert db.move_position("marks", key, None, 10, AT)
    assert db.move_position("marks", key, 10, 25, AT + timedelta(seconds=1))
    assert not db.move_position("marks", key, 10, 40, AT)  # another writer moved it to 25 meanwhile
    (position, updated), = db.fetch("SELECT position, updated_at FROM marks")
    assert position == 25
    assert db.read_instant(updated) == AT + timedelta(seconds=1)
    with pytest.raises(db.refusals()):
        db.move_position("marks", key, None, 1, AT)  # a second "first" position: the key is taken


# --------------------------------------------------------------------------- layouts
def test_the_layout_names_its_key_and_its_partial_index():
    sqlite = SQLiteDatabase(":memory:")
    try:
        assert sqlite.table_sql("marks", MARKS.columns, MARKS.key, "marks_pkey") == (
            "CREATE TABLE IF NOT EXISTS marks (name TEXT NOT NULL, source_partition INTEGER NOT NULL, "
            "position INTEGER NOT NULL, updated_at TEXT NOT NULL, CONSTRAINT marks_pkey PRIMARY KEY "
            "(name, source_partition))")
        assert sqlite.index_sql("ix", "items", ("day",), ITEMS.where(("day",))) == (
            "CREATE INDEX IF NOT EXISTS ix ON items (day) WHERE day IS NOT NULL")
        assert ITEMS.where(("n",)) == ""
        serial = columns("seq serial !, v text")
        assert sqlite.table_sql("q", serial, None) == (
            "CREATE TABLE IF NOT EXISTS q (seq INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)")
    finally:
        sqlite.close()


def test_a_file_database_is_made_with_its_folder_and_written_ahead(tmp_path):
    path = tmp_path / "var" / "views.sqlite"
    first = make_tables(SQLiteDatabase(path))
    first.insert("items", ITEMS.column_names, [item(1)])
    second = SQLiteDatabase(path)  # another process's view of the same file
    try:
        assert second.fetch("PRAGMA journal_mode") == [("wal",)]
        assert ids(second) == ["p00001"]
    finally:
        first.close()
        second.close()
