"""Stored events back to domain events, faster than the library's mapper where that is safe.

The library's ``Mapper.to_domain_event`` decodes an event's state with :mod:`json` and a
Python ``object_hook`` called for every JSON object. The feed consumer replays ~4 stored
events of every person it pays into (``infra.event_store.batch_load``) and the publisher decodes
every person event it produces, so that decoding was a large share of both processes'
CPU. :func:`row_decoder` parses the state with orjson instead and revives the
``{"_type_": ..., "_data_": ...}`` objects with the transcoder's own transcodings,
innermost first as the hook does, then builds the event exactly as
``Mapper.to_domain_event`` (eventsourcing 9.5) does: the same class, id conversion,
upcasting and ``__dict__``.

Only for the library's JSON mapper, with or without a cipher (the state is decrypted
first, by the mapper's own cipher, as ``to_domain_event`` does; encryption at rest is on by
default, ``events.cipher``): with a compressor, another transcoder or mapper class, or a state orjson does not read (NaN, an int beyond 64
bits, a lone surrogate), the library's own ``to_domain_event`` decodes it (or raises its
own error). ``tests/unit/test_stored_events.py`` checks the two give equal events.

:func:`stored_event_decoder` does the same for ``StoredEvent`` objects (the views read
the notification log through it); :func:`row_decoder` takes the row's four columns, so
the batch loader builds no ``StoredEvent`` per row.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID, SafeUUID

from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent, UUIDAsHex, find_id_convertor
from eventsourcing.utils import resolve_topic

try:
    import orjson
except ImportError:  # pragma: no cover - a declared dependency
    orjson = None  # type: ignore[assignment]

#: ``decode(originator_id, originator_version, topic, state) -> domain event``
RowDecoder = Callable[[Any, int, str, bytes], Any]


def _slow(mapper: Any) -> RowDecoder:
    to_domain_event = mapper.to_domain_event

    def decode(originator_id: Any, originator_version: int, topic: str, state: bytes) -> Any:
        return to_domain_event(StoredEvent(originator_id, originator_version, topic, state))

    return decode


def is_plain_json_mapper(mapper: Any) -> bool:
    """The library's mapper with its JSON transcoder, no compressor, nothing overridden (a cipher is allowed)."""
    transcoder = getattr(mapper, "transcoder", None)
    return (
        orjson is not None
        and type(mapper).to_domain_event is Mapper.to_domain_event
        and not getattr(mapper, "compressor", None)
        and isinstance(transcoder, JSONTranscoder)
        and type(transcoder).decode is JSONTranscoder.decode
        and type(transcoder)._decode_obj is JSONTranscoder._decode_obj
    )


def row_decoder(mapper: Any) -> RowDecoder:
    """A function turning a stored row's columns into the domain event ``mapper.to_domain_event`` gives."""
    slow = _slow(mapper)
    if not is_plain_json_mapper(mapper):
        return slow
    transcoder = mapper.transcoder
    cipher = getattr(mapper, "cipher", None)
    decrypt = cipher.decrypt if cipher else None
    loads = orjson.loads
    # The transcodings' decode methods by name; the UUIDs (one or more per event) built as uuid.UUID builds them.
    decoders = {name: transcoding.decode for name, transcoding in transcoder.names.items()}
    if type(transcoder.names.get("uuid_hex")) is UUIDAsHex:
        decoders["uuid_hex"] = _uuid_from_hex

    def revive(value: Any) -> Any:
        """``value`` (a dict or list from orjson) with its ``{"_type_", "_data_"}`` objects decoded, innermost first."""
        for key, item in (value.items() if type(value) is dict else enumerate(value)):
            kind = type(item)
            if kind is dict:
                if len(item) == 2 and "_type_" in item and "_data_" in item:
                    data = item["_data_"]
                    if type(data) is dict or type(data) is list:
                        data = revive(data)
                    value[key] = decoders[item["_type_"]](data)
                else:
                    revive(item)
            elif kind is list:
                revive(item)
        return value

    # Per (topic, id type): the event class, its id convertor and class version (the library looks them up per event).
    classes: dict[tuple[str, type], tuple[Any, Any, int]] = {}

    def event_class(topic: str, id_type: type) -> tuple[Any, Any, int]:
        found = classes.get((topic, id_type))
        if found is None:
            cls = resolve_topic(topic)
            found = classes[(topic, id_type)] = (cls, find_id_convertor(cls, id_type), getattr(cls, "class_version", 1))
        return found

    def decode(originator_id: Any, originator_version: int, topic: str, state: bytes) -> Any:
        try:
            event_state = loads(decrypt(state) if decrypt is not None else state)
            if type(event_state) is not dict or (len(event_state) == 2 and "_type_" in event_state
                                                 and "_data_" in event_state):
                return slow(originator_id, originator_version, topic, state)
            revive(event_state)
        except Exception:  # noqa: BLE001 - the library's own path decodes it or raises its own error
            return slow(originator_id, originator_version, topic, state)
        cls, id_convertor, class_version = event_class(topic, type(originator_id))
        event_state["originator_id"] = id_convertor(originator_id)
        event_state["originator_version"] = originator_version
        from_version = event_state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
            from_version += 1
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", event_state)
        return event

    return decode


def stored_event_decoder(mapper: Any) -> Callable[[Any], Any]:
    """:func:`row_decoder` for ``StoredEvent`` objects (a notification log's items): ``mapper.to_domain_event``, faster."""
    if not is_plain_json_mapper(mapper):
        return mapper.to_domain_event
    decode = row_decoder(mapper)

    def to_domain_event(stored: Any) -> Any:
        return decode(stored.originator_id, stored.originator_version, stored.topic, stored.state)

    return to_domain_event


def _uuid_from_hex(data: Any) -> UUID:
    """``UUIDAsHex.decode``: what ``uuid.UUID(data)`` gives for the 32 hex digits the transcoding writes, faster.

    ``UUID(text)`` strips ``urn:``, ``uuid:``, braces and dashes, checks the length and
    calls ``int(text, 16)``: for 32 letters and digits that is all it does, so the UUID
    is made the way its ``__init__`` makes it. Anything else goes through ``UUID``.
    """
    if type(data) is str and len(data) == 32 and data.isalnum():
        found = object.__new__(UUID)
        object.__setattr__(found, "int", int(data, 16))
        object.__setattr__(found, "is_safe", SafeUUID.unknown)
        return found
    assert isinstance(data, str)  # as the transcoding asserts
    return UUID(data)
