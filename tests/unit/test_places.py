"""Region codes and grid (village) codes."""
from __future__ import annotations

import pytest

from ledger.domain.errors import DomainError
from ledger.domain.places import ANKANG_REGIONS, GridCode, parse_grid_code, validate_region_code


def test_ankang_regions() -> None:
    assert len(ANKANG_REGIONS) == 10
    assert ANKANG_REGIONS["610902"] == "汉滨区"
    assert ANKANG_REGIONS["610981"] == "旬阳市"
    for code in ANKANG_REGIONS:
        assert validate_region_code(code) == code
    with pytest.raises(TypeError):
        ANKANG_REGIONS["610900"] = "安康市"  # type: ignore[index]


def test_region_code_accepts_spaces_and_integers() -> None:
    assert validate_region_code(" 610902 ") == "610902"
    assert validate_region_code(610902) == "610902"


@pytest.mark.parametrize("code", ["61090", "6109021", "61O902", "", "990902", "610000", 6109.02, True])
def test_region_code_format(code: object) -> None:
    with pytest.raises(DomainError) as info:
        validate_region_code(code)  # type: ignore[arg-type]
    assert info.value.code == "REGION_FORMAT"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("610902001001", "STREET"),
        ("610902099123", "STREET"),
        ("610902100001", "TOWN"),
        ("610902199001", "TOWN"),
        ("610902200001", "TOWNSHIP"),
        ("610902399201", "TOWNSHIP"),
        ("610902400001", "ZONE"),
    ],
)
def test_grid_code_kinds(code: str, kind: str) -> None:
    grid = parse_grid_code(code)
    assert grid.township_kind == kind


def test_grid_code_parts() -> None:
    grid = parse_grid_code("610981105203")
    assert grid == GridCode(
        code="610981105203",
        region_code="610981",
        township_code="610981105",
        township_kind="TOWN",
        village="203",
    )
    assert parse_grid_code(610981105203).code == "610981105203"


@pytest.mark.parametrize(
    "code",
    ["61098110520", "6109811052031", "61098110520A", "610981000203", "610981600203", "610981105000"],
)
def test_grid_code_format(code: str) -> None:
    with pytest.raises(DomainError) as info:
        parse_grid_code(code)
    assert info.value.code == "GRID_FORMAT"


def test_grid_code_with_bad_region_part() -> None:
    with pytest.raises(DomainError) as info:
        parse_grid_code("990981105203")
    assert info.value.code == "REGION_FORMAT"
