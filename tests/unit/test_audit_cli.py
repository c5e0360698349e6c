"""``ledger history`` and ``ledger verify`` end to end on the embedded store (SQLite file, no servers).

Exit codes: 0 clean, 1 something found, 2 bad input with ``error CODE: message``.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timezone

import pytest

from entrypoints.wiring import bootstrap
from events.pii import KeyRing
from infra.settings import load_settings
from entrypoints.cli import main
from ledger.domain.identity import make_resident_id
from ledger.log import mask_id_number
from ledger.inbound_records import Provenance, TaxPaymentRecord
from tests.unit.cli_support import run_as

HANBIN = "610902"
NUMBER = make_resident_id(HANBIN, date(1979, 8, 9), 33)


@pytest.fixture()
def embedded(tmp_path, monkeypatch):
    """An embedded deployment in tmp_path with one resident who enrolled, was assessed and paid."""
    for key in ("KAFKA_BOOTSTRAP_SERVERS", "LEDGER_TOPIC_PREFIX", "POSTGRES_HOST", "DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LEDGER_PERSISTENCE", "sqlite")
    monkeypatch.setenv("LEDGER_SQLITE_PATH", str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LEDGER_VIEWS_PATH", str(tmp_path / "views.sqlite"))
    monkeypatch.setenv("LEDGER_ID_KEY", "audit-cli-tests")
    run_as(monkeypatch, tmp_path, "auditor")
    system = bootstrap()
    try:
        api = Provenance(source="api", user="clerk09", request_id="r-1")
        pid = system.ledger.enroll(id_type="RESIDENT_ID", id_number=NUMBER, name="周杰", scheme="RESIDENT",
                                   region_code=HANBIN, grid_code="610902100001", effective_date=date(2024, 9, 12),
                                   provenance=api).person_id
        system.ledger.assess_resident_year(pid, 2025, provenance=api, effective_date=date(2024, 9, 12))
        system.ledger.record_tax_record(TaxPaymentRecord(
            voucher_no="V77", tax_office="16109020000", id_type="RESIDENT_ID", id_number=NUMBER, name="周杰",
            region_code=HANBIN, levy_item="RESIDENT", period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
            amount_fen=40000, paid_at=datetime(2024, 10, 1, 2, tzinfo=timezone.utc)),
            provenance=Provenance(source="kafka", topic="tax.payments.v1", partition=0, offset=5))
    finally:
        system.close()
    return tmp_path, pid


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_history_as_json_text_and_html(embedded, capsys):
    tmp_path, pid = embedded
    code, out, _ = run(capsys, "history", NUMBER, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["person_id"] == str(pid) and report["masked_id"] == mask_id_number(NUMBER)
    assert [e["type"] for e in report["events"]] == ["Registered", "Enrolled", "ContributionAssessed",
                                                     "ContributionPaid"]
    assert report["verification"]["clean"] is True and NUMBER not in out

    code, out, _ = run(capsys, "history", NUMBER, "--year", "2025", "--as-of", report["events"][2]["recorded_at"],
                       "--html", str(tmp_path / "report.html"))
    assert code == 0
    assert "tax.payments.v1 partition 0 offset 5" in out and "原因：第 4 版" in out  # Chinese by default
    assert "缴费" in out and "是否享受待遇" in out
    code, out, _ = run(capsys, "history", NUMBER, "--year", "2025", "--as-of", report["events"][2]["recorded_at"],
                       "--lang", "en")
    assert code == 0 and "because of v4" in out and "covered on" in out
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "@page" in html and mask_id_number(NUMBER) in html and NUMBER not in html


@pytest.mark.parametrize(("argv", "code"), [
    (["history", "110105194912310021"], "ID_CHECKSUM"),
    (["history", NUMBER, "--as-of", "last tuesday"], "AS_OF_INVALID"),
    (["history", NUMBER, "--year", "soon"], "YEAR_INVALID"),
    (["history", make_resident_id(HANBIN, date(1990, 1, 1), 3)], "PERSON_NOT_FOUND"),
    (["verify", "--through", "2025-01-01"], "ARGUMENT_INVALID"),
    (["verify", "--seal", "--through", "1st of May"], "DATE_INVALID"),
    (["verify", "--person", "12345"], "ID_FORMAT"),
    (["verify", "--workers", "0"], "ARGUMENT_INVALID"),
    (["verify", "--seal", "--person", NUMBER], "ARGUMENT_INVALID"),
])
def test_bad_input_exits_2_with_a_code(embedded, capsys, argv, code):
    exit_code, _, err = run(capsys, *argv)
    assert exit_code == 2
    assert err.startswith(f"error {code}: ")


def test_verify_exits_0_when_clean_and_1_with_person_and_version_when_tampered(embedded, capsys):
    tmp_path, pid = embedded
    assert run(capsys, "verify")[0] == 0
    code, out, _ = run(capsys, "verify", "--seal", "--through", "today")
    assert code == 0 and "已封存：" in out and "账本校验：通过" in out
    assert (tmp_path / "audit-digests.jsonl").exists()  # the copy outside the database
    code, out, _ = run(capsys, "verify", "--digests", "--json")
    assert code == 0 and json.loads(out)["clean"] is True

    # An insider holding the deployment's key (the store is encrypted at rest by default) rewrites an event.
    ring = KeyRing.for_settings(load_settings())
    with sqlite3.connect(tmp_path / "ledger.sqlite") as conn:
        state = ring.decrypt_store(conn.execute(
            "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = 3",
            (pid.hex,)).fetchone()[0])
        assert b'"due_fen":40000' in state
        conn.execute("UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 3",
                     (ring.encrypt_store(state.replace(b'"due_fen":40000', b'"due_fen":4000')), pid.hex))
    code, out, _ = run(capsys, "verify")
    assert code == 1
    assert "CHAIN_BROKEN" in out and mask_id_number(NUMBER) in out and "version 3" in out
    code, out, _ = run(capsys, "verify", "--person", NUMBER, "--json")
    result = json.loads(out)
    # Version 3 is the assessment, after which the person was snapshotted: the snapshot, taken
    # from the untampered state, no longer agrees with the replay of the changed events.
    assert code == 1 and {(f["code"], f["version"]) for f in result["findings"]} == {("CHAIN_BROKEN", 3),
                                                                                     ("SNAPSHOT_MISMATCH", 3)}
    code, out, _ = run(capsys, "verify", "--digests", "--json")
    assert code == 1
    assert "DIGEST_MISMATCH" in {f["code"] for f in json.loads(out)["findings"]}
    code, out, _ = run(capsys, "verify", "--seal", "--through", "today")
    assert code == 1 and "说明：未封存：账本校验通过后才能封存其日期" in out  # the note in Chinese by default
    code, out, _ = run(capsys, "verify", "--seal", "--through", "today", "--lang", "en")
    assert code == 1 and "note: not sealed: the ledger must verify clean" in out and "NOT CLEAN" in out
    code, out, _ = run(capsys, "verify", "--seal", "--through", "today", "--json")
    assert "not sealed: the ledger must verify clean before its days are sealed" in json.loads(out)["notes"]


def test_history_html_in_chinese_english_on_request_name_revealed_and_json_unchanged(embedded, capsys):
    tmp_path, _ = embedded
    page = tmp_path / "r.html"
    code, out, _ = run(capsys, "history", NUMBER, "--json", "--html", str(page))
    assert code == 0
    plain = json.loads(out)
    assert "chain_head" not in plain and "name" not in plain
    assert all(not {"digest", "record", "description_zh"} & set(e) for e in plain["events"])
    html = page.read_text(encoding="utf-8")
    assert "参保人权益记录审计报告" in html and "周*" in html and "周杰" not in html
    assert "税务缴费凭证 V77" in html and "经办人 clerk09 请求 r-1" in html and "审计人" in html

    code, out, _ = run(capsys, "history", NUMBER, "--html", str(page), "--lang", "en", "--reveal")
    assert code == 0
    html = page.read_text(encoding="utf-8")
    assert "Insured person: history and verification" in html and "周杰" in html and "审计签字" not in html
    assert NUMBER not in html
