"""The places table (地名表): names by code with validity dates, loaded from a file, shown instead of codes."""
from __future__ import annotations

from datetime import date

import pytest

from entrypoints.http.web import labels
from entrypoints.http.web.exports import table_rows
from entrypoints.wiring import place_names
from infra.places import SAMPLE_PLACES, load_places
from infra.settings import load_settings
from ledger.domain.errors import DomainError
from ledger.domain.places import PlaceName, PlaceNames

RENAMED = """code,name,valid_from,valid_to,source
610902105,旧名乡,,2019-12-31,测试
610902105,新名镇,2020-01-01,,测试
610902105204,新星村,2021-06-01,,测试
"""


def write(tmp_path, text: str):
    path = tmp_path / "places.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_name_is_the_one_valid_on_the_day_and_the_code_shows_when_none_is(tmp_path):
    names = load_places(write(tmp_path, RENAMED))
    assert labels.place("610902105", names, date(2019, 6, 1)) == "汉滨区 旧名乡"
    assert labels.place("610902105", names, date(2020, 1, 1)) == "汉滨区 新名镇"
    # the village had no name before 2021-06-01: its code is shown under the township's name
    assert labels.place("610902105204", names, date(2021, 5, 31)) == "汉滨区 新名镇 · 村 204"
    assert labels.place("610902105204", names, date(2021, 6, 1)) == "汉滨区 新名镇 · 新星村"
    # a code the table does not know keeps today's code label
    assert labels.place("610902106201", names, date(2025, 1, 1)) == "汉滨区 镇 610902106 · 村 201"
    assert labels.places_note(names, ["610902105"], date(2025, 1, 1)) == ""


def test_overlapping_spans_of_one_code_are_refused():
    with pytest.raises(DomainError) as e:
        PlaceNames([PlaceName("610902105", "甲镇", None, date(2020, 6, 30)),
                    PlaceName("610902105", "乙镇", date(2020, 1, 1), None)])
    assert e.value.code == "PLACES_OVERLAP"


@pytest.mark.parametrize("text,line,why", [
    ("code,name\n", 1, "表头"),
    ("code,name,valid_from,valid_to,source\n61090210,某镇,,,x\n", 2, "不是 9 位乡镇代码"),
    ("code,name,valid_from,valid_to,source\n610902105,,,,x\n", 2, "名称为空"),
    ("code,name,valid_from,valid_to,source\n610902105,某镇,2020-13-01,,x\n", 2, "valid_from"),
    ("code,name,valid_from,valid_to,source\n\n610902105,某镇,2021-01-01,2020-01-01,x\n", 3, "早于"),
])
def test_a_bad_file_is_places_file_invalid_naming_file_and_line(tmp_path, text, line, why):
    path = write(tmp_path, text)
    with pytest.raises(DomainError) as e:
        load_places(path)
    assert e.value.code == "PLACES_FILE_INVALID"
    assert str(path) in e.value.message and f"第 {line} 行" in e.value.message and why in e.value.message


def test_the_setting_chooses_the_file_and_the_packaged_sample_is_marked_as_sample(tmp_path):
    own = write(tmp_path, RENAMED)
    assert place_names(load_settings({"LEDGER_PLACES_FILE": str(own), "LEDGER_STATE_DIR": str(tmp_path)})) \
        .name_on("610902105", date(2025, 1, 1)) == "新名镇"
    sample = place_names(load_settings({"LEDGER_STATE_DIR": str(tmp_path)}))
    assert sample.source == str(SAMPLE_PLACES)
    assert sample.name_on("610902100", date(2025, 1, 1)) == "关庙镇"
    entry = sample.entry_on("610902100201", date(2025, 1, 1))
    assert entry is not None and entry.source.startswith("示例")
    assert labels.places_note(sample, ["610902100201"], date(2025, 1, 1)).startswith("地名为示例数据")


def test_the_demo_county_names_its_places_as_the_page_does():
    from entrypoints.simulation import generate_county

    county = generate_county(seed=3, people=200)
    sample = load_places(SAMPLE_PLACES)
    day = date(2025, 3, 31)
    for township in county.townships:
        assert sample.name_on(township.code, day) == township.name
        for grid in township.grids:
            assert labels.place(grid.code, sample, day).endswith(" · " + grid.name)


def test_exports_name_the_place_beside_the_code():
    gap = {"person_id": "p", "grid_code": "610902105204", "reason": "NOT_ENROLLED", "day": "2025-03-31",
           "subsidised": False, "detail": ""}
    names = PlaceNames([PlaceName("610902105", "新名镇"), PlaceName("610902105204", "新星村")])
    row = table_rows([gap], {"p": ("RESIDENT_ID", "110105194912310020", "张三")}, names)[0]
    assert row[4:6] == ("610902105204", "汉滨区 新名镇 · 新星村")
