"""The ledger's application service: load a person, call one intent method, save.

Every entrypoint (Kafka consumers, HTTP API, CLI, batch import, the demo) goes
through :class:`Ledger`. It adds what the aggregate cannot know alone:

* identity: the person's aggregate id is a keyed hash of ID type + number, so every
  feed finds the same person without a lookup table;
* idempotency across the whole ledger: each source key (tax voucher + office,
  registry record id) is taken once through a :class:`SourceRecord` index aggregate
  saved in the same transaction as the person's events;
* optimistic concurrency: a write that lost a race is retried a bounded number of
  times on fresh state;
* policy tables: the domain gets the table for the region and year it needs.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import (
    EventStore,
    IntegrityError,
    ProcessRecorder,
    Tracking,
    Transcoder,
    Transcoding,
)

from ledger.domain.chain import content_digest
from ledger.domain.errors import Conflict, DomainError, NotFound
from ledger.domain.identity import PersonIdentity, parse_identity, person_id_for
from ledger.domain import transfers as transfer_rules
from ledger.domain.history import Transfer
from ledger.domain.person import Person, business_date, require_date, voucher_key
from ledger.domain.source_record import SourceRecord
from ledger.domain.vocabulary import (
    AccountEntryReason,
    EnrollmentChannel,
    EnrollmentEndReason,
    LevyItem,
    PaymentKind,
    ResidenceStatus,
    Scheme,
    SubsidyCategory,
    parse_code,
)
from ledger.log import get_logger
from ledger.policy import PolicyBook
from ledger.policy import rules
from ledger.ports import EarlyLoad, PersonStore, PlainPersonStore
from ledger.inbound_records import Provenance, ResidentRecord, StatusRecord, TaxPaymentRecord
import json
from ledger.domain.feed_rejection import FeedRejection
from ledger.domain.arrears import due_rows, fee_table, late_fee_owed
from ledger.domain.coverage import derive
from ledger.domain.history import fold_many

log = get_logger("ledger.application")


class DateAsISO(Transcoding):
    """Store ``datetime.date`` as ISO text (the library knows datetimes, not dates)."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


@dataclass
class Outcome:
    """What a command did: applied, or recognised as a resend (and why)."""

    person_id: UUID | None
    applied: bool
    message: str
    event_ids: list[str] = field(default_factory=list)
    error: DomainError | None = None
    #: A command that waits for a second clerk (maker-checker): the pending change recorded instead of events.
    change: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "person_id": str(self.person_id) if self.person_id else None,
            "applied": self.applied,
            "message": self.message,
            "event_ids": self.event_ids,
        }
        if self.error is not None:
            out["error"] = self.error.as_dict()
        if self.change is not None:
            out["change"] = self.change
        return out


@dataclass(frozen=True)
class SourceKey:
    """An external record's idempotency key and the digest of its business content."""

    kind: str
    key: str
    digest: str
    summary: dict[str, str]


#: What :meth:`Ledger.prepare_tax_records` works out per record: identity, person id, voucher key, its index id.
PreparedTaxRecord = tuple[PersonIdentity, UUID, SourceKey, UUID]
#: The source-record kind of tax vouchers.
PAYMENT_SOURCE_KIND = "tax-voucher"
#: Conflicts kept for reconciliation: from any entrance, each is a dead letter (``ledger dlq list``).
KEPT_CONFLICTS = frozenset({"VOUCHER_CONFLICT", "RECORD_CONFLICT"})


class PreparedTaxRecords(list):  # type: ignore[type-arg]
    """:meth:`Ledger.prepare_tax_records`' list, with the load it may have started early."""

    prefetch: EarlyLoad | None = None
    after_writes: int | None = None


class PendingOutcomes:
    """The outcomes of :meth:`Ledger.begin_tax_records`, once its last write is committed."""

    def __init__(self, complete: Callable[[], list[Outcome]]) -> None:
        self._complete: Callable[[], list[Outcome]] | None = complete
        self._outcomes: list[Outcome] | None = None

    def result(self) -> list[Outcome]:
        """Wait for the write, finish it (or redo a lost race); the outcomes, in the records' order."""
        if self._outcomes is None:
            complete, self._complete = self._complete, None
            if complete is None:
                raise RuntimeError("this batch's write already failed")
            self._outcomes = complete()
        return self._outcomes


class CurrentSnapshots(EventStore[UUID]):
    """An event store of snapshots that leaves out those of an older ``class_version`` (see
    ``Ledger.construct_snapshot_store``); everything else is the library's own store."""

    def get(self, *args: Any, **kwargs: Any) -> Iterator[Any]:  # type: ignore[override]
        return (s for s in super().get(*args, **kwargs) if Person.Snapshot.is_current(s))


def today_utc() -> date:
    return datetime.now(timezone.utc).date()


class Ledger(Application):
    """Enrollment and contribution ledger (参保缴费台账) for one deployment."""

    name = "Ledger"
    snapshotting_intervals = {Person: 100}
    #: Person events after which the person is snapshotted as well (besides every 100th event):
    #: a coverage year's assessment (缴费核定) opens that year's collection, and the payments,
    #: subsidies and refunds that follow then load the snapshot and the few events after it,
    #: not the person's whole history.
    snapshot_after: tuple[type, ...] = (Person.ContributionAssessed,)
    #: Optimistic-concurrency retries before giving up with CONCURRENT_UPDATE.
    max_attempts = 20

    def __init__(
        self, env: dict[str, str] | None = None, *, policies: PolicyBook, id_key: bytes,
        person_store: Callable[[Ledger], PersonStore] = PlainPersonStore,
    ) -> None:
        """``person_store`` makes the store the batch path and the snapshots go through
        (:class:`ledger.ports.PersonStore`); the wiring (``entrypoints.wiring``) plugs in the
        event store's adapter, ``infra.event_store.PersonBatches``."""
        if not id_key:
            raise ValueError("the identity key (LEDGER_ID_KEY) must not be empty")
        #: Writes made (or handed to the writer thread) by this ledger: a load started early is
        #: used only if this has not moved since (see prepare_tax_records).
        self._writes = 0
        super().__init__(env)
        self.person_store: PersonStore = person_store(self)
        self.policies = policies
        self._id_key = id_key

    def construct_snapshot_store(self) -> EventStore[UUID]:
        """The snapshot store, reading only snapshots of the aggregates' current shape (``class_version``).

        A snapshot is a cache, never evidence: one of an older shape of the state (e.g. a person's
        dict state before ``Person.class_version`` 2) is left out, so ``Repository.get`` replays the
        person's events instead; the next snapshot taken of that person drops it (``_take_snapshots``).
        """
        recorder = self.factory.aggregate_recorder(purpose="snapshots")
        return CurrentSnapshots(mapper=self.mapper, recorder=recorder)

    def register_transcodings(self, transcoder: Transcoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # ------------------------------------------------------------ feed positions (exactly-once)
    def construct_recorder(self) -> ProcessRecorder:
        """A process recorder: a save can carry a feed position (:class:`Tracking`) in its transaction.

        Kafka positions are kept as ``Tracking(f"{consumer}:{topic}:{partition}", offset)``
        in the store's tracking table, committed with the events they caused. The recorder is
        the one the library's factory gives (``PERSISTENCE_MODULE``); the wiring names the event
        store adapter's on PostgreSQL (``infra.event_store.recorders``: events inserted as binary arrays).
        """
        recorder = self.factory.process_recorder()
        if getattr(getattr(recorder, "datastore", None), "enable_db_functions", False):
            # The PostgreSQL insert function path ignores tracking: positions would be lost.
            raise ValueError("POSTGRES_ENABLE_DB_FUNCTIONS cannot be used: it drops feed positions")
        return recorder

    def save(self, *objs: Any, tracking: Tracking | None = None, **kwargs: Any) -> Any:
        """Save aggregates; with ``tracking``, the feed position is recorded in the same transaction."""
        if tracking is None:
            return super().save(*objs, **kwargs)
        processing_event: ProcessingEvent[UUID] = ProcessingEvent(tracking)
        processing_event.collect_events(*objs, **kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Snapshots of the aggregates just saved: every ``snapshotting_intervals`` events (as the
        library does) and after each ``snapshot_after`` event; then each person's older snapshots go.

        Which versions is the ledger's rule; how they are taken is the person store's
        (:meth:`ledger.ports.PersonStore.take_snapshots`: the event store adapter takes them
        from the saved persons in one statement). Loads start from the latest snapshot only,
        and each holds the whole state, which grows year by year: the older ones of these
        persons are dropped (``drop_older_snapshots``). A snapshot is a cache: one lost to a
        crash right after the events' commit is simply not there, and loads replay instead.
        """
        if self.snapshots is None:
            return
        recorded: dict[UUID, int] = {}  # each aggregate's last version recorded by this save
        for event in processing_event.events:
            recorded[event.originator_id] = event.originator_version
        targets: dict[UUID, set[int]] = {}
        for event in processing_event.events:
            aggregate = processing_event.aggregates.get(event.originator_id)
            if aggregate is None:
                continue
            interval = (self.snapshotting_intervals or {}).get(type(aggregate))
            if interval and event.originator_version % interval == 0:
                targets.setdefault(aggregate.id, set()).add(event.originator_version)
            elif isinstance(event, self.snapshot_after):
                targets.setdefault(aggregate.id, set()).add(recorded[aggregate.id])
        if targets:
            self.person_store.take_snapshots(processing_event, targets)
            self.person_store.drop_older_snapshots({i: max(versions) for i, versions in targets.items()})

    def position(self, name: str) -> int | None:
        """The last feed position recorded under ``name`` (an offset), or None."""
        return self.recorder.max_tracking_id(name)

    def position_taken(self, tracking: Tracking) -> bool:
        """True when this position (or a later one) of the same feed was already recorded."""
        recorded = self.position(tracking.application_name)
        return recorded is not None and recorded >= tracking.notification_id

    def record_position(self, tracking: Tracking, *aggregates: Any) -> bool:
        """Record a feed position, with whatever the position produced (e.g. a rejection), in one transaction.

        Returns False (nothing written) when another consumer already recorded this position.
        """
        try:
            self.save(*aggregates, tracking=tracking)
        except IntegrityError:
            if self.position_taken(tracking):
                return False
            raise
        return True

    # ------------------------------------------------------------ identity
    def identify(self, id_type: str, id_number: str) -> tuple[PersonIdentity, UUID]:
        identity = parse_identity(id_type, id_number)
        return identity, person_id_for(identity, self._id_key)

    def person_id(self, id_type: str, id_number: str) -> UUID:
        return self.identify(id_type, id_number)[1]

    def get_person(self, person_id: UUID, *, version: int | None = None) -> Person:
        try:
            return self.repository.get(person_id, version=version)
        except AggregateNotFoundError:
            raise NotFound("PERSON_NOT_FOUND", "no person with that ID is registered in the ledger") from None

    def find_person(self, id_type: str, id_number: str) -> Person:
        return self.get_person(self.person_id(id_type, id_number))

    def source_record(self, kind: str, key: str) -> SourceRecord | None:
        try:
            return self.repository.get(SourceRecord.id_for(kind, key))
        except AggregateNotFoundError:
            return None

    # ------------------------------------------------------------ the unit of work
    def _execute(
        self,
        person_id: UUID,
        command: Callable[[Person], Any],
        *,
        provenance: Provenance,
        source: SourceKey | None = None,
        create: Callable[[], Person] | None = None,
        describe: str = "",
        tracking: Tracking | None = None,
        follow_merge: bool = False,
    ) -> Outcome:
        """:meth:`_execute_command`; a record conflict sent over HTTP or the command line is also kept
        as a dead letter, like one from a feed (the feed consumer keeps its own, with its position)."""
        try:
            return self._execute_command(person_id, command, provenance=provenance, source=source, create=create,
                                         describe=describe, tracking=tracking, follow_merge=follow_merge)
        except Conflict as e:
            if e.code not in KEPT_CONFLICTS or tracking is not None or provenance.source == "kafka":
                raise
            kept = self._keep_conflict(e, person_id, source, provenance)
            raise Conflict(e.code, f"{e.message}; kept as dead letter {kept} (`ledger dlq list`) "
                                   "(凭证内容与已入账记录不一致：未入账，已记入拒收清单待核对)",
                           **{**e.details, "dead_letter_id": str(kept)}) from None

    def _keep_conflict(self, error: Conflict, person_id: UUID, source: SourceKey | None,
                       provenance: Provenance) -> UUID:
        """The conflict as a :class:`FeedRejection` of its entrance (api, cli, batch): once per content."""
        kind = source.kind if source is not None else "record"
        key = source.key if source is not None else (provenance.record_key or "")
        digest = source.digest if source is not None else (provenance.request_id or "")
        entrance = f"{provenance.source}:{kind}"
        rejection_id = FeedRejection.id_for_entrance(entrance, key, digest)
        try:
            self.repository.get(rejection_id)
            return rejection_id  # the same conflicting content was kept before
        except AggregateNotFoundError:
            pass
        summary = dict(source.summary) if source is not None else {}
        raw = json.dumps({"entrance": provenance.source, "request_id": provenance.request_id,
                          "user": provenance.user, "kind": kind, "key": key, "person_id": str(person_id),
                          "region_code": summary.pop("region_code", None), "summary": summary},
                         ensure_ascii=False, sort_keys=True).encode()
        rejection = FeedRejection.keep_refused_request(
            rejection_id, entrance=entrance, key=key, code=error.code, message=error.message, raw=raw,
            received_at=datetime.now(timezone.utc))
        try:
            self.save(rejection)
        except IntegrityError:
            pass  # a concurrent request with the same content kept it first
        log.warning("conflict_kept", code=error.code, entrance=entrance, key=key, dead_letter=str(rejection_id))
        return rejection_id

    def _execute_command(
        self,
        person_id: UUID,
        command: Callable[[Person], Any],
        *,
        provenance: Provenance,
        source: SourceKey | None = None,
        create: Callable[[], Person] | None = None,
        describe: str = "",
        tracking: Tracking | None = None,
        follow_merge: bool = False,
    ) -> Outcome:
        """Load (or create) the person, run one command, save with its source key.

        Retries on a lost optimistic-concurrency race, on fresh state each time.
        With ``tracking`` (a feed position) the position is recorded in the same
        transaction as the events, or alone when there is nothing to change; a
        position another consumer already recorded makes this a no-op.

        ``follow_merge`` (inbound records: tax, status, registry): a person whose record was merged
        into another's (参保人合并) is not changed; the command runs on the person kept instead.
        """
        named = person_id  # the person the record names (before a merge is followed)
        for _attempt in range(self.max_attempts):
            try:
                found = self.repository.get(person_id)
            except AggregateNotFoundError:
                found = None
            if follow_merge and found is not None and found.merged_into is not None:
                person_id, found = self._survivor(found)
            if source is not None:
                resend = self._check_source(source, person_id, provenance,
                                            self.source_record(source.kind, source.key), alias=named)
                if resend is not None:
                    if tracking is not None:
                        self.record_position(tracking)
                    return resend
            person, _created = self._existing_or_new(found, create)
            result = command(person)
            pending = list(person.pending_events)
            if not pending:
                if tracking is not None:
                    self.record_position(tracking)
                return self._unchanged(person_id, describe)
            to_save: list[Any] = [person]
            if source is not None:
                to_save.append(self._source_index(source, person_id, provenance))
            try:
                self.save(*to_save, tracking=tracking)
            except IntegrityError:
                if tracking is not None and self.position_taken(tracking):
                    return Outcome(person_id, False, f"feed position {tracking.notification_id} was already processed")
                log.info("write_conflict_retry", person_id=str(person_id), attempt=_attempt + 1)
                # Back off with jitter so two writers racing on one person stop colliding.
                time.sleep(random.uniform(0, min(0.5, 0.002 * 2**_attempt)))
                continue
            outcome = Outcome(person_id, True, describe or "recorded", [str(e.event_id) for e in pending])
            if isinstance(result, str):
                outcome.message = result
            return outcome
        raise Conflict(
            "CONCURRENT_UPDATE",
            "this person was being changed by another writer at the same time; try again",
            person_id=str(person_id),
        )

    # ------------------------------------------------------------ the steps of a command (every path)
    # One resend check, one registration step, one voucher index step: _execute_command takes them
    # for one record, begin_tax_records for many records on the persons and indexes it loaded at once.
    def _survivor(self, person: Person) -> tuple[UUID, Person]:
        """The person a merged record went into (following later merges too), loaded."""
        for _hop in range(16):
            if person.merged_into is None:
                return person.id, person
            person = self.get_person(UUID(person.merged_into))
        raise DomainError("MERGE_CHAIN_TOO_LONG", "参保人合并链过长，请核对合并记录 (too many merges in a row)")

    def _check_source(
        self, source: SourceKey, person_id: UUID, provenance: Provenance, record: SourceRecord | None,
        alias: UUID | None = None,
    ) -> Outcome | None:
        """The resend check, on ``record`` (the source key's index as stored, or None if never taken).

        None: the source is new. An Outcome: the same content was recorded before (a resend,
        nothing to do). Different content under the same key: the conflict is kept on the index
        for reconciliation and raised (VOUCHER_CONFLICT / RECORD_CONFLICT).
        """
        if record is None:
            return None
        if record.content_digest == source.digest and record.person_id in (person_id, alias):
            return Outcome(person_id, False, f"{source.kind} {source.key} was already recorded; nothing changed")
        record.observe_conflict(content_digest=source.digest, provenance=provenance.as_dict(), summary=source.summary)
        if record.pending_events:
            try:
                self.save(record)
            except IntegrityError:
                pass  # another writer kept the same conflict first
        raise Conflict(
            "VOUCHER_CONFLICT" if source.kind == "tax-voucher" else "RECORD_CONFLICT",
            f"{source.kind} {source.key} was already recorded with different content; "
            "the new version is kept for reconciliation and not applied",
            key=source.key,
        )

    @staticmethod
    def _existing_or_new(found: Person | None, create: Callable[[], Person] | None) -> tuple[Person, bool]:
        """The person the command runs on: ``found`` (loaded), or registered now by ``create``
        (True when new); PERSON_NOT_FOUND when the command cannot register them."""
        if found is not None:
            return found, False
        if create is None:
            raise NotFound("PERSON_NOT_FOUND", "no person with that ID is registered in the ledger; register them first")
        return create(), True

    @staticmethod
    def _source_index(source: SourceKey, person_id: UUID, provenance: Provenance) -> SourceRecord:
        """The source key's index (the voucher index, for tax records), saved with the person's events."""
        return SourceRecord.take(kind=source.kind, key=source.key, person_id=person_id,
                                 content_digest=source.digest, provenance=provenance.as_dict())

    @staticmethod
    def _unchanged(person_id: UUID, describe: str) -> Outcome:
        """The outcome of a command that changed nothing."""
        return Outcome(person_id, False, f"{describe or 'command'}: nothing to change (already recorded)")

    # ------------------------------------------------------------ registration & enrollment
    def _registration(
        self, identity: PersonIdentity, person_id: UUID, name: str, household_grid: str | None,
        effective_date: date, provenance: Provenance,
    ) -> Callable[[], Person]:
        return lambda: Person.register(
            person_id=person_id,
            id_type=identity.id_type.value if hasattr(identity.id_type, "value") else str(identity.id_type),
            id_number=identity.id_number,
            name=name,
            birth_date=identity.birth_date,
            sex=identity.sex,
            household_grid=household_grid,
            effective_date=effective_date,
            provenance=provenance.as_dict(),
        )

    def register_person(
        self,
        *,
        id_type: str,
        id_number: str,
        name: str,
        household_grid: str | None = None,
        effective_date: date | None = None,
        provenance: Provenance,
    ) -> Outcome:
        """Register a person (参保人登记); registering the same ID again changes nothing."""
        identity, person_id = self.identify(id_type, id_number)
        create = self._registration(identity, person_id, name, household_grid, effective_date or today_utc(), provenance)
        return self._execute(person_id, lambda p: None, provenance=provenance, create=create, describe="registered")

    def enroll(
        self,
        *,
        id_type: str,
        id_number: str,
        name: str,
        scheme: str,
        region_code: str,
        grid_code: str | None = None,
        flexible: bool = False,
        employer_id: str | None = None,
        channel: str = EnrollmentChannel.COUNTER,
        effective_date: date,
        provenance: Provenance,
    ) -> Outcome:
        """Register (if new) and enroll a person in a scheme (参保登记)."""
        identity, person_id = self.identify(id_type, id_number)
        scheme_code = parse_code(Scheme, scheme, "SCHEME_UNKNOWN", "scheme")
        channel_code = parse_code(EnrollmentChannel, channel, "CHANNEL_UNKNOWN", "enrollment channel")
        create = self._registration(identity, person_id, name, grid_code, effective_date, provenance)
        return self._execute(
            person_id,
            lambda p: p.enroll(
                scheme=scheme_code,
                region_code=region_code,
                grid_code=grid_code,
                flexible=flexible,
                employer_id=employer_id,
                channel=channel_code,
                effective_date=effective_date,
                provenance=provenance.as_dict(),
                policies=self.policies,
            ),
            provenance=provenance,
            create=create,
            describe="enrolled",
        )

    def end_enrollment(
        self, person_id: UUID, *, reason: str, effective_date: date, provenance: Provenance, enrollment_id: str | None = None
    ) -> Outcome:
        reason_code = parse_code(EnrollmentEndReason, reason, "END_REASON_UNKNOWN", "reason")
        return self._execute(
            person_id,
            lambda p: p.end_enrollment(
                enrollment_id=enrollment_id, reason=reason_code, effective_date=effective_date, provenance=provenance.as_dict()
            ),
            provenance=provenance,
            describe="enrollment ended",
        )

    # ------------------------------------------------------------ assessment
    def assess_resident_year(
        self, person_id: UUID, year: int, *, provenance: Provenance, effective_date: date | None = None
    ) -> Outcome:
        """Assess what a resident owes for coverage year ``year`` (缴费核定)."""

        def command(person: Person) -> None:
            current = person.active_enrollment
            region = current.region_code if current else None
            if region is None:
                raise DomainError("NOT_ENROLLED_RESIDENT", f"this person has no enrollment in force to assess for {year}")
            person.assess_resident_year(
                table=self.policies.get(region, year),
                effective_date=effective_date or today_utc(),
                provenance=provenance.as_dict(),
            )

        return self._execute(person_id, command, provenance=provenance, describe=f"assessed {year}")

    def assess_employee_month(
        self, person_id: UUID, month: str, *, declared_base_fen: int, provenance: Provenance, effective_date: date | None = None
    ) -> Outcome:
        """Assess an employee-scheme month on the declared contribution base (缴费基数)."""
        try:
            year, mon = int(month[:4]), int(month[5:7])
            if len(month) != 7 or month[4] != "-" or not 1 <= mon <= 12:
                raise ValueError
        except ValueError:
            raise DomainError("PERIOD_INVALID", f"month must look like 2025-03; got {month!r}") from None
        rules.check_amount_fen(declared_base_fen, "declared_base_fen", self.policies.value_limits())

        def command(person: Person) -> None:
            current = person.active_enrollment
            if current is None:
                raise DomainError("NOT_ENROLLED_EMPLOYEE", f"no employee-scheme enrollment in force to assess {month}")
            table = self.policies.get(current.region_code, year)
            result = rules.employee_contribution(table, declared_base_fen)
            person.assess_employee_month(
                month=month, table=table, result=result, due_date=rules.employee_due_date(table, year, mon),
                effective_date=effective_date or today_utc(), provenance=provenance.as_dict(),
            )

        return self._execute(person_id, command, provenance=provenance, describe=f"assessed {month}")

    def _reassess_touched_years(
        self, person: Person, start: date, end: date | None, provenance: Provenance, effective_date: date
    ) -> None:
        """After a status change, re-assess every assessed resident year it touches.

        An open-ended status (no end date) touches every year from its start on. The
        re-assessment takes effect on the status record's date, so replaying the same
        feed gives the same events whatever day it runs.
        """
        for period, assessment in sorted(person.assessments.items()):
            if assessment.scheme != Scheme.RESIDENT:
                continue
            year = int(period)
            if year < start.year - 1 or (end is not None and year > end.year + 1):
                continue
            person.assess_resident_year(
                table=self.policies.get(assessment.region_code, year),
                effective_date=effective_date,
                provenance=provenance.as_dict(),
                require_enrollment=False,
            )

    # ------------------------------------------------------------ subsidised groups
    def apply_status(
        self, record: StatusRecord, *, provenance: Provenance, tracking: Tracking | None = None
    ) -> Outcome:
        """Apply a civil-affairs status grant or revocation, then re-assess the years it touches."""
        identity, person_id = self.identify(record.id_type, record.id_number)
        category = parse_code(SubsidyCategory, record.category, "SUBSIDY_CATEGORY_UNKNOWN", "subsidy category")
        require_date(record.valid_from, "valid_from")
        grant_id = record.grant_id or record.document_no
        source = SourceKey(
            kind="registry-status",
            key=record.record_id,
            # The fields added later (address, phone) count only when given, so a resend of a record
            # stored before them digests as it did then.
            digest=content_digest({k: v for k, v in record.__dict__.items()
                                   if not (k in ("address", "phone") and v is None)}),
            summary={"record_id": record.record_id, "category": category.value, "granted": str(record.granted)},
        )
        create = self._registration(identity, person_id, record.name, None, record.valid_from, provenance)

        def command(person: Person) -> None:
            if record.granted:
                person.grant_subsidy(
                    grant_id=grant_id, category=category, valid_from=record.valid_from, valid_to=record.valid_to,
                    department=record.department, document_no=record.document_no,
                    effective_date=record.valid_from, provenance=provenance.as_dict(),
                )
                end = record.valid_to
            else:
                person.revoke_subsidy(
                    grant_id=grant_id, revoked_from=record.valid_from, department=record.department,
                    document_no=record.document_no, effective_date=record.valid_from, provenance=provenance.as_dict(),
                )
                end = None
            self._reassess_touched_years(person, record.valid_from, end, provenance, record.valid_from)

        return self._execute(
            person_id, command, provenance=provenance, source=source,
            create=create if record.granted else None, describe="status granted" if record.granted else "status revoked",
            tracking=tracking, follow_merge=True,
        )

    # ------------------------------------------------------------ payments
    def _payment_source(self, record: TaxPaymentRecord) -> SourceKey:
        body = {k: v for k, v in record.__dict__.items()}
        return SourceKey(
            kind=PAYMENT_SOURCE_KIND,
            key=voucher_key(record.tax_office, record.voucher_no),
            digest=content_digest(body),
            summary={"voucher_no": record.voucher_no, "tax_office": record.tax_office,
                     "amount_fen": str(record.amount_fen), "kind": str(record.kind),
                     "region_code": str(record.region_code)},
        )

    def _payment_command(self, record: TaxPaymentRecord, provenance: Provenance) -> Callable[[Person], Any]:
        kind = parse_code(PaymentKind, record.kind, "PAYMENT_KIND_UNKNOWN", "record kind")
        levy = parse_code(LevyItem, record.levy_item, "LEVY_ITEM_UNKNOWN", "levy item")
        prov = provenance.as_dict()

        def command(person: Person) -> None:
            if levy == LevyItem.LATE_FEE:
                person.pay_late_fee(
                    voucher_no=record.voucher_no, tax_office=record.tax_office, region_code=record.region_code,
                    period=late_fee_period(record), amount_fen=record.amount_fen, paid_at=record.paid_at,
                    channel=record.channel, provenance=prov,
                )
                return
            levy_scheme = Scheme(levy.value)
            if kind == PaymentKind.PAYMENT:
                if levy == Scheme.RESIDENT and person.active_enrollment is None and not person.enrollments:
                    # Many residents pay in the tax app first (先缴费后登记): enroll them from the payment.
                    person.enroll(
                        scheme=Scheme.RESIDENT, region_code=record.region_code, grid_code=person.household_grid,
                        flexible=False, employer_id=None, channel=EnrollmentChannel.TAX_PAYMENT,
                        effective_date=business_date(record.paid_at), provenance=prov, policies=self.policies,
                    )
                person.record_payment(
                    voucher_no=record.voucher_no, tax_office=record.tax_office, levy_item=levy_scheme,
                    region_code=record.region_code, amount_fen=record.amount_fen,
                    period_start=record.period_start, period_end=record.period_end, paid_at=record.paid_at,
                    credited_on=record.credited_on, channel=record.channel, provenance=prov, policies=self.policies,
                )
            elif kind == PaymentKind.REFUND:
                person.refund_payment(
                    refund_voucher_no=record.voucher_no, tax_office=record.tax_office,
                    original_voucher_no=_required_original(record), original_tax_office=record.original_tax_office,
                    amount_fen=record.amount_fen, refunded_at=record.paid_at, reason=record.reason, provenance=prov,
                )
            else:
                person.reverse_payment(
                    reversal_voucher_no=record.voucher_no, tax_office=record.tax_office,
                    original_voucher_no=_required_original(record), original_tax_office=record.original_tax_office,
                    amount_fen=record.amount_fen, reversed_at=record.paid_at, reason=record.reason, provenance=prov,
                )

        return command

    def record_tax_record(
        self, record: TaxPaymentRecord, *, provenance: Provenance, tracking: Tracking | None = None
    ) -> Outcome:
        """Record one tax-bureau record (payment, refund or reversal), exactly once per voucher.

        A payment for a person the ledger has never seen registers and enrolls them
        (resident scheme); a refund or reversal needs the person and the original.
        """
        identity, person_id = self.identify(record.id_type, record.id_number)
        return self._execute(
            person_id, self._payment_command(record, provenance), provenance=provenance,
            source=self._payment_source(record), create=self._payment_registration(record, identity, person_id, provenance),
            describe=_payment_describe(record), tracking=tracking, follow_merge=True,
        )

    def _payment_registration(self, record: TaxPaymentRecord, identity: PersonIdentity, person_id: UUID,
                              provenance: Provenance) -> Callable[[], Person] | None:
        """A payment registers a person the ledger has never seen (先缴费后登记); a refund or reversal does not,
        nor a late fee (it is owed on an assessed month of a known person)."""
        if record.kind != PaymentKind.PAYMENT or str(record.levy_item) == LevyItem.LATE_FEE:
            return None
        return self._registration(identity, person_id, record.name, None, business_date(record.paid_at), provenance)

    def prepare_tax_records(self, records: Sequence[TaxPaymentRecord], *, prefetch: bool = False,
                            ) -> PreparedTaxRecords:
        """What :meth:`record_tax_records` works out from each record alone: identity, person id, voucher key.

        Reads nothing from the store, so a feed consumer can do it while the previous batch's
        write is still in flight. A record that cannot be identified gets its error instead.

        With ``prefetch``, the person store starts loading the persons and voucher indexes as
        soon as their ids are known (on PostgreSQL: the statement is handed to the writer
        thread, behind the write in flight, so it reads what that write committed), while the
        records' digests are computed here; :meth:`begin_tax_records` uses its rows if no other write of this
        ledger came in between (``_writes``), and loads them itself otherwise.
        """
        identified: list[tuple[PersonIdentity, UUID, UUID] | DomainError] = []
        for record in records:
            try:
                identity, person_id = self.identify(record.id_type, record.id_number)
                source_id = SourceRecord.id_for(PAYMENT_SOURCE_KIND, voucher_key(record.tax_office, record.voucher_no))
            except DomainError as e:
                identified.append(e)
                continue
            identified.append((identity, person_id, source_id))
        out = PreparedTaxRecords()
        if prefetch:
            ids = [item[2] for item in identified if not isinstance(item, DomainError)]
            ids += [item[1] for item in identified if not isinstance(item, DomainError)]
            out.prefetch = self.person_store.start_loading(ids)
            out.after_writes = self._writes
        for record, item in zip(records, identified):
            if isinstance(item, DomainError):
                out.append(item)
                continue
            try:
                source = self._payment_source(record)
            except DomainError as e:
                out.append(e)
                continue
            out.append((item[0], item[1], source, item[2]))
        return out

    def record_tax_records(
        self,
        records: Sequence[tuple[TaxPaymentRecord, Provenance]],
        *,
        tracking: Tracking | None = None,
        finish: Callable[[list[Outcome]], Sequence[Any] | None] | None = None,
        prepared: Sequence[PreparedTaxRecord | DomainError] | None = None,
    ) -> list[Outcome]:
        """Record many tax records, several persons per transaction (the high-volume path).

        A record that breaks a rule gets an Outcome carrying its error and the rest of
        the batch goes ahead; a record that left its person half-changed is dropped and
        the round is rebuilt without it; a lost race falls back to one record at a time.

        Every person and source-record index the round needs is loaded up front in one
        read of the person store (:meth:`ledger.ports.PersonStore.load_many`), not two or three
        per record. Each record then takes the same steps as :meth:`_execute_command`: the
        resend check, registration, the command, the voucher index.

        ``tracking`` (a feed consumer's position) is written in the same transaction as the
        batch's last write, together with the aggregates ``finish(outcomes)`` returns once
        every record's outcome is known (the rejections of the refused records); ``finish``
        returns None when the position must not be written (a record is to be redone). A
        batch is one write unless it holds the same voucher twice (the repeat waits for a
        round of its own) or it lost a race (then one record at a time, and the position is
        not written here: ``position_taken`` tells the caller).

        ``prepared``: what :meth:`prepare_tax_records` gave for these records (worked out here otherwise).
        """
        return self.begin_tax_records(records, tracking=tracking, finish=finish, prepared=prepared).result()

    def begin_tax_records(
        self,
        records: Sequence[tuple[TaxPaymentRecord, Provenance]],
        *,
        tracking: Tracking | None = None,
        finish: Callable[[list[Outcome]], Sequence[Any] | None] | None = None,
        prepared: Sequence[PreparedTaxRecord | DomainError] | None = None,
        background: bool = False,
    ) -> PendingOutcomes:
        """:meth:`record_tax_records`, whose last write (the one with ``tracking``) may still be in flight.

        With ``background``, that transaction's insert and commit may run on the person store's
        writer thread (:meth:`ledger.ports.PersonStore.save_batch`) and this returns as soon as they are handed over:
        the caller may do work that needs nothing from the store (poll the feed, decode and
        :meth:`prepare_tax_records` the next batch), then MUST call ``result()`` before it
        reads or writes the store again. ``result()`` waits for the commit and returns the
        outcomes as ``record_tax_records`` does (a lost race is redone one record at a time
        there); an error of the write is raised there, and then nothing of it is committed,
        or, as with any commit whose answer was lost, the position tells.
        """
        if prepared is None:
            prepared = self.prepare_tax_records([record for record, _provenance in records])
        elif len(prepared) != len(records):
            raise ValueError("prepared must hold one entry per record")
        outcomes: dict[int, Outcome] = {}
        ready: dict[int, tuple[PersonIdentity, UUID, SourceKey, UUID]] = {}
        for i, item in enumerate(prepared):
            if isinstance(item, DomainError):
                outcomes[i] = Outcome(None, False, item.message, error=item)
            else:
                ready[i] = item
        todo = list(ready)
        aliases: dict[int, UUID] = {}  # record -> the person it names, when that record was merged into another
        loaded: dict[UUID, Any] = {}
        missing: set[UUID] = set()
        fresh = True  # load what the round needs (again, after a save)
        early = getattr(prepared, "prefetch", None)
        if early is not None and getattr(prepared, "after_writes", None) != self._writes:
            early = None  # this ledger wrote since the statement was queued: its rows may be stale
        while todo:
            if fresh:
                needed = [ready[i][3] for i in todo] + [ready[i][1] for i in todo]
                found = early.result(needed, _project_hashing_last) if early is not None else None
                early = None
                loaded = found if found is not None else self.person_store.load_many(needed, _project_hashing_last)
                missing = set(needed).difference(loaded)
                self._follow_merges(todo, ready, loaded, missing, aliases)
            fresh = True
            round_outcomes: dict[int, Outcome] = {}
            persons: dict[UUID, Person] = {}
            sources: list[SourceRecord] = []
            keys: set[str] = set()
            deferred: list[int] = []  # the same voucher twice in one batch waits for the first
            broken: int | None = None
            for i in todo:
                record, provenance = records[i]
                identity, person_id, source, source_id = ready[i]
                person: Person | None = None
                created = False
                before = 0
                try:
                    if source.key in keys:
                        deferred.append(i)
                        continue
                    resend = self._check_source(source, person_id, provenance, loaded.get(source_id),
                                                alias=aliases.get(i))
                    if resend is not None:
                        round_outcomes[i] = resend
                        continue
                    person = persons.get(person_id)
                    if person is None:
                        person, created = self._existing_or_new(
                            self._batch_take_person(person_id, loaded, missing),
                            self._payment_registration(record, identity, person_id, provenance))
                    before = len(person.pending_events)
                    self._payment_command(record, provenance)(person)
                except DomainError as e:
                    round_outcomes[i] = Outcome(None, False, e.message, error=e)
                    if person is not None and person.id in persons:
                        if len(person.pending_events) != before:
                            broken = i
                            break
                    elif person is not None and not created and len(person.pending_events) == before:
                        loaded[person_id] = person  # untouched: the next record of this person may use it
                    continue
                describe = _payment_describe(record)
                if len(person.pending_events) == before:
                    round_outcomes[i] = self._unchanged(person_id, describe)
                    if not created and person_id not in persons:
                        loaded[person_id] = person
                    continue
                persons[person_id] = person
                keys.add(source.key)
                sources.append(self._source_index(source, person_id, provenance))
                event_ids = [str(e.event_id) for e in person.pending_events[0 if created else before:]]
                round_outcomes[i] = Outcome(person_id, True, describe, event_ids)
            if broken is not None:
                outcomes[broken] = round_outcomes[broken]
                todo = [j for j in todo if j != broken]
                # Rebuild the round on fresh copies of the persons it changed; the rest is untouched.
                for person_id in persons:
                    loaded.pop(person_id, None)
                loaded.update(self.person_store.load_many([p for p in persons if p not in missing],
                                                          _project_hashing_last))
                fresh = False
                continue
            extras: Sequence[Any] | None = None
            if tracking is not None and not deferred:  # the batch's last write: every outcome is known
                known = {**outcomes, **round_outcomes}
                extras = finish([known[i] for i in range(len(records))]) if finish is not None else ()
            if extras is not None and background:
                # The batch's last write: committed on the writer thread, finished in result().
                self._writes += 1  # (a load started before this write must not be used after it)
                wait = self.person_store.save_batch([*persons.values(), *sources, *extras], tracking=tracking,
                                                    background=True)

                def complete(wait: Callable[[], None] = wait, round_outcomes: dict[int, Outcome] = round_outcomes,
                             ) -> list[Outcome]:
                    try:
                        wait()
                    except IntegrityError:
                        self._redo_one_by_one(records, round_outcomes, outcomes)
                    else:
                        outcomes.update(round_outcomes)
                    return [outcomes[i] for i in range(len(records))]

                return PendingOutcomes(complete)
            try:
                if extras is not None:
                    self.person_store.save_batch([*persons.values(), *sources, *extras], tracking=tracking)
                elif persons:
                    self.person_store.save_batch([*persons.values(), *sources])
            except IntegrityError:
                self._redo_one_by_one(records, round_outcomes, outcomes)
            else:
                outcomes.update(round_outcomes)
            todo = deferred
        done = [outcomes[i] for i in range(len(records))]
        return PendingOutcomes(lambda: done)

    def _follow_merges(self, todo: list[int], ready: dict[int, PreparedTaxRecord], loaded: dict[UUID, Any],
                       missing: set[UUID], aliases: dict[int, UUID]) -> None:
        """Records naming a person whose record was merged into another's go to the person kept (in place)."""
        for i in todo:
            identity, person_id, source, source_id = ready[i]
            person = loaded.get(person_id)
            if not isinstance(person, Person) or person.merged_into is None:
                continue
            survivor_id, survivor = self._survivor(person)
            aliases.setdefault(i, person_id)
            ready[i] = (identity, survivor_id, source, source_id)
            if survivor_id not in loaded:
                loaded[survivor_id] = survivor
                missing.discard(survivor_id)

    def _redo_one_by_one(
        self, records: Sequence[tuple[TaxPaymentRecord, Provenance]], round_outcomes: dict[int, Outcome],
        outcomes: dict[int, Outcome],
    ) -> None:
        """A round's write lost a race: its records again, one transaction each (resends recognised by voucher)."""
        for i, outcome in round_outcomes.items():
            if not outcome.applied:
                outcomes[i] = outcome
                continue
            record, provenance = records[i]
            try:
                outcomes[i] = self.record_tax_record(record, provenance=provenance)
            except DomainError as e:
                outcomes[i] = Outcome(None, False, e.message, error=e)

    def _batch_take_person(self, person_id: UUID, loaded: dict[UUID, Any], missing: set[UUID]) -> Person | None:
        """The batch's loaded copy of a person (handed out once), or None if the person does not exist."""
        person = loaded.pop(person_id, None)
        if person is not None or person_id in missing:
            return person
        try:  # the loaded copy was used and dropped by a record that failed half-way
            return self.repository.get(person_id)
        except AggregateNotFoundError:
            return None

    def _record(self, processing_event: ProcessingEvent[UUID]) -> Any:
        self._writes += 1  # (a load started before this write must not be used after it)
        return super()._record(processing_event)

    def load_many(self, ids: Iterable[UUID]) -> dict[UUID, Any]:
        """The current state of every aggregate in ``ids`` that exists (persons, indexes, kept rejections),
        in one read of the person store where it can (:meth:`ledger.ports.PersonStore.load_many`)."""
        return self.person_store.load_many(ids)

    def close(self) -> None:
        self.person_store.close()
        super().close()

    # ------------------------------------------------------------ transfers & account
    def transfer_out(
        self, person_id: UUID, *, transfer_id: str, counterpart_region: str, effective_date: date, provenance: Provenance
    ) -> Outcome:
        return self._execute(
            person_id,
            lambda p: p.transfer_out(
                transfer_id=transfer_id, counterpart_region=counterpart_region,
                effective_date=effective_date, provenance=provenance.as_dict(),
            ),
            provenance=provenance, describe="transferred out",
        )

    def transfer_in(
        self,
        *,
        id_type: str,
        id_number: str,
        name: str,
        transfer_id: str,
        counterpart_region: str,
        scheme: str,
        region_code: str,
        account_balance_fen: int | None = None,
        contribution_months: int | None = None,
        grid_code: str | None = None,
        flexible: bool = False,
        employer_id: str | None = None,
        source_document_no: str | None = None,
        effective_date: date,
        provenance: Provenance,
    ) -> Outcome:
        """Transfer in (转入): receive what the sending region sent (matched), then enroll here.

        Figures left out mean "what the out half sent"; a transfer from outside this ledger
        (another province) states them from its source document.
        """
        identity, person_id = self.identify(id_type, id_number)
        scheme_code = parse_code(Scheme, scheme, "SCHEME_UNKNOWN", "scheme")
        create = self._registration(identity, person_id, name, grid_code, effective_date, provenance)

        def command(person: Person) -> None:
            person.transfer_in(
                transfer_id=transfer_id, counterpart_region=counterpart_region, region_code=region_code,
                account_balance_fen=account_balance_fen, contribution_months=contribution_months,
                source_document_no=source_document_no, effective_date=effective_date,
                provenance=provenance.as_dict(), policies=self.policies,
                enroll={"scheme": scheme_code, "grid_code": grid_code, "flexible": flexible,
                        "employer_id": employer_id},
            )

        return self._execute(person_id, command, provenance=provenance, create=create, describe="transferred in")

    def request_transfer(
        self, person_id: UUID, *, transfer_id: str, sending_region: str, receiving_region: str, effective_date: date,
        provenance: Provenance,
    ) -> Outcome:
        """A transfer request (转移接续申请) made at the receiving region."""
        return self._execute(
            person_id,
            lambda p: p.request_transfer(transfer_id=transfer_id, sending_region=sending_region,
                                         receiving_region=receiving_region, effective_date=effective_date,
                                         provenance=provenance.as_dict(), policies=self.policies),
            provenance=provenance, describe="transfer requested",
        )

    def cancel_transfer(
        self, person_id: UUID, *, transfer_id: str, reason: str, effective_date: date, provenance: Provenance,
        rejected: bool = False,
    ) -> Outcome:
        """Cancel (撤销, sending region) or reject (拒绝, receiving region) an open transfer."""
        return self._execute(
            person_id,
            lambda p: p.cancel_transfer(transfer_id=transfer_id, reason=reason, effective_date=effective_date,
                                        provenance=provenance.as_dict(), rejected=rejected),
            provenance=provenance, describe="transfer rejected" if rejected else "transfer cancelled",
        )

    def transfer_calendar(self, region_code: str, year: int) -> transfer_rules.TransferCalendar:
        """Time limits and working days of transfers around ``year`` (the region's policy tables)."""
        tables = [self.policies.get(region_code, y).transfer for y in (year - 1, year, year + 1)
                  if (region_code, y) in self.policies]
        return transfer_rules.TransferCalendar.from_policies(tables)

    def transfers_of_region(self, region_code: str, *, today: date, overdue_only: bool = False) -> list[dict[str, Any]]:
        """A region's transfers (转移接续清单): incoming (the in half is this region's to complete, or was
        received from outside the ledger) and outgoing, each with its state on ``today``
        (:func:`ledger.domain.transfers.transfer_status`); overdue ones first."""
        person_ids: list[UUID] = []
        seen: set[UUID] = set()
        start: int | None = 1
        while start is not None:
            batch = self.recorder.select_notifications(start=start, limit=1000, topics=TRANSFER_TOPICS)
            for n in batch:
                if n.originator_id not in seen:
                    seen.add(n.originator_id)
                    person_ids.append(n.originator_id)
            start = batch[-1].id + 1 if len(batch) == 1000 else None
        rows = []
        for pid in person_ids:
            person = self.repository.get(pid)
            for t in person.transfers.values():
                row = transfer_row(person, t, region_code)
                if row is None:
                    continue
                # The awaited half is the receiving region's: its calendar (all regions share the national one).
                calendar_region = row["to_region"] if row["to_region"] in self.policies.regions() else region_code
                state = transfer_rules.transfer_status(
                    t, today, self.transfer_calendar(calendar_region, t.started_on.year))
                if overdue_only and not state.overdue:
                    continue
                row.update(status=state.status, status_label=transfer_rules.STATUS_LABELS.get(state.status),
                           awaiting=state.awaiting, due_on=state.due_on, overdue=state.overdue,
                           overdue_working_days=state.overdue_working_days, explanation=state.explanation)
                rows.append(row)
        rows.sort(key=lambda r: (not r["overdue"], r["due_on"] or date.max, r["started_on"], r["transfer_id"]))
        return rows

    def open_transfer_states(self, person: Any, today: date) -> list[dict[str, Any]]:
        """The person's open transfers on ``today`` (待转出 / 待转入 / 超期), each computed by
        :func:`ledger.domain.transfers.transfer_status` with the awaited half's calendar, oldest first."""
        rows = []
        for t in sorted(person.transfers.values(), key=lambda t: (t.started_on or t.requested_on
                                                                  or date.min, t.transfer_id)):
            if t.direction == "IN" and t.external:
                continue  # received from another province: nothing of ours to wait for
            since = t.started_on or t.requested_on
            if since is None:
                continue
            # As in the region lists: the receiving region's calendar (all regions share the national one).
            received = t.direction == "IN"
            to_region = t.region_code if received else t.counterpart_region
            calendar_region = to_region if to_region in self.policies.regions() else t.region_code
            try:
                calendar = self.transfer_calendar(calendar_region, since.year)
            except DomainError:
                continue  # no policy table with time limits around that year: no deadline to state
            state = transfer_rules.transfer_status(t, today, calendar)
            if state.awaiting is None:
                continue
            rows.append({"transfer_id": state.transfer_id, "status": state.status, "awaiting": state.awaiting,
                         "due_on": state.due_on, "overdue": state.overdue,
                         "overdue_working_days": state.overdue_working_days, "explanation": state.explanation})
        return rows

    def open_transfers_of(self, persons: Mapping[str, Any], today: date) -> dict[str, list[dict[str, Any]]]:
        """:meth:`open_transfer_states` of several loaded persons (by id text), only those with an open one."""
        out = {}
        for pid, person in persons.items():
            if isinstance(person, Person) and person.transfers:
                states = self.open_transfer_states(person, today)
                if states:
                    out[pid] = states
        return out

    def credit_account(
        self, person_id: UUID, *, amount_fen: int, reason: str, reference: str, effective_date: date, provenance: Provenance
    ) -> Outcome:
        reason_code = parse_code(AccountEntryReason, reason, "ACCOUNT_REASON_UNKNOWN", "account reason")
        return self._execute(
            person_id,
            lambda p: p.credit_account(amount_fen=amount_fen, reason=reason_code, reference=reference,
                                       effective_date=effective_date, provenance=provenance.as_dict()),
            provenance=provenance, describe="account credited",
        )

    def debit_account(
        self,
        person_id: UUID,
        *,
        amount_fen: int,
        reason: str,
        reference: str,
        effective_date: date,
        provenance: Provenance,
        relative_person_id: str | None = None,
        relative_relationship: str | None = None,
    ) -> Outcome:
        reason_code = parse_code(AccountEntryReason, reason, "ACCOUNT_REASON_UNKNOWN", "account reason")
        return self._execute(
            person_id,
            lambda p: p.debit_account(amount_fen=amount_fen, reason=reason_code, reference=reference,
                                      effective_date=effective_date, provenance=provenance.as_dict(),
                                      relative_person_id=relative_person_id,
                                      relative_relationship=relative_relationship),
            provenance=provenance, describe="account debited",
        )

    # ------------------------------------------------------------ late fees (滞纳金)
    def late_fee_of(self, person_id: UUID, period: str, as_of: date) -> Any:
        """The late fee of one employee month of a person on ``as_of`` (ledger.domain.arrears.LateFee), from
        the person's events; None when the person has no employer due row for that month."""
        history = fold_many(None, iter_person_events(self, person_id))
        if history is None:
            return None
        for due in due_rows(history, derive(history, self.policies)):
            if due["period"] == period and due["kind"] == "EMPLOYER":
                return late_fee_owed(due, as_of, fee_table(self.policies, due))
        return None

    def _check_fee_owed(self, person_id: UUID, period: str, as_of: date, amount_fen: int | None) -> None:
        fee = self.late_fee_of(person_id, period, as_of)
        owed = 0 if fee is None else fee.owed_fen
        if owed <= 0:
            raise DomainError("LATE_FEE_NOT_OWED", f"{period} 截至 {as_of} 没有未缴的滞纳金 "
                                                   f"(no late fee is owed for {period} on {as_of})", period=period)
        if amount_fen is not None and amount_fen > owed:
            raise DomainError("LATE_FEE_OVERPAID", f"缴纳金额 {amount_fen} 分超过 {period} 尚欠的滞纳金 {owed} 分 "
                                                   f"(more than the {owed} fen still owed)", owed_fen=owed)

    def pay_late_fee(
        self, person_id: UUID, *, voucher_no: str, tax_office: str, region_code: str, period: str,
        amount_fen: int, paid_at: datetime, channel: str, provenance: Provenance,
    ) -> Outcome:
        """A clerk enters a late-fee receipt (滞纳金缴纳): idempotent on the voucher (number + office), at most
        what is still owed on the day paid (LATE_FEE_OVERPAID), never for a month without a fee (LATE_FEE_NOT_OWED).
        The tax feed's LATE_FEE records go through :meth:`record_tax_record` and are never refused for the
        amount: the tax bureau collected it."""
        # Its own index kind, per person: one employer's receipt is split over its employees (one share
        # each), and the tax feed may bring a voucher later, which the person's own check then takes
        # as a resend (same content) or a VOUCHER_CONFLICT, not this index.
        source = SourceKey(kind="late-fee-receipt", key=f"{voucher_key(tax_office, voucher_no)}|{person_id}",
                           digest=content_digest({"kind": "LATE_FEE", "person": str(person_id), "period": period,
                                                  "amount_fen": amount_fen, "paid_at": paid_at,
                                                  "region_code": region_code}),
                           summary={"voucher_no": voucher_no, "tax_office": tax_office, "amount_fen": str(amount_fen),
                                    "kind": "LATE_FEE", "region_code": region_code})
        checked = False

        def command(person: Person) -> None:
            nonlocal checked
            if not checked and person.late_fee_payments_key(tax_office, voucher_no) is None:
                self._check_fee_owed(person_id, period, business_date(paid_at) if isinstance(paid_at, datetime)
                                     else paid_at, amount_fen)
                checked = True
            person.pay_late_fee(voucher_no=voucher_no, tax_office=tax_office, region_code=region_code, period=period,
                                amount_fen=amount_fen, paid_at=paid_at, channel=channel, provenance=provenance.as_dict())

        return self._execute(person_id, command, provenance=provenance, source=source,
                             describe=f"late fee {voucher_no} recorded")

    def waive_late_fee(
        self, person_id: UUID, *, waiver_id: str, region_code: str, period: str, reason: str, approver: str,
        effective_date: date, provenance: Provenance,
    ) -> Outcome:
        """Waive a month's late fee (滞纳金减免) with reason and approver; idempotent on the waiver id (the
        request id). The approver must be someone other than the clerk recording it (WAIVER_SELF_APPROVED)."""
        if str(approver or "").strip() and provenance.user and str(approver).strip() == provenance.user:
            raise DomainError("WAIVER_SELF_APPROVED",
                              "审批人不能是录入人本人 (the approver must be someone other than the clerk recording it)")

        def command(person: Person) -> None:
            if person.late_fee_waiver(waiver_id) is None:
                self._check_fee_owed(person_id, str(period), effective_date, None)
            person.waive_late_fee(waiver_id=waiver_id, region_code=region_code, period=period, reason=reason,
                                  approver=approver, effective_date=effective_date, provenance=provenance.as_dict())

        return self._execute(person_id, command, provenance=provenance, describe=f"late fee of {period} waived")

    # ------------------------------------------------------------ residence
    def apply_residence(
        self, record: ResidentRecord, *, provenance: Provenance, tracking: Tracking | None = None
    ) -> Outcome:
        """Apply a household-registry record: grid changes, moves out, deaths (a death ends the enrollment)."""
        identity, person_id = self.identify(record.id_type, record.id_number)
        status = parse_code(ResidenceStatus, record.status, "RESIDENCE_STATUS_UNKNOWN", "residence status")
        source = SourceKey(
            kind="registry-residents", key=record.record_id,
            digest=content_digest({k: v for k, v in record.__dict__.items()}),
            summary={"record_id": record.record_id, "status": status.value},
        )
        create = self._registration(identity, person_id, record.name, record.grid_code, record.effective_date, provenance)
        return self._execute(
            person_id,
            lambda p: p.record_residence(record_id=record.record_id, grid_code=record.grid_code, status=status,
                                         effective_date=record.effective_date, provenance=provenance.as_dict(),
                                         address=record.address, phone=record.phone),
            provenance=provenance, source=source, create=create, describe=f"residence {status.value.lower()} recorded",
            tracking=tracking, follow_merge=True,
        )


    def record_residence(
        self, person_id: UUID, *, record_id: str, grid_code: str | None, phone: str | None, effective_date: date,
        provenance: Provenance,
    ) -> Outcome:
        """Record where a registered person lives and their phone as an agency's sheet gives them (批量导入:
        所属村（社区）、联系电话), as the residents feed records them: one ``ResidenceRecorded`` (resident, in
        that grid, with that phone). Nothing is written when it would say nothing new (the same grid, no phone)."""

        def command(person: Person) -> None:
            if phone is None and (grid_code is None or grid_code == person.household_grid):
                return
            person.record_residence(record_id=record_id, grid_code=grid_code or person.household_grid,
                                    status=ResidenceStatus.RESIDENT, effective_date=effective_date,
                                    provenance=provenance.as_dict(), phone=phone)

        return self._execute(person_id, command, provenance=provenance, describe="residence recorded")


#: The event topics that touch a transfer, for the region's transfer lists.
TRANSFER_TOPICS = tuple(
    f"{Person.__module__}:Person.{name}"
    for name in ("TransferRequested", "TransferOutCompleted", "TransferInCompleted", "TransferCancelled", "TransferredOut", "TransferredIn")
)


def transfer_row(person: Person, transfer: Transfer, region_code: str) -> dict[str, Any] | None:
    """One transfer as a row of ``region_code``'s list (INCOMING / OUTGOING), or None if it is not the region's.

    Transfers recorded before they were matched (legacy events) carry no sending region, so
    only their receiving side is listed.
    """
    received = transfer.direction == "IN"  # (OUT and REQUEST entries name the sending region as their own)
    sending = transfer.counterpart_region if received else transfer.region_code
    receiving = transfer.region_code if received else transfer.counterpart_region
    if receiving == region_code:
        direction = "INCOMING"
    elif sending == region_code:
        direction = "OUTGOING"
    else:
        return None
    return {
        "transfer_id": transfer.transfer_id, "direction": direction, "person_id": str(person.id),
        "id_type": person.id_type, "id_number": person.id_number, "name": person.name,
        "from_region": sending, "to_region": receiving, "scheme": transfer.scheme,
        "account_balance_fen": transfer.account_balance_fen, "contribution_months": transfer.contribution_months,
        "started_on": transfer.started_on, "completed_on": transfer.completed_on,
        "external": bool(transfer.external), "source_document_no": transfer.source_document_no,
        "closed_reason": transfer.closed_reason,
    }


def _project_hashing_last(events: Sequence[Any]) -> Any:
    """Fold one aggregate's events like ``Repository.get``, hashing only the last person event.

    ``Person.Event.mutate`` is the library's mutate plus ``chain_head = event_digest(event)``;
    each event's digest overwrites the previous one's and no ``apply`` reads it, so only
    the last event's digest survives the fold. Skipping the others (the library's mutate
    alone) gives the same aggregate for a fraction of the cost: the canonical-JSON SHA-256
    of every replayed event was a third of the batch path's time.
    tests/integration/test_batch_load.py checks the result equals ``repository.get``.
    """
    aggregate = None
    last = len(events) - 1
    for n, event in enumerate(events):
        if n < last and isinstance(event, Person.Event):
            aggregate = super(Person.Event, event).mutate(aggregate)
        else:
            aggregate = event.mutate(aggregate)
    return aggregate


def late_fee_period(record: TaxPaymentRecord) -> str:
    """The employee month a tax record of levy item LATE_FEE pays the fee of: its period, one month;
    a refund or reversal of a late fee is not taken (LATE_FEE_CORRECTION_UNSUPPORTED)."""
    if str(record.kind) != PaymentKind.PAYMENT:
        raise DomainError("LATE_FEE_CORRECTION_UNSUPPORTED",
                          "滞纳金的退费或冲正暂不支持，请人工处理 (a refund or reversal of a late fee is not supported yet)")
    start, end = record.period_start, record.period_end
    if (start.year, start.month) != (end.year, end.month):
        raise DomainError("PERIOD_INVALID", f"滞纳金回传须对应一个费款所属月份；{start}..{end} 跨月 "
                                            f"(a late-fee record is for one month)")
    return f"{start.year:04d}-{start.month:02d}"


def _payment_describe(record: TaxPaymentRecord) -> str:
    return f"{str(record.kind).lower()} {record.voucher_no} recorded"


def _required_original(record: TaxPaymentRecord) -> str:
    if not record.original_voucher_no:
        raise DomainError(
            "ORIGINAL_VOUCHER_REQUIRED",
            f"a {str(record.kind).lower()} must name the original voucher it corrects",
        )
    return record.original_voucher_no


def iter_person_events(app: Ledger, person_id: UUID, *, lte_version: int | None = None) -> Iterable[Any]:
    """A person's events in order (for history and audit)."""
    return app.events.get(person_id, lte=lte_version)
