"""Make infra/fonts/NotoSansCJKsc-Regular.subset.otf: the CJK font the PNG charts are drawn with.

The charts must read in Chinese on a machine with no fonts installed (the embedded default), so a
font ships with the package. The whole Noto Sans CJK SC is 16 MB; the charts need far less: ASCII and
Latin-1, common punctuation and symbols, CJK punctuation, fullwidth forms, all 6,763 hanzi of GB2312
(levels 1 and 2), and every character of the message catalogue (entrypoints/locale/*.toml) and of the
packaged places tables (infra/places/*.csv), Han or not. A label with a character outside the font is
drawn as its place code, never as a box (entrypoints/chart.py).

Developer tool, not run at install or start: it needs fontTools (``pip install fonttools``) and Debian's
``fonts-noto-cjk`` (the source file below). Run again after adding a place name or a chart text with a
character outside GB2312 (tests/unit/test_chart_png.py says which)::

    .venv/bin/python infra/fonts/subset.py
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")  # Debian fonts-noto-cjk 1:20220127
TARGET = HERE / "NotoSansCJKsc-Regular.subset.otf"
#: The face of the collection that is Simplified Chinese (the collection holds JP, KR, SC, TC, HK and Mono).
FACE = "Noto Sans CJK SC"

#: Code point ranges kept whole: ASCII, Latin-1, general punctuation, letterlike symbols, number forms, arrows,
#: mathematical operators, enclosed alphanumerics (①), box drawing, geometric shapes (■▲), misc symbols,
#: dingbats (✓), CJK symbols and punctuation, fullwidth and halfwidth forms.
RANGES = [(0x20, 0x7E), (0xA0, 0xFF), (0x2000, 0x206F), (0x2100, 0x218F), (0x2190, 0x21FF), (0x2200, 0x22FF),
          (0x2460, 0x24FF), (0x2500, 0x257F), (0x25A0, 0x25FF), (0x2600, 0x26FF), (0x2700, 0x27BF),
          (0x3000, 0x303F), (0xFF00, 0xFFEF)]


def gb2312_hanzi(levels: tuple[int, ...] = (1, 2)) -> list[str]:
    """GB2312's hanzi: level 1 is rows 16-55 (3,755, by pinyin), level 2 rows 56-87 (3,008, by radical)."""
    rows = {1: range(0xB0, 0xD8), 2: range(0xD8, 0xF8)}
    out = []
    for level in levels:
        for row in rows[level]:
            for col in range(0xA1, 0xFF):
                try:
                    out.append(bytes((row, col)).decode("gb2312"))
                except UnicodeDecodeError:
                    pass  # the five empty cells at the end of row 55
    return out


def project_characters() -> set[str]:
    """Every non-ASCII character of the catalogue and of the packaged places tables."""
    files = sorted((ROOT / "entrypoints" / "locale").glob("*.toml")) + sorted((ROOT / "infra" / "places").glob("*.csv"))
    return {ch for f in files for ch in f.read_text(encoding="utf-8") if ord(ch) > 0x7E and not ch.isspace()}


def face_number(path: Path) -> int:
    """The index of the Simplified Chinese face in the collection (2 in Noto Sans CJK 2.004), looked up by name."""
    for i, font in enumerate(TTCollection(str(path), lazy=True).fonts):
        if font["name"].getDebugName(4) == FACE:
            return i
    raise SystemExit(f"{path} has no face named {FACE!r}")


def main(levels: tuple[int, ...] = (1, 2)) -> int:
    number = face_number(SOURCE)
    codepoints = {cp for lo, hi in RANGES for cp in range(lo, hi + 1)}
    codepoints |= {ord(ch) for ch in gb2312_hanzi(levels)} | {ord(ch) for ch in project_characters()}
    options = subset.Options()
    options.font_number = number
    options.layout_features = []          # plain horizontal text: no GSUB/GPOS features needed
    options.drop_tables += ["vhea", "vmtx", "VORG", "BASE", "GSUB", "GPOS", "GDEF"]  # no vertical text
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14]  # keep the copyright and licence records
    options.notdef_outline = False        # .notdef stays empty: a missing character draws nothing, not a box
    options.hinting = True
    font = subset.load_font(str(SOURCE), options)
    font.recalcTimestamp = False  # the same input makes the same bytes (the source's own date is kept)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(codepoints))
    subsetter.subset(font)
    subset.save_font(font, str(TARGET), options)
    covered = len(font.getBestCmap())
    print(f"{TARGET.relative_to(ROOT)}: face {number} of {SOURCE}, {covered:,} characters, "
          f"{TARGET.stat().st_size:,} bytes, sha256 {hashlib.sha256(TARGET.read_bytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main((1,) if "--level1" in sys.argv[1:] else (1, 2)))
