"""benchmarks/bench_freshness.py --quick against the real broker and server (about a minute; on under CI, opt-in elsewhere).

    LEDGER_BENCH_FRESHNESS=1 .venv/bin/python -m pytest tests/integration/test_bench_freshness.py

Not a timed test: it asserts that the benchmark runs the production processes end to end,
that every payment reached the entitlement view, that the sampled rows agree with the stored
position (the script exits 1 otherwise) and that its last line has the issue's shape with
figures that can be true (a delay is positive; no payment is seen before it was sent).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("LEDGER_BENCH_FRESHNESS") != "1",
                       reason="runs the freshness benchmark's quick mode (about a minute; on under CI): set LEDGER_BENCH_FRESHNESS=1"),
]
REPO = Path(__file__).resolve().parents[2]
LAST = re.compile(r"freshness steady_p50_s=(?P<p50>[\d.]+) steady_p95_s=(?P<p95>[\d.]+) "
                  r"burst_drain_s=(?P<drain>[\d.]+) incremental_ev_s=(?P<ev>\d+)")


def test_quick_mode_measures_every_payment_and_its_rows_agree_with_the_position(services, tmp_path):
    env = {**os.environ, **services}
    out = tmp_path / "fresh.json"
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_freshness.py"), "--quick",
                          "--seconds", "5", "--burst", "1000", "--catch-up", "500", "--json", str(out)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    text = run.stdout + run.stderr
    assert run.returncode == 0, text[-4000:]
    lines = run.stdout.strip().splitlines()
    last = LAST.fullmatch(lines[-1])
    assert last, lines[-1]
    p50, p95, drain, ev = (float(last[k]) for k in ("p50", "p95", "drain", "ev"))
    assert 0 < p50 <= p95 and drain > 0 and ev > 0
    assert "0 disagree" in run.stdout and "FAILED" not in run.stdout
    assert re.search(r"steady +1,000 payments: p50", run.stdout), run.stdout[-3000:]
    assert re.search(r"burst +1,000 payments: p50", run.stdout), run.stdout[-3000:]
    figures = {f["key"]: f["value"] for f in json.loads(out.read_text())["figures"]}
    assert figures["steady p95"] == pytest.approx(p95, abs=0.01)
    assert figures["burst drain"] == pytest.approx(drain, abs=0.01)
    assert figures["catch-up"] > 0
