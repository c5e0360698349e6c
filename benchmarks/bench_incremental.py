"""Benchmark: incremental projection, person events per second, the way ``ledger project --follow`` runs (issue 19).

    .venv/bin/python benchmarks/bench_incremental.py --people 3000 [--store sqlite|postgres] [--rounds 20]
    source /tmp/stack.env   # or eval "$(.venv/bin/python -m infra env)": for --store postgres

Setup (not timed): the synthetic county of ``--people`` residents (cached events, see
``bench_projections.county_events``) copied into an event store (in memory for the
SQLite view store, a schema of its own on PostgreSQL), and its views built by a rebuild.

``--warm``: first one payment for every resident, applied by the runner (not timed),
so the runner remembers everyone, as one that has followed for a while does; without
it every person's first event after the start is a miss (read from the store).

Timed: ``--rounds`` rounds; each records ``--per-round`` tax payments for residents
picked at random (the ledger's own ``record_tax_records``, not timed), then one
``run_once`` of a runner kept across rounds (what ``--follow`` does after each idle
wait). The figure is person events applied / seconds inside ``run_once``, with the
runner's CPU per event. Goal (issue 19): >= 15,000 person events/s in one process,
flat from 3,000 to 50,000 residents. The last line is
``incremental people=… store=… events=… ev_s=… cpu_us_per_event=… load=…``.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_projections import PLACES, cached_rows, county_events  # noqa: E402
from common import REPO_ROOT, dedicated_schema, pg_settings  # noqa: E402

from eventsourcing.persistence import StoredEvent  # noqa: E402

from entrypoints.wiring import bootstrap  # noqa: E402
from infra.settings import Settings  # noqa: E402
from ledger.inbound_records import Provenance, TaxPaymentRecord  # noqa: E402
from projections.projection_runner import PolicyCache, ProjectionRunner, rebuild  # noqa: E402
from projections.sources import NotificationLogSource  # noqa: E402
from projections.store import PostgresViewStore, SQLiteViewStore  # noqa: E402

ID_KEY = b"benchmark-projections"  # the cached county's events were recorded with this key
GOAL = 15_000.0
FEED = Provenance(source="batch", topic="benchmark", record_key="bench")


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _copy(ledger, cache: Path) -> int:
    count = 0
    for rows in cached_rows(cache, 5000):
        ledger.recorder.insert_events([StoredEvent(UUID(o), v, t, s) for o, v, t, s in rows])
        count += len(rows)
    return count


def run(args: argparse.Namespace, system, store) -> float:
    cache, _, county = county_events(args.people, args.seed, Path(args.cache_dir), 1, args.places)
    started = time.perf_counter()
    copied = _copy(system.ledger, cache)
    print(f"{copied:,} events copied into the event store in {time.perf_counter() - started:.1f}s", flush=True)
    policies = PolicyCache(system.policies)
    started = time.perf_counter()
    built = rebuild(store, NotificationLogSource(system.ledger, page_size=5000), policies)
    print(f"views rebuilt: {built.persons:,} persons in {time.perf_counter() - started:.1f}s", flush=True)

    residents = [p.id_number for p in county.persons if p.plan == "RESIDENT" and p.died_on is None
                 and p.moved_out_on is None and p.origin_region is None]
    rng = random.Random(args.seed)
    runner = ProjectionRunner(store, NotificationLogSource(system.ledger), policies, batch_size=args.batch)
    runner.run_once()  # the first run of a new runner retries the quarantine: not part of the figure
    year = county.coverage_year
    events = 0
    seconds = cpu = 0.0
    voucher = 0
    paid_at = datetime(year, 3, 1, 2, 0, tzinfo=timezone.utc)
    print(f"{args.rounds} rounds of {args.per_round} payments among {len(residents):,} residents "
          f"(load average {_load()})", flush=True)
    def payments(ids):
        nonlocal voucher
        records = []
        for n in ids:
            voucher += 1
            records.append((TaxPaymentRecord(
                voucher_no=f"I{year}{voucher:09d}", tax_office="16109020000", id_type="RESIDENT_ID", id_number=n,
                name="测试", region_code=county.region_code, levy_item="RESIDENT",
                period_start=datetime(year, 1, 1).date(), period_end=datetime(year, 12, 31).date(),
                amount_fen=rng.choice((100, 5000, 40000)), paid_at=paid_at + timedelta(minutes=voucher),
                credited_on=(paid_at + timedelta(minutes=voucher)).date(), channel="APP"), FEED))
        for i in range(0, len(records), 500):
            system.ledger.record_tax_records(records[i:i + 500])

    if args.warm:  # a runner that has followed for a while: every resident written once by it (not timed)
        payments(residents)
        started = time.perf_counter()
        warm = runner.run_once()
        print(f"warm-up: {warm.events:,} person events in {time.perf_counter() - started:.1f}s "
              f"(load average {_load()})", flush=True)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    for k in range(args.rounds):
        payments(rng.choices(residents, k=args.per_round))
        c0, t0 = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        result = runner.run_once()
        if profiler is not None:
            profiler.disable()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        seconds += dt
        cpu += dc
        events += result.events
        if args.verbose:
            print(f"  round {k + 1}: {result.events:,} events in {dt:.3f}s ({result.events / dt:,.0f}/s)", flush=True)
    if profiler is not None:
        profiler.dump_stats(args.profile)
        print(f"profile of the timed runs written to {args.profile} (python -m pstats)", flush=True)
    rate = events / seconds if seconds else 0.0
    print(f"incremental: {events:,} person events in {seconds:.2f}s: {rate:,.0f} person events/s "
          f"(goal >= {GOAL:,.0f}: {'met' if rate >= GOAL else 'NOT met'}); CPU of this process "
          f"{cpu / max(1, events) * 1e6:.0f} µs per event", flush=True)
    print(f"incremental people={args.people} store={args.store} warm={int(args.warm)} events={events} ev_s={rate:.0f} "
          f"cpu_us_per_event={cpu / max(1, events) * 1e6:.0f} load={_load().replace(' ', '/')}", flush=True)
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=2000, help="payments recorded before each run_once")
    parser.add_argument("--batch", type=int, default=2000, help="positions per batch (ledger project's default)")
    parser.add_argument("--places", choices=sorted(PLACES), default="compact")
    parser.add_argument("--cache-dir", default=str(REPO_ROOT / "var" / "bench"))
    parser.add_argument("--warm", action="store_true",
                        help="first (not timed) one payment for every resident: the runner has seen everyone, as a "
                             "runner that has followed for a while has")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the timed runs into FILE (the figures then "
                        "include the profiler's overhead)")
    args = parser.parse_args(argv)
    print(f"{args.people:,} people, {args.store} view store; {os.cpu_count()} CPUs, load average {_load()}",
          flush=True)
    if args.store == "sqlite":
        system = bootstrap(Settings(persistence="memory", id_key=ID_KEY))
        with tempfile.TemporaryDirectory() as tmp:
            store = SQLiteViewStore(Path(tmp) / "views.sqlite")
            try:
                run(args, system, store)
            finally:
                store.close()
                system.close()
        return 0
    pg = pg_settings(start_stack=False)
    with dedicated_schema(pg, "bench_incremental") as schema:
        settings = {**pg, "POSTGRES_SCHEMA": schema}
        # The cached events were recorded in memory, unencrypted: read them as they are.
        system = bootstrap(Settings(persistence="postgres", postgres=settings, id_key=ID_KEY, encrypt_at_rest=False))
        store = PostgresViewStore(settings)
        try:
            run(args, system, store)
        finally:
            store.close()
            system.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
