"""`python -m infra up|down|status|env|logs|fetch|clean|failover|rejoin`: the local stack's command line.

The servers are :mod:`infra.stack` (one Kafka broker + one PostgreSQL) and :mod:`infra.cluster`
(the pair, ``up --cluster``); this module picks one and runs the command, so neither of those
imports the other's caller (the cluster builds on the stack's pieces).
"""
from __future__ import annotations

import argparse
import json
import sys

from infra import cluster
from infra.stack import (DOWN, Echo, StackConfig, StackError, _exports, _tail, clean, down, ensure_kafka_jars, pg_root, settings,
                         status, up)

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra",
        description="Local Kafka + PostgreSQL for the ledger (no Docker). "
                    "State in $LEDGER_STATE_DIR (default: var/ at the repo root).")
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start both services (idempotent) and print the settings")
    p_up.add_argument("--clean", action="store_true", help="delete all data first")
    p_up.add_argument("--cluster", action="store_true",
                      help="3 Kafka brokers + PostgreSQL primary and synchronous standby (see infra/cluster.py); "
                           "also LEDGER_KAFKA_BROKERS=3. The state dir remembers it.")
    p_up.add_argument("--timeout", type=float, default=None,
                      help="overall start limit in seconds (default $LEDGER_STACK_TIMEOUT or 120)")
    p_down = sub.add_parser("down", help="stop both services (data is kept)")
    p_down.add_argument("--clean", action="store_true", help="also delete their data")
    p_status = sub.add_parser("status", help="exit 0 when both are up, 3 when both are down, 1 otherwise")
    p_status.add_argument("--json", action="store_true")
    sub.add_parser("env", help="print `export K=V` lines (eval \"$(python -m infra env)\")")
    sub.add_parser("fetch", help="only fetch the Kafka jars into infra/kafka/lib")
    sub.add_parser("clean", help="same as `down --clean`")
    p_fail = sub.add_parser("failover", help="(cluster) promote the standby; the old primary rejoins as standby")
    p_fail.add_argument("--no-rejoin", action="store_true", help="leave the old primary stopped")
    sub.add_parser("rejoin", help="(cluster) the stopped old primary comes back as the standby")
    p_logs = sub.add_parser("logs", help="print the end of the broker's and the server's logs")
    p_logs.add_argument("-n", "--lines", type=int, default=40)
    args = parser.parse_args(argv)

    def echo(msg: str) -> None:
        try:
            print(msg, file=sys.stderr if args.command == "env" else sys.stdout, flush=True)
        except BrokenPipeError:  # `... | head`: finish the job anyway, silently
            pass

    try:
        cfg = StackConfig.from_env()
        if cluster.is_cluster(cfg) or (args.command == "up" and (args.cluster or cluster.wanted())):
            return _cluster_main(args, cfg, echo)
        if args.command in ("failover", "rejoin"):
            raise StackError(f"{cfg.state_dir} runs a single PostgreSQL server: nothing to fail over to",
                             "start the pair with `python -m infra up --cluster`")
        if args.command == "up":
            if args.clean:
                clean(cfg, echo=echo)
            values = up(cfg, timeout=args.timeout, echo=echo)
            print("\n# connection settings (eval \"$(python -m infra env)\" to export them):")
            print(_exports(values))
        elif args.command in ("down", "clean"):
            if args.command == "clean" or args.clean:
                clean(cfg, echo=echo)
            else:
                down(cfg, echo=echo)
        elif args.command == "status":
            report = status(cfg)
            print(json.dumps(report.as_dict(), indent=2) if args.json else report)
            if report.healthy:
                return 0
            return 3 if all(s.state == DOWN for s in report.services) else 1
        elif args.command == "env":
            print(_exports(settings(cfg)))
        elif args.command == "logs":
            for path in (cfg.kafka_logs / "server.log", cfg.kafka_logs / "stdout.log",
                         pg_root(cfg) / "postgresql.log"):
                lines = _tail(path, args.lines)
                print(f"==> {path} <==" + ("" if lines else " (empty or missing)"))
                print("\n".join(lines))
        elif args.command == "fetch":
            ensure_kafka_jars(cfg, echo=echo)
            print(f"kafka jars ready in {cfg.kafka_lib}")
    except StackError as exc:
        print(f"infra {args.command}: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print(f"infra {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0


def _cluster_main(args: argparse.Namespace, cfg: StackConfig, echo: Echo) -> int:
    """The CLI in cluster mode (the state dir holds a cluster, or `up --cluster`)."""
    if args.command == "up":
        if args.clean:
            cluster.clean(cfg, echo=echo)
        values = cluster.up(cfg, timeout=args.timeout, echo=echo)
        print("\n# connection settings (eval \"$(python -m infra env)\" to export them):")
        print(_exports(values))
    elif args.command in ("down", "clean"):
        if args.command == "clean" or args.clean:
            cluster.clean(cfg, echo=echo)
        else:
            cluster.down(cfg, echo=echo)
    elif args.command == "status":
        report = cluster.status(cfg)
        print(json.dumps(report.as_dict(), indent=2) if args.json else report)
        if report.healthy:
            return 0
        return 3 if all(s.state == DOWN for s in report.services) else 1
    elif args.command == "env":
        print(_exports(cluster.settings(cfg)))
    elif args.command == "failover":
        done = cluster.failover(cfg, rejoin=not args.no_rejoin, echo=echo)
        print(json.dumps(done))
    elif args.command == "rejoin":
        echo(f"rejoined by {cluster.rejoin(cfg, echo=echo)}")
    elif args.command == "logs":
        for path in cluster.logs(cfg):
            lines = _tail(path, args.lines)
            print(f"==> {path} <==" + ("" if lines else " (empty or missing)"))
            print("\n".join(lines))
    elif args.command == "fetch":
        ensure_kafka_jars(cfg, echo=echo)
    return 0

