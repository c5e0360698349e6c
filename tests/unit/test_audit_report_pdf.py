"""``ledger history --pdf`` without Chromium: a Chinese error with its code, exit 2, nothing written;
the report's print CSS (A4, running header, page numbers) cannot be broken out of by its texts."""
from __future__ import annotations

from entrypoints.audit import pdf as pdf_module
from entrypoints.audit.report import page_css
from tests.unit.test_audit_cli import NUMBER, embedded, run  # noqa: F401  (fixture)


def test_without_chromium_the_command_says_so_in_chinese_with_a_code(embedded, capsys, monkeypatch):  # noqa: F811
    tmp_path, _ = embedded
    monkeypatch.setattr(pdf_module.shutil, "which", lambda name: None)
    target = tmp_path / "r.pdf"
    code, out, err = run(capsys, "history", NUMBER, "--pdf", str(target))
    assert code == 2
    assert "PDF_PRINTER_MISSING" in err and "未找到 Chromium 浏览器" in err
    assert not target.exists()


def test_a_chromium_that_fails_is_pdf_print_failed(embedded, capsys, monkeypatch):  # noqa: F811
    tmp_path, _ = embedded
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(pdf_module, "find_browser", lambda: str(fake))
    code, _, err = run(capsys, "history", NUMBER, "--pdf", str(tmp_path / "r.pdf"))
    assert code == 2 and "PDF_PRINT_FAILED" in err and "退出码 3" in err
    assert not (tmp_path / "r.pdf").exists()


def test_the_running_header_is_a_css_string_nothing_can_escape(hostile):
    css = page_css('报告 "</style><script>x()</script>', "第 ", " 页")
    assert "</style>" not in css and "<script" not in css
    assert '\\"' in css and 'counter(page) " / " counter(pages)' in css
    hostile.attempt("report header breaks out of the print CSS", status=None, crashed=False, written=False,
                    leaked=False)
