"""Tamper evidence (防篡改校验): hash chains, anchors, daily digests, snapshots and views, checked.

What is checked, and against what:

* **One aggregate's chain** (:func:`check_chain`, used by both entry points): every
  stored row is decoded with the application's mapper and its
  :func:`~ledger.domain.chain.event_digest` recomputed; versions must run 1, 2, 3...;
  each person event's ``prev_hash`` must be the digest of the event before it
  (the first: the genesis value); rows must sit in the notification log, and carry
  recording instants, in version order. A row that no longer decodes is reported as
  tampering at its version, never raised.
* **The anchor**: no successor covers the last event, so its digest is compared with
  the chain head sealed by the daily digest (``audit_chain_heads``, see
  :mod:`entrypoints.audit.digest`); a sealed version that is gone is a removed tail.
* **Transfers** (:func:`~ledger.domain.transfers.transfer_findings`): in a history holding
  transfers, each out half sent what the person held, each completed in half received what
  its out half sent, and no old pair counted the months twice (findings of kind
  ``discrepancy``: money or months created, not a changed row).
* **Snapshots** (``ledger_snapshots``) are never used to verify: the events are
  replayed, and a snapshot that disagrees with the state replayed up to its version
  is reported (the repository would load that wrong state).
* **The views** (:func:`cross_check`): a person's entitlement row recomputed from the
  events (at the version the view has reached) against the stored row and its
  ``view_entitlement_years`` lines, field by field.
* **Daily digests** (:func:`verify_digests`): every sealed segment recomputed from
  the stored rows and compared with its published copy on Kafka and with the copy
  in the database.

A broken link tells where the chain breaks, not always which row was touched; the
findings name the most likely version (see :func:`_suspects`) and say how the
chain broke. Entry points for the CLI and the HTTP layer: :func:`verify_person`,
:func:`verify_all`, :func:`verify_digests` (each returns a :class:`Verification`
with ``as_dict()``), and :func:`entrypoints.audit.digest.seal`.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger.domain.chain import GENESIS_HASH
from ledger.domain.errors import DomainError, NotFound
from ledger.domain.person import Person
from ledger.domain.transfers import TRANSFER_EVENTS, transfer_findings
from ledger.domain.person import StaleSnapshot
from ledger.log import mask_id_number
from projections.entitlement import EntitlementProjection
from projections.projection_runner import PolicyCache

from entrypoints import catalogue
from entrypoints.audit.digest import (
    DigestChannel,
    Head,
    Segment,
    _Accumulator,
    decode_row,
    digest_store,
    unreadable_digest,
)
from entrypoints.audit.stored_rows import BATCH, Row, event_rows
from ledger.domain.history import history_to_plain
from projections.store import YEARS, year_records

PERSON_TOPIC_PREFIX = get_topic(Person) + "."
#: Field-by-field view mismatches listed per person before the rest is counted only.
MAX_VIEW_MISMATCHES = 50



def _note(key: str, values: dict[str, Any]) -> "Note":
    return Note(key, **values)


class Note(str):
    """A note of a verification: the English sentence (what the JSON answer and the logs carry) that knows its
    catalogue key (section ``verify_notes``), so a person reads it in their language (:meth:`text`)."""

    key: str
    values: dict[str, Any]

    def __new__(cls, key: str, **values: Any) -> "Note":
        self = super().__new__(cls, catalogue.text("verify_notes", key, "en", **values))
        self.key, self.values = key, values
        return self

    def __reduce__(self) -> Any:  # the whole-ledger check runs in worker processes
        return _note, (self.key, self.values)

    def text(self, lang: str) -> str:
        return catalogue.text("verify_notes", self.key, lang, **self.values)


def note_text(note: str, lang: str) -> str:
    """A note in ``lang`` (a plain string, e.g. read back from JSON, as it is)."""
    return note.text(lang) if isinstance(note, Note) else note


@dataclass(frozen=True)
class Finding:
    """One thing wrong: what, whose, where."""

    code: str
    message: str
    aggregate_id: str | None = None
    person_id: str | None = None
    masked_id: str | None = None
    version: int | None = None
    day: str | None = None
    #: "tampering" (the stored record was changed) or "discrepancy" (a copy disagrees: view, snapshot, published digest).
    kind: str = "tampering"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Verification:
    """The outcome of one verification run."""

    scope: str
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    events: int = 0
    aggregates: int = 0
    persons: int = 0
    segments: int = 0
    seconds: float = 0.0
    position: int = 0
    checked_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def clean(self) -> bool:
        return not self.findings

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def extend(self, other: Verification) -> None:
        self.findings += other.findings
        self.notes += other.notes
        self.segments += other.segments

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "clean": self.clean,
            "findings": [f.as_dict() for f in self.findings],
            "notes": list(self.notes),
            "events": self.events,
            "aggregates": self.aggregates,
            "persons": self.persons,
            "segments": self.segments,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_per_second),
            "ledger_position": self.position,
            "checked_at": self.checked_at.isoformat(),
        }


# --------------------------------------------------------------------------- one chain
@dataclass
class ChainCheck:
    """What :func:`check_chain` found for one aggregate."""

    originator_id: UUID
    person: bool
    masked_id: str | None
    events: int
    last_version: int
    unanchored: int
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)


# the state after a step, and the masked ID of a history (shared with the history report)
def projection_for(policies: Any) -> EntitlementProjection:
    return EntitlementProjection(policies if isinstance(policies, PolicyCache) else PolicyCache(policies))


def masked_id_of(events: Sequence[Any]) -> str | None:
    first = events[0] if events else None
    number = getattr(first, "id_number", None)
    return mask_id_number(number) if number else None


def _range(a: int, b: int) -> str:
    return f"version {a}" if a == b else f"versions {a} to {b}"


def _suspects(broken: list[int], confirmed: set[int]) -> Iterator[tuple[int, str]]:
    """(suspect version, explanation) from the links found broken.

    ``broken``: versions ``v`` whose link to ``v - 1`` is broken (``prev_hash`` is not
    the digest of ``v - 1``; for ``v = 1``, not the genesis value). ``confirmed``:
    versions whose own digest is vouched for by a successor's ``prev_hash`` or by the
    sealed anchor. One changed event ``p`` breaks exactly one link, ``p -> p + 1`` (its
    digest moved); if its ``prev_hash`` was changed too, or the event replaced, the
    link ``p - 1 -> p`` breaks as well; two swapped events break three links in a row.
    When the event after a broken run cannot vouch for the run's last event (it is
    missing, unreadable, or there is none and no anchor), that event is a suspect too.
    """
    runs: list[list[int]] = []
    for v in broken:
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    for run in runs:
        a, b = run[0], run[-1]
        unsure = b not in confirmed
        if len(run) == 1 and a > 1:
            if not unsure:
                yield a - 1, (f"version {a - 1} was changed after it was recorded: its digest is no longer the "
                              f"prev_hash that version {a} recorded")
            else:
                for v in (a - 1, a):
                    yield v, (f"version {a - 1} or version {a} was changed: version {a} no longer links to version "
                              f"{a - 1}, and nothing after version {a} vouches for it")
            continue
        suspects = list(range(a, b)) or [a]
        if unsure and b not in suspects:
            suspects.append(b)
        for v in suspects:
            if len(run) == 1:
                yield v, "version 1 does not start the chain (its prev_hash is not the genesis value): it was changed"
            elif len(run) == 2 and not unsure:
                yield v, (f"version {a} was changed or replaced: it no longer links to "
                          f"{'the start of the chain' if a == 1 else f'version {a - 1}'}, and version {a + 1} no "
                          "longer links to it")
            else:
                yield v, (f"versions {suspects[0]} to {suspects[-1]} were changed, replaced or swapped: the chain "
                          f"breaks at each of versions {a} to {b}")


def _replay_step(event: Any, aggregate: Any, digest: str | None) -> Any:
    """``event.mutate`` as the repository does it; a person event's chain head from the digest already computed."""
    if isinstance(event, Person.Event) and digest is not None:
        aggregate = super(Person.Event, event).mutate(aggregate)
        aggregate.chain_head = digest
        return aggregate
    return event.mutate(aggregate)


def _state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def check_chain(rows: Sequence[Row], mapper: Any, *, anchor: Head | None = None,
                snapshots: Callable[[], list[Row]] | None = None) -> ChainCheck:
    """Verify one aggregate's stored rows (in version order); never raises for a damaged row."""
    first = rows[0]
    oid = first.originator_id
    person = first.topic.startswith(PERSON_TOPIC_PREFIX)
    # Digests are compared along a person's chain and with an anchor; other aggregates' rows are only decoded.
    digests = person or anchor is not None
    decoded = [(row, *decode_row(mapper, row, digests)) for row in rows]
    masked = None
    if person and first.originator_version == 1 and decoded[0][1] is not None:
        number = getattr(decoded[0][1], "id_number", None)
        masked = mask_id_number(number) if isinstance(number, str) and number else None
    findings: list[Finding] = []
    notes: list[str] = []
    aid = str(oid)
    pid = aid if person else None

    def add(code: str, version: int | None, message: str, kind: str = "tampering") -> None:
        who = f"person {aid}" + (f" ({masked})" if masked else "") if person else f"aggregate {aid}"
        findings.append(Finding(code, f"{who}: {message}", aid, pid, masked, version, kind=kind))

    expected = 1
    previous: tuple | None = None
    broken: list[int] = []
    confirmed: set[int] = set()  # versions whose digest a successor's prev_hash (or the anchor) vouches for
    reordered: set[int] = set()
    prev_nid: int | None = None
    prev_ts: datetime | None = None
    for item in decoded:
        row, event, digest, error = item
        v = row.originator_version
        if v != expected:
            if v > expected:
                add("VERSION_MISSING", expected, f"{_range(expected, v - 1)} missing: the row was deleted")
            else:
                add("VERSION_DUPLICATE", v, f"version {v} appears twice")
            previous = None
        if error is not None:
            add("EVENT_UNREADABLE", v, f"the stored event at version {v} cannot be read ({error}): it was changed")
        elif person:
            link = getattr(event, "prev_hash", None)
            if v == 1:
                if link != GENESIS_HASH:
                    broken.append(1)
            elif previous is not None and previous[3] is None and previous[0].originator_version == v - 1:
                if link != previous[2]:
                    broken.append(v)
                else:
                    confirmed.add(v - 1)
        nid = row.notification_id
        if prev_nid is not None and nid is not None and nid < prev_nid and v not in reordered:
            reordered.add(v)
            add("ROWS_REORDERED", v, f"version {v} sits before version {v - 1} in the notification log "
                                     f"(notification {nid} < {prev_nid}): rows were renumbered or swapped")
        ts = getattr(event, "timestamp", None) if event is not None else None
        if prev_ts is not None and ts is not None and ts < prev_ts and v not in reordered:
            reordered.add(v)
            add("ROWS_REORDERED", v, f"version {v} was recorded ({ts.isoformat()}) before version {v - 1} "
                                     f"({prev_ts.isoformat()}): events were swapped or moved")
        expected = v + 1
        previous = item
        prev_nid = nid if nid is not None else prev_nid
        prev_ts = ts if ts is not None else prev_ts
    last_version = rows[-1].originator_version
    unanchored = len(rows)
    if anchor is not None:
        if last_version < anchor.version:
            add("TAIL_MISSING", last_version + 1,
                f"{_range(last_version + 1, anchor.version)} were sealed (digest segment {anchor.seq}) but are no "
                "longer stored: deleted")
            unanchored = 0
        else:
            unanchored = last_version - anchor.version
            at = decoded[anchor.version - 1] if anchor.version <= len(decoded) else None
            if at is None or at[0].originator_version != anchor.version:  # rows missing before it: search
                at = next((d for d in decoded if d[0].originator_version == anchor.version), None)
            if at is not None and at[2] is not None and at[2] != anchor.digest:
                add("ANCHOR_MISMATCH", anchor.version,
                    f"version {anchor.version} no longer matches the digest sealed for it (digest segment "
                    f"{anchor.seq}): it was changed after sealing")
            elif at is not None and at[2] is not None:
                confirmed.add(anchor.version)
    if broken:
        for version, message in _suspects(broken, confirmed):
            add("CHAIN_BROKEN", version, message)
    if person and not any(d[3] is not None for d in decoded) and \
            any(type(d[1]).__name__ in TRANSFER_EVENTS for d in decoded):
        # Conservation of transfers (转移核查): no balance or month created by a transfer's two halves.
        try:
            problems = transfer_findings(d[1] for d in decoded)
        except Exception as e:  # noqa: BLE001 - a history that no longer replays: the chain findings say where
            problems = []
            notes.append(Note("transfers_not_checked", error=type(e).__name__))
        for code, version, message in problems:
            add(code, version, message, kind="discrepancy")
    if snapshots is not None:
        _check_snapshots(decoded, snapshots(), mapper, add, notes)
    return ChainCheck(oid, person, masked, len(rows), last_version, unanchored, findings, notes)


def _check_snapshots(decoded: list[tuple], snapshot_rows: list[Row], mapper: Any,
                     add: Callable[..., None], notes: list[str]) -> None:
    """Each snapshot against the state replayed from the events up to its version."""
    if not snapshot_rows:
        return
    wanted = sorted(snapshot_rows, key=lambda r: r.originator_version)
    aggregate = None
    i = 0
    intact = True
    for row in wanted:
        s = row.originator_version
        while i < len(decoded) and decoded[i][0].originator_version <= s:
            r, event, digest, error = decoded[i]
            if error is not None or r.originator_version != i + 1:
                intact = False
            elif intact:
                try:
                    aggregate = _replay_step(event, aggregate, digest)
                except Exception:  # noqa: BLE001 - a damaged history: the chain findings say where
                    intact = False
            i += 1
        try:
            snapshot = mapper.to_domain_event(row.stored_event()).mutate(None)
        except StaleSnapshot:
            notes.append(Note("snapshot_old_shape", version=s))
            continue
        except Exception as exc:  # noqa: BLE001
            add("SNAPSHOT_UNREADABLE", s, f"the snapshot at version {s} cannot be read ({type(exc).__name__}: {exc})",
                kind="discrepancy")
            continue
        if not intact or aggregate is None or i == 0 or decoded[i - 1][0].originator_version != s:
            notes.append(Note("snapshot_not_compared", version=s))
            continue
        mine, theirs = _state(aggregate), _state(snapshot)
        differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k, ...) != theirs.get(k, ...))
        if differ:
            add("SNAPSHOT_MISMATCH", s, f"the snapshot at version {s} disagrees with the events replayed up to it "
                                        f"({', '.join(d.lstrip('_') for d in differ)}): the application would load a "
                                        "wrong state; it must be deleted", kind="discrepancy")


# --------------------------------------------------------------------------- views
def _norm(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()[:10] if isinstance(value, date) and not isinstance(value, datetime) else value.isoformat()
    return value


def _diff(path: str, stored: Any, fresh: Any, out: list[tuple[str, Any, Any]]) -> None:
    if isinstance(stored, dict) and isinstance(fresh, dict):
        for key in list(stored) + [k for k in fresh if k not in stored]:
            _diff(f"{path}.{key}" if path else str(key), stored.get(key, "<absent>"), fresh.get(key, "<absent>"), out)
    elif isinstance(stored, (list, tuple)) and isinstance(fresh, (list, tuple)) and len(stored) == len(fresh):
        for n, (a, b) in enumerate(zip(stored, fresh)):
            _diff(f"{path}[{n}]", a, b, out)
    elif stored != fresh:
        out.append((path, stored, fresh))


def cross_check(ledger: Any, person_id: UUID, events: Sequence[Any], views: Any) -> tuple[list[Finding], list[str]]:
    """The person's stored view (their folded history, and their entitlement years table) against the events.

    The views store the history once; every figure is derived from it. So the history
    is compared field by field with the one folded afresh from the events, and the
    years query table with the years derived from that fresh history.

    Compared at the version the view has reached (a view behind the ledger is not a
    mismatch, it is noted). Returns (findings, notes); every differing field is one
    finding (up to :data:`MAX_VIEW_MISMATCHES`), code ``VIEW_MISMATCH``.
    """
    pid = str(person_id)
    masked = masked_id_of(events)
    notes: list[str] = []
    stored = views.history(pid)
    if stored is None:
        return [], [f"the views hold no history row for person {pid} (not projected yet)"]
    version = stored.version
    if version > len(events):
        return [Finding("VIEW_AHEAD", f"person {pid}: the entitlement view is at version {version} but only "
                                      f"{len(events)} events are stored: events were deleted, or the view was written "
                                      "by hand", pid, pid, masked, len(events) + 1, kind="discrepancy")], notes
    if version < len(events):
        notes.append(Note("view_behind", version=version, behind=len(events) - version))
    fresh = projection_for(ledger.policies).apply_rows(None, list(events[:version]))
    differences: list[tuple[str, Any, Any]] = []
    _diff("history", history_to_plain(stored), history_to_plain(fresh["history"]), differences)
    try:  # the query table is the store's own; read it through its primitive, if it has one
        columns = YEARS.column_names
        lines = views._fetch(f"SELECT {', '.join(columns)} FROM {views.name(YEARS)} WHERE person_id = {views.param} "
                             "ORDER BY year", (pid,))
        have = {int(r[1]): [_norm(x) for x in r] for r in lines}
        want = {int(r[1]): [_norm(x) for x in r] for r in year_records(pid, fresh)}
        for year in sorted(set(have) | set(want)):
            a, b = have.get(year), want.get(year)
            if a is None or b is None:
                differences.append((f"{YEARS.name}[{year}]", a and "present", b and "present"))
                continue
            for name, x, y in zip(columns, a, b):
                if x != y:
                    differences.append((f"{YEARS.name}[{year}].{name}", x, y))
    except Exception as exc:  # noqa: BLE001 - a store without that table or primitive: say so, do not fail
        notes.append(Note("view_not_compared", error=f"{type(exc).__name__}: {exc}"))
    findings = [
        Finding("VIEW_MISMATCH", f"person {pid}: view field {path}: stored {a!r}, recomputed from the events {b!r}",
                pid, pid, masked, version, kind="discrepancy")
        for path, a, b in differences[:MAX_VIEW_MISMATCHES]
    ]
    if len(differences) > MAX_VIEW_MISMATCHES:
        notes.append(Note("more_view_fields", n=len(differences) - MAX_VIEW_MISMATCHES))
    return findings, notes


# --------------------------------------------------------------------------- entry points
def _as_uuid(person_id: UUID | str) -> UUID:
    if isinstance(person_id, UUID):
        return person_id
    try:
        return UUID(str(person_id))
    except ValueError:
        raise DomainError("PERSON_ID_INVALID", f"not a person id: {person_id!r}") from None


def verify_person(ledger: Any, person_id: UUID | str, *, views: Any = None) -> Verification:
    """One person's chain, anchor and snapshots (and, given ``views``, their stored view rows)."""
    started = time.perf_counter()
    pid = _as_uuid(person_id)
    rows = event_rows(ledger)
    result = Verification(scope="person", position=rows.max_notification_id())
    anchor = digest_store(ledger).head(pid)
    stored = rows.of_aggregate(pid)
    if not stored:
        if anchor is None:
            raise NotFound("PERSON_NOT_FOUND", "no person with that ID is registered in the ledger")
        result.findings.append(Finding(
            "AGGREGATE_MISSING", f"person {pid}: every stored event is gone, but versions 1 to {anchor.version} were "
                                 f"sealed (digest segment {anchor.seq}): deleted", str(pid), str(pid), None, 1))
        result.seconds = time.perf_counter() - started
        return result
    check = check_chain(stored, ledger.mapper, anchor=anchor, snapshots=lambda: rows.snapshots_of(pid))
    result.findings += check.findings
    result.notes += check.notes
    result.events, result.aggregates, result.persons = check.events, 1, int(check.person)
    if anchor is None:
        result.notes.append(Note("person_not_sealed"))
    elif check.unanchored:
        result.notes.append(Note("person_unanchored", n=check.unanchored))
    if views is not None:
        decoded = [decode_row(ledger.mapper, r) for r in stored]
        events = [event for event, _, error in decoded if error is None]
        if len(events) == len(stored):
            findings, notes = cross_check(ledger, pid, events, views)
            result.findings += findings
            result.notes += notes
        else:
            result.notes.append(Note("views_unreadable"))
    result.seconds = time.perf_counter() - started
    return result


def _grouped(rows: Iterable[Row]) -> Iterator[list[Row]]:
    group: list[Row] = []
    current: Any = None
    for row in rows:
        if row.originator_id != current:
            if group:
                yield group
            group, current = [], row.originator_id
        group.append(row)
    if group:
        yield group


@dataclass
class _Part:
    """What one scan (the whole ledger, or one range of aggregate ids in a worker) found."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    events: int = 0
    aggregates: int = 0
    persons: int = 0
    unanchored: int = 0


def _scan(mapper: Any, rows: Any, heads: dict[UUID, Head], snapshotted: set[UUID], batch: int,
          lo: UUID | None = None, hi: UUID | None = None, progress: Callable[[int], None] | None = None) -> _Part:
    part = _Part()
    seen: set[UUID] = set()
    stream = rows.by_aggregate(batch=batch, lo=lo, hi=hi) if (lo or hi) else rows.by_aggregate(batch=batch)
    for group in _grouped(stream):
        oid = group[0].originator_id
        seen.add(oid)
        check = check_chain(group, mapper, anchor=heads.get(oid),
                            snapshots=(lambda o=oid: rows.snapshots_of(o)) if oid in snapshotted else None)
        part.findings += check.findings
        part.notes += check.notes
        part.events += check.events
        part.aggregates += 1
        part.persons += check.person
        part.unanchored += check.unanchored
        if progress is not None:
            progress(part.events)
    for oid, head in heads.items():
        if oid not in seen and (lo is None or oid >= lo) and (hi is None or oid < hi):
            part.findings.append(Finding(
                "AGGREGATE_MISSING", f"aggregate {oid}: every stored event is gone, but versions 1 to {head.version} "
                                     f"were sealed (digest segment {head.seq}): deleted", str(oid), None, None, 1))
    return part


#: What a forked worker of :func:`verify_all` works with (inherited from the parent process, not pickled).
_FORKED: tuple | None = None


def _scan_range(bounds: tuple[UUID | None, UUID | None]) -> _Part:
    ledger, rows, heads, snapshotted, batch = _FORKED  # type: ignore[misc]
    own = rows.detached()  # a connection of the worker's own: the parent's pool is not fork-safe
    try:
        return _scan(ledger.mapper, own, heads, snapshotted, batch, *bounds)
    finally:
        own.close()


def uuid_ranges(n: int) -> list[tuple[UUID | None, UUID | None]]:
    """``n`` contiguous ranges covering every UUID (the first open below, the last open above)."""
    cuts = [UUID(int=(i << 128) // n) for i in range(1, n)]
    return list(zip([None, *cuts], [*cuts, None]))


#: Below this many stored events the whole-ledger check runs in one process (forking costs more than it saves).
PARALLEL_FROM_EVENTS = 50_000


def auto_workers(events: int) -> int:
    """Processes for a whole-ledger check of ``events`` events: one per CPU (up to 4) for a big store."""
    return min(os.cpu_count() or 1, 4) if events >= PARALLEL_FROM_EVENTS else 1


def verify_all(ledger: Any, *, batch: int = BATCH, snapshots: bool = True, workers: int | None = 1,
               progress: Callable[[int], None] | None = None) -> Verification:
    """Every aggregate's chain, streaming the whole store per aggregate in big batches.

    Reads rows straight from the event table (``batch`` a statement), decodes them
    with the application's mapper, checks each chain against its anchor, and each
    snapshotted person's snapshots against the replayed events.

    ``workers`` > 1 (PostgreSQL only): the aggregate ids are split into that many
    ranges, checked by forked processes with a connection each; ``None`` chooses
    (:func:`auto_workers`). Forking copies the calling process: the CLI does it; a
    long-running threaded server (HTTP) should keep the default, one process.
    """
    global _FORKED
    started = time.perf_counter()
    rows = event_rows(ledger)
    result = Verification(scope="ledger", position=rows.max_notification_id())
    heads = digest_store(ledger).heads()
    snapshotted = rows.snapshot_ids() if snapshots else set()
    if workers is None:
        workers = auto_workers(result.position)
    if workers > 1 and rows.ranges and "fork" in multiprocessing.get_all_start_methods():
        _FORKED = (ledger, rows, heads, snapshotted, batch)
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                parts = pool.map(_scan_range, uuid_ranges(workers))
        finally:
            _FORKED = None
    else:
        parts = [_scan(ledger.mapper, rows, heads, snapshotted, batch, progress=progress)]
    unanchored = 0
    for part in parts:
        result.findings += part.findings
        result.notes += part.notes
        result.events += part.events
        result.aggregates += part.aggregates
        result.persons += part.persons
        unanchored += part.unanchored
    if unanchored:
        result.notes.append(Note("ledger_unsealed", n=unanchored))
    result.seconds = time.perf_counter() - started
    return result


def verify_digests(ledger: Any, channel: DigestChannel | None) -> Verification:
    """Recompute every sealed segment from the stored rows; compare with the published and the stored copies."""
    started = time.perf_counter()
    rows = event_rows(ledger)
    store = digest_store(ledger)
    result = Verification(scope="digests", position=rows.max_notification_id())
    stored = {s.seq: s for s in store.segments()}
    published: dict[int, Segment] = {}
    if channel is None:
        result.notes.append(Note("no_digest_topic"))
    else:
        for record in channel.published():
            if "error" in record:
                result.findings.append(Finding("DIGEST_RECORD_INVALID", record["error"], kind="discrepancy"))
                continue
            try:
                segment = Segment.from_record(record)
            except (KeyError, ValueError) as exc:
                result.findings.append(Finding("DIGEST_RECORD_INVALID", f"a record on {channel.topic} is not a digest "
                                                                       f"record ({exc})", kind="discrepancy"))
                continue
            published.setdefault(segment.seq, segment)

    def add(code: str, s: Segment, message: str, kind: str = "tampering") -> None:
        result.findings.append(Finding(code, f"day {s.day.isoformat()} (digest segment {s.seq}): {message}",
                                       day=s.day.isoformat(), kind=kind))

    reference: dict[int, Segment] = {}
    for seq in sorted(set(stored) | set(published)):
        mine, theirs = stored.get(seq), published.get(seq)
        if theirs is not None and mine is None:
            add("DIGEST_MISSING_IN_STORE", theirs, "published, but its row in audit_digests is gone: deleted")
        elif mine is not None and theirs is None and channel is not None:
            if mine.published_at is None:
                result.notes.append(Note("sealed_not_published", day=mine.day, seq=seq))
            else:
                add("DIGEST_MISSING_ON_TOPIC", mine, f"marked published at {mine.published_at.isoformat()} but not on "
                                                     f"{channel.topic}", kind="discrepancy")
        elif mine is not None and theirs is not None:
            fields = ("day", "first_notification_id", "last_notification_id", "event_count", "prev_digest", "digest")
            differ = [f for f in fields if getattr(mine, f) != getattr(theirs, f)]
            if differ:
                add("DIGEST_STORE_CHANGED", mine, f"the database copy differs from the published one in "
                                                  f"{', '.join(differ)}: the database copy was changed")
        reference[seq] = theirs or mine  # type: ignore[assignment]
    ordered = [reference[seq] for seq in sorted(reference)]
    previous: Segment | None = None
    for s in ordered:
        expected = previous.digest if previous is not None else "0" * 64
        if s.prev_digest != expected or (previous is not None and s.first_notification_id
                                         != previous.last_notification_id + 1):
            add("DIGEST_CHAIN_BROKEN", s, "does not continue the previous segment (prev_digest or notification "
                                          "range): a segment is missing or was replaced")
        previous = s
    if ordered:
        _recompute(rows, ledger.mapper, ordered, add, result)
        last = ordered[-1].last_notification_id
        after = sum(1 for _ in rows.by_notification(after=last)) if result.position > last else 0
        if after:
            result.notes.append(Note("after_last_segment", n=after, day=ordered[-1].day))
    else:
        result.notes.append(Note("nothing_sealed"))
    result.segments = len(ordered)
    result.seconds = time.perf_counter() - started
    return result


def _recompute(rows: Any, mapper: Any, segments: list[Segment], add: Callable[..., None], result: Verification) -> None:
    """One pass in notification order over the sealed range, one accumulator per segment."""
    i = 0
    acc = _Accumulator(segments[0].prev_digest)

    def close(s: Segment, acc: _Accumulator) -> None:
        digest = acc.hexdigest()
        if digest != s.digest or acc.count != s.event_count:
            add("DIGEST_MISMATCH", s, f"recomputed from the stored rows: {acc.count} events, digest {digest[:16]}…; "
                                      f"sealed: {s.event_count} events, digest {s.digest[:16]}…: events recorded that "
                                      "day were changed, deleted or added after sealing (ledger verify shows which "
                                      "person and version)")

    for row in rows.by_notification(after=segments[0].first_notification_id - 1,
                                    upto=segments[-1].last_notification_id):
        while i < len(segments) and row.notification_id > segments[i].last_notification_id:
            close(segments[i], acc)
            i += 1
            if i < len(segments):
                acc = _Accumulator(segments[i].prev_digest)
        if i >= len(segments):
            break
        if row.notification_id < segments[i].first_notification_id:
            continue  # between segments whose chain is already reported broken
        _, digest, error = decode_row(mapper, row)
        acc.add(row, digest if error is None else unreadable_digest(row))
        result.events += 1
    while i < len(segments):
        close(segments[i], acc)
        i += 1
        if i < len(segments):
            acc = _Accumulator(segments[i].prev_digest)
