"""Entry point of one training process: ``python -m neurofm.pretrain --config FILE``.

Launched by ``torchrun`` on every rank (``torchrun --nproc_per_node=N -m neurofm.pretrain
--config ...``; multi-node with ``--nnodes`` and ``--rdzv-endpoint``); ``neurofm pretrain`` is
the friendlier front end that also launches torchrun for ``--nproc N``.
"""

from __future__ import annotations

import argparse
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m neurofm.pretrain",
        description="Pretrain a backbone by masked modelling (one rank; run under torchrun for "
                    "several).")
    add_training_arguments(parser)
    return parser


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by this entry point and ``neurofm pretrain``."""
    parser.add_argument("--config", required=True,
                        help="YAML config (see pretrain/configs/).")
    parser.add_argument("--out", default=None,
                        help="Run directory (overrides run.out_dir).")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="Override a config value, e.g. --set run.steps=100 "
                             "--set model.overrides.depth=4 (repeatable).")
    parser.add_argument("--resume", action="store_true",
                        help="Require a checkpoint to continue from (by default a run resumes "
                             "automatically when its out dir holds one).")


def config_from_args(args):
    from neurofm.train.config import load_config

    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"run.out_dir={args.out}")
    if args.resume:
        overrides.append("run.resume=always")
    return load_config(args.config, overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from neurofm.train.loop import train

    try:
        result = train(config_from_args(args))
    except (FileNotFoundError, ValueError) as err:
        print(f"neurofm.pretrain (rank {os.environ.get('RANK', '0')}): error: {err}",
              file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"Finished {result.steps} steps, final loss {result.final_loss:.6g}; model in "
              f"{result.model_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
