"""Issue 18 on the real PostgreSQL: transfers as one matched pair, the region's transfer list (read
from the notification log by event topic) and ``verify``'s transfer check, in a schema of its own."""
from __future__ import annotations

from datetime import date

import pytest

from entrypoints.audit import verify_all
from ledger.domain.errors import DomainError
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import Provenance

pytestmark = pytest.mark.integration

HANBIN, HANYIN = "610902", "610921"
CLERK = Provenance(source="api", user="clerk01", request_id="req-1")


@pytest.fixture()
def ledger(fresh_pg_ledger):
    return fresh_pg_ledger


def employee(ledger, seq, balance_fen):
    number = make_resident_id(HANBIN, date(1966, 7, 7), seq)
    pid = ledger.enroll(id_type="RESIDENT_ID", id_number=number, name="李四", scheme="EMPLOYEE", region_code=HANBIN,
                        flexible=True, effective_date=date(2024, 1, 1), provenance=CLERK).person_id
    ledger.credit_account(pid, amount_fen=balance_fen, reason="CONTRIBUTION", reference="c",
                          effective_date=date(2024, 2, 1), provenance=CLERK)
    return number, pid


def receive(ledger, number, transfer_id, **figures):
    return ledger.transfer_in(id_type="RESIDENT_ID", id_number=number, name="李四", transfer_id=transfer_id,
                              counterpart_region=HANBIN, scheme="EMPLOYEE", flexible=True, region_code=HANYIN,
                              effective_date=date(2025, 3, 7), provenance=CLERK, **figures)


def test_findings_1_and_3_the_inbox_and_verify_on_postgres(ledger, hostile):
    number, pid = employee(ledger, 1, 50_000)
    before = ledger.recorder.max_notification_id()
    with pytest.raises(DomainError) as early:
        receive(ledger, number, "TR-K", account_balance_fen=50_000, contribution_months=0)
    hostile.attempt("transfer-in before its transfer-out (postgres)", status=422,
                    written=ledger.recorder.max_notification_id() != before)
    assert early.value.code == "TRANSFER_OUT_MISSING"

    ledger.transfer_out(pid, transfer_id="TR-K", counterpart_region=HANYIN, effective_date=date(2025, 3, 3),
                        provenance=CLERK)
    with pytest.raises(DomainError) as more:
        receive(ledger, number, "TR-K", account_balance_fen=99_999, contribution_months=99)
    hostile.attempt("transfer-in retyping more than was sent (postgres)", status=422,
                    written=ledger.recorder.max_notification_id() != before + 1)
    assert more.value.code == "TRANSFER_MISMATCH"

    (row,) = ledger.transfers_of_region(HANYIN, today=date(2025, 4, 9), overdue_only=True)
    assert (row["direction"], row["transfer_id"], row["account_balance_fen"], row["overdue"]) == (
        "INCOMING", "TR-K", 50_000, True)
    assert [r["direction"] for r in ledger.transfers_of_region(HANBIN, today=date(2025, 3, 4))] == ["OUTGOING"]

    receive(ledger, number, "TR-K")
    person = ledger.get_person(pid)
    assert (person.account_balance_fen, person.contribution_months) == (50_000, 0)
    assert not ledger.transfers_of_region(HANYIN, today=date(2025, 4, 9), overdue_only=True)
    result = verify_all(ledger)
    assert result.clean, result.findings
