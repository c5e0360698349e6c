"""Hostile input against the auditor's printable report: markup in a name from a feed."""
from __future__ import annotations

from datetime import date

from entrypoints.audit import history_report, render_html
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import Provenance, StatusRecord


def test_markup_in_a_name_or_document_number_is_escaped_in_the_report(hostile):
    system = bootstrap(Settings(persistence="memory", id_key=b"hostile-audit-report"))
    try:
        number = make_resident_id("610902", date(1988, 1, 2), 5)
        name = "<script>alert('x')</script>"
        system.ledger.enroll(id_type="RESIDENT_ID", id_number=number, name=name, scheme="RESIDENT",
                             region_code="610902", grid_code="610902100001", effective_date=date(2024, 9, 10),
                             provenance=Provenance(source="api", user="<b>clerk</b>", request_id="r\"><img src=x>"))
        system.ledger.apply_status(StatusRecord(
            record_id="MZ-X", id_type="RESIDENT_ID", id_number=number, name=name, category="ORPHAN", granted=True,
            valid_from=date(2024, 1, 1), valid_to=None, department="<i>民政</i>", document_no="<svg onload=1>"),
            provenance=Provenance(source="kafka", topic="registry.status.v1", partition=0, offset=1))
        report = history_report(system.ledger, "RESIDENT_ID", number, printable=True)
        for lang in ("zh", "en"):
            html = render_html(report, lang, reveal=True)
            injected = any(tag in html for tag in ("<script>", "<img", "<svg", "<b>clerk", "<i>民政"))
            hostile.attempt(f"markup in name, clerk, document number: audit report ({lang})", status=None,
                            leaked=injected)
            assert not injected
            assert "&lt;script&gt;" in html and "&lt;svg onload=1&gt;" in html and number not in html
    finally:
        system.close()
