"""Where reconciliation keeps its data: PostgreSQL, or SQLite for the embedded default.

Tables (all ``recon_*``; in PostgreSQL in the configured schema, next to the views)::

    recon_ledger_payments  (tax_office, voucher_no) -> business_date, region_code, levy_item, person_id,
                           kind, amount_fen, signed_fen, paid_at, credited_on, period, original voucher,
                           event_id, event_type, person_version, source
                           the ledger side: one row per voucher the ledger recorded (ledger_side.py)
    recon_statements       statement_id -> header (scope, line_count, total_amount_fen, digest), state,
                           lines_received, lines_fen, max_line_no, first_seen_at, completed_at,
                           reconciled_at, superseded_by, result (the tie-out, JSON)
    recon_lines            (statement_id, line_no) -> the line (person as person id + masked ID number),
                           digest, source (topic/partition/offset)
    recon_discrepancies    id -> scope, class, voucher, occurrence, state, statement_id, line_no,
                           delta_count, delta_fen, vals (figures and details, JSON), note, explained_by,
                           resolved_by (pointer, JSON), timestamps, seq
    recon_history          (discrepancy_id, seq) -> at, action, state, pointer, note, user_name, vals
    recon_errors           id -> statement_id, line_no, code, message, source, raw (the record's bytes,
                           when it was refused as it arrived; encrypted, events.pii), detail, at, dead_lettered
    recon_positions        (name, source_partition) -> position: how far the ledger side and the statement
                           consumer have read, written in the same transaction as what they read
    recon_outbox           seq -> event_id, msg_key, msg_value (JSON), at, published: results waiting for
                           (or already on) reconciliation.results.v1

Positions move by compare-and-set: two writers on one store fail loudly (POSITION_MOVED).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from events import pii
from ledger.domain.errors import DomainError

from infra.sql_store import PostgresDatabase, SQLiteDatabase, SqlStore, Table
from infra.sql_store import columns as _cols
from reconciliation.compare import Listing, Pair, Totals
from reconciliation.intake import LINE_COLUMNS
from reconciliation.lifecycle import HistoryEntry, Plan, Record
from reconciliation.model import LedgerPayment, Scope, StatementLine


def _seal_raw(keys: pii.KeyRing, raw: bytes | None) -> bytes | None:
    """A refused record's bytes (they hold ID numbers and names) encrypted with the deployment's ring."""
    return None if raw is None else keys.encrypt(bytes(raw))


def _open_raw(keys: pii.KeyRing, raw: bytes) -> bytes:
    """:func:`_seal_raw` undone; bytes kept before encryption was the default come back as they are."""
    return keys.decrypt(raw) if pii.is_encrypted(raw) else raw


class StoreError(DomainError):
    """The store cannot do what was asked (another writer moved a position...)."""


LEDGER_COLUMNS = ("tax_office", "voucher_no", "business_date", "region_code", "levy_item", "person_id", "kind",
                  "amount_fen", "signed_fen", "paid_at", "credited_on", "period_start", "period_end",
                  "original_tax_office", "original_voucher_no", "event_id", "event_type", "person_version", "source")

LEDGER = Table("recon_ledger_payments", _cols(
    "tax_office text !, voucher_no text !, business_date date !, region_code text !, levy_item text !, "
    "person_id text !, kind text !, amount_fen bigint !, signed_fen bigint !, paid_at timestamp !, credited_on date, "
    "period_start date !, period_end date !, original_tax_office text, original_voucher_no text, event_id text !, "
    "event_type text !, person_version int !, source text"), ("tax_office", "voucher_no"),
    (("business_date", "tax_office", "region_code"), ("region_code", "business_date")))
STATEMENTS = Table("recon_statements", _cols(
    "statement_id text !, business_date date, tax_office text, region_code text, line_count int, "
    "total_amount_fen bigint, header_digest text, header_source text, state text !, lines_received int !, "
    "lines_fen bigint !, max_line_no int !, first_seen_at timestamp !, completed_at timestamp, completed_by text, "
    "reconciled_at timestamp, superseded_by text, result text"), ("statement_id",),
    (("business_date", "tax_office", "region_code"), ("state",)))
LINES = Table("recon_lines", _cols(
    "statement_id text !, line_no int !, voucher_no text !, id_type text !, masked_id text !, person_id text !, "
    "levy_item text !, period_start date !, period_end date !, amount_fen bigint !, signed_fen bigint !, "
    "paid_at timestamp !, business_date date !, credited_on date, kind text !, original_voucher_no text, "
    "original_tax_office text, digest text !, source text"), ("statement_id", "line_no"),
    (("voucher_no",), ("original_voucher_no",)),
    partial=((("original_voucher_no",), "original_voucher_no IS NOT NULL"),))
DISCREPANCIES = Table("recon_discrepancies", _cols(
    "id text !, business_date date !, tax_office text !, region_code text !, class text !, "
    "voucher_tax_office text !, voucher_no text !, occurrence int !, state text !, statement_id text !, "
    "line_no int, delta_count int !, delta_fen bigint !, vals text !, first_found_at timestamp !, "
    "updated_at timestamp !, note text, explained_by text, explained_at timestamp, resolved_at timestamp, "
    "resolved_by text, seq int !"), ("id",),
    (("business_date", "tax_office", "region_code"), ("state", "region_code")))
HISTORY = Table("recon_history", _cols(
    "discrepancy_id text !, seq int !, at timestamp !, action text !, state text !, pointer text, note text, "
    "user_name text, vals text"), ("discrepancy_id", "seq"))
ERRORS = Table("recon_errors", _cols(
    "id text !, statement_id text, line_no int, code text !, message text !, source text, raw blob, detail text, "
    "at timestamp !, dead_lettered bool !"), ("id",), (("statement_id",), ("dead_lettered",)))
POSITIONS = Table("recon_positions", _cols(
    "name text !, source_partition int !, position bigint !, updated_at timestamp !"), ("name", "source_partition"))
OUTBOX = Table("recon_outbox", _cols(
    "seq serial !, event_id text !, msg_key text !, msg_value text !, at timestamp !, published bool !"), ("seq",),
    (("published", "seq"),))
TABLES = (LEDGER, STATEMENTS, LINES, DISCREPANCIES, HISTORY, ERRORS, POSITIONS, OUTBOX)


def as_date(v: Any) -> date | None:
    if v is None or isinstance(v, date) and not isinstance(v, datetime):
        return v
    return date.fromisoformat(str(v)[:10])


def as_ts(v: Any) -> datetime | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc)
    return datetime.fromisoformat(str(v)).astimezone(timezone.utc)


def _json(v: Any) -> str | None:
    return None if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)


def _unjson(v: Any) -> Any:
    return None if v is None else json.loads(v)


def line_from_row(r: Sequence[Any]) -> StatementLine:
    """A ``recon_lines`` row (LINE_COLUMNS order) as a StatementLine."""
    (sid, line_no, voucher, id_type, masked, pid, levy, start, end, amount, _signed, paid_at, _bd, credited, kind,
     orig, orig_office, digest, source) = r
    return StatementLine(sid, int(line_no), voucher, id_type, masked, pid, levy, as_date(start), as_date(end),
                         int(amount), as_ts(paid_at), as_date(credited), kind, orig, orig_office, digest, source or "")


def payment_from_row(r: Sequence[Any]) -> LedgerPayment:
    """A ``recon_ledger_payments`` row (LEDGER_COLUMNS order) as a LedgerPayment."""
    (office, voucher, bd, region, levy, pid, kind, amount, _signed, paid_at, credited, start, end, orig_office, orig,
     event_id, event_type, version, _source) = r
    return LedgerPayment(office, voucher, as_date(bd), region, levy, pid, kind, int(amount), as_ts(paid_at),
                         as_date(credited), as_date(start), as_date(end), orig_office, orig, event_id, event_type,
                         int(version))


def payment_record(row: LedgerPayment, source: str | None = None) -> tuple[Any, ...]:
    return (row.tax_office, row.voucher_no, row.business_date, row.region_code, row.levy_item, row.person_id, row.kind,
            row.amount_fen, row.signed_fen, row.paid_at, row.credited_on, row.period_start, row.period_end,
            row.original_tax_office, row.original_voucher_no, row.event_id, row.event_type, row.person_version, source)


class ReconciliationStore(SqlStore):
    """The reconciliation tables on one SQL database (an :class:`infra.sql_store.SqlDatabase`: connection,
    dialect, transactions); subclasses open it."""

    p = SqlStore.param  # the placeholder, short: it stands in most statements below

    # ---------------------------------------------------------------- statements (infra.sql_store)
    def _bulk(self, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert many rows (COPY on PostgreSQL)."""
        self.db.insert(table.name, columns, rows)

    def _fetch_in(self, sql: str, values: Sequence[Any], params: Sequence[Any] = (),
                  after: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """``sql`` holds ``{in}`` where ``<column> {in}`` tests membership in ``values``."""
        return self.db.fetch_in(sql, values, params, after)

    _v = SqlStore._to_db

    # ---------------------------------------------------------------- setup
    def _create_sql(self, table: Table) -> list[str]:
        key = table.key if table.key != ("seq",) else None  # the outbox's seq: a serial column, its own key
        out = [self.db.table_sql(table.name, table.columns, key)]
        for columns in table.indexes:
            out.append(self.db.index_sql(f"ix_{table.name}_{'_'.join(columns)}", table.name, columns,
                                         table.where(columns)))
        if table is OUTBOX:
            out.append(self.db.index_sql(f"ux_{table.name}_event_id", table.name, ("event_id",), unique=True))
        return out

    def create(self) -> None:
        with self.transaction():
            for table in TABLES:
                for statement in self._create_sql(table):
                    self._exec(statement)

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    # ---------------------------------------------------------------- positions
    def positions(self, name: str) -> dict[int, int]:
        return {int(p): int(pos) for p, pos in self._fetch(
            f"SELECT source_partition, position FROM {POSITIONS.name} WHERE name = {self.p}", (name,))}

    def move_positions(self, name: str, moves: Mapping[int, tuple[int | None, int]], at: datetime) -> None:
        """Move each partition from the position the reader started after to the batch's end (compare and set)."""
        current = self.positions(name)
        for partition, (expected, new) in sorted(moves.items()):
            found = current.get(partition)
            if found != expected:
                raise StoreError("POSITION_MOVED", (
                    f"{name} partition {partition} was at {expected} when this batch was read and is now at {found}: "
                    "another process is writing to this reconciliation store; run one per store"))
            if found is None or new != found:
                key = {"name": name, "source_partition": partition}
                if not self.db.move_position(POSITIONS.name, key, found, new, at):
                    raise StoreError("POSITION_MOVED", f"{name} partition {partition} moved while this batch was "
                                                       "written: another process is writing to this store")

    # ---------------------------------------------------------------- the ledger side
    def ledger_rows(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], LedgerPayment]:
        out: dict[tuple[str, str], LedgerPayment] = {}
        by_office: dict[str, list[str]] = {}
        for office, voucher in keys:
            by_office.setdefault(office, []).append(voucher)
        cols = ", ".join(LEDGER_COLUMNS)
        for office, vouchers in by_office.items():
            sql = f"SELECT {cols} FROM {LEDGER.name} WHERE tax_office = {self.p} AND voucher_no {{in}}"
            for r in self._fetch_in(sql, sorted(set(vouchers)), (office,)):
                row = payment_from_row(r)
                out[row.key] = row
        return out

    def put_ledger_rows(self, rows: Sequence[LedgerPayment], source: str | None = None) -> list[LedgerPayment]:
        """Insert the rows not stored yet (identical ones are re-deliveries); returns the rows that are new."""
        if not rows:
            return []
        existing = self.ledger_rows([r.key for r in rows])
        new = [r for r in rows if r.key not in existing]
        changed = [r for r in rows if r.key in existing and existing[r.key] != r]
        if changed:  # a voucher's row never changes: two different events claim one voucher
            raise StoreError("LEDGER_ROW_CONFLICT", (
                f"voucher {changed[0].voucher_no} (office {changed[0].tax_office}) was projected from event "
                f"{existing[changed[0].key].event_id} and now from {changed[0].event_id}"))
        self._bulk(LEDGER, LEDGER_COLUMNS, [tuple(self._v(v) for v in payment_record(r, source)) for r in new])
        return new

    def copy_ledger_rows(self, records: Sequence[Sequence[Any]]) -> None:
        """Bulk-load ledger rows as they are (LEDGER_COLUMNS order): benchmarks and tests only."""
        self._bulk(LEDGER, LEDGER_COLUMNS, [tuple(self._v(v) for v in r) for r in records])

    # ---------------------------------------------------------------- statements
    _STATEMENT_COLS = STATEMENTS.column_names

    def statements(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        cols = ", ".join(self._STATEMENT_COLS)
        return {r[0]: self._statement(r) for r in self._fetch_in(
            f"SELECT {cols} FROM {STATEMENTS.name} WHERE statement_id {{in}}", sorted(set(ids)))}

    def statement(self, statement_id: str) -> dict[str, Any] | None:
        return self.statements([statement_id]).get(statement_id)

    def _statement(self, r: Sequence[Any]) -> dict[str, Any]:
        s = dict(zip(self._STATEMENT_COLS, r))
        s["business_date"] = as_date(s["business_date"])
        for k in ("first_seen_at", "completed_at", "reconciled_at"):
            s[k] = as_ts(s[k])
        s["result"] = _unjson(s["result"])
        s["has_header"] = s["header_digest"] is not None
        return s

    def insert_statement(self, s: Mapping[str, Any]) -> None:
        cols = [c for c in self._STATEMENT_COLS if c in s]
        self._exec(f"INSERT INTO {STATEMENTS.name} ({', '.join(cols)}) VALUES ({', '.join([self.p] * len(cols))})",
                   [self._v(_json(s[c]) if c == "result" else s[c]) for c in cols])

    def update_statement(self, statement_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = {self.p}" for k in fields)
        self._exec(f"UPDATE {STATEMENTS.name} SET {sets} WHERE statement_id = {self.p}",
                   [*(self._v(_json(v) if k == "result" else v) for k, v in fields.items()), statement_id])

    def statements_in_state(self, state: str, *, first_seen_before: datetime | None = None) -> list[dict[str, Any]]:
        cols = ", ".join(self._STATEMENT_COLS)
        sql = f"SELECT {cols} FROM {STATEMENTS.name} WHERE state = {self.p}"
        params: list[Any] = [state]
        if first_seen_before is not None:
            sql += f" AND first_seen_at < {self.p}"
            params.append(self._v(first_seen_before))
        return [self._statement(r) for r in self._fetch(sql + " ORDER BY first_seen_at, statement_id", params)]

    def statements_of_scope(self, scope: Scope) -> list[dict[str, Any]]:
        p = self.p
        cols = ", ".join(self._STATEMENT_COLS)
        return [self._statement(r) for r in self._fetch(
            f"SELECT {cols} FROM {STATEMENTS.name} WHERE business_date = {p} AND tax_office = {p} "
            f"AND region_code = {p} ORDER BY first_seen_at, statement_id",
            (self._v(scope.business_date), scope.tax_office, scope.region_code))]

    def current_statement(self, scope: Scope) -> dict[str, Any] | None:
        found = [s for s in self.statements_of_scope(scope) if s["state"] == "RECONCILED"]
        return found[-1] if found else None

    def scopes_with_current_statements(self, scopes: Sequence[Scope]) -> dict[Scope, str]:
        out = {}
        for scope in sorted(set(scopes)):
            current = self.current_statement(scope)
            if current is not None:
                out[scope] = current["statement_id"]
        return out

    # ---------------------------------------------------------------- lines
    def line_digests(self, statement_id: str, line_nos: Sequence[int]) -> dict[int, str]:
        return {int(n): d for n, d in self._fetch_in(
            f"SELECT line_no, digest FROM {LINES.name} WHERE statement_id = {self.p} AND line_no {{in}}",
            sorted(set(line_nos)), (statement_id,))}

    def insert_lines(self, rows: Sequence[Sequence[Any]]) -> None:
        """Rows in LINE_COLUMNS order (dates and instants as ISO text or as date/datetime)."""
        self._bulk(LINES, LINE_COLUMNS, rows)

    def lines(self, statement_id: str, *, line_nos: Sequence[int] | None = None) -> list[StatementLine]:
        cols = ", ".join(LINE_COLUMNS)
        if line_nos is None:
            rows = self._fetch(f"SELECT {cols} FROM {LINES.name} WHERE statement_id = {self.p} ORDER BY line_no",
                               (statement_id,))
        else:
            rows = self._fetch_in(f"SELECT {cols} FROM {LINES.name} WHERE statement_id = {self.p} AND line_no {{in}}",
                                  sorted(set(line_nos)), (statement_id,))
        return [line_from_row(r) for r in rows]

    def max_line_no(self, statement_id: str) -> int:
        found = self._fetch(f"SELECT MAX(line_no) FROM {LINES.name} WHERE statement_id = {self.p}", (statement_id,))
        return int(found[0][0] or 0)

    def line_numbers(self, statement_id: str) -> list[int]:
        return [int(r[0]) for r in self._fetch(
            f"SELECT line_no FROM {LINES.name} WHERE statement_id = {self.p} ORDER BY line_no", (statement_id,))]

    def lines_beyond(self, statement_id: str, line_count: int) -> list[StatementLine]:
        cols = ", ".join(LINE_COLUMNS)
        return [line_from_row(r) for r in self._fetch(
            f"SELECT {cols} FROM {LINES.name} WHERE statement_id = {self.p} AND line_no > {self.p} ORDER BY line_no",
            (statement_id, line_count))]

    def delete_lines(self, statement_id: str, line_nos: Sequence[int]) -> None:
        self.db.exec_in(f"DELETE FROM {LINES.name} WHERE statement_id = {self.p} AND line_no {{in}}", line_nos,
                        (statement_id,))

    # ---------------------------------------------------------------- the comparison's inputs
    def candidate_pairs(self, statement_id: str, scope: Scope) -> list[Pair]:
        """Every voucher of the statement or of the scope's ledger rows that is NOT a plain match, paired.

        A plain match (one line, a ledger row of the scope, same person, signed amount,
        levy item, kind, period and payment date) gives no discrepancy; leaving those out
        here is what makes a million-line statement cheap to compare. The rules that
        decide are :func:`reconciliation.compare.differences` and
        :meth:`Pair.matches <reconciliation.compare.Pair.matches>`;
        tests/unit/test_reconciliation_store.py checks both give the same discrepancies.
        """
        p = self.p
        lcols = ", ".join(f"l.{c}" for c in LINE_COLUMNS)
        rcols = ", ".join(f"r.{c}" for c in LEDGER_COLUMNS)
        rows = self._fetch(
            f"WITH l AS (SELECT * FROM {LINES.name} WHERE statement_id = {p}), "
            f"r AS (SELECT * FROM {LEDGER.name} WHERE business_date = {p} AND tax_office = {p} AND region_code = {p}), "
            "dup AS (SELECT voucher_no FROM l GROUP BY voucher_no HAVING COUNT(*) > 1) "
            f"SELECT {lcols}, {rcols} FROM l FULL JOIN r ON r.voucher_no = l.voucher_no "
            "WHERE l.voucher_no IS NULL OR r.voucher_no IS NULL OR l.person_id <> r.person_id "
            "OR l.signed_fen <> r.signed_fen OR l.kind <> r.kind OR l.levy_item <> r.levy_item "
            "OR l.period_start <> r.period_start OR l.period_end <> r.period_end "
            "OR l.business_date <> r.business_date OR l.voucher_no IN (SELECT voucher_no FROM dup)",
            (statement_id, self._v(scope.business_date), scope.tax_office, scope.region_code))
        n = len(LINE_COLUMNS)
        lines: dict[tuple[str, str], list[StatementLine]] = {}
        ledger: dict[tuple[str, str], LedgerPayment] = {}
        for r in rows:
            if r[0] is not None:
                line = line_from_row(r[:n])
                lines.setdefault((scope.tax_office, line.voucher_no), []).append(line)
            if r[n] is not None:
                row = payment_from_row(r[n:])
                ledger[row.key] = row
        return [Pair(k, tuple(sorted(lines.get(k, ()), key=lambda x: x.line_no)), ledger.get(k))
                for k in sorted(set(lines) | set(ledger))]

    def line_totals(self, statement_id: str) -> dict[str, Totals]:
        return {levy: Totals(int(n), int(fen or 0)) for levy, n, fen in self._fetch(
            f"SELECT levy_item, COUNT(*), SUM(signed_fen) FROM {LINES.name} WHERE statement_id = {self.p} "
            "GROUP BY levy_item", (statement_id,))}

    def ledger_totals(self, scope: Scope) -> dict[str, Totals]:
        p = self.p
        return {levy: Totals(int(n), int(fen or 0)) for levy, n, fen in self._fetch(
            f"SELECT levy_item, COUNT(*), SUM(signed_fen) FROM {LEDGER.name} WHERE business_date = {p} "
            f"AND tax_office = {p} AND region_code = {p} GROUP BY levy_item",
            (self._v(scope.business_date), scope.tax_office, scope.region_code))}

    def listings(self, tax_office: str, vouchers: Sequence[str], *, exclude: str) -> dict[tuple[str, str], Listing]:
        """Vouchers of ``tax_office`` listed on a current statement other than ``exclude`` (first by statement id)."""
        if not vouchers:
            return {}
        p = self.p
        rows = self._fetch_in(
            f"SELECT l.voucher_no, l.line_no, s.statement_id, s.business_date, s.tax_office, s.region_code "
            f"FROM {LINES.name} l JOIN {STATEMENTS.name} s ON s.statement_id = l.statement_id "
            f"WHERE s.state = 'RECONCILED' AND s.tax_office = {p} AND s.statement_id <> {p} AND l.voucher_no {{in}}",
            sorted(set(vouchers)), (tax_office, exclude))
        out: dict[tuple[str, str], Listing] = {}
        for voucher, line_no, sid, bd, office, region in sorted(rows, key=lambda r: (r[0], r[2], r[1])):
            out.setdefault((office, voucher), Listing(sid, Scope(as_date(bd), office, region), int(line_no)))
        return out

    def listed_payments(self, keys: Sequence[tuple[str, str]], *, including: str) -> set[tuple[str, str]]:
        """Which of these vouchers are a payment line of a current statement (or of statement ``including``)."""
        out: set[tuple[str, str]] = set()
        by_office: dict[str, list[str]] = {}
        for office, voucher in keys:
            by_office.setdefault(office, []).append(voucher)
        p = self.p
        for office, vouchers in by_office.items():
            for (voucher,) in self._fetch_in(
                    f"SELECT l.voucher_no FROM {LINES.name} l JOIN {STATEMENTS.name} s "
                    f"ON s.statement_id = l.statement_id WHERE (s.state = 'RECONCILED' OR s.statement_id = {p}) "
                    f"AND s.tax_office = {p} AND l.kind = 'PAYMENT' AND l.voucher_no {{in}}",
                    sorted(set(vouchers)), (including, office)):
                out.add((office, voucher))
        return out

    def statements_listing(self, keys: Sequence[tuple[str, str]]) -> set[str]:
        """Current statements with a line whose voucher, or original voucher, is one of ``keys``."""
        out: set[str] = set()
        by_office: dict[str, list[str]] = {}
        for office, voucher in keys:
            by_office.setdefault(office, []).append(voucher)
        p = self.p
        for office, vouchers in by_office.items():
            vs = sorted(set(vouchers))
            tests = (("voucher_no", f"s.tax_office = {p}"),
                     ("original_voucher_no", f"COALESCE(l.original_tax_office, s.tax_office) = {p}"))
            for column, office_test in tests:
                for (sid,) in self._fetch_in(
                        f"SELECT DISTINCT s.statement_id FROM {LINES.name} l JOIN {STATEMENTS.name} s "
                        f"ON s.statement_id = l.statement_id WHERE s.state = 'RECONCILED' AND {office_test} "
                        f"AND l.{column} {{in}}", vs, (office,)):
                    out.add(sid)
        return out

    # ---------------------------------------------------------------- discrepancies
    _D_COLS = DISCREPANCIES.column_names

    def _record(self, r: Sequence[Any]) -> Record:
        d = dict(zip(self._D_COLS, r))
        return Record(
            id=d["id"], scope=Scope(as_date(d["business_date"]), d["tax_office"], d["region_code"]), klass=d["class"],
            tax_office=d["voucher_tax_office"], voucher_no=d["voucher_no"], occurrence=int(d["occurrence"]),
            state=d["state"], values=_unjson(d["vals"]), first_found_at=as_ts(d["first_found_at"]),
            updated_at=as_ts(d["updated_at"]), note=d["note"], explained_by=d["explained_by"],
            explained_at=as_ts(d["explained_at"]), resolved_at=as_ts(d["resolved_at"]),
            resolved_by=_unjson(d["resolved_by"]), seq=int(d["seq"]))

    def discrepancies_of_scope(self, scope: Scope) -> dict[str, Record]:
        p = self.p
        rows = self._fetch(f"SELECT {', '.join(self._D_COLS)} FROM {DISCREPANCIES.name} WHERE business_date = {p} "
                           f"AND tax_office = {p} AND region_code = {p}",
                           (self._v(scope.business_date), scope.tax_office, scope.region_code))
        return {r.id: r for r in map(self._record, rows)}

    def discrepancy(self, discrepancy_id: str) -> Record | None:
        rows = self._fetch(f"SELECT {', '.join(self._D_COLS)} FROM {DISCREPANCIES.name} WHERE id = {self.p}",
                           (discrepancy_id,))
        return self._record(rows[0]) if rows else None

    def find_discrepancies(self, *, states: Sequence[str] | None = None, office: str | None = None,
                           region: str | None = None, day: date | None = None, statement_id: str | None = None,
                           found_before: datetime | None = None) -> list[Record]:
        p = self.p
        where, params = [], []
        if states:
            where.append(f"state IN ({', '.join([p] * len(states))})")
            params += list(states)
        self.db.equal((("tax_office", office), ("region_code", region), ("statement_id", statement_id),
                       ("business_date", day)), where, params)
        if found_before is not None:
            where.append(f"first_found_at < {p}")
            params.append(self._v(found_before))
        sql = f"SELECT {', '.join(self._D_COLS)} FROM {DISCREPANCIES.name}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY business_date, tax_office, region_code, class, voucher_no, occurrence"
        return [self._record(r) for r in self._fetch(sql, params)]

    def history(self, discrepancy_id: str) -> list[HistoryEntry]:
        rows = self._fetch(f"SELECT discrepancy_id, seq, at, action, state, pointer, note, user_name, vals "
                           f"FROM {HISTORY.name} WHERE discrepancy_id = {self.p} ORDER BY seq", (discrepancy_id,))
        return [HistoryEntry(i, int(s), as_ts(at), a, st, _unjson(ptr), note, user, _unjson(v))
                for i, s, at, a, st, ptr, note, user, v in rows]

    def write_plan(self, plan: Plan) -> None:
        if not plan.records and not plan.history:
            return
        self.db.exec_in(f"DELETE FROM {DISCREPANCIES.name} WHERE id {{in}}", [r.id for r in plan.records])
        self._bulk(DISCREPANCIES, self._D_COLS, [tuple(self._v(v) for v in (
            r.id, r.scope.business_date, r.scope.tax_office, r.scope.region_code, r.klass, r.tax_office, r.voucher_no,
            r.occurrence, r.state, r.statement_id, r.line_no, r.delta_count, r.delta_fen, _json(r.values),
            r.first_found_at, r.updated_at, r.note, r.explained_by, r.explained_at, r.resolved_at,
            _json(r.resolved_by), r.seq)) for r in plan.records])
        self._bulk(HISTORY, HISTORY.column_names, [tuple(self._v(v) for v in (
            h.discrepancy_id, h.seq, h.at, h.action, h.state, _json(h.pointer), h.note, h.user, _json(h.values)))
            for h in plan.history])

    # ---------------------------------------------------------------- errors
    _E_COLS = ERRORS.column_names

    #: The ring refused records' bytes are encrypted with: the system's, set by ``reconciliation.factory``;
    #: a store opened by hand (tests, tools) uses the environment's deployment ring.
    keys: pii.KeyRing | None = None

    def key_ring(self) -> pii.KeyRing:
        return self.keys or pii.deployment_keys()

    def add_errors(self, errors: Sequence[Mapping[str, Any]]) -> list[str]:
        """Keep errors (each with a deterministic id; one kept before is not added again); returns the new ids."""
        if not errors:
            return []
        ids = [e["id"] for e in errors]
        known = {r[0] for r in self._fetch_in(f"SELECT id FROM {ERRORS.name} WHERE id {{in}}", sorted(set(ids)))}
        new, seen = [], set()
        for e in errors:
            if e["id"] in known or e["id"] in seen:
                continue
            seen.add(e["id"])
            new.append(tuple(self._v(v) for v in (
                e["id"], e.get("statement_id"), e.get("line_no"), e["code"], e["message"], e.get("source"),
                _seal_raw(self.key_ring(), e.get("raw")), _json(e.get("detail")), e["at"], False)))
        self._bulk(ERRORS, self._E_COLS, new)
        return [r[0] for r in new]

    def _error(self, r: Sequence[Any]) -> dict[str, Any]:
        e = dict(zip(self._E_COLS, r))
        e["detail"] = _unjson(e["detail"])
        e["at"] = as_ts(e["at"])
        e["dead_lettered"] = bool(e["dead_lettered"])
        e["raw"] = None if e["raw"] is None else _open_raw(self.key_ring(), bytes(e["raw"]))
        return e

    def errors(self, *, statement_id: str | None = None, undelivered: bool = False) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(self._E_COLS)} FROM {ERRORS.name}"
        where, params = [], []
        if statement_id is not None:
            where.append(f"statement_id = {self.p}")
            params.append(statement_id)
        if undelivered:
            where.append(f"dead_lettered = {self.p} AND raw IS NOT NULL")
            params.append(self._v(False))
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [self._error(r) for r in self._fetch(sql + " ORDER BY at, id", params)]

    def mark_dead_lettered(self, ids: Sequence[str]) -> None:
        self.db.exec_in(f"UPDATE {ERRORS.name} SET dead_lettered = {self.p} WHERE id {{in}}", ids, (True,))

    # ---------------------------------------------------------------- outbox
    def add_outbox(self, events: Sequence[tuple[str, str, dict[str, Any], datetime]]) -> None:
        """Results to publish: (event_id, key, value, at); an event id already there is not added again."""
        if not events:
            return
        known = {r[0] for r in self._fetch_in(f"SELECT event_id FROM {OUTBOX.name} WHERE event_id {{in}}",
                                              sorted({e[0] for e in events}))}
        rows, seen = [], set()
        for event_id, key, value, at in events:
            if event_id in known or event_id in seen:
                continue
            seen.add(event_id)
            rows.append((event_id, key, _json(value), self._v(at), self._v(False)))
        self.db.many(f"INSERT INTO {OUTBOX.name} (event_id, msg_key, msg_value, at, published) VALUES "
                     f"({self.db.marks(5)})", rows)

    def outbox(self, *, pending: bool = True, limit: int = 1000) -> list[tuple[int, str, str, str]]:
        """(seq, event_id, key, value JSON) in order."""
        sql = f"SELECT seq, event_id, msg_key, msg_value FROM {OUTBOX.name}"
        params: list[Any] = []
        if pending:
            sql += f" WHERE published = {self.p}"
            params.append(self._v(False))
        return [(int(s), e, k, v) for s, e, k, v in self._fetch(sql + f" ORDER BY seq LIMIT {int(limit)}", params)]

    def mark_published(self, seqs: Sequence[int]) -> None:
        self.db.exec_in(f"UPDATE {OUTBOX.name} SET published = {self.p} WHERE seq {{in}}", seqs, (True,))

    # ---------------------------------------------------------------- reports
    def region_day_totals(self, *, region: str | None = None, day: date | None = None) -> dict[str, Any]:
        """Per (business date, region): what current statements list and what the ledger recorded."""
        where: list[str] = []
        params: list[Any] = []
        self.db.equal((("region_code", region), ("business_date", day)), where, params)
        cond = (" AND " + " AND ".join(where)) if where else ""
        collected = self._fetch(
            f"SELECT business_date, region_code, COUNT(*), SUM(lines_received), SUM(lines_fen) FROM {STATEMENTS.name} "
            f"WHERE state = 'RECONCILED'{cond} GROUP BY business_date, region_code", params)
        recorded = self._fetch(
            f"SELECT business_date, region_code, COUNT(*), SUM(signed_fen) FROM {LEDGER.name} "
            f"{'WHERE ' + ' AND '.join(where) if where else ''} GROUP BY business_date, region_code", params)
        pending = self._fetch(
            f"SELECT business_date, region_code, COUNT(*) FROM {STATEMENTS.name} "
            f"WHERE state IN ('RECEIVING', 'COMPLETE', 'INCOMPLETE'){cond} AND business_date IS NOT NULL "
            "GROUP BY business_date, region_code", params)
        open_ = self._fetch(
            f"SELECT business_date, region_code, COUNT(*), SUM(delta_fen) FROM {DISCREPANCIES.name} "
            f"WHERE state IN ('OPEN', 'EXPLAINED'){cond} GROUP BY business_date, region_code", params)
        return {"collected": collected, "recorded": recorded, "pending": pending, "open": open_}

    def scopes_without_statement(self, *, through: date, region: str | None = None,
                                 office: str | None = None) -> list[tuple[Any, ...]]:
        """(business date, tax office, region, ledger rows, signed fen) of each scope up to ``through`` the
        ledger recorded payments for and no statement (in any state) covers."""
        p = self.p
        where, params = [f"l.business_date <= {p}"], [self._v(through)]
        if region is not None:
            where.append(f"l.region_code = {p}")
            params.append(region)
        if office is not None:
            where.append(f"l.tax_office = {p}")
            params.append(office)
        return self._fetch(
            f"SELECT l.business_date, l.tax_office, l.region_code, COUNT(*), SUM(l.signed_fen) FROM {LEDGER.name} l "
            f"WHERE {' AND '.join(where)} AND NOT EXISTS (SELECT 1 FROM {STATEMENTS.name} s "
            "WHERE s.business_date = l.business_date AND s.tax_office = l.tax_office AND s.region_code = l.region_code) "
            "GROUP BY l.business_date, l.tax_office, l.region_code "
            "ORDER BY l.business_date, l.region_code, l.tax_office", params)

    def counts(self) -> dict[str, int]:
        return {t.name: int(self._fetch(f"SELECT COUNT(*) FROM {t.name}")[0][0]) for t in TABLES}

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table in key order: to compare two runs row by row."""
        out = {}
        for table in TABLES:
            rows = self._fetch(f"SELECT {', '.join(table.column_names)} FROM {table.name} "
                               f"ORDER BY {', '.join(table.key)}")
            out[table.name] = [tuple(v.isoformat() if isinstance(v, (date, datetime)) else
                                     (bytes(v) if isinstance(v, memoryview) else v) for v in r) for r in rows]
        return out


# --------------------------------------------------------------------------- SQLite
class SQLiteReconciliationStore(ReconciliationStore):
    """The embedded store: one SQLite file (``var/reconciliation.sqlite`` by default), or ``:memory:``."""

    def __init__(self, path: str | Path = ":memory:", *, create: bool = True) -> None:
        super().__init__(SQLiteDatabase(path))
        self.path = str(path)
        if create:
            self.create()


# --------------------------------------------------------------------------- PostgreSQL
class PostgresReconciliationStore(ReconciliationStore):
    """The tables in PostgreSQL (psycopg 3), in the schema the settings name (``POSTGRES_SCHEMA``)."""

    def __init__(self, settings: Mapping[str, str], *, connection: Any = None, create: bool = True) -> None:
        super().__init__(PostgresDatabase(settings, connection=connection))
        self.settings = self.db.settings
        self.schema = self.db.schema
        if create:
            self.create()


__all__ = ["LEDGER_COLUMNS", "PostgresReconciliationStore", "ReconciliationStore", "SQLiteReconciliationStore",
           "StoreError", "TABLES", "as_date", "as_ts", "line_from_row", "payment_from_row", "payment_record"]
