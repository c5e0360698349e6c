"""The one command skeleton (entrypoints.command) and the program's command table (entrypoints.main)."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from entrypoints.command import Answer, command, run
from entrypoints.main import COMMANDS, build_parser, help_of
from ledger.domain.errors import DomainError

ROOT = Path(__file__).resolve().parents[2]


class FakeSystem:
    def __init__(self, kafka: str = "") -> None:
        self.settings = SimpleNamespace(kafka_bootstrap_servers=kafka)
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


class Wiring:
    """Counts the systems it builds, as bootstrap would build them."""

    def __init__(self, kafka: str = "") -> None:
        self.kafka = kafka
        self.built: list[FakeSystem] = []

    def __call__(self) -> FakeSystem:
        self.built.append(FakeSystem(self.kafka))
        return self.built[-1]


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(json=False, **kw)


def test_the_answer_is_shown_as_text_or_json_and_the_system_closed(capsys):
    wiring = Wiring()

    @command(wiring=wiring)
    def cmd(args, system):
        return Answer({"n": 1, "name": "张三"}, lambda p: print(f"n is {p['n']}"), exit_code=1)

    assert run(_args(func=cmd)) == 1
    assert capsys.readouterr().out == "n is 1\n"
    assert run(argparse.Namespace(json=True, func=cmd)) == 1
    assert json.loads(capsys.readouterr().out) == {"n": 1, "name": "张三"}
    assert [s.closed for s in wiring.built] == [1, 1]


def test_a_refused_check_opens_nothing(capsys):
    wiring = Wiring()

    def refuse(args):
        raise DomainError("TOKEN_MISSING", "缺少令牌")

    @command(check=refuse, wiring=wiring)
    def cmd(args, system, who):  # pragma: no cover - never reached
        raise AssertionError

    assert run(_args(func=cmd)) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", "error TOKEN_MISSING: 缺少令牌\n")
    assert wiring.built == []


def test_the_check_result_is_the_bodys_third_argument_and_an_error_in_the_body_still_closes(capsys):
    wiring = Wiring()
    seen = []

    @command(check=lambda args: "clerk-1", wiring=wiring)
    def cmd(args, system, who):
        seen.append(who)
        raise DomainError("NOT_FOUND", "查无此人")

    assert run(_args(func=cmd)) == 2
    assert seen == ["clerk-1"] and wiring.built[0].closed == 1
    assert capsys.readouterr() == ("", "error NOT_FOUND: 查无此人\n")


def test_a_crash_is_not_swallowed_but_the_system_is_closed():
    wiring = Wiring()

    @command(wiring=wiring)
    def cmd(args, system):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run(_args(func=cmd))
    assert wiring.built[0].closed == 1


def test_needs_kafka_stops_with_exit_2_and_a_hint(capsys):
    wiring = Wiring(kafka="")

    @command(wiring=wiring, needs_kafka="nothing_to_consume")
    def cmd(args, system):  # pragma: no cover - never reached
        raise AssertionError

    assert run(_args(func=cmd)) == 2
    assert capsys.readouterr().err.startswith("未设置 KAFKA_BOOTSTRAP_SERVERS：没有可消费的数据（本地环境可运行 eval ")
    assert wiring.built[0].closed == 1
    assert run(_args(func=cmd, lang="en")) == 2
    assert capsys.readouterr().err.startswith("KAFKA_BOOTSTRAP_SERVERS is not set: nothing to consume from (eval ")

    ran = []
    wiring = Wiring(kafka="localhost:9092")
    cmd2 = command(wiring=wiring, needs_kafka="x")(lambda args, system: ran.append(system) or 0)
    assert run(_args(func=cmd2)) == 0 and ran == wiring.built


def test_a_command_without_a_system():
    @command(wiring=None, check=lambda args: 7)
    def cmd(args, checked):
        return checked - 7

    assert run(_args(func=cmd)) == 0


def test_the_table_names_every_command_in_the_order_and_with_the_help_of_the_full_parser():
    full = build_parser()
    (sub,) = [a for a in full._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(sub.choices) == list(COMMANDS)
    assert {a.dest: a.help for a in sub._choices_actions} == {name: help_of(name) for name in COMMANDS}
    # `ledger --help` lists them without building any command's parser.
    stub = build_parser(["--help"])
    (stub_sub,) = [a for a in stub._actions if isinstance(a, argparse._SubParsersAction)]
    assert stub.format_help() == full.format_help()
    assert all([a.dest for a in p._actions] == ["help", "lang"] for p in stub_sub.choices.values())  # only -h, --lang


def test_only_the_chosen_commands_module_is_imported():
    code = ("import sys; from entrypoints.main import build_parser; build_parser(['reconcile', 'open']); "
            "print(sorted(m for m in ('entrypoints.cli', 'entrypoints.reconcile', 'entrypoints.audit.cli_commands', "
            "'entrypoints.http.cli_commands') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['entrypoints.reconcile']"


def test_every_command_of_the_full_parser_runs_in_the_skeleton():
    """Every parser's func is a skeleton command (functools.wraps keeps the body in __wrapped__), but for
    ``import`` and ``migrate``, which refuse a missing file in their own words before their skeleton command runs."""
    full = build_parser()
    funcs = set()

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for p in action.choices.values():
                    walk(p)
        if parser._defaults.get("func"):
            funcs.add(parser._defaults["func"])

    walk(full)
    plain = sorted(f.__name__ for f in funcs if not hasattr(f, "__wrapped__"))
    assert plain == ["cmd_import", "cmd_migrate"]
    assert len(funcs) >= 30
