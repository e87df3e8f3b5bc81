"""``neurofm tokenizer``: train a VQ tokenizer, or write the code indices of a recording."""

from __future__ import annotations

import argparse

from neurofm.commands.flags import NPROC_HELP, add_revision_flag
from neurofm.commands.launch import launch_workers
from neurofm.worker import add_tokenizer_arguments, run_tokenizer_training, tokenizer_run

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
    add_tokenizer_arguments(train)
    train.add_argument("--nproc", type=int, default=1,
                       help=f"{NPROC_HELP} (default 1)")
    train.set_defaults(func=run_train)

    encode = sub.add_parser("encode", help="Write the code indices of a recording (.npz).",
                            description="Preprocess a recording the way the tokenizer's data "
                                        "were, cut it into windows and write codes [W, C, N, L] "
                                        "with start times and channel names to an .npz file.")
    encode.add_argument("tokenizer", help="Tokenizer folder (config.json + model.safetensors) "
                                          "or Hub repo id.")
    add_revision_flag(encode, "TOKENIZER")
    encode.add_argument("recording", help="Recording file (any format MNE reads) or sample:NAME.")
    encode.add_argument("--out", required=True, help="Output .npz file.")
    encode.add_argument("--window-seconds", type=float,
                        help="Window length (default: that of the training data).")
    encode.add_argument("--montage", help="Montage for channels without positions in the file.")
    encode.add_argument("--batch-size", type=int, default=16)
    encode.set_defaults(func=run_encode)
    parser.set_defaults(func=lambda args: parser.print_help() or 0)


def run_train(args) -> int:
    tokenizer_run(args)  # fail early, in this process, on a bad config
    if args.nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {args.nproc}.")
    if args.nproc == 1:
        return run_tokenizer_training(args)
    return launch_workers(args.nproc, "tokenizer", args)


def run_encode(args) -> int:
    import numpy as np

    from neurofm.tokenizer import NeuralTokenizer
    from neurofm.train.tokenizer_jobs import write_codes

    tokenizer = NeuralTokenizer.from_pretrained(args.tokenizer, revision=args.revision)
    result = write_codes(tokenizer, args.recording, args.out,
                         window_seconds=args.window_seconds, batch_size=args.batch_size,
                         montage=args.montage)
    codes = result["codes"]
    used = len(np.unique(codes[codes >= 0]))
    print(f"Wrote {args.out}: codes {list(codes.shape)} (windows, channels, patches, levels) "
          f"for {len(result['channels'])} channels; {used} distinct codes of "
          f"{tokenizer.config.codebook_size}.")
    return 0
