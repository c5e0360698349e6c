"""Hostile HTTP bodies and spreadsheets (issue #17, items 3, 4 and 8): refused before the work.

The body tests drive the ASGI app directly with a request body that is generated lazily and
counted as the server pulls it (Starlette's TestClient reads a streamed body whole before the
app sees it, so it could not show what the server read). The spreadsheet bombs are built
here: a sheet that inflates 1,000 times, one whose zip directory declares 2 GB, one that lies
about its size, a sheet declaring 16,384 columns, and CSVs over the row and line limits.
"""
from __future__ import annotations

import asyncio
import csv
import io
import json
import struct
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from consumers.file_feeder import feed_file
from infra import limits
from entrypoints.http.gate import EntranceGate
from consumers.spreadsheets import read_file, read_sheet
from infra.limits import FEED_SHEET, IMPORT_SHEET, KIB, MIB, SheetLimits
from tests.unit.cli_support import embedded, refused, run_as
from tests.unit.http_support import (  # noqa: F401 (client, system: fixtures)
    CLERK, GRID_A, HANBIN, auth, client, enrollment, event_count, number, system)

JSON = {"Content-Type": "application/json"}
HUGE = 300 * MIB


# ---------------------------------------------------------------------------- driving the ASGI app
class CountedBody:
    """A request body produced chunk by chunk; ``pulled`` is what the server asked for."""

    def __init__(self, total: int, chunk: bytes = b"x" * (64 * KIB)) -> None:
        self.total, self.chunk, self.pulled = total, chunk, 0

    def chunks(self) -> Iterator[bytes]:
        sent = 0
        while sent < self.total:
            piece = self.chunk[: self.total - sent]
            sent += len(piece)
            self.pulled += len(piece)
            yield piece


def call(app: Any, method: str, path: str, headers: dict[str, str], body: CountedBody | bytes,
         *, declare_length: bool = True, pause: float = 0.0) -> tuple[int, dict[str, str], bytes]:
    """One request straight into the ASGI app: (status, headers, body)."""
    chunks = body.chunks() if isinstance(body, CountedBody) else iter([body])
    length = body.total if isinstance(body, CountedBody) else len(body)
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if declare_length:
        raw.append((b"content-length", str(length).encode()))
    else:
        raw.append((b"transfer-encoding", b"chunked"))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "root_path": "", "scheme": "http", "query_string": b"", "headers": raw,
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}
    out: dict[str, Any] = {"status": None, "headers": {}, "body": b""}

    async def run() -> None:
        finished = asyncio.Event()
        exhausted = False

        async def receive() -> dict[str, Any]:
            nonlocal exhausted
            if exhausted:
                await finished.wait()
                return {"type": "http.disconnect"}
            if pause:
                await asyncio.sleep(pause)
            piece = next(chunks, None)
            if piece is None:
                exhausted = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": piece, "more_body": True}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
                out["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
            elif message["type"] == "http.response.body":
                out["body"] += message.get("body", b"")
                if not message.get("more_body"):
                    finished.set()

        await app(scope, receive, send)

    asyncio.run(run())
    return out["status"], out["headers"], out["body"]


@pytest.fixture()
def app(client):  # noqa: F811
    return client.app


# ---------------------------------------------------------------------------- token before body
@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
def test_an_anonymous_300_mb_body_is_refused_401_without_reading_a_byte(hostile, app, system, declare_length):  # noqa: F811
    before = event_count(system)
    body = CountedBody(HUGE)
    status, headers, answer = call(app, "POST", "/enrollments", JSON, body, declare_length=declare_length)
    hostile.attempt("300 MB anonymous POST /enrollments", status=status, written=event_count(system) != before)
    assert (status, json.loads(answer)["code"]) == (401, "TOKEN_MISSING")
    assert headers["www-authenticate"] == "Bearer"
    assert body.pulled == 0


@pytest.mark.parametrize("path", ["/imports", "/tax/payments", "/persons/RESIDENT_ID/x/account/credits"])
def test_a_wrong_token_is_refused_on_every_writing_route_before_the_body(hostile, app, path):
    body = CountedBody(HUGE)
    status, _, answer = call(app, "POST", path, {**JSON, **auth("not-a-token")}, body, declare_length=False)
    hostile.attempt(f"300 MB with a made-up token to {path}", status=status)
    assert (status, json.loads(answer)["code"]) == (401, "TOKEN_UNKNOWN")
    assert body.pulled == 0


# ---------------------------------------------------------------------------- body limits
def test_a_300_mb_body_with_a_valid_token_is_413_from_its_declared_length_unread(hostile, app, system):  # noqa: F811
    before = event_count(system)
    body = CountedBody(HUGE)
    started = time.perf_counter()
    status, _, answer = call(app, "POST", "/enrollments", {**JSON, **CLERK}, body)
    hostile.attempt("300 MB POST /enrollments with a clerk's token", status=status,
                    written=event_count(system) != before)
    error = json.loads(answer)
    assert (status, error["code"]) == (413, "BODY_TOO_LARGE")
    assert error["details"]["limit_bytes"] == limits.DEFAULT_BODY_LIMIT and "上限" in error["message"]
    assert body.pulled == 0 and time.perf_counter() - started < 1


@pytest.mark.parametrize(("path", "limit"), [("/enrollments", limits.DEFAULT_BODY_LIMIT),
                                             ("/imports", limits.ROUTE_BODY_LIMITS["/imports"])])
def test_a_chunked_300_mb_body_is_read_only_up_to_the_route_limit(hostile, app, system, path, limit):  # noqa: F811
    before = event_count(system)
    body = CountedBody(HUGE)
    status, _, answer = call(app, "POST", path, {**JSON, **CLERK}, body, declare_length=False)
    hostile.attempt(f"300 MB chunked POST {path} with a clerk's token", status=status,
                    written=event_count(system) != before)
    assert (status, json.loads(answer)["code"]) == (413, "BODY_TOO_LARGE")
    assert limit < body.pulled <= limit + len(body.chunk)


def test_a_body_on_a_read_route_is_refused_by_its_length_and_never_read(hostile, app):
    body = CountedBody(HUGE)
    status, _, answer = call(app, "GET", f"/grids/{GRID_A}/gaps", CLERK, body)
    hostile.attempt("300 MB body on GET /grids/{code}/gaps", status=status)
    assert (status, json.loads(answer)["code"]) == (413, "BODY_TOO_LARGE")
    body = CountedBody(HUGE)
    status, _, _ = call(app, "GET", f"/grids/{GRID_A}/gaps", CLERK, body, declare_length=False)
    hostile.attempt("300 MB chunked body on GET /grids/{code}/gaps", status=status)
    assert status < 500 and body.pulled == 0  # the route takes no body: it answers and leaves it unread


def test_the_token_is_checked_once_per_request(client, monkeypatch):  # noqa: F811
    tokens = client.app.state.tokens
    checks = []
    real = tokens.authenticate
    monkeypatch.setattr(tokens, "authenticate", lambda *a, **k: checks.append(1) or real(*a, **k))
    r = client.post("/enrollments", json=enrollment(number(46)), headers=CLERK)
    assert r.status_code == 201 and len(checks) == 1


def test_public_routes_still_answer_without_a_token(app):
    status, _, answer = call(app, "GET", "/health", {}, b"")
    assert (status, json.loads(answer)) == (200, {"status": "ok"})
    status, _, _ = call(app, "GET", "/openapi.json", {}, b"")
    assert status == 200
    status, _, _ = call(app, "GET", "/web/", {}, b"")
    assert status == 200


# ---------------------------------------------------------------------------- many keys
def many_keys(n: int, base: dict[str, Any] | None = None) -> bytes:
    body = dict(base or {})
    body.update({f"k{i}": 0 for i in range(n)})
    return json.dumps(body).encode()


def test_a_300000_key_body_is_refused_by_its_size_before_it_is_parsed(hostile, app, system):  # noqa: F811
    before = event_count(system)
    data = many_keys(300_000, enrollment(number(41)))
    assert len(data) > 3 * MIB
    started = time.perf_counter()
    status, _, answer = call(app, "POST", "/enrollments", {**JSON, **CLERK}, data, declare_length=False)
    elapsed = time.perf_counter() - started
    hostile.attempt("300,000-key body, chunked", status=status, written=event_count(system) != before)
    assert (status, json.loads(answer)["code"]) == (413, "BODY_TOO_LARGE")
    assert elapsed < 2 and len(answer) < 1000


def test_a_body_just_under_the_limit_with_thousands_of_keys_is_422_body_too_complex(hostile, app, system):  # noqa: F811
    before = event_count(system)
    data = many_keys(5_000, enrollment(number(42)))
    assert len(data) < limits.DEFAULT_BODY_LIMIT
    started = time.perf_counter()
    status, _, answer = call(app, "POST", "/enrollments", {**JSON, **CLERK}, data)
    elapsed = time.perf_counter() - started
    hostile.attempt("5,000-key body under 64 KiB", status=status, written=event_count(system) != before)
    error = json.loads(answer)
    assert (status, error["code"]) == (422, "BODY_TOO_COMPLEX")
    assert "字段过多" in error["message"] and len(answer) < 1000
    _, _, english = call(app, "POST", "/enrollments", {**JSON, **CLERK, "accept-language": "en"}, data)
    assert "5,007+ keys" in json.loads(english)["message"]
    assert elapsed < 0.2


def test_a_body_nested_nine_deep_is_422_body_too_complex(hostile, app, system):  # noqa: F811
    nested: Any = 1
    for _ in range(9):
        nested = {"a": nested}
    before = event_count(system)
    status, _, answer = call(app, "POST", "/enrollments", {**JSON, **CLERK},
                             json.dumps({**enrollment(number(47)), "grid_code": nested}).encode())
    hostile.attempt("body nested nine deep", status=status, written=event_count(system) != before)
    assert (status, json.loads(answer)["code"]) == (422, "BODY_TOO_COMPLEX")


def test_a_422_lists_at_most_20_problems_and_says_how_many_there_were(hostile, client, system):  # noqa: F811
    before = event_count(system)
    body = {**enrollment(number(43)), **{f"unknown_{i}": 1 for i in range(200)}}
    r = client.post("/enrollments", json=body, headers=CLERK)
    hostile.attempt("200 unknown fields", status=r.status_code, written=event_count(system) != before)
    error = r.json()
    assert (r.status_code, error["code"]) == (422, "BODY_INVALID")
    assert len(error["details"]["errors"]) == limits.MAX_REPORTED_ERRORS
    assert error["details"]["total"] == 200 and error["details"]["truncated"] is True
    assert "（另有 199 处问题）" in error["message"]


def test_a_422_with_few_problems_lists_them_all_without_a_total(client):  # noqa: F811
    body = {**enrollment(number(44)), "unknown": 1}
    r = client.post("/enrollments", json=body, headers=CLERK)
    assert r.status_code == 422 and len(r.json()["details"]["errors"]) == 1
    assert "total" not in r.json()["details"]


@pytest.mark.parametrize("attack", ["300,000 keys", "300,000 keys chunked", "5,000 keys", "200 unknown fields",
                                    "60,000 brackets"])
def test_no_hostile_body_holds_the_event_loop_for_more_than_25_ms(hostile, app, attack):
    """What keeps /health quick: the CPU the event loop's thread spends on one hostile request
    (the route's own work runs in the thread pool and is not counted; neither is the machine's load)."""
    body = b"[" * 60_000 if attack == "60,000 brackets" else many_keys(
        int(attack.split()[0].replace(",", "")), enrollment(number(45)))
    declare = "chunked" not in attack
    call(app, "POST", "/enrollments", {**JSON, **CLERK}, body, declare_length=declare)  # warm
    spent = []
    for _ in range(5):
        started = time.thread_time()
        status, _, _ = call(app, "POST", "/enrollments", {**JSON, **CLERK}, body, declare_length=declare)
        spent.append(time.thread_time() - started)
    hostile.attempt(f"{attack}: event-loop time", status=status)
    assert status in (413, 422)
    print(f"{attack}: {min(spent) * 1000:.1f} ms of event-loop CPU")
    assert min(spent) < 0.025, f"{min(spent) * 1000:.1f} ms of event-loop CPU per request"


# ---------------------------------------------------------------------------- heavy work
def test_an_import_when_every_slot_is_taken_is_503_server_busy_with_retry_after(client, system, monkeypatch):  # noqa: F811
    """A deliberate refusal, not a failure: nothing is started, the caller is told when to come back."""
    monkeypatch.setitem(limits.HEAVY_SLOTS, "import", 0)
    monkeypatch.setattr(limits, "BUSY_WAIT_SECONDS", 0.1)
    before = event_count(system)
    r = client.post("/imports?filename=a.csv", content=sheet_csv(1), headers={**CLERK, "Content-Type": "text/csv"})
    assert (r.status_code, r.json()["code"]) == (503, "SERVER_BUSY")
    assert r.headers["retry-after"] == str(limits.BUSY_RETRY_AFTER_SECONDS)
    assert event_count(system) == before
    monkeypatch.setitem(limits.HEAVY_SLOTS, "import", 2)
    r = client.post("/imports?filename=a.csv", content=sheet_csv(1), headers={**CLERK, "Content-Type": "text/csv"})
    assert r.status_code == 201  # the slot is given back: the same request goes through


def test_a_body_trickled_slower_than_the_deadline_is_408_and_frees_the_slot(hostile, app, system, monkeypatch):  # noqa: F811
    monkeypatch.setattr(limits, "BODY_READ_SECONDS", 0.3)
    before = event_count(system)
    body = CountedBody(10 * KIB, chunk=b"x" * 100)
    started = time.perf_counter()
    status, _, answer = call(app, "POST", "/imports", {**CLERK, "Content-Type": "text/csv"}, body, pause=0.05)
    hostile.attempt("upload trickled 100 bytes per 50 ms", status=status, written=event_count(system) != before)
    assert (status, json.loads(answer)["code"]) == (408, "BODY_TOO_SLOW")
    assert time.perf_counter() - started < 1 and body.pulled < 10 * KIB
    assert gate_of(app).busy["import"] == 0


def gate_of(app: Any) -> EntranceGate:
    layer = app.middleware_stack
    while not isinstance(layer, EntranceGate):
        layer = layer.app
    return layer


# ---------------------------------------------------------------------------- spreadsheets
HEADER = ["证件号码", "姓名", "险种", "参保地", "网格", "参保日期"]


def sheet_csv(rows: int, start: int = 100) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for i in range(rows):
        writer.writerow([number(start + i % 800, region=HANBIN), "王芳", "城乡居民", HANBIN, GRID_A, "2024-09-10"])
    return out.getvalue().encode()


def _small_workbook() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(HEADER)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def workbook_with_sheet(sheet_chunks: Iterator[bytes]) -> bytes:
    """A real workbook whose first sheet's XML is ``sheet_chunks``, deflated at the highest level."""
    source = zipfile.ZipFile(io.BytesIO(_small_workbook()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for info in source.infolist():
            if info.filename == "xl/worksheets/sheet1.xml":
                with out.open(info.filename, "w", force_zip64=True) as member:
                    for chunk in sheet_chunks:
                        member.write(chunk)
            else:
                out.writestr(info.filename, source.read(info.filename))
    return buffer.getvalue()


def inflating_sheet(inflated: int) -> Iterator[bytes]:
    yield (b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
           b'spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>')
    chunk = b"A" * MIB
    for _ in range(inflated // MIB):
        yield chunk
    yield b"</t></is></c></row></sheetData></worksheet>"


def declare_size(data: bytes, member: str, size: int) -> bytes:
    """The zip with ``member``'s uncompressed size in the central directory replaced by ``size``."""
    at = 0
    out = bytearray(data)
    name = member.encode()
    while True:
        at = out.find(b"PK\x01\x02", at)
        if at < 0:
            raise AssertionError(f"{member} not in the central directory")
        name_length = struct.unpack_from("<H", out, at + 28)[0]
        if bytes(out[at + 46:at + 46 + name_length]) == name:
            struct.pack_into("<I", out, at + 24, size)
            return bytes(out)
        at += 4


@pytest.fixture(scope="module")
def ratio_bomb() -> bytes:
    return workbook_with_sheet(inflating_sheet(100 * MIB))  # ~100 KB inflating to 100 MiB: ratio ~1,000


def test_an_xlsx_inflating_1000_times_is_a_file_bomb_refused_from_the_zip_directory(hostile, client, system,  # noqa: F811
                                                                                      ratio_bomb):
    assert len(ratio_bomb) < 200 * KIB
    before = event_count(system)
    started = time.perf_counter()
    r = client.post("/imports?filename=bomb.xlsx", content=ratio_bomb, headers=CLERK)
    elapsed = time.perf_counter() - started
    hostile.attempt("XLSX bomb (ratio 1,000) to POST /imports", status=r.status_code,
                    written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (413, "FILE_BOMB")
    assert "解压" in r.json()["message"]
    r = client.post("/imports?filename=bomb.xlsx", content=ratio_bomb, headers={**CLERK, "Accept-Language": "en"})
    assert "xl/worksheets/sheet1.xml" in r.json()["message"]
    assert elapsed < 5


def test_an_xlsx_declaring_2_gb_is_refused_at_once(hostile, client, system):  # noqa: F811
    bomb = declare_size(_small_workbook(), "xl/worksheets/sheet1.xml", 2 * 1024 * MIB)
    before = event_count(system)
    started = time.perf_counter()
    r = client.post("/imports?filename=bomb.xlsx", content=bomb, headers=CLERK)
    hostile.attempt("XLSX declaring a 2 GB sheet to POST /imports", status=r.status_code,
                    written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (413, "FILE_BOMB")
    assert r.json()["details"]["inflated_bytes"] >= 2 * 1024 * MIB
    assert time.perf_counter() - started < 5


def test_an_xlsx_that_understates_its_size_is_not_inflated_past_it(hostile, ratio_bomb):
    """zipfile stops at the declared size (then the checksum fails): the lie buys nothing."""
    liar = declare_size(ratio_bomb, "xl/worksheets/sheet1.xml", 1000)
    started = time.perf_counter()
    with pytest.raises(Exception) as caught:
        read_sheet(liar, "liar.xlsx")
    hostile.attempt("XLSX understating its sheet's size", status=getattr(caught.value, "http_status", None))
    assert caught.value.code == "IMPORT_FORMAT"
    assert time.perf_counter() - started < 5


def test_an_xlsx_with_thousands_of_members_is_a_file_bomb(hostile):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for i in range(IMPORT_SHEET.xlsx_max_members + 1):
            out.writestr(f"x/{i}.xml", b"")
    with pytest.raises(Exception) as caught:
        read_sheet(buffer.getvalue(), "many.xlsx")
    hostile.attempt("XLSX with 257 members", status=caught.value.http_status)
    assert caught.value.code == "FILE_BOMB"


def test_a_sheet_declaring_16384_columns_and_a_million_rows_is_refused_quickly(hostile):
    xml = (b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
           b'spreadsheetml/2006/main"><dimension ref="A1:XFD1048576"/><sheetData>'
           b'<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>'
           b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>y</t></is></c></row>'
           b"</sheetData></worksheet>")
    data = workbook_with_sheet(iter([xml]))
    started = time.perf_counter()
    with pytest.raises(Exception) as caught:
        read_sheet(data, "wide.xlsx")
    elapsed = time.perf_counter() - started
    hostile.attempt("XLSX declaring 16,384 x 1,048,576 cells", status=caught.value.http_status)
    assert caught.value.code == "FILE_TOO_MANY_ROWS" and "blank lines included" in caught.value.message
    assert elapsed < 5


def test_a_sheet_declaring_16384_columns_is_read_only_as_wide_as_the_column_limit(hostile):
    xml = (b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
           b'spreadsheetml/2006/main"><dimension ref="A1:XFD3"/><sheetData>'
           b'<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>'
           b'<row r="3"><c r="XFD3" t="inlineStr"><is><t>y</t></is></c></row>'
           b"</sheetData></worksheet>")
    sheet = read_sheet(workbook_with_sheet(iter([xml])), "wide.xlsx")
    hostile.attempt("XLSX declaring 16,384 columns", status=None)
    assert sheet.header == ["x"] + [""] * IMPORT_SHEET.max_columns
    assert sheet.rows == []  # the cell at XFD is past the columns read; the blank row is not kept


def test_a_csv_over_the_row_limit_is_refused_and_nothing_is_imported(hostile, client, system):  # noqa: F811
    data = sheet_csv(IMPORT_SHEET.max_rows + 1)
    assert len(data) < limits.ROUTE_BODY_LIMITS["/imports"]
    before = event_count(system)
    r = client.post("/imports?filename=big.csv", content=data, headers={**CLERK, "Content-Type": "text/csv"})
    hostile.attempt("CSV of 100,001 rows to POST /imports", status=r.status_code,
                    written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (413, "FILE_TOO_MANY_ROWS")
    assert r.json()["details"]["limit_rows"] == IMPORT_SHEET.max_rows


def test_blank_lines_are_not_kept_and_count_only_towards_the_line_limit(hostile):
    data = sheet_csv(3) + b"\r\n" * (IMPORT_SHEET.max_lines - 10)
    sheet = read_sheet(data, "blank.csv")
    assert [n for n, _ in sheet.rows] == [2, 3, 4]
    started = time.perf_counter()
    with pytest.raises(Exception) as caught:
        read_sheet(sheet_csv(3) + b"\r\n" * 2_000_000, "blank.csv")
    hostile.attempt("CSV with 2,000,000 blank lines", status=caught.value.http_status)
    assert caught.value.code == "FILE_TOO_MANY_ROWS"
    assert time.perf_counter() - started < 5


def test_a_csv_line_of_a_million_commas_is_refused(hostile):
    data = sheet_csv(1) + b"," * 1_000_000 + b"\n"
    with pytest.raises(Exception) as caught:
        read_sheet(data, "commas.csv")
    hostile.attempt("CSV line of 1,000,000 commas", status=caught.value.http_status)
    assert caught.value.code == "FILE_LINE_TOO_LONG"


def test_a_field_over_the_csv_module_limit_is_a_coded_refusal_not_a_crash(hostile):
    data = sheet_csv(1) + b'"' + b"a\n" * 100_000 + b'"\n'
    with pytest.raises(Exception) as caught:
        read_sheet(data, "field.csv")
    hostile.attempt("CSV quoted field of 200 KB", status=caught.value.http_status)
    assert caught.value.code == "IMPORT_FORMAT"


def test_reading_stops_at_the_time_limit(hostile):
    with pytest.raises(Exception) as caught:
        read_sheet(sheet_csv(1_000), "slow.csv", SheetLimits(max_seconds=0))
    hostile.attempt("sheet read past its time limit", status=caught.value.http_status)
    assert caught.value.code == "FILE_TOO_SLOW" and "秒" in caught.value.message


def test_a_file_over_the_size_limit_is_refused_by_its_size(hostile, tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:
        f.truncate(FEED_SHEET.max_bytes + 1)  # sparse: nothing is written to disk
    with pytest.raises(Exception) as caught:
        read_file(path, FEED_SHEET)
    hostile.attempt("65 MiB feed file", status=caught.value.http_status)
    assert caught.value.code == "FILE_TOO_LARGE"


def test_ledger_feed_refuses_the_bomb_through_the_same_reader(hostile, ratio_bomb):
    sent: list[Any] = []

    class Sink:
        def send(self, *a: Any, **k: Any) -> None:
            sent.append(a)

        def flush(self) -> None:
            pass

    started = time.perf_counter()
    with pytest.raises(Exception) as caught:
        feed_file("tax", ratio_bomb, "pay.xlsx", Sink())
    hostile.attempt("XLSX bomb to feed_file", status=None, written=bool(sent))
    assert caught.value.code == "FILE_BOMB" and time.perf_counter() - started < 5


def test_the_command_line_refuses_the_bomb_too(hostile, monkeypatch, tmp_path, capsys, ratio_bomb):
    embedded(monkeypatch, tmp_path, "hostile-cli")
    bomb = tmp_path / "bomb.xlsx"
    bomb.write_bytes(ratio_bomb)
    started = time.perf_counter()
    refused(capsys, "FILE_BOMB", "feed", "tax", str(bomb), "--dry-run")
    hostile.attempt("XLSX bomb to ledger feed", status=None)
    run_as(monkeypatch, tmp_path, "clerk", [HANBIN])
    err = refused(capsys, "FILE_BOMB", "import", str(bomb))
    hostile.attempt("XLSX bomb to ledger import", status=None)
    assert "解压" in err and time.perf_counter() - started < 10
