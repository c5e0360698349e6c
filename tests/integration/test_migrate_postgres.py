"""``ledger migrate`` on PostgreSQL: the old system's history with its original dates, idempotent per record,
and the issue's case (last covered in 2020, back-paying 2021-2024, covered from 2026-10-01)."""
from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from consumers.migration import migrate_file
from entrypoints.wiring import bootstrap
from infra.settings import Settings, postgres_from_env
from ledger.domain.identity import make_resident_id
from projections.entitlement import EntitlementProjection
from projections.in_memory import rebuild
from tests.unit.projection_support import log_events

pytestmark = pytest.mark.integration

HANBIN = "610902"


@pytest.fixture(scope="module")
def pg_system(pg_env):
    s = bootstrap(Settings(persistence="postgres", postgres=postgres_from_env(pg_env), id_key=b"migrate-pg"))
    yield s
    s.close()


def _csv(rows) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["原系统记录号", "记录类型", "证件号码", "姓名", "参保地", "网格", "参保日期", "缴费年度", "缴费金额", "缴费日期"])
    w.writerows(rows)
    return out.getvalue().encode("utf-8")


def test_migrate_on_postgres_is_idempotent_and_gives_the_issue_case(pg_system):
    who = make_resident_id(HANBIN, date(1970, 2, 3), 91)
    rows = [["PG-1", "参保", who, "王芳", HANBIN, "610902100001", "2019-10-01", "", "", ""],
            ["PG-2", "缴费", who, "王芳", HANBIN, "", "", "2020", "280", "2019-11-05"],
            ["PG-3", "缴费", who, "王芳", HANBIN, "", "", "2026", "400", "2026-04-01"]]
    rows += [[f"PG-B{y}", "缴费", who, "王芳", HANBIN, "", "", str(y), s, "2026-03-20"]
             for y, s in ((2021, "320"), (2022, "350"), (2023, "380"), (2024, "400"))]
    data = _csv(rows)
    report, _, _ = migrate_file(pg_system.ledger, data, "old.csv", user="clerk-pg", batch_id="PG-BATCH")
    assert (report["imported"], report["errors"]) == (7, 0), report["lines"]
    again, _, _ = migrate_file(pg_system.ledger, data, "old.csv", user="clerk-pg", batch_id="PG-BATCH-2")
    assert (again["imported"], again["already_imported"]) == (0, 7)
    person = pg_system.ledger.find_person("RESIDENT_ID", who)
    events = list(pg_system.ledger.events.get(person.id))
    assert {e.provenance.get("request_id") for e in events if e.provenance.get("source") == "migration"} == {"PG-BATCH"}
    view = rebuild(log_events(pg_system.ledger), [EntitlementProjection(pg_system.policies)])["entitlement"]
    y = view[str(person.id)]["years"][2026]
    assert (y["gap_years"], y["back_paid_years"], y["waiting_months"]) == (5, 4, 6)
    assert y["coverage_start"] == date(2026, 10, 1)
