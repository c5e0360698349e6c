"""The feeds of a synthetic county: timeline items, replay through the :class:`~ledger.application.Ledger`, CSV files.

A county (:mod:`entrypoints.simulation.county`) is a list of :class:`Action` in time
order. An action carries one inbound record exactly as the real channel delivers it
(a :class:`~ledger.inbound_records.TaxPaymentRecord`, :class:`~ledger.inbound_records.StatusRecord` or
:class:`~ledger.inbound_records.ResidentRecord` from the Kafka feeds) or one clerk action
(:class:`Enrollment`, :class:`Assessment`, :class:`TransferOut`, :class:`TransferIn`
at the agency counter), plus what the generator expects of it: the error code it
must fail with (a bad record), or that it is a resend the ledger must recognise.

:func:`replay` drives the real application service with these actions and collects
every :class:`~ledger.domain.errors.DomainError` per record; :func:`write_csv` writes
the files integrators hand over (UTF-8 with BOM, money in integer fen, ISO dates).
"""
from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from events import inbound
from ledger.domain.errors import DomainError
from ledger.inbound_records import Provenance

if TYPE_CHECKING:  # pragma: no cover
    from ledger.application import Ledger, Outcome

# Action kinds, and their rank when two actions share an instant (registry facts first,
# then the agency's own actions, tax collection last).
RESIDENCE = "residence"
STATUS = "status"
ENROLL = "enroll"
TRANSFER_OUT = "transfer_out"
TRANSFER_IN = "transfer_in"
ASSESS = "assess"
TAX = "tax"
RANK = {RESIDENCE: 0, STATUS: 1, ENROLL: 2, TRANSFER_OUT: 3, TRANSFER_IN: 4, ASSESS: 5, TAX: 6}
KINDS = tuple(RANK)

TAX_TOPIC = "tax.payments.v1"
STATUS_TOPIC = "registry.status.v1"
RESIDENTS_TOPIC = "registry.residents.v1"


# --------------------------------------------------------------------------- clerk actions
@dataclass(frozen=True)
class Enrollment:
    """Enrollment at the agency counter (参保登记), or a batch import of existing members."""

    request_id: str
    clerk: str
    id_type: str
    id_number: str
    name: str
    scheme: str
    region_code: str
    grid_code: str | None
    flexible: bool
    employer_id: str | None
    channel: str
    effective_date: date


@dataclass(frozen=True)
class Assessment:
    """Assessment of a resident's contribution for a coverage year (缴费核定)."""

    request_id: str
    clerk: str
    id_type: str
    id_number: str
    year: int
    effective_date: date


@dataclass(frozen=True)
class TransferOut:
    """Transfer out (转出) by the sending region's agency."""

    request_id: str
    clerk: str
    id_type: str
    id_number: str
    transfer_id: str
    region_code: str
    counterpart_region: str
    effective_date: date


@dataclass(frozen=True)
class TransferIn:
    """Transfer in (转入) by the receiving region's agency: credit what was carried, enroll here."""

    request_id: str
    clerk: str
    id_type: str
    id_number: str
    name: str
    transfer_id: str
    counterpart_region: str
    region_code: str
    grid_code: str | None
    scheme: str
    effective_date: date
    account_balance_fen: int = 0
    contribution_months: int = 0


ClerkAction = Enrollment | Assessment | TransferOut | TransferIn


# --------------------------------------------------------------------------- timeline
@dataclass(frozen=True, slots=True)
class Action:
    """One item of a county's timeline: a feed record or a clerk action, at an instant (UTC)."""

    when: datetime
    rank: int
    seq: int
    kind: str
    record: Any
    key: str  # voucher (office|number), registry record id, or clerk request id
    expected_error: str | None = None  # the code a bad record must fail with
    resend: bool = False  # an exact duplicate of an earlier record

    @property
    def sort_key(self) -> tuple[datetime, int, int]:
        return (self.when, self.rank, self.seq)


@dataclass(frozen=True)
class ExpectedError:
    """A bad record the generator injected, and the error code the ledger must answer with."""

    kind: str
    key: str
    code: str


@dataclass(frozen=True)
class MalformedRow:
    """A raw feed row (Avro-record shape) that must fail decoding before it reaches the ledger."""

    topic: str
    row: dict[str, Any]
    expected_code: str
    what: str


@dataclass(frozen=True)
class RecordError:
    """A record the ledger refused during a replay, with the error it gave."""

    kind: str
    key: str
    record: Any
    code: str
    message: str


@dataclass
class ApplySummary:
    """What :func:`replay` did: counts per action kind, resends recognised, errors per record."""

    applied: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)  # not applied and no error: resends
    errors: list[RecordError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors_by_code(self) -> dict[str, int]:
        return dict(sorted(Counter(e.code for e in self.errors).items()))

    @property
    def resends(self) -> int:
        return sum(self.unchanged.values())

    @property
    def total(self) -> int:
        return sum(self.applied.values()) + self.resends + len(self.errors)

    def as_dict(self) -> dict[str, Any]:
        return {
            "applied": dict(self.applied),
            "resends_recognised": dict(self.unchanged),
            "errors_by_code": self.errors_by_code,
            "seconds": round(self.seconds, 3),
        }


# --------------------------------------------------------------------------- replay
def replay(
    actions: Sequence[Action],
    ledger: Ledger,
    *,
    batch_size: int = 500,
    progress: Callable[[int, int], None] | None = None,
) -> ApplySummary:
    """Drive the ledger with the actions, in their order; never stop on a bad record.

    Consecutive tax records go through ``record_tax_records`` in batches of at most
    ``batch_size`` (the high-volume path); everything else one call at a time. A
    :class:`DomainError` is recorded against its record and the replay goes on.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    summary = ApplySummary(applied={k: 0 for k in KINDS}, unchanged={k: 0 for k in KINDS})
    offsets = {TAX_TOPIC: 0, STATUS_TOPIC: 0, RESIDENTS_TOPIC: 0}
    total = len(actions)
    done = 0
    started = time.perf_counter()
    batch: list[Action] = []

    def note(action: Action, outcome: Outcome | None, error: DomainError | None) -> None:
        if error is not None:
            summary.errors.append(RecordError(action.kind, action.key, action.record, error.code, error.message))
        elif outcome is not None and outcome.applied:
            summary.applied[action.kind] += 1
        else:
            summary.unchanged[action.kind] += 1

    def feed(topic: str, key: str) -> Provenance:
        offsets[topic] += 1
        return Provenance(source="kafka", topic=topic, partition=0, offset=offsets[topic] - 1, record_key=key)

    def flush() -> None:
        nonlocal done
        if not batch:
            return
        pairs = [(a.record, feed(TAX_TOPIC, a.key)) for a in batch]
        for action, outcome in zip(batch, ledger.record_tax_records(pairs)):
            note(action, outcome, outcome.error)
        done += len(batch)
        batch.clear()
        if progress is not None:
            progress(done, total)

    for action in actions:
        if action.kind == TAX:
            batch.append(action)
            if len(batch) >= batch_size:
                flush()
            continue
        flush()
        try:
            outcome = _apply_one(ledger, action, feed)
        except DomainError as e:
            note(action, None, e)
        else:
            note(action, outcome, None)
        done += 1
        if progress is not None and done % batch_size == 0:
            progress(done, total)
    flush()
    summary.seconds = time.perf_counter() - started
    if progress is not None:
        progress(done, total)
    return summary


def _apply_one(ledger: Ledger, action: Action, feed: Callable[[str, str], Provenance]) -> Outcome:
    record = action.record
    if action.kind == RESIDENCE:
        return ledger.apply_residence(record, provenance=feed(RESIDENTS_TOPIC, action.key))
    if action.kind == STATUS:
        return ledger.apply_status(record, provenance=feed(STATUS_TOPIC, action.key))
    clerk = Provenance(source="api", user=record.clerk, request_id=record.request_id)
    if action.kind == ENROLL:
        return ledger.enroll(
            id_type=record.id_type, id_number=record.id_number, name=record.name, scheme=record.scheme,
            region_code=record.region_code, grid_code=record.grid_code, flexible=record.flexible,
            employer_id=record.employer_id, channel=record.channel, effective_date=record.effective_date,
            provenance=clerk,
        )
    if action.kind == ASSESS:
        return ledger.assess_resident_year(
            ledger.person_id(record.id_type, record.id_number), record.year,
            provenance=clerk, effective_date=record.effective_date,
        )
    if action.kind == TRANSFER_OUT:
        return ledger.transfer_out(
            ledger.person_id(record.id_type, record.id_number), transfer_id=record.transfer_id,
            counterpart_region=record.counterpart_region, effective_date=record.effective_date, provenance=clerk,
        )
    if action.kind == TRANSFER_IN:
        return ledger.transfer_in(
            id_type=record.id_type, id_number=record.id_number, name=record.name, transfer_id=record.transfer_id,
            counterpart_region=record.counterpart_region, account_balance_fen=record.account_balance_fen,
            contribution_months=record.contribution_months, scheme=record.scheme, region_code=record.region_code,
            grid_code=record.grid_code, effective_date=record.effective_date, provenance=clerk,
        )
    raise ValueError(f"unknown action kind {action.kind!r}")


# --------------------------------------------------------------------------- Avro-shaped rows
# The feeds' rows are exactly what a producer puts in the Avro records: one mapping, in events/inbound.py.
tax_row = inbound.tax_record_to_avro
status_row = inbound.status_record_to_avro
resident_row = inbound.resident_record_to_avro


def enrollment_row(record: Enrollment) -> dict[str, Any]:
    return {
        "request_id": record.request_id,
        "clerk": record.clerk,
        "id_type": record.id_type,
        "id_number": record.id_number,
        "name": record.name,
        "scheme": record.scheme,
        "region_code": record.region_code,
        "grid_code": record.grid_code,
        "flexible": record.flexible,
        "employer_id": record.employer_id,
        "channel": record.channel,
        "effective_date": record.effective_date,
    }


# CSV columns: the field names and order of the Avro contracts in ``schemas/inbound``.
TAX_COLUMNS = (
    "voucher_no", "tax_office", "id_type", "id_number", "name", "region_code", "levy_item", "period_start",
    "period_end", "assessed_base_fen", "amount_fen", "paid_at", "credited_on", "channel", "subsidy_fen",
    "subsidy_type", "kind", "original_voucher_no", "original_tax_office", "reason",
)
STATUS_COLUMNS = (
    "record_id", "id_type", "id_number", "name", "category", "action", "valid_from", "valid_to", "department",
    "document_no", "grant_id",
)
RESIDENT_COLUMNS = ("record_id", "id_type", "id_number", "name", "grid_code", "status", "effective_date", "extra")
ENROLLMENT_COLUMNS = (
    "request_id", "clerk", "id_type", "id_number", "name", "scheme", "region_code", "grid_code", "flexible",
    "employer_id", "channel", "effective_date",
)


# --------------------------------------------------------------------------- CSV
CSV_FILES = (
    "tax_payments.csv",
    "statuses.csv",
    "residents.csv",
    "enrollments.csv",
    "malformed_rows.csv",
    "truth_persons.csv",
    "truth_grids.csv",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _write_rows(fh: Any, rows: Iterable[dict[str, Any]], header: Sequence[str]) -> None:
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in header])


def _write(path: Path, rows: Iterable[dict[str, Any]], header: Sequence[str]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        _write_rows(fh, rows, header)
    return path


#: Each feed's integrator export: (row of a record, CSV columns).
FEED_FILE_ROWS = {TAX: (tax_row, TAX_COLUMNS), STATUS: (status_row, STATUS_COLUMNS),
                  RESIDENCE: (resident_row, RESIDENT_COLUMNS)}


def feed_csv(kind: str, records: Iterable[Any]) -> bytes:
    """The feed's records as the integrator's CSV export (UTF-8 with BOM), the bytes ``write_csv`` writes."""
    row, columns = FEED_FILE_ROWS[kind]
    buffer = io.StringIO()
    _write_rows(buffer, (row(r) for r in records), columns)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def write_csv(county: Any, directory: str | Path) -> list[Path]:  # a simulation.county.County (it imports this module)
    """Write the county's feeds and truth as CSV files (UTF-8 with BOM), one file per feed.

    * ``tax_payments.csv``: payments, refunds and reversals (columns of the
      ``cn.medins.tax.v1.TaxPayment`` contract), noise included (resends, bad IDs...);
    * ``statuses.csv``: subsidised-group grants and revocations (``action`` GRANT/REVOKE);
    * ``residents.csv``: the household registry's records (``extra`` as JSON);
    * ``enrollments.csv``: counter enrollments and batch-imported members;
    * ``malformed_rows.csv``: rows that must fail decoding, with the expected error code;
    * ``truth_persons.csv`` and ``truth_grids.csv``: the expected outcome per person and per grid.

    Money is integer fen, dates ISO 8601, instants ISO 8601 in UTC, empty cells for
    absent values. The same county always gives byte-identical files.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    written.append(_write(out / "tax_payments.csv", (tax_row(r) for r in county.tax_records), TAX_COLUMNS))
    written.append(_write(out / "statuses.csv", (status_row(r) for r in county.status_records), STATUS_COLUMNS))
    written.append(_write(out / "residents.csv", (resident_row(r) for r in county.resident_records),
                          RESIDENT_COLUMNS))
    enrollments = [a for a in county.clerk_actions if isinstance(a, Enrollment)]
    written.append(_write(out / "enrollments.csv", (enrollment_row(r) for r in enrollments), ENROLLMENT_COLUMNS))
    written.append(_write(
        out / "malformed_rows.csv",
        ({"topic": m.topic, "expected_code": m.expected_code, "what": m.what,
          "row": json.dumps({k: _cell(v) if v is not None else None for k, v in m.row.items()},
                            ensure_ascii=False, sort_keys=True)}
         for m in county.malformed_rows),
        ["topic", "expected_code", "what", "row"],
    ))
    truth = county.truth
    person_header = ["id_number", "name", "grid_code", "township_code", "scope", "scheme", "covered", "reason",
                     "subsidised", "subsidy_category", "subsidy_fen", "due_fen", "net_paid_fen", "outstanding_fen",
                     "overpaid_fen", "coverage_start", "explanation"]
    written.append(_write(out / "truth_persons.csv", (t.__dict__ for t in truth.persons), person_header))
    grid_header = ["code", "name", "level", "population", "covered", "subsidised", "subsidised_covered",
                   "outstanding_fen", "gaps"]
    areas = [*truth.townships.values(), *truth.grids.values()]
    written.append(_write(out / "truth_grids.csv", (a.as_row() for a in areas), grid_header))
    return written




__all__ = [
    "Action",
    "ApplySummary",
    "Assessment",
    "CSV_FILES",
    "ENROLLMENT_COLUMNS",
    "RESIDENT_COLUMNS",
    "STATUS_COLUMNS",
    "TAX_COLUMNS",
    "ClerkAction",
    "Enrollment",
    "ExpectedError",
    "KINDS",
    "MalformedRow",
    "RecordError",
    "TransferIn",
    "TransferOut",
    "replay",
    "resident_row",
    "status_row",
    "tax_row",
    "write_csv",
]
