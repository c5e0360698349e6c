"""The command line speaks Chinese by default and English on request (``--lang en`` anywhere on the line, or
``LEDGER_LANG=en``): the help, argparse's own sentences, the answers of the view commands and the error lines.
The ``error CODE:`` prefix and the codes stay the same in both languages."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from entrypoints.catalogue import _CJK
from tests.unit.cli_support import embedded, run, run_as

ROOT = Path(__file__).resolve().parents[2]


def _ledger(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("LEDGER_LANG", "LEDGER_TOKEN")}
    return subprocess.run([sys.executable, "-m", "entrypoints.main", *argv], cwd=ROOT, capture_output=True,
                          text=True, env={**clean, **env})


def test_ledger_help_is_chinese_by_default_and_english_with_lang_en_or_ledger_lang():
    zh = _ledger("--help")
    assert zh.returncode == 0
    assert zh.stdout.startswith("用法：ledger") and "显示本帮助并退出" in zh.stdout
    assert "某网格或乡镇中谁没有参保、原因是什么（应保尽保）" in zh.stdout
    assert "who in a grid or township is not covered" not in zh.stdout
    for en in (_ledger("--help", "--lang", "en"), _ledger("--help", LEDGER_LANG="en"), _ledger("--lang=en", "-h")):
        assert en.returncode == 0 and en.stdout.startswith("usage: ledger"), en.stdout[:80]
        assert "who in a grid or township is not covered, and why" in en.stdout
        assert "show this help message and exit" in en.stdout and not _CJK.search(en.stdout.split("\n\n")[1])


def test_a_commands_options_are_explained_in_chinese_and_lang_may_come_after_the_command():
    zh = _ledger("gaps", "--help")
    assert "12 位网格代码或 9 位乡镇代码" in zh.stdout and "查询日期（默认：今天）" in zh.stdout
    assert "以 JSON 输出" in zh.stdout
    en = _ledger("gaps", "--help", "--lang", "en")
    assert "12-digit grid code or 9-digit township code" in en.stdout and "day asked about" in en.stdout


def test_argparse_refusals_follow_the_language():
    zh = _ledger("gaps")
    assert zh.returncode == 2 and "error ARGUMENT_INVALID: ledger gaps：缺少必需的参数：GRID_OR_TOWNSHIP" in zh.stderr
    assert zh.stderr.startswith("用法：ledger gaps")
    en = _ledger("gaps", "--lang", "en")
    assert en.returncode == 2
    assert "error ARGUMENT_INVALID: ledger gaps: the following arguments are required: GRID_OR_TOWNSHIP" in en.stderr


def test_no_plain_error_lines_every_refusal_has_its_code(tmp_path, monkeypatch, capsys):
    """``import``, ``migrate``, ``token`` and ``serve`` refuse with ``error CODE: message`` (exit 2), Chinese by
    default and English with --lang en, like every other command."""
    embedded(monkeypatch, tmp_path, "k" * 32)
    monkeypatch.delenv("LEDGER_LANG", raising=False)
    cases = [
        (["import"], "FILE_REQUIRED", "请指定要读取的文件", "name the file to read"),
        (["migrate"], "FILE_REQUIRED", "请指定要读取的文件", "name the file to read"),
        (["import", str(tmp_path / "none.xlsx")], "FILE_NOT_FOUND", "找不到文件", "no file"),
        (["token", "list"], "TOKENS_FILE_REQUIRED", "请用 --file 指定令牌文件", "give --file or set LEDGER_TOKENS_FILE"),
        (["token", "add", "--user", "u", "--role", "clerk", "--scope", "610902", "--file", str(tmp_path / "t.toml"),
          "--expires", "soon"], "DATE_INVALID", "须为日期", "must be a date"),
        (["token", "revoke", "nobody", "--file", str(tmp_path / "none.toml")], "TOKEN_REVOKE_FAILED", "未能吊销令牌",
         "tokens file not found"),
    ]
    for argv, code, zh, en in cases:
        status, out, err = run(capsys, *argv)
        assert (status, out) == (2, "") and err.startswith(f"error {code}: ") and zh in err, (argv, err)
        status, out, err = run(capsys, *argv, "--lang", "en")
        assert status == 2 and err.startswith(f"error {code}: ") and en in err and not _CJK.search(err), (argv, err)
    import uvicorn

    def never(*_a, **_k):  # the refusal comes before any server starts
        raise AssertionError("serve started without a tokens file")

    monkeypatch.setattr(uvicorn, "run", never)
    monkeypatch.delenv("LEDGER_TOKENS_FILE", raising=False)
    status, out, err = run(capsys, "serve")
    assert status == 2 and err.startswith("error TOKENS_FILE_INVALID: 令牌文件无效"), err
    status, out, err = run(capsys, "serve", "--lang", "en")
    assert status == 2 and err.startswith("error TOKENS_FILE_INVALID: LEDGER_TOKENS_FILE is not set"), err


def test_an_unusable_ledger_lang_is_refused_with_its_code():
    r = _ledger("--help", LEDGER_LANG="fr")
    assert r.returncode == 2 and r.stderr.startswith("error SETTING_INVALID: 环境变量 LEDGER_LANG='fr' 无效")


def test_error_lines_keep_their_code_and_speak_the_language(tmp_path, monkeypatch, capsys):
    embedded(monkeypatch, tmp_path, "k" * 32)
    monkeypatch.delenv("LEDGER_LANG", raising=False)
    status, out, err = run(capsys, "gaps", "610902100001")
    assert (status, out) == (2, "")
    assert err.startswith("error TOKEN_MISSING: 缺少访问令牌：请将环境变量 LEDGER_TOKEN 设为你的令牌")
    assert "set LEDGER_TOKEN" not in err
    status, out, err = run(capsys, "gaps", "610902100001", "--lang", "en")
    assert status == 2 and err.startswith("error TOKEN_MISSING: this command shows personal data: set LEDGER_TOKEN")
    assert not _CJK.search(err)
    monkeypatch.setenv("LEDGER_LANG", "en")
    assert run(capsys, "gaps", "610902100001")[2].startswith("error TOKEN_MISSING: this command")


def test_an_english_message_raised_in_the_core_gets_the_codes_chinese_sentence(tmp_path, monkeypatch, capsys):
    """The views raise VIEWS_EMPTY with an English sentence: Chinese first, the sentence after it; English alone
    with --lang en. (The table answers in both languages: tests/unit/test_late_fee_surfaces.py, arrears.)"""
    embedded(monkeypatch, tmp_path, "k" * 32)
    run_as(monkeypatch, tmp_path, "clerk", ["610902"])
    status, _, err = run(capsys, "gaps", "610902100001", "--year", "2025")
    assert status == 2 and err.startswith("error VIEWS_EMPTY: 视图尚未生成：请先运行 ledger project（the views are")
    status, _, err = run(capsys, "gaps", "610902100001", "--year", "2025", "--lang", "en")
    assert status == 2 and err == "error VIEWS_EMPTY: the views are empty: bring them up to date first (ledger project)\n"


def test_a_clerk_commands_invalid_option_is_explained_in_the_language(tmp_path, monkeypatch, capsys):
    embedded(monkeypatch, tmp_path, "k" * 32)
    run_as(monkeypatch, tmp_path, "clerk", ["610902"])
    argv = ["clerk", "enroll", "--id-number", "610902198005170011", "--name", "", "--scheme", "RESIDENT",
            "--region-code", "610902", "--effective-date", "2025-01-01"]
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "") and err.startswith("error BODY_INVALID: 姓名（--name）不能为空"), err
    status, _, err = run(capsys, *argv, "--lang", "en")
    assert status == 2 and err.startswith("error BODY_INVALID: --name: must have at least 1 character"), err
