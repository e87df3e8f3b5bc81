"""Sleep-EDF Expanded, read from its PhysioNet folder (``sleep-edf:PATH``).

``PATH`` holds the PSG and hypnogram EDF pairs anywhere below it (PhysioNet's
``sleep-edf-database-expanded-1.0.0/sleep-cassette/``, or MNE's ``~/mne_data/physionet-sleep-
data``): ``SC4ssNE0-PSG.edf`` with ``SC4ssNEC-Hypnogram.edf`` (the hypnogram's last two letters
vary: ``EC``, ``EH``, ``EJ`` …; files pair on their first six characters, ``SC4ssN``). ``ss`` is
the subject (0–82 in the sleep-cassette study), ``N`` the night (1 or 2); telemetry files
(``ST7ssNJ0-PSG.edf``) are read too, with subjects ``ST`` + ``ss``. A PSG file without its
hypnogram is skipped with the reason.

**Trials** are the scored 30-s epochs: every hypnogram annotation of ``d`` seconds gives
``d / 30`` epochs. Stages per the AASM merge of the R&K labels: ``Sleep stage W`` → W, ``1`` →
N1, ``2`` → N2, ``3`` and ``4`` → N3, ``R`` → REM; ``Sleep stage ?`` (unscored) and
``Movement time`` are left out. Wake is kept only within ``wake_minutes`` (default 30) before the
first and after the last sleep epoch — the recordings run a whole day, and DeepSleepNet
(Supratak et al., 2017) and braindecode's ``SleepPhysionet(crop_wake_mins=30)`` trim them the
same way. Epochs past the end of the PSG are left out. The counts of each exclusion are in
``provenance``.

The montage is ``sleep`` (the two EEG derivations, Fpz-Cz and Pz-Oz, each placed at the
midpoint of its electrodes) or ``sleep_fpz`` (Fpz-Cz alone, as DeepSleepNet uses).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import mne
import numpy as np
import pandas as pd

from neurofm.datasets.missing import missing_data
from neurofm.datasets.recordings import (
    SkippedRecordings,
    describe_recordings,
    recording_windows,
)
from neurofm.datasets.trials import TrialSet

SLEEP_CLASSES = ["W", "N1", "N2", "N3", "REM"]
#: Hypnogram annotation -> stage (AASM: R&K stages 3 and 4 are N3).
STAGES = {"Sleep stage W": "W", "Sleep stage 1": "N1", "Sleep stage 2": "N2",
          "Sleep stage 3": "N3", "Sleep stage 4": "N3", "Sleep stage R": "REM"}
#: Annotations that are not stages (left out).
UNSCORED = ("Sleep stage ?", "Movement time")
EPOCH_SECONDS = 30.0
SLEEP_EDF_SOURCE = ("https://physionet.org/content/sleep-edfx/1.0.0/ (open access), or MNE's "
                    "mne.datasets.sleep_physionet.age.fetch_data run once with internet access")

_NAME = re.compile(r"^(?P<study>S[CT])(?P<study_no>\d)(?P<subject>\d\d)(?P<night>\d)")


def sleep_edf_codes(path) -> tuple[str, str]:
    """``(subject, night)`` of a Sleep-EDF file name: ``SC4012E0-PSG.edf`` -> ``("1", "2")``,
    ``ST7022J0-PSG.edf`` -> ``("ST02", "2")``."""
    match = _NAME.match(Path(path).name)
    if match is None:
        raise ValueError(f"{Path(path).name} is not a Sleep-EDF file name (SC4ssN…-PSG.edf).")
    subject = str(int(match["subject"])) if match["study"] == "SC" else \
        f"ST{match['subject']}"
    return subject, match["night"]


def hypnogram_epochs(path, psg_seconds: float, wake_minutes: float | None = 30.0
                     ) -> tuple[pd.DataFrame, Counter]:
    """Scored 30-s epochs of a hypnogram: columns ``onset`` (s), ``stage`` (W … REM), and the
    number of epochs left out per reason."""
    annotations = mne.read_annotations(path)
    onsets, stages, left_out = [], [], Counter()
    for onset, duration, description in zip(annotations.onset, annotations.duration,
                                            annotations.description):
        n = round(duration / EPOCH_SECONDS)
        if description in UNSCORED or description not in STAGES:
            left_out[f"not a sleep stage ({description})"] += n
            continue
        onsets += list(onset + EPOCH_SECONDS * np.arange(n))
        stages += [STAGES[description]] * n
    table = pd.DataFrame({"onset": np.asarray(onsets, float), "stage": stages})
    past = table["onset"] + EPOCH_SECONDS > psg_seconds + 1e-6
    left_out["past the end of the PSG"] += int(past.sum())
    table = table[~past]
    asleep = table.loc[table["stage"] != "W", "onset"]
    if wake_minutes is not None and len(asleep):
        first, last = asleep.min() - 60 * wake_minutes, asleep.max() + 60 * wake_minutes
        far = (table["stage"] == "W") & ((table["onset"] < first) | (table["onset"] > last))
        left_out[f"wake more than {wake_minutes:g} min from sleep"] += int(far.sum())
        table = table[~far]
    return table.reset_index(drop=True), Counter({k: v for k, v in left_out.items() if v})


def subject_ranges(items) -> set[str]:
    """``["0-19", "25"]`` -> ``{"0", …, "19", "25"}`` (subject ids as the loader writes them)."""
    out = set()
    for item in items:
        low, _, high = str(item).partition("-")
        if high and low.isdigit() and high.isdigit():
            out |= {str(i) for i in range(int(low), int(high) + 1)}
        else:
            out.add(str(int(item)) if str(item).isdigit() else str(item))
    return out


def load_sleep_edf(path, *, montage: str = "sleep", wake_minutes: float = 30.0,
                   subjects=None, lazy: bool | None = None, spec: str | None = None) -> TrialSet:
    """Sleep-EDF as a trial set of 30-s epochs left on disk (see the module docstring).

    Parameters
    ----------
    path : path-like
        A folder with the ``*-PSG.edf`` / ``*-Hypnogram.edf`` pairs below it.
    montage : {"sleep", "sleep_fpz"}
    wake_minutes : float
        Wake kept before the first and after the last sleep epoch (negative: keep all).
    subjects : list, optional
        Subjects to read (ids or ranges, ``["0-19"]``: the 20 subjects of the 2013 release
        that DeepSleepNet used); default all.
    lazy, spec
        As in :func:`neurofm.datasets.tuh.load_tuab`.
    """
    name = spec or f"sleep-edf:{path}"
    root = Path(path).expanduser()
    layout = "SC4ssNE0-PSG.edf with SC4ssNEC-Hypnogram.edf (any folder below)"
    psgs = sorted(root.rglob("*-PSG.edf")) if root.is_dir() else []
    if subjects is not None:
        wanted = subject_ranges(subjects)
        psgs = [p for p in psgs if _NAME.match(p.name) and sleep_edf_codes(p)[0] in wanted]
    if not psgs:
        raise missing_data(dataset="Sleep-EDF", folder=root, layout=layout,
                           source=SLEEP_EDF_SOURCE)
    skipped = SkippedRecordings()
    pairs = []
    for psg in psgs:
        hypnograms = sorted(psg.parent.glob(f"{psg.name[:6]}*-Hypnogram.edf"))
        if hypnograms:
            pairs.append((psg, hypnograms[0]))
        else:
            skipped.add(psg, f"no hypnogram {psg.name[:6]}*-Hypnogram.edf beside it")
    recordings = describe_recordings([p for p, _ in pairs], montage, skipped)
    by_path = {r.path: i for i, r in enumerate(recordings)}
    rows, left_out = [], Counter()
    for psg, hypnogram in pairs:
        r = by_path.get(str(psg))
        if r is None:
            continue
        epochs, dropped = hypnogram_epochs(hypnogram, recordings[r].seconds,
                                           None if wake_minutes < 0 else wake_minutes)
        left_out.update(dropped)
        subject, night = sleep_edf_codes(psg)
        rows.append(pd.DataFrame({"rec": r, "onset": epochs["onset"],
                                  "label": [SLEEP_CLASSES.index(s) for s in epochs["stage"]],
                                  "subject": subject, "session": night, "run": "0"}))
    frame = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["rec", "onset", "label", "subject", "session", "run"])
    provenance = {"loader": "neurofm.datasets.sleep_edf.load_sleep_edf",
                  "dataset": "Sleep-EDF Expanded", "root": str(root),
                  "stages": "AASM: R&K 3 and 4 merged into N3; '?' and movement left out",
                  "wake_minutes": wake_minutes, "epochs_left_out": dict(left_out)}
    return recording_windows(name, recordings, frame, window_seconds=EPOCH_SECONDS,
                             montage=montage, class_names=SLEEP_CLASSES, skipped=skipped,
                             provenance=provenance, lazy=lazy)
