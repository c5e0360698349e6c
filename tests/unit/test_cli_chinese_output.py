"""The text answers of ``ledger person``, ``policy`` and ``dlq list`` are Chinese by default (headings from the
catalogue, money in yuan with two decimals, columns aligned counting wide characters) and English with ``--lang en``;
the codes and the ``--json`` keys do not change."""
from __future__ import annotations

import json

from entrypoints.console import display_width
from tests.unit.cli_support import run, run_as
from tests.unit.projection_support import HANBIN, number
from tests.unit.test_cli_access import deployment  # noqa: F401  (the fixture)


def test_person_is_chinese_with_yuan_and_english_on_request(deployment, capsys, monkeypatch):  # noqa: F811
    run_as(monkeypatch, deployment, "clerk", [HANBIN])
    status, out, _ = run(capsys, "person", number(1))
    assert status == 0
    assert "证件号码" in out and "参保登记：" in out and "核定缴费：" in out
    assert "个人账户余额" in out and " 元" in out and "account_balance_fen" not in out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("所属期"))
    assert "应缴（元）" in lines[head] and "已缴（元）" in lines[head]
    assert "0.00 元" in out  # the account balance in yuan with two decimals, not fen
    # aligned: each cell of the row starts under its heading (terminal columns)
    heading_cols = [display_width(lines[head][:lines[head].index(h)]) for h in ("应缴（元）", "已缴（元）")]
    row_cols = [display_width(lines[head + 1][:i]) for i, ch in enumerate(lines[head + 1])
                if ch == "-" and i and lines[head + 1][i - 1] == " "]
    assert set(heading_cols) <= set(row_cols)

    status, out, _ = run(capsys, "person", number(1), "--lang", "en")
    assert status == 0 and "enrollments:" in out and "assessments:" in out and "due (yuan)" in out
    assert "参保登记" not in out
    status, out, _ = run(capsys, "person", number(1), "--json")
    assert "account_balance_fen" in json.loads(out)  # the JSON keeps its keys and fen


def test_policy_is_chinese_with_yuan_and_english_on_request(deployment, capsys):  # noqa: F811
    status, out, _ = run(capsys, "policy", HANBIN, "2026")
    assert status == 0
    assert "个人缴费" in out and "财政补助" in out and "集中缴费期" in out and "是否设等待期" in out
    assert "{'" not in out and "True" not in out  # no Python dict, no Python boolean
    share = json.loads(run(capsys, "policy", HANBIN, "2026", "--json")[1])["individual_share_fen"]
    assert f"{share / 100:,.2f} 元" in out and "individual_share_fen" not in out
    status, out, _ = run(capsys, "policy", HANBIN, "2026", "--lang", "en")
    assert status == 0 and "individual share" in out and f"{share / 100:,.2f} yuan" in out
    # the subsidies: the policy's codes and figures, said in the run's language
    subsidies = json.loads(run(capsys, "policy", HANBIN, "2026", "--json")[1])["subsidies"]
    fixed = next(c for c, d in subsidies.items() if d["kind"] == "FIXED_FEN")
    full = next(c for c, d in subsidies.items() if d["kind"] == "FULL")
    amount = f"{subsidies[fixed]['amount_fen'] / 100:,.2f}"
    assert f"{fixed}: fixed {amount} yuan" in out and f"{full}: full individual share" in out
    zh = run(capsys, "policy", HANBIN, "2026")[1]
    assert f"{fixed} " in zh and f"：定额资助 {amount} 元" in zh and "全额资助个人缴费" in zh
    assert "fixed" not in zh and "individual share" not in zh
    status, out, _ = run(capsys, "policy")
    assert out.splitlines()[0].split() == ["参保地", "政策年度", "暂定年度"]


def test_dead_letters_are_listed_in_chinese_and_english_on_request(deployment, capsys, monkeypatch):  # noqa: F811
    run_as(monkeypatch, deployment, "auditor")
    status, out, _ = run(capsys, "dlq", "list")
    assert status == 0 and "共 1 条死信" in out and "ID_CHECKSUM" in out
    assert out.splitlines()[0].split()[:4] == ["编号", "来源", "参保地", "代码"]
    status, out, _ = run(capsys, "dlq", "list", "--lang", "en")
    assert status == 0 and "1 dead letters" in out and out.splitlines()[0].split()[:2] == ["id", "source"]
