"""Write the Avro compatibility fixtures (兼容性样本): bytes as each schema version wrote them.

    python -m events.make_fixtures      # writes what is missing, never overwrites

For every current schema, ``tests/fixtures/avro/v<N>/<FullName>.bin`` holds a fixed
sample record single-object encoded with version N of that record (N = 1 + the
number of its versions in ``schemas/archive/``), and ``<FullName>.json`` what it
decoded to. The tests decode every ``.bin`` with today's registry, so a change that
would leave old bytes unreadable fails them. That only works if the files stay as
first written: existing files are never replaced, and a schema changed in place
(without archiving the old version) is refused here.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

from events.codec import HEADER_SIZE, SchemaRegistry, default_registry, to_jsonable

FIXTURE_ROOT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "avro"

_PERSON = UUID("5f0c1a52-7d1e-5b8e-9c1a-3f6d2b8e4a10")
_PAID_AT = datetime(2024, 11, 3, 2, 15, 30, 123456, tzinfo=timezone.utc)


def _envelope(n: int, effective: date) -> dict[str, Any]:
    return {
        "event_id": UUID(f"00000000-0000-4000-8000-{n:012d}"),
        "person_id": _PERSON,
        "version": n,
        "recorded_at": datetime(2024, 11, 3, 8, 0, n, 250000, tzinfo=timezone.utc),
        "effective_date": effective,
        "provenance": {"source": "kafka", "topic": "tax.payments.v1", "partition": "1", "offset": str(4000 + n)},
        "prev_hash": f"{n - 1:x}".rjust(64, "a") if n > 1 else "0" * 64,
    }


_DIGEST = "3b1f" * 16

#: One fixed record per schema, by full name. Never change a sample whose files exist.
SAMPLES: dict[str, dict[str, Any]] = {
    "cn.medins.ledger.v1.Registered": {
        **_envelope(1, date(2024, 11, 3)),
        "id_type": "RESIDENT_ID", "id_number": "11010519491231002X", "name": "张三",
        "birth_date": date(1949, 12, 31), "sex": "F", "household_grid": None,
    },
    "cn.medins.ledger.v1.Enrolled": {
        **_envelope(2, date(2024, 11, 3)),
        "enrollment_id": "E000002", "scheme": "RESIDENT", "flexible": False, "region_code": "610902",
        "grid_code": "610902100201", "employer_id": None, "channel": "TAX_PAYMENT", "duplicate_of": None,
    },
    "cn.medins.ledger.v1.EnrollmentEnded": {
        **_envelope(9, date(2025, 6, 30)),
        "enrollment_id": "E000002", "reason": "TRANSFERRED_OUT",
    },
    "cn.medins.ledger.v1.ContributionAssessed": {
        **_envelope(3, date(2024, 11, 3)),
        "period": "2025", "scheme": "RESIDENT", "region_code": "610902", "standard_fen": 40000,
        "subsidy_fen": 15000, "due_fen": 25000, "due_date": date(2024, 12, 31),
        "subsidy_category": "MIN_LIVING", "base_fen": 0, "employer_fen": 0, "employee_fen": 0,
        "policy_version": "610902-2025-1",
    },
    "cn.medins.ledger.v1.SubsidyGranted": {
        **_envelope(4, date(2024, 1, 1)),
        "grant_id": "MZ-2024-0001", "category": "MIN_LIVING", "valid_from": date(2024, 1, 1),
        "valid_to": date(2025, 12, 31), "department": "汉滨区民政局", "document_no": "汉民发〔2024〕1号",
    },
    "cn.medins.ledger.v1.SubsidyRevoked": {
        **_envelope(5, date(2025, 7, 1)),
        "grant_id": "MZ-2024-0001", "revoked_from": date(2025, 7, 1), "department": "汉滨区民政局",
        "document_no": "汉民发〔2025〕7号",
    },
    "cn.medins.ledger.v1.ContributionPaid": {
        **_envelope(6, date(2024, 11, 3)),
        "voucher_no": "324610900000012345", "tax_office": "16109020000", "levy_item": "RESIDENT",
        "region_code": "610902", "amount_fen": 25000, "period_start": date(2025, 1, 1),
        "period_end": date(2025, 12, 31), "paid_at": _PAID_AT, "credited_on": date(2024, 11, 5),
        "channel": "APP", "content_digest": _DIGEST,
    },
    "cn.medins.ledger.v1.ContributionRefunded": {
        **_envelope(7, date(2024, 12, 1)),
        "refund_voucher_no": "324610900000019999", "tax_office": "16109020000",
        "original_voucher_no": "324610900000012345", "original_tax_office": "16109020000",
        "amount_fen": 5000, "refunded_at": datetime(2024, 12, 1, 1, 0, tzinfo=timezone.utc),
        "reason": "资助到账后退还", "content_digest": _DIGEST,
    },
    "cn.medins.ledger.v1.ContributionReversed": {
        **_envelope(8, date(2024, 12, 2)),
        "reversal_voucher_no": "324610900000020000", "tax_office": "16109020000",
        "original_voucher_no": "324610900000012345", "original_tax_office": "16109020000",
        "amount_fen": 20000, "reversed_at": datetime(2024, 12, 2, 3, 4, 5, tzinfo=timezone.utc),
        "reason": "重复缴费冲正", "content_digest": _DIGEST,
    },
    "cn.medins.ledger.v1.TransferredOut": {
        **_envelope(10, date(2025, 6, 30)),
        "transfer_id": "ZY-2025-000321", "enrollment_id": "E000002", "counterpart_region": "330502",
        "account_balance_fen": 123456, "contribution_months": 37,
    },
    "cn.medins.ledger.v1.TransferredIn": {
        **_envelope(11, date(2025, 7, 10)),
        "transfer_id": "ZY-2025-000322", "counterpart_region": "330502", "account_balance_fen": 654321,
        "contribution_months": 120,
    },
    "cn.medins.ledger.v1.TransferRequested": {
        **_envelope(18, date(2025, 6, 20)),
        "transfer_id": "ZY-2025-000401", "region_code": "610902", "counterpart_region": "610921",
    },
    "cn.medins.ledger.v1.TransferOutCompleted": {
        **_envelope(15, date(2025, 6, 30)),
        "transfer_id": "ZY-2025-000401", "enrollment_id": "E000002", "region_code": "610902",
        "counterpart_region": "610921", "scheme": "EMPLOYEE", "account_balance_fen": 50000, "contribution_months": 60,
    },
    "cn.medins.ledger.v1.TransferInCompleted": {
        **_envelope(16, date(2025, 7, 8)),
        "transfer_id": "ZY-2025-000401", "counterpart_region": "610902", "region_code": "610921",
        "account_balance_fen": 50000, "contribution_months": 60, "external": False,
        "source_document_no": "ZY-2025-000401",
    },
    "cn.medins.ledger.v1.TransferCancelled": {
        **_envelope(17, date(2025, 7, 9)),
        "transfer_id": "ZY-2025-000402", "rejected": True, "reason": "转入地查无此人参保申请",
    },
    "cn.medins.ledger.v1.AccountCredited": {
        **_envelope(12, date(2025, 8, 1)),
        "amount_fen": 18000, "reason": "CONTRIBUTION", "reference": "324610900000012345",
    },
    "cn.medins.ledger.v1.AccountDebited": {
        **_envelope(13, date(2025, 8, 15)),
        "amount_fen": 3200, "reason": "FAMILY_MUTUAL_AID", "reference": "JS-2025-88",
        "relative_person_id": "0b7e3a1c-6a55-5c2e-8f0d-4c2a9e71b3d5", "relative_relationship": "配偶",
    },
    "cn.medins.ledger.v1.ResidenceRecorded": {
        **_envelope(14, date(2025, 9, 1)),
        "record_id": "HJ-2025-000777", "grid_code": "610902100201", "status": "RESIDENT",
    },
    "cn.medins.ledger.v1.LateFeePaid": {
        **_envelope(19, date(2026, 3, 20)),
        "voucher_no": "324610900000031234", "tax_office": "16109020000", "region_code": "610902",
        "period": "2026-01", "amount_fen": 30000, "paid_at": datetime(2026, 3, 20, 2, 0, tzinfo=timezone.utc),
        "channel": "BANK", "content_digest": _DIGEST,
    },
    "cn.medins.ledger.v1.LateFeeWaived": {
        **_envelope(20, date(2026, 3, 21)),
        "waiver_id": "req-2026-0321-01", "region_code": "610902", "period": "2026-02",
        "reason": "不可抗力（疫情封控）致逾期，经批准减免", "approver": "li.approver", "content_digest": _DIGEST,
    },
    "cn.medins.ledger.v1.PersonMerged": {
        **_envelope(21, date(2026, 12, 6)),
        "change_id": "req-2026-1206-07", "merged_person_id": "0b7e3a1c-6a55-5c2e-8f0d-4c2a9e71b3d5",
        "merge_kind": "DUPLICATE", "reason": "同一人两次登记（窗口与税务 App 各一次）", "proposed_by": "wang.clerk",
        "approved_by": "li.approver",
        "merged_facts": '{"payments":{"16109020000|324610900000012399":{"amount_fen":40000}}}',
    },
    "cn.medins.ledger.v1.PersonMergedInto": {
        **_envelope(22, date(2026, 12, 6)),
        "change_id": "req-2026-1206-07", "survivor_person_id": "5f0c1a52-7d1e-5b8e-9c1a-3f6d2b8e4a10",
        "merge_kind": "DUPLICATE", "reason": "同一人两次登记（窗口与税务 App 各一次）", "proposed_by": "wang.clerk",
        "approved_by": "li.approver",
    },
    "cn.medins.tax.v1.TaxPayment": {
        "voucher_no": "324610900000012345", "tax_office": "16109020000", "id_type": "RESIDENT_ID",
        "id_number": "11010519491231002X", "name": "张三", "region_code": "610902", "levy_item": "RESIDENT",
        "period_start": date(2025, 1, 1), "period_end": date(2025, 12, 31), "assessed_base_fen": None,
        "amount_fen": 25000, "paid_at": _PAID_AT, "credited_on": date(2024, 11, 5), "channel": "APP",
        "subsidy_fen": 15000, "subsidy_type": "低保", "kind": "PAYMENT", "original_voucher_no": None,
        "original_tax_office": None, "reason": "",
    },
    "cn.medins.tax.v1.TaxStatementHeader": {
        "statement_id": "DZ-16109020000-20241103", "business_date": date(2024, 11, 3),
        "tax_office": "16109020000", "region_code": "610902", "line_count": 2, "total_amount_fen": 20000,
    },
    "cn.medins.tax.v1.TaxStatementLine": {
        "statement_id": "DZ-16109020000-20241103", "line_no": 2, "voucher_no": "324610900000019999",
        "id_type": "RESIDENT_ID", "id_number": "11010519491231002X", "levy_item": "RESIDENT",
        "period_start": date(2025, 1, 1), "period_end": date(2025, 12, 31), "amount_fen": 5000,
        "paid_at": datetime(2024, 11, 3, 6, 0, tzinfo=timezone.utc), "credited_on": None, "kind": "REFUND",
        "original_voucher_no": "324610900000012345", "original_tax_office": None,
    },
    "cn.medins.registry.v1.SubsidyStatus": {
        "record_id": "MZ-REC-000001", "id_type": "RESIDENT_ID", "id_number": "11010519491231002X",
        "name": "张三", "category": "MIN_LIVING", "action": "GRANT", "valid_from": date(2024, 1, 1),
        "valid_to": date(2025, 12, 31), "department": "汉滨区民政局", "document_no": "汉民发〔2024〕1号",
        "grant_id": None,
    },
    "cn.medins.registry.v1.ResidentRecord": {
        "record_id": "HJ-2025-000777", "id_type": "RESIDENT_ID", "id_number": "11010519491231002X",
        "name": "张三", "grid_code": "610902100201", "status": "RESIDENT", "effective_date": date(2025, 9, 1),
        "extra": {"household_no": "HH-0042"},
    },
}


def fixture_files(root: Path = FIXTURE_ROOT) -> list[Path]:
    """Every fixture ``.bin`` under ``root/v*/``."""
    return sorted(root.glob("v*/*.bin"))


def _fingerprint_of(path: Path) -> int | None:
    data = path.read_bytes()
    return int.from_bytes(data[2:HEADER_SIZE], "little") if len(data) >= HEADER_SIZE else None


def write_fixtures(root: Path = FIXTURE_ROOT, registry: SchemaRegistry | None = None) -> list[Path]:
    """Write a fixture for every current schema version that has none; returns the files written."""
    registry = registry or default_registry()
    missing_samples = sorted(set(registry.names()) - set(SAMPLES))
    if missing_samples:
        raise SystemExit(f"add a sample to SAMPLES in events/make_fixtures.py for: {', '.join(missing_samples)}")
    covered = {_fingerprint_of(path) for path in fixture_files(root)}
    written = []
    for full_name in registry.names():
        entry = registry.current(full_name)
        if entry.fingerprint in covered:
            continue
        version = len(registry.versions(full_name))
        bin_path = root / f"v{version}" / f"{full_name}.bin"
        json_path = bin_path.with_suffix(".json")
        if bin_path.exists() or json_path.exists():
            raise SystemExit(
                f"{bin_path} was written by another schema of {full_name}: the schema changed in place. "
                f"Restore it, copy it to schemas/archive/{full_name}.v{version}.avsc, then make the change."
            )
        data = registry.encode(full_name, SAMPLES[full_name])
        _, decoded = registry.decode(data)
        bin_path.parent.mkdir(parents=True, exist_ok=True)
        bin_path.write_bytes(data)
        json_path.write_text(
            json.dumps(to_jsonable(decoded), ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        written.append(bin_path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=FIXTURE_ROOT, help="fixture root (default: %(default)s)")
    args = parser.parse_args(argv)
    written = write_fixtures(args.root)
    for path in written:
        print(f"wrote {path}")
    if not written:
        print("every current schema version has its fixture; nothing written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
