"""Running the ``ledger`` command as someone: a tokens file in a temporary directory and LEDGER_TOKEN set."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ledger.http.access import TOKEN_ENV
from ledger.http.auth import TOKENS_FILE_ENV, add_token


def run_as(monkeypatch, directory: Path, role: str, scopes: Iterable[str] = (), *, user: str | None = None) -> str:
    """Issue a token for ``role`` into ``directory/tokens.toml`` and make it the CLI's token; returns it."""
    path = directory / "tokens.toml"
    token = add_token(path, user=user or f"cli-{role}", role=role, scopes=list(scopes))
    monkeypatch.setenv(TOKENS_FILE_ENV, str(path))
    monkeypatch.setenv(TOKEN_ENV, token)
    return token
