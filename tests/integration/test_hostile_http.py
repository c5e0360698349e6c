"""Hostile HTTP traffic against the real server (uvicorn on 127.0.0.1, an ephemeral port).

The server runs in its own process on the in-memory ledger, so its memory (peak resident
set, ``VmHWM``) and its latency are its own. What must hold (issue #17, items 3, 4, 8):

* a 300 MB anonymous body is answered 401 without the server's memory growing by it;
* ``GET /health`` answers in under 100 ms (nine probes in ten; none over a second on a
  shared machine) while other clients send 300,000-key bodies and bodies just under the
  limit with thousands of keys;
* forty XLSX bombs at once are each refused within 5 s (FILE_BOMB, or SERVER_BUSY when
  every import slot is taken: a deliberate refusal) and ``/health`` stays quick.

Marked ``integration`` (it starts a server); needs no external service.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.unit.http_support import CLERK, enrollment, number
from tests.unit.test_hostile_http import inflating_sheet, many_keys, workbook_with_sheet

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024

SERVER = """
import socket, sys, uvicorn
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from tests.unit.http_support import TOKENS, policies

system = bootstrap(Settings(persistence="memory", id_key=b"hostile-http"), policies=policies())
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
config = uvicorn.Config(create_app(system, TokenStore.from_tokens(TOKENS)), log_config=None, access_log=False)
uvicorn.Server(config).run(sockets=[sock])
"""


class Server:
    def __init__(self, process: subprocess.Popen, port: int) -> None:
        self.process, self.url = process, f"http://127.0.0.1:{port}"

    def peak_rss_mib(self) -> float:
        """The server's peak resident set so far (VmHWM), MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    log = (tmp_path_factory.mktemp("server") / "server.log").open("wb")
    process = subprocess.Popen([sys.executable, "-c", SERVER], cwd=ROOT, stdout=subprocess.PIPE, stderr=log,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        port = int(process.stdout.readline())
        s = Server(process, port)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(s.url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield s
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def stream(total: int, chunk: bytes = b"x" * (256 * 1024)) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield chunk
        sent += len(chunk)


def post_huge(url: str, headers: dict[str, str], total: int, *, declare: bool) -> httpx.Response | None:
    """POST ``total`` bytes; the server may close the connection once it answered (None then)."""
    if declare:
        headers = {**headers, "Content-Length": str(total)}
    try:
        return httpx.post(url, content=stream(total), headers=headers, timeout=30)
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        return None


PROBE = """
import sys, time, httpx
url, stop_file = sys.argv[1], sys.argv[2]
import os
with httpx.Client(timeout=5) as c:
    while not os.path.exists(stop_file):
        started = time.perf_counter()
        # a connection per probe: on a kept-alive connection every answer waits ~40 ms for TCP's
        # delayed acknowledgement (idle server too), which would measure the network stack, not the server
        r = c.get(url + "/health", headers={"Connection": "close"})
        print(r.status_code, time.perf_counter() - started, flush=True)
        time.sleep(0.02)
"""


class HealthProbe:
    """Asks ``/health`` every 20 ms from a process of its own (so the attackers' threads do not
    slow the probe itself) until stopped; keeps each answer's status and latency."""

    #: The probe runs at least this long, so that an attack refused faster than ten probes still gets ten.
    MIN_SECONDS = 0.5

    def __init__(self, url: str, directory: Path) -> None:
        self.stop_file = directory / f"stop-{time.monotonic_ns()}"
        self.process = subprocess.Popen([sys.executable, "-c", PROBE, url, str(self.stop_file)],
                                        stdout=subprocess.PIPE, text=True)
        self.latencies: list[float] = []
        self.statuses: list[int] = []

    def __enter__(self) -> HealthProbe:
        first = self.process.stdout.readline()  # the probe runs before the attack starts
        assert first.startswith("200 "), first
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(max(0.0, self.started + self.MIN_SECONDS - time.monotonic()))
        self.stop_file.touch()
        out, _ = self.process.communicate(timeout=30)
        for line in out.splitlines():
            status, latency = line.split()
            self.statuses.append(int(status))
            self.latencies.append(float(latency))

    def summary(self) -> str:
        ordered = sorted(self.latencies)
        return (f"{len(ordered)} probes, median {ordered[len(ordered) // 2] * 1000:.1f} ms, "
                f"p95 {ordered[int(len(ordered) * 0.95)] * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms")


def test_a_300_mb_anonymous_body_does_not_grow_the_server(hostile, server):
    before = server.peak_rss_mib()
    for declare in (True, False):
        started = time.perf_counter()
        r = post_huge(server.url + "/enrollments", {"Content-Type": "application/json"}, 300 * MIB, declare=declare)
        elapsed = time.perf_counter() - started
        status = r.status_code if r is not None else None
        hostile.attempt("300 MB anonymous POST /enrollments, real server", status=status)
        if r is not None:
            assert (r.status_code, r.json()["code"]) == (401, "TOKEN_MISSING")
        assert elapsed < 10
    grown = server.peak_rss_mib() - before
    print(f"\nserver peak RSS {before:.0f} MiB -> {before + grown:.0f} MiB after 2 x 300 MB anonymous bodies")
    assert grown < 20


def test_a_300_mb_body_with_a_token_is_413_and_does_not_grow_the_server(hostile, server):
    before = server.peak_rss_mib()
    for path in ("/enrollments", "/imports"):
        r = post_huge(server.url + path, {**CLERK, "Content-Type": "application/json"}, 300 * MIB, declare=False)
        hostile.attempt(f"300 MB chunked POST {path} with a token, real server",
                        status=r.status_code if r is not None else None)
        if r is not None:
            assert (r.status_code, r.json()["code"]) == (413, "BODY_TOO_LARGE")
    assert server.peak_rss_mib() - before < 40  # at most the 10 MiB import limit, read once


def test_health_stays_under_100_ms_while_300000_key_bodies_arrive(hostile, server, tmp_path):
    huge = many_keys(300_000, enrollment(number(51)))  # 3.6 MB
    under = many_keys(5_000, enrollment(number(52)))  # just under 64 KiB
    answers: list[tuple[str, int, int]] = []
    lock = threading.Lock()

    def attack(body: bytes, declare: bool, rounds: int) -> None:
        headers = {**CLERK, "Content-Type": "application/json"}
        with httpx.Client(timeout=30) as c:
            for _ in range(rounds):
                content: bytes | Iterator[bytes] = body if declare else iter([body[i:i + 65536]
                                                                             for i in range(0, len(body), 65536)])
                try:
                    r = c.post(server.url + "/enrollments", content=content, headers=headers)
                except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
                    continue
                with lock:
                    answers.append((r.json()["code"], r.status_code, len(r.content)))

    attackers = [threading.Thread(target=attack, args=(huge, True, 10)),
                 threading.Thread(target=attack, args=(huge, False, 10)),
                 threading.Thread(target=attack, args=(under, True, 40)),
                 threading.Thread(target=attack, args=(under, True, 40))]
    with HealthProbe(server.url, tmp_path) as probe:
        for t in attackers:
            t.start()
        for t in attackers:
            t.join(timeout=120)
    for code, status, size in answers:
        hostile.attempt("300,000-key / 5,000-key body, real server", status=status)
        assert (status, code) in {(413, "BODY_TOO_LARGE"), (422, "BODY_TOO_COMPLEX")} and size < 1000
    assert {c for c, _, _ in answers} == {"BODY_TOO_LARGE", "BODY_TOO_COMPLEX"}
    print(f"\n/health during {len(answers)} big-body requests: {probe.summary()}")
    assert set(probe.statuses) == {200} and len(probe.latencies) >= 10
    assert_quick(probe)


def assert_quick(probe: HealthProbe) -> None:
    """/health under 100 ms, allowing for a machine shared with other work.

    Nine probes in ten must answer under 100 ms and none may take a second (before the gate,
    one 300,000-key body held the event loop for 9.6 s). What the server itself spends on
    each hostile request is measured without the machine's noise in
    tests/unit/test_hostile_http.py (event-loop CPU time per request).
    """
    ordered = sorted(probe.latencies)
    assert ordered[int(len(ordered) * 0.9) - 1] < 0.100, probe.summary()
    assert ordered[-1] < 1.0, probe.summary()


def test_forty_xlsx_bombs_at_once_are_each_refused_within_5_s(hostile, server, tmp_path):
    bomb = workbook_with_sheet(inflating_sheet(100 * MIB))
    results: list[tuple[int, str, float, str | None]] = []
    lock = threading.Lock()

    attacker = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=40))

    def upload() -> None:
        started = time.perf_counter()
        r = attacker.post(server.url + "/imports?filename=bomb.xlsx", content=bomb, headers=CLERK)
        with lock:
            results.append((r.status_code, r.json()["code"], time.perf_counter() - started,
                            r.headers.get("retry-after")))

    threads = [threading.Thread(target=upload) for _ in range(40)]
    with HealthProbe(server.url, tmp_path) as probe:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    attacker.close()
    assert len(results) == 40
    for status, code, elapsed, retry_after in results:
        # SERVER_BUSY is the deliberate refusal when both import slots are taken: nothing started,
        # Retry-After says when to come back. It is counted as refused, not as a server error.
        assert (status, code) in {(413, "FILE_BOMB"), (503, "SERVER_BUSY")}
        assert elapsed < 5
        if status == 503:
            assert retry_after is not None
        hostile.attempt("forty XLSX bombs at once to POST /imports", status=None if status == 503 else status)
    assert any(code == "FILE_BOMB" for _, code, _, _ in results)
    print(f"\nforty bombs: {sum(s == 413 for s, *_ in results)} FILE_BOMB, {sum(s == 503 for s, *_ in results)} "
          f"SERVER_BUSY, slowest {max(e for _, _, e, _ in results):.2f} s; /health: {probe.summary()}")
    assert_quick(probe)
