"""The ``ledger`` program: its table of commands, the parser, ``main``.

This module imports only the standard library and three small modules built on it (the message
catalogue, the settings and the domain's error type), so that ``ledger --help`` and a command's
start are quick: :data:`COMMANDS` names each top-level command's module, and only the module
of the command being run is imported (``importlib``, in :func:`build_parser`). That is the
one deliberate lazy import of the command line; the command modules themselves import what
they use at module level. ``ledger --help`` lists the commands from this table without
importing any of them.

A new top-level command: add ``name: Command(module, adder)`` here, in the order ``--help``
lists it, and its help line to ``[cli_commands]`` of ``entrypoints/locale/{zh,en}.toml``; its
module's ``add_*_commands(sub)`` (``Command.adder``) adds its parser, taking the help with
:func:`help_of`. Help and output are Chinese unless ``--lang en`` or ``LEDGER_LANG=en``
(:func:`cli_lang`); option helps are translated from ``[cli_options]`` (:func:`_localize`). tests/unit/test_cli_skeleton.py checks the two agree.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Iterator, Sequence
from typing import NamedTuple, NoReturn

from entrypoints import catalogue
from infra.settings import setting  # the one reader of the environment (LEDGER_LANG)

#: The language of this run's help, output and error lines: set by :func:`build_parser` (see :func:`cli_lang`).
_LANG = catalogue.DEFAULT_LANG


class Command(NamedTuple):
    module: str  # imported when the command runs
    adder: str  # the module's function that adds its parsers: adder(subparsers)


_LEDGER = ("entrypoints.cli", "add_ledger_commands")
_FEEDS = ("entrypoints.cli", "add_feed_commands")
_VIEWS = ("entrypoints.cli", "add_view_commands")
_HTTP = ("entrypoints.http.cli_commands", "add_http_commands")
_RECONCILE = ("entrypoints.reconcile", "add_reconcile_commands")
_AUDIT = ("entrypoints.audit.cli_commands", "add_audit_commands")

#: Every top-level command, in the order ``ledger --help`` lists them.
COMMANDS: dict[str, Command] = {
    "infra": Command(*_LEDGER),
    "policy": Command(*_LEDGER),
    "person": Command(*_LEDGER),
    "demo": Command("entrypoints.demo", "add_demo_command"),
    "consume": Command(*_FEEDS),
    "status": Command(*_FEEDS),
    "feed": Command(*_FEEDS),
    "dlq": Command(*_FEEDS),
    "publish": Command(*_FEEDS),
    "serve": Command(*_HTTP),
    "clerk": Command(*_HTTP),
    "import": Command(*_HTTP),
    "migrate": Command(*_HTTP),
    "token": Command(*_HTTP),
    "project": Command(*_VIEWS),
    "entitlement": Command(*_VIEWS),
    "arrears": Command(*_VIEWS),
    "gaps": Command(*_VIEWS),
    "coverage": Command(*_VIEWS),
    "fees": Command("entrypoints.http.fees_cli", "add_fee_commands"),
    "reconcile": Command(*_RECONCILE),
    "history": Command(*_AUDIT),
    "verify": Command(*_AUDIT),
}


def help_of(name: str, lang: str | None = None) -> str:
    """The help line ``ledger --help`` shows for top-level command ``name``, in this run's language."""
    if name not in COMMANDS:
        raise KeyError(name)
    return catalogue.text("cli_commands", name, lang or _LANG)


def cli_lang(argv: Sequence[str]) -> str:
    """``--lang en`` / ``--lang=en`` anywhere on the line, else ``LEDGER_LANG``, else Chinese."""
    words = list(argv)
    for i, word in enumerate(words):
        if word == "--lang" and i + 1 < len(words):
            return catalogue.lang_of(words[i + 1])
        if word.startswith("--lang="):
            return catalogue.lang_of(word.split("=", 1)[1])
    return str(setting("LEDGER_LANG") or catalogue.DEFAULT_LANG)


@contextlib.contextmanager
def _argparse_in_language() -> Iterator[None]:
    """argparse's own sentences through :func:`_argparse_text` while building and parsing, then as they were
    (argparse looks its ``_`` up at each use; other parsers of the process are left alone)."""
    before = argparse._  # type: ignore[attr-defined]
    argparse._ = _argparse_text  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._ = before  # type: ignore[attr-defined]


def _argparse_text(message: str) -> str:
    """argparse's own sentences (``usage:``, ``options``, its errors) in this run's language."""
    if _LANG != "en" and catalogue.has("argparse", message):
        return catalogue.raw("argparse", message)
    return message


def _localize(parser: argparse.ArgumentParser, lang: str, path: str = "") -> None:
    """Every parser of the tree in ``lang``: option helps from the catalogue (section ``cli_options``, keyed
    ``"command sub.dest"``; the English is the one written beside the option), subcommand helps (section
    ``cli_commands``), and ``--lang`` on every parser so that it may come anywhere on the line."""
    if not any("--lang" in a.option_strings for a in parser._actions):
        parser.add_argument("--lang", choices=catalogue.LANGS, default=argparse.SUPPRESS,
                            help=catalogue.text("cli", "lang_help", lang))
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                key = f"{path} {choice.dest}".strip()
                if catalogue.has("cli_commands", key, lang):
                    choice.help = catalogue.raw("cli_commands", key, lang)
            for name, sub in action.choices.items():
                _localize(sub, lang, f"{path} {name}".strip())
        elif action.dest == "lang" and action.help:
            action.help = catalogue.text("cli", "lang_help", lang)
        elif action.dest == "json" and not action.help:
            action.help = catalogue.text("cli", "json_help", lang)
        elif lang != "en" and path and catalogue.has("cli_options", f"{path}.{action.dest}"):
            action.help = catalogue.raw("cli_options", f"{path}.{action.dest}")


def _chosen(argv: Sequence[str] | None) -> str | None:
    """The top-level command ``argv`` runs (its first word that is not an option), if it names one."""
    for word in argv or ():
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None, lang: str | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: the chosen command's module is imported and adds its full parser; every other
    command is a line of ``--help`` from :data:`COMMANDS`. Without ``argv``: every command's full parser.
    Help and argparse's own sentences in ``lang`` (default: :func:`cli_lang` of ``argv``)."""
    global _LANG
    _LANG = lang or cli_lang(argv or ())
    with _argparse_in_language():
        return _build(argv)


class _Parser(argparse.ArgumentParser):
    """argparse's refusals in the house format, ``error ARGUMENT_INVALID: ledger gaps：<argparse's sentence>`` after
    the usage line, exit status 2 (every subcommand's parser is of this class: argparse makes them of its type)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, "error ARGUMENT_INVALID: "
                  + catalogue.text("cli_errors", "arguments", _LANG, prog=self.prog, message=message) + "\n")


def _build(argv: Sequence[str] | None) -> argparse.ArgumentParser:
    parser = _Parser(prog="ledger", description=catalogue.text("cli", "description", _LANG),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = _chosen(argv)
    wanted = {(c.module, c.adder) for n, c in COMMANDS.items() if argv is None or n == chosen}
    added: set[tuple[str, str]] = set()
    for name, c in COMMANDS.items():
        if (c.module, c.adder) in wanted:
            if (c.module, c.adder) not in added:
                added.add((c.module, c.adder))
                getattr(importlib.import_module(c.module), c.adder)(sub)
        else:
            sub.add_parser(name, help=help_of(name))
    _localize(parser, _LANG)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        lang = cli_lang(argv)
    except Exception as e:  # LEDGER_LANG set to something else than zh / en: SETTING_INVALID
        code, message = getattr(e, "code", "SETTING_INVALID"), getattr(e, "message", str(e))
        print(f"error {code}: {catalogue.error_message(code, message)}", file=sys.stderr)
        return 2
    with _argparse_in_language():
        args = build_parser(argv, lang).parse_args(argv)
    args.lang = lang
    # The skeleton's runner (entrypoints.command) comes with the command's module, imported above.
    run = importlib.import_module("entrypoints.command").run
    with catalogue.speaking(lang):  # what is said before the command knows its arguments (startup checks) too
        return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
