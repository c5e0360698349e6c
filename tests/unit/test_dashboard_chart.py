"""The dashboard's hand-written SVG charts: axes, target line, labels, readable differences, escaping."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

from entrypoints.http.web.dashboard_chart import collection_svg, coverage_svg
from projections import dashboard as f

NS = {"s": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def classed(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{{{NS['s']}}}{tag}") if cls in (e.get("class") or "").split()]


def townships() -> list[dict]:
    areas = {"610902100": {"residents": 100, "covered": 93, "subsidised": 10, "subsidised_covered": 10},
             "610902101": {"residents": 100, "covered": 87, "subsidised": 10, "subsidised_covered": 9},
             "610902102": {"residents": 100, "covered": 90, "subsidised": 10, "subsidised_covered": 10}}
    rows = f.ranked_areas(areas, 9500, 10000)
    for r in rows:
        r["label"] = f"汉滨区 镇 {r['code']}"
    return rows


def test_coverage_chart_has_axis_ticks_target_line_and_a_row_per_place_in_rank_order():
    root = parse(coverage_svg(townships(), target_bp=9500, subsidised_target_bp=10000, title="2025 年度参保率"))
    ticks = [t.text for t in classed(root, "text", "tick-label")]
    # 87-93 % with a 95 % target and a 100 % subsidised target: the axis starts at 85 %, not 0 %.
    assert ticks[0] == "85%" and ticks[-1] == "100%" and "0%" not in ticks
    assert classed(root, "line", "axis")
    target = classed(root, "line", "coverage-target")
    assert len(target) == 1 and target[0].get("stroke-dasharray")
    assert [t.text for t in classed(root, "text", "target-label")] == ["目标 95.00%"]
    assert classed(root, "line", "subsidised-target")
    rows = classed(root, "g", "row")
    assert [r.get("data-code") for r in rows] == ["610902101", "610902102", "610902100"]
    labels = [t.text for t in classed(root, "text", "row-label")]
    assert labels == ["镇 610902101", "镇 610902102", "镇 610902100"]  # the county is left out
    values = [t.text for t in classed(root, "text", "value")]
    assert values[0] == "87.00% 差 8.00 个百分点" and values[2] == "93.00% 差 2.00 个百分点"


def test_differences_of_a_few_points_are_far_apart_on_the_chart():
    root = parse(coverage_svg(townships(), target_bp=9500, subsidised_target_bp=10000, title="t"))
    xs = {c.find("s:title", NS).text.split()[-1]: float(c.get("cx")) for c in classed(root, "circle", "coverage-dot")}
    target_x = float(classed(root, "line", "coverage-target")[0].get("x1"))
    # 6 points of difference span over a third of the plot (420 px wide), not the 6 % (25 px) a 0-100 % axis gives.
    assert xs["93.00%"] - xs["87.00%"] > 420 / 3
    assert xs["87.00%"] < xs["90.00%"] < xs["93.00%"] < target_x
    gaps = classed(root, "line", "gap")
    assert len(gaps) == 3 and all(float(g.get("x2")) == target_x for g in gaps)


def test_a_place_above_the_target_has_no_gap_line_and_no_shortfall_text():
    rows = f.ranked_areas({"610902100": {"residents": 10, "covered": 10, "subsidised": 0, "subsidised_covered": 0}},
                          9500, 10000)
    root = parse(coverage_svg(rows, target_bp=9500, subsidised_target_bp=10000, title="t"))
    assert not classed(root, "line", "gap")
    assert [t.text for t in classed(root, "text", "value")] == ["100.00%"]
    assert not classed(root, "rect", "subsidised-dot")  # nobody subsidised: no square


def test_a_subsidised_rate_far_below_does_not_stretch_the_axis_to_zero():
    rows = townships()
    rows[0] = {**rows[0], "subsidised_coverage_bp": 0}
    root = parse(coverage_svg(rows, target_bp=9500, subsidised_target_bp=10000, title="t"))
    assert [t.text for t in classed(root, "text", "tick-label")][0] == "85%"
    assert [t.text for t in classed(root, "text", "below-axis-label")] == ["0.00%"]
    assert len(classed(root, "path", "below-axis")) == 1


def test_a_narrow_chart_is_drawn_at_its_width_and_keeps_the_gap_line():
    root = parse(coverage_svg(townships(), target_bp=9500, subsidised_target_bp=10000, title="t", width=360))
    assert root.get("width") == "360" and root.get("viewBox").startswith("0 0 360 ")
    assert [t.text for t in classed(root, "text", "value")][0] == "87.00%"
    assert len(classed(root, "line", "gap")) == 3
    xs = [float(c.get("cx")) for c in classed(root, "circle", "coverage-dot")]
    assert max(xs) <= 360 - 62 and min(xs) >= 106


def test_no_target_no_target_line_and_empty_data_says_so():
    root = parse(coverage_svg([], target_bp=None, subsidised_target_bp=None, title="t"))
    assert not classed(root, "line", "coverage-target")
    assert "暂无数据" in "".join(root.itertext())


def test_labels_are_escaped():
    rows = townships()
    rows[0]["label"] = "<script>alert(1)</script>&"
    svg = coverage_svg(rows, target_bp=9500, subsidised_target_bp=None, title="<b>")
    root = parse(svg)  # still well-formed XML
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert not list(root.iter("{http://www.w3.org/2000/svg}script"))


def test_collection_chart_draws_this_year_against_last_year():
    this = f.weekly_collection([{"due_fen": 100, "paid_steps": [(date(2024, 9, 2), 50), (date(2024, 9, 9), 100)]}],
                               date(2024, 9, 1), date(2024, 9, 14))
    last = f.weekly_collection([{"due_fen": 100, "paid_steps": [(date(2023, 9, 9), 30)]}],
                               date(2023, 9, 1), date(2023, 9, 21))
    root = parse(collection_svg(f.compare_years(this, last), year=2025, title="征收进度"))
    assert [t.text for t in classed(root, "text", "tick-label")] == ["0%", "25%", "50%", "75%", "100%"]
    this_line, last_line = classed(root, "polyline", "this-year"), classed(root, "polyline", "last-year")
    assert len(this_line[0].get("points").split()) == 2 and len(last_line[0].get("points").split()) == 3
    assert last_line[0].get("stroke-dasharray")
    assert [t.text for t in classed(root, "text", "week-label")] == ["第 1 周", "第 2 周", "第 3 周"]
    ends = {e.get("class"): e.text for e in classed(root, "text", "end-label")}
    assert ends == {"end-label this-year": "100.00%", "end-label last-year": "30.00%"}
    text = "".join(root.itertext())
    assert "2025 年度" in text and "2024 年度" in text
    # 100 % is higher on the screen (smaller y) than 30 %.
    ys = {e.get("class"): float(e.get("y")) for e in classed(root, "text", "end-label")}
    assert ys["end-label this-year"] < ys["end-label last-year"]
