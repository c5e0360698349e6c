"""The API's error texts, in Chinese (the default) and English: names over :mod:`entrypoints.catalogue`.

The texts are in ``entrypoints/locale/{zh,en}.toml`` (sections ``api_fields``, ``api_values``,
``api_problems``, ``api_shapes``, ``api_texts``); the tables here are those sections as ``key -> {zh, en}``.

* :data:`FIELDS`: the Chinese label of each request field and query parameter a clerk may get wrong;
* :data:`VALUES`: allowed values of the enumerations, shown as ``城乡居民（RESIDENT）``;
* :data:`PROBLEMS`: one sentence per validation error type our models can produce (pydantic's own
  types and the custom ones of :mod:`entrypoints.http.models`), with ``{field}`` and the type's context;
* :data:`TEXTS`: the fixed answers (unreadable body, unknown route, wrong method, server error).

:func:`lang_of_header` reads ``Accept-Language``: English only when its first tag is ``en`` or
``en-*``; anything else (missing, ``zh-CN``, ``fr``, garbage, a 100 kB header) gives Chinese.
Codes (``BODY_INVALID``, ``FIELD_MISSING``...) never change with the language.
"""
from __future__ import annotations

import re
from typing import Any

from entrypoints import catalogue

DEFAULT_LANG = catalogue.DEFAULT_LANG
#: Only this much of an Accept-Language header is looked at (its first tag comes first).
_HEADER_HEAD = 64

FIELDS: dict[str, dict[str, str]] = catalogue.table("api_fields")
VALUES: dict[str, dict[str, str]] = catalogue.table("api_values")
PROBLEMS: dict[str, dict[str, str]] = catalogue.table("api_problems")
#: Readable shapes for the patterns our models declare (others: "格式见 /docs").
SHAPES: dict[str, dict[str, str]] = catalogue.table("api_shapes")
TEXTS: dict[str, dict[str, str]] = catalogue.table("api_texts")

_TAG = re.compile(r"[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*")


def lang_of_header(value: str | None) -> str:
    """``en`` when the first language tag of an Accept-Language header is English, else ``zh``."""
    first = (value or "")[:_HEADER_HEAD].split(",", 1)[0].split(";", 1)[0].strip()
    if not _TAG.fullmatch(first):
        return DEFAULT_LANG
    tag = first.lower().replace("_", "-")
    return "en" if tag == "en" or tag.startswith("en-") else DEFAULT_LANG


def field_label(field: str, lang: str) -> str:
    """``姓名（name）`` in Chinese (the key alone when no label is known), the key in English."""
    last = field.rsplit(".", 1)[-1]
    label = FIELDS.get(last, {}).get("zh")
    if lang == "en":
        return field
    if field == "body":
        return "请求体"
    return f"{label}（{field}）" if label else field


def value_label(value: str, lang: str) -> str:
    """``城乡居民（RESIDENT）`` in Chinese, ``'RESIDENT'`` in English."""
    if lang == "en":
        return repr(value)
    label = VALUES.get(value, {}).get("zh")
    return f"{label}（{value}）" if label else value


def choices(values: list[str], lang: str) -> str:
    shown = [value_label(v, lang) for v in values]
    return "、".join(shown) if lang != "en" else ", ".join(shown[:-1]) + (" or " if len(shown) > 1 else "") + shown[-1]


def shape(pattern: str, lang: str) -> str:
    return SHAPES.get(pattern, {}).get(lang, "格式见 /docs" if lang != "en" else pattern)


def text(key: str, lang: str, **values: Any) -> str:
    return TEXTS[key][lang].format(**values)


def error_message(code: str, message: str, lang: str, details: dict[str, Any] | None = None) -> str:
    """A stable code's message in ``lang`` (:func:`entrypoints.catalogue.error_message`)."""
    return catalogue.error_message(code, message, lang, details)


def localized(error: Any, lang: str) -> dict[str, Any]:
    """A :class:`~ledger.domain.errors.DomainError` as the API answers it: ``{code, message, details}``, the
    message in ``lang``; the code and the details never change with the language."""
    return {"code": error.code, "message": catalogue.error_message(error.code, error.message, lang, error.details),
            "details": error.details}


__all__ = ["DEFAULT_LANG", "error_message", "localized", "FIELDS", "PROBLEMS", "SHAPES", "TEXTS", "VALUES", "choices", "field_label",
           "lang_of_header", "shape", "text", "value_label"]
