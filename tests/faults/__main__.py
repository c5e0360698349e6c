"""``python -m tests.faults [--size small|large] [--seed N] [--keep-logs] [--cluster]``: run the suite, print its report.

``--cluster``: on 3 Kafka brokers and a PostgreSQL primary + synchronous standby (infra/cluster.py); the broker
restart becomes a SIGKILL of a partition leader plus a second broker stopped while it is down, the PostgreSQL
crash becomes a SIGKILL of the primary, promotion of the standby and the old primary's rejoin.

Exit 0: every check found 0 mismatches. 1: a mismatch. 3: the pipeline did not converge
in time (or the run broke); the processes' last log lines are printed above the report.
"""
from __future__ import annotations

import argparse
import json
import sys

from tests.faults.suite import CONSUMER_BATCH, SIZES, RunReport, run


def print_report(r: RunReport) -> None:
    size = SIZES[r.size]
    print()
    flag = " --cluster" if r.cluster else ""
    print(f"== Fault-injection suite{' (cluster)' if r.cluster else ''}: size {r.size} ({r.people:,} people), "
          f"seed {r.seed} (rerun: python -m tests.faults --size {r.size} --seed {r.seed}{flag}) ==")
    print("Faults injected:")
    for kind, n in sorted(r.faults.items()):
        print(f"  {n:4d}  {kind}")
    print(f"  (burst: {r.feeds.burst:,} records onto tax.payments.v1 for a consumer taking {CONSUMER_BATCH} "
          f"per batch; {size.kills} SIGKILLs planned per process)")
    if r.timeline:
        print("Server faults, in order:")
        for line in r.timeline:
            print(f"  {line}")
    print("Processes that exited by themselves and were restarted by the suite's supervisor:")
    any_exit = False
    for name, exits in r.exits.items():
        if exits:
            any_exit = True
            print(f"  {name}: {len(exits)} time(s); first: {exits[0][:200]}")
    if not any_exit:
        print("  none: every process survived the broker and database restarts on its own")
    f = r.feeds
    print(f"Records fed: {dict(f.produced)} (burst included); consumed: {dict(f.consumed)}; "
          f"clerk actions {f.clerk_actions:,} (refused: {sum(f.clerk_errors.values())})")
    if r.transfers:
        print(f"Transfer halves run as `ledger clerk transfer-out|transfer-in` processes: "
              f"{json.dumps(r.transfers, ensure_ascii=False)}")
    for key, value in r.figures.items():
        print(f"{key}: {value}")
    if r.checks:
        print("Checks (mismatches must be 0):")
        for name, c in r.checks.items():
            detail = {k: v for k, v in c.items() if k != "mismatches"}
            print(f"  {'OK  ' if c['mismatches'] == 0 else 'FAIL'} {c['mismatches']:5d}  {name}")
            print(f"              {json.dumps(detail, ensure_ascii=False, default=str)}")
        print(f"Mismatches: {r.mismatches}")
    print(f"Elapsed (s): {r.seconds}")
    if r.error:
        print(f"RUN FAILED: {r.error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="small",
                        help="small: CI's size, a few minutes; large: 10x the county, more kills and a bigger burst")
    parser.add_argument("--seed", type=int, default=20251122, help="the county, the fault points and their moments")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs (the path is printed)")
    parser.add_argument("--cluster", action="store_true",
                        help="3 Kafka brokers + PostgreSQL primary/standby; broker kills and a PostgreSQL failover")
    args = parser.parse_args(argv)
    report = run(args.size, args.seed, keep=args.keep_logs, cluster=args.cluster)
    print_report(report)
    if report.error:
        return 3
    return 0 if report.mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
