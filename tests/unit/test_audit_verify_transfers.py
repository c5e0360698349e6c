"""``ledger verify`` checks transfers too: each completed transfer's halves agree and no balance or
month was created (issue 18, finding 1: verify said CLEAN while a transfer-in had created money).

The histories of findings 1 and 2 are stored as the ledger wrote them before transfers were
matched (the old ``TransferredOut`` / ``TransferredIn`` events), on a real SQL store.
"""
from __future__ import annotations

from datetime import date

import pytest

from entrypoints.audit import verify_all, verify_person
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.identity import make_resident_id
from ledger.domain.person import Person
from ledger.inbound_records import Provenance

HANBIN, HANYIN = "610902", "610921"
CLERK = Provenance(source="api", user="clerk01", request_id="req-1")


@pytest.fixture()
def ledger(tmp_path):
    s = bootstrap(Settings(persistence="sqlite", sqlite_path=str(tmp_path / "ledger.sqlite"), id_key=b"verify-tr"))
    yield s.ledger
    s.close()


def employee(ledger, seq: int, balance_fen: int):
    number = make_resident_id(HANBIN, date(1966, 7, 7), seq)
    pid = ledger.enroll(id_type="RESIDENT_ID", id_number=number, name="李四", scheme="EMPLOYEE", region_code=HANBIN,
                        flexible=True, effective_date=date(2024, 1, 1), provenance=CLERK).person_id
    ledger.credit_account(pid, amount_fen=balance_fen, reason="CONTRIBUTION", reference="c",
                          effective_date=date(2024, 2, 1), provenance=CLERK)
    return number, pid


def stored_as_before(ledger, pid, transfer_id, out_figures, in_figures):
    """A transfer as the unmatched commands stored it: an old out half, then an old in half."""
    person = ledger.repository.get(pid)
    prov = CLERK.as_dict()
    person.trigger_event(Person.TransferredOut, transfer_id=transfer_id,
                         enrollment_id=person.active_enrollment.enrollment_id, counterpart_region=HANYIN,
                         account_balance_fen=out_figures[0], contribution_months=out_figures[1],
                         effective_date=date(2025, 3, 1), provenance=prov)
    person.trigger_event(Person.TransferredIn, transfer_id=transfer_id, counterpart_region=HANBIN,
                         account_balance_fen=in_figures[0], contribution_months=in_figures[1],
                         effective_date=date(2025, 3, 8), provenance=prov)
    ledger.save(person)


def codes(verification):
    return sorted(f.code for f in verification.findings)


def test_finding_1_an_old_in_half_that_created_money_is_found(ledger):
    _, pid = employee(ledger, 1, 50_000)
    stored_as_before(ledger, pid, "ZY-OLD-1", (50_000, 0), (99_999, 99))
    result = verify_person(ledger, pid)
    assert codes(result) == ["TRANSFER_HALVES_DISAGREE", "TRANSFER_MONTHS_COPIED"]
    finding = result.findings[0]
    assert finding.kind == "discrepancy" and finding.version == 5 and "99999" in finding.message
    assert finding.masked_id and "*" in finding.masked_id


def test_finding_2_an_old_pair_that_counted_sixty_months_twice_is_found(ledger):
    _, pid = employee(ledger, 2, 1_000)
    stored_as_before(ledger, pid, "ZY-OLD-2", (1_000, 60), (1_000, 60))
    assert codes(verify_person(ledger, pid)) == ["TRANSFER_MONTHS_COPIED"]


def test_matched_transfers_and_cancellations_verify_clean(ledger):
    number, pid = employee(ledger, 3, 7_000)
    ledger.transfer_out(pid, transfer_id="X", counterpart_region=HANYIN, effective_date=date(2025, 3, 1),
                        provenance=CLERK)
    ledger.cancel_transfer(pid, transfer_id="X", reason="撤回", effective_date=date(2025, 3, 2), provenance=CLERK)
    ledger.transfer_out(pid, transfer_id="T", counterpart_region=HANYIN, effective_date=date(2025, 3, 3),
                        provenance=CLERK)
    ledger.transfer_in(id_type="RESIDENT_ID", id_number=number, name="李四", transfer_id="T", counterpart_region=HANBIN,
                       scheme="EMPLOYEE", flexible=True, region_code=HANYIN, effective_date=date(2025, 3, 5),
                       provenance=CLERK)
    ledger.transfer_in(id_type="RESIDENT_ID", id_number=make_resident_id(HANBIN, date(1970, 1, 1), 4), name="赵六",
                       transfer_id="ZJ-1", counterpart_region="330502", account_balance_fen=300,
                       contribution_months=12, scheme="RESIDENT", region_code=HANYIN,
                       effective_date=date(2025, 3, 5), provenance=CLERK)
    result = verify_all(ledger)
    assert result.clean, result.findings


def test_an_in_half_forged_past_the_commands_is_found(ledger):
    """Events written around the commands (a buggy importer, a hand-made repair) are still checked."""
    _, pid = employee(ledger, 5, 2_000)
    ledger.transfer_out(pid, transfer_id="T", counterpart_region=HANYIN, effective_date=date(2025, 3, 3),
                        provenance=CLERK)
    person = ledger.repository.get(pid)
    person.trigger_event(Person.TransferInCompleted, transfer_id="T", counterpart_region=HANBIN, region_code=HANYIN,
                         account_balance_fen=2_500, contribution_months=0, external=False, source_document_no="T",
                         effective_date=date(2025, 3, 4), provenance=CLERK.as_dict())
    person.trigger_event(Person.TransferInCompleted, transfer_id="U", counterpart_region=HANBIN, region_code=HANYIN,
                         account_balance_fen=1, contribution_months=0, external=False, source_document_no="U",
                         effective_date=date(2025, 3, 4), provenance=CLERK.as_dict())
    ledger.save(person)
    assert codes(verify_person(ledger, pid)) == ["TRANSFER_HALVES_DISAGREE", "TRANSFER_IN_WITHOUT_OUT"]
