"""Access hardening on the real PostgreSQL store (issue 17, items 5, 6, 12): conflicts sent over HTTP at
the same moment are one dead letter; a cross-region enrollment writes nothing; a revoked token is refused.
"""
from __future__ import annotations

import threading
from datetime import date

import pytest
from fastapi.testclient import TestClient

from consumers.dead_letters import dead_letters
from entrypoints.wiring import bootstrap
from infra.settings import Settings, postgres_from_env
from ledger.domain.identity import make_resident_id
from entrypoints.http.app import create_app
from entrypoints.http.auth import Principal, Role, TokenStore, add_token, revoke_tokens

pytestmark = pytest.mark.integration

HANBIN, HANYIN = "610902", "610921"
TOKENS = {
    "clerk": ("clerk.hanbin", "clerk", [HANBIN]),
    "clerk-hy": ("clerk.hanyin", "clerk", [HANYIN]),
    "tax": ("tax.bureau", "tax_integration", [HANBIN]),
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def payment(n: str, amount_fen: int) -> dict:
    return {"voucher_no": "PG-V1", "tax_office": "16109020000", "id_type": "RESIDENT_ID", "id_number": n,
            "name": "陈静", "region_code": HANBIN, "levy_item": "RESIDENT", "period_start": "2025-01-01",
            "period_end": "2025-12-31", "amount_fen": amount_fen, "paid_at": "2024-10-08T09:30:00+08:00",
            "credited_on": "2024-10-09", "channel": "APP"}


@pytest.fixture(scope="module")
def system(pg_env):
    s = bootstrap(Settings(persistence="postgres", postgres=postgres_from_env(pg_env), id_key=b"k"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def client(system):
    return TestClient(create_app(system, TokenStore.from_tokens(TOKENS)))


def test_concurrent_http_conflicts_are_one_dead_letter(client, system, hostile):
    n = make_resident_id(HANBIN, date(1979, 4, 2), 71)
    assert client.post("/tax/payments", json=payment(n, 40000), headers=bearer("tax")).status_code == 201
    answers: list = []

    def send() -> None:
        answers.append(client.post("/tax/payments", json=payment(n, 39000), headers=bearer("tax")))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in answers:
        hostile.attempt("concurrent voucher conflicts over HTTP (PostgreSQL)", status=r.status_code)
    assert {(r.status_code, r.json()["code"]) for r in answers} == {(409, "VOUCHER_CONFLICT")}
    assert len({r.json()["details"]["dead_letter_id"] for r in answers}) == 1
    letters = [d for d in dead_letters(system.ledger, resubmitted=None, who=Principal("a", Role.AUDITOR))
               if d.code == "VOUCHER_CONFLICT"]
    assert len(letters) == 1 and letters[0].region_code == HANBIN and not letters[0].on_feed
    assert system.ledger.find_person("RESIDENT_ID", n).paid_fen_for("2025") == 40000


def test_cross_region_enrollment_writes_nothing(client, system, hostile):
    n = make_resident_id(HANYIN, date(1985, 1, 1), 72)
    body = {"id_number": n, "name": "陈静", "scheme": "RESIDENT", "effective_date": "2024-09-10"}
    assert client.post("/enrollments", json={**body, "region_code": HANYIN, "grid_code": "610921100001"},
                       headers=bearer("clerk-hy")).status_code == 201
    before = system.ledger.recorder.max_notification_id()
    r = client.post("/enrollments", json={**body, "region_code": HANBIN, "grid_code": "610902100001"},
                    headers=bearer("clerk"))
    hostile.attempt("cross-region enrollment (PostgreSQL)", status=r.status_code,
                    written=system.ledger.recorder.max_notification_id() != before)
    assert (r.status_code, r.json()["code"]) == (409, "ENROLLED_ELSEWHERE")
    read = client.get(f"/persons/RESIDENT_ID/{n}", headers=bearer("clerk"))
    hostile.attempt("read after a cross-region enrollment (PostgreSQL)", status=read.status_code,
                    leaked=n in read.text)
    assert read.status_code == 403


def test_a_revoked_token_is_refused_by_the_running_app(system, tmp_path, hostile):
    path = tmp_path / "tokens.toml"
    token = add_token(path, user="clerk.pg", role="clerk", scopes=[HANBIN])
    app = TestClient(create_app(system, TokenStore.from_file(path)))
    n = make_resident_id(HANBIN, date(1979, 4, 2), 73)
    assert app.get(f"/persons/RESIDENT_ID/{n}", headers=bearer(token)).json()["code"] == "PERSON_NOT_FOUND"
    revoke_tokens(path, "clerk.pg")
    r = app.get(f"/persons/RESIDENT_ID/{n}", headers=bearer(token))
    hostile.attempt("revoked token (PostgreSQL app)", status=r.status_code, leaked=r.status_code != 401)
    assert r.json()["code"] == "TOKEN_REVOKED"
