"""Where a person of the registration sheet lives and how to reach them: 所属乡镇, 所属村（社区）, 联系电话.

A township or village is written as its code (9 / 12 digits) or as its name. A name becomes its
code through the deployment's places table (地名表, ``LEDGER_PLACES_FILE``), by the name valid on
the row's 参保日期, within the row's 参保地 county (:class:`ledger.domain.place_lookup.PlaceIndex`),
and a village's name within the township given. The row problems, each with its stable code:

* ``IMPORT_PLACE_UNKNOWN`` -- no place of that name there on that day (a renamed one says its other name);
* ``IMPORT_PLACE_AMBIGUOUS`` -- two or more places of that name (the codes are listed; give the code);
* ``IMPORT_PLACE_MISMATCH`` -- the village is not under the township given (its own township is named);
* ``IMPORT_VILLAGE_MISSING`` (a warning, the row is imported) -- a township and no village: the township is
  checked, but the ledger places a person by village (grid), so none is recorded;
* ``IMPORT_PHONE_INVALID`` -- 联系电话 is neither a mainland mobile number (1[3-9] and 9 digits) nor a
  fixed line with its area code (0 + 2 or 3 digits, then 7 or 8). The message never repeats the number.

The messages are the catalogue's (``[import_places]``, Chinese and English): the entrypoint that wires the import gives
:class:`SheetResidence` its ``say`` (this layer reads no catalogue). Without a :class:`SheetResidence`
(no places table wired), a name is kept out with the ``PLACE_NAME_NOT_RESOLVED`` warning, as before.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable

from ledger.domain.place_lookup import TOWNSHIP, VILLAGE, PlaceIndex, PlaceMatch
from ledger.domain.places import ANKANG_REGIONS, NO_PLACE_NAMES, PlaceNames

#: ``say(key, **values)``: the ``[import_places]`` text ``key`` as ``(Chinese, English)``.
Say = Callable[..., tuple[str, str]]

_MOBILE = re.compile(r"1[3-9]\d{9}")
# Area codes: 010 and 02x have 3 digits, the others 4 (0915 安康); the number 7 or 8 digits; an extension may follow.
_FIXED = re.compile(r"(0(?:10|2\d|[3-9]\d{2}))-?([2-9]\d{6,7})(?:-(\d{1,6}))?")
_SEPARATORS = str.maketrans("", "", " ()")


def mainland_phone(text: str) -> str | None:
    """A mainland mobile (``13800000001``; +86 / 0086 before it is dropped) or a fixed line with its area code
    (``0915-3212345``, written with or without the dash, spaces, brackets), in one plain form; None otherwise."""
    compact = unicodedata.normalize("NFKC", text).translate(_SEPARATORS)
    for prefix in ("+86", "0086"):
        if compact.startswith(prefix) and _MOBILE.fullmatch(compact[len(prefix):].replace("-", "")):
            return compact[len(prefix):].replace("-", "")
    if _MOBILE.fullmatch(compact.replace("-", "")):
        return compact.replace("-", "")
    m = _FIXED.fullmatch(compact)
    if m:
        return f"{m[1]}-{m[2]}" + (f"-{m[3]}" if m[3] else "")
    return None


@dataclass
class Residence:
    """What a row says about residence: the codes found (or given) and the row's problems about them."""

    township: str | None = None
    grid: str | None = None
    problems: list[tuple[str, str, str, str]] = field(default_factory=list)  # (code, column, Chinese, English)


class SheetResidence:
    """The places table and the catalogue's words, for one import (the index is built once)."""

    def __init__(self, names: PlaceNames = NO_PLACE_NAMES, say: Say | None = None) -> None:
        self.names = names
        self.index = PlaceIndex(names)
        self.say: Say = say or _plain

    # ------------------------------------------------------------------ the phone
    def phone(self, text: str) -> tuple[str | None, tuple[str, str] | None]:
        """``(phone, None)`` or ``(None, (Chinese, English))`` for a filled 联系电话 cell."""
        phone = mainland_phone(text) if len(text) <= 40 else None
        return (phone, None) if phone else (None, self.say("phone_invalid"))

    # ------------------------------------------------------------------ the places
    def township_only(self, township_text: str) -> tuple[str, str]:
        """The notice for a row naming its township and no village: the ledger places people by village (grid)."""
        return self.say("township_only", township=_shown(township_text))

    def resolve(self, township_text: str, village_text: str, *, region: str, day: date) -> Residence:
        """The township and village of a row in county ``region`` on ``day``; a code is taken as it is."""
        out = Residence()
        county = ANKANG_REGIONS.get(region, region)
        township_named = bool(township_text) and not _is_code(township_text)
        village_named = bool(village_text) and not _is_code(village_text)
        if township_text and not township_named:
            out.township = township_text
        if village_text and not village_named:
            out.grid = village_text
        # A township written as a code (right or wrong) is the parent a named village is looked for under only
        # when it is a well-formed one; a malformed one is the code check's problem, the village is then looked
        # for in the whole county.
        township_known = not township_text or (out.township is not None and _well_formed(out.township, TOWNSHIP))
        if township_named:
            found = self.index.find(township_text, region=region, digits=TOWNSHIP, day=day)
            out.township = self._one(found, township_text, "township", county, day, out)
            township_known = out.township is not None
        if village_named:
            under = out.township if township_known else None
            found = self.index.find(village_text, region=region, digits=VILLAGE, day=day, under=under)
            if under is not None and not found.codes and not found.other_days:
                elsewhere = self.index.find(village_text, region=region, digits=VILLAGE, day=day)
                if elsewhere.codes:
                    out.problems.append(("IMPORT_PLACE_MISMATCH", "grid_code", *self.say(
                        "village_not_in_township", value=_shown(village_text), township=self._named(under, day),
                        where="、".join(self._named(c[:9], day) for c in elsewhere.codes))))
                    return out
            if township_named and not township_known:
                # The township is already reported; a village found somewhere in the county is not a second problem.
                if found.codes or found.other_days:
                    return out
            out.grid = self._one(found, village_text, "grid_code", county, day, out, under=under)
            if out.grid is not None and out.township is None:
                out.township = out.grid[:9]
        return out

    def _one(self, found: PlaceMatch, text: str, column: str, county: str, day: date, out: Residence,
             under: str | None = None) -> str | None:
        kind = "township" if column == "township" else "village"
        where = self._named(under, day) if under else county
        if len(found.codes) == 1:
            return found.codes[0]
        if found.codes:
            out.problems.append(("IMPORT_PLACE_AMBIGUOUS", column, *self.say(
                f"{kind}_ambiguous", value=_shown(text), where=where,
                options=self._options(found.codes, day))))
        elif found.other_days:
            other = found.other_days[0]
            now = self.names.name_on(other.code, day)
            out.problems.append(("IMPORT_PLACE_UNKNOWN", column, *self.say(
                f"{kind}_renamed", value=_shown(text), span=_span(other.valid_from, other.valid_to), day=day.isoformat(),
                current=now or other.code)))
        else:
            out.problems.append(("IMPORT_PLACE_UNKNOWN", column, *self.say(
                f"{kind}_unknown", value=_shown(text), where=where, day=day.isoformat())))
        return None

    def _options(self, codes: tuple[str, ...], day: date) -> str:
        """The places a name could mean, as a clerk tells them apart: township and village names with the code."""
        shown = [(self._named(c[:9], day) if len(c) == VILLAGE else "") + f"{self._named(c, day)} {c}" for c in codes[:5]]
        return "、".join(shown) + (f" …{len(codes)}" if len(codes) > 5 else "")

    def _named(self, code: str, day: date) -> str:
        return self.names.name_on(code, day) or code


def _well_formed(code: str, digits: int) -> bool:
    return len(code) == digits and code.isascii() and code.isdigit()


def _is_code(text: str) -> bool:
    """Digits (a code, right or wrong: the code checks report it) rather than a name."""
    return any(ch.isdigit() for ch in text)


def _shown(text: str) -> str:
    """A written name as a message repeats it: one line, at most 30 characters, no control characters."""
    one_line = "".join(ch if ch.isprintable() else " " for ch in text)
    return one_line[:30] + ("…" if len(one_line) > 30 else "")


def _span(start: date | None, end: date | None) -> str:
    return f"{start.isoformat() if start else '…'}～{end.isoformat() if end else '…'}"


def _plain(key: str, **values: Any) -> tuple[str, str]:
    """Words when no catalogue is wired (a library caller): the key and its figures, never shown to a clerk by
    an entrypoint (they all wire the catalogue's)."""
    text = key + " " + " ".join(f"{k}={v}" for k, v in sorted(values.items()))
    return text, text


__all__ = ["Residence", "Say", "SheetResidence", "mainland_phone"]
