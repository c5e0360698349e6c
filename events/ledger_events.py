"""The ledger's person events (参保人事件) as Avro records on ``ledger.events.v1``.

Each nested event class of :class:`ledger.domain.person.Person` is a public
contract with its own schema, ``schemas/ledger/<EventName>.avsc``, full name
``cn.medins.ledger.v1.<EventName>``. The record is the event's auditable envelope
followed by the event's own fields, under the same names, except the library's
bookkeeping, which gets business names:

    originator_id      -> person_id
    originator_version -> version
    timestamp          -> recorded_at   (the recording instant, UTC)

``originator_topic`` (the Python path of the aggregate class, on the created event)
is not published: it names code, not business.

Producers call :func:`encode_event`; consumers call :func:`decode_event`, or
``codec.decode`` then :func:`record_to_envelope`.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any, Mapping
from uuid import UUID

from events.codec import SchemaRegistry, default_registry
from ledger.domain.errors import DomainError
from ledger.domain.person import Person

NAMESPACE = "cn.medins.ledger.v1"

#: Library field -> published field.
RENAMED_FIELDS: Mapping[str, str] = {
    "originator_id": "person_id",
    "originator_version": "version",
    "timestamp": "recorded_at",
}
#: Library fields left out of the contract (see the module docstring).
UNPUBLISHED_FIELDS = frozenset({"originator_topic"})
#: The envelope every ledger record starts with, in schema order.
ENVELOPE_FIELDS = (
    "event_id",
    "person_id",
    "version",
    "recorded_at",
    "effective_date",
    "provenance",
    "prev_hash",
)
# eventsourcing's metaclass adds ``Person.Created`` (no fields, no apply) because
# Person does not name its created event; Person.register always uses Registered,
# so Created never occurs and has no schema.
_LIBRARY_GENERATED = frozenset({"Created"})


def person_event_classes() -> dict[str, type]:
    """Every published event class of the Person aggregate, by class name."""
    return {
        name: cls
        for name, cls in vars(Person).items()
        if isinstance(cls, type)
        and issubclass(cls, Person.Event)
        and cls is not Person.Event
        and name not in _LIBRARY_GENERATED
    }


_EVENT_CLASSES = person_event_classes()


def event_schema_name(event_class_or_name: type | object | str) -> str:
    """Full Avro name of an event: from its class, an instance, ``"ContributionPaid"``,
    ``"Person.ContributionPaid"`` or the full name itself."""
    if isinstance(event_class_or_name, str):
        short = event_class_or_name.rsplit(".", 1)[-1]
        known = short in _EVENT_CLASSES and event_class_or_name in (
            short,
            f"Person.{short}",
            f"{NAMESPACE}.{short}",
        )
    else:
        cls = event_class_or_name if isinstance(event_class_or_name, type) else type(event_class_or_name)
        short = cls.__name__
        known = _EVENT_CLASSES.get(short) is cls
    if not known:
        raise DomainError(
            "EVENT_TYPE_UNKNOWN",
            f"{event_class_or_name!r} is not a published person event; known: {', '.join(sorted(_EVENT_CLASSES))}",
        )
    return f"{NAMESPACE}.{short}"


def event_to_record(event: Any) -> tuple[str, dict[str, Any]]:
    """``(schema full name, Avro record)`` of a ``Person.*`` event."""
    name = event_schema_name(event)
    record: dict[str, Any] = {}
    for field_name, published in _published_fields(type(event)):
        value = getattr(event, field_name)
        if field_name == "provenance":
            value = {str(k): str(v) for k, v in value.items()}
        record[published] = value
    return name, record


_PUBLISHED_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def _published_fields(cls: type) -> tuple[tuple[str, str], ...]:
    """``(field, published name)`` of an event class, in field order (computed once per class)."""
    fields = _PUBLISHED_FIELDS.get(cls)
    if fields is None:
        fields = _PUBLISHED_FIELDS[cls] = tuple(
            (f.name, RENAMED_FIELDS.get(f.name, f.name)) for f in dataclasses.fields(cls)
            if f.name not in UNPUBLISHED_FIELDS
        )
    return fields


def record_to_envelope(name: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """A decoded ledger record as a plain dict for consumers.

    ``event_type`` is the short event name; ids are text; instants are UTC
    ``datetime``; dates are ``date``; every other field keeps its contract name.
    """
    short = event_schema_name(name).rsplit(".", 1)[-1]
    envelope: dict[str, Any] = {"event_type": short}
    for key, value in record.items():
        if isinstance(value, UUID):
            value = str(value)
        elif isinstance(value, datetime):
            value = value.astimezone(timezone.utc)
        elif key == "provenance":
            value = dict(value)
        envelope[key] = value
    return envelope


def encode_event(event: Any, registry: SchemaRegistry | None = None) -> bytes:
    """Single-object Avro bytes of a ``Person.*`` event (what the publisher sends)."""
    name, record = event_to_record(event)
    return (registry or default_registry()).encode(name, record)


def decode_event(data: bytes, registry: SchemaRegistry | None = None) -> dict[str, Any]:
    """Bytes from ``ledger.events.v1`` back to a consumer envelope (see :func:`record_to_envelope`).

    Raises ``DecodeError`` for bytes that are not a ledger record, and
    ``EVENT_TYPE_UNKNOWN`` for a valid record of another contract.
    """
    name, record = (registry or default_registry()).decode(data)
    return record_to_envelope(name, record)


__all__ = [
    "ENVELOPE_FIELDS",
    "NAMESPACE",
    "RENAMED_FIELDS",
    "UNPUBLISHED_FIELDS",
    "decode_event",
    "encode_event",
    "event_schema_name",
    "event_to_record",
    "person_event_classes",
    "record_to_envelope",
]
