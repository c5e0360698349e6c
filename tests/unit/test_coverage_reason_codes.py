"""Why a person is (not) covered on a day: the domain gives a stable reason code and its figures beside the
English ``reason`` sentence; the command line, the audit history and the API say it in Chinese from the
catalogue (``[coverage_reasons]``), money in yuan with two decimals, English on request."""
from __future__ import annotations

import json
from datetime import date

from fastapi.testclient import TestClient

from entrypoints import catalogue
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from entrypoints.http.coverage_reasons import reason_text
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.coverage import covered_on
from tests.unit import http_support as web
from tests.unit.projection_support import (  # noqa: F401  (ledger: fixture)
    entitlement_view, enroll, ledger, number, pay_year, refund)
from tests.unit.test_audit_cli import NUMBER, embedded, run  # noqa: F401  (embedded: fixture)


def test_each_decision_has_a_code_with_plain_values_and_the_english_sentence_kept(ledger):  # noqa: F811
    n = number(3)
    pid = enroll(ledger, n, date(2024, 3, 1))
    pay_year(ledger, n, 2024, date(2024, 3, 1))
    pay_year(ledger, n, 2026, date(2026, 2, 10))  # 2025 skipped: 2026 waits three months
    voucher = pay_year(ledger, n, 2025, date(2024, 10, 8))
    refund(ledger, n, voucher, 10000, date(2025, 5, 10))
    view = entitlement_view(ledger)

    waiting = covered_on(view, pid, date(2026, 4, 1))
    assert waiting.reason_code == "NOT_COVERED_WAITING"
    assert waiting.reason.startswith("not covered: in waiting period until 2026-05-09")  # unchanged for JSON readers
    assert (waiting.reason_values["until"], waiting.reason_values["start"]) == ("2026-05-09", "2026-05-10")
    assert waiting.reason_values["waiting_months"] == 3
    assert reason_text(waiting.__dict__) == "不享受待遇：处于待遇等待期，至 2026-05-09 止，2026-05-10 起享受待遇（等待期 3 个月）"
    assert reason_text(waiting.__dict__, "en").startswith("not covered: in waiting period until 2026-05-09")

    refunded = covered_on(view, pid, date(2025, 5, 10))
    assert refunded.reason_code == "NOT_COVERED_REFUNDED"
    assert (refunded.reason_values["paid_fen"], refunded.reason_values["outstanding_fen"]) == (30000, 10000)
    zh = reason_text(refunded.__dict__)
    assert zh.startswith("自 2025-05-10 起不享受待遇") and "已缴 300.00 元，欠缴 100.00 元" in zh  # yuan, not fen

    covered = covered_on(view, pid, date(2025, 3, 1))
    assert covered.covered and covered.reason_code == "COVERED_RESIDENT"
    assert reason_text(covered.__dict__).startswith("享受待遇：2025 年度城乡居民医保")
    assert covered_on(view, pid, date(2023, 6, 1)).reason_code == "NOT_COVERED_NO_ENROLLMENT"
    nobody = covered_on(view, "no-such-person", date(2025, 1, 1))
    assert nobody.reason_code == "NO_RECORD" and reason_text(nobody.__dict__) == "不享受待遇：账本中没有此人的记录"
    json.dumps(waiting.reason_values)  # JSON-plain: ISO days, fen, codes


def test_every_code_the_domain_gives_has_a_chinese_and_an_english_sentence():
    import re
    from pathlib import Path

    source = Path(__file__).resolve().parents[2].joinpath("ledger/domain/coverage.py").read_text()
    codes = set(re.findall(r'"((?:NOT_)?COVERED_[A-Z_]+|NOT_ENROLLED_RESIDENT|NO_RECORD|DECEASED)"', source))
    assert len(codes) >= 15
    for code in codes:
        assert catalogue.has("coverage_reasons", code, "zh") and catalogue.has("coverage_reasons", code, "en"), code
        assert catalogue._CJK.search(catalogue.raw("coverage_reasons", code, "zh")), code


def test_a_decision_without_a_code_keeps_its_sentence():
    assert reason_text({"reason": "not covered: something old"}) == "not covered: something old"


def test_the_api_adds_reason_text_in_the_accept_language_and_keeps_reason():
    system = bootstrap(Settings(persistence="memory", id_key=b"k"), policies=web.policies())
    try:
        client = TestClient(create_app(system, TokenStore.from_tokens(web.TOKENS)))
        n = web.number(1)
        web.enroll(client, n)
        params = {"year": 2025, "on": "2025-03-01"}
        zh = client.get(web.person_path(n, "/entitlement"), params=params, headers=web.CLERK).json()
        assert zh["covered"] is False and zh["reason_code"] == "NOT_COVERED_UNPAID"
        assert zh["reason"].startswith("not covered: the 2025 resident contribution is not paid")
        assert zh["reason_text"].startswith("不享受待遇：2025 年度城乡居民医保参保费未缴清") and "欠缴 400.00 元" in zh["reason_text"]
        assert zh["reason_values"]["outstanding_fen"] == 40000  # fen stays in the JSON fields
        en = client.get(web.person_path(n, "/entitlement"), params=params,
                        headers={**web.CLERK, "Accept-Language": "en-US,en;q=0.9"}).json()
        assert en["reason_text"].startswith("not covered: the 2025 resident contribution is not paid")
        assert "outstanding 400.00 yuan" in en["reason_text"] and en["reason"] == zh["reason"]
    finally:
        system.close()


def test_the_audit_history_says_the_reason_in_chinese_and_english_on_request(embedded, capsys):  # noqa: F811
    code, out, _ = run(capsys, "history", NUMBER, "--year", "2025", "--on", "2025-06-01")
    assert code == 0 and "享受待遇：2025 年度城乡居民医保" in out and "covered: resident scheme" not in out
    code, out, _ = run(capsys, "history", NUMBER, "--year", "2025", "--on", "2025-06-01", "--lang", "en")
    assert code == 0 and "covered: resident scheme 2025" in out
    tmp_path, _ = embedded
    page = tmp_path / "h.html"
    assert run(capsys, "history", NUMBER, "--year", "2025", "--on", "2025-06-01", "--html", str(page))[0] == 0
    assert "享受待遇：2025 年度城乡居民医保" in page.read_text(encoding="utf-8")
