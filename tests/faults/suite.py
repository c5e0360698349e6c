"""The fault-injection run: a private stack, the production processes under a supervisor, the county fed in
timeline order while processes are killed and the servers restarted; then the checks of :mod:`tests.faults.checks`."""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]
ID_KEY = "fault-suite-id-key"
LEDGER_SCHEMA = "faults"  # the ledger and the views the log-following runner keeps
KAFKA_VIEWS_SCHEMA = "faults_kafka_views"  # the views the ledger.events.v1-following runner keeps
CONSUMER_BATCH = 50  # --max-records of every consumer: bursts and runs are many batches long
EVENTS_TOPIC = "ledger.events.v1"
MIN_UP = 4.0  # seconds a process runs before it is killed (again): Python starts, joins its group


@dataclass(frozen=True)
class Size:
    people: int
    kills: int  # SIGKILLs of each process
    burst: int  # tax records in the burst (resends), CONSUMER_BATCH at a time
    timeout: float  # seconds for the whole run before it counts as not converging


SIZES = {
    "small": Size(people=300, kills=2, burst=2_000, timeout=900),
    "large": Size(people=3_000, kills=5, burst=20_000, timeout=3_600),
}


class NotConverged(RuntimeError):
    """The pipeline did not get where it had to within the time limit."""


def say(message: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- the supervisor
@dataclass
class Proc:
    """One production process: started, SIGKILLed at its kill points, restarted whenever it is gone."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    kill_at: list[float]  # fractions of the timeline after which to SIGKILL it
    rng: random.Random
    kills: int = 0
    exits: list[str] = field(default_factory=list)  # how it ended by itself (exit code and last log line)
    popen: subprocess.Popen[bytes] | None = None
    armed_until: float | None = None
    started_at: float = 0.0
    suspended: bool = False  # kept down (or run by hand) by the suite: the supervisor leaves it alone

    def start(self, extra_env: dict[str, str] | None = None) -> int:
        """Start it; returns the log's size before its start line (where this run's output begins)."""
        self.started_at = time.monotonic()
        with self.log_path.open("ab") as log:
            begins = log.tell()
            log.write(f"---- start {time.strftime('%H:%M:%S')}{' ' + str(extra_env) if extra_env else ''}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(self.argv, env={**self.env, **(extra_env or {})}, cwd=REPO,
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        return begins

    def tick(self, progress: float) -> str | None:
        """Kill when due, restart when gone; returns what it did, if anything."""
        assert self.popen is not None
        if self.suspended:
            return None
        code = self.popen.poll()
        if code is not None:  # it ended by itself: say why, start it again
            self.exits.append(f"exit {code}: {last_line(self.log_path)}")
            if len(self.exits) > 25:
                raise NotConverged(f"{self.name} keeps exiting by itself: {self.exits[-3:]}")
            time.sleep(0.5)
            self.start()
            return f"{self.name} had exited by itself ({self.exits[-1][:160]}); restarted"
        if self.kill_at and progress >= self.kill_at[0] and self.armed_until is None:
            # A random moment (not a batch boundary), once the process is past its start-up and at work.
            self.armed_until = max(time.monotonic(), self.started_at + MIN_UP) + self.rng.uniform(0.0, 1.5)
        if self.armed_until is not None and time.monotonic() >= self.armed_until:
            self.kill_at.pop(0)
            self.armed_until = None
            self.kills += 1
            self.kill_and_restart()
            return f"SIGKILL {self.name} (#{self.kills}); restarted"
        return None

    def kill_and_restart(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)
        self.start()

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


def last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""


class Supervisor:
    def __init__(self, procs: list[Proc]) -> None:
        self.procs = procs
        self.progress = 0.0
        self.lock = threading.Lock()

    def start(self) -> None:
        for p in self.procs:
            p.start()

    def tick(self) -> None:
        with self.lock:
            for p in self.procs:
                did = p.tick(self.progress)
                if did:
                    say(did)

    def find(self, name: str) -> Proc:
        return next(p for p in self.procs if p.name == name)

    def kills_pending(self) -> int:
        return sum(len(p.kill_at) for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


# --------------------------------------------------------------------------- the run
@dataclass
class FeedCounts:
    """What went onto the feeds and what the consumers took (the shape entrypoints.demo.truth_checks reads)."""

    produced: Counter[str] = field(default_factory=Counter)
    consumed: Counter[str] = field(default_factory=Counter)
    clerk_errors: Counter[str] = field(default_factory=Counter)
    file_refusals: Counter[str] = field(default_factory=Counter)  # none: the suite produces records, not files
    clerk_actions: int = 0
    burst: int = 0


@dataclass
class RunReport:
    seed: int
    size: str
    people: int
    faults: Counter[str] = field(default_factory=Counter)
    exits: dict[str, list[str]] = field(default_factory=dict)
    feeds: FeedCounts = field(default_factory=FeedCounts)
    figures: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    cluster: bool = False
    timeline: list[str] = field(default_factory=list)  # "HH:MM:SS +s  what" for every server fault
    transfers: dict[str, Any] = field(default_factory=dict)  # the transfer halves run as CLI processes

    @property
    def mismatches(self) -> int:
        return sum(c["mismatches"] for c in self.checks.values())


def free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def child_env(services: dict[str, str], schema: str, state: Path, cipher_key: str) -> dict[str, str]:
    """The environment of a production process on the private stack (nothing of the caller's stack leaks in).

    The cipher key is set explicitly, as in production: the supervisor's own ledger uses the same one.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("POSTGRES_", "LEDGER_", "KAFKA_", "CIPHER_")) and k != "DATABASE_URL"}
    env.update({k: services[k] for k in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DBNAME", "POSTGRES_USER",
                                         "POSTGRES_PASSWORD")})
    env.update(POSTGRES_SCHEMA=schema, LEDGER_PERSISTENCE="postgres", LEDGER_ID_KEY=ID_KEY,
               KAFKA_BOOTSTRAP_SERVERS=services["KAFKA_BOOTSTRAP_SERVERS"], LEDGER_STATE_DIR=str(state),
               PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", CIPHER_KEY=cipher_key)
    return env


def retrying(what: str, fn: Callable[[], Any], *, tick: Callable[[], None], seconds: float = 180.0) -> Any:
    """``fn()`` again and again while the database or the broker is away (they are restarted on purpose)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - anything from a server being restarted
            if time.monotonic() > deadline:
                raise NotConverged(f"{what} kept failing for {seconds:.0f} s: {type(e).__name__}: {e}") from e
            tick()
            time.sleep(0.5)


class FaultRun:
    """One run: stack up, processes started, the county fed with faults injected, convergence awaited."""

    def __init__(self, size: str, seed: int, workdir: Path, *, cluster: bool = False) -> None:
        self.size_name, self.size, self.seed = size, SIZES[size], seed
        self.rng = random.Random(seed)
        self.workdir = workdir
        self.cluster = cluster
        self.report = RunReport(seed=seed, size=size, people=self.size.people, cluster=cluster)
        self.started = time.monotonic()
        self.kafka_thread: threading.Thread | None = None
        self.kafka_error: BaseException | None = None
        self.finished = False

    # ------------------------------------------------------------ set-up
    def start_stack(self) -> None:
        from infra import stack

        ports = free_ports(3)
        tools = ("LEDGER_JAVA", "LEDGER_MVN", "LEDGER_PG_BINDIR", "LEDGER_KAFKA_HEAP", "LEDGER_KAFKA_LIB_DIR",
                 "LEDGER_FETCH_TIMEOUT")  # how to run the servers; never where or on which ports
        self.cfg = stack.StackConfig.from_env(
            {k: v for k, v in os.environ.items() if k in tools},
            state_dir=self.workdir / "stack", kafka_port=ports[0], controller_port=ports[1], pg_port=ports[2],
            timeout=240.0)
        t0 = time.monotonic()
        if self.cluster:
            from infra import cluster

            cluster.cluster_dir(self.cfg).mkdir(parents=True)
            ports = random.Random()  # not the seed's: two runs side by side must not pick the same ports
            cluster.save_state(self.cfg, cluster.ClusterState(kafka_port=cluster.free_port_run(29100, 29200, 6, ports),
                                                              pg_port=cluster.free_port_run(56100, 56200, 2, ports)))
            self.services = cluster.up(self.cfg)
            say(f"private cluster in {self.cfg.state_dir}: Kafka {self.services['KAFKA_BOOTSTRAP_SERVERS']}, "
                f"PostgreSQL {self.services['POSTGRES_PORT']} (primary, synchronous standby)")
            self.report.seconds["stack_up"] = round(time.monotonic() - t0, 1)
            return
        say(f"private stack in {self.cfg.state_dir}: Kafka {self.cfg.kafka_bootstrap}, "
            f"PostgreSQL 127.0.0.1:{self.cfg.pg_port}")
        self.services = stack.up(self.cfg)
        self.report.seconds["stack_up"] = round(time.monotonic() - t0, 1)

    def build(self) -> None:
        from entrypoints.wiring import bootstrap
        from infra.settings import Settings
        from entrypoints.simulation import generate_county

        self.county = generate_county(self.seed, self.size.people)
        pg = {k: self.services[k] for k in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DBNAME", "POSTGRES_USER",
                                            "POSTGRES_PASSWORD")}
        self.pg = pg
        from infra.sql_store import connect_in_schema

        for schema in (LEDGER_SCHEMA, KAFKA_VIEWS_SCHEMA):
            connect_in_schema(pg, schema).close()  # creates it
        # The supervisor's own ledger (clerk actions, positions) checks a pooled connection before using
        # it: PostgreSQL is restarted under it on purpose.
        from events.pii import new_key

        self.cipher_key = new_key()  # encryption at rest, one key for the supervisor and every process
        self.system = bootstrap(Settings(persistence="postgres", id_key=ID_KEY.encode(), cipher_keys=(self.cipher_key,),
                                         postgres={**pg, "POSTGRES_SCHEMA": LEDGER_SCHEMA, "POSTGRES_PRE_PING": "y"},
                                         kafka_bootstrap_servers=self.services["KAFKA_BOOTSTRAP_SERVERS"]))
        cli = [sys.executable, "-m", "entrypoints.cli"]
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        ledger_env = child_env(self.services, LEDGER_SCHEMA, self.workdir / "state", self.cipher_key)
        kafka_views_env = child_env(self.services, KAFKA_VIEWS_SCHEMA, self.workdir / "state", self.cipher_key)
        commands = {
            "consume tax": cli + ["consume", "tax", "--max-records", str(CONSUMER_BATCH)],
            "consume status": cli + ["consume", "status", "--max-records", str(CONSUMER_BATCH)],
            "consume residents": cli + ["consume", "residents", "--max-records", str(CONSUMER_BATCH)],
            "publish": cli + ["publish"],
            "project (log)": cli + ["project", "--follow", "--quiet", "--batch-size", "200"],
            "project (kafka)": cli + ["project", "--source", "kafka", "--follow", "--quiet", "--batch-size", "200"],
        }
        procs = []
        for name, argv in commands.items():
            kill_at = sorted(self.rng.uniform(0.05, 0.95) for _ in range(self.size.kills))
            procs.append(Proc(name, argv, kafka_views_env if name == "project (kafka)" else ledger_env,
                              logs / (name.replace(" ", "_").replace("(", "").replace(")", "") + ".log"),
                              kill_at, random.Random(self.rng.random())))
        self.supervisor = Supervisor(procs)
        from tests.faults.transfers import TransferHalves

        # The county's transfer halves: `ledger clerk transfer-out|transfer-in` processes, some SIGKILLed.
        self.transfer_halves = TransferHalves(ledger_env, self.workdir, random.Random(self.rng.random()),
                                              self.size.kills, REPO, tick=lambda: self.supervisor.tick(), say=say)
        self.kafka_restart_at, self.kafka_down_for = self.rng.uniform(0.2, 0.4), self.rng.uniform(2.0, 5.0)
        self.pg_restart_at, self.pg_down_for = self.rng.uniform(0.55, 0.75), self.rng.uniform(1.0, 3.0)
        self.burst_at = self.rng.uniform(0.4, 0.55)
        # The publisher SIGKILLed at its commit points (a Random of its own: the other faults keep their moments).
        points = random.Random(self.seed + 1)
        self.publisher_points = [(points.uniform(0.15, 0.35), "after_kafka_commit"),
                                 (points.uniform(0.6, 0.85), "before_kafka_commit")]

    # ------------------------------------------------------------ feeding
    def feed(self) -> None:
        from consumers.feed_handlers import DEFAULT_CONSUMERS
        from consumers.kafka_io import make_producer
        from entrypoints.demo import feed_record_bytes, feed_record_key, malformed_record_bytes
        from entrypoints.simulation import timeline as feeds

        self.topics = {feeds.TAX: feeds.TAX_TOPIC, feeds.STATUS: feeds.STATUS_TOPIC,
                       feeds.RESIDENCE: feeds.RESIDENTS_TOPIC}
        self.consumer_of = {feeds.TAX: DEFAULT_CONSUMERS["tax"], feeds.STATUS: DEFAULT_CONSUMERS["status"],
                            feeds.RESIDENCE: DEFAULT_CONSUMERS["residents"]}
        # The broker is away for a while on purpose: the producer waits and retries rather than failing.
        self.producer = make_producer(self.services["KAFKA_BOOTSTRAP_SERVERS"], max_block_ms=300_000,
                                      delivery_timeout_ms=300_000, request_timeout_ms=30_000)
        self.targets: dict[str, dict[int, int]] = {k: {} for k in self.topics}
        actions = self.county.actions
        run: list[Any] = []
        run_kind: str | None = None
        fed_tax: list[Any] = []

        def flush(index: int) -> None:
            if not run:
                return
            point = None
            if run_kind == feeds.TAX and self.publisher_points and index / len(actions) >= self.publisher_points[0][0]:
                point = self.publisher_points.pop(0)[1]
                self.hold_publisher_down()  # the run's events pile up for the publisher started with the hook
            self.produce(run_kind, [(feed_record_key(a.record), feed_record_bytes(run_kind, a.record)) for a in run])
            if run_kind == feeds.TAX:
                fed_tax.extend(a for a in run if a.expected_error is None)
            self.supervisor.progress = index / len(actions)
            self.maybe_restart_servers(index / len(actions))
            self.drain(run_kind)
            if point is not None:
                self.kill_publisher_at(point)
            if run_kind == feeds.TAX and self.burst_at is not None and index / len(actions) >= self.burst_at:
                self.burst(fed_tax, feed_record_key, feed_record_bytes)
            run.clear()

        for index, action in enumerate(actions):
            if action.kind in self.topics:
                if action.kind != run_kind:
                    flush(index)
                    run_kind = action.kind
                run.append(action)
                continue
            flush(index)
            run_kind = None
            self.clerk(action, feeds)
            self.supervisor.progress = (index + 1) / len(actions)
            self.supervisor.tick()
        flush(len(actions))
        kinds = {v: k for k, v in self.topics.items()}
        by_topic: dict[str, list[Any]] = {}
        for m in self.county.malformed_rows:
            by_topic.setdefault(m.topic, []).append(m)
        for topic, rows in by_topic.items():
            self.produce(kinds[topic], [(f"malformed-{i}".encode(), malformed_record_bytes(topic, m.row))
                                        for i, m in enumerate(rows)])
            self.drain(kinds[topic])
        if self.burst_at is not None:  # a county without a late tax run: the burst comes last
            self.burst(fed_tax, feed_record_key, feed_record_bytes)
        self.supervisor.progress = 1.0

    def produce(self, kind: str, pairs: list[tuple[bytes, bytes]]) -> None:
        topic = self.topics[kind]
        futures = [self.producer.send(topic, key=key, value=value) for key, value in pairs]
        self.producer.flush(timeout=600)
        for future in futures:
            meta = future.get(timeout=0)
            target = self.targets[kind]
            target[meta.partition] = max(target.get(meta.partition, -1), meta.offset)
        self.report.feeds.produced[kind] += len(pairs)

    def consumed(self, kind: str) -> dict[int, int | None]:
        from consumers.feed_consumer import position_name

        ledger, name, topic = self.system.ledger, self.consumer_of[kind], self.topics[kind]
        return {p: ledger.position(position_name(name, topic, p)) for p in range(partitions(topic))}

    def taken(self, kind: str) -> int:
        """Records of the feed the consumer has taken in so far."""
        positions = retrying(f"reading the {kind} consumer's positions", lambda: self.consumed(kind),
                             tick=self.supervisor.tick)
        return sum(1 + v for v in positions.values() if v is not None)

    def drain(self, kind: str) -> None:
        """Wait until the feed's consumer has taken in everything produced to it (ticking the supervisor)."""
        target = self.targets[kind]
        deadline = time.monotonic() + 300
        while True:
            self.supervisor.tick()
            self.check_time()
            positions = retrying(f"reading the {kind} consumer's positions", lambda: self.consumed(kind),
                                 tick=self.supervisor.tick)
            if all((positions.get(p) if positions.get(p) is not None else -1) >= o for p, o in target.items()):
                self.report.feeds.consumed[kind] = sum(1 + v for v in positions.values() if v is not None)
                return
            if time.monotonic() > deadline:
                raise NotConverged(f"the {kind} consumer did not take in {target} within 300 s (at {positions})")
            time.sleep(0.05)

    def clerk(self, action: Any, feeds: Any) -> None:
        """A clerk action through the application service, as the HTTP API makes it; a transfer half as a
        `ledger clerk` process of its own (tests/faults/transfers.py)."""
        from ledger.domain.errors import DomainError

        if action.kind in (feeds.TRANSFER_OUT, feeds.TRANSFER_IN):
            self.transfer_halves.run(action, self.report.feeds.clerk_errors)
            self.report.feeds.clerk_actions += 1
            self.report.transfers = self.transfer_halves.summary()
            return

        def no_feed(topic: str, key: str) -> Any:
            raise AssertionError(f"clerk action routed to feed {topic}")

        def apply() -> None:
            try:
                feeds._apply_one(self.system.ledger, action, no_feed)
            except DomainError as e:
                self.report.feeds.clerk_errors[e.code] += 1

        retrying("a clerk action", apply, tick=self.supervisor.tick, seconds=120)
        self.report.feeds.clerk_actions += 1

    def burst(self, fed_tax: list[Any], key: Callable[[Any], bytes], value: Callable[[str, Any], bytes]) -> None:
        """A burst onto tax.payments.v1: resends of records already taken in, many batches' worth at once."""
        from entrypoints.simulation import timeline as feeds

        self.burst_at = None
        picks = [self.rng.choice(fed_tax) for _ in range(self.size.burst)]
        say(f"burst: {len(picks):,} resent tax records at once ({len(picks) // CONSUMER_BATCH} consumer batches)")
        t0 = time.monotonic()
        before = self.report.feeds.produced[feeds.TAX]
        self.produce(feeds.TAX, [(key(a.record), value(feeds.TAX, a.record)) for a in picks])
        # The consumer SIGKILLed in the middle of the backlog (its restart takes the rest).
        goal = before + int(len(picks) * self.rng.uniform(0.2, 0.6))
        deadline = time.monotonic() + 300
        while (taken := self.taken(feeds.TAX)) < goal and time.monotonic() < deadline:
            self.supervisor.tick()
            time.sleep(0.02)
        with self.supervisor.lock:
            self.supervisor.find("consume tax").kill_and_restart()
        say(f"SIGKILL consume tax in the middle of the burst ({taken - before:,} of {len(picks):,} taken); restarted")
        self.report.faults["SIGKILL consume tax in the middle of the burst"] += 1
        self.drain(feeds.TAX)
        self.report.feeds.burst = len(picks)
        self.report.faults["burst (records far beyond one batch)"] += 1
        self.report.seconds["burst_drained"] = round(time.monotonic() - t0, 1)

    # ------------------------------------------------------------ the publisher at its commit points
    def hold_publisher_down(self) -> None:
        publisher = self.supervisor.find("publish")
        with self.supervisor.lock:
            publisher.suspended = True
            assert publisher.popen is not None
            publisher.popen.send_signal(signal.SIGKILL)
            publisher.popen.wait(timeout=30)

    def kill_publisher_at(self, point: str) -> None:
        """``ledger publish`` with LEDGER_FAULT_PUBLISHER_PAUSE=point: SIGKILLed when it says it is there
        (after_kafka_commit: the batch and its position committed, the tracking copy not written;
        before_kafka_commit: both sent to the broker, not committed), then started as usual."""
        publisher = self.supervisor.find("publish")
        with self.supervisor.lock:
            begins = publisher.start({"LEDGER_FAULT_PUBLISHER_PAUSE": point})
            deadline = time.monotonic() + 180
            reached = False
            while time.monotonic() < deadline and publisher.popen is not None and publisher.popen.poll() is None:
                with publisher.log_path.open("rb") as log:
                    log.seek(begins)
                    if f"FAULT-PAUSE {point}".encode() in log.read():
                        reached = True
                        break
                time.sleep(0.05)
            assert publisher.popen is not None
            publisher.popen.send_signal(signal.SIGKILL)
            publisher.popen.wait(timeout=30)
            publisher.start()
            publisher.suspended = False
        what = f"SIGKILL publish {point.replace('_', ' ')}"
        if reached:
            self.report.faults[what] += 1
            say(f"{what} (the hook announced it); restarted")
        else:
            self.report.faults[f"{what}: point not reached in 180 s"] += 1
            say(f"{what}: the publisher did not reach the point in 180 s; restarted")

    # ------------------------------------------------------------ server restarts
    def maybe_restart_servers(self, progress: float) -> None:
        if self.kafka_restart_at is not None and progress >= self.kafka_restart_at:
            self.kafka_restart_at = None
            self.kafka_thread = threading.Thread(target=self.restart_kafka, name="kafka-restart", daemon=True)
            self.kafka_thread.start()
        if self.pg_restart_at is not None and progress >= self.pg_restart_at:
            self.pg_restart_at = None
            if self.kafka_thread is not None:
                self.kafka_thread.join(timeout=300)
            self.restart_postgres()

    def fault(self, what: str) -> None:
        """A server fault, said and kept in the report's timeline with its time."""
        self.report.timeline.append(f"{time.strftime('%H:%M:%S')} +{time.monotonic() - self.started:6.1f}s  {what}")
        say(what)

    def restart_kafka(self) -> None:
        """In the background, while the feed is produced and consumed: broker stopped, away a while, started."""
        from infra import stack

        if self.cluster:
            return self.break_kafka_cluster()
        try:
            t0 = time.monotonic()
            say("Kafka broker: stopping (records are being produced and consumed)")
            stack.stop_kafka(self.cfg)
            time.sleep(self.kafka_down_for)
            stack.up(self.cfg)
            self.report.faults["Kafka broker restart"] += 1
            self.report.seconds["kafka_restart"] = round(time.monotonic() - t0, 1)
            say(f"Kafka broker: up again after {time.monotonic() - t0:.1f} s")
        except BaseException as e:  # noqa: BLE001 - reported by check_time
            self.kafka_error = e

    def break_kafka_cluster(self) -> None:
        """Cluster mode: SIGKILL the leader of tax.payments.v1 partition 0; while it is down, stop a second
        broker (one left: acks=all cannot be met, the producers block); then both are started again."""
        from kafka import KafkaAdminClient

        from infra import cluster

        try:
            t0 = time.monotonic()
            admin = KafkaAdminClient(bootstrap_servers=self.services["KAFKA_BOOTSTRAP_SERVERS"])
            try:
                parts = admin.describe_topics(["tax.payments.v1"])[0]["partitions"]
            finally:
                admin.close()
            leader = next(p["leader_id"] for p in parts if p["partition_index"] == 0)
            pid = cluster.stop_kafka_node(self.cfg, leader, sig=signal.SIGKILL)
            self.fault(f"Kafka: SIGKILL kafka-{leader} (pid {pid}), leader of tax.payments.v1-0")
            self.report.faults["Kafka: SIGKILL of the partition leader broker"] += 1
            time.sleep(self.kafka_down_for)
            second = next(n for n in range(1, cluster.BROKERS + 1) if n != leader)
            cluster.stop_kafka_node(self.cfg, second)
            self.fault(f"Kafka: kafka-{second} stopped while kafka-{leader} is down: one broker of three left "
                       "(min.insync.replicas 2: producers block)")
            self.report.faults["Kafka: second broker stopped while the first is down"] += 1
            time.sleep(self.kafka_down_for)
            cluster.up(self.cfg)
            self.fault(f"Kafka: kafka-{leader} and kafka-{second} up again after {time.monotonic() - t0:.1f} s")
            self.report.faults["Kafka: both brokers restarted"] += 1
            self.report.seconds["kafka_outage"] = round(time.monotonic() - t0, 1)
        except BaseException as e:  # noqa: BLE001 - reported by check_time
            self.kafka_error = e

    def fail_over_postgres(self) -> None:
        """Cluster mode: SIGKILL the primary's postmaster while the consumers work; `failover` promotes the
        standby and the old primary rejoins as the new standby (pg_rewind)."""
        from infra import cluster

        t0 = time.monotonic()
        old = cluster.load_state(self.cfg).primary
        pid = cluster.kill_pg_node(self.cfg, old)
        self.fault(f"PostgreSQL: SIGKILL of the primary {old} (postmaster pid {pid}) while the consumers work")
        self.report.faults["PostgreSQL: SIGKILL of the primary"] += 1
        time.sleep(self.pg_down_for)
        done = cluster.failover(self.cfg)
        self.fault(f"PostgreSQL: {done['promoted']} promoted (pg_ctl promote) {done['promoted_after_s']} s into "
                   f"`failover`; {done['rejoined']} rejoined as its standby by {done['rejoined_by']} after "
                   f"{done['rejoined_after_s']} s")
        self.report.faults["PostgreSQL: standby promoted"] += 1
        self.report.faults["PostgreSQL: old primary rejoined as standby"] += 1
        self.report.seconds["postgres_failover"] = round(time.monotonic() - t0, 1)

    def restart_postgres(self) -> None:
        """While the consumers work on the run just produced: PostgreSQL crashed (immediate), then started."""
        from infra import stack

        if self.cluster:
            return self.fail_over_postgres()
        t0 = time.monotonic()
        say("PostgreSQL: crashing it (pg_ctl stop -m immediate) while the consumers work")
        stack.stop_postgres(self.cfg, mode="immediate")
        time.sleep(self.pg_down_for)
        stack.up(self.cfg)
        self.report.faults["PostgreSQL crash + restart"] += 1
        self.report.seconds["postgres_restart"] = round(time.monotonic() - t0, 1)
        say(f"PostgreSQL: up again after {time.monotonic() - t0:.1f} s")

    def check_time(self) -> None:
        if self.kafka_error is not None:
            raise NotConverged(f"restarting the broker failed: {self.kafka_error}")
        if time.monotonic() - self.started > self.size.timeout:
            raise NotConverged(f"the run took longer than {self.size.timeout:.0f} s")

    # ------------------------------------------------------------ convergence
    def converge(self) -> None:
        """Every kill done, every event published, both view stores at the end of their sources."""
        from kafka import KafkaConsumer, TopicPartition

        if self.kafka_thread is not None:
            self.kafka_thread.join(timeout=300)
        recorder = self.system.ledger.recorder
        publisher_position = f"publisher:{EVENTS_TOPIC}"
        end_consumer = KafkaConsumer(bootstrap_servers=self.services["KAFKA_BOOTSTRAP_SERVERS"],
                                     enable_auto_commit=False)
        parts = [TopicPartition(EVENTS_TOPIC, p) for p in range(partitions(EVENTS_TOPIC))]
        deadline = time.monotonic() + 600
        status = ""
        try:
            while True:
                self.supervisor.tick()
                self.check_time()

                def state() -> tuple[bool, str]:
                    last = recorder.max_notification_id() or 0
                    published = recorder.max_tracking_id(publisher_position) or 0
                    log_views = view_positions(self.pg, LEDGER_SCHEMA, "log")
                    ends = {tp.partition: off - 1 for tp, off in end_consumer.end_offsets(parts).items()}
                    kafka_views = view_positions(self.pg, KAFKA_VIEWS_SCHEMA, f"kafka:{EVENTS_TOPIC}")
                    done = (published >= last and log_views.get(0, -1) >= last and all(
                        kafka_views.get(p, -1) >= end for p, end in ends.items() if end >= 0))
                    return done, (f"notifications {last}, published up to {published}, log views at "
                                  f"{log_views}, kafka views at {kafka_views} of {ends}, "
                                  f"kills pending {self.supervisor.kills_pending()}")

                done, status = retrying("reading how far everything got", state, tick=self.supervisor.tick)
                if done and not self.supervisor.kills_pending():
                    # Published up to the end: the Kafka views must reach the topic's end as it is now.
                    done, status = retrying("reading how far everything got", state, tick=self.supervisor.tick)
                    if done:
                        break
                if time.monotonic() > deadline:
                    raise NotConverged(f"not converged within 600 s after the feed: {status}")
                time.sleep(0.2)
        finally:
            end_consumer.close()
        say(f"converged: {status}")

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.supervisor.stop()
        if getattr(self, "transfer_halves", None) is not None:
            self.report.faults["SIGKILL ledger clerk transfer-out|in (between the two halves)"] += \
                self.transfer_halves.counts["SIGKILLed"]
        for p in self.supervisor.procs:
            self.report.faults[f"SIGKILL {p.name}"] += p.kills
            self.report.exits[p.name] = list(p.exits)


def partitions(topic: str) -> int:
    """The partitions infra/topics.toml declares for ``topic``."""
    from infra.topics import declared_partitions

    return declared_partitions(topic)


def view_positions(pg: dict[str, str], schema: str, source: str) -> dict[int, int]:
    """Where a view store's entitlement projection is, per partition (read afresh: the server restarts)."""
    import psycopg

    # POSTGRES_PORT is a list in cluster mode ("p1,p2"): the primary of the two is the one to read.
    with psycopg.connect(host=pg["POSTGRES_HOST"], port=pg["POSTGRES_PORT"], dbname=pg["POSTGRES_DBNAME"],
                         user=pg["POSTGRES_USER"], password=pg["POSTGRES_PASSWORD"], connect_timeout=5,
                         options=f"-c search_path={schema}", target_session_attrs="read-write") as conn:
        try:
            rows = conn.execute("SELECT source_partition, position FROM view_positions "
                                "WHERE projection = 'entitlement' AND source = %s", (source,)).fetchall()
        except psycopg.errors.UndefinedTable:
            return {}
    return {int(p): int(pos) for p, pos in rows}


def run(size: str = "small", seed: int = 20251122, *, keep: bool = False, cluster: bool = False) -> RunReport:
    """The whole suite; the private stack is stopped and removed at the end, also on failure."""
    from infra import stack
    from ledger.log import configure_logging

    from tests.faults import checks

    configure_logging(level="ERROR", force=True)  # the report is the output; the processes log to files
    workdir = Path(tempfile.mkdtemp(prefix="ledger-faults-"))
    fault_run = FaultRun(size, seed, workdir, cluster=cluster)
    report = fault_run.report
    say(f"size {size} ({SIZES[size].people:,} people, {SIZES[size].kills} kills per process, burst "
        f"{SIZES[size].burst:,}), seed {seed}; work dir {workdir}"
        + ("; cluster: 3 Kafka brokers, PostgreSQL primary + synchronous standby" if cluster else ""))
    try:
        fault_run.start_stack()
        fault_run.build()
        fault_run.supervisor.start()
        say("processes started: " + ", ".join(p.name for p in fault_run.supervisor.procs))
        t0 = time.monotonic()
        fault_run.feed()
        report.seconds["feed"] = round(time.monotonic() - t0, 1)
        t0 = time.monotonic()
        fault_run.converge()
        report.seconds["converge"] = round(time.monotonic() - t0, 1)
        fault_run.finish()
        t0 = time.monotonic()
        report.checks, report.figures = checks.run_checks(fault_run)
        report.seconds["checks"] = round(time.monotonic() - t0, 1)
    except NotConverged as e:
        report.error = f"NOT CONVERGED: {e}"
    except Exception as e:  # noqa: BLE001 - reported, and the stack is still removed
        import traceback

        report.error = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
    finally:
        try:
            if getattr(fault_run, "supervisor", None) is not None:
                fault_run.finish()
            if getattr(fault_run, "system", None) is not None:
                fault_run.system.close()
            if getattr(fault_run, "producer", None) is not None:
                fault_run.producer.close(timeout=5)
        finally:
            if report.error:
                print_logs(fault_run)
            if getattr(fault_run, "cfg", None) is not None:
                if cluster:
                    from infra import cluster as cluster_mode

                    cluster_mode.clean(fault_run.cfg)
                else:
                    stack.clean(fault_run.cfg)
            if not keep:
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                say(f"logs kept in {workdir / 'logs'}")
        report.seconds["total"] = round(time.monotonic() - fault_run.started, 1)
    return report


def print_logs(fault_run: FaultRun) -> None:
    supervisor = getattr(fault_run, "supervisor", None)
    for p in supervisor.procs if supervisor else ():
        try:
            lines = p.log_path.read_text(errors="replace").splitlines()[-15:]
        except OSError:
            continue
        print(f"==> {p.name} ({p.log_path.name}), last lines <==", flush=True)
        print("\n".join(lines), flush=True)
