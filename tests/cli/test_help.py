"""Every command has a description and every option a help text with its default (issue 12,
item 5), checked over the whole argparse tree."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from w2sg.cli import build_parser

_SKIP = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


def parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("w2sg",)
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, (*path, name))


def test_every_command_and_option_is_described():
    tree = list(parsers(build_parser()))
    assert len(tree) > 12  # every command group registered
    missing = []
    for path, parser in tree:
        if not (parser.description or "").strip():
            missing.append(f"{' '.join(path)}: no description")
        for action in parser._actions:
            if isinstance(action, _SKIP):
                continue
            if not (action.help or "").strip():
                missing.append(f"{' '.join(path)} {action.option_strings or action.dest}: no help")
    assert not missing, missing


def test_defaults_are_shown_in_help():
    for path, parser in parsers(build_parser()):
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if isinstance(action, _SKIP) or not action.option_strings:
                continue
            if action.default in (None, False, argparse.SUPPRESS):
                continue
            assert "default" in (action.help or "") or "(default: " in text, (path, action.dest)
        # the formatter's own defaults: one per option with a value, where the help has none
        for action in parser._actions:
            if (
                isinstance(action, argparse._StoreAction)
                and action.option_strings
                and action.default not in (None, False)
                and "default" not in (action.help or "")
            ):
                shown = action.default
                if isinstance(shown, list | tuple):
                    shown = ",".join(map(str, shown))
                assert f"(default: {shown})" in text, (path, action.dest)
