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
from typing import Any, Callable, Iterable, Sequence
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Transcoder, Transcoding

from ledger.domain.chain import content_digest
from ledger.domain.errors import Conflict, DomainError, NotFound
from ledger.domain.identity import PersonIdentity, parse_identity, person_id_for
from ledger.domain.person import Person, require_date, voucher_key
from ledger.domain.source_record import SourceRecord
from ledger.domain.vocabulary import (
    AccountEntryReason,
    EnrollmentChannel,
    EnrollmentEndReason,
    PaymentKind,
    ResidenceStatus,
    Scheme,
    SubsidyCategory,
    parse_code,
)
from ledger.log import get_logger
from ledger.policy import PolicyBook
from ledger.policy import rules
from ledger.records import Provenance, ResidentRecord, StatusRecord, TaxPaymentRecord

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

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "person_id": str(self.person_id) if self.person_id else None,
            "applied": self.applied,
            "message": self.message,
            "event_ids": self.event_ids,
        }
        if self.error is not None:
            out["error"] = self.error.as_dict()
        return out


@dataclass(frozen=True)
class SourceKey:
    """An external record's idempotency key and the digest of its business content."""

    kind: str
    key: str
    digest: str
    summary: dict[str, str]


def today_utc() -> date:
    return datetime.now(timezone.utc).date()


class Ledger(Application):
    """Enrollment and contribution ledger (参保缴费台账) for one deployment."""

    name = "Ledger"
    snapshotting_intervals = {Person: 100}
    #: Optimistic-concurrency retries before giving up with CONCURRENT_UPDATE.
    max_attempts = 12

    def __init__(self, env: dict[str, str] | None = None, *, policies: PolicyBook, id_key: bytes) -> None:
        if not id_key:
            raise ValueError("the identity key (LEDGER_ID_KEY) must not be empty")
        super().__init__(env)
        self.policies = policies
        self._id_key = id_key

    def register_transcodings(self, transcoder: Transcoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

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
    ) -> Outcome:
        """Load (or create) the person, run one command, save with its source key.

        Retries on a lost optimistic-concurrency race, on fresh state each time.
        """
        for _attempt in range(self.max_attempts):
            if source is not None:
                resend = self._check_source(source, person_id, provenance)
                if resend is not None:
                    return resend
            try:
                person = self.repository.get(person_id)
            except AggregateNotFoundError:
                if create is None:
                    raise NotFound(
                        "PERSON_NOT_FOUND", "no person with that ID is registered in the ledger; register them first"
                    ) from None
                person = create()
            result = command(person)
            pending = list(person.pending_events)
            if not pending:
                return Outcome(person_id, False, f"{describe or 'command'}: nothing to change (already recorded)")
            to_save: list[Any] = [person]
            if source is not None:
                to_save.append(
                    SourceRecord.take(
                        kind=source.kind,
                        key=source.key,
                        person_id=person_id,
                        content_digest=source.digest,
                        provenance=provenance.as_dict(),
                    )
                )
            try:
                self.save(*to_save)
            except IntegrityError:
                log.info("write_conflict_retry", person_id=str(person_id), attempt=_attempt + 1)
                # Back off with jitter so two writers racing on one person stop colliding.
                time.sleep(random.uniform(0, min(0.2, 0.002 * 2**_attempt)))
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

    def _check_source(self, source: SourceKey, person_id: UUID, provenance: Provenance) -> Outcome | None:
        record = self.source_record(source.kind, source.key)
        if record is None:
            return None
        if record.content_digest == source.digest and record.person_id == person_id:
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
            region = current["region_code"] if current else None
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

        def command(person: Person) -> None:
            current = person.active_enrollment
            if current is None:
                raise DomainError("NOT_ENROLLED_EMPLOYEE", f"no employee-scheme enrollment in force to assess {month}")
            table = self.policies.get(current["region_code"], year)
            result = rules.employee_contribution(table, declared_base_fen)
            person.assess_employee_month(
                month=month, table=table, result=result, due_date=rules.employee_due_date(table, year, mon),
                effective_date=effective_date or today_utc(), provenance=provenance.as_dict(),
            )

        return self._execute(person_id, command, provenance=provenance, describe=f"assessed {month}")

    def _reassess_touched_years(self, person: Person, start: date, end: date, provenance: Provenance) -> None:
        """After a status change, re-assess every assessed resident year it touches."""
        for period, assessment in sorted(person.assessments.items()):
            if assessment["scheme"] != Scheme.RESIDENT:
                continue
            year = int(period)
            if not (start.year - 1 <= year <= end.year + 1):
                continue
            person.assess_resident_year(
                table=self.policies.get(assessment["region_code"], year),
                effective_date=today_utc(),
                provenance=provenance.as_dict(),
                require_enrollment=False,
            )

    # ------------------------------------------------------------ subsidised groups
    def apply_status(self, record: StatusRecord, *, provenance: Provenance) -> Outcome:
        """Apply a civil-affairs status grant or revocation, then re-assess the years it touches."""
        identity, person_id = self.identify(record.id_type, record.id_number)
        category = parse_code(SubsidyCategory, record.category, "SUBSIDY_CATEGORY_UNKNOWN", "subsidy category")
        require_date(record.valid_from, "valid_from")
        grant_id = record.grant_id or record.document_no
        source = SourceKey(
            kind="registry-status",
            key=record.record_id,
            digest=content_digest({k: v for k, v in record.__dict__.items()}),
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
                end = record.valid_to or record.valid_from
            else:
                person.revoke_subsidy(
                    grant_id=grant_id, revoked_from=record.valid_from, department=record.department,
                    document_no=record.document_no, effective_date=record.valid_from, provenance=provenance.as_dict(),
                )
                end = date(record.valid_from.year + 1, 12, 31)
            self._reassess_touched_years(person, record.valid_from, end, provenance)

        return self._execute(
            person_id, command, provenance=provenance, source=source,
            create=create if record.granted else None, describe="status granted" if record.granted else "status revoked",
        )

    # ------------------------------------------------------------ payments
    def _payment_source(self, record: TaxPaymentRecord) -> SourceKey:
        body = {k: v for k, v in record.__dict__.items()}
        return SourceKey(
            kind="tax-voucher",
            key=voucher_key(record.tax_office, record.voucher_no),
            digest=content_digest(body),
            summary={"voucher_no": record.voucher_no, "tax_office": record.tax_office,
                     "amount_fen": str(record.amount_fen), "kind": str(record.kind)},
        )

    def _payment_command(self, record: TaxPaymentRecord, provenance: Provenance) -> Callable[[Person], Any]:
        kind = parse_code(PaymentKind, record.kind, "PAYMENT_KIND_UNKNOWN", "record kind")
        levy = parse_code(Scheme, record.levy_item, "LEVY_ITEM_UNKNOWN", "levy item")
        prov = provenance.as_dict()

        def command(person: Person) -> None:
            if kind == PaymentKind.PAYMENT:
                if levy == Scheme.RESIDENT and person.active_enrollment is None and not person.enrollments:
                    # Many residents pay in the tax app first (先缴费后登记): enroll them from the payment.
                    person.enroll(
                        scheme=Scheme.RESIDENT, region_code=record.region_code, grid_code=person.household_grid,
                        flexible=False, employer_id=None, channel=EnrollmentChannel.TAX_PAYMENT,
                        effective_date=record.paid_at.date(), provenance=prov, policies=self.policies,
                    )
                person.record_payment(
                    voucher_no=record.voucher_no, tax_office=record.tax_office, levy_item=levy,
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

    def record_tax_record(self, record: TaxPaymentRecord, *, provenance: Provenance) -> Outcome:
        """Record one tax-bureau record (payment, refund or reversal), exactly once per voucher.

        A payment for a person the ledger has never seen registers and enrolls them
        (resident scheme); a refund or reversal needs the person and the original.
        """
        identity, person_id = self.identify(record.id_type, record.id_number)
        command = self._payment_command(record, provenance)
        create = None
        if record.kind == PaymentKind.PAYMENT:
            create = self._registration(identity, person_id, record.name, None, record.paid_at.date(), provenance)
        return self._execute(
            person_id, command, provenance=provenance, source=self._payment_source(record), create=create,
            describe=f"{str(record.kind).lower()} {record.voucher_no} recorded",
        )

    def record_tax_records(self, records: Sequence[tuple[TaxPaymentRecord, Provenance]]) -> list[Outcome]:
        """Record many tax records, several persons per transaction (the high-volume path).

        A record that breaks a rule gets an Outcome carrying its error and the rest of
        the batch goes ahead; a record that left its person half-changed is dropped and
        the round is rebuilt without it; a lost race falls back to one record at a time.
        """
        outcomes: dict[int, Outcome] = {}
        todo = list(range(len(records)))
        while todo:
            round_outcomes: dict[int, Outcome] = {}
            persons: dict[UUID, Person] = {}
            sources: list[SourceRecord] = []
            keys: set[str] = set()
            deferred: list[int] = []  # the same voucher twice in one batch waits for the first
            broken: int | None = None
            for i in todo:
                record, provenance = records[i]
                person: Person | None = None
                before = 0
                try:
                    identity, person_id = self.identify(record.id_type, record.id_number)
                    source = self._payment_source(record)
                    if source.key in keys:
                        deferred.append(i)
                        continue
                    resend = self._check_source(source, person_id, provenance)
                    if resend is not None:
                        round_outcomes[i] = resend
                        continue
                    person = persons.get(person_id)
                    if person is None:
                        try:
                            person = self.repository.get(person_id)
                        except AggregateNotFoundError:
                            if record.kind != PaymentKind.PAYMENT:
                                raise NotFound("PERSON_NOT_FOUND", "no person with that ID is registered in the ledger") from None
                            person = self._registration(
                                identity, person_id, record.name, None, record.paid_at.date(), provenance
                            )()
                    before = len(person.pending_events)
                    self._payment_command(record, provenance)(person)
                except DomainError as e:
                    round_outcomes[i] = Outcome(None, False, e.message, error=e)
                    if person is not None and person.id in persons and len(person.pending_events) != before:
                        broken = i
                        break
                    continue
                if len(person.pending_events) == before:
                    round_outcomes[i] = Outcome(person_id, False, f"voucher {record.voucher_no} already recorded")
                    continue
                persons[person_id] = person
                keys.add(source.key)
                sources.append(
                    SourceRecord.take(kind=source.kind, key=source.key, person_id=person_id,
                                      content_digest=source.digest, provenance=provenance.as_dict())
                )
                round_outcomes[i] = Outcome(person_id, True, f"{str(record.kind).lower()} {record.voucher_no} recorded")
            if broken is not None:
                outcomes[broken] = round_outcomes[broken]
                todo = [j for j in todo if j != broken]
                continue
            try:
                if persons:
                    self.save(*persons.values(), *sources)
            except IntegrityError:
                for i, outcome in round_outcomes.items():
                    if not outcome.applied:
                        outcomes[i] = outcome
                        continue
                    record, provenance = records[i]
                    try:
                        outcomes[i] = self.record_tax_record(record, provenance=provenance)
                    except DomainError as e:
                        outcomes[i] = Outcome(None, False, e.message, error=e)
            else:
                outcomes.update(round_outcomes)
            todo = deferred
        return [outcomes[i] for i in range(len(records))]

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
        account_balance_fen: int,
        contribution_months: int,
        scheme: str,
        region_code: str,
        grid_code: str | None = None,
        flexible: bool = False,
        employer_id: str | None = None,
        effective_date: date,
        provenance: Provenance,
    ) -> Outcome:
        """Transfer in (转入): credit what the sending region carried, then enroll here."""
        identity, person_id = self.identify(id_type, id_number)
        scheme_code = parse_code(Scheme, scheme, "SCHEME_UNKNOWN", "scheme")
        create = self._registration(identity, person_id, name, grid_code, effective_date, provenance)

        def command(person: Person) -> None:
            person.transfer_in(
                transfer_id=transfer_id, counterpart_region=counterpart_region,
                account_balance_fen=account_balance_fen, contribution_months=contribution_months,
                effective_date=effective_date, provenance=provenance.as_dict(),
            )
            person.enroll(
                scheme=scheme_code, region_code=region_code, grid_code=grid_code, flexible=flexible,
                employer_id=employer_id, channel=EnrollmentChannel.TRANSFER_IN, effective_date=effective_date,
                provenance=provenance.as_dict(), policies=self.policies,
            )

        return self._execute(person_id, command, provenance=provenance, create=create, describe="transferred in")

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

    # ------------------------------------------------------------ residence
    def apply_residence(self, record: ResidentRecord, *, provenance: Provenance) -> Outcome:
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
                                         effective_date=record.effective_date, provenance=provenance.as_dict()),
            provenance=provenance, source=source, create=create, describe=f"residence {status.value.lower()} recorded",
        )


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
