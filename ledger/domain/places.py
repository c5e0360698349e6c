"""Places: region codes (行政区划代码) and grid / village codes (统计用区划代码).

The ledger keys funds, policy tables and grid-worker lists by place. This module only
checks the *shape* of a code; whether a region is one the ledger serves is decided by
the policy book (:mod:`ledger.policy`), and codes change over time, so callers keep
the code together with its validity.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

from ledger.domain.errors import DomainError

#: Ankang's ten districts and counties (安康市辖区县), GB/T 2260 codes → Chinese names.
ANKANG_REGIONS: Mapping[str, str] = MappingProxyType(
    {
        "610902": "汉滨区",
        "610921": "汉阴县",
        "610922": "石泉县",
        "610923": "宁陕县",
        "610924": "紫阳县",
        "610925": "岚皋县",
        "610926": "平利县",
        "610927": "镇坪县",
        "610929": "白河县",
        "610981": "旬阳市",
    }
)

# Province-level prefixes of GB/T 2260 (31 mainland provinces, Taiwan, Hong Kong, Macau).
# Checking them catches most digit slips in the first two positions.
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
    "50 51 52 53 54 61 62 63 64 65 71 81 82".split()
)

# Township block of the statistical code (统计用区划代码编制规则):
# 001-099 街道, 100-199 镇, 200-399 乡, 400-599 乡级 units such as development zones
# and state farms (类似乡级单位), which do hold villages and residents.
_TOWNSHIP_KINDS = (
    (1, 99, "STREET"),
    (100, 199, "TOWN"),
    (200, 399, "TOWNSHIP"),
    (400, 599, "ZONE"),
)


@dataclass(frozen=True)
class GridCode:
    """A village or community (村/社区) in a township: the unit a grid worker (网格员) covers."""

    code: str  # 12 digits
    region_code: str  # 6 digits, county level
    township_code: str  # 9 digits: region + 3-digit township block
    township_kind: str  # 'STREET' (街道) | 'TOWN' (镇) | 'TOWNSHIP' (乡) | 'ZONE' (开发区等)
    village: str  # 3 digits within the township


def _as_code_text(code: object) -> str:
    # Spreadsheet imports often turn codes into integers; region and grid codes never
    # start with 0, so str(int) loses nothing. Floats and bools are rejected.
    if isinstance(code, int) and not isinstance(code, bool):
        return str(code)
    if isinstance(code, str):
        return code.strip()
    return repr(code)


def validate_region_code(code: str | int) -> str:
    """Check a 6-digit county-level region code (行政区划代码, GB/T 2260) and return it as text.

    Raises ``REGION_FORMAT``. A known-format code may still be a region the ledger
    does not serve: ask the policy book.
    """
    text = _as_code_text(code)
    if len(text) != 6 or not text.isdigit() or not text.isascii():
        raise DomainError(
            "REGION_FORMAT",
            f"region code {text[:20]!r} must be 6 digits (行政区划代码, e.g. 610902 for 汉滨区)",
            region_code=text[:20],
        )
    if text[:2] not in _PROVINCES:
        raise DomainError(
            "REGION_FORMAT",
            f"region code {text} starts with {text[:2]}, which is no province code; "
            "re-check the first two digits",
            region_code=text,
        )
    if text[2:] == "0000":
        raise DomainError(
            "REGION_FORMAT",
            f"region code {text} names a whole province; give the district or county code",
            region_code=text,
        )
    return text


def parse_grid_code(code: str | int) -> GridCode:
    """Split a 12-digit statistical area code (统计用区划代码) into region, township and village.

    Raises ``GRID_FORMAT`` (or ``REGION_FORMAT`` for a bad first six digits).
    """
    text = _as_code_text(code)
    if len(text) != 12 or not text.isdigit() or not text.isascii():
        raise DomainError(
            "GRID_FORMAT",
            f"grid code {text[:20]!r} must be 12 digits: region (6), township (3), "
            "village or community (3)",
            grid_code=text[:20],
        )
    region = validate_region_code(text[:6])
    block = int(text[6:9])
    kind = next((k for lo, hi, k in _TOWNSHIP_KINDS if lo <= block <= hi), None)
    if kind is None:
        raise DomainError(
            "GRID_FORMAT",
            f"grid code {text}: township part {text[6:9]} is outside the ranges in use "
            "(001-099 street office, 100-199 town, 200-399 township, 400-599 zone)",
            grid_code=text,
        )
    if text[9:] == "000":
        raise DomainError(
            "GRID_FORMAT",
            f"grid code {text} names a whole township; give the village or community code "
            "(last three digits not 000)",
            grid_code=text,
        )
    return GridCode(
        code=text,
        region_code=region,
        township_code=text[:9],
        township_kind=kind,
        village=text[9:],
    )


@dataclass(frozen=True)
class PlaceName:
    """The name of a township (9-digit code) or village / community (12-digit code) over a span of days.

    Codes and names change (撤乡设镇, 村改社区, mergers): a name is valid from ``valid_from`` to
    ``valid_to`` (both inclusive; ``None`` = open), and ``source`` says where it comes from.
    """

    code: str
    name: str
    valid_from: date | None = None
    valid_to: date | None = None
    source: str = ""

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day <= self.valid_to)


class PlaceNames:
    """A places table (地名表): township and village names by code, each with its validity.

    :meth:`name_on` answers the name valid on a day, or ``None`` when the table has none for that
    day (the caller then shows the code). Spans of one code must not overlap: a day has one name.
    """

    def __init__(self, names: Iterable[PlaceName] = (), *, source: str = "") -> None:
        self.source = source
        self._by_code: dict[str, list[PlaceName]] = {}
        for n in names:
            spans = self._by_code.setdefault(n.code, [])
            for other in spans:
                if _overlap(n, other):
                    raise DomainError("PLACES_OVERLAP", f"地名表中代码 {n.code} 的名称「{other.name}」与「{n.name}」"
                                      "有效期重叠（places table: two names valid on the same day）", place_code=n.code)
            spans.append(n)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_code.values())

    def __iter__(self) -> Iterator[PlaceName]:
        """Every name of every code, each span once (for an index by name, :mod:`ledger.domain.place_lookup`)."""
        for spans in self._by_code.values():
            yield from spans

    def name_on(self, code: str, day: date) -> str | None:
        return next((n.name for n in self._by_code.get(code, ()) if n.valid_on(day)), None)

    def entry_on(self, code: str, day: date) -> PlaceName | None:
        return next((n for n in self._by_code.get(code, ()) if n.valid_on(day)), None)


def _overlap(a: PlaceName, b: PlaceName) -> bool:
    return ((a.valid_from or date.min) <= (b.valid_to or date.max)
            and (b.valid_from or date.min) <= (a.valid_to or date.max))


#: No names at all: every place is shown by its code.
NO_PLACE_NAMES = PlaceNames()


__all__ = ["ANKANG_REGIONS", "GridCode", "NO_PLACE_NAMES", "PlaceName", "PlaceNames", "parse_grid_code",
           "validate_region_code"]
