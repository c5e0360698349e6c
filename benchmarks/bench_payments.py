"""Benchmark: tax payments recorded through the application service on PostgreSQL (issue 3).

    eval "$(.venv/bin/python -m infra env)"      # or let the script start the local stack
    .venv/bin/python benchmarks/bench_payments.py [--people 20000] [--batch 200] [--workers 2]

Setup (not timed, its time is reported): ``--people`` residents pay for 2024 through
``Ledger.record_tax_records`` (which registers and enrolls them in the resident scheme
from the payment, 先缴费后登记), then each is assessed for 2025 (缴费核定), many
persons per transaction.

Timed: one 2025 payment per person through ``Ledger.record_tax_records`` in batches of
``--batch`` records, by ``--workers`` processes each with its own persons. Events are
counted from the notification log (max notification id before and after).

Also measured in the same run, as baselines: COPY, executemany INSERT and the
eventsourcing recorder (see benchmarks/common.py). Everything happens in a schema of
the benchmark's own, dropped at the end (``--keep-schema`` keeps it).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from queue import Empty

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    Result,
    bench_copy,
    bench_executemany,
    bench_recorder,
    connect,
    dedicated_schema,
    figure,
    format_table,
    proc_cpu,
    pg_settings,
    write_json,
)

from infra.event_store.batch_load import load_aggregates  # noqa: E402
from entrypoints.wiring import bootstrap  # noqa: E402
from infra.settings import Settings  # noqa: E402
from ledger.domain.identity import make_resident_id  # noqa: E402
from ledger.inbound_records import Provenance, TaxPaymentRecord  # noqa: E402

GOAL_PAYMENTS = 5_000.0
ID_KEY = b"benchmark-identity-key"
#: Ankang's districts and counties (every one has 2024-2026 policy tables).
REGIONS = ("610902", "610921", "610922", "610923", "610924", "610925", "610926", "610927", "610929", "610981")
TAX_OFFICE = "16109020000"
FEED = Provenance(source="batch", topic="benchmark", record_key="bench")


# --------------------------------------------------------------------------- data
def region_of(i: int) -> str:
    return REGIONS[i % len(REGIONS)]


def id_number(i: int) -> str:
    birth = date(1950, 1, 1) + timedelta(days=i // 1000)
    return make_resident_id(region_of(i), birth, i % 1000)


def payment(i: int, year: int) -> TaxPaymentRecord:
    return TaxPaymentRecord(
        voucher_no=f"P{year}{i:08d}", tax_office=TAX_OFFICE, id_type="RESIDENT_ID", id_number=id_number(i),
        name="测试", region_code=region_of(i), levy_item="RESIDENT",
        period_start=date(year, 1, 1), period_end=date(year, 12, 31), amount_fen=40000,
        paid_at=datetime(year - 1, 11, 20, 9, 30, tzinfo=timezone.utc), credited_on=date(year - 1, 11, 21),
        channel="APP",
    )


# --------------------------------------------------------------------------- workers
def _system(pg: dict[str, str], schema: str, *, create_tables: bool = True):
    env = {**pg, "POSTGRES_SCHEMA": schema}
    if not create_tables:  # workers starting together would race on CREATE OR REPLACE FUNCTION
        env["CREATE_TABLE"] = "no"
    return bootstrap(Settings(persistence="postgres", postgres=env, id_key=ID_KEY))


def _record(ledger, records: list, batch: int) -> tuple[int, list[str]]:
    applied, errors = 0, []
    for start in range(0, len(records), batch):
        for outcome in ledger.record_tax_records(records[start:start + batch]):
            if outcome.applied:
                applied += 1
            elif len(errors) < 5:
                errors.append(outcome.message)
    return applied, errors


def _assess(ledger, people: range, year: int, batch: int) -> int:
    """Assess ``year`` for many persons per transaction (setup only)."""
    assessed = 0
    ids = [ledger.person_id("RESIDENT_ID", id_number(i)) for i in people]
    prov = FEED.as_dict()
    for start in range(0, len(ids), batch):
        persons = load_aggregates(ledger, ids[start:start + batch])
        for person in persons.values():
            region = person.active_enrollment.region_code
            person.assess_resident_year(table=ledger.policies.get(region, year), effective_date=date(year - 1, 9, 1),
                                        provenance=prov)
        ledger.save(*persons.values())
        assessed += len(persons)
    return assessed


def _backend_pids(ledger) -> list[int]:
    """The server processes of this worker's connection pool (named by PGAPPNAME, see _worker)."""
    datastore = ledger.recorder.datastore
    with datastore.get_connection() as conn:
        datastore.pool.wait(timeout=60)  # every connection of the pool is open
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                            (os.environ["PGAPPNAME"],)).fetchall()
    return [row["pid"] for row in rows]


def _proc_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) of local processes, NaN if /proc does not show them (a remote server)."""
    return sum(proc_cpu(pid) for pid in pids)


def _worker(pg, schema, task, people, batch, barrier, queue, profile) -> None:
    os.environ["PGAPPNAME"] = f"bench_payments-{os.getpid()}"  # libpq gives every pooled connection this name
    system = _system(pg, schema, create_tables=False)
    try:
        ledger = system.ledger
        year = 2024 if task == "setup-pay" else 2025
        records = [(payment(i, year), FEED) for i in people] if task != "setup-assess" else []
        backend = _backend_pids(ledger)  # also opens the connection pool (all its connections)
        barrier.wait(timeout=600)
        profiler = None
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            profiler.start()
        start, cpu, pg_cpu = time.perf_counter(), time.process_time(), _proc_cpu(backend)
        if task == "setup-assess":
            done, errors = _assess(ledger, people, 2025, batch), []
        else:
            done, errors = _record(ledger, records, batch)
        end, cpu, pg_cpu = time.perf_counter(), time.process_time() - cpu, _proc_cpu(backend) - pg_cpu
        if profiler is not None:
            profiler.stop()
            Path(profile).parent.mkdir(parents=True, exist_ok=True)
            out = f"{profile}.{people.start}.txt"
            Path(out).write_text(profiler.output_text(unicode=True, color=False, show_all=False))
            Path(out[:-4] + ".all.txt").write_text(profiler.output_text(unicode=True, color=False, show_all=True))
        queue.put((start, end, done, errors, cpu, pg_cpu))
    finally:
        system.close()


def run_parallel(pg, schema, task: str, n: int, workers: int, batch: int, profile: str | None = None):
    """Run ``task`` over persons 0..n-1 split into ``workers`` disjoint slices.

    Returns (wall seconds from the first start to the last end, items done, errors, CPU seconds of the
    workers, CPU seconds of their PostgreSQL backends or NaN where /proc does not show them).
    """
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(workers), ctx.Queue()
    bounds = [n * w // workers for w in range(workers + 1)]
    procs = [ctx.Process(target=_worker, args=(pg, schema, task, range(bounds[w], bounds[w + 1]), batch,
                                              barrier, queue, profile if task == "timed" else None))
             for w in range(workers)]
    for p in procs:
        p.start()
    results = []
    while len(results) < len(procs):
        try:
            results.append(queue.get(timeout=1))
        except Empty:
            failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if failed:  # its traceback is above; don't leave the others waiting at the barrier
                for p in procs:
                    p.terminate()
                raise SystemExit(f"a {task} worker failed (exit code {failed[0]})") from None
    for p in procs:
        p.join(timeout=60)
    seconds = max(r[1] for r in results) - min(r[0] for r in results)
    return (seconds, sum(r[2] for r in results), [e for r in results for e in r[3]], sum(r[4] for r in results),
            sum(r[5] for r in results))


def count_events_after(pg, schema, notification_id: int) -> int:
    with connect(pg, schema) as conn:
        return conn.execute("SELECT count(*) FROM ledger_events WHERE notification_id > %s",
                            (notification_id,)).fetchone()[0]


# --------------------------------------------------------------------------- main
def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=20_000, help="persons (and timed payments); default 20000")
    parser.add_argument("--batch", type=int, default=200, help="records per record_tax_records call; default 200")
    parser.add_argument("--workers", type=int, default=2, help="worker processes, disjoint persons; default 2")
    parser.add_argument("--copy-rows", type=int, default=100_000, help="rows of the COPY baseline")
    parser.add_argument("--skip-baselines", action="store_true", help="only the payment benchmark")
    parser.add_argument("--keep-schema", action="store_true", help="do not drop the benchmark schema")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE (for run_all.py)")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="profile the timed phase with pyinstrument (pip install pyinstrument); "
                             "writes PREFIX.<first person>.txt per worker")
    args = parser.parse_args(argv)
    if args.people < 1 or args.batch < 1 or args.workers < 1:
        parser.error("--people, --batch and --workers must be at least 1")

    pg = pg_settings()
    print(f"PostgreSQL {pg['POSTGRES_HOST']}:{pg['POSTGRES_PORT']}/{pg['POSTGRES_DBNAME']}; "
          f"{args.people:,} people, batches of {args.batch}, {args.workers} worker(s); "
          f"{os.cpu_count()} CPUs, load average {_load()}", flush=True)
    results: list[Result] = []
    with dedicated_schema(pg, "bench_payments", keep=args.keep_schema) as schema:
        print(f"schema {schema}", flush=True)
        system = _system(pg, schema)  # creates the tables once, before the workers start
        ledger = system.ledger
        try:
            # ---- setup (not timed)
            t0 = time.perf_counter()
            secs_pay, paid, errors, _, _ = run_parallel(pg, schema, "setup-pay", args.people, args.workers, args.batch)
            if paid != args.people:
                raise SystemExit(f"setup: only {paid} of {args.people} 2024 payments applied: {errors}")
            secs_assess, assessed, _, _, _ = run_parallel(pg, schema, "setup-assess", args.people, args.workers, 500)
            if assessed != args.people:
                raise SystemExit(f"setup: only {assessed} of {args.people} persons assessed for 2025")
            setup_events = ledger.recorder.max_notification_id() or 0
            print(f"setup: {args.people:,} persons registered, enrolled, paid 2024 ({secs_pay:.1f}s, "
                  f"{args.people / secs_pay:,.0f} payments/s) and assessed for 2025 ({secs_assess:.1f}s); "
                  f"{setup_events:,} events; total {time.perf_counter() - t0:.1f}s", flush=True)

            # ---- timed: one 2025 payment per person
            before = ledger.recorder.max_notification_id() or 0
            seconds, applied, errors, cpu, pg_cpu = run_parallel(pg, schema, "timed", args.people, args.workers, args.batch,
                                                    args.profile)
            after = ledger.recorder.max_notification_id() or 0
            if applied != args.people:
                raise SystemExit(f"timed: only {applied} of {args.people} 2025 payments applied: {errors}")
            events = after - before
            counted = count_events_after(pg, schema, before)
            if counted != events:
                print(f"note: notification ids advanced by {events:,} but {counted:,} events were written "
                      "(ids of rolled-back transactions are skipped)")
            # Spot check: the last person has both years paid.
            person = ledger.find_person("RESIDENT_ID", id_number(args.people - 1))
            assert person.paid_fen_for("2024") == 40000 and person.paid_fen_for("2025") == 40000
            assert person.assessments["2025"].period == "2025"
            print(f"timed: {applied:,} payments in {seconds:.2f}s; CPU per payment: {cpu / applied * 1e6:,.0f} µs "
                  f"in the workers (Python), {pg_cpu / applied * 1e6:,.0f} µs in their PostgreSQL backends",
                  flush=True)
            label = f"ledger: payments, batch {args.batch}, {args.workers} worker(s)"
            results.append(Result(label, applied, seconds, "payments", GOAL_PAYMENTS))
            results.append(Result(f"ledger: events of those payments ({events / applied:.1f}/payment)",
                                  events, seconds, "events", GOAL_PAYMENTS * events / applied))
        finally:
            system.close()

        # ---- raw baselines, same run, same server
        if not args.skip_baselines:
            print("baselines ...", flush=True)
            results.insert(0, bench_copy(pg, schema, args.copy_rows))
            results.insert(1, bench_executemany(pg, schema))
            results.insert(2, bench_recorder(pg, schema, per_txn=100))
            results.insert(3, bench_recorder(pg, schema, per_txn=1, txns=1000))

    copy_rate = results[0].rate if not args.skip_baselines else None
    print(f"\nload average at the end {_load()} (other work on the machine skews every figure)")
    print(format_table(results, copy_rate))
    payments = next(r for r in results if r.unit == "payments")
    verdict = "reached" if payments.rate >= GOAL_PAYMENTS else "NOT reached"
    print(f"\ngoal {GOAL_PAYMENTS:,.0f} payments/s: {verdict} ({payments.rate:,.0f}/s)")
    if args.json:
        figures = [figure(r.scenario, r.rate, f"{r.unit}/s", size=args.people, size_unit="people", goal=r.goal,
                          baseline="copy", count=r.count, seconds=r.seconds,
                          key=("payments/s" if r.unit == "payments" else "events/s") if r.goal else None)
                   for r in results]
        write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
