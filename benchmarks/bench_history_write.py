"""Benchmark: what storing a person's history costs after one more payment, by the history's length (issue 19).

    .venv/bin/python benchmarks/bench_history_write.py [--payments 2 20 200]

One resident, enrolled, paying again and again (the real Ledger, in memory). For a
history of N payments plus one more, the CPU time (process time, best of 20 x 50) to
encode what a view store writes: the WHOLE history (``history_to_plain`` + codec JSON,
what every write did before the base + tail layout) against the history's CHANGES
(``projections.store.history_record`` appending to the tail: ``history_changes`` + codec
JSON). The first grows with N; the second should not. The last line is
``history_write payments=… whole_us=… changes_us=…`` (for the longest history).
"""
from __future__ import annotations

import argparse
import time
from datetime import date, datetime, timezone

from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.history import fold_many, history_to_plain, person_key
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import Provenance, TaxPaymentRecord
from projections.row_codec import dumps_row
from projections.store import history_record

API = Provenance(source="api", user="bench", request_id="bench-1")
FEED = Provenance(source="kafka", topic="tax.payments.v1", partition=0, offset=1)


def _cpu_us(work, repeat: int = 50, trials: int = 20) -> float:
    best = float("inf")
    for _ in range(trials):
        started = time.process_time()
        for _ in range(repeat):
            work()
        best = min(best, (time.process_time() - started) / repeat)
    return best * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, nargs="+", default=[2, 20, 200])
    args = parser.parse_args(argv)
    system = bootstrap(Settings(persistence="memory", id_key=b"bench-history-write"))
    ledger = system.ledger
    number = make_resident_id("610902", date(1980, 5, 17), 1)
    ledger.enroll(id_type="RESIDENT_ID", id_number=number, name="王芳", scheme="RESIDENT", region_code="610902",
                  grid_code="610902100001", channel="COUNTER", effective_date=date(2024, 1, 1), provenance=API)
    for n in range(max(args.payments) + 1):
        year = 2024 + n % 3
        ledger.record_tax_record(TaxPaymentRecord(
            voucher_no=f"V{n:05d}", tax_office="16109020000", id_type="RESIDENT_ID", id_number=number, name="王芳",
            region_code="610902", levy_item="RESIDENT", period_start=date(year, 1, 1), period_end=date(year, 12, 31),
            amount_fen=100 + n, paid_at=datetime(2024, 2, 1, 9, tzinfo=timezone.utc), credited_on=date(2024, 2, 1),
            channel="APP"), provenance=FEED)
    events, start = [], 1  # the notification log, in order
    while batch := ledger.recorder.select_notifications(start, 500):
        events += [e for e in (ledger.mapper.to_domain_event(n) for n in batch) if person_key(e) is not None]
        start = batch[-1].id + 1
    first_paid = next(i for i, e in enumerate(events) if type(e).__name__ == "ContributionPaid")
    line = ""
    for payments in args.payments:
        cut = first_paid + payments
        old = fold_many(None, events[:cut])
        new = fold_many(old, events[cut:cut + 1])  # one more payment
        shape = (1 << 40, 0, 0)  # a base large enough that the changes are appended, never compacted here
        whole_text = dumps_row(history_to_plain(new))
        changes_text = history_record(new, old, shape)[1]
        whole = _cpu_us(lambda: dumps_row(history_to_plain(new)))
        changes = _cpu_us(lambda: history_record(new, old, shape))
        print(f"{len(new.payments):4d} payments: whole history {whole:7.0f} µs ({len(whole_text):,} B)   "
              f"its changes {changes:5.0f} µs ({len(changes_text):,} B)", flush=True)
        line = f"history_write payments={len(new.payments)} whole_us={whole:.0f} changes_us={changes:.0f}"
    print(line)
    system.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
