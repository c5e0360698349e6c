"""Issue 22 on the real services: clerk-entered statuses on PostgreSQL (HTTP), a status file applied
without a broker into a PostgreSQL ledger (positions kept there), and a statements file put on Kafka,
reconciled by the statement consumer into PostgreSQL, with a day lacking its statement flagged."""
from __future__ import annotations

import time
from datetime import date, datetime, timezone

import pytest
from fastapi.testclient import TestClient

from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore
from entrypoints.wiring import bootstrap, file_feed
from infra.settings import Settings, postgres_from_env
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import Provenance, TaxPaymentRecord
from reconciliation.reports import missing_statements, statement_report
from reconciliation.factory import reconciler, statement_consumer, store_of

pytestmark = pytest.mark.integration

HANBIN, HANYIN, GRID = "610902", "610921", "610902100001"
OFFICE = "16109020000"
TOKENS = {"clerk": ("clerk.hanbin", "clerk", [HANBIN]), "clerk-hanyin": ("clerk.hanyin", "clerk", [HANYIN])}


def number(seq: int) -> str:
    return make_resident_id(HANBIN, date(1977, 3, 4), seq)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def pg_system(pg_env):
    s = bootstrap(Settings(persistence="postgres", postgres=postgres_from_env(pg_env), id_key=b"issue22-pg"))
    yield s
    s.close()


def test_a_clerk_grants_and_revokes_on_postgres(pg_system, hostile):
    client = TestClient(create_app(pg_system, TokenStore.from_tokens(TOKENS)))
    who = number(1)
    body = {"id_number": who, "name": "陈静", "scheme": "RESIDENT", "region_code": HANBIN, "grid_code": GRID,
            "effective_date": "2025-09-10"}
    assert client.post("/enrollments", json=body, headers=bearer("clerk")).status_code == 201
    assert client.post(f"/persons/RESIDENT_ID/{who}/assessments/resident-year", json={"year": 2026},
                       headers=bearer("clerk")).status_code == 201
    grant = {"id_number": who, "name": "陈静", "region_code": HANBIN, "category": "EXTREME_POVERTY",
             "valid_from": "2026-01-01", "department": "汉滨区民政局", "document_no": "PG-TK-1"}
    other = client.post("/statuses", json={**grant, "region_code": HANYIN}, headers=bearer("clerk-hanyin"))
    person = pg_system.ledger.find_person("RESIDENT_ID", who)
    hostile.attempt("status grant by another region's clerk (PostgreSQL)", status=other.status_code,
                    written=bool(person.subsidies))
    assert other.status_code == 403
    r = client.post("/statuses", json=grant, headers=bearer("clerk"))
    assert r.status_code == 201, r.text
    assert pg_system.ledger.find_person("RESIDENT_ID", who).assessments["2026"].due_fen == 0
    again = client.post("/statuses", json=grant, headers=bearer("clerk"))
    hostile.attempt("status grant replayed (PostgreSQL)", status=again.status_code)
    assert again.status_code == 200 and again.json()["applied"] is False
    revoke = {"grant_id": "PG-TK-1", "revoked_from": "2026-01-01", "department": "汉滨区民政局", "document_no": "QX"}
    assert client.post(f"/persons/RESIDENT_ID/{who}/statuses/revoke", json=revoke,
                       headers=bearer("clerk")).status_code == 201
    assert pg_system.ledger.find_person("RESIDENT_ID", who).assessments["2026"].due_fen > 0


def test_a_status_file_without_a_broker_goes_into_the_postgres_ledger_once(pg_system):
    who = number(2)
    data = ("record_id,id_type,id_number,name,category,action,valid_from,valid_to,department,document_no\n"
            f"PG-R1,RESIDENT_ID,{who},李娜,ORPHAN,GRANT,2026-01-01,,汉滨区民政局,PG-GE-1\n").encode()
    first = file_feed(pg_system, "status", data, "s.csv")
    assert (first.applied, first.unchanged, first.refused) == (1, 0, [])
    second = file_feed(pg_system, "status", data, "s.csv")
    assert (second.applied, second.unchanged) == (0, 1)
    person = pg_system.ledger.find_person("RESIDENT_ID", who)
    events = [e for e in pg_system.ledger.events.get(person.id) if type(e).__name__ == "SubsidyGranted"]
    assert len(events) == 1 and events[0].provenance["source"] == "file"


def test_a_statements_file_on_kafka_is_reconciled_and_a_missing_day_flagged(pg_env, kafka_bootstrap, prefix):
    system = bootstrap(Settings(persistence="postgres", postgres=postgres_from_env(pg_env), id_key=b"issue22-kafka",
                                kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix))
    try:
        feed = Provenance(source="kafka", topic="tax.payments.v1")
        for i, day in ((11, date(2025, 10, 1)), (12, date(2025, 10, 1)), (13, date(2025, 10, 2))):
            system.ledger.record_tax_record(TaxPaymentRecord(
                voucher_no=f"KV{i}", tax_office=OFFICE, id_type="RESIDENT_ID", id_number=number(i), name="王芳",
                region_code=HANBIN, levy_item="RESIDENT", period_start=date(2026, 1, 1),
                period_end=date(2026, 12, 31), amount_fen=40000,
                paid_at=datetime(day.year, day.month, day.day, 2, 0, tzinfo=timezone.utc)), provenance=feed)
        rows = "\n".join(
            f"KS-1,2025-10-01,{OFFICE},{HANBIN},KV{i},RESIDENT_ID,{number(i)},RESIDENT,2026-01-01,2026-12-31,40000,"
            f"2025-10-01T10:00:00+08:00" for i in (11, 12))
        data = ("statement_id,business_date,tax_office,region_code,voucher_no,id_type,id_number,levy_item,"
                f"period_start,period_end,amount_fen,paid_at\n{rows}\n").encode()
        report = file_feed(system, "statements", data, "statements.csv")
        assert report.sent == 3 and not report.embedded and report.topic == f"{prefix}tax.statements.v1"

        recon = reconciler(system)
        loop = statement_consumer(system, recon, group=f"{prefix}recon", ledger_source="log", publish=False)
        deadline = time.monotonic() + 60
        state = None
        while time.monotonic() < deadline:
            loop.run_once()
            statement = store_of(system).statement("KS-1")
            state = statement and statement["state"]
            if state == "RECONCILED":
                break
        assert state == "RECONCILED"
        assert statement_report(store_of(system), "KS-1")["discrepancies"] == []
        missing = missing_statements(store_of(system), as_of=date(2025, 10, 5), due_days=1)
        assert [(m["code"], m["business_date"], m["recorded_fen"]) for m in missing] == [
            ("STATEMENT_MISSING", "2025-10-02", 40000)]
    finally:
        system.close()
