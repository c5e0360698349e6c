"""The gap list as CSV (UTF-8 with BOM, for Excel) and XLSX: rows, Chinese headers, masked ID numbers."""
from __future__ import annotations

import csv
import io
from decimal import Decimal
from urllib.parse import unquote

from openpyxl import load_workbook

from entrypoints.http.web import exports
from tests.unit.http_support import (
    AUDITOR,
    CLERK,
    GRID_A,
    GRID_WORKER_A,
    TOWNSHIP,
    TOWNSHIP_WORKER,
    client,  # noqa: F401  (fixture)
    system,  # noqa: F401  (fixture)
)
from tests.unit.test_web_page import PERIOD, grids, masked  # noqa: F401  (fixture)

HEADERS = ["序号", "姓名", "证件类型", "证件号码（已脱敏）", "网格代码", "所在乡镇及村（社区）", "未参保原因", "原因代码", "资助参保对象",
           "资助类别", "欠缴金额（元）", "统计日期", "系统说明"]


def read_csv(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_csv_starts_with_the_bom_and_holds_the_gap_list_with_masked_ids(client, grids):
    r = client.get(f"/grids/{GRID_A}/gaps.csv", params=PERIOD, headers=GRID_WORKER_A)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.content.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in r.content
    rows = read_csv(r.content)
    assert rows[0] == HEADERS
    assert [row[:11] for row in rows[1:]] == [
        ["1", "王芳", "居民身份证", masked(grids["subsidised"]), GRID_A, "汉滨区 关庙镇 · 关庙社区", "资助参保对象未参保缴费",
         "SUBSIDISED_NOT_COVERED", "是", "低保对象", rows[1][10]],
        ["2", "王芳", "居民身份证", masked(grids["unpaid"]), GRID_A, "汉滨区 关庙镇 · 关庙社区", "已登记未缴费",
         "ENROLLED_UNPAID", "否", "", "400.00"],
    ]
    assert rows[1][10].endswith(".00") and 0 < Decimal(rows[1][10]) < 400
    assert rows[1][11] == "2025-03-01"
    assert rows[1][12] == f"2025-03-01：2025 年度未享受医保待遇，资助参保对象（低保对象）尚未参保缴费，须应保尽保，欠缴 {rows[1][10]} 元"
    assert rows[2][12] == "2025-03-01：2025 年度未享受医保待遇，已参保登记，参保费未缴清，欠缴 400.00 元"
    assert r.headers["x-row-count"] == "2"
    assert r.headers["cache-control"] == "no-store"


def test_the_file_names_are_chinese_with_an_ascii_fallback(client, grids):
    r = client.get(f"/grids/{GRID_A}/gaps.csv", params={**PERIOD, "reason": "ENROLLED_UNPAID"}, headers=GRID_WORKER_A)
    disposition = r.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="gaps_{GRID_A}_2025_ENROLLED_UNPAID.csv"')
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == f"应保尽保名单_{GRID_A}_2025_ENROLLED_UNPAID.csv"
    assert [row[7] for row in read_csv(r.content)[1:]] == ["ENROLLED_UNPAID"]


def test_files_mask_id_numbers_even_for_those_who_may_see_them(client, grids):
    json_rows = client.get(f"/grids/{GRID_A}/gaps", params=PERIOD, headers=CLERK).json()["gaps"]
    assert json_rows[1]["id_number"] == grids["unpaid"]  # the clerk of the region sees it on screen, not in a file
    for headers in (CLERK, AUDITOR):
        rows = read_csv(client.get(f"/grids/{GRID_A}/gaps.csv", params=PERIOD, headers=headers).content)
        assert [row[3] for row in rows[1:]] == [masked(grids["subsidised"]), masked(grids["unpaid"])]


def test_xlsx_opens_with_openpyxl_with_a_bold_header_widths_and_the_rows(client, grids):
    r = client.get(f"/grids/{GRID_A}/gaps.xlsx", params=PERIOD, headers=GRID_WORKER_A)
    assert r.status_code == 200
    assert r.headers["content-type"] == exports.XLSX_MEDIA_TYPE
    assert unquote(r.headers["content-disposition"].split("filename*=UTF-8''")[1]) == f"应保尽保名单_{GRID_A}_2025.xlsx"
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet.title == "应保尽保名单"
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == HEADERS
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["D"].width == 22 and sheet.column_dimensions["M"].width == 80
    assert [(r[0], r[3], r[7], r[8]) for r in rows[1:]] == [
        (1, masked(grids["subsidised"]), "SUBSIDISED_NOT_COVERED", "是"),
        (2, masked(grids["unpaid"]), "ENROLLED_UNPAID", "否"),
    ]
    assert rows[2][10] == 400 and sheet["K3"].number_format == "0.00"


def test_a_township_export_and_an_empty_one(client, grids):
    rows = read_csv(client.get(f"/grids/{TOWNSHIP}/gaps.csv", params=PERIOD, headers=TOWNSHIP_WORKER).content)
    assert [row[4] for row in rows[1:]] == [GRID_A, GRID_A, "610902100002"]
    r = client.get(f"/grids/{GRID_A}/gaps.csv", params={**PERIOD, "reason": "LAPSED"}, headers=GRID_WORKER_A)
    assert read_csv(r.content) == [HEADERS]
    sheet = load_workbook(io.BytesIO(client.get(f"/grids/{GRID_A}/gaps.xlsx", params={**PERIOD, "reason": "LAPSED"},
                                                headers=GRID_WORKER_A).content)).active
    assert sheet.max_row == 1


def test_exports_refuse_what_the_json_route_refuses(client, grids):
    for suffix in ("gaps.csv", "gaps.xlsx"):
        r = client.get(f"/grids/{GRID_A}/{suffix}", params={**PERIOD, "reason": "SLEEPING"}, headers=GRID_WORKER_A)
        assert (r.status_code, r.json()["code"]) == (422, "REASON_UNKNOWN")
        r = client.get(f"/grids/6109021000/{suffix}", headers=AUDITOR)
        assert (r.status_code, r.json()["code"]) == (422, "GRID_FORMAT")
        r = client.get(f"/grids/610902100099/{suffix}", params=PERIOD, headers=AUDITOR)
        assert (r.status_code, r.json()["code"]) == (404, "GRID_UNKNOWN")
        assert client.get(f"/grids/{GRID_A}/{suffix}", params=PERIOD).status_code == 401


def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_quoted():
    gaps = [{"person_id": "p", "grid_code": GRID_A, "reason": "NOT_ENROLLED", "subsidised": False,
             "outstanding_fen": None, "day": "2025-03-01", "detail": "=HYPERLINK(\"x\")"}]
    row = exports.table_rows(gaps, {"p": ("RESIDENT_ID", "110105194912310020", "=cmd|' /c calc'!A0")})[0]
    assert row[1] == "'=cmd|' /c calc'!A0"
    assert exports.table_rows(gaps, {}, lang="en")[0][12].startswith("'=")  # the domain's sentence, in English
    assert row[10] is None
    sheet = load_workbook(io.BytesIO(exports.xlsx_bytes([row]))).active
    assert sheet["B2"].data_type == "s" and sheet["B2"].value.startswith("'=")
    assert read_csv(exports.csv_bytes([row]))[1][10] == ""
