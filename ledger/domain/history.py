"""A person's history as one typed state (参保人事实), folded from the ledger's person events.

Every read model starts from the same per-person fold: the facts of
one insured person (enrollments, assessments, subsidised statuses, payments with
their refunds and reversals, transfers, personal-account movements, residence), each
kept with the id of the event that reported it, so every derived figure can name
its sources. The fold is pure: :func:`fold` takes the history (or ``None``) and one
event and returns a new history; nothing is read or written elsewhere.

Events come in two shapes and both are accepted:

* the library's domain events (``Person.ContributionPaid`` ... from
  ``ledger.events.get`` or the notification log through ``ledger.mapper``);
* the consumer envelopes of ``events.ledger_events.record_to_envelope`` (a dict with
  ``event_type``, ``person_id``, ``version`` and the event's own fields), i.e. what
  a Kafka consumer of ``ledger.events.v1`` gets.

Idempotency (a duplicate re-published after a crash must change nothing) relies on
the person's ``originator_version``: the events of one person arrive in order, so
an event whose version is not above the last applied one is a duplicate and is
ignored -- after checking that its ``event_id`` is the one applied at that version
(a different id there means two different events claim one place in the history:
``EVENT_MISMATCH``). A version further ahead than the next one means events are
missing (``EVENT_GAP``): the adapter must fetch them first. Events of other
aggregates (the ``SourceRecord`` idempotency index) are not person events and are
ignored by every projection.

The aggregate folds the same state with the same handlers (:func:`apply`, called by each
``Person`` event's ``apply``): ``Person.history`` is a :class:`PersonHistory`, equal to
``fold_many(None, its events)``. So the history keeps the few facts only the write side
checks too: a voucher's office and content digest (an identical resend changes nothing, a
different one is a conflict) and transfer requests (``direction`` ``REQUEST``). Every person
event has a handler here (``_ignore`` for one that changes no fact): the aggregate checks it
when its module loads.

The history is one typed state, :class:`PersonHistory` (参保人事实), of small
dataclasses (:class:`Enrollment`, :class:`Assessment`, :class:`SubsidyGrant`,
:class:`Payment` with its :class:`Refund` list and :class:`Reversal`,
:class:`Transfer`, :class:`AccountEntry`, :class:`ResidenceRecord`).
:func:`history_to_plain` / :func:`history_from_plain` turn it into plain values
(str, int, bool, date, datetime, lists and dicts of them) and back, so an adapter can
store it as a JSON column next to the derived figures. Names and ID numbers are not
kept: views are keyed by the person id only (个人信息保护法).
"""
from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from datetime import date, datetime
from itertools import compress, islice
from operator import is_not
from typing import Any, Callable, Iterable, get_args, get_origin, get_type_hints
from uuid import UUID

from ledger.domain.errors import DomainError
from ledger.domain.person_rules import counts_for_months, payment_period_keys, payment_share, status_last_day, voucher_key


class ProjectionError(DomainError):
    """The event stream cannot be applied as given (a gap, or two events at one version)."""


#: The module of the Person aggregate (``ledger.domain.person``), whose events are the person events:
#: named, not imported (the aggregate imports this module, to fold its state with it).
_PERSON_MODULE = "ledger.domain.person"


# --------------------------------------------------------------------------- reading an event
def event_type(event: Any) -> str | None:
    """The short event name (``"ContributionPaid"``), or None for an event that is not a person event."""
    if isinstance(event, dict):
        name = event.get("event_type")
        return name if name in PERSON_EVENT_TYPES and "person_id" in event else None
    cls = type(event)
    if cls.__module__ == _PERSON_MODULE:
        name = cls.__name__
        return name if name in PERSON_EVENT_TYPES else None
    return None


#: The library's names of the fields a library event holds under another business name.
_LIBRARY_NAMES = {"person_id": "originator_id", "version": "originator_version", "recorded_at": "timestamp"}


def value(event: Any, name: str) -> Any:
    """A field of either event shape, under its business name (``person_id``, ``version``)."""
    if isinstance(event, dict):
        return event.get(name)
    return getattr(event, _LIBRARY_NAMES.get(name, name), None)


def person_key(event: Any) -> str | None:
    """The row key every projection files an event under: the person id as text (None: not ours)."""
    if event_type(event) is None:
        return None
    pid = value(event, "person_id")
    return str(pid) if isinstance(pid, UUID) else (str(pid) if pid is not None else None)


def _eid(event: Any) -> str:
    return str(value(event, "event_id"))


# --------------------------------------------------------------------------- the person's history, typed
# The items of a history are never changed in place once a history holds them: a fold that
# changes one (an enrollment ended, a payment refunded) puts a changed copy in its place,
# so a history copied with :meth:`PersonHistory.copy` (its containers copied, its items
# shared) is independent of the one it was copied from. The classes are not frozen only
# because a frozen dataclass is slower to build, and the fold builds millions of them.
@dataclass(slots=True)
class ResidenceRecord:
    """Residence (户籍): the household registry's word on a day: the grid and the status (RESIDENT, DECEASED, ...)."""

    on: date
    grid: str | None
    status: str
    event_id: str


@dataclass(slots=True)
class Enrollment:
    """Enrollment (参保登记) in a scheme, with its end (终止) once ended, and the transfer suspending it (中止)."""

    enrollment_id: str
    scheme: str
    flexible: bool
    region_code: str | None
    grid_code: str | None
    employer_id: str | None
    channel: str
    duplicate_of: str | None
    start_date: date
    end_date: date | None
    end_reason: str | None
    event_id: str
    end_event_id: str | None
    suspended_by: str | None = None  # the transfer whose out half stopped it (TransferOutCompleted)

    def copy(self) -> Enrollment:
        return Enrollment(self.enrollment_id, self.scheme, self.flexible, self.region_code, self.grid_code,
                          self.employer_id, self.channel, self.duplicate_of, self.start_date, self.end_date,
                          self.end_reason, self.event_id, self.end_event_id, self.suspended_by)


@dataclass(slots=True)
class Assessment:
    """Contribution assessment (缴费核定) of a period (coverage year "2025" or month "2025-03") in force,
    with the ids of the assessments it superseded."""

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
    assessed_on: date
    event_id: str
    supersedes: list[str]


@dataclass(slots=True)
class SubsidyGrant:
    """Subsidised status (参保资助身份), e.g. minimum living allowance, with its revocation (撤销) once revoked."""

    grant_id: str
    category: str
    valid_from: date
    valid_to: date | None
    revoked_from: date | None
    department: str | None
    document_no: str | None
    event_id: str
    revoke_event_id: str | None

    def copy(self) -> SubsidyGrant:
        return SubsidyGrant(self.grant_id, self.category, self.valid_from, self.valid_to, self.revoked_from,
                            self.department, self.document_no, self.event_id, self.revoke_event_id)


@dataclass(slots=True)
class Refund:
    """Refund (退费) of part of a payment, counted from its own date."""

    voucher_no: str
    amount_fen: int
    on: date
    event_id: str
    tax_office: str | None = None  # of the refund voucher (its key with ``voucher_no``)
    content_digest: str | None = None  # what a resend of the same voucher must repeat (write side)


@dataclass(slots=True)
class Reversal:
    """Reversal (冲正) of a payment: the payment counts as never made."""

    voucher_no: str
    amount_fen: int
    on: date
    event_id: str
    tax_office: str | None = None  # of the reversal voucher (its key with ``voucher_no``)
    content_digest: str | None = None  # what a resend of the same voucher must repeat (write side)


@dataclass(slots=True)
class Payment:
    """Contribution payment (缴费) by tax voucher (电子税票), for one coverage year or several employee months,
    with its refunds and its reversal."""

    voucher_no: str
    levy_item: str
    region_code: str | None
    amount_fen: int
    periods: list[str]
    period_start: date
    period_end: date
    paid_on: date
    paid_at: Any  # the instant (datetime) as the tax feed reported it
    credited_on: date | None
    channel: str | None
    event_id: str
    refunds: list[Refund]
    reversal: Reversal | None
    tax_office: str | None = None  # the voucher's office (征收税务机关); the key is ``voucher_key(tax_office, voucher_no)``
    content_digest: str | None = None  # what a resend of the same voucher must repeat (write side)

    def copy(self) -> Payment:
        return Payment(self.voucher_no, self.levy_item, self.region_code, self.amount_fen, self.periods,
                       self.period_start, self.period_end, self.paid_on, self.paid_at, self.credited_on,
                       self.channel, self.event_id, list(self.refunds), self.reversal, self.tax_office,
                       self.content_digest)

    @property
    def refunded_fen(self) -> int:
        """Fen refunded (退费) so far, every refund counted."""
        return sum(r.amount_fen for r in self.refunds)

    @property
    def reversed(self) -> bool:
        """Reversed (冲正): the payment counts as never made."""
        return self.reversal is not None


@dataclass(slots=True)
class Transfer:
    """Transfer of the insurance relationship (转移接续), both halves: OUT (转出) and IN (转入).

    ``status`` and the fields after it are set by the two-step transfer events
    (TransferOutCompleted / TransferInCompleted / TransferCancelled); a transfer of the
    older one-step events (TransferredOut / TransferredIn) leaves them None.
    """

    transfer_id: str
    direction: str
    enrollment_id: str | None
    counterpart_region: str | None
    account_balance_fen: int | None
    contribution_months: int
    started_on: date
    completed_on: date | None
    out_event_id: str | None
    in_event_id: str | None
    status: str | None = None
    region_code: str | None = None
    scheme: str | None = None
    external: bool | None = None
    closed_reason: str | None = None
    source_document_no: str | None = None
    cancel_event_id: str | None = None
    requested_on: date | None = None  # the request (转移接续申请, TransferRequested) that opened it, if any
    request_event_id: str | None = None

    def copy(self) -> Transfer:
        return Transfer(self.transfer_id, self.direction, self.enrollment_id, self.counterpart_region,
                        self.account_balance_fen, self.contribution_months, self.started_on, self.completed_on,
                        self.out_event_id, self.in_event_id, self.status, self.region_code, self.scheme,
                        self.external, self.closed_reason, self.source_document_no, self.cancel_event_id,
                        self.requested_on, self.request_event_id)


@dataclass(slots=True)
class AccountEntry:
    """Personal account movement (个人账户): credit (+) or debit (-) in fen, with its reason."""

    on: date
    amount_fen: int
    reason: str
    event_id: str


@dataclass(slots=True)
class LateFeePayment:
    """Late fee paid (滞纳金缴纳) for one employee month, by voucher (tax feed or clerk)."""

    voucher_no: str
    region_code: str
    period: str
    amount_fen: int
    paid_on: date
    channel: str
    event_id: str
    content_digest: str | None = None  # write side: a resend of the voucher with other content is a conflict


@dataclass(slots=True)
class LateFeeWaiver:
    """Late fee waived (滞纳金减免) for one employee month: why, who approved, who recorded it."""

    waiver_id: str
    region_code: str
    period: str
    reason: str
    approver: str
    on: date
    recorded_by: str | None
    event_id: str
    content_digest: str | None = None  # write side: the same waiver id with other content is a conflict


@dataclass(slots=True)
class PersonMerge:
    """A merge of two person records (参保人合并), on both sides: ``role`` ``ABSORBED`` on the person kept
    (``other_person_id`` is the record merged into it), ``MERGED_INTO`` on the record merged away
    (``other_person_id`` is the person kept). Proposed by one clerk, approved by another."""

    change_id: str
    role: str
    other_person_id: str
    merge_kind: str
    reason: str
    proposed_by: str
    approved_by: str
    on: date
    event_id: str


@dataclass(slots=True)
class PersonHistory:
    """The insured person's history (参保人事实): every fact the views derive from, each with its event's id.

    ``event_ids[v - 1]`` is the id of the event applied at version ``v``; ``assessments``
    is keyed by period, ``subsidies`` by grant id, ``payments`` by voucher key
    (:func:`ledger.domain.person.voucher_key`, in the order recorded), ``transfers`` by
    transfer id; ``residence`` and ``account`` are in event order.
    """

    person_id: str
    version: int = 0
    event_ids: list[str] = field(default_factory=list)
    registered_event_id: str | None = None
    birth_date: date | None = None
    residence: list[ResidenceRecord] = field(default_factory=list)
    enrollments: list[Enrollment] = field(default_factory=list)
    assessments: dict[str, Assessment] = field(default_factory=dict)
    subsidies: dict[str, SubsidyGrant] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    transfers: dict[str, Transfer] = field(default_factory=dict)
    account: list[AccountEntry] = field(default_factory=list)
    transferred_in_months: int = 0
    late_fee_payments: dict[str, LateFeePayment] = field(default_factory=dict)  # by voucher key
    late_fee_waivers: dict[str, LateFeeWaiver] = field(default_factory=dict)  # by waiver id
    merges: dict[str, PersonMerge] = field(default_factory=dict)  # by change id
    #: Set once this record was merged into another person (the id of the person kept): it counts nowhere.
    merged_into: str | None = None

    def copy(self) -> PersonHistory:
        """A history the fold may change without changing this one: containers copied, items shared (see above)."""
        return PersonHistory(self.person_id, self.version, list(self.event_ids), self.registered_event_id,
                             self.birth_date, list(self.residence), list(self.enrollments), dict(self.assessments),
                             dict(self.subsidies), dict(self.payments), dict(self.transfers), list(self.account),
                             self.transferred_in_months, dict(self.late_fee_payments), dict(self.late_fee_waivers),
                             dict(self.merges), self.merged_into)

    def shallow(self) -> PersonHistory:
        """A new history object sharing this one's containers (``fold_many(owned=True)``: this one is dropped)."""
        return PersonHistory(self.person_id, self.version, self.event_ids, self.registered_event_id,
                             self.birth_date, self.residence, self.enrollments, self.assessments, self.subsidies,
                             self.payments, self.transfers, self.account, self.transferred_in_months,
                             self.late_fee_payments, self.late_fee_waivers, self.merges, self.merged_into)


def new_history(person_id: str) -> PersonHistory:
    return PersonHistory(person_id)


# --------------------------------------------------------------------------- as plain data, and back
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


#: Fields left out of the plain form while None: the older histories never had them, so a
#: history without a two-step transfer reads and writes as the same text as before.
_OMITTED_WHEN_NONE = {
    Enrollment: ("suspended_by",),
    Transfer: ("status", "region_code", "scheme", "external", "closed_reason", "source_document_no",
               "cancel_event_id", "requested_on", "request_event_id"),
    Payment: ("tax_office", "content_digest"),
    Refund: ("tax_office", "content_digest"),
    Reversal: ("tax_office", "content_digest"),
    LateFeePayment: ("content_digest",),
    LateFeeWaiver: ("content_digest",),
}


def _plain_function(cls: type, nested: dict[str, str] | None = None) -> Callable[[Any], dict[str, Any]]:
    """A function giving an item of ``cls`` as a dict of its fields, in field order (one dict display:
    the store encodes every changed person's history, so this runs millions of times in a rebuild).

    ``nested``: field -> an expression of ``v`` (the field's value) for a field holding items.
    """
    nested = nested or {}
    omitted = _OMITTED_WHEN_NONE.get(cls, ())
    kept = [n for n in _names(cls) if n not in omitted]
    items = ", ".join(f"{n!r}: " + (f"(lambda v: {nested[n]})(o.{n})" if n in nested else f"o.{n}") for n in kept)
    lines = ["def plain(o):", f"    d = {{{items}}}"]
    lines += [f"    if o.{n} is not None: d[{n!r}] = o.{n}" for n in omitted]
    lines.append("    return d")
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), {"_record_plain": _record_plain}, namespace)  # noqa: S102 - code built from field names
    return namespace["plain"]


def _record_plain(item: Any) -> dict[str, Any]:
    return _PLAIN[type(item)](item)


def item_to_plain(item: Any) -> dict[str, Any]:
    """One item of a history (an :class:`Enrollment`, a :class:`Payment` ...) as :func:`history_to_plain` writes it."""
    return _PLAIN[type(item)](item)


_PLAIN: dict[type, Callable[[Any], dict[str, Any]]] = {}
for _cls in (ResidenceRecord, Enrollment, SubsidyGrant, Refund, Reversal, Transfer, AccountEntry, LateFeePayment,
             LateFeeWaiver, PersonMerge):
    _PLAIN[_cls] = _plain_function(_cls)
_PLAIN[Assessment] = _plain_function(Assessment, {"supersedes": "list(v)"})
_PLAIN[Payment] = _plain_function(Payment, {"periods": "list(v)", "refunds": "[_record_plain(r) for r in v]",
                                            "reversal": "None if v is None else _record_plain(v)"})
_residence_plain, _enrollment_plain, _assessment_plain = _PLAIN[ResidenceRecord], _PLAIN[Enrollment], _PLAIN[Assessment]
_grant_plain, _payment_plain, _transfer_plain, _account_plain = (_PLAIN[SubsidyGrant], _PLAIN[Payment], _PLAIN[Transfer],
                                                                 _PLAIN[AccountEntry])


# --------------------------------------------------------------------------- as rows (the aggregate's snapshots)
# A snapshot of the aggregate holds its history as rows: each item a list of its field values in
# field order (no names), which is about half the bytes of the plain form and builds back with
# positional arguments. Rows are only read back by the same shape of the classes: ``STATE_SHAPE``
# names that shape, and a snapshot of another shape is never read (``ledger.domain.person.Person.Snapshot``).
_ROW_CLASSES = (ResidenceRecord, Enrollment, Assessment, SubsidyGrant, Refund, Reversal, Payment, Transfer, AccountEntry,
                LateFeePayment, LateFeeWaiver, PersonMerge, PersonHistory)

#: The shape of the history's classes (their names and field names, in order): a snapshot's rows fit it or not.
STATE_SHAPE = __import__("hashlib").sha256(
    repr([(c.__name__, _names(c)) for c in _ROW_CLASSES]).encode()).hexdigest()[:16]


def _row_function(cls: type, nested: dict[str, str] | None = None) -> Callable[[Any], list[Any]]:
    """A function giving an item of ``cls`` as the list of its field values (``nested``: field -> expression of {v})."""
    nested = nested or {}
    items = ", ".join(nested[n].format(v=f"o.{n}") if n in nested else f"o.{n}" for n in _names(cls))
    namespace: dict[str, Any] = {}
    exec(f"def row(o):\n    return [{items}]", {"_ROW": _ROW, "Refund": Refund, "Reversal": Reversal}, namespace)  # noqa: S102 - code built from field names
    return namespace["row"]


_ROW: dict[type, Callable[[Any], list[Any]]] = {}
for _cls in (ResidenceRecord, Enrollment, SubsidyGrant, Refund, Reversal, Transfer, AccountEntry, LateFeePayment,
             LateFeeWaiver, PersonMerge):
    _ROW[_cls] = _row_function(_cls)
_ROW[Assessment] = _row_function(Assessment, {"supersedes": "list({v})"})
_ROW[Payment] = _row_function(Payment, {"periods": "list({v})", "refunds": "[_ROW[Refund](r) for r in {v}]",
                                        "reversal": "None if {v} is None else _ROW[Reversal]({v})"})
_PAYMENT_REFUNDS = _names(Payment).index("refunds")


def history_to_rows(h: PersonHistory) -> list[Any]:
    """The history as rows of plain values (see above): what the aggregate's snapshot stores."""
    residence, enrollment, assessment, grant = _ROW[ResidenceRecord], _ROW[Enrollment], _ROW[Assessment], _ROW[SubsidyGrant]
    payment, transfer, account = _ROW[Payment], _ROW[Transfer], _ROW[AccountEntry]
    return [h.person_id, h.version, list(h.event_ids), h.registered_event_id, h.birth_date,
            [residence(r) for r in h.residence], [enrollment(e) for e in h.enrollments],
            {k: assessment(a) for k, a in h.assessments.items()}, {k: grant(g) for k, g in h.subsidies.items()},
            {k: payment(p) for k, p in h.payments.items()}, {k: transfer(t) for k, t in h.transfers.items()},
            [account(x) for x in h.account], h.transferred_in_months,
            {k: _ROW[LateFeePayment](x) for k, x in h.late_fee_payments.items()},
            {k: _ROW[LateFeeWaiver](x) for k, x in h.late_fee_waivers.items()},
            {k: _ROW[PersonMerge](x) for k, x in h.merges.items()}, h.merged_into]


def _payment_from_row(row: list[Any]) -> Payment:
    refunds, reversal = row[_PAYMENT_REFUNDS], row[_PAYMENT_REFUNDS + 1]
    row[_PAYMENT_REFUNDS] = [Refund(*r) for r in refunds]
    row[_PAYMENT_REFUNDS + 1] = None if reversal is None else Reversal(*reversal)
    return Payment(*row)


def history_from_rows(rows: list[Any]) -> PersonHistory:
    """The history back from :func:`history_to_rows` (rows of the same ``STATE_SHAPE``; taken over, not copied)."""
    (pid, version, event_ids, registered, birth, residence, enrollments, assessments, subsidies, payments, transfers,
     account, transferred_in, fee_payments, fee_waivers, merges, merged_into) = rows
    return PersonHistory(
        pid, version, event_ids, registered, birth, [ResidenceRecord(*r) for r in residence],
        [Enrollment(*e) for e in enrollments], {k: Assessment(*a) for k, a in assessments.items()},
        {k: SubsidyGrant(*g) for k, g in subsidies.items()}, {k: _payment_from_row(p) for k, p in payments.items()},
        {k: Transfer(*t) for k, t in transfers.items()}, [AccountEntry(*x) for x in account], transferred_in,
        {k: LateFeePayment(*x) for k, x in fee_payments.items()}, {k: LateFeeWaiver(*x) for k, x in fee_waivers.items()},
        {k: PersonMerge(*x) for k, x in merges.items()}, merged_into)


def history_to_plain(h: PersonHistory) -> dict[str, Any]:
    """The history as plain data (dicts, lists, str, int, bool, date, datetime): what a view store writes.

    The keys are the field names; :func:`history_from_plain` reads it back equal.
    """
    plain = {
        "person_id": h.person_id,
        "version": h.version,
        "event_ids": list(h.event_ids),
        "registered_event_id": h.registered_event_id,
        "birth_date": h.birth_date,
        "residence": [_residence_plain(r) for r in h.residence],
        "enrollments": [_enrollment_plain(e) for e in h.enrollments],
        "assessments": {k: _assessment_plain(a) for k, a in h.assessments.items()},
        "subsidies": {k: _grant_plain(g) for k, g in h.subsidies.items()},
        "payments": {k: _payment_plain(p) for k, p in h.payments.items()},
        "transfers": {k: _transfer_plain(t) for k, t in h.transfers.items()},
        "account": [_account_plain(x) for x in h.account],
        "transferred_in_months": h.transferred_in_months,
    }
    # Left out while empty, so a history without late-fee facts reads and writes as before.
    if h.late_fee_payments:
        plain["late_fee_payments"] = {k: _PLAIN[LateFeePayment](x) for k, x in h.late_fee_payments.items()}
    if h.late_fee_waivers:
        plain["late_fee_waivers"] = {k: _PLAIN[LateFeeWaiver](x) for k, x in h.late_fee_waivers.items()}
    # Likewise the merges (参保人合并): a history without one reads and writes as before.
    if h.merges:
        plain["merges"] = {k: _PLAIN[PersonMerge](x) for k, x in h.merges.items()}
    if h.merged_into is not None:
        plain["merged_into"] = h.merged_into
    return plain


def _payment(d: dict[str, Any]) -> Payment:
    reversal = d["reversal"]
    return Payment(d["voucher_no"], d["levy_item"], d["region_code"], d["amount_fen"], d["periods"],
                   d["period_start"], d["period_end"], d["paid_on"], d["paid_at"], d["credited_on"], d["channel"],
                   d["event_id"], [Refund(**r) for r in d["refunds"]],
                   None if reversal is None else Reversal(**reversal), d.get("tax_office"), d.get("content_digest"))


def history_from_plain(d: dict[str, Any]) -> PersonHistory:
    """The history back from :func:`history_to_plain`'s data (the plain data is taken over, not copied).

    Raises ``HISTORY_UNREADABLE`` when the data is not a history of this shape.
    """
    try:
        return PersonHistory(
            d["person_id"], d["version"], d["event_ids"], d["registered_event_id"], d["birth_date"],
            [ResidenceRecord(**r) for r in d["residence"]],
            [Enrollment(**e) for e in d["enrollments"]],  # (a field left out while None takes its default)
            {k: Assessment(**a) for k, a in d["assessments"].items()},
            {k: SubsidyGrant(**g) for k, g in d["subsidies"].items()},
            {k: _payment(p) for k, p in d["payments"].items()},
            {k: Transfer(**t) for k, t in d["transfers"].items()},
            [AccountEntry(**x) for x in d["account"]],
            d["transferred_in_months"],
            {k: LateFeePayment(**x) for k, x in d.get("late_fee_payments", {}).items()},
            {k: LateFeeWaiver(**x) for k, x in d.get("late_fee_waivers", {}).items()},
            {k: PersonMerge(**x) for k, x in d.get("merges", {}).items()},
            d.get("merged_into"),
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise ProjectionError("HISTORY_UNREADABLE", (
            f"视图中保存的参保人事实格式不符，无法读取，须由视图重算处理 (the stored person history is not of the "
            f"expected shape: {type(error).__name__}: {error})")) from None


# --------------------------------------------------------------------------- what changed, as plain data
#: Fields every change record carries itself (the rest are found from PersonHistory's fields, see _layout).
_OWN_FIELDS = ("person_id", "version", "event_ids")
#: Items whose plain form nests other items: read back by a function of their own (others: ``cls(**plain)``).
_FROM_PLAIN_SPECIAL: dict[type, Callable[[dict[str, Any]], Any]] = {Payment: _payment}
_LAYOUT: tuple[tuple[str, ...], tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...],
               tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...]] | None = None


def _layout() -> tuple[tuple[str, ...], tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...],
                       tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...]]:
    """(scalar fields, list fields, dict fields) of PersonHistory, with how to read back a list's or dict's items.

    Taken from the class's own field types, so a fact added to the history later (a new
    list or dict of items) is carried by :func:`history_changes` without being named here.
    """
    global _LAYOUT
    if _LAYOUT is None:
        hints = get_type_hints(PersonHistory)
        scalars, lists, dicts = [], [], []
        for f in fields(PersonHistory):
            if f.name in _OWN_FIELDS:
                continue
            hint = hints[f.name]
            origin = get_origin(hint)
            if origin in (list, dict):
                item = get_args(hint)[-1]
                read = _FROM_PLAIN_SPECIAL.get(item) or (lambda d, cls=item: cls(**d))
                (lists if origin is list else dicts).append((f.name, read))
            else:
                scalars.append(f.name)
        _LAYOUT = (tuple(scalars), tuple(lists), tuple(dicts))
    return _LAYOUT


def history_changes(old: PersonHistory, new: PersonHistory) -> dict[str, Any]:
    """What the fold changed from ``old`` to ``new`` (folded from it), as plain data: :func:`apply_changes` reads it.

    A view store appends this to the stored history instead of writing the whole
    history again (issue 19): its size is that of the items the events added or
    replaced, not the history's. It relies on the fold's rule that an item a history
    holds is never changed in place (a changed item is a new copy, see above), so a
    changed item is one that is not the very same object as before; the fold only
    appends to the lists, and never removes a key. Looking for them compares object
    identities (no item is encoded or compared field by field).
    """
    if new.person_id != old.person_id or new.version < old.version:
        raise ValueError("history_changes: the new history is not folded from the old one")
    if new is not old and old.event_ids is new.event_ids:  # fold_many(owned=True) changed ``old`` in place
        raise ValueError("history_changes: the old history was changed in place by the fold")
    out: dict[str, Any] = {"version": new.version, "event_ids": new.event_ids[old.version:]}
    scalars, lists, dicts = _layout()
    plain = _record_plain
    for name in scalars:
        value_now = getattr(new, name)
        if value_now != getattr(old, name):
            out[name] = value_now
    # The identities are compared by ``map(is_not, ...)`` and the changed items picked by ``compress``: no Python
    # step per unchanged item, so a history of hundreds of payments costs a few microseconds more than a short one.
    for name, _ in lists:
        before, after = getattr(old, name), getattr(new, name)
        changed = [[i, plain(item)] for i, item in compress(enumerate(after), map(is_not, after, before))]
        changed += [[i, plain(item)] for i, item in enumerate(after[len(before):], len(before))]
        if changed:
            out[name] = changed
    for name, _ in dicts:
        before, after = getattr(old, name), getattr(new, name)
        if list(islice(after, len(before))) == list(before):  # the old keys first, in their order: the fold's rule
            changed_items = {key: plain(item) for key, item in
                             compress(after.items(), map(is_not, after.values(), before.values()))}
            changed_items.update((key, plain(item)) for key, item in islice(after.items(), len(before), None))
        else:  # (not a history this fold made; still answered right, item by item)
            get = before.get
            changed_items = {key: plain(item) for key, item in after.items() if get(key) is not item}
        if changed_items:
            out[name] = changed_items
    return out


def apply_changes(history: PersonHistory, changes: dict[str, Any]) -> PersonHistory:
    """The history with :func:`history_changes`' data applied, changed in place (it was just read: nobody else holds it).

    Changes of an older version than the history's are skipped (already in it); a
    gap between the two raises ``HISTORY_UNREADABLE``, as any data not of this shape.
    """
    try:
        version = changes["version"]
        event_ids = changes["event_ids"]
        if version <= history.version:
            return history
        if version - len(event_ids) != history.version:
            raise ValueError(f"changes from version {version - len(event_ids)} applied at version {history.version}")
        history.version = version
        history.event_ids.extend(event_ids)
        scalars, lists, dicts = _layout()
        for name in scalars:
            if name in changes:
                setattr(history, name, changes[name])
        for name, make in lists:
            items = changes.get(name)
            if items:
                target = getattr(history, name)
                for i, item in items:
                    if i == len(target):
                        target.append(make(item))
                    else:
                        target[i] = make(item)
        for name, make in dicts:
            items = changes.get(name)
            if items:
                target = getattr(history, name)
                for key, item in items.items():
                    target[key] = make(item)
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as error:
        raise ProjectionError("HISTORY_UNREADABLE", (
            f"视图中保存的参保人事实变更记录格式不符，无法读取，须由视图重算处理 (the stored changes of a person "
            f"history are not of the expected shape: {type(error).__name__}: {error})")) from None
    return history


# --------------------------------------------------------------------------- the fold
def fold(history: PersonHistory | None, event: Any) -> PersonHistory:
    """Apply one person event to a person's history; a duplicate returns the history unchanged.

    Raises ``EVENT_GAP`` when events are missing before this one and
    ``EVENT_MISMATCH`` when another event was already applied at its version.
    """
    return fold_many(history, [event])  # type: ignore[return-value]


def fold_many(history: PersonHistory | None, events: Iterable[Any], *, owned: bool = False) -> PersonHistory | None:
    """:func:`fold` over several events of one person, in order, copying the history once.

    Returns the very same history object when every event was a duplicate; otherwise a
    new one, and ``history`` is unchanged (its containers are copied, see
    :meth:`PersonHistory.copy`). ``owned``: the caller hands the history over (it was
    just read from a store, and nothing else refers to it), so its containers are not
    copied: the new history is a new object whose containers are the old one's, changed
    in place. The old one must not be used afterwards.
    """
    new: PersonHistory | None = None  # the copy, made on the first event that changes something
    for event in events:
        current = new if new is not None else history
        duplicate, name, pid, version, event_id = _check(current, event)
        if duplicate:
            continue
        if new is None:
            if history is None:
                new = PersonHistory(pid)
            else:
                new = history.shallow() if owned else history.copy()
        _HANDLERS.get(name, _ignore)(new, _fields(event), event_id)
        new.version = version
        new.event_ids.append(event_id)
    return new if new is not None else history


def apply(history: PersonHistory, event: Any) -> None:
    """Apply one of the person's own new events to ``history`` in place: the aggregate's fold.

    The same handlers as :func:`fold_many` (so the write side's state is the views' state),
    without its duplicate and gap checks: the aggregate's versions are checked by the library
    before an event is applied. Items changed are replaced by changed copies, as in the fold,
    so a history copied with :meth:`PersonHistory.copy` stays independent of this one.
    """
    event_id = str(event.event_id)
    _HANDLERS.get(type(event).__name__, _ignore)(history, _fields(event), event_id)
    history.version = event.originator_version
    history.event_ids.append(event_id)


#: The last person id made text: one person's events are folded together (a tuple, read once: thread-safe).
_last_pid: tuple[Any, str | None] = (None, None)


def _text(pid: Any) -> str | None:
    """``str(pid)`` (None stays None), remembering the last one: every event of a person carries the same id."""
    global _last_pid
    last = _last_pid
    if pid is None:
        return None
    if last[0] != pid:  # (comparing two UUIDs costs a fifth of making one text)
        last = _last_pid = (pid, str(pid))
    return last[1]


def _check(history: PersonHistory | None, event: Any) -> tuple[bool, str, str, int, str]:
    """Is the event already applied? Raises for a gap or a different event at an applied version.

    Returns what it read from the event too (the fold needs it again): (duplicate,
    event type, person id, version, event id).
    """
    name = event_type(event)
    if name is None:
        raise ProjectionError("NOT_A_PERSON_EVENT", f"{type(event).__name__} is not a person event")
    pid = _text(value(event, "person_id"))  # person_key, the event type known
    version = int(value(event, "version"))
    event_id = _eid(event)
    if history is not None and history.person_id != pid:
        raise ProjectionError("EVENT_PERSON_MISMATCH",
                              f"event of person {pid} applied to the history of {history.person_id}")
    last = 0 if history is None else history.version
    if version <= last:
        applied = history.event_ids[version - 1]  # type: ignore[index]
        if applied != event_id:
            raise ProjectionError(
                "EVENT_MISMATCH",
                f"person {pid} version {version} was applied as event {applied}, now event {event_id} claims it",
                person_id=pid, version=version,
            )
        return True, name, pid, version, event_id  # type: ignore[return-value]
    if version != last + 1:
        raise ProjectionError(
            "EVENT_GAP",
            f"person {pid}: event version {version} arrived after version {last}; fetch the missing events first",
            person_id=pid, version=version, last_version=last,
        )
    return False, name, pid, version, event_id  # type: ignore[return-value]


#: Event classes whose instances hold every field in their ``__dict__`` (see :func:`_fields`).
_PLAIN_CLASSES: dict[type, bool] = {}


class _AttributeFields:
    """``.get`` of a library event that is not plain (see :func:`_fields`): :func:`value`, one call per field."""

    __slots__ = ("event",)

    def __init__(self, event: Any) -> None:
        self.event = event

    def get(self, name: str) -> Any:
        return value(self.event, name)


def _fields(event: Any) -> Any:
    """The event's fields as something with ``.get(name)`` giving :func:`value` (the handlers read ten or more).

    A consumer envelope is a dict already. A library event is a dataclass whose
    instance ``__dict__`` holds its fields (the constructor sets each one; the log
    source's decoder sets the stored state, every field): with no field defaults on
    the class, ``getattr(event, name, None)`` of a field is ``__dict__.get(name)``,
    without a function call, an ``isinstance`` and a name mapping per field. The
    handlers read only the event's own business fields (never ``person_id``,
    ``version``, ``recorded_at``, which :func:`value` maps to other names).
    """
    if type(event) is dict:
        return event
    cls = type(event)
    plain = _PLAIN_CLASSES.get(cls)
    if plain is None:
        fields = getattr(cls, "__dataclass_fields__", None)
        plain = _PLAIN_CLASSES[cls] = bool(fields) and hasattr(event, "__dict__") and all(
            f.default is MISSING and f.default_factory is MISSING for f in fields.values())
    return event.__dict__ if plain else _AttributeFields(event)


# Handlers: (history copy, the event's fields from _fields, the event's id as text). A handler
# replaces an item it changes by a changed copy (the items may be shared with the history folded from).
def _ignore(history: PersonHistory, f: Any, eid: str) -> None:
    """An event that changes none of the facts kept here (still counted, so versions stay contiguous)."""


def _registered(h: PersonHistory, f: Any, eid: str) -> None:
    h.registered_event_id = eid
    h.birth_date = f.get("birth_date")
    h.residence.append(ResidenceRecord(f.get("effective_date"), f.get("household_grid"), "RESIDENT", eid))


def _enrolled(h: PersonHistory, f: Any, eid: str) -> None:
    get = f.get
    h.enrollments.append(Enrollment(
        get("enrollment_id"), str(get("scheme")), bool(get("flexible")), get("region_code"), get("grid_code"),
        get("employer_id"), str(get("channel")), get("duplicate_of"), get("effective_date"), None, None, eid, None))


def _enrollment_index(h: PersonHistory, enrollment_id: Any) -> int | None:
    for i, enrollment in enumerate(h.enrollments):
        if enrollment.enrollment_id == enrollment_id:
            return i
    return None


def _end(h: PersonHistory, enrollment_id: str, on: date, reason: str, event_id: str) -> None:
    i = _enrollment_index(h, enrollment_id)
    if i is None:
        raise ProjectionError("ENROLLMENT_UNKNOWN", f"person {h.person_id}: no enrollment {enrollment_id!r} to end")
    enrollment = h.enrollments[i] = h.enrollments[i].copy()
    enrollment.end_date, enrollment.end_reason, enrollment.end_event_id = on, reason, event_id


def _enrollment_ended(h: PersonHistory, f: Any, eid: str) -> None:
    _end(h, f.get("enrollment_id"), f.get("effective_date"), str(f.get("reason")), eid)


def _assessed(h: PersonHistory, f: Any, eid: str) -> None:
    get = f.get
    period = get("period")
    previous = h.assessments.get(period)
    h.assessments[period] = Assessment(
        period, get("scheme"), get("region_code"), get("standard_fen"), get("subsidy_fen"), get("due_fen"),
        get("due_date"), get("subsidy_category"), get("base_fen"), get("employer_fen"), get("employee_fen"),
        get("policy_version"), get("effective_date"), eid,
        [] if previous is None else previous.supersedes + [previous.event_id])


def _granted(h: PersonHistory, f: Any, eid: str) -> None:
    get = f.get
    h.subsidies[get("grant_id")] = SubsidyGrant(
        get("grant_id"), str(get("category")), get("valid_from"), get("valid_to"), None, get("department"),
        get("document_no"), eid, None)


def _revoked(h: PersonHistory, f: Any, eid: str) -> None:
    grant = h.subsidies.get(f.get("grant_id"))
    if grant is None:
        raise ProjectionError("GRANT_UNKNOWN", f"person {h.person_id}: revocation of unknown status {f.get('grant_id')!r}")
    grant = h.subsidies[grant.grant_id] = grant.copy()
    grant.revoked_from = f.get("revoked_from")
    grant.revoke_event_id = eid


def _paid(h: PersonHistory, f: Any, eid: str) -> None:
    get = f.get
    levy = str(get("levy_item"))
    start, end = get("period_start"), get("period_end")
    h.payments[voucher_key(get("tax_office"), get("voucher_no"))] = Payment(
        get("voucher_no"), levy, get("region_code"), get("amount_fen"), payment_period_keys(levy, start, end),
        start, end, get("effective_date"), get("paid_at"), get("credited_on"), get("channel"), eid, [], None,
        get("tax_office"), get("content_digest"))


def _original(h: PersonHistory, f: Any) -> Payment:
    """The payment a correction names, replaced in the history by a copy the caller may change."""
    key = voucher_key(f.get("original_tax_office"), f.get("original_voucher_no"))
    payment = h.payments.get(key)
    if payment is None:
        raise ProjectionError("PAYMENT_UNKNOWN", f"person {h.person_id}: correction of unknown voucher {key}")
    payment = h.payments[key] = payment.copy()
    return payment


def _refunded(h: PersonHistory, f: Any, eid: str) -> None:
    _original(h, f).refunds.append(Refund(f.get("refund_voucher_no"), f.get("amount_fen"), f.get("effective_date"),
                                          eid, f.get("tax_office"), f.get("content_digest")))


def _reversed(h: PersonHistory, f: Any, eid: str) -> None:
    _original(h, f).reversal = Reversal(f.get("reversal_voucher_no"), f.get("amount_fen"), f.get("effective_date"),
                                        eid, f.get("tax_office"), f.get("content_digest"))


def _transferred_out(h: PersonHistory, f: Any, eid: str) -> None:
    get = f.get
    on = get("effective_date")
    _end(h, get("enrollment_id"), on, "TRANSFERRED_OUT", eid)
    balance = get("account_balance_fen")
    if balance:
        h.account.append(AccountEntry(on, -balance, "TRANSFER_OUT", eid))
    request = h.transfers.get(get("transfer_id"))  # a request (REQUEST) this out half answers
    h.transfers[get("transfer_id")] = Transfer(
        get("transfer_id"), "OUT", get("enrollment_id"), get("counterpart_region"), balance,
        get("contribution_months"), on, None, eid, None,
        requested_on=None if request is None else request.requested_on,
        request_event_id=None if request is None else request.request_event_id)


def _transfer_requested(h: PersonHistory, f: Any, eid: str) -> None:
    """A request (转移接续申请) at the receiving region (``counterpart_region``) for the sending region
    (``region_code``) to complete its out half: nothing moves yet; the sending region's time limit runs."""
    get = f.get
    on = get("effective_date")
    h.transfers[get("transfer_id")] = Transfer(
        get("transfer_id"), "REQUEST", None, get("counterpart_region"), 0, 0, on, None, None, None,
        status="REQUESTED", region_code=get("region_code"), external=False, requested_on=on, request_event_id=eid)


def _transferred_in(h: PersonHistory, f: Any, eid: str) -> None:
    get = f.get
    on = get("effective_date")
    balance = get("account_balance_fen")
    if balance:
        h.account.append(AccountEntry(on, balance, "TRANSFER_IN", eid))
    h.transferred_in_months += get("contribution_months")
    transfer_id = get("transfer_id")
    transfer = h.transfers.get(transfer_id)
    if transfer is not None and transfer.direction == "OUT":
        transfer = h.transfers[transfer_id] = transfer.copy()
        transfer.completed_on = on
        transfer.in_event_id = eid
        return
    h.transfers[transfer_id] = Transfer(
        transfer_id, "IN", None, get("counterpart_region"), balance, get("contribution_months"), on, on, None, eid)


def _transfer_out_completed(h: PersonHistory, f: Any, eid: str) -> None:
    """The sending half (转出完成): for coverage the enrollment stops as of the out date (中止), as an
    ended one would, until the in half completes or the transfer is cancelled; balance and months leave."""
    get = f.get
    _transferred_out(h, f, eid)  # a new Transfer and a copied enrollment: both this history's own
    h.transferred_in_months -= get("contribution_months")
    transfer = h.transfers[get("transfer_id")]
    transfer.status, transfer.region_code, transfer.scheme = "OUT_COMPLETED", get("region_code"), get("scheme")
    transfer.external, transfer.closed_reason = False, None
    i = _enrollment_index(h, get("enrollment_id"))
    if i is not None:
        h.enrollments[i].suspended_by = get("transfer_id")


def _transfer_in_completed(h: PersonHistory, f: Any, eid: str) -> None:
    """The receiving half (转入完成): matched to its out half, or external (跨省) with its source document."""
    get = f.get
    _transferred_in(h, f, eid)  # the transfer is a new or a copied one: this history's own
    transfer = h.transfers[get("transfer_id")]
    transfer.status = "DONE"
    if get("external"):
        transfer.external, transfer.region_code = True, get("region_code")
        transfer.source_document_no, transfer.scheme, transfer.closed_reason = get("source_document_no"), None, None


def _transfer_cancelled(h: PersonHistory, f: Any, eid: str) -> None:
    """Cancelled or rejected (转移撤销/拒绝): the enrollment resumes, the balance and months return."""
    get = f.get
    on = get("effective_date")
    transfer = h.transfers.get(get("transfer_id"))
    if transfer is None:  # a request closed before any out half: nothing moved, nothing to show
        return
    transfer = h.transfers[transfer.transfer_id] = transfer.copy()
    transfer.status = "REJECTED" if get("rejected") else "CANCELLED"
    transfer.completed_on, transfer.closed_reason, transfer.cancel_event_id = on, get("reason"), eid
    for i, enrollment in enumerate(h.enrollments):
        if enrollment.enrollment_id == transfer.enrollment_id:
            enrollment = h.enrollments[i] = enrollment.copy()
            enrollment.end_date = enrollment.end_reason = enrollment.end_event_id = enrollment.suspended_by = None
    if transfer.account_balance_fen:
        h.account.append(AccountEntry(on, transfer.account_balance_fen, "TRANSFER_CANCELLED", eid))
    h.transferred_in_months += transfer.contribution_months


def _account(sign: int) -> Callable[[PersonHistory, Any, str], None]:
    def handler(h: PersonHistory, f: Any, eid: str) -> None:
        h.account.append(AccountEntry(f.get("effective_date"), sign * f.get("amount_fen"), str(f.get("reason")), eid))
    return handler


def _residence(h: PersonHistory, f: Any, eid: str) -> None:
    previous_grid = h.residence[-1].grid if h.residence else None
    h.residence.append(
        ResidenceRecord(f.get("effective_date"), f.get("grid_code") or previous_grid, str(f.get("status")), eid))


def _late_fee_paid(h: PersonHistory, f: Any, eid: str) -> None:
    get = f.get
    h.late_fee_payments[voucher_key(get("tax_office"), get("voucher_no"))] = LateFeePayment(
        get("voucher_no"), get("region_code"), get("period"), get("amount_fen"), get("effective_date"),
        str(get("channel") or ""), eid, get("content_digest"))


def _late_fee_waived(h: PersonHistory, f: Any, eid: str) -> None:
    # Recorded by the clerk who proposed it when a second clerk approved it (maker-checker), else the one who sent it.
    get = f.get
    provenance = get("provenance") or {}
    h.late_fee_waivers[get("waiver_id")] = LateFeeWaiver(
        get("waiver_id"), get("region_code"), get("period"), str(get("reason")), str(get("approver")),
        get("effective_date"), provenance.get("proposed_by") or provenance.get("user"), eid, get("content_digest"))


#: The facts a merge carries from the record merged away to the person kept: money and statuses (their
#: items keep the event ids of the merged record's events, so every figure still names its source).
#: Not carried: enrollments, residence and transfers (the person kept has their own).
CARRIED_FACTS = ("payments", "assessments", "subsidies", "account", "late_fee_payments", "late_fee_waivers")


def _tag(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$instant": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    raise TypeError(f"{type(value).__name__} is not plain data")


def _untag(d: dict[str, Any]) -> Any:
    if len(d) == 1:
        if "$date" in d:
            return date.fromisoformat(d["$date"])
        if "$instant" in d:
            return datetime.fromisoformat(d["$instant"])
    return d


def carried_facts(h: PersonHistory) -> str:
    """The facts of ``h`` a merge carries to the person kept (:data:`CARRIED_FACTS`), as JSON text (the
    ``merged_facts`` of ``PersonMerged``): what the person kept's fold adds, in their own event."""
    plain = history_to_plain(h)
    return json.dumps({k: plain[k] for k in CARRIED_FACTS if plain.get(k)}, default=_tag, sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))


def _add_carried(h: PersonHistory, text: Any) -> None:
    """Add the merged record's facts to the person kept's: only those the person kept does not hold already
    (a voucher, a period's assessment, a grant are one fact whichever record reported them)."""
    if not text:
        return
    facts = json.loads(text, object_hook=_untag)
    for key, d in facts.get("payments", {}).items():
        if key not in h.payments:
            h.payments[key] = _payment(d)
    for key, d in facts.get("assessments", {}).items():
        if key not in h.assessments:
            h.assessments[key] = Assessment(**d)
    for key, d in facts.get("subsidies", {}).items():
        if key not in h.subsidies:
            h.subsidies[key] = SubsidyGrant(**d)
    h.account.extend(AccountEntry(**d) for d in facts.get("account", []))
    for key, d in facts.get("late_fee_payments", {}).items():
        if key not in h.late_fee_payments:
            h.late_fee_payments[key] = LateFeePayment(**d)
    for key, d in facts.get("late_fee_waivers", {}).items():
        if key not in h.late_fee_waivers:
            h.late_fee_waivers[key] = LateFeeWaiver(**d)


def _merge(role: str, other: str) -> Callable[[PersonHistory, Any, str], None]:
    """A merge of two records (参保人合并) on one side: ``ABSORBED`` on the person kept (``other`` names the
    field holding the record merged into it), ``MERGED_INTO`` on the record merged away (which from then
    on counts nowhere: :attr:`PersonHistory.merged_into`)."""
    def handler(h: PersonHistory, f: Any, eid: str) -> None:
        get = f.get
        other_id = str(get(other))
        h.merges[str(get("change_id"))] = PersonMerge(
            str(get("change_id")), role, other_id, str(get("merge_kind")), str(get("reason") or ""),
            str(get("proposed_by")), str(get("approved_by")), get("effective_date"), eid)
        if role == "MERGED_INTO":
            h.merged_into = other_id
        else:
            _add_carried(h, get("merged_facts"))
    return handler


_HANDLERS: dict[str, Callable[[PersonHistory, Any, str], None]] = {
    "Registered": _registered,
    "Enrolled": _enrolled,
    "EnrollmentEnded": _enrollment_ended,
    "ContributionAssessed": _assessed,
    "SubsidyGranted": _granted,
    "SubsidyRevoked": _revoked,
    "ContributionPaid": _paid,
    "ContributionRefunded": _refunded,
    "ContributionReversed": _reversed,
    "TransferredOut": _transferred_out,
    "TransferredIn": _transferred_in,
    "TransferRequested": _transfer_requested,
    "TransferOutCompleted": _transfer_out_completed,
    "TransferInCompleted": _transfer_in_completed,
    "TransferCancelled": _transfer_cancelled,
    "AccountCredited": _account(+1),
    "AccountDebited": _account(-1),
    "ResidenceRecorded": _residence,
    "LateFeePaid": _late_fee_paid,
    "LateFeeWaived": _late_fee_waived,
    "PersonMerged": _merge("ABSORBED", "merged_person_id"),
    "PersonMergedInto": _merge("MERGED_INTO", "survivor_person_id"),
}

#: Names of the Person aggregate's events (the only events the projections read): every one has its
#: handler above (the aggregate checks this when its module loads: ``ledger.domain.person._check_one_fold``).
PERSON_EVENT_TYPES = frozenset(_HANDLERS)


# --------------------------------------------------------------------------- questions on a history
def residence_on(history: PersonHistory, day: date) -> ResidenceRecord | None:
    """The registry's latest word on or before ``day`` (grid, status), or None if it said nothing yet."""
    latest = None
    for record in history.residence:
        if record.on <= day:
            latest = record  # event order breaks ties between records of the same day
    return latest


def subsidy_statuses(history: PersonHistory) -> list[tuple[str, date, date | None, SubsidyGrant]]:
    """(category, valid_from, last valid day, grant) of every status, revocations applied (:func:`status_last_day`)."""
    return [(g.category, g.valid_from, status_last_day(g.valid_to, g.revoked_from), g)
            for g in history.subsidies.values()]


def paid_by(history: PersonHistory, period: str, day: date | None = None, levy_item: str | None = None) -> int:
    """Net fen paid for a period by the end of ``day`` (None: everything recorded).

    A reversal (冲正) removes its payment entirely, whatever its date; a refund (退费)
    counts from its own date.
    """
    return sum(paid_share(p, period, day, levy_item) for p in history.payments.values()
               if period in p.periods)


def paid_share(payment: Payment, period: str, day: date | None = None, levy_item: str | None = None) -> int:
    """What one payment (for ``period`` among others) counts for that period by the end of ``day``: see :func:`paid_by`."""
    if payment.reversal is not None or (levy_item is not None and payment.levy_item != levy_item):
        return 0
    if day is not None and payment.paid_on > day:
        return 0
    refunded = sum(r.amount_fen for r in payment.refunds if day is None or r.on <= day)
    return payment_share(payment.amount_fen - refunded, payment.periods, period)


def late_fee_facts(history: PersonHistory, period: str) -> tuple[list[LateFeePayment], LateFeeWaiver | None]:
    """The late-fee payments (in voucher-key order) and the waiver (the first recorded) of one employee month."""
    paid = [p for _, p in sorted(history.late_fee_payments.items()) if p.period == period]
    waiver = next((w for w in history.late_fee_waivers.values() if w.period == period), None)
    return paid, waiver


def payments_for(history: PersonHistory, period: str, levy_item: str | None = None) -> list[Payment]:
    """Every payment recorded for a period (reversed ones included), in voucher-key order."""
    return [
        p for _, p in sorted(history.payments.items())
        if period in p.periods and (levy_item is None or p.levy_item == levy_item)
    ]


# --------------------------------------------------------------------------- questions the commands ask
# (the aggregate, ``ledger.domain.person.Person``, asks them of its own history; so may any view)
def active_enrollments(history: PersonHistory) -> list[Enrollment]:
    """Enrollments in force (参保中): not ended, and not suspended (中止) by an open transfer."""
    return [e for e in history.enrollments if e.end_date is None and e.suspended_by is None]


def suspended_enrollments(history: PersonHistory) -> list[Enrollment]:
    """Enrollments suspended (中止) by a transfer-out whose in half has not arrived (nor been cancelled)."""
    return [e for e in history.enrollments if e.suspended_by is not None
            and getattr(history.transfers.get(e.suspended_by), "status", None) == "OUT_COMPLETED"]


def account_balance_fen(history: PersonHistory) -> int:
    """Personal-account balance (个人账户余额): every credit and debit, transfers included."""
    return sum(x.amount_fen for x in history.account)


def contribution_months(history: PersonHistory) -> int:
    """Employee contribution months (缴费月数): months paid (a payment not reversed nor refunded in full,
    :func:`counts_for_months`) plus months transferred in, less months sent by an open transfer-out."""
    months: set[str] = set()
    for p in history.payments.values():
        if p.levy_item == "EMPLOYEE" and counts_for_months(p.amount_fen, p.refunded_fen, p.reversal is not None):
            months.update(p.periods)
    return len(months) + history.transferred_in_months


def correction_voucher(history: PersonHistory, key: str) -> Refund | Reversal | None:
    """The refund (退费) or reversal (冲正) recorded under a correction voucher's key, if any."""
    for p in history.payments.values():
        for r in p.refunds:
            if r.tax_office is not None and voucher_key(r.tax_office, r.voucher_no) == key:
                return r
        if p.reversal is not None and p.reversal.tax_office is not None \
                and voucher_key(p.reversal.tax_office, p.reversal.voucher_no) == key:
            return p.reversal
    return None
