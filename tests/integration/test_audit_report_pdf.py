"""``ledger history --pdf FILE``: the auditor's report printed to PDF by headless Chromium (issue 21).

Chromium and a CJK font come from the ``chromium`` fixture (apt-get when missing). No PDF text
extractor is installed, so the test reads the PDF's structure (tests/pdf_text.py): the header, the
page count, the document title and the bookmarks of the report's Chinese headings.
"""
from __future__ import annotations

import pytest

from ledger.log import mask_id_number
from tests.integration.test_web_chromium import chromium  # noqa: F401  (fixture)
from tests.pdf_text import page_count, titles
from tests.unit.test_audit_cli import NUMBER, embedded, run  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration


def test_history_pdf_is_an_a4_pdf_with_the_chinese_headings(embedded, chromium, capsys):  # noqa: F811
    tmp_path, _ = embedded
    pdf = tmp_path / "审计报告.pdf"
    code, out, err = run(capsys, "history", NUMBER, "--pdf", str(pdf), "--reveal")
    assert code == 0, err
    assert f"审计报告 PDF 已写入 {pdf}" in out
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert page_count(data) >= 1
    strings = titles(data)
    assert f"审计报告 {mask_id_number(NUMBER)}" in strings  # the document title (<title>)
    for heading in ("参保人权益记录审计报告", "存储事件校验", "事件记录"):
        assert any(heading in s for s in strings), (heading, strings)
    assert NUMBER.encode() not in data
    # A4: 595 x 842 points
    assert b"/MediaBox [0 0 594.95996 841.91998]" in data or b"/MediaBox [0 0 595" in data


def test_english_on_request(embedded, chromium, capsys):  # noqa: F811
    tmp_path, _ = embedded
    pdf = tmp_path / "report.pdf"
    code, _, err = run(capsys, "history", NUMBER, "--pdf", str(pdf), "--lang", "en")
    assert code == 0, err
    strings = titles(pdf.read_bytes())
    assert any("Insured person: history and verification" in s for s in strings), strings
    assert not any("参保人权益记录审计报告" in s for s in strings)
