"""Settings, read once from the environment.

The embedded default needs nothing: a SQLite event store under ``var/`` and the
in-process event transport. Setting ``LEDGER_PERSISTENCE=postgres`` (with the
``POSTGRES_*`` variables or ``DATABASE_URL``) and ``KAFKA_BOOTSTRAP_SERVERS`` moves
the same system onto the real services.

Personal data is encrypted at rest by default (``ledger.cipher``, ``events.pii``): the key is
``CIPHER_KEY`` (or ``LEDGER_CIPHER_KEY``), else one generated once in the state directory
(``cipher_key``, mode 600); production sets it (``LEDGER_REQUIRE_ID_KEY=1`` or
``LEDGER_REQUIRE_CIPHER_KEY=1`` refuse to start without it). Rotation: ``ledger/rekey.py``.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    from events.pii import KeyRing

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
    #: The deployment's cipher keys, base64: the current one first, then the old ones still read
    #: (``events.pii.KeyRing``: topic fields, dead letters, raw records kept for reconciliation).
    cipher_keys: tuple[str, ...] = field(default=(), repr=False)

    def key_ring(self) -> "KeyRing":
        """The key ring of :attr:`cipher_keys` (the deployment's, from the environment, when empty)."""
        from events.pii import KeyRing

        if self.cipher_keys:
            return KeyRing.from_texts(self.cipher_keys[0], self.cipher_keys[1:])
        return KeyRing.from_env()

    #: Off only to write a store in clear on purpose (tests of the migration, ``ledger.rekey --plain``).
    encrypt_at_rest: bool = True

    def event_store_env(self) -> dict[str, str]:
        """The eventsourcing library's environment for the chosen store.

        SQLite and PostgreSQL are encrypted even for settings built by hand without
        ``store_cipher`` (the deployment's key from the environment / state directory), so a
        process built that way reads and writes the same store as one from :func:`load_settings`.
        """
        cipher = self.store_cipher
        if not cipher and self.encrypt_at_rest and self.persistence in ("sqlite", "postgres"):
            cipher = _store_cipher(dict(os.environ), self.persistence, self._keys())
        elif not self.encrypt_at_rest:
            cipher = {}
        if self.persistence == "postgres":
            return {"PERSISTENCE_MODULE": "eventsourcing.postgres", **self.postgres, **cipher}
        if self.persistence == "memory":
            return {"PERSISTENCE_MODULE": "eventsourcing.popo", **cipher}
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": self.sqlite_path,
                "SQLITE_LOCK_TIMEOUT": "10", **cipher}

    def _keys(self) -> tuple[str, list[str]]:
        if self.cipher_keys:
            return self.cipher_keys[0], list(self.cipher_keys[1:])
        return cipher_keys(dict(os.environ), self.persistence)


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


def _required(env: dict[str, str], persistence: str) -> bool:
    return persistence == "postgres" and "1" in (env.get("LEDGER_REQUIRE_ID_KEY", ""),
                                                 env.get("LEDGER_REQUIRE_CIPHER_KEY", ""))


def cipher_keys(env: dict[str, str], persistence: str = "sqlite") -> tuple[str, list[str]]:
    """The deployment's cipher key (base64) and the old keys still accepted for decryption.

    Production sets ``CIPHER_KEY`` (or ``LEDGER_CIPHER_KEY``), e.g. ``python -c "from events.pii
    import new_key; print(new_key())"``. The embedded default generates one once, in the state
    directory (``cipher_key``, mode 600), as for :func:`_id_key`. ``LEDGER_CIPHER_KEYS_OLD``:
    comma-separated earlier keys (rotation: see ``ledger/cipher.py``).
    """
    key = env.get("CIPHER_KEY") or env.get("LEDGER_CIPHER_KEY")
    old = [k.strip() for k in env.get("LEDGER_CIPHER_KEYS_OLD", "").split(",") if k.strip()]
    if key:
        return key.strip(), old
    if _required(env, persistence):
        raise SystemExit("CIPHER_KEY is not set: every deployment needs its own key for personal data at rest")
    path = Path(env.get("LEDGER_STATE_DIR") or state_dir()) / "cipher_key"
    if not path.exists():
        from events.pii import new_key

        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a temporary name with mode 600, then linked into place: processes
        # starting together (a deployment, the fault suite) all end up reading the one key that won.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(new_key())
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip(), old


def _store_cipher(env: dict[str, str], persistence: str, keys: tuple[str, list[str]]) -> dict[str, str]:
    """The event store's cipher settings: on by default for SQLite and PostgreSQL (``ledger.cipher``).

    An explicit ``CIPHER_TOPIC`` is kept as given; the in-memory store (tests, nothing at rest)
    is encrypted only when asked.
    """
    if env.get("CIPHER_TOPIC"):
        return {"CIPHER_TOPIC": env["CIPHER_TOPIC"], "CIPHER_KEY": keys[0],
                **({"LEDGER_CIPHER_KEYS_OLD": ",".join(keys[1])} if keys[1] else {})}
    if persistence == "memory":
        return {}
    from ledger.cipher import TOPIC

    out = {"CIPHER_TOPIC": TOPIC, "CIPHER_KEY": keys[0]}
    if keys[1]:
        out["LEDGER_CIPHER_KEYS_OLD"] = ",".join(keys[1])
    if env.get("LEDGER_CIPHER_READ_PLAIN"):
        out["LEDGER_CIPHER_READ_PLAIN"] = env["LEDGER_CIPHER_READ_PLAIN"]
    return out


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    postgres = postgres_from_env(env)
    persistence = env.get("LEDGER_PERSISTENCE") or "sqlite"
    if persistence not in {"sqlite", "postgres", "memory"}:
        raise SystemExit(f"LEDGER_PERSISTENCE={persistence!r}: use sqlite, postgres or memory")
    sqlite_path = env.get("LEDGER_SQLITE_PATH") or str(state_dir() / "ledger.sqlite")
    if persistence == "sqlite":
        Path(sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    keys = cipher_keys(env, persistence)
    return Settings(
        persistence=persistence,
        sqlite_path=sqlite_path,
        postgres=postgres,
        kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
        id_key=_id_key(env, persistence),
        policy_dir=env.get("LEDGER_POLICY_DIR") or None,
        topic_prefix=env.get("LEDGER_TOPIC_PREFIX", ""),
        store_cipher=_store_cipher(env, persistence, keys),
        cipher_keys=(keys[0], *keys[1]),
    )
