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


def in_language(report: dict[str, Any], lang: str) -> dict[str, Any]:
    """The import report in one language: every notice, problem and warning says its own sentence in ``lang``
    (a problem's ``message_en`` for English, else the code's catalogue sentence with the raised one's figures),
    never Chinese with the English in parentheses; a line's joined ``message`` is said again from them."""
    def said(p: dict[str, Any]) -> None:
        p["message"] = (p.get("message_en") if lang == "en" else None) or catalogue.error_message(
            p.get("code") or "", p.get("message") or "", lang)

    for notice in report.get("notices") or ():
        said(notice)
    for line in report["lines"]:
        for p in (line.get("problems") or []) + (line.get("warnings") or []):
            said(p)
        if line.get("problems"):
            sep, colon = ("; ", ": ") if lang == "en" else ("；", "：")
            line["message"] = sep.join(f"{p['column']}{colon}{p['message']}" if p.get("column") else p["message"]
                                       for p in line["problems"])
    return report


@lru_cache(maxsize=4)
def sheet_residence(names: PlaceNames) -> SheetResidence:
    """The places table indexed by name (once per table) with the catalogue's words."""
    return SheetResidence(names, say)


def template_places(names: PlaceNames, region: str | None, day: date | None = None) -> tuple[str, str] | None:
    """The template's example township and village: named in ``names`` today, in the clerk's county."""
    return example_places(names, region or EXAMPLE_REGION, day or date.today())


__all__ = ["EXAMPLE_REGION", "in_language", "say", "sheet_residence", "template_places"]
