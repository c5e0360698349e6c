"""The one message catalogue: every text a person reads, Chinese by default, English on request.

The texts live in one data file per language, ``entrypoints/locale/zh.toml`` and ``en.toml``,
one ``[section]`` per surface (``demo``, ``audit``, ``api_problems``, ``errors``, ``cli``...),
keyed by stable ids: error codes, column keys, event names. Not gettext/Babel: its keys are the
English source sentences and its ``.mo`` files need a compile step, while this project's texts
are already keyed by codes, and TOML is what the policy tables are written in (read by the
standard library's ``tomllib``, diffable, no build step). ``tests/unit/test_catalogue.py``
checks that both files name the same keys with the same ``{placeholders}`` and that every error
code raised anywhere has a message.

* :func:`text` -- one text, ``{placeholders}`` filled;
* :func:`table` -- a section as ``{key: {"zh": ..., "en": ...}}`` (what :mod:`entrypoints.messages`
  and :mod:`entrypoints.http.api_messages` expose under their old names);
* :func:`error_message` -- a :class:`~ledger.domain.errors.DomainError`'s message in a language;
* :func:`lang_of` -- ``en`` for anything that asks for English (``en``, ``en_US.UTF-8``), else ``zh``.
"""
from __future__ import annotations

import re
import string
import tomllib
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any, Iterator

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"
#: The language of this run, for what is said before a command knows its arguments (the startup checks):
#: ``ledger``'s ``main`` sets it from ``--lang`` / ``LEDGER_LANG``; Chinese otherwise.
_RUN_LANG: ContextVar[str] = ContextVar("ledger_run_lang", default=DEFAULT_LANG)


@contextmanager
def speaking(lang: str) -> Iterator[None]:
    """The run's language while the block runs (``ledger``'s ``main`` around its command)."""
    token = _RUN_LANG.set(lang if lang in LANGS else DEFAULT_LANG)
    try:
        yield
    finally:
        _RUN_LANG.reset(token)


def run_lang() -> str:
    return _RUN_LANG.get()
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


@cache
def _load(lang: str) -> dict[str, dict[str, str]]:
    with open(LOCALE_DIR / f"{lang}.toml", "rb") as f:
        return tomllib.load(f)


def lang_of(value: str | None) -> str:
    """``zh`` unless the value asks for English (``en``, ``en-US``, ``en_US.UTF-8``, ...)."""
    return "en" if (value or "").strip().lower().startswith("en") else DEFAULT_LANG


def sections() -> list[str]:
    return list(_load(DEFAULT_LANG))


def table(section: str) -> dict[str, dict[str, str]]:
    """A section as ``{key: {lang: text}}``, in the Chinese file's order (a language lacking a key lacks it here)."""
    out: dict[str, dict[str, str]] = {}
    for lang in LANGS:
        for key, value in _load(lang).get(section, {}).items():
            out.setdefault(key, {})[lang] = value
    return out


def has(section: str, key: str, lang: str = DEFAULT_LANG) -> bool:
    return key in _load(lang).get(section, {})


def raw(section: str, key: str, lang: str = DEFAULT_LANG) -> str:
    """The text unformatted; the Chinese one when ``lang`` lacks it; ``KeyError`` when neither has it."""
    texts = _load(lang).get(section, {})
    return texts[key] if key in texts else _load(DEFAULT_LANG)[section][key]


def text(section: str, key: str, lang: str = DEFAULT_LANG, **values: Any) -> str:
    return raw(section, key, lang).format(**values)


def placeholders(template: str) -> set[str]:
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


# --------------------------------------------------------------------------- domain errors
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def chinese_first(message: str) -> bool:
    """Does ``message`` start in Chinese (its first letter or ideograph is an ideograph)?"""
    for ch in message:
        if _CJK.match(ch):
            return True
        if _LATIN.match(ch):
            return False
    return False


def _fill(template: str, details: dict[str, Any]) -> str | None:
    try:
        return template.format(**details) if placeholders(template) <= set(details) else None
    except (KeyError, IndexError, ValueError, AttributeError):
        return None


def _split(message: str) -> tuple[str, str | None]:
    """``(main, trailing)``: a message and the sentence in parentheses at its end, if any; the parentheses may
    hold parentheses of their own (``证件号码格式不对 (ID ... (18 characters: ...); re-check ...)``)."""
    text = message.rstrip()
    if not text or text[-1] not in ")）":
        return message, None
    depth = 0
    for i in range(len(text) - 1, -1, -1):
        depth += text[i] in ")）"
        depth -= text[i] in "(（"
        if depth == 0:
            inner = text[i + 1:-1].strip()
            return (text[:i].rstrip(), inner) if inner and text[:i].strip() else (message, None)
    return message, None


def error_message(code: str, message: str, lang: str = DEFAULT_LANG, details: dict[str, Any] | None = None) -> str:
    """The message of an error with stable ``code`` in ``lang``.

    Where an error is raised it gives its own sentence (``message``), with the figures of the case: Chinese
    with the English in parentheses (``中文（English）``, the house rule), English with a Chinese gloss, or
    English alone. Chinese answer: the Chinese sentence; for an English-only one, the catalogue's sentence for
    the code with the raised sentence after it in parentheses (its figures are there). English answer: the
    English sentence (the one in parentheses after a Chinese one), else the catalogue's.
    """
    details = details or {}
    lang = lang if lang in LANGS else DEFAULT_LANG
    message = message or ""
    main, trailing = _split(message)
    if chinese_first(message):
        zh = main if trailing and not _CJK.search(trailing) else message
        en = trailing if trailing and not _CJK.search(trailing) else None
    else:
        glossed = bool(trailing and _CJK.search(trailing))
        en = main if glossed else (message or None)
        zh = trailing if glossed else None
    if lang == "zh":
        if zh:
            return zh
        generic = _fill(raw("errors", code, "zh"), details) if has("errors", code) else None
        generic = generic or text("errors", "_UNKNOWN", "zh", code=code)
        return f"{generic}（{en}）" if en else generic
    if en:
        return en
    generic = _fill(raw("errors", code, "en"), details) if has("errors", code, "en") else None
    return generic or text("errors", "_UNKNOWN", "en", code=code)


__all__ = ["DEFAULT_LANG", "LANGS", "LOCALE_DIR", "chinese_first", "error_message", "has", "lang_of",
           "placeholders", "raw", "sections", "table", "text"]
