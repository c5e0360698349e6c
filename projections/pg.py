"""What every PostgreSQL store of the read side shares: a connection in its schema, and locked statements.

The view store and the reconciliation store hold one connection each, used from
several threads (the HTTP API, a runner), so every statement takes the store's lock.
When the server closed that connection (a restart, a crash, a failover), the statement
fails and the next one opens a new connection: a long-running process keeps working.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence
import psycopg
from infra.settings import prefer_read_write
from psycopg import sql


def connect_in_schema(settings: Mapping[str, str], schema: str) -> Any:
    """An autocommit psycopg connection whose search_path is ``schema`` (created when missing)."""
    s = settings
    prefer_read_write(dict(s))  # several hosts (primary + standby): the writable one
    conn = psycopg.connect(host=s.get("POSTGRES_HOST", "127.0.0.1"), port=str(s.get("POSTGRES_PORT") or 5432),
                           dbname=s.get("POSTGRES_DBNAME"), user=s.get("POSTGRES_USER"),
                           password=s.get("POSTGRES_PASSWORD"), connect_timeout=10, autocommit=True)
    if schema != "public":
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return conn


class LockedStatements:
    """``transaction``, ``_exec`` and ``_fetch`` on ``self.conn`` under ``self._lock`` (mixed into a store
    that can ``_connect()`` again)."""

    conn: Any
    _lock: Any

    def _connect(self) -> Any:
        raise NotImplementedError

    def _live(self) -> Any:
        """The connection; a new one when the server has closed it (the caller holds the lock)."""
        if self.conn.closed:
            self.conn = self._connect()
        return self.conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock, self._live().transaction():
            yield

    def _exec(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        with self._lock, self._live().cursor() as cur:
            cur.execute(statement, params or None)
            return cur.rowcount

    def _fetch(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._live().cursor() as cur:
            cur.execute(statement, params or None)
            return cur.fetchall()
