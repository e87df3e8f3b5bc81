"""``TrialSet``: labelled trials of one dataset with a metadata table, the input of evaluation.

Every loader in :mod:`neurofm.datasets` returns one. It holds

* the **signals**, ``[n_trials, C, T]`` in SI units (V for EEG/iEEG, T for magnetometers, T/m
  for gradiometers) with one sensor layout shared by all trials, behind a small interface
  (:class:`TrialSignals`: ``shape`` and ``read(index)``), so that the signals may live in memory
  (:class:`ArraySignals`) or be read from disk batch by batch;
* the **metadata table**, one row per trial (:data:`TRIAL_COLUMNS`): subject, session, run,
  source file, onset, label and split (``"train"``/``"val"``/``"test"``, or ``""`` when the
  dataset publishes no split). Evaluation, reports and error messages read it: a bad trial is
  named by its file, subject and onset (:meth:`TrialSet.describe_trial`), protocols split by its
  subjects and sessions, ``results.json`` lists each fold's ``[subject, session]`` groups.

The table does not depend on how the signals are stored: :meth:`TrialSet.subset`,
:meth:`TrialSet.drop` and :meth:`TrialSet.crop` return new trial sets whose signals are views
of (or readers over) the old ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from neurofm.sensors import SensorLayout

TASK_TYPES = ("classification", "regression")
#: Columns of :attr:`TrialSet.metadata`, one row per trial.
TRIAL_COLUMNS = ("subject", "session", "run", "source", "onset", "label", "split")
#: Values of the ``split`` column (``""``: the trial belongs to no published split).
SPLITS = ("train", "val", "test")
#: Session and run of trials whose loader knows of one session / run only.
DEFAULT_SESSION = "0"
DEFAULT_RUN = "0"


@runtime_checkable
class TrialSignals(Protocol):
    """Where the signals of a trial set are: ``n`` trials of ``C`` channels x ``T`` samples.

    An in-memory array (:class:`ArraySignals`) or any reader with the same two members, e.g.
    :class:`~neurofm.datasets.recordings.RecordingWindows`, which reads windows from the
    recordings on disk. A reader may also offer ``subset(index)`` and ``cropped(first, last)``
    (a subset or crop of the trial set then stays such a reader), ``finite`` (True: no sample can
    be NaN or Inf, :meth:`TrialSet.nonfinite` reads nothing) and ``lazy`` (evaluation keeps the
    signals on disk, :attr:`TrialSet.lazy`).
    """

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_trials, C, T)``."""

    def read(self, index) -> np.ndarray:
        """Trials ``index`` (ints, a boolean mask or a slice) as float32 ``[k, C, T]``."""


@dataclass(frozen=True)
class ArraySignals:
    """Signals held in memory: ``array [n, C, T]`` float32."""

    array: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)

    def read(self, index) -> np.ndarray:
        return self.array[index]


@dataclass(frozen=True)
class TrialSubsetSignals:
    """The trials ``index`` of other signals (a reader stays a reader)."""

    base: TrialSignals
    index: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.index), *self.base.shape[1:])

    def read(self, index) -> np.ndarray:
        return self.base.read(self.index[index])


@dataclass(frozen=True)
class CroppedSignals:
    """Samples ``start:stop`` of every trial of other signals."""

    base: TrialSignals
    start: int
    stop: int

    @property
    def shape(self) -> tuple[int, int, int]:
        n, c, _ = self.base.shape
        return (n, c, self.stop - self.start)

    def read(self, index) -> np.ndarray:
        return self.base.read(index)[..., self.start:self.stop]


@dataclass(frozen=True)
class AppliedBand:
    """A band-pass the loader already applied to the signals (evaluation must not repeat it).

    Attributes
    ----------
    l_freq, h_freq : float or None
        Band edges in Hz (None: that side open).
    method : str
        How, in words (``"IIR Butterworth order 4, zero-phase, on the continuous recordings"``).
    by : str
        Who applied it (``"MOABB MotorImagery (mne raw.filter)"``).
    """

    l_freq: float | None
    h_freq: float | None
    method: str
    by: str

    def describe(self) -> str:
        low = "DC" if self.l_freq is None else f"{self.l_freq:g}"
        high = "Nyquist" if self.h_freq is None else f"{self.h_freq:g}"
        return f"band-pass {low}-{high} Hz by {self.by}: {self.method}"

    def to_dict(self) -> dict:
        return {"l_freq": self.l_freq, "h_freq": self.h_freq, "method": self.method,
                "by": self.by}


class TrialSet:
    """Labelled trials of one dataset: signals, labels and one metadata row per trial.

    Parameters
    ----------
    name : str
        Dataset name (``"aeon:FingerMovements"``, ``"moabb:BNCI2014_001"`` …).
    X : ndarray of float, shape [n_trials, C, T], or TrialSignals
        The signals, SI units.
    y : array, shape [n_trials]
        Class index (classification) or target (regression).
    subject : array of str, shape [n_trials]
    sfreq : float
        Sampling rate in Hz.
    sensors : SensorLayout
        One layout (C channels, in the order of the channel axis) for all trials.
    task : {"classification", "regression"}
    class_names : list of str, optional
        Name of each class index (classification).
    split : array of str, shape [n_trials], optional
        Published split: ``"train"``, ``"val"``, ``"test"`` (``""``: in no part).
    session, run, source : array of str, shape [n_trials], optional
        Recording session (default :data:`DEFAULT_SESSION`), run (default :data:`DEFAULT_RUN`)
        and source file (default ``""``: unknown) of each trial.
    onset : array of float, shape [n_trials], optional
        Seconds from the start of the source recording to the trial's first sample (NaN:
        unknown).
    band : AppliedBand, optional
        A band-pass the loader already applied to ``X``.
    provenance : dict, optional
        How the trials were made (loader, paradigm, options), for ``results.json``.
    dropped : pandas.DataFrame, optional
        Rows of trials left out (the :data:`TRIAL_COLUMNS` and ``reason``).

    Attributes
    ----------
    signals : TrialSignals
    metadata : pandas.DataFrame
        One row per trial, columns :data:`TRIAL_COLUMNS` (``label``: the class name, or the
        target of a regression task).
    y : ndarray, shape [n_trials]
        int64 class indices or float32 targets.
    """

    def __init__(self, name: str, X, y, subject, sfreq: float, sensors: SensorLayout,
                 task: str = "classification", class_names: list[str] | None = None,
                 split=None, *, session=None, run=None, source=None, onset=None,
                 band: AppliedBand | None = None, provenance: dict | None = None,
                 dropped: pd.DataFrame | None = None):
        self.name = name
        self.signals = X if isinstance(X, TrialSignals) and not isinstance(X, np.ndarray) \
            else ArraySignals(np.asarray(X, dtype=np.float32))
        shape = tuple(self.signals.shape)
        if len(shape) != 3:
            raise ValueError(f"TrialSet {name!r}: X must be [n_trials, C, T], got shape {shape}.")
        n, c, _ = shape
        if task not in TASK_TYPES:
            raise ValueError(f"TrialSet {name!r}: task must be one of {TASK_TYPES}, got "
                             f"{task!r}.")
        self.task = task
        self.y = np.asarray(y, dtype=np.int64 if task == "classification"
                            else np.float32).reshape(-1)
        self.sfreq = float(sfreq)
        self.sensors = sensors
        self.class_names = None if class_names is None else list(class_names)
        self.band = band
        self.provenance = dict(provenance or {})
        columns = {"subject": subject, "session": session, "run": run, "source": source,
                   "onset": onset, "split": split}
        for key, value in columns.items():
            if value is not None and len(np.asarray(value).reshape(-1)) != n:
                raise ValueError(f"TrialSet {name!r}: {key} has {len(np.asarray(value))} "
                                 f"entries for {n} trials.")
        if len(self.y) != n:
            raise ValueError(f"TrialSet {name!r}: y has {len(self.y)} entries for {n} trials.")
        if len(sensors) != c:
            raise ValueError(f"TrialSet {name!r}: sensors describe {len(sensors)} channels but "
                             f"X has {c}.")
        if self.class_names is not None and task == "classification" and n and \
                self.y.max() >= len(self.class_names):
            raise ValueError(f"TrialSet {name!r}: label {int(self.y.max())} has no entry in "
                             f"class_names {self.class_names}.")
        self.metadata = pd.DataFrame({
            "subject": _strings(subject, n, None),
            "session": _strings(session, n, DEFAULT_SESSION),
            "run": _strings(run, n, DEFAULT_RUN),
            "source": _strings(source, n, ""),
            "onset": np.full(n, np.nan) if onset is None
            else np.asarray(onset, dtype=float).reshape(-1),
            "label": self._labels(),
            "split": _strings(split, n, ""),
        }, columns=list(TRIAL_COLUMNS))
        bad = sorted(set(self.metadata["split"]) - {"", *SPLITS})
        if bad:
            raise ValueError(f"TrialSet {name!r}: split values must be 'train', 'val' or "
                             f"'test', got {bad}.")
        self.dropped = (pd.DataFrame(columns=[*TRIAL_COLUMNS, "reason"]) if dropped is None
                        else dropped.reset_index(drop=True))

    def _labels(self) -> np.ndarray:
        if self.task == "classification" and self.class_names is not None:
            return np.asarray(self.class_names, dtype=object)[self.y] if len(self.y) else \
                np.array([], dtype=object)
        return self.y.astype(object)

    # ---- signals ---------------------------------------------------------------------------

    @property
    def X(self) -> np.ndarray:
        """All signals ``[n, C, T]`` float32 (read in full for a reader)."""
        if isinstance(self.signals, ArraySignals):
            return self.signals.array
        return self.signals.read(np.arange(len(self)))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def lazy(self) -> bool:
        """True when the signals stay on disk in evaluation (read batch by batch)."""
        return bool(getattr(self.signals, "lazy", False))

    @property
    def n_channels(self) -> int:
        return self.signals.shape[1]

    @property
    def n_times(self) -> int:
        return self.signals.shape[2]

    def batches(self, batch_size: int = 256):
        """``(index [k], signals [k, C, T])`` over all trials, ``batch_size`` at a time."""
        for start in range(0, len(self), batch_size):
            index = np.arange(start, min(start + batch_size, len(self)))
            yield index, self.signals.read(index)

    def nonfinite(self, batch_size: int = 256) -> np.ndarray:
        """Indices of the trials holding a NaN or infinite sample (none, without reading, for
        signals that declare themselves ``finite``: windows of EDF files hold integers)."""
        if getattr(self.signals, "finite", False):
            return np.array([], dtype=int)
        bad = [index[~np.isfinite(block).all(axis=(1, 2))]
               for index, block in self.batches(batch_size)]
        return np.concatenate(bad) if bad else np.array([], dtype=int)

    # ---- metadata ---------------------------------------------------------------------------

    @property
    def subject(self) -> np.ndarray:
        """Subject of each trial, str ``[n]``."""
        return self.metadata["subject"].to_numpy(dtype=str)

    @property
    def session(self) -> np.ndarray:
        """Session of each trial, str ``[n]``."""
        return self.metadata["session"].to_numpy(dtype=str)

    @property
    def split(self) -> np.ndarray | None:
        """Published split of each trial (``"train"``/``"val"``/``"test"``/``""``), or None when
        no trial belongs to one."""
        split = self.metadata["split"].to_numpy(dtype=str)
        return split if (split != "").any() else None

    def groups(self) -> np.ndarray:
        """``[subject, session]`` of each trial, str ``[n, 2]``."""
        return np.stack([self.subject, self.session], axis=1) if len(self) else \
            np.empty((0, 2), dtype=str)

    def describe_trial(self, i: int) -> str:
        """``"trial 17 (subject 3, session 0train, run 2, file A03T.mat, onset 12.50 s)"``."""
        row = self.metadata.iloc[int(i)]
        parts = [f"subject {row['subject']}", f"session {row['session']}", f"run {row['run']}"]
        if row["source"]:
            parts.append(f"file {row['source']}")
        if np.isfinite(row["onset"]):
            parts.append(f"onset {row['onset']:.2f} s")
        return f"trial {int(i)} ({', '.join(parts)})"

    # ---- new trial sets ---------------------------------------------------------------------

    def _derived(self, signals, rows: pd.DataFrame, y: np.ndarray, **changes) -> TrialSet:
        values = {"name": self.name, "X": signals, "y": y, "subject": rows["subject"].to_numpy(),
                  "sfreq": self.sfreq, "sensors": self.sensors, "task": self.task,
                  "class_names": self.class_names, "split": rows["split"].to_numpy(),
                  "session": rows["session"].to_numpy(), "run": rows["run"].to_numpy(),
                  "source": rows["source"].to_numpy(), "onset": rows["onset"].to_numpy(),
                  "band": self.band, "provenance": self.provenance, "dropped": self.dropped}
        values.update(changes)
        return TrialSet(**values)

    def subset(self, index) -> TrialSet:
        """The trials at ``index`` (ints or a boolean mask), same sensors."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        if isinstance(self.signals, ArraySignals):
            signals = ArraySignals(self.signals.array[index])
        elif hasattr(self.signals, "subset"):  # a reader that selects its own rows
            signals = self.signals.subset(index)
        else:
            signals = TrialSubsetSignals(self.signals, index)
        return self._derived(signals, self.metadata.iloc[index], self.y[index])

    def drop(self, index, reason: str) -> TrialSet:
        """The trial set without the trials at ``index``; their rows go to :attr:`dropped`
        with ``reason``."""
        index = np.asarray(index, dtype=int)
        keep = np.setdiff1d(np.arange(len(self)), index)
        removed = self.metadata.iloc[index].assign(reason=reason)
        dropped = pd.concat([d for d in (self.dropped, removed) if len(d)], ignore_index=True) \
            if len(removed) else self.dropped
        kept = self.subset(keep)
        kept.dropped = dropped
        return kept

    def with_split(self, split) -> TrialSet:
        """The same trials with the split column replaced (``"train"``/``"val"``/``"test"``/``""``
        per trial)."""
        rows = self.metadata.assign(split=_strings(split, len(self), ""))
        return self._derived(self.signals, rows, self.y)

    def crop(self, start: float, stop: float) -> TrialSet:
        """Samples from ``start`` to ``stop`` seconds of every trial (``stop`` excluded, so a
        4-s window at 250 Hz is exactly 1000 samples); onsets move by ``start``.

        Raises
        ------
        ValueError
            A window outside the trials, naming their length.
        """
        first, last = round(start * self.sfreq), round(stop * self.sfreq)
        if not 0 <= first < last <= self.n_times:
            raise ValueError(f"{self.name}: the window {start:g}-{stop:g} s does not fit in trials "
                             f"of {self.n_times / self.sfreq:g} s ({self.n_times} samples at "
                             f"{self.sfreq:g} Hz).")
        rows = self.metadata.assign(onset=self.metadata["onset"] + first / self.sfreq)
        if isinstance(self.signals, ArraySignals):
            signals = ArraySignals(self.signals.array[..., first:last])
        elif hasattr(self.signals, "cropped"):  # a reader that crops its own windows
            signals = self.signals.cropped(first, last)
        else:
            signals = CroppedSignals(self.signals, first, last)
        return self._derived(signals, rows, self.y)

    def summary(self) -> str:
        """One line: name, trials, channels x samples, rate, classes, subjects, sessions, split."""
        parts = [(f"{self.name}: {len(self)} trials x {self.n_channels} ch x {self.n_times} "
                 f"samples @ {self.sfreq:g} Hz"), self.task]
        if self.class_names:
            counts = np.bincount(self.y, minlength=len(self.class_names))
            parts.append(", ".join(f"{c}={k}" for c, k in zip(self.class_names, counts)))
        parts.append(f"{self.metadata['subject'].nunique()} subject(s)")
        n_groups = len(self.metadata.groupby(["subject", "session"]))
        if n_groups > self.metadata["subject"].nunique():
            parts.append(f"{n_groups} subject-sessions")
        if self.split is not None:
            counts = self.metadata["split"].value_counts()
            parts.append(" ".join(f"{s}={int(counts.get(s, 0))}" for s in SPLITS
                                  if s != "val" or counts.get(s, 0)))
        if len(self.dropped):
            parts.append(f"{len(self.dropped)} trial(s) dropped")
        return "; ".join(parts)


def _strings(values, n: int, default: str | None) -> np.ndarray:
    """``values`` as an object array of ``n`` str (``default`` when None)."""
    if values is None:
        if default is None:
            raise ValueError("Every trial needs a subject.")
        return np.full(n, default, dtype=object)
    return np.asarray([str(v) for v in np.asarray(values).reshape(-1)], dtype=object)

