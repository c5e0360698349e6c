"""Cluster mode of the local stack: three Kafka brokers and a PostgreSQL primary + standby.

    python -m infra up --cluster      (or LEDGER_KAFKA_BROKERS=3 python -m infra up)
    python -m infra status            each node: up / down / crashed; PostgreSQL roles, replication
    python -m infra env               all three bootstrap addresses, a multi-host libpq string
    python -m infra failover          promote the standby (this script does it, no supervisor)
    python -m infra rejoin            the old primary comes back as the standby (pg_rewind)
    python -m infra down [--clean]

Once ``up --cluster`` has run, the state dir remembers the mode (``<state>/cluster/cluster.json``):
``status``, ``env``, ``down`` and ``up`` without the flag act on the cluster.

* Kafka: nodes ``kafka-1..3``, each combined broker + controller (static three-voter KRaft
  quorum), its own data dir ``<state>/cluster/kafka-N/kafka/data`` and ports: brokers on
  ``P, P+1, P+2``, controllers on ``P+3..P+5`` with ``P = $LEDGER_CLUSTER_KAFKA_PORT`` (default
  19192). Heap ``$LEDGER_KAFKA_HEAP`` (default 320m here). Topics of ``infra/topics.toml`` get
  its ``[cluster]`` replication: factor 3, ``min.insync.replicas=2``.
* PostgreSQL: nodes ``pg-a`` (port ``Q = $LEDGER_CLUSTER_PG_PORT``, default 55442) and ``pg-b``
  (``Q+1``) from the same Debian binaries. The standby is made by ``pg_basebackup`` and streams
  from the primary; replication is synchronous (``synchronous_commit = on``,
  ``synchronous_standby_names = 'FIRST 1 (pg_a, pg_b)'``: the same line on both, each node is
  the other's standby), so a commit the primary acknowledged is on both. The price: while the
  standby is away, commits wait (``status`` says so) -- ``failover`` therefore rejoins the old
  primary at once when its disk is still there.
* Failover is driven by this script (``failover``): fence the old primary (stop it, if it still
  runs), ``pg_ctl promote`` the standby, record the new primary, then ``rejoin`` the old one:
  ``pg_rewind`` from the new primary (a fresh ``pg_basebackup`` if rewinding fails),
  ``standby.signal``, start. Clients use ``host=a,b port=Q,Q+1 target_session_attrs=read-write``
  and find the new primary on their next connection.
The ports chosen at the first ``up`` are kept in ``cluster.json``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import socket
import string
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from infra import stack
from infra.settings import setting_text
from infra.stack import (CRASHED, DOWN, KAFKA_HOME, PG_DBNAME, PG_SUPERUSER, PG_USER, UNHEALTHY, UP, Echo,
                         ServiceStatus, StackConfig, StackError, _silent)
import psycopg
from infra.topics import ensure_topics, load_cluster_replication

CLUSTER_TEMPLATE = KAFKA_HOME / "cluster.properties"
DEFAULT_CLUSTER_KAFKA_PORT = 19192
DEFAULT_CLUSTER_PG_PORT = 55442
DEFAULT_CLUSTER_HEAP = "320m"
BROKERS = 3
PG_NODES = ("pg-a", "pg-b")


def _app_name(node: str) -> str:
    return node.replace("-", "_")


SYNC_NAMES = "FIRST 1 (" + ", ".join(_app_name(n) for n in PG_NODES) + ")"


def cluster_dir(cfg: StackConfig) -> Path:
    return cfg.state_dir / "cluster"


def state_file(cfg: StackConfig) -> Path:
    return cluster_dir(cfg) / "cluster.json"


def is_cluster(cfg: StackConfig) -> bool:
    """Was this state dir started in cluster mode?"""
    return state_file(cfg).exists()


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """``LEDGER_KAFKA_BROKERS=3`` asks for cluster mode (1, or unset, is the single node)."""
    raw = setting_text("LEDGER_KAFKA_BROKERS", environ).strip()
    if raw in ("", "1"):
        return False
    if raw == str(BROKERS):
        return True
    raise StackError(f"LEDGER_KAFKA_BROKERS={raw!r}: the local stack runs 1 or {BROKERS} brokers",
                     "unset it, or set it to 1 or 3")



def free_port_run(low: int, high: int, n: int, rng: random.Random | None = None) -> int:
    """First of ``n`` consecutive free loopback ports in [low, high) (a private cluster: brokers P..P+5)."""
    bases = list(range(low, high - n))
    (rng or random).shuffle(bases)
    for base in bases:
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports in {low}-{high}")

@dataclass
class ClusterState:
    """What ``cluster.json`` remembers: ports chosen at the first ``up`` and the current primary."""

    kafka_port: int = DEFAULT_CLUSTER_KAFKA_PORT
    pg_port: int = DEFAULT_CLUSTER_PG_PORT
    primary: str = PG_NODES[0]
    history: list[str] = field(default_factory=list)

    @property
    def standby(self) -> str:
        return next(n for n in PG_NODES if n != self.primary)

    def broker_port(self, n: int) -> int:
        return self.kafka_port + n - 1

    def controller_port(self, n: int) -> int:
        return self.kafka_port + BROKERS + n - 1

    def pg_node_port(self, node: str) -> int:
        return self.pg_port + PG_NODES.index(node)


def load_state(cfg: StackConfig, environ: Mapping[str, str] | None = None) -> ClusterState:
    try:
        data = json.loads(state_file(cfg).read_text())
        return ClusterState(**{k: v for k, v in data.items() if k in {f.name for f in dataclasses.fields(ClusterState)}})
    except FileNotFoundError:
        pass
    except (OSError, ValueError, TypeError) as exc:
        raise StackError(f"{state_file(cfg)} is unreadable ({exc})", "`python -m infra down --clean`") from None
    return ClusterState(kafka_port=stack._env_port(environ, "LEDGER_CLUSTER_KAFKA_PORT", DEFAULT_CLUSTER_KAFKA_PORT),
                        pg_port=stack._env_port(environ, "LEDGER_CLUSTER_PG_PORT", DEFAULT_CLUSTER_PG_PORT))


def save_state(cfg: StackConfig, st: ClusterState) -> None:
    stack._write_private(state_file(cfg), json.dumps(dataclasses.asdict(st), indent=2) + "\n", 0o644)


# ------------------------------------------------------------------------------- the nodes
def kafka_node(cfg: StackConfig, st: ClusterState, n: int) -> StackConfig:
    """Node ``kafka-n`` seen as a one-broker stack config: stack.py's launch/stop/probe apply as is."""
    heap = cfg.kafka_heap if setting_text("LEDGER_KAFKA_HEAP") else DEFAULT_CLUSTER_HEAP
    return dataclasses.replace(cfg, state_dir=cluster_dir(cfg) / f"kafka-{n}", kafka_port=st.broker_port(n),
                               controller_port=st.controller_port(n), pg_port=st.pg_port + 100 + n,
                               kafka_heap=heap)


def pg_node(cfg: StackConfig, st: ClusterState, node: str) -> StackConfig:
    """Node ``pg-a``/``pg-b`` as a stack config (its PostgreSQL dir: ``<state>/cluster/<node>/postgres``)."""
    port = st.pg_node_port(node)
    return dataclasses.replace(cfg, state_dir=cluster_dir(cfg) / node, pg_port=port,
                               kafka_port=port + 200, controller_port=port + 201)


def bootstrap_servers(cfg: StackConfig, st: ClusterState | None = None) -> str:
    st = st or load_state(cfg)
    return ",".join(f"{cfg.host}:{st.broker_port(n)}" for n in range(1, BROKERS + 1))


def settings(cfg: StackConfig) -> dict[str, str]:
    """Connection settings: every broker, both PostgreSQL nodes (libpq picks the read-write one)."""
    st = load_state(cfg)
    secrets = stack._read_secrets(cfg)
    if secrets is None:
        raise StackError(f"the cluster in {cfg.state_dir} was never started", "run `python -m infra up --cluster`")
    pw = secrets["ledger_password"]
    hosts = ",".join(cfg.host for _ in PG_NODES)
    ports = ",".join(str(st.pg_node_port(n)) for n in PG_NODES)
    netlocs = ",".join(f"{cfg.host}:{st.pg_node_port(n)}" for n in PG_NODES)
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers(cfg, st),
        "DATABASE_URL": f"postgresql://{PG_USER}:{pw}@{netlocs}/{PG_DBNAME}?target_session_attrs=read-write",
        "POSTGRES_HOST": hosts,
        "POSTGRES_PORT": ports,
        "POSTGRES_DBNAME": PG_DBNAME,
        "POSTGRES_USER": PG_USER,
        "POSTGRES_PASSWORD": pw,
        # libpq reads it for every connection, also those the eventsourcing pool opens.
        "PGTARGETSESSIONATTRS": "read-write",
    }


def _port_free_soon(host: str, port: int, wait: float = 5.0) -> bool:
    """Is ``port`` free, or free within ``wait`` seconds? Ports in the ephemeral range (the defaults
    and 56100-56199 are) can be held for a moment as the local end of some client's connection."""
    end = time.monotonic() + wait
    while not stack._port_free(host, port):
        if time.monotonic() >= end:
            return False
        time.sleep(0.25)
    return True


# ------------------------------------------------------------------------------- Kafka
def _kafka_write_config(node: StackConfig, n: int, st: ClusterState, cfg: StackConfig) -> None:
    for d in (node.kafka_dir, node.kafka_data, node.kafka_logs):
        d.mkdir(parents=True, exist_ok=True)
    voters = ",".join(f"{i}@{cfg.host}:{st.controller_port(i)}" for i in range(1, BROKERS + 1))
    text = string.Template(CLUSTER_TEMPLATE.read_text()).substitute(
        node_id=n, voters=voters, host=cfg.host, kafka_port=node.kafka_port,
        controller_port=node.controller_port, log_dirs=str(node.kafka_data))
    stack._write_private(node.kafka_properties, text, 0o644)


def _kafka_format(node: StackConfig, n: int, cluster_id: str, java: str, deadline: Any, echo: Echo) -> None:
    meta = node.kafka_data / "meta.properties"
    if meta.exists():
        props = stack._read_properties(meta)
        if props.get("cluster.id") != cluster_id or props.get("node.id") != str(n):
            raise StackError(f"{node.kafka_data} belongs to cluster {props.get('cluster.id')!r} node "
                             f"{props.get('node.id')!r}, not {cluster_id!r} node {n}",
                             "`python -m infra down --clean` (loses the Kafka data)")
        return
    shutil.rmtree(node.kafka_data, ignore_errors=True)
    node.kafka_data.mkdir(parents=True)
    stack._write_private(node.cluster_id_file, cluster_id + "\n", 0o644)
    echo(f"kafka-{n}: formatting {node.kafka_data} (KRaft, cluster {cluster_id})")
    proc = stack._run(stack.kafka_tool_command("kafka.tools.StorageTool", "format", "--cluster-id", cluster_id,
                                               "--config", str(node.kafka_properties), cfg=node, java=java),
                      deadline=deadline, doing=f"formatting kafka-{n}")
    if proc.returncode != 0:
        raise StackError(f"formatting kafka-{n} failed: "
                         + stack._first_error((proc.stdout + proc.stderr).splitlines(), ("Exception", "rror")),
                         "`python -m infra down --clean` and retry")


def _registered_brokers(bootstrap: str, timeout: float = 3.0) -> tuple[set[int], str]:
    from kafka import KafkaAdminClient

    ms = int(timeout * 1000)
    try:
        with stack._quiet_logger("kafka"):
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ledger-infra-probe",
                                     request_timeout_ms=ms, bootstrap_timeout_ms=ms, reconnect_backoff_max_ms=500)
            try:
                cluster = admin.describe_cluster()
            finally:
                admin.close()
    except Exception as exc:  # any client error: not (all) answering
        return set(), f"{type(exc).__name__}: {exc}"[:200]
    return {int(b["broker_id"]) for b in cluster.get("brokers", []) if not b.get("is_fenced")}, ""


def stop_kafka_node(cfg: StackConfig, n: int, *, sig: int = signal.SIGTERM, echo: Echo = _silent) -> int | None:
    """Stop (SIGTERM, waits) or kill (SIGKILL) broker ``kafka-n``; returns its pid. For fault injection."""
    node = kafka_node(cfg, load_state(cfg), n)
    pid, ours = stack._kafka_pid(node)
    if pid is None or not ours:
        return None
    if sig == signal.SIGTERM:
        stack._kafka_stop(node, echo)
    else:
        os.kill(pid, sig)
        end = time.monotonic() + 30
        while stack._pid_alive(pid) and time.monotonic() < end:
            time.sleep(0.05)
        echo(f"kafka-{n}: killed (pid {pid}, signal {sig})")
    return pid


# ------------------------------------------------------------------------------- PostgreSQL
_HBA = stack._HBA + "host    replication  all   127.0.0.1/32   scram-sha-256\n"


def _pg_conninfo(cfg: StackConfig, port: int, password: str, app: str = "ledger-infra") -> str:
    return (f"host={cfg.host} port={port} user={PG_SUPERUSER} password={password} "
            f"application_name={app} connect_timeout=5")


def _pg_write_node_config(cfg: StackConfig, st: ClusterState, node: str, secrets: dict[str, str],
                          user: stack._PgUser) -> None:
    """ledger.conf (as single-node, with this node's port), pg_hba with replication, cluster.conf.

    Synchronous once the pair exists: before the first base backup there is no standby to wait
    for (the role and database of the first ``up`` would never commit)."""
    ncfg = pg_node(cfg, st, node)
    data = stack.pg_root(ncfg) / "data"
    stack._pg_write_config(ncfg, data, user)
    other = next(n for n in PG_NODES if n != node)
    paired = all(stack._pg_data_version(pg_node(cfg, st, n)) is not None for n in PG_NODES)
    sync_names = SYNC_NAMES if paired else ""
    conninfo = _pg_conninfo(cfg, st.pg_node_port(other), secrets["postgres_password"], _app_name(node))
    conf = f"""\
# Written by infra/cluster.py on every `up --cluster`: streaming replication, synchronous.
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 512MB
wal_log_hints = on
hot_standby = on
synchronous_commit = on
synchronous_standby_names = '{sync_names}'
cluster_name = '{_app_name(node)}'
# Used only while this node is a standby (standby.signal present): stream from the other node.
primary_conninfo = '{conninfo}'
"""
    stack._pg_install_config(data, user, "cluster.conf", conf, hba=_HBA)


def _pg_env_pw(user: stack._PgUser, password: str) -> dict[str, str]:
    return {**stack._pg_env(user), "PGPASSWORD": password}


def _pg_is_standby(cfg: StackConfig, st: ClusterState, node: str) -> bool:
    return (stack.pg_root(pg_node(cfg, st, node)) / "data" / "standby.signal").exists()


def _pg_mark_standby(cfg: StackConfig, st: ClusterState, node: str, user: stack._PgUser) -> None:
    path = stack.pg_root(pg_node(cfg, st, node)) / "data" / "standby.signal"
    path.write_text("")
    if not user.is_self:
        os.chown(path, user.uid, user.gid)


def _pg_basebackup(cfg: StackConfig, st: ClusterState, node: str, secrets: dict[str, str], bindir: Path,
                   user: stack._PgUser, timeout: float, echo: Echo) -> None:
    """A fresh copy of the primary into ``node``'s data dir (``data.new`` renamed on success)."""
    ncfg = pg_node(cfg, st, node)
    root = stack._pg_prepare_root(ncfg, user, echo)
    new, data = root / "data.new", root / "data"
    shutil.rmtree(new, ignore_errors=True)
    echo(f"{node}: pg_basebackup from {st.primary} (port {st.pg_node_port(st.primary)})")
    proc = stack._run([str(bindir / "pg_basebackup"), "-h", cfg.host, "-p", str(st.pg_node_port(st.primary)),
                       "-U", PG_SUPERUSER, "-D", str(new), "-X", "stream", "-c", "fast", "--no-password"],
                      timeout=timeout, doing=f"pg_basebackup into {node}", cwd=str(root),
                      env=_pg_env_pw(user, secrets["postgres_password"]), **stack._as_pg(user))
    if proc.returncode != 0:
        shutil.rmtree(new, ignore_errors=True)
        raise StackError(f"pg_basebackup into {node} failed: {stack._first_error(proc.stderr.splitlines(), ('error',))}",
                         f"see {stack.pg_root(pg_node(cfg, st, st.primary)) / 'postgresql.log'}")
    shutil.rmtree(data, ignore_errors=True)
    os.rename(new, data)
    (data / "postmaster.pid").unlink(missing_ok=True)
    _pg_mark_standby(cfg, st, node, user)


def _pg_start_node(cfg: StackConfig, st: ClusterState, node: str, secrets: dict[str, str], bindir: Path,
                   user: stack._PgUser, deadline: Any, echo: Echo) -> None:
    ncfg = pg_node(cfg, st, node)
    pid, running = stack._pg_pid(ncfg)
    if running:
        echo(f"{node}: already running (pid {pid})")
        return
    if pid is not None:
        stack._pg_clear_stale_pidfile(ncfg, pid, echo)
    if not _port_free_soon(cfg.host, ncfg.pg_port):
        raise stack._port_taken_error(ncfg, ncfg.pg_port, f"PostgreSQL {node}", "LEDGER_CLUSTER_PG_PORT")
    _pg_write_node_config(cfg, st, node, secrets, user)
    root = stack.pg_root(ncfg)
    stack._pg_start(ncfg, root, bindir, user, deadline)
    role = "standby" if _pg_is_standby(cfg, st, node) else "primary"
    echo(f"{node}: started as {role} (pid {stack._pg_pid(ncfg)[0]}) on port {ncfg.pg_port}")


def stop_pg_node(cfg: StackConfig, node: str, *, mode: str = "fast", echo: Echo = _silent) -> None:
    """Stop one PostgreSQL node (``immediate`` = a crash). For fault injection and failover."""
    stack._pg_stop(pg_node(cfg, load_state(cfg), node), echo, mode=mode)


def kill_pg_node(cfg: StackConfig, node: str, *, echo: Echo = _silent) -> int | None:
    """SIGKILL the postmaster of ``node`` and wait until its backends are gone (they notice its death)."""
    ncfg = pg_node(cfg, load_state(cfg), node)
    pid, ours = stack._pg_pid(ncfg)
    if pid is None or not ours:
        return None
    os.kill(pid, signal.SIGKILL)
    data = stack.pg_root(ncfg) / "data"
    end = time.monotonic() + 30
    while (stack._pid_alive(pid) or stack._pg_processes_using(data)) and time.monotonic() < end:
        time.sleep(0.1)
    echo(f"{node}: SIGKILL postmaster (pid {pid})")
    return pid


def _pg_superuser_conn(cfg: StackConfig, port: int, secrets: dict[str, str], timeout: int = 3) -> Any:
    # target_session_attrs=any: this node, whatever its role, even with PGTARGETSESSIONATTRS=read-write
    # exported by `eval "$(python -m infra env)"`.
    return psycopg.connect(host=cfg.host, port=port, user=PG_SUPERUSER, password=secrets["postgres_password"],
                           dbname="postgres", autocommit=True, connect_timeout=timeout, target_session_attrs="any")


def _wait_streaming(cfg: StackConfig, st: ClusterState, secrets: dict[str, str], deadline: Any) -> None:
    """Until the primary lists the standby as a synchronous, streaming walsender."""
    last = ""
    while True:
        try:
            with _pg_superuser_conn(cfg, st.pg_node_port(st.primary), secrets) as conn:
                rows = conn.execute("SELECT application_name, state, sync_state FROM pg_stat_replication").fetchall()
            if (_app_name(st.standby), "streaming", "sync") in [tuple(r) for r in rows]:
                return
            last = f"pg_stat_replication: {rows}"
        except Exception as exc:  # noqa: BLE001 - not answering yet
            last = f"{type(exc).__name__}: {exc}"[:200]
        if deadline.remaining() <= 0:
            raise StackError(f"the standby {st.standby} does not stream from {st.primary}: {last}",
                             f"see {stack.pg_root(pg_node(cfg, st, st.standby)) / 'postgresql.log'}")
        time.sleep(0.3)


# ------------------------------------------------------------------------------- up / down
def up(cfg: StackConfig, timeout: float | None = None, *, echo: Echo = _silent,
       create_topics: bool = True) -> dict[str, str]:
    """Start whatever node of the cluster is not running (idempotent); wait until all answer."""
    total = cfg.timeout if timeout is None else timeout
    deadline = stack._Deadline(total, cfg)
    with stack._locked(cfg, wait=deadline.remaining()):
        if (stack.pg_root(cfg) / "data").exists() or cfg.kafka_data.exists():
            if not is_cluster(cfg):
                raise StackError(f"{cfg.state_dir} holds a single-node stack",
                                 "use another LEDGER_STATE_DIR for the cluster, or `python -m infra down --clean`")
        java = stack.find_java(cfg)
        st = load_state(cfg)
        versions = {stack._pg_data_version(pg_node(cfg, st, n)) for n in PG_NODES} - {None}
        bindir, major = stack.find_pg_bindir(cfg, max(versions) if versions else None)
        user = stack._pg_os_user()
        if not stack.kafka_jars_ready(cfg):
            stack.ensure_kafka_jars(cfg, echo=echo)
            deadline = stack._Deadline(total, cfg)
        secrets = stack._ensure_secrets(cfg)
        cluster_dir(cfg).mkdir(parents=True, exist_ok=True)
        save_state(cfg, st)
        cid_file = cluster_dir(cfg) / "cluster.id"
        cluster_id = cid_file.read_text().strip() if cid_file.exists() else ""
        if not cluster_id:
            cluster_id = stack._new_cluster_id()
            stack._write_private(cid_file, cluster_id + "\n", 0o644)

        # Kafka: every node not running is (formatted and) launched; they find each other.
        pids: dict[int, int] = {}
        for n in range(1, BROKERS + 1):
            node = kafka_node(cfg, st, n)
            pid, running = stack._kafka_pid(node)
            if running:
                pids[n] = pid  # type: ignore[assignment]
                continue
            if pid is not None:
                node.kafka_pid_file.unlink(missing_ok=True)
            for port in (node.kafka_port, node.controller_port):
                if not _port_free_soon(cfg.host, port):
                    raise stack._port_taken_error(node, port, f"Kafka kafka-{n}", "LEDGER_CLUSTER_KAFKA_PORT")
            _kafka_write_config(node, n, st, cfg)
            _kafka_format(node, n, cluster_id, java, deadline, echo)
            pids[n] = stack._kafka_launch(node, java)
            echo(f"kafka-{n}: started (pid {pids[n]}) on {node.kafka_bootstrap}, logs in {node.kafka_logs}")

        # PostgreSQL: the primary (initdb the first time), then the standby (base backup the first time).
        primary = pg_node(cfg, st, st.primary)
        root = stack._pg_prepare_root(primary, user, echo)
        if stack._pg_data_version(primary) is None:
            stack._pg_initdb(primary, root, bindir, user, secrets["postgres_password"], deadline, echo)
        if _pg_is_standby(cfg, st, st.primary):
            raise StackError(f"{st.primary} is recorded as the primary but its data dir is a standby's",
                             f"fix {state_file(cfg)} (\"primary\") or `python -m infra down --clean`")
        _pg_start_node(cfg, st, st.primary, secrets, bindir, user, deadline, echo)
        # Not waiting for the standby: on a restart of the pair it is started only below.
        stack._pg_bootstrap(primary, secrets, deadline, options="-c synchronous_commit=local")
        sb = pg_node(cfg, st, st.standby)
        if stack._pg_data_version(sb) is None:
            _pg_basebackup(cfg, st, st.standby, secrets, bindir, user, max(1.0, deadline.remaining()), echo)
        elif not _pg_is_standby(cfg, st, st.standby) and not stack._pg_pid(sb)[1]:
            # A former primary that was never rejoined (failover while its disk was away).
            _rejoin(cfg, st, secrets, bindir, user, max(1.0, deadline.remaining()), echo)
        _pg_start_node(cfg, st, st.standby, secrets, bindir, user, deadline, echo)
        _pg_write_node_config(cfg, st, st.primary, secrets, user)  # synchronous from now on
        with _pg_superuser_conn(cfg, st.pg_node_port(st.primary), secrets) as conn:
            conn.execute("SELECT pg_reload_conf()")

        # Wait: all brokers registered, the standby streaming synchronously.
        bootstrap = bootstrap_servers(cfg, st)
        while True:
            for n, pid in pids.items():
                if not stack._pid_alive(pid):
                    node = kafka_node(cfg, st, n)
                    raise StackError(f"kafka-{n} exited during start-up: {stack._kafka_exit_reason(node)}",
                                     f"see {node.kafka_logs / 'server.log'}")
            brokers, why = _registered_brokers(bootstrap)
            if brokers >= set(range(1, BROKERS + 1)):
                break
            if deadline.remaining() <= 0:
                raise StackError(f"the Kafka cluster does not have its {BROKERS} brokers after {total:g} s "
                                 f"(registered: {sorted(brokers)}; {why})", "see `python -m infra logs`")
            time.sleep(0.5)
        echo(f"kafka: {BROKERS} brokers ready at {bootstrap}")
        _wait_streaming(cfg, st, secrets, deadline)
        echo(f"postgres: {st.primary} primary on port {st.pg_node_port(st.primary)}, {st.standby} "
             f"streaming synchronously on port {st.pg_node_port(st.standby)} (PostgreSQL {major})")
        if create_topics:
            try:
                created = ensure_topics(bootstrap, timeout=max(10.0, deadline.remaining()),
                                        cluster=load_cluster_replication())
            except Exception as exc:
                raise StackError(f"creating the topics of infra/topics.toml failed: {exc}",
                                 "see `python -m infra logs`") from None
            if created:
                echo(f"kafka: created {len(created)} topic(s) with replication factor 3, min.insync.replicas 2")
    return settings(cfg)


def down(cfg: StackConfig, *, echo: Echo = _silent) -> None:
    st = load_state(cfg)
    with stack._locked(cfg, wait=90):
        _stop_brokers(cfg, st, echo)
        for node in (st.standby, st.primary):
            ncfg = pg_node(cfg, st, node)
            if (stack.pg_root(ncfg) / "data").exists():
                echo(f"{node}:")
                stack._pg_stop(ncfg, echo)


def _stop_brokers(cfg: StackConfig, st: ClusterState, echo: Echo, timeout: float = 30.0) -> None:
    """SIGTERM to every broker at once: stopped one by one, the last would wait for a controller
    quorum that is gone (its controlled shutdown never completes)."""
    running = {}
    for n in range(1, BROKERS + 1):
        node = kafka_node(cfg, st, n)
        pid, ours = stack._kafka_pid(node)
        if pid is not None and ours:
            os.kill(pid, signal.SIGTERM)
            running[n] = pid
            echo(f"kafka-{n}: stopping (pid {pid}) ...")
        else:
            node.kafka_pid_file.unlink(missing_ok=True)
    end = time.monotonic() + timeout
    while any(stack._pid_alive(p) for p in running.values()) and time.monotonic() < end:
        time.sleep(0.2)
    for n, pid in running.items():
        if stack._pid_alive(pid):
            if timeout:
                echo(f"kafka-{n}: did not stop within {timeout:g} s; SIGKILL")
            os.kill(pid, signal.SIGKILL)
            end = time.monotonic() + 10
            while stack._pid_alive(pid) and time.monotonic() < end:
                time.sleep(0.05)
        kafka_node(cfg, st, n).kafka_pid_file.unlink(missing_ok=True)
    if running:
        echo("kafka: stopped")


def clean(cfg: StackConfig, *, echo: Echo = _silent) -> None:
    """Stop every node and delete all data. The brokers are killed: their data goes anyway."""
    st = load_state(cfg)
    with stack._locked(cfg, wait=90):
        _stop_brokers(cfg, st, echo, timeout=0.0)
        for node in (st.standby, st.primary):
            ncfg = pg_node(cfg, st, node)
            if (stack.pg_root(ncfg) / "data").exists():
                stack._pg_stop(ncfg, echo, mode="immediate")
        for node in PG_NODES:
            ncfg = pg_node(cfg, st, node)
            root = stack.pg_root(ncfg)
            if root.exists():
                shutil.rmtree(root)
        if cluster_dir(cfg).exists():
            shutil.rmtree(cluster_dir(cfg))
            echo(f"deleted {cluster_dir(cfg)}")
        cfg.secrets_file.unlink(missing_ok=True)


# ------------------------------------------------------------------------------- failover
def _rejoin(cfg: StackConfig, st: ClusterState, secrets: dict[str, str], bindir: Path, user: stack._PgUser,
            timeout: float, echo: Echo) -> str:
    """Make the stopped non-primary node a standby of the primary: pg_rewind, else a fresh base backup."""
    node = st.standby
    ncfg = pg_node(cfg, st, node)
    pid, running = stack._pg_pid(ncfg)
    if running:
        raise StackError(f"{node} still runs: it must be stopped before it can rejoin",
                         f"`python -m infra failover` stops it; or stop it by hand")
    if pid is not None:
        stack._pg_clear_stale_pidfile(ncfg, pid, echo)
    root = stack.pg_root(ncfg)
    how = "pg_rewind"
    if stack._pg_data_version(ncfg) is None:
        how = "base backup"
    else:
        # PostgreSQL 15's pg_rewind reads the source's timeline from its control file: a checkpoint
        # after the promotion writes it there.
        with _pg_superuser_conn(cfg, st.pg_node_port(st.primary), secrets, timeout=10) as conn:
            conn.execute("CHECKPOINT")
        source = _pg_conninfo(cfg, st.pg_node_port(st.primary), secrets["postgres_password"]) + " dbname=postgres"
        echo(f"{node}: pg_rewind from {st.primary}")
        proc = stack._run([str(bindir / "pg_rewind"), "--target-pgdata", str(root / "data"),
                           "--source-server", source, "--progress"],
                          timeout=timeout, doing=f"pg_rewind of {node}", cwd=str(root),
                          env=stack._pg_env(user), **stack._as_pg(user))
        if proc.returncode != 0:
            echo(f"{node}: pg_rewind failed ({stack._first_error(proc.stderr.splitlines(), ('error', 'fatal'))}); "
                 "taking a fresh base backup instead")
            how = "base backup"
    if how == "base backup":
        _pg_basebackup(cfg, st, node, secrets, bindir, user, timeout, echo)
    else:
        (root / "data" / "postmaster.pid").unlink(missing_ok=True)
        _pg_mark_standby(cfg, st, node, user)
    return how


def failover(cfg: StackConfig, *, rejoin: bool = True, timeout: float | None = None,
             echo: Echo = _silent) -> dict[str, Any]:
    """Promote the standby to primary (``pg_ctl promote``); the old primary is fenced (stopped, if it
    still runs) and, with ``rejoin``, comes back as the new standby. Returns what happened, with times."""
    if not is_cluster(cfg):
        raise StackError(f"{cfg.state_dir} runs no PostgreSQL pair", "start one with `python -m infra up --cluster`")
    total = cfg.timeout if timeout is None else timeout
    deadline = stack._Deadline(total, cfg)
    t0 = time.monotonic()
    out: dict[str, Any] = {}
    with stack._locked(cfg, wait=90):
        st = load_state(cfg)
        old, new = st.primary, st.standby
        secrets = stack._read_secrets(cfg) or {}
        user = stack._pg_os_user()
        bindir, _ = stack.find_pg_bindir(cfg, stack._pg_data_version(pg_node(cfg, st, new)))
        new_cfg = pg_node(cfg, st, new)
        if not stack._pg_pid(new_cfg)[1]:
            raise StackError(f"the standby {new} is not running: nothing to promote",
                             "start it (`python -m infra up`) or restore the primary")
        old_cfg = pg_node(cfg, st, old)
        if stack._pg_pid(old_cfg)[1]:  # fencing: never two primaries
            echo(f"{old}: still running; stopping it first (fencing)")
            stack._pg_stop(old_cfg, echo, mode="fast")
        echo(f"{new}: pg_ctl promote")
        proc = stack._run([str(bindir / "pg_ctl"), "-D", str(stack.pg_root(new_cfg) / "data"), "-w",
                           "-t", str(max(1, int(deadline.remaining()))), "promote"],
                          deadline=deadline, doing=f"promoting {new}", cwd=str(stack.pg_root(new_cfg)),
                          env=stack._pg_env(user), **stack._as_pg(user))
        if proc.returncode != 0:
            raise StackError(f"pg_ctl promote of {new} failed: {proc.stderr.strip()[:300]}",
                             f"see {stack.pg_root(new_cfg) / 'postgresql.log'}")
        st.primary = new
        st.history.append(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} promoted {new} (was standby of {old})")
        save_state(cfg, st)
        out.update(promoted=new, old_primary=old, promoted_after_s=round(time.monotonic() - t0, 2))
        echo(f"{new}: primary now (after {out['promoted_after_s']} s)")
        if rejoin:
            how = _rejoin(cfg, st, secrets, bindir, user, max(10.0, deadline.remaining()), echo)
            _pg_start_node(cfg, st, old, secrets, bindir, user, deadline, echo)
            _wait_streaming(cfg, st, secrets, deadline)
            out.update(rejoined=old, rejoined_by=how, rejoined_after_s=round(time.monotonic() - t0, 2))
            echo(f"{old}: standby of {new} again ({how}), streaming synchronously "
                 f"(after {out['rejoined_after_s']} s)")
        else:
            echo(f"{old}: not rejoined: commits wait for a synchronous standby until "
                 f"`python -m infra rejoin` (or `up`) brings it back")
    return out


def rejoin(cfg: StackConfig, *, timeout: float | None = None, echo: Echo = _silent) -> str:
    """The stopped non-primary node becomes the standby again (pg_rewind or base backup) and starts."""
    total = cfg.timeout if timeout is None else timeout
    deadline = stack._Deadline(total, cfg)
    with stack._locked(cfg, wait=90):
        st = load_state(cfg)
        secrets = stack._read_secrets(cfg) or {}
        user = stack._pg_os_user()
        bindir, _ = stack.find_pg_bindir(cfg, stack._pg_data_version(pg_node(cfg, st, st.primary)))
        how = _rejoin(cfg, st, secrets, bindir, user, max(10.0, deadline.remaining()), echo)
        _pg_start_node(cfg, st, st.standby, secrets, bindir, user, deadline, echo)
        _wait_streaming(cfg, st, secrets, deadline)
    return how


# ------------------------------------------------------------------------------- status
@dataclass
class ClusterStatus:
    services: list[ServiceStatus]
    state_dir: Path

    @property
    def healthy(self) -> bool:
        return all(s.healthy for s in self.services)

    def __str__(self) -> str:
        return "\n".join([f"state dir: {self.state_dir} (cluster: {BROKERS} Kafka brokers, PostgreSQL "
                          f"primary + synchronous standby)"] + [s.line() for s in self.services])

    def as_dict(self) -> dict[str, Any]:
        return {"state_dir": str(self.state_dir), "healthy": self.healthy, "mode": "cluster",
                **{s.name: dataclasses.asdict(s) for s in self.services}}


def _kafka_node_status(cfg: StackConfig, st: ClusterState, n: int, registered: set[int],
                       why: str = "") -> ServiceStatus:
    node = kafka_node(cfg, st, n)
    s = ServiceStatus(f"kafka-{n}", DOWN, node.kafka_bootstrap)
    pid, ours = stack._kafka_pid(node)
    s.pid = pid
    if pid is None:
        s.detail = "not running"
        return s
    if not ours:
        s.state, s.detail = CRASHED, f"pid {pid} is gone (killed?); `python -m infra up` restarts it"
        return s
    if n in registered:
        s.state = UP
        s.detail = "broker + controller"
    else:
        s.state = UNHEALTHY
        s.detail = ("process alive, not registered with the controller quorum"
                    + (f" (the brokers do not answer: {why})" if why else ""))
    return s


def _pg_node_status(cfg: StackConfig, st: ClusterState, node: str, secrets: dict[str, str] | None) -> ServiceStatus:
    ncfg = pg_node(cfg, st, node)
    s = ServiceStatus(f"postgres {node}", DOWN, f"{cfg.host}:{ncfg.pg_port}")
    recorded = "primary" if node == st.primary else "standby"
    try:
        pid, ours = stack._pg_pid(ncfg)
    except StackError as exc:
        s.state, s.detail = UNHEALTHY, exc.reason
        return s
    s.pid = pid
    if pid is None:
        s.detail = f"{recorded} (recorded), not running"
        return s
    if not ours:
        s.state, s.detail = CRASHED, f"{recorded} (recorded): postmaster {pid} is gone"
        return s
    if secrets is None:
        s.state, s.detail = UNHEALTHY, "no credentials"
        return s
    try:
        with _pg_superuser_conn(cfg, ncfg.pg_port, secrets) as conn:
            in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            if in_recovery:
                row = conn.execute("SELECT status, sender_port FROM pg_stat_wal_receiver").fetchone()
                lag = conn.execute("SELECT GREATEST(0, pg_wal_lsn_diff(pg_last_wal_receive_lsn(), "
                                   "pg_last_wal_replay_lsn()))").fetchone()[0]
                stream = f"{row[0]} from port {row[1]}" if row else "NOT receiving WAL"
                s.detail = f"standby, {stream}, replay lag {lag or 0} bytes"
            else:
                rows = conn.execute("SELECT application_name, state, sync_state FROM pg_stat_replication").fetchall()
                if rows:
                    s.detail = "primary, standby " + "; ".join(f"{a} {state} ({sync})" for a, state, sync in rows)
                else:
                    s.detail = ("primary, NO standby connected: commits wait (synchronous replication) "
                                "until one is back")
    except Exception as exc:  # noqa: BLE001 - not answering
        s.state, s.detail = UNHEALTHY, f"process alive but not answering: {type(exc).__name__}: {exc}"[:200]
        return s
    s.state = UP
    return s


def status(cfg: StackConfig) -> ClusterStatus:
    st = load_state(cfg)
    # Ask only the brokers whose process lives: a dead first address would eat the client's time-out.
    live = [n for n in range(1, BROKERS + 1) if stack._kafka_pid(kafka_node(cfg, st, n))[1]]
    registered, why = set(), ""
    if live:
        registered, why = _registered_brokers(",".join(f"{cfg.host}:{st.broker_port(n)}" for n in live), timeout=5.0)
    services = [_kafka_node_status(cfg, st, n, registered, why) for n in range(1, BROKERS + 1)]
    try:
        secrets = stack._read_secrets(cfg)
    except StackError:
        secrets = None
    services += [_pg_node_status(cfg, st, node, secrets) for node in (st.primary, st.standby)]
    return ClusterStatus(services, cfg.state_dir)


def logs(cfg: StackConfig) -> list[Path]:
    st = load_state(cfg)
    paths = [kafka_node(cfg, st, n).kafka_logs / "server.log" for n in range(1, BROKERS + 1)]
    return paths + [stack.pg_root(pg_node(cfg, st, n)) / "postgresql.log" for n in PG_NODES]

