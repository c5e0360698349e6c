"""Clerk-entered subsidised statuses (资助参保身份认定录入): ``POST /statuses``, ``POST .../statuses/revoke``
and ``ledger clerk grant-status|revoke-status`` run the civil-affairs feed's own command
(``Ledger.apply_status``): the same events and re-assessment, keyed by the certificate number,
with the clerk and the request in the provenance instead of a feed position."""
from __future__ import annotations

import json
from datetime import date

import pytest

from ledger.inbound_records import Provenance, StatusRecord
from tests.unit.cli_support import embedded, refused, run, run_as
from tests.unit.http_support import (  # noqa: F401 - fixtures
    CLERK,
    CLERK_HANYIN,
    HANBIN,
    auth,
    client,
    enrollment,
    number,
    system,
)


def grant(id_number: str, **over):
    body = {"id_type": "RESIDENT_ID", "id_number": id_number, "name": "王芳", "region_code": HANBIN,
            "category": "EXTREME_POVERTY", "valid_from": "2026-01-01", "valid_to": "2026-12-31",
            "department": "汉滨区民政局", "document_no": "TK-2026-0001"}
    body.update(over)
    return body


def enrolled_and_assessed(client, id_number: str, year: int = 2026) -> None:
    assert client.post("/enrollments", json=enrollment(id_number), headers=CLERK).status_code == 201
    r = client.post(f"/persons/RESIDENT_ID/{id_number}/assessments/resident-year", json={"year": year},
                    headers=CLERK)
    assert r.status_code == 201, r.text


def test_a_clerk_grant_makes_the_years_due_zero_through_the_feeds_command(client, system):
    who = number(1)
    enrolled_and_assessed(client, who)
    before = system.ledger.find_person("RESIDENT_ID", who).assessments["2026"]
    assert before.due_fen > 0
    r = client.post("/statuses", json=grant(who), headers=CLERK)
    assert r.status_code == 201, r.text
    person = system.ledger.find_person("RESIDENT_ID", who)
    after = person.assessments["2026"]
    assert after.due_fen == 0 and after.subsidy_category == "EXTREME_POVERTY"
    status = person.subsidies["TK-2026-0001"]
    assert status.department == "汉滨区民政局" and status.document_no == "TK-2026-0001"
    granted = [e for e in system.ledger.events.get(person.id) if type(e).__name__ == "SubsidyGranted"]
    assert len(granted) == 1
    prov = granted[0].provenance
    assert prov["source"] == "api" and prov["user"] == "clerk.hanbin" and "topic" not in prov


def test_the_same_certificate_again_is_a_resend_and_other_content_a_conflict(client, system):
    who = number(2)
    enrolled_and_assessed(client, who)
    assert client.post("/statuses", json=grant(who), headers=CLERK).status_code == 201
    again = client.post("/statuses", json=grant(who), headers=CLERK)
    assert again.status_code == 200 and again.json()["applied"] is False
    other = client.post("/statuses", json=grant(who, valid_to="2026-06-30"), headers=CLERK)
    assert other.status_code == 409 and other.json()["code"] == "RECORD_CONFLICT"
    person = system.ledger.find_person("RESIDENT_ID", who)
    assert person.subsidies["TK-2026-0001"].valid_to == date(2026, 12, 31)


def test_the_feed_and_the_clerk_share_the_certificate_key(client, system):
    """The department's feed later brings the certificate a clerk entered: nothing is granted twice."""
    who = number(3)
    enrolled_and_assessed(client, who)
    assert client.post("/statuses", json=grant(who), headers=CLERK).status_code == 201
    record = StatusRecord(record_id="MZ-777", id_type="RESIDENT_ID", id_number=who, name="王芳",
                          category="EXTREME_POVERTY", granted=True, valid_from=date(2026, 1, 1),
                          valid_to=date(2026, 12, 31), department="汉滨区民政局", document_no="TK-2026-0001")
    outcome = system.ledger.apply_status(record, provenance=Provenance(source="kafka", topic="registry.status.v1"))
    assert outcome.applied is False
    person = system.ledger.find_person("RESIDENT_ID", who)
    assert len([e for e in system.ledger.events.get(person.id) if type(e).__name__ == "SubsidyGranted"]) == 1


def test_most_generous_status_applies_not_the_sum(client, system):
    who = number(4)
    enrolled_and_assessed(client, who)
    assert client.post("/statuses", json=grant(who, category="MIN_LIVING", document_no="DB-1"),
                       headers=CLERK).status_code == 201
    fixed = system.ledger.find_person("RESIDENT_ID", who).assessments["2026"]
    assert 0 < fixed.due_fen < fixed.standard_fen
    assert client.post("/statuses", json=grant(who), headers=CLERK).status_code == 201
    full = system.ledger.find_person("RESIDENT_ID", who).assessments["2026"]
    assert full.due_fen == 0 and full.subsidy_fen == full.standard_fen


def test_revoking_from_a_date_reassesses_and_is_idempotent(client, system):
    who = number(5)
    enrolled_and_assessed(client, who)
    assert client.post("/statuses", json=grant(who, valid_from="2025-06-01", valid_to=None),
                       headers=CLERK).status_code == 201
    body = {"grant_id": "TK-2026-0001", "revoked_from": "2025-07-01", "department": "汉滨区民政局",
            "document_no": "QX-2025-9"}
    r = client.post(f"/persons/RESIDENT_ID/{who}/statuses/revoke", json=body, headers=CLERK)
    assert r.status_code == 201, r.text
    person = system.ledger.find_person("RESIDENT_ID", who)
    assert person.subsidies["TK-2026-0001"].revoked_from == date(2025, 7, 1)
    assert person.assessments["2026"].due_fen > 0  # the status no longer holds in 2026
    again = client.post(f"/persons/RESIDENT_ID/{who}/statuses/revoke", json=body, headers=CLERK)
    assert again.status_code == 200 and again.json()["applied"] is False
    unknown = client.post(f"/persons/RESIDENT_ID/{who}/statuses/revoke", json={**body, "grant_id": "NOPE"},
                          headers=CLERK)
    assert unknown.status_code == 422 and unknown.json()["code"] == "GRANT_UNKNOWN"


def test_an_unknown_person_is_registered_by_the_grant_in_the_clerks_region(client, system):
    who = number(6)
    r = client.post("/statuses", json=grant(who), headers=CLERK)
    assert r.status_code == 201
    assert system.ledger.find_person("RESIDENT_ID", who).subsidies


def test_a_person_of_another_region_is_refused_and_the_region_must_be_theirs(client, system):
    who = number(7)
    enrolled_and_assessed(client, who)
    r = client.post("/statuses", json=grant(who, region_code="610921"), headers=CLERK_HANYIN)
    assert r.status_code == 403 and r.json()["code"] == "SCOPE_FORBIDDEN"
    r = client.post("/statuses", json=grant(who, region_code="610921"), headers=CLERK)
    assert r.status_code == 422 and r.json()["code"] == "STATUS_REGION_MISMATCH"
    assert not system.ledger.find_person("RESIDENT_ID", who).subsidies


# ---------------------------------------------------------------------------- the command line
@pytest.fixture()
def home(tmp_path, monkeypatch):
    embedded(monkeypatch, tmp_path, "clerk-status-test")
    return tmp_path


GRANT = ("clerk", "grant-status", "--id-number", number(8), "--name", "李四", "--region-code", HANBIN,
         "--category", "ORPHAN", "--valid-from", "2026-01-01", "--department", "汉滨区民政局",
         "--document-no", "GE-2026-3")


def test_the_cli_grants_and_revokes_as_the_token_clerk(home, capsys, monkeypatch):
    run_as(monkeypatch, home, "clerk", [HANBIN], user="clerk09")
    status, out, _ = run(capsys, *GRANT, "--json")
    assert status == 0 and json.loads(out)["applied"] is True
    status, out, _ = run(capsys, *GRANT, "--json")
    assert status == 0 and json.loads(out)["applied"] is False
    revoke = ("clerk", "revoke-status", "--id-number", number(8), "--grant-id", "GE-2026-3",
              "--revoked-from", "2026-03-01", "--department", "汉滨区民政局", "--document-no", "QX-1")
    # Registered by the status alone (no enrollment, no residence): the clerk names their region.
    refused(capsys, "SCOPE_FORBIDDEN", *revoke)
    status, out, _ = run(capsys, *revoke, "--region-code", HANBIN, "--json")
    assert status == 0 and json.loads(out)["applied"] is True
    from entrypoints.wiring import bootstrap
    from infra.settings import load_settings

    system = bootstrap(load_settings())
    try:
        person = system.ledger.find_person("RESIDENT_ID", number(8))
        events = [e for e in system.ledger.events.get(person.id) if "Subsidy" in type(e).__name__]
    finally:
        system.close()
    assert [type(e).__name__ for e in events] == ["SubsidyGranted", "SubsidyRevoked"]
    assert {e.provenance["source"] for e in events} == {"cli"} and {e.provenance["user"] for e in events} == {"clerk09"}


def test_the_cli_refuses_with_the_feeds_codes(home, capsys, monkeypatch):
    run_as(monkeypatch, home, "clerk", [HANBIN])
    bad = list(GRANT)
    bad[bad.index("ORPHAN")] = "RICH"
    refused(capsys, "SUBSIDY_CATEGORY_UNKNOWN", *bad)
    early = list(GRANT)
    early[early.index("2026-01-01")] = "1850-01-01"
    refused(capsys, "DATE_OUT_OF_RANGE", *early)
    refused(capsys, "DATE_INVALID", *GRANT, "--valid-to", "2025-12-31")  # before valid from


def test_a_grant_after_full_payment_shows_the_payment_owed_back_and_no_waiting(client, system):
    """The issue's case: 40,000 fen paid on 2025-10-01, then EXTREME_POVERTY from 2025-12-01: 40,000 owed back."""
    from tests.unit.http_support import TAX

    who = number(9)
    enrolled_and_assessed(client, who)
    payment = {"voucher_no": "CS-V1", "tax_office": "16109020000", "id_number": who, "name": "王芳",
               "region_code": HANBIN, "levy_item": "RESIDENT", "period_start": "2026-01-01",
               "period_end": "2026-12-31", "amount_fen": 40000, "paid_at": "2025-10-01T10:00:00+08:00"}
    assert client.post("/tax/payments", json=payment, headers=TAX).status_code == 201
    assert client.post("/statuses", json=grant(who, valid_from="2025-12-01", valid_to=None),
                       headers=CLERK).status_code == 201
    r = client.get(f"/persons/RESIDENT_ID/{who}/entitlement", params={"year": 2026, "on": "2026-01-02"},
                   headers=CLERK)
    assert r.status_code == 200, r.text
    answer = r.json()
    year = answer.get("resident_year") or answer
    assert year["due_fen"] == 0 and year["overpayment_fen"] == 40000, year
    assert answer["covered"] is True
