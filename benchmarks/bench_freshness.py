"""Benchmark: how fresh the views are -- from a payment produced to Kafka to the entitlement view (issue 19).

    source /tmp/stack.env        # or: eval "$(.venv/bin/python -m infra env)"; with neither, the local stack is started
    .venv/bin/python benchmarks/bench_freshness.py               # 1,000 payments/s for 30 s, a burst of 20,000, catch-up 10,000
    .venv/bin/python benchmarks/bench_freshness.py --quick       # 200 payments/s for 10 s, a burst of 2,000, catch-up 1,000
    .venv/bin/python benchmarks/bench_freshness.py --rate 500 --seconds 20 --burst 10000 --json /tmp/f.json

The production processes, each an OS process of its own, on the real Kafka broker and PostgreSQL, in a
schema and under a topic prefix of this run's own (dropped and deleted at the end):
``ledger consume tax`` x ``--consumers`` (2; one consumer group), ``ledger publish`` and
``ledger project --follow`` (the views, from the ledger's notification log).

1. **Setup** (not timed): every person of the run pays 2024 and are assessed for 2025
   (``bench_kafka_pipeline.setup_renewals``, the pipeline bench's ``renewals``), so every payment
   lands on a known person; the views are rebuilt (``ledger project --rebuild --workers 1``; its rate is
   printed as a baseline of the run); the processes start and the consumers' group settles;
   ``--warmup`` payments go through and the clock starts only once the views show them.
2. **Steady**: ``--rate`` payments/s for ``--seconds``, paced by a thread of this process
   (pre-encoded Avro, one 2025 payment per person); then wait until the views have caught up.
3. **Burst**: ``--burst`` payments as fast as the producer sends them; wait until caught up.
4. **Catch-up**: the follower is stopped (SIGSTOP) while ``--catch-up`` payments go into the ledger,
   then let go (SIGCONT): its rate on a backlog, which the burst does not show once the follower is
   faster than the consumers.

**What is measured.** Every ``--poll-ms`` (20 ms) one SQL statement -- one snapshot -- reads the
entitlement view's stored position in the ledger's notification log (``view_positions``, written in
the same transaction as the rows) and, for ``--sample`` persons spread over both phases, whether their
2025 row of ``view_entitlement_years`` holds the payment. After the run each payment is mapped to the
notification id of its ``ContributionPaid`` event (``ledger_events``); it **became visible** at the
first poll whose position reached that id. Its **delay** is that poll's time (taken when the statement
returned: an upper bound, late by at most one poll) minus the time this process called
``producer.send`` for it. Also printed: the same delay measured to the ``updated_at`` the projector
stored with the position (its clock when it began that write: a lower bound).

* ``steady_p50_s`` / ``steady_p95_s``: percentiles (linear interpolation) of the steady payments' delays;
* ``burst_drain_s``: from the burst's last ``send`` call to the poll that saw every burst payment's event
  in the view;
* ``incremental_ev_s``: person events/s the follower projected during the burst while busy (its own
  ``views_caught_up`` log lines after the burst began: events / seconds of its catch-up runs); while it
  keeps up with the consumers it is bounded by their rate, printed beside it, as is the catch-up rate.

**Cross-check.** For each sampled person the poll at which its row showed the payment must be the poll
at which the position reached its event (same statement, same snapshot, rows and position committed
together): any difference is printed and the script exits 1 (after its last line).

Raw figures of the same run: the rebuild rate, the consumers', the publisher's and the views' throughput
over the burst, the CPU per payment of every process (``/proc``), the load average at the start and the
end and a machine speed probe. The machine is shared: compare runs by the CPU figures and the load.
``--json FILE`` writes the figures for ``run_all.py``. The last line is always
``freshness steady_p50_s=... steady_p95_s=... burst_drain_s=... incremental_ev_s=...``.
"""
from __future__ import annotations

import argparse
import bisect
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import connect, dedicated_schema, figure, machine_speed, pg_settings, proc_cpu, write_json  # noqa: E402

from bench_kafka_pipeline import (  # noqa: E402
    GROUP,
    PARTITIONS,
    broker_pid,
    check_alive,
    encoded_payments,
    group_ready,
    id_number,
    kafka_bootstrap,
    pipeline_env,
    pipeline_system,
    setup_renewals,
)
from consumers.feed_consumer import position_name  # noqa: E402

YEAR = 2025
AMOUNT_FEN = 40000  # bench_kafka_pipeline.payment()'s amount
PAID_TOPIC = "ledger.domain.person:Person.ContributionPaid"
PERSON_TOPICS = "ledger.domain.person:%"
GOALS = {"steady_p95_s": 1.0, "burst_drain_s": 4.0, "incremental_ev_s": 15_000.0}
QUICK = {"rate": 200.0, "seconds": 10.0, "burst": 2_000, "catch_up": 1_000}
DEFAULT = {"rate": 1_000.0, "seconds": 30.0, "burst": 20_000, "catch_up": 10_000}


# --------------------------------------------------------------------------- the arithmetic (pure; tests/unit)
def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between the closest ranks; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = q * (len(ordered) - 1)
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def first_polls(targets: Sequence[int | None], positions: Sequence[int]) -> list[int | None]:
    """Per target position, the index of the first poll whose position reached it (None: none did).

    ``positions``: the view's position at each poll, in poll order. A stored position never goes back;
    should a poll read a lower one, the running maximum is used (it was reached before)."""
    reached: list[int] = []
    high = None
    for p in positions:
        high = p if high is None or p > high else high
        reached.append(high)
    out: list[int | None] = []
    for target in targets:
        if target is None:
            out.append(None)
            continue
        i = bisect.bisect_left(reached, target)
        out.append(i if i < len(reached) else None)
    return out


def delays(sent: Sequence[float], targets: Sequence[int | None], polls: Sequence[tuple[float, int]]) -> list[float | None]:
    """Per payment: the time of the first poll (``(time, position)``) whose position reached its event's
    notification id, minus the time it was sent; None when no poll saw it."""
    firsts = first_polls(targets, [p for _, p in polls])
    return [None if i is None else polls[i][0] - s for s, i in zip(sent, firsts)]


def drain_seconds(last_send: float, targets: Sequence[int], polls: Sequence[tuple[float, int]]) -> float | None:
    """From ``last_send`` to the first poll whose position reached every one of ``targets`` (None: none did)."""
    if not targets:
        return None
    (i,) = first_polls([max(targets)], [p for _, p in polls])
    return None if i is None else polls[i][0] - last_send


def disagreements(position_polls: Mapping[str, int | None], row_polls: Mapping[str, int | None]) -> list[tuple[str, int | None, int | None]]:
    """Sampled persons whose row showed the payment at another poll than the one whose position reached its
    event: ``(person, position poll, row poll)``. Rows and position are written in one transaction and read
    in one statement, so the two must be the same poll."""
    return [(key, position_polls.get(key), row_polls.get(key))
            for key in sorted(set(position_polls) | set(row_polls)) if position_polls.get(key) != row_polls.get(key)]


def follower_rate(log_text: str) -> tuple[int, float]:
    """(person events, seconds) of the follower's catch-up runs in this part of its log (``views_caught_up``
    JSON lines, written by ``ProjectionRunner.run_once`` after each run that applied something)."""
    events, seconds = 0, 0.0
    for line in log_text.splitlines():
        if '"views_caught_up"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        events += int(entry.get("events", 0))
        seconds += float(entry.get("seconds", 0.0))
    return events, seconds


def last_line(steady_p50: float | None, steady_p95: float | None, burst_drain: float | None,
              incremental: float | None) -> str:
    def f(v: float | None, digits: int) -> str:
        return "nan" if v is None or v != v else f"{v:.{digits}f}"
    return (f"freshness steady_p50_s={f(steady_p50, 2)} steady_p95_s={f(steady_p95, 2)} "
            f"burst_drain_s={f(burst_drain, 2)} incremental_ev_s={f(incremental, 0)}")


# --------------------------------------------------------------------------- the run
@dataclass
class Poll:
    t: float  # time.time() when the statement returned
    position: int  # the entitlement view's position in the notification log (0: none yet)
    written_at: float  # its updated_at (the projector's clock when it began that write), NaN if none
    rows: list[str] = field(default_factory=list)  # sampled persons newly seen paid in this snapshot


@dataclass
class Pipeline:
    t: float
    consumed: int  # payments consumed (sum over partitions of the stored offset + 1)
    published: int  # the publisher's stored position (notification id)
    log_end: int  # the ledger's highest notification id


class Watch:
    """Polls the view store's position (with sampled rows, in one statement) and the pipeline's positions."""

    def __init__(self, conn: Any, topic: str, events_topic: str, poll_s: float) -> None:
        from projections.store import ENTITLEMENT, POSITIONS, YEARS

        self.conn = conn
        self.poll_s = poll_s
        self.polls: list[Poll] = []
        self.pipeline: list[Pipeline] = []
        self.waiting: set[str] = set()  # sampled persons not seen paid yet
        self.row_polls: dict[str, int] = {}
        self.view_sql = (
            f"SELECT 'v', NULL, position, extract(epoch FROM updated_at)::float8 FROM {POSITIONS.name} "
            f"WHERE projection = '{ENTITLEMENT}' AND source = 'log' AND source_partition = 0 "
            f"UNION ALL SELECT 'r', person_id, NULL, NULL FROM {YEARS.name} "
            f"WHERE year = {YEAR} AND net_paid_fen >= {AMOUNT_FEN} AND person_id = ANY(%s::text[])")
        # Exactly these names: the consumers also track e.g. "<position>:dead-lettered" under the same prefix.
        self.consumer_names = {position_name(GROUP, topic, p) for p in range(PARTITIONS)}
        self.publisher_name = f"publisher:{events_topic}"

    def tick(self, with_pipeline: bool = True) -> Pipeline | None:
        rows = self.conn.execute(self.view_sql, (sorted(self.waiting),)).fetchall()
        t = time.time()
        position, written = 0, float("nan")
        seen = []
        for kind, person, pos, at in rows:
            if kind == "v":
                position, written = int(pos), float(at)
            else:
                seen.append(person)
        for person in seen:
            self.waiting.discard(person)
            self.row_polls[person] = len(self.polls)
        self.polls.append(Poll(t, position, written, seen))
        if not with_pipeline:
            return None
        tracking = self.conn.execute(
            "SELECT application_name, max(notification_id) FROM ledger_tracking GROUP BY application_name").fetchall()
        (end,) = self.conn.execute("SELECT coalesce(max(notification_id), 0) FROM ledger_events").fetchone()
        consumed = sum(1 + int(n) for name, n in tracking if name in self.consumer_names)
        published = max((int(n) for name, n in tracking if name == self.publisher_name), default=0)
        sample = Pipeline(time.time(), consumed, published, int(end))
        self.pipeline.append(sample)
        return sample

    def until_caught_up(self, consumed: int, *, producing: threading.Thread | None, procs: list, logs: list,
                        timeout: float, label: str, publisher: bool = True, views: bool = True) -> float:
        """Poll until ``consumed`` payments are in the ledger and the views (and, with ``publisher``, the
        publisher) have reached the log's end as it stood then; returns the time of that poll. Without
        ``views``: only until the payments are in the ledger (and published)."""
        started = last_report = time.time()
        target = None
        n = 0
        while True:
            sample = self.tick(with_pipeline=n % 5 == 0 or target is None)
            n += 1
            now = time.time()
            if sample is not None and sample.consumed > consumed:
                raise SystemExit(f"{label}: the consumers' positions count {sample.consumed:,} payments, "
                                 f"{consumed:,} were sent: the bench miscounts")
            if sample is not None and target is None and sample.consumed >= consumed and (
                    producing is None or not producing.is_alive()):
                target = sample.log_end
            last = self.pipeline[-1] if self.pipeline else None
            if target is not None and (not views or self.polls[-1].position >= target) and (
                    not publisher or (last is not None and last.published >= target)):
                return now
            check_alive(procs, logs)
            if now - started > timeout:
                raise SystemExit(f"{label}: not caught up after {timeout:.0f} s (consumed "
                                 f"{last.consumed if last else 0:,} of {consumed:,}, views at "
                                 f"{self.polls[-1].position:,}, log end {last.log_end if last else 0:,})")
            if now - last_report > float(os.environ.get("BENCH_REPORT_S", "10")) and last is not None:
                print(f"  ... {label} {now - started:4.0f} s: consumed {last.consumed:,}, views at "
                      f"{self.polls[-1].position:,} of {last.log_end:,}, published {last.published:,} "
                      f"(load {_load()})", flush=True)
                last_report = now
            time.sleep(max(0.0, self.poll_s - (time.time() - now)))


def send_paced(producer: Any, topic: str, records: Sequence[tuple[bytes, bytes]], rate: float | None,
               sent: list[float]) -> None:
    """Send ``records`` at ``rate`` per second (None: as fast as possible), noting each one's send time."""
    start = time.time()
    for k, (key, value) in enumerate(records):
        if rate:
            ahead = start + k / rate - time.time()
            if ahead > 0:
                time.sleep(ahead)
        sent.append(time.time())
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=300)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)  # the follower may be stopped (catch-up phase)
            p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@dataclass
class Phase:
    name: str
    first: int  # index of its first person
    n: int
    rate: float | None
    sent: list[float] = field(default_factory=list)
    started: float = 0.0  # time.time() of the first send
    flushed: float = 0.0  # every payment acknowledged by the broker
    caught_up: float = 0.0  # the poll that saw the views (and the publisher) at the log's end
    cpu: dict[str, float] = field(default_factory=dict)
    log_from: int = 0  # the follower's log size when it began
    resumed: float = 0.0  # catch-up: when the follower was let go on the backlog
    backlog: tuple[int, int] = (0, 0)  # catch-up: the view's position then, and the log's end


def run(args: argparse.Namespace, pg: dict[str, str], servers: str) -> int:
    from consumers.kafka_io import make_producer
    from infra.topics import delete_topics, ensure_topics

    warm = Phase("warm-up", 0, args.warmup, None)
    steady = Phase("steady", args.warmup, int(round(args.rate * args.seconds)), args.rate)
    burst = Phase("burst", steady.first + steady.n, args.burst, None)
    catch_up = Phase("catch-up", burst.first + burst.n, args.catch_up, None)
    people = catch_up.first + catch_up.n
    prefix = f"fresh{uuid.uuid4().hex[:8]}."
    ensure_topics(servers, prefix)
    topic, events_topic = prefix + "tax.payments.v1", prefix + "ledger.events.v1"
    procs: list[subprocess.Popen] = []
    logs: list[Any] = []
    try:
        with dedicated_schema(pg, "bench_fresh") as schema:
            env = pipeline_env(pg, schema, servers, prefix)
            system = pipeline_system(pg, schema, servers, prefix)
            try:
                ledger = system.ledger
                print(f"setup: {people:,} persons pay {YEAR - 1} and are assessed for {YEAR} ...", flush=True)
                setup_s = setup_renewals(system, people)
                setup_end = ledger.recorder.max_notification_id() or 0
                from eventsourcing.persistence import Tracking

                # Last year's events were published last year: the publisher starts after them.
                ledger.recorder.insert_tracking(Tracking(f"publisher:{events_topic}", setup_end))
                print(f"  {setup_s:.1f} s, {setup_end:,} notifications (load {_load()})", flush=True)
                records = encoded_payments(people, YEAR)
                cli = [sys.executable, "-m", "entrypoints.cli"]
                t0 = time.perf_counter()
                # One worker: with 2, the workers race to write view_meta's layout into the empty live store of a
                # fresh schema (UniqueViolation view_meta_pkey, projections.factory._rebuild_shard; seen 1 run in 2).
                rebuilt = subprocess.run(cli + ["project", "--rebuild", "--workers", "1", "--quiet", "--json"], env=env,
                                         capture_output=True, text=True, timeout=args.timeout)
                if rebuilt.returncode:
                    raise SystemExit(f"ledger project --rebuild failed:\n{rebuilt.stdout[-2000:]}{rebuilt.stderr[-2000:]}")
                rebuild = json.loads(rebuilt.stdout)
                print(f"  views rebuilt (ledger project --rebuild, {rebuild.get('events', 0):,} person events) in "
                      f"{time.perf_counter() - t0:.1f} s with start-up; {rebuild.get('events_per_second', 0):,} person "
                      f"events/s by its own count", flush=True)

                consume = ["consume", "tax", "--group", GROUP, "--max-records", str(args.max_records)]
                commands = [cli + consume for _ in range(args.consumers)] + [cli + ["publish"]] + \
                    [cli + ["project", "--follow", "--quiet", "--json"]]
                roles = [f"consumer-{i}" for i in range(args.consumers)] + ["publisher", "projector"]
                log_dir = os.environ.get("BENCH_LOG_DIR")
                logs = [open(f"{log_dir}/{role}.log", "w+b") if log_dir else tempfile.TemporaryFile() for role in roles]
                tag = f"bench-fresh-{uuid.uuid4().hex[:6]}"
                procs = [subprocess.Popen(c, env={**env, "PGAPPNAME": f"{tag}-{role}"}, stdout=log,
                                          stderr=subprocess.STDOUT) for c, role, log in zip(commands, roles, logs)]
                broker = broker_pid()
                started = time.time()
                while not group_ready(logs[:-1], args.consumers):
                    check_alive(procs, logs)
                    if time.time() - started > args.timeout:
                        raise SystemExit(f"the processes were not ready after {args.timeout:.0f} s")
                    time.sleep(0.05)
                print(f"  processes ready after {time.time() - started:.1f} s (not timed)", flush=True)

                def cpu_now() -> dict[str, float]:
                    out = {role: proc_cpu(p.pid) for role, p in zip(roles, procs)}
                    out["consumers"] = sum(out.pop(f"consumer-{i}") for i in range(args.consumers))
                    out["broker"] = proc_cpu(broker) if broker else float("nan")
                    out["this process"] = time.process_time()
                    return out

                producer = make_producer(servers, linger_ms=args.linger_ms, batch_size=256 * 1024)
                producer.partitions_for(topic)
                with connect(pg, schema, autocommit=True) as conn:
                    watch = Watch(conn, topic, events_topic, args.poll_ms / 1000)
                    pids = [str(ledger.person_id("RESIDENT_ID", id_number(i))) for i in range(people)]
                    step = max(1, (steady.n + burst.n) // max(1, args.sample))
                    sampled = {pids[i] for i in range(steady.first, people, step)}
                    watch.waiting = set(sampled)
                    consumed = 0
                    for phase in (warm, steady, burst, catch_up):
                        if not phase.n:
                            continue
                        part = records[phase.first:phase.first + phase.n]
                        time.sleep(1.0)  # not timed: the follower logs its last catch-up of the previous phase
                        phase.log_from = os.fstat(logs[-1].fileno()).st_size
                        cpu_before = cpu_now()
                        what = (f"{phase.rate:,.0f} payments/s for {phase.n / phase.rate:.0f} s" if phase.rate
                                else "as fast as the producer sends")
                        if phase is catch_up:
                            what += "; the follower stopped (SIGSTOP) until they are all in the ledger"
                            procs[-1].send_signal(signal.SIGSTOP)
                        print(f"\n== {phase.name}: {phase.n:,} payments, {what} (load {_load()})", flush=True)
                        producing = threading.Thread(target=send_paced, daemon=True,
                                                     args=(producer, topic, part, phase.rate, phase.sent))
                        producing.start()
                        consumed += phase.n
                        if phase is catch_up:
                            watch.until_caught_up(consumed, producing=producing, procs=procs, logs=logs,
                                                  timeout=args.timeout, label=f"{phase.name} (follower stopped)",
                                                  views=False)
                            watch.tick()
                            phase.backlog = (watch.polls[-1].position, watch.pipeline[-1].log_end)
                            phase.resumed = time.time()
                            procs[-1].send_signal(signal.SIGCONT)
                        phase.caught_up = watch.until_caught_up(consumed, producing=producing, procs=procs, logs=logs,
                                                                timeout=args.timeout, label=phase.name)
                        producing.join()
                        phase.started = phase.sent[0]
                        phase.cpu = {k: v - cpu_before[k] for k, v in cpu_now().items()}
                        print(f"  sent in {phase.sent[-1] - phase.sent[0]:.2f} s, caught up "
                              f"{phase.caught_up - phase.sent[-1]:.2f} s after the last send (load {_load()})",
                              flush=True)
                    producer.close()
                    paid = dict(conn.execute(
                        "SELECT originator_id::text, notification_id FROM ledger_events WHERE notification_id > %s "
                        "AND topic = %s", (setup_end, PAID_TOPIC)).fetchall())

                    def person_events(lo: int, hi: int) -> int:
                        return conn.execute("SELECT count(*) FROM ledger_events WHERE notification_id > %s AND "
                                            "notification_id <= %s AND topic LIKE %s",
                                            (lo, hi, PERSON_TOPICS)).fetchone()[0]

                    _stop(procs)  # the follower's last lines are written by then
                    follower_log = os.pread(logs[-1].fileno(), os.fstat(logs[-1].fileno()).st_size, 0)
                    return report(args, watch, (warm, steady, burst, catch_up), pids, paid, sampled, person_events,
                                  follower_log, rebuild)
            finally:
                _stop(procs)
                for log in logs:
                    log.close()
                system.close()
    finally:
        try:
            delete_topics(servers, prefix)
        except Exception:  # noqa: BLE001 - best effort
            pass


def report(args: argparse.Namespace, watch: Watch, phases: Sequence[Phase], pids: Sequence[str],
           paid: Mapping[str, int], sampled: Iterable[str], person_events: Any, follower_log: bytes,
           rebuild: Mapping[str, Any]) -> int:
    """Print the figures (``follower_log``: the follower's whole output); 1 if a check failed."""
    polls = [(p.t, p.position) for p in watch.polls]
    written = [(p.written_at, p.position) for p in watch.polls]
    warm, steady, burst, catch_up = phases
    failed = []
    out: dict[str, dict[str, float | None]] = {}
    print(f"\nper payment, produce (send call) -> entitlement view; {len(watch.polls):,} polls, every "
          f"{args.poll_ms} ms asked, {_mean_gap(watch.polls) * 1000:.0f} ms apart on average:")
    for phase in (steady, burst):
        if not phase.n:
            continue
        targets = [paid.get(pids[i]) for i in range(phase.first, phase.first + phase.n)]
        missing = sum(1 for t in targets if t is None)
        if missing:
            failed.append(f"{missing:,} {phase.name} payments have no ContributionPaid event in the ledger")
        seen = [d for d in delays(phase.sent, targets, polls) if d is not None]
        lower = [d for d in delays(phase.sent, targets, written) if d is not None]
        drain = drain_seconds(phase.sent[-1], [t for t in targets if t is not None], polls)
        out[phase.name] = {"p50": percentile(seen, 0.5), "p95": percentile(seen, 0.95), "max": max(seen, default=None),
                           "drain": drain}
        # When the consumers had them all in the ledger (the pipeline's positions, every few polls): how much of
        # the delay is theirs.
        in_ledger = next((x.t for x in watch.pipeline if x.consumed >= phase.first + phase.n), float("nan"))
        print(f"  {phase.name:6s} {len(seen):>7,} payments: p50 {percentile(seen, 0.5):6.2f} s, p95 "
              f"{percentile(seen, 0.95):6.2f} s, max {max(seen, default=float('nan')):6.2f} s; to the write's "
              f"updated_at: p50 {percentile(lower, 0.5):6.2f} s, p95 {percentile(lower, 0.95):6.2f} s; all in the "
              f"view {drain if drain is not None else float('nan'):.2f} s after the last send (all in the ledger "
              f"{in_ledger - phase.sent[-1]:.2f} s after it)")

    # The cross-check: sampled rows against the position, poll by poll.
    sampled = sorted(sampled)
    targets = [paid.get(pid) for pid in sampled]
    position_polls = dict(zip(sampled, first_polls(targets, [p for _, p in polls])))
    row_polls = {pid: watch.row_polls.get(pid) for pid in sampled}
    wrong = disagreements(position_polls, row_polls)
    print(f"\ncross-check: {len(sampled)} sampled persons' 2025 entitlement rows (view_entitlement_years.net_paid_fen) "
          f"showed the payment at the poll whose position reached its event: {len(sampled) - len(wrong)} agree, "
          f"{len(wrong)} disagree")
    for pid, at_position, at_row in wrong[:10]:
        print(f"  person {pid}: position reached at poll {at_position}, row seen at poll {at_row}")
    if wrong:
        failed.append(f"{len(wrong)} sampled rows disagree with the stored position")

    # The raw figures of the burst: who did how much, how fast.
    b0 = next((s for s in reversed(watch.pipeline) if s.t <= burst.started), watch.pipeline[0])
    b1 = next((s for s in reversed(watch.pipeline) if s.t <= burst.caught_up), watch.pipeline[-1])  # all in
    projected = person_events(b0.log_end, b1.log_end)
    consumers_done = next((s.t for s in watch.pipeline if s.t >= burst.started and s.consumed >= b1.consumed), None)
    published_done = next((s.t for s in watch.pipeline if s.t >= burst.started and s.published >= b1.log_end), None)
    views_done = out.get("burst", {}).get("drain")
    views_at = None if views_done is None else burst.sent[-1] + views_done
    # The follower's burst lines: those after the phase began (the steady phase had drained a second before)
    # and before the catch-up began (the views had caught up with the burst a second before that).
    events, busy = follower_rate(follower_log[burst.log_from:catch_up.log_from if catch_up.n else None]
                                 .decode(errors="replace"))
    incremental = events / busy if busy > 0 else None
    print(f"\nraw figures of the burst ({burst.n:,} payments, {projected:,} person events; from the first send):")
    print(f"  producer (this process)  {burst.n / max(1e-9, burst.sent[-1] - burst.sent[0]):>9,.0f} payments/s sent")
    for label, done, count, unit in (("consumers (2 processes)" if args.consumers == 2 else "consumers", consumers_done,
                                      burst.n, "payments/s into the ledger"),
                                     ("publisher", published_done, projected, "person events/s on ledger.events.v1"),
                                     ("views (the follower)", views_at, projected, "person events/s in the view")):
        rate = count / (done - burst.started) if done else float("nan")
        print(f"  {label:24s} {rate:>9,.0f} {unit}")
    print(f"  follower while busy      {incremental if incremental else float('nan'):>9,.0f} person events/s "
          f"({events:,} events in {busy:.2f} s of catch-up runs, its views_caught_up lines)")
    catch_up_rate = None
    if catch_up.n:
        backlog = person_events(*catch_up.backlog)
        drained = drain_seconds(catch_up.resumed, [catch_up.backlog[1]], polls)
        catch_up_rate = backlog / drained if drained else None
        own, own_s = follower_rate(follower_log[catch_up.log_from:].decode(errors="replace"))
        print(f"  follower on a backlog    {catch_up_rate if catch_up_rate else float('nan'):>9,.0f} person events/s "
              f"(catch-up phase: {backlog:,} person events waiting when let go, in the view {drained or float('nan'):.2f}"
              f" s later; by its own lines {own / own_s if own_s else float('nan'):,.0f}/s)")
    print(f"  rebuild before the run   {rebuild.get('events_per_second', 0):>9,} person events/s "
          f"(ledger project --rebuild, {rebuild.get('events', 0):,} events)")
    print("\nCPU (user + system, /proc) per payment of each phase:")
    for phase in (steady, burst, catch_up):
        if phase.n:
            parts = ", ".join(f"{k} {1e6 * v / phase.n:4.0f} µs" for k, v in phase.cpu.items())
            print(f"  {phase.name:8s} {parts}")
    if projected and burst.cpu.get("projector"):
        per = 1e6 * burst.cpu["projector"] / projected
        print(f"  the follower in the burst: {per:.0f} µs CPU per person event -> at most {1e6 / per:,.0f} events/s on "
              f"one idle core")

    steady_f, burst_f = out.get("steady", {}), out.get("burst", {})
    figures = [
        figure("steady: produce -> entitlement view, p50", steady_f.get("p50"), "s", size=steady.n,
               size_unit="payments", better="lower", kind="latency", key="steady p50"),
        figure("steady: produce -> entitlement view, p95", steady_f.get("p95"), "s", size=steady.n,
               size_unit="payments", goal=GOALS["steady_p95_s"], better="lower", kind="latency", key="steady p95"),
        figure("burst: views caught up after the last send", burst_f.get("drain"), "s", size=burst.n,
               size_unit="payments", goal=GOALS["burst_drain_s"], better="lower", kind="latency", key="burst drain"),
        figure("burst: follower's incremental projection (busy)", incremental, "person events/s", size=burst.n,
               size_unit="payments", goal=GOALS["incremental_ev_s"], baseline="copy", count=events, seconds=busy,
               key="incremental"),
    ]
    if catch_up_rate:
        figures.append(figure("catch-up: follower on a backlog", catch_up_rate, "person events/s", size=catch_up.n,
                              size_unit="payments", goal=GOALS["incremental_ev_s"], baseline="copy",
                              key="catch-up"))
    write_json(args.json, figures, loadavg_start=args.load_start)
    print(f"\n(--rate {args.rate:,.0f} --seconds {args.seconds:.0f} --burst {burst.n:,}, {args.consumers} consumers; "
          f"load average: {args.load_start} at the start, {_load()} at the end; {os.cpu_count()} cores; machine speed "
          f"probe {args.speed_start:.1f} µs at the start, {machine_speed():.1f} µs at the end)")
    for message in failed:
        print(f"FAILED: {message}")
    print(last_line(steady_f.get("p50"), steady_f.get("p95"), burst_f.get("drain"), incremental), flush=True)
    return 1 if failed else 0


def _mean_gap(polls: Sequence[Poll]) -> float:
    return (polls[-1].t - polls[0].t) / (len(polls) - 1) if len(polls) > 1 else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: 200 payments/s for 10 s, a burst of 2,000")
    ap.add_argument("--rate", type=float, help="steady payments per second (default 1,000; --quick 200)")
    ap.add_argument("--seconds", type=float, help="steady stream's length (default 30; --quick 10)")
    ap.add_argument("--burst", type=int, help="burst payments (default 20,000; --quick 2,000)")
    ap.add_argument("--catch-up", type=int, help="payments of a last phase in which the follower is stopped until "
                    "they are in the ledger, then let go: its rate on a backlog (default 10,000; --quick 1,000; 0: none)")
    ap.add_argument("--warmup", type=int, default=100, help="payments before the clock starts (default 100)")
    ap.add_argument("--consumers", type=int, default=2, help="ledger consume tax processes (default 2)")
    ap.add_argument("--max-records", type=int, default=1000, help="records per poll of each consumer")
    ap.add_argument("--poll-ms", type=float, default=20.0, help="how often the view's position is read (default 20)")
    ap.add_argument("--sample", type=int, default=200, help="persons whose rows are read for the cross-check")
    ap.add_argument("--linger-ms", type=int, default=5, help="the producer's linger (default 5)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds a phase may take to catch up")
    ap.add_argument("--json", metavar="FILE", help="write the figures for run_all.py")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else DEFAULT
    for key, value in sizes.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not 1 <= args.consumers <= PARTITIONS:
        ap.error(f"--consumers must be 1 to {PARTITIONS}")
    if args.rate <= 0 or args.seconds <= 0 or args.burst < 1 or args.warmup < 1 or args.catch_up < 0:
        ap.error("--rate and --seconds must be positive, --burst and --warmup at least 1, --catch-up not negative")
    args.load_start = _load()
    args.speed_start = machine_speed()
    print(f"load average at the start: {args.load_start} ({os.cpu_count()} cores); machine speed probe "
          f"{args.speed_start:.1f} µs (common.machine_speed: lower is faster)", flush=True)
    return run(args, pg_settings(), kafka_bootstrap())


if __name__ == "__main__":
    raise SystemExit(main())
