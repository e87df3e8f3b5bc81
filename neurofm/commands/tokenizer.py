"""``neurofm tokenizer``: train a VQ tokenizer, or write the code indices of a recording."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Train the sensor-aware VQ tokenizer (encoder -> codebook -> decoder reconstructing each patch's
Fourier amplitude and phase) or encode a recording into code indices.

  neurofm tokenizer train --data sim:tiny --config small --steps 500 --out runs/tok
  neurofm tokenizer train --data corpus/ --config tokenizer.yaml --nproc 2 --out runs/tok
  neurofm tokenizer encode runs/tok/tokenizer recording.edf --out codes.npz

See docs/tokenizer.md.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "tokenizer", help="Train a VQ tokenizer or encode recordings into codes.",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="tokenizer_command", metavar="ACTION")

    train = sub.add_parser("train", help="Train a tokenizer on a corpus or recordings.",
                           description="Train a tokenizer; writes OUT/tokenizer (config.json + "
                                       "model.safetensors), OUT/metrics.jsonl and "
                                       "OUT/eval.json.")
    train.add_argument("--data", nargs="+", required=True, metavar="SOURCE",
                       help="A corpus folder (neurofm prepare), sim:tiny / sim:multimodal, or "
                            "recording files (EDF, FIF, BrainVision, ...).")
    train.add_argument("--config", default="small",
                       help="A named tokenizer config (small, small_unified, base) or a YAML "
                            "file of run settings (default: small).")
    train.add_argument("--out", required=True, help="Output folder.")
    train.add_argument("--steps", type=int, help="Optimizer steps (overrides the config).")
    train.add_argument("--batch-size", type=int, help="Global batch size (overrides the config).")
    train.add_argument("--lr", type=float, help="Peak learning rate (overrides the config).")
    train.add_argument("--seed", type=int, help="Random seed (overrides the config).")
    train.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    train.add_argument("--cache-dir", help="Cache of simulated corpora.")
    train.add_argument("--nproc", type=int, default=1,
                       help="Processes on this machine; > 1 launches torchrun (gloo on CPU).")
    train.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")
    train.set_defaults(func=run_train)

    encode = sub.add_parser("encode", help="Write the code indices of a recording (.npz).",
                            description="Preprocess a recording the way the tokenizer's data "
                                        "were, cut it into windows and write codes [W, C, N, L] "
                                        "with start times and channel names to an .npz file.")
    encode.add_argument("tokenizer", help="Tokenizer folder (config.json + model.safetensors).")
    encode.add_argument("recording", help="Recording file (any format MNE reads) or sample:NAME.")
    encode.add_argument("--out", required=True, help="Output .npz file.")
    encode.add_argument("--window-seconds", type=float,
                        help="Window length (default: that of the training data).")
    encode.add_argument("--montage", help="Montage for channels without positions in the file.")
    encode.add_argument("--batch-size", type=int, default=16)
    encode.set_defaults(func=run_encode)
    parser.set_defaults(func=lambda args: parser.print_help() or 0)


def run_train(args) -> int:
    from neurofm.tokenizer.pipeline import TokenizerRun

    run = TokenizerRun.from_source(args.config, steps=args.steps, batch_size=args.batch_size,
                                   lr=args.lr, seed=args.seed)
    if args.nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {args.nproc}.")
    if args.nproc > 1:
        return _launch_torchrun(args)
    from neurofm.tokenizer.pipeline import open_tokenizer_data, run_tokenizer_training
    from neurofm.train.distributed import barrier, init_distributed

    env = init_distributed(args.device)
    data = open_tokenizer_data(args.data, run, cache_dir=args.cache_dir, is_main=env.is_main,
                               wait=lambda: barrier(env), progress=not args.no_progress)
    result = run_tokenizer_training(data, run, args.out, device=args.device,
                                    progress=not args.no_progress)
    if env.is_main:
        print(f"Tokenizer written to {args.out}/tokenizer after {result['steps']} steps. "
              f"{'Held-out' if result['held_out'] else 'Training'} data: relative amplitude error "
              f"{result['amplitude']:.4g} (mean-spectrum baseline "
              f"{result['baseline_amplitude']:.4g}), codebook usage "
              f"{100 * result['usage']:.0f} %, perplexity {result['perplexity']:.1f}.")
    return 0


def _launch_torchrun(args) -> int:
    """Run ``torchrun --nproc_per_node=N -m neurofm.cli tokenizer train ...`` on this machine.

    The worker command line leaves out ``--nproc`` (each worker is one process); torchrun's own
    parser would take it for an abbreviation of ``--nproc-per-node``.
    """
    from neurofm.commands.launch import run_local_torchrun

    worker = ["tokenizer", "train", "--data", *args.data, "--config", args.config,
              "--out", args.out, "--device", args.device]
    for flag, value in (("--steps", args.steps), ("--batch-size", args.batch_size),
                        ("--lr", args.lr), ("--seed", args.seed),
                        ("--cache-dir", args.cache_dir)):
        if value is not None:
            worker += [flag, str(value)]
    if args.no_progress:
        worker.append("--no-progress")
    return run_local_torchrun(args.nproc, "neurofm.cli", worker, label="tokenizer train")


def run_encode(args) -> int:
    import numpy as np

    from neurofm.tokenizer import NeuralTokenizer
    from neurofm.tokenizer.pipeline import encode_recording

    tokenizer = NeuralTokenizer.from_pretrained(args.tokenizer)
    result = encode_recording(tokenizer, args.recording, window_seconds=args.window_seconds,
                              batch_size=args.batch_size, montage=args.montage)
    np.savez_compressed(args.out, **result)
    codes = result["codes"]
    used = len(np.unique(codes[codes >= 0]))
    print(f"Wrote {args.out}: codes {list(codes.shape)} (windows, channels, patches, levels) "
          f"for {len(result['channels'])} channels; {used} distinct codes of "
          f"{tokenizer.config.codebook_size}.")
    return 0
