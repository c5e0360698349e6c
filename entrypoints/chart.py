"""The coverage chart per township (or grid): a PNG for reports, an SVG for the demo.

One chart, two users: ``ledger demo --chart coverage.png`` and ``GET /regions/{code}/dashboard.png``.
Coverage (blue) and subsidised people's coverage (orange) per place, side by side, each bar with its
rate written on it (rounded half up, ``86.75%``), the place's name and code tail under the pair, the
policy table's coverage target (``[resident.targets]``) as a dashed red line, a title, a legend and axis
titles, in Chinese, or English when asked. The y axis spans the data and the target widened to whole
5 % steps (:func:`axis_range`), not 0–100 %, so differences of a few points show.

The PNG is drawn with Pillow and the packaged font (:data:`infra.fonts.CHART_FONT`, a subset of Noto
Sans CJK SC): no system font is needed. A place name with a character outside that font is drawn as the
place's code instead (never as boxes); so is a name holding digits (the places table's stand-in for a
code it has no name for, ``镇 610902105``).

PNG layout, in pixels: :data:`HEIGHT` high; :func:`png_width` wide (:data:`SLOT` per place, at least
:data:`MIN_WIDTH`, more if the legend needs it); the plot is :data:`PLOT_H` high from ``y = TOP``; a rate
``bp`` sits at row :func:`y_of`; the target line covers rows ``y_of(target) - 1`` and ``y_of(target)``.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw, ImageFont

from entrypoints import catalogue
from entrypoints.messages import text
from infra.fonts import CHART_FONT
from projections.dashboard import percent_text, rate_bp

OVERALL, SUBSIDISED, TARGET = (59, 125, 216), (230, 140, 40), (200, 30, 30)
GRID, AXIS, INK, MUTED, WHITE = (225, 225, 225), (90, 90, 90), (30, 30, 30), (110, 110, 110), (255, 255, 255)

# ----------------------------------------------------------------------------------------------- shared geometry


def axis_range(values: Sequence[int]) -> tuple[int, int]:
    """The y axis in basis points: the data's range widened to whole 5 % steps (0–100 % at most)."""
    if not values:
        return 0, 10000
    lo = max(0, (min(values) - 100) // 500 * 500)
    hi = min(10000, -(-(max(values) + 100) // 500) * 500)
    return (lo, hi) if hi > lo else (max(0, hi - 500), hi)


def ticks(lo: int, hi: int) -> list[int]:
    """The labelled rates of an axis from ``lo`` to ``hi``: every 5 %, 10 % or 20 % (as the span allows), on
    whole multiples of the step (45-100 % is labelled 50 %, 60 % ... 100 %, not 45 %, 55 % ... 95 %)."""
    step = 500 if hi - lo <= 3000 else 1000 if hi - lo <= 6000 else 2000
    return list(range(-(-lo // step) * step, hi + 1, step))


def _series(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str, int | None, int | None]]:
    """(code, name, coverage bp, subsidised coverage bp) per place, rates rounded half up."""
    return [(str(r["township"]), str(r.get("name") or ""), rate_bp(r["covered"], r["residents"]),
             rate_bp(r["subsidised_covered"], r["subsidised"])) for r in rows]


def _axis(series: Sequence[tuple[str, str, int | None, int | None]], target_bp: int | None) -> tuple[int, int]:
    values = [v for _, _, a, b in series for v in (a, b) if v is not None]
    if target_bp is not None:
        values.append(target_bp)
    return axis_range(values)


def _pct(bp: int) -> str:
    """A tick's label: ``85%``, or ``87.50%`` off the whole percent."""
    return f"{bp // 100}%" if bp % 100 == 0 else percent_text(bp) or ""


def _code_tail(code: str) -> str:
    return code[-3:]


# ----------------------------------------------------------------------------------------------- PNG

SLOT, MIN_WIDTH, MAX_WIDTH, HEIGHT = 56, 640, 8000, 450
LEFT, RIGHT, TOP, PLOT_H = 76, 24, 84, 280
BAR_W, MAX_LABEL = 24, 24
TITLE_PX, LEGEND_PX, TICK_PX, NAME_PX, CODE_PX, VALUE_PX = 18, 13, 12, 13, 11, 11


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    # Basic layout (FreeType alone): Chinese and English need no shaping, the pixels are the same whether or not
    # Pillow found libraqm, and a character outside the font is its empty .notdef (HarfBuzz would draw a dotted
    # circle for a lone combining mark).
    return ImageFont.truetype(str(CHART_FONT), size, layout_engine=ImageFont.Layout.BASIC)


@cache
def has_glyph(ch: str) -> bool:
    """Does the chart font draw ``ch``? Its ``.notdef`` is empty (infra/fonts/subset.py), so a character it
    lacks has an empty mask. Of the blank characters only the space and the ideographic space count (a line
    break would break the label; a tab or a zero-width character is no name)."""
    return ch in " \u3000" or _font(NAME_PX).getmask(ch).getbbox() is not None


def drawable(s: str) -> bool:
    return all(has_glyph(ch) for ch in s)


def short_name(name: str) -> str:
    """The place as its bar is labelled: the village of ``汉滨区 关庙镇 · 东坝村``, the township of
    ``汉滨区 关庙镇`` (the chart is of one county, or of one township's grids)."""
    name = name.split(" · ")[-1].strip()
    parts = name.split(" ", 1)
    return parts[1].strip() if len(parts) == 2 and parts[0].endswith(("区", "县", "市")) else name


def bar_label(code: str, name: str) -> tuple[str, bool]:
    """The label under a place's bars and whether it is its name (else its code's tail): a missing name, one
    holding digits (a stand-in for a code) or a character the font lacks gives the code."""
    label = short_name(name)[:MAX_LABEL]  # two lines of a slot hold fewer; the rest would be cut anyway
    if label and not any(ch.isascii() and ch.isdigit() for ch in label) and drawable(label):
        return label, True
    return _code_tail(code), False


def _width_of(s: str, size: int) -> int:
    return int(_font(size).getlength(s) + 0.5)


def _lines(label: str, width: int) -> list[str]:
    """``label`` on one line, or on two within ``width`` pixels (as many characters on the first as fit, the
    rest on the second, cut with … when they do not fit either)."""
    if _width_of(label, NAME_PX) <= width:
        return [label]
    cut = max((k for k in range(1, len(label)) if _width_of(label[:k], NAME_PX) <= width), default=1)
    first, second = label[:cut], label[cut:]
    if _width_of(second, NAME_PX) > width:
        while len(second) > 1 and _width_of(second + "…", NAME_PX) > width:
            second = second[:-1]
        second += "…"
    return [first, second]


def png_width(n: int, lang: str = "zh", target_bp: int | None = None) -> int:
    """The PNG's width for ``n`` places: :data:`SLOT` each beside the margins, at least :data:`MIN_WIDTH` and the
    legend's width, at most :data:`MAX_WIDTH` (past 141 places the bars get narrower, and past ~250 they lose
    their rates and names: a chart of that many places is read from the table, the PNG stays a few MB)."""
    return max(MIN_WIDTH, min(MAX_WIDTH, LEFT + RIGHT + SLOT * max(1, n)), _legend_width(lang, target_bp) + 24)


def y_of(bp: int, lo: int, hi: int) -> int:
    """The pixel row of rate ``bp`` on an axis from ``lo`` (row ``TOP + PLOT_H``) to ``hi`` (row ``TOP``)."""
    return TOP + PLOT_H - (max(lo, min(hi, bp)) - lo) * PLOT_H // (hi - lo)


def _legend(lang: str, target_bp: int | None) -> list[tuple[str, str]]:
    items = [("overall", catalogue.text("chart", "legend_overall", lang)),
             ("subsidised", catalogue.text("chart", "legend_subsidised", lang))]
    if target_bp is not None:
        items.append(("target", catalogue.text("chart", "legend_target", lang, percent=percent_text(target_bp))))
    return items


def _legend_width(lang: str, target_bp: int | None) -> int:
    return sum(30 + _width_of(label, LEGEND_PX) + 18 for _, label in _legend(lang, target_bp))


def _rotated(img: Image.Image, xy: tuple[int, int], s: str, size: int, color: tuple[int, int, int]) -> None:
    """``s`` written upwards (rotated 90°) with its bottom left corner at ``xy``."""
    font = _font(size)
    left, top, right, bottom = font.getbbox(s)
    mask = Image.new("L", (right, bottom))
    ImageDraw.Draw(mask).text((0, 0), s, font=font, fill=255)
    mask = mask.rotate(90, expand=True)
    img.paste(color, (xy[0], xy[1] - mask.height), mask)


def _dashed(draw: ImageDraw.ImageDraw, x0: int, x1: int, y: int, color: tuple[int, int, int]) -> None:
    """A horizontal dashed line 2 px thick (rows ``y - 1`` and ``y``): 8 px dashes, 4 px gaps."""
    for x in range(x0, x1, 12):
        draw.rectangle((x, y - 1, min(x + 7, x1 - 1), y), fill=color)


def coverage_png(rows: Sequence[dict[str, Any]], *, year: int, lang: str = "zh", target_bp: int | None = None,
                 place: str | None = None, as_of: Any = None, unit: str = "township") -> bytes:
    """The chart as PNG bytes. ``rows``: ``township`` (the place's code), ``name``, ``residents``, ``covered``,
    ``subsidised``, ``subsidised_covered``, in the order drawn; ``place``: the county (or township) named in the
    title (default: its code); ``as_of``: the day the figures are of; ``unit``: ``township`` or ``grid`` (what
    the bars are). Wider than :func:`png_width` only when the title needs it."""
    series = _series(rows)
    lo, hi = _axis(series, target_bp)
    # the title names the county (or township); a name the font cannot draw gives its code, as under the bars
    code = series[0][0][:9 if unit == "grid" else 6] if series else ""
    place = place if place and drawable(place) else code
    title = catalogue.text("chart", f"title_{unit}", lang, place=place, year=year).strip()
    dated = catalogue.text("chart", "as_of", lang, as_of=as_of) if as_of is not None else ""
    width = max(png_width(len(series), lang, target_bp),
                min(MAX_WIDTH, _width_of(title, TITLE_PX) + _width_of(dated, LEGEND_PX) + 36))
    img = Image.new("RGB", (width, HEIGHT), WHITE)
    draw = ImageDraw.Draw(img)
    right, bottom = width - RIGHT, TOP + PLOT_H

    def y(bp: int) -> int:
        return y_of(bp, lo, hi)

    # title, as-of date, legend
    draw.text((12, 10), title, font=_font(TITLE_PX), fill=INK)
    if dated:
        draw.text((12 + _width_of(title, TITLE_PX) + 12, 14), dated, font=_font(LEGEND_PX), fill=MUTED)
    x = 12
    for kind, label in _legend(lang, target_bp):
        if kind == "target":
            _dashed(draw, x, x + 24, 49, TARGET)
        else:
            draw.rectangle((x + 5, 42, x + 18, 55), fill=OVERALL if kind == "overall" else SUBSIDISED)
        draw.text((x + 30, 48), label, font=_font(LEGEND_PX), fill=INK, anchor="lm")
        x += 30 + _width_of(label, LEGEND_PX) + 18

    # grid lines and ticks, axes and their titles
    for t in ticks(lo, hi):
        draw.rectangle((LEFT, y(t), right - 1, y(t)), fill=GRID)
        draw.text((LEFT - 6, y(t)), _pct(t), font=_font(TICK_PX), fill=INK, anchor="rm")
    draw.rectangle((LEFT - 1, TOP, LEFT - 1, bottom), fill=AXIS)
    draw.rectangle((LEFT - 1, bottom, right - 1, bottom), fill=AXIS)
    axis_y = catalogue.text("chart", "axis_y", lang)
    if axis_y.isascii():  # English reads upwards; Chinese stands upright, one character under the other
        _rotated(img, (8, TOP + PLOT_H // 2 + _width_of(axis_y, LEGEND_PX) // 2), axis_y, LEGEND_PX, INK)
    else:
        for k, ch in enumerate(axis_y):
            draw.text((20, TOP + PLOT_H // 2 + (k - len(axis_y) / 2) * (LEGEND_PX + 2)), ch, font=_font(LEGEND_PX),
                      fill=INK, anchor="mt")
    axis_x = catalogue.text("chart", f"axis_x_{unit}", lang)
    draw.text(((LEFT + right) // 2, HEIGHT - 10), axis_x, font=_font(LEGEND_PX), fill=INK, anchor="ms")

    # the bars; the target line over them; their rates over it; the places under them
    slot = (right - LEFT) / max(1, len(series))
    centres = [round(LEFT + (i + 0.5) * slot) for i in range(len(series))]
    bar_w = max(1, min(BAR_W, int(slot - 8) // 2))
    bars = [(centre - bar_w - 1 + j * (bar_w + 2), bp, color, on_bar)
            for centre, (_, _, overall, subsidised) in zip(centres, series)
            for j, (bp, color, on_bar) in enumerate(((overall, OVERALL, WHITE), (subsidised, SUBSIDISED, INK)))]
    for x0, bp, color, _ in bars:
        if bp is not None and bottom - y(bp) > 0:
            draw.rectangle((x0, y(bp), x0 + bar_w - 1, bottom - 1), fill=color)
    if target_bp is not None:
        _dashed(draw, LEFT, right, y(target_bp), TARGET)
    for x0, bp, _, on_bar in bars if bar_w >= VALUE_PX + 2 else ():
        if bp is None:  # nobody to count (no subsidised people living there): said, so it is not read as 0 %
            _rotated(img, (x0 + (bar_w - 14) // 2, bottom - 3), catalogue.text("chart", "nobody", lang), VALUE_PX,
                     MUTED)
            continue
        top = y(bp)
        value = percent_text(bp) or ""
        length = _width_of(value, VALUE_PX) + 2
        inside = bottom - top >= length + 8  # on the bar's top when it is tall enough, else above it
        _rotated(img, (x0 + (bar_w - 14) // 2, top + length + 4 if inside else top - 3), value, VALUE_PX,
                 on_bar if inside else INK)
    for centre, (code, name, _, _) in zip(centres, series) if slot >= 28 else ():
        label, is_name = bar_label(code, name)
        lines = _lines(label, int(slot) - 4) if is_name else [label]
        for k, line in enumerate(lines):
            draw.text((centre, bottom + 6 + 16 * k), line, font=_font(NAME_PX), fill=INK, anchor="mt")
        if is_name:
            draw.text((centre, bottom + 6 + 16 * len(lines) + 2), _code_tail(code), font=_font(CODE_PX),
                      fill=MUTED, anchor="mt")
    if not series:
        draw.text(((LEFT + right) // 2, TOP + PLOT_H // 2), catalogue.text("chart", "no_data", lang),
                  font=_font(LEGEND_PX), fill=MUTED, anchor="mm")
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=6)
    return out.getvalue()


# ----------------------------------------------------------------------------------------------- SVG

WIDTH_PER_TOWNSHIP, SVG_HEIGHT, SVG_LEFT, SVG_RIGHT, SVG_TOP, SVG_BOTTOM = 52, 360, 64, 20, 40, 50


def coverage_svg(rows: Sequence[dict[str, Any]], year: int, lang: str = "zh", target_bp: int | None = None) -> bytes:
    series = _series(rows)
    lo, hi = _axis(series, target_bp)
    width = SVG_LEFT + SVG_RIGHT + WIDTH_PER_TOWNSHIP * max(1, len(series))
    plot_h = SVG_HEIGHT - SVG_TOP - SVG_BOTTOM
    base = SVG_HEIGHT - SVG_BOTTOM

    def y(bp: int) -> int:
        return SVG_TOP + plot_h - (max(lo, min(hi, bp)) - lo) * plot_h // (hi - lo)

    rgb: Callable[..., str] = "rgb({},{},{})".format
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{SVG_HEIGHT}" font-family="sans-serif" '
             f'font-size="11"><rect width="100%" height="100%" fill="white"/>',
             f'<text x="{SVG_LEFT}" y="16" font-size="14">{escape(text("chart_title", lang, year=year))}</text>',
             f'<rect x="{SVG_LEFT}" y="24" width="10" height="10" fill="{rgb(*OVERALL)}"/>'
             f'<text x="{SVG_LEFT + 14}" y="33">{escape(text("chart_overall", lang))}</text>'
             f'<rect x="{SVG_LEFT + 90}" y="24" width="10" height="10" fill="{rgb(*SUBSIDISED)}"/>'
             f'<text x="{SVG_LEFT + 104}" y="33">{escape(text("chart_subsidised", lang))}</text>']
    for t in ticks(lo, hi):
        parts.append(f'<line x1="{SVG_LEFT}" y1="{y(t)}" x2="{width - SVG_RIGHT}" y2="{y(t)}" stroke="{rgb(*GRID)}"/>'
                     f'<text x="{SVG_LEFT - 6}" y="{y(t) + 4}" text-anchor="end">{_pct(t)}</text>')
    parts.append(f'<line x1="{SVG_LEFT}" y1="{SVG_TOP}" x2="{SVG_LEFT}" y2="{base}" stroke="{rgb(*AXIS)}"/>'
                 f'<line x1="{SVG_LEFT}" y1="{base}" x2="{width - SVG_RIGHT}" y2="{base}" stroke="{rgb(*AXIS)}"/>')
    bar = (WIDTH_PER_TOWNSHIP - 12) // 2
    for i, (code, name, overall, subsidised) in enumerate(series):
        x = SVG_LEFT + i * WIDTH_PER_TOWNSHIP + 6
        for j, (bp, color) in enumerate(((overall, OVERALL), (subsidised, SUBSIDISED))):
            if bp is not None:
                parts.append(f'<rect x="{x + j * bar}" y="{y(bp)}" width="{bar - 1}" height="{base - y(bp)}" '
                             f'fill="{rgb(*color)}"><title>{escape(name)} {_pct(bp)}</title></rect>')
        parts.append(f'<text x="{x + bar}" y="{base + 14}" text-anchor="middle">{escape(name or _code_tail(code))}'
                     f'</text><text x="{x + bar}" y="{base + 28}" text-anchor="middle" fill="gray">'
                     f'{_code_tail(code)}</text>')
    if target_bp is not None:
        parts.append(f'<line x1="{SVG_LEFT}" y1="{y(target_bp)}" x2="{width - SVG_RIGHT}" y2="{y(target_bp)}" '
                     f'stroke="{rgb(*TARGET)}" stroke-dasharray="6 3"/>')
    parts.append("</svg>")
    return "".join(parts).encode("utf-8")


def coverage_chart(rows: Sequence[dict[str, Any]], year: int, *, lang: str = "zh", svg: bool = False,
                   target_bp: int | None = None, place: str | None = None, as_of: Any = None) -> bytes:
    """The demo's chart: SVG when asked, else PNG."""
    if svg:
        return coverage_svg(rows, year, lang, target_bp)
    return coverage_png(rows, year=year, lang=lang, target_bp=target_bp, place=place, as_of=as_of)


__all__ = ["HEIGHT", "MIN_WIDTH", "PLOT_H", "SLOT", "TOP", "axis_range", "bar_label", "ticks", "coverage_chart",
           "coverage_png", "coverage_svg", "drawable", "has_glyph", "png_width", "short_name", "y_of"]
