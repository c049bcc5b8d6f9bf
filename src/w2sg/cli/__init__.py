"""The ``w2sg`` command line: parse, call the library, print. One module per command group.

Each module in this package exposes ``register(subparsers)``, which adds its sub-commands and sets
``func`` (taking the parsed ``argparse.Namespace`` and returning an exit code) on each of them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from w2sg import __version__
from w2sg.errors import W2SGError

# Command-group modules, in the order their commands appear in ``w2sg --help``.
_GROUPS = ("run", "theory", "rank", "bounds", "assets", "pretrain", "experiments")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _GROUPS:
        try:
            module = importlib.import_module(f"w2sg.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"w2sg.cli.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.trust_remote_code:
        from w2sg.represent.extract import TRUST_REMOTE_CODE_ENV

        os.environ[TRUST_REMOTE_CODE_ENV] = "1"  # workers and a local Ray cluster inherit it
    try:
        return int(args.func(args) or 0)
    except W2SGError as exc:
        print(f"w2sg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("w2sg: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())
