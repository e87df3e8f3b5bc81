"""``neurofm simulate``: write simulated recordings (FIF, EDF, BIDS or a TUEG-shaped tree)."""

from __future__ import annotations

import argparse
from pathlib import Path

#: ``neurofm.simulate.tasks.list_tasks()``, ``sensor_sets.MODALITY_DEFAULTS``,
#: ``artefacts.ARTEFACTS`` and ``writers.FORMATS``, written out so that ``--help`` imports no
#: simulation code (tests/test_cli.py checks that they agree).
TASKS = ("motor_imagery", "erp", "abnormal", "sleep_like", "vigilance", "resting")
MODALITY_DEFAULTS = {"eeg": "colin27_1020", "meg": "neuromag", "seeg": "shafts8",
                     "ecog": "grid8x8"}
ARTEFACTS = ("blink", "muscle", "line")
FORMATS = ("fif", "edf", "bids")

DESCRIPTION = """\
Simulate recordings with known ground truth: sources in a spherical head projected to EEG, MEG,
sEEG or ECoG sensors by MNE's forward model, with a task (motor_imagery, erp, abnormal,
sleep_like, vigilance, resting), sensor noise and artefacts. Same --seed, same signals.

Examples:
  neurofm simulate out/ --task motor_imagery --modality eeg --montage standard_1020 \\
      --subjects 8 --minutes 5 --format edf --seed 0
  neurofm simulate out_meg/ --task erp --modality meg --format bids
  neurofm simulate tueg/ --layout tueg --subjects 20 --minutes 2
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("simulate", help="Write simulated EEG/MEG/iEEG recordings.",
                              description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="output folder (created)")
    p.add_argument("--task", choices=TASKS, default=None,
                   help="what the brain does (default motor_imagery; resting for --layout tueg)")
    p.add_argument("--modality", default="eeg", choices=list(MODALITY_DEFAULTS) + ["ieeg"],
                   help="sensor modality (default eeg)")
    p.add_argument("--montage", default=None,
                   help="EEG: any MNE montage (standard_1020, colin27_1005, biosemi64, "
                        "GSN-HydroCel-129 ...); MEG: neuromag or ctf275; sEEG: shaftsN; ECoG: "
                        "gridRxC (default per modality: " +
                        ", ".join(f"{k}={v}" for k, v in MODALITY_DEFAULTS.items()) + ")")
    p.add_argument("--subjects", type=int, default=8, help="number of subjects (default 8)")
    p.add_argument("--minutes", type=float, default=5.0,
                   help="minutes per recording (--layout tueg: the longest; default 5)")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default="fif",
                   help="file format (default fif; EDF is EEG/iEEG only)")
    p.add_argument("--layout", choices=("flat", "tueg"), default="flat",
                   help="flat: one file per subject (or BIDS); tueg: TUEG's folder layout "
                        "with TUH channel names, EDF, mixed sampling rates")
    p.add_argument("--sfreq", type=float, default=250.0, help="sampling rate in Hz (default 250)")
    p.add_argument("--effect", type=float, default=1.0,
                   help="task effect size: 1 = default difficulty, 0 = no information")
    p.add_argument("--artefacts", default=",".join(ARTEFACTS),
                   help=f"comma-separated artefacts from {', '.join(ARTEFACTS)}, or 'none'")
    p.add_argument("--line-freq", type=float, default=50.0, help="mains frequency (default 50)")
    p.add_argument("--grid-mm", type=float, default=12.0,
                   help="source grid spacing in mm (default 12; larger is faster)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=run)


def run(args) -> int:
    from neurofm.datasets.simulated import write_simulated

    if args.layout == "tueg":
        return _run_tueg(args)
    artefacts = () if args.artefacts.strip().lower() in ("", "none") else \
        tuple(a.strip() for a in args.artefacts.split(",") if a.strip())
    written = write_simulated(args.out, args.task or "motor_imagery", args.modality,
                              fmt=args.fmt, montage=args.montage, subjects=args.subjects,
                              minutes=args.minutes, sfreq=args.sfreq, seed=args.seed,
                              effect=args.effect, artefacts=artefacts, line_freq=args.line_freq,
                              grid_mm=args.grid_mm, progress=True)
    print(f"Wrote {len(written.paths)} {args.fmt.upper()} recording(s) of {written.task} "
          f"({written.modality}, {written.n_channels} channels, {args.minutes:g} min, "
          f"{args.sfreq:g} Hz) under {args.out}")
    return 0


def _run_tueg(args) -> int:
    from neurofm.simulate.tueg import simulate_tueg_tree

    if args.subjects < 1 or args.minutes <= 0:
        raise ValueError("--subjects must be >= 1 and --minutes > 0.")
    if (args.task not in (None, "resting") or args.modality != "eeg" or args.fmt != "fif"
            or args.montage is not None):
        raise ValueError("--layout tueg writes resting EEG as EDF with TUH channel names; drop "
                         "--task/--modality/--montage/--format.")
    paths = simulate_tueg_tree(args.out, args.subjects, minutes=(args.minutes / 2, args.minutes),
                               seed=args.seed, grid_mm=args.grid_mm, progress=True)
    print(f"Wrote {len(paths)} EDF file(s) for {args.subjects} subject(s) in TUEG layout under "
          f"{args.out}")
    return 0
