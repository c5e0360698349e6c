"""Domain errors: every error a user can cause has a stable code and a clerk-readable message.

The code is the contract (APIs, dead-letter records and error tables carry it);
the message says what is wrong and what to fix, in plain words.
"""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule of the ledger was broken by the input; nothing was written."""

    #: HTTP status an API maps this error to (4xx: the caller can fix it).
    http_status: int = 422

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class NotFound(DomainError):
    """The person, policy table or record asked for does not exist."""

    http_status = 404


class Conflict(DomainError):
    """The input contradicts what the ledger already holds (e.g. a reused voucher)."""

    http_status = 409
