"""The one command-line command skeleton: check, build the system, run, show the answer, close.

Every ``ledger`` subcommand is a body decorated with :func:`command`::

    @command(check=_reader)                  # runs first: a refusal opens and writes nothing
    def cmd_gaps(args, system, who) -> Answer:
        lines = view_queries(system).gap_list(args.place, args.year, args.as_of)
        return Answer(lines, render)         # --json: the payload as JSON; otherwise render(payload)

What the skeleton does, in this order:

1. ``check(args)`` when given (token, role, option checks); what it returns is the body's
   third argument;
2. builds the system with ``wiring`` (default: :func:`entrypoints.wiring.bootstrap`, the one
   wiring function; ``wiring=None`` for a command that needs no system: the body is then
   ``body(args)`` or ``body(args, checked)``);
3. with ``needs_kafka="nothing_to_consume"`` (a key of the catalogue's ``[cli]``): no ``KAFKA_BOOTSTRAP_SERVERS``, that sentence
   on stderr and exit status 2;
4. runs the body: an :class:`Answer` is emitted (a table or text, or ``--json``) and its
   ``exit_code`` returned; an ``int`` is returned as it is; ``None`` is 0;
5. closes the system in ``finally``, whatever happened.

An error a user can cause (:class:`DomainError` and its kinds: ``SETTING_INVALID``,
``TOKEN_MISSING``, ``NOT_FOUND``...) goes up to :func:`run`, the one place that maps it to
``error CODE: message`` on stderr and exit status 2; nothing is printed on stdout before it,
because the answer is shown only once the body has returned.

A new command: write its body with ``@command``, add its parser with
``p.set_defaults(func=cmd_x)`` in its module's ``add_*_commands``, and name the top-level
command in :data:`entrypoints.main.COMMANDS`.
"""
from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from entrypoints import catalogue, wiring as _wiring
from entrypoints.console import emit
from ledger.domain.errors import DomainError
from ledger.policy.book import PolicyFileError


@dataclass(frozen=True)
class Answer:
    """What a command shows: ``payload`` as JSON with ``--json``, else ``render(payload)``; and its exit status."""

    payload: Any
    render: Callable[[Any], None]
    exit_code: int = 0


def _bootstrap() -> Any:
    # Looked up when a command runs, so a test that replaces entrypoints.wiring.bootstrap is obeyed.
    return _wiring.bootstrap()


def _finish(args: argparse.Namespace, result: Any) -> int:
    if isinstance(result, Answer):
        emit(args, result.payload, result.render)
        return result.exit_code
    return int(result or 0)


def command(body: Callable[..., Any] | None = None, *, check: Callable[[argparse.Namespace], Any] | None = None,
            wiring: Callable[[], Any] | None = _bootstrap, needs_kafka: str | None = None) -> Any:
    """Make ``body`` a ``ledger`` command (see the module docstring); ``@command`` or ``@command(...)``."""

    def decorate(body: Callable[..., Any]) -> Callable[[argparse.Namespace], int]:
        @functools.wraps(body)
        def run_command(args: argparse.Namespace) -> int:
            extra = (check(args),) if check is not None else ()
            if wiring is None:
                return _finish(args, body(args, *extra))
            system = wiring()
            try:
                if needs_kafka and not system.settings.kafka_bootstrap_servers:
                    print(catalogue.text("cli", "kafka_missing", _lang(args), why=_why(needs_kafka, _lang(args))), file=sys.stderr)
                    return 2
                return _finish(args, body(args, system, *extra))
            finally:
                system.close()

        return run_command

    return decorate(body) if body is not None else decorate


def _why(needs_kafka: str, lang: str) -> str:
    """``needs_kafka`` is a key of the catalogue's ``[cli]`` (``nothing_to_consume``) or a sentence as it is."""
    return catalogue.text("cli", needs_kafka, lang) if catalogue.has("cli", needs_kafka) else needs_kafka


def _lang(args: argparse.Namespace) -> str:
    return catalogue.lang_of(getattr(args, "lang", None))


def error_line(error: DomainError, lang: str) -> str:
    """``error CODE: message``: the prefix and the code are fixed (scripts look for them), the message is in
    ``lang`` (:func:`entrypoints.catalogue.error_message`)."""
    return f"error {error.code}: {catalogue.error_message(error.code, error.message, lang, error.details)}"


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; an error a user can cause is ``error CODE: message`` on stderr (the message in
    the run's language, Chinese by default), exit status 2."""
    try:
        return int(args.func(args) or 0)
    except DomainError as e:
        print(error_line(e, _lang(args)), file=sys.stderr)
        return 2
    except PolicyFileError as e:  # a policy table read outside the wiring (which converts it itself)
        print(error_line(e.as_domain_error(), _lang(args)), file=sys.stderr)
        return 2


__all__ = ["Answer", "command", "error_line", "run"]
