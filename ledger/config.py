"""Settings, read once from the environment.

The embedded default needs nothing: a SQLite event store under ``var/`` and the
in-process event transport. Setting ``LEDGER_PERSISTENCE=postgres`` (with the
``POSTGRES_*`` variables or ``DATABASE_URL``) and ``KAFKA_BOOTSTRAP_SERVERS`` moves
the same system onto the real services.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

REPO_ROOT = Path(__file__).resolve().parents[1]


def state_dir() -> Path:
    return Path(os.environ.get("LEDGER_STATE_DIR") or REPO_ROOT / "var")


@dataclass(frozen=True)
class Settings:
    persistence: str = "sqlite"  # "sqlite" | "postgres" | "memory"
    sqlite_path: str = ""
    postgres: dict[str, str] = field(default_factory=dict)
    kafka_bootstrap_servers: str | None = None
    id_key: bytes = b""
    policy_dir: str | None = None
    topic_prefix: str = ""
    #: Encryption at rest of the stored events and snapshots: the library's ``CIPHER_TOPIC``
    #: (e.g. ``eventsourcing.cipher:AESCipher``) and ``CIPHER_KEY``. Kept out of ``repr``.
    store_cipher: dict[str, str] = field(default_factory=dict, repr=False)

    def event_store_env(self) -> dict[str, str]:
        """The eventsourcing library's environment for the chosen store."""
        if self.persistence == "postgres":
            return {"PERSISTENCE_MODULE": "eventsourcing.postgres", **self.postgres, **self.store_cipher}
        if self.persistence == "memory":
            return {"PERSISTENCE_MODULE": "eventsourcing.popo", **self.store_cipher}
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": self.sqlite_path,
                "SQLITE_LOCK_TIMEOUT": "10", **self.store_cipher}


def postgres_from_env(env: dict[str, str]) -> dict[str, str]:
    """POSTGRES_* settings, from those variables or from DATABASE_URL.

    A multi-host URL (``postgresql://u:p@h1:5432,h2:5433/db?target_session_attrs=read-write``,
    a primary and its standby) becomes ``POSTGRES_HOST=h1,h2`` and ``POSTGRES_PORT=5432,5433``:
    libpq (and so psycopg and the eventsourcing pool) tries them in turn.
    """
    out = {k: v for k, v in env.items() if k.startswith("POSTGRES_")}
    url = env.get("DATABASE_URL")
    if url and "POSTGRES_DBNAME" not in out:
        u = urlparse(url)
        userinfo, _, hostlist = u.netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        hosts, ports = [], []
        for part in hostlist.split(","):
            if part.startswith("["):  # [ipv6]:port
                host, _, rest = part[1:].partition("]")
                port = rest.lstrip(":")
            else:
                host, _, port = part.partition(":")
            hosts.append(host or "127.0.0.1")
            ports.append(port or "5432")
        out.update(
            POSTGRES_HOST=",".join(hosts),
            POSTGRES_PORT=",".join(ports),
            POSTGRES_DBNAME=u.path.lstrip("/"),
            POSTGRES_USER=unquote(user),
            POSTGRES_PASSWORD=unquote(password),
        )
    return out


def is_multi_host(postgres: dict[str, str]) -> bool:
    """Does the connection name several servers (a primary and its standby)?"""
    return "," in postgres.get("POSTGRES_HOST", "") or "," in postgres.get("POSTGRES_PORT", "")


def prefer_read_write(postgres: dict[str, str], environ: "os._Environ[str] | dict[str, str] | None" = None) -> None:
    """With several servers, every connection of this process goes to the one that accepts writes.

    libpq reads ``PGTARGETSESSIONATTRS`` for each connection it opens, also those the
    eventsourcing pool opens (it passes only host, port, dbname, user and password): after a
    failover the next connection skips the old primary (down, or back as a read-only standby)
    and reaches the promoted one. An explicit setting is kept.
    """
    env = os.environ if environ is None else environ
    if is_multi_host(postgres):
        env.setdefault("PGTARGETSESSIONATTRS", "read-write")


def _id_key(env: dict[str, str], persistence: str) -> bytes:
    """The deployment secret behind person ids.

    Production sets LEDGER_ID_KEY. The embedded default keeps a generated key in the
    state directory (never in the repository), so ids are stable across runs.
    """
    key = env.get("LEDGER_ID_KEY")
    if key:
        return key.encode()
    if persistence == "postgres" and env.get("LEDGER_REQUIRE_ID_KEY", "") == "1":
        raise SystemExit("LEDGER_ID_KEY is not set: every deployment needs its own identity key")
    path = state_dir() / "id_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    postgres = postgres_from_env(env)
    persistence = env.get("LEDGER_PERSISTENCE") or "sqlite"
    if persistence not in {"sqlite", "postgres", "memory"}:
        raise SystemExit(f"LEDGER_PERSISTENCE={persistence!r}: use sqlite, postgres or memory")
    sqlite_path = env.get("LEDGER_SQLITE_PATH") or str(state_dir() / "ledger.sqlite")
    if persistence == "sqlite":
        Path(sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    return Settings(
        persistence=persistence,
        sqlite_path=sqlite_path,
        postgres=postgres,
        kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
        id_key=_id_key(env, persistence),
        policy_dir=env.get("LEDGER_POLICY_DIR") or None,
        topic_prefix=env.get("LEDGER_TOPIC_PREFIX", ""),
        store_cipher={k: env[k] for k in ("CIPHER_TOPIC", "CIPHER_KEY") if env.get(k)},
    )
