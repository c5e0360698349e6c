"""The registration sheet the way agencies write it: synonyms, ignored columns, every problem of a row,
the template (its example row imports cleanly) and the error workbook (refused rows + 错误说明)."""
from __future__ import annotations

import io
import json

import pytest
from openpyxl import load_workbook

from consumers.sheet_columns import COLUMNS, IGNORED_HEADERS
from consumers.spreadsheets import map_header, parse_row
from entrypoints.cli import main as ledger_main
from tests.unit.cli_support import run_as
from tests.unit.http_support import (
    CLERK,
    GRID_A,
    HANBIN,
    HANYIN,
    client,  # noqa: F401  (fixture)
    event_count,
    number,
    system,  # noqa: F401  (fixture)
)

#: The issue's realistic sheet, as a county agency keeps it.
REAL_HEADER = ["序号", "姓名", "性别", "身份证号码", "参保类别", "所属乡镇", "所属村（社区）", "联系电话", "参保日期"]


def csv_bytes(header: list[str], rows: list[list]) -> bytes:
    lines = [",".join(header)] + [",".join(str(v) for v in r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8-sig")


def upload(client, data: bytes, filename: str, params=None):
    return client.post("/imports", files={"file": (filename, data)}, headers=CLERK, params=params or {})


def sheets(data: bytes) -> dict[str, list[list]]:
    book = load_workbook(io.BytesIO(data))
    return {ws.title: [list(r) for r in ws.iter_rows(values_only=True) if any(v is not None for v in r)]
            for ws in book.worksheets}


def bad_checksum(seq: int) -> str:
    good = number(seq)
    return good[:-1] + ("0" if good[-1] != "0" else "1")


# ------------------------------------------------------------------ the realistic sheet
def test_the_issues_realistic_sheet_imports_with_notices_and_only_the_bad_row_refused(client, system):
    rows = [
        [1, "王芳", "女", number(101), "城乡居民", "610902100", GRID_A, "13800000001", "2024/9/10"],
        [2, "李强", "男", number(102), "居民医保", "关庙镇", "建新村", "13800000002", "2024-09-10"],
        [3, "赵六", "男", bad_checksum(103), "城乡居民", "", "", "", "2024-09-10"],
    ]
    r = upload(client, csv_bytes(REAL_HEADER, rows), "汉滨区登记表.csv")
    assert r.status_code == 201, r.json()
    report = r.json()
    assert (report["rows"], report["imported"], report["errors"]) == (3, 2, 1)
    ignored = {n["column"] for n in report["notices"] if n["code"] == "COLUMN_IGNORED"}
    assert ignored == {"序号", "性别"}
    assert {n["column"] for n in report["notices"] if n["code"] == "COLUMN_SYNONYM"} >= {"身份证号码", "参保类别"}
    first = system.ledger.find_person("RESIDENT_ID", number(101)).active_enrollment
    assert (first.scheme, first.region_code, first.grid_code) == ("RESIDENT", HANBIN, GRID_A)
    second = system.ledger.find_person("RESIDENT_ID", number(102))
    # the names read through the places table (infra/places/ankang-sample.csv): 关庙镇 建新村
    assert (second.active_enrollment.region_code, second.active_enrollment.grid_code) == (HANBIN, "610902100201")
    assert (second.household_grid, second.phone) == ("610902100201", "13800000002")
    lines = {line["line"]: line for line in report["lines"]}
    assert {(w["code"], w["column"]) for w in lines[3]["warnings"]} == {("REGION_DEFAULTED", "参保地")}
    assert lines[4]["code"] == "ID_CHECKSUM" and "校验位" in lines[4]["message"]
    assert lines[4]["problems"][0]["column"] == "身份证号码"  # the header as the agency wrote it


def test_a_clerk_of_two_regions_must_name_the_region(system):
    header = map_header(["姓名", "身份证号码", "参保类别", "参保日期"])
    row, problems, _ = parse_row(header.columns, ["王芳", number(104), "城乡居民", "2024-09-10"])
    assert row is None and [(p["code"], p["column"]) for p in problems] == [("FIELD_REQUIRED", "参保地")]
    row, problems, warnings = parse_row(header.columns, ["王芳", number(104), "城乡居民", "2024-09-10"],
                                        default_region=HANBIN)
    assert problems == [] and row["region_code"] == HANBIN and warnings[0]["code"] == "REGION_DEFAULTED"


# ------------------------------------------------------------------ synonyms
@pytest.mark.parametrize("id_header", ["身份证号码", "公民身份号码", "证件号码", "身份证号", "id_number"])
@pytest.mark.parametrize("scheme_header,scheme,expected", [
    ("参保类别", "城乡居民", "RESIDENT"), ("险种", "居民医保", "RESIDENT"), ("参保险种", "职工", "EMPLOYEE"),
    ("险种", "EMPLOYEE", "EMPLOYEE"),
])
def test_column_and_value_synonyms(id_header, scheme_header, scheme, expected):
    header = map_header(["姓名", id_header, scheme_header, "所属区县", "所属村(社区)", "是否灵活就业", "参保时间"])
    assert header.columns == ["name", "id_number", "scheme", "region_code", "grid_code", "flexible", "effective_date"]
    row, problems, _ = parse_row(header.columns, ["王芳", number(1), scheme, HANBIN, GRID_A, "是", "20240910"])
    assert problems == [] and row["scheme"] == expected and row["flexible"] is True
    assert row["grid_code"] == GRID_A and row["effective_date"].isoformat() == "2024-09-10"


def test_a_column_named_twice_through_synonyms_is_refused_naming_both():
    with pytest.raises(Exception) as caught:
        map_header(["姓名", "身份证号码", "证件号码", "险种", "参保日期"])
    assert caught.value.code == "IMPORT_COLUMNS"
    assert "证件号码（身份证号码、证件号码）" in caught.value.message and caught.value.details["repeated"] == ["id_number"]


def test_a_misspelt_header_is_ignored_with_a_guess():
    header = map_header(["姓名", "证件号码", "险种", "参保日期", "灵活就叶"])
    assert header.columns[-1] is None
    assert "是否指“灵活就业”" in header.notices[0]["message"]


# ------------------------------------------------------------------ every problem of a row
def test_every_problem_of_a_row_is_reported_with_its_code_and_column(client, system):
    header = ["姓名", "证件号码", "险种", "参保地", "网格", "灵活就业", "参保日期", "资助身份"]
    rows = [["", bad_checksum(110), "新农合", "610902", "610902100", "也许", "2024-13-01", "低保"]]
    report = upload(client, csv_bytes(header, rows), "bad.csv").json()
    line = report["lines"][0]
    found = {(p["code"], p["column"]) for p in line["problems"]}
    assert found == {("FIELD_REQUIRED", "姓名"), ("ID_CHECKSUM", "证件号码"), ("SCHEME_UNKNOWN", "险种"),
                     ("GRID_FORMAT", "网格"), ("FLEXIBLE_INVALID", "灵活就业"), ("DATE_INVALID", "参保日期"),
                     ("STATUS_FIELDS_INCOMPLETE", "认定起始日期"), ("STATUS_FIELDS_INCOMPLETE", "认定部门"),
                     ("STATUS_FIELDS_INCOMPLETE", "认定文书编号")}
    assert line["code"] == line["problems"][0]["code"] and line["message"].count("；") == len(found) - 1
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in p["message"]) for p in line["problems"])
    assert event_count(system) == 0


# ------------------------------------------------------------------ the template
def test_the_template_lists_every_column_and_its_example_row_imports_cleanly(client, system):
    r = client.get("/imports/template.xlsx", headers=CLERK)
    assert r.status_code == 200 and r.content[:2] == b"PK"
    book = sheets(r.content)
    assert list(book) == ["登记表", "填写说明"]
    assert book["登记表"][0] == [c.header for c in COLUMNS] and len(book["登记表"]) == 2
    help_rows = {row[0]: row for row in book["填写说明"] if row and row[0] in {c.header for c in COLUMNS}}
    assert set(help_rows) == {c.header for c in COLUMNS}
    assert help_rows["证件号码"][1].startswith("必填") and "身份证号码" in help_rows["证件号码"][4]
    assert "居民医保 → RESIDENT" in help_rows["险种"][3] and help_rows["所属村（社区）"][1] == "选填"
    example = dict(zip(book["登记表"][0], book["登记表"][1]))
    # named from the deployment's places table (the packaged sample: 610902001 老城街道, 610902001001 东坝社区)
    assert (example["所属乡镇"], example["所属村（社区）"], example["联系电话"]) == ("老城街道", "东坝社区", "13800000000")
    assert "序号" in book["填写说明"][1][0]
    answer = upload(client, r.content, "模板.xlsx").json()
    assert (answer["imported"], answer["errors"], answer["notices"]) == (1, 0, [])
    assert answer["lines"][0]["warnings"] == []
    csv_template = client.get("/imports/template.csv", headers=CLERK)
    assert csv_template.content.startswith(b"\xef\xbb\xbf" + "证件类型,证件号码".encode())
    again = upload(client, csv_template.content, "模板.csv").json()
    assert (again["rows"], again["errors"], again["already_enrolled"]) == (1, 0, 1)


def test_ledger_import_template_and_errors_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEDGER_PERSISTENCE", "memory")
    monkeypatch.setenv("LEDGER_ID_KEY", "cli-test")
    template = tmp_path / "模板.xlsx"
    assert ledger_main(["import", "--template", str(template)]) == 0  # no token needed: no personal data
    assert "填写说明" in capsys.readouterr().out and load_workbook(template).sheetnames == ["登记表", "填写说明"]
    run_as(monkeypatch, tmp_path, "clerk", [HANBIN], user="clerk01")
    assert ledger_main(["import", str(template), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["imported"] == 1
    sheet = tmp_path / "登记.csv"
    sheet.write_bytes(csv_bytes(REAL_HEADER, [[1, "", "男", number(120), "城乡居民", "", "", "", "bad"],
                                              [2, "钱七", "女", number(121), "城乡居民", "", "", "", "2024-09-10"]]))
    errors = tmp_path / "错误行.xlsx"
    assert ledger_main(["import", str(sheet), "--errors", str(errors)]) == 1
    out = capsys.readouterr().out
    assert "提示 COLUMN_IGNORED" in out and "FIELD_REQUIRED" in out and "错误行已写入" in out
    rows = sheets(errors.read_bytes())["错误行"]
    assert rows[0] == [*REAL_HEADER, "错误说明"] and len(rows) == 2
    assert rows[1][3] == number(120)  # the clerk's own region: the full number, to fix and send back
    assert "[FIELD_REQUIRED]" in rows[1][-1] and "[DATE_INVALID]" in rows[1][-1]


# ------------------------------------------------------------------ the error workbook
def test_the_error_workbook_holds_the_refused_rows_with_every_problem(client, system):
    header = ["姓名", "证件号码", "险种", "参保地", "参保日期", "联系电话"]
    rows = [["王芳", number(130), "城乡居民", HANBIN, "2024-09-10", "13800000130"],    # good
            ["", number(131), "城乡居民", HANBIN, "2024-02-30", "13900000131"],        # two problems
            ["李四", number(132, region=HANYIN), "城乡居民", HANYIN, "2024-09-10", "13700000132"]]  # not the clerk's
    r = upload(client, csv_bytes(header, rows), "登记.csv", params={"errors": "xlsx"})
    assert r.status_code == 201 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert (r.headers["x-import-imported"], r.headers["x-import-errors"]) == ("1", "2")
    assert "filename*=UTF-8''" in r.headers["content-disposition"]
    book = sheets(r.content)
    assert list(book) == ["错误行", "填写说明"]
    got = book["错误行"]
    assert got[0] == [*header, "错误说明"] and len(got) == 3
    assert got[1][:6] == [None, number(131), "城乡居民", HANBIN, "2024-02-30", "13900000131"]  # as sent: the clerk's
    assert got[1][-1].startswith("第3行：") and "姓名 [FIELD_REQUIRED]" in got[1][-1] and "参保日期 [DATE_INVALID]" in got[1][-1]
    assert got[2][1] != number(132, region=HANYIN) and got[2][1].endswith(number(132, region=HANYIN)[-4:])
    assert "REGION_NOT_IN_SCOPE" in got[2][-1] and "已遮蔽" in got[2][-1]
    assert got[2][5] == "137****0132"  # another county's person: the phone masked like the ID number
    assert number(132, region=HANYIN) not in r.content.decode("latin-1")


def test_a_fixed_error_workbook_imports_the_fixed_rows(client, system):
    header = ["姓名", "证件号码", "险种", "参保日期"]
    r = upload(client, csv_bytes(header, [["", number(140), "城乡居民", "2024-09-10"]]), "a.csv",
               params={"errors": "xlsx"})
    book = load_workbook(io.BytesIO(r.content))
    book["错误行"]["A2"] = "孙八"  # the clerk fixes the name and sends the workbook back
    out = io.BytesIO()
    book.save(out)
    again = upload(client, out.getvalue(), "a-改.xlsx").json()
    assert (again["imported"], again["errors"]) == (1, 0)
    assert [n["code"] for n in again["notices"]] == ["COLUMN_IGNORED"]  # 错误说明, a known column to ignore
    assert "错误说明" in IGNORED_HEADERS
