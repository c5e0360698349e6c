"""What synchronous replication costs a commit: the library's recorder on the cluster's primary, A/B.

    python -m infra up --cluster                       # the PostgreSQL pair (infra/cluster.py)
    .venv/bin/python benchmarks/bench_sync_commit.py   # LEDGER_STATE_DIR names the cluster's state dir

Each round writes through the eventsourcing PostgreSQL recorder (``common.bench_recorder``), 100 events
per transaction and 1 per transaction, with ``synchronous_commit=on`` (the cluster's setting: the
commit waits for the standby's flush) and ``=local`` (it does not), alternating, in schemas of its own.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    from benchmarks import common
    from infra import cluster, stack

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    cfg = stack.StackConfig.from_env()
    if not cluster.is_cluster(cfg):
        parser.error(f"{cfg.state_dir} holds no cluster: `python -m infra up --cluster` first")
    st = cluster.load_state(cfg)
    s = cluster.settings(cfg)
    pg = {k: s[k] for k in ("POSTGRES_DBNAME", "POSTGRES_USER", "POSTGRES_PASSWORD")}
    pg.update(POSTGRES_HOST=cfg.host, POSTGRES_PORT=str(st.pg_node_port(st.primary)))
    os.environ.pop("PGTARGETSESSIONATTRS", None)
    print(f"primary {st.primary} on port {pg['POSTGRES_PORT']}; load average {os.getloadavg()[0]:.1f}")
    for _ in range(args.rounds):
        for mode in ("on", "local"):
            os.environ["PGOPTIONS"] = f"-c synchronous_commit={mode}"  # libpq passes it to each session
            with common.dedicated_schema(pg, "synccost") as schema:
                r100 = common.bench_recorder(pg, schema, per_txn=100, txns=200)
            with common.dedicated_schema(pg, "synccost") as schema:
                r1 = common.bench_recorder(pg, schema, per_txn=1, txns=1000)
            print(f"synchronous_commit={mode:5s}  100/txn: {r100.rate:8,.0f} events/s   "
                  f"1/txn: {r1.rate:6,.0f} events/s", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
