"""``neurofm corpus stats|verify CORPUS``: statistics of a corpus, and checks after a copy."""

from __future__ import annotations

import json
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "corpus",
        help="Inspect a prepared corpus (neurofm corpus stats|verify CORPUS).",
        description="Inspect corpora written by 'neurofm prepare'.")
    sub = parser.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    stats = sub.add_parser(
        "stats",
        help="Hours, files kept/skipped by reason, channels, amplitude distribution (+ PNG).",
        description="Print the hours, files kept and skipped by reason, subjects, channels per "
                    "window, channel frequencies and the amplitude distribution of a sample of "
                    "windows of a corpus, and plot them to a PNG. Several folders (the parts "
                    "of one --num-parts run) are read as one corpus.")
    stats.add_argument("corpus", nargs="+", metavar="CORPUS", help="corpus folder(s)")
    stats.add_argument("--png", default=None,
                       help="plot file (default: CORPUS/stats.png of the first folder)")
    stats.add_argument("--max-windows", type=int, default=2000,
                       help="windows sampled for the amplitude distribution (default 2000)")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.add_argument("--seed", type=int, default=0,
                       help="random seed of the windows sampled (default 0)")
    stats.set_defaults(func=run_stats)
    verify = sub.add_parser(
        "verify",
        help="Check every shard (readable, window counts, checksums), e.g. after a copy.",
        description="Check that every shard of a corpus is there, reads, holds the windows the "
                    "manifest says and has the SHA-256 recorded in corpus.json, and that the "
                    "manifest, index.arrow and sensors.arrow agree. Exits with 1 and names "
                    "each problem when something is wrong.")
    verify.add_argument("corpus", nargs="+", metavar="CORPUS", help="corpus folder(s)")
    verify.add_argument("--no-checksums", action="store_true",
                        help="skip the SHA-256 of every shard (faster; sizes still checked)")
    verify.set_defaults(func=run_verify)


def run_stats(args) -> int:
    from neurofm.corpus.stats import corpus_stats, describe_stats, plot_stats

    stats = corpus_stats(args.corpus, max_windows=args.max_windows, seed=args.seed)
    png = Path(args.png) if args.png else Path(args.corpus[0]) / "stats.png"
    plot_stats(stats, png)
    print(json.dumps(stats, indent=1, ensure_ascii=False) if args.json
          else describe_stats(stats) + f"\nplot: {png}")
    return 0


def run_verify(args) -> int:
    from neurofm.corpus.verify import verify_corpus

    reports = [verify_corpus(folder, checksums=not args.no_checksums) for folder in args.corpus]
    for report in reports:
        print(report.describe())
    return 0 if all(r.ok for r in reports) else 1
