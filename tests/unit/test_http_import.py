"""Batch import of the registration spreadsheet: CSV (UTF-8, BOM, GBK) and XLSX, over HTTP and the CLI."""
from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime

import pytest
from openpyxl import Workbook

from entrypoints.cli import main as ledger_main
from consumers.spreadsheets import import_file
from tests.unit.cli_support import run_as
from tests.unit.http_support import (
    approve,
    CLERK,
    GRID_A,
    GRID_WORKER_A,
    HANBIN,
    HANYIN,
    client,  # noqa: F401  (fixture)
    enroll,
    event_count,
    number,
    system,  # noqa: F401  (fixture)
)

HEADER_ZH = ["证件类型", "证件号码", "姓名", "险种", "参保地", "网格", "灵活就业", "单位编号", "参保日期"]
HEADER_EN = ["id_type", "id_number", "name", "scheme", "region_code", "grid_code", "flexible", "employer_id",
             "effective_date"]


def row(seq: int, **over) -> list:
    values = {"id_type": "居民身份证", "id_number": number(seq), "name": f"参保人{seq}", "scheme": "城乡居民",
              "region_code": HANBIN, "grid_code": GRID_A, "flexible": "否", "employer_id": "",
              "effective_date": "2024-09-10"}
    values.update(over)
    return [values[c] for c in HEADER_EN]


def csv_bytes(rows: list[list], header: list[str] = HEADER_ZH, *, encoding: str = "utf-8-sig") -> bytes:
    lines = [",".join(header)] + [",".join(str(v) for v in r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def xlsx_bytes(rows: list[list], header: list[str] = HEADER_EN) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for r in rows:
        sheet.append(r)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(client, data: bytes, filename: str, headers=CLERK):
    return client.post("/imports", files={"file": (filename, data)}, headers=headers)


def by_line(report: dict) -> dict[int, dict]:
    return {line["line"]: line for line in report["lines"]}


# ------------------------------------------------------------------ good files
def test_csv_with_chinese_headers_and_bom_imports_every_row(client, system):
    data = csv_bytes([row(1), row(2), row(3, scheme="职工", flexible="是")])
    r = upload(client, data, "登记表.csv")
    assert r.status_code == 201, r.json()
    report = r.json()
    assert (report["rows"], report["imported"], report["errors"]) == (3, 3, 0)
    assert report["format"] == "csv" and report["encoding"] == "utf-8"
    assert report["lines"][0]["id_number"] == number(1)[:4] + "*" * 10 + number(1)[-4:]
    person = system.ledger.find_person("RESIDENT_ID", number(3))
    assert person.active_enrollment.scheme == "EMPLOYEE" and person.active_enrollment.flexible is True
    enrolled = list(system.ledger.events.get(person.id))[-1]
    assert enrolled.channel == "BATCH_IMPORT"
    digest = hashlib.sha256(data).hexdigest()
    assert enrolled.provenance["record_key"] == f"{digest}:4"
    assert enrolled.provenance["source"] == "batch" and enrolled.provenance["user"] == "clerk.hanbin"


def test_gbk_csv_is_read_too(client, system):
    r = upload(client, csv_bytes([row(4)], encoding="gbk"), "gbk.csv")
    assert r.status_code == 201
    assert r.json()["encoding"] == "gb18030"
    assert system.ledger.find_person("RESIDENT_ID", number(4)).name == "参保人4"


def test_xlsx_made_in_excel_with_date_cells_and_numeric_codes(client, system):
    rows = [row(5, effective_date=datetime(2024, 9, 10), region_code=int(HANBIN), grid_code=int(GRID_A),
                id_type="RESIDENT_ID", scheme="RESIDENT", flexible=None),
            row(6, effective_date="2024/09/11")]
    r = upload(client, xlsx_bytes(rows), "register.xlsx")
    assert r.status_code == 201, r.json()
    assert (r.json()["format"], r.json()["imported"]) == ("xlsx", 2)
    person = system.ledger.find_person("RESIDENT_ID", number(5))
    assert person.active_enrollment.grid_code == GRID_A
    assert str(person.active_enrollment.start_date) == "2024-09-10"


def test_raw_body_upload_with_a_filename(client):
    r = client.post("/imports", params={"filename": "a.csv"}, content=csv_bytes([row(7)]),
                    headers={**CLERK, "Content-Type": "text/csv"})
    assert r.status_code == 201 and r.json()["file"] == "a.csv"


# ------------------------------------------------------------------ wrong columns, bad rows
@pytest.mark.parametrize("header", [
    HEADER_ZH[:-1],  # no 参保日期
    [*HEADER_ZH[:-1], "参保日起"],  # a misspelt required column: ignored, so missing
    [*HEADER_ZH, "姓名"],  # a repeated one
])
def test_wrong_columns_import_nothing_and_list_the_expected_ones(client, system, header):
    data = csv_bytes([row(8)[: len(header)] + [""] * max(0, len(header) - 9)], header=header)
    r = upload(client, data, "wrong.csv")
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "IMPORT_COLUMNS"
    assert "未导入任何一行" in body["message"] and "nothing was imported" not in body["message"]
    for column in ("证件号码（必填）", "参保日期（必填）", "所属村（社区）", "联系电话"):
        assert column in body["message"]
    english = upload(client, data, "wrong.csv", headers={**CLERK, "Accept-Language": "en"}).json()
    assert english["code"] == "IMPORT_COLUMNS" and "nothing was imported" in english["message"]
    assert event_count(system) == 0


def test_wrong_columns_in_xlsx_too(client, system):
    r = upload(client, xlsx_bytes([["x", "y"]], header=["身份证", "名字"]), "wrong.xlsx")
    assert (r.status_code, r.json()["code"]) == (422, "IMPORT_COLUMNS")
    assert set(r.json()["details"]["missing"]) >= {"id_number", "name", "effective_date"}
    assert event_count(system) == 0


def test_bad_rows_are_reported_by_line_and_the_good_ones_imported(client, system):
    rows = [
        row(9),                                            # line 2: good
        row(10, id_number="110105194912310021"),           # line 3: checksum
        row(11, effective_date="2024-13-01"),              # line 4: date
        row(12, scheme="商业保险"),                          # line 5: scheme
        [""] * 9,                                          # line 6: blank, skipped
        row(13, region_code=HANYIN, grid_code=""),         # line 7: not this clerk's region
        row(14, name=""),                                  # line 8: empty name
        row(15, flexible="maybe"),                         # line 9
        row(16, scheme="职工"),                             # line 10: employee needs an employer
        row(17),                                           # line 11: good
    ]
    r = upload(client, csv_bytes(rows), "mixed.csv")
    assert r.status_code == 201
    report = r.json()
    assert (report["rows"], report["imported"], report["errors"]) == (9, 2, 7)
    lines = by_line(report)
    assert 6 not in lines
    assert {n: lines[n]["code"] for n in (3, 4, 5, 7, 8, 9, 10)} == {
        3: "ID_CHECKSUM", 4: "DATE_INVALID", 5: "SCHEME_UNKNOWN", 7: "REGION_NOT_IN_SCOPE", 8: "FIELD_REQUIRED",
        9: "FLEXIBLE_INVALID", 10: "EMPLOYER_REQUIRED"}
    assert lines[2]["status"] == lines[11]["status"] == "imported"
    assert all(lines[n]["message"] for n in lines)


def test_an_id_number_typed_as_an_excel_number_is_refused(client):
    r = upload(client, xlsx_bytes([row(18, id_number=610902198005170018)]), "numbers.xlsx")
    assert r.json()["lines"][0]["code"] == "ID_NOT_TEXT"


def test_unreadable_files(client):
    r = upload(client, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", "old.xls")
    assert (r.status_code, r.json()["code"]) == (422, "IMPORT_FORMAT")
    r = upload(client, b"PK\x03\x04 not really a zip", "broken.xlsx")
    assert (r.status_code, r.json()["code"]) == (422, "IMPORT_FORMAT")
    r = upload(client, b"", "empty.csv")
    assert (r.status_code, r.json()["code"]) == (422, "IMPORT_EMPTY")
    r = client.post("/imports", files={"other": ("a.csv", b"x")}, headers=CLERK)
    assert (r.status_code, r.json()["code"]) == (422, "BODY_INVALID")


# ------------------------------------------------------------------ idempotency
@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_the_same_file_twice_imports_nothing_twice(client, system, kind):
    rows = [row(20), row(21), row(22, id_number="bad")]
    data, name = (csv_bytes(rows), "a.csv") if kind == "csv" else (xlsx_bytes(rows), "a.xlsx")
    first = upload(client, data, name).json()
    assert first["imported"] == 2
    before = event_count(system)
    again = upload(client, data, name)
    assert again.status_code == 200
    report = again.json()
    assert (report["imported"], report["already_imported"], report["errors"]) == (0, 2, 1)
    assert event_count(system) == before


def test_the_same_file_after_an_enrollment_ended_still_imports_nothing_twice(client, system):
    data = csv_bytes([row(23)])
    upload(client, data, "a.csv")
    r = client.post(f"/persons/RESIDENT_ID/{number(23)}/enrollments/end",
                    json={"reason": "MOVED_OUT", "effective_date": "2024-12-01"}, headers=CLERK)
    assert r.status_code == 202  # pending until a second clerk approves (maker-checker)
    approve(client, r)
    assert upload(client, data, "a.csv").json()["already_imported"] == 1


def test_a_person_already_enrolled_at_the_counter_is_reported_not_an_error(client):
    enroll(client, number(24))
    report = upload(client, csv_bytes([row(24)]), "a.csv").json()
    assert report["lines"][0]["status"] == "already_enrolled" and report["errors"] == 0


# ------------------------------------------------------------------ who may import
def test_only_clerks_import(client, system):
    r = upload(client, csv_bytes([row(25)]), "a.csv", headers=GRID_WORKER_A)
    assert (r.status_code, r.json()["code"]) == (403, "ROLE_FORBIDDEN")
    r = upload(client, csv_bytes([row(25)]), "a.csv", headers={})
    assert r.status_code == 401
    assert event_count(system) == 0


# ------------------------------------------------------------------ the CLI and the function
def test_import_function_without_scopes(system):
    report = import_file(system.ledger, csv_bytes([row(26, region_code=HANYIN, grid_code="")]), "a.csv", user="u")
    assert report["imported"] == 1


def test_ledger_import_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEDGER_PERSISTENCE", "memory")
    monkeypatch.setenv("LEDGER_ID_KEY", "cli-test")
    run_as(monkeypatch, tmp_path, "clerk", [HANBIN], user="clerk01")
    path = tmp_path / "登记.csv"
    path.write_bytes(csv_bytes([row(27), row(28, effective_date="bad")]))
    assert ledger_main(["import", str(path)]) == 1  # one row failed
    out = capsys.readouterr().out
    assert "导入 1 行" in out and "DATE_INVALID" in out and "第      3 行  错误" in out
    assert ledger_main(["import", str(path), "--lang", "en"]) == 1
    out = capsys.readouterr().out
    assert "1 imported" in out and "DATE_INVALID" in out and "row      3  error" in out
    path.write_bytes(csv_bytes([row(27)], header=["姓名"]))
    assert ledger_main(["import", str(path)]) == 2
    assert "IMPORT_COLUMNS" in capsys.readouterr().err
    path.write_bytes(csv_bytes([row(29)]))
    assert ledger_main(["import", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["imported"] == 1
