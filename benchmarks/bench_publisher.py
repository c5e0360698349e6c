"""Benchmark: commit-to-Kafka latency of the ledger-events publisher (issue 4).

    eval "$(.venv/bin/python -m infra env)"      # or let the script start the local stack
    .venv/bin/python benchmarks/bench_publisher.py [--payments 300] [--rate 50] [--backlog 5000]

Live latency (timed per event): the publisher follows the notification log
(LISTEN/NOTIFY) in a background thread while the main thread records ``--payments``
tax payments one per transaction at ``--rate`` per second (each registers, enrolls and
pays a new resident: 3 person events). For every person event the latency is the time
from the moment ``record_tax_record`` returned (the transaction committed) to the
moment Kafka acknowledged the record (``acks=all``, idempotent producer). Printed as
p50 / p95 / p99 / max.

Catch-up throughput: ``--backlog`` more payments are recorded with no publisher
running (``record_tax_records``, batches of 500), then ``publish_pending`` publishes
them all; printed as events per second.

Runs in a schema and under topics of its own, both removed at the end.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import dedicated_schema, figure, pg_settings, write_json  # noqa: E402

from infra.topics import delete_topics, ensure_topics  # noqa: E402
from entrypoints.wiring import bootstrap, ledger_publisher  # noqa: E402
from infra.settings import Settings, setting_text  # noqa: E402
from ledger.domain.identity import make_resident_id  # noqa: E402
from ledger.inbound_records import Provenance, TaxPaymentRecord  # noqa: E402

ID_KEY = b"benchmark-identity-key"
FEED = Provenance(source="benchmark")


def payment(i: int, prefix: str) -> TaxPaymentRecord:
    number = make_resident_id("610902", date(1950, 1, 1) + timedelta(days=i // 400), 1 + i % 400 * 2)
    return TaxPaymentRecord(
        voucher_no=f"{prefix}{i:07d}", tax_office="16109020000", id_type="RESIDENT_ID", id_number=number,
        name="测试", region_code="610902", levy_item="RESIDENT", period_start=date(2025, 1, 1),
        period_end=date(2025, 12, 31), amount_fen=40000, paid_at=datetime(2024, 10, 8, 1, 30, tzinfo=timezone.utc),
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=300, help="live payments, one per transaction")
    parser.add_argument("--rate", type=float, default=50.0, help="live payments per second")
    parser.add_argument("--backlog", type=int, default=5000, help="payments for the catch-up measurement (0: skip)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE (for run_all.py)")
    args = parser.parse_args(argv)

    pg = pg_settings()
    kafka = setting_text("KAFKA_BOOTSTRAP_SERVERS")
    if not kafka:
        from infra import stack

        kafka = stack.up(stack.StackConfig.from_env())["KAFKA_BOOTSTRAP_SERVERS"]
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka, prefix)
    try:
        with dedicated_schema(pg, "bench_publisher") as schema:
            system = bootstrap(Settings(persistence="postgres", postgres={**pg, "POSTGRES_SCHEMA": schema},
                                        kafka_bootstrap_servers=kafka, id_key=ID_KEY, topic_prefix=prefix))
            try:
                write_json(args.json, run(system, args))
            finally:
                system.close()
    finally:
        delete_topics(kafka, prefix)
    return 0


def run(system, args) -> list[dict]:
    ledger = system.ledger
    committed: dict[str, float] = {}
    acked: dict[str, float] = {}

    def on_published(events, acked_at: float) -> None:
        for event in events:
            acked[str(event.event_id)] = acked_at

    publisher = ledger_publisher(system)
    publisher.on_published = on_published
    publisher.poll_interval = 0.1
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        ledger.record_tax_record(payment(10_000_000 - 1, "W"), provenance=FEED)  # warm up connections
        time.sleep(0.5)
        interval = 1.0 / args.rate
        start = time.perf_counter()
        for i in range(args.payments):
            outcome = ledger.record_tax_record(payment(i, "L"), provenance=FEED)
            done = time.time()
            for event_id in outcome.event_ids:
                committed[event_id] = done
            pause = start + (i + 1) * interval - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        deadline = time.monotonic() + 30
        while not set(committed) <= set(acked) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    latencies = [acked[e] - t for e, t in committed.items() if e in acked]
    missing = len(committed) - len(latencies)
    ms = [x * 1000 for x in latencies]
    print(f"live: {args.payments} payments at {args.rate:g}/s -> {len(ms)} person events published "
          f"({missing} missing)")
    print(f"commit-to-Kafka-ack latency: p50 {statistics.median(ms):.1f} ms, p95 {percentile(ms, 0.95):.1f} ms, "
          f"p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms")
    figures = [figure(f"commit-to-Kafka-ack latency p50 ({args.rate:g} payments/s live)", statistics.median(ms), "ms",
                      better="lower", kind="latency", size=args.payments, size_unit="payments",
                      key="commit-to-Kafka-ack latency p50"),
               figure("commit-to-Kafka-ack latency p95", percentile(ms, 0.95), "ms", better="lower", kind="latency",
                      size=args.payments, size_unit="payments")]

    if args.backlog:
        records = [(payment(args.payments + i, "B"), FEED) for i in range(args.backlog)]
        for start in range(0, len(records), 500):
            ledger.record_tax_records(records[start:start + 500])
        catch_up = ledger_publisher(system)
        t0 = time.perf_counter()
        count = catch_up.publish_pending()
        seconds = time.perf_counter() - t0
        print(f"catch-up: {count} events published in {seconds:.2f} s ({count / seconds:,.0f} events/s)")
        figures.append(figure("publisher catch-up", count / seconds, "events/s", baseline="kafka_produce",
                              size=args.backlog, size_unit="payments", count=count, seconds=seconds))
    return figures


if __name__ == "__main__":
    sys.exit(main())
