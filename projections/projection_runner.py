"""The projection runner: events from a source, folded by the pure projections, written to a view store.

:class:`ProjectionRunner` keeps the entitlement view (待遇资格) and the arrears view
(欠费) of one :class:`~projections.store.ViewStore` up to date from one
:class:`~projections.sources.Source` (the local notification log, or Kafka
``ledger.events.v1``):

1. read the stored position of each partition, and the source's end;
2. pull a batch (``batch_size`` positions), group its person events per person;
3. load those persons' stored histories, fold the events in, derive the entitlement
   row (:meth:`EntitlementProjection.row <projections.entitlement.EntitlementProjection.row>`,
   one derivation per person per batch) and the arrears view's due rows from the same
   figures, encode what the events changed in the history (appended to its stored base,
   which is written whole again only once the appended changes outgrow it:
   :func:`projections.store.history_record`) and compute the query tables (years, gap
   spells, dues);
4. write histories, query tables and the new positions in ONE transaction, then (Kafka)
   commit the offsets to the consumer group as a convenience.

Incremental by construction (issue 19). A runner remembers, for up to
``cache_persons`` persons (least recently used out), what it last wrote for each: the
folded history, the entitlement row and the view records. A batch asks the store
for the stored versions of its persons (one query, no history read); a person
remembered at that version is not read again, only the resident years their events
touch are derived again (:func:`ledger.domain.coverage.years_touched`, the rule's one
home), the gap spells of the other years are kept, and the store upserts only the
records that changed (``PersonViews.previous``). A miss, a restart or another writer
in between (a rebuild, a retry) reads the store as before. The remembered entries are
taken out while their history is folded in place and put back only after the write
commits, so a failed batch leaves nothing half-changed in memory.

``run_once`` loops until the end seen at the start is reached; ``run_forever``
repeats it until a stop flag is set. A re-delivered event is a duplicate for the pure
fold (its version is not above the row's), so the row comes back unchanged and is
not written again: re-reading after a crash changes nothing.

:func:`rebuild` builds the views from the beginning into fresh tables and swaps them
in. Its first phase (:meth:`ProjectionRunner.bulk`) collects each person's whole
history before folding it, so every person is derived once rather than once per
batch. From PostgreSQL's log the history comes person after person (a range of the
events table's primary key), so a pass folds as it reads and holds little; from
another source it is read in passes over shards of persons to bound memory. Either
way the passes (shards of the persons' ids) can run in worker processes. Then it catches up batch by batch like
``run_once`` and swaps. The result is the rows an incremental build gives (tests
compare them table by table). The rebuilt tables get their positions at the end of
the first phase, not with each chunk of rows: they are invisible until the swap,
which makes rows and positions live in one transaction.

Quarantine (隔离). One person's data must not stop everyone's views. When deriving a
person's rows fails (an exception in the fold or the derivation, a value that does not
fit its column: ``VIEW_DERIVATION_FAILED``, ``VIEW_VALUE_OUT_OF_RANGE``) or the database
refuses them (``VIEW_ROWS_REFUSED``), that person is quarantined: their rows are removed
from every view table (lists never show half-updated figures; a read of the person
answers ``PERSON_QUARANTINED``) and a row of ``view_quarantine`` names the reason and the
event that caused it. Every other person's rows, and the positions, are written as
usual; later events of a quarantined person are left to the retry. A batch is written
as one COPY / executemany per table; only when the database refuses a batch are its
persons tried one by one (a savepoint each) to find the culprits, so the happy path
pays nothing. Each ``run_once`` of a new runner (every ``ledger project``), and a
following runner every ``retry_every`` seconds, derives the quarantined persons again
from all their stored events (:meth:`ProjectionRunner.retry_quarantined`): whoever
derives and stores cleanly leaves the quarantine (log line ``views_person_released``).
A gap or a mismatch in the event stream (``EVENT_GAP``, ``EVENT_MISMATCH``) is not one
person's data: it still stops the batch, as before.
"""
from __future__ import annotations

import contextlib
import gc
import hashlib
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from dataclasses import replace as with_changes
from typing import Any

from ledger.domain.errors import DomainError
from infra.gc_tuning import few_collections
from ledger.log import get_logger

from ledger.domain.arrears import due_rows
from ledger.domain.coverage import years_touched
from projections.entitlement import EntitlementProjection
from ledger.domain.history import PersonHistory, event_type, fold_many, person_key, ProjectionError, value
from projections.progress import ProgressBar
from projections.sources import Batch, Source
from projections.store import (
    ARREARS,
    ENTITLEMENT,
    PersonViews,
    Quarantined,
    ViewStore,
    ViewValueError,
    check_ranges,
    masked_id_of,
    person_views,
)

PROJECTIONS = (ENTITLEMENT, ARREARS)
#: Runs the passes of a bulk load elsewhere: (until, shards, chunk) -> what they did.
ShardRunner = Callable[[dict[int, int], int, int], "RunResult"]
#: A rebuild reads the history in as many passes as it takes to hold at most this many positions' events at once
#: (a source that gives the history person by person needs one pass, see ``reads_by_person``).
BULK_POSITIONS_PER_SHARD = 1_000_000
#: Errors of the event stream itself (events missing, two events claiming one version): not one person's data,
#: so they stop the batch (nothing written) instead of quarantining the person.
STREAM_ERRORS = frozenset({"EVENT_GAP", "EVENT_MISMATCH"})
#: A following runner (``ledger project --follow``, the API's catch-up) retries its quarantined persons this often
#: (seconds); a new runner (every ``ledger project``) retries them on its first run.
RETRY_QUARANTINED_EVERY = 300.0
#: How many persons' last written views an incremental runner keeps in memory (least recently used ones go first):
#: a person found there, at the version the store holds, has only their changed records written.
CACHE_PERSONS = 50_000
#: Reads a person's stored events (all of them, in order): what a quarantined person is derived again from.
PersonEvents = Callable[[str], Iterable[Any]]
_ID_NUMBER = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?![\dXx])")


@dataclass
class _Known:
    """What the store holds for one person, remembered by the runner that wrote it."""

    views: PersonViews  # the rows written (``previous`` None)
    history: Any  # the folded history they were derived from (version ``views.history[0]``)
    row: dict[str, Any]  # the entitlement row derived from it (ledger.domain.coverage.derive's answer)


def _masked_text(text: str) -> str:
    """An error message without a full ID number in it (quarantine reasons are shown to clerks and logged),
    nor a character a text column refuses (PostgreSQL: NUL)."""
    text = "".join(c if c.isprintable() else " " for c in text[:2000])
    return _ID_NUMBER.sub(lambda m: m.group(1) + "********" + m.group(2), text)[:500]


class PolicyCache:
    """A policy book that answers each (region, year) once: the book never changes after loading.

    The pure projections ask the book for the same few tables thousands of times per
    batch; :meth:`PolicyBook.get <ledger.policy.PolicyBook.get>` checks the region code
    and scans its keys every time. Errors are remembered too, and raised afresh.
    """

    def __init__(self, book: Any) -> None:
        self.book = book
        self._tables: dict[tuple[Any, Any], Any] = {}
        self._years: dict[Any, Any] = {}

    def get(self, region_code: Any, coverage_year: Any) -> Any:
        key = (region_code, coverage_year)
        found = self._tables.get(key)
        if found is None:
            try:
                found = self.book.get(region_code, coverage_year)
            except DomainError as err:
                found = err
            self._tables[key] = found
        if isinstance(found, DomainError):
            raise type(found)(found.code, found.message, **found.details)
        return found

    def find(self, region_code: Any, coverage_year: Any) -> Any:
        """The table, or None where :meth:`get` would raise (no exception raised and caught per question)."""
        found = self._tables.get((region_code, coverage_year))
        if found is None:
            try:
                self.get(region_code, coverage_year)
            except DomainError:
                return None
            found = self._tables[(region_code, coverage_year)]
        return None if isinstance(found, DomainError) else found

    def years(self, region_code: Any) -> list[int]:
        found = self._years.get(region_code)
        if found is None:
            try:
                found = self.book.years(region_code)
            except DomainError as err:
                found = err
            self._years[region_code] = found
        if isinstance(found, DomainError):
            raise type(found)(found.code, found.message, **found.details)
        return list(found)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.book, name)


def policy_fingerprint(policies: Any) -> str:
    """Which policy tables the views are derived with: a digest of every table's version and content digest."""
    versions = sorted(f"{t.region_code}:{t.coverage_year}:{t.policy_version}" for t in policies.tables())
    return hashlib.sha256("\n".join(versions).encode()).hexdigest()[:16]


def coverage_years(policies: Any) -> list[int]:
    """Every coverage year some policy table covers: the years gap spells are kept for."""
    return sorted({table.coverage_year for table in policies.tables()})


@dataclass
class RunResult:
    """What a run did."""

    source: str
    batches: int = 0
    consumed: int = 0  # positions read (person events or not)
    events: int = 0  # person events applied (duplicates included)
    persons: int = 0  # persons whose rows were written
    quarantined: int = 0  # persons quarantined by this run
    released: int = 0  # quarantined persons derived again and released
    seconds: float = 0.0
    positions: dict[int, int | None] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def add(self, other: RunResult) -> None:
        self.batches += other.batches
        self.consumed += other.consumed
        self.events += other.events
        self.persons += other.persons
        self.quarantined += other.quarantined
        self.released += other.released
        self.seconds += other.seconds
        self.positions = other.positions


class ProjectionRunner:
    """Keeps one store's entitlement and arrears views up to date from one source (one runner per store)."""

    projections: Sequence[str] = PROJECTIONS

    def __init__(self, store: ViewStore, source: Source, policies: Any, *, batch_size: int = 2000,
                 years: Sequence[int] | None = None, person_events: PersonEvents | None = None,
                 retry_every: float = RETRY_QUARANTINED_EVERY, cache_persons: int = CACHE_PERSONS) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.store = store
        self.source = source
        self.policies = policies if isinstance(policies, PolicyCache) else PolicyCache(policies)
        self.entitlement = EntitlementProjection(self.policies)
        self.batch_size = batch_size
        self.years = list(years) if years is not None else coverage_years(self.policies)
        self.log = get_logger("projections.projection_runner", source=source.name)
        #: Where a quarantined person's events are read again (the source's own reader, e.g. the log's).
        self.person_events = person_events or getattr(source, "person_events", None)
        self.retry_every = retry_every
        self._last_retry: float | None = None
        self._quarantined: set[str] = set()  # persons in quarantine: their new events wait for the retry
        #: person -> what the store holds for them, remembered from the last write (an optimisation only:
        #: checked against the stored version before use; a miss or a restart reads the store, see _take_known).
        self._memory: OrderedDict[str, _Known] = OrderedDict()
        self._made: dict[str, tuple[Any, dict[str, Any]]] = {}  # this batch's (history, row) per person
        self.cache_persons = cache_persons

    # ---------------------------------------------------------------- positions
    def positions(self) -> dict[int, int | None]:
        """The stored position per partition of this runner's source (None: nothing applied yet)."""
        return self.store.positions(self.source.name, self.projections)

    def _range(self) -> tuple[dict[int, int | None], dict[int, int], int]:
        until = self.source.end()
        stored = self.positions()
        after = {p: stored.get(p) for p in until}
        total = sum(max(0, until[p] - (self.source.initial if after[p] is None else after[p])) for p in until)
        return after, until, total

    # ---------------------------------------------------------------- folding
    def person_changes(self, events: Iterable[Any]) -> tuple[list[PersonViews], int]:
        """The rows to write for a batch of events: (changed persons, person events seen).

        Raises :class:`~ledger.domain.history.ProjectionError` (``EVENT_GAP``,
        ``EVENT_MISMATCH``) when the events cannot be applied; nothing is written then.
        """
        changes, _, seen = self._changes(events)
        return changes, seen

    def _changes(self, events: Iterable[Any], where: int | None = None) -> tuple[list[PersonViews],
                                                                                list[Quarantined], int]:
        """(changed persons, persons to quarantine, person events seen) for a batch ending at ``where``."""
        grouped: dict[str, list[Any]] = {}
        masked: dict[str, str] = {}
        seen = 0
        for event in events:
            key = person_key(event)
            if key is None:
                continue
            seen += 1
            grouped.setdefault(key, []).append(event)
            if event_type(event) == "Registered":
                masked_id = masked_id_of(event)
                if masked_id:
                    masked[key] = masked_id
        self._made.clear()
        if not grouped:
            return [], [], seen
        # A quarantined person's events wait for the retry (their stored history was removed).
        keys = [key for key in grouped if key not in self._quarantined] if self._quarantined else list(grouped)
        known = self._take_known(keys)
        missing = [key for key in keys if key not in known]
        unreadable: dict[str, Exception] = {}
        stored = self.store.load_stored(missing, unreadable=unreadable) if missing else {}
        changes: list[PersonViews] = []
        quarantine: list[Quarantined] = []
        for key in keys:
            if key in unreadable:  # a stored history that does not read back is that person's failure alone
                quarantine.append(self._quarantine(key, unreadable[key], None, grouped[key], masked.get(key), where))
                continue
            entry = known.get(key)
            held = stored.get(key)
            try:
                if entry is not None:
                    change = self._person(key, entry.history, grouped[key], masked.get(key), known=entry,
                                          remember=True, shape=entry.views.shape)
                else:
                    change = self._person(key, held.history if held else None, grouped[key], masked.get(key),
                                          remember=True, shape=held.shape if held else None)
            except Exception as error:  # noqa: BLE001 - one person's failure, whatever it is, is theirs alone
                if isinstance(error, ProjectionError) and error.code in STREAM_ERRORS:
                    raise
                # The fold changed the history it was given in place: read the stored one again to find the cause.
                old = self.store.load_histories([key]).get(key)
                quarantine.append(self._quarantine(key, error, old, grouped[key], masked.get(key), where))
                continue
            if change is not None:
                changes.append(change)
            elif entry is not None:
                self._keep(key, entry)  # every event a duplicate: the entry still holds what the store holds
        return changes, quarantine, seen

    # ---------------------------------------------------------------- what the store holds (in memory)
    def _take_known(self, keys: Sequence[str]) -> dict[str, _Known]:
        """The remembered persons among ``keys`` whose stored history is still the version remembered.

        They are taken out of the memory (the fold changes their history in place): a
        committed write puts them back (:meth:`_remember`); a failed one leaves them to be
        read from the store. One query of the versions only (no history is read or decoded).
        """
        memory = self._memory
        wanted = [key for key in keys if key in memory]
        if not wanted:
            return {}
        versions = self.store.history_versions(wanted)
        out = {}
        for key in wanted:
            entry = memory.pop(key)
            if versions.get(key) == entry.views.history[0]:
                out[key] = entry
        return out

    def _keep(self, key: str, entry: _Known) -> None:
        memory = self._memory
        memory[key] = entry
        memory.move_to_end(key)
        while len(memory) > self.cache_persons:
            memory.popitem(last=False)

    def _remember(self, changes: Sequence[PersonViews], quarantine: Sequence[Quarantined]) -> None:
        """After a committed write: remember each written person (bounded, least recently used out)."""
        for q in quarantine:
            self._memory.pop(q.person_id, None)
        for c in changes:
            made = self._made.pop(c.person_id, None)
            c.previous = None
            c.last_event = None
            if made is not None and self.cache_persons > 0:
                self._keep(c.person_id, _Known(c, *made))
        self._made.clear()

    def _person(self, person_id: str, old: PersonHistory | None, events: list[Any],
                masked_id: str | None, *, owned: bool = True, known: _Known | None = None,
                remember: bool = False, shape: tuple[int, int, int] | None = None) -> PersonViews | None:
        """The person's new rows after ``events``, from their stored history ``old``; None when nothing changed.

        With ``known`` (what the store holds for the person, remembered from the last
        write), only the years the events touch are derived again
        (:func:`~ledger.domain.coverage.years_touched`), the gap spells of the earlier
        years are kept, and the store writes only the records that changed. With
        ``shape`` (the sizes of the stored history's base and tail), only the history's
        changes are appended to it (:func:`~projections.store.history_record`).

        Raises whatever the fold or the derivation raises, and ``VIEW_VALUE_OUT_OF_RANGE``
        when a value does not fit its column (the caller quarantines the person).
        """
        # The changes appended are found by comparing ``old`` with the new history: the fold must leave ``old`` as
        # it is then (its containers copied, the items shared). Otherwise ``old`` was just read from the store and
        # no one else holds it: folded in place.
        history = fold_many(old, events, owned=owned and shape is None)
        if history is old:
            return None  # every event was a duplicate: nothing to write
        from_year = years_touched(history, events) if known is not None else None
        row = self.entitlement.row(history, previous=known.row if known else None, from_year=from_year)
        # The arrears view's due rows come from the figures just derived (ArrearsProjection
        # would fold the same history and derive it a second time).
        dues = due_rows(history, row)
        if known is None or from_year is None:
            views = person_views(person_id, row, dues, years=self.years, policies=self.policies,
                                 masked_id=masked_id if old is None else None, stored=old, shape=shape)
        else:  # the gap spells of the years before ``from_year`` are those stored; see _spells_kept for later ones
            kept = self._spells_kept(row, known.row, from_year)
            views = person_views(person_id, row, dues, years=[y for y in self.years if y not in kept],
                                 policies=self.policies, stored=old, shape=shape)
            views.spells = sorted([s for s in known.views.spells if s[1] in kept] + views.spells,
                                  key=lambda s: (s[1], s[2]))
        if known is not None:
            views.previous = known.views
        check_ranges(views)
        views.last_event = events[-1]
        if remember and self.cache_persons > 0:
            self._made[person_id] = (history, row)
        return views

    def _spells_kept(self, row: dict[str, Any], before: dict[str, Any], from_year: int) -> set[int]:
        """The years whose stored gap spells still hold after events that touch ``from_year`` and later.

        The years before ``from_year``, and a later year whose resident row and employee
        year came out equal to the previous ones: the events named by
        :func:`~ledger.domain.coverage.years_touched` (money and assessments of resident
        years, account movements) change none of the other facts a year's spells read
        (enrollments, residence, transfers), and money for a year names itself in that
        year's row (its ``sources``), so an equal row means no new money for that year.
        """
        kept = set()
        years, employee = row["years"], row["employee_years"]
        old_years, old_employee = before["years"], before["employee_years"]
        for y in self.years:
            if y < from_year or (y > from_year and years.get(y) == old_years.get(y)
                                 and employee.get(y) == old_employee.get(y)):
                kept.add(y)
        return kept

    # ---------------------------------------------------------------- quarantine
    def _quarantine(self, person_id: str, error: BaseException, old: PersonHistory | None, events: list[Any],
                    masked_id: str | None, where: int | None, code: str | None = None) -> Quarantined:
        """The quarantine row for a person whose rows failed with ``error``, naming the first event that fails."""
        if code is None:
            code = error.code if isinstance(error, ViewValueError) else "VIEW_DERIVATION_FAILED"
        cause = self._cause(person_id, old, events) if code != "VIEW_ROWS_REFUSED" else events[-1]
        detail = error.message if isinstance(error, DomainError) else str(error)
        version = value(cause, "version")
        return Quarantined(person_id, code, _masked_text(f"{type(error).__name__}: {detail}"),
                           str(value(cause, "event_id")), event_type(cause),
                           int(version) if isinstance(version, int) else None, self.source.name, where, masked_id)

    def _cause(self, person_id: str, old: PersonHistory | None, events: list[Any]) -> Any:
        """The first of ``events`` after which the person's rows cannot be derived (the last one if none alone fails)."""
        history = old
        for event in events:
            try:
                self._person(person_id, history, [event], None, owned=False)
                history = fold_many(history, [event])
            except Exception:  # noqa: BLE001 - this is the event we are looking for
                return event
        return events[-1]

    def _store(self, changes: list[PersonViews], quarantine: list[Quarantined], *,
               positions: Mapping[int, tuple[int | None, int]], replace: bool = True) -> tuple[int, int]:
        """Write a batch (one transaction); if the database refuses it, find the persons it refuses and
        quarantine them, then write everyone else. (Persons written, persons quarantined.)"""
        quarantine = self._with_masked_ids(quarantine)
        try:
            self.store.write(changes, source=self.source.name, projections=self.projections, positions=positions,
                             replace=replace, quarantine=quarantine)
        except Exception as error:
            if not changes or not self.store.refused(error):
                raise
            refused = self.store.find_refused(changes, replace=replace)
            if not refused:
                raise
            where = max((new for _, new in positions.values()), default=None) if len(positions) == 1 else None
            more = [self._quarantine(c.person_id, refused[c.person_id], None, [c.last_event], c.masked_id, where,
                                     code="VIEW_ROWS_REFUSED")
                    for c in changes if c.person_id in refused]
            quarantine = quarantine + self._with_masked_ids(more)
            changes = [c for c in changes if c.person_id not in refused]
            self.store.write(changes, source=self.source.name, projections=self.projections, positions=positions,
                             replace=replace, quarantine=quarantine)
        if replace:
            self._remember(changes, quarantine)
        for q in quarantine:
            self._quarantined.add(q.person_id)
            self.log.error("views_person_quarantined", person_id=q.person_id, masked_id=q.masked_id, code=q.code,
                           reason=q.message, event_id=q.event_id, event_type=q.event_type, position=q.position)
        return len(changes), len(quarantine)

    def _with_masked_ids(self, quarantine: list[Quarantined]) -> list[Quarantined]:
        missing = [q.person_id for q in quarantine if q.masked_id is None]
        if not missing:
            return quarantine
        known = self.store.masked_ids(missing)
        return [q if q.masked_id is not None else with_changes(q, masked_id=known.get(q.person_id)) for q in quarantine]

    def _still_quarantined(self, q: Quarantined, error: BaseException) -> None:
        self.log.warning("views_person_still_quarantined", person_id=q.person_id, masked_id=q.masked_id,
                         code=q.code, error=_masked_text(f"{type(error).__name__}: {error}"))

    def quarantined(self) -> list[Quarantined]:
        """The persons now in quarantine (see the module docstring)."""
        return self.store.quarantined()

    def retry_quarantined(self, person_ids: Sequence[str] | None = None) -> list[str]:
        """Derive the quarantined persons (all, or ``person_ids``) again from all their stored events.

        Whoever derives and stores cleanly leaves the quarantine, in the transaction that
        writes their rows; the others stay, with their first reason. Returns those released.
        """
        waiting = self.store.quarantined(person_ids)
        self._last_retry = time.monotonic()
        if not waiting:
            return []
        if self.person_events is None:
            self.log.warning("views_quarantine_not_retried", persons=len(waiting),
                             reason="this runner's source cannot read a person's events again")
            return []
        released = []
        for q in waiting:
            events = list(self.person_events(q.person_id))  # the ledger unreadable: raised, retried as a whole
            try:
                # pure work (fold, derivation, range check): any failure is the person's own
                change = self._person(q.person_id, None, events, q.masked_id) if events else None
            except Exception as error:  # noqa: BLE001 - still failing: stays in quarantine
                self._still_quarantined(q, error)
                continue
            try:
                self.store.write([change] if change is not None else [], source=self.source.name,
                                 projections=self.projections, positions={}, release=[q.person_id])
            except Exception as error:
                if not self.store.refused(error):
                    raise  # the database away: the whole run is retried
                self._still_quarantined(q, error)
                continue
            self._remember([change] if change is not None else [], [])
            self._quarantined.discard(q.person_id)
            released.append(q.person_id)
            self.log.info("views_person_released", person_id=q.person_id, masked_id=q.masked_id, was=q.code,
                          since=q.quarantined_at.isoformat() if q.quarantined_at else None)
        return released

    def apply(self, batch: Batch) -> int:
        """Fold one batch and write it with its positions (one transaction); the number of persons written.

        Persons whose rows fail are quarantined in the same transaction (see the module docstring).
        """
        where = next(iter(batch.positions.values()))[1] if len(batch.positions) == 1 else None
        changes, quarantine, _ = self._changes(batch.events, where)
        written, _ = self._store(changes, quarantine, positions=batch.positions)
        if batch.positions:
            self.source.commit({p: new for p, (_, new) in batch.positions.items()})
        return written

    # ---------------------------------------------------------------- running
    def check(self) -> None:
        """Raises ``VIEWS_OUTDATED`` unless the store's tables and policy tables are the ones this runner derives with."""
        self.store.check_policies(policy_fingerprint(self.policies))

    def run_once(self, *, progress: bool = False, label: str = "catching up", retry: bool | None = None) -> RunResult:
        """Apply everything the source holds now, batch by batch; returns when caught up.

        Then, with ``retry`` (None: on a new runner's first run, and every ``retry_every``
        seconds after), the persons quarantined before this run are derived again.
        """
        self.check()
        started = time.perf_counter()
        self._quarantined = self.store.quarantined_ids()
        before = set(self._quarantined)
        after, until, total = self._range()
        result = RunResult(self.source.name)
        bar = ProgressBar(total, label=label, unit="positions", enabled=progress and total > 0)
        # The persons remembered (up to cache_persons histories and rows) live long and hold no reference
        # cycles: frozen while catching up, the cyclic collector does not walk them again at every full pass.
        with few_collections() if self._memory else contextlib.nullcontext():
            for batch in self.source.read(after, until, max_records=self.batch_size):
                held = len(self._quarantined)
                result.persons += self.apply(batch)
                result.quarantined += len(self._quarantined) - held
                result.batches += 1
                result.consumed += batch.consumed
                result.events += sum(1 for e in batch.events if person_key(e) is not None)
                bar.advance(batch.consumed)
        bar.close()
        if retry is None:
            retry = self._last_retry is None or time.monotonic() - self._last_retry >= self.retry_every
        if retry and before:
            result.released = len(self.retry_quarantined(sorted(before)))
        elif retry:
            self._last_retry = time.monotonic()
        retried = bool(retry and before)
        result.seconds = time.perf_counter() - started
        result.positions = self.positions()
        if result.quarantined or retried:  # not on every catch-up of the API while someone stays quarantined
            self.log.warning("views_quarantine", quarantined_now=result.quarantined, released=result.released,
                             in_quarantine=len(self._quarantined))
        if result.batches:
            self.log.info("views_caught_up", batches=result.batches, events=result.events, persons=result.persons,
                          seconds=round(result.seconds, 3), positions=result.positions)
        return result

    def run_forever(self, stop: threading.Event, *, idle: float = 0.5, max_failures: int | None = None) -> RunResult:
        """Catch up again and again until ``stop`` is set (waiting ``idle`` seconds when nothing was new).

        A failure that is not the events' or the store's own (the database restarted, the
        broker away) is retried from the stored positions after a growing pause;
        ``max_failures`` in a row raise it. A :class:`DomainError` (a gap in the events,
        outdated views, a second runner) needs a person: it is raised at once.
        """
        total = RunResult(self.source.name)
        failures = 0
        while not stop.is_set():
            try:
                result = self.run_once()
            except DomainError:
                raise
            except Exception as e:
                failures += 1
                self.log.error("views_failed_will_retry", error=str(e), error_type=type(e).__name__,
                               failures=failures)
                if max_failures is not None and failures >= max_failures:
                    raise
                stop.wait(min(30.0, 0.5 * 2 ** (failures - 1)))
                continue
            failures = 0
            total.add(result)
            if not result.batches:
                stop.wait(idle)
        return total

    # ---------------------------------------------------------------- the first phase of a rebuild
    def bulk(self, *, shards: int | None = None, chunk: int = 2000, progress: bool = False,
             run_shards: ShardRunner | None = None) -> RunResult:
        """Fill an EMPTY store with everything the source holds now, each person's events folded at once.

        The history is read in ``shards`` passes (by ranges of person ids). A source
        that reads person by person (``reads_by_person()``: the log on PostgreSQL) needs
        one pass, folding each person as their events end; another is read in passes that
        hold at most about ``BULK_POSITIONS_PER_SHARD`` positions' events in memory. Each
        person is folded and derived once, and rows are written ``chunk`` persons per
        transaction. ``run_shards`` may run the passes elsewhere (worker processes,
        see :func:`projections.factory.parallel_shards`). The positions are written
        last: until then the store has no position and a crashed rebuild starts again.
        """
        if any(v is not None for v in self.positions().values()):
            raise DomainError("STORE_NOT_EMPTY", "a bulk load needs an empty store (use rebuild)")
        self.check()
        started = time.perf_counter()
        _, until, total = self._range()
        shards = shards or (1 if self._reads_by_person() else max(1, math.ceil(total / BULK_POSITIONS_PER_SHARD)))
        if run_shards is not None:
            result = run_shards(until, shards, chunk)
            result.source = self.source.name
        else:
            result = RunResult(self.source.name)
            for k in range(shards):
                result.add(self.bulk_shard(k, shards, until, chunk=chunk, progress=progress))
        final = {p: (None, until[p]) for p in until if until[p] > self.source.initial}
        self.store.write([], source=self.source.name, projections=self.projections, positions=final)
        result.seconds = time.perf_counter() - started
        result.positions = self.positions()
        return result

    def bulk_shard(self, k: int, shards: int, until: dict[int, int], *, chunk: int = 2000,
                   progress: bool = False) -> RunResult:
        """One pass of :meth:`bulk`: the persons of shard ``k`` of ``shards``, up to ``until``; no positions."""
        with few_collections():
            return self._bulk_shard(k, shards, until, chunk=chunk, progress=progress)

    def _reads_by_person(self) -> bool:
        return bool(getattr(self.source, "reads_by_person", lambda: False)())

    def _bulk_shard(self, k: int, shards: int, until: dict[int, int], *, chunk: int, progress: bool) -> RunResult:
        started = time.perf_counter()
        result = RunResult(self.source.name)
        total = sum(max(0, until[p] - self.source.initial) for p in until)
        where = f"rebuild {k + 1}/{shards}" if shards > 1 else "rebuild"
        if self._reads_by_person():
            # Each person's events come together: fold them as they come (little held in memory).
            histories = self.source.person_histories(until, (k, shards) if shards > 1 else None)  # type: ignore[attr-defined]
            result.consumed = total if k == 0 else 0  # every position is behind the rebuild once all passes are done
            bar = ProgressBar(0, label=f"{where}: reading and projecting", unit="persons", enabled=progress)
            self._project(histories, result, bar, chunk)
            result.seconds = time.perf_counter() - started
            return result
        bar = ProgressBar(total, label=f"{where}: reading", unit="positions", enabled=progress and total > 0)
        grouped: dict[str, list[Any]] = {}
        for batch in self.source.read({}, until, max_records=max(self.batch_size, 5000), shard=(k, shards)):
            for event in batch.events:
                key = person_key(event)
                if key is not None:
                    grouped.setdefault(key, []).append(event)
            result.consumed += batch.consumed if k == 0 else 0
            bar.advance(batch.consumed)
        bar.close()
        gc.freeze()  # the shard's events live until the end of the pass: no collection needs to scan them
        bar = ProgressBar(len(grouped), label=f"{where}: projecting", unit="persons",
                          enabled=progress and bool(grouped))
        self._project(iter(grouped.items()), result, bar, chunk)
        result.seconds = time.perf_counter() - started
        return result

    def _project(self, histories: Iterable[tuple[str, list[Any]]], result: RunResult, bar: ProgressBar,
                 chunk: int) -> None:
        """Fold each ``(person, all their events)`` once and write the rows, ``chunk`` persons per transaction."""
        changes: list[PersonViews] = []
        quarantine: list[Quarantined] = []
        # Rows are written by a thread of their own while the next chunk is projected: the
        # database works (and psycopg waits for it, without the GIL) in parallel with the
        # pure fold. One chunk in flight at a time, in order; a failed write stops the pass.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rebuild-writer") as writer:
            pending: Future[None] | None = None
            for key, events in histories:
                masked = next((masked_id_of(e) for e in events if event_type(e) == "Registered"), None)
                try:
                    change = self._person(key, None, events, masked)
                except Exception as error:  # noqa: BLE001 - one person's failure is theirs alone (quarantined)
                    if isinstance(error, ProjectionError) and error.code in STREAM_ERRORS:
                        raise
                    quarantine.append(self._quarantine(key, error, None, events, masked, None))
                    change = None
                if change is not None:
                    changes.append(change)
                result.events += len(events)
                bar.advance()
                if len(changes) >= chunk:
                    if pending is not None:
                        pending.result()
                    pending = writer.submit(self._write_rows, changes, result, quarantine)
                    changes, quarantine = [], []
            if pending is not None:
                pending.result()
        self._write_rows(changes, result, quarantine)
        bar.close()

    def _write_rows(self, changes: list[PersonViews], result: RunResult, quarantine: list[Quarantined]) -> None:
        if changes or quarantine:
            # A pass writes each person of its shard once into the empty rebuild tables: nothing to replace.
            written, quarantined = self._store(changes, quarantine, positions={}, replace=False)
            result.persons += written
            result.quarantined += quarantined
            result.batches += 1


def stored_rows(store: ViewStore, policies: Any, person_ids: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """The entitlement and arrears rows of these persons as the pure projections hold them, from the stored histories.

    ``{ENTITLEMENT: {person: row}, ARREARS: {person: {"history", "dues"}}}``: what a
    view built by the runner answers, to compare with a pure fold of the same events.
    """
    projection = EntitlementProjection(policies if isinstance(policies, PolicyCache) else PolicyCache(policies))
    out: dict[str, dict[str, dict[str, Any]]] = {ENTITLEMENT: {}, ARREARS: {}}
    for pid, history in store.load_histories(person_ids).items():
        row = out[ENTITLEMENT][pid] = projection.row(history)
        out[ARREARS][pid] = {"history": history, "dues": due_rows(history, row)}
    return out


def rebuild(store: ViewStore, source: Source, policies: Any, *, batch_size: int = 2000, shards: int | None = None,
            progress: bool = False, run_shards: ShardRunner | None = None) -> RunResult:
    """Build the views from the beginning into fresh tables, catch up, and swap them in (one transaction).

    Readers keep the old views until the swap. Stop the store's incremental runner
    meanwhile (it would write to the tables being replaced); after the swap it
    continues from the rebuilt tables' positions.
    """
    shadow = store.rebuilding()
    runner = ProjectionRunner(shadow, source, policies, batch_size=batch_size)
    result = runner.bulk(shards=shards, progress=progress, run_shards=run_shards)
    result.add(runner.run_once(progress=progress, label="rebuild: catching up", retry=False))
    store.swap(shadow)
    result.positions = store.positions(source.name, PROJECTIONS)
    get_logger("projections.projection_runner", source=source.name).info(
        "views_rebuilt", events=result.events, persons=result.persons, seconds=round(result.seconds, 3),
        positions=result.positions, quarantined=len(store.quarantined_ids()))
    return result


__all__ = ["PROJECTIONS", "RETRY_QUARANTINED_EVERY", "STREAM_ERRORS", "PolicyCache", "ProjectionRunner", "RunResult",
           "coverage_years", "policy_fingerprint", "rebuild", "stored_rows"]
