"""A person's history as plain data (参保人事实), folded from the ledger's person events.

Every read model in this package starts from the same per-person fold: the facts of
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

The history is a dict of plain values (str, int, bool, date, datetime, lists and
dicts of them) so an adapter can store it as a JSON column next to the derived
figures. Names and ID numbers are not kept: views are keyed by the person id only
(个人信息保护法).
"""
from __future__ import annotations

import copy
from dataclasses import MISSING
from datetime import date
from typing import Any, Callable, Iterable
from uuid import UUID

from ledger.domain.errors import DomainError
from ledger.domain.person import Person, payment_period_keys, voucher_key


class ProjectionError(DomainError):
    """The event stream cannot be applied as given (a gap, or two events at one version)."""


def _person_event_names() -> frozenset[str]:
    return frozenset(
        name
        for name, cls in vars(Person).items()
        if isinstance(cls, type) and issubclass(cls, Person.Event) and cls is not Person.Event
    )


#: Names of the Person aggregate's events (the only events the projections read).
PERSON_EVENT_TYPES = _person_event_names()


# --------------------------------------------------------------------------- reading an event
def event_type(event: Any) -> str | None:
    """The short event name (``"ContributionPaid"``), or None for an event that is not a person event."""
    if isinstance(event, dict):
        name = event.get("event_type")
        return name if name in PERSON_EVENT_TYPES and "person_id" in event else None
    if isinstance(event, Person.Event):
        name = type(event).__name__
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


# --------------------------------------------------------------------------- the fold
def new_history(person_id: str) -> dict[str, Any]:
    return {
        "person_id": person_id,
        "version": 0,
        "event_ids": [],  # event_ids[v - 1] is the id of the event applied at version v
        "registered_event_id": None,
        "birth_date": None,
        "residence": [],  # [{on, grid, status, event_id}] in event order
        "enrollments": [],
        "assessments": {},  # period -> the assessment in force (latest), with superseded ids
        "subsidies": {},  # grant_id -> status
        "payments": {},  # voucher key -> payment with its refunds and reversal
        "transfers": {},  # transfer_id -> both halves
        "account": [],  # [{on, amount_fen (+/-), reason, event_id}]
        "transferred_in_months": 0,
    }


def fold(history: dict[str, Any] | None, event: Any) -> dict[str, Any]:
    """Apply one person event to a person's history; a duplicate returns the history unchanged.

    Raises ``EVENT_GAP`` when events are missing before this one and
    ``EVENT_MISMATCH`` when another event was already applied at its version.
    """
    return fold_many(history, [event])  # type: ignore[return-value]


def fold_many(history: dict[str, Any] | None, events: Iterable[Any], *, owned: bool = False) -> dict[str, Any] | None:
    """:func:`fold` over several events of one person, in order, copying the history once.

    Returns the very same history object when every event was a duplicate.
    ``owned``: the caller hands the history over (it was just read from a store, and
    nothing else refers to it), so it is not deep-copied: the new history is a new
    top-level dict whose parts may be the old one's, changed in place. The old one must
    not be used afterwards.
    """
    new: dict[str, Any] | None = None  # the copy, made on the first event that changes something
    for event in events:
        current = new if new is not None else history
        duplicate, name, pid, version, event_id = _check(current, event)
        if duplicate:
            continue
        if new is None:
            if history is None:
                new = new_history(pid)
            else:
                new = dict(history) if owned else copy.deepcopy(history)
        _HANDLERS.get(name, _ignore)(new, _fields(event), event_id)
        new["version"] = version
        new["event_ids"].append(event_id)
    return new if new is not None else history


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


def _check(history: dict[str, Any] | None, event: Any) -> tuple[bool, str, str, int, str]:
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
    if history is not None and history["person_id"] != pid:
        raise ProjectionError("EVENT_PERSON_MISMATCH",
                              f"event of person {pid} applied to the history of {history['person_id']}")
    last = 0 if history is None else history["version"]
    if version <= last:
        applied = history["event_ids"][version - 1]  # type: ignore[index]
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


# Handlers: (history copy, the event's fields from _fields, the event's id as text).
def _ignore(history: dict[str, Any], f: Any, eid: str) -> None:
    """An event that changes none of the facts kept here (still counted, so versions stay contiguous)."""


def _registered(h: dict[str, Any], f: Any, eid: str) -> None:
    h["registered_event_id"] = eid
    h["birth_date"] = f.get("birth_date")
    h["residence"].append(
        {"on": f.get("effective_date"), "grid": f.get("household_grid"), "status": "RESIDENT", "event_id": eid}
    )


def _enrolled(h: dict[str, Any], f: Any, eid: str) -> None:
    get = f.get
    h["enrollments"].append(
        {
            "enrollment_id": get("enrollment_id"),
            "scheme": str(get("scheme")),
            "flexible": bool(get("flexible")),
            "region_code": get("region_code"),
            "grid_code": get("grid_code"),
            "employer_id": get("employer_id"),
            "channel": str(get("channel")),
            "duplicate_of": get("duplicate_of"),
            "start_date": get("effective_date"),
            "end_date": None,
            "end_reason": None,
            "event_id": eid,
            "end_event_id": None,
        }
    )


def _end(h: dict[str, Any], enrollment_id: str, on: date, reason: str, event_id: str) -> None:
    for enrollment in h["enrollments"]:
        if enrollment["enrollment_id"] == enrollment_id:
            enrollment.update(end_date=on, end_reason=reason, end_event_id=event_id)
            return
    raise ProjectionError("ENROLLMENT_UNKNOWN", f"person {h['person_id']}: no enrollment {enrollment_id!r} to end")


def _enrollment_ended(h: dict[str, Any], f: Any, eid: str) -> None:
    _end(h, f.get("enrollment_id"), f.get("effective_date"), str(f.get("reason")), eid)


_ASSESSED_FIELDS = ("scheme", "region_code", "standard_fen", "subsidy_fen", "due_fen", "due_date", "subsidy_category",
                    "base_fen", "employer_fen", "employee_fen", "policy_version")


def _assessed(h: dict[str, Any], f: Any, eid: str) -> None:
    get = f.get
    period = get("period")
    previous = h["assessments"].get(period)
    h["assessments"][period] = {
        "period": period,
        **{name: get(name) for name in _ASSESSED_FIELDS},
        "assessed_on": get("effective_date"),
        "event_id": eid,
        "supersedes": ([] if previous is None else previous["supersedes"] + [previous["event_id"]]),
    }


def _granted(h: dict[str, Any], f: Any, eid: str) -> None:
    get = f.get
    h["subsidies"][get("grant_id")] = {
        "grant_id": get("grant_id"),
        "category": str(get("category")),
        "valid_from": get("valid_from"),
        "valid_to": get("valid_to"),
        "revoked_from": None,
        "department": get("department"),
        "document_no": get("document_no"),
        "event_id": eid,
        "revoke_event_id": None,
    }


def _revoked(h: dict[str, Any], f: Any, eid: str) -> None:
    grant = h["subsidies"].get(f.get("grant_id"))
    if grant is None:
        raise ProjectionError("GRANT_UNKNOWN", f"person {h['person_id']}: revocation of unknown status {f.get('grant_id')!r}")
    grant["revoked_from"] = f.get("revoked_from")
    grant["revoke_event_id"] = eid


def _paid(h: dict[str, Any], f: Any, eid: str) -> None:
    get = f.get
    levy = str(get("levy_item"))
    start, end = get("period_start"), get("period_end")
    h["payments"][voucher_key(get("tax_office"), get("voucher_no"))] = {
        "voucher_no": get("voucher_no"),
        "levy_item": levy,
        "region_code": get("region_code"),
        "amount_fen": get("amount_fen"),
        "periods": payment_period_keys(levy, start, end),
        "period_start": start,
        "period_end": end,
        "paid_on": get("effective_date"),
        "paid_at": get("paid_at"),
        "credited_on": get("credited_on"),
        "channel": get("channel"),
        "event_id": eid,
        "refunds": [],
        "reversal": None,
    }


def _original(h: dict[str, Any], f: Any) -> dict[str, Any]:
    key = voucher_key(f.get("original_tax_office"), f.get("original_voucher_no"))
    payment = h["payments"].get(key)
    if payment is None:
        raise ProjectionError("PAYMENT_UNKNOWN", f"person {h['person_id']}: correction of unknown voucher {key}")
    return payment


def _refunded(h: dict[str, Any], f: Any, eid: str) -> None:
    _original(h, f)["refunds"].append(
        {"voucher_no": f.get("refund_voucher_no"), "amount_fen": f.get("amount_fen"),
         "on": f.get("effective_date"), "event_id": eid}
    )


def _reversed(h: dict[str, Any], f: Any, eid: str) -> None:
    _original(h, f)["reversal"] = {
        "voucher_no": f.get("reversal_voucher_no"), "amount_fen": f.get("amount_fen"),
        "on": f.get("effective_date"), "event_id": eid,
    }


def _transferred_out(h: dict[str, Any], f: Any, eid: str) -> None:
    get = f.get
    on = get("effective_date")
    _end(h, get("enrollment_id"), on, "TRANSFERRED_OUT", eid)
    balance = get("account_balance_fen")
    if balance:
        h["account"].append({"on": on, "amount_fen": -balance, "reason": "TRANSFER_OUT", "event_id": eid})
    h["transfers"][get("transfer_id")] = {
        "transfer_id": get("transfer_id"),
        "direction": "OUT",
        "enrollment_id": get("enrollment_id"),
        "counterpart_region": get("counterpart_region"),
        "account_balance_fen": balance,
        "contribution_months": get("contribution_months"),
        "started_on": on,
        "completed_on": None,
        "out_event_id": eid,
        "in_event_id": None,
    }


def _transferred_in(h: dict[str, Any], f: Any, eid: str) -> None:
    get = f.get
    on = get("effective_date")
    balance = get("account_balance_fen")
    if balance:
        h["account"].append({"on": on, "amount_fen": balance, "reason": "TRANSFER_IN", "event_id": eid})
    h["transferred_in_months"] += get("contribution_months")
    transfer = h["transfers"].get(get("transfer_id"))
    if transfer is not None and transfer["direction"] == "OUT":
        transfer["completed_on"] = on
        transfer["in_event_id"] = eid
        return
    h["transfers"][get("transfer_id")] = {
        "transfer_id": get("transfer_id"),
        "direction": "IN",
        "enrollment_id": None,
        "counterpart_region": get("counterpart_region"),
        "account_balance_fen": balance,
        "contribution_months": get("contribution_months"),
        "started_on": on,
        "completed_on": on,
        "out_event_id": None,
        "in_event_id": eid,
    }


def _transfer_out_completed(h: dict[str, Any], f: Any, eid: str) -> None:
    """The sending half (转出完成): for coverage the enrollment stops as of the out date (中止), as an
    ended one would, until the in half completes or the transfer is cancelled; balance and months leave."""
    get = f.get
    _transferred_out(h, f, eid)
    h["transferred_in_months"] -= get("contribution_months")
    transfer = h["transfers"][get("transfer_id")]
    transfer.update(status="OUT_COMPLETED", region_code=get("region_code"), scheme=get("scheme"), external=False,
                    closed_reason=None)
    for enrollment in h["enrollments"]:
        if enrollment["enrollment_id"] == get("enrollment_id"):
            enrollment["suspended_by"] = get("transfer_id")


def _transfer_in_completed(h: dict[str, Any], f: Any, eid: str) -> None:
    """The receiving half (转入完成): matched to its out half, or external (跨省) with its source document."""
    get = f.get
    _transferred_in(h, f, eid)
    transfer = h["transfers"][get("transfer_id")]
    transfer["status"] = "DONE"
    if get("external"):
        transfer.update(external=True, region_code=get("region_code"), source_document_no=get("source_document_no"),
                        scheme=None, closed_reason=None)


def _transfer_cancelled(h: dict[str, Any], f: Any, eid: str) -> None:
    """Cancelled or rejected (转移撤销/拒绝): the enrollment resumes, the balance and months return."""
    get = f.get
    on = get("effective_date")
    transfer = h["transfers"].get(get("transfer_id"))
    if transfer is None:  # a request closed before any out half: nothing moved, nothing to show
        return
    transfer.update(status="REJECTED" if get("rejected") else "CANCELLED", completed_on=on,
                    closed_reason=get("reason"), cancel_event_id=eid)
    for enrollment in h["enrollments"]:
        if enrollment["enrollment_id"] == transfer["enrollment_id"]:
            enrollment.update(end_date=None, end_reason=None, end_event_id=None, suspended_by=None)
    if transfer["account_balance_fen"]:
        h["account"].append({"on": on, "amount_fen": transfer["account_balance_fen"], "reason": "TRANSFER_CANCELLED",
                             "event_id": eid})
    h["transferred_in_months"] += transfer["contribution_months"]


def _account(sign: int) -> Callable[[dict[str, Any], Any, str], None]:
    def handler(h: dict[str, Any], f: Any, eid: str) -> None:
        h["account"].append({"on": f.get("effective_date"), "amount_fen": sign * f.get("amount_fen"),
                             "reason": str(f.get("reason")), "event_id": eid})
    return handler


def _residence(h: dict[str, Any], f: Any, eid: str) -> None:
    previous_grid = h["residence"][-1]["grid"] if h["residence"] else None
    h["residence"].append(
        {"on": f.get("effective_date"), "grid": f.get("grid_code") or previous_grid,
         "status": str(f.get("status")), "event_id": eid}
    )


_HANDLERS: dict[str, Callable[[dict[str, Any], Any, str], None]] = {
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
    "TransferOutCompleted": _transfer_out_completed,
    "TransferInCompleted": _transfer_in_completed,
    "TransferCancelled": _transfer_cancelled,
    "AccountCredited": _account(+1),
    "AccountDebited": _account(-1),
    "ResidenceRecorded": _residence,
}


# --------------------------------------------------------------------------- questions on a history
def residence_on(history: dict[str, Any], day: date) -> dict[str, Any] | None:
    """The registry's latest word on or before ``day`` (grid, status), or None if it said nothing yet."""
    latest = None
    for record in history["residence"]:
        if record["on"] <= day:
            latest = record  # event order breaks ties between records of the same day
    return latest


def subsidy_statuses(history: dict[str, Any]) -> list[tuple[str, date, date | None, dict[str, Any]]]:
    """(category, valid_from, last valid day, grant) of every status, revocations applied."""
    out = []
    for grant in history["subsidies"].values():
        until = grant["valid_to"]
        if grant["revoked_from"] is not None:
            revoked_until = date.fromordinal(grant["revoked_from"].toordinal() - 1)
            until = revoked_until if until is None else min(until, revoked_until)
        out.append((grant["category"], grant["valid_from"], until, grant))
    return out


def payment_share(total_fen: int, periods: list[str], period: str) -> int:
    """One period's part of a payment spread over several (as ``Person.paid_fen_for``: remainder to the first)."""
    share, remainder = divmod(total_fen, len(periods))
    return share + (1 if periods.index(period) < remainder else 0)


def paid_by(history: dict[str, Any], period: str, day: date | None = None, levy_item: str | None = None) -> int:
    """Net fen paid for a period by the end of ``day`` (None: everything recorded).

    A reversal (冲正) removes its payment entirely, whatever its date; a refund (退费)
    counts from its own date.
    """
    return sum(paid_share(p, period, day, levy_item) for p in history["payments"].values()
               if period in p["periods"])


def paid_share(payment: dict[str, Any], period: str, day: date | None = None, levy_item: str | None = None) -> int:
    """What one payment (for ``period`` among others) counts for that period by the end of ``day``: see :func:`paid_by`."""
    if payment["reversal"] is not None or (levy_item is not None and payment["levy_item"] != levy_item):
        return 0
    if day is not None and payment["paid_on"] > day:
        return 0
    refunded = sum(r["amount_fen"] for r in payment["refunds"] if day is None or r["on"] <= day)
    return payment_share(payment["amount_fen"] - refunded, payment["periods"], period)


def payments_for(history: dict[str, Any], period: str, levy_item: str | None = None) -> list[dict[str, Any]]:
    """Every payment recorded for a period (reversed ones included), in voucher-key order."""
    return [
        p for _, p in sorted(history["payments"].items())
        if period in p["periods"] and (levy_item is None or p["levy_item"] == levy_item)
    ]
