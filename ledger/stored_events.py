"""Stored events back to domain events, faster than the library's mapper where that is safe.

The library's ``Mapper.to_domain_event`` decodes an event's state with :mod:`json` and a
Python ``object_hook`` called for every JSON object. The feed consumer replays ~4 stored
events of every person it pays into (``ledger.batch_load``) and the publisher decodes
every person event it produces, so that decoding was a large share of both processes'
CPU. :func:`row_decoder` parses the state with orjson instead and revives the
``{"_type_": ..., "_data_": ...}`` objects with the transcoder's own transcodings,
innermost first as the hook does, then builds the event exactly as
``Mapper.to_domain_event`` (eventsourcing 9.5) does: the same class, id conversion,
upcasting and ``__dict__``.

Only for the library's plain JSON mapper: with a cipher or a compressor, another
transcoder or mapper class, or a state orjson does not read (NaN, an int beyond 64
bits, a lone surrogate), the library's own ``to_domain_event`` decodes it (or raises its
own error). ``tests/unit/test_stored_events.py`` checks the two give equal events.

(``projections.sources.event_decoder`` does the same for the views' rebuild; it takes
``StoredEvent`` objects where this takes the row's four columns, so the batch loader
builds no ``StoredEvent`` per row.)
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent, find_id_convertor
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
    """The library's mapper with its JSON transcoder, no cipher, no compressor, nothing overridden."""
    transcoder = getattr(mapper, "transcoder", None)
    return (
        orjson is not None
        and type(mapper).to_domain_event is Mapper.to_domain_event
        and not getattr(mapper, "cipher", None)
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
    names = mapper.transcoder.names
    loads = orjson.loads
    #: Per stored topic: (class, id convertor per id type, class_version).
    classes: dict[str, tuple[type, dict[type, Any], int]] = {}

    def revive(value: Any) -> Any:
        if type(value) is dict:
            for key, item in value.items():
                if type(item) is dict:
                    # The common case inline (an event's ids, dates and instants): a transcoded
                    # value whose data is a plain scalar has nothing inside to revive first.
                    if len(item) == 2 and "_type_" in item and "_data_" in item:
                        data = item["_data_"]
                        if type(data) is not dict and type(data) is not list:
                            value[key] = names[item["_type_"]].decode(data)
                            continue
                    value[key] = revive(item)
                elif type(item) is list:
                    value[key] = revive(item)
            if len(value) == 2 and "_type_" in value and "_data_" in value:
                return names[value["_type_"]].decode(value["_data_"])
            return value
        for i, item in enumerate(value):
            if type(item) is dict or type(item) is list:
                value[i] = revive(item)
        return value

    def decode(originator_id: Any, originator_version: int, topic: str, state: bytes) -> Any:
        try:
            event_state = loads(state)
            if type(event_state) is not dict:
                return slow(originator_id, originator_version, topic, state)
            event_state = revive(event_state)
        except Exception:  # noqa: BLE001 - the library's own path decodes it or raises its own error
            return slow(originator_id, originator_version, topic, state)
        known = classes.get(topic)
        if known is None:
            cls = resolve_topic(topic)
            known = classes[topic] = (cls, {}, getattr(cls, "class_version", 1))
        cls, convertors, class_version = known
        id_type = type(originator_id)
        convert = convertors.get(id_type)
        if convert is None:
            convert = convertors[id_type] = find_id_convertor(cls, id_type)
        event_state["originator_id"] = convert(originator_id)
        event_state["originator_version"] = originator_version
        from_version = event_state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
            from_version += 1
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", event_state)
        return event

    return decode
