"""The benchmark suite: every benchmark of the issues, one command, one table (issue 8).

    .venv/bin/python benchmarks/run_all.py --quick           # small sizes, ~5 minutes on the 2-core machine
    .venv/bin/python benchmarks/run_all.py                   # medium sizes, ~15 minutes
    .venv/bin/python benchmarks/run_all.py --full            # the issues' sizes (long: an hour or more)
    .venv/bin/python benchmarks/run_all.py --only payments,audit --json /tmp/bench.json

Against the real local Kafka and PostgreSQL: without ``POSTGRES_*`` / ``DATABASE_URL`` and
``KAFKA_BOOTSTRAP_SERVERS`` in the environment it starts the stack (``infra.stack.up``) and
passes its settings to every benchmark.

1. **Raw baselines**, once, in this process: PostgreSQL ``COPY`` of 200-byte rows into an
   indexed table (rows/s), raw kafka-python produce and consume of ~200-byte records on a
   fresh topic (records/s) -- ``benchmarks/common.py``.
2. **Benchmarks**, each script in a subprocess of its own with a timeout, writing its figures
   with ``--json``; a script that fails, times out or writes no figures is reported as FAILED
   with the end of its output, and the suite goes on. Logs: ``var/bench/run_all-<time>/``.
   The benchmarks that take a size (payments, projections, audit, reconciliation) run at 2-3
   sizes; the others once.
3. **One table**: scenario, size, figure, unit, goal, met?, and the ratio of a rate to the raw
   baseline it compares with (``COPY`` for work that ends in PostgreSQL, Kafka consume for work
   that reads Kafka, Kafka produce for the publisher), from the largest size that ran.
4. **Scale series**: per figure, its value at each size and how the cost grows: for rates the
   time per unit at the larger size over the time per unit at the smaller one (1.0 = linear,
   > 1 superlinear, < 1 fixed costs being amortised); for latencies the latency ratio (1.0 =
   independent of the store's size).

The machine is shared: the load average is printed at the start and the end, and per run.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO_ROOT, bench_copy, bench_kafka, dedicated_schema  # noqa: E402

HERE = Path(__file__).resolve().parent
MODES = ("quick", "default", "full")


@dataclass
class Bench:
    name: str
    script: str
    size_flag: str | None
    sizes: dict[str, list[int]]  # per mode; [] = run once with the defaults (plus ``args``)
    args: dict[str, list[str]] = field(default_factory=dict)  # per mode, extra arguments
    what: str = ""


BENCHES = [
    Bench("payments", "bench_payments.py", "--people",
          {"quick": [1_000, 4_000], "default": [5_000, 20_000, 50_000], "full": [10_000, 100_000, 1_000_000]},
          {m: ["--skip-baselines"] for m in MODES},
          "issue 3: tax payments/s through Ledger.record_tax_records on PostgreSQL"),
    Bench("projections", "bench_projections.py", "--people",
          {"quick": [1_000, 3_000], "default": [3_000, 20_000], "full": [10_000, 50_000, 100_000]},
          {"quick": ["--runs", "20", "--extra", "500"], "default": ["--runs", "30"], "full": []},
          "issue 5: projection rebuild from the log, gap list and lookups over the views"),
    Bench("audit", "bench_audit.py", "--events",
          {"quick": [10_000, 40_000], "default": [50_000, 200_000], "full": [100_000, 1_000_000]},
          {"quick": ["--runs", "50"], "default": ["--runs", "100"], "full": []},
          "issue 7: as-of replay of a 500-event person, verification of every chain"),
    Bench("reconciliation", "bench_reconciliation.py", "--lines",
          {"quick": [20_000, 100_000], "default": [100_000, 300_000], "full": [100_000, 1_000_000]},
          {},
          "issue 6: a tax statement from Kafka reconciled against the ledger side"),
    Bench("publisher", "bench_publisher.py", None, {m: [] for m in MODES},
          {"quick": ["--payments", "100", "--backlog", "2000"], "default": [], "full": []},
          "issue 4: commit-to-Kafka-ack latency of the ledger-events publisher, catch-up rate"),
    Bench("kafka_pipeline", "bench_kafka_pipeline.py", "--payments",
          {"quick": [5_000], "default": [20_000], "full": [100_000]},
          {},
          "issue 4: payments on Kafka -> ledger (PostgreSQL) -> ledger.events.v1, end to end"),
    Bench("freshness", "bench_freshness.py", None, {m: [] for m in MODES},
          {"quick": ["--quick"], "default": [], "full": []},
          "issue 19: produce -> entitlement view delay, steady stream and burst, with the production processes"),
]
TIMEOUT = {"quick": 300, "default": 1200, "full": 5400}
BASELINE_SIZE = {"quick": 50_000, "default": 100_000, "full": 200_000}
BASELINE_LABEL = {"copy": "COPY", "kafka_produce": "Kafka produce", "kafka_consume": "Kafka consume"}


# --------------------------------------------------------------------------- helpers
def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def ensure_stack() -> dict[str, str]:
    """Settings of the running stack; starts it when the environment names none."""
    from infra.settings import postgres_from_env, setting_text

    if postgres_from_env().get("POSTGRES_HOST") and setting_text("KAFKA_BOOTSTRAP_SERVERS"):
        return {}
    from infra import stack

    print("POSTGRES_* / KAFKA_BOOTSTRAP_SERVERS not set: starting the local stack ...", flush=True)
    settings = stack.up(stack.StackConfig.from_env())
    os.environ.update({k: str(v) for k, v in settings.items()})  # the subprocesses inherit them
    return settings


def script_help(path: Path) -> str:
    try:
        return subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=60,
                              cwd=REPO_ROOT).stdout
    except Exception:  # noqa: BLE001
        return ""


TABLE_ROW = re.compile(r"^(?P<scenario>\S.*?)\s{2,}(?P<count>[\d,]+) (?P<unit>[a-z]+)\s+(?P<seconds>[\d.]+)\s+"
                       r"(?P<rate>[\d,]+)\s+(?P<goal>[\d,]+|-)\s")


def parse_text_table(stdout: str, size: int | None, size_unit: str) -> list[dict]:
    """Figures from a printed count / seconds / rate / goal table (scripts without ``--json``)."""
    out = []
    for line in stdout.splitlines():
        m = TABLE_ROW.match(line)
        if not m:
            continue
        count, seconds = int(m["count"].replace(",", "")), float(m["seconds"])
        raw = m["scenario"].startswith("raw")
        out.append({"key": m["scenario"].strip(), "scenario": m["scenario"].strip(),
                    "value": count / seconds if seconds else float("nan"), "unit": f"{m['unit']}/s",
                    "size": size, "size_unit": size_unit,
                    "goal": None if m["goal"] == "-" else float(m["goal"].replace(",", "")), "better": "higher",
                    "kind": "rate", "baseline": None if raw else "kafka_consume", "count": count,
                    "seconds": seconds})
    return out


@dataclass
class Run:
    bench: str
    size: int | None
    ok: bool
    seconds: float
    load_start: str
    load_end: str
    figures: list[dict]
    error: str = ""
    log: str = ""


def run_one(bench: Bench, size: int | None, mode: str, timeout: float, logdir: Path, help_text: str) -> Run:
    path = HERE / bench.script
    argv = [sys.executable, str(path), *bench.args.get(mode, [])]
    if size is not None:
        argv += [bench.size_flag, str(size)]
    tag = f"{bench.name}-{size}" if size is not None else bench.name
    out_json = logdir / f"{tag}.json"
    if "--json" in help_text:
        argv += ["--json", str(out_json)]
    log = logdir / f"{tag}.log"
    label = f"{bench.name}" + (f" {bench.size_flag} {size:,}" if size is not None else "")
    print(f"[{datetime.now():%H:%M:%S}] {label} (load {loadavg()}) ...", flush=True)
    load_start, started = loadavg(), time.perf_counter()
    error = ""
    with open(log, "w") as fh:
        fh.write("$ " + " ".join(argv) + "\n")
        fh.flush()
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO_ROOT, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 15)  # the script and its worker processes (own session)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
            rc = None
            error = f"timed out after {timeout:.0f} s"
    seconds = time.perf_counter() - started
    text = log.read_text(errors="replace")
    figures: list[dict] = []
    if rc == 0:
        if out_json.exists():
            figures = json.loads(out_json.read_text())["figures"]
        else:
            figures = parse_text_table(text, size, (bench.size_flag or "").lstrip("-"))
        if not figures:
            error = "exit 0 but no figures (no --json output and no table found)"
    elif rc is not None:
        error = f"exit code {rc}"
    tail = "\n".join(text.rstrip().splitlines()[-8:]) if error else ""
    status = "ok" if not error else f"FAILED ({error})"
    print(f"    {status} in {seconds:.0f} s" + (f"; log {log}\n      " + tail.replace("\n", "\n      ")
                                                 if error else ""), flush=True)
    return Run(bench.name, size, not error, seconds, load_start, loadavg(), figures,
               error + ("\n" + tail if tail else ""), str(log))


# --------------------------------------------------------------------------- tables
def fmt_value(v: float | None, kind: str = "rate") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if kind == "rate" or abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"


def render(rows: list[tuple], right_from: int = 1) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join(str(c).ljust(w) if i < right_from else str(c).rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main_table(baselines: dict[str, dict], runs: list[Run]) -> str:
    rows: list[tuple] = [("scenario", "size", "figure", "unit", "goal", "met?", "ratio to raw")]
    for b in baselines.values():
        rows.append((b["scenario"], f"{b['count']:,} {b['size_unit']}", fmt_value(b["value"]), b["unit"], "-", "-",
                     "1.000" if b.get("ok", True) else "-"))
    by_bench: dict[str, list[Run]] = {}
    for r in runs:
        by_bench.setdefault(r.bench, []).append(r)
    for name, bench_runs in by_bench.items():
        ok = [r for r in bench_runs if r.ok]
        shown = max(ok, key=lambda r: r.size or 0) if ok else None
        for r in bench_runs:
            if not r.ok:
                rows.append((f"{name}: FAILED ({r.error.splitlines()[0]})", f"{r.size:,}" if r.size else "-",
                             "-", "-", "-", "-", "-"))
        if shown is None:
            continue
        for f in shown.figures:
            if f["scenario"].startswith("raw"):
                continue
            goal, met = f.get("goal"), "-"
            if goal:
                met = "yes" if (f["value"] >= goal if f.get("better", "higher") == "higher" else f["value"] <= goal) \
                    else "NO"
            ratio = "-"
            base = baselines.get(f.get("baseline") or "")
            if f.get("kind") == "rate" and base and base.get("value"):
                ratio = f"{f['value'] / base['value']:.3f} {BASELINE_LABEL[f['baseline']]}"
            size = f"{f['size']:,} {f.get('size_unit', '')}".strip() if f.get("size") else "-"
            goal_text = "-" if not goal else ("≥ " if f.get("better", "higher") == "higher" else "≤ ") + \
                fmt_value(goal, f.get("kind", "rate"))
            rows.append((f"{name}: {f['scenario']}", size, fmt_value(f["value"], f.get("kind", "rate")), f["unit"],
                         goal_text, met, ratio))
    return render(rows)


def growth(f1: dict, f2: dict) -> float | None:
    """Cost per unit at the larger size over the smaller one (rates, seconds); latency ratio (latencies)."""
    v1, v2, kind = f1["value"], f2["value"], f1.get("kind", "rate")
    if not v1 or not v2:
        return None
    if kind == "rate":
        return v1 / v2  # time per unit = 1/rate
    if kind == "seconds":
        return (v2 / f2["size"]) / (v1 / f1["size"])
    return v2 / v1


def verdict(g: float | None, kind: str) -> str:
    if g is None:
        return "-"
    if kind == "latency":
        return "flat" if g <= 1.25 else "grows"
    return "linear" if 0.8 <= g <= 1.25 else ("superlinear" if g > 1.25 else "sublinear")


def scale_table(runs: list[Run]) -> str:
    rows: list[tuple] = [("benchmark: figure", "kind", "sizes", "values", "growth per step", "reading")]
    by_bench: dict[str, list[Run]] = {}
    for r in runs:
        if r.ok and r.size is not None:
            by_bench.setdefault(r.bench, []).append(r)
    for name, bench_runs in by_bench.items():
        bench_runs.sort(key=lambda r: r.size)
        if len(bench_runs) < 2:
            continue
        keys: list[str] = []
        for r in bench_runs:
            for f in r.figures:
                if f["key"] not in keys and not f["scenario"].startswith("raw"):
                    keys.append(f["key"])
        for key in keys:
            series = [(r.size, next((f for f in r.figures if f["key"] == key), None)) for r in bench_runs]
            series = [(s, f) for s, f in series if f is not None]
            if len(series) < 2:
                continue
            kind = series[0][1].get("kind", "rate")
            steps = [growth(a[1], b[1]) for a, b in zip(series, series[1:])]
            worst = max((g for g in steps if g is not None), default=None)
            unit = series[0][1]["unit"]
            rows.append((f"{name}: {key}" + ("" if unit in key else f" ({unit})"), kind,
                         " → ".join(f"{s:,}" for s, _ in series) + f" {series[0][1].get('size_unit') or ''}",
                         " → ".join(fmt_value(f["value"], kind) for _, f in series),
                         " , ".join("-" if g is None else f"×{g:.2f}" for g in steps),
                         verdict(worst, kind)))
    if len(rows) == 1:
        return "(no benchmark ran at two sizes)"
    return render(rows, right_from=99)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes (~5 minutes)")
    size.add_argument("--full", action="store_true", help="the issues' sizes (an hour or more)")
    parser.add_argument("--only", metavar="NAME,...",
                        help="only these benchmarks: " + ",".join(b.name for b in BENCHES))
    parser.add_argument("--sizes", metavar="NAME=N,N;...", help="override sizes, e.g. 'payments=2000,8000;audit=20000'")
    parser.add_argument("--timeout", type=float, help="seconds per benchmark run (default: quick 300, 1200, full 5400)")
    parser.add_argument("--skip-baselines", action="store_true", help="no raw baselines (no ratios)")
    parser.add_argument("--json", metavar="FILE", help="also write everything to FILE")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full" if args.full else "default"
    timeout = args.timeout or TIMEOUT[mode]
    benches = BENCHES
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = set(names) - {b.name for b in BENCHES}
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; known: "
                         + ", ".join(b.name for b in BENCHES))
        benches = [b for b in BENCHES if b.name in names]
    overrides: dict[str, list[int]] = {}
    for part in (args.sizes or "").split(";"):
        if part.strip():
            name, _, values = part.partition("=")
            overrides[name.strip()] = [int(v.replace("_", "")) for v in values.split(",") if v.strip()]

    started_at, started = datetime.now(), time.perf_counter()
    load_start = loadavg()
    ensure_stack()
    from common import kafka_bootstrap_servers, pg_settings

    pg = pg_settings()
    kafka = kafka_bootstrap_servers()
    logdir = REPO_ROOT / "var" / "bench" / f"run_all-{started_at:%Y%m%d-%H%M%S}"
    logdir.mkdir(parents=True, exist_ok=True)
    print(f"benchmark suite, mode {mode}: {started_at:%Y-%m-%d %H:%M:%S}; {os.cpu_count()} CPUs; "
          f"load average at the start {load_start}", flush=True)
    print(f"PostgreSQL {pg['POSTGRES_HOST']}:{pg['POSTGRES_PORT']}/{pg['POSTGRES_DBNAME']}; Kafka {kafka}; "
          f"logs {logdir}", flush=True)

    # ---- raw baselines, once
    baselines: dict[str, dict] = {}
    if not args.skip_baselines:
        n = BASELINE_SIZE[mode]
        print(f"[{datetime.now():%H:%M:%S}] raw baselines ({n:,} rows / records; load {loadavg()}) ...", flush=True)
        try:
            with dedicated_schema(pg, "bench_raw") as schema:
                r = bench_copy(pg, schema, n)
            baselines["copy"] = {"scenario": r.scenario, "value": r.rate, "unit": "rows/s", "count": r.count,
                                 "seconds": r.seconds, "size_unit": "rows"}
        except Exception as exc:  # noqa: BLE001
            print(f"    COPY baseline FAILED: {exc!r}", flush=True)
        try:
            produce, consume = bench_kafka(kafka, n)
            for key, r in (("kafka_produce", produce), ("kafka_consume", consume)):
                baselines[key] = {"scenario": r.scenario, "value": r.rate, "unit": "records/s", "count": r.count,
                                  "seconds": r.seconds, "size_unit": "records"}
        except Exception as exc:  # noqa: BLE001
            print(f"    Kafka baselines FAILED: {exc!r}", flush=True)
        for b in baselines.values():
            print(f"    {b['scenario']}: {b['value']:,.0f} {b['unit']} ({b['count']:,} in {b['seconds']:.2f} s)",
                  flush=True)

    # ---- the benchmarks
    runs: list[Run] = []
    for bench in benches:
        path = HERE / bench.script
        if not path.exists():
            runs.append(Run(bench.name, None, False, 0.0, loadavg(), loadavg(), [], f"{bench.script} not found"))
            print(f"[{datetime.now():%H:%M:%S}] {bench.name}: FAILED ({bench.script} not found)", flush=True)
            continue
        help_text = script_help(path)
        sizes: list[int | None] = list(overrides.get(bench.name, bench.sizes.get(mode, [])))
        if bench.size_flag and bench.size_flag not in help_text:
            sizes = []
        for s in sizes or [None]:
            runs.append(run_one(bench, s, mode, timeout, logdir, help_text))

    load_end = loadavg()
    total = time.perf_counter() - started
    table = main_table(baselines, runs)
    scale = scale_table(runs)
    print()
    print(f"=== benchmark suite ({mode}), {started_at:%Y-%m-%d %H:%M}, {total / 60:.1f} min; load average "
          f"(1/5/15 min) at the start {load_start}, at the end {load_end}; {os.cpu_count()} CPUs")
    print()
    print(table)
    print()
    print("=== scale series: growth = time per unit at the larger size / at the smaller (rates, seconds): "
          "1.0 linear, > 1 superlinear, < 1 sublinear (fixed costs amortised); latency at the larger / the "
          "smaller (latencies): 1.0 flat. Within ±25 % counts as linear / flat (a loaded machine is noisy).")
    print()
    print(scale)
    failed = [r for r in runs if not r.ok]
    if failed:
        print()
        print("=== FAILED")
        for r in failed:
            print(f"{r.bench}" + (f" (size {r.size:,})" if r.size else "") + f": {r.error}"
                  + (f"\n  log: {r.log}" if r.log else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "mode": mode, "started": started_at.isoformat(), "minutes": total / 60, "cpus": os.cpu_count(),
            "loadavg_start": load_start, "loadavg_end": load_end, "baselines": baselines,
            "runs": [r.__dict__ for r in runs], "table": table, "scale": scale}, indent=1, default=str))
        print(f"\nwritten to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
