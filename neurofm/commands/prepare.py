"""``neurofm prepare SRC... --out CORPUS``: build a pretraining corpus of preprocessed windows."""

from __future__ import annotations

from types import SimpleNamespace

from neurofm.commands.flags import NUM_PROC_HELP, DeprecatedFlag

#: The defaults of :class:`neurofm.corpus.prepare.PrepareOptions` (CBraMod's TUEG recipe), its
#: ``CHANNEL_MODES`` and ``neurofm.corpus.shards.DEFAULT_SHARD_MB``, written out so that
#: ``--help`` imports no corpus code (tests/test_cli.py checks that they agree).
DEFAULTS = SimpleNamespace(sfreq=200.0, window_seconds=30.0, patch_seconds=1.0, channels="tueg19",
                           max_abs_uv=100.0, trim_seconds=60.0, min_minutes=5.0,
                           dtype="float16", l_freq=0.3, h_freq=75.0, line_freq=60.0,
                           on_flat="drop")
CHANNEL_MODES = ("tueg19", "all-eeg", "all")
DEFAULT_SHARD_MB = 256.0
_PARTS_NOTE = (" (it splits the file list into parts; shards are the files of packed windows, "
               "sized by --shard-size-mb)")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="Prepare a corpus of preprocessed windows (TUEG, BIDS, folders) for pretraining.",
        description="Find the recordings under each SRC (a TUEG-layout tree, a BIDS root, a "
                    "folder of recordings, or a text file listing paths), preprocess them "
                    "(band-pass, notch, resample, 1.0 = 100 µV), cut them into windows, reject "
                    "windows above --max-abs-uv and pack them into Arrow shards of bounded "
                    "size (Hugging Face datasets files) with a manifest.parquet (every file "
                    "kept or skipped with its reason) and a corpus.json. Defaults follow "
                    "CBraMod's TUEG recipe. Re-running the same command resumes an interrupted "
                    "run.")
    parser.add_argument("sources", nargs="+", metavar="SRC",
                        help="TUEG tree, BIDS root, folder of recordings or text file of paths")
    parser.add_argument("--out", required=True, metavar="CORPUS", help="corpus folder to write")
    defaults = DEFAULTS
    parser.add_argument("--sfreq", type=float, default=defaults.sfreq,
                        help=f"output sampling rate in Hz (default {defaults.sfreq:g})")
    parser.add_argument("--window-seconds", type=float, default=defaults.window_seconds,
                        help=f"window length (default {defaults.window_seconds:g})")
    parser.add_argument("--patch-seconds", type=float, default=defaults.patch_seconds,
                        help=f"patch length (default {defaults.patch_seconds:g})")
    parser.add_argument("--channels", choices=CHANNEL_MODES, default=defaults.channels,
                        help="tueg19: the 19 10-20 channels, files lacking any are skipped "
                             "(default); all-eeg: every EEG channel with a known position, "
                             "files with fewer channels kept; all: EEG, MEG, sEEG and ECoG")
    parser.add_argument("--num-proc", type=int, default=1, help=f"{NUM_PROC_HELP} (default 1)")
    parser.add_argument("--max-abs-uv", type=float, default=defaults.max_abs_uv,
                        help="reject windows with any sample above this many µV "
                             f"(default {defaults.max_abs_uv:g}; 0 keeps all)")
    parser.add_argument("--trim-seconds", type=float, default=defaults.trim_seconds,
                        help=f"seconds cut at each end (default {defaults.trim_seconds:g})")
    parser.add_argument("--min-minutes", type=float, default=defaults.min_minutes,
                        help=f"skip shorter recordings (default {defaults.min_minutes:g})")
    parser.add_argument("--dtype", choices=("float16", "float32"), default=defaults.dtype,
                        help=f"signal storage type (default {defaults.dtype})")
    parser.add_argument("--l-freq", type=float, default=defaults.l_freq,
                        help=f"high-pass edge in Hz (default {defaults.l_freq:g})")
    parser.add_argument("--h-freq", type=float, default=defaults.h_freq,
                        help=f"low-pass edge in Hz (default {defaults.h_freq:g}; a file whose "
                             "Nyquist frequency is lower keeps its band up to that, noted in "
                             "the manifest's report column)")
    parser.add_argument("--line-freq", type=float, default=defaults.line_freq,
                        help=f"mains frequency for the notch (default {defaults.line_freq:g}, "
                             "as in TUEG; 0: no notch)")
    parser.add_argument("--part-index", type=int, default=None,
                        help="prepare only this part of the file list (0-based; with "
                             "--num-parts, e.g. $SLURM_ARRAY_TASK_ID)")
    parser.add_argument("--num-parts", type=int, default=None,
                        help="number of disjoint parts the file list is split into, one per "
                             "machine or array task (default 1)")
    parser.add_argument("--shard-size-mb", type=float, default=DEFAULT_SHARD_MB,
                        help="size bound of a shard file in MB; windows of many recordings "
                             f"are packed into each (default {DEFAULT_SHARD_MB:g})")
    parser.add_argument("--shard-index", type=int, default=None, action=DeprecatedFlag,
                        new="--part-index", why=_PARTS_NOTE)
    parser.add_argument("--num-shards", type=int, default=None, action=DeprecatedFlag,
                        new="--num-parts", why=_PARTS_NOTE)
    parser.add_argument("--on-flat", choices=("drop", "report"), default=defaults.on_flat,
                        help="flat channels: drop them and list them in the manifest's report "
                             "(default; a recording left with fewer than half its channels is "
                             "skipped as flat-signal), or keep them and list them")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into --out although it holds files neurofm did not write "
                             "(they are kept; files of the corpus's names are replaced)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from neurofm.corpus.prepare import PrepareOptions, prepare_corpus

    options = PrepareOptions(
        sfreq=args.sfreq, window_seconds=args.window_seconds, patch_seconds=args.patch_seconds,
        channels=args.channels, max_abs_uv=args.max_abs_uv or None,
        trim_seconds=args.trim_seconds, min_minutes=args.min_minutes, dtype=args.dtype,
        l_freq=args.l_freq, h_freq=args.h_freq, line_freq=args.line_freq or None,
        on_flat=args.on_flat)
    part_index, num_parts = _parts(args)
    summary = prepare_corpus(args.sources, args.out, options, num_proc=args.num_proc,
                             part_index=part_index, num_parts=num_parts,
                             shard_size_mb=args.shard_size_mb, overwrite=args.overwrite)
    print(summary.describe())
    return 0


def _parts(args) -> tuple[int, int]:
    """``--part-index/--num-parts``, or the deprecated ``--shard-index/--num-shards`` (the
    warning comes from :class:`~neurofm.commands.flags.DeprecatedFlag`)."""
    old = {"--shard-index": args.shard_index, "--num-shards": args.num_shards}
    used = [name for name, value in old.items() if value is not None]
    if used and (args.part_index is not None or args.num_parts is not None):
        raise ValueError(f"{' and '.join(used)} is the old name of --part-index/--num-parts; "
                         "give only the new options.")
    index = args.part_index if args.part_index is not None else args.shard_index
    count = args.num_parts if args.num_parts is not None else args.num_shards
    return (0 if index is None else index), (1 if count is None else count)
