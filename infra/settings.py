"""Settings: the one module that reads the environment, and the registry of every variable.

:data:`VARIABLES` names each environment variable the system, the local stack and the test
harness read: its default, what it means, who reads it and how its value is parsed. The loading
(:func:`load_settings`, :func:`setting`, :func:`setting_text`) and the README's configuration table
(``python -m infra.settings --markdown``) both come from it, and ``tests/unit/test_settings.py``
checks that no other module of the system reads ``os.environ`` and that the table and the
registry agree. A value that does not parse is refused with the stable code ``SETTING_INVALID``
(:class:`SettingError`) and a message naming the variable, never a traceback.

The embedded default needs nothing: a SQLite event store under ``var/`` and the
in-process event transport. Setting ``LEDGER_PERSISTENCE=postgres`` (with the
``POSTGRES_*`` variables or ``DATABASE_URL``) and ``KAFKA_BOOTSTRAP_SERVERS`` moves
the same system onto the real services.

Personal data is encrypted at rest by default (``events.cipher``, ``events.pii``): the key is
``CIPHER_KEY`` (or ``LEDGER_CIPHER_KEY``), else one generated once in the state directory
(``cipher_key``, mode 600); production sets it (``LEDGER_REQUIRE_ID_KEY=1`` or
``LEDGER_REQUIRE_CIPHER_KEY=1`` refuse to start without it). Rotation: ``entrypoints/rekey.py``.

This module imports nothing of the project but the domain's error type: every adapter, the
wiring and the dev stack scripts may import it; the core (domain, policy, application) is given
values and never reads the environment.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
from base64 import b64encode
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ledger.domain.errors import DomainError

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The event store's cipher (``events.cipher.LedgerCipher``), named by topic: the library resolves it.
STORE_CIPHER_TOPIC = "events.cipher:LedgerCipher"
#: Topics the cipher class had before (``CIPHER_TOPIC`` values a deployment may still have in its
#: environment): read as the current one. The class and its stored format are the same.
RENAMED_CIPHER_TOPICS = {"ledger.cipher:LedgerCipher": STORE_CIPHER_TOPIC}

#: The groups of the registry, in the README's order.
SYSTEM, STACK, HARNESS = "system", "local stack", "tests, CI and benchmarks"


class SettingError(DomainError):
    """An environment variable holds a value the system cannot use (``SETTING_INVALID``)."""

    def __init__(self, name: str, text: str, rule_zh: str, rule_en: str, *, secret: bool = False) -> None:
        shown = name if secret else f"{name}={text!r}"
        super().__init__("SETTING_INVALID", f"环境变量 {shown} 无效：{rule_zh}（{name} must be {rule_en}）",
                         variable=name)
        self.variable = name


class UnknownVariable(LookupError):
    """A module asked for a variable the registry does not name (a programming error: add it to VARIABLES)."""


# --------------------------------------------------------------------------- parsers
# Each takes the text (never empty) and returns the typed value, or raises ValueError(rule_zh, rule_en).

def _text(text: str) -> str:
    return text


def _flag(text: str) -> bool:
    if text.strip() not in ("0", "1"):
        raise ValueError("只能是 0 或 1", "0 or 1")
    return text.strip() == "1"


def _positive_number(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if not number > 0 or number == float("inf"):
        raise ValueError("须为大于 0 的数", "a number above zero")
    return number


def _non_negative_number(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if not number >= 0 or number == float("inf"):
        raise ValueError("须为不小于 0 的数", "a number of zero or more")
    return number


def _port(text: str) -> int:
    try:
        port = int(text.strip())
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ValueError("须为端口号 1-65535", "a TCP port number 1-65535")
    return port


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"只能是 {'、'.join(choices)} 之一", f"one of {', '.join(choices)}")
        return text

    parse.__name__ = f"one of {'|'.join(choices)}"
    return parse


@dataclass(frozen=True)
class Variable:
    """One environment variable: what the README's table says of it, and how its value is read."""

    name: str  #: exact name, or a prefix ending in ``*`` (``POSTGRES_*``)
    default: str  #: the default as the table shows it ("" = none, unset)
    meaning: str  #: one line
    readers: str  #: the modules (or scripts) that use it
    group: str = SYSTEM
    parse: Callable[[str], Any] = _text
    #: The value used when the variable is unset (parsed like a set value); None = unset stays None.
    fallback: str | None = None
    secret: bool = False  #: never echoed in an error message

    @property
    def is_prefix(self) -> bool:
        return self.name.endswith("*")

    def matches(self, key: str) -> bool:
        return key.startswith(self.name[:-1]) if self.is_prefix else key == self.name


_STATE = "$LEDGER_STATE_DIR/"
VARIABLES: tuple[Variable, ...] = (
    # ------------------------------------------------------------------ the system
    Variable("LEDGER_PERSISTENCE", "`sqlite`", "where events and views live: `sqlite`, `postgres` or `memory`",
             "infra/settings.py", parse=_choice("sqlite", "postgres", "memory"), fallback="sqlite"),
    Variable("LEDGER_STATE_DIR", "`var/` at the repo root",
             "where local state lives (SQLite files, generated keys, digests; the local stack's servers)",
             "infra/settings.py, infra/stack.py"),
    Variable("LEDGER_SQLITE_PATH", f"`{_STATE}ledger.sqlite`", "the SQLite event store file", "infra/settings.py"),
    Variable("LEDGER_VIEWS_PATH", f"`{_STATE}views.sqlite`", "the SQLite view store file",
             "infra/settings.py → projections/factory.py"),
    Variable("LEDGER_RECON_PATH", f"`{_STATE}reconciliation.sqlite`", "the SQLite reconciliation store file",
             "infra/settings.py → reconciliation/factory.py"),
    Variable("LEDGER_DIGESTS_PATH", f"`{_STATE}audit-digests.jsonl`",
             "the audit digests file when there is no Kafka (SQLite store)",
             "infra/settings.py → entrypoints/audit/digest.py"),
    Variable("LEDGER_ID_KEY", f"a key generated once in `{_STATE}id_key`",
             "secret behind person ids (keep it per deployment)", "infra/settings.py", secret=True),
    Variable("LEDGER_REQUIRE_ID_KEY", "off", "`1`: with PostgreSQL, refuse to start without `LEDGER_ID_KEY` "
             "(and without `CIPHER_KEY`)", "infra/settings.py", parse=_flag, fallback="0"),
    Variable("CIPHER_KEY", f"a key generated once in `{_STATE}cipher_key`",
             "encryption key of personal data at rest, base64 (see Security)", "infra/settings.py → events/pii.py, "
             "events/cipher.py", secret=True),
    Variable("LEDGER_CIPHER_KEY", "none", "another name for `CIPHER_KEY` (used when `CIPHER_KEY` is unset)",
             "infra/settings.py", secret=True),
    Variable("LEDGER_CIPHER_KEYS_OLD", "none",
             "earlier keys (comma-separated), still accepted for decryption while rotating",
             "infra/settings.py → events/pii.py, events/cipher.py", secret=True),
    Variable("LEDGER_CIPHER_READ_PLAIN", "off", "`1`: also read events stored in clear (before `rekey --plain`)",
             "infra/settings.py → events/cipher.py", parse=_flag, fallback="0"),
    Variable("LEDGER_REQUIRE_CIPHER_KEY", "off", "`1`: with PostgreSQL, refuse to start without `CIPHER_KEY`",
             "infra/settings.py", parse=_flag, fallback="0"),
    Variable("CIPHER_TOPIC", f"`{STORE_CIPHER_TOPIC}`",
             "the event store's cipher class (the eventsourcing library's setting); kept as given",
             "infra/settings.py → eventsourcing"),
    Variable("POSTGRES_*", "printed by `infra env`", "PostgreSQL connection and pool (`POSTGRES_HOST`, `_PORT`, "
             "`_DBNAME`, `_USER`, `_PASSWORD`, `_SCHEMA`, ...: the eventsourcing library's names)",
             "infra/settings.py → eventsourcing, projections, reconciliation"),
    Variable("DATABASE_URL", "none", "PostgreSQL as one URL (`postgresql://u:p@h1:5432,h2:5433/db`), "
             "used when `POSTGRES_DBNAME` is unset", "infra/settings.py", secret=True),
    Variable("PGTARGETSESSIONATTRS", "`read-write` with several hosts",
             "libpq: which server of several to use; set by the system for a multi-host connection unless given",
             "infra/settings.py (prefer_read_write) → libpq"),
    Variable("KAFKA_BOOTSTRAP_SERVERS", "none (in-process transport)", "Kafka broker(s); printed by `infra env`",
             "infra/settings.py"),
    Variable("LEDGER_TOPIC_PREFIX", "none", "prefix of every Kafka topic and group name (one deployment's own)",
             "infra/settings.py → entrypoints/wiring.py"),
    Variable("LEDGER_POLICY_DIR", "the packaged `ledger/policy/tables`",
             "a folder of policy tables to use instead, as a whole: copy the packaged folder, add a year as "
             "`national/<Y>.toml`, `ankang/<Y>.toml` and `<region>/<Y>.toml` with figures from the published "
             "notices and a new `version` (`ledger/policy/tables/README.md`); `ledger policy` shows these tables; "
             "a bad file is `POLICY_FILE_INVALID` naming file and line",
             "infra/settings.py → entrypoints/wiring.py (policy_book)"),
    Variable("LEDGER_PLACES_FILE", "the packaged `infra/places/ankang-sample.csv` (sample names, 示例)",
             "the places table (地名表): a CSV `code,name,valid_from,valid_to,source` of township and village / "
             "community names with their validity (`infra/places/__init__.py`); a bad file is `PLACES_FILE_INVALID` "
             "naming file and line",
             "infra/settings.py → entrypoints/wiring.py (place_names)"),
    Variable("LEDGER_API_CATCH_UP", "`1`", "`0`: the API does not bring the views up to date before a list read "
             "(a separate `ledger project --follow` keeps them)", "entrypoints/http/read_model.py",
             parse=_flag, fallback="1"),
    Variable("LEDGER_TOKENS_FILE", "none", "the tokens file (required by `serve` and the token commands)",
             "entrypoints/http/auth.py, entrypoints/http/access.py, entrypoints/http/cli_commands.py"),
    Variable("LEDGER_TOKEN", "none", "the token a command-line user acts with", "entrypoints/http/access.py",
             secret=True),
    Variable("LEDGER_LANG", "`zh`", "the language of the command line's help, output and error lines: `zh` "
             "(中文) or `en` (`--lang` overrides it)", "entrypoints/main.py", parse=_choice("zh", "en"), fallback="zh"),
    Variable("LEDGER_RECON_INCOMPLETE_AFTER_HOURS", "`2`",
             "hours after which a statement still missing parts is reported incomplete",
             "reconciliation/factory.py", parse=_positive_number),
    Variable("LEDGER_RECON_STATEMENT_DUE_DAYS", "`1`",
             "days after a payment date by which its tax statement must have arrived; later, a day with ledger "
             "receipts and no statement is reported `STATEMENT_MISSING` (`ledger reconcile missing`, `summary`)",
             "reconciliation/factory.py", parse=_non_negative_number),
    Variable("LEDGER_KAFKA_STARTUP_WAIT", "`300`", "seconds a consumer, producer or publisher started while the "
             "broker is down waits for it before exiting", "consumers/kafka_io.py",
             parse=_non_negative_number, fallback="300"),
    Variable("LEDGER_FAULT_PUBLISHER_PAUSE", "none", "fault suite only: the publisher pauses at this point "
             "(`before_kafka_commit` or `after_kafka_commit`)", "consumers/publisher.py",
             parse=_choice("before_kafka_commit", "after_kafka_commit")),
    Variable("LEDGER_FAULT_PUBLISHER_PAUSE_S", "`120`", "fault suite only: seconds of that pause",
             "consumers/publisher.py", parse=_non_negative_number, fallback="120"),
    # ------------------------------------------------------------------ the local stack (python -m infra)
    Variable("LEDGER_KAFKA_PORT", "`19092`", "the local Kafka broker's port", "infra/stack.py", STACK, _port),
    Variable("LEDGER_KAFKA_CONTROLLER_PORT", "`19093`", "the local Kafka controller's port", "infra/stack.py",
             STACK, _port),
    Variable("LEDGER_PG_PORT", "`55432`", "the local PostgreSQL's port", "infra/stack.py", STACK, _port),
    Variable("LEDGER_STACK_TIMEOUT", "`120`", "seconds the stack may take to start", "infra/stack.py", STACK,
             _positive_number),
    Variable("LEDGER_FETCH_TIMEOUT", "`600`", "seconds Maven may take to fetch the Kafka jars", "infra/stack.py",
             STACK, _positive_number),
    Variable("LEDGER_KAFKA_HEAP", "`512m` (`320m` per cluster broker)", "the local Kafka's JVM heap",
             "infra/stack.py, infra/cluster.py", STACK),
    Variable("LEDGER_KAFKA_LIB_DIR", "`infra/kafka/lib`", "where the Kafka jars are", "infra/stack.py", STACK),
    Variable("LEDGER_JAVA", "`$JAVA_HOME/bin/java`, else `java` on PATH", "the Java runtime for Kafka",
             "infra/stack.py", STACK),
    Variable("JAVA_HOME", "none", "where to look for `bin/java` when `LEDGER_JAVA` is unset", "infra/stack.py",
             STACK),
    Variable("LEDGER_MVN", "`mvn` on PATH", "Maven, to fetch the Kafka jars", "infra/stack.py", STACK),
    Variable("LEDGER_PG_BINDIR", "newest `/usr/lib/postgresql/*/bin`", "PostgreSQL's programs", "infra/stack.py",
             STACK),
    Variable("LEDGER_KAFKA_BROKERS", "`1`", "`3`: `infra up` starts the cluster (3 brokers, PostgreSQL primary "
             "and standby)", "infra/cluster.py", STACK, _choice("1", "3")),
    Variable("LEDGER_CLUSTER_KAFKA_PORT", "`19192`", "the cluster's first broker port (brokers P..P+2, "
             "controllers P+3..P+5)", "infra/cluster.py", STACK, _port),
    Variable("LEDGER_CLUSTER_PG_PORT", "`55442`", "the cluster's PostgreSQL primary port (standby +1)",
             "infra/cluster.py", STACK, _port),
    Variable("LEDGER_SECURE_STATE_DIR", "`var/secure`", "state of the secured (SASL/ACL) broker", "infra/secure.py",
             STACK),
    Variable("LEDGER_SECURE_KAFKA_PORT", "`19094`", "the secured broker's port", "infra/secure.py", STACK, _port),
    Variable("LEDGER_SECURE_CONTROLLER_PORT", "`19095`", "the secured broker's controller port", "infra/secure.py",
             STACK, _port),
    # ------------------------------------------------------------------ tests, CI and benchmarks (read there)
    Variable("LEDGER_FAULTS", "run after a full `test`", "`0`: `dev.sh test` skips the fault suite; `1`: runs it "
             "also with test arguments", "infra/dev.sh", HARNESS, _flag),
    Variable("LEDGER_FAULTS_SIZE", "`small`", "the fault suite's size (`small` or `large`)", "infra/dev.sh",
             HARNESS, _choice("small", "large")),
    Variable("LEDGER_FAULTS_CLUSTER", "`1` under `CI=true`", "`1`: also run the fault suite on the cluster",
             "infra/dev.sh", HARNESS, _flag),
    Variable("LEDGER_KEEP_STACK", "`1` (`0` under `CI=true`)", "leave the local stack running after `dev.sh test`",
             "infra/dev.sh", HARNESS, _flag),
    Variable("LEDGER_CLUSTER_TESTS", "off (`1` under `CI=true`)", "`1`: run the cluster integration tests "
             "(they start 5 servers)", "infra/dev.sh, tests/integration/test_infra_cluster.py", HARNESS, _flag),
    Variable("LEDGER_BENCH_FRESHNESS", "off (`1` under `CI=true`)", "`1`: run the freshness benchmark's quick "
             "mode as an integration test (about a minute)", "infra/dev.sh, tests/integration/test_bench_freshness.py",
             HARNESS, _flag),
    Variable("LEDGER_USE_TESTCONTAINERS", "off", "`1`: the integration tests start their servers with Docker",
             "tests/conftest.py", HARNESS, _flag),
    Variable("BENCH_LOG_DIR", "none", "a folder for the Kafka pipeline benchmark's process logs",
             "benchmarks/bench_kafka_pipeline.py", HARNESS),
    Variable("BENCH_REPORT_S", "`10`", "seconds between the Kafka pipeline benchmark's progress lines",
             "benchmarks/bench_kafka_pipeline.py", HARNESS, _positive_number, fallback="10"),
)

_BY_NAME = {v.name: v for v in VARIABLES if not v.is_prefix}
_PREFIXES = tuple(v for v in VARIABLES if v.is_prefix)


def variable(name: str) -> Variable:
    """The registry's entry for ``name``; :class:`UnknownVariable` when it has none."""
    found = _BY_NAME.get(name) or next((v for v in _PREFIXES if v.matches(name)), None)
    if found is None:
        raise UnknownVariable(f"{name} is not in infra.settings.VARIABLES: register it (and document it)")
    return found


def setting_text(name: str, env: Mapping[str, str] | None = None) -> str:
    """The text of a registered variable as set ("" when unset), from ``env`` or the process environment."""
    variable(name)
    source = os.environ if env is None else env
    return source.get(name) or ""


def setting(name: str, env: Mapping[str, str] | None = None) -> Any:
    """The typed value of a registered variable: parsed, or its fallback when unset (None without one).

    A value that does not parse raises :class:`SettingError` (``SETTING_INVALID``) naming the variable."""
    var = variable(name)
    text = setting_text(name, env)
    if not text:
        if var.fallback is None:
            return None
        text = var.fallback
    try:
        return var.parse(text)
    except ValueError as e:
        rule_zh, rule_en = e.args if len(e.args) == 2 else ("取值无法识别", str(e))
        raise SettingError(name, text, rule_zh, rule_en, secret=var.secret) from None


def environment() -> dict[str, str]:
    """A copy of the process environment, to derive another run's settings from (the demo's own files,
    a child process's schema): read it with :func:`setting` / :func:`setting_text`."""
    return dict(os.environ)


def check(env: Mapping[str, str] | None = None, group: str = SYSTEM) -> None:
    """Parse every variable of ``group`` that is set: a bad one fails at start, not at its first use."""
    for var in VARIABLES:
        if var.group == group and not var.is_prefix:
            setting(var.name, env)


# --------------------------------------------------------------------------- places
def state_dir(env: Mapping[str, str] | None = None) -> Path:
    return Path(setting_text("LEDGER_STATE_DIR", env) or REPO_ROOT / "var")


def views_path(env: Mapping[str, str] | None = None) -> Path:
    """The SQLite view store file (``LEDGER_VIEWS_PATH``, else ``views.sqlite`` in the state directory)."""
    return Path(setting_text("LEDGER_VIEWS_PATH", env) or state_dir(env) / "views.sqlite")


def recon_path(env: Mapping[str, str] | None = None) -> Path:
    """The SQLite reconciliation store file (``LEDGER_RECON_PATH``, else in the state directory)."""
    return Path(setting_text("LEDGER_RECON_PATH", env) or state_dir(env) / "reconciliation.sqlite")


def digests_path(env: Mapping[str, str] | None = None) -> Path:
    """The audit digests file (``LEDGER_DIGESTS_PATH``, else ``audit-digests.jsonl`` in the state directory)."""
    return Path(setting_text("LEDGER_DIGESTS_PATH", env) or state_dir(env) / "audit-digests.jsonl")


@dataclass(frozen=True)
class Settings:
    """The system's settings as values (:func:`load_settings`; tests build them by hand): the wiring
    passes them on, so the core is given its store, keys and policy folder and reads no environment."""

    persistence: str = "sqlite"  # "sqlite" | "postgres" | "memory"
    sqlite_path: str = ""
    postgres: dict[str, str] = field(default_factory=dict)
    kafka_bootstrap_servers: str | None = None
    id_key: bytes = b""
    policy_dir: str | None = None
    #: The places table (``LEDGER_PLACES_FILE``); None: the packaged sample (:mod:`infra.places`).
    places_file: str | None = None
    topic_prefix: str = ""
    #: Encryption at rest of the stored events and snapshots: the library's ``CIPHER_TOPIC``
    #: (e.g. ``eventsourcing.cipher:AESCipher``) and ``CIPHER_KEY``. Kept out of ``repr``.
    store_cipher: dict[str, str] = field(default_factory=dict, repr=False)
    #: The deployment's cipher keys, base64: the current one first, then the old ones still read
    #: (``events.pii.KeyRing``: topic fields, dead letters, raw records kept for reconciliation).
    cipher_keys: tuple[str, ...] = field(default=(), repr=False)

    #: Off only to write a store in clear on purpose (tests of the migration, ``entrypoints.rekey --plain``).
    encrypt_at_rest: bool = True
    #: The SQLite files beside the event store. Empty (settings built by hand): the environment's,
    #: read when the store is opened (:func:`views_path`, :func:`recon_path`, :func:`digests_path`).
    views_path: str = ""
    recon_path: str = ""
    digests_path: str = ""

    def views_file(self) -> Path:
        return Path(self.views_path) if self.views_path else views_path()

    def recon_file(self) -> Path:
        return Path(self.recon_path) if self.recon_path else recon_path()

    def digests_file(self) -> Path:
        return Path(self.digests_path) if self.digests_path else digests_path()

    def event_store_env(self) -> dict[str, str]:
        """The eventsourcing library's environment for the chosen store.

        SQLite and PostgreSQL are encrypted even for settings built by hand without
        ``store_cipher`` (the deployment's key from the environment / state directory), so a
        process built that way reads and writes the same store as one from :func:`load_settings`.
        """
        cipher = self.store_cipher
        if not cipher and self.encrypt_at_rest and self.persistence in ("sqlite", "postgres"):
            cipher = _store_cipher(None, self.persistence, self._keys())
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
        return cipher_keys(None, self.persistence)


def postgres_from_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """POSTGRES_* settings, from those variables or from DATABASE_URL.

    A multi-host URL (``postgresql://u:p@h1:5432,h2:5433/db?target_session_attrs=read-write``,
    a primary and its standby) becomes ``POSTGRES_HOST=h1,h2`` and ``POSTGRES_PORT=5432,5433``:
    libpq (and so psycopg and the eventsourcing pool) tries them in turn.
    """
    source = os.environ if env is None else env
    out = {k: v for k, v in source.items() if k.startswith("POSTGRES_")}
    url = setting_text("DATABASE_URL", source)
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


def _id_key(env: Mapping[str, str] | None, persistence: str) -> bytes:
    """The deployment secret behind person ids.

    Production sets LEDGER_ID_KEY. The embedded default keeps a generated key in the
    state directory (never in the repository), so ids are stable across runs.
    """
    key = setting_text("LEDGER_ID_KEY", env)
    if key:
        return key.encode()
    if persistence == "postgres" and setting("LEDGER_REQUIRE_ID_KEY", env):
        raise SystemExit("SETTING_MISSING: LEDGER_ID_KEY is not set: every deployment needs its own identity key")
    path = state_dir(env) / "id_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def _required(env: Mapping[str, str] | None, persistence: str) -> bool:
    return persistence == "postgres" and bool(setting("LEDGER_REQUIRE_ID_KEY", env)
                                              or setting("LEDGER_REQUIRE_CIPHER_KEY", env))


def _new_key() -> str:
    """A fresh 256-bit key in base64: the format of ``events.pii.new_key`` (this module imports no codec)."""
    return b64encode(os.urandom(32)).decode()


def cipher_keys(env: Mapping[str, str] | None = None, persistence: str | None = None) -> tuple[str, list[str]]:
    """The deployment's cipher key (base64) and the old keys still accepted for decryption.

    Production sets ``CIPHER_KEY`` (or ``LEDGER_CIPHER_KEY``), e.g. ``python -c "from events.pii
    import new_key; print(new_key())"``. The embedded default generates one once, in the state
    directory (``cipher_key``, mode 600), as for :func:`_id_key`. ``LEDGER_CIPHER_KEYS_OLD``:
    comma-separated earlier keys (rotation: see ``events/cipher.py``). ``persistence`` defaults to
    ``LEDGER_PERSISTENCE``'s.
    """
    if persistence is None:
        persistence = setting("LEDGER_PERSISTENCE", env)
    key = setting_text("CIPHER_KEY", env) or setting_text("LEDGER_CIPHER_KEY", env)
    old = [k.strip() for k in setting_text("LEDGER_CIPHER_KEYS_OLD", env).split(",") if k.strip()]
    if key:
        return key.strip(), old
    if _required(env, persistence):
        raise SystemExit("SETTING_MISSING: CIPHER_KEY is not set: every deployment needs its own key for "
                         "personal data at rest")
    path = state_dir(env) / "cipher_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a temporary name with mode 600, then linked into place: processes
        # starting together (a deployment, the fault suite) all end up reading the one key that won.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(_new_key())
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip(), old


def cipher_config(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The variables the deployment's key ring depends on, as they are (a cache key: no Path built)."""
    return tuple(setting_text(name, env) for name in ("CIPHER_KEY", "LEDGER_CIPHER_KEY", "LEDGER_CIPHER_KEYS_OLD",
                                             "LEDGER_PERSISTENCE", "LEDGER_STATE_DIR"))


def _store_cipher(env: Mapping[str, str] | None, persistence: str, keys: tuple[str, list[str]]) -> dict[str, str]:
    """The event store's cipher settings: on by default for SQLite and PostgreSQL (``events.cipher``).

    An explicit ``CIPHER_TOPIC`` is kept as given (a renamed one, :data:`RENAMED_CIPHER_TOPICS`, as its new name); the in-memory store (tests, nothing at rest)
    is encrypted only when asked.
    """
    topic = setting_text("CIPHER_TOPIC", env)
    topic = RENAMED_CIPHER_TOPICS.get(topic, topic)
    if topic:
        return {"CIPHER_TOPIC": topic, "CIPHER_KEY": keys[0],
                **({"LEDGER_CIPHER_KEYS_OLD": ",".join(keys[1])} if keys[1] else {})}
    if persistence == "memory":
        return {}
    out = {"CIPHER_TOPIC": STORE_CIPHER_TOPIC, "CIPHER_KEY": keys[0]}
    if keys[1]:
        out["LEDGER_CIPHER_KEYS_OLD"] = ",".join(keys[1])
    read_plain = setting_text("LEDGER_CIPHER_READ_PLAIN", env)
    if read_plain:
        out["LEDGER_CIPHER_READ_PLAIN"] = read_plain
    return out


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The system's settings from ``env`` (the process environment by default).

    Every variable of the system that is set is parsed first: a bad value stops the start with
    ``SETTING_INVALID`` before anything is opened."""
    env = dict(os.environ if env is None else env)
    check(env)
    postgres = postgres_from_env(env)
    persistence = setting("LEDGER_PERSISTENCE", env)
    sqlite_path = setting_text("LEDGER_SQLITE_PATH", env) or str(state_dir(env) / "ledger.sqlite")
    if persistence == "sqlite":
        Path(sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    keys = cipher_keys(env, persistence)
    return Settings(
        persistence=persistence,
        sqlite_path=sqlite_path,
        postgres=postgres,
        kafka_bootstrap_servers=setting_text("KAFKA_BOOTSTRAP_SERVERS", env) or None,
        id_key=_id_key(env, persistence),
        policy_dir=setting_text("LEDGER_POLICY_DIR", env) or None,
        places_file=setting_text("LEDGER_PLACES_FILE", env) or None,
        topic_prefix=setting_text("LEDGER_TOPIC_PREFIX", env),
        store_cipher=_store_cipher(env, persistence, keys),
        cipher_keys=(keys[0], *keys[1]),
        views_path=str(views_path(env)),
        recon_path=str(recon_path(env)),
        digests_path=str(digests_path(env)),
    )


# --------------------------------------------------------------------------- the README's table
TABLE_BEGIN = "<!-- settings:begin -->"
TABLE_END = "<!-- settings:end -->"
_GROUP_TITLES = {SYSTEM: "The system", STACK: "The local stack (`python -m infra`, `infra/dev.sh`)",
                 HARNESS: "Tests, CI and benchmarks"}


def markdown() -> str:
    """The README's configuration tables (between :data:`TABLE_BEGIN` and :data:`TABLE_END`)."""
    lines = []
    for group, title in _GROUP_TITLES.items():
        lines += ["", f"**{title}**", "", "| variable | default | meaning | read by |", "| --- | --- | --- | --- |"]
        lines += [f"| `{v.name}` | {v.default} | {v.meaning} | {v.readers} |" for v in VARIABLES if v.group == group]
    return "\n".join(lines[1:]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.settings", description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print the README's configuration tables")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown())
        return 0
    try:  # without --markdown: check this environment's settings (no secret is printed)
        settings = load_settings()
    except SettingError as e:
        print(f"error {e.code}: {e.message}", file=sys.stderr)
        return 2
    print(f"settings ok: persistence={settings.persistence} kafka={settings.kafka_bootstrap_servers or 'in-process'} "
          f"topic_prefix={settings.topic_prefix!r} policy_dir={settings.policy_dir or 'packaged'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
