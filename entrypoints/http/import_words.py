"""The registration sheet's place and phone columns wired for an import: the deployment's places table and the
catalogue's words (``[import_places]``), for :mod:`consumers.sheet_residence` (which reads no catalogue itself).

Every entrance that imports a sheet (``POST /imports``, ``ledger import``) and every template it hands out
(the example row's township and village are named from the same table) goes through here.
"""
from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

from consumers.sheet_residence import SheetResidence
from consumers.sheet_workbooks import example_places
from entrypoints import catalogue
from ledger.domain.places import PlaceNames

#: The template's example county when the clerk has none of their own (several regions, or none yet).
EXAMPLE_REGION = "610902"


def say(key: str, **values: Any) -> tuple[str, str]:
    """An ``[import_places]`` text in Chinese and in English (a row problem's ``message`` and ``message_en``)."""
    return (catalogue.text("import_places", key, "zh", **values), catalogue.text("import_places", key, "en", **values))


def english_problems(line: dict[str, Any]) -> str:
    """A report line's problems in English: each problem's own English (``message_en``), else its code's."""
    return "; ".join(f"{p['column']}: " * bool(p.get("column")) + (p.get("message_en") or catalogue.error_message(
        p["code"], p["message"], "en")) for p in line.get("problems") or ())


def in_english(report: dict[str, Any]) -> dict[str, Any]:
    """The import report for an English reader: the problems that carry their English say it as ``message``."""
    for line in report["lines"]:
        problems = line.get("problems") or []
        if any("message_en" in p for p in problems):
            for p in problems:
                p["message"] = p.get("message_en") or catalogue.error_message(p["code"], p["message"], "en")
            line["message"] = english_problems(line)
    return report


@lru_cache(maxsize=4)
def sheet_residence(names: PlaceNames) -> SheetResidence:
    """The places table indexed by name (once per table) with the catalogue's words."""
    return SheetResidence(names, say)


def template_places(names: PlaceNames, region: str | None, day: date | None = None) -> tuple[str, str] | None:
    """The template's example township and village: named in ``names`` today, in the clerk's county."""
    return example_places(names, region or EXAMPLE_REGION, day or date.today())


__all__ = ["EXAMPLE_REGION", "english_problems", "in_english", "say", "sheet_residence", "template_places"]
