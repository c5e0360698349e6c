"""The county dashboard's charts as hand-written SVG (no plotting library; tested in tests/unit).

* :func:`coverage_svg` -- one row per township or grid, ranked: a dot for the coverage rate,
  a square for the subsidised coverage rate, a line from the dot to the target line (the gap),
  the rate and the gap written beside it. The x axis spans the data and the targets widened to
  whole 5 % steps (:func:`entrypoints.chart.axis_range`), not 0–100 %, so a spread of
  87–93 % is readable; dots rather than bars, because a bar on an axis not starting at 0 would
  overstate the differences.
* :func:`collection_svg` -- cumulative share of the assessed contributions collected per week
  of the concentrated period, this year (solid) against last year (dashed), 0–100 %.

Texts come from :mod:`entrypoints.messages` (Chinese first); every text is escaped.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

from entrypoints.chart import axis_range
from entrypoints.messages import text
from projections.dashboard import percent_text

WIDTH = 720
LABEL_W, RIGHT_W, TOP, ROW_H, BOTTOM = 150, 150, 66, 30, 34  # TOP: the target's label clears the legend
BLUE, ORANGE, RED, GREY, INK, GRID = "#0b5cad", "#c2410c", "#c81e1e", "#9aa3ad", "#1f2933", "#e4e7eb"


def _pct_axis(bp: int) -> str:
    return f"{bp // 100}%" if bp % 100 == 0 else percent_text(bp) or ""


def coverage_svg(rows: Sequence[Mapping[str, Any]], *, target_bp: int | None, subsidised_target_bp: int | None,
                 title: str, lang: str = "zh", width: int = WIDTH) -> str:
    """Ranked rows (``label``, ``coverage_bp``, ``subsidised_coverage_bp``, ``gap_bp``) against the targets.

    ``width``: the pixels the chart is shown at (the page asks for its own width, so the text is drawn at
    its real size on a phone); below 560 the gap is left out of the value beside each row (the red line
    and the table show it) to leave the plot room."""
    narrow = width < 560
    label_w, right_w = (106, 62) if narrow else (LABEL_W, RIGHT_W)
    # The axis spans the coverage rates and the targets. A subsidised rate below it (a township with one subsidised
    # person, not covered: 0 %) would stretch it to 0 % and squeeze every other difference: it is drawn at the left
    # edge as an arrow with its value instead (the table beside the chart gives every figure).
    values = [r["coverage_bp"] for r in rows if r.get("coverage_bp") is not None]
    values += [t for t in (target_bp, subsidised_target_bp) if t is not None]
    lo, hi = axis_range(values)
    plot_w = width - label_w - right_w
    height = TOP + ROW_H * max(1, len(rows)) + BOTTOM

    def x(bp: int) -> float:
        return round(label_w + (max(lo, min(hi, bp)) - lo) * plot_w / (hi - lo), 1)

    step = 500 if hi - lo <= 3000 else 1000 if hi - lo <= 6000 else 2000
    bottom = height - BOTTOM
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-label="{escape(title)}" class="chart coverage-chart" '
           f'font-family="sans-serif" font-size="13">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="8" y="18" font-size="15" font-weight="bold" fill="{INK}">{escape(title)}</text>',
           f'<circle cx="14" cy="34" r="5" fill="{BLUE}"/><text x="24" y="38" fill="{INK}">'
           f'{escape(text("chart_overall", lang))}</text>',
           f'<rect x="90" y="29" width="10" height="10" fill="{ORANGE}"/><text x="106" y="38" fill="{INK}">'
           f'{escape(text("chart_subsidised", lang))}</text>']
    for t in range(lo, hi + 1, step):
        out.append(f'<line class="tick" x1="{x(t)}" y1="{TOP - 6}" x2="{x(t)}" y2="{bottom}" stroke="{GRID}"/>'
                   f'<text class="tick-label" x="{x(t)}" y="{bottom + 16}" text-anchor="middle" fill="{INK}">'
                   f'{_pct_axis(t)}</text>')
    out.append(f'<line class="axis" x1="{label_w}" y1="{bottom}" x2="{label_w + plot_w}" y2="{bottom}" stroke="{INK}"/>')
    if subsidised_target_bp is not None and subsidised_target_bp != target_bp:
        out.append(f'<line class="target subsidised-target" x1="{x(subsidised_target_bp)}" y1="{TOP - 6}" '
                   f'x2="{x(subsidised_target_bp)}" y2="{bottom}" stroke="{ORANGE}" stroke-dasharray="3 3"/>'
                   f'<text x="{x(subsidised_target_bp)}" y="{bottom + 30}" text-anchor="end" fill="{ORANGE}" '
                   f'font-size="11">{escape(text("dash_subsidised_target", lang, percent=percent_text(subsidised_target_bp)))}</text>')
    if target_bp is not None:
        out.append(f'<line class="target coverage-target" x1="{x(target_bp)}" y1="{TOP - 6}" x2="{x(target_bp)}" '
                   f'y2="{bottom}" stroke="{RED}" stroke-width="2" stroke-dasharray="6 3"/>'
                   f'<text class="target-label" x="{x(target_bp)}" y="{TOP - 10}" text-anchor="middle" fill="{RED}" '
                   f'font-weight="bold">{escape(text("dash_target", lang, percent=percent_text(target_bp)))}</text>')
    for i, r in enumerate(rows):
        cy = TOP + i * ROW_H + ROW_H // 2
        label = str(r.get("label") or r.get("code"))
        out.append(f'<g class="row" data-code="{escape(str(r.get("code")))}">'
                   f'<text class="row-label" x="{label_w - 8}" y="{cy + 4}" text-anchor="end" fill="{INK}">'
                   f'{escape(_short(label))}</text>')
        rate, sub = r.get("coverage_bp"), r.get("subsidised_coverage_bp")
        if rate is not None and target_bp is not None and rate < target_bp:
            out.append(f'<line class="gap" x1="{x(rate)}" y1="{cy}" x2="{x(target_bp)}" y2="{cy}" stroke="{RED}" '
                       f'stroke-opacity="0.45" stroke-width="3"/>')
        if sub is not None and sub < lo:
            # Its value beside the arrow, or above the row past the coverage dot when the dot sits there.
            tx, ty = label_w + 12, cy + 4
            if rate is not None and x(rate) - 8 < tx + 46:
                tx, ty = x(rate) + 8, cy - 8
            out.append(f'<path class="subsidised-dot below-axis" d="M{label_w + 1} {cy} l9 -6 v12 z" fill="{ORANGE}">'
                       f'<title>{escape(label)} {percent_text(sub)}</title></path>'
                       f'<text class="below-axis-label" x="{tx}" y="{ty}" fill="{ORANGE}" '
                       f'font-size="11">{percent_text(sub)}</text>')
        elif sub is not None:
            out.append(f'<rect class="subsidised-dot" x="{x(sub) - 5}" y="{cy - 5}" width="10" height="10" '
                       f'fill="{ORANGE}"><title>{escape(label)} {percent_text(sub)}</title></rect>')
        if rate is not None:
            out.append(f'<circle class="coverage-dot" cx="{x(rate)}" cy="{cy}" r="6" fill="{BLUE}">'
                       f'<title>{escape(label)} {percent_text(rate)}</title></circle>')
            note = percent_text(rate) or ""
            gap = r.get("gap_bp")
            if gap is not None and gap > 0 and not narrow:
                note += " " + text("dash_gap", lang, points=f"{gap // 100}.{gap % 100:02d}")
            out.append(f'<text class="value" x="{label_w + plot_w + 10}" y="{cy + 4}" fill="{INK}" font-size="12">'
                       f'{escape(note)}</text>')
        out.append("</g>")
    if not rows:
        out.append(f'<text x="{label_w + 8}" y="{TOP + 18}" fill="{GREY}">{escape(text("dash_no_data", lang))}</text>')
    out.append("</svg>")
    return "".join(out)


def _short(label: str) -> str:
    """A place's label without the county in front (the chart is of one county), at most 12 characters."""
    parts = label.split(" ", 1)
    label = parts[1] if len(parts) == 2 and parts[0].endswith(("区", "县", "市")) else label
    return label if len(label) <= 12 else label[:11] + "…"


def collection_svg(weeks: Sequence[Mapping[str, Any]], *, year: int, title: str, lang: str = "zh",
                   width: int = WIDTH) -> str:
    """Cumulative collected / assessed per week, this year (``collected_bp``) against last year (``last_collected_bp``),
    ``width`` pixels wide (week labels thinned out to fit)."""
    height, left, right, top, bottom = 300, 48, 16, 56, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(weeks))

    def x(i: int) -> float:
        return round(left + (i + 0.5) * plot_w / n, 1)

    def y(bp: int) -> float:
        return round(top + plot_h - min(10000, max(0, bp)) * plot_h / 10000, 1)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-label="{escape(title)}" class="chart collection-chart" '
           f'font-family="sans-serif" font-size="13">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="8" y="18" font-size="15" font-weight="bold" fill="{INK}">{escape(title)}</text>',
           f'<line x1="8" y1="34" x2="32" y2="34" stroke="{BLUE}" stroke-width="3"/><text x="38" y="38" '
           f'fill="{INK}">{escape(text("dash_this_year", lang, year=year))}</text>',
           f'<line x1="130" y1="34" x2="154" y2="34" stroke="{GREY}" stroke-width="3" stroke-dasharray="5 3"/>'
           f'<text x="160" y="38" fill="{INK}">{escape(text("dash_this_year", lang, year=year - 1))}</text>']
    for t in range(0, 10001, 2500):
        out.append(f'<line class="tick" x1="{left}" y1="{y(t)}" x2="{left + plot_w}" y2="{y(t)}" stroke="{GRID}"/>'
                   f'<text class="tick-label" x="{left - 6}" y="{y(t) + 4}" text-anchor="end" fill="{INK}">'
                   f'{t // 100}%</text>')
    out.append(f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
               f'stroke="{INK}"/><line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" '
               f'stroke="{INK}"/>')
    fit = max(1, plot_w // 56)  # week labels that fit side by side
    every = -(-n // fit)
    for i, w in enumerate(weeks):
        if i % every == 0:
            out.append(f'<text class="week-label" x="{x(i)}" y="{top + plot_h + 16}" text-anchor="middle" '
                       f'fill="{INK}" font-size="11">{escape(text("dash_week", lang, n=w["week"]))}</text>')
    for key, color, dash, cls in (("last_collected_bp", GREY, ' stroke-dasharray="5 3"', "last-year"),
                                  ("collected_bp", BLUE, "", "this-year")):
        points = [(x(i), y(w[key])) for i, w in enumerate(weeks) if w.get(key) is not None]
        if not points:
            continue
        out.append(f'<polyline class="{cls}" fill="none" stroke="{color}" stroke-width="3"{dash} '
                   f'points="{" ".join(f"{px},{py}" for px, py in points)}"/>')
        last = [w for w in weeks if w.get(key) is not None][-1]
        px, py = points[-1]
        out.append(f'<text class="end-label {cls}" x="{min(px, left + plot_w - 4)}" y="{py - 8}" text-anchor="end" '
                   f'fill="{color}" font-weight="bold">{percent_text(last[key])}</text>')
    if not weeks:
        out.append(f'<text x="{left + 8}" y="{top + 18}" fill="{GREY}">{escape(text("dash_no_data", lang))}</text>')
    out.append("</svg>")
    return "".join(out)


__all__ = ["collection_svg", "coverage_svg"]
