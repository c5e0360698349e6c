"""The texts the web pages and the files show follow the reader's language: Chinese by default, English with
``Accept-Language: en`` (files also ``?lang=en``, the CLI ``--lang en``). Data (names, place names, documents)
is never translated, so "English" means: no Chinese character left once the data is taken out."""
from __future__ import annotations

import csv
import io
import re
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from entrypoints import catalogue
from entrypoints.http.app import create_app
from entrypoints.http.auth import ROLE_LABELS, TokenStore
from entrypoints.http.routes_web import scope_entry
from entrypoints.http.web import exports, labels, ledger_exports
from entrypoints.http.web.explain import explain_entitlement
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain import arrears as domain_arrears
from ledger.domain.gaps import REASON_LABELS
from ledger.domain.places import ANKANG_REGIONS, NO_PLACE_NAMES
from ledger.domain.transfers import STATUS_LABELS
from ledger.policy import PolicyBook
from ledger.policy.model import SUBSIDY_CATEGORIES, WAITING_EXEMPTIONS
from tests.unit import late_fee_support as case
from tests.unit.http_support import (
    AUDITOR,
    CLERK,
    GRID_A,
    GRID_B,
    GRID_WORKER_A,
    HANBIN,
    TOKENS,
    TOWNSHIP,
    client,  # noqa: F401  (fixture)
    system,  # noqa: F401  (fixture)
)
from tests.unit.test_web_page import PERIOD, grids  # noqa: F401  (fixture)

EN = {"Accept-Language": "en"}
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")  # ideographs, CJK punctuation, full-width
#: The data of the fixtures: person names, the places table's and the districts' names, a department and its document.
DATA = sorted({"王芳", "关庙镇", "关庙社区", "汉滨区民政局", "汉民发〔2024〕43号", *ANKANG_REGIONS.values()}, key=len,
              reverse=True)


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in strings(v)]
    return []


def chinese_left(value: Any, data: tuple[str, ...] = ()) -> list[str]:
    """The texts of ``value`` that hold a Chinese character outside the data."""
    out = []
    for text in strings(value):
        rest = text
        for d in (*data, *DATA):
            rest = rest.replace(d, "")
        if HAN.search(rest):
            out.append(text)
    return out


def with_han(value: Any) -> bool:
    return any(HAN.search(s) for s in strings(value))


# ------------------------------------------------------------------ the catalogue and the labels
def test_the_chinese_labels_are_the_domains_own_words():
    """[web_labels] in Chinese says exactly what the domain's tables and the old label tables said."""
    for prefix, table in (("reason", REASON_LABELS), ("subsidy", SUBSIDY_CATEGORIES), ("exemption", WAITING_EXEMPTIONS),
                          ("id_type", labels.ID_TYPES), ("scheme", labels.SCHEMES), ("end_reason", labels.END_REASONS),
                          ("arrears_kind", labels.ARREARS_KINDS), ("awaiting", labels.AWAITING),
                          ("fee_status", domain_arrears.FEE_STATUS_LABELS), ("transfer_status", STATUS_LABELS),
                          ("role", {r.name: v for r, v in ROLE_LABELS.items()})):
        for code, zh in table.items():
            assert catalogue.text("web_labels", f"{prefix}_{code}") == zh, (prefix, code)
            assert not with_han(catalogue.text("web_labels", f"{prefix}_{code}", "en")), (prefix, code)
    assert labels.listed_because({"fee_only": True}) == domain_arrears.FEE_ONLY_LABEL
    assert labels.listed_because({}) == domain_arrears.OUTSTANDING_LABEL


@pytest.mark.parametrize("section", ["web_labels", "web_explain", "exports"])
def test_every_english_text_of_the_new_sections_is_english(section):
    for key, texts in catalogue.table(section).items():
        assert not HAN.search(texts["en"]), (section, key, texts["en"])
        assert HAN.search(texts["zh"]) or key in ("yes", "no"), (section, key)  # (zh "是"/"否" are Chinese too)


def test_a_place_without_a_name_says_its_kind_in_the_language_and_keeps_the_district_name():
    assert labels.place("610902105204") == "汉滨区 镇 610902105 · 村 204"
    assert labels.place("610902105204", lang="en") == "汉滨区 town 610902105 · village 204"
    assert labels.place("610902005", lang="en") == "汉滨区 subdistrict 610902005"
    assert scope_entry("610902100204", NO_PLACE_NAMES, date(2025, 3, 1)) == {
        "code": "610902100204", "kind": "grid", "label": "汉滨区 网格 610902100204"}
    assert scope_entry("610902100204", NO_PLACE_NAMES, date(2025, 3, 1), lang="en") == {
        "code": "610902100204", "kind": "grid", "label": "汉滨区 grid 610902100204"}
    state = {"awaiting": "RECEIVING", "overdue": True, "overdue_working_days": 3}
    assert labels.transfer_state(state) == "待转入，已逾期 3 个工作日"
    assert labels.transfer_state(state, "en") == "to be received, overdue by 3 working days"
    assert [labels.reconciliation_state(s, "en") for s in ("BALANCED", "DIFFERENCE")] == ["balanced", "difference"]
    assert labels.reconciliation_state("BALANCED") == "已平账"
    assert labels.year_basis("latest_with_data", "en") == "the latest year with coverage data"


# ------------------------------------------------------------------ /me and the person sheet
def test_me_in_english_names_the_role_and_keeps_the_place_names(client):
    me = client.get("/me", headers={**GRID_WORKER_A, **EN}).json()
    assert me["role_label"] == "grid worker" and me["role"] == "grid_worker"
    assert me["scopes"] == [{"code": GRID_A, "kind": "grid", "label": "汉滨区 关庙镇 · 关庙社区"}]  # data
    assert client.get("/me", headers={**AUDITOR, **EN}).json()["role_label"] == "auditor"
    assert client.get("/me", headers={**AUDITOR, "Accept-Language": "zh-CN,en;q=0.5"}).json()["role_label"] == "审计"


def test_the_person_sheet_is_explained_in_english_on_request_and_in_chinese_by_default(client, grids):
    gaps = client.get(f"/grids/{GRID_A}/gaps", params=PERIOD, headers=GRID_WORKER_A).json()["gaps"]
    path, params = f"/entitlements/{gaps[0]['person_id']}", {"year": 2025, "on": gaps[0]["day"]}
    zh = client.get(path, params=params, headers=GRID_WORKER_A).json()
    en = client.get(path, params=params, headers={**GRID_WORKER_A, **EN}).json()
    assert zh["explanation"]["headline"] == "2025-03-01：2025 年参保费未缴清，不能享受医保待遇"
    assert en["explanation"]["headline"] == "2025-03-01: the 2025 contribution is not paid in full, not covered"
    topics = [line["topic"] for line in en["explanation"]["lines"]]
    assert topics[:3] == ["Enrollment", "Contribution", "Subsidy"]
    assert [line["topic"] for line in zh["explanation"]["lines"]][:3] == ["参保登记", "缴费", "资助参保"]
    lines = {line["topic"]: line["text"] for line in en["explanation"]["lines"]}
    assert lines["Enrollment"].startswith("urban and rural residents' basic medical insurance, region 610902 汉滨区, "
                                          "grid 610902100001 (汉滨区 关庙镇 · 关庙社区)")
    assert "minimum living allowance" in lines["Subsidy"] and "汉民发〔2024〕43号" in lines["Subsidy"]  # the document: data
    assert en["explanation"]["advice"].startswith("Subsidised people must all be covered")
    assert chinese_left([en["explanation"], en["place_labels"], en["reason_text"]]) == []
    # the same figures either way: only the words change
    assert {k: v for k, v in en.items() if k not in ("explanation", "reason_text")} == \
        {k: v for k, v in zh.items() if k not in ("explanation", "reason_text")}


def test_the_explanation_of_a_waiting_period_and_a_transfer_in_english():
    answer = {"year": 2025, "on": "2025-03-01", "covered": False, "resident_year": {
        "enrollment_id": "e", "scheme": "RESIDENT", "region_code": HANBIN, "grid_code": GRID_A,
        "enrollment_start": "2025-01-01", "assessed": True, "due_fen": 40000, "standard_fen": 40000,
        "due_date": "2025-02-28", "net_paid_fen": 40000, "funded": True, "funded_on": "2025-02-10",
        "waiting_months": 3, "waiting_until": "2025-05-10", "coverage_start": "2025-05-11", "gap_years": 2,
        "back_paid_years": 1, "continuous_years": 0, "coverage_periods": [("2025-05-11", "2025-12-31")]},
        "transfers": [{"transfer_id": "ZY-1", "awaiting": "RECEIVING", "overdue": False, "due_on": "2025-03-07"}],
        "policy_version": "610902-2025-d1"}
    en = explain_entitlement(answer, "en")
    lines = {line["topic"]: line["text"] for line in en["lines"]}
    assert en["headline"] == "2025-03-01: paid, in the waiting period; covered from 2025-05-11"
    assert lines["Waiting period"] == ("3 months, until 2025-05-10; covered from 2025-05-11 (paid on 2025-02-10, "
                                       "not insured for 2 years before, 1 years back-paid)")
    assert lines["Transfer"] == "transfer ZY-1 to be received (to be completed by 2025-03-07)"
    assert en["advice"].startswith("Ask the insurance offices of the sending and the receiving region")
    assert chinese_left(en) == []
    zh = explain_entitlement(answer)
    assert {line["topic"]: line["text"] for line in zh["lines"]}["待遇等待期"] == (
        "3 个月，至 2025-05-10 止，2025-05-11 起享受待遇（2025-02-10 缴费，此前连续 2 年未参保，已补缴 1 年）")


# ------------------------------------------------------------------ the grid reads
def test_the_grid_reads_say_their_words_in_english_and_keep_codes_and_figures(client, grids):
    for path in (f"/grids/{GRID_A}/gaps", f"/grids/{GRID_A}/coverage", f"/grids/{TOWNSHIP}/gaps"):
        zh = client.get(path, params=PERIOD, headers=CLERK).json()
        en = client.get(path, params=PERIOD, headers={**CLERK, **EN}).json()
        assert zh["year_basis_label"] == "按查询的年度" and en["year_basis_label"] == "the year asked for"
        assert en["year_basis"] == zh["year_basis"] == "asked" and en["label"] == zh["label"]  # place names: data
        assert chinese_left({k: v for k, v in en.items() if k != "gaps"}) == []
    gaps_en = client.get(f"/grids/{GRID_A}/gaps", params=PERIOD, headers={**CLERK, **EN}).json()["gaps"]
    gaps_zh = client.get(f"/grids/{GRID_A}/gaps", params=PERIOD, headers=CLERK).json()["gaps"]
    assert [g["label"] for g in gaps_zh] == ["资助参保对象未参保缴费", "已登记未缴费"]
    assert [g["label"] for g in gaps_en] == ["subsidised person not enrolled or not paid", "enrolled, not paid"]
    assert [g["reason"] for g in gaps_en] == [g["reason"] for g in gaps_zh]
    assert chinese_left([[g["label"], g["grid_label"]] for g in gaps_en]) == []
    areas = client.get(f"/regions/{HANBIN}/areas", params=PERIOD, headers={**CLERK, **EN}).json()
    assert areas["year_basis_label"] == "the year asked for" and chinese_left(areas) == []


# ------------------------------------------------------------------ the gap list as a file
def read_csv(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


EN_HEADERS = ["No.", "Name", "ID type", "ID number (masked)", "Grid code", "Township and village (community)",
              "Reason not covered", "Reason code", "Subsidised", "Subsidised group", "Outstanding (yuan)", "Day counted",
              "System note"]


@pytest.mark.parametrize("how", [{"params": {"lang": "en"}}, {"headers": EN}], ids=["?lang=en", "Accept-Language"])
def test_the_gap_list_csv_in_english(client, grids, how):
    r = client.get(f"/grids/{GRID_A}/gaps.csv", params={**PERIOD, **how.get("params", {})},
                   headers={**GRID_WORKER_A, **how.get("headers", {})})
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = read_csv(r.content)
    assert rows[0] == EN_HEADERS
    assert [row[6:10] for row in rows[1:]] == [
        ["subsidised person not enrolled or not paid", "SUBSIDISED_NOT_COVERED", "yes", "minimum living allowance"],
        ["enrolled, not paid", "ENROLLED_UNPAID", "no", ""]]
    assert rows[1][2] == "resident ID card" and rows[1][5] == "汉滨区 关庙镇 · 关庙社区"
    assert rows[2][12].startswith("not covered")  # the domain's own sentence, with its dates and sums
    assert chinese_left(rows) == []
    disposition = r.headers["content-disposition"]
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == f"gap-list_{GRID_A}_2025.csv"
    assert f'filename="gaps_{GRID_A}_2025.csv"' in disposition


def test_the_gap_list_xlsx_in_english_and_in_chinese(client, grids):
    en = client.get(f"/grids/{GRID_A}/gaps.xlsx", params={**PERIOD, "lang": "en"}, headers=GRID_WORKER_A)
    sheet = load_workbook(io.BytesIO(en.content)).active
    assert sheet.title == "gap list"
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == EN_HEADERS and chinese_left(rows) == []
    assert rows[2][10] == Decimal("400.00") or rows[2][10] == 400  # yuan as a number, whatever the language
    zh = client.get(f"/grids/{GRID_A}/gaps.xlsx", params=PERIOD, headers=GRID_WORKER_A)
    zh_sheet = load_workbook(io.BytesIO(zh.content)).active
    zh_rows = list(zh_sheet.iter_rows(values_only=True))
    assert zh_sheet.title == "应保尽保名单" and list(zh_rows[0]) == list(exports.HEADERS)
    assert zh_rows[0][12] == "系统说明" and zh_rows[1][12].startswith("2025-03-01：2025 年度未享受医保待遇")
    assert not re.search(r"[A-Za-z]{3,}", zh_rows[2][12])  # the 系统说明 column is Chinese
    # ?lang= wins over the header; anything but English is Chinese
    r = client.get(f"/grids/{GRID_A}/gaps.csv", params={**PERIOD, "lang": "zh"}, headers={**GRID_WORKER_A, **EN})
    assert read_csv(r.content)[0] == list(exports.HEADERS)


# ------------------------------------------------------------------ arrears and late fees
@pytest.fixture()
def fees_api(tmp_path):
    system = bootstrap(Settings(persistence="memory", id_key=b"web-texts"),
                       policies=PolicyBook.load(case.policy_dir(tmp_path)))
    numbers = case.employer_owes_january(system.ledger)
    case.employer_pays_january(system.ledger, numbers)
    yield TestClient(create_app(system, TokenStore.from_tokens(TOKENS)))
    system.close()


AFTER = {"region": case.HANBIN, "as_of": "2026-04-01"}


def test_the_arithmetic_said_from_its_figures_is_the_domains_sentence_in_chinese(fees_api):
    rows = fees_api.get("/fees", params={**AFTER, "all": True}, headers=CLERK).json()["fees"]
    arrears = fees_api.get("/arrears", params=AFTER, headers=CLERK).json()["arrears"]
    assert rows and arrears
    for r in rows:
        assert ledger_exports.fee_arithmetic(r) == r["arithmetic"]
    for r in arrears:
        assert ledger_exports.fee_arithmetic(r["late_fee_terms"]) == r["late_fee_arithmetic"]
    # the part-paid, the paid and the waived forms too
    terms = {"principal_fen": 100000, "days": 10, "fen_days": 600000, "rate_ppm_per_day": 500, "accrued_fen": 300,
             "fee_paid_fen": 100, "owed_fen": 200, "fee_status": "PART_PAID"}
    assert ledger_exports.fee_arithmetic(terms) == \
        "逐日欠款累计 6,000.00 元·天 × 0.05%/天 = 3.00 元（含部分缴款，本金 1,000.00 元）；已缴 1.00 元，尚欠 2.00 元"
    assert ledger_exports.fee_arithmetic(terms, "en") == ("daily outstanding summed 6,000.00 yuan·days × 0.05%/day = "
                                                          "3.00 yuan (part payments included, principal 1,000.00 yuan)"
                                                          "; 1.00 yuan paid, 2.00 yuan still owed")
    assert ledger_exports.fee_arithmetic({**terms, "fen_days": 1000000, "fee_status": "WAIVED"}, "en") == \
        "1,000.00 yuan × 10 days × 0.05%/day = 3.00 yuan; waived"


def test_the_fee_list_and_the_arrears_in_english_keep_codes_and_figures(fees_api):
    zh = fees_api.get("/fees", params=AFTER, headers=CLERK).json()
    en = fees_api.get("/fees", params=AFTER, headers={**CLERK, **EN}).json()
    assert en["fees"][0]["arithmetic"] == "1,250.00 yuan × 60 days × 0.05%/day = 37.50 yuan"
    assert [r["fee_status_label"] for r in en["fees"]] == ["owed"] * case.EMPLOYEES
    assert [r["fee_status"] for r in en["fees"]] == [r["fee_status"] for r in zh["fees"]]
    assert zh["fees"][0]["fee_status_label"] == "未缴" and "元 × 60 天" in zh["fees"][0]["arithmetic"]
    assert en["owed_fen"] == zh["owed_fen"] == case.FEE_FEN
    assert chinese_left([[r["arithmetic"], r["fee_status_label"]] for r in en["fees"]]) == []
    arrears = fees_api.get("/arrears", params=AFTER, headers={**CLERK, **EN}).json()["arrears"]
    assert chinese_left([r["late_fee_arithmetic"] for r in arrears]) == []


def test_the_arrears_and_fee_files_in_english(fees_api):
    r = fees_api.get("/arrears.xlsx", params={**AFTER, "lang": "en"}, headers=CLERK)
    assert r.status_code == 200
    assert unquote(r.headers["content-disposition"].split("filename*=UTF-8''")[1]) == "arrears_610902_2026-04-01.xlsx"
    book = load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == ["Employer totals", "Arrears"]
    rows = list(book["Arrears"].iter_rows(values_only=True))
    assert rows[0][:3] == ("No.", "Kind", "Employer") and rows[0][-1] == "Late fee arithmetic"
    assert rows[1][1] == "employee of an employer" and rows[1][14] == "late fee unpaid"
    assert rows[1][15].endswith("= 37.50 yuan") and chinese_left(rows) == []
    employers = list(book["Employer totals"].iter_rows(values_only=True))
    assert employers[0][-1] == "Most days overdue" and chinese_left(employers) == []
    r = fees_api.get("/arrears.csv", params={**AFTER, "by": "employer"}, headers={**CLERK, **EN})
    assert unquote(r.headers["content-disposition"].split("filename*=UTF-8''")[1]) == \
        "arrears_610902_2026-04-01_by-employer.csv"
    assert read_csv(r.content)[0][:2] == ["No.", "Employer"]
    r = fees_api.get("/fees.csv", params={**AFTER, "lang": "en"}, headers=CLERK)
    lines = read_csv(r.content)
    assert lines[0][-4:] == ["Status", "Arithmetic", "Waiver reason", "Approver"] and chinese_left(lines) == []
    assert lines[1][11] == "0.05%/day" and lines[1][16] == "owed"
    r = fees_api.get("/fees.xlsx", params={**AFTER, "lang": "en"}, headers=CLERK)
    assert load_workbook(io.BytesIO(r.content)).sheetnames == ["Late fees"]
    assert unquote(r.headers["content-disposition"].split("filename*=UTF-8''")[1]) == "late-fees_610902_2026-04-01.xlsx"
    # and by default, as before: Chinese
    book = load_workbook(io.BytesIO(fees_api.get("/arrears.xlsx", params=AFTER, headers=CLERK).content))
    assert book.sheetnames == ["单位欠费合计", "欠费明细"]
    assert list(book["欠费明细"].iter_rows(values_only=True))[0][-1] == "滞纳金计算"
    zh = read_csv(fees_api.get("/fees.csv", params=AFTER, headers=CLERK).content)
    assert zh[0][0] == "序号" and zh[1][11] == "0.05%/天" and zh[1][16] == "未缴"


# ------------------------------------------------------------------ the dashboard
def test_the_dashboard_in_english_names_places_from_the_places_table(client, grids):
    zh = client.get(f"/regions/{HANBIN}/dashboard", params=PERIOD, headers=CLERK).json()
    en = client.get(f"/regions/{HANBIN}/dashboard", params=PERIOD, headers={**CLERK, **EN}).json()
    assert [t["label"] for t in zh["townships"]] == ["汉滨区 关庙镇"]  # named, not "汉滨区 镇 610902100"
    # grid A has a name in the places table (data, the same in English), grid B only its kind and number
    assert {g["code"]: g["label"] for g in zh["grids"]} == {GRID_A: "汉滨区 关庙镇 · 关庙社区", GRID_B: "汉滨区 关庙镇 · 社区 002"}
    assert {g["code"]: g["label"] for g in en["grids"]} == {GRID_A: "汉滨区 关庙镇 · 关庙社区",
                                                            GRID_B: "汉滨区 关庙镇 · community 002"}
    assert zh["year_basis_label"] == "按查询的年度" and en["year_basis_label"] == "the year asked for"
    assert chinese_left(en) == []
    svg = client.get(f"/regions/{HANBIN}/dashboard.svg", params=PERIOD, headers={**CLERK, **EN}).text
    texts = re.findall(r">([^<>]+)<", svg)
    assert "Coverage 2025 (furthest from target first)" in texts and "target 95.00%" in texts
    assert chinese_left(texts) == []
    zh_svg = client.get(f"/regions/{HANBIN}/dashboard.svg", params=PERIOD, headers=CLERK).text
    assert "参保率" in zh_svg


# ------------------------------------------------------------------ the command line's files
def test_ledger_arrears_and_fees_files_follow_lang(tmp_path, monkeypatch, capsys):
    from entrypoints.wiring import bootstrap as boot
    from infra.settings import load_settings
    from tests.unit.cli_support import embedded, run, run_as

    embedded(monkeypatch, tmp_path, "web-texts-cli")
    monkeypatch.setenv("LEDGER_POLICY_DIR", str(case.policy_dir(tmp_path)))
    s = boot(load_settings())
    try:
        numbers = case.employer_owes_january(s.ledger)
        case.employer_pays_january(s.ledger, numbers)
    finally:
        s.close()
    assert run(capsys, "project", "--quiet")[0] == 0
    run_as(monkeypatch, tmp_path, "clerk", [case.HANBIN], user="clerk.wang")
    target = tmp_path / "arrears-en.xlsx"
    assert run(capsys, "arrears", "--region", case.HANBIN, "--as-of", "2026-04-01", "--xlsx", str(target),
               "--lang", "en")[0] == 0
    book = load_workbook(target)
    assert book.sheetnames == ["Employer totals", "Arrears"]
    assert chinese_left(list(book["Arrears"].iter_rows(values_only=True))) == []
    target = tmp_path / "fees-en.csv"
    assert run(capsys, "fees", "--region", case.HANBIN, "--as-of", "2026-04-01", "--csv", str(target),
               "--lang", "en")[0] == 0
    lines = read_csv(target.read_bytes())
    assert lines[0][0] == "No." and chinese_left(lines) == [] and len(lines) == 1 + case.EMPLOYEES
    status, out, _ = run(capsys, "fees", "--region", case.HANBIN, "--as-of", "2026-04-01", "--lang", "en")
    assert status == 0 and "未缴" not in out and "owed" in out
    target = tmp_path / "fees.csv"
    assert run(capsys, "fees", "--region", case.HANBIN, "--as-of", "2026-04-01", "--csv", str(target))[0] == 0
    assert read_csv(target.read_bytes())[0][0] == "序号"


# ------------------------------------------------------------------ the transfer lists
def test_transfer_lists_in_english_say_the_state_and_keep_codes(client):
    from tests.unit.http_support import CLERK_HANYIN, HANYIN, number
    from tests.unit.test_hostile_transfers import employee, transfer_in, transfer_out

    n = number(23)
    employee(client, n, balance_fen=8_000)
    assert transfer_out(client, n, "ZY-4", on="2025-03-03").status_code == 201
    params = {"region": HANYIN, "as_of": "2025-03-07"}
    (zh,) = client.get("/transfers", params=params, headers=CLERK_HANYIN).json()["transfers"]
    (en,) = client.get("/transfers", params=params, headers={**CLERK_HANYIN, **EN}).json()["transfers"]
    assert zh["status_label"] == "已转出待转入" and zh["explanation"].startswith("转移单 ZY-4 待转入地办理")
    assert en["status_label"] == "transferred out, awaiting the transfer-in"
    assert en["explanation"] == "transfer ZY-4 awaits the receiving region, to be completed by 2025-03-10"
    assert {k: v for k, v in en.items() if k not in ("status_label", "explanation")} == \
        {k: v for k, v in zh.items() if k not in ("status_label", "explanation")}
    (late,) = client.get("/transfers", params={**params, "as_of": "2025-04-09"},
                         headers={**CLERK_HANYIN, **EN}).json()["transfers"]
    assert late["explanation"] == "transfer ZY-4 awaits the receiving region, due by 2025-03-10, overdue by 21 working days"
    assert transfer_in(client, n, "ZY-4", on="2025-04-10").status_code == 201
    (done,) = client.get("/transfers", params={**params, "as_of": "2025-04-10"},
                         headers={**CLERK_HANYIN, **EN}).json()["transfers"]
    assert (done["status_label"], done["explanation"]) == ("completed", "transfer ZY-4 completed")
    m = number(24)
    assert transfer_in(client, m, "GD-9", source="440305", account_balance_fen=500,
                       contribution_months=3).status_code == 201
    rows = client.get("/transfers", params=params, headers={**CLERK_HANYIN, **EN}).json()["transfers"]
    external = next(r for r in rows if r["transfer_id"] == "GD-9")
    assert external["explanation"].endswith("(from another province; no transfer-out in this ledger)")
    assert chinese_left([[r["status_label"], r["explanation"]] for r in rows]) == []
