"""Late-fee facts (滞纳金缴纳/减免) appended to any person, for the tests that need one event of every type.

Shape only: their commands need an assessed employer month (tests/unit/test_domain_fee_facts.py); these
tests check digests, chains, codecs and the audit, which read every event the same way.
"""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Any
from uuid import UUID

from ledger.domain.person import Person


def record_late_fee_facts(ledger: Any, person_id: UUID, on: date, *, region: str = "610902", tag: str = "") -> None:
    person = ledger.repository.get(person_id)
    prov = {"source": "api", "user": "clerk.fees", "request_id": f"fees-{tag}"}
    person.trigger_event(Person.LateFeePaid, voucher_no=f"LF-{tag}", tax_office="16109020000", region_code=region,
                         period=f"{on.year}-01", amount_fen=100, paid_at=datetime.combine(on, time(3), timezone.utc),
                         channel="", content_digest="ab" * 32, effective_date=on, provenance=prov)
    person.trigger_event(Person.LateFeeWaived, waiver_id=f"W-{tag}", region_code=region, period=f"{on.year}-02",
                         reason="减免 ✓", approver="li", content_digest="cd" * 32, effective_date=on, provenance=prov)
    ledger.save(person)
