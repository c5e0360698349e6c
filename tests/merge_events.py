"""A merge of two person records (参保人合并) through maker-checker, for the tests that need one event of every type.

Registers two persons of ``region`` and merges the second into the first: a clerk proposes, another
approves; the pending change's own events are stored too.
"""
from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from ledger.domain.identity import make_resident_id
from ledger.inbound_records import Provenance
from ledger.maker_checker import MakerChecker


def record_merge(ledger: Any, seq: int, *, region: str = "610902") -> tuple[UUID, UUID]:
    """(kept, merged away): two fresh records of one person, merged."""
    ids = []
    for n in (seq, seq + 1):
        ids.append(ledger.enroll(id_type="RESIDENT_ID", id_number=make_resident_id(region, date(1990, 6, 1), n),
                                 name="合并 ✓", scheme="RESIDENT", region_code=region, grid_code=None,
                                 effective_date=date(2025, 1, 2), provenance=Provenance("api", user="clerk.a")).person_id)
    checker = MakerChecker(ledger)
    checker.propose_merge(survivor_id=ids[0], merged_id=ids[1], merge_kind="DUPLICATE", reason="重复登记 ✓",
                          region_code=region, provenance=Provenance("api", user="wang", request_id=f"merge-{seq}"))
    checker.approve(f"merge-{seq}", approver="li", provenance=Provenance("api", user="li", request_id=f"ok-{seq}"))
    return ids[0], ids[1]
