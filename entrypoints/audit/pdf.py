"""The audit report as PDF (审计报告 PDF): the printable HTML page printed by headless Chromium.

Chromium's own print engine (``--print-to-pdf``) renders the page exactly as the HTML report's
print CSS asks (A4, a running header with the title and masked ID, page numbers, table headers
repeated on each page, no row split across pages), with the CJK fonts of the machine. It is
found on ``PATH`` (``chromium``, ``chromium-browser``, ``google-chrome``); without it the command
stops with ``PDF_PRINTER_MISSING`` and writes nothing.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from ledger.domain.errors import DomainError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Seconds Chromium may take to print one report (a long history is a few dozen pages).
PRINT_TIMEOUT_S = 120


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def html_to_pdf(html: str, out: str | Path, *, browser: str | None = None, timeout: float = PRINT_TIMEOUT_S) -> Path:
    """Print ``html`` (a self-contained page: no scripts, no network) to the PDF file ``out``."""
    binary = browser or find_browser()
    if binary is None or not Path(binary).exists():
        raise DomainError("PDF_PRINTER_MISSING", "未找到 Chromium 浏览器，无法生成 PDF；请安装 chromium（apt-get install "
                          "chromium），或用 --html 生成网页版后自行打印（Chromium not found: cannot print the PDF）")
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="ledger-pdf-") as work:
        page = Path(work) / "report.html"
        page.write_text(html, encoding="utf-8")
        target = Path(work) / "report.pdf"
        command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--disable-extensions", "--no-proxy-server", f"--user-data-dir={Path(work) / 'profile'}",
                   "--no-pdf-header-footer", "--generate-pdf-document-outline", f"--print-to-pdf={target}",
                   page.as_uri()]
        try:
            done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DomainError("PDF_PRINT_FAILED", f"Chromium 在 {timeout:.0f} 秒内未能生成 PDF（printing the PDF timed "
                              "out）") from None
        except OSError as exc:
            raise DomainError("PDF_PRINTER_MISSING", f"无法启动 Chromium（{binary}）：{exc.strerror}（cannot start "
                              "Chromium）") from None
        if done.returncode != 0 or not target.exists() or not target.read_bytes().startswith(b"%PDF"):
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise DomainError("PDF_PRINT_FAILED", f"Chromium 未能生成 PDF（退出码 {done.returncode}）：{tail[0][:200]}"
                              "（printing the PDF failed）", returncode=done.returncode)
        try:
            shutil.copyfile(target, out)
        except OSError as exc:
            raise DomainError("OUTPUT_UNWRITABLE", f"无法写入 {out}：{exc.strerror}（cannot write the PDF）") from None
    return out


__all__ = ["BROWSERS", "PRINT_TIMEOUT_S", "find_browser", "html_to_pdf"]
