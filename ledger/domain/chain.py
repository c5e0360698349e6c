"""The per-person hash chain: every event carries the digest of the event before it.

The digest is taken over a canonical JSON form of the event's fields (sorted keys,
ISO dates, UUIDs as strings), so it does not depend on how the event store happens
to serialise, compress or encrypt the row. The auditing tools recompute it to show
that no stored event was changed, removed or reordered.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from json import encoder as _json_encoder
from datetime import date, datetime
from typing import Any
from uuid import UUID

#: ``prev_hash`` of a person's first event.
GENESIS_HASH = "0" * 64


def _canonical_slow(value: Any) -> Any:
    """The reference conversion, by ``isinstance`` (subclasses, sets, floats): what every fast path must equal."""
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(canonical(v) for v in value)
    if isinstance(value, float):
        # Never valid money, but raw input is digested before it is validated.
        return f"float:{value!r}"
    raise TypeError(f"no canonical form for {type(value).__name__}")


def canonical(value: Any) -> Any:
    """Turn a value into plain JSON types, deterministically (dict keys as sorted strings)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is datetime or kind is date:
        return value.isoformat()
    if kind is UUID:
        return str(value)
    return _canonical_slow(value)


def plain(value: Any) -> Any:
    """:func:`canonical`, except that dicts keep their order: only for JSON written with ``sort_keys``
    (this module's own encoders, and the audit's fast digest).

    ``{str(k): ... for k in items}`` keeps the value of the last key with a given string
    form, as the sorted reference does (a stable sort keeps equal keys in insertion
    order), and ``sort_keys`` gives the reference's key order.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is datetime or kind is date:
        return value.isoformat()
    if kind is UUID:
        return str(value)
    if kind is dict:
        return {(k if type(k) is str else str(k)): plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [plain(v) for v in value]
    return _canonical_slow(value)


_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_json_str = _json_encoder.encode_basestring  # the same C function ``_dumps`` uses for strings (ensure_ascii=False)
_int_repr = int.__repr__
#: ``"key":`` as JSON text per dict key seen (field names: a few hundred), bounded against odd input.
_KEY_TEXT: dict[str, str] = {}
_KEY_TEXT_MAX = 10_000


def _json(value: Any) -> str:
    """``_dumps(plain(value))``, written out directly for dicts with text keys, lists and the common scalars."""
    kind = type(value)
    if kind is str:
        return _json_str(value)
    if kind is dict:
        for k in value:
            if type(k) is not str:
                return _dumps(plain(value))
        # (``sort_keys`` sorts the (key, value) pairs: with distinct keys, by key)
        parts = []
        append = parts.append
        for k in sorted(value):
            v = value[k]
            key = _KEY_TEXT.get(k)
            if key is None:
                key = _json_str(k) + ":"
                if len(_KEY_TEXT) < _KEY_TEXT_MAX:
                    _KEY_TEXT[k] = key
            kind = type(v)
            # The common scalars inline (the same text as _json gives them), the rest through _json.
            if kind is str:
                append(key + _json_str(v))
            elif v is None:
                append(key + "null")
            elif kind is int:
                append(key + _int_repr(v))
            elif kind is datetime or kind is date:
                append(key + '"' + v.isoformat() + '"')
            else:
                append(key + _json(v))
        return "{" + ",".join(parts) + "}"
    if value is None:
        return "null"
    if kind is int:
        return _int_repr(value)
    if kind is list or kind is tuple:
        return "[" + ",".join([_json(v) for v in value]) + "]"
    if kind is bool:
        return "true" if value else "false"
    if kind is datetime or kind is date:
        return '"' + value.isoformat() + '"'
    if kind is UUID:
        return '"' + str(value) + '"'
    return _dumps(plain(value))


def canonical_json(value: Any) -> bytes:
    """``json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` in UTF-8."""
    return _json(value).encode()


#: Library bookkeeping, not business data: a class path would tie the chain to the code layout.
_EXCLUDED_FIELDS = frozenset({"originator_topic"})


def event_fields(event: Any) -> dict[str, Any]:
    """The event's own fields (not the library's bookkeeping of class topics), without an optional field
    added to the class later (``added_optional_fields``) while it is None: an old event, upcast with
    None there, digests as it did when it was stored, so the chain its successors recorded holds."""
    added = getattr(type(event), "added_optional_fields", ())
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event)
            if f.name not in _EXCLUDED_FIELDS and not (f.name in added and getattr(event, f.name) is None)}


def event_type_name(event: Any) -> str:
    return type(event).__qualname__


#: Per event class: (field name, its JSON key text ``"name":``) in sorted order, and the JSON tail with the type.
_LAYOUTS: dict[type, tuple[tuple[tuple[str, str], ...], str]] = {}
#: The last originator id converted: one person's events come together (a tuple, read once: thread-safe).
_last_id: tuple[Any, str] = (None, "")


def _layout(cls: type) -> tuple[tuple[tuple[str, str], ...], str]:
    layout = _LAYOUTS.get(cls)
    if layout is None:
        names = sorted(f.name for f in dataclasses.fields(cls) if f.name not in _EXCLUDED_FIELDS)
        layout = _LAYOUTS[cls] = (
            tuple((name, _json_str(name) + ":") for name in names),
            '},"type":' + _json_str(cls.__qualname__) + "}",
        )
    return layout


def event_digest(event: Any) -> str:
    """SHA-256 over the event's type name and canonical fields.

    That is SHA-256 of ``json.dumps({"type": ..., "fields": canonical(event_fields(event))},
    sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` in UTF-8 (the form every
    stored chain was made with; the first implementation is kept as the reference in
    tests/unit/test_chain_fast.py). Written out here field by field, in the class's
    sorted field order (cached), with the common scalar types converted inline; that
    test checks it gives the reference's digest for every event type and edge case.
    """
    global _last_id
    cls = type(event)
    names, tail = _layout(cls)
    added = getattr(cls, "added_optional_fields", ())
    values = event.__dict__
    parts = []
    append = parts.append
    for name, key in names:
        v = values[name] if name in values else getattr(event, name)
        if v is None and added and name in added:
            continue  # see event_fields: an optional field added later counts only when given
        kind = type(v)
        if kind is str:
            append(key + _json_str(v))
        elif kind is UUID:
            if name == "originator_id":
                last = _last_id
                if last[0] != v:
                    last = _last_id = (v, str(v))
                append(key + '"' + last[1] + '"')
            else:
                append(key + '"' + str(v) + '"')
        elif kind is int:
            append(key + _int_repr(v))
        elif v is None:
            append(key + "null")
        elif kind is datetime or kind is date:
            append(key + '"' + v.isoformat() + '"')
        elif kind is bool:
            append(key + ("true" if v else "false"))
        else:
            append(key + _json(v))
    return hashlib.sha256(('{"fields":{' + ",".join(parts) + tail).encode()).hexdigest()


def content_digest(payload: dict[str, Any]) -> str:
    """Digest of a source record's business content, used to tell a resend from a conflict."""
    return hashlib.sha256(canonical_json(payload)).hexdigest()
