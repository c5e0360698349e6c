"""Hostile values at every entrance: one gate for amounts and dates, a strict Avro decoder, Apache Avro interop.

Issue 17, items 1 (the gate), 7 and 10. Each attack is what an attacker or a clumsy
integrator sent (2^63 fen, 10^30 fen, sums past 2^63, a payment dated 1899, an
enrollment before birth, hand-made Avro with 11-byte varints); each must be refused with
its stable code, and nothing may be written. Every attempt is counted in the hostile
tally (tests/hostile.py).
"""
from __future__ import annotations

import dataclasses
import io
import json
from datetime import date, datetime, timezone
from pathlib import Path

import avro.io
import avro.schema
import pytest

from consumers.file_feeder import feed_file
from consumers.inprocess import InProcessBroker
from events.codec import SCHEMA_ROOT, DecodeError, SchemaRegistry, decode, default_registry, encode
from events.inbound import TAX_PAYMENT, tax_record_to_avro
from entrypoints.wiring import bootstrap, feed_consumer
from infra.settings import Settings
from ledger.domain.errors import DomainError
from ledger.domain.identity import make_resident_id
from ledger.domain.person import Person
from ledger.policy import PolicyBook, check_amount_fen, check_business_date, default_value_limits
from ledger.inbound_records import Provenance, TaxPaymentRecord
from tests.unit.cli_support import embedded, refused, run, run_as
from tests.unit.http_support import (
    CLERK,
    HANBIN,
    TAX,
    client,  # noqa: F401  (fixture)
    enroll,
    enrollment,
    event_count,
    number,
    person_path,
    system,  # noqa: F401  (fixture)
    tax_payment,
)

LIMITS = default_value_limits()
CEILING = LIMITS.amount_ceiling_fen
HUGE = [2**63, 10**30, 2**63 - 1, CEILING + 1, 2**64]
TAX_TOPIC = "tax.payments.v1"


# --------------------------------------------------------------------------- the rule itself
def test_the_ceiling_comes_from_the_national_policy_tables_and_keeps_sums_far_below_2_pow_63():
    book = PolicyBook.load()
    assert {t.amount_ceiling_fen for t in book.tables()} == {CEILING}
    assert CEILING == 100_000_000  # 1,000,000 yuan per record (ledger/policy/tables/national/*.toml)
    # A billion records at the ceiling (far more than one person or one region will ever hold) stay below 2^63.
    assert CEILING * 10**9 < 2**63


@pytest.mark.parametrize(("value", "code"), [
    (2**63, "AMOUNT_TOO_LARGE"), (10**30, "AMOUNT_TOO_LARGE"), (CEILING + 1, "AMOUNT_TOO_LARGE"),
    (0, "AMOUNT_NOT_POSITIVE"), (-1, "AMOUNT_NOT_POSITIVE"), (-(2**63), "AMOUNT_NOT_POSITIVE"),
    (True, "AMOUNT_NOT_INTEGER_FEN"), (1e30, "AMOUNT_NOT_INTEGER_FEN"), ("40000", "AMOUNT_NOT_INTEGER_FEN"),
])
def test_check_amount_fen_refuses_with_a_stable_code(value, code):
    with pytest.raises(DomainError) as err:
        check_amount_fen(value, "amount_fen", LIMITS)
    assert err.value.code == code
    assert len(err.value.message) < 400  # 10^30 or a long text is cut short in the message


def test_check_amount_fen_takes_the_ceiling_itself_and_zero_where_allowed():
    assert check_amount_fen(CEILING, "amount_fen", LIMITS) == CEILING
    assert check_amount_fen(0, "account_balance_fen", LIMITS, allow_zero=True) == 0


def test_the_date_window_runs_from_1900_to_the_end_of_the_year_after_the_latest_table():
    book = PolicyBook.load()
    latest_year = max(t.coverage_year for t in book.tables())
    assert book.value_limits().latest_date == date(latest_year + 1, 12, 31)
    assert check_business_date(date(1900, 1, 1), "d", LIMITS) == date(1900, 1, 1)
    for bad in (date(1899, 12, 31), date(latest_year + 2, 1, 1), date(9999, 12, 31)):
        with pytest.raises(DomainError) as err:
            check_business_date(bad, "d", LIMITS)
        assert err.value.code == "DATE_OUT_OF_RANGE"
    # Adding next year's tables moves the horizon: it is computed, not written down.
    tables = {(t.region_code, t.coverage_year): t for t in book.tables()}
    last = next(t for t in book.tables() if t.coverage_year == latest_year)
    tables[(last.region_code, latest_year + 1)] = dataclasses.replace(last, coverage_year=latest_year + 1)
    assert PolicyBook(tables).value_limits().latest_date == date(latest_year + 2, 12, 31)


def test_the_person_aggregate_runs_the_gate_itself(system):  # noqa: F811
    """Defence in depth: a path that skipped the entrance's check still cannot record the amount."""
    ledger = system.ledger
    n = number(90)
    ledger.enroll(**_enroll_args(n))
    person = ledger.find_person("RESIDENT_ID", n)
    before = person.version
    for amount in (2**63, 10**30):
        with pytest.raises(DomainError) as err:
            person.credit_account(amount_fen=amount, reason=_reason(), reference="x", effective_date=date(2025, 1, 1),
                                  provenance={"source": "test"})
        assert err.value.code == "AMOUNT_TOO_LARGE"
    with pytest.raises(DomainError) as err:
        person.credit_account(amount_fen=100, reason=_reason(), reference="x", effective_date=date(1899, 1, 1),
                              provenance={"source": "test"})
    assert err.value.code == "DATE_OUT_OF_RANGE"
    assert person.version == before


def _reason():
    from ledger.domain.vocabulary import AccountEntryReason

    return AccountEntryReason.CORRECTION


def _enroll_args(n: str) -> dict:
    return dict(id_type="RESIDENT_ID", id_number=n, name="王芳", scheme="RESIDENT", region_code=HANBIN,
                grid_code=None, flexible=False, employer_id=None, effective_date=date(2024, 9, 10),
                provenance=Provenance(source="api", user="t", request_id="r"))


# --------------------------------------------------------------------------- HTTP
@pytest.mark.parametrize("amount", HUGE, ids=["2^63", "10^30", "2^63-1", "ceiling+1", "2^64"])
def test_http_tax_payment_over_the_ceiling_is_422_and_nothing_written(client, system, hostile, amount):  # noqa: F811
    before = event_count(system)
    r = client.post("/tax/payments", json=tax_payment(number(1), "V-HUGE", amount_fen=amount), headers=TAX)
    hostile.attempt(f"HTTP tax payment {amount} fen", status=r.status_code, written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (422, "AMOUNT_TOO_LARGE")
    assert r.json()["details"]["errors"][0]["field"] == "amount_fen"


def test_http_tax_payment_with_a_thousand_digit_amount_is_refused_not_a_500(client, system, hostile):  # noqa: F811
    before = event_count(system)
    body = json.dumps(tax_payment(number(1), "V-DIGITS")).replace('"amount_fen": 40000', '"amount_fen": 1' + "0" * 5000)
    r = client.post("/tax/payments", content=body, headers={**TAX, "content-type": "application/json"})
    hostile.attempt("HTTP tax payment 10^5000 fen", status=r.status_code, written=event_count(system) != before)
    assert r.status_code == 422 and r.json()["code"] in {"AMOUNT_TOO_LARGE", "BODY_INVALID"}


def test_http_two_payments_summing_past_2_pow_63_are_both_refused(client, system, hostile):  # noqa: F811
    before = event_count(system)
    for voucher in ("V-SUM-1", "V-SUM-2"):
        r = client.post("/tax/payments", json=tax_payment(number(2), voucher, amount_fen=2**62 + 1), headers=TAX)
        hostile.attempt("HTTP payments summing past 2^63", status=r.status_code,
                        written=event_count(system) != before)
        assert (r.status_code, r.json()["code"]) == (422, "AMOUNT_TOO_LARGE")


def test_http_a_payment_at_the_ceiling_is_recorded(client, system):  # noqa: F811
    r = client.post("/tax/payments", json=tax_payment(number(3), "V-CEIL", amount_fen=CEILING), headers=TAX)
    assert r.status_code == 201


@pytest.mark.parametrize(("path", "body"), [
    ("/account/credits", {"amount_fen": 2**63, "reason": "CORRECTION", "reference": "x",
                          "effective_date": "2025-01-01"}),
    ("/account/debits", {"amount_fen": 10**30, "reason": "MEDICAL_EXPENSE", "reference": "x",
                         "effective_date": "2025-01-01"}),
    ("/payment-corrections", {"kind": "REFUND", "voucher_no": "R1", "tax_office": "16109020000",
                              "original_voucher_no": "V1", "amount_fen": 2**63, "reason": "x"}),
    ("/assessments/employee-month", {"month": "2025-03", "declared_base_fen": 10**30}),
])
def test_http_every_clerk_money_field_has_the_ceiling(client, system, hostile, path, body):  # noqa: F811
    n = number(4)
    enroll(client, n)
    before = event_count(system)
    r = client.post(person_path(n, path), json=body, headers=CLERK)
    hostile.attempt(f"HTTP {path} over the ceiling", status=r.status_code, written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (422, "AMOUNT_TOO_LARGE")


def test_http_transfer_in_balance_of_2_pow_63_is_refused(client, system, hostile):  # noqa: F811
    before = event_count(system)
    body = {**enrollment(number(5)), "transfer_id": "T-HUGE", "counterpart_region": "330102",
            "contribution_months": 12, "account_balance_fen": 2**63}
    r = client.post("/transfers/in", json=body, headers=CLERK)
    hostile.attempt("HTTP transfer-in balance 2^63", status=r.status_code, written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (422, "AMOUNT_TOO_LARGE")


@pytest.mark.parametrize(("over", "code"), [
    ({"effective_date": "1899-12-31"}, "DATE_OUT_OF_RANGE"),
    ({"effective_date": "2999-01-01"}, "DATE_OUT_OF_RANGE"),
    ({"effective_date": "1980-05-16"}, "DATE_BEFORE_BIRTH"),  # number() people are born 1980-05-17
])
def test_http_enrollment_dates_outside_the_window_or_before_birth(client, system, hostile, over, code):  # noqa: F811
    before = event_count(system)
    r = client.post("/enrollments", json=enrollment(number(6), **over), headers=CLERK)
    hostile.attempt(f"HTTP enrollment {over}", status=r.status_code, written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (422, code)


@pytest.mark.parametrize("over", [{"paid_at": "1850-01-01T00:00:00+08:00"}, {"period_start": "0001-01-01"},
                                  {"period_end": "9999-12-31"}, {"credited_on": "2100-01-01"}])
def test_http_tax_payment_dates_outside_the_window(client, system, hostile, over):  # noqa: F811
    before = event_count(system)
    r = client.post("/tax/payments", json=tax_payment(number(7), "V-DATE", **over), headers=TAX)
    hostile.attempt(f"HTTP tax payment {over}", status=r.status_code, written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (422, "DATE_OUT_OF_RANGE")


# --------------------------------------------------------------------------- CLI
@pytest.fixture()
def home(tmp_path, monkeypatch):
    embedded(monkeypatch, tmp_path, "cli-gate-test")
    run_as(monkeypatch, tmp_path, "clerk", [HANBIN])
    return tmp_path


def _cli_events() -> int:
    from infra.settings import load_settings

    s = bootstrap(load_settings())
    try:
        return s.ledger.recorder.max_notification_id() or 0
    finally:
        s.close()


@pytest.mark.parametrize("amount", [str(2**63), str(10**30), "1" + "0" * 5000])
def test_cli_account_credit_over_the_ceiling_exits_2(home, capsys, hostile, amount):
    n = make_resident_id(HANBIN, date(1980, 5, 17), 31)
    assert run(capsys, "clerk", "enroll", "--id-number", n, "--name", "张三", "--scheme", "RESIDENT",
               "--region-code", HANBIN, "--effective-date", "2024-09-10")[0] == 0
    before = _cli_events()
    status, _out, err = run(capsys, "clerk", "account-credit", "--id-number", n, "--amount-fen", amount,
                            "--reason", "CORRECTION", "--reference", "x", "--effective-date", "2025-01-01")
    hostile.attempt(f"CLI account-credit {amount[:12]} fen", crashed=status not in (0, 2),
                    written=_cli_events() != before)
    expected = "AMOUNT_TOO_LARGE" if len(amount) < 100 else "AMOUNT_NOT_INTEGER_FEN"
    assert status == 2 and f"error {expected}: " in err and "--amount-fen" in err


def test_cli_enrollment_in_1899_exits_2(home, capsys, hostile):
    err = refused(capsys, "DATE_OUT_OF_RANGE", "clerk", "enroll", "--id-number",
                  make_resident_id(HANBIN, date(1980, 5, 17), 33), "--name", "张三", "--scheme", "RESIDENT",
                  "--region-code", HANBIN, "--effective-date", "1899-12-31")
    hostile.attempt("CLI enrollment dated 1899", written=_cli_events() != 0)
    assert "--effective-date" in err


# --------------------------------------------------------------------------- Kafka inbound
@pytest.fixture()
def feed_system():
    s = bootstrap(Settings(persistence="memory", id_key=b"test-key"))
    yield s
    s.close()


def _payment(n: str, voucher: str, amount: int = 40000) -> TaxPaymentRecord:
    return TaxPaymentRecord(
        voucher_no=voucher, tax_office="16109020000", id_type="RESIDENT_ID", id_number=n, name="王芳",
        region_code=HANBIN, levy_item="RESIDENT", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
        amount_fen=amount, paid_at=datetime(2024, 10, 8, 1, 30, tzinfo=timezone.utc),
        credited_on=date(2024, 10, 9), channel="APP",
    )


def _varint(unsigned: int) -> bytes:
    """An Avro varint of any length (the hand-made records fastavro would wrap)."""
    out = bytearray()
    while True:
        low, unsigned = unsigned & 0x7F, unsigned >> 7
        out.append(low | 0x80 if unsigned else low)
        if not unsigned:
            return bytes(out)


def _zigzag(value: int) -> int:
    return value << 1 if value >= 0 else ((-value) << 1) - 1


SENTINEL = 123_456_789_012  # an amount whose varint occurs once in the record


def _with_raw(varint_of_sentinel: bytes, replacement: bytes, record: TaxPaymentRecord | None = None) -> bytes:
    good = encode(TAX_PAYMENT, tax_record_to_avro(record or _payment(number(40), "V-RAW", SENTINEL)))
    assert good.count(varint_of_sentinel) == 1
    return good.replace(varint_of_sentinel, replacement)


def hand_made(amount_varint: bytes) -> bytes:
    """A TaxPayment whose amount_fen is the given raw varint bytes."""
    return _with_raw(_varint(_zigzag(SENTINEL)), amount_varint)


def _period_start_varint(raw: bytes) -> bytes:
    """A TaxPayment whose period_start (an Avro int, days since 1970) is the given raw varint bytes."""
    days = (date(2025, 1, 1) - date(1970, 1, 1)).days
    return _with_raw(_varint(_zigzag(days)), raw, _payment(number(40), "V-RAW", 40000))


MALFORMED = {
    "amount 10^30": hand_made(_varint(_zigzag(10**30))),
    "amount 2^63": hand_made(_varint(_zigzag(2**63))),  # fastavro read it as 0
    "amount -2^63-1": hand_made(_varint(_zigzag(-(2**63) - 1))),
    "amount 11-byte varint of 5": hand_made(b"\x8a" + b"\x80" * 9 + b"\x00"),
    "period_start int 2^31": _period_start_varint(_varint(_zigzag(2**31))),
    "period_start 6-byte int": _period_start_varint(b"\x80" * 5 + b"\x01"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_decoder_refuses_over_long_varints_as_avro_malformed(name):
    with pytest.raises(DecodeError) as err:
        decode(MALFORMED[name], TAX_PAYMENT)
    assert err.value.code == "AVRO_MALFORMED"


def test_without_the_check_fastavro_would_have_wrapped_the_amount():
    """Why the check exists: the same bytes through fastavro alone give a wrong number, silently."""
    from fastavro import schemaless_reader

    data = MALFORMED["amount 10^30"]
    entry = default_registry().writer_of(data)
    record = schemaless_reader(io.BytesIO(data[10:]), entry.parsed, None)
    assert record["amount_fen"] == 5076944290155633856


def test_decoder_takes_the_edges_of_long():
    for value in (2**63 - 1, -(2**63), CEILING):
        assert decode(hand_made(_varint(_zigzag(value))), TAX_PAYMENT)[1]["amount_fen"] == value


def test_chinese_text_in_a_record_is_not_mistaken_for_an_over_long_varint():
    record = dataclasses.replace(_payment(number(41), "V-ZH"), name="欧阳娜娜娜娜娜娜",
                                 channel="微信支付宝银联柜台")
    assert decode(encode(TAX_PAYMENT, tax_record_to_avro(record)), TAX_PAYMENT)[1]["name"] == "欧阳娜娜娜娜娜娜"


def _consume(system, values: list[bytes]):
    broker = system.inprocess_broker()
    for i, value in enumerate(values):
        broker.produce(TAX_TOPIC, key=f"k{i}".encode(), value=value, partition=0)
    runner = feed_consumer(system, "tax")
    results = []
    for _ in range(10):
        got = runner.run_once(timeout=0)
        if not got:
            break
        results.extend(got)
    return broker, results


def test_kafka_hostile_records_are_dead_lettered_with_their_code_and_nothing_recorded(feed_system, hostile):
    values = {
        **MALFORMED,
        "amount 2^63-1 (a valid long)": encode(TAX_PAYMENT, tax_record_to_avro(_payment(number(42), "V-A", 2**63 - 1))),
        "amount ceiling+1": encode(TAX_PAYMENT, tax_record_to_avro(_payment(number(43), "V-B", CEILING + 1))),
        "paid 1899": encode(TAX_PAYMENT, tax_record_to_avro(dataclasses.replace(
            _payment(number(44), "V-C"), paid_at=datetime(1899, 6, 1, tzinfo=timezone.utc)))),
    }
    expected = ["AVRO_MALFORMED"] * len(MALFORMED) + ["AMOUNT_TOO_LARGE", "AMOUNT_TOO_LARGE", "DATE_OUT_OF_RANGE"]
    broker, results = _consume(feed_system, list(values.values()))
    rejected = [code for r in results for _offset, code in r.rejected]
    written = (feed_system.ledger.recorder.max_notification_id() or 0) > 0 and any(r.applied for r in results)
    for name, code in zip(values, rejected):
        hostile.attempt(f"Kafka tax record {name}", written=written)
    assert rejected == expected
    dlq = broker.topic(f"{TAX_TOPIC}.dlq").messages()
    assert [dict(m.headers)["error.code"].decode() for m in dlq] == expected
    assert sum(r.applied for r in results) == 0


def test_kafka_two_records_of_2_pow_63_minus_1_cannot_sum_past_2_pow_63(feed_system, hostile):
    n = number(45)
    values = [encode(TAX_PAYMENT, tax_record_to_avro(_payment(n, v, 2**63 - 1))) for v in ("V-S1", "V-S2")]
    _broker, results = _consume(feed_system, values)
    hostile.attempt("Kafka two payments summing past 2^63", written=sum(r.applied for r in results) > 0)
    assert [code for r in results for _o, code in r.rejected] == ["AMOUNT_TOO_LARGE"] * 2


# --------------------------------------------------------------------------- Apache Avro interop (item 10)
def apache_encoded_payment(record: TaxPaymentRecord) -> bytes:
    """A TaxPayment as Apache Avro for Python writes it: its DatumWriter, its own CRC-64-AVRO fingerprint."""
    schema = avro.schema.parse((SCHEMA_ROOT / "inbound" / "tax.payments.v1.avsc").read_text(encoding="utf-8"))
    body = io.BytesIO()
    avro.io.DatumWriter(schema).write(tax_record_to_avro(record), avro.io.BinaryEncoder(body))
    return b"\xc3\x01" + schema.fingerprint("CRC-64-AVRO") + body.getvalue()


def test_every_contract_is_registered_under_apache_pythons_fingerprint_too():
    registry = default_registry()
    for path in sorted(Path(SCHEMA_ROOT).rglob("*.avsc")):
        apache = avro.schema.parse(path.read_text(encoding="utf-8"))
        data_fp = int.from_bytes(apache.fingerprint("CRC-64-AVRO"), "little")
        entry = SchemaRegistry().add(json.loads(path.read_text(encoding="utf-8")), source=str(path))
        assert entry.apache_python_fingerprint == data_fp, path
        assert registry.writer(data_fp).full_name == entry.full_name


def test_a_payment_encoded_by_apache_avro_is_recorded_by_the_tax_consumer(feed_system):
    n = number(46)
    data = apache_encoded_payment(_payment(n, "V-APACHE"))
    spec_header = default_registry().current(TAX_PAYMENT).header
    assert data[:10] != spec_header  # the library's own fingerprint, not ours
    _broker, results = _consume(feed_system, [data])
    assert sum(r.applied for r in results) == 1 and not any(r.rejected for r in results)
    person = feed_system.ledger.find_person("RESIDENT_ID", n)
    [paid] = person.payments.values()
    assert (paid.voucher_no, paid.amount_fen) == ("V-APACHE", 40000)


# --------------------------------------------------------------------------- feed files and imports
FEED_HEADER = "voucher_no,tax_office,id_type,id_number,name,region_code,levy_item,period_start,period_end,amount_fen,paid_at,kind"


def _feed_row(voucher: str, amount: str = "40000", paid_at: str = "2025-01-05T10:30:00",
              period_start: str = "2025-01-01") -> str:
    return (f"{voucher},16109020000,RESIDENT_ID,{number(47)},王芳,610902,RESIDENT,{period_start},2025-12-31,"
            f"{amount},{paid_at},PAYMENT")


def test_feed_file_reports_each_hostile_line_and_sends_only_the_good_one(hostile):
    broker = InProcessBroker()
    rows = [_feed_row("V1"), _feed_row("V2", amount=str(2**63 - 1)), _feed_row("V3", amount=str(10**30)),
            _feed_row("V4", amount=str(CEILING + 1)), _feed_row("V5", paid_at="1899-01-01T00:00:00"),
            _feed_row("V6", period_start="1066-10-14")]
    data = ("\n".join([FEED_HEADER, *rows]) + "\n").encode()
    report = feed_file("tax", data, "pay.csv", broker)
    sent = [decode(m.value)[1]["voucher_no"] for m in broker.topic(TAX_TOPIC).messages()]
    for bad in report.bad:
        hostile.attempt(f"feed file line {bad['line']} {bad['code']}", written=f"V{bad['line'] - 1}" in sent)
    assert [(b["line"], b["code"]) for b in report.bad] == [
        (3, "AMOUNT_TOO_LARGE"), (4, "AMOUNT_TOO_LARGE"), (5, "AMOUNT_TOO_LARGE"), (6, "DATE_OUT_OF_RANGE"),
        (7, "DATE_OUT_OF_RANGE")]
    assert sent == ["V1"]


def test_spreadsheet_import_refuses_rows_dated_1899_or_before_birth_by_line(client, system, hostile):  # noqa: F811
    header = "证件类型,证件号码,姓名,险种,参保地,网格,灵活就业,单位编号,参保日期"
    rows = [f"居民身份证,{number(60)},参保人,城乡居民,{HANBIN},,否,,1899-12-31",
            f"居民身份证,{number(61)},参保人,城乡居民,{HANBIN},,否,,1980-05-01",
            f"居民身份证,{number(62)},参保人,城乡居民,{HANBIN},,否,,2024-09-10"]
    data = ("\r\n".join([header, *rows]) + "\r\n").encode("utf-8-sig")
    before = event_count(system)
    r = client.post("/imports", files={"file": ("rows.csv", data)}, headers=CLERK)
    lines = {line["line"]: line for line in r.json()["lines"]}
    after = event_count(system)
    hostile.attempt("import row dated 1899", status=r.status_code, written=lines[2]["status"] == "imported")
    hostile.attempt("import row before birth", status=r.status_code, written=lines[3]["status"] == "imported")
    assert (lines[2]["code"], lines[3]["code"], lines[4]["status"]) == (
        "DATE_OUT_OF_RANGE", "DATE_BEFORE_BIRTH", "imported")
    assert after - before == 2  # the good row's registration and enrollment only


def test_kafka_status_and_resident_records_with_dates_outside_the_window_are_dead_lettered(feed_system, hostile):
    from events.inbound import (
        RESIDENT_RECORD,
        SUBSIDY_STATUS,
        resident_record_to_avro,
        status_record_to_avro,
    )
    from ledger.inbound_records import ResidentRecord, StatusRecord

    broker = feed_system.inprocess_broker()
    status = StatusRecord(record_id="S-1899", id_type="RESIDENT_ID", id_number=number(48), name="王芳",
                          category="MIN_LIVING", granted=True, valid_from=date(1899, 1, 1), valid_to=None,
                          department="汉滨区民政局", document_no="汉民发〔2025〕1号")
    broker.produce("registry.status.v1", key=b"s", value=encode(SUBSIDY_STATUS, status_record_to_avro(status)))
    resident = ResidentRecord(record_id="R-2999", id_type="RESIDENT_ID", id_number=number(49), name="王芳",
                              grid_code="610902100001", status="RESIDENT", effective_date=date(2999, 1, 1))
    broker.produce("registry.residents.v1", key=b"r",
                   value=encode(RESIDENT_RECORD, resident_record_to_avro(resident)))
    codes = []
    for feed in ("status", "residents"):
        runner = feed_consumer(feed_system, feed)
        for _ in range(5):
            got = runner.run_once(timeout=0)
            if not got:
                break
            codes += [code for r in got for _o, code in r.rejected]
            hostile.attempt(f"Kafka {feed} record dated outside the window",
                            written=any(r.applied for r in got))
    assert codes == ["DATE_OUT_OF_RANGE", "DATE_OUT_OF_RANGE"]
