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

Personal data (个人信息) is published encrypted, field by field (:data:`ENCRYPTED_FIELDS`):
since ``Registered`` version 2 its ``id_number`` and ``name`` carry masked values and the clear
ones travel encrypted with the deployment's cipher key in ``id_number_enc`` / ``name_enc``
(:mod:`events.pii`), so every other field stays usable downstream without the key.

Producers call :func:`encode_event`; consumers call :func:`decode_event` (with ``keys=`` the
deployment's :class:`events.pii.KeyRing` to get the clear values back), or ``codec.decode``
then :func:`record_to_envelope`.
"""
from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timezone
from typing import Any, Mapping
from uuid import UUID

from events import pii
from events.codec import SchemaRegistry, default_registry
from ledger.domain.errors import DomainError
from ledger.domain.identity import resident_id_check_char
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
#: Personal fields published encrypted: event class -> ((field, encrypted field, mask), ...).
#: The field itself carries the masked value (old readers keep a readable, harmless value).
ENCRYPTED_FIELDS: Mapping[str, tuple[tuple[str, str, Any], ...]] = {
    "Registered": (
        ("id_number", "id_number_enc", lambda v: mask_id_number(v)),
        ("name", "name_enc", lambda v: mask_name(v)),
    ),
    "ResidenceRecorded": (
        ("address", "address_enc", lambda v: mask_address(v)),
        ("phone", "phone_enc", lambda v: mask_phone(v)),
    ),
}


def mask_id_number(value: str) -> str:
    """The first 4 and last 4 characters, the rest ``*`` (as ``ledger.log`` masks them in logs)."""
    value = str(value)
    return "*" * len(value) if len(value) <= 8 else value[:4] + "*" * (len(value) - 8) + value[-4:]


#: An 18-character resident ID number standing alone in a text (e.g. an integrator keying its records by it).
_RESIDENT_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


def mask_ids_in_text(text: str) -> str:
    """``text`` with every resident ID number in it masked (those with a valid check character: a
    20-digit voucher number is left alone). Provenance carries the inbound record's Kafka key,
    which is the integrator's choice: one that keys by ID number must not put it on the topic."""
    if len(text) < 18:
        return text
    return _RESIDENT_ID_IN_TEXT.sub(
        lambda m: mask_id_number(m.group(0)) if resident_id_check_char(m.group(0)[:17]) == m.group(0)[17].upper()
        else m.group(0), text)


def mask_phone(value: str) -> str:
    """The first 3 and last 4 digits of a phone number, the rest ``*``, separators dropped
    (138-0000-0001 -> 138****0001)."""
    value = "".join(ch for ch in str(value) if ch.isdigit() or ch == "+")
    return "*" * len(value) if len(value) <= 7 else value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_address(value: str) -> str:
    """The first 6 characters of an address (its county or township), then ``***``."""
    value = str(value)
    return value[:6] + "***" if len(value) > 6 else "***"


def mask_name(value: str) -> str:
    """The first character, then one ``*`` per other character (张三 -> 张*)."""
    value = str(value)
    return value[:1] + "*" * (len(value) - 1)


deployment_keys = pii.deployment_keys


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


def event_to_record(event: Any, keys: pii.KeyRing | None = None) -> tuple[str, dict[str, Any]]:
    """``(schema full name, Avro record)`` of a ``Person.*`` event, personal fields encrypted with ``keys``
    (the deployment's, :func:`deployment_keys`, when not given)."""
    name = event_schema_name(event)
    record: dict[str, Any] = {}
    for field_name, published in _published_fields(type(event)):
        value = getattr(event, field_name)
        if field_name == "provenance":
            value = {str(k): mask_ids_in_text(str(v)) for k, v in value.items()}
        record[published] = value
    encrypted = ENCRYPTED_FIELDS.get(type(event).__name__)
    if encrypted:
        ring = keys or deployment_keys()
        for field_name, enc_name, mask in encrypted:
            clear = record[field_name]
            if clear is None:  # an optional personal field left empty (ResidenceRecorded's address, phone)
                record[enc_name] = None
                continue
            record[enc_name] = pii.encrypt_text(ring, clear)
            record[field_name] = mask(clear)
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


def encode_event(event: Any, registry: SchemaRegistry | None = None, *, keys: pii.KeyRing | None = None) -> bytes:
    """Single-object Avro bytes of a ``Person.*`` event (what the publisher sends), personal fields encrypted."""
    name, record = event_to_record(event, keys)
    return (registry or default_registry()).encode(name, record)


def decode_event(data: bytes, registry: SchemaRegistry | None = None, *,
                 keys: pii.KeyRing | None = None) -> dict[str, Any]:
    """Bytes from ``ledger.events.v1`` back to a consumer envelope (see :func:`record_to_envelope`).

    Without ``keys`` the personal fields stay as published (masked, plus the ``*_enc`` bytes);
    with the deployment's ring they are decrypted back into ``id_number`` / ``name`` (and the
    ``*_enc`` fields dropped). A version 1 record (clear values, no ``*_enc``) reads as it was.

    Raises ``DecodeError`` for bytes that are not a ledger record, ``EVENT_TYPE_UNKNOWN`` for a
    valid record of another contract, and :class:`events.pii.CipherKeyError` for an encrypted
    field ``keys`` cannot open.
    """
    name, record = (registry or default_registry()).decode(data)
    envelope = record_to_envelope(name, record)
    if keys is not None:
        decrypt_envelope(envelope, keys)
    return envelope


def decrypt_envelope(envelope: dict[str, Any], keys: pii.KeyRing) -> dict[str, Any]:
    """``envelope`` (from :func:`decode_event`) with its encrypted personal fields in clear, in place."""
    for field_name, enc_name, _mask in ENCRYPTED_FIELDS.get(envelope.get("event_type", ""), ()):
        value = envelope.pop(enc_name, None)
        if value is not None:
            envelope[field_name] = pii.decrypt_field(value, keys)
    return envelope


__all__ = [
    "ENCRYPTED_FIELDS",
    "ENVELOPE_FIELDS",
    "NAMESPACE",
    "RENAMED_FIELDS",
    "UNPUBLISHED_FIELDS",
    "decode_event",
    "decrypt_envelope",
    "deployment_keys",
    "encode_event",
    "event_schema_name",
    "event_to_record",
    "person_event_classes",
    "record_to_envelope",
]
