"""One person's full history for an auditor (审计): every event, its source, and the state after it.

:func:`history_report` lists, for one ID (type + number), every event of the person
in order with its recording instant (transaction time), its business (effective)
date, its provenance (Kafka topic / partition / offset, the tax voucher or registry
document, or the API user and request), the policy version of an assessment, a
one-line description, and the person's state after that step: enrolled where, due,
paid, covered from / to, waiting until, account balance.

:func:`replay_as_of` answers "what did the ledger know at instant T?": the state
built only from the events recorded at or before T (``timestamp <= T``), for any
coverage year, the difference against today, each changed figure with the events
that changed it (a late subsidy, a refund, a reversal, a correction), and "was the
person covered on day D?" as known at T and as known now.

Nothing here computes a rule. Every state is the pure projection
(:class:`projections.entitlement.EntitlementProjection`: the history fold of
:mod:`ledger.domain.history`, then ``derive``) applied to the events one at a time;
the figures shown are that projection's own. The events are read once
(``ledger.events.get``: events, never snapshots) and folded in memory.
"""
from __future__ import annotations

import bisect
from dataclasses import asdict
from datetime import date, datetime, time, timezone
from typing import Any, Sequence
from uuid import UUID

from eventsourcing.persistence import MapperDeserialisationError

from ledger.domain.errors import DomainError, NotFound
from ledger.domain.person import BUSINESS_TZ, Person, business_date
from projections.entitlement import EntitlementProjection
from ledger.domain.coverage import row_covered_on

from entrypoints.audit.describe import describe, document, provenance_line, source_record, describe_zh
from ledger.domain.chain import GENESIS_HASH, event_digest
from entrypoints.audit.verify import masked_id_of, projection_for, verify_person
from entrypoints.audit.stored_rows import event_rows

#: Figures of the state after a step, and which of the projection's ``sources`` explain each.
YEAR_FIGURES: dict[str, tuple[str, ...]] = {
    "scheme": ("enrollment",),
    "region_code": ("enrollment", "assessment", "paid"),
    "enrollment_state": ("enrollment",),
    "standard_fen": ("assessment",),
    "subsidy_fen": ("assessment", "subsidy"),
    "subsidy_category": ("assessment", "subsidy"),
    "due_fen": ("assessment", "subsidy"),
    "due_date": ("assessment",),
    "net_paid_fen": ("paid", "refunded", "reversed"),
    "refunded_fen": ("refunded",),
    "reversed_fen": ("reversed",),
    "outstanding_fen": ("outstanding", "reversed"),
    "overpayment_fen": ("overpayment", "reversed"),
    "funded": ("coverage", "paid", "refunded", "reversed", "subsidy"),
    "covered_from": ("coverage", "waiting", "paid", "refunded", "reversed", "enrollment", "subsidy"),
    "covered_to": ("coverage", "waiting", "paid", "refunded", "reversed", "enrollment", "subsidy"),
    "coverage_periods": ("coverage", "waiting", "paid", "refunded", "reversed", "enrollment", "subsidy"),
    "waiting_until": ("waiting",),
    "continuous_years": ("continuity",),
    "policy_version": ("assessment",),
}
SUMMARY_FIGURES: dict[str, tuple[str, ...]] = {
    "enrolled_in": ("enrollment",),
    "residence_status": ("residence",),
    "account_balance_fen": ("account_balance",),
    "contribution_months": ("contribution_months",),
}
FIGURES = {**SUMMARY_FIGURES, **YEAR_FIGURES}
#: Report keys only the printable report carries (``history_report(..., printable=True)``).
PRINTABLE_KEYS = ("name", "chain_head", "chain_genesis", "as_of_instant")


# --------------------------------------------------------------------------- input
def parse_instant(value: datetime | str | None, what: str = "as-of instant") -> datetime | None:
    """An aware UTC instant from ISO text.

    ``2025-03-01T12:00:00+08:00`` or ``...Z`` as given; a time without an offset is
    China Standard Time (the business time zone); a bare date means the end of that
    day in China Standard Time (everything recorded that day is known).
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        instant = value
    else:
        text = str(value).strip()
        try:
            if len(text) == 10:
                day = date.fromisoformat(text)
                instant = datetime.combine(day, time.max, tzinfo=BUSINESS_TZ)
            else:
                instant = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise DomainError("AS_OF_INVALID", f"the {what} must be an ISO date or date and time, e.g. "
                                               f"2025-03-01 or 2025-03-01T12:00:00+08:00; got {value!r}") from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=BUSINESS_TZ)
    return instant.astimezone(timezone.utc)


def parse_year(value: int | str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        year = int(value)
    except (TypeError, ValueError):
        raise DomainError("YEAR_INVALID", f"the coverage year must be a year like 2025; got {value!r}") from None
    if not 1990 <= year <= 2100:
        raise DomainError("YEAR_INVALID", f"the coverage year must be a year like 2025; got {value!r}")
    return year


def parse_day(value: date | str | None) -> date | None:
    if value is None or value == "" or isinstance(value, date):
        return value or None  # type: ignore[return-value]
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise DomainError("DATE_INVALID", f"the day must be a date YYYY-MM-DD; got {value!r}") from None


# --------------------------------------------------------------------------- plain values
def jsonable(value: Any) -> Any:
    """Dates and instants as ISO text, tuples as lists, UUIDs as text: what JSON and HTML show."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


# --------------------------------------------------------------------------- reading the events
def load_events(ledger: Any, person_id: UUID) -> list[Any]:
    """The person's events, all of them, in one read (never snapshots)."""
    try:
        events = list(ledger.events.get(person_id))
    except MapperDeserialisationError as exc:
        raise DomainError("EVENT_UNREADABLE", f"a stored event of this person cannot be read ({exc}); the store may "
                                              "have been tampered with: run ledger verify --person") from None
    if not events:
        raise NotFound("PERSON_NOT_FOUND", "no person with that ID is registered in the ledger")
    return events


def known_at(events: Sequence[Any], as_of: datetime) -> int:
    """How many of the (version-ordered) events were recorded at or before ``as_of``.

    A person's events are recorded in version order, so what was known at T is a
    prefix of the history; the count is found by bisection on the recording instants.
    """
    return bisect.bisect_right([e.timestamp for e in events], as_of)


# --------------------------------------------------------------------------- the state after a step
def event_year(event: Any, row: dict[str, Any] | None) -> int | None:
    """The coverage year an event is about (None: it is about the person, not a year)."""
    kind = type(event).__name__
    if kind == "ContributionAssessed":
        return int(event.period[:4])
    if kind == "ContributionPaid":
        return event.period_start.year
    if kind in ("LateFeePaid", "LateFeeWaived"):
        return int(event.period[:4])
    if kind in ("ContributionRefunded", "ContributionReversed") and row is not None:
        key = f"{event.original_tax_office.strip()}|{event.original_voucher_no.strip()}"
        payment = row["history"].payments.get(key)
        if payment is not None and payment.periods:
            return int(payment.periods[0][:4])
    if kind == "Enrolled" and row is not None:
        years = [y for y, r in row["years"].items() if r["enrollment_id"] == event.enrollment_id]
        if years:
            return min(years)
    return None


def default_year(events: Sequence[Any]) -> int:
    """The year the person's money concerns most recently: the latest assessed or paid period, else this year."""
    years = [y for e in events if (y := event_year(e, None)) is not None]
    return max(years) if years else business_date(datetime.now(timezone.utc)).year


def state(row: dict[str, Any] | None, year: int) -> dict[str, Any]:
    """The person's figures for ``year`` (and the person now) from one entitlement row."""
    out: dict[str, Any] = {"year": year}
    if row is None:
        return {**out, **{k: None for k in FIGURES}}
    summary = row["summary"]
    enrollment = summary["enrollment"]
    out["enrolled_in"] = (f"{enrollment['scheme']} {enrollment['region_code']}" if enrollment else None)
    out["residence_status"] = summary["residence_status"]
    out["account_balance_fen"] = summary["account_balance_fen"]
    out["contribution_months"] = summary["contribution_months"]
    resident = row["years"].get(year)
    employee = row["employee_years"].get(year)
    if resident is not None:
        periods = resident["coverage_periods"]
        out.update({
            "scheme": "RESIDENT", "region_code": resident["region_code"],
            "enrollment_state": resident["enrollment_state"], "standard_fen": resident["standard_fen"],
            "subsidy_fen": resident["subsidy_fen"], "subsidy_category": resident["subsidy_category"],
            "due_fen": resident["due_fen"], "due_date": resident["due_date"],
            "net_paid_fen": resident["net_paid_fen"], "refunded_fen": resident["refunded_fen"],
            "reversed_fen": resident["reversed_fen"], "outstanding_fen": resident["outstanding_fen"],
            "overpayment_fen": resident["overpayment_fen"], "funded": resident["funded"],
            "covered_from": resident["coverage_start"], "covered_to": resident["coverage_end"],
            "coverage_periods": [list(p) for p in periods], "waiting_until": resident["waiting_until"],
            "continuous_years": resident["continuous_years"], "policy_version": resident["policy_version"],
        })
    elif employee is not None:
        months = employee["months"]
        covered = sorted(k for k, m in months.items() if m["covered"])
        versions = sorted({m["policy_version"] for m in months.values() if m["policy_version"]})
        region = next((m["region_code"] for m in months.values() if m["region_code"]), None)
        out.update({
            "scheme": "EMPLOYEE", "region_code": region, "enrollment_state": summary["enrollment_state"],
            "standard_fen": None, "subsidy_fen": None, "subsidy_category": None,
            "due_fen": employee["due_fen"], "due_date": None, "net_paid_fen": employee["net_paid_fen"],
            "refunded_fen": None, "reversed_fen": None, "outstanding_fen": employee["outstanding_fen"],
            "overpayment_fen": sum(m["overpayment_fen"] for m in months.values()),
            "funded": employee["months_covered"] == len(months) and bool(months),
            "covered_from": covered[0] if covered else None, "covered_to": covered[-1] if covered else None,
            "coverage_periods": covered, "waiting_until": None, "continuous_years": None,
            "policy_version": ", ".join(versions) or None,
        })
    for k in FIGURES:
        out.setdefault(k, None)
    return out


def _sources(row: dict[str, Any] | None, year: int, figure: str) -> set[str]:
    """Event ids the projection names behind one figure of ``state(row, year)``."""
    if row is None:
        return set()
    ids: set[str] = set()
    if figure in SUMMARY_FIGURES:
        for key in SUMMARY_FIGURES[figure]:
            ids.update(row["summary"]["sources"].get(key, []))
        return ids
    resident = row["years"].get(year)
    if resident is not None:
        for key in YEAR_FIGURES[figure]:
            ids.update(resident["sources"].get(key, []))
        return ids
    employee = row["employee_years"].get(year)
    if employee is not None:
        for month in employee["months"].values():
            for ids_of_key in month["sources"].values():
                ids.update(ids_of_key)
    return ids


def entry(event: Any, row_after: dict[str, Any], year: int) -> dict[str, Any]:
    """One line of the history: the event, its provenance, and the state after it."""
    return {
        "version": event.originator_version,
        "event_id": str(event.event_id),
        "type": type(event).__name__,
        "recorded_at": event.timestamp,
        "effective_date": event.effective_date,
        "description": describe(event),
        "provenance": dict(event.provenance or {}),
        "source": provenance_line(event.provenance),
        "document": document(event),
        "policy_version": getattr(event, "policy_version", None),
        "prev_hash": event.prev_hash,
        "state_after": state(row_after, year),
    }


# --------------------------------------------------------------------------- as of T
def compare(then: dict[str, Any] | None, now: dict[str, Any], year: int, later_events: Sequence[Any],
            ) -> list[dict[str, Any]]:
    """Figures that differ between what was known then and now, each with the events that changed it.

    The causes are the events recorded after T that the projection names as sources
    of the figure (then or now). When it names none (a figure the projection does not
    trace), every event recorded after T about that year is listed, marked untraced.
    """
    before, after = state(then, year), state(now, year)
    changes = []
    for figure in FIGURES:
        if before[figure] == after[figure]:
            continue
        ids = _sources(then, year, figure) | _sources(now, year, figure)
        causes = [e for e in later_events if str(e.event_id) in ids]
        traced = bool(causes)
        if not causes:
            causes = [e for e in later_events if event_year(e, now) in (year, None)] or list(later_events)
        changes.append({
            "figure": figure, "then": before[figure], "now": after[figure], "traced": traced,
            "causes": [{"version": e.originator_version, "event_id": str(e.event_id), "type": type(e).__name__,
                        "recorded_at": e.timestamp, "description": describe(e)} for e in causes],
        })
    return changes


def decision(row: dict[str, Any] | None, day: date, person_id: str) -> dict[str, Any]:
    if row is None:
        return {"covered": False, "reason": "not covered: the ledger had no record of this person yet",
                "reason_code": "NO_RECORD", "reason_values": {},
                "person_id": person_id, "day": day, "sources": []}
    d = asdict(row_covered_on(row, day))
    d["sources"] = list(d["sources"])
    return d


def as_of_section(events: Sequence[Any], rows_after: Sequence[dict[str, Any]] | None, projection: EntitlementProjection,
                  as_of: datetime, year: int, day: date | None) -> dict[str, Any]:
    """What was known at ``as_of`` against what is known now (rows_after: the row after each event, if at hand)."""
    k = known_at(events, as_of)
    if rows_after is not None:
        then = rows_after[k - 1] if k else None
        now = rows_after[-1]
    else:
        then = projection.apply_rows(None, events[:k]) if k else None
        now = projection.apply_rows(then, events[k:]) if k < len(events) else then
    if day is None:
        day = min(max(business_date(as_of), date(year, 1, 1)), date(year, 12, 31))
    person_id = str(events[0].originator_id)
    return {
        "as_of": as_of,
        "year": year,
        "known_version": k,
        "current_version": len(events),
        "events_recorded_since": len(events) - k,
        "then": state(then, year),
        "now": state(now, year),
        "changes": compare(then, now, year, events[k:]),  # type: ignore[arg-type]
        "covered_on": {"day": day, "then": decision(then, day, person_id), "now": decision(now, day, person_id)},
    }


def replay_as_of(ledger: Any, person_id: UUID, as_of: datetime | str, *, year: int | str | None = None,
                 day: date | str | None = None, events: Sequence[Any] | None = None) -> dict[str, Any]:
    """The person as the ledger knew them at ``as_of``, against today (plain values, dates as date objects).

    One ``events.get``, two folds in memory (what was known at T, then the rest on
    top of it). ``events`` may be passed when the caller already read them.
    """
    instant = parse_instant(as_of)
    evs = list(events) if events is not None else load_events(ledger, person_id)
    y = parse_year(year) or default_year(evs)
    return as_of_section(evs, None, projection_for(ledger.policies), instant, y, parse_day(day))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the report
def person_history(events: Sequence[Any], policies: Any, *, year: int | None = None,
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(history lines, row after each event): the events folded one at a time through the projection."""
    projection = projection_for(policies)
    fallback = year or default_year(events)
    rows: list[dict[str, Any]] = []
    lines = []
    row: dict[str, Any] | None = None
    for event in events:
        row = projection.apply_row(row, event)
        rows.append(row)
        focus = year or event_year(event, row) or fallback
        lines.append(entry(event, row, focus))
    return lines, rows


def history_report(ledger: Any, id_type: str, id_number: str, *, as_of: datetime | str | None = None,
                   year: int | str | None = None, on: date | str | None = None, verify: bool = True,
                   views: Any = None, printable: bool = False) -> dict[str, Any]:
    """Everything an auditor files about one person, as JSON-ready plain data.

    Keys: ``report``, ``generated_at``, ``ledger_position`` (the notification id the
    report was computed at), ``person_id``, ``masked_id``, ``id_type``, ``version``,
    ``year``, ``events`` (each with ``state_after``), ``as_of`` (None without an
    instant), ``verification`` (:func:`entrypoints.audit.verify.verify_person`, when
    ``verify``). With ``printable`` (the HTML report), also ``name`` (in full: the
    report masks it unless the auditor asks to reveal), ``chain_head`` (the digest of the
    last event), ``chain_genesis`` and per event ``digest`` (:func:`ledger.domain.chain.event_digest`,
    the digest the verification recomputes and the next event carries as ``prev_hash``) and
    ``record`` (:func:`entrypoints.audit.describe.source_record`). The HTTP layer calls this for the auditor role; ``render_html``
    (:mod:`entrypoints.audit.report`) prints it.
    """
    y = parse_year(year)
    instant = parse_instant(as_of)
    day = parse_day(on)
    person_id = ledger.person_id(id_type, id_number)
    position = event_rows(ledger).max_notification_id()
    events = load_events(ledger, person_id)
    if not isinstance(events[0], Person.Event):
        raise NotFound("PERSON_NOT_FOUND", "no person with that ID is registered in the ledger")
    lines, rows = person_history(events, ledger.policies, year=y)
    report_year = y or default_year(events)
    report: dict[str, Any] = {
        "report": "person-history",
        "generated_at": datetime.now(timezone.utc),
        "ledger_position": position,
        "person_id": str(person_id),
        "masked_id": masked_id_of(events),
        "id_type": getattr(events[0], "id_type", id_type),
        "version": len(events),
        "year": report_year,
        "events": lines,
        "as_of": None,
        "verification": None,
    }
    if printable:
        digests = [event_digest(e) for e in events]
        for line, event, digest in zip(lines, events, digests):
            line["digest"] = digest
            line["record"] = source_record(event)
            line["description_zh"] = describe_zh(event)
        report["name"] = getattr(events[0], "name", None)
        report["chain_head"] = digests[-1]
        report["chain_genesis"] = GENESIS_HASH
        report["as_of_instant"] = instant
    if instant is not None:
        report["as_of"] = as_of_section(events, rows, projection_for(ledger.policies), instant, report_year, day)
    elif day is not None:
        report["covered_on"] = {"day": day, "now": decision(rows[-1], day, str(person_id))}
    if verify:
        report["verification"] = verify_person(ledger, person_id, views=views).as_dict()
    return jsonable(report)
