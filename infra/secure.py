"""A secured local Kafka broker: SASL/SCRAM-SHA-512 users and ACLs (issue 9, item 3).

    python -m infra.secure up [--clean] [--prefix P]   start it, create the topics and the ACLs
    python -m infra.secure down [--clean]              stop it (--clean: delete its data + passwords)
    python -m infra.secure status                      up / down / crashed / starting/unhealthy
    python -m infra.secure env USER                    `export K=V` client settings of one user
    python -m infra.secure acls [--prefix P]           print the ACL table (Markdown)

It is a *separate* single-node KRaft broker next to the ordinary stack of ``infra/stack.py``
(which stays PLAINTEXT for the tests): its own state dir (``var/secure`` or
``$LEDGER_SECURE_STATE_DIR``) and ports (``$LEDGER_SECURE_KAFKA_PORT``, default 19094;
``$LEDGER_SECURE_CONTROLLER_PORT``, default 19095). No PostgreSQL.

* The config is the ordinary ``infra/kafka/server.properties`` with the keys of
  ``infra/kafka/secure/server-overrides.properties`` replaced (SASL_PLAINTEXT listener,
  StandardAuthorizer, ``super.users``, ``allow.everyone.if.no.acl.found=false``).
* The users (:data:`USERS`) get random passwords, generated at the first ``up`` into
  ``<state>/kafka-users.json`` (mode 0600; nothing secret lives in the repo). Their SCRAM
  credentials are written into the metadata log when it is formatted
  (``kafka-storage format --add-scram``), in salted form: the passwords never appear on a
  command line.
* The ACLs (:func:`acl_table`) are created with the admin user through the Admin API, after
  every start (creating an existing ACL is a no-op).

Python API (tests/integration/test_broker_acl.py)::

    cfg = secure_config(state_dir=tmp, kafka_port=p1, controller_port=p2)
    up(cfg, prefix="")                       # -> {"KAFKA_BOOTSTRAP_SERVERS": ..., ...}
    client_config(cfg, "tax-integration")    # kwargs for KafkaProducer / KafkaConsumer
    down(cfg); clean(cfg)
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets as _secrets
import shlex
import shutil
import string
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from infra import stack
from infra.settings import setting_text
from infra.stack import (DOWN, CRASHED, UNHEALTHY, UP, Echo, StackConfig, StackError,
                         _silent)
from infra.topics import load_topics

SECURE_HOME = stack.KAFKA_HOME / "secure"
OVERRIDES_TEMPLATE = SECURE_HOME / "server-overrides.properties"
DEFAULT_SECURE_STATE_DIR = stack.REPO_ROOT / "var" / "secure"
DEFAULT_SECURE_KAFKA_PORT = 19094
DEFAULT_SECURE_CONTROLLER_PORT = 19095

MECHANISM = "SCRAM-SHA-512"
SECURITY_PROTOCOL = "SASL_PLAINTEXT"
SCRAM_ITERATIONS = 8192  # Kafka's minimum for SCRAM-SHA-512 is 4096

ADMIN = "admin"
TAX = "tax-integration"
LEDGER = "ledger"
#: Every SCRAM user of the secured broker. ``admin`` is a super user (no ACLs needed).
USERS = (ADMIN, TAX, LEDGER)

#: Topics the tax integration produces to (its inbound topics, from the ledger's view).
TAX_INBOUND = ("tax.payments.v1", "tax.statements.v1")
#: Topics the registry integration produces to (no user for it yet: only the ledger reads).
REGISTRY_INBOUND = ("registry.status.v1", "registry.residents.v1")
#: Topics the ledger itself writes (and its projections / tools read back).
LEDGER_OWN = ("ledger.events.v1", "ledger.audit.digests.v1", "reconciliation.results.v1")
#: Consumer groups of the ledger all start with this (ledger-projections, ledger-tax-payments...).
LEDGER_GROUP_PREFIX = "ledger-"


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def secure_config(environ: Mapping[str, str] | None = None, **overrides: Any) -> StackConfig:
    """A :class:`StackConfig` for the secured broker: its own state dir and ports.

    Only the Kafka fields are used (``pg_port`` is a placeholder that must merely differ)."""
    env = environ  # None: the process environment (infra.settings reads it)
    kw: dict[str, Any] = {
        "state_dir": Path(setting_text("LEDGER_SECURE_STATE_DIR", env) or DEFAULT_SECURE_STATE_DIR).expanduser(),
        "kafka_port": stack._env_port(env, "LEDGER_SECURE_KAFKA_PORT", DEFAULT_SECURE_KAFKA_PORT),
        "controller_port": stack._env_port(env, "LEDGER_SECURE_CONTROLLER_PORT",
                                           DEFAULT_SECURE_CONTROLLER_PORT),
    }
    base = StackConfig.from_env(env)  # java, kafka lib, heap, timeout from the usual variables
    for name in ("timeout", "kafka_heap", "kafka_lib", "java", "mvn", "fetch_timeout"):
        kw[name] = getattr(base, name)
    kw.update(overrides)
    ports = {kw["kafka_port"], kw["controller_port"]}
    kw.setdefault("pg_port", next(p for p in (stack.DEFAULT_PG_PORT, 1, 2, 3) if p not in ports))
    return StackConfig(**kw)


def users_file(cfg: StackConfig) -> Path:
    return cfg.state_dir / "kafka-users.json"


def read_users(cfg: StackConfig) -> dict[str, str] | None:
    """{user: password} of the secured broker, or None before the first ``up``."""
    path = users_file(cfg)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StackError(f"{path} is unreadable ({exc})",
                         "run `python -m infra.secure down --clean` to start afresh") from None
    missing = [u for u in USERS if not isinstance(data.get(u), str)]
    if missing:
        raise StackError(f"{path} lacks the password(s) of {', '.join(missing)}",
                         "run `python -m infra.secure down --clean` to start afresh")
    return data


def _ensure_users(cfg: StackConfig, *, formatted: bool) -> dict[str, str]:
    users = read_users(cfg)
    if users is not None:
        return users
    if formatted:  # the credentials in the metadata log no longer match anything we know
        raise StackError(f"the secured broker in {cfg.state_dir} has data but no {users_file(cfg).name}",
                         "run `python -m infra.secure down --clean` to start afresh")
    users = {u: _secrets.token_urlsafe(24) for u in USERS}
    stack._write_private(users_file(cfg), json.dumps(users, indent=2) + "\n")
    return users


def client_config(cfg: StackConfig, user: str, password: str | None = None) -> dict[str, Any]:
    """kafka-python keyword arguments (KafkaProducer, KafkaConsumer, KafkaAdminClient) to log in
    as ``user`` (with its stored password, or ``password``)."""
    if password is None:
        users = read_users(cfg)
        if users is None:
            raise StackError(f"the secured broker in {cfg.state_dir} was never started",
                             "run `python -m infra.secure up` first")
        if user not in users:
            raise StackError(f"unknown Kafka user {user!r}", f"one of {', '.join(USERS)}")
        password = users[user]
    return {"bootstrap_servers": cfg.kafka_bootstrap, "security_protocol": SECURITY_PROTOCOL,
            "sasl_mechanism": MECHANISM, "sasl_plain_username": user,
            "sasl_plain_password": password}


def settings(cfg: StackConfig, user: str) -> dict[str, str]:
    """Environment-style settings of one user (what `env USER` prints)."""
    c = client_config(cfg, user)
    return {"KAFKA_BOOTSTRAP_SERVERS": c["bootstrap_servers"],
            "KAFKA_SECURITY_PROTOCOL": SECURITY_PROTOCOL, "KAFKA_SASL_MECHANISM": MECHANISM,
            "KAFKA_SASL_USERNAME": user, "KAFKA_SASL_PASSWORD": c["sasl_plain_password"]}


# --------------------------------------------------------------------------------------------
# The ACL table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """ALLOW ``operations`` on one resource pattern to ``User:<user>``, from any host."""

    user: str
    resource_type: str  # "TOPIC" | "GROUP"
    name: str
    pattern: str  # "LITERAL" | "PREFIXED"
    operations: tuple[str, ...]
    why: str = ""


def acl_table(prefix: str = "") -> list[Grant]:
    """Every ACL of the secured broker. ``prefix`` is the deployment's topic prefix (as in
    ``ensure_topics``); group names are not prefixed. Anything not listed is denied."""
    t = lambda name: prefix + name  # noqa: E731
    dlqs = tuple(n + ".dlq" for n in TAX_INBOUND + REGISTRY_INBOUND)
    grants = [Grant(TAX, "TOPIC", t(n), "LITERAL", ("WRITE", "DESCRIBE"),
                    "the tax bureau's integration publishes payments / statements")
              for n in TAX_INBOUND]
    grants += [Grant(LEDGER, "TOPIC", t(n), "LITERAL", ("READ", "DESCRIBE"),
                     "the ledger consumes its inbound topics") for n in TAX_INBOUND + REGISTRY_INBOUND]
    grants += [Grant(LEDGER, "TOPIC", t(n), "LITERAL", ("WRITE", "READ", "DESCRIBE"),
                     "written by the ledger (publisher, audit, reconciliation), read back by "
                     "its projections and tools") for n in LEDGER_OWN]
    grants += [Grant(LEDGER, "TOPIC", t(n), "LITERAL", ("WRITE", "READ", "DESCRIBE"),
                     "records the ledger rejected; read by the clerks' tools") for n in dlqs]
    grants.append(Grant(LEDGER, "GROUP", LEDGER_GROUP_PREFIX, "PREFIXED", ("READ", "DESCRIBE"),
                        "the ledger's consumer groups (ledger-projections, ledger-tax-payments, ...)"))
    return grants


def acl_markdown(prefix: str = "") -> str:
    rows = ["| user | resource | name | pattern | allowed operations | why |",
            "|---|---|---|---|---|---|"]
    rows += [f"| `{g.user}` | {g.resource_type} | `{g.name}` | {g.pattern} | "
             f"{', '.join(g.operations)} | {g.why} |" for g in acl_table(prefix)]
    return "\n".join(rows)


def apply_acls(cfg: StackConfig, prefix: str = "", *, timeout: float = 30.0) -> int:
    """Create the ACLs of :func:`acl_table` as admin (idempotent). Returns how many bindings."""
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType,
                             ACLResourcePatternType, ResourcePattern, ResourcePatternFilter,
                             ResourceType)

    acls = [ACL(principal=f"User:{g.user}", host="*", operation=ACLOperation[op],
                permission_type=ACLPermissionType.ALLOW,
                resource_pattern=ResourcePattern(ResourceType[g.resource_type], g.name,
                                                 ACLResourcePatternType[g.pattern]))
            for g in acl_table(prefix) for op in g.operations]
    key = lambda a: (a.principal, a.host, int(a.operation), int(a.permission_type),  # noqa: E731
                     int(a.resource_pattern.resource_type), a.resource_pattern.resource_name,
                     int(a.resource_pattern.pattern_type))
    wanted = {key(a) for a in acls}
    everything = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                           permission_type=ACLPermissionType.ANY,
                           resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                                  ACLResourcePatternType.ANY))
    end = time.monotonic() + timeout
    admin = _admin(cfg, timeout)
    try:
        result = admin.create_acls(acls)
        failed = result.get("failed", []) if isinstance(result, dict) else []
        if failed:
            acl, err = failed[0][:2] if isinstance(failed[0], tuple) else (failed[0], "")
            raise StackError(f"creating {len(failed)} ACL(s) failed, e.g. {acl}: {err}",
                             f"see {cfg.kafka_logs / 'server.log'}")
        # CreateAcls returns once the controller committed them; the broker's authorizer
        # applies the metadata a moment later. Wait until it serves every binding.
        while True:
            found = admin.describe_acls(everything)
            found = found[0] if isinstance(found, tuple) else found
            missing = wanted - {key(a) for a in found}
            if not missing:
                break
            if time.monotonic() >= end:
                raise StackError(f"{len(missing)} ACL(s) not visible on the broker after "
                                 f"{timeout:g} s", f"see {cfg.kafka_logs / 'server.log'}")
            time.sleep(0.1)
    finally:
        admin.close()
    return len(acls)


# --------------------------------------------------------------------------------------------
# Broker config, format, probe
# --------------------------------------------------------------------------------------------


def _admin(cfg: StackConfig, timeout: float, user: str = ADMIN):
    from kafka import KafkaAdminClient

    ms = int(timeout * 1000)
    return KafkaAdminClient(client_id="ledger-infra-secure", request_timeout_ms=ms,
                            bootstrap_timeout_ms=ms, reconnect_backoff_max_ms=500,
                            **client_config(cfg, user))


def render_properties(cfg: StackConfig, admin_password: str) -> str:
    """The ordinary broker template with the secure overrides in place of its keys."""
    fields = dict(host=cfg.host, kafka_port=cfg.kafka_port, controller_port=cfg.controller_port,
                  log_dirs=str(cfg.kafka_data))
    base = string.Template(stack.KAFKA_PROPERTIES_TEMPLATE.read_text()).substitute(**fields)
    overrides = string.Template(OVERRIDES_TEMPLATE.read_text()).substitute(
        admin_password=admin_password, **fields)
    keys = {line.split("=", 1)[0].strip() for line in overrides.splitlines()
            if "=" in line and not line.lstrip().startswith(("#", "!"))}
    kept = []
    for line in base.splitlines():
        key = line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith(("#", "!")) else None
        kept.append(f"# (replaced below) {line}" if key in keys else line)
    return ("\n".join(kept) + "\n\n# ---- infra/kafka/secure/server-overrides.properties ----\n"
            + overrides)


def scram_credential(user: str, password: str, *, salt: bytes | None = None,
                     iterations: int = SCRAM_ITERATIONS) -> str:
    """The salted ``--add-scram`` argument of ``kafka-storage format`` (RFC 5802 Hi())."""
    salt = salt or _secrets.token_bytes(24)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return (f'{MECHANISM}=[name={user},iterations={iterations},'
            f'salt="{b64(salt)}",saltedpassword="{b64(salted)}"]')


def _format(cfg: StackConfig, java: str, users: dict[str, str], deadline: Any, echo: Echo) -> None:
    cluster_id = stack._new_cluster_id()
    stack._write_private(cfg.cluster_id_file, cluster_id + "\n", 0o644)
    echo(f"kafka-secure: formatting {cfg.kafka_data} (cluster {cluster_id}, "
         f"SCRAM users {', '.join(users)})")
    scram = [a for u, pw in users.items() for a in ("--add-scram", scram_credential(u, pw))]
    proc = stack._run(stack.kafka_tool_command(
        "kafka.tools.StorageTool", "format", "--standalone", "--cluster-id", cluster_id,
        "--config", str(cfg.kafka_properties), *scram, cfg=cfg, java=java),
        deadline=deadline, doing="formatting the secured Kafka log dir")
    if proc.returncode != 0:
        lines = (proc.stdout + "\n" + proc.stderr).splitlines()
        raise StackError("formatting the secured Kafka log dir failed: "
                         + stack._first_error(lines, ("Exception", "Error", "error")),
                         "run `python -m infra.secure down --clean` and retry")


def probe(cfg: StackConfig, timeout: float = 3.0) -> tuple[bool, str]:
    """Does the broker accept the admin login and answer a metadata request?"""
    if not stack._tcp_answers(cfg.host, cfg.kafka_port, timeout=min(timeout, 1.0)):
        return False, f"nothing answers on {cfg.kafka_bootstrap}"
    try:
        with stack._quiet_logger("kafka"):
            admin = _admin(cfg, timeout)
            try:
                cluster = admin.describe_cluster()
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
        return False, f"a different Kafka cluster answers on {cfg.kafka_bootstrap}"
    return True, ""


def create_topics(cfg: StackConfig, prefix: str = "", *, timeout: float = 30.0) -> list[str]:
    """infra/topics.toml's topics (with ``prefix``), created as admin; existing ones are kept."""
    from kafka.errors import for_code

    wanted = [t.with_prefix(prefix) for t in load_topics()]
    ms = int(timeout * 1000)
    admin = _admin(cfg, timeout)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        created = []
        if missing:
            result = admin.create_topics(
                {t.name: {"num_partitions": t.partitions, "replication_factor": t.replication_factor,
                          "configs": t.configs()} for t in missing},
                timeout_ms=ms, raise_errors=False)
            for entry in result["topics"]:
                code = entry.get("error_code", 0)
                if code == 0:
                    created.append(entry["name"])
                elif code != 36:  # TopicAlreadyExists: created meanwhile
                    err = for_code(code)
                    raise err(f"cannot create topic {entry['name']!r}: "
                              f"{entry.get('error_message') or err.__name__}")
        admin.wait_for_topics([t.name for t in wanted], timeout_ms=ms)
        return created
    finally:
        admin.close()


# --------------------------------------------------------------------------------------------
# up / down / clean / status
# --------------------------------------------------------------------------------------------


def up(cfg: StackConfig | None = None, timeout: float | None = None, *, echo: Echo = _silent,
       prefix: str = "", topics: bool = True) -> dict[str, str]:
    """Start the secured broker unless it runs, wait for the admin login, create the topics
    (unless ``topics=False``) and the ACLs. Idempotent. Returns the admin's :func:`settings`."""
    cfg = cfg or secure_config()
    total = cfg.timeout if timeout is None else timeout
    deadline = stack._Deadline(total, cfg)
    with stack._locked(cfg, wait=deadline.remaining()):
        java = stack.find_java(cfg)
        if not stack.kafka_jars_ready(cfg):
            stack.ensure_kafka_jars(cfg, echo=echo)
            deadline = stack._Deadline(total, cfg)
        pid, running = stack._kafka_pid(cfg)
        if pid is not None and not running:
            echo(f"kafka-secure: previous broker (pid {pid}) is gone; removing its stale pid file")
            cfg.kafka_pid_file.unlink(missing_ok=True)
        needs_format = stack._kafka_check_storage(cfg)
        users = _ensure_users(cfg, formatted=not needs_format)
        if running:
            echo(f"kafka-secure: already running (pid {pid})")
        else:
            for port, what, key in ((cfg.kafka_port, "Kafka", "LEDGER_SECURE_KAFKA_PORT"),
                                    (cfg.controller_port, "Kafka controller",
                                     "LEDGER_SECURE_CONTROLLER_PORT")):
                if not stack._port_free(cfg.host, port):
                    raise stack._port_taken_error(cfg, port, what, key)
            for d in (cfg.kafka_dir, cfg.kafka_data, cfg.kafka_logs):
                d.mkdir(parents=True, exist_ok=True)
            stack._write_private(cfg.kafka_properties, render_properties(cfg, users[ADMIN]), 0o600)
            if needs_format:
                _format(cfg, java, users, deadline, echo)
            pid = stack._kafka_launch(cfg, java)
            echo(f"kafka-secure: started (pid {pid}), logs in {cfg.kafka_logs}")
        while True:
            if not stack._pid_alive(pid or -1):
                cfg.kafka_pid_file.unlink(missing_ok=True)
                raise StackError(f"the secured Kafka exited during start-up: "
                                 f"{stack._kafka_exit_reason(cfg)}", f"see {cfg.kafka_logs / 'server.log'}")
            ok, why = probe(cfg, timeout=min(3.0, max(0.5, deadline.remaining())))
            if ok:
                break
            if deadline.remaining() <= 0:
                raise StackError(f"the secured Kafka (pid {pid}) does not accept the admin login on "
                                 f"{cfg.kafka_bootstrap} after {total:g} s: {why}",
                                 f"see {cfg.kafka_logs / 'server.log'}")
            time.sleep(0.3)
        echo(f"kafka-secure: ready at {cfg.kafka_bootstrap} ({SECURITY_PROTOCOL}, {MECHANISM})")
        left = max(5.0, deadline.remaining())
        if topics:
            created = create_topics(cfg, prefix, timeout=left)
            if created:
                echo(f"kafka-secure: created {len(created)} topic(s)")
        n = apply_acls(cfg, prefix, timeout=left)
        echo(f"kafka-secure: {n} ACL bindings in place (users: {', '.join(USERS)})")
    return settings(cfg, ADMIN)


def down(cfg: StackConfig | None = None, *, echo: Echo = _silent) -> None:
    cfg = cfg or secure_config()
    if not cfg.state_dir.exists():
        return
    with stack._locked(cfg, wait=90):
        stack._kafka_stop(cfg, echo)


def clean(cfg: StackConfig | None = None, *, echo: Echo = _silent) -> None:
    """Stop the secured broker and delete its data and passwords."""
    cfg = cfg or secure_config()
    if not cfg.state_dir.exists():
        return
    down(cfg, echo=echo)
    with stack._locked(cfg, wait=90):
        shutil.rmtree(cfg.kafka_dir, ignore_errors=True)
        users_file(cfg).unlink(missing_ok=True)


def status(cfg: StackConfig | None = None) -> stack.ServiceStatus:
    cfg = cfg or secure_config()
    st = stack.ServiceStatus("kafka-secure", DOWN, cfg.kafka_bootstrap)
    pid, ours = stack._kafka_pid(cfg)
    st.pid = pid
    if pid is None:
        return st
    if not ours:
        st.state, st.detail = CRASHED, f"pid file names process {pid}, which is not running"
        return st
    ok, why = probe(cfg)
    st.state, st.detail = (UP, "") if ok else (UNHEALTHY, why)
    return st


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.secure",
                                     description="The secured local Kafka broker (SASL/SCRAM + ACLs).")
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up")
    p_up.add_argument("--clean", action="store_true")
    p_up.add_argument("--prefix", default="", help="deployment topic prefix for topics and ACLs")
    p_up.add_argument("--timeout", type=float, default=None)
    p_down = sub.add_parser("down")
    p_down.add_argument("--clean", action="store_true")
    sub.add_parser("status")
    p_env = sub.add_parser("env")
    p_env.add_argument("user", choices=USERS)
    p_acls = sub.add_parser("acls")
    p_acls.add_argument("--prefix", default="")
    args = parser.parse_args(argv)
    echo = lambda msg: print(msg, flush=True)  # noqa: E731
    try:
        cfg = secure_config()
        if args.command == "up":
            if args.clean:
                clean(cfg, echo=echo)
            up(cfg, args.timeout, echo=echo, prefix=args.prefix)
            print(f"# client settings: eval \"$(python -m infra.secure env {TAX})\"")
        elif args.command == "down":
            (clean if args.clean else down)(cfg, echo=echo)
        elif args.command == "status":
            st = status(cfg)
            print(st.line())
            return 0 if st.healthy else (3 if st.state == DOWN else 1)
        elif args.command == "env":
            print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in settings(cfg, args.user).items()))
        elif args.command == "acls":
            print(acl_markdown(args.prefix))
    except StackError as exc:
        print(f"infra.secure {args.command}: error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
