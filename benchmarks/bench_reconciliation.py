"""Benchmark: reconcile one tax statement of a million lines from Kafka against the ledger side (issue 6).

    eval "$(.venv/bin/python -m infra env)"      # or let the script start the local stack
    .venv/bin/python benchmarks/bench_reconciliation.py [--lines 1000000] [--workers 2]

Setup (not timed; its time is printed):

* the **ledger side is written directly**: ``recon_ledger_payments`` rows are COPYed into
  PostgreSQL, not produced by a million ledger commands (that path is measured by
  bench_payments.py); the rows are exactly what the ledger-side projection makes;
* the statement (header + ``--lines`` lines, Avro single-object, keyed by statement id)
  is produced to a topic of the benchmark's own. ``--lines`` counts every line; among
  them, ``lines / 10,000`` discrepancies of each class are planted (missing in ledger,
  missing in statement, amount, duplicate voucher, person, refund without original,
  business date, levy item).

Timed, in the same run, with the same Kafka consumer settings:

1. **read only**: a consumer-group member reads every record of the statement and does
   nothing else (what Kafka and kafka-python cost on their own);
2. **reconcile**: the real reconciliation loop (:class:`reconciliation.consumer.StatementConsumer`:
   :class:`~reconciliation.consumer.StatementsHandler` under :class:`consumers.feed_consumer.ConsumerRunner`,
   PostgreSQL store, ``--workers`` decoding processes, results publisher; the ledger side is
   already loaded) from an empty position until the statement is compared and its results
   are published to ``reconciliation.results.v1``; split into intake (read, decode, check,
   store lines with positions, publish) and comparison (classify, store discrepancies, tie-out).

Checks afterwards: the planted discrepancies are found, class by class, and the totals tie out.
Everything happens in a schema and under a topic prefix of its own, removed at the end.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import connect, dedicated_schema, figure, pg_settings, write_json  # noqa: E402

from fastavro import schemaless_writer  # noqa: E402

from events.codec import default_registry  # noqa: E402
from infra.settings import setting_text  # noqa: E402
from events.inbound import TAX_STATEMENT_HEADER, TAX_STATEMENT_LINE  # noqa: E402
from ledger.domain.identity import make_resident_id, parse_identity, person_id_for  # noqa: E402

ID_KEY = b"benchmark-identity-key"
OFFICE = "16109020000"
REGION = "610902"
DAY = date(2025, 3, 3)
STATEMENT = "DZ-16109020000-610902-20250303"
GOAL_SECONDS = 60.0
CLASSES = ("MISSING_IN_LEDGER", "MISSING_IN_STATEMENT", "AMOUNT_MISMATCH", "DUPLICATE_VOUCHER",
           "PERSON_OR_REGION_MISMATCH", "REFUND_WITHOUT_ORIGINAL", "BUSINESS_DATE_MISMATCH", "DETAIL_MISMATCH")


def kafka_bootstrap() -> str:
    servers = setting_text("KAFKA_BOOTSTRAP_SERVERS")
    if servers:
        return servers
    from infra import stack

    return stack.up(stack.StackConfig.from_env())["KAFKA_BOOTSTRAP_SERVERS"]


def crc32c_in_c() -> bool:
    from kafka.record import util

    return util.crc32c_c is not None


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --------------------------------------------------------------------------- data
def number(i: int) -> str:
    return make_resident_id(REGION, date(1940, 1, 1) + timedelta(days=i // 1000), i % 1000)


def voucher(i: int) -> str:
    return f"3246109{i:011d}"


class Plan:
    """Which line gets which planted difference (k of each class among ``lines`` lines)."""

    def __init__(self, lines: int) -> None:
        self.k = k = max(1, lines // 10_000)
        self.regular = lines - k  # the last k lines repeat vouchers (DUPLICATE_VOUCHER)
        step = max(1, self.regular // (7 * k + 1))
        picks = iter(range(step, self.regular + 1, step))
        self.sets = {c: {next(picks) for _ in range(k)} for c in CLASSES if c not in ("DUPLICATE_VOUCHER",
                                                                                       "MISSING_IN_STATEMENT")}
        self.duplicates = [1 + j * (self.regular // k) for j in range(k)]
        self.kind_of = {}
        for c, vs in self.sets.items():
            for v in vs:
                self.kind_of[v] = c


def header_bytes(count: int, total: int) -> bytes:
    entry = default_registry().current(TAX_STATEMENT_HEADER)
    out = io.BytesIO()
    out.write(entry.header)
    schemaless_writer(out, entry.parsed, {"statement_id": STATEMENT, "business_date": DAY, "tax_office": OFFICE,
                                          "region_code": REGION, "line_count": count, "total_amount_fen": total})
    return out.getvalue()


def statement_values(plan: Plan) -> tuple[list[bytes], int]:
    """The header and the lines, Avro single-object encoded (fastavro directly: setup only)."""
    entry = default_registry().current(TAX_STATEMENT_LINE)
    prefix, parsed = entry.header, entry.parsed
    paid = datetime(2025, 3, 3, 2, 30, tzinfo=timezone.utc)
    record = {"statement_id": STATEMENT, "id_type": "RESIDENT_ID", "levy_item": "RESIDENT",
              "period_start": date(2025, 1, 1), "period_end": date(2025, 12, 31), "paid_at": paid,
              "credited_on": None, "original_tax_office": None}
    values, total = [], 0
    order = list(range(1, plan.regular + 1)) + plan.duplicates
    for line_no, i in enumerate(order, start=1):
        refund = plan.kind_of.get(i) == "REFUND_WITHOUT_ORIGINAL"
        amount = 10000 if refund else 40000 + (i % 7) * 100
        record.update(line_no=line_no, voucher_no=voucher(i), id_number=number(i), amount_fen=amount,
                      kind="REFUND" if refund else "PAYMENT",
                      original_voucher_no=f"9{i:017d}" if refund else None)
        total += -amount if refund else amount
        out = io.BytesIO()
        out.write(prefix)
        schemaless_writer(out, parsed, record)
        values.append(out.getvalue())
    return [header_bytes(len(order), total)] + values, total


def ledger_records(plan: Plan) -> list[tuple]:
    """``recon_ledger_payments`` rows (LEDGER_COLUMNS order) as the ledger-side projection makes them."""
    paid = datetime(2025, 3, 3, 2, 30, tzinfo=timezone.utc)
    other_day = paid - timedelta(days=1)
    out = []
    for i in list(range(1, plan.regular + 1)) + list(range(plan.regular + 1, plan.regular + 1 + plan.k)):
        c = plan.kind_of.get(i)
        if c in ("MISSING_IN_LEDGER", "REFUND_WITHOUT_ORIGINAL"):
            continue
        amount = 40000 + (i % 7) * 100 - (100 if c == "AMOUNT_MISMATCH" else 0)
        who = number(i + 1 if c == "PERSON_OR_REGION_MISMATCH" else i)
        pid = str(person_id_for(parse_identity("RESIDENT_ID", who), ID_KEY))
        at = other_day if c == "BUSINESS_DATE_MISMATCH" else paid
        levy = "EMPLOYEE" if c == "DETAIL_MISMATCH" else "RESIDENT"
        out.append((OFFICE, voucher(i), at.date(), REGION, levy, pid, "PAYMENT", amount, amount, at, None,
                    date(2025, 1, 1), date(2025, 12, 31), None, None, f"bench-event-{i}", "ContributionPaid", 3,
                    "bench"))
    return out


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=50, batch_size=1024 * 1024,
                             max_request_size=8 * 1024 * 1024)
    key = STATEMENT.encode()
    for v in values:
        producer.send(topic, key=key, value=v)
    producer.flush()
    producer.close()


# --------------------------------------------------------------------------- timed phases
def read_only(bootstrap: str, topic: str, expect: int, max_records: int) -> tuple[float, float]:
    """A consumer-group member that reads every record and does nothing with it."""
    from consumers.kafka_io import KafkaSource
    from reconciliation.factory import KAFKA_FETCH

    source = KafkaSource(bootstrap, group_id=f"bench-read-{uuid.uuid4().hex[:6]}", max_poll_records=max_records,
                         **KAFKA_FETCH)
    cpu = _cpu()[0]
    started = time.perf_counter()
    source.subscribe([topic], on_assigned=lambda tps: [source.seek(t, p, None) for t, p in tps],
                     on_revoked=lambda tps: None)
    seen = 0
    while seen < expect:
        seen += len(source.poll(1.0, max_records))
    seconds = time.perf_counter() - started
    source.close()
    return seconds, _cpu()[0] - cpu


def reconcile(settings: dict, schema: str, bootstrap: str, prefix: str, workers: int, max_records: int) -> dict:
    from consumers.kafka_io import KafkaSink, KafkaSource, make_producer
    from consumers.feed_consumer import ConsumerRunner
    from reconciliation.consumer import StatementConsumer, StatementsHandler
    from reconciliation.results import RESULTS_TOPIC, ResultsPublisher
    from reconciliation.service import Reconciler
    from reconciliation.store import PostgresReconciliationStore
    from reconciliation.factory import KAFKA_FETCH

    store = PostgresReconciliationStore({**settings, "POSTGRES_SCHEMA": schema})
    recon = Reconciler(store)
    sink = KafkaSink(make_producer(bootstrap))
    handler = StatementsHandler(recon, id_key=ID_KEY, dead_letters=sink, decode_workers=workers)
    if workers:
        handler.decode([header_bytes(0, 0)] * 1000)  # start the worker processes before the clock
    source = KafkaSource(bootstrap, group_id=f"bench-recon-{uuid.uuid4().hex[:6]}", max_poll_records=max_records,
                         **KAFKA_FETCH)
    runner = ConsumerRunner(handler, source, topics=[f"{prefix}tax.statements.v1"],  # type: ignore[arg-type]
                            max_records=max_records)
    loop = StatementConsumer(runner, recon, publisher=ResultsPublisher(store, sink, topic=f"{prefix}{RESULTS_TOPIC}"))
    compare: list[float] = []
    reconcile_pending = recon.reconcile_pending

    def timed() -> list[str]:  # the comparison's own time, inside the loop's round
        t = time.perf_counter()
        done = reconcile_pending()
        if done:
            compare.append(time.perf_counter() - t)
        return done

    recon.reconcile_pending = timed  # type: ignore[method-assign]
    cpu_self, cpu_children = _cpu()
    started = time.perf_counter()
    reconciled: list[str] = []
    while not reconciled:  # the real loop: poll, store, (ledger side: none here), compare, time limit, publish
        reconciled = loop.run_once(1.0).reconciled
    finished = time.perf_counter()
    assert reconciled == [STATEMENT], reconciled
    published = loop.publisher.publish_pending()  # anything left after the round (normally nothing)
    outbox = store.outbox(pending=False, limit=10_000_000)
    out = {"intake": finished - started - compare[0], "compare": compare[0], "total": finished - started,
           "published": len(outbox) + published, "store": store,
           "discrepancies": store.find_discrepancies(), "result": store.statement(STATEMENT)["result"]}
    loop.close()  # also stops the decoding processes, so their CPU time is counted below
    sink.close()
    after_self, after_children = _cpu()
    out["cpu_consumer"] = after_self - cpu_self
    out["cpu_workers"] = after_children - cpu_children
    return out


def _cpu() -> tuple[float, float]:
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="statement lines (default 1,000,000)")
    parser.add_argument("--workers", type=int, default=2, help="decoding processes (default 2, the machine's cores)")
    parser.add_argument("--max-records", type=int, default=5000, help="records per poll (default 5000)")
    parser.add_argument("--keep-schema", action="store_true", help="leave the schema and topics for a look")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE (for run_all.py)")
    args = parser.parse_args(argv)
    if args.lines < 100:
        parser.error("--lines must be at least 100")

    settings = pg_settings()
    bootstrap = kafka_bootstrap()
    from infra.topics import delete_topics, ensure_topics

    prefix = f"bench{uuid.uuid4().hex[:8]}."
    print(f"lines {args.lines:,}; workers {args.workers}; C crc32c for kafka-python: "
          f"{'yes' if crc32c_in_c() else 'no (pure Python CRC checks)'}; load average {load()}", flush=True)
    ensure_topics(bootstrap, prefix)
    try:
        with dedicated_schema(settings, "bench_recon", keep=args.keep_schema) as schema:
            from reconciliation.store import PostgresReconciliationStore

            plan = Plan(args.lines)
            t0 = time.perf_counter()
            rows = ledger_records(plan)
            store = PostgresReconciliationStore({**settings, "POSTGRES_SCHEMA": schema})
            with store.transaction():
                store.copy_ledger_rows(rows)
            with connect(settings, schema, autocommit=True) as conn:
                conn.execute("ANALYZE")
            store.close()
            t1 = time.perf_counter()
            values, total = statement_values(plan)
            t2 = time.perf_counter()
            produce(bootstrap, f"{prefix}tax.statements.v1", values)
            t3 = time.perf_counter()
            print(f"setup: {len(rows):,} ledger rows built and COPYed in {t1 - t0:.1f} s; {len(values):,} records "
                  f"encoded in {t2 - t1:.1f} s and produced in {t3 - t2:.1f} s", flush=True)

            read_s, read_cpu = read_only(bootstrap, f"{prefix}tax.statements.v1", len(values), args.max_records)
            print(f"read only: {len(values):,} records in {read_s:.1f} s", flush=True)
            r = reconcile(settings, schema, bootstrap, prefix, args.workers, args.max_records)

            found: dict[str, int] = {}
            for d in r["discrepancies"]:
                found[d.klass] = found.get(d.klass, 0) + 1
            expected = {c: plan.k for c in CLASSES}
            tie = r["result"]["tie_out"]
            n = len(values)
            table = [
                ("read only: Kafka -> consumer, nothing else", n, read_s),
                ("reconcile: intake (read, decode, check, store lines)", n, r["intake"]),
                ("reconcile: compare, classify, store discrepancies", args.lines, r["compare"]),
                ("reconcile: total (first poll .. results published)", args.lines, r["total"]),
            ]
            print()
            print(f"{'phase':56} {'records':>11} {'seconds':>8} {'rate /s':>10}")
            print(f"{'-' * 56} {'-' * 11} {'-' * 8} {'-' * 10}")
            for name, count, seconds in table:
                print(f"{name:56} {count:>11,} {seconds:>8.1f} {count / seconds if seconds else 0:>10,.0f}")
            print(f"\ngoal: a {args.lines:,}-line statement reconciled in <= {GOAL_SECONDS:.0f} s: "
                  f"{'MET' if r['total'] <= GOAL_SECONDS else 'NOT MET'} ({r['total']:.1f} s; "
                  f"{r['total'] / read_s:.2f} x the read-only time)")
            print(f"{r['published']:,} results published to reconciliation.results.v1 within the total")
            print(f"discrepancies per class (planted {plan.k} each): "
                  + ", ".join(f"{c} {found.get(c, 0)}" for c in CLASSES))
            print(f"tie-out: {'ok' if tie['ok'] else 'FAILED'}; statement total {total:,} fen")
            for line in r["result"]["arithmetic"]:
                print("  " + line)
            print(f"CPU seconds (this process and its decoding processes; PostgreSQL's and Kafka's not counted): "
                  f"read only {read_cpu:.1f}; reconcile {r['cpu_consumer']:.1f} consumer + {r['cpu_workers']:.1f} "
                  f"decoding = {(r['cpu_consumer'] + r['cpu_workers']) * 1e6 / n:.0f} us per line")
            print(f"load average at the end {load()} (the machine is shared: compare the CPU figures between runs)")
            size = {"size": args.lines, "size_unit": "lines"}
            write_json(args.json, [
                figure("statement reconciled, total", r["total"], "s", goal=GOAL_SECONDS if args.lines >= 1_000_000 else None,
                       better="lower", kind="seconds", count=args.lines, seconds=r["total"], **size),
                figure("reconcile: total rate", args.lines / r["total"], "lines/s", goal=1_000_000 / GOAL_SECONDS,
                       baseline="kafka_consume", count=args.lines, seconds=r["total"], **size),
                figure("reconcile: intake rate", n / r["intake"], "records/s", baseline="kafka_consume", count=n,
                       seconds=r["intake"], **size),
                figure("reconcile: compare rate", args.lines / r["compare"], "lines/s", count=args.lines,
                       seconds=r["compare"], **size),
                figure("read only (group consumer)", n / read_s, "records/s", baseline="kafka_consume", count=n,
                       seconds=read_s, **size),
            ], check_ok=found == expected and bool(tie["ok"]))
            if found != expected or not tie["ok"]:
                print("CHECK FAILED: the planted discrepancies were not found as planted", file=sys.stderr)
                return 1
    finally:
        if not args.keep_schema:
            try:
                delete_topics(bootstrap, prefix)
            except Exception:  # noqa: BLE001 - best effort
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
