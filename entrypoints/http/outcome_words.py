"""What a clerk command did, in the reader's language: the ``已记录：…`` / ``recorded: …`` lines of ``ledger clerk``.

The ledger's :class:`~ledger.application.Outcome` carries a short English sentence (``enrolled``,
``assessed 2025``, ``payment V1 recorded``, ``request R was already applied at ...; nothing changed``):
it is what the API answers in ``message``, and its shapes are few and fixed (the ``describe`` of each
command in ``ledger/application.py``). The command line says it from the catalogue (section
``[clerk_outcomes]``): each shape below is matched whole and its parts (a year, a voucher number, a
time) fill the catalogue's sentence; a time is shown in Beijing time. A sentence of no known shape is
shown as it is (a Chinese sentence with its English in parentheses, as the maker-checker writes them,
is split by language like an error message).
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from entrypoints import catalogue
from ledger.domain.person import BUSINESS_TZ

SECTION = "clerk_outcomes"

#: (catalogue key, the English shape); named groups fill the catalogue's placeholders.
SHAPES: list[tuple[str, re.Pattern[str]]] = [(key, re.compile(pattern)) for key, pattern in (
    ("registered", r"registered"),
    ("enrolled", r"enrolled"),
    ("enrollment_ended", r"enrollment ended"),
    ("assessed", r"assessed (?P<period>\S+)"),
    ("status_granted", r"status granted"),
    ("status_revoked", r"status revoked"),
    ("payment_recorded", r"payment (?P<voucher>\S+) recorded"),
    ("refund_recorded", r"refund (?P<voucher>\S+) recorded"),
    ("reversal_recorded", r"reversal (?P<voucher>\S+) recorded"),
    ("transferred_out", r"transferred out"),
    ("transferred_in", r"transferred in"),
    ("transfer_requested", r"transfer requested"),
    ("transfer_rejected", r"transfer rejected"),
    ("transfer_cancelled", r"transfer cancelled"),
    ("account_credited", r"account credited"),
    ("account_debited", r"account debited"),
    ("late_fee_recorded", r"late fee (?P<voucher>\S+) recorded"),
    ("late_fee_waived", r"late fee of (?P<period>\S+) waived"),
    ("residence_recorded", r"residence (?P<status>\S+) recorded"),
    ("residence_place_recorded", r"residence recorded"),
    ("recorded", r"recorded"),
    ("command", r"command"),
    ("request_applied_before", r"request (?P<request>\S+) was already applied at (?P<at>\S+); nothing changed"),
    ("source_recorded_before", r"(?P<kind>\S+) (?P<record>\S+) was already recorded; nothing changed"),
    ("feed_position_done", r"feed position (?P<position>\S+) was already processed"),
    ("nothing_to_change", r"(?P<what>.+): nothing to change \(already recorded\)"),
)]


def _beijing(instant: str) -> str:
    try:
        return datetime.fromisoformat(instant).astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return instant


def outcome_text(message: str, lang: str = catalogue.DEFAULT_LANG) -> str:
    """The outcome's ``message`` said in ``lang`` (see the module docstring)."""
    message = (message or "").strip()
    for key, shape in SHAPES:
        m = shape.fullmatch(message)
        if m is None:
            continue
        values: dict[str, Any] = dict(m.groupdict())
        if "what" in values:
            values["what"] = outcome_text(values["what"], lang)
        if "at" in values:
            values["at"] = _beijing(values["at"])
        if "status" in values:
            word = f"residence.{values['status'].upper()}"
            values["status"] = catalogue.text(SECTION, word, lang) if catalogue.has(SECTION, word) else values["status"]
        return catalogue.text(SECTION, key, lang, **values)
    main, trailing = catalogue._split(message)
    if catalogue.chinese_first(message) and trailing and not catalogue._CJK.search(trailing):
        return main if lang == "zh" else trailing  # 中文（English）: the maker-checker's sentence, split by language
    return message


__all__ = ["SHAPES", "outcome_text"]
