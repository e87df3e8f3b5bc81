"""``neurofm pretrain``: pretrain a backbone by masked modelling, on one or several processes."""

from __future__ import annotations

import argparse

from neurofm.commands.flags import NPROC_HELP
from neurofm.commands.launch import launch_workers
from neurofm.worker import add_pretrain_arguments, pretrain_config, run_pretraining

DESCRIPTION = """\
Pretrain a backbone (criss-cross transformer, Mamba, ...) by masked patch reconstruction and/or
masked code prediction on a corpus prepared by `neurofm prepare` (or a simulated one, sim:tiny).

A run directory (--out) receives checkpoints/, metrics.jsonl, tensorboard/, loss.png and, at the
end, model/ (config.json + model.safetensors + README.md model card). Rerunning the same command
continues from the newest checkpoint. With --nproc N > 1 the command launches N processes on this
machine through torchrun (torch.distributed.run); for several machines call torchrun yourself:
torchrun --nnodes=... --nproc_per_node=... -m neurofm.pretrain --config ... (pretrain/README.md).
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "pretrain", help="Pretrain a backbone by masked modelling (DDP through torchrun).",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pretrain_arguments(parser)
    parser.add_argument("--nproc", type=int, default=1,
                        help=f"{NPROC_HELP} (default 1)")
    parser.add_argument("--max-restarts", type=int, default=0,
                        help="With --nproc > 1: times torchrun restarts the group after a "
                             "rank dies (each restart resumes from the newest checkpoint).")
    parser.add_argument("--master-port", type=int, default=None,
                        help="With --nproc > 1: rendezvous port (default: a free one).")
    parser.set_defaults(func=run)


def run(args) -> int:
    pretrain_config(args)  # fail early, in this process, on a bad config or override
    if args.nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {args.nproc}.")
    if args.nproc == 1:
        return run_pretraining(args)
    return launch_workers(args.nproc, "pretrain", args, master_port=args.master_port,
                          max_restarts=args.max_restarts)
