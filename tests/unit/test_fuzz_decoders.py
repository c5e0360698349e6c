"""Fuzzers (hypothesis) over every inbound decoder: Avro bytes, the inbound mappings, the import sheets.

Whatever arrives, a decoder either returns a record or raises a
:class:`~ledger.domain.errors.DomainError` whose code is a stable UPPER_SNAKE word, in
bounded time. Records that do decode are pushed on through the real ledger (in-memory
store), which must answer with an Outcome or a DomainError too.

Deterministic: ``derandomize=True`` and no example database.
"""
from __future__ import annotations

import csv
import functools
import io
import re
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.file_feeder import FEEDS, feed_file
from events import codec
from events.inbound import (
    RESIDENT_RECORD,
    SUBSIDY_STATUS,
    TAX_PAYMENT,
    TAX_STATEMENT_HEADER,
    TAX_STATEMENT_LINE,
    resident_record_from_avro,
    status_record_from_avro,
    tax_record_from_avro,
)
from events.make_fixtures import SAMPLES
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.errors import DomainError
from ledger.domain.identity import make_resident_id
from consumers.spreadsheets import COLUMNS, import_file
from ledger.policy import PolicyBook
from ledger.inbound_records import Provenance

CODE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
#: A decoder that needs longer than this on a few kilobytes is hanging.
BOUND_S = 2.0
FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEED = Provenance(source="kafka", topic="fuzz", partition=0, offset=0)

INBOUND = {TAX_PAYMENT: tax_record_from_avro, SUBSIDY_STATUS: status_record_from_avro,
           RESIDENT_RECORD: resident_record_from_avro}
NAMES = sorted(codec.default_registry().names())


@functools.cache
def policies() -> PolicyBook:
    return PolicyBook.load()


@functools.cache
def valid_messages() -> dict[str, bytes]:
    registry = codec.default_registry()
    return {name: registry.encode(name, SAMPLES[name]) for name in NAMES if name in SAMPLES}


def assert_rejection(e: DomainError) -> None:
    assert CODE.match(e.code), f"unstable error code {e.code!r}"
    assert isinstance(e.message, str) and e.message


def timed(fn: Any, *args: Any, **kwargs: Any) -> Any:
    started = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    finally:
        assert time.perf_counter() - started < BOUND_S, f"{fn.__name__} took too long"


def decode_or_reject(data: Any, reader: str | None) -> tuple[str, dict] | None:
    try:
        name, record = timed(codec.decode, data, reader)
    except DomainError as e:
        assert isinstance(e, codec.DecodeError), type(e)
        assert e.code.startswith("AVRO_"), e.code
        assert_rejection(e)
        return None
    assert isinstance(record, dict) and name in NAMES
    return name, record


def map_or_reject(name: str, record: Any) -> Any:
    mapping = INBOUND.get(name)
    if mapping is None:
        return None
    try:
        return timed(mapping, record)
    except DomainError as e:
        assert_rejection(e)
        return None


def test_every_inbound_schema_has_a_valid_sample_to_mutate():
    assert {TAX_PAYMENT, SUBSIDY_STATUS, RESIDENT_RECORD, TAX_STATEMENT_HEADER, TAX_STATEMENT_LINE} <= set(
        valid_messages())


# --------------------------------------------------------------------------- Avro bytes
@FUZZ
@given(data=st.one_of(st.binary(max_size=400), st.none(), st.text(max_size=20), st.integers()),
       reader=st.one_of(st.none(), st.sampled_from(NAMES), st.text(max_size=10)))
def test_random_input_is_decoded_or_refused_with_a_code(data, reader):
    decode_or_reject(data, reader)


@FUZZ
@given(name=st.sampled_from(NAMES), body=st.binary(max_size=300), reader=st.one_of(st.none(), st.sampled_from(NAMES)))
def test_a_valid_header_with_a_random_body_is_decoded_or_refused(name, body, reader):
    message = valid_messages()[name]
    decoded = decode_or_reject(message[: codec.HEADER_SIZE] + body, reader)
    if decoded is not None:
        map_or_reject(*decoded)


@FUZZ
@given(name=st.sampled_from(NAMES), cut=st.integers(0, 10_000))
def test_truncated_messages_are_refused(name, cut):
    message = valid_messages()[name]
    cut = cut % len(message)  # strictly shorter than the message
    assert decode_or_reject(message[:cut], None) is None


@FUZZ
@given(name=st.sampled_from(NAMES), flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 7)),
                                                    min_size=1, max_size=4),
       reader=st.one_of(st.none(), st.sampled_from([TAX_PAYMENT, SUBSIDY_STATUS, RESIDENT_RECORD])))
def test_bit_flipped_messages_are_decoded_or_refused_and_mapped_or_refused(name, flips, reader):
    data = bytearray(valid_messages()[name])
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    decoded = decode_or_reject(bytes(data), reader)
    if decoded is not None:
        map_or_reject(*decoded)


# --------------------------------------------------------------------------- inbound mappings from dicts
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(allow_nan=True), st.text(max_size=30),
    st.binary(max_size=10), st.dates(), st.datetimes(), st.datetimes(timezones=st.just(timezone.utc)),
    st.sampled_from(["", " ", "RESIDENT", "EMPLOYEE", "PAYMENT", "REFUND", "REVERSAL", "GRANT", "REVOKE",
                     "MIN_LIVING", "ORPHAN", "DECEASED", "RESIDENT_ID", "11010519491231002X", "610902",
                     "610902100201", "X" * 500]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                      max_leaves=6)


def mutated_sample(name: str) -> Any:
    sample = dict(codec.default_registry().decode(valid_messages()[name])[1])
    keys = sorted(sample)
    return st.tuples(
        st.lists(st.tuples(st.sampled_from(keys + ["unknown_field"]), values), max_size=4),
        st.lists(st.sampled_from(keys), max_size=2),
    ).map(lambda changes: _apply(sample, *changes))


def _apply(sample: dict, sets: list, drops: list) -> dict:
    out = dict(sample)
    for key, value in sets:
        out[key] = value
    for key in drops:
        out.pop(key, None)
    return out


@functools.cache
def ledger_system() -> Any:
    return bootstrap(Settings(persistence="memory", id_key=b"fuzz"), policies=policies())


def push_through_ledger(record: Any) -> None:
    """A mapped record goes on to the ledger: an Outcome or a DomainError, nothing else."""
    ledger = ledger_system().ledger
    try:
        if hasattr(record, "voucher_no"):
            timed(ledger.record_tax_record, record, provenance=FEED)
            timed(ledger.record_tax_records, [(record, FEED)])
        elif hasattr(record, "granted"):
            timed(ledger.apply_status, record, provenance=FEED)
        else:
            timed(ledger.apply_residence, record, provenance=FEED)
    except DomainError as e:
        assert_rejection(e)


@pytest.mark.parametrize("name", [TAX_PAYMENT, SUBSIDY_STATUS, RESIDENT_RECORD])
def test_inbound_mappings_refuse_random_dicts_with_a_code(name):
    @FUZZ
    @given(record=st.one_of(st.dictionaries(st.text(max_size=12), values, max_size=8), mutated_sample(name)))
    def check(record):
        mapped = map_or_reject(name, record)
        if mapped is not None:
            push_through_ledger(mapped)

    check()


@FUZZ
@given(name=st.sampled_from([TAX_PAYMENT, SUBSIDY_STATUS, RESIDENT_RECORD]), data=st.data())
def test_mutated_records_through_avro_and_the_ledger(name, data):
    """Random field values that the encoder accepts, through bytes, the mapping and the ledger."""
    record = data.draw(mutated_sample(name))
    try:
        message = codec.encode(name, record)
    except DomainError as e:  # the encoder's own refusal (EncodeError) has a code too
        assert_rejection(e)
        return
    decoded = decode_or_reject(message, name)
    assert decoded is not None, "bytes the registry wrote must decode"
    mapped = map_or_reject(*decoded)
    if mapped is not None:
        push_through_ledger(mapped)


# --------------------------------------------------------------------------- CSV / XLSX import
HEADERS_ZH = [c.header for c in COLUMNS]
HEADERS_EN = [c.name for c in COLUMNS]
VALID_ROW = {"id_type": "RESIDENT_ID", "id_number": make_resident_id("610902", date(1980, 5, 17), 11),
             "name": "王芳", "scheme": "RESIDENT", "region_code": "610902", "grid_code": "610902100001",
             "effective_date": "2024-09-10"}
cells = st.one_of(
    st.text(max_size=25), st.sampled_from(["", "是", "否", "Y", "N", "RESIDENT", "EMPLOYEE", "610902",
                                           "610902100001", "2024-09-10", "2024/9/10", "20240910", "45000",
                                           "=1+1", "11010519491231002X", "\x00", "\ufeff"]),
    st.integers(-10**20, 10**20).map(str), st.floats(allow_nan=True).map(str),
)


def as_csv(rows: list[list[str]], encoding: str) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding, errors="replace")


def import_or_reject(data: bytes, filename: str) -> None:
    ledger = ledger_system().ledger
    try:
        report = timed(import_file, ledger, data, filename, user="fuzz", request_id="fuzz-1",
                       region_allowed=lambda region: region == "610902")
    except DomainError as e:
        assert_rejection(e)
        return
    assert report["rows"] == len(report["lines"])
    for line in report["lines"]:
        assert line["status"] in ("imported", "already_enrolled", "already_imported", "error")
        if line["status"] == "error":
            assert line["code"] and CODE.match(line["code"]), line


@st.composite
def sheets(draw: Any) -> list[list[Any]]:
    header = draw(st.one_of(st.just(HEADERS_ZH), st.just(HEADERS_EN), st.permutations(HEADERS_EN),
                            st.lists(st.one_of(st.sampled_from(HEADERS_ZH + HEADERS_EN), st.text(max_size=8)),
                                     max_size=10)))
    rows = []
    for _ in range(draw(st.integers(0, 5))):
        row = [VALID_ROW.get(h, "") for h in header] if draw(st.booleans()) else []
        row = row or [draw(cells) for _ in header]
        for i in draw(st.lists(st.integers(0, 20), max_size=3)):
            if row:
                row[i % len(row)] = draw(cells)
        row += draw(st.lists(cells, max_size=2))
        rows.append(row)
    return [header, *rows]


@FUZZ
@given(sheet=sheets(), encoding=st.sampled_from(["utf-8", "utf-8-sig", "gbk"]))
def test_csv_import_reports_every_bad_row_with_a_code(sheet, encoding):
    import_or_reject(as_csv(sheet, encoding), "fuzz.csv")


@settings(FUZZ, max_examples=60)
@given(sheet=sheets(), numeric=st.booleans())
def test_xlsx_import_reports_every_bad_row_with_a_code(sheet, numeric):
    from openpyxl import Workbook

    book = Workbook()
    ws = book.active
    for row in sheet:
        out = []
        for cell in row:
            if numeric and isinstance(cell, str) and cell.isdigit() and len(cell) < 15:
                out.append(int(cell))  # Excel keeps digits as numbers (id numbers, region codes)
            elif isinstance(cell, str) and cell.startswith("="):
                out.append("'" + cell)
            else:
                out.append(cell)
        ws.append([re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", c) if isinstance(c, str) else c for c in out])
    buffer = io.BytesIO()
    book.save(buffer)
    import_or_reject(buffer.getvalue(), "fuzz.xlsx")


@FUZZ
@given(data=st.one_of(st.binary(max_size=2000), st.just(b""), st.just(b"PK\x03\x04" + b"\x00" * 60),
                      st.binary(max_size=500).map(lambda b: b"PK\x03\x04" + b)),
       filename=st.sampled_from(["x.csv", "x.xlsx", "x.xls", "x", "x.CSV", "x.XLSX", "x.txt"]))
def test_binary_garbage_as_a_file_is_refused_with_a_code(data, filename):
    import_or_reject(data, filename)


def test_dates_and_instants_the_tax_mapping_refuses_are_coded():
    """Spot checks next to the fuzzers: naive instants and floats are refused, not crashed on."""
    base = dict(codec.default_registry().decode(valid_messages()[TAX_PAYMENT])[1])
    for field, value in [("paid_at", datetime(2024, 1, 1)), ("amount_fen", 1.5), ("period_start", "2025-01-01"),
                         ("paid_at", datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=14))))]:
        try:
            tax_record_from_avro({**base, field: value})
        except DomainError as e:
            assert_rejection(e)


# --------------------------------------------------------------------------- ledger feed: integrators' files
FEED_HEADERS = {name: [f["name"] for f in codec.default_registry().current(feed.record).schema["fields"]]
                for name, feed in FEEDS.items()}
feed_cells = st.one_of(cells, st.sampled_from(["PAYMENT", "REFUND", "GRANT", "REVOKE", "MIN_LIVING", "DECEASED",
                                               "2025-01-05T10:30:00", "2025-01-05T10:30:00+08:00", "40000", "-1",
                                               "400.5", '{"a": "b"}', "{", "[1]", "null"]))


class CollectingSink:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Any = ()) -> None:
        self.sent.append(value)

    def flush(self) -> None:
        pass


def feed_or_reject(feed: str, data: bytes, filename: str) -> None:
    sink = CollectingSink()
    try:
        report = timed(feed_file, feed, data, filename, sink)
    except DomainError as e:
        assert_rejection(e)
        assert not sink.sent  # a file refused as a whole sends nothing
        return
    assert report.sent == len(sink.sent) == report.rows - len(report.bad)
    for bad in report.bad:
        assert CODE.match(bad["code"]), bad
    for value in sink.sent:  # what was sent is what the consumer takes
        _name, record = codec.decode(value, FEEDS_RECORD[feed])
        INBOUND[FEEDS_RECORD[feed]](record)


FEEDS_RECORD = {"tax": TAX_PAYMENT, "status": SUBSIDY_STATUS, "residents": RESIDENT_RECORD}


@FUZZ
@given(feed=st.sampled_from(sorted(FEEDS_RECORD)), data=st.data(), encoding=st.sampled_from(["utf-8-sig", "gbk"]))
def test_feed_files_send_only_rows_the_consumer_takes_and_code_every_other(feed, data, encoding):
    header = data.draw(st.one_of(st.just(FEED_HEADERS[feed]), st.permutations(FEED_HEADERS[feed]),
                                 st.lists(st.sampled_from(FEED_HEADERS[feed] + ["x", ""]), max_size=12)))
    from entrypoints.simulation.timeline import _cell

    sample = SAMPLES[FEEDS_RECORD[feed]]  # a valid record: rows start from it, a few cells replaced
    rows = []
    for _ in range(data.draw(st.integers(0, 4))):
        row = [_cell(sample.get(h)) for h in header]
        for i in data.draw(st.lists(st.integers(0, 40), max_size=3)):
            if row:
                row[i % len(row)] = data.draw(feed_cells)
        rows.append(row)
    feed_or_reject(feed, as_csv([header, *rows], encoding), "fuzz.csv")


def test_the_feed_fuzzers_samples_are_sent():
    """The fuzzer's base rows are good rows: the fuzzer explores around records that get through."""
    from entrypoints.simulation.timeline import _cell

    for feed, name in FEEDS_RECORD.items():
        rows = [FEED_HEADERS[feed], [_cell(SAMPLES[name].get(h)) for h in FEED_HEADERS[feed]]]
        sink = CollectingSink()
        report = feed_file(feed, as_csv(rows, "utf-8"), "x.csv", sink)
        assert (report.sent, report.bad) == (1, []), (feed, report.bad)


@FUZZ
@given(feed=st.sampled_from(sorted(FEEDS_RECORD)), data=st.binary(max_size=1500),
       filename=st.sampled_from(["x.csv", "x.xlsx", "x.xls", "x"]))
def test_binary_garbage_as_a_feed_file_is_refused_with_a_code(feed, data, filename):
    feed_or_reject(feed, data, filename)
