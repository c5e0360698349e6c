"""The agency's sheet with place names and phones (issue 21): 所属乡镇 / 所属村（社区） names become codes through the
places table (the name valid on 参保日期, in the row's county, a village under its township), 联系电话 is checked
and kept like the residents feed's phone (encrypted, masked for roles that do not act on it, never exported)."""
from __future__ import annotations

import hashlib
import io
import json
from datetime import date

import pytest
from openpyxl import load_workbook

from entrypoints.cli import main as ledger_main
from entrypoints.http.import_words import sheet_residence
from events.ledger_events import decode_event, encode_event
from ledger.domain.chain import canonical, event_digest
from ledger.domain.place_lookup import PlaceIndex, place_key
from ledger.domain.places import PlaceName, PlaceNames
from consumers.sheet_residence import mainland_phone
from tests.unit.test_http_import import xlsx_bytes
from tests.unit.cli_support import run_as
from tests.unit.http_support import (
    AUDITOR,
    CLERK,
    GRID_A,
    GRID_WORKER_A,
    HANBIN,
    client,  # noqa: F401  (fixture)
    event_count,
    number,
    system,  # noqa: F401  (fixture)
)

#: The issue's realistic sheet, as a county agency keeps it: all nine columns.
HEADER = ["序号", "姓名", "性别", "身份证号码", "参保类别", "所属乡镇", "所属村（社区）", "联系电话", "参保日期"]
#: In the packaged places table (infra/places/ankang-sample.csv, 示例): 关庙镇 610902100 with 关庙社区 …001 and
#: 建新村 …201; 张滩镇 610902101 with 大湾村 …201; 大湾村 is also a village of 关庙镇 (…208) and of others.
GUANMIAO, ZHANGTAN = "610902100", "610902101"
PERIOD = {"year": 2025, "as_of": "2025-03-01"}


def bad_checksum(seq: int) -> str:
    good = number(seq)
    return good[:-1] + ("0" if good[-1] != "0" else "1")


def xlsx(header: list[str], rows: list[list]) -> bytes:
    return xlsx_bytes(rows, header)


def upload(client, data: bytes, name: str = "汉滨区登记表.xlsx", params=None, headers=CLERK):
    return client.post("/imports", files={"file": (name, data)}, headers=headers, params=params or {})


def agency_rows() -> list[list]:
    return [
        [1, "王芳", "女", number(301), "城乡居民", "关庙镇", "关庙社区居委会", "13800000301", "2024-09-10"],
        [2, "李强", "男", number(302), "居民医保", " 张滩 ", "大湾村民委员会", "0915-3212345", "2024-09-10"],
        [3, "张三", "男", number(303), "城乡居民", "张滩镇", "建新村", "13800000303", "2024-09-10"],   # 建新村 is not in 张滩镇
        [4, "李四", "女", number(304), "城乡居民", "不存在镇", "", "13800000304", "2024-09-10"],         # no such township
        [5, "王五", "男", bad_checksum(305), "城乡居民", "关庙镇", "建新村", "1380000", "2024-09-10"],    # bad ID and phone
        [6, "赵六", "女", number(306), "城乡居民", "", "大湾村", "", "2024-09-10"],                      # 大湾村: several
        [7, "钱七", "女", number(307), "城乡居民", GUANMIAO, "610902100201", "", "2024-09-10"],          # codes still work
    ]


@pytest.fixture()
def imported(client, system):
    r = upload(client, xlsx(HEADER, agency_rows()))
    assert r.status_code == 201, r.json()
    return r.json()


# ------------------------------------------------------------------ the realistic sheet
def test_the_good_rows_get_their_township_and_village_codes_and_every_problem_of_every_bad_row_is_reported(
        imported, client, system):
    assert (imported["rows"], imported["imported"], imported["errors"]) == (7, 3, 4)
    assert {n["column"] for n in imported["notices"] if n["code"] == "COLUMN_IGNORED"} == {"序号", "性别"}
    lines = {line["line"]: line for line in imported["lines"]}
    assert [lines[n]["status"] for n in (2, 3, 8)] == ["imported"] * 3
    found = {n: {(p["code"], p["column"]) for p in lines[n]["problems"]} for n in (4, 5, 6, 7)}
    assert found == {
        4: {("IMPORT_PLACE_MISMATCH", "所属村（社区）")},
        5: {("IMPORT_PLACE_UNKNOWN", "所属乡镇")},
        6: {("ID_CHECKSUM", "身份证号码"), ("IMPORT_PHONE_INVALID", "联系电话")},
        7: {("IMPORT_PLACE_AMBIGUOUS", "所属村（社区）")},
    }
    message = {n: lines[n]["problems"][0]["message"] for n in (4, 5, 7)}
    assert "「建新村」不在所属乡镇「张滩镇」之下" in message[4] and "关庙镇" in message[4]
    assert "「不存在镇」在汉滨区找不到 2024-09-10 有效的名称" in message[5]
    assert "大湾村 610902100208" in message[7] and "大湾村 610902101201" in message[7]
    phone_message = next(p["message"] for p in lines[6]["problems"] if p["code"] == "IMPORT_PHONE_INVALID")
    assert "11 位手机号码" in phone_message and "1380000" not in phone_message
    # what the ledger keeps, read through the public person read: the village as the household grid
    for n, grid in ((301, GRID_A), (302, ZHANGTAN + "201"), (307, GUANMIAO + "201")):
        person = client.get(f"/persons/RESIDENT_ID/{number(n)}", headers=CLERK).json()
        assert (person["household_grid"], person["enrollments"][0]["grid_code"]) == (grid, grid), n
    for n in (303, 304, 306):
        assert client.get(f"/persons/RESIDENT_ID/{number(n)}", headers=CLERK).status_code == 404


def test_the_error_workbook_lists_every_problem_of_every_bad_row_with_its_code(client, system):
    r = upload(client, xlsx(HEADER, agency_rows()), params={"errors": "xlsx"})
    assert r.status_code == 201 and r.headers["x-import-errors"] == "4"
    rows = [list(row) for row in load_workbook(io.BytesIO(r.content))["错误行"].iter_rows(values_only=True)]
    assert rows[0] == [*HEADER, "错误说明"] and [row[1] for row in rows[1:]] == ["张三", "李四", "王五", "赵六"]
    why = {row[1]: row[-1] for row in rows[1:]}
    assert why["张三"].startswith("第4行：") and "所属村（社区） [IMPORT_PLACE_MISMATCH]" in why["张三"]
    assert "所属乡镇 [IMPORT_PLACE_UNKNOWN]" in why["李四"] and "不存在镇" in why["李四"]
    assert "身份证号码 [ID_CHECKSUM]" in why["王五"] and "联系电话 [IMPORT_PHONE_INVALID]" in why["王五"]
    assert "[IMPORT_PLACE_AMBIGUOUS]" in why["赵六"] and "请填写所属乡镇" in why["赵六"]


def test_importing_the_same_sheet_again_writes_nothing(imported, client, system):
    before = event_count(system)
    again = upload(client, xlsx(HEADER, agency_rows())).json()
    assert (again["imported"], again["already_imported"], again["errors"]) == (0, 3, 4)
    assert event_count(system) == before


def test_an_english_clerk_reads_the_place_problems_in_english(client, system):
    r = upload(client, xlsx(HEADER, agency_rows()[2:5]), headers={**CLERK, "Accept-Language": "en"})
    lines = r.json()["lines"]
    assert lines[0]["message"].startswith("所属村（社区）: '建新村' is not under the township '张滩镇'")
    assert lines[1]["problems"][0]["message"].startswith("no township named '不存在镇' in 汉滨区 on 2024-09-10")
    # the row's other problems in English too, each with its code unchanged
    assert [p["code"] for p in lines[2]["problems"]] == ["ID_CHECKSUM", "IMPORT_PHONE_INVALID"]
    assert all(not any("\u4e00" <= ch <= "\u9fff" for ch in p["message"]) for p in lines[2]["problems"])
    chinese = upload(client, xlsx(HEADER, agency_rows()[2:3])).json()["lines"][0]
    assert chinese["problems"][0]["message"].startswith("所属村（社区）「建新村」不在所属乡镇「张滩镇」之下")
    assert chinese["problems"][0]["message_en"].startswith("'建新村' is not under")


# ------------------------------------------------------------------ the phone
def test_the_phone_is_kept_like_the_residents_feeds_masked_for_the_auditor_and_never_exported(
        imported, client, system, capfd):
    person = system.ledger.find_person("RESIDENT_ID", number(301))
    assert person.phone == "13800000301"
    seen = {}
    for who, headers in (("grid", GRID_WORKER_A), ("clerk", CLERK), ("auditor", AUDITOR)):
        gaps = client.get(f"/grids/{GRID_A}/gaps", params=PERIOD, headers=headers).json()["gaps"]
        row = next(g for g in gaps if g["person_id"] == str(person.id))
        seen[who] = (row["phone"], row["contact_masked"])
    assert seen["grid"] == seen["clerk"] == ("13800000301", False)
    assert seen["auditor"] == ("138****0301", True)
    for suffix in ("gaps.csv", "gaps.xlsx"):
        export = client.get(f"/grids/{GRID_A}/{suffix}", params=PERIOD, headers=GRID_WORKER_A)
        assert export.status_code == 200
        text = export.content.decode("utf-8", "replace") if suffix.endswith("csv") else "".join(
            str(c) for row in load_workbook(io.BytesIO(export.content)).active.iter_rows(values_only=True) for c in row)
        assert "13800000301" not in text and "0301" not in text.replace(number(301)[-4:], ""), suffix
    # on ledger.events.v1 masked and encrypted, as the feed's; in the logs never in full
    event = next(e for e in system.ledger.events.get(person.id) if type(e).__name__ == "ResidenceRecorded")
    published = decode_event(encode_event(event, keys=system.keys))
    assert published["phone"] == "138****0301" and published["phone_enc"]
    upload(client, xlsx(HEADER, agency_rows()))  # again, the log lines captured now
    logged = "".join(capfd.readouterr())
    assert "batch_imported" in logged and "13800000301" not in logged and "3212345" not in logged


@pytest.mark.parametrize("written,kept", [
    ("13800000001", "13800000001"), ("138 0000 0001", "13800000001"), ("+86 138-0000-0001", "13800000001"),
    ("0086 13800000001", "13800000001"),
    ("０９１５－３２１２３４５", "0915-3212345"), ("(0915)3212345", "0915-3212345"), ("010-62345678", "010-62345678"),
    ("12345", None), ("1234567890123", None), ("12800000001", None), ("0915-123", None), ("138000000O1", None),
])
def test_a_phone_is_a_mainland_mobile_or_a_fixed_line_with_its_area_code(written, kept):
    assert mainland_phone(written) == kept


def test_a_village_without_a_phone_digests_as_version_1_did(client, system):
    """An optional field left empty stays out of the event hash, as for the feed's records."""
    upload(client, xlsx(HEADER, [[1, "孙八", "男", number(320), "城乡居民", "", "", "", "2024-09-10"]]))
    moved = upload(client, xlsx(HEADER, [[1, "孙八", "男", number(320), "城乡居民", "关庙镇", "建新村", "", "2024-09-11"]]))
    assert moved.json()["lines"][0]["status"] == "already_enrolled"
    person = system.ledger.find_person("RESIDENT_ID", number(320))
    assert person.household_grid == GUANMIAO + "201" and person.phone is None
    event = next(e for e in system.ledger.events.get(person.id) if type(e).__name__ == "ResidenceRecorded")
    assert (event.grid_code, event.phone, event.status) == (GUANMIAO + "201", None, "RESIDENT")
    v1_fields = {k: v for k, v in vars(event).items() if k not in ("address", "phone", "originator_topic")}
    body = json.dumps({"type": type(event).__qualname__, "fields": canonical(v1_fields)}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)
    assert event_digest(event) == hashlib.sha256(body.encode()).hexdigest()
    # the same sheet again: the residence row is already imported (its record key is on the event)
    again = upload(client, xlsx(HEADER, [[1, "孙八", "男", number(320), "城乡居民", "关庙镇", "建新村", "", "2024-09-11"]]))
    assert again.json()["lines"][0]["status"] == "already_imported"


# ------------------------------------------------------------------ names over time
RENAMED = PlaceNames([
    PlaceName(GUANMIAO, "旧关镇", None, date(2023, 12, 31)), PlaceName(GUANMIAO, "关庙镇", date(2024, 1, 1)),
    PlaceName(GUANMIAO + "001", "老街村", None, date(2023, 12, 31)),
    PlaceName(GUANMIAO + "001", "关庙社区", date(2024, 1, 1)),
    PlaceName(ZHANGTAN, "张滩镇"), PlaceName(ZHANGTAN + "201", "大湾村"),
], source="test")


def test_a_renamed_place_is_found_by_the_name_it_had_on_the_enrollment_date_only(client, system):
    system._places = RENAMED  # this deployment's places table (what LEDGER_PLACES_FILE would load)
    rows = [[1, "周一", "男", number(330), "城乡居民", "旧关镇", "老街村", "", "2023-06-01"],
            [2, "吴二", "女", number(331), "城乡居民", "旧关镇", "关庙社区", "", "2024-09-10"],
            [3, "郑三", "男", number(332), "城乡居民", "关庙镇", "老街村", "", "2024-09-10"],
            [4, "冯四", "女", number(333), "城乡居民", "关庙镇", "关庙社区", "", "2024-09-10"]]
    report = upload(client, xlsx(HEADER, rows), "改名.xlsx").json()
    lines = {line["line"]: line for line in report["lines"]}
    assert (lines[2]["status"], lines[5]["status"]) == ("imported", "imported")
    for n in (330, 333):
        assert system.ledger.find_person("RESIDENT_ID", number(n)).household_grid == GRID_A
    old_township = lines[3]["problems"]
    assert [(p["code"], p["column"]) for p in old_township] == [("IMPORT_PLACE_UNKNOWN", "所属乡镇")]
    assert "「旧关镇」是 …～2023-12-31 期间的名称，参保日期 2024-09-10 时该地名为「关庙镇」" in old_township[0]["message"]
    old_village = lines[4]["problems"]
    assert [(p["code"], p["column"]) for p in old_village] == [("IMPORT_PLACE_UNKNOWN", "所属村（社区）")]
    assert "「老街村」是 …～2023-12-31 期间的名称" in old_village[0]["message"] and "「关庙社区」" in old_village[0]["message"]


@pytest.mark.parametrize("written", ["关庙镇", "关庙", "关庙镇人民政府", " 关 庙 镇 ", "汉滨区关庙镇", "关庙（镇）"])
def test_the_common_ways_of_writing_a_township_find_it(written):
    found = PlaceIndex(RENAMED).find(written, region=HANBIN, digits=9, day=date(2024, 9, 10))
    assert found.codes == (GUANMIAO,)


@pytest.mark.parametrize("written", ["关庙社区", "关庙社区居委会", "关庙社区居民委员会", "关庙", "（关庙社区）", "关庙　社区"])
def test_the_common_ways_of_writing_a_community_find_it(written):
    found = PlaceIndex(RENAMED).find(written, region=HANBIN, digits=12, day=date(2024, 9, 10), under=GUANMIAO)
    assert found.codes == (GRID_A,)


def test_a_name_is_never_stripped_to_nothing_and_the_exact_name_wins_over_its_stem():
    assert place_key("村委会", 12) == "村委会" and place_key("镇", 9) == "镇"
    both = PlaceNames([PlaceName("610902100001", "东坝村"), PlaceName("610902100002", "东坝社区")])
    index = PlaceIndex(both)
    day = date(2024, 1, 1)
    assert index.find("东坝村", region=HANBIN, digits=12, day=day).codes == ("610902100001",)
    assert index.find("东坝社区居委会", region=HANBIN, digits=12, day=day).codes == ("610902100001", "610902100002")


def test_the_same_name_in_another_county_is_not_this_countys():
    found = PlaceIndex(RENAMED).find("关庙镇", region="610921", digits=9, day=date(2024, 9, 10))
    assert found.codes == () and found.other_days == ()


# ------------------------------------------------------------------ the command line and the template
def test_ledger_import_reads_the_names_and_its_template_shows_the_columns(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEDGER_PERSISTENCE", "memory")
    monkeypatch.setenv("LEDGER_ID_KEY", "cli-test")
    template = tmp_path / "模板.xlsx"
    assert ledger_main(["import", "--template", str(template)]) == 0
    capsys.readouterr()
    rows = [list(r) for r in load_workbook(template)["登记表"].iter_rows(values_only=True)]
    example = dict(zip(rows[0], rows[1]))
    assert {"所属乡镇", "所属村（社区）", "联系电话"} <= set(rows[0])
    assert (example["所属乡镇"], example["所属村（社区）"], example["联系电话"]) == ("老城街道", "东坝社区", "13800000000")
    run_as(monkeypatch, tmp_path, "clerk", [HANBIN], user="clerk01")
    sheet = tmp_path / "登记.xlsx"
    sheet.write_bytes(xlsx(HEADER, agency_rows()))
    errors = tmp_path / "错误行.xlsx"
    assert ledger_main(["import", str(sheet), "--errors", str(errors), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["imported"], report["errors"]) == (3, 4)
    codes = {p["code"] for line in report["lines"] for p in line["problems"]}
    assert codes == {"IMPORT_PLACE_MISMATCH", "IMPORT_PLACE_UNKNOWN", "ID_CHECKSUM", "IMPORT_PHONE_INVALID",
                     "IMPORT_PLACE_AMBIGUOUS"}
    assert len(list(load_workbook(errors)["错误行"].iter_rows(min_row=2))) == 4
    assert ledger_main(["import", str(sheet), "--lang", "en"]) == 1  # again, in English: the rows' own English
    out = capsys.readouterr().out
    assert "'建新村' is not under the township '张滩镇'" in out and "no township named '不存在镇'" in out


def test_the_web_template_names_the_clerks_own_county(client, system):
    r = client.get("/imports/template.csv", headers=CLERK)
    header, example = r.content.decode("utf-8-sig").splitlines()[:2]
    values = dict(zip(header.split(","), example.split(",")))
    assert (values["参保地"], values["所属乡镇"], values["所属村（社区）"]) == (HANBIN, "老城街道", "东坝社区")
    assert sheet_residence(system.places) is sheet_residence(system.places)  # the index is built once per table


def test_a_township_without_its_village_is_checked_imported_and_said_to_place_no_grid(client, system):
    rows = [[1, "陈九", "男", number(340), "城乡居民", "关庙", "", "", "2024-09-10"],
            [2, "褚十", "女", number(341), "城乡居民", "不存在镇", "", "", "2024-09-10"]]
    report = upload(client, xlsx(HEADER, rows)).json()
    first, second = report["lines"]
    assert first["status"] == "imported"
    assert [(w["code"], w["column"]) for w in first["warnings"] if w["code"] != "REGION_DEFAULTED"] == [
        ("IMPORT_VILLAGE_MISSING", "所属村（社区）")]
    assert "「关庙」" in first["warnings"][0]["message"] + first["warnings"][-1]["message"]
    assert system.ledger.find_person("RESIDENT_ID", number(340)).household_grid is None
    assert second["status"] == "error" and [p["code"] for p in second["problems"]] == ["IMPORT_PLACE_UNKNOWN"]
