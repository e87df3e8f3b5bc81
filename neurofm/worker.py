"""Entry point of one training process, for both training jobs::

    python -m neurofm.worker pretrain --config FILE [--out DIR] [--set KEY=VALUE ...] [--resume]
    python -m neurofm.worker tokenizer --data SOURCE ... --out DIR [--config small] [--steps N]

``torchrun --nproc_per_node=N -m neurofm.worker JOB ...`` runs it on every rank (several machines:
``--nnodes`` and ``--rdzv-endpoint``). ``neurofm pretrain`` and ``neurofm tokenizer train`` run
the same job functions in their own process, or launch this module through torchrun for
``--nproc N`` (:func:`neurofm.commands.launch.launch_workers`).
``python -m neurofm.pretrain --config FILE`` is ``python -m neurofm.worker pretrain --config FILE``.

This module only parses arguments and calls the jobs (:mod:`neurofm.train.loop`,
:mod:`neurofm.train.tokenizer_jobs`). It imports them when a job runs, so that the parsers of
``neurofm pretrain`` and ``neurofm tokenizer train`` (built from this module's argument
functions) need no torch: ``neurofm --help`` answers at once.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from neurofm.logs import add_output_flags, command_output, output_flags_argv
from neurofm.user_errors import USER_ERRORS, is_user_error, one_line

#: The module torchrun launches on every rank.
WORKER_MODULE = "neurofm.worker"
#: Environment variable with the pid of ``neurofm``'s launching process (torchrun's agent).
LAUNCHER_PID_ENV = "NEUROFM_LAUNCHER_PID"
_PR_SET_PDEATHSIG = 1


def add_pretrain_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the pretraining job (also those of ``neurofm pretrain``)."""
    parser.add_argument("--config", required=True,
                        help="YAML config (see pretrain/configs/).")
    parser.add_argument("--out", default=None,
                        help="Run directory (overrides run.out_dir).")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="Override a config value, e.g. --set run.steps=100 "
                             "--set model.overrides.depth=4 (repeatable).")
    parser.add_argument("--seed", type=int, default=None,
                        help="Random seed (model initialisation, masking, data order; the same "
                             "as --set run.seed=S; default: the config's, else 0).")
    parser.add_argument("--resume", action="store_true",
                        help="Require a checkpoint to continue from (by default a run resumes "
                             "automatically when its out dir holds one).")
    parser.add_argument("--allow-changed-settings", action="store_true",
                        help="Resume although model, objective, optimiser, schedule, data, "
                             "batch or seed differ from the checkpoint's (refused otherwise, "
                             "with the list of differences).")
    parser.add_argument("--overwrite", action="store_true",
                        help="Write into --out although it holds files neurofm did not write "
                             "(they are kept; files of the run's names are replaced).")


def add_tokenizer_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the tokenizer training job (also those of ``neurofm tokenizer train``)."""
    parser.add_argument("--data", nargs="+", required=True, metavar="SOURCE",
                        help="A corpus folder (neurofm prepare), sim:tiny / sim:multimodal, or "
                             "recording files (EDF, FIF, BrainVision, ...).")
    parser.add_argument("--config", default="small",
                        help="A named tokenizer config (small, small_unified, base) or a YAML "
                             "file of run settings (default: small).")
    parser.add_argument("--out", required=True, help="Output folder.")
    parser.add_argument("--steps", type=int, help="Optimizer steps (overrides the config).")
    parser.add_argument("--batch-size", type=int,
                        help="Global batch size (overrides the config).")
    parser.add_argument("--lr", type=float, help="Peak learning rate (overrides the config).")
    parser.add_argument("--seed", type=int, help="Random seed (overrides the config).")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--cache-dir", help="Cache of simulated corpora.")
    parser.add_argument("--overwrite", action="store_true",
                        help="Write into --out although it holds files neurofm did not write "
                             "(they are kept).")


def pretrain_argv(args: argparse.Namespace) -> list[str]:
    """The pretraining arguments of ``args`` as a command line (inverse of the parser)."""
    argv = ["--config", args.config]
    if args.out:
        argv += ["--out", args.out]
    for item in args.overrides:
        argv += ["--set", item]
    if args.seed is not None:
        argv += ["--seed", str(args.seed)]
    for flag in ("resume", "allow_changed_settings", "overwrite"):
        if getattr(args, flag):
            argv.append("--" + flag.replace("_", "-"))
    return argv + output_flags_argv(args)


def tokenizer_argv(args: argparse.Namespace) -> list[str]:
    """The tokenizer job's arguments of ``args`` as a command line (inverse of the parser)."""
    argv = ["--data", *args.data, "--config", args.config, "--out", args.out,
            "--device", args.device]
    for flag, value in (("--steps", args.steps), ("--batch-size", args.batch_size),
                        ("--lr", args.lr), ("--seed", args.seed),
                        ("--cache-dir", args.cache_dir)):
        if value is not None:
            argv += [flag, str(value)]
    if args.overwrite:
        argv.append("--overwrite")
    return argv + output_flags_argv(args)


def pretrain_config(args: argparse.Namespace):
    """The :class:`~neurofm.train.config.PretrainConfig` of the pretraining arguments."""
    from neurofm.train.config import load_config

    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"run.seed={args.seed}")
    if args.out:
        overrides.append(f"run.out_dir={args.out}")
    if args.resume:
        overrides.append("run.resume=always")
    return load_config(args.config, overrides)


def tokenizer_run(args: argparse.Namespace):
    """The :class:`~neurofm.train.tokenizer_jobs.TokenizerRun` of the tokenizer arguments."""
    from neurofm.train.tokenizer_jobs import TokenizerRun

    return TokenizerRun.from_source(args.config, steps=args.steps, batch_size=args.batch_size,
                                    lr=args.lr, seed=args.seed)


def run_pretraining(args: argparse.Namespace) -> int:
    """Pretrain on this process (one rank of a torchrun launch, or alone)."""
    from neurofm.train.loop import train

    result = train(pretrain_config(args), overwrite=args.overwrite,
                   allow_changed_settings=args.allow_changed_settings, config_file=args.config)
    if _rank() == 0:
        print(f"Finished {result.steps} steps, final loss {result.final_loss:.6g}; model in "
              f"{result.model_dir}")
    return 0


def run_tokenizer_training(args: argparse.Namespace) -> int:
    """Train a tokenizer on this process (one rank of a torchrun launch, or alone)."""
    from neurofm.train import tokenizer_jobs
    from neurofm.train.distributed import barrier, init_distributed

    run = tokenizer_run(args)
    env = init_distributed(args.device)
    data = tokenizer_jobs.open_tokenizer_data(args.data, run, cache_dir=args.cache_dir,
                                              is_main=env.is_main, wait=lambda: barrier(env))
    result = tokenizer_jobs.run_tokenizer_training(data, run, args.out, device=args.device,
                                                   overwrite=args.overwrite)
    if env.is_main:
        print(f"Tokenizer written to {args.out}/tokenizer after {result['steps']} steps. "
              f"{'Held-out' if result['held_out'] else 'Training'} data: relative amplitude error "
              f"{result['amplitude']:.4g} (mean-spectrum baseline "
              f"{result['baseline_amplitude']:.4g}), codebook usage "
              f"{100 * result['usage']:.0f} %, perplexity {result['perplexity']:.1f}.")
    return 0


class Job(NamedTuple):
    """A training job the worker runs."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    argv: Callable[[argparse.Namespace], list[str]]


JOBS = {
    "pretrain": Job("Pretrain a backbone by masked modelling.", add_pretrain_arguments,
                    run_pretraining, pretrain_argv),
    "tokenizer": Job("Train a VQ tokenizer.", add_tokenizer_arguments, run_tokenizer_training,
                     tokenizer_argv),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m neurofm.worker",
        description="One training process (run under torchrun for several).")
    jobs = parser.add_subparsers(dest="job", metavar="JOB", required=True)
    for name, job in JOBS.items():
        job_parser = jobs.add_parser(name, help=job.help, description=job.help)
        job.add_arguments(job_parser)
        add_output_flags(job_parser)
        job_parser.set_defaults(run=job.run)
    return parser


def end_with_launcher() -> None:
    """Make this process end when the process that launched it ends.

    torchrun starts each worker in a session of its own, so killing only the launcher
    (``neurofm pretrain --nproc N``, or its process group) would leave the workers training
    with no parent. On Linux the kernel sends this process SIGTERM when its parent dies
    (``prctl(PR_SET_PDEATHSIG)``); elsewhere a watchdog thread checks the parent every second.
    ``neurofm``'s launcher passes its pid in :data:`LAUNCHER_PID_ENV`, which closes the gap of a
    launcher that died before this process got here.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            _watch_parent(parent)
    else:
        _watch_parent(parent)
    launcher = os.environ.get(LAUNCHER_PID_ENV)
    if launcher and os.getppid() != int(launcher):
        raise SystemExit(f"neurofm worker: the launcher (pid {launcher}) has ended; stopping.")


def _watch_parent(parent: int) -> None:
    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="neurofm-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    if os.environ.get("TORCHELASTIC_RUN_ID") or os.environ.get(LAUNCHER_PID_ENV):
        end_with_launcher()  # launched by torchrun (a new session): end with the launcher
    args = build_parser().parse_args(argv)
    try:
        with command_output(args):
            return args.run(args)
    except USER_ERRORS as err:
        if args.debug or not is_user_error(err):
            raise
        print(f"neurofm {args.job} (rank {_rank()}): error: {one_line(err)}", file=sys.stderr)
        return 2


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


if __name__ == "__main__":
    raise SystemExit(main())
