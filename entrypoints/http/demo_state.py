"""Where ``ledger demo`` leaves its county, and how ``ledger serve --demo`` opens it again.

The demo writes everything of one run into ``<state dir>/demo/`` (``var/demo/`` by default),
replaced by the next run: the SQLite ledger and views (or, on PostgreSQL, the name of the
run's schema), its ID key (``id_key``, mode 600, so person ids stay the same when read again)
and ``demo.json``, which names the run (county, a grid, the coverage year) and the settings
that point at it. ``ledger serve --demo`` reads that file, creates a clerk token for the
county and an auditor token in ``tokens.toml`` of the same folder (mode 600) when there is
none yet, and shows them once.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from entrypoints.http.auth import TOKENS_FILE_ENV, add_token
from infra.settings import state_dir
from ledger.domain.errors import DomainError

MANIFEST = "demo.json"
TOKENS = "tokens.toml"


def demo_dir(env: Mapping[str, str] | None = None) -> Path:
    """The demo's folder: ``demo/`` in the state directory (``var/demo/`` unless ``LEDGER_STATE_DIR`` says)."""
    return state_dir(env) / "demo"


def write_id_key(root: Path, key: str) -> None:
    path = root / "id_key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)


def write_manifest(root: Path, run: dict[str, Any], settings: dict[str, str]) -> None:
    """``demo.json``: the run (county, grid, year, ...) and the settings that open it (never a key)."""
    (root / MANIFEST).write_text(json.dumps({"run": run, "settings": settings}, ensure_ascii=False, indent=2) + "\n",
                                 encoding="utf-8")


def read_manifest(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The last demo run; ``DEMO_NOT_RUN`` when there was none (or its folder is incomplete)."""
    path = demo_dir(env) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["run"], manifest["settings"]  # noqa: B018 - both parts must be there
    except (OSError, ValueError, KeyError, TypeError):
        raise DomainError("DEMO_NOT_RUN", f"还没有演示数据（{path.parent} 中没有 {MANIFEST}）：请先运行 "
                          "`bash infra/dev.sh demo`（或 `ledger demo`），再运行 `ledger serve --demo`。"
                          "(run the demo first)") from None
    return manifest


def demo_env(env: Mapping[str, str], manifest: dict[str, Any]) -> dict[str, str]:
    """``env`` pointed at the demo's data and its tokens file."""
    root = demo_dir(env)
    return {**env, **manifest["settings"], "LEDGER_STATE_DIR": str(root), TOKENS_FILE_ENV: str(root / TOKENS)}


def cli_prefix(root: Path, manifest: dict[str, Any]) -> str:
    """The variables a shell command needs to read the demo's data in ``root`` (the token comes separately)."""
    parts = {"LEDGER_STATE_DIR": str(root), **{k: v for k, v in manifest["settings"].items()
                                                if k in ("POSTGRES_SCHEMA", "LEDGER_TOPIC_PREFIX")},
             TOKENS_FILE_ENV: str(root / TOKENS)}
    return " ".join(f"{k}={v}" for k, v in parts.items())


def ensure_demo_tokens(env: Mapping[str, str], manifest: dict[str, Any]) -> list[dict[str, str]]:
    """A clerk token for the demo's county and an auditor token, created once (empty when the file exists)."""
    path = demo_dir(env) / TOKENS
    if path.exists():
        return []
    region = manifest["run"]["region"]
    made = [{"user": "demo-clerk", "role": "clerk", "scope": region,
             "token": add_token(path, user="demo-clerk", role="clerk", scopes=[region])},
            {"user": "demo-auditor", "role": "auditor", "scope": "",
             "token": add_token(path, user="demo-auditor", role="auditor", scopes=[])}]
    path.chmod(0o600)
    return made


__all__ = ["MANIFEST", "TOKENS", "cli_prefix", "demo_dir", "demo_env", "ensure_demo_tokens", "read_manifest",
           "write_id_key", "write_manifest"]
