"""Feeding the topics from the files integrators have (数据文件导入): CSV / XLSX exports to Avro records.

``ledger feed tax|status|residents FILE`` reads a CSV (UTF-8 with or without BOM, or
GB18030) or XLSX export, checks every row, and produces the good rows to the feed's topic
as Avro single-object records, keyed by person (a digest of ID type and number, so one
person's records stay in order in one partition and the key carries no ID number):

=============  ========================  ===============================================
feed           topic                     columns (the Avro contract's field names)
=============  ========================  ===============================================
``tax``        ``tax.payments.v1``       schemas/inbound/tax.payments.v1.avsc
``status``     ``registry.status.v1``    schemas/inbound/registry.status.v1.avsc
``residents``  ``registry.residents.v1``  schemas/inbound/registry.residents.v1.avsc
=============  ========================  ===============================================

Without a broker (the embedded default) the same command applies the file straight to the
ledger (:func:`apply_in_process`): the good rows go on an in-process topic of the file's own
(``<topic>@file``, offsets continuing the positions earlier files stored) and the feed's own
consumer (the same handler, checks, dead letters and exactly-once positions) takes them at once;
the report then also names, by line, the rows the ledger refused, and counts those applied and
those it already had.

The header row names the columns, in any order; a field without a default is required,
an unknown or repeated column stops the file before anything is sent
(``FEED_COLUMNS``). Cells: text as is; fen as whole numbers (``40000``, not ``400.00``);
dates ``YYYY-MM-DD`` (also ``YYYY/MM/DD``, ``YYYYMMDD`` or an Excel date); instants ISO
8601, China Standard Time when no offset is given; an empty cell is null where the
contract allows it; ``extra`` a JSON object of text. Each row is then checked as the
consumer will check it (the contract's codes, the ID number's check digit), and a bad
row is reported by its line number (the header is line 1) with a code and message and
not sent; the good rows are. The same file fed twice puts its rows on the topic twice;
the ledger takes each voucher / registry record once.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from events import codec, inbound
from ledger.domain.errors import DomainError
from ledger.domain.identity import parse_identity
from ledger.domain.person import require_fen
from consumers.spreadsheets import ImportFileError, read_sheet
from infra.limits import FEED_SHEET
from ledger.log import mask_text
from consumers.inprocess import InProcessBroker, InProcessSource
from consumers.feed_consumer import ConsumerRunner, dead_letter_topic

CST = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class Feed:
    name: str
    topic: str
    record: str  # the Avro record's full name
    check: Callable[[Mapping[str, Any]], Any]  # the consumer's own mapping: raises DomainError with a code


def _tax_record(record: Mapping[str, Any]) -> Any:
    """The consumer's mapping, and the amount's own rule (the ledger would refuse it: AMOUNT_NOT_POSITIVE)."""
    checked = inbound.tax_record_from_avro(record)
    require_fen(checked.amount_fen, "amount_fen")
    return checked


FEEDS: dict[str, Feed] = {
    "tax": Feed("tax", "tax.payments.v1", inbound.TAX_PAYMENT, _tax_record),
    "status": Feed("status", "registry.status.v1", inbound.SUBSIDY_STATUS, inbound.status_record_from_avro),
    "residents": Feed("residents", "registry.residents.v1", inbound.RESIDENT_RECORD, inbound.resident_record_from_avro),
}


def person_key(id_type: str, id_number: str) -> bytes:
    """Kafka key of a feed record: one person's records share a partition, so they stay in order
    (a refund or reversal never overtakes its payment). A digest, so the key carries no ID number."""
    return hashlib.sha256(f"{id_type}:{id_number}".encode()).hexdigest()[:32].encode()


@dataclass
class FeedReport:
    """What feeding a file did: rows read, records sent, bad rows by line."""

    feed: str
    topic: str
    rows: int = 0
    sent: int = 0
    bad: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False
    #: The file line of each record sent, in the order sent.
    sent_lines: list[int] = field(default_factory=list)
    #: Applied straight to the ledger (no broker): what the consumer did with the records sent.
    embedded: bool = False
    applied: int = 0
    unchanged: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = {"feed": self.feed, "topic": self.topic, "rows": self.rows, "sent": self.sent,
               "bad_rows": len(self.bad), "dry_run": self.dry_run, "errors": self.bad}
        if self.embedded:
            out.update(embedded=True, applied=self.applied, unchanged=self.unchanged,
                       refused_rows=len({r["line"] for r in self.refused}), refused=self.refused)
        return out


# ---------------------------------------------------------------------------- cells by Avro type
def _bad(name: str, expected: str, cell: Any) -> DomainError:
    return DomainError("FIELD_INVALID", f"{name}: expected {expected}, got {str(cell)[:40]!r}", field=name)


def _date(name: str, cell: Any) -> date:
    if isinstance(cell, datetime):
        return cell.date()
    if isinstance(cell, date):
        return cell
    text = str(cell).strip()
    for candidate in (text, text.replace("/", "-")):
        try:
            return date.fromisoformat(candidate)
        except ValueError:
            pass
    if len(text) == 8 and text.isdigit():
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            pass
    raise _bad(name, "a date YYYY-MM-DD", cell)


def _instant(name: str, cell: Any) -> datetime:
    value = cell
    if not isinstance(value, datetime):
        try:
            value = datetime.fromisoformat(str(cell).strip())
        except ValueError:
            raise _bad(name, "a date and time, ISO 8601 (2025-01-05T10:30:00+08:00)", cell) from None
    return value if value.utcoffset() is not None else value.replace(tzinfo=CST)


def _long(name: str, cell: Any) -> int:
    if isinstance(cell, int) and not isinstance(cell, bool):
        return cell
    if isinstance(cell, float) and cell.is_integer():
        return int(cell)
    text = str(cell).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    if name.endswith("_fen"):
        raise DomainError("AMOUNT_NOT_INTEGER_FEN", f"{name} must be a whole number of fen (分), e.g. 40000 for "
                                                    f"400 yuan; got {str(cell)[:40]!r}", field=name)
    raise _bad(name, "a whole number", cell)


def _text(cell: Any) -> str:
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)  # an Excel number cell holding a code
    return str(cell).strip()


def _map(name: str, cell: Any) -> dict[str, str]:
    try:
        value = json.loads(str(cell))
    except ValueError:
        raise _bad(name, 'a JSON object of text, {"key": "value"}', cell) from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _bad(name, 'a JSON object of text, {"key": "value"}', cell)
    return value


def _cell_value(name: str, schema: Any, cell: Any) -> Any:
    """The cell as the Avro field ``schema`` wants it; None for an empty cell."""
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return None
    if isinstance(schema, list):  # ["null", X]
        (schema,) = [s for s in schema if s != "null"]
    kind = schema.get("type") if isinstance(schema, dict) else schema
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if logical == "date":
        return _date(name, cell)
    if logical in ("timestamp-micros", "timestamp-millis"):
        return _instant(name, cell)
    if kind in ("long", "int"):
        return _long(name, cell)
    if kind == "map":
        return _map(name, cell)
    return _text(cell)


@dataclass(frozen=True)
class Columns:
    """The contract's fields, and which columns of the file hold them."""

    fields: list[dict[str, Any]]
    positions: dict[str, int]

    @classmethod
    def of(cls, feed: Feed, header: Sequence[Any]) -> Columns:
        fields = codec.default_registry().current(feed.record).schema["fields"]
        known = {f["name"] for f in fields}
        names = [str(h or "").replace("\ufeff", "").strip() for h in header]
        while names and not names[-1]:
            names.pop()
        unknown = [n or "(blank)" for n in names if n not in known]
        repeated = sorted({n for n in names if names.count(n) > 1})
        missing = [f["name"] for f in fields if "default" not in f and f["name"] not in names]
        if unknown or repeated or missing:
            problems = ([f"missing {', '.join(missing)}"] if missing else []) + \
                       ([f"not in the contract {', '.join(unknown)}"] if unknown else []) + \
                       ([f"repeated {', '.join(repeated)}"] if repeated else [])
            raise DomainError(
                "FEED_COLUMNS",
                f"the header row does not match {feed.topic} ({'; '.join(problems)}); nothing was sent. Columns: "
                + ", ".join(f["name"] + ("" if "default" in f else " (required)") for f in fields),
                missing=missing, unknown=unknown, repeated=repeated)
        return cls(fields, {n: i for i, n in enumerate(names)})

    def record(self, cells: Sequence[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.fields:
            at = self.positions.get(f["name"])
            value = _cell_value(f["name"], f["type"], cells[at] if at is not None and at < len(cells) else None)
            if value is None and "default" in f and f["default"] is not None:
                value = f["default"]
            out[f["name"]] = value
        return out


def encode_row(feed: Feed, columns: Columns, cells: Sequence[Any]) -> tuple[bytes, bytes]:
    """(key, Avro value) of one row, checked as the consumer checks it; DomainError with a code if bad."""
    record = columns.record(cells)
    feed.check(record)
    parse_identity(record["id_type"], record["id_number"])
    value = codec.encode(feed.record, record)  # an AvroError is a DomainError with its code
    return person_key(record["id_type"], record["id_number"]), value


def feed_file(feed_name: str, data: bytes, filename: str, sink: Any, *, topic_prefix: str = "",
              dry_run: bool = False, topic: str | None = None) -> FeedReport:
    """Check every row of the file and (unless ``dry_run``) produce the good ones; the report names the bad ones.

    Raises DomainError (``FEED_UNKNOWN``, ``FEED_COLUMNS``, ``IMPORT_FORMAT``, ``FILE_BOMB``,
    ``FILE_TOO_MANY_ROWS`` ...) when the file as a
    whole cannot be read: nothing is sent then. Returns once the broker acknowledged every record sent.
    """
    feed = FEEDS.get(feed_name)
    if feed is None:
        raise DomainError("FEED_UNKNOWN", f"unknown feed {feed_name!r}; feeds: {', '.join(FEEDS)}")
    try:  # the limits of every spreadsheet the ledger reads (infra.limits): size, zip bomb, rows, time
        sheet = read_sheet(data, filename, FEED_SHEET)
    except ImportFileError as e:
        raise DomainError(e.code, e.message, **e.details) from None
    columns = Columns.of(feed, sheet.header)
    report = FeedReport(feed.name, topic or topic_prefix + feed.topic, dry_run=dry_run)
    for line, cells in sheet.rows:
        if not any(c is not None and str(c).strip() for c in cells):
            continue  # blank line
        report.rows += 1
        try:
            key, value = encode_row(feed, columns, cells)
        except DomainError as e:
            report.bad.append({"line": line, "code": e.code, "message": mask_text(e.message)})
            continue
        if not dry_run:
            sink.send(report.topic, key=key, value=value)
            report.sent += 1
            report.sent_lines.append(line)
    if report.sent:
        sink.flush()  # raises unless every record was acknowledged
    return report


# ---------------------------------------------------------------------------- without a broker
#: The in-process topic a file is applied through: its own name, so its positions and dead letters
#: never mix with those of the Kafka topic of the same feed.
FILE_TOPIC_SUFFIX = "@file"


class _Recorder:
    """A record sink on an in-process broker that keeps each message it appended (partition, offset)."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.messages: list[Any] = []

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> None:
        self.messages.append(self.broker.produce(topic, key=key, value=value, headers=headers))

    def flush(self) -> None:
        """An in-memory append is acknowledged at once."""


def apply_in_process(topic: str, fill: Callable[[Any, str], FeedReport], make_handler: Callable[[Any], Any],
                     *, max_records: int = 500) -> FeedReport:
    """Apply a file to the ledger without a broker, through the feed's own consumer.

    ``fill(sink, topic)`` checks the file and sends its good rows (:func:`feed_file`, or the
    statements file's reader); ``make_handler(dead_letter_sink)`` is the feed's handler. The
    records go on ``topic`` (one partition, in file order) of an in-process broker, numbered
    after the handler's stored position on it, and the handler takes them with the
    :class:`~consumers.feed_consumer.ConsumerRunner` the Kafka consumer uses. The report adds what
    the ledger did: applied, unchanged (resends), and each refused record by its file line.
    """
    broker = InProcessBroker({topic: 1})
    handler = make_handler(broker)
    stored = handler.position(topic, 0)
    broker.topic(topic).start_at(0, 0 if stored is None else stored + 1)
    recorder = _Recorder(broker)
    report = fill(recorder, topic)
    report.embedded = True
    if not recorder.messages:
        return report
    line_of = {m.offset: line for m, line in zip(recorder.messages, report.sent_lines)}
    last = recorder.messages[-1].offset
    runner = ConsumerRunner(handler, InProcessSource(broker, group=handler.consumer), topics=[topic],
                            max_records=max_records, poll_timeout=0)
    rejected: dict[int, str] = {}
    try:
        while True:
            results = runner.run_once(0)
            flush = getattr(handler, "flush", None)
            if flush is not None:
                results += flush()
            for result in results:
                report.applied += result.applied
                report.unchanged += result.unchanged
                rejected.update(dict(result.rejected))
            taken = handler.position(topic, 0)
            if not results or (taken is not None and taken >= last):
                break
    finally:
        runner.close()
    messages: dict[int, str] = {}
    for letter in broker.topic(dead_letter_topic(topic)).messages():
        headers = {k: v.decode("utf-8", "replace") for k, v in letter.headers}
        if headers.get("source.offset", "").isdigit():
            messages[int(headers["source.offset"])] = headers.get("error.message", "")
    report.refused = [{"line": line_of.get(offset), "code": code, "message": mask_text(messages.get(offset, ""))}
                      for offset, code in sorted(rejected.items())]
    return report


__all__ = ["FEEDS", "FILE_TOPIC_SUFFIX", "Feed", "FeedReport", "apply_in_process", "encode_row", "feed_file",
           "person_key"]
