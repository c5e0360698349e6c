"""Benchmark: the auditor's tools on PostgreSQL (issue 7).

    eval "$(.venv/bin/python -m infra env)"      # or let the script start the local stack
    .venv/bin/python benchmarks/bench_audit.py [--events 200000] [--runs 200]

Setup (not timed, its time is printed), in a schema of the benchmark's own:

* one person with ``--person-events`` events (default 500: a flexible worker's 36
  monthly assessments and payments, then personal-account movements), saved in one
  transaction (the ledger snapshots it every 100 events);
* residents with 11 events each (registered, enrolled, assessed and paid for 2024,
  2025 and 2026, and the source-record index of each tax voucher) until the store
  holds ``--events`` events; built with the domain's own commands in memory and saved
  300 persons per transaction.

Timed:

1. **as-of replay** of the 500-event person, ``--runs`` times: ``replay_as_of`` at an
   instant halfway through the history (one ``events.get``, two folds and derivations,
   the comparison with today and its causes) -> p50, p95 (goal p50 <= 50 ms); the full
   ``history_report`` (state after every one of the 500 steps) a few times, for reference;
2. **verification of every chain** (``verify_all``: rows read per aggregate in batches,
   decoded with the app's mapper, re-digested, snapshots compared) -> events/s (goal
   >= 50,000 events/s);
3. **sealing** the day (``seal``: rows in notification order, digest per day, chain heads
   written) and **recomputing** the sealed days (``verify_digests``) -> events/s.

``--profile FILE`` writes a pyinstrument profile of the verification (pip install pyinstrument).
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import dedicated_schema, figure, pg_settings, write_json  # noqa: E402

from entrypoints.audit import history_report, replay_as_of, seal, verify_all, verify_digests  # noqa: E402
from entrypoints.audit.verify import auto_workers  # noqa: E402
from entrypoints.wiring import bootstrap  # noqa: E402
from infra.settings import Settings  # noqa: E402
from ledger.domain.identity import make_resident_id  # noqa: E402
from ledger.domain.person import Person, business_date  # noqa: E402
from ledger.domain.source_record import SourceRecord  # noqa: E402
from ledger.domain.vocabulary import AccountEntryReason, EnrollmentChannel, Scheme  # noqa: E402
from ledger.policy import rules  # noqa: E402

ID_KEY = b"benchmark-audit-key"
REGIONS = ("610902", "610921", "610922", "610923", "610924", "610925", "610926", "610927", "610929", "610981")
OFFICE = "16109020000"
GOAL_REPLAY_P50_MS = 50.0
GOAL_VERIFY_RATE = 50_000.0


def provenance(offset: int) -> dict[str, str]:
    return {"source": "kafka", "topic": "tax.payments.v1", "partition": str(offset % 3), "offset": str(offset)}


def new_person(ledger, number: str, name: str, grid: str | None, on: date) -> Person:
    identity, pid = ledger.identify("RESIDENT_ID", number)
    return Person.register(person_id=pid, id_type="RESIDENT_ID", id_number=identity.id_number, name=name,
                           birth_date=identity.birth_date, sex=identity.sex, household_grid=grid, effective_date=on,
                           provenance={"source": "batch", "record_key": "bench"})


def pay(person: Person, ledger, *, voucher: str, levy: Scheme, region: str, amount: int, start: date, end: date,
        at: datetime, offset: int) -> SourceRecord:
    person.record_payment(voucher_no=voucher, tax_office=OFFICE, levy_item=levy, region_code=region,
                          amount_fen=amount, period_start=start, period_end=end, paid_at=at, credited_on=at.date(),
                          channel="APP", provenance=provenance(offset), policies=ledger.policies)
    return SourceRecord.take(kind="tax-voucher", key=f"{OFFICE}|{voucher}", person_id=person.id,
                             content_digest=person.payments[f"{OFFICE}|{voucher}"].content_digest,
                             provenance=provenance(offset))


def big_person(ledger, events: int) -> tuple[str, object]:
    """A flexible worker (employee scheme) with ``events`` events, saved at once."""
    number = make_resident_id("610902", date(1970, 1, 1), 1)
    person = new_person(ledger, number, "王大伟", "610902100001", date(2024, 1, 1))
    person.enroll(scheme=Scheme.EMPLOYEE, region_code="610902", grid_code="610902100001", flexible=True,
                  employer_id=None, channel=EnrollmentChannel.COUNTER, effective_date=date(2024, 1, 1),
                  provenance={"source": "api", "user": "clerk01", "request_id": "bench"}, policies=ledger.policies)
    sources = []
    for year in (2024, 2025, 2026):
        table = ledger.policies.get("610902", year)
        for month in range(1, 13):
            key = f"{year}-{month:02d}"
            result = rules.employee_contribution(table, 600_000)
            person.assess_employee_month(month=key, table=table, result=result,
                                         due_date=rules.employee_due_date(table, year, month),
                                         effective_date=date(year, month, 1), provenance={"source": "batch"})
            last = (date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)) - timedelta(days=1)
            sources.append(pay(person, ledger, voucher=f"BIG-{key}", levy=Scheme.EMPLOYEE, region="610902",
                               amount=person.assessments[key].due_fen, start=date(year, month, 1), end=last,
                               at=datetime(year, month, 5, 2, tzinfo=timezone.utc), offset=year * 100 + month))
    n = 0
    while person.version < events:
        n += 1
        day = date(2024, 1, 1) + timedelta(days=n % 1000)
        if n % 3:
            person.credit_account(amount_fen=1000 + n, reason=AccountEntryReason.CONTRIBUTION, reference=f"C{n}",
                                  effective_date=day, provenance={"source": "batch"})
        else:
            person.debit_account(amount_fen=700, reason=AccountEntryReason.MEDICAL_EXPENSE, reference=f"D{n}",
                                 effective_date=day, provenance={"source": "batch"})
    ledger.save(person, *sources)
    return number, person.id


def residents(ledger, count: int, first_seq: int) -> int:
    """``count`` residents of 11 events each (8 person events, 3 source records), 300 per transaction."""
    written = 0
    batch: list = []
    for i in range(count):
        seq = first_seq + i
        region = REGIONS[seq % len(REGIONS)]
        birth = date(1950, 1, 1) + timedelta(days=seq // 900)
        number = make_resident_id(region, birth, seq % 900 + 1)
        grid = f"{region}100{seq % 20 + 1:03d}"
        person = new_person(ledger, number, "居民", grid, date(2023, 9, 10))
        person.enroll(scheme=Scheme.RESIDENT, region_code=region, grid_code=grid, flexible=False, employer_id=None,
                      channel=EnrollmentChannel.BATCH_IMPORT, effective_date=date(2023, 9, 10),
                      provenance={"source": "batch", "record_key": f"import-{seq}"}, policies=ledger.policies)
        for year in (2024, 2025, 2026):
            table = ledger.policies.get(region, year)
            person.assess_resident_year(table=table, effective_date=date(year - 1, 9, 10),
                                        provenance={"source": "batch"})
            batch.append(pay(person, ledger, voucher=f"R{seq}-{year}", levy=Scheme.RESIDENT, region=region,
                             amount=person.assessments[str(year)].due_fen, start=date(year, 1, 1),
                             end=date(year, 12, 31), at=datetime(year - 1, 10, 8, 1, tzinfo=timezone.utc),
                             offset=seq * 3 + year))
        batch.append(person)
        written += person.version + 3
        if len(batch) >= 1200:
            ledger.save(*batch)
            batch = []
    if batch:
        ledger.save(*batch)
    return written


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events in the store (default 200000)")
    parser.add_argument("--person-events", type=int, default=500, help="events of the replayed person (500)")
    parser.add_argument("--runs", type=int, default=200, help="replays timed (default 200)")
    parser.add_argument("--keep-schema", action="store_true")
    parser.add_argument("--profile", metavar="FILE", help="pyinstrument profile of verify_all to this text file")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE (for run_all.py)")
    args = parser.parse_args(argv)

    settings = pg_settings()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with dedicated_schema(settings, "bench_audit", keep=args.keep_schema) as schema:
        system = bootstrap(Settings(persistence="postgres", postgres={**settings, "POSTGRES_SCHEMA": schema},
                                    id_key=ID_KEY))
        ledger = system.ledger
        try:
            started = time.perf_counter()
            number, pid = big_person(ledger, args.person_events)
            written = ledger.recorder.max_notification_id()
            per_resident = 11
            written += residents(ledger, max(0, (args.events - written) // per_resident), 1000)
            total = ledger.recorder.max_notification_id()
            print(f"setup: {total:,} events ({args.person_events} for the replayed person) in "
                  f"{time.perf_counter() - started:.1f} s (schema {schema})", flush=True)

            # 1. as-of replay -------------------------------------------------------------
            events = list(ledger.events.get(pid))
            assert len(events) == args.person_events, len(events)
            instant = events[len(events) // 2].timestamp
            replay_as_of(ledger, pid, instant, year=2025)  # warm: policy tables, prepared statements
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                result = replay_as_of(ledger, pid, instant, year=2025)
                times.append((time.perf_counter() - t) * 1000)
            assert result["known_version"] == len(events) // 2 + 1
            load = []
            for _ in range(min(50, args.runs)):
                t = time.perf_counter()
                list(ledger.events.get(pid))
                load.append((time.perf_counter() - t) * 1000)
            full = []
            for _ in range(3):
                t = time.perf_counter()
                history_report(ledger, "RESIDENT_ID", number, as_of=instant, verify=False)
                full.append(time.perf_counter() - t)

            # 2. verification of every chain ----------------------------------------------
            profiler = None
            if args.profile:
                from pyinstrument import Profiler

                profiler = Profiler()
                profiler.start()
            cpu = time.process_time()
            single = verify_all(ledger, workers=1)
            single_cpu = time.process_time() - cpu
            if profiler is not None:
                profiler.stop()
                Path(args.profile).write_text(profiler.output_text(unicode=True, color=False))
            assert single.clean, single.findings[:5]
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            verified = verify_all(ledger, workers=None)  # what the CLI does: forked workers for a big store
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            parallel_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
            assert verified.clean, verified.findings[:5]

            # 3. sealing and recomputing the digests ---------------------------------------
            t = time.perf_counter()
            sealed = seal(ledger, None, through=business_date(datetime.now(timezone.utc)))
            seal_seconds = time.perf_counter() - t
            recomputed = verify_digests(ledger, None)
            assert recomputed.clean, recomputed.findings[:5]
            verified_again = verify_all(ledger, workers=None)  # now with every chain anchored
        finally:
            system.close()

    p50, p95 = statistics.median(times), percentile(times, 0.95)
    workers = auto_workers(total)
    rows = [
        ("as-of replay, 500-event person: p50", f"{p50:.1f} ms", f"<= {GOAL_REPLAY_P50_MS:.0f} ms",
         "yes" if p50 <= GOAL_REPLAY_P50_MS else "NO"),
        ("as-of replay, 500-event person: p95", f"{p95:.1f} ms", "-", ""),
        ("  of which events.get (p50)", f"{statistics.median(load):.1f} ms", "-", ""),
        ("history report, state after all 500 steps", f"{statistics.median(full) * 1000:.0f} ms", "-", ""),
        (f"verify all chains, 1 process ({single.events:,} events, {single.aggregates:,} aggregates)",
         f"{single.events_per_second:,.0f} events/s", f">= {GOAL_VERIFY_RATE:,.0f} events/s",
         "yes" if single.events_per_second >= GOAL_VERIFY_RATE else "NO"),
        ("  CPU of that process per event (PostgreSQL's not counted)", f"{single_cpu / single.events * 1e6:.1f} us",
         f"<= {1e6 / GOAL_VERIFY_RATE:.0f} us", "yes" if single_cpu / single.events * 1e6 <= 1e6 / GOAL_VERIFY_RATE
         else "NO"),
        (f"verify all chains, as the CLI does ({workers} forked workers)", f"{verified.events_per_second:,.0f} events/s",
         f">= {GOAL_VERIFY_RATE:,.0f} events/s", "yes" if verified.events_per_second >= GOAL_VERIFY_RATE else "NO"),
        ("  CPU of the workers per event", f"{parallel_cpu / verified.events * 1e6:.1f} us", "-", ""),
        ("verify all chains, as the CLI, every chain anchored", f"{verified_again.events_per_second:,.0f} events/s",
         f">= {GOAL_VERIFY_RATE:,.0f} events/s", "yes" if verified_again.events_per_second >= GOAL_VERIFY_RATE else "NO"),
        (f"seal ({sealed.events:,} events, {len(sealed.segments)} segment(s), heads written)",
         f"{sealed.events / seal_seconds:,.0f} events/s", "-", ""),
        ("recompute sealed days (verify --digests)", f"{recomputed.events_per_second:,.0f} events/s", "-", ""),
    ]
    widths = [max(len(r[i]) for r in rows + [("scenario", "measured", "goal", "met")]) for i in range(4)]
    print()
    for n, row in enumerate([("scenario", "measured", "goal", "met")] + rows):
        print("  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\nreplay runs: {args.runs}; min {min(times):.1f} ms, max {max(times):.1f} ms")
    print(f"load average at end: {os.getloadavg()} (2 cores shared with PostgreSQL and other work)")
    size = {"size": total, "size_unit": "events"}
    write_json(args.json, [
        figure(f"as-of replay p50, {args.person_events}-event person", p50, "ms", goal=GOAL_REPLAY_P50_MS,
               better="lower", kind="latency", key="as-of replay p50", **size),
        figure("verify all chains, 1 process", single.events_per_second, "events/s", goal=GOAL_VERIFY_RATE,
               baseline="copy", count=single.events, **size),
        figure(f"verify all chains, CLI ({workers} workers)", verified.events_per_second, "events/s",
               goal=GOAL_VERIFY_RATE, baseline="copy", count=verified.events, key="verify all chains, CLI", **size),
        figure("seal the day", sealed.events / seal_seconds, "events/s", baseline="copy", count=sealed.events,
               seconds=seal_seconds, **size),
        figure("recompute sealed days", recomputed.events_per_second, "events/s", baseline="copy", **size),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
