"""The ``neurofm`` command line.

Each sub-command lives in its own module under :mod:`neurofm.commands` and exposes
``register(subparsers)``; this module assembles them and gives every command the output flags
(:func:`neurofm.logs.add_output_flags`). Building the parser imports no heavy library (torch,
MNE, numpy ...): a command module imports what its run needs inside its run function, so
``neurofm --help`` and ``neurofm CMD --help`` answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator

from neurofm._version import __version__
from neurofm.commands.flags import warn_deprecated_flags
from neurofm.logs import add_output_flags, command_output
from neurofm.user_errors import USER_ERRORS, is_user_error, one_line

#: Sub-commands (modules of :mod:`neurofm.commands`), in the order ``neurofm --help`` lists them.
COMMANDS = ("info", "prepare", "corpus", "pretrain", "probe", "finetune", "compare", "datasets",
            "simulate", "tokenizer", "hub", "convert", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurofm",
        description="Brain-signal foundation models: prepare corpora, pretrain, probe, fine-tune.",
        epilog="Every command takes -v/--verbose, -q/--quiet, --no-progress and --debug; "
               "`neurofm COMMAND --help` lists its options.")
    parser.add_argument("--version", action="version", version=f"neurofm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"neurofm.commands.{name}").register(sub)
    for command in command_parsers(parser):
        add_output_flags(command)
    return parser


def command_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parsers below ``parser`` that run a command (``info``, ``corpus stats`` ...), not
    those that only choose an action (``corpus``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if any(isinstance(a, argparse._SubParsersAction) for a in child._actions):
                    yield from command_parsers(child)
                else:
                    yield child


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        with command_output(args):
            warn_deprecated_flags(args)
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        # User-facing errors carry a message that says what to do; no traceback.
        if getattr(args, "debug", False) or not is_user_error(err):
            raise
        print(f"neurofm {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
