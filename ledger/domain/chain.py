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
from datetime import date, datetime
from typing import Any
from uuid import UUID

#: ``prev_hash`` of a person's first event.
GENESIS_HASH = "0" * 64


def canonical(value: Any) -> Any:
    """Turn a value into plain JSON types, deterministically."""
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


def canonical_json(value: Any) -> bytes:
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


#: Library bookkeeping, not business data: a class path would tie the chain to the code layout.
_EXCLUDED_FIELDS = frozenset({"originator_topic"})


def event_fields(event: Any) -> dict[str, Any]:
    """The event's own fields (not the library's bookkeeping of class topics)."""
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.name not in _EXCLUDED_FIELDS}


def event_type_name(event: Any) -> str:
    return type(event).__qualname__


def event_digest(event: Any) -> str:
    """SHA-256 over the event's type name and canonical fields."""
    body = {"type": event_type_name(event), "fields": event_fields(event)}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def content_digest(payload: dict[str, Any]) -> str:
    """Digest of a source record's business content, used to tell a resend from a conflict."""
    return hashlib.sha256(canonical_json(payload)).hexdigest()
