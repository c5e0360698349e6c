"""Every ``ledger`` subcommand that prints text, run on a small seeded embedded ledger: under ``--lang en`` no
Chinese character appears except in the data (the seeded person's name, the places' names, what a clerk typed),
and by default the headings are Chinese.

The allowed Chinese is built from the seeded data, not written down: the name the fixture enrolled, the names of
the seeded regions and grids as the places table gives them, the reason the test's clerk typed. A new English-only
or Chinese-only text in any of these commands fails here and names the command and the line.
"""
from __future__ import annotations

import re

import pytest

from entrypoints.catalogue import _CJK
from entrypoints.wiring import bootstrap
from infra.settings import load_settings
from ledger.domain.coverage import region_label
from tests.unit.cli_support import run, run_as
from tests.unit.projection_support import HANBIN, HANYIN, number
from tests.unit.test_cli_access import GRID_A, GRID_B, GRID_HANYIN, deployment  # noqa: F401  (the fixture)

#: (who runs it, scopes, argv, a Chinese heading or word the default answer must show)
COMMANDS: list[tuple[str | None, list[str], list[str], str]] = [
    (None, [], ["policy"], "参保地"),
    (None, [], ["policy", HANBIN, "2026"], "个人缴费"),
    ("clerk", [HANBIN], ["person", number(1)], "证件号码"),
    ("clerk", [HANBIN], ["entitlement", number(1), "--year", "2025"], "参保年度"),
    ("clerk", [HANBIN], ["entitlement", number(1), "--year", "2025", "--on", "2025-06-01"], "享受待遇"),
    ("clerk", [HANBIN], ["entitlement", number(1), "--year", "2026"], "参保年度"),
    ("grid_worker", [GRID_A], ["gaps", GRID_A, "--as-of", "2026-03-01"], "未参保"),
    ("clerk", [HANBIN], ["arrears", "--grid", GRID_A, "--as-of", "2026-03-01"], "欠费"),
    ("clerk", [HANBIN], ["coverage", "--region", HANBIN, "--as-of", "2025-06-01"], "参保率"),
    ("clerk", [HANBIN], ["coverage", "--region", HANBIN, "--as-of", "2025-06-01", "--townships"], "参保率"),
    ("clerk", [HANBIN], ["fees", "--region", HANBIN, "--as-of", "2026-03-01"], "滞纳金"),
    ("auditor", [], ["history", number(1)], "事件"),
    ("auditor", [], ["verify"], "账本校验"),
    ("auditor", [], ["dlq", "list"], "死信"),
    (None, [], ["status"], "视图"),
    (None, [], ["project"], "视图已追上"),
    ("clerk", [HANBIN], ["clerk", "pending"], "双人复核"),
    ("clerk", [HANBIN], ["clerk", "transfers", "--region", HANBIN, "--as-of", "2026-03-01"], "转移接续"),
    (None, [], ["reconcile", "open"], "未结差异"),
    (None, [], ["reconcile", "summary"], "参保地"),
    (None, [], ["reconcile", "missing", "--as-of", "2025-01-31"], "缺"),
]


def _allowed(home) -> set[str]:
    """The Chinese the data brings: the seeded people's names and the seeded places' names."""
    system = bootstrap(load_settings())
    try:
        names = [system.ledger.find_person("RESIDENT_ID", number(n)).name for n in (1, 2, 3)]
    finally:
        system.close()
    places = [region_label(code) for code in (HANBIN, HANYIN, GRID_A, GRID_B, GRID_HANYIN)]
    return {ch for text in names + places for ch in text if _CJK.match(ch)}


def _foreign(text: str, allowed: set[str]) -> list[str]:
    """The lines of ``text`` with a Chinese character the data does not explain."""
    return [line for line in text.splitlines() if any(_CJK.match(ch) and ch not in allowed for ch in line)]


@pytest.mark.parametrize(("role", "scopes", "argv", "heading"), COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_a_command_speaks_english_on_request_and_chinese_by_default(deployment, capsys, monkeypatch,  # noqa: F811
                                                                   role, scopes, argv, heading):
    if role is not None:
        run_as(monkeypatch, deployment, role, scopes)
    allowed = _allowed(deployment)
    status, out, err = run(capsys, *argv, "--lang", "en")
    assert status in (0, 1), (argv, err)
    assert out.strip(), argv
    assert _foreign(out + err, allowed) == [], argv
    status, out, err = run(capsys, *argv)
    assert status in (0, 1), (argv, err)
    assert heading in out, (argv, out[:400])
    assert not re.search(r"\{'|\{\d+: ", out) and "None" not in out, (argv, out[:400])  # no Python dict, no None


def test_a_clerks_commands_and_their_refusals_speak_english_on_request(deployment, capsys, monkeypatch):  # noqa: F811
    run_as(monkeypatch, deployment, "clerk", [HANBIN])
    allowed = _allowed(deployment)
    steps = [
        ["clerk", "assess-resident-year", "--id-number", number(1), "--year", "2026"],
        ["clerk", "assess-resident-year", "--id-number", number(1), "--year", "2026"],  # again: nothing to change
        ["clerk", "end-enrollment", "--id-number", number(2), "--reason", "DUPLICATE_RESOLVED",
         "--effective-date", "2026-01-31"],
        ["clerk", "pending"],
        ["person", number(9)],  # refused: PERSON_NOT_FOUND
        ["import"],  # refused: FILE_REQUIRED
        ["gaps"],  # argparse: ARGUMENT_INVALID
    ]
    for argv in steps:
        try:
            status, out, err = run(capsys, *argv, "--lang", "en")
        except SystemExit as e:  # argparse's refusal ends the run (exit status 2)
            assert e.code == 2
            out, err = capsys.readouterr()
        assert _foreign(out + err, allowed) == [], (argv, out, err)
        assert out.strip() or err.startswith("usage:") or err.startswith("error "), (argv, out, err)


def test_the_template_commands_say_what_they_wrote_in_the_runs_language(deployment, capsys, tmp_path):  # noqa: F811
    for command in ("import", "migrate"):
        target = tmp_path / f"{command}.xlsx"
        status, out, _ = run(capsys, command, "--template", str(target), "--lang", "en")
        assert status == 0 and target.exists() and str(target) in out and not _CJK.search(out), out
        status, out, _ = run(capsys, command, "--template", str(target))
        assert status == 0 and "模板" in out


def test_the_command_lines_chinese_words_are_the_domains_own_labels():
    """The gap reasons and the arrears labels the command line prints are the web's and the API's words; their
    Chinese is the domain's, word for word, and their English has no Chinese."""
    from entrypoints.cli import gap_label
    from entrypoints.http.web import labels
    from ledger.domain.arrears import FEE_ONLY_LABEL, OUTSTANDING_LABEL
    from ledger.domain.gaps import REASON_LABELS, REASONS

    assert {r: gap_label(r, "zh") for r in REASONS} == REASON_LABELS
    assert (labels.listed_because({"fee_only": False}), labels.listed_because({"fee_only": True})) == (
        OUTSTANDING_LABEL, FEE_ONLY_LABEL)
    assert not any(_CJK.search(gap_label(r, "en")) for r in REASONS)
    assert gap_label("SOMETHING_NEW", "en", "kept") == "kept"


def test_an_export_says_what_it_wrote_in_the_runs_language(deployment, capsys, monkeypatch, tmp_path):  # noqa: F811
    run_as(monkeypatch, deployment, "clerk", [HANBIN])
    target = tmp_path / "arrears.csv"
    status, out, err = run(capsys, "arrears", "--grid", GRID_A, "--as-of", "2026-03-01", "--csv", str(target),
                           "--lang", "en")
    assert status == 0 and target.exists() and err.startswith(f"wrote {target} (") and not _CJK.search(err), err
    status, out, err = run(capsys, "arrears", "--grid", GRID_A, "--as-of", "2026-03-01", "--csv", str(target))
    assert status == 0 and err.startswith(f"已写入 {target}（"), err



def test_the_gap_lists_detail_column_is_said_in_the_runs_language(deployment, capsys, monkeypatch):  # noqa: F811
    """``ledger gaps``' 说明 column: the 系统说明 sentence of the exports (Chinese from the reason code and the line's
    figures), not the entitlement's English sentence; English keeps the domain's own."""
    run_as(monkeypatch, deployment, "grid_worker", [GRID_A])
    english_sentence = re.compile(r"\b[a-z]{3,} [a-z]{2,} [a-z]{2,}\b")
    status, out, _ = run(capsys, "gaps", GRID_A, "--as-of", "2026-03-01")
    assert status in (0, 1) and "未参保" in out
    rows = [line for line in out.splitlines() if re.search(r"\d{4}\*+\d{3}[\dX]", line)]
    assert rows, out
    assert not [line for line in rows if english_sentence.search(line)], out
    status, out, _ = run(capsys, "gaps", GRID_A, "--as-of", "2026-03-01", "--lang", "en")
    rows = [line for line in out.splitlines() if re.search(r"\d{4}\*+\d{3}[\dX]", line)]
    assert rows and all(english_sentence.search(line) for line in rows), out
