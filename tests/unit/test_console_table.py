"""print_table counts wide characters: Chinese cells line up with the ASCII ones."""
from __future__ import annotations

from entrypoints.console import display_width, pad, print_table


def test_display_width_counts_chinese_as_two_columns():
    assert display_width("abc") == 3
    assert display_width("关庙镇") == 6
    assert display_width("低保对象 A") == 10
    assert display_width("１２") == 4  # full-width digits
    assert pad("关庙镇", 8) == "关庙镇  "


def test_columns_line_up_with_chinese_cells(capsys):
    rows = [{"code": "610902105", "name": "关庙镇", "rate": "92.06%"},
            {"code": "610902001", "name": "老城街道", "rate": "95.65%"},
            {"code": "x", "name": "abc", "rate": None}]
    print_table(rows, ["code", "name", "rate"], headers={"name": "乡镇", "rate": "参保率"})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["code", "乡镇", "参保率"]
    assert "None" not in "\n".join(lines)
    # The third column starts at the same terminal column on every line.
    starts = set()
    for line in lines[2:4]:  # the rows with a rate
        name = line.split()[1]
        prefix = line[:line.index(name) + len(name)]
        rest = line[len(prefix):]
        starts.add(display_width(prefix) + len(rest) - len(rest.lstrip()))
    assert len(starts) == 1, lines
    # 老城街道 (8 columns) is the widest name: the column is 8 wide, plus two spaces.
    assert starts == {len("610902105") + 2 + 8 + 2}
