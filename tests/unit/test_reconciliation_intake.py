"""Statement records from bytes: checked rows or error codes; the line's fast decoding path agrees with the codec."""
from __future__ import annotations

import random
from datetime import date

import pytest

from events.codec import DecodeError, decode
from events.inbound import TAX_STATEMENT_LINE
from reconciliation.intake import ERROR, HEADER, LINE, LINE_COLUMNS, decode_line_fast, decode_value
from tests.unit.test_reconciliation_support import DAY, ID_KEY, header_bytes, line_bytes, person, voucher


def test_a_line_becomes_a_row_with_the_person_id_and_a_masked_number():
    kind, row = decode_value(line_bytes(3, 7, amount=12345, kind="REFUND", original=voucher(1)), ID_KEY, DAY)
    assert kind == LINE and len(row) == len(LINE_COLUMNS) - 1  # all but ``source``
    values = dict(zip(LINE_COLUMNS, row))
    assert (values["line_no"], values["voucher_no"], values["signed_fen"], values["person_id"]) == (
        3, voucher(7), -12345, person(7))
    assert "*" in values["masked_id"] and values["business_date"] == "2025-03-03"
    assert values["paid_at"].endswith("+00:00")


def test_a_header():
    assert decode_value(header_bytes(count=2, total=5), ID_KEY, DAY)[:2] == (
        HEADER, ("DZ-1", "2025-03-03", "16109020000", "610902", 2, 5,
                 decode_value(header_bytes(count=2, total=5), ID_KEY, DAY)[1][-1]))


@pytest.mark.parametrize("over,code", [
    ({"voucher_no": ""}, "VOUCHER_MALFORMED"), ({"voucher_no": "12 34"}, "VOUCHER_MALFORMED"),
    ({"original_voucher_no": "原票"}, "VOUCHER_MALFORMED"), ({"amount_fen": 0}, "AMOUNT_INVALID"),
    ({"amount_fen": -100}, "AMOUNT_INVALID"), ({"line_no": 0}, "LINE_NO_INVALID"),
    ({"kind": "UNKNOWN"}, "PAYMENT_KIND_UNKNOWN"), ({"levy_item": "UNKNOWN"}, "LEVY_ITEM_UNKNOWN"),
    ({"period_end": date(2024, 1, 1)}, "PERIOD_INVALID"), ({"id_number": "123"}, "ID_FORMAT"),
    ({"statement_id": ""}, "STATEMENT_ID_INVALID"),
])
def test_malformed_lines_get_a_code_and_keep_their_ids(over, code):
    rest = dict(over)
    line_no = rest.pop("line_no", 4)
    decoded = decode_value(line_bytes(line_no, 4, **rest), ID_KEY, DAY)
    assert decoded[:2] == (ERROR, code)
    assert decoded[4] == line_no


def test_bytes_that_are_no_statement_record():
    assert decode_value(b"nope", ID_KEY, DAY)[:2] == (ERROR, "AVRO_BAD_MAGIC")
    assert decode_value(None, ID_KEY, DAY)[:2] == (ERROR, "AVRO_BAD_MAGIC")


def test_the_fast_path_takes_exactly_what_the_codec_takes():
    rng = random.Random(6)
    good = [line_bytes(n, n, amount=rng.randint(1, 10**9), original=voucher(n) if n % 3 else None)
            for n in range(1, 40)]
    for value in good:
        assert decode_line_fast(value) == decode(value, TAX_STATEMENT_LINE)[1]
    taken = refused = 0
    for _ in range(4000):
        data = bytearray(rng.choice(good))
        for _ in range(rng.randint(1, 3)):
            where = rng.randrange(10, len(data))
            data[where] = rng.randrange(256)
        if rng.random() < 0.2:
            data = data[:rng.randrange(10, len(data))] if rng.random() < 0.5 else data + bytes([rng.randrange(256)])
        fast = decode_line_fast(bytes(data))
        try:
            slow = decode(bytes(data))[1]
        except DecodeError:
            slow = None
        if fast is not None:
            assert fast == slow, bytes(data).hex()
            taken += 1
        else:
            refused += 1
    assert taken > 100 and refused > 100
