"""Look-alike clinical releases written from simulated recordings, for offline tests and timings.

The real TUAB, TUEV, CHB-MIT and Sleep-EDF cannot be downloaded here (TUH needs a
registration; all are tens of GB). These writers put simulated EEG (:mod:`neurofm.simulate`,
the 10-20 electrodes of ``colin27_1020``) into each release's published folder layout, file
names, channel labels and label files, so that the loaders (``tuab:``, ``tuev:``, ``chbmit:``,
``sleep-edf:``; braindecode's ``TUHAbnormal``) read them as they read the real thing:

=====================  ======================================================================
writer                 layout
=====================  ======================================================================
:func:`write_tuab`     ``<root>/v3.0.1/edf/{train,eval}/{normal,abnormal}/01_tcp_ar/
                       SUBJECT_s001_t000.edf``; referential ``EEG FP1-REF`` channels plus
                       ``EEG EKG1-REF``, 250 Hz; abnormal recordings carry the simulator's
                       abnormal signature
:func:`write_tuev`     ``<root>/v2.0.1/edf/train/SUBJECT/SUBJECT_00000001.edf`` and
                       ``edf/eval/NNN/bckg_NNN_a_.edf``, each with a ``.rec`` file
:func:`write_chbmit`   ``<root>/chbNN/chbNN_MM.edf`` with CHB-MIT's 23 bipolar channels (the
                       repeated ``T8-P8`` too) at 256 Hz, and ``chbNN-summary.txt``
:func:`write_sleep_edf`  ``<root>/SC4ssNE0-PSG.edf`` (``EEG Fpz-Cz``, ``EEG Pz-Oz``, ``EOG
                       horizontal``, ``EMG submental`` at 100 Hz) and
                       ``SC4ssNEC-Hypnogram.edf`` (stage annotations in 30-s epochs)
:func:`write_seed_v`   ``<root>/EEG_raw/{subject}_{session}_{date}.edf``: SEED-V's 62 channels
                       plus M1, M2, VEO, HEO, as EDF (nothing here writes Neuroscan CNT)
=====================  ======================================================================

Every writer takes ``missing_channel``: subjects whose recordings lack one channel the papers'
montage needs, so that tests see the loader skip them with the reason.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

import mne
import numpy as np

from neurofm.simulate.recording import simulate_recording
from neurofm.simulate.tasks import SLEEP_STAGES
from neurofm.simulate.tueg import TUEG_ELECTRODES, tueg_subject_id

#: CHB-MIT's 23 channels, in the order of its files (``T8-P8`` twice).
CHBMIT_CHANNELS = ("FP1-F7", "F7-T7", "T7-P7", "P7-O1", "FP1-F3", "F3-C3", "C3-P3", "P3-O1",
                   "FP2-F4", "F4-C4", "C4-P4", "P4-O2", "FP2-F8", "F8-T8", "T8-P8", "P8-O2",
                   "FZ-CZ", "CZ-PZ", "P7-T7", "T7-FT9", "FT9-FT10", "FT10-T8", "T8-P8")
#: Sleep-EDF stage annotation of each simulated stage (N3 alternates between "3" and "4").
_SLEEP_LABELS = {"W": "Sleep stage W", "N1": "Sleep stage 1", "N2": "Sleep stage 2",
                 "REM": "Sleep stage R"}
_GRID_MM = 40.0


@lru_cache(maxsize=64)
def simulated_eeg(seconds: float, sfreq: float, subject: int, session: int = 0,
                  task: str = "abnormal", abnormal: bool = False, seed: int = 0,
                  names: tuple[str, ...] | None = None):
    """A simulated EEG recording of ``colin27_1020``'s electrodes: ``(data [C, T] in V,
    names (10-05), plan)``; by default the 10-20 electrodes plus Fpz, Oz, TP9, TP10, FT9, FT10.

    Cached, so that trees of several data sets reuse the same simulated subjects.
    """
    names = names or (*TUEG_ELECTRODES, "Fpz", "Oz", "TP9", "TP10", "FT9", "FT10")
    rec = simulate_recording(task, "eeg", montage="colin27_1020", duration=seconds,
                             sfreq=sfreq, subject=subject, session=session, seed=seed,
                             line_freq=60.0, grid_mm=_GRID_MM,
                             abnormal=abnormal if task == "abnormal" else None)
    present = [n for n in names if n in rec.raw.ch_names]
    data = rec.raw.get_data(picks=present)
    data.setflags(write=False)
    return data, tuple(present), rec.plan


def _tuh_raw(data, names, sfreq, *, drop: str | None = None) -> mne.io.RawArray:
    """Referential TUH channels (``EEG FP1-REF``) of the 19 electrodes, the ear electrodes
    (``EEG A1-REF``, ``EEG A2-REF``: the simulator's TP9/TP10, the nearest sites it has) and
    ``EEG EKG1-REF``."""
    index = {n: i for i, n in enumerate(names)}
    labels, rows = [], []
    for name, stem in TUEG_ELECTRODES.items():
        label = f"EEG {stem}-REF"
        if label != drop:
            labels.append(label)
            rows.append(data[index[name]])
    for ear, site in (("A1", "TP9"), ("A2", "TP10")):
        labels.append(f"EEG {ear}-REF")
        rows.append(data[index[site]])
    labels.append("EEG EKG1-REF")
    rows.append(np.sin(np.arange(data.shape[1]) / sfreq * 2 * np.pi * 1.2) * 1e-3)
    return mne.io.RawArray(np.array(rows), mne.create_info(labels, sfreq, "eeg"),
                           verbose="error")


def _export(raw: mne.io.BaseRaw, path: Path, date: dt.date) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    start = dt.datetime.combine(date, dt.time(9, 0), tzinfo=dt.UTC)
    raw.set_meas_date(start)
    if raw.annotations is not None and len(raw.annotations):
        raw.set_annotations(mne.Annotations(raw.annotations.onset, raw.annotations.duration,
                                            raw.annotations.description, orig_time=start))
    mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")
    return path


def write_tuab(root, *, train=(3, 3), evaluation=(1, 1), seconds: float = 40.0,
               sfreq: float = 250.0, sessions: int = 1, version: str = "v3.0.1",
               missing_channel: dict | None = None, seed: int = 0) -> list[Path]:
    """A TUAB-shaped release (see the module docstring).

    Parameters
    ----------
    root : path-like
        Written as ``<root>/<version>/edf/...`` (braindecode's ``path`` is ``root``).
    train, evaluation : (int, int)
        Subjects per class (normal, abnormal) in ``train`` and ``eval``; every subject has its
        own id.
    seconds, sfreq : float
        Length and rate of each recording.
    sessions : int
        Recordings per subject (sessions ``s001`` …).
    missing_channel : dict, optional
        ``{subject id: TUH label}``: that subject's recordings lack the channel.
    seed : int

    Returns
    -------
    list of Path
        The EDF files, in the order written.
    """
    missing_channel = missing_channel or {}
    paths, index = [], 0
    for part, counts in (("train", train), ("eval", evaluation)):
        for label, (folder, count) in enumerate(zip(("normal", "abnormal"), counts)):
            for _ in range(count):
                sid = tueg_subject_id(index * 7 + 3)
                for session in range(1, sessions + 1):
                    data, names, _ = simulated_eeg(seconds, sfreq, index, session,
                                                   abnormal=bool(label), seed=seed)
                    raw = _tuh_raw(data, names, sfreq, drop=missing_channel.get(sid))
                    path = (Path(root) / version / "edf" / part / folder / "01_tcp_ar"
                            / f"{sid}_s{session:03d}_t000.edf")
                    paths.append(_export(raw, path, dt.date(2010, 1, 1 + session)))
                index += 1
    return paths


def write_tuev(root, *, train: int = 4, evaluation: int = 2, seconds: float = 30.0,
               sfreq: float = 250.0, events: int = 7, version: str = "v2.0.1",
               missing_channel: dict | None = None, seed: int = 0) -> list[Path]:
    """A TUEV-shaped release: EDF files with ``.rec`` annotation files (``train`` training and
    ``evaluation`` eval recordings, one subject each).

    Each recording gets ``events`` annotations of 1 s on channels of the 22-channel TCP montage:
    the first (code 6) at 1 s, whose 5-s trial reaches before the recording's start (the loader
    drops it), then the others at whole seconds with codes 1–6 in turn.
    """
    missing_channel = missing_channel or {}
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(train + evaluation):
        data, names, _ = simulated_eeg(seconds, sfreq, 20 + i, seed=seed)
        if i < train:
            sid = tueg_subject_id(i * 11 + 5)
            path = Path(root) / version / "edf" / "train" / sid / f"{sid}_00000001.edf"
        else:
            sid = f"{i - train:03d}"
            path = Path(root) / version / "edf" / "eval" / sid / f"bckg_{sid}_a_.edf"
        raw = _tuh_raw(data, names, sfreq, drop=missing_channel.get(sid))
        paths.append(_export(raw, path, dt.date(2012, 3, 1)))
        starts = sorted(rng.choice(np.arange(3, int(seconds) - 4), events - 1, replace=False))
        lines = [f"{int(rng.integers(22))},1.0000,2.0000,6"]  # its 5-s trial starts at -1 s
        lines += [f"{int(rng.integers(22))},{s:.4f},{s + 1:.4f},{k % 6 + 1}"
                  for k, s in enumerate(starts)]
        path.with_suffix(".rec").write_text("\n".join(lines) + "\n")
    return paths


def write_chbmit(root, *, patients=(1, 2, 3), files: int = 2, seconds: float = 120.0,
                 sfreq: float = 256.0, seizures: dict | None = None,
                 missing_channel: dict | None = None, seed: int = 0) -> list[Path]:
    """A CHB-MIT-shaped release: ``chbNN/chbNN_MM.edf`` and ``chbNN/chbNN-summary.txt``.

    Parameters
    ----------
    patients : sequence of int
        Case numbers (``chb01`` …).
    files : int
        Files per case.
    seizures : dict, optional
        ``{(case, file number): [(start s, end s), ...]}``; default: one seizure from 40 to
        65 s in the first file of every case.
    missing_channel : dict, optional
        ``{case: label}``: that case's files lack the bipolar channel.
    """
    import edfio

    seizures = {(p, 1): [(40, 65)] for p in patients} if seizures is None else seizures
    missing_channel = missing_channel or {}
    paths = []
    for p in patients:
        case = f"chb{p:02d}"
        folder = Path(root) / case
        folder.mkdir(parents=True, exist_ok=True)
        summary = [f"Data Sampling Rate: {sfreq:g} Hz", "*" * 25, "",
                   "Channels in EDF Files:", "*" * 25]
        summary += [f"Channel {i + 1}: {c}" for i, c in enumerate(CHBMIT_CHANNELS)] + [""]
        for f in range(1, files + 1):
            data, names, _ = simulated_eeg(seconds, sfreq, 40 + p, f, seed=seed)
            index = {n.upper(): i for i, n in enumerate(names)}
            signals = []
            for label in CHBMIT_CHANNELS:
                if label == missing_channel.get(p):
                    continue
                a, b = label.split("-")
                bipolar = (data[index[a]] - data[index[b]]) * 1e6  # µV
                signals.append(edfio.EdfSignal(bipolar, sfreq, label=label,
                                               physical_dimension="uV",
                                               physical_range=(-3000.0, 3000.0)))
            name = f"{case}_{f:02d}.edf"
            edfio.Edf(signals, starttime=dt.time(11, f)).write(folder / name)
            paths.append(folder / name)
            found = seizures.get((p, f), [])
            summary += [f"File Name: {name}", f"File Start Time: 11:{f:02d}:00",
                        f"File End Time: 11:{f + 2:02d}:00",
                        f"Number of Seizures in File: {len(found)}"]
            for k, (start, end) in enumerate(found, 1):
                tag = "Seizure" if len(found) == 1 else f"Seizure {k}"
                summary += [f"{tag} Start Time: {start} seconds",
                            f"{tag} End Time: {end} seconds"]
            summary.append("")
        (folder / f"{case}-summary.txt").write_text("\n".join(summary))
    return paths


def write_sleep_edf(root, *, subjects=(0, 1, 2), nights=(1,), epochs: int = 24,
                    wake_epochs: int = 6, missing_channel: dict | None = None,
                    seed: int = 0) -> list[Path]:
    """A Sleep-EDF (sleep cassette) look-alike: PSG and hypnogram EDF pairs at 100 Hz.

    Each night is ``wake_epochs`` of wake, ``epochs`` epochs of simulated stages, ``wake_epochs``
    of wake, then one epoch marked ``Sleep stage ?`` and one ``Movement time`` inside the night.
    N3 epochs alternate between stages ``3`` and ``4`` (merged to N3 by the loader).

    Returns
    -------
    list of Path
        The PSG files.
    """
    missing_channel = missing_channel or {}
    paths = []
    epoch = 30.0
    for s in subjects:
        for night in nights:
            n_epochs = epochs + 2 * wake_epochs
            data, names, plan = simulated_eeg(n_epochs * epoch, 100.0, 60 + s, night,
                                              task="sleep_like", seed=seed)
            index = {n: i for i, n in enumerate(names)}
            channels = {"EEG Fpz-Cz": data[index["Fpz"]] - data[index["Cz"]],
                        "EEG Pz-Oz": data[index["Pz"]] - data[index["Oz"]],
                        "EOG horizontal": data[index["F7"]] - data[index["F8"]],
                        "EMG submental": data[index["T7"]] * 0.1}
            channels.pop(missing_channel.get(s), None)
            raw = mne.io.RawArray(np.array(list(channels.values())),
                                  mne.create_info(list(channels), 100.0, "eeg"),
                                  verbose="error")
            psg = Path(root) / f"SC4{s:02d}{night}E0-PSG.edf"
            paths.append(_export(raw, psg, dt.date(1989, 4, night)))
            stages = ["W"] * wake_epochs + [SLEEP_STAGES[k] for k in
                                            plan.trial_labels[wake_epochs:wake_epochs + epochs]]
            stages += ["W"] * wake_epochs
            labels, n3 = [], 0
            for k, stage in enumerate(stages):
                if stage == "N3":
                    labels.append("Sleep stage 3" if n3 % 2 == 0 else "Sleep stage 4")
                    n3 += 1
                else:
                    labels.append(_SLEEP_LABELS[stage])
            labels[wake_epochs + 2] = "Sleep stage ?"
            labels[wake_epochs + 3] = "Movement time"
            hyp = mne.io.RawArray(np.zeros((1, int(n_epochs * epoch))),
                                  mne.create_info(["marker"], 1.0, "misc"), verbose="error")
            hyp.set_annotations(mne.Annotations(np.arange(n_epochs) * epoch,
                                                np.full(n_epochs, epoch), labels))
            _export(hyp, Path(root) / f"SC4{s:02d}{night}EC-Hypnogram.edf",
                    dt.date(1989, 4, night))
    return paths


#: SEED-V cap labels -> the simulated electrode standing in for each (CB1/CB2, below the
#: occipital row, take O9/O10; the mastoids M1/M2 take TP9/TP10; VEO/HEO frontal sites).
SEED_V_STANDINS = {"CB1": "O9", "CB2": "O10", "M1": "TP9", "M2": "TP10", "VEO": "Fp1",
                   "HEO": "F7"}


def write_seed_v(root, *, subjects=(1, 2), sessions=("1",), seconds: float = 64.0,
                 sfreq: float = 200.0, seed: int = 0) -> list[Path]:
    """A SEED-V look-alike: ``<root>/EEG_raw/{subject}_{session}_20180804.edf`` with the 62 cap
    channels (SEED-V spelling, ``FP1`` … ``CB2``) and M1, M2, VEO, HEO.

    The real clips run to 56 min; tests shorten the loader's clip table
    (``neurofm.datasets.seed_v.TRIAL_SECONDS``) to fit ``seconds``.
    """
    from neurofm.datasets.montages import SEED60

    labels = [*SEED60[:57], "CB1", *SEED60[57:], "CB2", "M1", "M2", "VEO", "HEO"]
    sites = tuple(SEED_V_STANDINS.get(label) or _ten_ten(label) for label in labels)
    paths = []
    for subject in subjects:
        for session in sessions:
            data, names, _ = simulated_eeg(seconds, sfreq, 80 + subject, int(session),
                                           task="resting", seed=seed, names=sites)
            index = {n: i for i, n in enumerate(names)}
            raw = mne.io.RawArray(np.array([data[index[site]] for site in sites]),
                                  mne.create_info(labels, sfreq, "eeg"), verbose="error")
            path = Path(root) / "EEG_raw" / f"{subject}_{session}_20180804.edf"
            paths.append(_export(raw, path, dt.date(2018, 8, 4)))
    return paths


def _ten_ten(label: str) -> str:
    """SEED-V's upper-case label as the 10-05 spelling (``FCZ`` -> ``FCz``, ``FP1`` -> ``Fp1``)."""
    from neurofm.sensors.names import normalise_channel_name

    return normalise_channel_name(label).canonical
