"""What clerks ask of reconciliation: plain functions, for the CLI and for the HTTP routes.

Every function takes the store (or the reconciler, for the one that writes) and
returns plain JSON-able data; errors a user can cause are :class:`DomainError` with a
code (``STATEMENT_NOT_FOUND``, ``DISCREPANCY_NOT_FOUND``, ``NOTE_REQUIRED``,
``DISCREPANCY_RESOLVED``, ``DAYS_INVALID``, ``EXPORT_FORMAT_UNKNOWN``).

=====================================  ===========================================================
:func:`statement_report`               one statement: header, state, tie-out arithmetic, its scope's
                                       discrepancies (every state, with pointers), errors, what is
                                       missing
:func:`discrepancy_report`             one discrepancy with its history
:func:`open_discrepancies`             OPEN and EXPLAINED ones, by office / region / age
:func:`county_summary`                 per county and day: collected (statements), recorded
                                       (ledger), difference, open discrepancies
:func:`explain_discrepancy`            a clerk's note (the one write)
:func:`export_discrepancies`           CSV (UTF-8 with BOM, opens in Excel) or XLSX bytes
=====================================  ===========================================================

For entrypoints/http: these functions are the read side of the reconciliation routes; a
route opens the store with :func:`reconciliation.factory.reconciliation_store`
(or keeps one per app), calls one function and returns its dict. Amounts are integers
in fen; ``*_yuan`` texts are for display only.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from consumers.migration import MIGRATION_TAX_OFFICE
from ledger.domain.errors import DomainError, NotFound

from reconciliation.compare import yuan
from reconciliation.model import DiscrepancyState, StatementState
from reconciliation.service import Reconciler, discrepancy_view, history_view, missing_ranges
from reconciliation.store import ReconciliationStore

OPEN_STATES = (DiscrepancyState.OPEN.value, DiscrepancyState.EXPLAINED.value)


def statement_report(store: ReconciliationStore, statement_id: str) -> dict[str, Any]:
    s = store.statement(statement_id)
    if s is None:
        raise NotFound("STATEMENT_NOT_FOUND", f"no statement {statement_id!r} has been received")
    out: dict[str, Any] = {
        "statement_id": s["statement_id"], "state": s["state"],
        "business_date": s["business_date"].isoformat() if s["business_date"] else None,
        "tax_office": s["tax_office"], "region_code": s["region_code"], "line_count": s["line_count"],
        "header_total_fen": s["total_amount_fen"], "lines_received": s["lines_received"],
        "lines_total_fen": s["lines_fen"], "first_seen_at": _iso(s["first_seen_at"]),
        "completed_at": _iso(s["completed_at"]), "reconciled_at": _iso(s["reconciled_at"]),
        "superseded_by": s["superseded_by"], "result": s["result"], "discrepancies": [],
        "errors": [_error_view(e) for e in store.errors(statement_id=statement_id)],
    }
    if s["state"] in (StatementState.RECEIVING, StatementState.INCOMPLETE) and s["line_count"] is not None:
        out["missing_lines"] = missing_ranges(store.line_numbers(statement_id), s["line_count"])
    if s["business_date"] is not None:
        records = store.find_discrepancies(office=s["tax_office"], region=s["region_code"], day=s["business_date"])
        out["discrepancies"] = [discrepancy_view(r) for r in records]
    return out


def discrepancy_report(store: ReconciliationStore, discrepancy_id: str) -> dict[str, Any]:
    record = store.discrepancy(discrepancy_id)
    if record is None:
        raise NotFound("DISCREPANCY_NOT_FOUND", f"no discrepancy {discrepancy_id!r}")
    return {**discrepancy_view(record), "history": [history_view(h) for h in store.history(discrepancy_id)]}


def open_discrepancies(store: ReconciliationStore, *, office: str | None = None, region: str | None = None,
                       older_than_days: int | None = None, now: datetime | None = None) -> list[dict[str, Any]]:
    """Discrepancies not resolved (OPEN or EXPLAINED), optionally only those found more than N days ago."""
    before = None
    if older_than_days is not None:
        if older_than_days < 0:
            raise DomainError("DAYS_INVALID", f"--older-than must be 0 days or more, not {older_than_days}")
        before = (now or datetime.now(timezone.utc)) - timedelta(days=older_than_days)
    return [discrepancy_view(r) for r in store.find_discrepancies(states=OPEN_STATES, office=office, region=region,
                                                                  found_before=before)]


def county_summary(store: ReconciliationStore, *, county: str | None = None,
                   day: date | None = None, missing: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """Per business date and county (region): collected per the tax statements, recorded by the ledger.

    ``collected`` sums the current statements of the day and county (every office);
    ``recorded`` sums every ledger row of that day and county, so a day the ledger
    recorded payments for and no statement covers shows its whole amount as difference
    (``statements`` = 0). ``open_*`` are the discrepancies not resolved yet.
    """
    t = store.region_day_totals(region=county, day=day)
    rows: dict[tuple[date, str], dict[str, Any]] = {}

    def row(d: Any, region: str) -> dict[str, Any]:
        key = (d if isinstance(d, date) else date.fromisoformat(str(d)), region)
        return rows.setdefault(key, {"business_date": key[0].isoformat(), "region_code": region, "statements": 0,
                                     "statement_lines": 0, "collected_fen": 0, "ledger_rows": 0, "recorded_fen": 0,
                                     "pending_statements": 0, "open_discrepancies": 0, "open_fen": 0,
                                     "missing_statements": 0})

    for d, region, n, lines, fen in t["collected"]:
        r = row(d, region)
        r.update(statements=int(n), statement_lines=int(lines or 0), collected_fen=int(fen or 0))
    for d, region, n, fen in t["recorded"]:
        row(d, region).update(ledger_rows=int(n), recorded_fen=int(fen or 0))
    for d, region, n in t["pending"]:
        row(d, region)["pending_statements"] = int(n)
    for d, region, n, fen in t["open"]:
        row(d, region).update(open_discrepancies=int(n), open_fen=int(fen or 0))
    for m in missing:  # (from missing_statements: the offices whose statement is overdue)
        if day is None or m["business_date"] == day.isoformat():
            r = row(m["business_date"], m["region_code"])
            r["missing_statements"] = r.get("missing_statements", 0) + 1
    out = []
    for key in sorted(rows):
        r = rows[key]
        r["difference_fen"] = r["collected_fen"] - r["recorded_fen"]
        for k in ("collected", "recorded", "difference", "open"):
            r[f"{k}_yuan"] = yuan(r[f"{k}_fen"])
        out.append(r)
    return out


#: The stable code of a day the ledger has receipts for and the tax bureau sent no statement.
STATEMENT_MISSING = "STATEMENT_MISSING"


def missing_statements(store: ReconciliationStore, *, as_of: date, due_days: int,
                       region: str | None = None, office: str | None = None) -> list[dict[str, Any]]:
    """Scopes (payment date, tax office, region) with ledger receipts and no statement ``due_days`` days after
    the payment date (缺对账单): one row each, code ``STATEMENT_MISSING``, with what the ledger recorded.

    Derived on every read from the ledger rows and the statements received: it stops being listed
    the moment any statement of that scope arrives, and that statement is then compared line by
    line (a statement that never completes is INCOMPLETE instead). Payments migrated from the old system
    (pseudo tax office ``MIGRATION``, ``ledger migrate``) were collected years ago and never get a statement:
    not listed.
    """
    through = as_of - timedelta(days=due_days + 1)  # due on day D + due_days, overdue after it
    out = []
    for d, office_code, region_code, n, fen in store.scopes_without_statement(through=through, region=region,
                                                                              office=office):
        if office_code == MIGRATION_TAX_OFFICE:
            continue
        day = d if isinstance(d, date) else date.fromisoformat(str(d))
        late = (as_of - day).days - due_days
        out.append({
            "code": STATEMENT_MISSING, "business_date": day.isoformat(), "tax_office": office_code,
            "region_code": region_code, "ledger_rows": int(n), "recorded_fen": int(fen or 0),
            "recorded_yuan": yuan(int(fen or 0)), "days_overdue": late,
            "message": f"{day.isoformat()} 税务机关 {office_code} 参保地 {region_code}：台账有 {int(n)} 笔缴费记录"
                       f"（净额 {yuan(int(fen or 0))} 元），应于 {due_days} 天内到达的对账单未收到，已逾期 {late} 天 "
                       f"(ledger receipts without a tax statement, {late} day(s) overdue)",
        })
    return out


def explain_discrepancy(reconciler: Reconciler, discrepancy_id: str, *, note: str, user: str) -> dict[str, Any]:
    reconciler.explain(discrepancy_id, note=note, user=user)
    return discrepancy_report(reconciler.store, discrepancy_id)


# --------------------------------------------------------------------------- export
EXPORT_COLUMNS = (
    "id", "state", "class", "business_date", "tax_office", "region_code", "voucher_no", "occurrence", "statement_id",
    "line_no", "masked_id", "statement_fen", "ledger_fen", "delta_count", "delta_fen", "delta_yuan", "note",
    "explained_by", "explained_at", "resolved_at", "resolved_by", "first_found_at", "detail",
)


def export_row(view: dict[str, Any]) -> dict[str, Any]:
    details = view.get("details") or {}
    line = details.get("statement") or {}
    pointer = view.get("resolved_by") or {}
    resolved_by = ""
    if pointer.get("kind") == "ledger_event":
        resolved_by = f"ledger_event:{pointer.get('event_type') or ''} {pointer.get('event_id') or ''}"
    elif pointer:
        resolved_by = f"{pointer.get('kind')}:{pointer.get('statement_id', '')}"
    return {
        **{k: view.get(k) for k in ("id", "state", "class", "tax_office", "voucher_no", "occurrence", "statement_id",
                                    "line_no", "statement_fen", "ledger_fen", "delta_count", "delta_fen", "note",
                                    "explained_by", "explained_at", "resolved_at", "first_found_at")},
        "business_date": view["scope"]["business_date"], "region_code": view["scope"]["region_code"],
        "masked_id": line.get("masked_id", ""), "delta_yuan": Decimal(view["delta_fen"]) / 100,
        "resolved_by": resolved_by.strip(), "detail": details.get("note") or ",".join(details.get("differs", [])),
    }


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] = EXPORT_COLUMNS) -> bytes:
    """CSV with a UTF-8 byte-order mark, so Excel on a Chinese Windows opens it as UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else f"{r[c]:.2f}" if isinstance(r.get(c), Decimal) else r[c]
                         for c in columns])
    return "\ufeff".encode("utf-8") + buffer.getvalue().encode("utf-8")


def to_xlsx(rows: Sequence[dict[str, Any]], columns: Sequence[str] = EXPORT_COLUMNS, *,
            sheet: str = "discrepancies") -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    ws = book.active
    ws.title = sheet[:31]
    ws.append(list(columns))
    for r in rows:
        ws.append([r.get(c) for c in columns])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def export_discrepancies(views: Sequence[dict[str, Any]], fmt: str) -> bytes:
    rows = [export_row(v) for v in views]
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "xlsx":
        return to_xlsx(rows)
    raise DomainError("EXPORT_FORMAT_UNKNOWN", f"unknown export format {fmt!r}; use csv or xlsx")


def _iso(v: Any) -> str | None:
    return v.isoformat() if v is not None else None


def _error_view(e: dict[str, Any]) -> dict[str, Any]:
    return {k: (_iso(v) if k == "at" else v) for k, v in e.items() if k != "raw"} | {"has_raw": e["raw"] is not None}


__all__ = ["EXPORT_COLUMNS", "STATEMENT_MISSING", "county_summary", "missing_statements", "discrepancy_report", "explain_discrepancy", "export_discrepancies",
           "export_row", "open_discrepancies", "statement_report", "to_csv", "to_xlsx"]
