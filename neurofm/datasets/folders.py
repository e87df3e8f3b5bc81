"""Labelled trials from files on disk: a BIDS dataset or a folder of MNE ``-epo.fif`` files.

* :func:`load_bids_trials` reads every recording of a BIDS root with mne-bids and cuts trials
  around its events (``events.tsv``). Which event names are classes and the trial window come
  from the arguments, else from ``code/neurofm_trials.json`` (written by ``neurofm simulate
  --format bids``), else every event name except artefact/bad marks, 0-1 s.
* :func:`load_epochs_folder` reads ``*-epo.fif`` files (one per subject or session); labels are
  the epochs' event names, subjects come from a ``sub-XX`` part of the file name or the name.

All files must have the same channels at the same sampling rate, since a :class:`TrialSet` has
one sensor layout; the error names the first file that differs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import mne
import numpy as np

from neurofm.data.io import is_epochs_file, read_epochs
from neurofm.datasets.trials import DEFAULT_RUN, DEFAULT_SESSION, TrialSet
from neurofm.sensors.positions import resolve_sensors

#: File (relative to a BIDS root) that says which events are classes and the trial window.
TRIALS_SIDECAR = Path("code") / "neurofm_trials.json"
#: Event names that are never classes by default.
NON_CLASS_EVENTS = ("blink", "muscle", "spike_wave", "focal_slowing", "normal", "abnormal")
_RAW_EXTENSIONS = (".edf", ".bdf", ".fif", ".vhdr", ".set", ".eeg")


def load_bids_trials(root, *, events=None, tmin: float | None = None, tmax: float | None = None,
                     datatype: str | None = None) -> TrialSet:
    """Trials around the events of every recording in a BIDS dataset.

    Parameters
    ----------
    root : path-like
        BIDS root (holds ``dataset_description.json``).
    events : list of str, optional
        Event names used as classes, in class-index order.
    tmin, tmax : float, optional
        Trial window relative to each event, seconds.
    datatype : str, optional
        ``eeg``, ``meg`` or ``ieeg``; default every datatype found.

    Returns
    -------
    TrialSet
    """
    import mne_bids

    root = Path(root)
    if not (root / "dataset_description.json").is_file():
        raise FileNotFoundError(f"{root} is not a BIDS root (no dataset_description.json).")
    defaults = _sidecar(root)
    events = list(events) if events is not None else defaults.get("events")
    tmin = float(tmin if tmin is not None else defaults.get("tmin", 0.0))
    tmax = float(tmax if tmax is not None else defaults.get("tmax", 1.0))
    paths = [p for p in mne_bids.find_matching_paths(
        root, datatypes=datatype, extensions=list(_RAW_EXTENSIONS))
        if p.suffix in ("eeg", "meg", "ieeg") and "derivatives" not in p.fpath.parts]
    if not paths:
        raise FileNotFoundError(f"No EEG/MEG/iEEG recordings found in the BIDS dataset {root}.")
    recordings = []
    for bids_path in sorted(paths, key=lambda p: str(p.fpath)):
        raw = mne_bids.read_raw_bids(bids_path, verbose="error")
        recordings.append((bids_path, raw))
    if events is None:
        names = {d for _, raw in recordings for d in raw.annotations.description}
        events = sorted(n for n in names if n not in NON_CLASS_EVENTS
                        and not n.upper().startswith(("BAD", "EDGE")))
    if not events:
        raise ValueError(f"No class events in {root}; pass events=[...] naming the event types "
                         f"that are classes.")
    X, y, info0, source0 = [], [], None, None
    rows = {"subject": [], "session": [], "run": [], "source": [], "onset": []}
    for bids_path, raw in recordings:
        raw.load_data(verbose="error")
        picks = mne.pick_types(raw.info, meg=True, eeg=True, seeg=True, ecog=True)
        info0, source0 = _same_channels(info0, source0, raw.info, picks, raw.filenames[0])
        data = raw.get_data(picks=picks)
        sfreq = raw.info["sfreq"]
        length = round((tmax - tmin) * sfreq)
        for onset, desc in zip(raw.annotations.onset, raw.annotations.description):
            if desc not in events:
                continue
            start = round((onset - raw.first_time + tmin) * sfreq)
            if start < 0 or start + length > data.shape[1]:
                continue
            X.append(data[:, start:start + length])
            y.append(events.index(desc))
            for key, value in (("subject", f"sub-{bids_path.subject}"),
                               ("session", bids_path.session or DEFAULT_SESSION),
                               ("run", bids_path.run or DEFAULT_RUN),
                               ("source", str(bids_path.fpath)),
                               ("onset", (start + raw.first_samp) / sfreq)):
                rows[key].append(value)
    if not X:
        raise ValueError(f"No trial of {events} fits the window {tmin}-{tmax} s in {root}.")
    return TrialSet(name=str(root), X=np.stack(X), y=np.asarray(y), sfreq=float(info0["sfreq"]),
                    sensors=resolve_sensors(info0), task="classification",
                    class_names=list(events), **rows)


def load_epochs_folder(folder) -> TrialSet:
    """Trials from every ``-epo.fif`` file in ``folder`` (or one such file).

    Returns
    -------
    TrialSet
        Classes are the event names of the epochs (sorted); subject ids come from ``sub-XX`` in
        the file name, else the file name.
    """
    folder = Path(folder)
    files = [folder] if folder.is_file() else sorted(
        p for p in folder.iterdir() if is_epochs_file(p))
    if not files:
        raise FileNotFoundError(f"No -epo.fif files in {folder}.")
    loaded = []
    for path in files:
        epochs = read_epochs(path)
        code_to_name = {code: name for name, code in epochs.event_id.items()}
        names = [code_to_name[c] for c in epochs.events[:, 2]]
        match = re.search(r"sub-([A-Za-z0-9]+)", path.name)
        subject = f"sub-{match.group(1)}" if match else path.name.split("-epo")[0].split("_epo")[0]
        loaded.append((path, epochs, names, subject))
    class_names = sorted({n for _, _, names, _ in loaded for n in names})
    X, y, subjects, sources, onsets, info0, source0 = [], [], [], [], [], None, None
    for path, epochs, names, subject in loaded:
        picks = mne.pick_types(epochs.info, meg=True, eeg=True, seeg=True, ecog=True)
        info0, source0 = _same_channels(info0, source0, epochs.info, picks, path)
        X.append(epochs.get_data(picks=picks))
        y += [class_names.index(n) for n in names]
        subjects += [subject] * len(names)
        sources += [str(path)] * len(names)
        onsets.append(epochs.events[:, 0] / epochs.info["sfreq"] + epochs.tmin)
    return TrialSet(name=str(folder), X=np.concatenate(X), y=np.asarray(y),
                    subject=np.asarray(subjects), sfreq=float(info0["sfreq"]),
                    sensors=resolve_sensors(info0), task="classification", class_names=class_names,
                    source=sources, onset=np.concatenate(onsets))


def write_trials_sidecar(root, events, tmin: float, tmax: float) -> Path:
    """Record the class events and trial window of a BIDS dataset (read by the loader)."""
    path = Path(root) / TRIALS_SIDECAR
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"events": list(events), "tmin": tmin, "tmax": tmax}, indent=2))
    return path


def _sidecar(root: Path) -> dict:
    path = root / TRIALS_SIDECAR
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); fix or delete it.") from None


def _same_channels(info0, source0, info, picks, source):
    """The first file's brain-channel info, checking that ``info`` has the same channels."""
    sub = mne.pick_info(info, picks)
    if info0 is None:
        return sub, source
    if sub["ch_names"] != info0["ch_names"] or sub["sfreq"] != info0["sfreq"]:
        raise ValueError(f"{source} has different channels or sampling rate than {source0}; a "
                         f"dataset needs the same channels in every file (pick or resample "
                         f"them first).")
    return info0, source0
