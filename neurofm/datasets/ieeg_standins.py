"""Look-alike intracranial releases written from simulated sEEG, for offline tests and timings.

Omni-iEEG cannot be downloaded here. :func:`write_omni_ieeg` writes its layout
(:mod:`neurofm.datasets.ieeg`) from simulated recordings (:mod:`neurofm.simulate`, four shafts
of eight contacts, ``LA1`` … ``RB8``) without ``electrodes.tsv``; :func:`write_ieeg_bids` writes
an iEEG-BIDS set with ``electrodes.tsv`` in MNI space through mne-bids.

Each participant has a seizure-onset zone: contacts 1–3 of one shaft carry an epileptiform
signature — interictal spikes (a 15-ms sharp transient of about 400 µV and a 200-ms slow wave,
30 per minute) and ripples (80–250 Hz bursts of about 50 ms, 40 per minute, 40 µV standard deviation), weaker on the
next contacts of the shaft (x 0.3 one contact away, x 0.1 two away). Ripples lie above what a
200-Hz model sees (docs/datasets.md, "Sampling rates"); the spikes do not. A participant with
a good outcome had the onset zone and the next contact resected; one with a poor outcome had
four contacts of another shaft resected; one with an unknown outcome has unknown resection
labels. One contact per recording is bad (``good = 0``) and holds a saturated, noisy signal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import mne
import numpy as np
import pandas as pd

from neurofm.simulate.recording import simulate_recording
from neurofm.simulate.sources import band_noise, gaussian_pulse, poisson_onsets

#: Shafts of the simulated montage (``shafts4``), in channel order, eight contacts each.
SHAFTS = ("LA", "RA", "LB", "RB")
CONTACTS_PER_SHAFT = 8
#: Anatomical labels written for each shaft (``-1``: unknown).
ANATOMY = {"LA": "Left amygdala", "RA": "Right amygdala", "LB": "Left hippocampus",
           "RB": "-1"}
#: Contacts (1-based along the shaft) of the onset zone.
SOZ_CONTACTS = (1, 2, 3)
_GRID_MM = 40.0


@dataclass
class IEEGTree:
    """What a look-alike writer wrote.

    Attributes
    ----------
    root : Path
    participants : pandas.DataFrame
        ``participant_id``, ``outcome``, ``dataset``, ``split``, ``soz_shaft``.
    contacts : pandas.DataFrame
        One row per contact of every recording: ``participant``, ``recording`` (path relative
        to ``root``), ``name``, ``good``, ``soz``, ``resection``.
    recordings : pandas.DataFrame
        The split file's rows (``edf_name``, ``split``, ``frequency``, ``interictal``,
        ``length``, ``dataset`` …).
    """

    root: Path
    participants: pd.DataFrame
    contacts: pd.DataFrame
    recordings: pd.DataFrame


def epileptiform(n: int, sfreq: float, rng: np.random.Generator, seconds: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The onset-zone signature in volts: ``(spikes [n], ripples [n])`` at full strength."""
    onsets = poisson_onsets(rng, seconds, 30.0, min_gap_s=0.5)
    spikes = gaussian_pulse(n, sfreq, onsets, 0.006, -400e-6) \
        + gaussian_pulse(n, sfreq, onsets + 0.08, 0.05, 120e-6)
    bursts = poisson_onsets(rng, seconds, 40.0, min_gap_s=0.2)
    envelope = gaussian_pulse(n, sfreq, bursts, 0.012, 1.0)
    ripples = 40e-6 * band_noise(rng, n, sfreq, 80.0, min(250.0, 0.45 * sfreq))
    return spikes, envelope * ripples


def _channel_table(names, sfreq, seconds, good, soz, resection) -> pd.DataFrame:
    return pd.DataFrame({
        "name": names, "sampling_frequency": sfreq, "low_cutoff": 0.5,
        "high_cutoff": sfreq / 2 * 0.9, "edf_length": round(seconds, 3), "good": good,
        "soz": soz, "resection": resection,
        "anatomical": [ANATOMY[n.rstrip("0123456789")] for n in names]})


def _labels(shafts, soz_shaft: int, outcome: int, unknown_soz_shaft: int | None):
    """``good``, ``soz``, ``resection`` of the 32 contacts and the bad contact's index."""
    n = len(shafts) * CONTACTS_PER_SHAFT
    soz = np.zeros(n, int)
    for k in SOZ_CONTACTS:
        soz[soz_shaft * CONTACTS_PER_SHAFT + k - 1] = 1
    if unknown_soz_shaft is not None:
        soz[unknown_soz_shaft * CONTACTS_PER_SHAFT:(unknown_soz_shaft + 1)
            * CONTACTS_PER_SHAFT] = -1
    resection = np.zeros(n, int)
    if outcome == 1:
        resection[soz_shaft * CONTACTS_PER_SHAFT:soz_shaft * CONTACTS_PER_SHAFT + 4] = 1
    elif outcome == 0:
        other = (soz_shaft + 1) % len(shafts)
        resection[other * CONTACTS_PER_SHAFT:other * CONTACTS_PER_SHAFT + 4] = 1
    else:
        resection[:] = -1
    bad = ((soz_shaft + 2) % len(shafts)) * CONTACTS_PER_SHAFT + CONTACTS_PER_SHAFT - 1
    good = np.ones(n, int)
    good[bad] = 0
    return good, soz, resection, bad


def _signals(subject: int, session: int, seconds: float, sfreq: float, seed: int,
             soz_shaft: int, bad: int, *, task: str = "resting", ictal: bool = False
             ) -> tuple[np.ndarray, list[str]]:
    rec = simulate_recording(task, "seeg", montage="shafts4", duration=seconds, sfreq=sfreq,
                             subject=subject, session=session, seed=seed, grid_mm=_GRID_MM,
                             artefacts=())
    data = rec.raw.get_data(picks="seeg")
    names = [rec.raw.ch_names[i] for i in mne.pick_types(rec.raw.info, seeg=True)]
    rng = np.random.default_rng([seed, subject, session, 7])
    n = data.shape[1]
    spikes, ripples = epileptiform(n, sfreq, rng, seconds)
    first = soz_shaft * CONTACTS_PER_SHAFT
    for k in range(CONTACTS_PER_SHAFT):
        distance = max(0, k + 1 - max(SOZ_CONTACTS))
        weight = (1.0, 0.3, 0.1)[distance] if distance < 3 else 0.0
        data[first + k] += weight * (spikes + ripples)
    if ictal:  # a 3-Hz rhythmic discharge spreading from the onset zone, from 20 s for 30 s
        beats = 20.0 + np.arange(0.0, min(30.0, seconds - 25.0), 1 / 3.0)
        discharge = gaussian_pulse(n, sfreq, beats, 0.01, -600e-6) \
            + gaussian_pulse(n, sfreq, beats + 0.1, 0.05, 250e-6)
        data += discharge * np.where(np.arange(len(names)) // CONTACTS_PER_SHAFT == soz_shaft,
                                     1.0, 0.4)[:, None]
    data[bad] = np.clip(rng.normal(0.0, 3e-3, n), -2e-3, 2e-3)
    return data, names


def _export(data, names, sfreq, path: Path, date: dt.date) -> None:
    raw = mne.io.RawArray(data, mne.create_info(names, sfreq, "seeg"), verbose="error")
    raw.set_meas_date(dt.datetime.combine(date, dt.time(9, 0), tzinfo=dt.UTC))
    path.parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")


def write_omni_ieeg(root, *, patients: int = 8, seconds: float = 130.0, sfreq: float = 1000.0,
                    outcomes=(1, 1, 0, -1, 1, 1, 0, 1), splits=None, multicenter=(7,),
                    low_rate=(1,), ictal=(), sleep=(), seed: int = 0) -> IEEGTree:
    """An Omni-iEEG-shaped release (module docstring) without ``electrodes.tsv``.

    Parameters
    ----------
    root : path-like
    patients : int
        Participants ``sub-01`` … (their onset-zone shaft cycles through :data:`SHAFTS`).
    seconds, sfreq : float
        Length and rate of each participant's interictal recording (``ses-01``, ``run-01``).
    outcomes : sequence of int
        Surgical outcome of each participant (1, 0, -1 unknown), cycled.
    splits : sequence of str, optional
        Split of each participant; default: the first half train, then one val, the rest test.
    multicenter : sequence of int
        Participant indices (0-based) whose ``dataset`` is ``Multicenter`` (the SOZ task leaves
        them out); the others are ``CentreA``.
    low_rate : sequence of int
        Participants with a second interictal recording at 500 Hz (``run-02``; the SOZ task
        leaves it out).
    ictal : sequence of int
        Participants with a 70-s ictal recording (``task-ictal``, ``interictal`` false).
    sleep : sequence of int
        Participants with a 70-s recording of simulated sleep (``task-sleep``).
    seed : int

    Returns
    -------
    IEEGTree
        ``ictal_split_cross.csv`` and ``sleep_split_cross.csv`` are written under
        ``derivatives/datasplit/`` when ``ictal`` / ``sleep`` name participants, with the
        authors' columns (``patient, edf_file, label, split``): the interictal recordings
        labelled interictal / awake, the others ictal / sleep; ``split`` test for test
        participants, else train (the authors' files have no val part).
    """
    root = Path(root)
    if splits is None:
        n_train = max(1, patients // 2)
        splits = ["train"] * n_train + ["val"] + ["test"] * (patients - n_train - 1)
    participants, contacts, rows, ictal_rows, sleep_rows = [], [], [], [], []
    for i in range(patients):
        pid = f"sub-{i + 1:02d}"
        outcome = int(outcomes[i % len(outcomes)])
        soz_shaft = i % len(SHAFTS)
        dataset = "Multicenter" if i in multicenter else "CentreA"
        good, soz, resection, bad = _labels(SHAFTS, soz_shaft, outcome,
                                            (soz_shaft + 3) % len(SHAFTS) if i == 0 else None)
        participants.append({"participant_id": pid, "dataset": dataset, "outcome": outcome,
                             "event_annotation": "n/a", "split": splits[i],
                             "soz_shaft": SHAFTS[soz_shaft]})
        plan = [("interictal", 1, sfreq, seconds, "resting", False)]
        if i in low_rate:
            plan.append(("interictal", 2, 500.0, seconds, "resting", False))
        if i in ictal:
            plan.append(("ictal", 1, sfreq, 70.0, "resting", True))
        if i in sleep:
            plan.append(("sleep", 1, sfreq, 70.0, "sleep_like", False))
        for k, (task, run, rate, length, generator, is_ictal) in enumerate(plan):
            name = f"{pid}/ses-01/ieeg/{pid}_ses-01_task-{task}_run-{run:02d}_ieeg.edf"
            data, names = _signals(i, k, length, rate, seed, soz_shaft, bad, task=generator,
                                   ictal=is_ictal)
            _export(data, names, rate, root / name, dt.date(2020, 1, 1 + i))
            table = _channel_table(names, rate, length, good, soz, resection)
            table.to_csv(root / name.replace("_ieeg.edf", "_channels.tsv"), sep="\t",
                         index=False)
            contacts.append(table[["name", "good", "soz", "resection"]].assign(
                participant=pid, recording=name))
            rows.append({"patient_name": pid, "edf_name": name, "split": splits[i],
                         "frequency": rate, "interictal": task != "ictal", "length": length,
                         "outcome": outcome, "has_resection": int(outcome != -1),
                         "has_soz": 1, "dataset": dataset})
            if task == "ictal" or (task == "interictal" and run == 1 and ictal):
                ictal_rows.append({"patient": pid, "edf_file": name, "label": task,
                                   "split": "test" if splits[i] == "test" else "train"})
            if task == "sleep" or (task == "interictal" and run == 1 and sleep):
                sleep_rows.append({"patient": pid, "edf_file": name,
                                   "label": "sleep" if task == "sleep" else "awake",
                                   "split": "test" if splits[i] == "test" else "train"})
    participants = pd.DataFrame(participants)
    participants[["participant_id", "dataset", "outcome", "event_annotation"]].to_csv(
        root / "participants.tsv", sep="\t", index=False)
    split_dir = root / "derivatives" / "datasplit"
    split_dir.mkdir(parents=True, exist_ok=True)
    recordings = pd.DataFrame(rows)
    recordings.to_csv(split_dir / "final_split.csv", index=False)
    for task, task_rows in (("ictal", ictal_rows), ("sleep", sleep_rows)):
        if task_rows:
            pd.DataFrame(task_rows).to_csv(split_dir / f"{task}_split_cross.csv", index=False)
    return IEEGTree(root, participants, pd.concat(contacts, ignore_index=True), recordings)


def write_ieeg_bids(root, *, patients: int = 2, seconds: float = 70.0, sfreq: float = 1000.0,
                    seed: int = 0) -> IEEGTree:
    """An iEEG-BIDS set written by mne-bids, with ``electrodes.tsv`` in MNI (fsaverage) space
    and the label columns added to each ``channels.tsv``; participants' outcomes are 1.

    The MNI coordinates written are :func:`mni_coordinates` of the contact names.
    """
    import mne_bids

    root = Path(root)
    contacts, rows = [], []
    for i in range(patients):
        soz_shaft = i % len(SHAFTS)
        good, soz, resection, bad = _labels(SHAFTS, soz_shaft, 1, None)
        data, names = _signals(10 + i, 0, seconds, sfreq, seed, soz_shaft, bad)
        raw = mne.io.RawArray(data, mne.create_info(names, sfreq, "seeg"), verbose="error")
        raw.info["line_freq"] = 50.0
        montage = mne.channels.make_dig_montage(mni_coordinates(names), coord_frame="mni_tal")
        raw.set_montage(montage, on_missing="ignore", verbose="error")
        raw.set_meas_date(dt.datetime(2021, 3, 1 + i, 9, tzinfo=dt.UTC))
        path = mne_bids.BIDSPath(subject=f"{i + 1:02d}", session="01", task="rest", run="01",
                                 root=root, datatype="ieeg")
        mne_bids.write_raw_bids(raw, path, format="BrainVision", allow_preload=True,
                                overwrite=True, verbose="error")
        channels = path.copy().update(suffix="channels", extension=".tsv")
        table = pd.read_csv(channels.fpath, sep="\t", dtype=str, keep_default_na=False)
        table["good"], table["soz"], table["resection"] = good, soz, resection
        table.to_csv(channels.fpath, sep="\t", index=False)
        name = path.copy().update(suffix="ieeg", extension=".vhdr").fpath.relative_to(root)
        contacts.append(table[["name", "good", "soz", "resection"]].assign(
            participant=f"sub-{i + 1:02d}", recording=name.as_posix()))
        rows.append({"edf_name": name.as_posix(), "participant": f"sub-{i + 1:02d}"})
    participants = pd.read_csv(root / "participants.tsv", sep="\t", dtype=str)
    participants["outcome"] = 1
    participants.to_csv(root / "participants.tsv", sep="\t", index=False)
    return IEEGTree(root, participants, pd.concat(contacts, ignore_index=True),
                    pd.DataFrame(rows))


def mni_coordinates(names) -> dict[str, np.ndarray]:
    """MNI coordinates (metres) of the simulated contacts: each shaft a straight line 3.5 mm
    per contact, left shafts at x < 0."""
    out = {}
    for name in names:
        shaft, index = name.rstrip("0123456789"), int(name[len(name.rstrip("0123456789")):])
        side = -1.0 if shaft.startswith("L") else 1.0
        y = 0.0 if shaft.endswith("A") else -0.02
        out[name] = np.array([side * (0.02 + 0.0035 * (index - 1)), y, -0.015])
    return out
