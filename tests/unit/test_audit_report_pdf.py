"""``ledger history --pdf`` without Chromium, or with one that fails: a Chinese error with its code, exit 2,
nothing written. (The print CSS's own hostile test is in test_hostile_field.py.)"""
from __future__ import annotations

from entrypoints.audit import pdf as pdf_module
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
