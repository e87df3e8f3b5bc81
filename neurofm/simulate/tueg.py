"""A TUEG-shaped tree of simulated EDF files, to exercise corpus preparation.

The layout is the one of the TUH EEG Corpus since v2 (and that :class:`braindecode.datasets.TUH`
parses)::

    <root>/v2.0.1/edf/000/aaaaaaaa/s001_2015_03_14/01_tcp_ar/aaaaaaaa_s001_t000.edf

* subject ids are 8 lower-case letters, grouped in folders of 100 (``000``, ``001`` …);
* a session folder ``sNNN_YYYY_MM_DD`` holds one montage folder, ``01_tcp_ar`` (channels
  referenced to the average, labelled ``EEG FP1-REF``) or ``02_tcp_le`` (linked ears,
  ``EEG FP1-LE``), and one or more tokens ``tNNN``;
* channels: the 19 10-20 electrodes with TUH's upper-case spelling and old temporal names
  (``EEG T3-REF`` …) plus an ECG lead recorded as ``EEG EKG1-REF`` (as in TUEG, where the EDF
  labels it like an EEG channel);
* sampling rates drawn from 250, 256, 400 and 512 Hz, durations from ``minutes``.

Signals are ``resting`` recordings of the simulator (background, alpha, mu, blinks, muscle,
60-Hz line noise as in the US). The EDF start date is the session date.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import mne
import numpy as np

from neurofm.progress import progress_bar
from neurofm.simulate import sources as S
from neurofm.simulate.recording import simulate_recording

#: Montage folder -> reference suffix of the channel labels.
TUEG_MONTAGES = {"01_tcp_ar": "REF", "02_tcp_le": "LE"}
#: Sampling rates found in TUEG.
TUEG_SFREQS = (250.0, 256.0, 400.0, 512.0)
#: 10-05 name -> TUH label stem, in TUEG's usual channel order.
TUEG_ELECTRODES = {
    "Fp1": "FP1", "Fp2": "FP2", "F3": "F3", "F4": "F4", "C3": "C3", "C4": "C4", "P3": "P3",
    "P4": "P4", "O1": "O1", "O2": "O2", "F7": "F7", "F8": "F8", "T7": "T3", "T8": "T4",
    "P7": "T5", "P8": "T6", "Fz": "FZ", "Cz": "CZ", "Pz": "PZ",
}


def tueg_subject_id(index: int) -> str:
    """8-letter TUEG-style id: ``0 -> "aaaaaaaa"``, ``1 -> "aaaaaaab"``."""
    letters = []
    for _ in range(8):
        index, digit = divmod(index, 26)
        letters.append(chr(ord("a") + digit))
    return "".join(reversed(letters))


def simulate_tueg_tree(root, n_subjects: int = 3, *, minutes=(0.2, 0.6), max_sessions: int = 2,
                       max_tokens: int = 2, seed: int = 0, version: str = "v2.0.1",
                       grid_mm: float = 25.0, include_ecg: bool = True,
                       progress: bool = False) -> list[Path]:
    """Write a TUEG-shaped folder of simulated EDF recordings.

    Parameters
    ----------
    root : path-like
        Folder to write into (``<root>/<version>/edf/...``).
    n_subjects : int
        Number of subjects.
    minutes : (float, float)
        Range of recording durations in minutes (drawn uniformly per file).
    max_sessions, max_tokens : int
        Each subject has 1..max_sessions sessions, each 1..max_tokens files.
    seed : int
        Same seed, same tree (file names, dates, rates, samples).
    version : str
        Corpus version folder (``v2.0.1``; braindecode parses the v2 layout).
    grid_mm : float
        Source grid spacing of the simulator (coarser is faster).
    include_ecg : bool
        Add the ``EEG EKG1-REF`` channel as TUEG files have.
    progress : bool
        Show a tqdm bar over files.

    Returns
    -------
    list of Path
        The EDF files written, in creation order.
    """
    if n_subjects < 1:
        raise ValueError("n_subjects must be at least 1.")
    lo, hi = minutes
    if not 0 < lo <= hi:
        raise ValueError(f"minutes must be a (low, high) range of positive numbers, got {minutes}.")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7919]))
    plan = []
    for i in range(n_subjects):
        sid = tueg_subject_id(i)
        day = dt.date(2002, 1, 1) + dt.timedelta(days=int(rng.integers(0, 5500)))
        for s in range(1, int(rng.integers(1, max_sessions + 1)) + 1):
            folder = list(TUEG_MONTAGES)[int(rng.integers(len(TUEG_MONTAGES)))]
            for t in range(int(rng.integers(1, max_tokens + 1))):
                plan.append({"subject": i, "sid": sid, "session": s, "token": t, "date": day, "folder": folder,
                                 "sfreq": float(TUEG_SFREQS[int(rng.integers(len(TUEG_SFREQS)))]),
                                 "seconds": float(np.round(60 * rng.uniform(lo, hi), 1))})
            day += dt.timedelta(days=int(rng.integers(30, 700)))
    paths = []
    for item in progress_bar(plan, desc="TUEG files", unit="file", disable=not progress):
        session_dir = (Path(root) / version / "edf" / f"{item['subject'] // 100:03d}" / item["sid"]
                       / f"s{item['session']:03d}_{item['date']:%Y_%m_%d}" / item["folder"])
        session_dir.mkdir(parents=True, exist_ok=True)
        path = session_dir / f"{item['sid']}_s{item['session']:03d}_t{item['token']:03d}.edf"
        raw = _tueg_raw(item, seed, grid_mm, include_ecg)
        mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")
        paths.append(path)
    return paths


def _tueg_raw(item: dict, seed: int, grid_mm: float, include_ecg: bool) -> mne.io.RawArray:
    rec = simulate_recording("resting", "eeg", montage="colin27_1020", duration=item["seconds"],
                             sfreq=item["sfreq"], subject=item["subject"],
                             session=item["session"] * 100 + item["token"], seed=seed,
                             line_freq=60.0, grid_mm=grid_mm)
    raw = rec.raw.pick(list(TUEG_ELECTRODES))
    ref = TUEG_MONTAGES[item["folder"]]
    raw.rename_channels({name: f"EEG {stem}-{ref}" for name, stem in TUEG_ELECTRODES.items()})
    raw.set_montage(None)
    if include_ecg:
        rng = np.random.default_rng(np.random.SeedSequence([seed, item["subject"],
                                                            item["session"], item["token"]]))
        n, sfreq = raw.n_times, raw.info["sfreq"]
        beats = np.cumsum(rng.uniform(0.75, 1.0, int(n / sfreq / 0.75) + 2))
        ecg = 1e-3 * (S.gaussian_pulse(n, sfreq, beats, 0.012, 1.0)
                      + S.gaussian_pulse(n, sfreq, beats + 0.25, 0.05, 0.25)) \
            + 20e-6 * rng.standard_normal(n)
        ecg_raw = mne.io.RawArray(ecg[None], mne.create_info([f"EEG EKG1-{ref}"], sfreq, "eeg"),
                                  verbose="error")
        raw.add_channels([ecg_raw], force_update_info=True)
    start = dt.datetime.combine(item["date"], dt.time(9, 0), tzinfo=dt.UTC)
    raw.set_meas_date(start)
    raw.set_annotations(mne.Annotations([], [], [], orig_time=start))
    return raw
