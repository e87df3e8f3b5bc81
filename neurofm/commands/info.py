"""``neurofm info PATH``: what a recording holds and what preprocessing would do to it.

Prints sampling rate, duration, mains frequency, one row per channel (kind, unit, where its
position comes from, kept or dropped and why), the preprocessing steps and the findings of the
signal checks (NaN/Inf, flat channels, volts/µV mix-ups). ``--json`` prints the same as JSON.
"""

from __future__ import annotations

import json

#: The rate and band of ``neurofm.data.preprocess.DEFAULT_RECORDING_SPEC``, written out so that
#: ``--help`` imports no MNE (tests/test_cli.py checks that they agree).
DEFAULT_SFREQ, DEFAULT_L_FREQ, DEFAULT_H_FREQ = 200.0, 0.3, 75.0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "info",
        help="Show channels, positions, units and planned preprocessing of a recording.",
        description="Read one recording (EDF, BDF, FIF, BrainVision, EEGLAB, GDF, CNT, a file "
                    "inside a BIDS dataset, an MNE -epo.fif epochs file, or sample:emotiv14) "
                    "and print its channels with kind, unit and position source, its sampling "
                    "rate and duration, what preprocessing would do, and problems found in the "
                    "samples.")
    parser.add_argument("path", help="recording file, or sample:NAME (e.g. sample:emotiv14)")
    parser.add_argument("--montage", default=None,
                        help="MNE montage for channels without a stored position "
                             "(default: MNE's 10-05 montage for EEG)")
    parser.add_argument("--line-freq", type=float, default=None,
                        help="mains frequency in Hz (50 or 60) when the file does not say "
                             "(default: the file's)")
    parser.add_argument("--sfreq", type=float, default=DEFAULT_SFREQ,
                        help=f"target rate (default {DEFAULT_SFREQ:g})")
    parser.add_argument("--l-freq", type=float, default=DEFAULT_L_FREQ,
                        help=f"high-pass Hz (default {DEFAULT_L_FREQ:g})")
    parser.add_argument("--h-freq", type=float, default=DEFAULT_H_FREQ,
                        help=f"low-pass Hz (default {DEFAULT_H_FREQ:g}; a recording whose Nyquist "
                             "frequency is lower gets that as its band edge)")
    parser.add_argument("--on-unknown", choices=("raise", "drop"), default="raise",
                        help="channels with no known position: error (default) or drop")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args) -> int:
    from neurofm.data.preprocess import PreprocessConfig
    from neurofm.data.summary import format_summary, summarise_recording

    config = PreprocessConfig(sfreq=args.sfreq, l_freq=args.l_freq, h_freq=args.h_freq,
                              line_freq=args.line_freq or "auto", montage=args.montage,
                              on_unknown=args.on_unknown)
    summary = summarise_recording(args.path, config)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0
