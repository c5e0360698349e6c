"""Finding a township or village code by the name a person wrote (地名→代码), through the places table.

Agencies write place names the way they say them: ``关庙镇`` or ``关庙``, ``江北街道办事处``,
``东坝村委会`` / ``东坝村民委员会`` / ``东坝``, full-width brackets and spaces. :func:`place_key`
reduces a name to its stem by rules (Unicode NFKC, no spaces or brackets, the administrative
suffixes taken off), so no list of spellings is kept: a name and the table's name match when
their stems do. A name written exactly as the table has it (spaces and brackets aside) wins over
a stem match, so ``东坝村`` still finds 东坝村 when a 东坝社区 lies in the same township.

:class:`PlaceIndex` answers which codes carry a name **on a day** (names have validity spans:
撤乡设镇, mergers, renames) within a county, and under a township for a village; the caller
decides what none, one or several answers mean (unknown, found, ambiguous).
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from ledger.domain.places import ANKANG_REGIONS, PlaceName, PlaceNames

#: Administrative suffixes of a township's name (街道办事处, 镇人民政府 ...), longest first.
TOWNSHIP_SUFFIXES = ("街道办事处", "镇人民政府", "乡人民政府", "街道办", "办事处", "人民政府", "街道", "镇", "乡")
#: Administrative suffixes of a village's or community's name (村民委员会, 社区居委会 ...), longest first.
VILLAGE_SUFFIXES = ("社区居民委员会", "社区居委会", "村民委员会", "居民委员会", "村委会", "居委会", "社区", "村")
_BRACKETS = str.maketrans("", "", "()[]{}<>【】〔〕〈〉《》「」『』")
#: Digits of each kind of code: a township's 9, a village's or community's 12.
TOWNSHIP, VILLAGE = 9, 12


def exact_key(name: str) -> str:
    """A name as written, without the differences nobody means: width (NFKC), spaces, brackets."""
    text = unicodedata.normalize("NFKC", name or "")
    return "".join(text.split()).translate(_BRACKETS)


def place_key(name: str, digits: int) -> str:
    """The stem of a township's (``digits`` 9) or village's (12) name: :func:`exact_key` with the
    administrative suffixes taken off, repeatedly (``关庙社区居委会`` -> ``关庙``); never to nothing."""
    key = exact_key(name)
    suffixes = TOWNSHIP_SUFFIXES if digits == TOWNSHIP else VILLAGE_SUFFIXES
    stripped = True
    while stripped:
        stripped = False
        for suffix in suffixes:
            if key.endswith(suffix) and len(key) > len(suffix):
                key, stripped = key[:-len(suffix)], True
                break
    return key


@dataclass(frozen=True)
class PlaceMatch:
    """The codes a name carries on the day asked (``codes``, in code order) and, when none does, the spans
    of that name on other days (``other_days``: a renamed or not yet named place)."""

    codes: tuple[str, ...]
    other_days: tuple[PlaceName, ...] = ()


class PlaceIndex:
    """The places table indexed by county, kind and name, for :meth:`find`."""

    def __init__(self, names: PlaceNames | Iterable[PlaceName]) -> None:
        self.names = names
        self._exact: dict[tuple[str, int, str], list[PlaceName]] = {}
        self._stem: dict[tuple[str, int, str], list[PlaceName]] = {}
        for entry in names:
            digits = len(entry.code)
            region = entry.code[:6]
            self._exact.setdefault((region, digits, exact_key(entry.name)), []).append(entry)
            self._stem.setdefault((region, digits, place_key(entry.name, digits)), []).append(entry)

    def find(self, name: str, *, region: str, digits: int, day: date, under: str | None = None) -> PlaceMatch:
        """The codes of kind ``digits`` in county ``region`` (and under township ``under``) named ``name`` on ``day``.

        A name written with the county before it (``汉滨区关庙镇``) is read without it.
        """
        county = ANKANG_REGIONS.get(region)
        written = exact_key(name)
        if county and written.startswith(county) and len(written) > len(county):
            written = written[len(county):]
        other_days: list[PlaceName] = []
        for table, key in ((self._exact, written), (self._stem, place_key(written, digits))):
            entries = [e for e in table.get((region, digits, key), ()) if under is None or e.code.startswith(under)]
            valid = sorted({e.code for e in entries if e.valid_on(day)})
            if valid:
                return PlaceMatch(tuple(valid))
            other_days += [e for e in entries if e not in other_days]
        return PlaceMatch((), tuple(sorted(other_days, key=lambda e: (e.code, e.valid_from or date.min))))


__all__ = ["TOWNSHIP", "TOWNSHIP_SUFFIXES", "VILLAGE", "VILLAGE_SUFFIXES", "PlaceIndex", "PlaceMatch", "exact_key",
           "place_key"]
