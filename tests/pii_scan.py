"""Scans for personal data in clear: raw rows (SQLite, PostgreSQL) and raw topic bytes.

What counts as a leak: any of the generated people's ID numbers or names, and any
18-character resident ID number (``\\d{17}[\\dX]`` standing alone, with a valid GB 11643
check character: a voucher number of 20 digits is not an ID) found in the bytes of a
row's column, a topic record's key, value or header.

The inbound topics (``tax.*``, ``registry.*``) hold what the tax bureau and the registry
sent: their bytes are the integrators', outside the ledger's control, so the scans report
them apart (and the tests check that they do hold IDs: the scanner finds what it should).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ledger.domain.identity import resident_id_check_char

ID_PATTERN = re.compile(rb"(?<![0-9A-Za-z])(\d{17}[\dX])(?![0-9A-Za-z])")
#: Topics whose bytes other departments produce (their contracts are in schemas/inbound).
INBOUND_PREFIXES = ("tax.", "registry.")


@dataclass
class Needles:
    """The known personal values of a generated county (as UTF-8 bytes)."""

    ids: set[bytes]
    names: set[bytes]

    @classmethod
    def of(cls, county: Any) -> "Needles":
        ids = {p.id_number.encode() for p in county.persons}
        names = {p.name.encode() for p in county.persons if len(p.name) >= 2}
        return cls(ids, names)


@dataclass
class Findings:
    scanned: int = 0  # values looked at
    hits: list[tuple[str, str]] = field(default_factory=list)  # (where, what: masked)

    def __bool__(self) -> bool:
        return bool(self.hits)


def _valid_resident_id(number: bytes) -> bool:
    text = number.decode()
    return resident_id_check_char(text[:17]) == text[17]


def scan_value(value: Any, needles: Needles, where: str, found: Findings) -> None:
    """Look at one value (bytes, text, number, None) for the needles."""
    if value is None:
        return
    if isinstance(value, memoryview):
        value = value.tobytes()
    data = value if isinstance(value, (bytes, bytearray)) else str(value).encode("utf-8", "surrogatepass")
    found.scanned += 1
    for m in ID_PATTERN.finditer(data):
        if m.group(1) in needles.ids or _valid_resident_id(m.group(1)):
            found.hits.append((where, "id " + m.group(1)[:4].decode() + "**********" + m.group(1)[-4:].decode()))
    for needle in needles.ids:
        if needle in data and not ID_PATTERN.search(needle):  # other document types
            found.hits.append((where, "id " + needle[:2].decode() + "***"))
    for name in needles.names:
        if name in data:
            found.hits.append((where, "name " + name.decode()[:1] + "*"))


def scan_rows(tables: Iterable[tuple[str, list[str], Iterable[tuple[Any, ...]]]], needles: Needles,
              found: Findings | None = None) -> Findings:
    """``(table, column names, rows)`` -> what was found (every column of every row)."""
    found = Findings() if found is None else found
    for table, columns, rows in tables:
        for row in rows:
            for column, value in zip(columns, row):
                scan_value(value, needles, f"{table}.{column}", found)
    return found


def sqlite_tables(path: str) -> Iterator[tuple[str, list[str], list[tuple[Any, ...]]]]:
    """Every table of a SQLite file, every row, every column as stored."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.text_factory = bytes  # text columns as their raw bytes
    try:
        names = [r[0].decode() for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for name in names:
            cur = conn.execute(f'SELECT * FROM "{name}"')
            yield f"{path.rsplit('/', 1)[-1]}:{name}", [d[0] for d in cur.description], cur.fetchall()
    finally:
        conn.close()


def postgres_tables(conn: Any, schema: str) -> Iterator[tuple[str, list[str], list[tuple[Any, ...]]]]:
    """Every table of a PostgreSQL schema: ``SELECT *`` with every column cast to text (bytea as hex) and
    bytea columns also as their raw bytes."""
    from psycopg import sql

    tables = [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'",
        (schema,)).fetchall()]
    for table in tables:
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = %s ORDER BY ordinal_position", (schema, table)).fetchall()
        select = sql.SQL(", ").join(
            sql.SQL("{}::text").format(sql.Identifier(c)) if t != "bytea" else sql.Identifier(c) for c, t in columns)
        rows = conn.execute(sql.SQL("SELECT {} FROM {}.{}").format(
            select, sql.Identifier(schema), sql.Identifier(table))).fetchall()
        yield table, [c for c, _ in columns], rows


def scan_topics(topics: Iterable[tuple[str, Iterable[tuple[bytes | None, bytes | None, Any]]]], needles: Needles,
                prefix: str = "") -> tuple[Findings, Findings]:
    """``(topic, [(key, value, headers)])`` -> (findings on the ledger's own topics and the dead-letter
    topics, findings on the inbound topics); ``prefix``: the deployment's topic prefix."""
    ours, inbound = Findings(), Findings()
    for topic, records in topics:
        bare = topic[len(prefix):] if prefix and topic.startswith(prefix) else topic
        target = inbound if bare.startswith(INBOUND_PREFIXES) and not bare.endswith(".dlq") else ours
        for key, value, headers in records:
            scan_value(key, needles, f"{topic} key", target)
            scan_value(value, needles, f"{topic} value", target)
            for name, header in headers or ():
                scan_value(header, needles, f"{topic} header {name}", target)
    return ours, inbound
