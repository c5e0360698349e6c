"""The local stack: a real Apache Kafka broker and a real PostgreSQL server, no Docker.

    python -m infra up [--clean] [--timeout S]   start both (idempotent), print the settings
    python -m infra down [--clean]                stop both; --clean also deletes their data
    python -m infra status [--json]               up / down / crashed / starting/unhealthy
    python -m infra env                           `export K=V` lines, for `eval "$(...)"`
    python -m infra fetch                         only fetch the Kafka jars (Maven Central)
    python -m infra logs [-n N]                   end of the broker's and the server's logs
    python -m infra up --cluster                  3 Kafka brokers + PostgreSQL primary/standby
    python -m infra failover | rejoin             (cluster) promote the standby / old primary back

* Kafka 4.1 runs from the jars Maven puts in ``infra/kafka/lib/`` as a single KRaft node
  (broker + controller) on 127.0.0.1:19092 (controller 19093), logs in
  ``<state>/kafka/logs/``, data in ``<state>/kafka/data/``.
* PostgreSQL is Debian's server binary running a private cluster in ``<state>/postgres/data``
  on 127.0.0.1:55432 (TCP only, scram-sha-256), as the ``postgres`` OS user when we are root.
  Role and database ``ledger``; the passwords are generated once into ``<state>/secrets.json``.
* ``<state>`` is ``var/`` at the repo root, or ``$LEDGER_STATE_DIR``.

Environment: LEDGER_STATE_DIR, LEDGER_KAFKA_PORT, LEDGER_KAFKA_CONTROLLER_PORT, LEDGER_PG_PORT,
LEDGER_STACK_TIMEOUT (seconds, default 120), LEDGER_KAFKA_HEAP (default 512m),
LEDGER_FETCH_TIMEOUT (Maven, default 600), LEDGER_JAVA, LEDGER_MVN, LEDGER_PG_BINDIR,
LEDGER_KAFKA_LIB_DIR.

Python API (used by tests/conftest.py)::

    cfg = StackConfig.from_env()
    settings = up(cfg, timeout=120)      # -> {"KAFKA_BOOTSTRAP_SERVERS": ..., "DATABASE_URL": ...}
    report = status(cfg)                 # StackStatus; report.healthy, report.kafka.state
    down(cfg); clean(cfg)
    stop_kafka(cfg); stop_postgres(cfg, mode="immediate")   # one service only (fault injection)

Every failure a user can cause raises :class:`StackError` with a one-line reason and what to
do about it; the CLI prints that line and exits non-zero.
"""
from __future__ import annotations

import base64
import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets as _secrets
import shlex
import shutil
import signal
import socket
import string
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from infra.settings import setting_text
import psycopg
from infra.topics import ensure_topics
from psycopg import sql

INFRA_DIR = Path(__file__).resolve().parent
REPO_ROOT = INFRA_DIR.parent
KAFKA_HOME = INFRA_DIR / "kafka"
KAFKA_POM = KAFKA_HOME / "pom.xml"
KAFKA_PROPERTIES_TEMPLATE = KAFKA_HOME / "server.properties"
KAFKA_LOG4J = KAFKA_HOME / "log4j2.xml"
KAFKA_TOOLS_LOG4J = KAFKA_HOME / "tools-log4j2.xml"
DEFAULT_STATE_DIR = REPO_ROOT / "var"

DEFAULT_KAFKA_PORT = 19092
DEFAULT_CONTROLLER_PORT = 19093
DEFAULT_PG_PORT = 55432
DEFAULT_TIMEOUT = 120.0

PG_SUPERUSER = "postgres"
PG_USER = "ledger"
PG_DBNAME = "ledger"
KAFKA_NODE_ID = "1"
MIN_JAVA = 17  # Kafka 4.x brokers need Java 17

# Service states reported by status().
UP = "up"
DOWN = "down"
CRASHED = "crashed"
UNHEALTHY = "starting/unhealthy"

Echo = Callable[[str], None]


def _silent(_msg: str) -> None:
    pass


class StackError(RuntimeError):
    """A problem the user can fix: ``reason`` says what is wrong, ``hint`` what to do."""

    def __init__(self, reason: str, hint: str = "") -> None:
        super().__init__(reason if not hint else f"{reason} -- {hint}")
        self.reason = reason
        self.hint = hint


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def _env_port(environ: Mapping[str, str] | None, key: str, default: int) -> int:
    raw = setting_text(key, environ).strip()
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise StackError(f"{key}={raw!r} is not a port number", f"set {key} to 1024-65535") from None
    return port


@dataclass(frozen=True)
class StackConfig:
    """Where the stack keeps its state and which loopback ports it uses."""

    state_dir: Path = DEFAULT_STATE_DIR
    kafka_port: int = DEFAULT_KAFKA_PORT
    controller_port: int = DEFAULT_CONTROLLER_PORT
    pg_port: int = DEFAULT_PG_PORT
    timeout: float = DEFAULT_TIMEOUT
    kafka_heap: str = "512m"
    fetch_timeout: float = 600.0
    host: str = "127.0.0.1"
    kafka_lib: Path = KAFKA_HOME / "lib"
    java: str | None = None  # path of `java`; None = $JAVA_HOME/bin/java or PATH
    mvn: str | None = None  # path of `mvn`; None = PATH
    pg_bindir: Path | None = None  # None = newest /usr/lib/postgresql/*/bin

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_dir", Path(self.state_dir).absolute())
        object.__setattr__(self, "kafka_lib", Path(self.kafka_lib).absolute())
        for name in ("kafka_port", "controller_port", "pg_port"):
            port = getattr(self, name)
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise StackError(f"{name}={port!r} is not a TCP port", "use a number 1024-65535")
        ports = [self.kafka_port, self.controller_port, self.pg_port]
        if len(set(ports)) != 3:
            raise StackError(f"ports must differ (kafka {self.kafka_port}, controller "
                             f"{self.controller_port}, postgres {self.pg_port})",
                             "set LEDGER_KAFKA_PORT / LEDGER_KAFKA_CONTROLLER_PORT / LEDGER_PG_PORT")
        if not re.fullmatch(r"\d+[mMgG]", self.kafka_heap):
            raise StackError(f"kafka heap {self.kafka_heap!r} is not a JVM size", "use e.g. 512m")
        if self.timeout <= 0:
            raise StackError(f"timeout {self.timeout} must be positive", "e.g. LEDGER_STACK_TIMEOUT=120")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "StackConfig":
        """The config from ``environ`` (the process environment by default, read by :mod:`infra.settings`)."""
        def get(key: str) -> str:
            return setting_text(key, environ)

        kw: dict[str, Any] = {}
        if get("LEDGER_STATE_DIR"):
            kw["state_dir"] = Path(get("LEDGER_STATE_DIR")).expanduser()
        kw["kafka_port"] = _env_port(environ, "LEDGER_KAFKA_PORT", DEFAULT_KAFKA_PORT)
        kw["controller_port"] = _env_port(environ, "LEDGER_KAFKA_CONTROLLER_PORT", DEFAULT_CONTROLLER_PORT)
        kw["pg_port"] = _env_port(environ, "LEDGER_PG_PORT", DEFAULT_PG_PORT)
        for key, name in (("LEDGER_STACK_TIMEOUT", "timeout"), ("LEDGER_FETCH_TIMEOUT", "fetch_timeout")):
            if get(key):
                try:
                    kw[name] = float(get(key))
                except ValueError:
                    raise StackError(f"{key}={get(key)!r} is not a number of seconds",
                                     f"set e.g. {key}=120") from None
        for key, name, kind in (("LEDGER_KAFKA_HEAP", "kafka_heap", str), ("LEDGER_KAFKA_LIB_DIR", "kafka_lib", Path),
                                ("LEDGER_JAVA", "java", str), ("LEDGER_MVN", "mvn", str),
                                ("LEDGER_PG_BINDIR", "pg_bindir", Path)):
            if get(key):
                kw[name] = kind(get(key))
        kw.update(overrides)
        return cls(**kw)

    # Paths -----------------------------------------------------------------------------------
    @property
    def kafka_dir(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def kafka_data(self) -> Path:
        return self.kafka_dir / "data"

    @property
    def kafka_logs(self) -> Path:
        return self.kafka_dir / "logs"

    @property
    def kafka_pid_file(self) -> Path:
        return self.kafka_dir / "kafka.pid"

    @property
    def kafka_properties(self) -> Path:
        return self.kafka_dir / "server.properties"

    @property
    def cluster_id_file(self) -> Path:
        return self.kafka_dir / "cluster.id"

    @property
    def secrets_file(self) -> Path:
        return self.state_dir / "secrets.json"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "stack.lock"

    @property
    def pg_location_file(self) -> Path:
        """Written when the PostgreSQL dir had to live outside the state dir (see _pg_root)."""
        return self.state_dir / "postgres.location"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"


def settings(cfg: StackConfig | None = None) -> dict[str, str]:
    """Connection settings of the stack (needs the secrets written by the first ``up``)."""
    cfg = cfg or StackConfig.from_env()
    secrets = _read_secrets(cfg)
    if secrets is None:
        raise StackError(f"the stack in {cfg.state_dir} was never started (no secrets.json)",
                         "run `python -m infra up` first")
    pw = secrets["ledger_password"]
    return {
        "KAFKA_BOOTSTRAP_SERVERS": cfg.kafka_bootstrap,
        "DATABASE_URL": f"postgresql://{PG_USER}:{pw}@{cfg.host}:{cfg.pg_port}/{PG_DBNAME}",
        "POSTGRES_HOST": cfg.host,
        "POSTGRES_PORT": str(cfg.pg_port),
        "POSTGRES_DBNAME": PG_DBNAME,
        "POSTGRES_USER": PG_USER,
        "POSTGRES_PASSWORD": pw,
    }


# --------------------------------------------------------------------------------------------
# Small helpers: deadlines, processes, ports, files
# --------------------------------------------------------------------------------------------


class _Deadline:
    def __init__(self, seconds: float, cfg: StackConfig) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.cfg = cfg

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def check(self, doing: str) -> None:
        if time.monotonic() >= self.end:
            raise self.error(doing)

    def error(self, doing: str) -> StackError:
        return StackError(
            f"start-up did not finish within {self.seconds:g} s ({doing})",
            f"see the logs under {self.cfg.state_dir}; on a slow machine raise LEDGER_STACK_TIMEOUT",
        )


def _run(cmd: list[str], *, deadline: _Deadline | None = None, doing: str = "",
         timeout: float | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a command with a time limit. It runs in a process group of its own, and the whole
    group is killed on time-out (initdb's bootstrap backend, a JVM's children)."""
    if deadline is not None:
        timeout = max(1.0, deadline.remaining())
    kw.setdefault("stdin", subprocess.DEVNULL)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, **kw)
    except FileNotFoundError:
        raise StackError(f"{cmd[0]} not found", "run `bash infra/dev.sh setup`") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        if deadline is not None:
            raise deadline.error(doing) from None
        raise StackError(f"{doing or cmd[0]} did not finish within {timeout:g} s",
                         "check the machine's load and network, then retry") from None
    except BaseException:  # KeyboardInterrupt: leave nothing behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _pid_alive(pid: int) -> bool:
    """Is ``pid`` a live process (a zombie counts as dead)?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _proc_cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def _read_pid(path: Path) -> int | None:
    try:
        first = path.read_text().splitlines()[0].strip()
        return int(first)
    except (OSError, IndexError, ValueError):
        return None


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _tcp_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _listening_pids(port: int) -> list[int]:
    """PIDs with a listening TCP socket on ``port`` (best effort, from /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    if not inodes:
        return []
    targets = {f"socket:[{i}]" for i in inodes}
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in targets:
                    pids.append(int(entry.name))
                    break
        except OSError:
            continue
    return pids


def _describe_pid(pid: int) -> str:
    cmd = " ".join(_cmdline(pid))
    if len(cmd) > 100:
        cmd = cmd[:97] + "..."
    return f"pid {pid}: {cmd}" if cmd else f"pid {pid}"


def _port_taken_error(cfg: StackConfig, port: int, what: str, env_key: str) -> StackError:
    pids = _listening_pids(port)
    owner = f" by {_describe_pid(pids[0])}" if pids else " by another process"
    other_stack = ""
    if pids:
        cmd = " ".join(_cmdline(pids[0]))
        m = re.search(r"kafka\.Kafka (\S+)/kafka/server\.properties", cmd)
        cwd = _proc_cwd(pids[0])
        if m:
            other_stack = m.group(1)
        elif cwd is not None and cwd.name == "data" and cwd.parent.name == "postgres":
            other_stack = str(cwd.parent.parent)
    if other_stack:
        hint = (f"another ledger stack uses it: stop it with `LEDGER_STATE_DIR={other_stack} "
                f"python -m infra down`, or set {env_key} to a free port")
    else:
        hint = f"stop that process or set {env_key} to a free port"
    return StackError(f"{what} port {cfg.host}:{port} is already in use{owner}", hint)


def _tail(path: Path, lines: int = 200) -> list[str]:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            return f.read().decode(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _first_error(lines: list[str], patterns: tuple[str, ...]) -> str:
    for line in lines:
        if any(p in line for p in patterns):
            return line.strip()[:300]
    for line in reversed(lines):
        if line.strip():
            return line.strip()[:300]
    return "(no output)"


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(cfg: StackConfig, wait: float) -> Iterator[None]:
    """One `infra` command at a time per state dir. flock dies with its holder: never stale."""
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(cfg.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        end = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= end:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    raise StackError(
                        f"another `infra` command (pid {holder}) is using {cfg.state_dir}",
                        "wait for it to finish, or stop it",
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Keep kafka-python's connection warnings off the terminal while probing."""
    logger = logging.getLogger(name)
    if logger.level != logging.NOTSET or logger.handlers:
        yield
        return
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(logging.NOTSET)


# --------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------


def _read_secrets(cfg: StackConfig) -> dict[str, str] | None:
    try:
        data = json.loads(cfg.secrets_file.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StackError(f"{cfg.secrets_file} is unreadable ({exc})",
                         "run `python -m infra down --clean` to start afresh (deletes the data)") from None
    if not {"postgres_password", "ledger_password"} <= set(data):
        raise StackError(f"{cfg.secrets_file} lacks passwords",
                         "run `python -m infra down --clean` to start afresh (deletes the data)")
    return data


def _ensure_secrets(cfg: StackConfig) -> dict[str, str]:
    existing = _read_secrets(cfg)
    if existing is not None:
        return existing
    data = {
        "postgres_password": _secrets.token_urlsafe(24),
        "ledger_password": _secrets.token_urlsafe(24),
    }
    _write_private(cfg.secrets_file, json.dumps(data, indent=2) + "\n")
    return data


# --------------------------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------------------------


def find_java(cfg: StackConfig) -> str:
    """Path of a Java >= 17 runtime, or StackError."""
    hint = "run `bash infra/dev.sh setup` (or `apt-get install -y openjdk-17-jre-headless`)"
    if cfg.java:
        java = cfg.java
    elif setting_text("JAVA_HOME") and (Path(setting_text("JAVA_HOME")) / "bin/java").exists():
        java = str(Path(setting_text("JAVA_HOME")) / "bin/java")
    else:
        java = shutil.which("java") or ""
    if not java or not os.access(java, os.X_OK):
        raise StackError(f"no Java runtime found{f' at {java}' if java else ''} (Kafka needs Java {MIN_JAVA}+)", hint)
    proc = _run([java, "-version"], timeout=30, doing="java -version")
    m = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if proc.returncode != 0 or not m:
        raise StackError(f"{java} -version failed: {_first_error((proc.stderr or '').splitlines(), ('Error',))}", hint)
    major = int(m.group(1))
    if major == 1 and m.group(2):  # "1.8.0_…"
        major = int(m.group(2))
    if major < MIN_JAVA:
        raise StackError(f"Java {major} found at {java}, Kafka 4.1 needs Java {MIN_JAVA}+", hint)
    return java


def _pom_hash() -> str:
    return hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()


def kafka_jars_ready(cfg: StackConfig) -> bool:
    marker = cfg.kafka_lib / ".complete"
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if data.get("pom_sha256") != _pom_hash():
        return False
    return all((cfg.kafka_lib / jar).is_file() for jar in data.get("jars", [])) and bool(data.get("jars"))


def ensure_kafka_jars(cfg: StackConfig | None = None, echo: Echo = _silent) -> Path:
    """Fetch the broker jars into ``infra/kafka/lib`` with Maven, unless already complete.

    A marker file (``lib/.complete``) holds the hash of ``pom.xml``: a second run reuses what
    the first fetched; a changed pom fetches again.
    """
    cfg = cfg or StackConfig.from_env()
    if kafka_jars_ready(cfg):
        return cfg.kafka_lib
    mvn = cfg.mvn or shutil.which("mvn")
    if not mvn or not os.access(mvn, os.X_OK):
        raise StackError("Maven (mvn) not found; it is needed once to fetch the Kafka jars",
                         "run `bash infra/dev.sh setup` (or `apt-get install -y maven`)")
    echo(f"kafka: fetching broker jars from Maven Central into {cfg.kafka_lib} ...")
    tmp = cfg.kafka_lib.with_name(cfg.kafka_lib.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    proc = _run(
        [mvn, "-B", "-q", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"],
        timeout=cfg.fetch_timeout, doing="Maven fetching the Kafka jars", cwd=str(KAFKA_HOME),
    )
    jars = sorted(p.name for p in tmp.glob("*.jar")) if tmp.is_dir() else []
    if proc.returncode != 0 or not any(j.startswith("kafka_2.13-") for j in jars):
        shutil.rmtree(tmp, ignore_errors=True)
        out = (proc.stdout + "\n" + proc.stderr).splitlines()
        raise StackError(
            "Maven could not fetch the Kafka jars: "
            + _first_error(out, ("Could not resolve", "Could not transfer", "[ERROR]", "ERROR")),
            "check access to Maven Central (or the mirror in ~/.m2/settings.xml), then rerun",
        )
    (tmp / ".complete").write_text(json.dumps({"pom_sha256": _pom_hash(), "jars": jars}, indent=1))
    shutil.rmtree(cfg.kafka_lib, ignore_errors=True)
    os.replace(tmp, cfg.kafka_lib)
    echo(f"kafka: {len(jars)} jars in {cfg.kafka_lib}")
    return cfg.kafka_lib


def kafka_tool_command(main_class: str, *args: str, cfg: StackConfig | None = None,
                       java: str | None = None) -> list[str]:
    """Command line running one of Kafka's own tools from the fetched jars, e.g.
    ``kafka_tool_command("org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", ...)``.
    Tool logs (warnings only) go to stderr."""
    cfg = cfg or StackConfig.from_env()
    java = java or find_java(cfg)
    return [java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={KAFKA_TOOLS_LOG4J}",
            "-cp", f"{cfg.kafka_lib}/*", main_class, *args]


def _new_cluster_id() -> str:
    while True:  # Kafka's Uuid: 16 random bytes, base64url, no padding, not starting with '-'
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _read_properties(path: Path) -> dict[str, str]:
    props = {}
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            k, v = line.split("=", 1)
            props[k.strip()] = v.strip()
    return props


def _is_our_kafka(cfg: StackConfig, pid: int) -> bool:
    cmd = _cmdline(pid)
    return "kafka.Kafka" in cmd and str(cfg.kafka_properties) in cmd and _pid_alive(pid)


def _find_our_kafka(cfg: StackConfig) -> int | None:
    """Our broker, found by its command line (when the pid file is missing or stale)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _is_our_kafka(cfg, int(entry.name)):
            return int(entry.name)
    return None


def _kafka_pid(cfg: StackConfig) -> tuple[int | None, bool]:
    """(pid from the pid file, whether it is our live broker).

    A broker of this state dir that runs without (or with a wrong) pid file -- an
    interrupted `up`, a deleted pid file -- is adopted: the pid file is rewritten."""
    pid = _read_pid(cfg.kafka_pid_file)
    if pid is not None and _is_our_kafka(cfg, pid):
        return pid, True
    found = _find_our_kafka(cfg) if cfg.kafka_properties.exists() else None
    if found is not None:
        _write_private(cfg.kafka_pid_file, f"{found}\n", 0o644)
        return found, True
    return pid, False


def _kafka_probe(cfg: StackConfig, timeout: float = 3.0) -> tuple[bool, str]:
    """Does the broker answer a metadata request (with a registered broker and our cluster id)?"""
    if not _tcp_answers(cfg.host, cfg.kafka_port, timeout=min(timeout, 1.0)):
        return False, f"nothing answers on {cfg.kafka_bootstrap}"
    from kafka import KafkaAdminClient

    ms = int(timeout * 1000)
    try:
        with _quiet_logger("kafka"):
            admin = KafkaAdminClient(bootstrap_servers=cfg.kafka_bootstrap,
                                     client_id="ledger-infra-probe", request_timeout_ms=ms,
                                     bootstrap_timeout_ms=ms, reconnect_backoff_max_ms=500)
            try:
                cluster = admin.describe_cluster()
                admin.list_topics()
            finally:
                admin.close()
    except Exception as exc:  # any client error means "not answering yet"
        return False, f"{type(exc).__name__}: {exc}"[:200]
    if not cluster.get("brokers"):
        return False, "broker not registered yet"
    try:
        expected = cfg.cluster_id_file.read_text().strip()
    except OSError:
        expected = ""
    if expected and cluster.get("cluster_id") not in (None, expected):
        return False, f"a different Kafka cluster ({cluster.get('cluster_id')}) answers on {cfg.kafka_bootstrap}"
    return True, ""


def _kafka_check_storage(cfg: StackConfig) -> bool:
    """Validate the log dir. Returns True when it still has to be formatted."""
    hint = ("delete it with `python -m infra down --clean` (loses the Kafka data), "
            "or set LEDGER_STATE_DIR to another directory")
    meta = cfg.kafka_data / "meta.properties"
    try:
        expected = cfg.cluster_id_file.read_text().strip()
    except OSError:
        expected = ""
    if meta.exists():
        props = _read_properties(meta)
        found = props.get("cluster.id", "")
        if not expected:
            raise StackError(f"Kafka log dir {cfg.kafka_data} belongs to cluster {found!r}, "
                             f"not one created by this stack (no {cfg.cluster_id_file.name})", hint)
        if found != expected:
            raise StackError(f"Kafka log dir {cfg.kafka_data} belongs to another cluster "
                             f"({found!r}, this stack's is {expected!r})", hint)
        if props.get("node.id") != KAFKA_NODE_ID:
            raise StackError(f"Kafka log dir {cfg.kafka_data} is for node.id {props.get('node.id')!r}, "
                             f"expected {KAFKA_NODE_ID}", hint)
        if props.get("version") != "1":
            raise StackError(f"Kafka log dir {cfg.kafka_data} has meta.properties version "
                             f"{props.get('version')!r} (an older, ZooKeeper-era format?)", hint)
        return False
    if cfg.kafka_data.is_dir() and any(cfg.kafka_data.iterdir()):
        names = {p.name for p in cfg.kafka_data.iterdir()}
        if names <= _FORMAT_LEFTOVERS:  # an interrupted `kafka-storage format`: no data yet
            shutil.rmtree(cfg.kafka_data)
            return True
        raise StackError(f"Kafka log dir {cfg.kafka_data} has data but no meta.properties", hint)
    return True


#: What `kafka-storage format` writes before meta.properties (which it writes last).
_FORMAT_LEFTOVERS = frozenset({"bootstrap.checkpoint", "__cluster_metadata-0", ".lock"})


def _kafka_write_config(cfg: StackConfig) -> None:
    for d in (cfg.kafka_dir, cfg.kafka_data, cfg.kafka_logs):
        d.mkdir(parents=True, exist_ok=True)
    text = string.Template(KAFKA_PROPERTIES_TEMPLATE.read_text()).substitute(
        host=cfg.host, kafka_port=cfg.kafka_port, controller_port=cfg.controller_port,
        log_dirs=str(cfg.kafka_data),
    )
    _write_private(cfg.kafka_properties, text, 0o644)


def _kafka_format(cfg: StackConfig, java: str, deadline: _Deadline, echo: Echo) -> None:
    try:
        cluster_id = cfg.cluster_id_file.read_text().strip()
    except OSError:
        cluster_id = ""
    if not cluster_id:
        cluster_id = _new_cluster_id()
        _write_private(cfg.cluster_id_file, cluster_id + "\n", 0o644)
    echo(f"kafka: formatting {cfg.kafka_data} (KRaft, cluster {cluster_id})")
    proc = _run(kafka_tool_command("kafka.tools.StorageTool", "format", "--standalone",
                                   "--cluster-id", cluster_id, "--config", str(cfg.kafka_properties),
                                   cfg=cfg, java=java),
                deadline=deadline, doing="formatting the Kafka log dir")
    if proc.returncode != 0:
        lines = (proc.stdout + "\n" + proc.stderr).splitlines()
        raise StackError("formatting the Kafka log dir failed: "
                         + _first_error(lines, ("Exception", "Error", "error")),
                         "run `python -m infra down --clean` and retry")


def _kafka_launch(cfg: StackConfig, java: str) -> int:
    heap = cfg.kafka_heap
    cmd = [java, f"-Xmx{heap}", f"-Xms{min(128, _heap_mb(heap))}m", "-XX:+UseG1GC",
           "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
           f"-Dkafka.logs.dir={cfg.kafka_logs}", f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
           "-cp", f"{cfg.kafka_lib}/*", "kafka.Kafka", str(cfg.kafka_properties)]
    out = cfg.kafka_logs / "stdout.log"
    # A throw-away shell backgrounds the JVM and exits: the broker is re-parented, is not our
    # child (no zombie, survives this process) and holds none of our pipes (a CI runner waiting
    # for our output does not wait for the broker).
    script = 'exec_out="$1"; shift; "$@" >>"$exec_out" 2>&1 </dev/null & echo $!'
    proc = subprocess.run(["/bin/sh", "-c", script, "sh", str(out), *cmd], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, start_new_session=True,
                          cwd=str(cfg.kafka_dir), timeout=30, check=True)
    pid = int(proc.stdout.strip())
    _write_private(cfg.kafka_pid_file, f"{pid}\n", 0o644)
    return pid


def _heap_mb(heap: str) -> int:
    n = int(heap[:-1])
    return n * 1024 if heap[-1] in "gG" else n


def _kafka_exit_reason(cfg: StackConfig) -> str:
    lines = _tail(cfg.kafka_logs / "server.log", 400) + _tail(cfg.kafka_logs / "stdout.log", 100)
    for line in lines:
        if " ERROR " in line or "Exception" in line or line.startswith("Error"):
            return line.strip()[:300]
    return f"see {cfg.kafka_logs / 'server.log'}"


def _kafka_stop(cfg: StackConfig, echo: Echo, timeout: float = 60.0) -> None:
    pid, ours = _kafka_pid(cfg)
    if pid is None:
        echo("kafka: not running")
        return
    if not ours:
        echo(f"kafka: not running (removed stale pid file of process {pid})")
        cfg.kafka_pid_file.unlink(missing_ok=True)
        return
    echo(f"kafka: stopping (pid {pid}) ...")
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < end:
        time.sleep(0.2)
    if _pid_alive(pid):
        echo(f"kafka: did not stop within {timeout:g} s; killing pid {pid}")
        os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid) and time.monotonic() < end + 10:
            time.sleep(0.1)
    cfg.kafka_pid_file.unlink(missing_ok=True)
    echo("kafka: stopped")


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------

_PG_HINT_INSTALL = "run `bash infra/dev.sh setup` (or `apt-get install -y postgresql`)"


def _pg_installed() -> dict[str, Path]:
    found = {}
    for postgres in Path("/usr/lib/postgresql").glob("*/bin/postgres"):
        found[postgres.parent.parent.name] = postgres.parent
    return found


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) if x.isdigit() else 0 for x in v.split("."))


def find_pg_bindir(cfg: StackConfig, data_version: str | None = None) -> tuple[Path, str]:
    """(bin dir, major version) of the PostgreSQL server to run, or StackError."""
    if cfg.pg_bindir is not None:
        if not (cfg.pg_bindir / "postgres").exists():
            raise StackError(f"no postgres binary in LEDGER_PG_BINDIR={cfg.pg_bindir}", _PG_HINT_INSTALL)
        proc = _run([str(cfg.pg_bindir / "postgres"), "--version"], timeout=30)
        m = re.search(r"(\d+)(?:\.\d+)?", proc.stdout)
        major = m.group(1) if m else "?"
        installed = {major: cfg.pg_bindir}
    else:
        installed = _pg_installed()
    if not installed:
        raise StackError("PostgreSQL server is not installed (no /usr/lib/postgresql/*/bin/postgres)",
                         _PG_HINT_INSTALL)
    if data_version is not None:
        if data_version in installed:
            return installed[data_version], data_version
        have = ", ".join(sorted(installed, key=_version_key))
        raise StackError(
            f"the PostgreSQL data dir was created by PostgreSQL {data_version}, installed is {have}",
            f"delete it with `python -m infra down --clean` (loses the database) "
            f"or install postgresql-{data_version}",
        )
    newest = max(installed, key=_version_key)
    return installed[newest], newest


@dataclass
class _PgUser:
    uid: int
    gid: int
    name: str
    home: str

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()


def _pg_os_user() -> _PgUser:
    """The OS user the server runs as: ``postgres`` when we are root (it refuses root)."""
    import pwd

    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
        return _PgUser(pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir)
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise StackError("running as root but there is no `postgres` OS user to run the server as",
                         _PG_HINT_INSTALL) from None
    return _PgUser(pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir)


def _as_pg(user: _PgUser) -> dict[str, Any]:
    if user.is_self:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": []}


def _pg_env(user: _PgUser) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": user.home or "/"}


def _can_use_dir(user: _PgUser, path: Path) -> bool:
    if user.is_self:
        return os.access(path, os.W_OK | os.X_OK)
    proc = subprocess.run(["test", "-w", str(path), "-a", "-x", str(path)], **_as_pg(user),
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    return proc.returncode == 0


def _fallback_pg_root(cfg: StackConfig) -> Path:
    digest = hashlib.sha256(str(cfg.state_dir).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"ledger-postgres-{digest}"


def pg_root(cfg: StackConfig) -> Path:
    """Directory holding the cluster (``data/``) and its log. Normally ``<state>/postgres``;
    elsewhere when recorded in ``<state>/postgres.location`` (see :func:`_pg_prepare_root`)."""
    try:
        text = cfg.pg_location_file.read_text().strip()
        if text:
            return Path(text)
    except OSError:
        pass
    return cfg.state_dir / "postgres"


def _pg_prepare_root(cfg: StackConfig, user: _PgUser, echo: Echo) -> Path:
    """Create the PostgreSQL dir, owned by the server's OS user.

    The server runs as ``postgres``, which must be able to reach the dir. When it cannot (a
    state dir under a 0700 home or temp dir), the cluster goes to
    ``/var/tmp/ledger-postgres-<hash of state dir>`` instead and that place is recorded in
    ``<state>/postgres.location`` (``clean`` deletes both).
    """
    root = pg_root(cfg)
    if root.exists():
        return root
    root.mkdir(parents=True, mode=0o700)
    if not user.is_self:
        os.chown(root, user.uid, user.gid)
    if _can_use_dir(user, root):
        return root
    root.rmdir()
    alt = _fallback_pg_root(cfg)
    echo(f"postgres: the {user.name} OS user cannot reach {root} (directory permissions); "
         f"keeping the cluster in {alt} instead")
    alt.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not user.is_self:
        os.chown(alt, user.uid, user.gid)
    if not _can_use_dir(user, alt):
        raise StackError(f"the {user.name} OS user can reach neither {root} nor {alt}",
                         "set LEDGER_STATE_DIR to a directory every user can traverse")
    _write_private(cfg.pg_location_file, str(alt) + "\n", 0o644)
    return alt


def _pg_data_version(cfg: StackConfig) -> str | None:
    try:
        return (pg_root(cfg) / "data" / "PG_VERSION").read_text().strip()
    except OSError:
        return None


def _pg_processes_using(data: Path) -> list[int]:
    """PIDs whose working directory is ``data`` (every PostgreSQL backend chdirs there)."""
    try:
        target = data.resolve()
    except OSError:
        return []
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            cwd = _proc_cwd(int(entry.name))
            if cwd == target and _pid_alive(int(entry.name)):
                pids.append(int(entry.name))
    return pids


def _pg_pid(cfg: StackConfig) -> tuple[int | None, bool]:
    """(postmaster pid from postmaster.pid, whether it is a live server on our data dir)."""
    data = pg_root(cfg) / "data"
    pid = _read_pid(data / "postmaster.pid")
    if pid is None:
        return None, False
    if pid < 0:  # a standalone (single-user) backend writes its pid negated
        pid = -pid
        if _pid_alive(pid) and _proc_cwd(pid) == data.resolve():
            raise StackError(f"a single-user PostgreSQL backend (pid {pid}) is using {data}",
                             f"wait for it to finish or stop it (kill {pid}), then rerun")
        return pid, False
    cwd = _proc_cwd(pid)
    ours = _pid_alive(pid) and cwd is not None and cwd == data.resolve()
    return pid, ours


def _pg_clear_stale_pidfile(cfg: StackConfig, pid: int, echo: Echo) -> None:
    """Remove postmaster.pid of a dead server, but only when no orphaned backend still uses the
    data dir (starting a second postmaster over live backends would corrupt it)."""
    data = pg_root(cfg) / "data"
    orphans = _pg_processes_using(data)
    if orphans:
        raise StackError(
            f"PostgreSQL postmaster {pid} is gone but processes {orphans} still use {data}",
            f"stop them first (kill {' '.join(map(str, orphans))}), then rerun",
        )
    (data / "postmaster.pid").unlink(missing_ok=True)
    echo(f"postgres: removed stale postmaster.pid of dead process {pid}")


def _pg_probe(cfg: StackConfig, password: str | None, timeout: float = 3.0) -> tuple[bool, str]:
    """Does the server answer ``SELECT 1`` as the ledger user?"""
    if password is None:
        return False, "no credentials (stack never started)"
    if not _tcp_answers(cfg.host, cfg.pg_port, timeout=min(timeout, 1.0)):
        return False, f"nothing answers on {cfg.host}:{cfg.pg_port}"

    try:
        with psycopg.connect(host=cfg.host, port=cfg.pg_port, user=PG_USER, password=password,
                             dbname=PG_DBNAME, connect_timeout=max(1, int(timeout))) as conn:
            conn.execute("SELECT 1").fetchone()
    except Exception as exc:  # any driver error means "not answering as expected"
        return False, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:200]
    return True, ""


_HBA = """\
# Written by infra/stack.py on every `up`. TCP on loopback only, passwords (scram-sha-256).
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  scram-sha-256
host    all       all   127.0.0.1/32   scram-sha-256
"""


def _pg_write_config(cfg: StackConfig, data: Path, user: _PgUser) -> None:
    conf = f"""\
# Written by infra/stack.py on every `up` (included from postgresql.conf). A test box:
# loopback TCP only, no unix socket, modest memory; fsync stays on.
listen_addresses = '{cfg.host}'
port = {cfg.pg_port}
unix_socket_directories = ''
max_connections = 200
shared_buffers = 128MB
work_mem = 8MB
maintenance_work_mem = 64MB
password_encryption = 'scram-sha-256'
max_wal_size = 512MB
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
"""
    _pg_install_config(data, user, "ledger.conf", conf, preamble="\n# Local ledger stack settings (infra/stack.py)\n")


def _pg_install_config(data: Path, user: _PgUser, name: str, conf: str, *, hba: str = _HBA,
                       preamble: str = "") -> None:
    """Our settings file ``name`` and ``pg_hba.conf`` (``hba``) in the data dir (private, owned by the
    server's user), and an ``include_if_exists`` of ``name`` at the end of ``postgresql.conf`` (once)."""
    for file_name, text in ((name, conf), ("pg_hba.conf", hba)):
        path = data / file_name
        _write_private(path, text, 0o600)
        if not user.is_self:
            os.chown(path, user.uid, user.gid)
    main_conf = data / "postgresql.conf"
    include = f"include_if_exists = '{name}'"
    if include not in main_conf.read_text():
        with main_conf.open("a") as f:
            f.write(f"{preamble}{include}\n")


def _pg_initdb(cfg: StackConfig, root: Path, bindir: Path, user: _PgUser, su_password: str,
               deadline: _Deadline, echo: Echo) -> None:
    """initdb into ``data.new`` and rename it to ``data`` only on success: an interrupted
    initdb never leaves a half-made cluster behind."""
    data = root / "data"
    if data.exists() and any(data.iterdir()):
        raise StackError(f"{data} has files but is no PostgreSQL cluster (no PG_VERSION)",
                         "delete it with `python -m infra down --clean`")
    new = root / "data.new"
    shutil.rmtree(new, ignore_errors=True)
    echo(f"postgres: initdb {data} (UTF8)")
    pwfile = root / ".pwfile"
    _write_private(pwfile, su_password + "\n", 0o600)
    if not user.is_self:
        os.chown(pwfile, user.uid, user.gid)
    try:
        proc = _run([str(bindir / "initdb"), "-D", str(new), "-U", PG_SUPERUSER,
                     f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8",
                     "--locale=C.UTF-8", "--no-instructions"],
                    deadline=deadline, doing="initdb", cwd=str(root), env=_pg_env(user), **_as_pg(user))
    finally:
        pwfile.unlink(missing_ok=True)
    if proc.returncode != 0:
        shutil.rmtree(new, ignore_errors=True)
        raise StackError("initdb failed: " + _first_error(proc.stderr.splitlines(), ("initdb: error", "FATAL")),
                         "fix the cause, then `python -m infra up --clean`")
    if data.exists():
        data.rmdir()
    os.rename(new, data)


def _pg_start(cfg: StackConfig, root: Path, bindir: Path, user: _PgUser, deadline: _Deadline) -> None:
    data = root / "data"
    log = root / "postgresql.log"
    proc = _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                 "-t", str(max(1, int(deadline.remaining()))), "-s", "start"],
                deadline=deadline, doing="starting PostgreSQL", cwd=str(root), env=_pg_env(user),
                **_as_pg(user))
    if proc.returncode != 0:
        reason = _first_error(_tail(log, 50), ("FATAL", "PANIC", "ERROR"))
        if "Address already in use" in reason or "could not bind" in reason:
            raise _port_taken_error(cfg, cfg.pg_port, "PostgreSQL", "LEDGER_PG_PORT")
        raise StackError(f"PostgreSQL did not start: {reason}", f"see {log}")


def _pg_bootstrap(cfg: StackConfig, secrets: dict[str, str], deadline: _Deadline, *,
                  options: str = "") -> None:
    """Create (or re-password) the ``ledger`` role and database, as the superuser over TCP.
    ``options``: server settings for this session (cluster mode: ``-c synchronous_commit=local``,
    the standby may not be streaming yet)."""
    last = ""
    while True:
        try:
            conn = psycopg.connect(host=cfg.host, port=cfg.pg_port, user=PG_SUPERUSER,
                                   password=secrets["postgres_password"], dbname="postgres",
                                   autocommit=True, connect_timeout=5, options=options or None)
            break
        except psycopg.OperationalError as exc:
            last = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "password authentication failed" in last:
                raise StackError(f"PostgreSQL rejects this stack's superuser password ({cfg.secrets_file})",
                                 "the data dir and secrets.json do not belong together: "
                                 "run `python -m infra down --clean`") from None
            if deadline.remaining() <= 0:
                raise deadline.error(f"connecting to PostgreSQL: {last}") from None
            time.sleep(0.3)
    with conn:
        role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (PG_USER,)).fetchone()
        verb = "ALTER" if role else "CREATE"
        conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(PG_USER), sql.Literal(secrets["ledger_password"])))
        db = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DBNAME,)).fetchone()
        if not db:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                sql.Identifier(PG_DBNAME), sql.Identifier(PG_USER)))


def _pg_stop(cfg: StackConfig, echo: Echo, timeout: float = 60.0, mode: str = "fast") -> None:
    root = pg_root(cfg)
    data = root / "data"
    pid, ours = _pg_pid(cfg)
    if pid is None:
        echo("postgres: not running")
        return
    if not ours:
        _pg_clear_stale_pidfile(cfg, pid, echo)
        echo("postgres: not running")
        return
    echo(f"postgres: stopping (pid {pid}) ...")
    user = _pg_os_user()
    bindir, _ = find_pg_bindir(cfg, _pg_data_version(cfg))
    proc = _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", mode, "-w", "-t", str(int(timeout)),
                 "-s", "stop"], timeout=timeout + 10, doing="pg_ctl stop", cwd=str(root),
                env=_pg_env(user), **_as_pg(user))
    if proc.returncode != 0 and _pid_alive(pid):
        echo(f"postgres: fast shutdown failed ({proc.stderr.strip()[:200]}); immediate shutdown")
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-s", "stop"],
             timeout=timeout, cwd=str(root), env=_pg_env(user), **_as_pg(user))
    echo("postgres: stopped")


# --------------------------------------------------------------------------------------------
# Status
# --------------------------------------------------------------------------------------------


@dataclass
class ServiceStatus:
    name: str
    state: str  # UP, DOWN, CRASHED or UNHEALTHY
    address: str
    pid: int | None = None
    detail: str = ""

    @property
    def healthy(self) -> bool:
        return self.state == UP

    def line(self) -> str:
        pid = f" (pid {self.pid})" if self.pid else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.name}: {self.state}{pid} at {self.address}{detail}"


@dataclass
class StackStatus:
    kafka: ServiceStatus
    postgres: ServiceStatus
    state_dir: Path = field(default=DEFAULT_STATE_DIR)

    @property
    def healthy(self) -> bool:
        return self.kafka.healthy and self.postgres.healthy

    @property
    def services(self) -> list[ServiceStatus]:
        return [self.kafka, self.postgres]

    def __str__(self) -> str:
        return "\n".join([f"state dir: {self.state_dir}"] + [s.line() for s in self.services])

    def as_dict(self) -> dict[str, Any]:
        return {"state_dir": str(self.state_dir), "healthy": self.healthy,
                **{s.name: dataclasses.asdict(s) for s in self.services}}


def _kafka_status(cfg: StackConfig) -> ServiceStatus:
    st = ServiceStatus("kafka", DOWN, cfg.kafka_bootstrap)
    pid, ours = _kafka_pid(cfg)
    st.pid = pid
    if pid is None:
        if not _port_free(cfg.host, cfg.kafka_port):
            st.detail = "port in use by another process"
        return st
    if not ours:
        st.state = CRASHED
        st.detail = (f"pid file names process {pid}, which is not running "
                     f"(see {cfg.kafka_logs / 'server.log'})")
        return st
    running = _running_kafka_port(cfg)
    if running is not None and running != cfg.kafka_port:
        st.state, st.detail = UNHEALTHY, f"runs on port {running}, not {cfg.kafka_port} (LEDGER_KAFKA_PORT?)"
        return st
    ok, why = _kafka_probe(cfg)
    st.state, st.detail = (UP, "") if ok else (UNHEALTHY, f"process alive but not answering: {why}")
    return st


def _pg_status(cfg: StackConfig) -> ServiceStatus:
    st = ServiceStatus("postgres", DOWN, f"{cfg.host}:{cfg.pg_port}")
    data = pg_root(cfg) / "data"
    if not (data / "PG_VERSION").exists():
        st.detail = "not initialised"
    try:
        pid, ours = _pg_pid(cfg)
    except StackError as exc:  # a single-user backend holds the data dir
        st.state, st.detail = UNHEALTHY, exc.reason
        return st
    st.pid = pid
    if pid is None:
        if not _port_free(cfg.host, cfg.pg_port):
            st.detail = "port in use by another process"
        return st
    if not ours:
        st.state = CRASHED
        st.detail = (f"postmaster.pid names process {pid}, which is not running "
                     f"(see {pg_root(cfg) / 'postgresql.log'})")
        return st
    running = _running_pg_port(cfg)
    if running is not None and running != cfg.pg_port:
        st.state, st.detail = UNHEALTHY, f"runs on port {running}, not {cfg.pg_port} (LEDGER_PG_PORT?)"
        return st
    try:
        secrets = _read_secrets(cfg)
    except StackError as exc:
        st.state, st.detail = UNHEALTHY, exc.reason
        return st
    ok, why = _pg_probe(cfg, secrets["ledger_password"] if secrets else None)
    st.state, st.detail = (UP, "") if ok else (UNHEALTHY, f"process alive but not answering: {why}")
    return st


def status(cfg: StackConfig | None = None) -> StackStatus:
    """Report each service as up, down, crashed (pid file of a dead process) or
    starting/unhealthy (process alive, not answering). Never starts or changes anything."""
    cfg = cfg or StackConfig.from_env()
    return StackStatus(_kafka_status(cfg), _pg_status(cfg), cfg.state_dir)


# --------------------------------------------------------------------------------------------
# up / down / clean
# --------------------------------------------------------------------------------------------


def _running_kafka_port(cfg: StackConfig) -> int | None:
    """Port the running broker was started with (its server.properties is written at launch)."""
    try:
        listeners = _read_properties(cfg.kafka_properties).get("listeners", "")
    except OSError:
        return None
    m = re.search(r"PLAINTEXT://[^,]*:(\d+)", listeners)
    return int(m.group(1)) if m else None


def _running_pg_port(cfg: StackConfig) -> int | None:
    """Port of the running server: line 4 of postmaster.pid."""
    try:
        return int((pg_root(cfg) / "data" / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return None


def _check_running_port(cfg: StackConfig, what: str, running: int | None, wanted: int,
                        env_key: str) -> None:
    if running is not None and running != wanted:
        raise StackError(
            f"{what} of {cfg.state_dir} already runs on port {running}, not {wanted}",
            f"stop it first (`python -m infra down` works whatever the ports), or set {env_key}={running}",
        )


def up(cfg: StackConfig | None = None, timeout: float | None = None, *, echo: Echo = _silent,
       create_topics: bool = True) -> dict[str, str]:
    """Start Kafka and PostgreSQL unless they already run; wait until both really answer.

    Idempotent. Returns :func:`settings`. Raises StackError (one-line reason + what to do)
    on any problem, and never waits longer than ``timeout`` (default ``cfg.timeout``, 120 s)
    once the Kafka jars are present (a first Maven fetch has its own ``fetch_timeout``).
    """
    cfg = cfg or StackConfig.from_env()
    total = cfg.timeout if timeout is None else timeout
    deadline = _Deadline(total, cfg)
    with _locked(cfg, wait=deadline.remaining()):
        # 1. Tools: everything checked before anything is started.
        java = find_java(cfg)
        data_version = _pg_data_version(cfg)
        bindir, major = find_pg_bindir(cfg, data_version)
        user = _pg_os_user()
        if not kafka_jars_ready(cfg):
            ensure_kafka_jars(cfg, echo=echo)  # a one-time download: its own fetch_timeout
            deadline = _Deadline(total, cfg)
        secrets = _ensure_secrets(cfg)

        # 2. What runs already; stale pid files; ports; data dir formats.
        kafka_pid, kafka_running = _kafka_pid(cfg)
        if kafka_pid is not None and not kafka_running:
            echo(f"kafka: previous broker (pid {kafka_pid}) is gone; removing its stale pid file")
            cfg.kafka_pid_file.unlink(missing_ok=True)
        kafka_needs_format = _kafka_check_storage(cfg)
        if not kafka_running:
            for port, what, key in ((cfg.kafka_port, "Kafka", "LEDGER_KAFKA_PORT"),
                                    (cfg.controller_port, "Kafka controller", "LEDGER_KAFKA_CONTROLLER_PORT")):
                if not _port_free(cfg.host, port):
                    raise _port_taken_error(cfg, port, what, key)

        if kafka_running:
            _check_running_port(cfg, "Kafka", _running_kafka_port(cfg), cfg.kafka_port,
                                "LEDGER_KAFKA_PORT")

        root = _pg_prepare_root(cfg, user, echo)
        pg_pid, pg_running = _pg_pid(cfg)
        if pg_pid is not None and not pg_running:
            _pg_clear_stale_pidfile(cfg, pg_pid, echo)
        if pg_running:
            _check_running_port(cfg, "PostgreSQL", _running_pg_port(cfg), cfg.pg_port,
                                "LEDGER_PG_PORT")
        if not pg_running and not _port_free(cfg.host, cfg.pg_port):
            raise _port_taken_error(cfg, cfg.pg_port, "PostgreSQL", "LEDGER_PG_PORT")

        # 3. Start what is not running. Kafka boots in the background while PostgreSQL starts.
        if kafka_running:
            echo(f"kafka: already running (pid {kafka_pid})")
        else:
            _kafka_write_config(cfg)
            if kafka_needs_format:
                _kafka_format(cfg, java, deadline, echo)
            kafka_pid = _kafka_launch(cfg, java)
            echo(f"kafka: started (pid {kafka_pid}), logs in {cfg.kafka_logs}")

        if pg_running:
            echo(f"postgres: already running (pid {pg_pid})")
        else:
            if data_version is None:
                _pg_initdb(cfg, root, bindir, user, secrets["postgres_password"], deadline, echo)
            _pg_write_config(cfg, root / "data", user)
            _pg_start(cfg, root, bindir, user, deadline)
            pg_pid, _ = _pg_pid(cfg)
            echo(f"postgres: started PostgreSQL {major} (pid {pg_pid}), log {root / 'postgresql.log'}")
        _pg_bootstrap(cfg, secrets, deadline)

        # 4. Wait until both really answer.
        why = ""
        while True:
            if not _pid_alive(kafka_pid or -1):
                cfg.kafka_pid_file.unlink(missing_ok=True)
                raise StackError(f"Kafka exited during start-up: {_kafka_exit_reason(cfg)}",
                                 f"see {cfg.kafka_logs / 'server.log'}")
            ok, why = _kafka_probe(cfg, timeout=min(3.0, max(0.5, deadline.remaining())))
            if ok:
                break
            if deadline.remaining() <= 0:
                raise StackError(
                    f"Kafka (pid {kafka_pid}) runs but does not answer on {cfg.kafka_bootstrap} "
                    f"after {total:g} s: {why}",
                    f"see {cfg.kafka_logs / 'server.log'}; `python -m infra down` and retry")
            time.sleep(0.3)
        echo(f"kafka: ready at {cfg.kafka_bootstrap}")
        ok, why = _pg_probe(cfg, secrets["ledger_password"], timeout=max(1.0, min(5.0, deadline.remaining())))
        if not ok:
            raise StackError(f"PostgreSQL does not answer SELECT 1 as {PG_USER}: {why}",
                             f"see {root / 'postgresql.log'}")
        echo(f"postgres: ready at {cfg.host}:{cfg.pg_port} (database {PG_DBNAME}, user {PG_USER})")

        if create_topics:
            try:
                created = ensure_topics(cfg.kafka_bootstrap, timeout=max(5.0, deadline.remaining()))
            except Exception as exc:
                raise StackError(f"creating the topics of infra/topics.toml failed: {exc}",
                                 "fix infra/topics.toml or see the broker log") from None
            if created:
                echo(f"kafka: created {len(created)} topic(s): {', '.join(created)}")
    return settings(cfg)


def down(cfg: StackConfig | None = None, *, echo: Echo = _silent) -> None:
    """Stop both services. Their data stays (use :func:`clean` to delete it)."""
    cfg = cfg or StackConfig.from_env()
    if not cfg.state_dir.exists():
        echo(f"nothing to stop: {cfg.state_dir} does not exist")
        return
    with _locked(cfg, wait=90):
        _kafka_stop(cfg, echo)
        _pg_stop(cfg, echo)


def stop_kafka(cfg: StackConfig, *, echo: Echo = _silent) -> None:
    """Stop only the broker (its data stays); :func:`up` starts it again. For fault-injection runs."""
    with _locked(cfg, wait=90):
        _kafka_stop(cfg, echo)


def stop_postgres(cfg: StackConfig, *, mode: str = "fast", echo: Echo = _silent) -> None:
    """Stop only PostgreSQL (``mode``: pg_ctl's smart, fast or immediate -- the last one is a crash
    that the next start recovers from); :func:`up` starts it again. For fault-injection runs."""
    if mode not in ("smart", "fast", "immediate"):
        raise StackError(f"pg_ctl has no shutdown mode {mode!r}", "use smart, fast or immediate")
    with _locked(cfg, wait=90):
        _pg_stop(cfg, echo, mode=mode)


def clean(cfg: StackConfig | None = None, *, echo: Echo = _silent) -> None:
    """Stop both services and delete their data, logs and passwords."""
    cfg = cfg or StackConfig.from_env()
    if not cfg.state_dir.exists():
        return
    down(cfg, echo=echo)
    with _locked(cfg, wait=90):
        for path in (cfg.kafka_dir, pg_root(cfg), cfg.state_dir / "postgres"):
            if path.exists():
                shutil.rmtree(path)
                echo(f"deleted {path}")
        for path in (cfg.pg_location_file, cfg.secrets_file):
            path.unlink(missing_ok=True)


def _exports(values: Mapping[str, str]) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in values.items())
