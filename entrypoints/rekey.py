"""Key rotation (密钥轮换) of the event store: re-encrypt stored events and snapshots with the current key.

    python -m entrypoints.rekey [--plain] [--dry-run]

Rotation, step by step (the README's "Security" section says the same):

1. Generate a new key: ``python -c "from events.pii import new_key; print(new_key())"``.
2. Deploy it as ``CIPHER_KEY`` and the previous one in ``LEDGER_CIPHER_KEYS_OLD`` (comma
   separated, newest first) to every process; restart them. From then on every new event,
   snapshot, published field and dead letter is written with the new key, and everything
   written before still reads (``events.pii.KeyRing`` tries the current key, then the old ones;
   field values name their key).
3. Run ``python -m entrypoints.rekey``: every stored event and snapshot not written with the
   current key is decrypted and encrypted again with it, in place (same plain bytes, so the
   audit digests, which hash the events' fields, do not change). It can run while the ledger
   runs (it updates row by row, and a row written meanwhile already has the current key) and
   again after a crash.
4. Remove the old key from ``LEDGER_CIPHER_KEYS_OLD`` once nothing needs it: the view and
   reconciliation tables hold no clear personal data; ``recon_errors.raw`` values and old
   records on ``ledger.events.v1`` and the ``.dlq`` topics stay encrypted with the key that
   wrote them (topics expire by retention), so keep the old key as long as a reader of
   those still needs them.

``--plain`` also encrypts states stored in clear (a store written before encryption at rest
was the default; run it with ``LEDGER_CIPHER_READ_PLAIN=1`` set until it has finished).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any, Iterator

from events.pii import CipherKeyError, KeyRing
from entrypoints.command import Answer, command
from psycopg.sql import Identifier, SQL

BATCH = 1000


@dataclass
class RekeyReport:
    table: str
    rows: int = 0
    current: int = 0  # already under the current key
    rekeyed: int = 0
    plain: int = 0  # stored in clear, encrypted now (--plain)
    unreadable: int = 0  # no key of the ring opens it: left as it is

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _classify(ring: KeyRing, state: bytes, plain_ok: bool) -> tuple[str, bytes | None]:
    """("current" | "old" | "plain" | "unreadable", the plain bytes when they must be re-encrypted)."""
    current_only = KeyRing([ring.current])
    try:
        current_only.decrypt_store(state)
        return "current", None
    except CipherKeyError:
        pass
    try:
        return "old", ring.decrypt_store(state)
    except CipherKeyError:
        pass
    if plain_ok and state[:1] == b"{":
        try:
            json.loads(state)
            return "plain", state
        except ValueError:
            pass
    return "unreadable", None


def rekey_table(datastore: Any, table: str, ring: KeyRing, *, postgres: bool, plain: bool = False,
                dry_run: bool = False) -> RekeyReport:
    """Re-encrypt every row of one events or snapshots table not under the current key."""
    report = RekeyReport(table)
    for rows in _batches(datastore, table, postgres):
        updates = []
        for originator_id, version, state in rows:
            report.rows += 1
            kind, clear = _classify(ring, bytes(state), plain)
            if kind == "current":
                report.current += 1
            elif kind == "unreadable":
                report.unreadable += 1
            else:
                report.rekeyed += kind == "old"
                report.plain += kind == "plain"
                assert clear is not None
                updates.append((ring.encrypt_store(clear), originator_id, version))
        if updates and not dry_run:
            with datastore.transaction(commit=True) as curs:
                if postgres:
                    statement = SQL("UPDATE {}.{} SET state = %s WHERE originator_id = %s AND originator_version = %s"
                                    ).format(Identifier(datastore.schema), Identifier(table))
                else:
                    statement = f"UPDATE {table} SET state = ? WHERE originator_id = ? AND originator_version = ?"
                curs.executemany(statement, updates)
    return report


def _batches(datastore: Any, table: str, postgres: bool) -> Iterator[list[tuple[Any, int, bytes]]]:
    """The table's rows in key order, ``BATCH`` at a time (keyset pagination: no long-held cursor)."""
    last: tuple[Any, int] | None = None
    while True:
        with datastore.transaction(commit=False) as curs:
            if postgres:
                name = SQL("{}.{}").format(Identifier(datastore.schema), Identifier(table))
                if last is None:
                    curs.execute(SQL("SELECT originator_id, originator_version, state FROM {} "
                                     "ORDER BY originator_id, originator_version LIMIT %s").format(name), (BATCH,))
                else:
                    curs.execute(SQL("SELECT originator_id, originator_version, state FROM {} "
                                     "WHERE (originator_id, originator_version) > (%s, %s) "
                                     "ORDER BY originator_id, originator_version LIMIT %s").format(name),
                                 (*last, BATCH))
            else:
                if last is None:
                    curs.execute(f"SELECT originator_id, originator_version, state FROM {table} "
                                 "ORDER BY originator_id, originator_version LIMIT ?", (BATCH,))
                else:
                    curs.execute(f"SELECT originator_id, originator_version, state FROM {table} "
                                 "WHERE originator_id > ? OR (originator_id = ? AND originator_version > ?) "
                                 "ORDER BY originator_id, originator_version LIMIT ?",
                                 (last[0], last[0], last[1], BATCH))
            rows = [_row(r) for r in curs.fetchall()]
        if not rows:
            return
        yield rows
        last = (rows[-1][0], rows[-1][1])


def _row(r: Any) -> tuple[Any, int, bytes]:
    if isinstance(r, dict):
        return r["originator_id"], r["originator_version"], r["state"]
    return r[0], r[1], r[2]


def rekey(system: Any, *, plain: bool = False, dry_run: bool = False) -> list[RekeyReport]:
    """Re-encrypt the ledger's events and snapshots with the current key (see the module docstring)."""
    ring = KeyRing.for_settings(system.settings)
    ledger = system.ledger
    recorders = [ledger.recorder] + ([ledger.snapshots.recorder] if ledger.snapshots is not None else [])
    postgres = system.settings.persistence == "postgres"
    if system.settings.persistence not in ("postgres", "sqlite"):
        return []
    return [rekey_table(r.datastore, r.events_table_name, ring, postgres=postgres, plain=plain, dry_run=dry_run)
            for r in recorders]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m entrypoints.rekey", description=__doc__.splitlines()[0])
    parser.add_argument("--plain", action="store_true", help="also encrypt states stored in clear (migration)")
    parser.add_argument("--dry-run", action="store_true", help="count, change nothing")
    return _rekey_command(parser.parse_args(argv))


@command
def _rekey_command(args: argparse.Namespace, system: Any) -> Answer:
    reports = rekey(system, plain=args.plain, dry_run=args.dry_run)
    return Answer([r.as_dict() for r in reports], _print_lines, exit_code=1 if any(r.unreadable for r in reports) else 0)


def _print_lines(rows: list[dict[str, Any]]) -> None:
    for row in rows:  # one JSON object a line, what scripts read
        print(json.dumps(row))


if __name__ == "__main__":
    raise SystemExit(main())
