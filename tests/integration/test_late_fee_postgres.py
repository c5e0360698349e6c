"""Issue #19's late fee through the PostgreSQL view store: the arrears query still selects an employer
month settled in full after its due date (its fee is owed), and answers what the pure list answers.

The case of tests/unit/late_fee_support.py (1,000,000 fen due 2026-01-15, paid 2026-03-16), next to a
month paid on its due date and one never paid, projected from the ledger's log into a schema of the
test's own.
"""
from __future__ import annotations

from datetime import date

import pytest

from entrypoints.wiring import bootstrap
from infra.settings import Settings
from ledger.policy import PolicyBook
from projections.arrears import arrears_list
from projections.projection_runner import ProjectionRunner
from projections.queries import ViewQueries
from projections.sources import NotificationLogSource
from projections.store import PostgresViewStore
from tests.integration.test_projections_kafka_postgres import pg_settings, schema  # noqa: F401  (fixture)
from tests.unit import late_fee_support as case
from tests.unit.projection_support import API, arrears_view, enroll, number, tax

pytestmark = pytest.mark.integration


def test_postgres_selects_the_month_paid_late_for_its_fee(services, schema, tmp_path):
    system = bootstrap(Settings(persistence="memory", id_key=b"late-fee-pg"),
                       policies=PolicyBook.load(case.policy_dir(tmp_path)))
    store = PostgresViewStore(pg_settings(services, schema))
    try:
        ledger = system.ledger
        numbers = case.employer_owes_january(ledger)
        case.employer_pays_january(ledger, numbers)
        for seq, voucher in ((201, "ONTIME"), (202, None)):  # one paid on the due date, one never
            pid = enroll(ledger, number(seq), date(2025, 12, 1), scheme="EMPLOYEE", employer_id="91610902MA0OTHER2Y")
            assert ledger.assess_employee_month(pid, case.MONTH, declared_base_fen=case.BASE_FEN, provenance=API,
                                                effective_date=date(2026, 1, 1)).applied
            if voucher:
                assert ledger.record_tax_record(tax(number(seq), voucher, amount_fen=case.EACH_FEN, paid_on=case.DUE,
                                                    levy_item="EMPLOYEE", period=(date(2026, 1, 1), date(2026, 1, 31))),
                                                provenance=API).applied
        ProjectionRunner(store, NotificationLogSource(ledger), ledger.policies, batch_size=4).run_once()
        queries = ViewQueries(store, ledger.policies)
        view = arrears_view(ledger)
        for as_of in (date(2026, 1, 15), date(2026, 1, 16), date(2026, 3, 15), case.PAID_ON, date(2026, 4, 1),
                      date(2027, 12, 31)):
            got = [{k: v for k, v in r.items() if k != "masked_id"} for r in queries.arrears(as_of, sort=None)]
            assert got == arrears_list(view, as_of, ledger.policies), as_of

        rows = queries.arrears(date(2026, 4, 1), region=case.HANBIN, grid=case.GRID)
        fee_only = [r for r in rows if r["fee_only"]]
        assert len(fee_only) == case.EMPLOYEES and sum(r["late_fee_fen"] for r in fee_only) == case.FEE_FEN
        assert all(r["outstanding_fen"] == 0 and r["paid_in_full_on"] == case.PAID_ON for r in fee_only)
        (unpaid,) = [r for r in rows if not r["fee_only"]]  # the month never paid; the one paid on time is not listed
        assert unpaid["outstanding_fen"] == case.EACH_FEN and unpaid["late_fee_fen"] == 4_750  # 125,000 x 0.05 % x 76 days
    finally:
        store.close()
        system.close()
