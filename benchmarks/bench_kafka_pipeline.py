"""Benchmark: the whole Kafka pipeline, tax payments on Kafka -> ledger (PostgreSQL) -> ``ledger.events.v1`` (issue 4).

    eval "$(.venv/bin/python -m infra env)"      # or let the script start the local stack
    .venv/bin/python benchmarks/bench_kafka_pipeline.py [--payments 100000] [--consumers 1] [--max-records 1000]

1. **Setup** (not timed): ``--payments`` tax payments (Avro, ``cn.medins.tax.v1.TaxPayment``),
   one per new resident (each registers, enrolls and pays: 3 person events plus the
   voucher's source-record index event), are produced to a fresh prefixed
   ``tax.payments.v1`` (3 partitions, keyed by ID number). The ledger is a fresh schema.
2. **End to end** (timed, wall clock): ``--consumers`` ``ledger consume tax`` processes
   (one consumer group) and one ``ledger publish`` process are started; the clock runs
   from their start until the ledger's positions cover every record of the topic AND the
   publisher's stored position (written only after Kafka acknowledged) covers the last
   notification of the ledger, i.e. every person event is on ``ledger.events.v1``.
   Process start-up (imports, group join) is inside the measurement.
3. **Raw consume** (timed): a plain kafka-python ``KafkaConsumer`` reads the same topic
   from the beginning (values not decoded): what the client library can do at all here.

Prints a table: scenario, count, seconds, rate, goal (>= 5,000 payments/s end to end),
ratio to the raw consume rate. ``--profile FILE`` runs the consumer under cProfile
(``python -m cProfile -o FILE``) and prints its top functions.
"""
from __future__ import annotations

import argparse
import os
import pstats
import signal
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import dedicated_schema, pg_settings  # noqa: E402

from kafka import KafkaConsumer, TopicPartition  # noqa: E402

from consumers.kafka_io import make_producer  # noqa: E402
from consumers.runner import position_name  # noqa: E402
from events.codec import encode  # noqa: E402
from events.inbound import TAX_PAYMENT, tax_record_to_avro  # noqa: E402
from infra.topics import delete_topics, ensure_topics  # noqa: E402
from ledger.bootstrap import bootstrap  # noqa: E402
from ledger.config import Settings  # noqa: E402
from ledger.domain.identity import make_resident_id  # noqa: E402
from ledger.records import TaxPaymentRecord  # noqa: E402

ID_KEY = "benchmark-identity-key"
GOAL = 5_000.0
GROUP = "bench-tax-payments"


def payment(i: int) -> TaxPaymentRecord:
    number = make_resident_id("610902", date(1940, 1, 1) + timedelta(days=i // 400), 1 + i % 400 * 2)
    return TaxPaymentRecord(
        voucher_no=f"BK{i:08d}", tax_office="16109020000", id_type="RESIDENT_ID", id_number=number,
        name="测试", region_code="610902", levy_item="RESIDENT", period_start=date(2025, 1, 1),
        period_end=date(2025, 12, 31), amount_fen=40000,
        paid_at=datetime(2024, 10, 8, tzinfo=timezone.utc) + timedelta(seconds=i), channel="APP",
    )


def kafka_bootstrap() -> str:
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if servers:
        return servers
    from infra import stack

    return stack.up(stack.StackConfig.from_env())["KAFKA_BOOTSTRAP_SERVERS"]


def produce(servers: str, topic: str, n: int) -> float:
    producer = make_producer(servers, linger_ms=20, batch_size=256 * 1024)
    started = time.perf_counter()
    for i in range(n):
        r = payment(i)
        producer.send(topic, key=r.id_number.encode(), value=encode(TAX_PAYMENT, tax_record_to_avro(r)))
    producer.flush(timeout=300)
    producer.close()
    return time.perf_counter() - started


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


def end_to_end(env: dict[str, str], system, topic: str, events_topic: str, n: int, consumers: int,
               max_records: int, profile: str | None, timeout: float) -> tuple[float, int]:
    ledger = system.ledger
    cli = [sys.executable, "-m", "ledger.cli"]
    consume = ["consume", "tax", "--group", GROUP, "--max-records", str(max_records)]
    commands = [cli + consume for _ in range(consumers)] + [cli + ["publish"]]
    if profile:
        commands[0] = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "ledger.cli"] + consume
    started = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in commands]
    last_report = started
    try:
        while True:
            positions = [ledger.position(position_name(GROUP, topic, p)) for p in range(3)]
            consumed = sum(1 + p for p in positions if p is not None)
            published = ledger.recorder.max_tracking_id(f"publisher:{events_topic}") or 0
            if consumed >= n and published >= (ledger.recorder.max_notification_id() or 0):
                seconds = time.perf_counter() - started
                break
            for p in procs:
                if p.poll() is not None:
                    raise SystemExit(f"{p.args} ended with {p.returncode}")
            now = time.perf_counter()
            if now - started > timeout:
                raise SystemExit(f"not done after {timeout:.0f} s: consumed {consumed}, published {published}")
            if now - last_report > 10:
                print(f"  ... {now - started:5.0f} s: consumed {consumed:,}, published position {published:,}",
                      flush=True)
                last_report = now
            time.sleep(0.05)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)  # cProfile writes its file on a clean exit
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    events = ledger.recorder.max_notification_id() or 0
    return seconds, events


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--payments", type=int, default=100_000)
    ap.add_argument("--consumers", type=int, default=1, help="ledger consume tax processes (one group; <= 3)")
    ap.add_argument("--max-records", type=int, default=1000, help="records per poll of each consumer")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--profile", metavar="FILE", help="run the (first) consumer under cProfile into FILE")
    args = ap.parse_args(argv)

    pg = pg_settings()
    servers = kafka_bootstrap()
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    ensure_topics(servers, prefix)
    topic, events_topic = prefix + "tax.payments.v1", prefix + "ledger.events.v1"
    try:
        with dedicated_schema(pg, "bench_kafka") as schema:
            env = {**os.environ, "LEDGER_PERSISTENCE": "postgres", "KAFKA_BOOTSTRAP_SERVERS": servers,
                   "LEDGER_ID_KEY": ID_KEY, "LEDGER_TOPIC_PREFIX": prefix, **pg, "POSTGRES_SCHEMA": schema}
            env.pop("DATABASE_URL", None)
            print(f"producing {args.payments:,} tax payments to {topic} ...", flush=True)
            produce_s = produce(servers, topic, args.payments)
            print(f"  produced in {produce_s:.1f} s (setup, not part of the figures)", flush=True)

            raw_s = raw_consume(servers, topic, args.payments)
            system = bootstrap(Settings(persistence="postgres", postgres={**pg, "POSTGRES_SCHEMA": schema},
                                        kafka_bootstrap_servers=servers, id_key=ID_KEY.encode(),
                                        topic_prefix=prefix))
            try:
                print(f"end to end: {args.consumers} consumer process(es) + 1 publisher process ...", flush=True)
                e2e_s, notifications = end_to_end(env, system, topic, events_topic, args.payments, args.consumers,
                                                  args.max_records, args.profile, args.timeout)
            finally:
                system.close()
    finally:
        try:
            delete_topics(servers, prefix)
        except Exception:
            pass

    raw_rate = args.payments / raw_s
    rows = [
        ("scenario", "count", "seconds", "rate /s", "goal /s", "vs goal", "ratio to raw consume"),
        ("end to end: Kafka -> ledger (PG) -> ledger.events.v1", f"{args.payments:,} payments", f"{e2e_s:.2f}",
         f"{args.payments / e2e_s:,.0f}", f"{GOAL:,.0f}", f"{args.payments / e2e_s / GOAL:.2f}",
         f"{args.payments / e2e_s / raw_rate:.3f}"),
        ("raw kafka-python consume (no decode)", f"{args.payments:,} records", f"{raw_s:.2f}",
         f"{raw_rate:,.0f}", "-", "-", "1.000"),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for j, r in enumerate(rows):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if j == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\n({notifications:,} notifications in the ledger; {args.consumers} consumer process(es), "
          f"--max-records {args.max_records}; machine: {os.cpu_count()} cores)")
    if args.profile and Path(args.profile).exists():
        print(f"\nconsumer profile ({args.profile}), top 25 by cumulative time:")
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
