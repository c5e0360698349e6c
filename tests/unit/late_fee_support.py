"""The late-fee case of issue #19 on the real Ledger: an employer owes 1,000,000 fen for January 2026,
due 2026-01-15, and pays it all on 2026-03-16 (60 days late: 30,000 fen at 0.05 % a day).

(A module of helpers, no tests; used by the unit and integration tests of the fee on every surface.)

The built-in tables make a month due on its last day; 汉滨区 here confirms a local deadline of the
15th (a local override in its 2026 table, version ``610902-2026-t15``), as the case needs. Eight
employees at a base of 13,888.89 yuan owe 9 % each (7 % employer + 2 % employee, withheld by the
employer): 97,222 + 27,778 = 125,000 fen, together 1,000,000 fen.
"""
from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

from ledger.policy.book import DEFAULT_TABLES_DIR
from tests.unit.projection_support import API, HANBIN, enroll, number, tax

EMPLOYER = "91610902MA0LATE1X"
GRID = "610902100001"
MONTH = "2026-01"
DUE = date(2026, 1, 15)
PAID_ON = date(2026, 3, 16)
BASE_FEN = 1_388_889
EACH_FEN = 125_000
EMPLOYEES = 8
OWED_FEN = EACH_FEN * EMPLOYEES  # 1,000,000
FEE_FEN = 30_000  # 1,000,000 x 0.05 % x 60 days
FEE_EACH_FEN = FEE_FEN // EMPLOYEES  # 3,750 (125,000 x 0.05 % x 60: exact, no rounding)
SEQS = range(101, 101 + EMPLOYEES)


def policy_dir(root: Path) -> Path:
    """A copy of the built-in tables where 汉滨区 2026 contributions are due on the 15th of the month."""
    out = root / "policy"
    shutil.copytree(DEFAULT_TABLES_DIR, out)
    table = out / HANBIN / "2026.toml"
    text = table.read_text(encoding="utf-8").replace('version = "610902-2026-d1"', 'version = "610902-2026-t15"')
    assert "610902-2026-t15" in text
    table.write_text(text + "\n[employee]\n# Local deadline for the late-fee tests: the 15th of the month.\ndue_day = 15\n",
                     encoding="utf-8")
    return out


def employer_owes_january(ledger) -> list[str]:
    """Eight employees of EMPLOYER, January 2026 assessed (125,000 fen each, due 2026-01-15); their ID numbers."""
    numbers = []
    for seq in SEQS:
        n = number(seq)
        pid = enroll(ledger, n, date(2025, 12, 1), grid=GRID, scheme="EMPLOYEE", employer_id=EMPLOYER)
        outcome = ledger.assess_employee_month(pid, MONTH, declared_base_fen=BASE_FEN, provenance=API,
                                               effective_date=date(2026, 1, 1))
        assert outcome.applied, outcome.message
        numbers.append(n)
    return numbers


def employer_pays_january(ledger, numbers: list[str], on: date = PAID_ON) -> None:
    """The employer pays every employee's January in full on ``on`` (the tax bureau's EMPLOYEE levy item)."""
    for i, n in enumerate(numbers):
        outcome = ledger.record_tax_record(tax(n, f"LF{i:03d}", amount_fen=EACH_FEN, paid_on=on, levy_item="EMPLOYEE",
                                               period=(date(2026, 1, 1), date(2026, 1, 31))), provenance=API)
        assert outcome.applied, outcome.message
