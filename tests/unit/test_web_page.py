"""The grid worker's page over HTTP: served self-contained, /me, entitlement by person id, grid scopes.

(The page in a real browser: tests/integration/test_web_chromium.py.)
"""
from __future__ import annotations

import base64
import hashlib
import re
from datetime import date

import pytest

from ledger.domain.source_record import SourceRecord
from ledger.inbound_records import Provenance, StatusRecord
from tests.unit.http_support import (
    AUDITOR,
    CLERK,
    GRID_A,
    GRID_B,
    GRID_WORKER_A,
    GRID_WORKER_B,
    TAX,
    TOWNSHIP_WORKER,
    client,  # noqa: F401  (fixture)
    enroll,
    number,
    pay,
    person_path,
    system,  # noqa: F401  (fixture)
)

PERIOD = {"year": 2025, "as_of": "2025-03-01"}
CIVIL_AFFAIRS = Provenance(source="kafka", topic="registry.status.v1", partition=0, offset=1)


def masked(n: str) -> str:
    return n[:4] + "*" * 10 + n[-4:]


def assess(client, n: str) -> None:
    r = client.post(person_path(n, "/assessments/resident-year"), json={"year": 2025}, headers=CLERK)
    assert r.status_code == 201, r.json()


@pytest.fixture()
def grids(client, system):
    """Grid A: one paid, one enrolled and unpaid, one subsidised (低保) and unpaid. Grid B: one unpaid."""
    paid, unpaid, subsidised, other = number(41), number(42), number(43), number(44)
    for n in (paid, unpaid, subsidised):
        enroll(client, n)
    enroll(client, other, grid_code=GRID_B)
    system.ledger.apply_status(StatusRecord(
        record_id="MZ-43", id_type="RESIDENT_ID", id_number=subsidised, name="王芳", category="MIN_LIVING",
        granted=True, valid_from=date(2024, 9, 1), valid_to=None, department="汉滨区民政局",
        document_no="汉民发〔2024〕43号"), provenance=CIVIL_AFFAIRS)
    pay(client, paid, "V41")
    for n in (unpaid, subsidised, other):
        assess(client, n)
    return {"paid": paid, "unpaid": unpaid, "subsidised": subsidised, "other": other}


# ------------------------------------------------------------------ the page
def test_the_page_is_served_self_contained_in_chinese(client):
    r = client.get("/web/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert '<html lang="zh-CN">' in html and "应保尽保 · 网格员工作台" in html
    assert 'name="viewport" content="width=device-width' in html
    for heading in ("参保率", "资助参保对象参保率", "未参保人员", "导出 CSV", "导出 Excel", "输入访问令牌"):
        assert heading in html
    # Nothing to fetch from elsewhere: no external script, style, font or image.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html
    assert "/*{{" not in html and "{{labels}}" not in html
    assert '"SUBSIDISED_NOT_COVERED": "资助参保对象未参保缴费"' in html


def test_the_page_admits_only_its_own_inline_script_and_style(client):
    r = client.get("/web/")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    script = re.search(r"<script>(.*?)</script>", r.text, re.S).group(1)
    style = re.search(r"<style>(.*?)</style>", r.text, re.S).group(1)
    for source, directive in ((script, "script-src"), (style, "style-src")):
        digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in csp
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"


def test_web_without_the_slash_redirects_keeping_the_token(client):
    r = client.get("/web?token=abc", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/web/?token=abc"


def test_the_page_needs_no_token_but_every_read_it_makes_does(client):
    assert client.get("/web/").status_code == 200
    r = client.get("/me")
    assert (r.status_code, r.json()["code"]) == (401, "TOKEN_MISSING")


# ------------------------------------------------------------------ /me
def test_me_tells_the_role_and_the_scopes(client):
    r = client.get("/me", headers=GRID_WORKER_A)
    assert r.status_code == 200
    assert r.json() == {
        "user": "grid.a", "role": "grid_worker", "role_label": "网格员", "reads_grids": True,
        "scopes": [{"code": GRID_A, "kind": "grid", "label": "汉滨区 关庙镇 · 关庙社区"}],  # the places table's names
    }
    assert client.get("/me", headers=TOWNSHIP_WORKER).json()["scopes"] == [
        {"code": "610902100", "kind": "township", "label": "汉滨区 关庙镇"}]
    clerk = client.get("/me", headers=CLERK).json()
    assert clerk["scopes"] == [{"code": "610902", "kind": "region", "label": "610902 汉滨区"}]
    auditor = client.get("/me", headers=AUDITOR).json()
    assert (auditor["role_label"], auditor["scopes"], auditor["reads_grids"]) == ("审计", [], True)
    assert client.get("/me", headers=TAX).json()["reads_grids"] is False
    r = client.get("/me", headers={"Authorization": "Bearer nope"})
    assert (r.status_code, r.json()["code"]) == (401, "TOKEN_UNKNOWN")


# ------------------------------------------------------------------ entitlement by person id
def test_entitlement_by_person_id_is_explained_in_chinese(client, grids):
    gaps = client.get(f"/grids/{GRID_A}/gaps", params=PERIOD, headers=GRID_WORKER_A).json()["gaps"]
    assert [g["reason"] for g in gaps] == ["SUBSIDISED_NOT_COVERED", "ENROLLED_UNPAID"]
    first = gaps[0]
    r = client.get(f"/entitlements/{first['person_id']}", params={"year": 2025, "on": first["day"]},
                   headers=GRID_WORKER_A)
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["id_number"] == masked(grids["subsidised"]) and body["covered"] is False
    by_id = client.get(person_path(grids["subsidised"], "/entitlement"), params={"year": 2025, "on": first["day"]},
                       headers=CLERK).json()
    extras = ("id_number", "explanation", "transfers", "address", "phone", "contact_masked", "place_labels")
    assert {k: v for k, v in body.items() if k not in extras} == \
        {k: v for k, v in by_id.items() if k != "id_number"}
    explanation = body["explanation"]
    assert explanation["headline"] == "2025-03-01：2025 年参保费未缴清，不能享受医保待遇"
    lines = {line["topic"]: line["text"] for line in explanation["lines"]}
    assert lines["参保登记"].startswith("城乡居民基本医疗保险，参保地 610902 汉滨区，网格 610902100001（汉滨区 关庙镇 · 关庙社区）")
    assert "欠缴" in lines["缴费"] and "资助" in lines["缴费"]
    assert "低保对象" in lines["资助参保"] and "汉民发〔2024〕43号" in lines["资助参保"]
    assert explanation["advice"].startswith("资助参保对象须应保尽保")


def test_entitlement_by_person_id_of_a_covered_person(client, grids, system):
    person_id = str(system.ledger.person_id("RESIDENT_ID", grids["paid"]))
    body = client.get(f"/entitlements/{person_id}", params={"year": 2025, "on": "2025-03-01"},
                      headers=GRID_WORKER_A).json()
    assert body["covered"] is True
    assert body["explanation"]["headline"] == "2025-03-01：已参保，享受医保待遇（城乡居民基本医疗保险）"
    assert body["explanation"]["advice"] is None
    lines = {line["topic"]: line["text"] for line in body["explanation"]["lines"]}
    assert lines["待遇享受期"] == "2025-01-01 至 2025-12-31"


def test_entitlement_by_person_id_keeps_the_scope_rules(client, grids, system):
    person_id = str(system.ledger.person_id("RESIDENT_ID", grids["unpaid"]))
    r = client.get(f"/entitlements/{person_id}", headers=GRID_WORKER_B)
    assert (r.status_code, r.json()["code"]) == (403, "SCOPE_FORBIDDEN")
    assert "该参保人不在你负责的网格" in r.json()["message"]
    r = client.get(f"/entitlements/{person_id}", headers=TAX)
    assert (r.status_code, r.json()["code"]) == (403, "ROLE_FORBIDDEN")
    assert client.get(f"/entitlements/{person_id}").status_code == 401
    r = client.get(f"/entitlements/{person_id}", params={"year": 2025}, headers=CLERK)
    assert r.status_code == 200 and r.json()["id_number"] == grids["unpaid"]
    source_record = str(SourceRecord.id_for("registry-status", "MZ-43"))  # an aggregate, but not a person
    assert system.ledger.source_record("registry-status", "MZ-43") is not None
    for unknown in ("not-a-uuid", "00000000-0000-0000-0000-000000000000", source_record):
        r = client.get(f"/entitlements/{unknown}", headers=AUDITOR)
        assert (r.status_code, r.json()["code"]) == (404, "PERSON_NOT_FOUND")


# ------------------------------------------------------------------ grid A's worker and grid B
@pytest.mark.parametrize("suffix", ["gaps", "coverage", "gaps.csv", "gaps.xlsx"])
def test_a_grid_worker_of_grid_a_is_refused_grid_b_in_json_and_files(client, grids, suffix):
    r = client.get(f"/grids/{GRID_B}/{suffix}", params=PERIOD, headers=GRID_WORKER_A)
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["code"] == "SCOPE_FORBIDDEN"
    assert f"你没有网格 {GRID_B} 的权限" in r.json()["message"]
    assert client.get(f"/grids/{GRID_A}/{suffix}", params=PERIOD, headers=GRID_WORKER_A).status_code == 200


# ------------------------------------------------------------------ open and overdue transfers
def transfer_out(client, n: str, day: str, tid: str = "ZY-WEB-1") -> None:
    r = client.post(person_path(n, "/transfers/out"), headers=CLERK, json={
        "transfer_id": tid, "counterpart_region": "610921", "effective_date": day})
    assert r.status_code == 201, r.json()


def test_the_gap_list_says_where_an_open_transfer_stands_on_its_day(client, grids):
    """An out half on Monday 12 May 2025 leaves the receiving region 5 working days (to Monday 19 May,
    no holiday between): on 16 May it is 待转入; on Wednesday 21 May it is overdue by 2 working days
    (20 and 21 May). The state is computed when the list is read, for the list's day."""
    transfer_out(client, grids["unpaid"], "2025-05-12")

    def line(as_of: str) -> dict:
        gaps = client.get(f"/grids/{GRID_A}/gaps", params={"year": 2025, "as_of": as_of}, headers=GRID_WORKER_A)
        assert gaps.status_code == 200, gaps.json()
        return next(g for g in gaps.json()["gaps"] if g["id_number"] == masked(grids["unpaid"]))

    early = line("2025-05-16")
    assert early["reason"] == "TRANSFER_INCOMPLETE"
    assert [(t["transfer_id"], t["label"], t["overdue"], t["due_on"]) for t in early["transfers"]] == \
        [("ZY-WEB-1", "待转入", False, "2025-05-19")]
    late = line("2025-05-21")
    assert [(t["label"], t["overdue"], t["overdue_working_days"]) for t in late["transfers"]] == \
        [("待转入，已逾期 2 个工作日", True, 2)]
    assert "已超期 2 个工作日" in late["transfers"][0]["explanation"]
    # Nobody else in the grid has an open transfer.
    gaps = client.get(f"/grids/{GRID_A}/gaps", params={"year": 2025, "as_of": "2025-05-21"},
                      headers=GRID_WORKER_A).json()["gaps"]
    assert [g["transfers"] for g in gaps if g["id_number"] != masked(grids["unpaid"])] == [[]] * (len(gaps) - 1)


def test_the_person_panel_explains_an_overdue_transfer(client, grids, system):
    transfer_out(client, grids["unpaid"], "2025-05-12")
    person_id = str(system.ledger.person_id("RESIDENT_ID", grids["unpaid"]))
    on_time = client.get(f"/entitlements/{person_id}", params={"year": 2025, "on": "2025-05-16"},
                         headers=GRID_WORKER_A).json()
    lines = {line["topic"]: line["text"] for line in on_time["explanation"]["lines"]}
    assert lines["转移接续"] == "转移单 ZY-WEB-1 待转入（须于 2025-05-19 前办结）"
    late = client.get(f"/entitlements/{person_id}", params={"year": 2025, "on": "2025-05-23"},
                      headers=GRID_WORKER_A).json()
    lines = {line["topic"]: line["text"] for line in late["explanation"]["lines"]}
    assert lines["转移接续"] == "转移单 ZY-WEB-1 待转入，已逾期 4 个工作日"
    assert late["transfers"][0]["overdue_working_days"] == 4
    assert late["explanation"]["advice"].startswith("转移接续已超过办理时限")
