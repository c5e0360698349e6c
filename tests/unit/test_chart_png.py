"""The PNG coverage chart (entrypoints/chart.py) as a county official reads it: a real PNG of the stated size, the
policy target as a red line on the right pixel row, Chinese place names really drawn (glyphs of the packaged font,
no boxes), a name the font cannot draw shown as the place's code, English on request without a missing glyph."""
from __future__ import annotations

import csv
import io
from itertools import combinations

import pytest
from fontTools.ttLib import TTFont
from PIL import Image, ImageFont

from entrypoints import catalogue, chart
from entrypoints.chart import HEIGHT, MIN_WIDTH, PLOT_H, SLOT, TOP, bar_label, coverage_png, has_glyph, y_of
from infra.fonts import CHART_FONT
from infra.places import SAMPLE_PLACES

RED, INK_MAX = (200, 30, 30), 100
BOTTOM = TOP + PLOT_H  # the x axis's row
REGENERATE = "not in the chart font: run .venv/bin/python infra/fonts/subset.py and commit the font"


@pytest.fixture(scope="module")
def cmap() -> dict[int, str]:
    return TTFont(str(CHART_FONT), lazy=True).getBestCmap()


def rows(rates, names=None):
    """Places 610902100... with ``(covered %, subsidised covered of 10)`` each, of 100 residents."""
    names = names or [f"镇{i}" for i in range(len(rates))]
    return [{"township": f"610902{100 + i:03d}", "name": name, "residents": 100, "covered": c, "subsidised": 10,
             "subsidised_covered": s} for i, ((c, s), name) in enumerate(zip(rates, names))]


def decode(body: bytes) -> Image.Image:
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(body))
    image.load()
    assert image.format == "PNG" and image.mode == "RGB"
    return image


def count(image: Image.Image, box: tuple[int, int, int, int], test) -> int:
    area = image.crop(box)
    return sum(n for n, colour in area.getcolors(area.width * area.height) if test(colour))


def red_rows(image: Image.Image) -> list[int]:
    """Rows with red across more than a third of the width (the dashed target line; the legend's sample is short)."""
    width, height = image.size
    return [y for y in range(height) if count(image, (0, y, width, y + 1), lambda c: c == RED) > width // 3]


def label_box(i: int, n: int, width: int) -> tuple[int, int, int, int]:
    """The area under place ``i``'s bars where its name (one or two lines) is written."""
    slot = (width - chart.LEFT - chart.RIGHT) / n
    left = round(chart.LEFT + i * slot)
    return left + 1, BOTTOM + 3, round(left + slot) - 1, BOTTOM + 40


def dark(colour) -> bool:
    return max(colour) < INK_MAX


TOWNSHIPS = ["老城街道", "新城街道", "江北街道", "建民街道", "关庙镇", "张滩镇", "瀛湖镇", "五里镇", "恒口镇", "吉河镇",
             "流水镇", "大竹园镇", "洪山镇", "茨沟镇", "大河镇", "沈坝镇", "双龙镇", "叶坪镇", "中原镇", "早阳镇",
             "石梯镇", "关家镇", "县河镇", "晏坝镇", "谭坝镇"]


def test_a_chart_of_25_townships_is_a_png_of_the_stated_size_with_every_name_under_its_bars():
    rates = [(86 + i % 9, 8 + i % 3) for i in range(25)]
    image = decode(coverage_png(rows(rates, TOWNSHIPS), year=2025, target_bp=9500, place="汉滨区"))
    assert image.size == (chart.LEFT + chart.RIGHT + SLOT * 25, HEIGHT) == (1500, 450)
    for i in range(25):  # dark text pixels in the label area of every place
        assert count(image, label_box(i, 25, image.width), dark) > 30, TOWNSHIPS[i]
    # a few places: the chart keeps its minimum width (the title and legend need it)
    assert decode(coverage_png(rows([(90, 9)]), year=2025)).size == (MIN_WIDTH, HEIGHT)


@pytest.mark.parametrize("target_bp, axis, expected_row", [(9000, (8500, 9500), 224), (8750, (8500, 9500), 294),
                                                            (9500, (8500, 10000), 178)])
def test_the_target_line_lies_on_the_pixel_row_of_the_target(target_bp, axis, expected_row):
    # 87 % and 93 %, subsidised 90 %: the axis is 85-95 % (whole 5 % steps around the data and the target, with
    # a point to spare: a 95 % target widens it to 100 %), 280 px high from row 84: 90 % is half-way, row
    # 84 + 140 = 224; 87.5 % is row 84 + 210 = 294; 95 % of 85-100 % is row 84 + 280 - 186 = 178.
    data = rows([(87, 9), (93, 9)])
    image = decode(coverage_png(data, year=2025, target_bp=target_bp))
    assert chart.axis_range([8700, 9300, 9000, target_bp]) == axis
    assert y_of(target_bp, *axis) == expected_row
    assert red_rows(image) == [expected_row - 1, expected_row]
    assert red_rows(decode(coverage_png(data, year=2025))) == []  # no target in the table: no line


def test_bars_stand_on_the_axis_at_their_rounded_rate():
    # 144 of 166 is 86.746 %: rounded half up to 86.75 %, not truncated to 86.74 %
    one = {"township": "610902100", "name": "", "residents": 166, "covered": 144, "subsidised": 0,
           "subsidised_covered": 0}
    assert chart._series([one])[0][2:] == (8675, None)
    image = decode(coverage_png(rows([(87, 9), (93, 10)]), year=2025))  # axis 85-100 %
    slot = (image.width - chart.LEFT - chart.RIGHT) / 2
    x = round(chart.LEFT + 0.5 * slot) - chart.BAR_W // 2  # the middle of the first (blue) bar
    column = [image.getpixel((x, y)) for y in range(TOP, BOTTOM)]
    top = TOP + column.index(chart.OVERALL)
    assert top == y_of(8700, 8500, 10000)


def test_chinese_names_are_glyphs_of_the_font_not_boxes(cmap):
    names = ["老城街道", "大竹园镇"]
    for ch in "".join(names):
        assert ord(ch) in cmap, ch
        assert has_glyph(ch)
    font = ImageFont.truetype(str(CHART_FONT), chart.NAME_PX)
    masks = {ch: bytes(font.getmask(ch)) for ch in set("".join(names))}
    assert all(font.getmask(ch).getbbox() for ch in masks)
    # a box (tofu) would be the same picture for every character: each of these is its own
    assert all(masks[a] != masks[b] for a, b in combinations(masks, 2))
    # the name is drawn: the label area differs from the same chart whose names are left out (codes shown)
    named = decode(coverage_png(rows([(90, 9), (92, 10)], names), year=2025))
    unnamed = decode(coverage_png(rows([(90, 9), (92, 10)], ["", ""]), year=2025))
    for i in range(2):
        box = label_box(i, 2, named.width)
        assert named.crop(box).tobytes() != unnamed.crop(box).tobytes()
        assert count(named, box, dark) > count(unnamed, box, dark)  # four characters ink more than "100"


def test_a_name_the_font_cannot_draw_is_shown_as_the_place_code():
    missing = "\U00020000\U00020001镇"  # CJK extension B: outside the subset
    assert not has_glyph("\U00020000") and has_glyph("镇")
    assert bar_label("610902105", missing) == ("105", False)
    assert bar_label("610902105", "汉滨区 镇 610902105") == ("105", False)  # the places table's stand-in for a code
    assert bar_label("610902105", "汉滨区 关庙镇") == ("关庙镇", True)
    assert bar_label("610902104001", "汉滨区 关庙镇 · 东坝村") == ("东坝村", True)
    # drawn exactly as a place without a name: its code, no box and no blank
    with_missing = coverage_png(rows([(90, 9), (92, 10)], [missing, "关庙镇"]), year=2025)
    without_name = coverage_png(rows([(90, 9), (92, 10)], ["", "关庙镇"]), year=2025)
    assert with_missing == without_name
    image = decode(with_missing)
    assert count(image, label_box(0, 2, image.width), dark) > 10
    # the county in the title likewise: its code
    data = rows([(90, 9)], ["关庙镇"])
    assert coverage_png(data, year=2025, place="\U00020000滨区") == coverage_png(data, year=2025, place="610902")
    assert coverage_png(data, year=2025, place="汉滨区") != coverage_png(data, year=2025, place="610902")


def test_long_names_wrap_onto_two_lines_within_their_place():
    image = decode(coverage_png(rows([(90 + i % 3, 9) for i in range(25)], ["老城街道办事处东坝社区"] * 25), year=2025))
    assert image.width == 1500
    for i in (0, 12, 24):
        left, top, right, bottom = label_box(i, 25, image.width)
        # ink on both lines, none in the gaps between places
        assert count(image, (left, BOTTOM + 6, right, BOTTOM + 20), dark) > 20
        assert count(image, (left, BOTTOM + 22, right, BOTTOM + 36), dark) > 20
        assert count(image, (right, top, right + 1, bottom), dark) == 0


def test_english_on_request_without_a_missing_glyph(cmap):
    zh = coverage_png(rows([(87, 9), (93, 10)], ["关庙镇", "五里镇"]), year=2025, target_bp=9500, place="汉滨区")
    en = coverage_png(rows([(87, 9), (93, 10)], ["关庙镇", "五里镇"]), year=2025, target_bp=9500, place="汉滨区",
                      lang="en")
    assert zh != en
    texts = catalogue.table("chart")
    for key, both in texts.items():
        for lang in ("zh", "en"):
            missing = sorted({ch for ch in both[lang] if not ch.isspace() and ord(ch) not in cmap})
            assert not missing, (key, lang, missing, REGENERATE)
    # the title and legend of the English chart are wider: the title row differs, not only the plot
    zh_image, en_image = decode(zh), decode(en)
    assert zh_image.crop((0, 0, 600, 60)).tobytes() != en_image.crop((0, 0, 600, 60)).tobytes()


def test_every_place_name_and_chart_text_of_the_project_is_in_the_font(cmap):
    with open(SAMPLE_PLACES, encoding="utf-8") as f:
        names = {row["name"] for row in csv.DictReader(f)}
    chars = {ch for name in names for ch in name}
    for key in ("chart_title", "chart_overall", "chart_subsidised", "chart_target", "chart_no_target"):
        chars |= {ch for lang in ("zh", "en") for ch in catalogue.text("demo", key, lang, year=2025, percent="95.00%")}
    missing = sorted(ch for ch in chars if not ch.isspace() and ord(ch) not in cmap)
    assert not missing, (missing, REGENERATE)
    assert len(names) > 150  # the packaged table was read


def test_the_font_is_the_documented_subset(cmap):
    font = TTFont(str(CHART_FONT), lazy=True)
    assert font["name"].getDebugName(4) == "Noto Sans CJK SC"
    assert "Open Font License" in font["name"].getDebugName(13)
    gb2312 = [bytes((row, col)).decode("gb2312") for row in range(0xB0, 0xF8) for col in range(0xA1, 0xFF)
              if not (row == 0xD7 and col > 0xF9)]
    assert len(gb2312) == 6763 and all(ord(ch) in cmap for ch in gb2312)
    assert all(ord(ch) in cmap for ch in "，。、：；（）《》“”·—…％０９")
    assert CHART_FONT.stat().st_size < 3 * 1024 * 1024
    assert (CHART_FONT.parent / "OFL.txt").read_text().count("SIL OPEN FONT LICENSE Version 1.1") == 1


def test_ticks_fall_on_whole_steps_and_a_place_with_nobody_to_count_says_so():
    assert chart.ticks(4500, 10000) == [5000, 6000, 7000, 8000, 9000, 10000]
    assert chart.ticks(8500, 9500) == [8500, 9000, 9500]
    assert chart.ticks(0, 10000) == [0, 2000, 4000, 6000, 8000, 10000]
    # the second place has no subsidised people: no orange bar, and "无人" in grey where it would stand
    data = rows([(90, 9), (92, 0)])
    data[1]["subsidised"] = 0
    image = decode(coverage_png(data, year=2025))
    slot = (image.width - chart.LEFT - chart.RIGHT) / 2
    orange = (round(chart.LEFT + 1.5 * slot) + 1, TOP, round(chart.LEFT + 1.5 * slot) + chart.BAR_W, BOTTOM)
    assert count(image, orange, lambda c: c == chart.SUBSIDISED) == 0
    assert count(image, orange, lambda c: max(c) < 200 and max(c) - min(c) < 12) > 20  # grey ink (anti-aliased)
    data[1]["subsidised"] = 10  # with ten of them and none covered: a 0.00 % label, not "无人"
    assert decode(coverage_png(data, year=2025)).tobytes() != image.tobytes()
