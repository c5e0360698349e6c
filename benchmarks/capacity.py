"""Capacity model: per-core figures measured on this machine, extrapolated to a county, a province, the nation.

    .venv/bin/python benchmarks/capacity.py                  # measure storage per event (needs PostgreSQL), print the model
    .venv/bin/python benchmarks/capacity.py --people 3000    # a bigger sample for the storage figure
    .venv/bin/python benchmarks/capacity.py --no-measure     # the model from the recorded figures only

What it measures itself (in a schema of its own, dropped at the end): the bytes PostgreSQL
keeps per stored event and per insured person-year (events table with its indexes, snapshots,
the tracking/position rows), from ``--people`` residents who pay a first year (registered,
enrolled), are assessed for the next and pay it (the renewal, the common case).

The CPU figures per payment and per event are the ones ``bench_kafka_pipeline.py`` and
``bench_projections.py`` measured on this machine (benchmarks/README.md, quoted in
benchmarks/capacity.md with their commands); they are constants below, to be replaced by a
new measurement when the code changes.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# ----------------------------------------------------------------------------- measured per-core figures
#: CPU µs per renewal payment, `bench_kafka_pipeline.py --payments 100000 --scenarios renewals`, 2 consumers,
#: warm, quiet machine (benchmarks/README.md, session 6: 156-226 µs consumers, 58-85 publisher, 39-47 + 4
#: PostgreSQL, 5-12 broker). The middle of the quiet runs:
CONSUMER_US_PER_PAYMENT = 200.0
PUBLISHER_US_PER_PAYMENT = 70.0     # 2 events published per renewal payment
POSTGRES_US_PER_PAYMENT = 45.0      # backends of consumers + publisher; 2 events written per payment
BROKER_US_PER_PAYMENT = 8.0         # one record in, two out (RF 1 on this machine)
#: First-time payers (registered + enrolled by their payment): consumers 326, publisher 215, PostgreSQL 65 µs.
FIRST_TIME_US_PER_PAYMENT = 326.0 + 215.0 + 65.0 + 15.0
#: Projector (`bench_projections.py`, 1 process, 20,000 residents): 128-144 µs Python + ~34-43 µs PostgreSQL
#: per person event; 6,683-7,294 person events/s in one process.
PROJECTOR_US_PER_EVENT = 140.0 + 40.0
#: One event store: the library's insert takes a table lock (notification ids in commit order), so the
#: writes of one store are serial: raw recorder, 100 events per transaction, 33,100 events/s (bench_payments).
STORE_SERIAL_EVENTS_PER_S = 33_100.0
#: Raw kafka-python on one local broker: consume 98,724-184,733 records/s, produce ~100,000/s.
BROKER_RECORDS_PER_S_PER_CORE = 100_000.0

# ----------------------------------------------------------------------------- assumptions (not measured)
RESIDENT_SHARE = 0.72        # 居民医保 ~9.6 of 13.3 亿 insured; the rest is 职工医保 (payroll, monthly)
PEAK_WEEK_SHARE = 0.20       # of a year's resident payments arriving in the peak (deadline) week ...
PEAK_DAY_SHARE = 0.40        # ... of which the deadline day carries this much
ACTIVE_HOURS_PER_DAY = 12    # payments come through apps and banks by day
PEAK_HOUR_FACTOR = 2.0       # the deadline day's busiest hour against its average active hour
BATCH_HOURS = 2.0            # the tax bureau's file of a day's payments, absorbed within this many hours
ASSESSMENT_HOURS = 48.0      # every resident assessed for the next year (缴费核定) within a weekend
REBUILD_HOURS = 8.0          # a pooling region's views rebuilt from its log in one night
FIRST_TIME_SHARE = 0.05      # payers whose payment also registers and enrolls them (new-born, movers)
EVENTS_PER_RESIDENT_YEAR = 4.0   # assessment, payment, voucher index, a status change now and then
EVENTS_PER_EMPLOYEE_YEAR = 26.0  # 12 payroll contributions x 2 + assessment + change
TARGET_UTILISATION = 0.5     # cores planned at half load at the peak: room for a replay, a failover, a burst
POOLING_REGIONS = 400        # 统筹区: prefecture-level pooling, plus a few provincial ones
LARGEST_REGION = 32_000_000  # the largest pooling region (a provincial-level city pooling as one)


@dataclass(frozen=True)
class Deployment:
    name: str
    insured: float
    regions: int = 1
    biggest_region: float = 0.0  # insured in the largest pooling region (0: all of them)


#: A province of 40 million: ~14 prefecture-level pooling regions, the capital's about 3x the mean.
DEPLOYMENTS = (Deployment("county", 500_000), Deployment("province", 40_000_000, 14, 8_500_000),
               Deployment("nation", 1_330_000_000, POOLING_REGIONS, LARGEST_REGION))


def events_per_year(insured: float) -> float:
    return insured * (RESIDENT_SHARE * EVENTS_PER_RESIDENT_YEAR + (1 - RESIDENT_SHARE) * EVENTS_PER_EMPLOYEE_YEAR)


def loads(insured: float) -> dict[str, float]:
    """Payments (or assessments) per second in the sizing scenarios of the peak week."""
    peak_day = insured * RESIDENT_SHARE * PEAK_WEEK_SHARE * PEAK_DAY_SHARE
    return {
        "live peak hour": peak_day / (ACTIVE_HOURS_PER_DAY * 3600) * PEAK_HOUR_FACTOR,
        "deadline day's file in 2 h": peak_day / (BATCH_HOURS * 3600),
        "year's assessments in 48 h": insured * RESIDENT_SHARE / (ASSESSMENT_HOURS * 3600),
    }


def even_partitions(n: int) -> int:
    """Smallest of 6, 12, 24, 48, ... that is >= n (splits evenly for 1, 2, 3, 6 consumers and their multiples)."""
    p = 6
    while p < n:
        p *= 2
    return p


def model(bytes_per_event: float) -> list[dict[str, object]]:
    rows = []
    us_payment = ((1 - FIRST_TIME_SHARE) * (CONSUMER_US_PER_PAYMENT + PUBLISHER_US_PER_PAYMENT + POSTGRES_US_PER_PAYMENT
                                             + BROKER_US_PER_PAYMENT) + FIRST_TIME_SHARE * FIRST_TIME_US_PER_PAYMENT)
    for d in DEPLOYMENTS:
        load = loads(d.insured)
        rate = max(load.values())  # payments (or assessments) per second the deployment is sized for
        consumers = max(2, math.ceil(rate * CONSUMER_US_PER_PAYMENT / 1e6 / TARGET_UTILISATION))
        publishers = max(1, math.ceil(rate * PUBLISHER_US_PER_PAYMENT / 1e6 / TARGET_UTILISATION))
        projectors = max(1, math.ceil(rate * 2 * PROJECTOR_US_PER_EVENT / 1e6 / TARGET_UTILISATION))
        year_events = events_per_year(d.insured)
        biggest = d.biggest_region or d.insured
        rebuild = events_per_year(biggest) / (REBUILD_HOURS * 3600)  # one year of the biggest region's log
        records_s = rate * 3  # one record in, two events out
        rows.append({
            "deployment": d.name, "insured": d.insured, "pooling regions (event stores)": d.regions,
            **{f"{k} /s": v for k, v in load.items()}, "sized for /s": rate,
            "CPU µs per payment, all processes": us_payment,
            "cores at that rate (50 % load)": rate * us_payment / 1e6 / TARGET_UTILISATION
                                              + rate * 2 * PROJECTOR_US_PER_EVENT / 1e6 / TARGET_UTILISATION,
            "consumer processes": consumers, "publisher processes": publishers,
            "projector processes": projectors,
            "tax.payments.v1 partitions": even_partitions(consumers),
            "brokers (RF 3)": max(3, 3 * math.ceil(records_s / BROKER_RECORDS_PER_S_PER_CORE / TARGET_UTILISATION)),
            "event-store writes/s (2 per payment)": rate * 2,
            "biggest store's share of its serial insert": rate * 2 * biggest / d.insured / STORE_SERIAL_EVENTS_PER_S,
            "projector processes to rebuild a year of the biggest region in 8 h":
                math.ceil(rebuild * PROJECTOR_US_PER_EVENT / 1e6),
            "events per year": year_events,
            "DB GB per year (one copy)": year_events * bytes_per_event / 1e9,
            "DB GB per year, mean pooling region": year_events * bytes_per_event / 1e9 / d.regions,
            "DB GB per year, biggest pooling region": events_per_year(biggest) * bytes_per_event / 1e9,
        })
    return rows


# ----------------------------------------------------------------------------- measurement
def measure_storage(people: int) -> dict[str, float]:
    """Bytes on disk per stored event and per person-year, from a renewal year of ``people`` residents."""
    from benchmarks import common
    from benchmarks.bench_payments import FEED, _assess, _record, _system, payment

    pg = common.pg_settings()
    with common.dedicated_schema(pg, "capacity") as schema:
        system = _system(pg, schema)
        try:
            ledger = system.ledger
            t0 = time.monotonic()
            applied, errors = _record(ledger, [(payment(i, 2024), FEED) for i in range(people)], 200)
            assert applied == people, errors
            _assess(ledger, range(people), 2025, 500)
            first = ledger.recorder.max_notification_id() or 0
            with common.connect(pg, schema) as conn:
                before = _sizes(conn, schema)
            applied, errors = _record(ledger, [(payment(i, 2025), FEED) for i in range(people)], 200)
            assert applied == people, errors
            last = ledger.recorder.max_notification_id() or 0
            with common.connect(pg, schema) as conn:
                after = _sizes(conn, schema)
            seconds = time.monotonic() - t0
        finally:
            system.close()
    events = last
    return {"people": people, "events": events, "events per person (2 years)": events / people,
            "bytes total": after, "bytes per event": after / events,
            "renewal events": last - first, "renewal bytes per event": (after - before) / max(1, last - first),
            "bytes per person": after / people, "seconds": seconds}


def _sizes(conn, schema: str) -> float:
    row = conn.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                       "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
                       (schema,)).fetchone()
    return float(row[0] or 0)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        if v >= 100:
            return f"{v:,.0f}"
        if v >= 1:
            return f"{v:,.1f}"
        return f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--no-measure", action="store_true", help="use --bytes-per-event instead of measuring")
    parser.add_argument("--bytes-per-event", type=float, default=None)
    args = parser.parse_args(argv)
    bpe = args.bytes_per_event
    if not args.no_measure:
        m = measure_storage(args.people)
        print("storage measured on this PostgreSQL:")
        for k, v in m.items():
            print(f"  {k}: {_fmt(v)}")
        bpe = bpe or m["bytes per event"]
    if bpe is None:
        parser.error("--no-measure needs --bytes-per-event")
    rows = model(bpe)
    keys = list(rows[0])
    print(f"\nmodel (bytes per event {bpe:,.0f}):")
    print("| " + " | ".join(["figure"] + [str(r["deployment"]) for r in rows]) + " |")
    print("| --- " * (len(rows) + 1) + "|")
    for k in keys[1:]:
        print("| " + " | ".join([k] + [_fmt(r[k]) for r in rows]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
