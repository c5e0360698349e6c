"""The fast event digest equals the chain's reference digest, for every kind of event, before and after storage."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from tests.fee_events import record_late_fee_facts
from tests.legacy_events import record_legacy_transfers
from entrypoints.audit.digest import FORMAT, Segment, fast_event_digest
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.domain.chain import event_digest
from ledger.domain.feed_rejection import FeedRejection
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import Provenance, ResidentRecord, StatusRecord, TaxPaymentRecord
from ledger.domain.history import PERSON_EVENT_TYPES
from ledger.maker_checker import MakerChecker

HANBIN = "610902"
API = Provenance(source="api", user="clerk01", request_id="req-1")
FEED = Provenance(source="kafka", topic="tax.payments.v1", partition=2, offset=9, record_key="x")


@pytest.fixture()
def ledger():
    system = bootstrap(Settings(persistence="memory", id_key=b"audit-digest-tests"))
    yield system.ledger
    system.close()


def every_kind_of_event(ledger):
    number = make_resident_id(HANBIN, date(1975, 2, 3), 11)

    def pay(voucher, amount, when, **over):
        fields = dict(voucher_no=voucher, tax_office="16109020000", id_type="RESIDENT_ID", id_number=number,
                      name="赵敏", region_code=HANBIN, levy_item="RESIDENT", period_start=date(2025, 1, 1),
                      period_end=date(2025, 12, 31), amount_fen=amount, paid_at=when, credited_on=date(2024, 11, 2),
                      channel="BANK")
        fields.update(over)
        return ledger.record_tax_record(TaxPaymentRecord(**fields), provenance=FEED)

    pid = ledger.enroll(id_type="RESIDENT_ID", id_number=number, name="赵敏", scheme="RESIDENT", region_code=HANBIN,
                        grid_code="610902100001", effective_date=date(2024, 9, 10), provenance=API).person_id
    ledger.assess_resident_year(pid, 2025, provenance=API, effective_date=date(2024, 9, 10))
    pay("V1", 40000, datetime(2024, 11, 1, 3, tzinfo=timezone.utc))
    pay("R1", 10000, datetime(2024, 12, 1, 3, tzinfo=timezone.utc), kind="REFUND", original_voucher_no="V1")
    pay("V2", 5000, datetime(2024, 12, 2, 3, tzinfo=timezone.utc))
    pay("C2", 5000, datetime(2024, 12, 3, 3, tzinfo=timezone.utc), kind="REVERSAL", original_voucher_no="V2")
    status = dict(id_type="RESIDENT_ID", id_number=number, name="赵敏", category="MIN_LIVING",
                  valid_from=date(2025, 1, 1), valid_to=date(2025, 12, 31), department="汉滨区民政局",
                  document_no="汉民发〔2025〕3号", grant_id="G1")
    ledger.apply_status(StatusRecord(record_id="S1", granted=True, **status), provenance=FEED)
    ledger.apply_status(StatusRecord(record_id="S2", granted=False, **{**status, "valid_from": date(2025, 7, 1)}),
                        provenance=FEED)
    ledger.credit_account(pid, amount_fen=300, reason="CONTRIBUTION", reference="c", effective_date=date(2025, 1, 2),
                          provenance=API)
    ledger.debit_account(pid, amount_fen=100, reason="FAMILY_MUTUAL_AID", reference="d",
                         effective_date=date(2025, 1, 3), provenance=API, relative_person_id="p2",
                         relative_relationship="CHILD")
    ledger.request_transfer(pid, transfer_id="T1", sending_region=HANBIN, receiving_region="610921",
                            effective_date=date(2025, 2, 20), provenance=API)
    ledger.transfer_out(pid, transfer_id="T1", counterpart_region="610921", effective_date=date(2025, 3, 1),
                        provenance=API)
    ledger.transfer_in(id_type="RESIDENT_ID", id_number=number, name="赵敏", transfer_id="T1",
                       counterpart_region=HANBIN, account_balance_fen=200, contribution_months=0, scheme="RESIDENT",
                       region_code="610921", effective_date=date(2025, 3, 9), provenance=API)
    ledger.transfer_out(pid, transfer_id="T2", counterpart_region="610922", effective_date=date(2026, 1, 5),
                        provenance=API)
    ledger.cancel_transfer(pid, transfer_id="T2", reason="撤回", effective_date=date(2026, 1, 6), provenance=API)
    record_legacy_transfers(ledger, pid, date(2026, 1, 7))
    record_late_fee_facts(ledger, pid, date(2026, 1, 8), region=HANBIN)
    ledger.apply_residence(ResidentRecord(record_id="H1", id_type="RESIDENT_ID", id_number=number, name="赵敏",
                                          grid_code=None, status="DECEASED", effective_date=date(2025, 8, 1)),
                           provenance=FEED)
    # A merge (参保人合并) on both sides, through maker-checker: this person absorbs a second record, and
    # (last of all) is merged into a third; the pending changes are stored events too.
    checker = MakerChecker(ledger)
    for seq, survivor_first in ((12, True), (13, False)):
        other = ledger.enroll(id_type="RESIDENT_ID", id_number=make_resident_id(HANBIN, date(1975, 2, 3), seq),
                              name="赵敏", scheme="RESIDENT", region_code=HANBIN, grid_code="610902100001",
                              effective_date=date(2024, 9, 10), provenance=API).person_id
        survivor, merged = (pid, other) if survivor_first else (other, pid)
        checker.propose_merge(survivor_id=survivor, merged_id=merged, merge_kind="DUPLICATE", reason="重复登记",
                              region_code=HANBIN, provenance=Provenance("api", user="wang", request_id=f"M{seq}"))
        checker.approve(f"M{seq}", approver="li", provenance=Provenance("api", user="li", request_id=f"A{seq}"))
    rejection = FeedRejection.reject(topic="tax.payments.v1", partition=0, offset=3, key=None, code="X", message="m",
                                     raw=b"\x00\xff", received_at=datetime(2025, 1, 1, tzinfo=timezone.utc))
    ledger.save(rejection)
    return pid


def test_fast_digest_equals_the_reference_for_every_event_kind_stored_or_not(ledger):
    pid = every_kind_of_event(ledger)
    person_events = list(ledger.events.get(pid))
    assert {type(e).__name__ for e in person_events} == PERSON_EVENT_TYPES - {"Created"}  # (the library alias)
    stored = ledger.recorder.select_notifications(start=1, limit=1000)
    decoded = [ledger.mapper.to_domain_event(n) for n in stored]
    assert len(decoded) > len(person_events)  # source records and the rejection too
    for event in person_events + decoded:
        assert fast_event_digest(event) == event_digest(event), type(event).__qualname__
    # and each person event's prev_hash is the digest of the one before it
    for before, after in zip(person_events, person_events[1:]):
        assert after.prev_hash == fast_event_digest(before)


def test_a_segment_record_reads_back():
    s = Segment(seq=4, day=date(2025, 3, 1), first_notification_id=10, last_notification_id=20, event_count=9,
                prev_digest="a" * 64, digest="b" * 64, computed_at=datetime(2025, 3, 2, tzinfo=timezone.utc),
                store="x")
    record = s.record()
    assert record["format"] == FORMAT and record["algorithm"] == "sha256"
    back = Segment.from_record(record)
    assert back.record() == record and s.key() == b"2025-03-01#4"
    with pytest.raises(ValueError):
        Segment.from_record({**record, "format": "something-else"})
