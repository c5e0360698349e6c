"""The reconciliation service: statements in, comparisons run, discrepancies kept, results out.

:class:`Reconciler` is the one place that changes the reconciliation store (the
consumers and the CLI call it):

* :meth:`Reconciler.ingest` -- a batch of statement records (headers, lines, refused
  records) with the consumer's position, in ONE transaction. Lines may come before or
  after their header and may be resent: a line is identified by statement id + line
  number, a resend with the same content changes nothing, a resend with other content
  is kept as ``STATEMENT_CONFLICT`` and not applied (so is a header resent with other
  content). A statement whose header and lines ``1..line_count`` are all in is COMPLETE.
* :meth:`Reconciler.reconcile_pending` -- compares every COMPLETE statement with the
  ledger (:mod:`reconciliation.compare`), in one transaction per
  statement. It becomes the current statement of its scope; an earlier statement of
  the same scope (the one a correction replaces) is SUPERSEDED. A header whose total
  is not the sum of its lines is reported (``HEADER_TOTAL_MISMATCH``); the lines are
  compared anyway, and the tie-out uses their sum.
* :meth:`Reconciler.ledger_changed` -- called by the ledger side
  (:mod:`reconciliation.ledger_side_runner`) in the transaction that stores new ledger
  rows: every scope whose current statement the new rows touch is compared again, and
  what the rows removed is RESOLVED with a pointer to the ledger event.
* :meth:`Reconciler.check_incomplete` -- a statement still not complete
  ``incomplete_after`` after its first record arrived is INCOMPLETE
  (``STATEMENT_INCOMPLETE``), never compared on partial data; if the rest arrives
  later it is compared then.
* :meth:`Reconciler.explain` -- a clerk's note on a discrepancy.
* :meth:`Reconciler.rerun` -- compare a current statement again; with nothing changed
  it writes nothing (ids are deterministic, the result is identical).

Everything that happens is also queued as a JSON result for
``reconciliation.results.v1`` in the same transaction (the outbox, published by
:mod:`reconciliation.results`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from ledger.domain.errors import NotFound
from ledger.log import get_logger

from reconciliation import lifecycle
from reconciliation.compare import Context, classify, tie_out
from reconciliation.intake import ERROR, HEADER, LINE
from reconciliation.lifecycle import HistoryEntry, Plan, Record
from reconciliation.model import (
    LedgerPayment,
    Scope,
    StatementState,
    derived_id,
)
from reconciliation.store import ReconciliationStore, as_date
import json
from reconciliation.model import ReconciliationError, content_digest

log = get_logger("reconciliation")

#: How long a statement may take to arrive whole before it is reported INCOMPLETE (default).
DEFAULT_INCOMPLETE_AFTER = timedelta(hours=2)
RESULT_SCHEMA = "medins.reconciliation.result.v1"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Received(NamedTuple):
    """One statement record as the consumer decoded it (see :func:`reconciliation.intake.decode_value`)."""

    decoded: tuple[Any, ...]
    source: str  # "topic/partition/offset"
    raw: bytes | None = None

    @property
    def kind(self) -> str:
        return self.decoded[0]

    @property
    def statement_id(self) -> str | None:
        return self.decoded[3] if self.kind == ERROR else self.decoded[1][0]


@dataclass
class IngestResult:
    applied: int = 0
    unchanged: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (source, code)
    completed: list[str] = field(default_factory=list)
    new_errors: list[str] = field(default_factory=list)


def _error(code: str, message: str, *, source: str | None, at: datetime, statement_id: str | None = None,
           line_no: int | None = None, raw: bytes | None = None, detail: dict[str, Any] | None = None,
           key: str | None = None) -> dict[str, Any]:
    return {"id": derived_id("error", key or source, code), "statement_id": statement_id, "line_no": line_no,
            "code": code, "message": message, "source": source, "raw": raw, "detail": detail, "at": at}


def missing_ranges(present: Sequence[int], count: int, limit: int = 20) -> list[str]:
    """Line numbers of ``1..count`` not in ``present``, as ranges ("4", "7-9")."""
    have = set(present)
    out: list[str] = []
    start = None
    for n in range(1, count + 2):
        if n <= count and n not in have:
            start = n if start is None else start
        elif start is not None:
            out.append(str(start) if start == n - 1 else f"{start}-{n - 1}")
            start = None
            if len(out) >= limit:
                out.append("...")
                break
    return out


class Reconciler:
    """Reconciliation of tax statements against the ledger, on one store."""

    def __init__(self, store: ReconciliationStore, *, clock: Callable[[], datetime] = utc_now,
                 incomplete_after: timedelta = DEFAULT_INCOMPLETE_AFTER) -> None:
        self.store = store
        self.clock = clock
        self.incomplete_after = incomplete_after

    # ================================================================ intake
    def ingest(self, items: Sequence[Received], *, position: str | None = None,
               moves: Mapping[int, tuple[int | None, int]] | None = None) -> IngestResult:
        """Apply a batch of statement records and move the consumer's position, in one transaction."""
        store = self.store
        now = self.clock()
        result = IngestResult()
        errors: list[dict[str, Any]] = []
        grouped: dict[str, list[Received]] = {}
        for item in items:
            if item.kind == ERROR:
                _, code, message, sid, line_no = item.decoded
                errors.append(_error(code, message, source=item.source, at=now, statement_id=sid, line_no=line_no,
                                     raw=item.raw))
                result.rejected.append((item.source, code))
            else:
                grouped.setdefault(item.statement_id, []).append(item)  # type: ignore[arg-type]
        with store.transaction():
            known = store.statements(list(grouped))
            new_lines: list[tuple[Any, ...]] = []
            for sid, received in grouped.items():
                statement = known.get(sid)
                fresh = statement is None
                if fresh:
                    statement = {"statement_id": sid, "state": StatementState.RECEIVING.value, "lines_received": 0,
                                 "lines_fen": 0, "max_line_no": 0, "first_seen_at": now, "header_digest": None,
                                 "line_count": None}
                before = dict(statement)
                lines = self._take(statement, received, now, errors, result)
                new_lines += lines
                statement["lines_received"] += len(lines)
                statement["lines_fen"] += sum(int(r[10]) for r in lines)
                statement["max_line_no"] = max([statement["max_line_no"], *(int(r[1]) for r in lines)])
                if (statement["header_digest"] is not None and statement["lines_received"] == statement["line_count"]
                        and statement["state"] in (StatementState.RECEIVING, StatementState.INCOMPLETE)):
                    statement.update(state=StatementState.COMPLETE.value, completed_at=now,
                                     completed_by=received[-1].source)
                    result.completed.append(sid)
                self._save_statement(statement, before, fresh)
            store.insert_lines(new_lines)
            result.new_errors = store.add_errors(errors)
            new_errors = set(result.new_errors)
            store.add_outbox([self._error_event(e) for e in errors if e["id"] in new_errors])
            if position is not None and moves:
                store.move_positions(position, moves, now)
        return result

    def _take(self, statement: dict[str, Any], received: Sequence[Received], now: datetime,
              errors: list[dict[str, Any]], result: IngestResult) -> list[tuple[Any, ...]]:
        """Apply one statement's records of the batch; returns its new line rows (with their source)."""
        sid = statement["statement_id"]
        for item in (i for i in received if i.kind == HEADER):
            _sid, day, office, region, count, total, digest = item.decoded[1]
            if statement["header_digest"] is None:
                statement.update(business_date=as_date(day), tax_office=office, region_code=region, line_count=count,
                                 total_amount_fen=total, header_digest=digest, header_source=item.source)
                result.applied += 1
                self._drop_lines_beyond(statement, now, errors)
            elif statement["header_digest"] == digest:
                result.unchanged += 1
            else:
                errors.append(_error("STATEMENT_CONFLICT", (
                    f"statement {sid} was received before with another header (business date "
                    f"{statement['business_date']}, {statement['line_count']} lines, total "
                    f"{statement['total_amount_fen']} fen); this one ({day}, {count} lines, total {total} fen) is "
                    "kept, not applied"),
                    source=item.source, at=now, statement_id=sid, raw=item.raw))
                result.rejected.append((item.source, "STATEMENT_CONFLICT"))
        line_items = [i for i in received if i.kind == LINE]
        if not line_items:
            return []
        count = statement["line_count"] if statement["header_digest"] is not None else None
        numbers = [i.decoded[1][1] for i in line_items]
        # Lines 1..max_line_no all in (the usual order of arrival) and the batch beyond them: no resend to look up.
        contiguous = statement["lines_received"] == statement["max_line_no"]
        stored = ({} if contiguous and min(numbers) > statement["max_line_no"]
                  else self.store.line_digests(sid, numbers))
        taken: dict[int, str] = {}
        rows = []
        for item in line_items:
            row = item.decoded[1]
            line_no, digest = row[1], row[-1]
            if count is not None and line_no > count:
                errors.append(_error("LINE_NO_OUT_OF_RANGE", (
                    f"line {line_no} of statement {sid}, whose header counts {count} lines; kept, not applied"),
                    source=item.source, at=now, statement_id=sid, line_no=line_no, raw=item.raw))
                result.rejected.append((item.source, "LINE_NO_OUT_OF_RANGE"))
                continue
            known = stored.get(line_no, taken.get(line_no))
            if known is None:
                taken[line_no] = digest
                rows.append((*row, item.source))
                result.applied += 1
            elif known == digest:
                result.unchanged += 1
            else:
                errors.append(_error("STATEMENT_CONFLICT", (
                    f"line {line_no} of statement {sid} was received before with other content; this version is "
                    "kept, not applied"), source=item.source, at=now, statement_id=sid, line_no=line_no,
                    raw=item.raw))
                result.rejected.append((item.source, "STATEMENT_CONFLICT"))
        return rows

    def _drop_lines_beyond(self, statement: dict[str, Any], now: datetime, errors: list[dict[str, Any]]) -> None:
        """A header arrived after its lines: lines numbered beyond its count are refused now."""
        if not statement["lines_received"]:
            return
        beyond = self.store.lines_beyond(statement["statement_id"], statement["line_count"])
        if not beyond:
            return
        for line in beyond:
            errors.append(_error("LINE_NO_OUT_OF_RANGE", (
                f"line {line.line_no} of statement {line.statement_id}, whose header (arrived later) counts "
                f"{statement['line_count']} lines; kept, not applied"), source=line.source, at=now,
                statement_id=line.statement_id, line_no=line.line_no, key=f"{line.statement_id}/{line.line_no}",
                detail={"voucher_no": line.voucher_no, "amount_fen": line.amount_fen, "kind": line.kind,
                        "masked_id": line.masked_id}))
        self.store.delete_lines(statement["statement_id"], [line.line_no for line in beyond])
        statement["lines_received"] -= len(beyond)
        statement["lines_fen"] -= sum(line.signed_fen for line in beyond)
        statement["max_line_no"] = self.store.max_line_no(statement["statement_id"])

    def _save_statement(self, statement: dict[str, Any], before: dict[str, Any], fresh: bool) -> None:
        if fresh:
            self.store.insert_statement({k: v for k, v in statement.items() if k != "has_header"})
            return
        changed = {k: v for k, v in statement.items() if k not in ("has_header", "statement_id") and before.get(k) != v}
        if changed:
            self.store.update_statement(statement["statement_id"], **changed)

    # ================================================================ comparing
    def reconcile_pending(self) -> list[str]:
        """Compare every COMPLETE statement (oldest first); returns their ids."""
        done = []
        for statement in self.store.statements_in_state(StatementState.COMPLETE.value):
            with self.store.transaction():
                self._reconcile_completed(statement)
            done.append(statement["statement_id"])
        return done

    def _reconcile_completed(self, s: dict[str, Any]) -> None:
        now = self.clock()
        store = self.store
        sid = s["statement_id"]
        scope = Scope(s["business_date"], s["tax_office"], s["region_code"])
        pointer = {"kind": "statement", "statement_id": sid, "source": s.get("completed_by")}
        current = store.current_statement(scope)
        if current is not None and (current["first_seen_at"], current["statement_id"]) > (s["first_seen_at"], sid):
            # an older statement completing late: the correction that replaced it stays current
            store.update_statement(sid, state=StatementState.SUPERSEDED.value, superseded_by=current["statement_id"])
            store.add_outbox([self._statement_event("StatementSuperseded", s, now,
                                                    superseded_by=current["statement_id"])])
            return
        if current is not None:
            store.update_statement(current["statement_id"], state=StatementState.SUPERSEDED.value, superseded_by=sid)
            store.add_outbox([self._statement_event("StatementSuperseded", current, now, superseded_by=sid)])
        store.update_statement(sid, state=StatementState.RECONCILED.value)
        s = {**s, "state": StatementState.RECONCILED.value}
        touched = self._reconcile_scope(scope, s, lambda *_: pointer)
        for other, other_sid in store.scopes_with_current_statements(sorted(touched - {scope})).items():
            self._reconcile_scope(other, store.statement(other_sid), lambda *_: pointer)  # type: ignore[arg-type]
        if s["total_amount_fen"] != s["lines_fen"]:
            error = _error("HEADER_TOTAL_MISMATCH", (
                f"the header of statement {sid} gives a total of {s['total_amount_fen']} fen, its {s['line_count']} "
                f"lines add up to {s['lines_fen']} fen (difference {s['total_amount_fen'] - s['lines_fen']}); the "
                "lines were compared"), source=s.get("header_source"), at=now, statement_id=sid,
                key=f"{sid}/header/{s['header_digest']}",
                detail={"header_total_fen": s["total_amount_fen"], "lines_total_fen": s["lines_fen"]})
            if store.add_errors([error]):
                store.add_outbox([self._error_event(error)])
        log.info("statement_reconciled", statement_id=sid, scope=scope.key, lines=s["lines_received"])

    def _reconcile_scope(self, scope: Scope, statement: Mapping[str, Any],
                         cause: Callable[[str, str, str, dict[str, Any]], dict[str, Any]]) -> set[Scope]:
        """Compare a scope's current statement with the ledger and store what changed; the other scopes it touches."""
        store = self.store
        now = self.clock()
        sid = statement["statement_id"]
        pairs = store.candidate_pairs(sid, scope)
        line_only = [p for p in pairs if p.lines and p.row is None]
        elsewhere = store.ledger_rows([p.key for p in line_only])
        listed = store.listings(scope.tax_office, [p.key[1] for p in pairs if not p.lines]
                                + [k[1] for k in elsewhere], exclude=sid)
        refunds = [p.lines[0] for p in line_only
                   if p.key not in elsewhere and p.lines[0].kind != "PAYMENT" and p.lines[0].original_voucher_no]
        original_keys = sorted({(r.original_tax_office or scope.tax_office, r.original_voucher_no) for r in refunds})
        originals = set(store.ledger_rows(original_keys)) | store.listed_payments(original_keys, including=sid)
        found = classify(scope, sid, pairs, Context(elsewhere, listed, originals))
        totals = tie_out(store.line_totals(sid), store.ledger_totals(scope), found)
        if not totals.ok:  # by construction it ties out; if not, a rule above is wrong: say so loudly
            log.error("tie_out_failed", statement_id=sid, scope=scope.key, totals=totals.as_dict())
        plan = lifecycle.plan(store.discrepancies_of_scope(scope), found, at=now,
                              cause=cause, scope=scope)
        store.write_plan(plan)
        events = [self._history_event(r, h) for r, h in _pairs(plan)]
        counts: dict[str, int] = {}
        for d in found:
            counts[d.klass.value] = counts.get(d.klass.value, 0) + 1
        result = {"statement_id": sid, "scope": scope.as_dict(), "tie_out": totals.as_dict(),
                  "arithmetic": totals.arithmetic(), "discrepancies": dict(sorted(counts.items())),
                  "header_total_fen": statement.get("total_amount_fen"),
                  "header_total_ok": statement.get("total_amount_fen") == statement.get("lines_fen")}
        if result != statement.get("result"):
            store.update_statement(sid, result=result, reconciled_at=now)
            events.append((derived_id("result", sid, _digest(result)), scope.key,
                           {"schema": RESULT_SCHEMA, "type": "StatementReconciled", "at": now.isoformat(),
                            "scope": scope.as_dict(), "statement_id": sid, "result": result}, now))
        store.add_outbox(events)
        return {r.scope for r in elsewhere.values()} | {listing.scope for listing in listed.values()}

    def rerun(self, statement_id: str) -> dict[str, Any]:
        """Compare a reconciled statement again (nothing is written when nothing changed); its stored result."""
        s = self.store.statement(statement_id)
        if s is None:
            raise NotFound("STATEMENT_NOT_FOUND", f"no statement {statement_id!r} has been received")
        if s["state"] != StatementState.RECONCILED:
            raise ReconciliationError("STATEMENT_NOT_CURRENT", (
                f"statement {statement_id} is {s['state']}; only the current statement of a scope is compared"))
        scope = Scope(s["business_date"], s["tax_office"], s["region_code"])
        pointer = {"kind": "rerun", "statement_id": statement_id}
        with self.store.transaction():
            self._reconcile_scope(scope, s, lambda *_: pointer)
        return self.store.statement(statement_id)["result"]  # type: ignore[index]

    # ================================================================ the ledger moved
    def ledger_changed(self, rows: Sequence[LedgerPayment], *, source: str | None = None) -> list[Scope]:
        """New ledger rows were stored (call inside that transaction): compare the scopes they touch again."""
        if not rows:
            return []
        store = self.store
        pointers = {r.key: r.pointer(source) for r in rows}
        scopes = set(store.scopes_with_current_statements([r.scope for r in rows]))
        for sid in store.statements_listing(list(pointers)):
            s = store.statement(sid)
            if s is not None:
                scopes.add(Scope(s["business_date"], s["tax_office"], s["region_code"]))
        batch = {"kind": "ledger_events", "events": [pointers[k] for k in sorted(pointers)][:20], "source": source}

        def cause(office: str, voucher: str, _id: str, values: dict[str, Any]) -> dict[str, Any]:
            found = pointers.get((office, voucher))
            if found is not None:
                return found
            line = (values.get("details") or {}).get("statement") or {}
            original = line.get("original_voucher_no")
            if original and (office, original) in pointers:  # e.g. the refund's original arrived
                return pointers[(office, original)]
            return batch

        done = []
        for scope, sid in sorted(store.scopes_with_current_statements(sorted(scopes)).items()):
            self._reconcile_scope(scope, store.statement(sid), cause)  # type: ignore[arg-type]
            done.append(scope)
        return done

    # ================================================================ time limit
    def check_incomplete(self) -> list[str]:
        """Report statements still not complete ``incomplete_after`` after their first record (not compared)."""
        now = self.clock()
        out = []
        for s in self.store.statements_in_state(StatementState.RECEIVING.value,
                                                first_seen_before=now - self.incomplete_after):
            sid = s["statement_id"]
            if s["header_digest"] is None:
                what = f"no header yet ({s['lines_received']} lines in)"
                missing: list[str] = []
            else:
                missing = missing_ranges(self.store.line_numbers(sid), s["line_count"])
                what = (f"{s['lines_received']} of {s['line_count']} lines in; missing line(s) "
                        f"{', '.join(missing)}")
            with self.store.transaction():
                self.store.update_statement(sid, state=StatementState.INCOMPLETE.value)
                error = _error("STATEMENT_INCOMPLETE", (
                    f"statement {sid} is not complete {_hours(self.incomplete_after)} after its first record "
                    f"({s['first_seen_at'].isoformat()}): {what}; it is not reconciled on partial data"),
                    source=None, at=now, statement_id=sid, key=f"{sid}/incomplete/{s['first_seen_at'].isoformat()}",
                    detail={"lines_received": s["lines_received"], "line_count": s["line_count"],
                            "missing": missing, "has_header": s["header_digest"] is not None})
                if self.store.add_errors([error]):
                    self.store.add_outbox([self._error_event(error)])
            log.warning("statement_incomplete", statement_id=sid, detail=what)
            out.append(sid)
        return out

    # ================================================================ clerks
    def explain(self, discrepancy_id: str, *, note: str, user: str) -> Record:
        """Record a clerk's explanation (说明) of an open discrepancy."""
        now = self.clock()
        with self.store.transaction():
            record = self.store.discrepancy(discrepancy_id)
            if record is None:
                raise NotFound("DISCREPANCY_NOT_FOUND", f"no discrepancy {discrepancy_id!r}")
            plan = lifecycle.explain(record, note=note, user=user, at=now)
            self.store.write_plan(plan)
            self.store.add_outbox([self._history_event(r, h) for r, h in _pairs(plan)])
        return plan.records[0]

    # ================================================================ results
    def _history_event(self, record: Record, entry: HistoryEntry) -> tuple[str, str, dict[str, Any], datetime]:
        kind = {"FOUND": "DiscrepancyFound", "CHANGED": "DiscrepancyChanged", "REOPENED": "DiscrepancyReopened",
                "RESOLVED": "DiscrepancyResolved", "EXPLAINED": "DiscrepancyExplained"}[entry.action]
        value = {"schema": RESULT_SCHEMA, "type": kind, "at": entry.at.isoformat(), "scope": record.scope.as_dict(),
                 "statement_id": record.statement_id, "discrepancy": discrepancy_view(record),
                 "history": history_view(entry)}
        return derived_id("history", record.id, entry.seq), record.scope.key, value, entry.at

    def _error_event(self, error: Mapping[str, Any]) -> tuple[str, str, dict[str, Any], datetime]:
        value = {"schema": RESULT_SCHEMA, "type": "StatementRecordRejected" if error["code"] not in (
                 "HEADER_TOTAL_MISMATCH", "STATEMENT_INCOMPLETE") else "StatementProblem",
                 "at": error["at"].isoformat(), "statement_id": error.get("statement_id"),
                 "error": {k: error.get(k) for k in ("id", "code", "message", "line_no", "source", "detail")}}
        return error["id"], error.get("statement_id") or error.get("source") or "", value, error["at"]

    def _statement_event(self, kind: str, s: Mapping[str, Any], at: datetime,
                         **extra: Any) -> tuple[str, str, dict[str, Any], datetime]:
        scope = Scope(s["business_date"], s["tax_office"], s["region_code"])
        value = {"schema": RESULT_SCHEMA, "type": kind, "at": at.isoformat(), "scope": scope.as_dict(),
                 "statement_id": s["statement_id"], **extra}
        return derived_id(kind, s["statement_id"], *extra.values()), scope.key, value, at


def _pairs(plan: Plan) -> list[tuple[Record, HistoryEntry]]:
    by_id = {r.id: r for r in plan.records}
    return [(by_id[h.discrepancy_id], h) for h in plan.history]


def _digest(value: Any) -> str:
    return content_digest(json.dumps(value, sort_keys=True, default=str))


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g} hours"


def discrepancy_view(record: Record) -> dict[str, Any]:
    """A discrepancy as plain JSON-able data (for reports, exports and published results)."""
    return {
        "id": record.id, "class": record.klass, "state": record.state, "scope": record.scope.as_dict(),
        "tax_office": record.tax_office, "voucher_no": record.voucher_no, "occurrence": record.occurrence,
        "statement_id": record.statement_id, "line_no": record.line_no,
        "statement_fen": record.values.get("statement_fen"), "ledger_fen": record.values.get("ledger_fen"),
        "delta_count": record.delta_count, "delta_fen": record.delta_fen,
        "by_scheme": record.values.get("by_scheme"), "details": record.values.get("details"),
        "first_found_at": record.first_found_at.isoformat(), "updated_at": record.updated_at.isoformat(),
        "note": record.note, "explained_by": record.explained_by,
        "explained_at": record.explained_at.isoformat() if record.explained_at else None,
        "resolved_at": record.resolved_at.isoformat() if record.resolved_at else None,
        "resolved_by": record.resolved_by,
    }


def history_view(entry: HistoryEntry) -> dict[str, Any]:
    return {"seq": entry.seq, "at": entry.at.isoformat(), "action": entry.action, "state": entry.state,
            "pointer": entry.pointer, "note": entry.note, "user": entry.user}


__all__ = ["DEFAULT_INCOMPLETE_AFTER", "IngestResult", "RESULT_SCHEMA", "Received", "Reconciler",
           "discrepancy_view", "history_view", "missing_ranges", "utc_now"]
