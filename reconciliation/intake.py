"""Statement records from the wire (``tax.statements.v1``) to checked rows, or to an error code.

:func:`decode_value` is the whole per-record step: Avro single-object decode
(:func:`events.codec.decode`), shape checks, and the person: the line's ID document is
checked (:func:`ledger.domain.identity.parse_identity`) and turned into the ledger's
person id (the keyed hash the ledger itself uses), so a line can be compared with the
ledger without keeping the ID number -- only its masked form is stored (个人信息保护法).

It returns plain tuples (cheap to pass between processes; the statement consumer can
decode in a pool of worker processes, see :mod:`reconciliation.consumer`):

* ``("H", (statement_id, business_date ISO, tax_office, region_code, line_count, total_amount_fen, digest))``
* ``("L", line row)`` -- the columns of :data:`LINE_COLUMNS` but ``source``, dates and
  instants as ISO text
* ``("E", code, message, statement_id or None, line_no or None)``

Codes: the codec's ``AVRO_*``; ``RECORD_TYPE_UNEXPECTED`` (another contract on the
topic); ``STATEMENT_ID_INVALID``, ``LINE_NO_INVALID``, ``VOUCHER_MALFORMED``,
``AMOUNT_INVALID``, ``LEVY_ITEM_UNKNOWN``, ``PAYMENT_KIND_UNKNOWN``, ``PERIOD_INVALID``,
``INSTANT_INVALID``, ``DATE_INVALID``, ``TAX_OFFICE_INVALID``, ``REGION_INVALID``,
``LINE_COUNT_INVALID``, and the identity checks' ``ID_TYPE_UNKNOWN``, ``ID_FORMAT``,
``ID_CHECKSUM``, ``ID_BIRTH_DATE``.
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from datetime import date, datetime, timezone
from sys import intern  # repeated texts pickle once per chunk (decoding processes)
from typing import Any

from fastavro import schemaless_reader

from events import codec
from events.inbound import TAX_STATEMENT_HEADER, TAX_STATEMENT_LINE
from ledger.domain.errors import DomainError
from ledger.domain.identity import mask_id_number, parse_identity, person_id_for
from ledger.domain.person import BUSINESS_TZ

from reconciliation.model import (
    LEVY_ITEMS,
    SIGN,
    check_amount,
    check_statement_id,
    check_voucher,
    header_from_record,
)

#: Columns of a stored statement line, in order (``source``: topic/partition/offset it came in).
LINE_COLUMNS = (
    "statement_id", "line_no", "voucher_no", "id_type", "masked_id", "person_id", "levy_item", "period_start",
    "period_end", "amount_fen", "signed_fen", "paid_at", "business_date", "credited_on", "kind",
    "original_voucher_no", "original_tax_office", "digest", "source",
)

HEADER, LINE, ERROR = "H", "L", "E"


def _date(value: Any, name: str) -> date:
    if type(value) is not date:  # a datetime is a date too, and is refused
        raise DomainError("DATE_INVALID", f"{name} {value!r} must be a calendar date", field=name)
    return value


def line_row(record: dict[str, Any], id_key: bytes, today: date) -> tuple[Any, ...]:
    """A decoded ``TaxStatementLine`` as a stored row (without ``source``); raises DomainError when malformed."""
    get = record.get
    statement_id = check_statement_id(get("statement_id"))
    line_no = get("line_no")
    if type(line_no) is not int or line_no < 1:
        raise DomainError("LINE_NO_INVALID", f"line number {line_no!r} must be 1 or more")
    voucher = check_voucher(get("voucher_no"))
    amount = check_amount(get("amount_fen"))
    levy = get("levy_item")
    if levy not in LEVY_ITEMS:
        raise DomainError("LEVY_ITEM_UNKNOWN", f"unknown levy item {levy!r}; the ledger takes: "
                                               f"{', '.join(LEVY_ITEMS)}", field="levy_item")
    kind = get("kind")
    sign = SIGN.get(kind)  # type: ignore[arg-type]
    if sign is None:
        raise DomainError("PAYMENT_KIND_UNKNOWN", f"unknown record kind {kind!r}; the ledger takes: "
                                                  f"{', '.join(SIGN)}", field="kind")
    start, end = _date(get("period_start"), "period_start"), _date(get("period_end"), "period_end")
    if end < start:
        raise DomainError("PERIOD_INVALID", f"period ends ({end}) before it starts ({start})")
    paid_at = get("paid_at")
    if not isinstance(paid_at, datetime) or paid_at.utcoffset() is None:
        raise DomainError("INSTANT_INVALID", f"paid_at {paid_at!r} must be a date and time with a time zone")
    credited = get("credited_on")
    if credited is not None:
        credited = _date(credited, "credited_on").isoformat()
    original = get("original_voucher_no") or None
    if original is not None:
        check_voucher(original, "original_voucher_no")
    identity = parse_identity(get("id_type") or "", get("id_number") or "", today=today)
    paid_utc = paid_at if paid_at.tzinfo is timezone.utc else paid_at.astimezone(timezone.utc)
    row = (
        intern(statement_id), line_no, voucher, identity.id_type.value, mask_id_number(identity.id_number),
        str(person_id_for(identity, id_key)), levy, start.isoformat(), end.isoformat(), amount, sign * amount,
        paid_utc.isoformat(), paid_utc.astimezone(BUSINESS_TZ).date().isoformat(), credited, kind, original,
        get("original_tax_office") or None,
    )
    # The content without statement id and line number: a resend is the same line when this is the same.
    return row + (hashlib.blake2b(repr(row[2:]).encode(), digest_size=16).hexdigest(),)


def header_row(record: dict[str, Any]) -> tuple[Any, ...]:
    header = header_from_record(record)
    return (header.statement_id, header.business_date.isoformat(), header.tax_office, header.region_code,
            header.line_count, header.total_amount_fen, header.digest)


def _ids(record: Any) -> tuple[str | None, int | None]:
    if not isinstance(record, dict):
        return None, None
    sid = record.get("statement_id")
    line_no = record.get("line_no")
    return (sid if isinstance(sid, str) and sid else None,
            line_no if isinstance(line_no, int) and not isinstance(line_no, bool) else None)


# --------------------------------------------------------------------------- the line's fast path
_PAD = b"\xff" * 64


def _line_reader() -> tuple[bytes, dict[str, Any], Any]:
    registry = codec.default_registry()
    entry = registry.current(TAX_STATEMENT_LINE)
    return entry.header, entry.parsed, lambda value: registry.check_varints(entry, value)


def decode_line_fast(value: bytes) -> dict[str, Any] | None:
    """A line written with the current line schema, decoded without the codec's per-read bounds check; else None.

    :func:`events.codec.decode` guards every read of fastavro (a garbled length must not
    read past the record); that guard costs a third of a line's decoding. Here the body
    is read from a buffer with 64 bytes of padding after it, and the record is taken
    only if fastavro consumed exactly the body: every read stayed inside the record,
    which is what the guard checks (reads only move forward). Anything else -- another
    schema version, bytes left over, a read into the padding, any exception -- returns
    None and the caller asks the codec, whose verdict (and error code) counts.
    """
    header, parsed, check_varints = _LINE_READER
    if not isinstance(value, bytes) or not value.startswith(header) or len(value) > codec.MAX_MESSAGE_BYTES:
        return None
    try:
        check_varints(value)  # fastavro would wrap an over-long varint: the codec refuses it (AVRO_MALFORMED)
    except DomainError:
        return None
    end = len(value) - codec.HEADER_SIZE
    buffer = io.BytesIO(value[codec.HEADER_SIZE:] + _PAD)
    try:
        record = schemaless_reader(buffer, parsed, None)
    except Exception:  # noqa: BLE001 - the codec gives the verdict and its code
        return None
    return record if buffer.tell() == end else None


_LINE_READER = _line_reader()


def decode_value(value: bytes | None, id_key: bytes, today: date) -> tuple[Any, ...]:
    """One record's bytes to ``("H", header)``, ``("L", line)`` or ``("E", code, message, statement_id, line_no)``."""
    record: Any = None
    try:
        record = decode_line_fast(value)  # type: ignore[arg-type]
        if record is not None:
            return (LINE, line_row(record, id_key, today))
        name, record = codec.decode(value)  # type: ignore[arg-type]  # None: AVRO_BAD_MAGIC
        if name == TAX_STATEMENT_LINE:
            return (LINE, line_row(record, id_key, today))
        if name == TAX_STATEMENT_HEADER:
            return (HEADER, header_row(record))
        raise DomainError("RECORD_TYPE_UNEXPECTED", f"a {name} record does not belong on tax.statements.v1")
    except DomainError as err:
        return (ERROR, err.code, err.message, *_ids(record))


def decode_values(values: Sequence[bytes | None], id_key: bytes, today: date) -> list[tuple[Any, ...]]:
    """:func:`decode_value` over a chunk (the unit of work of a decoding process)."""
    return [decode_value(v, id_key, today) for v in values]


__all__ = ["ERROR", "HEADER", "LINE", "LINE_COLUMNS", "decode_value", "decode_values", "header_row", "line_row"]
