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


def say(key: str, **values: Any) -> str:
    """An ``[import_places]`` text: Chinese, with the English in parentheses (as the other row problems)."""
    zh = catalogue.text("import_places", key, "zh", **values)
    en = catalogue.text("import_places", key, "en", **values)
    return f"{zh}（{en}）"


@lru_cache(maxsize=4)
def sheet_residence(names: PlaceNames) -> SheetResidence:
    """The places table indexed by name (once per table) with the catalogue's words."""
    return SheetResidence(names, say)


def template_places(names: PlaceNames, region: str | None, day: date | None = None) -> tuple[str, str] | None:
    """The template's example township and village: named in ``names`` today, in the clerk's county."""
    return example_places(names, region or EXAMPLE_REGION, day or date.today())


__all__ = ["EXAMPLE_REGION", "say", "sheet_residence", "template_places"]
