"""The places table (地名表): township and village / community names by code, with their validity.

A county supplies its own file (``LEDGER_PLACES_FILE``): a CSV with the header
``code,name,valid_from,valid_to,source`` (UTF-8, a byte-order mark is fine), one row per name
and span of days: ``code`` is a 9-digit township or 12-digit village / community code
(统计用区划代码), ``valid_from`` / ``valid_to`` are ``YYYY-MM-DD`` or empty (open), ``source``
says where the name comes from (e.g. 国家统计局 2023 年统计用区划代码). Without it the packaged
``ankang-sample.csv`` is used: **sample data (示例)** for the demo's generated codes, not
official names (no source at hand lists Ankang's township and village names with their codes).

A malformed file stops the start with ``PLACES_FILE_INVALID`` naming the file and line.
"""
from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

from ledger.domain.errors import DomainError
from ledger.domain.places import PlaceName, PlaceNames, parse_grid_code

#: The packaged places table: sample names (示例) for the simulated county's codes.
SAMPLE_PLACES = Path(__file__).parent / "ankang-sample.csv"
HEADER = ("code", "name", "valid_from", "valid_to", "source")


def _invalid(path: Path, line: int, why: str) -> DomainError:
    return DomainError("PLACES_FILE_INVALID", f"地名表 {path} 第 {line} 行：{why}（places file invalid）",
                       file=str(path), line=line)


def _day(text: str, path: Path, line: int, column: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _invalid(path, line, f"{column} 应为 YYYY-MM-DD 格式的日期，而不是「{text[:20]}」") from None


def _code(text: str, path: Path, line: int) -> str:
    code = text.strip()
    try:
        if len(code) == 9 and code.isdigit():
            parse_grid_code(code + "001")
        else:
            parse_grid_code(code)
    except DomainError:
        raise _invalid(path, line, f"代码「{code[:20]}」不是 9 位乡镇代码或 12 位村（社区）代码") from None
    return code


def parse_places(text: str, path: Path) -> PlaceNames:
    """The places table in ``text`` (the contents of ``path``, named in errors)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header[:len(HEADER)]) != HEADER:
        raise _invalid(path, 1, f"表头应为 {','.join(HEADER)}")
    names = []
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        row = (row + [""] * len(HEADER))[:len(HEADER)]
        code = _code(row[0], path, line)
        name = row[1].strip()
        if not name:
            raise _invalid(path, line, "名称为空")
        valid_from = _day(row[2], path, line, "valid_from")
        valid_to = _day(row[3], path, line, "valid_to")
        if valid_from and valid_to and valid_to < valid_from:
            raise _invalid(path, line, f"有效期止 {valid_to} 早于有效期起 {valid_from}")
        names.append(PlaceName(code, name, valid_from, valid_to, row[4].strip()))
    try:
        return PlaceNames(names, source=str(path))
    except DomainError as e:
        raise _invalid(path, 0, e.message) from None


def load_places(path: str | Path | None = None) -> PlaceNames:
    """The places table at ``path`` (default: the packaged sample)."""
    path = Path(path) if path else SAMPLE_PLACES
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DomainError("PLACES_FILE_INVALID", f"无法读取地名表 {path}：{e.__class__.__name__}（places file unreadable）",
                          file=str(path)) from None
    return parse_places(text, path)


__all__ = ["HEADER", "SAMPLE_PLACES", "load_places", "parse_places"]
