"""View rows as JSON text that reads back *exactly* (the storage format of the view stores).

A view row is plain data (a person's history as ``ledger.domain.history.history_to_plain``
gives it, or figures derived from it): dicts, lists, str, int, bool, None, plus
``date``, aware ``datetime``, tuples (coverage periods, paid steps) and dicts keyed by
int (coverage years). Plain ``json`` would turn dates into text,
tuples into lists and ``2025`` into ``"2025"``, and ``(a, b) != [a, b]`` in Python,
so a row read back would no longer equal the row written. The encoding here keeps
the JSON readable and ``json``/``jsonb`` operators usable:

* a ``date`` is its ISO text (``"2025-01-01"``), a ``datetime`` its ISO text with
  offset (``"2025-01-01T09:30:00+00:00"``);
* a ``str`` that would read back as one of those, or that starts with ``~``, is
  written with a leading ``~`` (``"~2025-01-01"`` is the text, not the date);
* a tuple is ``{"~t": [...]}``;
* an int dict key is ``"~2025"``; a str key starting with ``~`` gets one more ``~``.

Key order is kept (the pure logic iterates some dicts, e.g. payments, in insertion
order), so PostgreSQL columns holding this text are ``json``, never ``jsonb``.

The text is written by orjson when it is installed (a rebuild encodes every row once;
the standard library's encoder took a quarter of that time): the same bytes as
``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` for everything a row
holds -- a float is written by the standard library's own ``repr`` rule, and
anything orjson refuses (an int beyond 64 bits) falls back to ``json``.
"""
from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - a dependency; the standard library gives the same text, slower
    orjson = None  # type: ignore[assignment]

_NATIVE_DATES = orjson is not None  # dates left to orjson by _encode (the json fallback is told how)

ESCAPE = "~"
TUPLE_KEY = "~t"
_DIGITS = frozenset("0123456789")


def _temporal(text: str) -> date | None:
    """The date or datetime this text reads back as, or None (the one test both directions use)."""
    n = len(text)
    if n < 10 or text[4] != "-" or text[7] != "-" or not _DIGITS.issuperset(text[:4]):
        return None
    try:
        if n == 10:
            return date.fromisoformat(text)
        if text[10] == "T":
            return datetime.fromisoformat(text)
    except ValueError:
        return None
    return None


def _escaped(text: str) -> bool:
    return text[:1] == ESCAPE or (len(text) >= 10 and text[4] == "-" and _temporal(text) is not None)


# The walks below test the common leaf types inline rather than recursing into them:
# a row has hundreds of leaves and a call per leaf would double the cost. With orjson a
# ``date`` is left as it is: orjson writes it as its ISO text, as ``isoformat`` does
# (not a ``datetime``: orjson writes a UTC offset with seconds differently).
def _encode(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            key_kind = type(key)
            if key_kind is str:
                if key[:1] == ESCAPE:
                    key = ESCAPE + key
            elif key_kind is int:
                key = f"{ESCAPE}{key}"
            else:
                raise TypeError(f"a view row cannot have a {key_kind.__name__} dict key ({key!r})")
            t = type(item)
            if t is str:
                if item[:1] == ESCAPE or (len(item) >= 10 and item[4] == "-" and _temporal(item) is not None):
                    item = ESCAPE + item
            elif t is date:
                if not _NATIVE_DATES:
                    item = item.isoformat()
            elif t is datetime:
                item = item.isoformat()
            elif not (t is int or item is None or t is bool):
                item = _encode(item)
            out[key] = item
        return out
    if kind is list or kind is tuple:
        items = []
        for item in value:
            t = type(item)
            if t is str:
                if item[:1] == ESCAPE or (len(item) >= 10 and item[4] == "-" and _temporal(item) is not None):
                    item = ESCAPE + item
            elif t is date:
                if not _NATIVE_DATES:
                    item = item.isoformat()
            elif t is datetime:
                item = item.isoformat()
            elif not (t is int or item is None or t is bool):
                item = _encode(item)
            items.append(item)
        return items if kind is list else {TUPLE_KEY: items}
    if kind is str:
        return ESCAPE + value if _escaped(value) else value
    if kind is date:
        return value if _NATIVE_DATES else value.isoformat()
    if kind is datetime:
        return value.isoformat()
    if kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return _Float(value)
    raise TypeError(f"a view row cannot hold a {kind.__name__} ({value!r})")


def _decode_text(text: str) -> Any:
    if text[:1] == ESCAPE:
        return text[1:]
    if len(text) >= 10 and text[4] == "-":
        temporal = _temporal(text)
        if temporal is not None:
            return temporal
    return text


def _decode_list(items: list[Any]) -> list[Any]:
    """Decode a parsed list in place (its dicts are already decoded by :func:`_decode_object`)."""
    for i, item in enumerate(items):
        t = type(item)
        if t is str:
            if item[:1] == ESCAPE or (len(item) >= 10 and item[4] == "-"):
                items[i] = _decode_text(item)
        elif t is list:
            _decode_list(item)
    return items


def _decode_object(pairs: list[tuple[str, Any]]) -> Any:
    """``object_pairs_hook``: the JSON parser calls it for every object, innermost first."""
    if len(pairs) == 1 and pairs[0][0] == TUPLE_KEY:
        return tuple(_decode_list(pairs[0][1]))
    out = {}
    for key, item in pairs:
        if key[:1] == ESCAPE:
            key = key[1:] if key[1:2] == ESCAPE else int(key[1:])
        t = type(item)
        if t is str:
            if item[:1] == ESCAPE or (len(item) >= 10 and item[4] == "-"):
                item = _decode_text(item)
        elif t is list:
            _decode_list(item)
        out[key] = item
    return out


_DECODER = json.JSONDecoder(object_pairs_hook=_decode_object)


class _Float(float):
    """A float of a row: orjson writes 1e16 where json writes 1e+16, so it asks :func:`_json_float` (json does not)."""


def _json_float(value: Any) -> Any:
    if type(value) is _Float:
        return orjson.Fragment(json.dumps(float(value)))
    raise TypeError(f"a view row cannot hold a {type(value).__name__} ({value!r})")


def dumps_row(row: Any) -> str:
    """The JSON text of a view row (compact, non-ASCII kept as is)."""
    encoded = _encode(row)
    if orjson is not None:
        try:
            return orjson.dumps(encoded, default=_json_float).decode()
        except orjson.JSONEncodeError:
            pass  # e.g. an int beyond 64 bits: json writes it
    return json.dumps(encoded, ensure_ascii=False, separators=(",", ":"), default=_iso_date)


def _iso_date(value: Any) -> str:
    if type(value) is date:  # left for orjson by _encode
        return value.isoformat()
    raise TypeError(f"a view row cannot hold a {type(value).__name__} ({value!r})")


def loads_row(text: str | bytes) -> Any:
    """The view row back from :func:`dumps_row`'s text: equal to the row written, types included."""
    value = _DECODER.decode(text.decode() if isinstance(text, bytes) else text)
    kind = type(value)
    if kind is str:
        return _decode_text(value)
    if kind is list:
        return _decode_list(value)
    return value


__all__ = ["dumps_row", "loads_row"]
