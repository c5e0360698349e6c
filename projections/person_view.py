"""What every per-person view shares: rows keyed by the person the event is for, and the policy tables."""
from __future__ import annotations

from typing import Any

from ledger.domain.history import person_key


class PersonProjection:
    """What every per-person projection shares: a view of rows keyed by person, and the policy tables."""

    name = "person"

    def __init__(self, policies: Any) -> None:
        self.policies = policies

    def initial(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def key(event: Any) -> str | None:
        return person_key(event)
