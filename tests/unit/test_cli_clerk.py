"""``ledger clerk COMMAND`` and ``ledger import``: clerk commands on the command line, by the API's rules.

The clerk is the token in LEDGER_TOKEN; each command's options are its API body's
fields; refusals print ``error CODE: message``, exit 2 and write nothing.
"""
from __future__ import annotations

import json
import re
from datetime import date

import pytest

from entrypoints.catalogue import _CJK
from entrypoints.wiring import bootstrap
from entrypoints.cli import build_parser
from infra.settings import load_settings
from entrypoints.http.commands import COMMANDS
from tests.unit.cli_support import embedded, refused, run, run_as
from tests.unit.projection_support import HANBIN, HANYIN, number, pay_year

GRID_A = "610902100001"


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """An empty embedded (SQLite) ledger in tmp_path."""
    embedded(monkeypatch, tmp_path, "cli-clerk-test")
    return tmp_path


def events_of(id_number: str) -> list:
    system = bootstrap(load_settings())
    try:
        person = system.ledger.find_person("RESIDENT_ID", id_number)
        return list(system.ledger.events.get(person.id))
    finally:
        system.close()


def person_count() -> int:
    system = bootstrap(load_settings())
    try:
        return sum(1 for _ in system.ledger.recorder.select_notifications(1, 10_000))
    finally:
        system.close()


ENROLL = ("clerk", "enroll", "--id-number", number(1), "--name", "张三", "--scheme", "RESIDENT",
          "--region-code", HANBIN, "--grid-code", GRID_A, "--effective-date", "2024-09-10")


def _subparser(parser, *path: str):
    for name in path:
        action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = action.choices[name]
    return parser


def test_every_api_command_has_a_cli_command_with_its_body_fields():
    parser = build_parser()
    for command in COMMANDS:
        flags = {f"--{name.replace('_', '-')}" for name in command.body.model_fields}
        if command.on_person:
            flags |= {"--id-type", "--id-number"}
        sub = _subparser(parser, "clerk", command.cli_name)
        known = {s for a in sub._actions for s in a.option_strings}
        assert flags | {"--request-id", "--json"} == known - {"-h", "--help", "--lang"}, command.name
        required = {s for a in sub._actions if a.required for s in a.option_strings}
        assert required == {f"--{n.replace('_', '-')}" for n, f in command.body.model_fields.items()
                            if f.is_required()} | ({"--id-number"} if command.on_person else set())


def test_a_clerk_enrolls_assesses_corrects_and_transfers_out(home, capsys, monkeypatch):
    run_as(monkeypatch, home, "clerk", [HANBIN], user="clerk07")
    status, out, _ = run(capsys, *ENROLL, "--json")
    assert status == 0
    answer = json.loads(out)
    assert answer["applied"] is True and len(answer["event_ids"]) == 2  # registered and enrolled
    status, out, _ = run(capsys, "clerk", "assess-resident-year", "--id-number", number(1), "--year", "2025")
    assert status == 0 and out.startswith("已记录：已核定 2025 缴费\n") and "参保人 " in out and "，请求 " in out
    status, out, _ = run(capsys, "clerk", "assess-resident-year", "--id-number", number(1), "--year", "2025",
                         "--lang", "en")
    assert status == 0 and out.startswith("nothing changed: assessed 2025: nothing to change") and "person " in out
    status, out, _ = run(capsys, "clerk", "assess-resident-year", "--id-number", number(1), "--year", "2025")
    assert out.startswith("未变更：已核定 2025 缴费：无需变更（此前已记录）")

    system = bootstrap(load_settings())
    try:
        pay_year(system.ledger, number(1), 2025, date(2024, 10, 8), voucher="V1", amount_fen=40000)
    finally:
        system.close()
    status, out, _ = run(capsys, "clerk", "payment-correction", "--id-number", number(1), "--kind", "REFUND",
                         "--voucher-no", "R1", "--tax-office", "16109020000", "--original-voucher-no", "V1",
                         "--amount-fen", "10000", "--corrected-at", "2024-11-01T09:00:00+08:00",
                         "--reason", "多缴退费", "--json")
    assert status == 0 and json.loads(out)["applied"] is True
    status, out, _ = run(capsys, "clerk", "transfer-out", "--id-number", number(1), "--transfer-id", "ZY-1",
                         "--counterpart-region", "110101", "--effective-date", "2025-06-30")
    assert status == 0

    events = events_of(number(1))
    names = [type(e).__name__ for e in events]
    assert names[:2] == ["Registered", "Enrolled"] and "ContributionAssessed" in names
    assert "TransferOutCompleted" in names, names
    mine = [e for e in events if e.provenance.get("source") == "cli"]
    assert len(mine) == len(events) - 1  # all but the tax payment, which came from the feed
    assert {e.provenance["user"] for e in mine} == {"clerk07"}  # the token's user, not a flag
    refunds = [e for e in events if type(e).__name__ == "ContributionRefunded"]
    assert [(r.original_voucher_no, r.amount_fen) for r in refunds] == [("V1", 10000)]


def test_a_resend_with_the_same_request_id_does_nothing_twice(home, capsys, monkeypatch):
    run_as(monkeypatch, home, "clerk", [HANBIN])
    assert run(capsys, *ENROLL, "--request-id", "req-1")[0] == 0
    before = len(events_of(number(1)))
    status, out, _ = run(capsys, *ENROLL, "--request-id", "req-1", "--json")
    assert status == 0 and json.loads(out)["applied"] is False
    # the resend said in each language, its time in Beijing time (no UTC offset)
    status, out, _ = run(capsys, *ENROLL, "--request-id", "req-1")
    assert status == 0 and re.match(r"未变更：请求 req-1 已于北京时间 \d{4}-\d\d-\d\d \d\d:\d\d 办理，未重复办理\n", out), out
    status, out, _ = run(capsys, *ENROLL, "--request-id", "req-1", "--lang", "en")
    assert re.match(r"nothing changed: request req-1 was already carried out at [-\d]{10} \d\d:\d\d Beijing time", out), out
    assert not _CJK.search(out.replace("张三", ""))
    assert len(events_of(number(1))) == before
    # the same request id for another body is refused
    other = [a if a != "张三" else "李四" for a in ENROLL]
    refused(capsys, "REQUEST_ID_REUSED", *other, "--request-id", "req-1")
    # without the request id a second enrollment is the ledger's own refusal
    refused(capsys, "ALREADY_ENROLLED", *ENROLL)


def test_refusals_say_why_and_write_nothing(home, capsys, monkeypatch):
    refused(capsys, "TOKEN_MISSING", *ENROLL)
    run_as(monkeypatch, home, "grid_worker", [GRID_A])
    refused(capsys, "ROLE_FORBIDDEN", *ENROLL)
    run_as(monkeypatch, home, "clerk", [HANYIN])
    refused(capsys, "SCOPE_FORBIDDEN", *ENROLL)
    assert person_count() == 0
    run_as(monkeypatch, home, "clerk", [HANBIN])
    refused(capsys, "DATE_INVALID", *ENROLL[:-1], "2024-13-01")
    refused(capsys, "BODY_INVALID", *[a if a != HANBIN else "61090" for a in ENROLL])
    assert person_count() == 0
    assert run(capsys, *ENROLL)[0] == 0
    err = refused(capsys, "AMOUNT_NOT_INTEGER_FEN", "clerk", "account-credit", "--id-number", number(1),
                  "--amount-fen", "12.5", "--reason", "CORRECTION", "--reference", "x", "--effective-date",
                  "2025-01-01")
    assert "--amount-fen" in err
    refused(capsys, "AMOUNT_NOT_POSITIVE", "clerk", "account-credit", "--id-number", number(1),
            "--amount-fen", "0", "--reason", "CORRECTION", "--reference", "x", "--effective-date", "2025-01-01")
    refused(capsys, "REFUND_UNKNOWN_VOUCHER", "clerk", "payment-correction", "--id-number", number(1),
            "--kind", "REFUND", "--voucher-no", "R9", "--tax-office", "1", "--original-voucher-no", "NOPE",
            "--amount-fen", "100", "--reason", "x")
    status, _, err = run(capsys, "clerk", "assess-resident-year", "--id-number", number(2), "--year", "2025")
    assert status == 2 and "error " in err  # a person the ledger does not know
    run_as(monkeypatch, home, "clerk", [HANYIN])
    refused(capsys, "SCOPE_FORBIDDEN", "clerk", "assess-resident-year", "--id-number", number(1), "--year", "2025")
    assert [type(e).__name__ for e in events_of(number(1))] == ["Registered", "Enrolled"]


def test_import_runs_as_the_token_clerk_within_their_regions(home, capsys, monkeypatch, tmp_path):
    path = tmp_path / "登记.csv"
    header = "证件类型,证件号码,姓名,险种,参保地,网格,灵活就业,单位编号,参保日期"
    lines = [f"居民身份证,{number(5)},王五,城乡居民,{HANBIN},{GRID_A},否,,2024-09-10",
             f"居民身份证,{number(6)},赵六,城乡居民,{HANYIN},,否,,2024-09-10"]
    path.write_text("\ufeff" + "\n".join([header, *lines]) + "\n", encoding="utf-8")
    refused(capsys, "TOKEN_MISSING", "import", str(path))
    run_as(monkeypatch, home, "clerk", [HANBIN], user="clerk09")
    status, out, _ = run(capsys, "import", str(path), "--json")
    report = json.loads(out)
    assert status == 1 and report["imported"] == 1 and report["errors"] == 1
    assert [line["code"] for line in report["lines"] if line["status"] != "imported"] == ["REGION_NOT_IN_SCOPE"]
    assert {e.provenance["user"] for e in events_of(number(5))} == {"clerk09"}
