"""Benchmark: the whole Kafka pipeline, tax payments on Kafka -> ledger (PostgreSQL) -> ``ledger.events.v1`` (issue 4).

    eval "$(.venv/bin/python -m infra env)"      # or let the script start the local stack
    .venv/bin/python benchmarks/bench_kafka_pipeline.py [--payments 100000] [--consumers 2] [--start warm|cold] [--max-records 1000]

Two scenarios in the same run, each on a fresh ledger schema and fresh prefixed topics
(``tax.payments.v1`` with the partitions infra/topics.toml declares (6), keyed by ID number):

**(a) renewals** — the normal case of January's collection campaign (the goal applies here).
   Setup (not timed, its time is printed): ``--payments`` residents paid for 2024 through
   ``Ledger.record_tax_records`` in this process (registering and enrolling them from the
   payment) and were assessed for 2025 (缴费核定): 4 person events and a voucher index
   each, as ``bench_payments.py`` sets them up. The publisher's position is set to the end
   of that log (those events went out last year). Timed: one 2025 payment per person,
   each writes ``ContributionPaid`` and the voucher's ``SourceRecord`` (1 event to publish).

**(b) first-time payers** — every payment is from a person the ledger has never seen
   (先缴费后登记): it registers, enrolls and pays (3 person events to publish) plus the
   voucher's index event. Shown beside (a), never hidden: it costs about twice as much.

In each scenario:

1. the payments (Avro, ``cn.medins.tax.v1.TaxPayment``) are produced to the topic (setup);
2. **raw consume** (timed): a plain kafka-python ``KafkaConsumer`` reads the topic from the
   beginning (values not decoded): what the client library can do at all here;
3. **end to end** (timed, wall clock): ``--consumers`` ``ledger consume tax`` processes
   (one consumer group, at most one per partition) and one ``ledger publish`` process; the
   clock stops when the ledger's positions cover every record of the topic AND the
   publisher's stored position (written only after Kafka acknowledged) covers the last
   notification of the ledger, i.e. every person event is on ``ledger.events.v1``.
   ``--start warm`` (the default, as in production, where the consumers and the publisher
   run all day): the processes are started, their group settles, then this process
   produces the payments (pre-encoded, from a thread; on the same cores) and the clock
   starts with the first send; the CPU figures count from then. ``--start cold``: the
   payments are on the topic first and the clock starts with the processes: start-up
   (imports, group join) is inside the measurement, and in the CPU figures.
   In warm mode the raw consume (2.) is measured after the run, on the same records.

Prints one table (scenario, count, seconds, rate, goal, ratio to the raw consume of the
same topic) and, because the 2-core machine is often shared, the load average and the
CPU seconds per payment of the consumers, the publisher and their PostgreSQL backends
(from ``/proc``; ``nan`` on a remote server), which depend much less on other load than
the wall-clock rate. ``--scenarios renewals|first|both``. With ``BENCH_LOG_DIR`` set, each
process's output is kept there (``consumer-0.log``, ``publisher.log``) instead of a temporary file. ``--profile FILE`` runs the first
consumer under cProfile (``FILE.<scenario>``) and the publisher (``FILE.<scenario>.publisher``) and prints
their top functions. ``--json FILE``
writes the figures for ``run_all.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import dedicated_schema, figure, machine_speed, pg_settings, proc_cpu, write_json  # noqa: E402

from eventsourcing.persistence import Tracking  # noqa: E402
from kafka import KafkaConsumer, TopicPartition  # noqa: E402

from consumers.kafka_io import make_producer  # noqa: E402
from consumers.feed_consumer import position_name  # noqa: E402
from events.codec import encode  # noqa: E402
from events.inbound import TAX_PAYMENT, tax_record_to_avro  # noqa: E402
from infra.topics import declared_partitions, delete_topics, ensure_topics  # noqa: E402
from infra.event_store.batch_load import load_aggregates  # noqa: E402
from entrypoints.wiring import bootstrap  # noqa: E402
from infra.settings import Settings, setting, setting_text  # noqa: E402
from ledger.domain.identity import make_resident_id  # noqa: E402
from ledger.inbound_records import Provenance, TaxPaymentRecord  # noqa: E402

ID_KEY = "benchmark-identity-key"
GOAL = 5_000.0
GROUP = "bench-tax-payments"
#: The partitions infra/topics.toml declares for the payments topic (the consumers split them).
PARTITIONS = declared_partitions("tax.payments.v1")
SETUP_BATCH = 500
APP_NAME = "bench-kafka-pipeline"


def id_number(i: int) -> str:
    return make_resident_id("610902", date(1940, 1, 1) + timedelta(days=i // 400), 1 + i % 400 * 2)


def payment(i: int, year: int = 2025) -> TaxPaymentRecord:
    return TaxPaymentRecord(
        voucher_no=f"BK{year}{i:08d}", tax_office="16109020000", id_type="RESIDENT_ID", id_number=id_number(i),
        name="测试", region_code="610902", levy_item="RESIDENT", period_start=date(year, 1, 1),
        period_end=date(year, 12, 31), amount_fen=40000,
        paid_at=datetime(year - 1, 10, 8, tzinfo=timezone.utc) + timedelta(seconds=i), channel="APP",
    )


def kafka_bootstrap() -> str:
    servers = setting_text("KAFKA_BOOTSTRAP_SERVERS")
    if servers:
        return servers
    from infra import stack

    return stack.up(stack.StackConfig.from_env())["KAFKA_BOOTSTRAP_SERVERS"]


def encoded_payments(n: int, year: int) -> list[tuple[bytes, bytes]]:
    """(key, Avro value) of ``n`` payments: what the tax bureau's side sends."""
    out = []
    for i in range(n):
        r = payment(i, year)
        out.append((r.id_number.encode(), encode(TAX_PAYMENT, tax_record_to_avro(r))))
    return out


def produce(servers: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    producer = make_producer(servers, linger_ms=20, batch_size=256 * 1024)
    started = time.perf_counter()
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=300)
    producer.close()
    return time.perf_counter() - started


def _log_text(log: Any) -> str:
    """What a child process wrote so far to ``log`` (its stdout file, still open for it)."""
    return os.pread(log.fileno(), os.fstat(log.fileno()).st_size, 0).decode(errors="replace")


def group_ready(logs: list[Any], consumers: int) -> bool:
    """True once the publisher has started and the consumers' group has settled: every partition is
    held by exactly one consumer and every consumer holds one (read from their structlog lines)."""
    if '"publisher_started"' not in _log_text(logs[-1]):
        return False
    held: list[set[int]] = []
    for log in logs[:consumers]:
        mine: set[int] = set()
        for line in _log_text(log).splitlines():
            if '"partition_assigned"' in line or '"partition_revoked"' in line:
                entry = json.loads(line)
                (mine.add if entry["event"] == "partition_assigned" else mine.discard)(entry["partition"])
        held.append(mine)
    every = [p for mine in held for p in mine]
    return all(held) and sorted(every) == list(range(PARTITIONS))


def raw_consume(servers: str, topic: str, n: int) -> float:
    consumer = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, max_poll_records=5000,
                             fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=16 * 1024 * 1024)
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    count = 0
    started = time.perf_counter()
    while count < n:
        for records in consumer.poll(timeout_ms=1000).values():
            count += len(records)
    seconds = time.perf_counter() - started
    consumer.close()
    return seconds


def setup_renewals(system, n: int) -> float:
    """Untimed: everyone paid 2024 (registered + enrolled from the payment) and was assessed for 2025."""
    ledger = system.ledger
    prov = Provenance(source="batch", topic="benchmark-setup", record_key="setup")
    started = time.perf_counter()
    for start in range(0, n, SETUP_BATCH):
        records = [(payment(i, 2024), prov) for i in range(start, min(n, start + SETUP_BATCH))]
        for outcome in ledger.record_tax_records(records):
            if not outcome.applied:
                raise SystemExit(f"setup payment not applied: {outcome.message}")
        ids = [ledger.person_id("RESIDENT_ID", r.id_number) for r, _ in records]
        persons = load_aggregates(ledger, ids)
        for person in persons.values():
            person.assess_resident_year(table=ledger.policies.get("610902", 2025), effective_date=date(2024, 9, 1),
                                        provenance=prov.as_dict())
        ledger.save(*persons.values())
    return time.perf_counter() - started


def broker_pid() -> int | None:
    """The local Kafka broker's process (a JVM running ``kafka.Kafka``), if the broker runs on this machine."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"kafka.Kafka" in cmdline:
            return int(entry.name)
    return None


def backend_cpu(ledger, prefix: str) -> float:
    """CPU seconds of the PostgreSQL backends whose application_name starts with ``prefix``."""
    with ledger.recorder.datastore.get_connection() as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s",
                            (prefix + "%",)).fetchall()
    return sum(proc_cpu(row["pid"]) for row in rows)


@dataclass
class Outcome:
    name: str
    n: int
    events_published: int
    setup_s: float = 0.0
    raw_s: float = float("nan")
    e2e_s: float = float("nan")
    cpu: dict[str, float] = field(default_factory=dict)
    notifications: int = 0
    profile: str | None = None


def end_to_end(env: dict[str, str], system, topic: str, events_topic: str, n: int, consumers: int,
               max_records: int, profile: str | None, timeout: float,
               warm: list[tuple[bytes, bytes]] | None = None,
               servers: str = "") -> tuple[float, dict[str, float]]:
    """Seconds until all ``n`` records are in the ledger and published, and the CPU seconds spent.

    Cold (``warm`` None): the records are on the topic; the clock starts with the processes.
    Warm: the processes are started and their group has settled first; the clock starts when
    the ``warm`` records begin to be produced (from a thread of this process, on the same cores),
    and the CPU is counted from then.
    """
    ledger = system.ledger
    cli = [sys.executable, "-m", "entrypoints.cli"]
    consume = ["consume", "tax", "--group", GROUP, "--max-records", str(max_records)]
    commands = [cli + consume for _ in range(consumers)] + [cli + ["publish"]]
    roles = [f"consumer-{i}" for i in range(consumers)] + ["publisher"]
    if profile:
        commands[0] = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "entrypoints.cli"] + consume
        commands[-1] = [sys.executable, "-m", "cProfile", "-o", f"{profile}.publisher", "-m", "entrypoints.cli", "publish"]
    tag = f"{APP_NAME}-{uuid.uuid4().hex[:6]}"
    published_from = ledger.recorder.max_tracking_id(f"publisher:{events_topic}") or 0
    started = time.perf_counter()
    log_dir = setting_text("BENCH_LOG_DIR") or None
    producing: threading.Thread | None = None
    logs = [open(f"{log_dir}/{role}.log", "w+b") if log_dir else tempfile.TemporaryFile() for role in roles]
    procs = [subprocess.Popen(c, env={**env, "PGAPPNAME": f"{tag}-{role}"}, stdout=log, stderr=subprocess.STDOUT)
             for c, role, log in zip(commands, roles, logs)]
    cpu: dict[str, float] = {}
    broker = broker_pid()
    try:
        if warm is not None:
            while not group_ready(logs, consumers):
                check_alive(procs, logs)
                if time.perf_counter() - started > timeout:
                    raise SystemExit(f"the processes were not ready after {timeout:.0f} s")
                time.sleep(0.05)
            print(f"  ready after {time.perf_counter() - started:.1f} s (start-up and group join; "
                  f"not timed): producing {n:,} payments now", flush=True)
        def cpu_now() -> dict[str, float]:
            """CPU seconds so far: the processes, their PostgreSQL backends and the broker, which serves
            both sides on the same 2 cores (its share is counted, not hidden)."""
            return {"consumers": sum(proc_cpu(p.pid) for p in procs[:-1]), "publisher": proc_cpu(procs[-1].pid),
                    "consumers_pg": backend_cpu(ledger, f"{tag}-consumer"),
                    "publisher_pg": backend_cpu(ledger, f"{tag}-publisher"),
                    "broker": proc_cpu(broker) if broker else float("nan")}

        # Warm: from the first send. Cold: the processes' whole lives (start-up included), the broker from now.
        cpu_before = cpu_now() if warm is not None else {"broker": proc_cpu(broker) if broker else float("nan")}
        started = last_report = time.perf_counter()
        if warm is not None:
            producing = threading.Thread(target=produce, args=(servers, topic, warm), daemon=True)
            producing.start()
        while True:
            positions = [ledger.position(position_name(GROUP, topic, p)) for p in range(PARTITIONS)]
            consumed = sum(1 + p for p in positions if p is not None)
            published = ledger.recorder.max_tracking_id(f"publisher:{events_topic}") or 0
            if consumed >= n and published >= (ledger.recorder.max_notification_id() or 0):
                seconds = time.perf_counter() - started
                cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_now().items()}
                break
            check_alive(procs, logs)
            now = time.perf_counter()
            if now - started > timeout:
                raise SystemExit(f"not done after {timeout:.0f} s: consumed {consumed}, published {published}")
            if now - last_report > setting("BENCH_REPORT_S"):
                print(f"  ... {now - started:5.0f} s: consumed {consumed:,}, published position "
                      f"{published - published_from:,} (load {os.getloadavg()[0]:.1f})", flush=True)
                last_report = now
            time.sleep(0.05)
    finally:
        if producing is not None:
            producing.join(timeout=60)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)  # cProfile writes its file on a clean exit
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in logs:
            log.close()
    return seconds, cpu


def check_alive(procs: list[subprocess.Popen], logs: list[Any]) -> None:
    for p, log in zip(procs, logs):
        if p.poll() is not None:
            tail = _log_text(log)[-3000:]
            raise SystemExit(f"{p.args} ended with {p.returncode}; the end of its output:\n{tail}")


def pipeline_env(pg: dict[str, str], schema: str, servers: str, prefix: str) -> dict[str, str]:
    """The environment of the ``ledger`` processes (consumers, publisher, projector) of a run: PostgreSQL in
    ``schema``, the topics under ``prefix``. This process makes the ledger's tables (``pipeline_system``)."""
    env = {**os.environ, "LEDGER_PERSISTENCE": "postgres", "KAFKA_BOOTSTRAP_SERVERS": servers,
           "LEDGER_ID_KEY": ID_KEY, "LEDGER_TOPIC_PREFIX": prefix, **pg, "POSTGRES_SCHEMA": schema,
           "CREATE_TABLE": "no"}
    env.pop("DATABASE_URL", None)
    return env


def pipeline_system(pg: dict[str, str], schema: str, servers: str, prefix: str):
    """This process's own ledger on the run's schema and topics (it creates the tables)."""
    return bootstrap(Settings(persistence="postgres", postgres={**pg, "POSTGRES_SCHEMA": schema},
                              kafka_bootstrap_servers=servers, id_key=ID_KEY.encode(), topic_prefix=prefix))


def run_scenario(name: str, pg: dict[str, str], servers: str, args: argparse.Namespace) -> Outcome:
    renewals = name == "renewals"
    out = Outcome(name, args.payments, events_published=args.payments * (1 if renewals else 3))
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    ensure_topics(servers, prefix)
    topic, events_topic = prefix + "tax.payments.v1", prefix + "ledger.events.v1"
    try:
        with dedicated_schema(pg, "bench_kafka") as schema:
            env = pipeline_env(pg, schema, servers, prefix)
            system = pipeline_system(pg, schema, servers, prefix)
            try:
                print(f"\n== ({'a' if renewals else 'b'}) {name}: {args.payments:,} payments "
                      f"(load {_load()})", flush=True)
                if renewals:
                    out.setup_s = setup_renewals(system, args.payments)
                    last = system.ledger.recorder.max_notification_id() or 0
                    # Last year's events were published last year: the publisher starts after them.
                    system.ledger.recorder.insert_tracking(Tracking(f"publisher:{events_topic}", last))
                    print(f"  setup: {args.payments:,} residents paid 2024 and were assessed for 2025 in "
                          f"{out.setup_s:.1f} s ({last:,} notifications; not part of the figures)", flush=True)
                records = encoded_payments(args.payments, 2025)
                warm = args.start == "warm"
                if not warm:
                    produce_s = produce(servers, topic, records)
                    print(f"  produced {args.payments:,} payments to {topic} in {produce_s:.1f} s (setup)", flush=True)
                    out.raw_s = raw_consume(servers, topic, args.payments)
                print(f"  end to end ({args.start}): {args.consumers} consumer process(es) + 1 publisher process ...",
                      flush=True)
                if args.profile:
                    out.profile = f"{args.profile}.{name}"
                out.e2e_s, out.cpu = end_to_end(env, system, topic, events_topic, args.payments, args.consumers,
                                                args.max_records, out.profile, args.timeout,
                                                warm=records if warm else None, servers=servers)
                if warm:  # the same records, now on the topic
                    out.raw_s = raw_consume(servers, topic, args.payments)
                out.notifications = system.ledger.recorder.max_notification_id() or 0
                print(f"  done in {out.e2e_s:.2f} s (load {_load()})", flush=True)
            finally:
                system.close()
    finally:
        try:
            delete_topics(servers, prefix)
        except Exception:
            pass
    return out


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--payments", type=int, default=100_000)
    ap.add_argument("--consumers", type=int, default=2,
                    help=f"ledger consume tax processes (one group; <= {PARTITIONS}, the topic's partitions; "
                         "default 2: one per core of this machine, see benchmarks/README.md)")
    ap.add_argument("--max-records", type=int, default=1000, help="records per poll of each consumer")
    ap.add_argument("--scenarios", choices=["both", "renewals", "first"], default="both")
    ap.add_argument("--start", choices=["warm", "cold"], default="warm",
                    help="warm: the processes run and their group has settled before the payments are produced "
                         "(the clock starts with the production); cold: the payments are on the topic first and "
                         "the clock starts with the processes (start-up and group join timed)")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--profile", metavar="FILE", help="run the (first) consumer under cProfile into FILE.<scenario>, "
                    "the publisher into FILE.<scenario>.publisher")
    ap.add_argument("--json", metavar="FILE", help="write the figures for run_all.py")
    args = ap.parse_args(argv)
    if not 1 <= args.consumers <= PARTITIONS:
        ap.error(f"--consumers must be 1 to {PARTITIONS} (the topic's partitions: a consumer beyond them would idle)")

    load_start = _load()
    speed_start = machine_speed()
    print(f"load average at the start: {load_start} ({os.cpu_count()} cores); machine speed probe "
          f"{speed_start:.1f} µs (common.machine_speed: lower is faster)", flush=True)
    pg = pg_settings()
    servers = kafka_bootstrap()
    names = ["renewals", "first-time payers"] if args.scenarios == "both" else \
        ["renewals" if args.scenarios == "renewals" else "first-time payers"]
    outcomes = [run_scenario(name, pg, servers, args) for name in names]

    rows = [("scenario", "count", "seconds", "rate /s", "goal /s", "vs goal", "ratio to raw consume")]
    figures = []
    for o in outcomes:
        raw_rate = o.n / o.raw_s
        rate = o.n / o.e2e_s
        renewals = o.name == "renewals"
        label = ("(a) renewals" if renewals else "(b) first-time payers") + ", end to end"
        goal = GOAL if renewals else None
        rows.append((label, f"{o.n:,} payments", f"{o.e2e_s:.2f}", f"{rate:,.0f}",
                     f"{goal:,.0f}" if goal else "-", f"{rate / goal:.2f}" if goal else "-",
                     f"{rate / raw_rate:.3f}"))
        rows.append((f"    raw kafka-python consume, {o.name} topic", f"{o.n:,} records", f"{o.raw_s:.2f}",
                     f"{raw_rate:,.0f}", "-", "-", "1.000"))
        figures.append(figure(label, rate, "payments/s", size=o.n, size_unit="payments", goal=goal,
                              baseline="kafka_consume", count=o.n, seconds=o.e2e_s, key=label))
        figures.append(figure(f"raw kafka-python consume ({o.name} topic)", raw_rate, "records/s", size=o.n,
                              size_unit="records", count=o.n, seconds=o.raw_s))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for j, r in enumerate(rows):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if j == 0:
            print("  ".join("-" * w for w in widths))
    print("\nCPU per payment (user + system, from /proc; the wall-clock rates above depend on what else runs):")
    for o in outcomes:
        us = {k: 1e6 * v / o.n for k, v in o.cpu.items()}
        total = sum(v for k, v in us.items() if k != "broker")
        broker = us.get("broker", float("nan"))
        with_broker = total + (0 if broker != broker else broker)
        print(f"  {o.name:18s} consumers {us['consumers']:4.0f} µs, publisher {us['publisher']:4.0f} µs, "
              f"their PostgreSQL backends {us['consumers_pg']:3.0f} + {us['publisher_pg']:3.0f} µs: "
              f"total {total:4.0f} µs -> at most {2e6 / total:,.0f} payments/s on 2 idle cores "
              f"({o.events_published:,} events published, {o.notifications:,} notifications in the ledger)")
        print(f"  {'':18s} the Kafka broker {broker:4.0f} µs: with it {with_broker:4.0f} µs -> at most "
              f"{2e6 / with_broker:,.0f} payments/s on this machine's {os.cpu_count()} cores")
    print(f"\n({args.consumers} consumer process(es), --max-records {args.max_records}, --start {args.start}; "
          f"load average: {load_start} at the start, {_load()} at the end; {os.cpu_count()} cores; "
          f"machine speed probe {speed_start:.1f} µs at the start, {machine_speed():.1f} µs at the end)")
    for o in outcomes:
        if o.profile and Path(o.profile).exists():
            print(f"\nconsumer profile, {o.name} ({o.profile}), top 25 by cumulative time:")
            pstats.Stats(o.profile).sort_stats("cumulative").print_stats(25)
        if o.profile and Path(f"{o.profile}.publisher").exists():
            print(f"\npublisher profile, {o.name} ({o.profile}.publisher), top 25 by internal time:")
            pstats.Stats(f"{o.profile}.publisher").sort_stats("tottime").print_stats(25)
    write_json(args.json, figures, loadavg_start=load_start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
