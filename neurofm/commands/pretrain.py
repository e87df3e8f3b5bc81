"""``neurofm pretrain``: pretrain a backbone by masked modelling, on one or several processes."""

from __future__ import annotations

import argparse

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
    from neurofm.pretrain import add_training_arguments

    parser = subparsers.add_parser(
        "pretrain", help="Pretrain a backbone by masked modelling (DDP through torchrun).",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(parser)
    parser.add_argument("--nproc", type=int, default=1,
                        help="Processes on this machine (one per GPU, or CPU processes with "
                             "gloo). > 1 launches torchrun.")
    parser.add_argument("--max-restarts", type=int, default=0,
                        help="With --nproc > 1: times torchrun restarts the group after a "
                             "rank dies (each restart resumes from the newest checkpoint).")
    parser.add_argument("--master-port", type=int, default=None,
                        help="With --nproc > 1: rendezvous port (default: a free one).")
    parser.set_defaults(func=run)


def run(args) -> int:
    from neurofm.pretrain import config_from_args

    config_from_args(args)  # fail early, in this process, on a bad config or override
    if args.nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {args.nproc}.")
    if args.nproc == 1:
        from neurofm.train.loop import train

        result = train(config_from_args(args))
        print(f"Finished {result.steps} steps, final loss {result.final_loss:.6g}; model in "
              f"{result.model_dir}")
        return 0
    return launch_torchrun(args)


def launch_torchrun(args) -> int:
    """Run ``torchrun --nproc_per_node=N -m neurofm.pretrain ...`` on this machine."""
    from neurofm.commands.launch import run_local_torchrun

    worker_args = ["--config", args.config]
    if args.out:
        worker_args += ["--out", args.out]
    for item in args.overrides:
        worker_args += ["--set", item]
    if args.resume:
        worker_args.append("--resume")
    return run_local_torchrun(args.nproc, "neurofm.pretrain", worker_args, label="pretrain",
                              master_port=args.master_port, max_restarts=args.max_restarts)
