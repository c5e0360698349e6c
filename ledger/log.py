"""Logging, configured once: JSON lines off a terminal, readable console output on one.

Every log line passes through :func:`mask_personal_data`, so an ID number never
reaches a log file in clear (个人信息保护法), whichever module logged it.
"""
from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

# 18-character resident ID (公民身份号码) and the old 15-digit form.
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3})([0-9Xx])(?![0-9A-Za-z])")
_OLD_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])(\d{15})(?![0-9A-Za-z])")
# Passports (E/G/D/P/S + 8 digits), Hong Kong/Macau permits (H/M + 8-10 digits),
# Taiwan permits (8 digits after a T prefix or 10), foreigners' permanent residence
# cards (3 letters + 12 digits).
_OTHER_IDS = re.compile(
    r"(?<![0-9A-Za-z])(?:[EGDPS]\d{8}|[HM]\d{8,10}|T\d{8,10}|[A-Z]{3}\d{12})(?![0-9A-Za-z])"
)
# A long digit run glued to other letters or digits (a mistyped URL "…123xx", "ID610…"):
# the lookarounds above let it through whole, so mask any run of 15+ digits (+ check char).
_GLUED_DIGITS = re.compile(r"\d{14,}[0-9Xx]")
#: Keys whose values are ID numbers whatever they look like.
SENSITIVE_KEYS = frozenset({"id_number", "id_no", "idcard", "id_card", "sfzh"})


def mask_id_number(value: str) -> str:
    """Mask an ID number for display: keep the first 4 and last 4 characters."""
    value = str(value)
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_text(text: str) -> str:
    """Mask every ID-number-looking token inside free text."""
    text = _RESIDENT_ID.sub(lambda m: mask_id_number(m.group(0)), text)
    text = _OLD_RESIDENT_ID.sub(lambda m: mask_id_number(m.group(0)), text)
    text = _OTHER_IDS.sub(lambda m: mask_id_number(m.group(0)), text)
    return _GLUED_DIGITS.sub(lambda m: mask_id_number(m.group(0)), text)


def _mask_value(key: str | None, value: Any) -> Any:
    if isinstance(value, str):
        if key is not None and key.lower() in SENSITIVE_KEYS:
            return mask_id_number(value)
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(_mask_value(None, v) for v in value) if not isinstance(value, set) else {
            _mask_value(None, v) for v in value
        }
    if isinstance(value, BaseException):
        return mask_text(repr(value))
    return value


def mask_personal_data(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: mask ID numbers in every value of every log line."""
    return {k: _mask_value(k, v) for k, v in event_dict.items()}


def _mask_rendered(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # Tracebacks are rendered into a string by format_exc_info; mask that too.
    if "exception" in event_dict and isinstance(event_dict["exception"], str):
        event_dict["exception"] = mask_text(event_dict["exception"])
    return event_dict


_configured = False


class _CurrentStderr:
    """Write to whatever ``sys.stderr`` is now (test runners swap it), not to the one at start-up."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", *, json: bool | None = None, force: bool = False) -> None:
    """Configure structlog for the whole process (idempotent)."""
    global _configured
    if _configured and not force:
        return
    if json is None:
        json = not sys.stderr.isatty()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_personal_data,
        structlog.processors.StackInfoRenderer(),
    ]
    if json:
        processors += [
            structlog.processors.format_exc_info,
            _mask_rendered,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ]
    else:
        processors += [structlog.dev.ConsoleRenderer()]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(name: str | None = None, **context: Any) -> Any:
    configure_logging()
    log = structlog.get_logger(name) if name else structlog.get_logger()
    return log.bind(**context) if context else log
