"""The ``w2sg`` command line: parse, call the library, print. One module per command group.

Each module in this package exposes ``register(subparsers)``, which adds its sub-commands and sets
``func`` (taking the parsed ``argparse.Namespace`` and returning an exit code) on each of them.

Every failure ends in one line on stderr, never a traceback (unless ``w2sg --debug``): a
:class:`W2SGError`, or a file, permission, encoding or database problem of the user's environment,
prints ``w2sg: error: …`` and exits with status 2; anything else is a bug in w2sg and prints
``w2sg: error: internal error …`` with exit status 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from w2sg import __version__
from w2sg.errors import W2SGError

# Command-group modules, in the order their commands appear in ``w2sg --help``.
_GROUPS = ("run", "theory", "rank", "bounds", "assets", "pretrain", "experiments")


class HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default after its help, unless the help already names it or there is
    none to show (no value, a flag that is off)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, argparse.SUPPRESS)
            or not action.option_strings
            or isinstance(action, argparse._StoreConstAction)
        ):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, list | tuple) else default
        return f"{text} (default: {shown})".replace("%", "%%") if text else f"default: {shown}"


class Parser(argparse.ArgumentParser):
    """``argparse`` with usage errors as one line ``w2sg: error: COMMAND: …`` (exit status 2),
    like every other error, instead of the usage block followed by the message, and with each
    option's default in ``--help``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("w2sg").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"w2sg: error: {where}{one_line(message)} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="w2sg",
        description="Weak-to-strong generalization: train weak, weak-to-strong and ceiling models, "
        "measure PGR, and predict it from representations.",
    )
    parser.add_argument("--version", action="version", version=f"w2sg {__version__}")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow models whose repository ships Python code to run it (transformers' "
        "trust_remote_code); off by default",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on an error, print the Python traceback as well as the one-line message",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _GROUPS:
        try:
            module = importlib.import_module(f"w2sg.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"w2sg.cli.{name}":
                continue
            raise
        module.register(subparsers)
    _describe_commands(parser)
    return parser


def _describe_commands(parser: argparse.ArgumentParser) -> None:
    """Give every command without a description its one-line help as the description, so that
    ``w2sg COMMAND --help`` always says what the command does."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, sub in action.choices.items():
            if not sub.description and helps.get(name):
                text = str(helps[name])
                sub.description = text[0].upper() + text[1:] + "."
            _describe_commands(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.trust_remote_code:
        from w2sg.represent.extract import TRUST_REMOTE_CODE_ENV

        os.environ[TRUST_REMOTE_CODE_ENV] = "1"  # workers and a local Ray cluster inherit it
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("w2sg: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        message, code = failure_message(exc)
        print(f"w2sg: error: {message}", file=sys.stderr)
        return code


def one_line(text: str) -> str:
    """``text`` on one line: its lines stripped and joined, shortened to 500 characters."""
    joined = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return joined if len(joined) <= 500 else joined[:497] + "..."


def failure_message(exc: BaseException) -> tuple[str, int]:
    """The one-line message and exit status of a failure: 2 for the user's input and environment
    (:class:`W2SGError`, files, permissions, encodings, databases), 1 for a bug in w2sg."""
    if isinstance(exc, W2SGError):
        return one_line(str(exc)), 2
    if isinstance(exc, OSError):
        from w2sg.data.io import os_problem

        where = f"{exc.filename}: " if exc.filename else ""
        return one_line(f"{where}{os_problem(exc)}"), 2
    if isinstance(exc, UnicodeDecodeError):
        return one_line(f"a file is not UTF-8 text ({exc.reason}); re-save it as UTF-8"), 2
    if isinstance(exc, sqlite3.Error):
        return one_line(f"database error: {exc}"), 2
    if isinstance(exc, MemoryError):
        return "out of memory; use a smaller input (--limit) or a larger machine", 2
    detail = one_line(f"{type(exc).__name__}: {exc}")
    return f"internal error ({detail}); please report it with the output of `w2sg --debug ...`", 1


def entry() -> None:
    sys.exit(main())
