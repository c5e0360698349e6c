"""Bearer tokens and roles: the tokens file holds hashes only; every role against every route group."""
from __future__ import annotations

import json
from datetime import date

import pytest
from fastapi.testclient import TestClient

from entrypoints.cli import main as ledger_main
from entrypoints.http.app import create_app
from entrypoints.catalogue import _CJK, chinese_first
from entrypoints.http.auth import TokenFileError, TokenStore, add_token, read_token_file, token_hash
from ledger.log import configure_logging
from tests.unit.http_support import (
    GRID_A,
    HANBIN,
    auth,
    client,  # noqa: F401  (fixture)
    enroll,
    enrollment,
    number,
    person_path,
    system,  # noqa: F401  (fixture)
    tax_payment,
)


# ------------------------------------------------------------------ the tokens file
@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_added_tokens_are_stored_as_hashes_and_admitted(tmp_path, system, suffix):
    path = tmp_path / f"tokens{suffix}"
    clerk = add_token(path, user="clerk01", role="clerk", scopes=[HANBIN])
    grid = add_token(path, user="wang", role="grid_worker", scopes=[GRID_A, "610902101"])
    text = path.read_text()
    assert clerk not in text and grid not in text
    assert token_hash(clerk) in text
    assert (path.stat().st_mode & 0o777) == 0o600
    entries = read_token_file(path)
    assert [(e.user, e.role.value, sorted(e.scopes)) for e in entries] == [
        ("clerk01", "clerk", [HANBIN]), ("wang", "grid_worker", [GRID_A, "610902101"])]
    client = TestClient(create_app(system, TokenStore.from_file(path)))
    assert client.post("/enrollments", json=enrollment(number(1)), headers=auth(clerk)).status_code == 201
    assert client.get(f"/grids/{GRID_A}/coverage", params={"year": 2025}, headers=auth(grid)).status_code == 200


def test_a_token_added_while_running_works_without_a_restart(tmp_path, system):
    path = tmp_path / "tokens.toml"
    add_token(path, user="first", role="auditor", scopes=[])
    client = TestClient(create_app(system, TokenStore.from_file(path)))
    later = add_token(path, user="later", role="auditor", scopes=[])
    assert client.get(person_path(number(2)), headers=auth(later)).json()["code"] == "PERSON_NOT_FOUND"


def test_token_add_from_the_cli_prints_the_token_once(tmp_path, capsys):
    path = tmp_path / "tokens.toml"
    code = ledger_main(["token", "add", "--file", str(path), "--user", "li", "--role", "grid_worker",
                        "--scope", GRID_A, "--expires", "2030-12-31"])
    out = capsys.readouterr()
    token = out.out.strip()
    assert code == 0 and len(token) >= 40
    assert "令牌只显示这一次" in out.err
    code = ledger_main(["token", "add", "--file", str(path), "--user", "wu", "--role", "auditor", "--lang", "en"])
    assert code == 0 and "shown only now" in capsys.readouterr().err
    entry = read_token_file(path)[0]
    assert entry.sha256 == token_hash(token) and entry.expires == date(2030, 12, 31)
    assert ledger_main(["token", "add", "--file", str(path), "--user", "x", "--role", "clerk",
                        "--scope", "6109"]) == 2


@pytest.mark.parametrize(("entry", "problem"), [
    ({"user": "a", "role": "boss", "scopes": [], "sha256": "0" * 64}, "role 'boss'"),
    ({"user": "a", "role": "clerk", "scopes": [HANBIN], "sha256": "secret-token"}, "64 hex"),
    ({"user": "a", "role": "clerk", "scopes": [], "sha256": "0" * 64}, "at least one scope"),
    ({"user": "a", "role": "grid_worker", "scopes": ["6109021"], "sha256": "0" * 64}, "12 digits"),
    ({"user": "a", "role": "auditor", "scopes": [HANBIN], "sha256": "0" * 64}, "no scopes"),
    ({"role": "auditor", "scopes": [], "sha256": "0" * 64}, "'user' is required"),
    ({"user": "a", "role": "auditor", "scopes": [], "sha256": "0" * 64, "token": "x"}, "unknown field"),
])
def test_a_bad_tokens_file_is_refused_naming_the_entry(tmp_path, entry, problem):
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"tokens": [entry]}))
    with pytest.raises(TokenFileError) as err:
        TokenStore.from_file(path)
    assert "token 1" in str(err.value) and problem in str(err.value)


def test_tokens_file_must_be_named(monkeypatch):
    monkeypatch.delenv("LEDGER_TOKENS_FILE", raising=False)
    with pytest.raises(TokenFileError, match="LEDGER_TOKENS_FILE"):
        TokenStore.from_env()


# ------------------------------------------------------------------ 401
@pytest.mark.parametrize(("header", "code"), [
    (None, "TOKEN_MISSING"), ("tok-clerk", "TOKEN_MALFORMED"), ("Basic dXNlcjpwYXNz", "TOKEN_MALFORMED"),
    ("Bearer ", "TOKEN_MALFORMED"), ("Bearer not-a-token", "TOKEN_UNKNOWN"),
])
def test_missing_or_malformed_tokens_are_401_with_a_message(client, header, code):
    headers = {"Authorization": header} if header is not None else {}
    r = client.get(person_path(number(3)), headers=headers)
    assert r.status_code == 401
    assert r.json()["code"] == code
    assert "令牌" in r.json()["message"]
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_an_expired_token_is_401(tmp_path, system):
    path = tmp_path / "tokens.toml"
    token = add_token(path, user="old", role="auditor", scopes=[], expires=date(2020, 1, 1))
    client = TestClient(create_app(system, TokenStore.from_file(path)))
    r = client.get(person_path(number(4)), headers=auth(token))
    assert (r.status_code, r.json()["code"]) == (401, "TOKEN_EXPIRED")


# ------------------------------------------------------------------ every role against every route group
N = number(5)
ROUTES = {
    "enroll": ("POST", "/enrollments", lambda: enrollment(number(6))),
    "command on a person": ("POST", person_path(N, "/assessments/resident-year"), lambda: {"year": 2025}),
    "transfer in": ("POST", "/transfers/in", lambda: {**enrollment(number(7)), "transfer_id": "T1",
                                                      "counterpart_region": "330102", "account_balance_fen": 0,
                                                      "contribution_months": 0}),
    "import": ("POST", "/imports?filename=a.csv", None),
    "tax feed": ("POST", "/tax/payments", lambda: tax_payment(number(8))),
    "person": ("GET", person_path(N), None),
    "entitlement": ("GET", person_path(N, "/entitlement?year=2025"), None),
    "history": ("GET", person_path(N, "/history"), None),
    "grid gaps": ("GET", f"/grids/{GRID_A}/gaps?year=2025", None),
    "grid coverage": ("GET", f"/grids/{GRID_A}/coverage?year=2025", None),
    "arrears": ("GET", f"/arrears?grid={GRID_A}", None),
}
ALLOWED = {
    "tok-clerk": {"enroll", "command on a person", "transfer in", "import", "person", "entitlement", "grid gaps",
                  "grid coverage", "arrears"},
    "tok-grid-a": {"person", "entitlement", "grid gaps", "grid coverage", "arrears"},
    "tok-auditor": {"person", "entitlement", "history", "grid gaps", "grid coverage", "arrears"},
    "tok-tax": {"tax feed"},
    # scoped elsewhere: the right role, the wrong region or grid
    "tok-clerk-hanyin": set(),
    "tok-grid-b": set(),
}
CSV = "证件号码,姓名,险种,参保地,网格,参保日期\n".encode() + f"{number(9)},李四,城乡居民,{HANBIN},{GRID_A},2024-09-10\n".encode()


def _call(client, route: str, headers: dict[str, str]):
    method, path, body = ROUTES[route]
    if route == "import":
        return client.post(path, content=CSV, headers={**headers, "Content-Type": "text/csv"})
    if method == "GET":
        return client.get(path, headers=headers)
    return client.post(path, json=body(), headers=headers)


@pytest.mark.parametrize("token", sorted(ALLOWED))
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_role_and_scope_matrix(client, token, route):
    enroll(client, N)
    r = _call(client, route, auth(token))
    if route in ALLOWED[token]:
        assert r.status_code in (200, 201), (token, route, r.json())
    elif (token, route) == ("tok-clerk-hanyin", "import"):
        # a sheet may mix regions: rows outside the clerk's are refused one by one, the rest imported
        assert r.status_code == 200 and r.json()["imported"] == 0
        assert r.json()["lines"][0]["code"] == "REGION_NOT_IN_SCOPE"
    else:
        assert r.status_code == 403, (token, route, r.json())
        assert r.json()["code"] in ("ROLE_FORBIDDEN", "SCOPE_FORBIDDEN")
        assert chinese_first(r.json()["message"]) and "your" not in r.json()["message"]  # Chinese by default
        english = _call(client, route, {**auth(token), "Accept-Language": "en"}).json()
        assert english["code"] == r.json()["code"] and english["message"].startswith(("your role", "no access"))
        assert not _CJK.search(english["message"])


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_every_route_without_a_token_is_401(client, route):
    r = _call(client, route, {})
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_MISSING"


def test_every_request_is_logged_with_its_request_id_and_masked_ids(client, capsys):
    configure_logging(json=True, force=True)
    try:
        enroll(client, N)
        client.get(person_path(N), headers=auth("tok-clerk", "trace-77"))
    finally:
        err = capsys.readouterr().err
        with capsys.disabled():  # bind the logger to the session's stderr, not this test's (closed after it)
            configure_logging(force=True)
    lines = [json.loads(line) for line in err.strip().splitlines() if line.startswith("{")]
    request = [entry for entry in lines if entry.get("event") == "request" and entry.get("request_id") == "trace-77"]
    assert request and request[0]["status"] == 200 and request[0]["user"] == "clerk.hanbin"
    assert N not in err
    assert N[:4] + "*" * 10 + N[-4:] in request[0]["path"]
