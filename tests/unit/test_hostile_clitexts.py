"""A clumsy operator at the command line: files that are not there, a tokens file not named, a date that is not
one, an option that does not exist. Each is refused with its stable code in the run's language (exit 2), writes
nothing, starts nothing and shows no token."""
from __future__ import annotations

import pytest

from tests.unit.cli_support import embedded, run


def _attempt(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        return run(capsys, *argv)
    except SystemExit as e:  # argparse's refusal ends the run
        out, err = capsys.readouterr()
        return int(e.code or 0), out, err


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_clumsy_command_lines_are_refused_with_a_code_and_write_nothing(tmp_path, monkeypatch, capsys, hostile, lang):
    embedded(monkeypatch, tmp_path, "k" * 32)
    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: started.append(a))
    tokens = tmp_path / "tokens.toml"
    cases = [
        ("import a file that is not there", ["import", str(tmp_path / "missing.xlsx")], "FILE_NOT_FOUND"),
        ("migrate with no file", ["migrate"], "FILE_REQUIRED"),
        ("token add with an expiry that is no date",
         ["token", "add", "--user", "u", "--role", "clerk", "--scope", "610902", "--file", str(tokens),
          "--expires", "2026-13-45"], "DATE_INVALID"),
        ("token revoke in a tokens file that is not there", ["token", "revoke", "u", "--file", str(tokens)],
         "TOKEN_REVOKE_FAILED"),
        ("token list without naming the tokens file", ["token", "list"], "TOKENS_FILE_REQUIRED"),
        ("serve without a tokens file", ["serve"], "TOKENS_FILE_INVALID"),
        ("an option that does not exist", ["gaps", "610902100001", "--year", "2025", "--everything"],
         "ARGUMENT_INVALID"),
    ]
    for name, argv, code in cases:
        status, out, err = _attempt(capsys, *argv, "--lang", lang)
        written = tokens.exists() or (tmp_path / "ledger.sqlite").exists() and argv[0] in ("import", "migrate")
        hostile.attempt(f"cli: {name} ({lang})", status=None, crashed=status != 2 or "Traceback" in err,
                        written=written, leaked="k" * 32 in out + err)  # the ID key never echoed
        assert status == 2 and f"error {code}: " in err and out == "", (name, status, out, err)
        assert started == []  # no server came up for a refused serve
