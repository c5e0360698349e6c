"""The hostile-input tally: every attack a test replays is counted here, and pytest prints one line.

Each hostile test (an attacker's or a clumsy integrator's attempt on the HTTP API, a Kafka
feed, a feed file, a token, a scope) reports its outcome with the ``hostile`` fixture::

    def test_amount_2_pow_63(hostile, client):
        r = client.post("/tax/payments", json={... "amount_fen": 2**63})
        hostile.attempt("tax payment 2^63 fen", status=r.status_code, written=ledger_changed())
        assert r.status_code == 422

``attempt`` records the figures and fails the test at once on a 5xx, a crash, a write that
happened although the request was refused, or a leak (personal data where it must not be).
At the end of the session pytest prints::

    hostile: attempts N / 5xx 0 / crashed 0 / written-despite-refusal 0 / leaked 0
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class HostileTally:
    attempts: int = 0
    five_xx: int = 0
    crashed: int = 0
    written: int = 0
    leaked: int = 0
    failures: list[str] = field(default_factory=list)

    def attempt(self, name: str, *, status: int | None = None, crashed: bool = False,
                written: bool = False, leaked: bool = False) -> None:
        """Count one attempt; raise AssertionError when it did harm."""
        self.attempts += 1
        bad = []
        if status is not None and status >= 500:
            self.five_xx += 1
            bad.append(f"answered {status}")
        if crashed:
            self.crashed += 1
            bad.append("crashed")
        if written:
            self.written += 1
            bad.append("written despite refusal")
        if leaked:
            self.leaked += 1
            bad.append("leaked personal data")
        if bad:
            self.failures.append(f"{name}: {', '.join(bad)}")
            raise AssertionError(f"hostile attempt {name!r}: {', '.join(bad)}")

    def line(self) -> str:
        return (f"attempts {self.attempts} / 5xx {self.five_xx} / crashed {self.crashed} / "
                f"written-despite-refusal {self.written} / leaked {self.leaked}")


#: One tally per pytest session (the fixture in tests/conftest.py hands it out).
TALLY = HostileTally()
