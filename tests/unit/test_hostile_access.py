"""Hostile attempts on access control (issue 17, items 5, 6, 11, 12): revoked and broken tokens,
cross-region enrollment, dead-letter scope, writers without a token, conflicts that vanish.

Each attempt is counted with the ``hostile`` fixture (tests/hostile.py) besides its own asserts.
"""
from __future__ import annotations

import json
import logging
import os
import time

import pytest
from fastapi.testclient import TestClient

from entrypoints.cli import main as ledger_main
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenStore, add_token, read_token_file
from tests.unit.http_support import (
    GRID_A,
    HANBIN,
    auth,
    event_count,
    number,
    person_path,
    system,  # noqa: F401  (fixture)
)


# ------------------------------------------------------------------ tokens (item 5)
@pytest.fixture()
def tokens_file(tmp_path):
    path = tmp_path / "tokens.toml"
    tokens = {"clerk": add_token(path, user="clerk01", role="clerk", scopes=[HANBIN]),
              "auditor": add_token(path, user="audit01", role="auditor", scopes=[])}
    return path, tokens


def tally_status(r) -> int | None:
    """The status to count: the deliberate fail-closed 503 TOKENS_UNAVAILABLE is a refusal, not a server
    failure (the tally's 5xx column); any other 5xx is counted as one."""
    if r.status_code == 503 and r.json().get("code") == "TOKENS_UNAVAILABLE":
        return None
    return r.status_code


def refused_within(client: TestClient, token: str, seconds: float = 3.0) -> tuple[int, dict, float]:
    """Ask until the token is refused (or ``seconds`` pass): the last status, body, and how long it took."""
    started = time.monotonic()
    while True:
        r = client.get(person_path(number(1)), headers=auth(token))
        if r.status_code in (401, 403, 503) or time.monotonic() - started > seconds:
            return r.status_code, r.json(), time.monotonic() - started
        time.sleep(0.05)


def test_a_revoked_token_is_refused_by_the_running_server_within_seconds(tokens_file, system, hostile, capsys):
    path, tokens = tokens_file
    client = TestClient(create_app(system, TokenStore.from_file(path)))
    assert client.get(person_path(number(1)), headers=auth(tokens["clerk"])).json()["code"] == "PERSON_NOT_FOUND"
    assert ledger_main(["token", "revoke", "clerk01", "--file", str(path)]) == 0
    assert "已吊销" in capsys.readouterr().out
    status, body, took = refused_within(client, tokens["clerk"])
    hostile.attempt("revoked token on a running server", status=status,
                    leaked=status not in (401, 403, 503))
    assert (status, body["code"]) == (401, "TOKEN_REVOKED") and took < 3.0
    # the other token still works, and the revoked entry stays in the file, marked
    assert client.get(person_path(number(1)), headers=auth(tokens["auditor"])).json()["code"] == "PERSON_NOT_FOUND"
    assert [bool(e.revoked) for e in read_token_file(path)] == [True, False]


def test_revoke_by_token_id_from_the_list(tokens_file, system, capsys):
    path, tokens = tokens_file
    assert ledger_main(["token", "list", "--file", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    audit_id = next(r["token_id"] for r in rows if r["user"] == "audit01")
    assert ledger_main(["token", "revoke", audit_id, "--file", str(path)]) == 0
    client = TestClient(create_app(system, TokenStore.from_file(path)))
    assert client.get(person_path(number(1)), headers=auth(tokens["auditor"])).json()["code"] == "TOKEN_REVOKED"
    assert client.get(person_path(number(1)), headers=auth(tokens["clerk"])).json()["code"] == "PERSON_NOT_FOUND"
    assert ledger_main(["token", "revoke", audit_id, "--file", str(path)]) == 2  # already revoked
    assert ledger_main(["token", "revoke", "nobody", "--file", str(path)]) == 2


def test_token_list_shows_who_and_never_a_secret(tokens_file, capsys, hostile):
    path, tokens = tokens_file
    ledger_main(["token", "revoke", "clerk01", "--file", str(path)])
    capsys.readouterr()
    assert ledger_main(["token", "list", "--file", str(path), "--all"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["令牌编号", "用户", "角色"] and "个令牌" in out
    assert ledger_main(["token", "list", "--file", str(path), "--all", "--lang", "en"]) == 0
    english = capsys.readouterr().out
    assert english.splitlines()[0].split()[:2] == ["token", "id"] and "tokens in" in english
    assert ledger_main(["token", "list", "--file", str(path), "--all", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    hashes = [e.sha256 for e in read_token_file(path)]
    leaked = any(t in out or t in json.dumps(rows) for t in tokens.values()) or any(h in out for h in hashes)
    hostile.attempt("token list shows secrets", leaked=leaked)
    assert not leaked
    assert {(r["user"], r["role"], bool(r["revoked"])) for r in rows} == {("clerk01", "clerk", True),
                                                                           ("audit01", "auditor", False)}
    assert all(len(r["token_id"]) == 12 and r["created"] for r in rows)
    assert "clerk01" in out and "audit01" in out
    ledger_main(["token", "list", "--file", str(path)])
    assert "clerk01" not in capsys.readouterr().out  # revoked ones only with --all


@pytest.mark.parametrize("breakage", ["syntax error", "deleted", "unreadable", "bad entry"])
def test_a_broken_or_missing_tokens_file_fails_closed(tokens_file, system, hostile, breakage, caplog):
    path, tokens = tokens_file
    client = TestClient(create_app(system, TokenStore.from_file(path)))
    assert client.get(person_path(number(1)), headers=auth(tokens["auditor"])).json()["code"] == "PERSON_NOT_FOUND"
    if breakage == "syntax error":
        path.write_text(path.read_text() + "\n[[tokens]\nuser = \n")
    elif breakage == "deleted":
        path.unlink()
    elif breakage == "unreadable":
        if os.geteuid() == 0:
            path.write_bytes(b"\xff\xfe not utf-8 \x00")  # root reads any mode: unreadable as text instead
        else:
            path.chmod(0)
    else:
        path.write_text(path.read_text().replace('role = "auditor"', 'role = "boss"'))
    before = event_count(system)
    with caplog.at_level(logging.ERROR):
        r = client.get(person_path(number(1)), headers=auth(tokens["auditor"]))
        w = client.post("/enrollments", headers=auth(tokens["clerk"]), json={
            "id_type": "RESIDENT_ID", "id_number": number(2), "name": "王芳", "scheme": "RESIDENT",
            "region_code": HANBIN, "grid_code": GRID_A, "effective_date": "2024-09-10"})
    hostile.attempt(f"old token with the tokens file {breakage}", status=tally_status(r),
                    leaked=r.status_code == 404 or r.status_code < 400, written=event_count(system) != before)
    hostile.attempt(f"write with the tokens file {breakage}", status=tally_status(w),
                    written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (503, "TOKENS_UNAVAILABLE")
    assert (w.status_code, w.json()["code"]) == (503, "TOKENS_UNAVAILABLE")
    assert "令牌文件" in r.json()["message"]
    # fixed again: the good tokens work (and nothing in between let anyone in)
    path.unlink(missing_ok=True)
    tokens = {"auditor": add_token(path, user="audit02", role="auditor", scopes=[])}
    assert client.get(person_path(number(1)), headers=auth(tokens["auditor"])).json()["code"] == "PERSON_NOT_FOUND"


def test_the_breakage_is_logged_loudly_once(tokens_file, system, capsys):
    path, tokens = tokens_file
    client = TestClient(create_app(system, TokenStore.from_file(path)))
    path.write_text("not = [toml")
    for _ in range(3):
        client.get(person_path(number(1)), headers=auth(tokens["auditor"]))
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in (captured.out + captured.err).splitlines() if line.startswith("{")]
    broken = [x for x in lines if x.get("event") == "tokens_file_unavailable"]
    assert len(broken) == 1 and broken[0]["level"] == "error"


# ------------------------------------------------------------------ cross-region enrollment (item 6)
HANYIN_GRID = "610921100001"


@pytest.fixture()
def client(system):  # noqa: F811  (the shared fixture of http_support, by the same name)
    from tests.unit.http_support import TOKENS

    return TestClient(create_app(system, TokenStore.from_tokens(TOKENS)))


def test_a_clerk_cannot_take_over_another_regions_person_by_enrolling_them(client, system, hostile):
    from tests.unit.http_support import CLERK, CLERK_HANYIN, HANYIN, enroll, enrollment

    n = number(3, region=HANYIN)
    enroll(client, n, headers=CLERK_HANYIN, region_code=HANYIN, grid_code=HANYIN_GRID)
    before = event_count(system)
    r = client.post("/enrollments", json=enrollment(n, region_code=HANBIN, grid_code=GRID_A), headers=CLERK)
    hostile.attempt("cross-region enrollment over HTTP", status=r.status_code, written=event_count(system) != before)
    assert (r.status_code, r.json()["code"]) == (409, "ENROLLED_ELSEWHERE")
    assert "转移接续" in r.json()["message"] and "转出" in r.json()["message"] and "转入" in r.json()["message"]
    assert r.json()["details"] == {"enrolled_region": HANYIN, "procedure": "TRANSFER"}
    # and the person stays out of reach: no full record, no ID number, no name
    for attempt in ("", "/entitlement"):
        read = client.get(person_path(n, attempt), headers=CLERK)
        leaked = n in read.text or "王芳" in read.text
        hostile.attempt(f"read another region's person{attempt or ''} after a refused enrollment",
                        status=read.status_code, leaked=leaked)
        assert (read.status_code, read.json()["code"]) == (403, "SCOPE_FORBIDDEN")
    # the other scheme in my region is refused the same way (no duplicate to read through)
    r = client.post("/enrollments", json=enrollment(n, region_code=HANBIN, grid_code=GRID_A, scheme="EMPLOYEE",
                                                    employer_id="91610902MA1"), headers=CLERK)
    hostile.attempt("cross-region employee enrollment over HTTP", status=r.status_code,
                    written=event_count(system) != before)
    assert r.json()["code"] == "ENROLLED_ELSEWHERE"


def test_a_transfer_in_without_the_other_regions_transfer_out_is_refused(client, system, hostile):
    from tests.unit.http_support import CLERK, CLERK_HANYIN, HANYIN, enroll

    n = number(12, region=HANYIN)
    enroll(client, n, headers=CLERK_HANYIN, region_code=HANYIN, grid_code=HANYIN_GRID)
    before = event_count(system)
    r = client.post("/transfers/in", headers=CLERK, json={
        "id_type": "RESIDENT_ID", "id_number": n, "name": "王芳", "transfer_id": "ZY-FAKE", "counterpart_region": HANYIN,
        "account_balance_fen": 500000, "contribution_months": 120, "scheme": "RESIDENT", "region_code": HANBIN,
        "grid_code": GRID_A, "effective_date": "2025-03-02"})
    hostile.attempt("transfer in of a person still enrolled elsewhere", status=r.status_code,
                    written=event_count(system) != before)
    # The transfer rule answers first: the sending region of this ledger has not transferred them out.
    assert (r.status_code, r.json()["code"]) == (422, "TRANSFER_OUT_MISSING")


def test_the_transfer_procedure_still_moves_a_person(client, system):
    from tests.unit.http_support import CLERK, CLERK_HANYIN, HANYIN, enroll

    n = number(4, region=HANYIN)
    enroll(client, n, headers=CLERK_HANYIN, region_code=HANYIN, grid_code=HANYIN_GRID)
    out = client.post(f"{person_path(n)}/transfers/out", headers=CLERK_HANYIN, json={
        "transfer_id": "ZY1", "counterpart_region": HANBIN, "effective_date": "2025-03-01"})
    assert out.status_code in (200, 201), out.json()
    came = client.post("/transfers/in", headers=CLERK, json={
        "id_type": "RESIDENT_ID", "id_number": n, "name": "王芳", "transfer_id": "ZY1", "counterpart_region": HANYIN,
        "account_balance_fen": 0, "contribution_months": 0, "scheme": "RESIDENT", "region_code": HANBIN,
        "grid_code": GRID_A, "effective_date": "2025-03-02"})
    assert came.status_code == 201, came.json()
    assert client.get(person_path(n), headers=CLERK).json()["id_number"] == n


def test_a_duplicate_recorded_before_the_rule_opens_nothing_to_the_second_region(client, system, monkeypatch,
                                                                                 hostile):
    from ledger.domain.person import Person
    from tests.unit.http_support import AUDITOR, CLERK, CLERK_HANYIN, HANYIN, enroll, enrollment

    n = number(5, region=HANYIN)
    enroll(client, n, headers=CLERK_HANYIN, region_code=HANYIN, grid_code=HANYIN_GRID)
    with monkeypatch.context() as m:  # the ledger as it was: a second region's enrollment flagged as duplicate
        m.setattr(Person, "check_not_enrolled_elsewhere", lambda self, region_code: None)
        r = client.post("/enrollments", json=enrollment(n, region_code=HANBIN, grid_code=GRID_A), headers=CLERK)
        assert r.status_code == 201
    assert client.get(person_path(n), headers=AUDITOR).json()["duplicate_enrollment"] is True
    read = client.get(person_path(n), headers=CLERK)
    hostile.attempt("read through a legacy cross-region duplicate", status=read.status_code,
                    leaked=n in read.text)
    assert (read.status_code, read.json()["code"]) == (403, "SCOPE_FORBIDDEN")
    assert client.get(person_path(n), headers=CLERK_HANYIN).json()["id_number"] == n


def test_cross_region_enrollment_on_the_command_line_and_by_import(tmp_path, monkeypatch, capsys, hostile):
    from tests.unit.cli_support import embedded, refused, run, run_as
    from tests.unit.http_support import HANYIN

    embedded(monkeypatch, tmp_path, "hostile-access")
    n = number(6, region=HANYIN)
    run_as(monkeypatch, tmp_path / "hy", "clerk", [HANYIN], user="clerk.hy")
    assert run(capsys, "clerk", "enroll", "--id-number", n, "--name", "王芳", "--scheme", "RESIDENT",
               "--region-code", HANYIN, "--grid-code", HANYIN_GRID, "--effective-date", "2024-09-10")[0] == 0
    run_as(monkeypatch, tmp_path / "hb", "clerk", [HANBIN], user="clerk.hb")
    err = refused(capsys, "ENROLLED_ELSEWHERE", "clerk", "enroll", "--id-number", n, "--name", "王芳", "--scheme",
                  "RESIDENT", "--region-code", HANBIN, "--grid-code", GRID_A, "--effective-date", "2024-09-10")
    hostile.attempt("cross-region enrollment on the command line", status=None, written=False)
    assert "转移接续" in err
    sheet = tmp_path / "登记.csv"
    sheet.write_text("\ufeff证件类型,证件号码,姓名,险种,参保地,网格,灵活就业,单位编号,参保日期\n"
                     f"居民身份证,{n},王芳,城乡居民,{HANBIN},{GRID_A},否,,2024-09-10\n", encoding="utf-8")
    status, out, _ = run(capsys, "import", str(sheet), "--json")
    report = json.loads(out)
    hostile.attempt("cross-region enrollment by spreadsheet import", status=None, written=report["imported"] != 0)
    assert status == 1 and [line["code"] for line in report["lines"]] == ["ENROLLED_ELSEWHERE"]
    refused(capsys, "SCOPE_FORBIDDEN", "person", n)


# ------------------------------------------------------------------ conflicts visible (item 12)
def test_a_voucher_conflict_over_http_is_listed_with_the_feed_borne_ones(client, system, hostile):
    from consumers.dead_letters import dead_letters, resubmit
    from entrypoints.http.auth import Principal, Role
    from tests.unit.http_support import HANYIN, TAX, pay, tax_payment

    n = number(7)
    pay(client, n, "V7")
    version = system.ledger.find_person("RESIDENT_ID", n).version
    r = client.post("/tax/payments", json=tax_payment(n, "V7", amount_fen=39000), headers=TAX)
    hostile.attempt("voucher conflict over HTTP", status=r.status_code)
    assert (r.status_code, r.json()["code"]) == (409, "VOUCHER_CONFLICT")
    letter_id = r.json()["details"]["dead_letter_id"]
    auditor = Principal("audit", Role.AUDITOR)
    (letter,) = dead_letters(system.ledger, who=auditor)
    assert (str(letter.id), letter.code, letter.region_code, letter.on_feed) == (letter_id, "VOUCHER_CONFLICT",
                                                                                  HANBIN, False)
    assert letter.topic == "api:tax-voucher" and "V7" in letter.source
    assert n not in json.dumps(letter.as_dict(), ensure_ascii=False)  # the note carries no ID number
    assert system.ledger.find_person("RESIDENT_ID", n).version == version  # nothing applied to the person
    assert system.ledger.find_person("RESIDENT_ID", n).paid_fen_for("2025") == 40000
    # a resend of the same conflicting record is the same dead letter, once
    again = client.post("/tax/payments", json=tax_payment(n, "V7", amount_fen=39000), headers=TAX)
    assert again.json()["details"]["dead_letter_id"] == letter_id
    assert len(dead_letters(system.ledger, resubmitted=None, who=auditor)) == 1
    # in the clerks' list of its region, not in another region's
    assert [d.id for d in dead_letters(system.ledger, who=Principal("c", Role.CLERK, frozenset({HANBIN})))] == [
        letter.id]
    assert dead_letters(system.ledger, who=Principal("c", Role.CLERK, frozenset({HANYIN}))) == []
    # nothing to put back on a topic: refused with its own code
    with pytest.raises(Exception) as err:
        resubmit(system.ledger, object(), [letter], user="c", reason="x")
    assert getattr(err.value, "code", None) == "DEAD_LETTER_NOT_ON_FEED"


def test_a_voucher_conflict_on_the_command_line_is_listed_too(tmp_path, monkeypatch, capsys, hostile):
    from tests.unit.cli_support import embedded, refused, run, run_as

    embedded(monkeypatch, tmp_path, "hostile-conflict")
    n = number(8)
    run_as(monkeypatch, tmp_path, "clerk", [HANBIN], user="clerk.hb")
    assert run(capsys, "clerk", "enroll", "--id-number", n, "--name", "王芳", "--scheme", "RESIDENT",
               "--region-code", HANBIN, "--grid-code", GRID_A, "--effective-date", "2024-09-10")[0] == 0
    from entrypoints.wiring import bootstrap
    from infra.settings import load_settings
    from tests.unit.http_support import tax_payment

    system = bootstrap(load_settings())
    try:
        from ledger.inbound_records import Provenance, TaxPaymentRecord
        from datetime import date, datetime

        body = tax_payment(n, "V8")
        record = TaxPaymentRecord(**{**body, "period_start": date(2025, 1, 1), "period_end": date(2025, 12, 31),
                                     "paid_at": datetime.fromisoformat(body["paid_at"]),
                                     "credited_on": date(2024, 10, 9)})
        system.ledger.record_tax_record(record, provenance=Provenance(source="kafka", topic="t", partition=0,
                                                                          offset=1, record_key="V8"))
    finally:
        system.close()
    corrections = ("clerk", "payment-correction", "--id-number", n, "--kind", "REFUND", "--voucher-no", "R8",
                   "--tax-office", body["tax_office"], "--original-voucher-no", "V8", "--reason", "退费")
    assert run(capsys, *corrections, "--amount-fen", "10000")[0] == 0
    err = refused(capsys, "VOUCHER_CONFLICT", *corrections, "--amount-fen", "20000")
    hostile.attempt("voucher conflict on the command line", status=None)
    assert "已记入拒收清单" in err  # Chinese by default (--lang en: "... kept as dead letter <id>")
    status, out, _ = run(capsys, "dlq", "list", "--json")
    (letter,) = json.loads(out)
    assert status == 0 and letter["code"] == "VOUCHER_CONFLICT" and letter["topic"] == "cli:tax-voucher"


# ------------------------------------------------------------------ dead letters by region (item 6b)
def _refuse_three(system) -> dict[str, object]:
    """Three refused tax records: a refund without payment in 610902, one in 610921, and garbage."""
    from dataclasses import replace

    from consumers.dead_letters import dead_letters
    from entrypoints.wiring import feed_consumer
    from tests.unit.test_dead_letters import REFUND, TAX, value

    broker = system.inprocess_broker()
    runner = feed_consumer(system, "tax")
    hanyin = replace(REFUND, voucher_no="R200", region_code="610921", id_number=number(9, region="610921"))
    broker.produce(TAX, key=b"a", value=value(REFUND))
    broker.produce(TAX, key=b"b", value=value(hanyin))
    broker.produce(TAX, key=b"c", value=b"\x00garbage")
    while runner.run_once(timeout=0):
        pass
    from entrypoints.http.auth import Principal, Role

    letters = dead_letters(system.ledger, who=Principal("audit", Role.AUDITOR))  # (partitions by key: any order)
    by = {d.region_code or "garbage": d for d in letters}
    assert len(letters) == 3 and by["garbage"].code.startswith("AVRO_")
    return {"broker": broker, **by}


def test_dead_letters_are_listed_and_resubmitted_only_in_the_callers_regions(system, hostile):
    from consumers.dead_letters import dead_letters, resubmit
    from ledger.domain.errors import DomainError
    from entrypoints.http.auth import Principal, Role

    letters = _refuse_three(system)
    hanyin_clerk = Principal("clerk.hy", Role.CLERK, frozenset({"610921"}))
    seen = dead_letters(system.ledger, who=hanyin_clerk)
    leaked = any(d.id in (letters["610902"].id, letters["garbage"].id) for d in seen)
    hostile.attempt("dead letters of another region listed", leaked=leaked)
    assert [d.id for d in seen] == [letters["610921"].id] and seen[0].region_code == "610921"
    # named by id: refused as if absent
    with pytest.raises(DomainError) as err:
        dead_letters(system.ledger, ids=[letters["610902"].id], who=hanyin_clerk)
    hostile.attempt("dead letter of another region resubmitted by id", written=False)
    assert err.value.code == "DEAD_LETTER_NOT_FOUND"
    # by code: only the clerk's own are chosen, and only those are sent
    broker = letters["broker"]
    sent_before = len(broker.topic("tax.payments.v1").messages())
    mine = dead_letters(system.ledger, code="PERSON_NOT_FOUND", who=hanyin_clerk)
    sent = resubmit(system.ledger, broker, mine, user="clerk.hy", reason="payment arrived")
    assert [d.id for d in sent] == [letters["610921"].id]
    written = len(broker.topic("tax.payments.v1").messages()) - sent_before != 1
    hostile.attempt("dead letters of another region resubmitted by code", written=written)
    # the auditor sees all three; the undecodable one only the auditor
    auditor = Principal("audit", Role.AUDITOR)
    assert len(dead_letters(system.ledger, resubmitted=None, who=auditor)) == 3
    assert letters["garbage"].id not in {d.id for d in dead_letters(
        system.ledger, who=Principal("c", Role.CLERK, frozenset({"610902", "610921"})))}


def test_dlq_list_on_the_command_line_is_scoped(tmp_path, monkeypatch, capsys, hostile):
    from entrypoints.wiring import bootstrap
    from infra.settings import load_settings
    from tests.unit.cli_support import embedded, refused, run, run_as

    embedded(monkeypatch, tmp_path, "hostile-dlq")
    system = bootstrap(load_settings())
    try:
        letters = _refuse_three(system)
    finally:
        system.close()
    run_as(monkeypatch, tmp_path / "hy", "clerk", ["610921"], user="clerk.hy")
    status, out, _ = run(capsys, "dlq", "list", "--all", "--json")
    ids = [d["id"] for d in json.loads(out)]
    hostile.attempt("dlq list --all as another region's clerk", leaked=str(letters["610902"].id) in ids)
    assert status == 0 and ids == [str(letters["610921"].id)]
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # never reached: the selection is refused first
    refused(capsys, "DEAD_LETTER_NOT_FOUND", "dlq", "resubmit", str(letters["610902"].id), "--reason", "x",
            "--dry-run")
    hostile.attempt("dlq resubmit of another region's letter by id", written=False)
    run_as(monkeypatch, tmp_path / "au", "auditor", [], user="audit")
    status, out, _ = run(capsys, "dlq", "list", "--all", "--json")
    assert len(json.loads(out)) == 3


# ------------------------------------------------------------------ every writer is someone (item 11)
def _person_events(n: str) -> int:
    from entrypoints.wiring import bootstrap
    from infra.settings import load_settings

    system = bootstrap(load_settings())
    try:
        return len(list(system.ledger.events.get(system.ledger.person_id("RESIDENT_ID", n))))
    finally:
        system.close()


def test_import_without_a_token_or_with_a_name_on_trust_writes_nothing(tmp_path, monkeypatch, capsys, hostile):
    from tests.unit.cli_support import embedded, refused, run, run_as

    embedded(monkeypatch, tmp_path, "hostile-import")
    n = number(10)
    sheet = tmp_path / "登记.csv"
    sheet.write_text("\ufeff证件类型,证件号码,姓名,险种,参保地,网格,灵活就业,单位编号,参保日期\n"
                     f"居民身份证,{n},王芳,城乡居民,{HANBIN},{GRID_A},否,,2024-09-10\n", encoding="utf-8")
    refused(capsys, "TOKEN_MISSING", "import", str(sheet))
    hostile.attempt("import without a token", written=_person_events(n) != 0)
    with pytest.raises(SystemExit) as stop:  # there is no --user to name someone on trust
        run(capsys, "import", str(sheet), "--user", "clerk.hb")
    hostile.attempt("import naming a user on trust", written=_person_events(n) != 0)
    assert stop.value.code == 2
    run_as(monkeypatch, tmp_path / "tax", "tax_integration", [HANBIN], user="tax")
    refused(capsys, "ROLE_FORBIDDEN", "import", str(sheet))
    hostile.attempt("import with a token of another role", written=_person_events(n) != 0)
    run_as(monkeypatch, tmp_path / "hy", "clerk", ["610921"], user="clerk.hy")
    status, out, _ = run(capsys, "import", str(sheet), "--json")
    hostile.attempt("import into a region the token does not cover", written=_person_events(n) != 0)
    assert status == 1 and json.loads(out)["lines"][0]["code"] == "REGION_NOT_IN_SCOPE"


def test_explaining_a_discrepancy_names_no_one_on_trust(tmp_path, monkeypatch, capsys, hostile):
    from tests.unit.cli_support import embedded, refused

    embedded(monkeypatch, tmp_path, "hostile-explain")
    refused(capsys, "TOKEN_MISSING", "reconcile", "explain", "D-1", "--note", "x")
    hostile.attempt("reconcile explain without a token", written=False)
    with pytest.raises(SystemExit):
        from entrypoints.cli import main

        main(["reconcile", "explain", "D-1", "--note", "x", "--user", "someone"])
    capsys.readouterr()
    hostile.attempt("reconcile explain naming a user on trust", written=False)


def test_a_revoked_token_is_refused_on_the_command_line(tmp_path, monkeypatch, capsys, hostile):
    from tests.unit.cli_support import embedded, refused, run_as

    embedded(monkeypatch, tmp_path, "hostile-revoked-cli")
    run_as(monkeypatch, tmp_path, "clerk", [HANBIN], user="clerk.hb")
    assert ledger_main(["token", "revoke", "clerk.hb", "--file", str(tmp_path / "tokens.toml")]) == 0
    capsys.readouterr()
    refused(capsys, "TOKEN_REVOKED", "clerk", "enroll", "--id-number", number(11), "--name", "王芳", "--scheme",
            "RESIDENT", "--region-code", HANBIN, "--grid-code", GRID_A, "--effective-date", "2024-09-10")
    hostile.attempt("revoked token on the command line", written=_person_events(number(11)) != 0)


def test_a_tokens_file_that_is_not_text_refuses_the_command_line_with_a_code(tmp_path, monkeypatch, capsys,
                                                                             hostile):
    from tests.unit.cli_support import embedded, refused, run_as

    embedded(monkeypatch, tmp_path, "hostile-binary-tokens")
    run_as(monkeypatch, tmp_path, "auditor")
    (tmp_path / "tokens.toml").write_bytes(b"\xff\xfe\x00 not text")
    refused(capsys, "TOKENS_FILE_INVALID", "person", number(1))
    hostile.attempt("command line with a binary tokens file", crashed=False)
