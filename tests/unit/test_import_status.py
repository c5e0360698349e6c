"""The registration spreadsheet's status columns (资助身份, 认定起始日期, 认定终止日期, 认定部门, 认定文书编号): a row
enrolls the person and grants the status through the feed's own command, keyed by the certificate."""
from __future__ import annotations

import csv
import io
from datetime import date

from consumers.spreadsheets import import_file
from ledger.inbound_records import Provenance, StatusRecord
from tests.unit.http_support import HANBIN, number, system  # noqa: F401 - fixture

HEADER = ["证件号码", "姓名", "险种", "参保地", "参保日期", "资助身份", "认定起始日期", "认定终止日期", "认定部门",
          "认定文书编号"]


def sheet(*rows: list) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def row(seq: int, category: str = "特困人员", valid_from: str = "2026-01-01", valid_to: str = "2026-12-31",
        department: str = "汉滨区民政局", document: str = "TK-1") -> list:
    return [number(seq), "王芳", "城乡居民", HANBIN, "2025-09-10", category, valid_from, valid_to, department, document]


def test_a_row_enrolls_and_grants_the_status_once(system):
    data = sheet(row(1), [number(2), "李四", "城乡居民", HANBIN, "2025-09-10", "", "", "", "", ""])
    report = import_file(system.ledger, data, "a.csv", user="clerk.hanbin")
    assert report["imported"] == 2 and report["errors"] == 0, report["lines"]
    person = system.ledger.find_person("RESIDENT_ID", number(1))
    grant = person.subsidies["TK-1"]
    assert grant.category == "EXTREME_POVERTY" and grant.valid_to == date(2026, 12, 31)
    assert not system.ledger.find_person("RESIDENT_ID", number(2)).subsidies
    event = next(e for e in system.ledger.events.get(person.id) if type(e).__name__ == "SubsidyGranted")
    assert event.provenance["source"] == "batch" and event.provenance["user"] == "clerk.hanbin"
    again = import_file(system.ledger, data, "a.csv", user="clerk.hanbin")
    assert again["already_imported"] == 2
    # The same certificate in another file is a resend, not a second status.
    other = import_file(system.ledger, sheet(row(1)) + b"\n", "b.csv", user="clerk.hanbin")
    assert other["errors"] == 0
    assert sum(1 for e in system.ledger.events.get(person.id) if type(e).__name__ == "SubsidyGranted") == 1
    # ... and the department's feed bringing it later records nothing more.
    feed = StatusRecord(record_id="MZ-1", id_type="RESIDENT_ID", id_number=number(1), name="王芳",
                        category="EXTREME_POVERTY", granted=True, valid_from=date(2026, 1, 1),
                        valid_to=date(2026, 12, 31), department="汉滨区民政局", document_no="TK-1")
    assert system.ledger.apply_status(feed, provenance=Provenance(source="kafka")).applied is False


def test_bad_status_cells_refuse_the_row_before_anything_is_written(system):
    report = import_file(system.ledger, sheet(
        row(3, category="富人"), row(4, valid_from="1850-01-01"), row(5, department=""),
        row(6, valid_to="2025-01-01"), [number(7), "赵六", "城乡居民", HANBIN, "2025-09-10", "", "2026-01-01", "", "",
                                        ""]), "c.csv", user="u")
    assert [(r["line"], r["code"]) for r in report["lines"]] == [
        (2, "SUBSIDY_CATEGORY_UNKNOWN"), (3, "DATE_OUT_OF_RANGE"), (4, "STATUS_FIELDS_INCOMPLETE"),
        (5, "DATE_INVALID"), (6, "STATUS_FIELDS_INCOMPLETE")]
    assert report["imported"] == 0
    assert system.ledger.recorder.max_notification_id() in (None, 0)


def test_a_conflicting_certificate_says_the_enrollment_was_done(system):
    assert import_file(system.ledger, sheet(row(8)), "d.csv", user="u")["imported"] == 1
    report = import_file(system.ledger, sheet(row(8, valid_to="2026-06-30")), "e.csv", user="u")
    line = report["lines"][0]
    assert line["status"] == "error" and line["code"] == "RECORD_CONFLICT"
    assert "资助身份未认定" in line["message"]
    grant = system.ledger.find_person("RESIDENT_ID", number(8)).subsidies["TK-1"]
    assert grant.valid_to == date(2026, 12, 31)
