"""Events no command writes any more but stored histories still hold, for tests that need every event kind.

``TransferredOut`` / ``TransferredIn`` were the unmatched transfer halves of before issue 18;
they stay in the event store and must still replay, digest and publish.
"""
from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from ledger.domain.person import Person


def record_legacy_transfers(ledger: Any, person_id: UUID, on: date, *, tag: str = "") -> None:
    """Append one legacy ``TransferredIn`` and one legacy ``TransferredOut`` (of the person's first
    enrollment, so one in force stays in force) to a person with an enrollment."""
    person = ledger.repository.get(person_id)
    prov = {"source": "api", "user": "legacy-import", "request_id": f"legacy-{tag}"}
    person.trigger_event(Person.TransferredIn, transfer_id=f"LEGACY-IN{tag}", counterpart_region="330502",
                         account_balance_fen=700, contribution_months=2, effective_date=on, provenance=prov)
    enrollment = person.enrollments[0]
    person.trigger_event(Person.TransferredOut, transfer_id=f"LEGACY-OUT{tag}",
                         enrollment_id=enrollment.enrollment_id, counterpart_region="330502",
                         account_balance_fen=700, contribution_months=2, effective_date=max(on, enrollment.start_date),
                         provenance=prov)
    ledger.save(person)
