"""The ``neurofm`` command line.

Each sub-command lives in its own module under :mod:`neurofm.commands` and exposes
``register(subparsers)``; this module only assembles them.
"""

from __future__ import annotations

import argparse
import sys

from neurofm._version import __version__
from neurofm.commands import (
    convert,
    corpus,
    datasets,
    demo,
    finetune,
    hub,
    info,
    prepare,
    pretrain,
    probe,
    simulate,
    tokenizer,
)
from neurofm.user_errors import USER_ERRORS, is_user_error, one_line

#: Sub-command modules, in the order ``neurofm --help`` lists them.
COMMANDS = [info, prepare, corpus, pretrain, probe, finetune, datasets, simulate, tokenizer, hub,
            convert, demo]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurofm",
        description="Brain-signal foundation models: prepare corpora, pretrain, probe, fine-tune.",
    )
    parser.add_argument("--version", action="version", version=f"neurofm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
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
