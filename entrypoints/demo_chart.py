"""The demo's chart: coverage and subsidised coverage per township, as PNG (pure Python) or SVG.

No plotting library: the PNG is drawn into an RGB pixel buffer and written with ``zlib`` and
``struct`` (signature, IHDR, IDAT, IEND, each chunk with its CRC); its labels are a small
bitmap font of digits, ``.``, ``%`` (the township's code tail under each pair of bars). The SVG
carries the same geometry with the Chinese names and a legend. The y axis spans the data
(rounded out to 5 %), not 0–100 %, so differences of a few points show. The policy tables declare
no coverage target, so no target line is drawn (``target_bp`` draws one when given).
"""
from __future__ import annotations

import struct
import zlib
from typing import Any, Sequence
from xml.sax.saxutils import escape

from entrypoints.messages import text

WIDTH_PER_TOWNSHIP, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 52, 360, 64, 20, 40, 50
OVERALL, SUBSIDISED, TARGET = (59, 125, 216), (230, 140, 40), (200, 30, 30)
GRID, AXIS, INK, WHITE = (225, 225, 225), (90, 90, 90), (30, 30, 30), (255, 255, 255)

#: 3x5 glyphs (rows top to bottom, 3 bits each), drawn at 2x.
GLYPHS = {
    "0": ("111", "101", "101", "101", "111"), "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"), "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"), "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"), "7": ("111", "001", "010", "010", "010"),
    "8": ("111", "101", "111", "101", "111"), "9": ("111", "101", "111", "001", "111"),
    ".": ("000", "000", "000", "000", "010"), "%": ("101", "001", "010", "100", "101"),
    "-": ("000", "000", "111", "000", "000"), " ": ("000", "000", "000", "000", "000"),
}


def rate_bp(part: int, whole: int) -> int | None:
    return None if not whole else (part * 20000 + whole) // (2 * whole)


def axis_range(values: Sequence[int]) -> tuple[int, int]:
    """The y axis in basis points: the data's range widened to whole 5 % steps (0–100 % at most)."""
    if not values:
        return 0, 10000
    lo = max(0, (min(values) - 100) // 500 * 500)
    hi = min(10000, -(-(max(values) + 100) // 500) * 500)
    return (lo, hi) if hi > lo else (max(0, hi - 500), hi)


def _series(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str, int | None, int | None]]:
    return [(str(r["township"]), str(r.get("name") or ""), rate_bp(r["covered"], r["residents"]),
             rate_bp(r["subsidised_covered"], r["subsidised"])) for r in rows]


def _geometry(rows: Sequence[dict[str, Any]], target_bp: int | None) -> dict[str, Any]:
    series = _series(rows)
    values = [v for _, _, a, b in series for v in (a, b) if v is not None]
    if target_bp is not None:
        values.append(target_bp)
    lo, hi = axis_range(values)
    width = LEFT + RIGHT + WIDTH_PER_TOWNSHIP * max(1, len(series))
    plot_h = HEIGHT - TOP - BOTTOM

    def y(bp: int) -> int:
        return TOP + plot_h - (max(lo, min(hi, bp)) - lo) * plot_h // (hi - lo)

    step = 500 if hi - lo <= 3000 else 1000 if hi - lo <= 6000 else 2000
    ticks = list(range(lo, hi + 1, step))
    return {"series": series, "lo": lo, "hi": hi, "width": width, "y": y, "ticks": ticks}


def _pct(bp: int) -> str:
    return f"{bp // 100}%" if bp % 100 == 0 else f"{bp // 100}.{bp % 100:02d}%"


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(WHITE) * width * height)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: tuple[int, int, int]) -> None:
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        row = bytes(color) * (x1 - x0)
        for yy in range(y0, y1):
            start = (yy * self.width + x0) * 3
            self.pixels[start:start + len(row)] = row

    def text(self, x: int, y: int, s: str, color: tuple[int, int, int] = INK, scale: int = 2) -> None:
        for ch in s:
            for r, bits in enumerate(GLYPHS.get(ch, GLYPHS[" "])):
                for c, bit in enumerate(bits):
                    if bit == "1":
                        self.rect(x + c * scale, y + r * scale, x + (c + 1) * scale, y + (r + 1) * scale, color)
            x += 4 * scale

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.pixels[yy * self.width * 3:(yy + 1) * self.width * 3])
                       for yy in range(self.height))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _text_width(s: str, scale: int = 2) -> int:
    return len(s) * 4 * scale


def coverage_png(rows: Sequence[dict[str, Any]], target_bp: int | None = None) -> bytes:
    g = _geometry(rows, target_bp)
    y, c = g["y"], _Canvas(g["width"], HEIGHT)
    for t in g["ticks"]:
        c.rect(LEFT, y(t), g["width"] - RIGHT, y(t) + 1, GRID)
        label = _pct(t)
        c.text(LEFT - 6 - _text_width(label), y(t) - 5, label)
    c.rect(LEFT - 1, TOP, LEFT, HEIGHT - BOTTOM + 1, AXIS)
    c.rect(LEFT - 1, HEIGHT - BOTTOM, g["width"] - RIGHT, HEIGHT - BOTTOM + 1, AXIS)
    bar = (WIDTH_PER_TOWNSHIP - 12) // 2
    for i, (code, _name, overall, subsidised) in enumerate(g["series"]):
        x = LEFT + i * WIDTH_PER_TOWNSHIP + 6
        for j, (bp, color) in enumerate(((overall, OVERALL), (subsidised, SUBSIDISED))):
            if bp is not None:
                c.rect(x + j * bar, y(bp), x + (j + 1) * bar - 1, HEIGHT - BOTTOM, color)
        tail = code[-3:]
        c.text(x + bar - _text_width(tail) // 2, HEIGHT - BOTTOM + 8, tail)
    if target_bp is not None:
        c.rect(LEFT, y(target_bp) - 1, g["width"] - RIGHT, y(target_bp) + 1, TARGET)
    # Legend: two swatches top left (their meaning is in the SVG and the report's chart line).
    c.rect(LEFT, 12, LEFT + 14, 26, OVERALL)
    c.rect(LEFT + 24, 12, LEFT + 38, 26, SUBSIDISED)
    return c.png()


def coverage_svg(rows: Sequence[dict[str, Any]], year: int, lang: str = "zh", target_bp: int | None = None) -> bytes:
    g = _geometry(rows, target_bp)
    y, width = g["y"], g["width"]
    rgb = "rgb({},{},{})".format
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" font-family="sans-serif" '
             f'font-size="11"><rect width="100%" height="100%" fill="white"/>',
             f'<text x="{LEFT}" y="16" font-size="14">{escape(text("chart_title", lang, year=year))}</text>',
             f'<rect x="{LEFT}" y="24" width="10" height="10" fill="{rgb(*OVERALL)}"/>'
             f'<text x="{LEFT + 14}" y="33">{escape(text("chart_overall", lang))}</text>'
             f'<rect x="{LEFT + 90}" y="24" width="10" height="10" fill="{rgb(*SUBSIDISED)}"/>'
             f'<text x="{LEFT + 104}" y="33">{escape(text("chart_subsidised", lang))}</text>']
    for t in g["ticks"]:
        parts.append(f'<line x1="{LEFT}" y1="{y(t)}" x2="{width - RIGHT}" y2="{y(t)}" stroke="{rgb(*GRID)}"/>'
                     f'<text x="{LEFT - 6}" y="{y(t) + 4}" text-anchor="end">{_pct(t)}</text>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="{rgb(*AXIS)}"/>'
                 f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{width - RIGHT}" y2="{HEIGHT - BOTTOM}" '
                 f'stroke="{rgb(*AXIS)}"/>')
    bar = (WIDTH_PER_TOWNSHIP - 12) // 2
    for i, (code, name, overall, subsidised) in enumerate(g["series"]):
        x = LEFT + i * WIDTH_PER_TOWNSHIP + 6
        for j, (bp, color) in enumerate(((overall, OVERALL), (subsidised, SUBSIDISED))):
            if bp is not None:
                parts.append(f'<rect x="{x + j * bar}" y="{y(bp)}" width="{bar - 1}" height="{HEIGHT - BOTTOM - y(bp)}" '
                             f'fill="{rgb(*color)}"><title>{escape(name)} {_pct(bp)}</title></rect>')
        parts.append(f'<text x="{x + bar}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">{escape(name or code[-3:])}'
                     f'</text><text x="{x + bar}" y="{HEIGHT - BOTTOM + 28}" text-anchor="middle" fill="gray">'
                     f'{code[-3:]}</text>')
    if target_bp is not None:
        parts.append(f'<line x1="{LEFT}" y1="{y(target_bp)}" x2="{width - RIGHT}" y2="{y(target_bp)}" '
                     f'stroke="{rgb(*TARGET)}" stroke-dasharray="6 3"/>')
    parts.append("</svg>")
    return "".join(parts).encode("utf-8")


def coverage_chart(rows: Sequence[dict[str, Any]], year: int, *, lang: str = "zh", svg: bool = False,
                   target_bp: int | None = None) -> bytes:
    return coverage_svg(rows, year, lang, target_bp) if svg else coverage_png(rows, target_bp)


__all__ = ["axis_range", "coverage_chart", "coverage_png", "coverage_svg", "rate_bp"]
