"""The demo report's and the audit report's texts: thin names over :mod:`entrypoints.catalogue`.

The texts themselves are in ``entrypoints/locale/zh.toml`` and ``en.toml`` (sections ``demo``,
``columns``, ``terms``, ``places``, ``audit``, ``audit_figures``, ``audit_events``, ``audit_words``);
the tables below are those sections as ``key -> {zh, en}``, kept under their old names.
:func:`text` picks the language and fills the ``{placeholders}``; codes (gap reasons,
discrepancy classes, error codes) stay as they are and are printed beside their label.
"""
from __future__ import annotations

from typing import Any

from entrypoints import catalogue
from entrypoints.catalogue import DEFAULT_LANG, LANGS

MESSAGES: dict[str, dict[str, str]] = catalogue.table("demo")
#: Column headings of the report's tables.
COLUMNS: dict[str, dict[str, str]] = catalogue.table("columns")
#: Timing and check names, and arrears kinds, as a person reads them.
TERMS: dict[str, dict[str, str]] = catalogue.table("terms")
#: Places outside the county a report may name.
PLACES: dict[str, dict[str, str]] = catalogue.table("places")
#: The auditor's printable report (``ledger history --html``).
AUDIT: dict[str, dict[str, str]] = catalogue.table("audit")
#: Figures of the person's state as the printable report names them.
AUDIT_FIGURES: dict[str, dict[str, str]] = catalogue.table("audit_figures")
#: Each person event in one line (``describe_zh`` fills them).
AUDIT_EVENTS: dict[str, dict[str, str]] = catalogue.table("audit_events")
#: Codes (schemes, channels, end reasons, subsidised groups) in words.
AUDIT_WORDS: dict[str, dict[str, str]] = catalogue.table("audit_words")


def audit_text(key: str, lang: str = DEFAULT_LANG, **values: Any) -> str:
    return AUDIT[key][lang].format(**values)


def lang_of(value: str | None) -> str:
    """``zh`` unless the value asks for English (``en``, ``en_US.UTF-8``, ...)."""
    return catalogue.lang_of(value)


def text(key: str, lang: str = DEFAULT_LANG, **values: Any) -> str:
    return MESSAGES[key][lang].format(**values)


def headings(lang: str) -> dict[str, str]:
    return {k: v[lang] for k, v in COLUMNS.items()}


def term(key: str, lang: str) -> str:
    return TERMS.get(key, {}).get(lang, key)


__all__ = ["AUDIT", "AUDIT_EVENTS", "AUDIT_FIGURES", "AUDIT_WORDS", "audit_text", "COLUMNS", "DEFAULT_LANG", "LANGS", "MESSAGES", "PLACES", "TERMS", "headings", "lang_of", "term", "text"]
