"""Running the ``ledger`` command in a test: an embedded ledger of its own, as someone (LEDGER_TOKEN set)."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from entrypoints.http.access import TOKEN_ENV
from entrypoints.http.auth import TOKENS_FILE_ENV, add_token


def run_as(monkeypatch, directory: Path, role: str, scopes: Iterable[str] = (), *, user: str | None = None) -> str:
    """Issue a token for ``role`` into ``directory/tokens.toml`` and make it the CLI's token; returns it."""
    path = directory / "tokens.toml"
    token = add_token(path, user=user or f"cli-{role}", role=role, scopes=list(scopes))
    monkeypatch.setenv(TOKENS_FILE_ENV, str(path))
    monkeypatch.setenv(TOKEN_ENV, token)
    return token


def embedded(monkeypatch, directory: Path, id_key: str) -> None:
    """Point the command at an embedded (SQLite) ledger and views in ``directory``, no broker, no token yet."""
    for key in ("LEDGER_PERSISTENCE", "KAFKA_BOOTSTRAP_SERVERS", "LEDGER_TOPIC_PREFIX", "LEDGER_POLICY_DIR",
                TOKEN_ENV, TOKENS_FILE_ENV):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LEDGER_STATE_DIR", str(directory))
    monkeypatch.setenv("LEDGER_SQLITE_PATH", str(directory / "ledger.sqlite"))
    monkeypatch.setenv("LEDGER_VIEWS_PATH", str(directory / "views.sqlite"))
    monkeypatch.setenv("LEDGER_ID_KEY", id_key)



def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``ledger ARGV``: its exit status, standard output and standard error."""
    from entrypoints.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, code: str, *argv: str) -> str:
    """``ledger ARGV`` refuses with ``error CODE: ...`` on standard error, exit status 2, and shows nothing."""
    status, out, err = run(capsys, *argv)
    assert status == 2 and f"error {code}: " in err, (status, err)
    assert out == ""
    return err
