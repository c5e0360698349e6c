"""The county's transfers (转移接续) in the fault run: each half a production process of its own.

Every transfer half of the county's timeline runs as ``ledger clerk transfer-out`` or
``ledger clerk transfer-in``, a subprocess on the private stack, as the clerk of its region
(a token of its own in the run's tokens file, scoped to that region), with the county's
request id as ``--request-id``. At seeded halves (``Size.kills`` of them, out halves first,
so that a transfer is left half done) the process is SIGKILLed a seeded fraction of the way
through its run -- before or after its commit, as it happens -- and the half is then run
again with the same request id: a half killed before its commit is recorded by the retry, a
half killed after it is recognised and nothing is done twice. A process that fails because
the database or the broker is away (they are restarted on purpose) is run again too.

The checks (:mod:`tests.faults.checks`) then compare each transferred person's events,
transfer statuses and holdings (balance and months over all regions) with the fault-free
replay of the same inputs.
"""
from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

DEFAULT_SECONDS = 1.2  # a CLI half's run before the first has been timed (it took 1.2-2 s here, on a loaded machine)


class TransferHalves:
    """Runs the county's transfer halves as CLI processes, killing some between the two halves."""

    def __init__(self, env: dict[str, str], workdir: Path, rng: random.Random, kills: int, repo: Path,
                 tick: Callable[[], None], say: Callable[[str], None]) -> None:
        from entrypoints.http.auth import TOKENS_FILE_ENV

        self.tokens_file = workdir / "clerk-tokens.json"
        self.env = {**env, TOKENS_FILE_ENV: str(self.tokens_file)}
        self.rng, self.kills_left, self.repo, self.tick, self.say = rng, kills, repo, tick, say
        self.tokens: dict[tuple[str, str], str] = {}
        self.seconds = DEFAULT_SECONDS
        self.counts: Counter[str] = Counter()
        self.transfers: set[str] = set()
        self.logs = workdir / "logs" / "clerk_transfers.log"
        self.elapsed = 0.0  # seconds the feed spent on the halves (the suite's extra time for them)

    def token(self, user: str, region: str) -> str:
        """The clerk's token, scoped to the half's region (issued once, as `ledger token add` does)."""
        from entrypoints.http.auth import add_token

        key = (user, region)
        if key not in self.tokens:
            self.tokens[key] = add_token(self.tokens_file, user=user, role="clerk", scopes=[region])
        return self.tokens[key]

    @staticmethod
    def argv(kind: str, record: Any) -> list[str]:
        from entrypoints.simulation import timeline as feeds

        cli = [sys.executable, "-m", "entrypoints.cli", "clerk"]
        common = ["--transfer-id", record.transfer_id, "--counterpart-region", record.counterpart_region,
                  "--effective-date", record.effective_date.isoformat(), "--request-id", record.request_id,
                  "--json"]
        if kind == feeds.TRANSFER_OUT:
            return cli + ["transfer-out", "--id-type", record.id_type, "--id-number", record.id_number, *common]
        return cli + ["transfer-in", "--id-type", record.id_type, "--id-number", record.id_number,
                      "--name", record.name, "--scheme", record.scheme, "--region-code", record.region_code,
                      *(["--grid-code", record.grid_code] if record.grid_code else []),
                      # the figures the county's clerk states: they must equal what the out half sent
                      "--account-balance-fen", str(record.account_balance_fen),
                      "--contribution-months", str(record.contribution_months), *common]

    def run(self, action: Any, clerk_errors: Counter[str]) -> None:
        """One half, to its end: killed at a seeded moment if it is one of the chosen, then run again."""
        started = time.monotonic()
        try:
            self.run_half(action, clerk_errors)
        finally:
            self.elapsed += time.monotonic() - started

    def run_half(self, action: Any, clerk_errors: Counter[str]) -> None:
        from entrypoints.simulation import timeline as feeds

        record = action.record
        self.transfers.add(record.transfer_id)
        self.counts["halves (out)" if action.kind == feeds.TRANSFER_OUT else "halves (in)"] += 1
        env = {**self.env, "LEDGER_TOKEN": self.token(record.clerk, record.region_code)}
        argv = self.argv(action.kind, record)
        # Out halves are the ones to kill (the transfer then stands half done until the retry); an in half only
        # when no out half is left to kill. The moment is seeded: a fraction of how long a half takes.
        if self.kills_left and (action.kind == feeds.TRANSFER_OUT or self.rng.random() < 0.3):
            self.kills_left -= 1
            after = self.rng.uniform(0.35, 0.95) * self.seconds
            with self.logs.open("ab") as log:
                log.write(f"---- {record.transfer_id} {action.kind} (to be killed after {after:.2f} s)\n".encode())
                log.flush()
                proc = subprocess.Popen(argv, env=env, cwd=self.repo, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=log, start_new_session=True)
                time.sleep(after)
                finished = proc.poll() is not None
                if not finished:
                    proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
            if finished:
                self.counts["chosen to be killed but done first"] += 1
                self.say(f"transfer {record.transfer_id}: `ledger clerk {argv[4]}` ended before its SIGKILL "
                         f"({after:.2f} s); run again with --request-id {record.request_id}")
            else:
                self.counts["SIGKILLed"] += 1
                self.say(f"SIGKILL `ledger clerk {argv[4]}` of transfer {record.transfer_id} after {after:.2f} s; "
                         f"run again with --request-id {record.request_id}")
            retry = True
        else:
            retry = False
        answer = self.until_done(argv, env, record.transfer_id)
        if isinstance(answer, str):  # refused with a code, as the in-process service would have refused it
            clerk_errors[answer] += 1
            self.counts["refused"] += 1
            return
        if retry:
            self.counts["retry recorded the half" if answer["applied"] else "retry found the half already done"] += 1
        else:
            self.counts["recorded" if answer["applied"] else "found already done"] += 1

    def until_done(self, argv: list[str], env: dict[str, str], transfer_id: str) -> dict[str, Any] | str:
        """Run the half until it answers: its JSON, or the code it was refused with."""
        deadline = time.monotonic() + 180
        while True:
            t0 = time.monotonic()
            done = subprocess.run(argv, env=env, cwd=self.repo, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=120)
            if done.returncode == 0:
                self.seconds = time.monotonic() - t0
                return json.loads(done.stdout)
            err = done.stderr.decode(errors="replace")
            with self.logs.open("a") as log:
                log.write(f"---- {transfer_id}: exit {done.returncode}\n{err[-2000:]}\n")
            code = re.match(r"error ([A-Z][A-Z0-9_]+):", err.strip().splitlines()[-1] if err.strip() else "")
            if done.returncode == 2 and code:
                return code.group(1)
            self.counts["run again (a server was away)"] += 1
            if time.monotonic() > deadline:
                from tests.faults.suite import NotConverged

                raise NotConverged(f"`ledger clerk {argv[4]}` of {transfer_id} kept failing: {err[-300:]}")
            self.tick()
            time.sleep(0.5)

    def summary(self) -> dict[str, Any]:
        return {"transfers": len(self.transfers), **dict(sorted(self.counts.items())), "seconds": round(self.elapsed, 1)}
