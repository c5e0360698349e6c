"""The font the PNG charts are drawn with (图表字体): a subset of Noto Sans CJK SC Regular (SIL OFL 1.1).

It ships with the package so the charts read in Chinese where no font is installed; ``README.md``
beside it says where it comes from and how ``subset.py`` made it, ``OFL.txt`` is its licence.
"""
from __future__ import annotations

from pathlib import Path

#: Noto Sans CJK SC Regular 2.004, subset to ASCII, punctuation, GB2312's hanzi and the project's own texts.
CHART_FONT = Path(__file__).resolve().parent / "NotoSansCJKsc-Regular.subset.otf"

__all__ = ["CHART_FONT"]
