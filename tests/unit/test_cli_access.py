"""The ``ledger`` commands that show personal data check who runs them, as the HTTP API does.

The caller is the token in LEDGER_TOKEN (checked against LEDGER_TOKENS_FILE): grid workers
read only their grids (masked IDs), clerks their regions, auditors everything and alone
the event history. A refusal prints ``error CODE: message`` and exits 2, showing nothing.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest

from entrypoints.wiring import bootstrap
from entrypoints.cli import main
from infra.settings import load_settings
from ledger.domain.feed_rejection import FeedRejection
from tests.unit.cli_support import embedded, refused, run, run_as
from tests.unit.projection_support import HANBIN, HANYIN, enroll, number, pay_year

GRID_A = "610902100001"
GRID_B = "610902100002"
GRID_HANYIN = "610921100001"


def hanbin_tax_record() -> bytes:
    """A refused record's bytes: a tax record of 610902 (a dead letter's region comes from its record)."""
    from tests.unit.test_dead_letters import PAYMENT, value

    return value(PAYMENT)


@pytest.fixture()
def deployment(tmp_path, monkeypatch):
    """Embedded (SQLite) ledger with views: one resident in grid A, one in grid B, one in Hanyin; none paid 2026."""
    embedded(monkeypatch, tmp_path, "cli-access-test")
    system = bootstrap(load_settings())
    try:
        for seq, grid, region in ((1, GRID_A, HANBIN), (2, GRID_B, HANBIN), (3, GRID_HANYIN, HANYIN)):
            enroll(system.ledger, number(seq), date(2024, 9, 10), grid=grid, region=region)
            pay_year(system.ledger, number(seq), 2025, date(2024, 10, 8), voucher=f"V{seq}")
        system.ledger.save(FeedRejection.reject(
            topic="tax.payments.v1", partition=1, offset=42, key="k", code="ID_CHECKSUM",
            message=f"ID number {number(4)} fails its check digit", raw=hanbin_tax_record(),
            received_at=datetime(2025, 1, 2, tzinfo=timezone.utc)))
    finally:
        system.close()
    assert main(["project", "--quiet"]) == 0
    return tmp_path


PERSONAL = [
    ["person", number(1)],
    ["entitlement", number(1), "--year", "2025"],
    ["gaps", GRID_A, "--as-of", "2026-03-01"],
    ["arrears", "--grid", GRID_A, "--as-of", "2026-03-01"],
    ["history", number(1)],
    ["dlq", "list"],
]


@pytest.mark.parametrize("argv", PERSONAL, ids=lambda a: a[0])
def test_without_a_token_nothing_personal_is_shown(deployment, capsys, argv):
    err = refused(capsys, "TOKEN_MISSING", *argv)
    assert "LEDGER_TOKEN" in err


@pytest.mark.parametrize("argv", PERSONAL, ids=lambda a: a[0])
def test_an_unknown_token_is_refused(deployment, capsys, monkeypatch, argv):
    run_as(monkeypatch, deployment, "auditor")
    monkeypatch.setenv("LEDGER_TOKEN", "not-a-token-anyone-issued")
    refused(capsys, "TOKEN_UNKNOWN", *argv)


def test_a_token_without_a_tokens_file_says_which_variable_to_set(deployment, capsys, monkeypatch):
    monkeypatch.setenv("LEDGER_TOKEN", "something")
    err = refused(capsys, "TOKENS_FILE_INVALID", "person", number(1))
    assert "LEDGER_TOKENS_FILE" in err


def test_grid_worker_reads_own_grid_only_and_never_full_ids(deployment, capsys, monkeypatch):
    run_as(monkeypatch, deployment, "grid_worker", [GRID_A])
    status, out, _ = run(capsys, "gaps", GRID_A, "--as-of", "2026-03-01", "--json")
    assert status == 0
    (line,) = json.loads(out)
    assert line["masked_id"] == f"{number(1)[:4]}**********{number(1)[-4:]}" and number(1) not in out
    status, out, _ = run(capsys, "person", number(1))
    assert status == 0 and number(1) not in out and number(1)[-4:] in out
    assert run(capsys, "entitlement", number(1), "--year", "2025")[0] == 0
    assert run(capsys, "arrears", "--grid", GRID_A, "--as-of", "2026-03-01")[0] == 0

    refused(capsys, "SCOPE_FORBIDDEN", "gaps", GRID_B, "--as-of", "2026-03-01")
    refused(capsys, "SCOPE_FORBIDDEN", "gaps", "610902100", "--as-of", "2026-03-01")  # the whole township
    refused(capsys, "SCOPE_FORBIDDEN", "person", number(2))
    refused(capsys, "SCOPE_FORBIDDEN", "entitlement", number(2), "--year", "2025")
    refused(capsys, "SCOPE_FORBIDDEN", "arrears", "--grid", GRID_B, "--as-of", "2026-03-01")
    refused(capsys, "SCOPE_FORBIDDEN", "arrears", "--as-of", "2026-03-01")  # must name a grid
    refused(capsys, "REVEAL_FORBIDDEN", "person", number(1), "--reveal")
    refused(capsys, "ROLE_FORBIDDEN", "history", number(1))


def test_clerk_reads_own_region_with_full_ids(deployment, capsys, monkeypatch):
    run_as(monkeypatch, deployment, "clerk", [HANBIN])
    status, out, _ = run(capsys, "person", number(2), "--reveal", "--json")
    assert status == 0 and json.loads(out)["id_number"] == number(2)
    assert run(capsys, "gaps", "610902100", "--as-of", "2026-03-01")[0] == 0
    status, out, _ = run(capsys, "arrears", "--as-of", "2026-03-01", "--json")
    assert status == 0
    assert {r["region_code"] for r in json.loads(out)} == {HANBIN}  # not Hanyin's resident

    refused(capsys, "SCOPE_FORBIDDEN", "person", number(3))
    refused(capsys, "SCOPE_FORBIDDEN", "gaps", GRID_HANYIN, "--as-of", "2026-03-01")
    refused(capsys, "SCOPE_FORBIDDEN", "arrears", "--region", HANYIN, "--as-of", "2026-03-01")
    refused(capsys, "REGION_FORMAT", "arrears", "--region", "61090", "--as-of", "2026-03-01")
    refused(capsys, "ROLE_FORBIDDEN", "history", number(2))


def test_auditor_reads_everything_including_history(deployment, capsys, monkeypatch):
    run_as(monkeypatch, deployment, "auditor")
    status, out, _ = run(capsys, "arrears", "--as-of", "2026-03-01", "--json")
    assert status == 0 and {r["region_code"] for r in json.loads(out)} == {HANBIN, HANYIN}
    assert run(capsys, "person", number(3), "--reveal")[0] == 0
    assert run(capsys, "gaps", GRID_HANYIN, "--as-of", "2026-03-01")[0] == 0
    status, out, _ = run(capsys, "history", number(3), "--json")
    assert status == 0 and json.loads(out)["events"]


def test_the_tax_integration_reads_nothing_personal(deployment, capsys, monkeypatch):
    run_as(monkeypatch, deployment, "tax_integration", [HANBIN])
    for argv in PERSONAL:
        refused(capsys, "ROLE_FORBIDDEN", *argv)


def test_dead_letters_are_listed_for_clerks_and_auditors_with_ids_masked(deployment, capsys, monkeypatch):
    run_as(monkeypatch, deployment, "clerk", [HANBIN])
    status, out, _ = run(capsys, "dlq", "list", "--json")
    (letter,) = json.loads(out)
    assert status == 0 and letter["code"] == "ID_CHECKSUM" and letter["source"] == "tax.payments.v1[1]@42"
    assert number(4) not in out and number(4)[-4:] in letter["message"]
    assert json.loads(run(capsys, "dlq", "list", "--code", "AVRO_BAD_MAGIC", "--json")[1]) == []
    # Re-submitting needs the broker; without one it says so and changes nothing.
    refused(capsys, "KAFKA_NOT_CONFIGURED", "dlq", "resubmit", letter["id"], "--reason", "fixed")
    refused(capsys, "SELECTION_REQUIRED", "dlq", "resubmit", "--reason", "fixed")

    run_as(monkeypatch, deployment, "clerk", [HANYIN])  # another region's clerk: not theirs
    assert json.loads(run(capsys, "dlq", "list", "--json")[1]) == []
    run_as(monkeypatch, deployment, "auditor")
    assert run(capsys, "dlq", "list")[0] == 0
    refused(capsys, "ROLE_FORBIDDEN", "dlq", "resubmit", letter["id"], "--reason", "auditors only read")
    run_as(monkeypatch, deployment, "grid_worker", [GRID_A])
    refused(capsys, "ROLE_FORBIDDEN", "dlq", "list")
