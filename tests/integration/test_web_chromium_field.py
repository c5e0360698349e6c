"""Screenshots for the field (issue 21), in headless Chromium at 390 px (phone) and 1280 px (desktop),
checked on visible text and layout: the grid page with 5,000 people (paged, searched by an ID's last
digits), the clerk's import page with a sheet full of errors (every problem of every row, the error
workbook and the template downloaded), ``/docs`` with no network beyond this server (Swagger UI lists
the operations), and the auditor's HTML report. Screenshots under ``var/screenshots/field-*.png``.

The browser, DevTools driver and tab come from tests/integration/test_web_chromium.py; the 5,000-person
server from tests/integration/test_web_chromium_grid_page.py.
"""
from __future__ import annotations

import io
import time
from datetime import date
from pathlib import Path

import pytest

from tests.integration.test_web_chromium import (  # noqa: F401  (fixtures)
    PHONE,
    SCREENSHOTS,
    browser,
    chromium,
    decode_png,
    tab,
)
from tests.integration.test_web_chromium_grid_page import CARDS, crowd, text, url  # noqa: F401  (fixture)
from tests.unit.http_support import GRID_A, number

pytestmark = pytest.mark.integration

DESKTOP = {"width": 1280, "height": 800}
SIZES = [("390", PHONE["width"], PHONE["height"], True), ("1280", DESKTOP["width"], DESKTOP["height"], False)]


def no_sideways_scroll(tab) -> None:
    width = tab.js("document.documentElement.clientWidth")
    wide = tab.js("""Array.from(document.querySelectorAll('body *')).filter(e => !e.closest('.scroll'))
        .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
        .slice(0, 3).map(e => e.tagName + '.' + e.className + ': ' + (e.innerText || '').slice(0, 60))""")
    assert tab.js("document.documentElement.scrollWidth") <= width + 1, f"the page scrolls sideways: {wide}"


def downloaded(folder: Path, suffix: str, timeout: float = 20) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.name.endswith(suffix)]
        if done:
            return done[0]
        time.sleep(0.05)
    raise AssertionError(f"no {suffix} download in {folder}: {[p.name for p in folder.iterdir()]}")


# ------------------------------------------------------------------ the grid page with 5,000 people
@pytest.mark.parametrize("size,width,height,mobile", SIZES, ids=[s[0] for s in SIZES])
def test_5000_people_paged_and_found_by_the_last_digits_of_their_id(crowd, tab, size, width, height, mobile):
    tab.viewport(width, height, mobile=mobile)
    tab.goto(url(crowd, "tok-grid-a", grid=GRID_A, year="2025", as_of="2025-03-01"))
    tab.wait_for("document.body.dataset.state === 'ready'")
    assert text(tab, "gap-count") == "共 5000 人 · 第 1/100 页"
    assert text(tab, "page-text") == "第 1 / 100 页，共 5000 人"
    assert tab.js(f"{CARDS}.length") == 50
    assert text(tab, "result-title").startswith("汉滨区 关庙镇 · 关庙社区 · 2025 年度")
    no_sideways_scroll(tab)
    tab.screenshot(SCREENSHOTS / f"field-grid-5000-{size}.png")

    # The grid worker sees masked numbers (6109**********1234) and finds a person by the last 4 shown.
    tail = number(4999 % 1000, date(1950 + 4999 // 1000, 1, 1))[-4:]
    matching = sum(number(i % 1000, date(1950 + i // 1000, 1, 1)).endswith(tail) for i in range(5000))
    tab.js(f"document.getElementById('search-input').value = '{tail}'")
    tab.tap("#search-form button[type=submit]")
    tab.wait_for(f"{CARDS}.length === {matching}")
    assert text(tab, "gap-count") == f"找到 {matching} 人"
    ids = tab.js(f"Array.from({CARDS}).map(c => c.querySelector('.idno').innerText)")
    assert ids and all(i.endswith(tail) and "*" in i for i in ids), ids
    assert "张七4999" in tab.js(f"Array.from({CARDS}).map(c => c.querySelector('.name').innerText)")
    no_sideways_scroll(tab)
    tab.screenshot(SCREENSHOTS / f"field-grid-search-{size}.png")


# ------------------------------------------------------------------ the import page
HEADER = ["序号", "姓名", "性别", "身份证号码", "参保类别", "所属乡镇", "所属村（社区）", "联系电话", "参保日期"]


def _bad_checksum(seq: int) -> str:
    good = number(seq)
    return good[:-1] + ("0" if good[-1] != "0" else "1")


def agency_sheet() -> bytes:
    """The agency's sheet as the issue shows it: two good rows (place codes, place names), one row with four
    problems (one a village outside its township), one with four (an unknown township, a bad phone), and one
    imported with a notice (a township without its village)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    sheet.append([1, "王芳", "女", number(601), "城乡居民", "610902100", GRID_A, "13800000001", "2024-09-10"])
    sheet.append([2, "李强", "男", number(602), "居民医保", "关庙镇", "建新村委会", "13800000002", "2024-09-10"])
    sheet.append([3, "", "男", _bad_checksum(603), "商业保险", "张滩镇", "建新村", "", "2024-13-40"])
    sheet.append([4, "赵六", "女", "12345", "城乡居民", "不存在镇", "", "0915", "明天"])
    sheet.append([5, "孙七", "男", number(604), "城乡居民", "关庙镇", "", "", "2024-09-10"])  # imported, with a notice
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize("size,width,height,mobile", SIZES, ids=[s[0] for s in SIZES])
def test_the_import_page_lists_every_problem_and_gives_the_error_workbook_and_template(
        crowd, tab, browser, tmp_path, size, width, height, mobile):
    from openpyxl import load_workbook

    sheet = tmp_path / f"汉滨区登记表-{size}.xlsx"
    sheet.write_bytes(agency_sheet())
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
    tab.viewport(width, height, mobile=mobile)
    tab.goto(f"{crowd}/web/import?token=tok-clerk")
    tab.wait_for("document.body.dataset.state === 'ready'")
    assert "token" not in tab.js("location.href")
    assert tab.js("document.querySelector('h1').innerText") == "批量参保登记 · 导入表格"

    tab.tap("#template-xlsx")
    template = downloaded(downloads, "模板.xlsx")
    assert template.name == "参保登记导入模板.xlsx"
    assert "填写说明" in load_workbook(template).sheetnames

    document = tab.send("DOM.getDocument")["root"]["nodeId"]
    node = tab.send("DOM.querySelector", nodeId=document, selector="#file-input")["nodeId"]
    tab.send("DOM.setFileInputFiles", nodeId=node, files=[str(sheet)])
    tab.tap("#upload-form button[type=submit]")
    tab.wait_for("document.body.dataset.state === 'report'", timeout=30)
    counts = text(tab, "report-counts")
    assert "共 5 行" in counts and "有问题未导入 2 行" in counts, counts
    assert ("新导入 3 行" in counts) == (size == "390")  # the second upload finds them imported before
    notices = text(tab, "report-notices")
    assert "序号" in notices and "性别" in notices and "联系电话" not in notices, notices  # 联系电话 is read now
    assert "第 6 行 · 所属村（社区）" in notices and "IMPORT_VILLAGE_MISSING" in notices, notices  # the row's own notice
    assert "第 5 行" not in notices, notices  # a row not imported shows its problems below, not notices
    assert "第 2、3、6 行 · 参保地" in notices, notices  # one sentence, the rows it concerns
    assert "(" not in notices and "(" not in text(tab, "problem-rows"), "Chinese only, no English in parentheses"
    assert text(tab, "error-count") == "2 行"
    problems = tab.js("Array.from(document.querySelectorAll('#problem-rows tr')).map(r => "
                      "Array.from(r.cells).map(c => c.innerText))")
    by_line: dict[str, list[str]] = {}
    line = ""
    for cells in problems:
        line = cells[0] or line
        by_line.setdefault(line, []).append(cells[2])
    assert set(by_line) == {"4", "5"}
    assert len(by_line["4"]) >= 3 and len(by_line["5"]) >= 2, by_line  # every problem of every row
    assert {"姓名", "身份证号码", "参保类别", "参保日期", "所属村（社区）"} <= set(by_line["4"]), by_line
    assert {"身份证号码", "参保日期", "所属乡镇", "联系电话"} <= set(by_line["5"]), by_line
    no_sideways_scroll(tab)
    tab.screenshot(SCREENSHOTS / f"field-import-errors-{size}.png", full_page=True)

    tab.tap("#error-workbook")
    workbook = downloaded(downloads, f"登记表-{size}.xlsx")
    assert workbook.name == f"错误行-汉滨区登记表-{size}.xlsx"
    rows = list(load_workbook(workbook).active.iter_rows(values_only=True))
    assert rows[0][-1] == "错误说明" and len(rows) == 3
    assert all(r[-1] and "；" in r[-1] for r in rows[1:]), rows  # all problems of the row, joined
    tab.wait_for("document.getElementById('workbook-status').innerText.startsWith('已下载')")


# ------------------------------------------------------------------ /docs with no network
@pytest.mark.parametrize("size,width,height,mobile", SIZES, ids=[s[0] for s in SIZES])
def test_swagger_ui_renders_the_operations_from_this_server_only(crowd, tab, size, width, height, mobile):
    tab.viewport(width, height, mobile=mobile)
    tab.send("Network.enable")
    tab.goto(f"{crowd}/docs")
    tab.wait_for("document.querySelectorAll('.opblock').length > 20", timeout=30)
    paths = tab.js("Array.from(document.querySelectorAll('.opblock-summary-path')).map(e => e.innerText)")
    assert any("/grids/{code}/gaps" in p.replace("\u200b", "") for p in paths), paths[:10]
    assert any("/imports" in p.replace("\u200b", "") for p in paths)
    resources = tab.js("performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(r.startswith(crowd) for r in resources), [r for r in resources if not r.startswith(crowd)]
    assert tab.js("document.querySelector('.swagger-ui .info .title') !== null")
    tab.js("document.querySelector('.opblock').scrollIntoView({block: 'start'})")  # the operations, not the intro
    tab.wait_for("Math.abs(document.querySelector('.opblock').getBoundingClientRect().top) < 5")
    tab.screenshot(SCREENSHOTS / f"field-docs-{size}.png")


# ------------------------------------------------------------------ the audit report (HTML)
@pytest.mark.parametrize("size,width,height,mobile", SIZES, ids=[s[0] for s in SIZES])
def test_the_audit_report_reads_in_chinese_on_a_phone_and_a_desk(tab, tmp_path, size, width, height, mobile):
    from tests.unit.test_audit_report_html import story as make_story

    from entrypoints.audit import render_html

    stories = make_story.__wrapped__() if hasattr(make_story, "__wrapped__") else make_story.__pytest_wrapped__.obj()
    number_, events, report, _ledger = next(stories)
    try:
        page = tmp_path / "report.html"
        page.write_text(render_html(report), encoding="utf-8")
        tab.viewport(width, height, mobile=mobile)
        tab.goto(page.as_uri())
        tab.wait_for("document.readyState === 'complete'")
        assert tab.js("document.querySelector('h1').innerText") == "参保人权益记录审计报告"
        headings = tab.js("Array.from(document.querySelectorAll('h2')).map(h => h.innerText)")
        assert headings[:1] == ["存储事件校验"] and "事件记录" in headings and headings[-1] == "审计签字", headings
        assert tab.js("document.querySelectorAll('table.history tbody tr').length") == len(events)
        body = tab.js("document.body.innerText")
        assert number_ not in body and "北京时间" in body and "王*" in body
        no_sideways_scroll(tab)  # the history table scrolls inside its box on a phone, the page does not
        png = tab.screenshot(SCREENSHOTS / f"field-audit-report-{size}.png")
        assert decode_png(png)[:2] == (width, height)
    finally:
        next(stories, None)


def test_a_clerk_finds_the_import_page_from_the_grid_page_and_a_grid_worker_does_not(crowd, tab):
    tab.viewport(DESKTOP["width"], DESKTOP["height"], mobile=False)
    tab.goto(url(crowd, "tok-grid-a", grid=GRID_A, year="2025", as_of="2025-03-01"))
    tab.wait_for("document.body.dataset.state === 'ready'")
    assert tab.js("document.getElementById('import-link').hidden") is True
    tab.goto(url(crowd, "tok-clerk"))
    tab.wait_for("!document.getElementById('who').hidden && !document.getElementById('import-link').hidden")
    tab.tap("#import-link")
    tab.wait_for("location.pathname === '/web/import' && document.body && document.body.dataset.state === 'ready'")
    assert tab.js("document.querySelector('h1').innerText") == "批量参保登记 · 导入表格"


# ------------------------------------------------------------------ the person sheet: address and phone
@pytest.fixture(scope="module")
def callable_people():
    """Two people of grid A not covered, one with the address and phone the registry gave."""
    from entrypoints.http.app import create_app
    from entrypoints.http.auth import TokenStore
    from entrypoints.http.read_model import ViewReads
    from ledger.inbound_records import Provenance, ResidentRecord
    from tests.integration.test_web_chromium_grid_page import TOKENS, _serve, _system

    system = _system()
    clerk = Provenance(source="api", user="clerk01", request_id="r-1")
    registry = Provenance(source="kafka", topic="registry.residents.v1", partition=0, offset=1)
    for seq, contact in ((801, {"address": "关庙镇关庙社区 3 组 12 号", "phone": "138-0000-0801"}), (802, {})):
        n = number(seq)
        system.ledger.enroll(id_type="RESIDENT_ID", id_number=n, name=f"刘{seq}", scheme="RESIDENT",
                             region_code="610902", grid_code=GRID_A, effective_date=date(2024, 9, 10), provenance=clerk)
        system.ledger.apply_residence(ResidentRecord(
            record_id=f"HJ-{seq}", id_type="RESIDENT_ID", id_number=n, name=f"刘{seq}", grid_code=GRID_A,
            status="RESIDENT", effective_date=date(2024, 9, 1), **contact), provenance=registry)
    reads = ViewReads(system)
    reads.catch_up()
    try:
        with _serve(create_app(system, TokenStore.from_tokens(TOKENS), reads=reads)) as base:
            yield base
    finally:
        system.close()


def test_the_grid_worker_calls_from_the_person_sheet(callable_people, tab):
    tab.viewport(PHONE["width"], PHONE["height"], mobile=True)
    tab.goto(url(callable_people, "tok-grid-a", grid=GRID_A, year="2025", as_of="2025-03-01"))
    tab.wait_for("document.body.dataset.state === 'ready'")
    card = tab.js(f"Array.from({CARDS}).findIndex(c => c.querySelector('.name').innerText === '刘801')")
    assert card >= 0
    tab.js(f"{CARDS}[{card}].querySelector('td.open button').id = 'open-801'")
    tab.tap("#open-801")
    tab.wait_for("document.getElementById('person').dataset.state === 'ready'")
    assert text(tab, "person-contact") == "电话 138-0000-0801 · 地址 关庙镇关庙社区 3 组 12 号"
    assert tab.js("document.querySelector('#person-contact a.phone').getAttribute('href')") == "tel:13800000801"
    tab.screenshot(SCREENSHOTS / "field-person-phone-390.png")
    tab.tap("#person-close")
    other = tab.js(f"Array.from({CARDS}).findIndex(c => c.querySelector('.name').innerText === '刘802')")
    tab.js(f"{CARDS}[{other}].querySelector('td.open button').id = 'open-802'")
    tab.tap("#open-802")
    tab.wait_for("document.getElementById('person').dataset.state === 'ready'")
    assert tab.js("document.getElementById('person-contact').hidden") is True  # the registry gave none
