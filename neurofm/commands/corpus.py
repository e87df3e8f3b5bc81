"""``neurofm corpus stats CORPUS``: hours, files kept/skipped, channels and amplitudes."""

from __future__ import annotations

import json
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "corpus",
        help="Inspect a prepared corpus (neurofm corpus stats CORPUS).",
        description="Inspect corpora written by 'neurofm prepare'.")
    sub = parser.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    stats = sub.add_parser(
        "stats",
        help="Hours, files kept/skipped by reason, channels, amplitude distribution (+ PNG).",
        description="Print the hours, files kept and skipped by reason, subjects, channels per "
                    "window, channel frequencies and the amplitude distribution of a sample of "
                    "windows of a corpus, and plot them to a PNG. Several folders (the parts "
                    "of one --num-shards run) are read as one corpus.")
    stats.add_argument("corpus", nargs="+", metavar="CORPUS", help="corpus folder(s)")
    stats.add_argument("--png", default=None,
                       help="plot file (default: CORPUS/stats.png of the first folder)")
    stats.add_argument("--max-windows", type=int, default=2000,
                       help="windows sampled for the amplitude distribution (default 2000)")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    stats.set_defaults(func=run_stats)


def run_stats(args) -> int:
    from neurofm.corpus.stats import corpus_stats, describe_stats, plot_stats

    stats = corpus_stats(args.corpus, max_windows=args.max_windows)
    png = Path(args.png) if args.png else Path(args.corpus[0]) / "stats.png"
    plot_stats(stats, png)
    print(json.dumps(stats, indent=1, ensure_ascii=False) if args.json
          else describe_stats(stats) + f"\nplot: {png}")
    return 0
