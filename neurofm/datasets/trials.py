"""``TrialSet``: labelled trials of one dataset, the input of supervised evaluation.

Every loader in :mod:`neurofm.datasets` returns one: the trials ``X [n, C, T]`` in SI units
(V for EEG/iEEG, T for magnetometers, T/m for gradiometers) with one sensor layout shared by all
trials, labels, subject ids and, when the dataset publishes one, the official train/test split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurofm.sensors import SensorLayout

TASK_TYPES = ("classification", "regression")


@dataclass
class TrialSet:
    """Labelled trials of one dataset.

    Attributes
    ----------
    name : str
        Dataset name (``"aeon:FingerMovements"``, ``"sim:motor_imagery"`` …).
    X : ndarray of float32, shape [n_trials, C, T]
        SI units (V for EEG/iEEG, T for magnetometers, T/m for gradiometers).
    y : ndarray, shape [n_trials]
        Class index (int64, classification) or target (float32, regression).
    subject : ndarray of str, shape [n_trials]
    sfreq : float
        Sampling rate in Hz.
    sensors : SensorLayout
        One layout (C channels, in the order of ``X``'s channel axis) for all trials.
    task : str
        ``"classification"`` or ``"regression"``.
    class_names : list of str, optional
        Name of each class index (classification).
    split : ndarray of str, shape [n_trials], optional
        Official ``"train"``/``"test"`` split when the dataset has one.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    sfreq: float
    sensors: SensorLayout
    task: str = "classification"
    class_names: list[str] | None = None
    split: np.ndarray | None = None

    def __post_init__(self):
        self.X = np.asarray(self.X, dtype=np.float32)
        if self.X.ndim != 3:
            raise ValueError(f"TrialSet {self.name!r}: X must be [n_trials, C, T], got shape "
                             f"{self.X.shape}.")
        n, c, _ = self.X.shape
        if self.task not in TASK_TYPES:
            raise ValueError(f"TrialSet {self.name!r}: task must be one of {TASK_TYPES}, got "
                             f"{self.task!r}.")
        self.y = np.asarray(self.y, dtype=np.int64 if self.task == "classification"
                            else np.float32).reshape(-1)
        self.subject = np.asarray(self.subject, dtype=str).reshape(-1)
        if self.split is not None:
            self.split = np.asarray(self.split, dtype=str).reshape(-1)
            bad = sorted(set(self.split) - {"train", "test"})
            if bad:
                raise ValueError(f"TrialSet {self.name!r}: split values must be 'train' or "
                                 f"'test', got {bad}.")
        for field_name in ("y", "subject", "split"):
            value = getattr(self, field_name)
            if value is not None and len(value) != n:
                raise ValueError(f"TrialSet {self.name!r}: {field_name} has {len(value)} "
                                 f"entries for {n} trials.")
        if len(self.sensors) != c:
            raise ValueError(f"TrialSet {self.name!r}: sensors describe {len(self.sensors)} "
                             f"channels but X has {c}.")
        if self.class_names is not None and self.task == "classification" and n and \
                self.y.max() >= len(self.class_names):
            raise ValueError(f"TrialSet {self.name!r}: label {int(self.y.max())} has no entry "
                             f"in class_names {self.class_names}.")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_channels(self) -> int:
        return self.X.shape[1]

    @property
    def n_times(self) -> int:
        return self.X.shape[2]

    def subset(self, index) -> TrialSet:
        """The trials at ``index`` (ints or a boolean mask), same sensors."""
        index = np.asarray(index)
        return TrialSet(name=self.name, X=self.X[index], y=self.y[index],
                        subject=self.subject[index], sfreq=self.sfreq, sensors=self.sensors,
                        task=self.task, class_names=self.class_names,
                        split=None if self.split is None else self.split[index])

    def summary(self) -> str:
        """One line: name, trials, channels x samples, rate, classes, subjects, split."""
        parts = [(f"{self.name}: {len(self)} trials x {self.n_channels} ch x {self.n_times} "
                 f"samples @ {self.sfreq:g} Hz"), self.task]
        if self.class_names:
            counts = np.bincount(self.y, minlength=len(self.class_names))
            parts.append(", ".join(f"{c}={k}" for c, k in zip(self.class_names, counts)))
        parts.append(f"{len(np.unique(self.subject))} subject(s)")
        if self.split is not None:
            parts.append(f"train={int((self.split == 'train').sum())} "
                         f"test={int((self.split == 'test').sum())}")
        return "; ".join(parts)
