"""View stores: where the projections' rows live (PostgreSQL, or SQLite for the embedded default).

One interface (:class:`ViewStore`), two adapters (:class:`PostgresViewStore` on
psycopg 3, :class:`SQLiteViewStore` on the standard library). The pure logic
(:mod:`projections.entitlement`, :mod:`projections.arrears`, ...) decides what a
row holds; a store keeps it, with a few query-friendly tables derived from it, and
the position in the event stream the rows reflect.

Tables (all ``view_*``; in PostgreSQL in the configured schema)::

    view_rows            (projection, person_id) -> version, state
        one row per person (projection ``history``): the person's folded history
        (ledger.domain.history.PersonHistory as ``history_to_plain`` gives it), from
        which the entitlement row and the arrears row are derived, exactly as the fold
        returned it (JSON text of projections.row_codec: dates
        as ISO text, reads back equal; stored as text, see below). The derived
        figures are not stored a second time: a lookup derives
        them from the history with the same policy tables (checked by fingerprint),
        and the query tables below hold what the lists need. This row is the history's
        BASE: it is written whole only now and then (see view_history_tail)
    view_history_tail    (person_id, version) -> changes
        what each later write changed in the history (ledger.domain.history.history_changes:
        the items the events added or replaced, plain data as codec JSON), appended
        instead of writing the whole history again (issue 19: a write's cost does not
        grow with the history's length). A read folds base + tail
        (ledger.domain.history.apply_changes). A writer writes the base whole again
        (compaction: its tail rows deleted in the same transaction) once the tail would
        outgrow the base (TAIL_MAX_ROWS rows, or more bytes than the base and
        TAIL_MIN_BYTES), so the base is rewritten after ever longer tails and its
        amortised cost per event stays that of one event's changes
    view_persons         person_id -> masked_id
        the masked ID number (6109********1234) from the person's Registered event,
        for grid workers' lists; the full number is never stored here
    view_entitlement_years  (person_id, year) -> region_code, grid_code, township_code,
        enrollment_state, subsidised, subsidy_category, due_fen, net_paid_fen,
        outstanding_fen, funded, insured, coverage_start, coverage_end, waiting_until,
        policy_version               (one resident coverage year, see ledger.domain.coverage.derive)
    view_coverage_spells (person_id, year, valid_from) -> valid_until, region_code,
        township_code, grid_code, covered, reason, reason_rank, subsidised,
        subsidy_category, outstanding_fen, scheme, policy_version, detail, detail_mode,
        sources                      (the gap-list line per stretch of days, see gap_spells)
    view_arrears_dues    (person_id, seq) -> kind, scheme, period, region_code, grid_code,
        township_code, employer_id, due_fen, due_date, collectable_until,
        enrolled_until, settled_from, due  (one due row of the arrears view; ``due`` is
                                      the row itself as codec JSON)
    view_meta            key -> value: ``layout`` (LAYOUT_VERSION of the tables) and ``policies``
        (fingerprint of the policy tables the rows were derived with)
    view_positions       (projection, source, source_partition) -> position, updated_at
        source "log" (partition 0, position = notification id) or "kafka:<topic>"
        (position = the last applied offset of each partition)
    view_quarantine      person_id -> masked_id, code, message, event_id, event_type,
        event_version, source, position, quarantined_at
        persons whose rows could not be derived or stored (隔离): their rows are removed
        from every other view_* table (the history included) until a later run derives
        them again (see projections.projection_runner, "Quarantine")

:meth:`ViewStore.write` stores the rows of a batch, their derived tables **and the
new positions in one transaction**; a position moves only from the value the writer
started from (compare and set), so two runners on one store fail loudly instead of
interleaving. A person whose stored records the writer knows (``PersonViews.previous``)
gets only the changed records upserted (``INSERT ... ON CONFLICT DO UPDATE``) and the
vanished keys deleted; other persons' rows are replaced. A rebuild fills the same tables under a ``_rebuild`` suffix
(:meth:`ViewStore.rebuilding`) and :meth:`ViewStore.swap` replaces the live tables
with them in one transaction.
"""
from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from ledger.domain.errors import DomainError
from ledger.domain.arrears import settled_from
from ledger.domain.history import (
    PersonHistory,
    ProjectionError,
    apply_changes,
    history_changes,
    history_from_plain,
    history_to_plain,
)
from ledger.log import mask_id_number

from projections.row_codec import dumps_row, loads_row
from ledger.domain.gaps import REASON_LABELS
from projections.gap_spells import gap_spells
from infra.sql_store import PostgresDatabase, SqlDatabase, SQLiteDatabase, SqlStore, Table
from infra.sql_store import columns as _cols

ENTITLEMENT = "entitlement"
ARREARS = "arrears"
#: The view_rows projection holding each person's folded history (both views derive from it).
HISTORY = "history"
REBUILD_SUFFIX = "_rebuild"


class StoreError(DomainError):
    """The view store cannot do what was asked (a second runner, a missing rebuild...)."""


# --------------------------------------------------------------------------- table layouts (infra.sql_store.Table)
ROWS = Table("view_rows", _cols("projection text !, person_id text !, version bigint !, state json !"),
             ("projection", "person_id"))
TAIL = Table("view_history_tail", _cols("person_id text !, version bigint !, changes json !"),
             ("person_id", "version"))
PERSONS = Table("view_persons", _cols("person_id text !, masked_id text"), ("person_id",))
YEARS = Table(
    "view_entitlement_years",
    _cols("person_id text !, year int !, region_code text, grid_code text, township_code text, "
          "enrollment_state text !, subsidised bool !, subsidy_category text, due_fen bigint !, "
          "net_paid_fen bigint !, outstanding_fen bigint !, funded bool !, insured bool !, "
          "coverage_start date, coverage_end date, waiting_until date, policy_version text"),
    ("person_id", "year"),
    (("grid_code", "year"), ("township_code", "year"), ("region_code", "year")),
)
SPELLS = Table(
    "view_coverage_spells",
    _cols("person_id text !, year int !, valid_from date !, valid_until date !, region_code text !, "
          "township_code text !, grid_code text !, covered bool !, reason text, reason_rank int, "
          "subsidised bool !, subsidy_category text, outstanding_fen bigint, scheme text, policy_version text, "
          "detail text !, detail_mode text !, sources json !"),
    ("person_id", "year", "valid_from"),
    # The gap lists ask for the persons NOT covered of a grid or township: covered in the key skips the rest.
    (("grid_code", "year", "covered", "valid_from"), ("township_code", "year", "covered", "valid_from"),
     ("region_code", "year", "valid_from")),
    # A grid's gap list reads its uncovered spells: stored together, they are a few pages rather than one page
    # each (a rebuild writes persons in id order, which scatters a grid over the whole table).
    cluster=("grid_code", "year", "covered", "valid_from"),
)
DUES = Table(
    "view_arrears_dues",
    _cols("person_id text !, seq int !, kind text !, scheme text !, period text !, region_code text, "
          "grid_code text, township_code text, employer_id text, due_fen bigint !, due_date date !, "
          "collectable_until date, enrolled_until date, settled_from date, due json !"),
    ("person_id", "seq"),
    (("region_code", "due_date"), ("grid_code", "due_date"), ("township_code", "due_date")),
)
META = Table("view_meta", _cols("key text !, value text !"), ("key",))
POSITIONS = Table(
    "view_positions",
    _cols("projection text !, source text !, source_partition int !, position bigint !, updated_at timestamp !"),
    ("projection", "source", "source_partition"),
)
QUARANTINE = Table(
    "view_quarantine",
    _cols("person_id text !, masked_id text, code text !, message text !, event_id text, event_type text, "
          "event_version bigint, source text, position bigint, quarantined_at timestamp !"),
    ("person_id",),
)
TABLES = (ROWS, TAIL, PERSONS, YEARS, SPELLS, DUES, META, POSITIONS, QUARANTINE)
#: The version of the layout above: a store built with another one must be rebuilt.
#: 2: view_rows holds the history once (layout 1 held the entitlement and arrears rows, each with it).
#: 3: view_rows holds the history's base, view_history_tail the changes written since.
LAYOUT_VERSION = "3"
#: The base of a history is written whole again once its tail would have more rows than this (bounds a read)...
TAIL_MAX_ROWS = 256
#: ... or more bytes than the base itself and than this (so a small history is not rewritten at every event). A read
#: then folds at most about the base's size again in changes (a miss of the runner reads and folds them), and a write
#: rewrites the base after as many bytes of changes as it holds: geometric, so per event about one change's bytes.
TAIL_MIN_BYTES = 2048
#: Tables holding per-person data (cleared for a person before their new rows are written).
PERSON_TABLES = (YEARS, SPELLS, DUES)

#: What an int / bigint column holds (PostgreSQL's integer and bigint; SQLite's INTEGER is 64 bits).
_INT_BITS = {"int": 31, "bigint": 63}


class ViewValueError(DomainError):
    """A derived value does not fit its column: the person is quarantined (``VIEW_VALUE_OUT_OF_RANGE``)."""


@dataclass(frozen=True)
class Quarantined:
    """A person whose views could not be derived or stored, and why (a row of ``view_quarantine``)."""

    person_id: str
    code: str
    message: str
    event_id: str | None = None
    event_type: str | None = None
    event_version: int | None = None
    source: str | None = None
    position: int | None = None
    masked_id: str | None = None
    quarantined_at: datetime | None = None

    def record(self, now: datetime) -> tuple[Any, ...]:
        return (self.person_id, self.masked_id, self.code, self.message[:500], self.event_id, self.event_type,
                self.event_version, self.source, self.position, self.quarantined_at or now)

    def as_dict(self) -> dict[str, Any]:
        return {"person_id": self.person_id, "masked_id": self.masked_id, "code": self.code, "message": self.message,
                "event_id": self.event_id, "event_type": self.event_type, "event_version": self.event_version,
                "source": self.source, "position": self.position, "since": self.quarantined_at}


# --------------------------------------------------------------------------- one person's rows
@dataclass
class PersonViews:
    """Everything a batch writes for one person: the history row (as codec JSON) and derived-table records."""

    person_id: str
    #: (version, the whole history as JSON: the new base), or (version, None): the base stays, ``changes`` is appended.
    history: tuple[int, str | None]
    years: list[tuple[Any, ...]] = field(default_factory=list)
    spells: list[tuple[Any, ...]] = field(default_factory=list)
    dues: list[tuple[Any, ...]] = field(default_factory=list)
    masked_id: str | None = None
    #: The last event folded in (named in the quarantine when the store refuses these rows); not compared.
    last_event: Any = field(default=None, compare=False, repr=False)
    #: What the store holds for this person now (the views written last time, their ``previous`` None), when the
    #: writer knows it: then only the records that changed are written (upserts) and only vanished keys deleted.
    #: None: unknown, every row of the person is replaced.
    previous: PersonViews | None = field(default=None, compare=False, repr=False)
    #: The history's changes since the stored version (codec JSON of ledger.domain.history.history_changes), appended
    #: to view_history_tail when the base is not written (``history[1]`` None).
    changes: str | None = None
    #: What the store holds of the history once these views are written: (base bytes, tail rows, tail bytes).
    shape: tuple[int, int, int] | None = field(default=None, compare=False, repr=False)


@dataclass
class StoredHistory:
    """A person's history as a view store holds it: the history (base + tail folded), and the base and tail sizes."""

    history: PersonHistory
    base_bytes: int
    tail_rows: int = 0
    tail_bytes: int = 0

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.base_bytes, self.tail_rows, self.tail_bytes)


def history_record(history: PersonHistory, old: PersonHistory | None,
                   shape: tuple[int, int, int] | None) -> tuple[tuple[int, str | None], str | None, tuple[int, int, int]]:
    """How to store ``history``: ((version, base JSON or None), tail JSON or None, the shape stored after it).

    ``old`` is the history the store holds (folded from base + tail, the fold having
    left it unchanged) and ``shape`` its (base bytes, tail rows, tail bytes); without
    them, or when the tail would outgrow the base, the history is written whole as the
    new base (compaction); otherwise only its changes are appended.
    """
    if old is not None and shape is not None:
        base_bytes, rows, tail_bytes = shape
        text = dumps_row(history_changes(old, history))
        if rows < TAIL_MAX_ROWS and tail_bytes + len(text) <= max(base_bytes, TAIL_MIN_BYTES):
            return (history.version, None), text, (base_bytes, rows + 1, tail_bytes + len(text))
    text = dumps_row(history_to_plain(history))
    return (history.version, text), None, (len(text), 0, 0)


def masked_id_of(event: Any) -> str | None:
    """The masked ID number of a Registered event (either event shape), else None."""
    number = event.get("id_number") if isinstance(event, dict) else getattr(event, "id_number", None)
    return mask_id_number(number) if number else None


def year_records(person_id: str, row: dict[str, Any]) -> list[tuple[Any, ...]]:
    household = row["summary"]["household_grid"]
    out = []
    for year, y in sorted(row["years"].items()):
        grid = y["grid_code"] or household
        out.append((
            person_id, year, y["region_code"], grid, grid[:9] if grid else None, y["enrollment_state"],
            y["subsidy_category"] is not None, y["subsidy_category"], y["due_fen"], y["net_paid_fen"],
            y["outstanding_fen"], bool(y["funded"]), bool(y["insured"]), y["coverage_start"], y["coverage_end"],
            y["waiting_until"], y["policy_version"],
        ))
    return out


_ascii_json_str = json.encoder.encode_basestring_ascii  # what json.dumps writes a str with (ensure_ascii)


def _json_texts(items: Sequence[Any]) -> str:
    """``json.dumps(items)`` for a list of strs, the same text without the encoder's machinery."""
    if all(type(item) is str for item in items):
        return "[" + ", ".join([_ascii_json_str(item) for item in items]) + "]"
    return json.dumps(items)


def spell_records(person_id: str, row: dict[str, Any], years: Sequence[int], policies: Any) -> list[tuple[Any, ...]]:
    return [
        (person_id, s["year"], s["valid_from"], s["valid_until"], s["region_code"], s["township_code"],
         s["grid_code"], s["covered"], s["reason"], s["reason_rank"], s["subsidised"], s["subsidy_category"],
         s["outstanding_fen"], s["scheme"], s["policy_version"], s["detail"], s["detail_mode"],
         _json_texts(s["sources"]))  # event ids: plain JSON text reads back exactly
        for s in gap_spells(row, years, policies)
    ]


def due_records(person_id: str, dues: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    out = []
    for seq, due in enumerate(dues):
        grid = due["grid_code"]
        out.append((person_id, seq, due["kind"], due["scheme"], due["period"], due["region_code"], grid,
                    grid[:9] if grid else None, due["employer_id"], due["due_fen"], due["due_date"],
                    due["collectable_until"], due["enrolled_until"], settled_from(due), dumps_row(due)))
    return out


def _int_columns(table: Table) -> tuple[tuple[int, str, int], ...]:
    return tuple((i, c.name, 1 << _INT_BITS[c.kind]) for i, c in enumerate(table.columns) if c.kind in _INT_BITS)


_CHECKED = (("years", YEARS, _int_columns(YEARS)), ("spells", SPELLS, _int_columns(SPELLS)),
            ("dues", DUES, _int_columns(DUES)))


def check_ranges(views: PersonViews) -> None:
    """Raises ``VIEW_VALUE_OUT_OF_RANGE`` when a value of an integer column is not a whole number that fits it.

    Checked before the database sees the rows: PostgreSQL would refuse the whole batch
    (``invalid input syntax for type bigint``), and SQLite would store a float as REAL.
    A few comparisons per record, next to the derivation's work.
    """
    version = views.history[0]
    if type(version) is not int or not 0 <= version < 1 << 63:
        raise ViewValueError("VIEW_VALUE_OUT_OF_RANGE", f"view_rows.version {str(version)[:40]} does not fit bigint")
    for attribute, table, columns in _CHECKED:
        for record in getattr(views, attribute):
            for i, name, limit in columns:
                v = record[i]
                if v is not None and (not isinstance(v, int) or not -limit <= v < limit):
                    raise ViewValueError("VIEW_VALUE_OUT_OF_RANGE", (
                        f"{table.name}.{name} = {str(v)[:40]} is not a whole number the column holds "
                        f"(at most 2^{limit.bit_length() - 1}-1)"))


def person_views(
    person_id: str,
    row: dict[str, Any],
    dues: list[dict[str, Any]],
    *,
    years: Sequence[int],
    policies: Any,
    masked_id: str | None = None,
    stored: PersonHistory | None = None,
    shape: tuple[int, int, int] | None = None,
) -> PersonViews:
    """Encode a person's history and compute the query tables' records from the derived row and due rows.

    ``row`` is the entitlement row (``{"history", "summary", "years", ...}``), ``dues``
    the arrears row's due rows; pure CPU work, done before a write. ``stored`` and
    ``shape``: the history the store holds and its sizes (see :func:`history_record`):
    then only the history's changes are appended, unless the tail is due for compaction.
    """
    history, changes, after = history_record(row["history"], stored, shape)
    return PersonViews(person_id, history, year_records(person_id, row), spell_records(person_id, row, years, policies),
                       due_records(person_id, dues), masked_id, changes=changes, shape=after)


# --------------------------------------------------------------------------- the interface
class ViewStore(SqlStore):
    """Rows, derived tables and positions of the projections, on one SQL database.

    The database and its dialect are an :class:`infra.sql_store.SqlDatabase`;
    subclasses open it (and swap rebuilt tables in, which differs per dialect).
    """

    def __init__(self, db: SqlDatabase, suffix: str = "") -> None:
        super().__init__(db)
        self.suffix = suffix

    # ---------------------------------------------------------------- names and setup
    def name(self, table: Table) -> str:
        return table.name + self.suffix

    def _create_sql(self, table: Table) -> str:
        return self.db.table_sql(self.name(table), table.columns, table.key, f"{self.name(table)}_pkey")

    def _index_name(self, table: Table, columns: tuple[str, ...]) -> str:
        # Numbered, not named after the columns: PostgreSQL cuts names at 63 characters.
        return f"ix_{self.name(table)}_{table.indexes.index(columns) + 1}"

    def _index_sql(self, table: Table, columns: tuple[str, ...]) -> str:
        return self.db.index_sql(self._index_name(table, columns), self.name(table), columns)

    def create(self, *, indexes: bool = True) -> None:
        """Create the tables (and their query indexes) if they do not exist; new tables get the layout version."""
        with self.transaction():
            for table in TABLES:
                self._exec(self._create_sql(table))
                if indexes:
                    for columns in table.indexes:
                        self._exec(self._index_sql(table, columns))
            if not self._fetch(f"SELECT 1 FROM {self.name(ROWS)} LIMIT 1"):
                self._set_meta("layout", LAYOUT_VERSION)

    # ---------------------------------------------------------------- what the views were built with
    def meta(self) -> dict[str, str]:
        return dict(self._fetch(f"SELECT key, value FROM {self.name(META)}"))

    def _set_meta(self, key: str, value: str) -> None:
        self._exec(f"DELETE FROM {self.name(META)} WHERE key = {self.param}", (key,))
        self._exec(f"INSERT INTO {self.name(META)} (key, value) VALUES ({self.param}, {self.param})", (key, value))

    def check_layout(self) -> None:
        """Raises ``VIEWS_OUTDATED`` when the tables were made by another version of this module."""
        layout = self.meta().get("layout")
        if layout != LAYOUT_VERSION:
            raise StoreError("VIEWS_OUTDATED", (
                f"the views were built with table layout {layout or 'unknown'}, this version reads layout "
                f"{LAYOUT_VERSION}: rebuild them (ledger project --rebuild)"))

    def check_policies(self, fingerprint: str) -> None:
        """Raises ``VIEWS_OUTDATED`` when the views were built with other policy tables; records them the first time.

        Every derived figure depends on the policy book: adding or correcting a table
        changes rows of people no new event touches, so the views must be rebuilt.
        """
        self.check_layout()
        with self.transaction():
            built_with = self.meta().get("policies")
            if built_with is None:
                self._set_meta("policies", fingerprint)
            elif built_with != fingerprint:
                raise StoreError("VIEWS_OUTDATED", (
                    f"the views were built with other policy tables ({built_with}; now {fingerprint}): "
                    "rebuild them (ledger project --rebuild)"))

    # ---------------------------------------------------------------- statements (infra.sql_store)
    def _insert(self, table: Table, records: Sequence[tuple[Any, ...]]) -> None:
        self.db.insert(self.name(table), table.column_names, records)

    def _delete_persons(self, table: Table, person_ids: Sequence[str], projection: str | None = None) -> None:
        if projection is None:
            self.db.exec_in(f"DELETE FROM {self.name(table)} WHERE person_id {{in}}", person_ids)
        else:
            self.db.exec_in(f"DELETE FROM {self.name(table)} WHERE projection = {self.param} AND person_id {{in}}",
                            person_ids, (projection,))

    def _select_persons(self, statement: str, person_ids: Sequence[str], params: Sequence[Any] = ()) -> list[tuple]:
        """``statement`` ends with ``person_id IN {ids}``; run it for the given ids."""
        return self.db.fetch_in(statement.replace("IN {ids}", "{in}"), person_ids, params)

    def _date(self, value: Any) -> date | None:
        return self.db.read_date(value)

    # ---------------------------------------------------------------- positions
    def positions(self, source: str, projections: Sequence[str]) -> dict[int, int | None]:
        """Per partition, the position every one of ``projections`` has reached (the lowest; None: not all have one)."""
        rows = self._fetch(
            f"SELECT projection, source_partition, position FROM {self.name(POSITIONS)} WHERE source = {self.param}",
            (source,))
        per: dict[int, dict[str, int]] = {}
        for projection, partition, position in rows:
            if projection in projections:
                per.setdefault(int(partition), {})[projection] = int(position)
        return {p: (min(v.values()) if len(v) == len(projections) else None) for p, v in per.items()}

    def all_positions(self) -> list[tuple[str, str, int, int]]:
        """(projection, source, partition, position) of every position stored, ordered."""
        return [(a, b, int(c), int(d)) for a, b, c, d in self._fetch(
            f"SELECT projection, source, source_partition, position FROM {self.name(POSITIONS)} "
            "ORDER BY projection, source, source_partition")]

    def _move_positions(self, source: str, projections: Sequence[str], moves: Mapping[int, tuple[int | None, int]],
                        now: Any) -> None:
        """Move each partition's position from where the runner found it to the batch's end (compare and set).

        The runner started after ``expected`` (the lowest position of its projections);
        if that is no longer what the store holds, another runner wrote in between.
        A projection that was already further (its rows saw these events as duplicates)
        keeps its position.
        """
        current: dict[tuple[str, int], int] = {
            (projection, int(partition)): int(position)
            for projection, partition, position in self._fetch(
                f"SELECT projection, source_partition, position FROM {self.name(POSITIONS)} WHERE source = {self.param}",
                (source,))
        }
        for partition, (expected, new) in sorted(moves.items()):
            olds = [current.get((projection, partition)) for projection in projections]
            found = None if None in olds else min(olds)  # type: ignore[type-var]
            if found != expected:
                raise StoreError("POSITION_MOVED", (
                    f"{source} partition {partition} was at {expected} when this batch was read and is now at "
                    f"{found}: another projection runner is writing to this store; run one per store"))
            for projection, old in zip(projections, olds):
                if old is None or new > old:
                    key = {"projection": projection, "source": source, "source_partition": partition}
                    if not self.db.move_position(self.name(POSITIONS), key, old, new, now):
                        raise StoreError("POSITION_MOVED", (
                            f"{projection} {source} partition {partition} moved while this batch was written: "
                            "another projection runner is writing to this store; run one per store"))

    # ---------------------------------------------------------------- rows
    def load_histories(self, person_ids: Sequence[str], *,
                       unreadable: dict[str, Exception] | None = None) -> dict[str, PersonHistory]:
        """The stored histories of these persons (absent persons are left out).

        A stored history that does not read back (``HISTORY_UNREADABLE``: a row written by
        hand, say) raises, or, given ``unreadable``, is put there (person -> error) and left
        out: the projection runner quarantines that person alone.
        """
        return {pid: stored.history for pid, stored in self.load_stored(person_ids, unreadable=unreadable).items()}

    def load_stored(self, person_ids: Sequence[str], *,
                    unreadable: dict[str, Exception] | None = None) -> dict[str, StoredHistory]:
        """:meth:`load_histories` with the sizes of each history's base and tail (what a writer decides on)."""
        if not person_ids:
            return {}
        rows = self._select_persons(
            f"SELECT person_id, state FROM {self.name(ROWS)} WHERE projection = {self.param} AND person_id IN {{ids}}",
            person_ids, (HISTORY,))
        tails: dict[str, list[tuple[int, str]]] = {}
        for pid, version, changes in self._select_persons(
                f"SELECT person_id, version, changes FROM {self.name(TAIL)} WHERE person_id IN {{ids}}", person_ids):
            tails.setdefault(pid, []).append((int(version), changes))
        out = {}
        for pid, state in rows:
            try:
                stored = StoredHistory(history_from_plain(loads_row(state)), len(state))
                for _, changes in sorted(tails.get(pid, ())):
                    apply_changes(stored.history, loads_row(changes))
                    stored.tail_rows += 1
                    stored.tail_bytes += len(changes)
            except (ProjectionError, ValueError) as error:  # (a JSON syntax error is a ValueError)
                if unreadable is None:
                    raise
                unreadable[pid] = error
                continue
            out[pid] = stored
        return out

    def history_versions(self, person_ids: Sequence[str]) -> dict[str, int]:
        """The version of each of these persons' stored histories (absent persons left out); no history is read."""
        if not person_ids:
            return {}
        rows = self._select_persons(
            f"SELECT person_id, version FROM {self.name(ROWS)} WHERE projection = {self.param} AND person_id IN {{ids}}",
            person_ids, (HISTORY,))
        out = {pid: int(version) for pid, version in rows}
        for pid, version in self._select_persons(
                f"SELECT person_id, MAX(version) FROM {self.name(TAIL)} WHERE person_id IN {{ids}} GROUP BY person_id",
                person_ids):
            if pid in out:  # (a tail without its base is nobody's history)
                out[pid] = max(out[pid], int(version))
        return out

    def history(self, person_id: str) -> PersonHistory | None:
        return self.load_histories([person_id]).get(person_id)

    def write(
        self,
        changes: Sequence[PersonViews],
        *,
        source: str,
        projections: Sequence[str],
        positions: Mapping[int, tuple[int | None, int]],
        replace: bool = True,
        quarantine: Sequence[Quarantined] = (),
        release: Sequence[str] = (),
    ) -> None:
        """Store the batch's changed persons and move the positions, in ONE transaction.

        ``positions``: partition -> (position the batch started after, position it ends at).
        A changed person's history row and query-table records replace theirs.
        ``replace=False``: the store holds no row of these persons yet (a rebuild's bulk
        load writes each person once into empty tables), so nothing is deleted first.
        ``quarantine``: persons whose rows could not be derived: their rows are removed and
        they are listed in ``view_quarantine``; ``release``: persons leaving that list
        (their new rows are among ``changes``).
        """
        now = self._now()
        with self.transaction():
            if changes:
                self._write_rows(changes, replace)
            if quarantine:
                pids = [q.person_id for q in quarantine]
                if replace:
                    self._delete_persons(ROWS, pids, HISTORY)
                    self._delete_persons(TAIL, pids)
                    for table in PERSON_TABLES:
                        self._delete_persons(table, pids)
                self._delete_persons(QUARANTINE, pids)
                self._insert(QUARANTINE, [q.record(now) for q in quarantine])
            if release:
                self._delete_persons(QUARANTINE, list(release))
            self._move_positions(source, projections, positions, now)

    def _write_rows(self, changes: Sequence[PersonViews], replace: bool) -> None:
        if replace:
            known = [c for c in changes if c.previous is not None]
            if known:
                self._write_differences(known)
                changes = [c for c in changes if c.previous is None]
                if not changes:
                    return
        pids = [c.person_id for c in changes]
        bases = [c for c in changes if c.history[1] is not None]
        if replace:
            # A person whose history is appended to keeps their base and tail rows (the changes follow them).
            based = pids if len(bases) == len(changes) else [c.person_id for c in bases]
            self._delete_persons(ROWS, based, HISTORY)
            self._delete_persons(TAIL, based)
            for table in PERSON_TABLES:
                self._delete_persons(table, pids)
        self._insert(ROWS, [(HISTORY, c.person_id, *c.history) for c in bases])
        self._insert(TAIL, [(c.person_id, c.history[0], c.changes) for c in changes if c.history[1] is None])
        self._insert(YEARS, [r for c in changes for r in c.years])
        self._insert(SPELLS, [r for c in changes for r in c.spells])
        self._insert(DUES, [r for c in changes for r in c.dues])
        masked = [(c.person_id, c.masked_id) for c in changes if c.masked_id is not None]
        if masked:
            if replace:
                self._delete_persons(PERSONS, [pid for pid, _ in masked])
            self._insert(PERSONS, masked)

    def _write_differences(self, changes: Sequence[PersonViews]) -> None:
        """Persons whose stored records are known (``previous``): upsert the changed records, delete the vanished.

        An unchanged record is not written at all; a record whose key is gone is deleted by
        its key. What a payment for one coverage year changes is then a handful of rows,
        not the person's every row in four tables (issue 19).
        """
        bases = [c for c in changes if c.history[1] is not None]
        if bases:
            self._upsert(ROWS, [(HISTORY, c.person_id, *c.history) for c in bases])
            self._delete_persons(TAIL, [c.person_id for c in bases])  # compacted: the tail is in the base now
        self._insert(TAIL, [(c.person_id, c.history[0], c.changes) for c in changes if c.history[1] is None])
        for attribute, table in (("years", YEARS), ("spells", SPELLS), ("dues", DUES)):
            width = len(table.key)
            upserts: list[tuple[Any, ...]] = []
            vanished: list[tuple[Any, ...]] = []
            for c in changes:
                before = {r[:width]: r for r in getattr(c.previous, attribute)}
                for r in getattr(c, attribute):
                    if before.pop(r[:width], None) != r:
                        upserts.append(r)
                vanished += before  # the keys left: no record of the new views has them
            if vanished:
                self._delete_keys(table, vanished)
            if upserts:
                self._upsert(table, upserts)
        masked = [(c.person_id, c.masked_id) for c in changes
                  if c.masked_id is not None and c.masked_id != c.previous.masked_id]  # type: ignore[union-attr]
        if masked:
            self._upsert(PERSONS, masked)

    def _upsert(self, table: Table, records: Sequence[tuple[Any, ...]]) -> None:
        """Insert these records, or update the ones whose key is already there (``ON CONFLICT ... DO UPDATE``)."""
        self.db.upsert(self.name(table), table.column_names, table.key, records)

    def _delete_keys(self, table: Table, keys: Sequence[tuple[Any, ...]]) -> None:
        """Delete the records with these keys (tuples of the table's key columns, in order)."""
        p = self.param
        self.db.many(f"DELETE FROM {self.name(table)} WHERE {' AND '.join(f'{c} = {p}' for c in table.key)}", keys)

    # ---------------------------------------------------------------- quarantine
    def refused(self, error: BaseException) -> bool:
        """Whether ``error`` is the database (or its driver) refusing the rows themselves, not failing to work.

        A refused row quarantines its person; anything else (the server away, a lock
        timeout, a second runner) fails the batch as before, to be retried whole.
        """
        return (isinstance(error, (OverflowError, TypeError, ValueError)) and not isinstance(error, DomainError)
                or isinstance(error, self.db.refusals()))

    def find_refused(self, changes: Sequence[PersonViews], *, replace: bool = True) -> dict[str, BaseException]:
        """The persons whose rows the database refuses, each tried alone (a savepoint each); nothing is kept.

        Called only after a whole batch was refused, so the happy path pays nothing for it.
        """
        out: dict[str, BaseException] = {}
        with self.db.trial():
            for change in changes:
                try:
                    with self.db.savepoint():
                        self._write_rows([change], replace)
                except Exception as error:  # noqa: BLE001 - sorted just below
                    if not self.refused(error):
                        raise
                    out[change.person_id] = error
        return out

    def quarantined(self, person_ids: Sequence[str] | None = None) -> list[Quarantined]:
        """The quarantined persons (all, or those of ``person_ids``), longest quarantined first."""
        cols = ", ".join(QUARANTINE.column_names)
        if person_ids is None:
            rows = self._fetch(f"SELECT {cols} FROM {self.name(QUARANTINE)} ORDER BY quarantined_at, person_id")
        elif not person_ids:
            return []
        else:
            rows = self._select_persons(f"SELECT {cols} FROM {self.name(QUARANTINE)} WHERE person_id IN {{ids}}",
                                        person_ids)
        out = []
        for (pid, masked, code, message, event_id, event_type, version, source, position, since) in rows:
            out.append(Quarantined(pid, code, message, event_id, event_type, None if version is None else int(version),
                                   source, None if position is None else int(position), masked, self._instant(since)))
        return out

    def quarantined_ids(self) -> set[str]:
        return {pid for (pid,) in self._fetch(f"SELECT person_id FROM {self.name(QUARANTINE)}")}

    def _instant(self, value: Any) -> datetime | None:
        return self.db.read_instant(value)

    @staticmethod
    def _now() -> datetime:
        return datetime.now(timezone.utc)

    # ---------------------------------------------------------------- queries (primitives for projections.queries)
    def masked_ids(self, person_ids: Sequence[str]) -> dict[str, str]:
        if not person_ids:
            return {}
        rows = self._select_persons(f"SELECT person_id, masked_id FROM {self.name(PERSONS)} WHERE person_id IN {{ids}}",
                                    person_ids)
        return {pid: masked for pid, masked in rows if masked}

    def _spell(self, record: tuple[Any, ...]) -> dict[str, Any]:
        names = SPELLS.column_names + ("masked_id",)
        spell = dict(zip(names, record))
        for key in ("valid_from", "valid_until"):
            spell[key] = self._date(spell[key])
        for key in ("covered", "subsidised"):
            spell[key] = bool(spell[key])
        spell["sources"] = json.loads(spell["sources"])
        spell["label"] = REASON_LABELS[spell["reason"]] if spell["reason"] else None  # not stored: fixed per reason
        return spell

    def spells_on(self, year: int, day: date, *, grid: str | None = None, township: str | None = None,
                  region: str | None = None, covered: bool | None = None) -> list[dict[str, Any]]:
        """The spells in force on ``day`` of coverage year ``year`` (with each person's masked ID), unordered."""
        p = self.param
        where = [f"s.year = {p}", f"s.valid_from <= {p}", f"s.valid_until >= {p}"]
        params: list[Any] = [year, self._to_db(day), self._to_db(day)]
        self.db.equal((("s.grid_code", grid), ("s.township_code", township), ("s.region_code", region),
                       ("s.covered", covered)), where, params)
        cols = ", ".join(f"s.{c}" for c in SPELLS.column_names)
        rows = self._fetch(
            f"SELECT {cols}, m.masked_id FROM {self.name(SPELLS)} s LEFT JOIN {self.name(PERSONS)} m "
            f"ON m.person_id = s.person_id WHERE {' AND '.join(where)}", params)
        return [self._spell(r) for r in rows]

    def spell_counts(self, year: int, day: date, *, region: str | None = None) -> list[dict[str, Any]]:
        """Per (grid, covered, subsidised, reason): how many persons' spells are in force on ``day``."""
        p = self.param
        where = [f"year = {p}", f"valid_from <= {p}", f"valid_until >= {p}"]
        params: list[Any] = [year, self._to_db(day), self._to_db(day)]
        if region is not None:
            where.append(f"region_code = {p}")
            params.append(region)
        rows = self._fetch(
            f"SELECT grid_code, covered, subsidised, reason, COUNT(*) FROM {self.name(SPELLS)} "
            f"WHERE {' AND '.join(where)} GROUP BY grid_code, covered, subsidised, reason", params)
        return [{"grid_code": g, "covered": bool(c), "subsidised": bool(s), "reason": r, "count": int(n)}
                for g, c, s, r, n in rows]

    def place_known(self, *, grid: str | None = None, township: str | None = None, region: str | None = None) -> bool:
        """True when some person of the views lives or lived in that place (in any coverage year)."""
        column, value = next((c, v) for c, v in (("grid_code", grid), ("township_code", township),
                                                  ("region_code", region)) if v is not None)
        for table in (SPELLS, YEARS, DUES):
            if self._fetch(f"SELECT 1 FROM {self.name(table)} WHERE {column} = {self.param} LIMIT 1", (value,)):
                return True
        return False

    def open_dues(self, as_of: date, *, region: str | None = None, grid: str | None = None,
                  township: str | None = None) -> list[dict[str, Any]]:
        """Due rows that can be in arrears on ``as_of`` (past due, still collectable, still enrolled, not settled,
        or an employer row settled after its due date: its late fee may still be owed).

        Every row :func:`projections.arrears.arrears_list` can list for that day, and
        few others (see :func:`settled_from`; whether a late fee is still owed is the
        domain's answer, asked of the rows selected); returns ``[{"person_id", "seq", "due"}]``.
        """
        p = self.param
        day = self._to_db(as_of)
        where = [f"due_date < {p}", f"(collectable_until IS NULL OR collectable_until >= {p})",
                 f"(enrolled_until IS NULL OR enrolled_until >= {p})",
                 f"(settled_from IS NULL OR settled_from > {p} OR (kind = 'EMPLOYER' AND settled_from > due_date))"]
        params: list[Any] = [day, day, day, day]
        self.db.equal((("region_code", region), ("grid_code", grid), ("township_code", township)), where, params)
        rows = self._fetch(f"SELECT person_id, seq, due FROM {self.name(DUES)} WHERE {' AND '.join(where)}", params)
        return [{"person_id": pid, "seq": int(seq), "due": loads_row(due)} for pid, seq, due in rows]

    def resident_dues(self, year: int, *, region: str, township: str | None = None) -> list[dict[str, Any]]:
        """Every resident due row of coverage ``year`` in the region (or township), settled or not: what was
        assessed and the payments' steps (the county dashboard's collection progress)."""
        where, params = ["kind = 'RESIDENT'", f"period = {self.param}"], [str(year)]
        self.db.equal((("region_code", region), ("township_code", township)), where, params)
        rows = self._fetch(f"SELECT person_id, due FROM {self.name(DUES)} WHERE {' AND '.join(where)}", params)
        return [{"person_id": pid, "due": loads_row(due)} for pid, due in rows]

    def counts(self) -> dict[str, int]:
        """Rows per table (for progress messages and tests)."""
        return {t.name: int(self._fetch(f"SELECT COUNT(*) FROM {self.name(t)}")[0][0]) for t in TABLES}

    def dump(self, *, raw: bool = False) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table in key order (timestamps left out): to compare two stores row by row.

        The histories are compared folded: ``view_rows`` holds each person's whole history
        (base + tail, written as one base would be) and ``view_history_tail`` is left out,
        since where a history's base ends depends on when it was last compacted (an
        incremental store and a rebuild of the same events differ there, and only
        there). ``raw``: the tables as stored.
        """
        out = {}
        for table in TABLES:
            if table is TAIL and not raw:
                continue
            columns = [c.name for c in table.columns if c.kind != "timestamp"]
            rows = self._fetch(f"SELECT {', '.join(columns)} FROM {self.name(table)} ORDER BY {', '.join(table.key)}")
            out[table.name] = [tuple(self._plain(v) for v in r) for r in rows]
        if not raw and self._fetch(f"SELECT 1 FROM {self.name(TAIL)} LIMIT 1"):
            pids = [r[1] for r in out[ROWS.name] if r[0] == HISTORY]
            folded = self.load_histories(pids)
            out[ROWS.name] = [(projection, pid, version, state) if projection != HISTORY or pid not in folded else
                              (projection, pid, folded[pid].version, dumps_row(history_to_plain(folded[pid])))
                              for projection, pid, version, state in out[ROWS.name]]
        return out

    @staticmethod
    def _plain(value: Any) -> Any:
        return value.isoformat() if isinstance(value, date) else value  # PostgreSQL's dates as SQLite keeps them

    # ---------------------------------------------------------------- rebuild
    def rebuilding(self, *, fresh: bool = True) -> ViewStore:
        """A store on fresh, empty ``_rebuild`` tables (leftovers of an earlier rebuild are dropped).

        Its query indexes are built by :meth:`swap`, after the rows are in. With
        ``fresh=False``: the ``_rebuild`` tables as they are (a worker of the rebuild).
        """
        shadow = self._sibling(REBUILD_SUFFIX)
        if not fresh:
            return shadow
        with shadow.transaction():
            for table in TABLES:
                shadow._exec(f"DROP TABLE IF EXISTS {shadow.name(table)}")
        shadow.create(indexes=False)
        return shadow

    def _sibling(self, suffix: str) -> ViewStore:
        """This store on the tables with ``suffix`` (the same database: one connection, one lock)."""
        shadow = copy.copy(self)
        shadow.suffix = suffix
        return shadow

    def _finish(self, shadow: ViewStore) -> None:
        """Make the rebuilt tables ready to go live: their query indexes (faster built once, after the rows)."""
        for table in TABLES:
            for columns in table.indexes:
                self._exec(shadow._index_sql(table, columns))

    def swap(self, shadow: ViewStore) -> None:
        """Make the rebuilt tables the live ones, in one transaction (readers see the old or the new views).

        The rebuilt tables are finished first (:meth:`_finish`: their query indexes,
        faster built once than kept up to date row by row), then the live tables are
        dropped and the rebuilt ones, with their indexes, take their names.
        """
        if shadow.suffix == self.suffix:
            raise StoreError("REBUILD_IS_LIVE", "cannot swap a store with itself")
        with self.transaction():
            self._finish(shadow)
            for table in TABLES:
                self._exec(f"DROP TABLE IF EXISTS {self.name(table)}")
                self._exec(f"ALTER TABLE {shadow.name(table)} RENAME TO {self.name(table)}")
                self._exec(f"ALTER INDEX {shadow.name(table)}_pkey RENAME TO {self.name(table)}_pkey")
                for columns in table.indexes:
                    self._exec(f"ALTER INDEX {shadow._index_name(table, columns)} "
                               f"RENAME TO {self._index_name(table, columns)}")


# --------------------------------------------------------------------------- SQLite
class SQLiteViewStore(ViewStore):
    """The embedded view store: one SQLite file (``var/views.sqlite`` by default), or ``:memory:``."""

    def __init__(self, path: str | Path = ":memory:", *, suffix: str = "", connection: sqlite3.Connection | None = None,
                 create: bool = True) -> None:
        super().__init__(SQLiteDatabase(path, connection=connection), suffix)
        self.path = str(path)
        if create:
            self.create()

    def swap(self, shadow: ViewStore) -> None:
        # SQLite cannot rename an index: drop the live tables (and their indexes), rename the
        # rebuilt ones, then index them under the live names. WAL readers keep reading the
        # old tables until the commit.
        if shadow.suffix == self.suffix:
            raise StoreError("REBUILD_IS_LIVE", "cannot swap a store with itself")
        with self.transaction():
            for table in TABLES:
                self._exec(f"DROP TABLE IF EXISTS {self.name(table)}")
                self._exec(f"ALTER TABLE {shadow.name(table)} RENAME TO {self.name(table)}")
                for columns in table.indexes:
                    self._exec(self._index_sql(table, columns))


# --------------------------------------------------------------------------- PostgreSQL
class PostgresViewStore(ViewStore):
    """The views in PostgreSQL (psycopg 3), in the schema the settings name (``POSTGRES_SCHEMA``)."""

    db: PostgresDatabase
    # A view row is a few kB of JSON, compressed when stored: lz4 takes a third less
    # of the server's time than the default pglz for COPY (measured on the rows of a
    # rebuild; ~20% more space). Reading either is transparent. Servers without lz4
    # (before PostgreSQL 14, or built without it) keep their default.
    session = ("SET default_toast_compression = 'lz4'",)

    def __init__(self, settings: Mapping[str, str], *, suffix: str = "", connection: Any = None,
                 create: bool = True) -> None:
        super().__init__(PostgresDatabase(settings, connection=connection, session=self.session), suffix)
        self.settings = self.db.settings
        self.schema = self.db.schema
        if create:
            self.create()

    #: Connections finishing the rebuilt tables side by side (see :meth:`swap`), and the sort memory of each.
    finish_connections = 2
    finish_work_mem = "256MB"

    def swap(self, shadow: ViewStore) -> None:
        """Finish the rebuilt tables side by side (:meth:`_finish_table`), then swap them in (one transaction).

        The rebuilt tables are invisible to readers until the swap's renames, so they
        are finished before it, each in a transaction of its own, on
        ``finish_connections`` connections at once (largest tables first): the swap's
        transaction itself only drops and renames. A failure leaves the live views
        as they were.
        """
        if shadow.suffix == self.suffix:
            raise StoreError("REBUILD_IS_LIVE", "cannot swap a store with itself")
        sizes = dict(self._fetch("SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c WHERE "
                                 "c.relnamespace = to_regnamespace(current_schema())::oid AND c.relkind = 'r'"))
        tables = sorted(TABLES, key=lambda t: -int(sizes.get(shadow.name(t), 0)))
        with ThreadPoolExecutor(max_workers=self.finish_connections, thread_name_prefix="rebuild-finish") as pool:
            for done in [pool.submit(self._finish_table, shadow, table) for table in tables]:
                done.result()
        super().swap(shadow)

    def _finish(self, shadow: ViewStore) -> None:
        """Nothing left to do in the swap's transaction: :meth:`swap` finished the tables before it."""

    def _finish_table(self, shadow: ViewStore, table: Table) -> None:
        """Order, index and analyse one rebuilt table, on a connection of its own.

        A table with a ``cluster`` index gets that index first and its rows put in its
        order (``CLUSTER``, which rebuilds the indexes the table has: so the others come
        after it); then its other query indexes; then statistics for the planner. The
        new views go live ordered and analysed.

        (Tried: filling UNLOGGED tables and ``SET LOGGED`` here. On the 20,000-resident
        county's rows it cost as much of the server's time as logging the inserts, or
        more (view_rows 180-195 ms against 110-217; spells with its CLUSTER 651-749
        against 562-718), and moved that work into this phase, after the workers.)
        """
        conn = self.db.connect()
        try:
            conn.execute(f"SET maintenance_work_mem = '{self.finish_work_mem}'")
            name = shadow.name(table)
            if table.cluster is not None:
                conn.execute(shadow._index_sql(table, table.cluster))
                conn.execute(f"CLUSTER {name} USING {shadow._index_name(table, table.cluster)}")
            for columns in table.indexes:
                if columns != table.cluster:
                    conn.execute(shadow._index_sql(table, columns))
            conn.execute(f"ANALYZE {name}")
        finally:
            conn.close()


__all__ = [
    "ARREARS",
    "LAYOUT_VERSION",
    "ENTITLEMENT",
    "HISTORY",
    "TABLES",
    "PersonViews",
    "StoredHistory",
    "TAIL",
    "PostgresViewStore",
    "QUARANTINE",
    "Quarantined",
    "ViewValueError",
    "check_ranges",
    "SQLiteViewStore",
    "StoreError",
    "ViewStore",
    "masked_id_of",
    "person_views",
]
