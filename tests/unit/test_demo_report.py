"""The demo's text report and chart, as a county official reads them.

Rates are rounded (not truncated), the report is Chinese by default with no ``None`` and no
Python dict in it, its tables line up counting wide characters, the 110105 row is explained,
and ``--chart`` writes a real PNG (or SVG when asked) with the y axis zoomed to the data.
"""
from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import pytest
import structlog
from PIL import Image

import ledger.log
from entrypoints import demo as demo_module
from entrypoints.console import display_width
from entrypoints.demo import _pct_of, _print_report, run_pipeline
from entrypoints.chart import axis_range, coverage_chart
from entrypoints.messages import COLUMNS, MESSAGES, TERMS, lang_of, text


def test_rates_are_rounded_half_up_not_truncated():
    assert _pct_of(144, 166) == "86.75%"  # 86.746...: truncation would say 86.74 %
    assert _pct_of(2, 3) == "66.67%"
    assert _pct_of(1, 3) == "33.33%"
    assert _pct_of(1, 8) == "12.50%"
    assert _pct_of(1, 16) == "6.25%"  # 6.25 exactly
    assert _pct_of(1, 1600) == "0.06%"  # 0.0625 -> 0.06 (half of a basis point rounds up: 6.25 bp -> 6 bp)
    assert _pct_of(166, 166) == "100.00%"
    assert _pct_of(0, 0) == "—"


def test_catalogue_has_both_languages_with_the_same_placeholders():
    for table in (MESSAGES, COLUMNS, TERMS):
        for key, texts in table.items():
            assert set(texts) == {"zh", "en"}, key
            assert set(re.findall(r"{(\w+)", texts["zh"])) == set(re.findall(r"{(\w+)", texts["en"])), key
    assert lang_of(None) == "zh" and lang_of("en_US.UTF-8") == "en" and lang_of("zh_CN") == "zh"
    assert text("chart_overall", "zh") == "参保率"


def _rows(rates):
    return [{"township": f"610902{i:03d}", "name": f"镇{i}", "residents": 100, "covered": c, "subsidised": 10,
             "subsidised_covered": s} for i, (c, s) in enumerate(rates)]


def test_chart_is_a_real_png_with_the_expected_size():
    body = coverage_chart(_rows([(87, 9), (93, 10), (90, 9)]), 2025)
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(body)) as image:
        assert image.format == "PNG" and image.mode == "RGB" and image.size == (640, 450)  # MIN_WIDTH: 3 places
        colours = {c for _, c in image.getcolors(maxcolors=1 << 16)}
    # both series are drawn: the blue and the orange bar colours occur in the pixels
    assert (59, 125, 216) in colours and (230, 140, 40) in colours


def test_y_axis_is_zoomed_to_the_data():
    assert axis_range([8700, 9300]) == (8500, 9500)  # not 0-100 %
    assert axis_range([8700, 10000]) == (8500, 10000)
    assert axis_range([0, 9000]) == (0, 9500)


def test_svg_chart_still_works_and_shows_both_series():
    body = coverage_chart(_rows([(87, 9), (93, 10)]), 2025, svg=True)
    root = ET.fromstring(body.decode("utf-8"))
    ns = "{http://www.w3.org/2000/svg}"
    labels = [t.text for t in root.iter(f"{ns}text")]
    assert "2025 年度各乡镇参保率" in labels and "资助参保对象参保率" in labels and "镇0" in labels
    assert "85%" in labels and "95%" in labels and "0%" not in labels  # the zoomed axis
    bars = [r for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert len(bars) == 4  # overall and subsidised for each township


@pytest.fixture()
def demo_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path))
    for name in ("LEDGER_PERSISTENCE", "KAFKA_BOOTSTRAP_SERVERS", "LEDGER_SQLITE_PATH", "LEDGER_VIEWS_PATH",
                 "LEDGER_TOPIC_PREFIX", "LEDGER_ID_KEY"):
        monkeypatch.delenv(name, raising=False)
    saved = structlog.get_config()
    configured = ledger.log._configured
    yield tmp_path
    structlog.configure(**saved)
    ledger.log._configured = configured


def test_the_report_reads_in_chinese_without_none_or_dicts(demo_env, capsys, tmp_path):
    result = run_pipeline(people=400, seed=2025, quiet=True)
    capsys.readouterr()
    _print_report(result)
    out = capsys.readouterr().out
    assert "None" not in out and "{'" not in out and "': " not in out
    assert "全县参保率" in out and "各乡镇参保率" in out and "未参保的资助参保对象" in out
    assert "110105（北京市朝阳区）不属本系统承办地区" in out and "REGION_UNKNOWN" in out
    # the people to call on have masked names (张*), every one of them
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("未参保的资助参保对象"))
    people = [line for line in lines[start + 3:] if line.strip()][:len(result.report["subsidised_missing"])]
    assert people and all(re.match(r"^\S\*+\s", line) for line in people), people
    # tables line up: in the township table, the coverage column starts at the same screen column
    start = lines.index("各乡镇参保率：")
    table = lines[start + 1:start + 3 + len(result.report["townships"])]
    starts = {display_width(line[:re.search(r"\d+\.\d\d%", line).start()]) for line in table[2:]}
    assert len(starts) == 1, table  # with 老城街道 and 双龙镇 in the name column: wide characters counted
    # English on request; the --json payload keeps its keys
    _print_report(result, "en")
    assert "County coverage" in capsys.readouterr().out
    assert {"county", "townships", "subsidised_missing", "gap_top", "arrears"} <= result.report.keys()
    assert all(g["name"] for g in result.report["subsidised_missing"])
    chart = tmp_path / "coverage.png"
    demo_module._chart(result, str(chart))
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
