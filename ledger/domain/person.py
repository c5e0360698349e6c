"""The insured person (参保人): one event-sourced aggregate per person.

Every fact the ledger knows about a person — registration, enrollments, assessments,
subsidies, payments, refunds, reversals, transfers, personal-account movements,
residence — is an event of this aggregate. Command methods are named for the
business intent, check the rules (each broken rule raises a :class:`DomainError`
with a stable code) and only then trigger an event; the event's ``apply`` is the
only place state changes, so replaying the events rebuilds exactly this state.

The state is typed and is the views' own (issue 19, one fold of the person): ``history``, a
:class:`ledger.domain.history.PersonHistory` that every event's ``apply`` folds with the same
handlers the views fold with (:func:`ledger.domain.history.apply`), and ``identity`` (who the
person is, which the views never keep). The commands ask their questions of the history.

Every event carries, besides the library's id/version/timestamp (the recording
instant, i.e. transaction time): its own ``event_id``, the ``effective_date`` (the
business date it takes effect), its ``provenance`` (which feed record or which API
user and request) and ``prev_hash`` (the digest of this person's previous event).
"""
from __future__ import annotations

import calendar
import threading
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Protocol
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from eventsourcing.domain import Aggregate, get_topic, resolve_topic

from ledger.domain.chain import GENESIS_HASH, content_digest, event_digest
from ledger.domain.errors import Conflict, DomainError
from ledger.domain import history as _fold
from ledger.domain import transfers
from ledger.domain.person_rules import months_between, payment_period_keys, voucher_key  # noqa: F401 (re-exported)
from ledger.domain.places import parse_grid_code
from ledger.policy import rules
from ledger.policy.book import default_value_limits
from ledger.domain.vocabulary import (
    AccountEntryReason,
    EnrollmentChannel,
    EnrollmentEndReason,
    PaymentKind,
    ResidenceStatus,
    Scheme,
    SubsidyCategory,
)


class PolicySource(Protocol):
    """Where the domain finds a region's policy table for a coverage year."""

    def get(self, region_code: str, coverage_year: int) -> Any: ...

    def regions(self) -> set[str]: ...


Provenance = dict[str, str]


# --------------------------------------------------------------------------- rules
def require_fen(value: Any, field: str, *, allow_zero: bool = False) -> int:
    """Money is a positive integer number of fen (分), at most the policy ceiling.

    The aggregate runs the same gate as every entrance (:func:`rules.check_amount_fen`),
    so no path into the ledger can record an amount the gate refuses.
    """
    return rules.check_amount_fen(value, field, default_value_limits(), allow_zero=allow_zero)


def require_date(value: Any, field: str, *, window: bool = True) -> date:
    """A calendar date; with ``window`` (business dates) inside the policy book's plausible range.

    ``window=False`` only for an end of validity (a status valid to a date years ahead is normal).
    """
    if window:
        return rules.check_business_date(value, field, default_value_limits())
    if isinstance(value, datetime) or not isinstance(value, date):
        raise DomainError("DATE_INVALID", f"{field} must be a calendar date (YYYY-MM-DD); got {value!r}")
    if value < default_value_limits().earliest_date:
        rules.check_business_date(value, field, default_value_limits())  # the stable DATE_OUT_OF_RANGE
    return value


def require_instant(value: Any, field: str) -> datetime:
    """An aware instant (to UTC) whose business date is inside the plausible range."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise DomainError(
            "INSTANT_INVALID", f"{field} must be a date and time with a time zone; got {value!r}"
        )
    rules.check_business_date(business_date(value), field, default_value_limits())
    return value.astimezone(timezone.utc)


#: Business dates are Beijing dates: a payment at 00:30 on 1 January counts for 1 January.
BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


def business_date(instant: datetime) -> date:
    """The business date (China Standard Time) of an instant."""
    return instant.astimezone(BUSINESS_TZ).date()


def optional_grid(value: Any, field: str) -> str | None:
    """A 12-digit grid code (统计用区划代码), or None."""
    if value is None or value == "":
        return None
    return parse_grid_code(value).code


def month_key(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


#: The characters a phone number may hold besides digits: a leading + and the separators people write.
_PHONE_SEPARATORS = " -()"


def optional_phone(value: Any) -> str | None:
    """A contact phone (联系电话): 5 to 20 digits with an optional leading ``+`` and separators (kept as given,
    trimmed), or None. ``PHONE_FORMAT`` otherwise."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    digits = text[1:] if text.startswith("+") else text
    bare = "".join(ch for ch in digits if ch not in _PHONE_SEPARATORS)
    if not (bare.isascii() and bare.isdigit() and 5 <= len(bare) <= 20) or len(text) > 30:
        raise DomainError("PHONE_FORMAT", "联系电话应为 5 到 20 位数字，可带开头的 + 和空格、短横线"
                                          "（phone: 5 to 20 digits, optional leading + and separators）")
    return text


def optional_contact(value: Any, field: str, limit: int) -> str | None:
    """Free text such as an address (居住地址), trimmed, at most ``limit`` characters and no control
    characters, or None when empty. ``ADDRESS_INVALID`` otherwise."""
    if value is None or not str(value).strip():
        return None
    text = " ".join(str(value).split())
    if len(text) > limit or any(ord(ch) < 32 or ord(ch) == 127 for ch in str(value).strip().replace("\n", " ")
                                .replace("\t", " ")):
        raise DomainError("ADDRESS_INVALID", f"{field}：地址最多 {limit} 个字符，且不能含控制字符"
                                             f"（{field}: at most {limit} characters, no control characters）")
    return text


def _non_empty(value: Any, field: str, code: str = "FIELD_REQUIRED") -> str:
    if value is None or not str(value).strip():
        raise DomainError(code, f"{field} is required")
    return str(value).strip()


#: ``active`` while Person.trigger_event runs in this thread (replays and snapshots never set it).
_triggering = threading.local()


class PendingDigest:
    """The chain head of a live person right after a new event: that event's digest, computed when first read.

    Triggering an event hashed it at once (canonical JSON + SHA-256, ~8 µs), but in the
    batch path the person is saved and dropped right after, so nobody read the result. A
    person's ``chain_head`` (a property) turns this into the digest on first read, e.g. as
    the next event's ``prev_hash``. It only ever stands in ``__dict__`` of a person that
    had an event triggered: replays (``Repository.get``, the batch loader, ``verify``) and
    hence snapshots (``take_snapshot`` replays) hash eagerly. It compares equal to the
    digest and copies as the digest, so aggregate equality and the library's aggregate cache
    (deep copies) see the same value as before. Stored events do not contain it.
    """

    __slots__ = ("event", "_digest")

    def __init__(self, event: Any) -> None:
        self.event = event
        self._digest: str | None = None

    def digest(self) -> str:
        if self._digest is None:
            self._digest = event_digest(self.event)
        return self._digest

    def __eq__(self, other: object) -> bool:
        if type(other) is PendingDigest:
            other = other.digest()
        return self.digest() == other

    def __hash__(self) -> int:
        return hash(self.digest())

    def __repr__(self) -> str:
        return repr(self.digest())

    def __copy__(self) -> str:
        return self.digest()

    def __deepcopy__(self, memo: dict[int, Any]) -> str:
        return self.digest()

    def __reduce__(self) -> tuple[Any, ...]:
        return (str, (self.digest(),))


@dataclass(slots=True)
class Identity:
    """Who the person is (身份信息), as registered: the write side's only facts the views never keep
    (个人信息保护法: views are keyed by the person id; published events carry these masked)."""

    id_type: str
    id_number: str
    name: str
    sex: str | None


class StaleSnapshot(Exception):
    """A stored snapshot of an older shape of the person's state: a cache, never evidence, so loads
    ignore it and replay the events (``Ledger``'s snapshot store filters them; see ``Person.Snapshot``)."""


class Person(Aggregate):
    """An insured person (参保人), identified by a keyed hash of ID type and number.

    Its state is typed and is the views' own: ``history``, the
    :class:`ledger.domain.history.PersonHistory` folded by the same handlers every view folds
    with (:func:`ledger.domain.history.apply`), plus ``identity`` (:class:`Identity`, kept on the
    write side only) and ``chain_head`` (the digest of the latest event, the next ``prev_hash``).
    Everything else a command reads is a question asked of the history.
    """

    #: 2: the state is ``history`` + ``identity`` (dataclasses); version 1 snapshots held dicts
    #: and are ignored (:class:`StaleSnapshot`), the person replayed from its events instead. (A
    #: change of the history's fields needs no bump: the snapshot's ``shape`` tells it.)
    class_version = 2

    # ------------------------------------------------------------------ events
    class Event(Aggregate.Event):
        """Fields every person event carries (the auditable envelope)."""

        event_id: UUID
        effective_date: date
        provenance: dict[str, str]
        prev_hash: str

        def apply(self, person: Person) -> None:
            """The one fold (:func:`ledger.domain.history.apply`): the person's state is its history."""
            _fold.apply(person.history, self)

        def mutate(self, aggregate: Any) -> Any:
            aggregate = super().mutate(aggregate)
            if getattr(_triggering, "active", False):
                # A new event of a live person (Person.trigger_event): its digest is only needed if
                # another event follows before the person is dropped; see PendingDigest.
                aggregate.__dict__["chain_head"] = PendingDigest(self)
            else:
                aggregate.chain_head = event_digest(self)
            return aggregate

    class Registered(Event, Aggregate.Created):
        """Registered (参保人登记): who the person is."""

        id_type: str
        id_number: str
        name: str
        birth_date: date | None
        sex: str | None
        household_grid: str | None

        def apply(self, person: Person) -> None:
            person.identity = Identity(self.id_type, self.id_number, self.name, self.sex)
            person.contact = [None, None]
            person.history = _fold.PersonHistory(str(self.originator_id))
            _fold.apply(person.history, self)

    class Enrolled(Event):
        """Enrolled in a scheme (参保登记); ``duplicate_of`` flags 重复参保."""

        enrollment_id: str
        scheme: str
        flexible: bool
        region_code: str
        grid_code: str | None
        employer_id: str | None
        channel: str
        duplicate_of: str | None

    class EnrollmentEnded(Event):
        """Enrollment ended (终止参保): died, moved out, transferred, switched, duplicate resolved."""

        enrollment_id: str
        reason: str

    class ContributionAssessed(Event):
        """Contribution assessed (缴费核定) for a coverage year (resident) or month (employee).

        A later assessment of the same period supersedes the earlier one (e.g. after a
        subsidy arrives); both stay in the history.
        """

        period: str
        scheme: str
        region_code: str
        standard_fen: int
        subsidy_fen: int
        due_fen: int
        due_date: date
        subsidy_category: str | None
        base_fen: int
        employer_fen: int
        employee_fen: int
        policy_version: str

    class SubsidyGranted(Event):
        """Subsidised-group status granted (资助参保身份认定) by civil affairs or rural revitalization."""

        grant_id: str
        category: str
        valid_from: date
        valid_to: date | None
        department: str
        document_no: str

    class SubsidyRevoked(Event):
        """Subsidised-group status revoked (身份取消) from a date."""

        grant_id: str
        revoked_from: date
        department: str
        document_no: str

    class ContributionPaid(Event):
        """Contribution paid (缴费), as the tax bureau reports it back (回传)."""

        voucher_no: str
        tax_office: str
        levy_item: str
        region_code: str
        amount_fen: int
        period_start: date
        period_end: date
        paid_at: datetime
        credited_on: date | None
        channel: str
        content_digest: str

    class ContributionRefunded(Event):
        """Contribution refunded (退费), pointing at the original voucher."""

        refund_voucher_no: str
        tax_office: str
        original_voucher_no: str
        original_tax_office: str
        amount_fen: int
        refunded_at: datetime
        reason: str
        content_digest: str

    class ContributionReversed(Event):
        """Contribution reversed (冲正): the original voucher is cancelled."""

        reversal_voucher_no: str
        tax_office: str
        original_voucher_no: str
        original_tax_office: str
        amount_fen: int
        reversed_at: datetime
        reason: str
        content_digest: str

    class TransferredOut(Event):
        """Transferred out (转出), carrying the account balance and contribution months.

        Written before transfers were matched (issue 18); no command writes it now. Kept so
        stored histories replay as they were recorded: the enrollment ended, the balance left,
        the months stayed. New transfers write :class:`TransferOutCompleted`.
        """

        transfer_id: str
        enrollment_id: str
        counterpart_region: str
        account_balance_fen: int
        contribution_months: int

    class TransferredIn(Event):
        """Transferred in (转入): balance credited and months counted, unmatched.

        Written before transfers were matched (issue 18); no command writes it now. New
        transfers write :class:`TransferInCompleted`.
        """

        transfer_id: str
        counterpart_region: str
        account_balance_fen: int
        contribution_months: int

    class TransferRequested(Event):
        """Transfer requested (转移接续申请): the person applied at the receiving region, which asks
        the sending region for its half; the sending region's time limit runs from here."""

        transfer_id: str
        region_code: str
        counterpart_region: str

    class TransferOutCompleted(Event):
        """Transfer-out completed (转出完成): the sending region suspends (中止) the enrollment and
        sends the personal-account balance and contribution months, which leave this region's
        account and month count (moved, never copied) until the in half receives them or the
        transfer is cancelled."""

        transfer_id: str
        enrollment_id: str
        region_code: str
        counterpart_region: str
        scheme: str
        account_balance_fen: int
        contribution_months: int

    class TransferInCompleted(Event):
        """Transfer-in completed (转入完成): the receiving region accepts what was sent.

        For a transfer within this ledger the figures are the out half's, matched; the
        suspended sending enrollment ends (终止, reason TRANSFERRED_OUT) as of the out
        half. ``external`` marks a transfer from outside this ledger (跨省), credited as
        its source document (``source_document_no``) states.
        """

        transfer_id: str
        counterpart_region: str
        region_code: str
        account_balance_fen: int
        contribution_months: int
        external: bool
        source_document_no: str

    class TransferCancelled(Event):
        """Transfer cancelled (转移撤销) by the sending region, or rejected (拒绝接收) by the
        receiving one, with a reason: the suspended enrollment is resumed and the balance and
        months sent return to the sending region (a request alone is simply closed)."""

        transfer_id: str
        rejected: bool
        reason: str

    class AccountCredited(Event):
        """Personal account credited (个人账户划入)."""

        amount_fen: int
        reason: str
        reference: str

    class AccountDebited(Event):
        """Personal account debited (个人账户支出), including family mutual aid (家庭共济)."""

        amount_fen: int
        reason: str
        reference: str
        relative_person_id: str | None
        relative_relationship: str | None

    class LateFeePaid(Event):
        """Late fee paid (滞纳金缴纳) for one employer-scheme month: from the tax feed (levy item
        LATE_FEE) or entered by a clerk from the receipt. Keyed by its voucher (number + office)."""

        voucher_no: str
        tax_office: str
        region_code: str
        period: str
        amount_fen: int
        paid_at: datetime
        channel: str
        content_digest: str


    class LateFeeWaived(Event):
        """Late fee waived (滞纳金减免) for one employer-scheme month, with the reason and who approved it.
        Keyed by the waiver's request id."""

        waiver_id: str
        region_code: str
        period: str
        reason: str
        approver: str
        content_digest: str


    class PersonMerged(Event):
        """Another record of the same person merged into this one (参保人合并, 重复登记 / 身份证号升位 / 证件号更正):
        proposed by one clerk, approved by another (maker-checker). Nothing of the other record is edited:
        its events stay readable under its own id, which this event names."""

        change_id: str
        merged_person_id: str
        merge_kind: str
        reason: str
        proposed_by: str
        approved_by: str
        merged_facts: str

    class PersonMergedInto(Event):
        """This record was merged into another person's (参保人合并): from here on it takes no new fact, its
        inbound records go to the person kept (``survivor_person_id``), and no view counts it."""

        change_id: str
        survivor_person_id: str
        merge_kind: str
        reason: str
        proposed_by: str
        approved_by: str

    class ResidenceRecorded(Event):
        """Residence as the household registry reports it (户籍/常住人口): grid, moved out, died; since
        version 2 also the address and phone the registry gives (联系地址、电话; None when it gives none).
        Both are personal data: the event store encrypts them at rest, ``ledger.events.v1`` carries them
        masked and encrypted, and the views never store them (the page reads them from the person)."""

        class_version = 2
        #: Added in version 2: digested only when given (ledger.domain.chain.event_fields).
        added_optional_fields = ("address", "phone")
        record_id: str
        grid_code: str | None
        status: str
        address: str | None
        phone: str | None

        @staticmethod
        def upcast_v1_v2(state: dict) -> None:
            state["address"] = None
            state["phone"] = None

        def apply(self, person: Person) -> None:
            _fold.apply(person.history, self)
            if self.address is not None or self.phone is not None:
                # What the registry gives replaces what it gave before; what it leaves out is kept.
                address, phone = person.contact
                person.contact = [self.address or address, self.phone or phone]

    # --------------------------------------------------------------- plumbing
    # ``chain_head`` (digest of the latest event) is set by Event.mutate.

    @property
    def chain_head(self) -> str:
        """Digest of the person's latest event (the next event's ``prev_hash``)."""
        try:
            head = self.__dict__["chain_head"]
        except KeyError:
            raise AttributeError("chain_head") from None
        if type(head) is PendingDigest:
            head = self.__dict__["chain_head"] = head.digest()
        return head

    @chain_head.setter
    def chain_head(self, value: str) -> None:
        self.__dict__["chain_head"] = value

    class Snapshot(Aggregate.Snapshot):
        """The person's state at one version (快照): loads start from it instead of replaying
        every event before it. Never evidence: the audit replays the events and compares.

        Taken from a live person too (see ``Ledger._take_snapshots``), whose chain head may
        still be a :class:`PendingDigest`: the snapshot holds the digest itself.

        The state is stored as plain data (the history as rows,
        :func:`ledger.domain.history.history_to_rows`, the identity as a list), marked with
        ``Person.class_version`` and the history classes' shape (``history.STATE_SHAPE``: a
        field added to them changes it); a snapshot of another version or shape raises
        :class:`StaleSnapshot` when read (the ledger's snapshot store leaves such snapshots out,
        so loads replay the events).
        """

        @classmethod
        def take(cls, aggregate: Any) -> Any:
            state = dict(vars(aggregate))
            for name in ("_id", "_version", "_pending_events"):
                state.pop(name, None)
            head = state.get("chain_head")
            if type(head) is PendingDigest:
                state["chain_head"] = head.digest()
            identity = state["identity"]
            state["identity"] = [identity.id_type, identity.id_number, identity.name, identity.sex]
            state["history"] = _fold.history_to_rows(state["history"])
            state["shape"] = _fold.STATE_SHAPE
            state["class_version"] = type(aggregate).class_version
            return cls(  # type: ignore[call-arg]
                originator_id=aggregate.id, originator_version=aggregate.version,
                timestamp=cls.create_timestamp(), topic=get_topic(type(aggregate)), state=state,
            )

        @staticmethod
        def is_current(snapshot: Any) -> bool:
            """Is this a snapshot of the aggregate class's current shape (any aggregate, by its topic)?"""
            try:
                cls = resolve_topic(snapshot.topic)
            except Exception:  # noqa: BLE001 - a class that no longer exists: not loadable either
                return False
            state = snapshot.state
            if state.get("class_version", 1) != getattr(cls, "class_version", 1):
                return False
            return not issubclass(cls, Person) or state.get("shape") == _fold.STATE_SHAPE

        def mutate(self, _: Any) -> Any:
            state = dict(self.state)
            if not self.is_current(self):
                raise StaleSnapshot(f"snapshot of person {self.originator_id} at version {self.originator_version} "
                                    f"is of an older shape of the state (version {state.get('class_version', 1)}): "
                                    "replay the events")
            del state["class_version"], state["shape"]
            cls = resolve_topic(self.topic)
            state["history"] = _fold.history_from_rows(state["history"])
            state["identity"] = Identity(*state["identity"])
            state["contact"] = list(state.get("contact") or (None, None))
            state["_id"] = self.originator_id
            state["_version"] = self.originator_version
            state["_pending_events"] = []
            aggregate = object.__new__(cls)
            object.__setattr__(aggregate, "__dict__", state)
            return aggregate

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        self.check_not_merged()
        kwargs.setdefault("event_id", uuid4())
        kwargs["prev_hash"] = self.chain_head
        _triggering.active = True
        try:
            super().trigger_event(event_class, **kwargs)
        finally:
            _triggering.active = False

    @classmethod
    def register(
        cls,
        *,
        person_id: UUID,
        id_type: str,
        id_number: str,
        name: str,
        birth_date: date | None,
        sex: str | None,
        household_grid: str | None,
        effective_date: date,
        provenance: Provenance,
    ) -> Person:
        """Register a person (参保人登记). Identity was validated by the caller (identity.parse_identity)."""
        return cls._create(
            cls.Registered,
            id=person_id,
            event_id=uuid4(),
            prev_hash=GENESIS_HASH,
            id_type=id_type,
            id_number=id_number,
            name=_non_empty(name, "name", "NAME_REQUIRED"),
            birth_date=birth_date,
            sex=sex,
            household_grid=optional_grid(household_grid, "household_grid"),
            effective_date=require_date(effective_date, "effective_date"),
            provenance=dict(provenance),
        )

    # ------------------------------------------------------------------ queries
    # Questions asked of the typed state; every one reads ``self.history`` (or ``self.identity``).
    @property
    def id_type(self) -> str:
        return self.identity.id_type

    @property
    def id_number(self) -> str:
        return self.identity.id_number

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def address(self) -> str | None:
        """The address the registry last gave (居住地址), or None; personal data like the name."""
        return self.__dict__.get("contact", (None, None))[0]

    @property
    def phone(self) -> str | None:
        """The phone the registry last gave (联系电话), or None."""
        return self.__dict__.get("contact", (None, None))[1]

    @property
    def sex(self) -> str | None:
        return self.identity.sex

    @property
    def birth_date(self) -> date | None:
        return self.history.birth_date

    @property
    def household_grid(self) -> str | None:
        """The household registry's latest grid (户籍网格), as registered or since reported."""
        residence = self.history.residence
        return residence[-1].grid if residence else None

    @property
    def residence_status(self) -> str:
        """The registry's latest word (RESIDENT, MOVED_OUT, DECEASED, ...)."""
        residence = self.history.residence
        return residence[-1].status if residence else ResidenceStatus.RESIDENT.value

    @property
    def enrollments(self) -> list[_fold.Enrollment]:
        return self.history.enrollments

    @property
    def assessments(self) -> dict[str, _fold.Assessment]:
        return self.history.assessments

    @property
    def subsidies(self) -> dict[str, _fold.SubsidyGrant]:
        return self.history.subsidies

    @property
    def payments(self) -> dict[str, _fold.Payment]:
        """Payments by voucher key (:func:`voucher_key`), with their refunds and reversal."""
        return self.history.payments

    @property
    def transfers(self) -> dict[str, _fold.Transfer]:
        """Transfers by transfer id: requests, out halves, in halves (:mod:`ledger.domain.transfers`)."""
        return self.history.transfers

    @property
    def account_balance_fen(self) -> int:
        return _fold.account_balance_fen(self.history)

    @property
    def transferred_in_months(self) -> int:
        return self.history.transferred_in_months

    def enrollment(self, enrollment_id: str) -> _fold.Enrollment:
        for e in self.history.enrollments:
            if e.enrollment_id == enrollment_id:
                return e
        raise DomainError("ENROLLMENT_UNKNOWN", f"no enrollment {enrollment_id!r} for this person")

    @property
    def active_enrollments(self) -> list[_fold.Enrollment]:
        """Enrollments in force: not ended, and not suspended (中止) by an open transfer."""
        return _fold.active_enrollments(self.history)

    @property
    def suspended_enrollments(self) -> list[_fold.Enrollment]:
        """Enrollments suspended (中止) by a transfer-out whose in half has not arrived."""
        return _fold.suspended_enrollments(self.history)

    @property
    def active_enrollment(self) -> _fold.Enrollment | None:
        """The enrollment in force; with a duplicate, the original one (not the duplicate)."""
        active = self.active_enrollments
        originals = [e for e in active if not e.duplicate_of]
        return (originals or active or [None])[0]

    @property
    def has_duplicate_enrollment(self) -> bool:
        return len(self.active_enrollments) > 1

    def paid_fen_for(self, period: str) -> int:
        """Net amount paid for one period (payments minus refunds, reversals removed; :func:`history.paid_by`)."""
        return _fold.paid_by(self.history, period)

    @property
    def contribution_months(self) -> int:
        """Employee contribution months (缴费月数): paid months plus months transferred in."""
        return _fold.contribution_months(self.history)

    # ----------------------------------------------------------------- commands
    def enroll(
        self,
        *,
        scheme: Scheme,
        region_code: str,
        grid_code: str | None,
        flexible: bool,
        employer_id: str | None,
        channel: EnrollmentChannel,
        effective_date: date,
        provenance: Provenance,
        policies: PolicySource,
        enrollment_id: str | None = None,
    ) -> dict[str, Any]:
        """Enroll in a scheme (参保登记).

        One enrollment is in force at a time: enrolling again in the same scheme and
        region is refused; enrolling in another scheme of the same region is recorded but
        flagged as a duplicate (重复参保) of the one in force, to be resolved. Enrolling in
        another region while an enrollment is in force is refused (``ENROLLED_ELSEWHERE``),
        a transfer in included: moving between regions is the transfer procedure (转移接续:
        the other region transfers out, which suspends its enrollment, then this one transfers
        in), so one region's clerk cannot take over, and read, another region's insured
        person by enrolling them.
        """
        duplicate_of = self._check_enrollment(
            scheme=scheme, region_code=region_code, flexible=flexible, employer_id=employer_id, policies=policies,
        )
        rules.check_not_before_birth(require_date(effective_date, "effective_date"), "effective_date", self.birth_date)
        enrollment_id = enrollment_id or f"E{self.version + 1:06d}"
        self.trigger_event(
            self.Enrolled,
            enrollment_id=enrollment_id,
            scheme=scheme.value,
            flexible=bool(flexible),
            region_code=region_code,
            grid_code=optional_grid(grid_code, "grid_code"),
            employer_id=str(employer_id).strip() if employer_id else None,
            channel=channel.value,
            duplicate_of=duplicate_of,
            effective_date=require_date(effective_date, "effective_date"),
            provenance=dict(provenance),
        )
        return self.enrollment(enrollment_id)

    def check_not_enrolled_elsewhere(self, region_code: str) -> None:
        """Refuse an enrollment in ``region_code`` while one in another region is in force (转移接续 instead)."""
        elsewhere = sorted({e.region_code for e in self.active_enrollments} - {region_code})
        if elsewhere:
            raise Conflict(
                "ENROLLED_ELSEWHERE",
                f"该参保人已在参保地 {'、'.join(elsewhere)} 参保，不能在 {region_code} 重复参保登记；请办理医保关系"
                f"转移接续：先由 {'、'.join(elsewhere)} 办理转出，再在本地办理转入 (the person is enrolled in region "
                f"{', '.join(elsewhere)}: use the transfer procedure, transfer-out there, then transfer-in here)",
                enrolled_region=elsewhere[0],
                procedure="TRANSFER",
            )

    def _check_enrollment(
        self, *, scheme: Scheme, region_code: str, flexible: bool, employer_id: str | None, policies: PolicySource,
    ) -> str | None:
        """The checks of :meth:`enroll`, before any event; the enrollment a new one would duplicate, if any."""
        self.check_alive()
        if region_code not in policies.regions():
            raise DomainError(
                "REGION_UNKNOWN",
                f"region code {region_code} has no policy tables; check the code (6 digits, GB/T 2260)",
                region_code=region_code,
            )
        if scheme == Scheme.EMPLOYEE and not flexible and not employer_id:
            raise DomainError("EMPLOYER_REQUIRED", "an employee enrollment needs the employer's id")
        current = self.active_enrollment
        if current is None:
            return None
        if current.scheme == scheme and current.region_code == region_code:
            raise Conflict(
                "ALREADY_ENROLLED",
                f"already enrolled in {scheme} in region {region_code} since {current.start_date}",
                enrollment_id=current.enrollment_id,
            )
        self.check_not_enrolled_elsewhere(region_code)  # a transfer in too: the other region transfers out first
        return current.enrollment_id

    def end_enrollment(
        self,
        *,
        enrollment_id: str | None,
        reason: EnrollmentEndReason,
        effective_date: date,
        provenance: Provenance,
    ) -> None:
        """End an enrollment (终止参保); the one in force when no id is given."""
        enrollment = self.enrollment(enrollment_id) if enrollment_id else self.active_enrollment
        if enrollment is None or enrollment.end_date is not None:
            raise DomainError("ENROLLMENT_NOT_ACTIVE", "there is no enrollment in force to end")
        if require_date(effective_date, "effective_date") < enrollment.start_date:
            raise DomainError("DATE_INVALID", f"end date {effective_date} is before the start {enrollment.start_date}")
        self.trigger_event(
            self.EnrollmentEnded,
            enrollment_id=enrollment.enrollment_id,
            reason=reason.value,
            effective_date=effective_date,
            provenance=dict(provenance),
        )

    def subsidy_statuses(self) -> list[tuple[str, date, date | None]]:
        """(category, valid_from, last valid day) of every grant, revocations applied."""
        return [(category, valid_from, last_day) for category, valid_from, last_day, _ in
                _fold.subsidy_statuses(self.history)]

    def assess_resident_year(
        self,
        *,
        table: Any,
        effective_date: date,
        provenance: Provenance,
        require_enrollment: bool = True,
    ) -> dict[str, Any] | None:
        """Assess the resident contribution (缴费核定) for ``table``'s coverage year.

        The subsidy comes from the statuses that count for that year under the
        table's rule (the most generous one, never the sum). Re-assessing with
        nothing changed records nothing. Returns the assessment in force.
        """
        year = table.coverage_year
        if require_enrollment:
            current = self.active_enrollment
            if current is None or current.scheme != Scheme.RESIDENT:
                raise DomainError(
                    "NOT_ENROLLED_RESIDENT",
                    f"this person has no resident-scheme enrollment in force to assess for {year}",
                )
        categories = rules.categories_for_year(table, self.subsidy_statuses())
        result = rules.resident_assessment(table, categories)
        self._record_assessment(
            period=str(year),
            scheme=Scheme.RESIDENT,
            region_code=table.region_code,
            standard_fen=result.standard_fen,
            subsidy_fen=result.subsidy_fen,
            due_fen=result.due_fen,
            due_date=result.due_date,
            subsidy_category=result.subsidy_category,
            base_fen=0,
            employer_fen=0,
            employee_fen=0,
            policy_version=result.policy_version,
            effective_date=effective_date,
            provenance=provenance,
        )
        return self.assessments.get(str(year))

    def assess_employee_month(
        self,
        *,
        month: str,
        table: Any,
        result: Any,
        due_date: date,
        effective_date: date,
        provenance: Provenance,
    ) -> dict[str, Any] | None:
        """Assess an employee-scheme month (职工月度核定) from a computed contribution."""
        current = self.active_enrollment
        if current is None or current.scheme != Scheme.EMPLOYEE:
            raise DomainError("NOT_ENROLLED_EMPLOYEE", f"no employee-scheme enrollment in force to assess {month}")
        if int(month[:4]) != table.coverage_year:
            raise DomainError("PERIOD_OUTSIDE_POLICY", f"month {month} is not in policy year {table.coverage_year}")
        self._record_assessment(
            period=month,
            scheme=Scheme.EMPLOYEE,
            region_code=table.region_code,
            standard_fen=result.employer_fen + result.employee_fen,
            subsidy_fen=0,
            due_fen=result.employer_fen + result.employee_fen,
            due_date=require_date(due_date, "due_date"),
            subsidy_category=None,
            base_fen=result.base_fen,
            employer_fen=result.employer_fen,
            employee_fen=result.employee_fen,
            policy_version=result.policy_version,
            effective_date=effective_date,
            provenance=provenance,
        )
        return self.assessments.get(month)

    def _record_assessment(self, *, period: str, effective_date: date, provenance: Provenance, **figures: Any) -> None:
        figures["scheme"] = Scheme(figures["scheme"]).value
        previous = self.assessments.get(period)
        if previous is not None and all(getattr(previous, k) == v for k, v in figures.items()):
            return
        self.trigger_event(
            self.ContributionAssessed,
            period=period,
            effective_date=require_date(effective_date, "effective_date"),
            provenance=dict(provenance),
            **figures,
        )

    def grant_subsidy(
        self,
        *,
        grant_id: str,
        category: SubsidyCategory,
        valid_from: date,
        valid_to: date | None,
        department: str,
        document_no: str,
        effective_date: date,
        provenance: Provenance,
    ) -> bool:
        """Grant a subsidised-group status (资助参保身份). Returns False for a resend."""
        require_date(valid_from, "valid_from")
        require_date(effective_date, "effective_date")
        if valid_to is not None and require_date(valid_to, "valid_to", window=False) < valid_from:
            raise DomainError("DATE_INVALID", f"status valid to {valid_to} is before valid from {valid_from}")
        content = {
            "category": category.value,
            "valid_from": valid_from,
            "valid_to": valid_to,
            "department": department,
            "document_no": document_no,
        }
        existing = self.subsidies.get(grant_id)
        if existing is not None:
            if all(getattr(existing, k) == v for k, v in content.items()):
                return False
            raise Conflict("GRANT_CONFLICT", f"status record {grant_id} was already received with different content")
        self.trigger_event(
            self.SubsidyGranted,
            grant_id=_non_empty(grant_id, "grant_id"),
            department=_non_empty(department, "department"),
            document_no=_non_empty(document_no, "document_no"),
            category=category.value,
            valid_from=valid_from,
            valid_to=valid_to,
            effective_date=effective_date,
            provenance=dict(provenance),
        )
        return True

    def revoke_subsidy(
        self,
        *,
        grant_id: str,
        revoked_from: date,
        department: str,
        document_no: str,
        effective_date: date,
        provenance: Provenance,
    ) -> bool:
        """Revoke a status from a date (身份取消). Returns False if already revoked so."""
        grant = self.subsidies.get(grant_id)
        if grant is None:
            raise DomainError("GRANT_UNKNOWN", f"no subsidised status {grant_id!r} to revoke for this person")
        if grant.revoked_from == revoked_from:
            return False
        require_date(effective_date, "effective_date")
        self.trigger_event(
            self.SubsidyRevoked,
            grant_id=grant_id,
            revoked_from=require_date(revoked_from, "revoked_from"),
            department=_non_empty(department, "department"),
            document_no=_non_empty(document_no, "document_no"),
            effective_date=effective_date,
            provenance=dict(provenance),
        )
        return True

    def record_payment(
        self,
        *,
        voucher_no: str,
        tax_office: str,
        levy_item: Scheme,
        region_code: str,
        amount_fen: int,
        period_start: date,
        period_end: date,
        paid_at: datetime,
        credited_on: date | None,
        channel: str,
        provenance: Provenance,
        policies: PolicySource,
    ) -> bool:
        """Record a contribution payment (缴费回传). Returns False for an identical resend.

        The same voucher (number + office) with different content is a conflict.
        """
        voucher_no = _non_empty(voucher_no, "voucher_no", "VOUCHER_REQUIRED")
        tax_office = _non_empty(tax_office, "tax_office", "VOUCHER_REQUIRED")
        require_fen(amount_fen, "amount_fen")
        paid_at = require_instant(paid_at, "paid_at")
        if credited_on is not None:
            require_date(credited_on, "credited_on")
        periods = payment_period_keys(levy_item, require_date(period_start, "period_start"), require_date(period_end, "period_end"))
        for year in sorted({int(p[:4]) for p in periods}):
            try:
                policies.get(region_code, year)
            except DomainError as e:
                raise DomainError(
                    "PERIOD_OUTSIDE_POLICY",
                    f"the payment covers {period_start}..{period_end} but region {region_code} has no policy for {year}: {e.message}",
                    region_code=region_code,
                    year=year,
                ) from None
        digest = content_digest(
            {
                "voucher_no": voucher_no,
                "tax_office": tax_office,
                "levy_item": levy_item.value,
                "region_code": region_code,
                "amount_fen": amount_fen,
                "period_start": period_start,
                "period_end": period_end,
                "paid_at": paid_at,
                "credited_on": credited_on,
                "channel": str(channel or ""),
            }
        )
        existing = self.payments.get(voucher_key(tax_office, voucher_no))
        if existing is not None:
            if existing.content_digest == digest:
                return False
            raise Conflict(
                "VOUCHER_CONFLICT",
                f"tax voucher {voucher_no} of office {tax_office} was already recorded with different content",
                voucher_no=voucher_no,
                tax_office=tax_office,
            )
        self.trigger_event(
            self.ContributionPaid,
            voucher_no=voucher_no,
            tax_office=tax_office,
            levy_item=levy_item.value,
            region_code=region_code,
            amount_fen=amount_fen,
            period_start=period_start,
            period_end=period_end,
            paid_at=paid_at,
            credited_on=credited_on,
            channel=str(channel or ""),
            content_digest=digest,
            effective_date=business_date(paid_at),
            provenance=dict(provenance),
        )
        return True

    def _original_payment(self, tax_office: str, voucher_no: str, what: str) -> dict[str, Any]:
        original = self.payments.get(voucher_key(tax_office, voucher_no))
        if original is None:
            raise DomainError(
                f"{what}_UNKNOWN_VOUCHER",
                f"the original voucher {voucher_no} (office {tax_office}) is not recorded for this person",
                voucher_no=voucher_no,
            )
        if original.reversed:
            raise DomainError(f"{what}_OF_REVERSED", f"voucher {voucher_no} was already reversed")
        return original

    def _resend_or_conflict(self, key: str, digest: str, what: str) -> bool:
        existing = _fold.correction_voucher(self.history, key)
        if existing is None:
            return False
        if existing.content_digest == digest:
            return True
        raise Conflict("VOUCHER_CONFLICT", f"{what} voucher {key} was already recorded with different content")

    def _prepare_correction(
        self,
        kind: PaymentKind,
        *,
        voucher_no: str,
        tax_office: str,
        original_voucher_no: str,
        original_tax_office: str | None,
        amount_fen: int,
        at: datetime,
        at_field: str,
    ) -> tuple[str, datetime, str, int] | None:
        """Checks a refund and a reversal share: (office of the original, instant, digest, fen still paid).

        None for an identical resend of the same correction voucher.
        """
        original_tax_office = original_tax_office or tax_office
        require_fen(amount_fen, "amount_fen")
        at = require_instant(at, at_field)
        digest = content_digest(
            {"kind": kind.value, "original": voucher_key(original_tax_office, original_voucher_no),
             "amount_fen": amount_fen, "at": at}
        )
        if self._resend_or_conflict(voucher_key(tax_office, voucher_no), digest, kind.value.lower()):
            return None
        original = self._original_payment(original_tax_office, original_voucher_no, kind.value)
        return original_tax_office, at, digest, original.amount_fen - original.refunded_fen

    def refund_payment(
        self,
        *,
        refund_voucher_no: str,
        tax_office: str,
        original_voucher_no: str,
        original_tax_office: str | None,
        amount_fen: int,
        refunded_at: datetime,
        reason: str,
        provenance: Provenance,
    ) -> bool:
        """Refund (退费) part or all of a recorded payment; never more than remains paid."""
        prepared = self._prepare_correction(
            PaymentKind.REFUND, voucher_no=refund_voucher_no, tax_office=tax_office,
            original_voucher_no=original_voucher_no, original_tax_office=original_tax_office,
            amount_fen=amount_fen, at=refunded_at, at_field="refunded_at",
        )
        if prepared is None:
            return False
        original_tax_office, refunded_at, digest, remaining = prepared
        if amount_fen > remaining:
            raise DomainError(
                "REFUND_EXCEEDS_PAID",
                f"refund of {amount_fen} fen is more than the {remaining} fen still paid on voucher {original_voucher_no}",
                remaining_fen=remaining,
            )
        self.trigger_event(
            self.ContributionRefunded,
            refund_voucher_no=_non_empty(refund_voucher_no, "refund_voucher_no", "VOUCHER_REQUIRED"),
            tax_office=tax_office,
            original_voucher_no=original_voucher_no,
            original_tax_office=original_tax_office,
            amount_fen=amount_fen,
            refunded_at=refunded_at,
            reason=str(reason or ""),
            content_digest=digest,
            effective_date=business_date(refunded_at),
            provenance=dict(provenance),
        )
        return True

    def reverse_payment(
        self,
        *,
        reversal_voucher_no: str,
        tax_office: str,
        original_voucher_no: str,
        original_tax_office: str | None,
        amount_fen: int,
        reversed_at: datetime,
        reason: str,
        provenance: Provenance,
    ) -> bool:
        """Reverse (冲正) a recorded payment: cancels what remains of it, exactly."""
        prepared = self._prepare_correction(
            PaymentKind.REVERSAL, voucher_no=reversal_voucher_no, tax_office=tax_office,
            original_voucher_no=original_voucher_no, original_tax_office=original_tax_office,
            amount_fen=amount_fen, at=reversed_at, at_field="reversed_at",
        )
        if prepared is None:
            return False
        original_tax_office, reversed_at, digest, remaining = prepared
        if amount_fen != remaining:
            raise DomainError(
                "REVERSAL_AMOUNT_MISMATCH",
                f"a reversal must cancel exactly the {remaining} fen remaining on voucher {original_voucher_no}, not {amount_fen}",
                remaining_fen=remaining,
            )
        self.trigger_event(
            self.ContributionReversed,
            reversal_voucher_no=_non_empty(reversal_voucher_no, "reversal_voucher_no", "VOUCHER_REQUIRED"),
            tax_office=tax_office,
            original_voucher_no=original_voucher_no,
            original_tax_office=original_tax_office,
            amount_fen=amount_fen,
            reversed_at=reversed_at,
            reason=str(reason or ""),
            content_digest=digest,
            effective_date=business_date(reversed_at),
            provenance=dict(provenance),
        )
        return True

    def transfer_out(
        self,
        *,
        transfer_id: str,
        counterpart_region: str,
        effective_date: date,
        provenance: Provenance,
    ) -> None:
        """Transfer out (医保关系转出): the sending region completes its half.

        The enrollment in force is suspended (中止), not ended; the personal-account balance
        and the contribution months are sent and leave this region (moved, never copied).
        """
        transfer_id = _non_empty(transfer_id, "transfer_id")
        counterpart_region = _non_empty(counterpart_region, "counterpart_region")
        current = self.active_enrollment
        if current is None:
            raise DomainError(
                "TRANSFER_NOT_ACTIVE",
                "only a person with an enrollment in force can be transferred out; enroll or check the person",
            )
        requested = self.transfers.get(transfer_id)
        if requested is not None and transfers.status_of(requested) == transfers.REQUESTED:
            transfers.check_request_matches(requested, current.region_code, counterpart_region)
        else:
            transfers.check_transfer_id_free(self.transfers, transfer_id)
        transfers.check_not_same_region(current.region_code, counterpart_region)
        effective_date = require_date(effective_date, "effective_date")
        if effective_date < current.start_date:
            raise DomainError("DATE_INVALID", f"transfer date {effective_date} is before the enrollment's start "
                                              f"{current.start_date}")
        self.trigger_event(
            self.TransferOutCompleted,
            transfer_id=transfer_id,
            enrollment_id=current.enrollment_id,
            region_code=current.region_code,
            counterpart_region=counterpart_region,
            scheme=current.scheme,
            account_balance_fen=self.account_balance_fen,
            contribution_months=max(0, self.contribution_months),
            effective_date=effective_date,
            provenance=dict(provenance),
        )

    def transfer_in(
        self,
        *,
        transfer_id: str,
        counterpart_region: str,
        effective_date: date,
        provenance: Provenance,
        policies: PolicySource,
        account_balance_fen: int | None = None,
        contribution_months: int | None = None,
        region_code: str | None = None,
        source_document_no: str | None = None,
        enroll: dict[str, Any] | None = None,
    ) -> None:
        """Transfer in (医保关系转入): the receiving region completes its half.

        Within this ledger the in half accepts exactly what its out half sent (figures left
        out mean "what was sent"; others are refused ``TRANSFER_MISMATCH``), and an in half
        from a region of this ledger with no out half is refused ``TRANSFER_OUT_MISSING``.
        From outside this ledger (跨省) it credits what its source document states, marked
        external. ``enroll`` (the arguments of :meth:`enroll`, less the shared ones) enrolls
        the person in the receiving region in the same command; every check runs before the
        first event, so a refusal writes nothing.
        """
        transfer_id = _non_empty(transfer_id, "transfer_id")
        counterpart_region = _non_empty(counterpart_region, "counterpart_region")
        effective_date = require_date(effective_date, "effective_date")
        if account_balance_fen is not None:
            require_fen(account_balance_fen, "account_balance_fen", allow_zero=True)
        if contribution_months is not None:
            transfers.require_months(contribution_months)
        existing = self.transfers.get(transfer_id)
        if existing is not None and existing.direction == "REQUEST":
            transfers.check_open(existing, "转入", requested_ok=True)
            raise DomainError(
                "TRANSFER_OUT_MISSING",
                f"转移单 {transfer_id} 已申请，转出地 {existing.region_code} 尚未办理转出；转出完成后再接续 "
                f"(requested, but the sending region has not recorded the transfer-out yet)",
                transfer_id=transfer_id, counterpart_region=existing.region_code,
            )
        if existing is not None and existing.direction == "OUT":
            transfers.check_open(existing, "转入", legacy_ok=True)
            matched = transfers.match_in_half(
                existing, counterpart_region=counterpart_region, receiving_region=region_code,
                account_balance_fen=account_balance_fen, contribution_months=contribution_months,
            )
            if effective_date < existing.started_on:
                raise DomainError("DATE_INVALID", f"转入日期 {effective_date} 早于转出日期 {existing.started_on} "
                                                  f"(the transfer-in is dated before its transfer-out)")
            external = False
            receiving = existing.counterpart_region
        else:
            transfers.check_transfer_id_free(self.transfers, transfer_id)
            transfers.check_out_half_exists(counterpart_region, policies.regions(), transfer_id)
            matched = transfers.external_figures(account_balance_fen, contribution_months, transfer_id)
            external = True
            receiving = region_code or ""
        enrollment_start = None
        current = self.active_enrollment
        if enroll is not None and current is not None and current.scheme == enroll["scheme"] \
                and current.region_code == (region_code or receiving):
            enroll = None  # already enrolled here (the clerk enrolled them first): the transfer only completes
        if enroll is not None:
            sending_scheme = existing.scheme if not external else None
            enrollment_start = transfers.transfer_effect(sending_scheme, enroll["scheme"], effective_date).start
            self._check_enrollment(
                scheme=enroll["scheme"], region_code=region_code or receiving, flexible=enroll.get("flexible", False),
                employer_id=enroll.get("employer_id"), policies=policies,
            )
        self.trigger_event(
            self.TransferInCompleted,
            transfer_id=transfer_id,
            counterpart_region=counterpart_region,
            region_code=region_code or receiving,
            account_balance_fen=matched.account_balance_fen,
            contribution_months=matched.contribution_months,
            external=external,
            source_document_no=str(source_document_no or transfer_id).strip(),
            effective_date=effective_date,
            provenance=dict(provenance),
        )
        if enroll is not None:
            self.enroll(
                scheme=enroll["scheme"], region_code=region_code or receiving, grid_code=enroll.get("grid_code"),
                flexible=enroll.get("flexible", False), employer_id=enroll.get("employer_id"),
                channel=EnrollmentChannel.TRANSFER_IN, effective_date=enrollment_start or effective_date,
                provenance=provenance, policies=policies,
            )

    def request_transfer(
        self,
        *,
        transfer_id: str,
        sending_region: str,
        receiving_region: str,
        effective_date: date,
        provenance: Provenance,
        policies: PolicySource,
    ) -> None:
        """Record a transfer request (转移接续申请) made at the receiving region: the sending region,
        where the person's enrollment is in force, then has its time limit to complete the out half."""
        transfer_id = _non_empty(transfer_id, "transfer_id")
        transfers.check_transfer_id_free(self.transfers, transfer_id)
        transfers.check_not_same_region(sending_region, receiving_region)
        if receiving_region not in policies.regions():
            raise DomainError("REGION_UNKNOWN", f"region code {receiving_region} has no policy tables; check the code",
                              region_code=receiving_region)
        current = self.active_enrollment
        if current is None or current.region_code != sending_region:
            where = current.region_code if current else "无"
            raise DomainError(
                "TRANSFER_NOT_ACTIVE",
                f"本人在转出地 {sending_region} 没有有效参保登记（当前参保地：{where}），不能申请从该地转出 "
                f"(no enrollment in force in the sending region)", region_code=sending_region,
            )
        self.trigger_event(
            self.TransferRequested,
            transfer_id=transfer_id,
            region_code=sending_region,
            counterpart_region=receiving_region,
            effective_date=require_date(effective_date, "effective_date"),
            provenance=dict(provenance),
        )

    def cancel_transfer(
        self,
        *,
        transfer_id: str,
        reason: str,
        effective_date: date,
        provenance: Provenance,
        rejected: bool = False,
    ) -> None:
        """Cancel (转移撤销, by the sending region) or reject (拒绝接收, by the receiving region) an
        open transfer, with a reason: the suspended enrollment resumes and the balance and months
        sent return to the sending region."""
        transfer_id = _non_empty(transfer_id, "transfer_id")
        reason = _non_empty(reason, "reason", "REASON_REQUIRED")
        existing = self.transfers.get(transfer_id)
        if existing is None:
            raise DomainError("TRANSFER_UNKNOWN", f"本人没有转移单 {transfer_id} (no transfer {transfer_id} for this "
                                                  f"person)", transfer_id=transfer_id)
        transfers.check_open(existing, "拒绝" if rejected else "撤销", requested_ok=True)
        effective_date = require_date(effective_date, "effective_date")
        if effective_date < existing.started_on:
            raise DomainError("DATE_INVALID", f"撤销日期 {effective_date} 早于转出日期 {existing.started_on}")
        self.trigger_event(
            self.TransferCancelled,
            transfer_id=transfer_id,
            rejected=bool(rejected),
            reason=reason,
            effective_date=effective_date,
            provenance=dict(provenance),
        )

    def credit_account(
        self, *, amount_fen: int, reason: AccountEntryReason, reference: str, effective_date: date, provenance: Provenance
    ) -> None:
        """Credit the personal account (个人账户划入)."""
        self.trigger_event(
            self.AccountCredited,
            amount_fen=require_fen(amount_fen, "amount_fen"),
            reason=reason.value,
            reference=str(reference or ""),
            effective_date=require_date(effective_date, "effective_date"),
            provenance=dict(provenance),
        )

    def debit_account(
        self,
        *,
        amount_fen: int,
        reason: AccountEntryReason,
        reference: str,
        effective_date: date,
        provenance: Provenance,
        relative_person_id: str | None = None,
        relative_relationship: str | None = None,
    ) -> None:
        """Debit the personal account; family mutual aid (家庭共济) names the relative."""
        require_fen(amount_fen, "amount_fen")
        if amount_fen > self.account_balance_fen:
            raise DomainError(
                "ACCOUNT_INSUFFICIENT",
                f"the personal account holds {self.account_balance_fen} fen, less than the {amount_fen} fen asked",
            )
        if reason == AccountEntryReason.FAMILY_MUTUAL_AID and not (relative_person_id and relative_relationship):
            raise DomainError("RELATIVE_REQUIRED", "family mutual aid must name the relative and the relationship")
        self.trigger_event(
            self.AccountDebited,
            amount_fen=amount_fen,
            reason=reason.value,
            reference=str(reference or ""),
            relative_person_id=relative_person_id,
            relative_relationship=relative_relationship,
            effective_date=require_date(effective_date, "effective_date"),
            provenance=dict(provenance),
        )

    def late_fee_payments_key(self, tax_office: str, voucher_no: str) -> _fold.LateFeePayment | None:
        """The late-fee payment recorded under this voucher, or None."""
        return self.history.late_fee_payments.get(voucher_key(str(tax_office), str(voucher_no)))

    def late_fee_waiver(self, waiver_id: str) -> _fold.LateFeeWaiver | None:
        """The late-fee waiver recorded under this id, or None."""
        return self.history.late_fee_waivers.get(str(waiver_id))

    def _late_fee_period(self, period: str, region_code: str) -> str:
        """The employer-scheme month a late fee is for: assessed for this person in this region."""
        period = _non_empty(period, "period", "PERIOD_REQUIRED")
        assessment = self.assessments.get(period)
        if assessment is None or assessment.scheme != Scheme.EMPLOYEE.value or len(period) != 7:
            raise DomainError(
                "LATE_FEE_PERIOD_UNKNOWN",
                f"滞纳金所属月份 {period} 没有该人员的职工医保核定记录 "
                f"(no employee-scheme assessment for {period}: a late fee is for an assessed month)",
                period=period)
        if assessment.region_code != region_code:
            raise DomainError(
                "LATE_FEE_REGION_MISMATCH",
                f"{period} 的核定参保地是 {assessment.region_code}，不是 {region_code} "
                f"(the month was assessed in another region)", period=period)
        return period

    def pay_late_fee(
        self,
        *,
        voucher_no: str,
        tax_office: str,
        region_code: str,
        period: str,
        amount_fen: int,
        paid_at: datetime,
        channel: str,
        provenance: Provenance,
    ) -> bool:
        """Record a late-fee payment (滞纳金缴纳) for one assessed employee month. False for an identical resend;
        the same voucher with other content is VOUCHER_CONFLICT."""
        voucher_no = _non_empty(voucher_no, "voucher_no", "VOUCHER_REQUIRED")
        tax_office = _non_empty(tax_office, "tax_office", "VOUCHER_REQUIRED")
        require_fen(amount_fen, "amount_fen")
        paid_at = require_instant(paid_at, "paid_at")
        digest = content_digest({"kind": "LATE_FEE", "voucher_no": voucher_no, "tax_office": tax_office,
                                 "region_code": region_code, "period": str(period), "amount_fen": amount_fen,
                                 "paid_at": paid_at})  # not the channel: a clerk's entry and the feed's may differ
        existing = self.history.late_fee_payments.get(voucher_key(tax_office, voucher_no))
        if existing is not None:
            if existing.content_digest == digest:
                return False
            raise Conflict("VOUCHER_CONFLICT",
                           f"tax voucher {voucher_no} of office {tax_office} was already recorded with different content",
                           voucher_no=voucher_no, tax_office=tax_office)
        if voucher_key(tax_office, voucher_no) in self.payments:
            raise Conflict("VOUCHER_CONFLICT", f"tax voucher {voucher_no} of office {tax_office} is a contribution "
                                               "payment already recorded", voucher_no=voucher_no, tax_office=tax_office)
        period = self._late_fee_period(period, region_code)
        self.trigger_event(
            self.LateFeePaid, voucher_no=voucher_no, tax_office=tax_office, region_code=region_code, period=period,
            amount_fen=amount_fen, paid_at=paid_at, channel=str(channel or ""), content_digest=digest,
            effective_date=business_date(paid_at), provenance=dict(provenance),
        )
        return True

    def waive_late_fee(
        self,
        *,
        waiver_id: str,
        region_code: str,
        period: str,
        reason: str,
        approver: str,
        effective_date: date,
        provenance: Provenance,
    ) -> bool:
        """Waive the late fee (滞纳金减免) of one assessed employee month, with a reason and an approver.
        False for the same waiver again (same id and content); another waiver of a waived month is refused."""
        waiver_id = _non_empty(waiver_id, "waiver_id", "WAIVER_ID_REQUIRED")
        if not str(reason or "").strip():
            raise DomainError("WAIVER_REASON_REQUIRED", "减免滞纳金须写明理由 (a waiver needs a reason)")
        if not str(approver or "").strip():
            raise DomainError("WAIVER_APPROVER_REQUIRED", "减免滞纳金须有审批人 (a waiver needs the approver's name)")
        reason, approver = str(reason).strip(), str(approver).strip()
        if len(reason) > 500 or len(approver) > 100:
            raise DomainError("WAIVER_TEXT_TOO_LONG", "减免理由最多 500 字、审批人最多 100 字 (reason or approver too long)")
        effective_date = require_date(effective_date, "effective_date")
        digest = content_digest({"kind": "LATE_FEE_WAIVER", "region_code": region_code, "period": str(period),
                                 "reason": reason, "approver": approver, "effective_date": effective_date})
        waivers = self.history.late_fee_waivers
        existing = waivers.get(waiver_id)
        if existing is not None:
            if existing.content_digest == digest:
                return False
            raise Conflict("RECORD_CONFLICT", f"waiver {waiver_id} was already recorded with different content",
                           waiver_id=waiver_id)
        period = self._late_fee_period(period, region_code)
        if any(w.period == period for w in waivers.values()):
            raise Conflict("LATE_FEE_ALREADY_WAIVED", f"{period} 的滞纳金已减免 (the late fee of {period} was already waived)",
                           period=period)
        self.trigger_event(
            self.LateFeeWaived, waiver_id=waiver_id, region_code=region_code, period=period, reason=reason,
            approver=approver, content_digest=digest, effective_date=effective_date, provenance=dict(provenance),
        )
        return True

    def record_residence(
        self,
        *,
        record_id: str,
        grid_code: str | None,
        status: ResidenceStatus,
        effective_date: date,
        provenance: Provenance,
        address: str | None = None,
        phone: str | None = None,
    ) -> bool:
        """Record the registry's view of residence (with its address and phone when it gives them); a death
        also ends the enrollment in force."""
        if self.residence_status == ResidenceStatus.DECEASED and status != ResidenceStatus.DECEASED:
            raise DomainError("PERSON_DECEASED", "the registry already reported this person deceased")
        self.trigger_event(
            self.ResidenceRecorded,
            record_id=_non_empty(record_id, "record_id"),
            grid_code=optional_grid(grid_code, "grid_code"),
            status=status.value,
            address=optional_contact(address, "address", 200),
            phone=optional_phone(phone),
            effective_date=require_date(effective_date, "effective_date"),
            provenance=dict(provenance),
        )
        if status == ResidenceStatus.DECEASED:
            for enrollment in self.active_enrollments:
                self.end_enrollment(
                    enrollment_id=enrollment.enrollment_id,
                    reason=EnrollmentEndReason.DIED,
                    effective_date=max(effective_date, enrollment.start_date),
                    provenance=provenance,
                )
        return True

    # ------------------------------------------------------------------ merge (参保人合并)
    @property
    def merged_into(self) -> str | None:
        """The id of the person this record was merged into, or None."""
        return self.history.merged_into

    def check_not_merged(self) -> None:
        """A record merged into another takes no new fact (PERSON_MERGED); its inbound records are routed
        to the person kept by the application."""
        if self.history.merged_into is not None:
            raise DomainError("PERSON_MERGED", f"该参保人记录已合并至参保人 {self.history.merged_into}，不再记录新的事实，请对合并后的参保人操作 "
                              f"(this record was merged into person {self.history.merged_into}; act on that person)",
                              survivor_person_id=self.history.merged_into)

    def absorb(self, *, change_id: str, merged_person_id: str, merge_kind: str, reason: str, proposed_by: str,
               approved_by: str, effective_date: date, provenance: Provenance, merged_facts: str = "") -> bool:
        """Record that ``merged_person_id`` is merged into this person, with the facts it carries over
        (``merged_facts``: :func:`ledger.domain.history.carried_facts` of that record); False when this
        change was recorded already."""
        if change_id in self.history.merges:
            return False
        if str(merged_person_id) == str(self.id):
            raise DomainError("MERGE_SAME_PERSON", "不能把参保人合并到其本人 (a person cannot be merged into itself)")
        self.trigger_event(self.PersonMerged, change_id=change_id, merged_person_id=str(merged_person_id),
                           merge_kind=merge_kind, reason=reason, proposed_by=proposed_by, approved_by=approved_by,
                           merged_facts=str(merged_facts or ""),
                           effective_date=require_date(effective_date, "effective_date"),
                           provenance=dict(provenance))
        return True

    def merge_into(self, *, change_id: str, survivor_person_id: str, merge_kind: str, reason: str, proposed_by: str,
                   approved_by: str, effective_date: date, provenance: Provenance) -> bool:
        """Mark this record merged into ``survivor_person_id``; False when this change was recorded already."""
        if change_id in self.history.merges:
            return False
        if str(survivor_person_id) == str(self.id):
            raise DomainError("MERGE_SAME_PERSON", "不能把参保人合并到其本人 (a person cannot be merged into itself)")
        self.check_not_merged()
        self.trigger_event(self.PersonMergedInto, change_id=change_id, survivor_person_id=str(survivor_person_id),
                           merge_kind=merge_kind, reason=reason, proposed_by=proposed_by, approved_by=approved_by,
                           effective_date=require_date(effective_date, "effective_date"),
                           provenance=dict(provenance))
        return True

    def check_alive(self) -> None:
        if self.residence_status == ResidenceStatus.DECEASED:
            raise DomainError("PERSON_DECEASED", "the registry reported this person deceased; no new enrollment")


def last_day_of_month(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])



def _check_one_fold() -> None:
    """Every person event is a fact of the one fold: each has its handler in the history (``_ignore``
    for one that changes no fact), or the aggregate and the views would disagree about it."""
    names = {n for n, c in vars(Person).items()
             if isinstance(c, type) and issubclass(c, Person.Event) and c is not Person.Event and n != "Created"}
    missing = names - _fold.PERSON_EVENT_TYPES
    if missing:
        raise TypeError(f"person events without a handler in ledger.domain.history._HANDLERS: {sorted(missing)}")


_check_one_fold()
