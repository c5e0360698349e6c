"""One SQL store layer: a connection to SQLite or PostgreSQL, and every statement whose text or plumbing differs.

The view store (:mod:`projections.store`) and the reconciliation store
(:mod:`reconciliation.store`) keep their tables on one SQL database, either the
embedded SQLite file or PostgreSQL (psycopg 3) in the configured schema. What they
say in SQL is theirs; how it reaches the database is here, once:

- connecting (SQLite in WAL mode; PostgreSQL in its schema, created when missing, on
  the writable host, connecting again when the server closed the connection);
- the dialect: placeholders, column types, ``= ANY(%s)`` against chunked ``IN (?, ...)``,
  Python values as SQLite keeps them (ISO text, 0/1) and read back;
- transactions under the store's lock (``BEGIN IMMEDIATE`` on SQLite, nested ones joining
  the outer), a trial transaction always rolled back, savepoints;
- bulk writes (``COPY`` on PostgreSQL), upserts (``ON CONFLICT ... DO UPDATE``), and the
  compare-and-set move of a stored read position.

One connection per store, shared by threads (the HTTP API, a runner): every
statement takes :attr:`SqlDatabase.lock`.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pg_sql

from infra.settings import prefer_read_write

#: Values per ``IN (?, ...)`` on SQLite (its limit of variables per statement is 32,766 at the least; 500 stays fast).
CHUNK = 500


# --------------------------------------------------------------------------- table layouts
@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # text | int | bigint | bool | date | json | timestamp | blob | serial
    null: bool = True


@dataclass(frozen=True)
class Table:
    """A table's layout: columns, primary key (none: a ``serial`` column is the key), query indexes."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    #: A query index whose order the rebuilt table's rows are put in (PostgreSQL), for the queries that read many rows.
    cluster: tuple[str, ...] | None = None
    #: Partial indexes: (columns, condition) for those of ``indexes`` that index only the rows meeting it.
    partial: tuple[tuple[tuple[str, ...], str], ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def where(self, columns: tuple[str, ...]) -> str:
        """The condition of a partial index ("" for a whole one)."""
        return dict(self.partial).get(columns, "")


def columns(spec: str) -> tuple[Column, ...]:
    """``"name kind [!]", ...`` -> columns (``!``: not null): a compact way to read a layout."""
    out = []
    for part in spec.split(","):
        words = part.split()
        out.append(Column(words[0], words[1], null=not (len(words) > 2 and words[2] == "!")))
    return tuple(out)


# --------------------------------------------------------------------------- the dialect-neutral interface
class SqlDatabase:
    """One connection and the dialect's way of saying things; subclasses: :class:`SQLiteDatabase`,
    :class:`PostgresDatabase`."""

    dialect = ""
    #: The placeholder of a parameter.
    param = "%s"
    #: Column kind -> SQL type.
    types: Mapping[str, str] = {}
    conn: Any

    def __init__(self) -> None:
        self.lock = threading.RLock()

    # ---------------------------------------------------------------- statements
    def marks(self, n: int) -> str:
        """``n`` placeholders, comma-separated."""
        return ", ".join([self.param] * n)

    def table_sql(self, name: str, cols: Sequence[Column], key: Sequence[str] | None,
                  key_name: str | None = None) -> str:
        """``CREATE TABLE IF NOT EXISTS`` (a ``serial`` column is the key where ``key`` is None)."""
        spec = ", ".join(f"{c.name} {self.types[c.kind]}{'' if c.null or c.kind == 'serial' else ' NOT NULL'}"
                         for c in cols)
        if key:
            spec += f", {f'CONSTRAINT {key_name} ' if key_name else ''}PRIMARY KEY ({', '.join(key)})"
        return f"CREATE TABLE IF NOT EXISTS {name} ({spec})"

    @staticmethod
    def index_sql(index: str, table: str, cols: Sequence[str], where: str = "", *, unique: bool = False) -> str:
        return (f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS {index} ON {table} ({', '.join(cols)})"
                + (f" WHERE {where}" if where else ""))

    def equal(self, conditions: Sequence[tuple[str, Any]], where: list[str], params: list[Any]) -> None:
        """Add ``column = ?`` to ``where`` and the value to ``params`` for each (column, value) whose value is given
        (not None): a query's optional filters."""
        for column, value in conditions:
            if value is not None:
                where.append(f"{column} = {self.param}")
                params.append(self.to_db(value))

    # ---------------------------------------------------------------- values
    def to_db(self, value: Any) -> Any:
        """A Python value as the driver takes it."""
        return value

    def read_date(self, value: Any) -> date | None:
        """A ``date`` column's value as a date."""
        return value

    def read_instant(self, value: Any) -> datetime | None:
        """A ``timestamp`` column's value as a datetime."""
        return value

    def refusals(self) -> tuple[type[BaseException], ...]:
        """The driver's errors that refuse the values themselves (not the server failing to work)."""
        return ()

    # ---------------------------------------------------------------- transactions
    @contextmanager
    def transaction(self) -> Iterator[None]:
        raise NotImplementedError
        yield

    @contextmanager
    def trial(self) -> Iterator[None]:
        """A transaction that is always rolled back."""
        raise NotImplementedError
        yield

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside :meth:`trial` or :meth:`transaction`: a part undone alone when it fails."""
        raise NotImplementedError
        yield

    # ---------------------------------------------------------------- running statements
    def exec(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        raise NotImplementedError

    def fetch(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for each of ``rows``."""
        raise NotImplementedError

    def insert(self, table: str, cols: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert many rows."""
        if rows:
            self.many(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({self.marks(len(cols))})", rows)

    def _upsert_tail(self, cols: Sequence[str], key: Sequence[str]) -> str:
        return (f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in cols if c not in key))

    def upsert(self, table: str, cols: Sequence[str], key: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert these rows, or update the ones whose key is already there (``ON CONFLICT ... DO UPDATE``)."""
        if rows:
            self.many(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({self.marks(len(cols))})"
                      + self._upsert_tail(cols, key), rows)

    def fetch_in(self, statement: str, values: Sequence[Any], params: Sequence[Any] = (),
                 after: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """``statement`` holds ``{in}`` where ``<column> {in}`` tests membership in ``values``;
        ``params`` come before it, ``after`` after it."""
        raise NotImplementedError

    def exec_in(self, statement: str, values: Sequence[Any], params: Sequence[Any] = (),
                after: Sequence[Any] = ()) -> int:
        """:meth:`fetch_in` for a statement that changes rows; the number it changed."""
        raise NotImplementedError

    # ---------------------------------------------------------------- read positions
    def move_position(self, table: str, key: Mapping[str, Any], old: int | None, new: int, at: datetime) -> bool:
        """Store a read position: insert it (``old`` None) or move it from ``old`` to ``new`` (compare and set).

        The row has the ``key`` columns, ``position`` and ``updated_at``. False: the
        stored position was no longer ``old`` (another writer moved it).
        """
        names, values = list(key), list(key.values())
        p = self.param
        if old is None:
            self.exec(f"INSERT INTO {table} ({', '.join(names)}, position, updated_at) "
                      f"VALUES ({self.marks(len(names) + 2)})", (*values, new, at))
            return True
        where = " AND ".join(f"{n} = {p}" for n in names)
        return self.exec(f"UPDATE {table} SET position = {p}, updated_at = {p} WHERE {where} AND position = {p}",
                         (new, at, *values, old)) == 1

    def close(self) -> None:
        self.conn.close()


# --------------------------------------------------------------------------- a store on one database
class SqlStore:
    """What a store of tables on one :class:`SqlDatabase` says through it (the view store and the
    reconciliation store are such stores; their subclasses open the database)."""

    def __init__(self, db: SqlDatabase) -> None:
        self.db = db

    @property
    def dialect(self) -> str:
        return self.db.dialect

    @property
    def param(self) -> str:
        return self.db.param

    @property
    def conn(self) -> Any:
        return self.db.conn

    def transaction(self) -> AbstractContextManager[None]:
        """One transaction under the store's lock (nested ones are part of it)."""
        return self.db.transaction()

    def _exec(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        return self.db.exec(statement, params)

    def _fetch(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.fetch(statement, params)

    def _to_db(self, value: Any) -> Any:
        """A Python value as the driver takes it."""
        return self.db.to_db(value)

    def close(self) -> None:
        self.db.close()


# --------------------------------------------------------------------------- SQLite
class SQLiteDatabase(SqlDatabase):
    """One SQLite file (WAL, so readers do not wait for the writer), or ``:memory:``; or a connection to share."""

    dialect = "sqlite"
    param = "?"
    # JSON is text; dates and instants are ISO text, booleans 0/1 (SQLite's INTEGER is 64 bits).
    types = {"text": "TEXT", "int": "INTEGER", "bigint": "INTEGER", "bool": "INTEGER", "date": "TEXT",
             "json": "TEXT", "timestamp": "TEXT", "blob": "BLOB", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"}

    def __init__(self, path: str | Path = ":memory:", *, connection: sqlite3.Connection | None = None) -> None:
        super().__init__()
        self.path = str(path)
        if connection is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            if self.path != ":memory:":
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
        self.conn = connection

    def to_db(self, value: Any) -> Any:
        if isinstance(value, datetime):
            # An instant as UTC text (sorts and compares as text); a naive one as it is.
            return (value.astimezone(timezone.utc) if value.tzinfo is not None else value).isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, bool):
            return int(value)
        return value

    def read_date(self, value: Any) -> date | None:
        return None if value is None else date.fromisoformat(value)

    def read_instant(self, value: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    def refusals(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError, sqlite3.DataError)

    @contextmanager
    def _immediate(self, end: str) -> Iterator[None]:
        """A transaction that takes the write lock at once (no reader-turned-writer deadlock), ended by ``end``."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute(end)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock:
            if self.conn.in_transaction:  # nested: part of the outer transaction
                yield
                return
            with self._immediate("COMMIT"):
                yield

    def trial(self) -> AbstractContextManager[None]:
        return self._immediate("ROLLBACK")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self.lock:
            self.conn.execute("SAVEPOINT part")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK TO part")
                self.conn.execute("RELEASE part")
                raise
            self.conn.execute("RELEASE part")

    def exec(self, statement: str, params: Sequence[Any] = ()) -> int:
        with self.lock:
            return self.conn.execute(statement, [self.to_db(v) for v in params]).rowcount

    def fetch(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return self.conn.execute(statement, [self.to_db(v) for v in params]).fetchall()

    def many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            to_db = self.to_db
            with self.lock:
                self.conn.executemany(statement, [[to_db(v) for v in r] for r in rows])

    def _chunks(self, statement: str, values: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
        values = list(values)
        for start in range(0, len(values), CHUNK):
            chunk = values[start:start + CHUNK]
            yield statement.replace("{in}", f"IN ({self.marks(len(chunk))})"), chunk

    def fetch_in(self, statement: str, values: Sequence[Any], params: Sequence[Any] = (),
                 after: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for sql, chunk in self._chunks(statement, values):
            out += self.fetch(sql, [*params, *chunk, *after])
        return out

    def exec_in(self, statement: str, values: Sequence[Any], params: Sequence[Any] = (),
                after: Sequence[Any] = ()) -> int:
        return sum(self.exec(sql, [*params, *chunk, *after]) for sql, chunk in self._chunks(statement, values))


# --------------------------------------------------------------------------- PostgreSQL
def connect_in_schema(settings: Mapping[str, str], schema: str) -> Any:
    """An autocommit psycopg connection whose search_path is ``schema`` (created when missing)."""
    s = settings
    prefer_read_write(dict(s))  # several hosts (primary + standby): the writable one
    conn = psycopg.connect(host=s.get("POSTGRES_HOST", "127.0.0.1"), port=str(s.get("POSTGRES_PORT") or 5432),
                           dbname=s.get("POSTGRES_DBNAME"), user=s.get("POSTGRES_USER"),
                           password=s.get("POSTGRES_PASSWORD"), connect_timeout=10, autocommit=True)
    if schema != "public":
        conn.execute(pg_sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pg_sql.Identifier(schema)))
    conn.execute(pg_sql.SQL("SET search_path TO {}").format(pg_sql.Identifier(schema)))
    return conn


class PostgresDatabase(SqlDatabase):
    """PostgreSQL (psycopg 3) in the schema the settings name (``POSTGRES_SCHEMA``).

    When the server closed the connection (a restart, a crash, a failover), the
    statement fails and the next one opens a new connection: a long-running process
    keeps working.
    """

    dialect = "postgres"
    param = "%s"
    # JSON columns are text: the stores read them back with their codecs, never with SQL's JSON operators, and
    # type json parses every value on insert to validate it (a view rebuild's history rows: 530-570 ms as json
    # against 110-122 ms as text for the 20,000-resident county; text also keeps the codec's key order).
    types = {"text": "text", "int": "integer", "bigint": "bigint", "bool": "boolean", "date": "date",
             "json": "text", "timestamp": "timestamptz", "blob": "bytea", "serial": "bigserial PRIMARY KEY"}
    #: Rows per upsert statement (one statement of many VALUES rows: parsed and planned once, not per row).
    upsert_rows = 500

    def __init__(self, settings: Mapping[str, str], *, connection: Any = None, session: Sequence[str] = ()) -> None:
        """``session``: settings run on every new connection, each allowed to fail (a server may not know it)."""
        super().__init__()
        self.settings = dict(settings)
        self.schema = self.settings.get("POSTGRES_SCHEMA") or "public"
        self.session = tuple(session)
        self.conn = connection if connection is not None else self.connect()

    def connect(self) -> Any:
        """A new connection in the schema (the store's own, or one more for work side by side)."""
        conn = connect_in_schema(self.settings, self.schema)
        for statement in self.session:
            try:
                conn.execute(statement)
            except Exception:  # noqa: BLE001 - psycopg.Error of some kind: not available on this server
                pass
        return conn

    def _live(self) -> Any:
        """The connection; a new one when the server has closed it (the caller holds the lock)."""
        if self.conn.closed:
            self.conn = self.connect()
        return self.conn

    def refusals(self) -> tuple[type[BaseException], ...]:
        return (psycopg.DataError, psycopg.IntegrityError)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock, self._live().transaction():  # nested: a savepoint
            yield

    @contextmanager
    def trial(self) -> Iterator[None]:
        with self.lock, self._live().transaction(force_rollback=True):
            yield

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self.lock, self.conn.transaction():  # nested in a transaction: a savepoint
            yield

    def exec(self, statement: str, params: Sequence[Any] = ()) -> int:
        with self.lock, self._live().cursor() as cur:
            cur.execute(statement, params or None)
            return cur.rowcount

    def fetch(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.lock, self._live().cursor() as cur:
            cur.execute(statement, params or None)
            return cur.fetchall()

    def many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.lock, self._live().cursor() as cur:
                cur.executemany(statement, rows)

    def insert(self, table: str, cols: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with self.lock, self._live().cursor() as cur:
            with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def upsert(self, table: str, cols: Sequence[str], key: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        row = f"({self.marks(len(cols))})"
        tail = self._upsert_tail(cols, key)
        with self.lock, self._live().cursor() as cur:
            for start in range(0, len(rows), self.upsert_rows):
                chunk = rows[start:start + self.upsert_rows]
                cur.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES " + ", ".join([row] * len(chunk)) + tail,
                            [v for r in chunk for v in r])

    def fetch_in(self, statement: str, values: Sequence[Any], params: Sequence[Any] = (),
                 after: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if not values:
            return []
        return self.fetch(statement.replace("{in}", "= ANY(%s)"), [*params, list(values), *after])

    def exec_in(self, statement: str, values: Sequence[Any], params: Sequence[Any] = (),
                after: Sequence[Any] = ()) -> int:
        if not values:
            return 0
        return self.exec(statement.replace("{in}", "= ANY(%s)"), [*params, list(values), *after])


__all__ = ["CHUNK", "Column", "PostgresDatabase", "SQLiteDatabase", "SqlDatabase", "SqlStore", "Table", "columns",
           "connect_in_schema"]
