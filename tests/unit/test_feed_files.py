"""``ledger feed``: integrators' CSV / XLSX exports checked row by row and put on the feed topics as Avro.

The synthetic county's own files (``write_csv``) are the main fixture: every row the
generator wrote must come back as the Avro record the demo produces from the generator's
record, and the rows whose ID number fails its check digit must be reported
by line and not sent.
"""
from __future__ import annotations

import io
import json
from datetime import date, datetime, timezone

import pytest

from consumers.file_feeder import feed_file
from consumers.inprocess import InProcessBroker
from events.codec import decode
from entrypoints.cli import main
from entrypoints.demo import feed_record_bytes, feed_record_key
from ledger.domain.errors import DomainError
from ledger.domain.identity import make_resident_id, parse_identity
from entrypoints.simulation import timeline as feeds, generate_county

HEADER = ("voucher_no,tax_office,id_type,id_number,name,region_code,levy_item,period_start,period_end,amount_fen,"
          "paid_at,kind")
GOOD = make_resident_id("610902", date(1980, 5, 17), 7)


def valid_id(record) -> bool:
    try:
        parse_identity(record.id_type, record.id_number)
    except DomainError:
        return False
    return True


@pytest.fixture(scope="module")
def county_files(tmp_path_factory):
    county = generate_county(11, 400)
    out = tmp_path_factory.mktemp("county")
    county.write_csv(out)
    return county, out


@pytest.mark.parametrize("feed, name, records", [
    ("tax", "tax_payments.csv", "tax_records"),
    ("status", "statuses.csv", "status_records"),
    ("residents", "residents.csv", "resident_records"),
])
def test_the_generators_files_become_the_same_avro_records_and_bad_ids_are_reported_by_line(
        county_files, feed, name, records):
    county, out = county_files
    expected = getattr(county, records)
    kind = {"tax": feeds.TAX, "status": feeds.STATUS, "residents": feeds.RESIDENCE}[feed]
    broker = InProcessBroker()
    report = feed_file(feed, (out / name).read_bytes(), name, broker, topic_prefix="t.")
    sent = broker.topic(report.topic).messages()
    good = [r for r in expected if valid_id(r)]
    assert report.rows == len(expected) and report.sent == len(good) == len(sent)
    # The same records (a map's entries may come in another order, so compared decoded).
    assert [decode(m.value) for m in sent] == [decode(feed_record_bytes(kind, r)) for r in good]
    assert [m.key for m in sent] == [feed_record_key(r) for r in good]
    assert [b["line"] for b in report.bad] == [i + 2 for i, r in enumerate(expected) if not valid_id(r)]
    assert all(b["code"].startswith("ID_") for b in report.bad)
    assert report.topic == "t." + {"tax": "tax.payments.v1", "status": "registry.status.v1",
                                   "residents": "registry.residents.v1"}[feed]


def csv_bytes(*rows: str, header: str = HEADER) -> bytes:
    return ("\ufeff" + "\n".join((header,) + rows) + "\n").encode("utf-8")


def row(voucher: str = "V1", number: str = GOOD, amount: str = "40000", paid_at: str = "2025-01-05T10:30:00",
        kind: str = "PAYMENT", period_start: str = "2025-01-01") -> str:
    return f"{voucher},16109020000,RESIDENT_ID,{number},王芳,610902,RESIDENT,{period_start},2025-12-31,{amount},{paid_at},{kind}"


def test_each_bad_row_gets_its_line_and_code_and_the_good_rows_go(tmp_path):
    broker = InProcessBroker()
    data = csv_bytes(
        row("V1"),
        row("V2", amount="400.00"),
        row("V3", number=GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1")),
        row("V4", amount="-5"),
        "",
        row("V5", kind="GIFT"),
        row("V6", paid_at="yesterday"),
        row("V7", period_start="2025/01/01"),
    )
    report = feed_file("tax", data, "pay.csv", broker)
    assert [(b["line"], b["code"]) for b in report.bad] == [
        (3, "AMOUNT_NOT_INTEGER_FEN"), (4, "ID_CHECKSUM"), (5, "AMOUNT_NOT_POSITIVE"), (7, "PAYMENT_KIND_UNKNOWN"),
        (8, "FIELD_INVALID")]
    assert "400.00" in report.bad[0]["message"] and GOOD[:-1] not in json.dumps(report.bad)
    sent = [decode(m.value)[1] for m in broker.topic("tax.payments.v1").messages()]
    assert [r["voucher_no"] for r in sent] == ["V1", "V7"]
    # No offset given: China Standard Time.
    assert sent[0]["paid_at"] == datetime(2025, 1, 5, 2, 30, tzinfo=timezone.utc)
    assert sent[1]["period_start"] == date(2025, 1, 1) and sent[0]["channel"] == "" and sent[0]["subsidy_fen"] is None


@pytest.mark.parametrize("header, fragment", [
    ("voucher_no,tax_office,id_type,id_number,name", "missing region_code"),
    (HEADER + ",colour", "not in the contract colour"),
    (HEADER + ",name", "repeated name"),
])
def test_a_wrong_header_sends_nothing(header, fragment):
    broker = InProcessBroker()
    with pytest.raises(DomainError) as err:
        feed_file("tax", csv_bytes(row(), header=header), "pay.csv", broker)
    assert err.value.code == "FEED_COLUMNS" and fragment in err.value.message
    assert not broker.topics


def test_an_xlsx_export_with_excel_dates_and_numbers(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(HEADER.split(","))
    sheet.append(["V9", 16109020000, "RESIDENT_ID", GOOD, "王芳", 610902, "RESIDENT", datetime(2025, 1, 1),
                  datetime(2025, 12, 31), 40000, datetime(2025, 1, 5, 10, 30), "PAYMENT"])
    buffer = io.BytesIO()
    book.save(buffer)
    broker = InProcessBroker()
    report = feed_file("tax", buffer.getvalue(), "pay.xlsx", broker)
    assert (report.sent, report.bad) == (1, [])
    (message,) = broker.topic("tax.payments.v1").messages()
    record = decode(message.value)[1]
    assert record["tax_office"] == "16109020000" and record["period_end"] == date(2025, 12, 31)
    assert record["amount_fen"] == 40000


def test_the_command_checks_a_file_without_a_broker_and_exits_1_on_bad_rows(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LEDGER_PERSISTENCE", "memory")
    path = tmp_path / "pay.csv"
    path.write_bytes(csv_bytes(row("V1"), row("V2", amount="x")))
    assert main(["feed", "tax", str(path), "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "第       3 行  AMOUNT_NOT_INTEGER_FEN" in out and "共 2 行，将发送 1 行" in out and "试运行" in out
    assert main(["feed", "tax", str(path), "--dry-run", "--lang", "en"]) == 1
    out = capsys.readouterr().out
    assert "line       3  AMOUNT_NOT_INTEGER_FEN" in out and "2 rows, would send 1" in out
    # Without a broker the good rows go straight into the ledger through the tax consumer (issue 22).
    assert main(["feed", "tax", str(path)]) == 1
    out = capsys.readouterr().out
    assert "第       3 行  AMOUNT_NOT_INTEGER_FEN" in out and "记入 1 行，已记录过 0 行，拒收 0 行" in out
    assert main(["feed", "tax", str(tmp_path / "missing.csv")]) == 2
