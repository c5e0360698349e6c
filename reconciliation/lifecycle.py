"""The life of a discrepancy (差异处理): OPEN, EXPLAINED, RESOLVED, and every step kept in its history.

Pure functions from the stored records and what a comparison found to the records to
write and the history entries to append:

* found, not known before                    -> FOUND, state OPEN
* found, known and not resolved, same values -> nothing (a re-run changes nothing)
* found, known, figures or details changed   -> CHANGED; an EXPLAINED one goes back to OPEN
                                                (the explanation was for other figures)
* found, known and RESOLVED                  -> REOPENED, state OPEN
* known, not resolved, not found any more    -> RESOLVED, with a pointer to what removed it
                                                (the ledger event, or the corrected statement)
* a clerk's note                             -> EXPLAINED (note and who); not on a RESOLVED one

A resolved discrepancy stays, with its history: nothing disappears silently. History
entries are numbered per discrepancy; every entry names its cause.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from reconciliation.model import (
    Discrepancy,
    DiscrepancyState,
    ReconciliationError,
    Scope,
)

S = DiscrepancyState


@dataclass(frozen=True)
class Record:
    """A discrepancy as stored: identity, state, the latest values, explanation and resolution."""

    id: str
    scope: Scope
    klass: str
    tax_office: str
    voucher_no: str
    occurrence: int
    state: str
    values: dict[str, Any]
    first_found_at: datetime
    updated_at: datetime
    note: str | None = None
    explained_by: str | None = None
    explained_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: dict[str, Any] | None = None
    seq: int = 0  # the number of history entries so far (entries are numbered from 1)

    @property
    def statement_id(self) -> str:
        return self.values.get("statement_id", "")

    @property
    def delta_fen(self) -> int:
        return int(self.values.get("delta_fen", 0))

    @property
    def delta_count(self) -> int:
        return int(self.values.get("delta_count", 0))

    @property
    def line_no(self) -> int | None:
        return self.values.get("line_no")


@dataclass(frozen=True)
class HistoryEntry:
    discrepancy_id: str
    seq: int
    at: datetime
    action: str  # FOUND | CHANGED | REOPENED | RESOLVED | EXPLAINED
    state: str  # the state after the step
    pointer: dict[str, Any] | None = None
    note: str | None = None
    user: str | None = None
    values: dict[str, Any] | None = None


@dataclass
class Plan:
    """What to write: records to insert or replace, history entries to append."""

    records: list[Record] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)

    def extend(self, other: Plan) -> None:
        self.records += other.records
        self.history += other.history


Cause = Callable[[str, str, str, dict[str, Any]], dict[str, Any]]  # (tax_office, voucher_no, id, values) -> pointer


def _step(record: Record, action: str, at: datetime, *, pointer: dict[str, Any] | None = None,
          note: str | None = None, user: str | None = None, values: dict[str, Any] | None = None) -> HistoryEntry:
    return HistoryEntry(record.id, record.seq, at, action, record.state, pointer, note, user, values)


def plan(existing: Mapping[str, Record], found: Sequence[Discrepancy], *, at: datetime, cause: Cause,
         scope: Scope | None = None) -> Plan:
    """Bring a scope's stored discrepancies in line with what a comparison found.

    ``existing``: every stored discrepancy of the scope (any state). ``cause`` names,
    for a voucher, what made this comparison happen (a statement, a ledger event).
    """
    out = Plan()
    seen: set[str] = set()
    for d in found:
        seen.add(d.id)
        values = d.values()
        old = existing.get(d.id)
        pointer = cause(d.tax_office, d.voucher_no, d.id, values)
        if old is None:
            new = Record(d.id, d.scope, d.klass.value, d.tax_office, d.voucher_no, d.occurrence, S.OPEN.value,
                         values, at, at, seq=1)
            out.records.append(new)
            out.history.append(_step(new, "FOUND", at, pointer=pointer, values=values))
            continue
        if old.state == S.RESOLVED:
            new = replace(old, state=S.OPEN.value, values=values, updated_at=at, resolved_at=None, resolved_by=None,
                          seq=old.seq + 1)
            out.records.append(new)
            out.history.append(_step(new, "REOPENED", at, pointer=pointer, values=values))
            continue
        if old.values == values:
            continue
        state = S.OPEN.value  # changed figures: an explanation of the old ones no longer holds
        new = replace(old, state=state, values=values, updated_at=at, seq=old.seq + 1)
        out.records.append(new)
        out.history.append(_step(new, "CHANGED", at, pointer=pointer, values=values,
                                 note=None if old.state == S.OPEN else "was EXPLAINED; the figures changed"))
    for old in existing.values():
        if old.id in seen or old.state == S.RESOLVED:
            continue
        if scope is not None and old.scope != scope:
            continue
        pointer = cause(old.tax_office, old.voucher_no, old.id, old.values)
        new = replace(old, state=S.RESOLVED.value, updated_at=at, resolved_at=at, resolved_by=pointer,
                      seq=old.seq + 1)
        out.records.append(new)
        out.history.append(_step(new, "RESOLVED", at, pointer=pointer))
    return out


def explain(record: Record, *, note: str, user: str, at: datetime) -> Plan:
    """A clerk explains a discrepancy (说明): note and who. A resolved one needs no explanation."""
    note, user = (note or "").strip(), (user or "").strip()
    if not note:
        raise ReconciliationError("NOTE_REQUIRED", "write what explains the difference (--note)")
    if not user:
        raise ReconciliationError("USER_REQUIRED", "say who explains it (--user)")
    if record.state == S.RESOLVED:
        by = (record.resolved_by or {}).get("kind", "")
        raise ReconciliationError("DISCREPANCY_RESOLVED",
                                  f"discrepancy {record.id} is already resolved ({by}); nothing to explain")
    new = replace(record, state=S.EXPLAINED.value, note=note, explained_by=user, explained_at=at, updated_at=at,
                  seq=record.seq + 1)
    return Plan([new], [_step(new, "EXPLAINED", at, note=note, user=user)])


__all__ = ["Cause", "HistoryEntry", "Plan", "Record", "explain", "plan"]
