"""Windows of recordings that stay on disk: the signals of the clinical trial sets.

TUAB alone is about 409,000 ten-second windows of 16 channels, some 50 GB in float32: a trial set
of it cannot hold its signals. :class:`RecordingWindows` is a :class:`~neurofm.datasets.trials.
TrialSignals` that keeps only a table in memory (which recording, where its window starts) and
reads the samples with MNE (``preload=False``: only the samples asked for are read) when asked:

* :meth:`RecordingWindows.read` gives the raw windows (SI units, the montage applied) at the
  trial set's rate, the ``X`` of the trial set, batch by batch;
* :meth:`RecordingWindows.read_recording` gives one whole recording, for evaluation to
  preprocess it as a continuous signal before cutting it (as ``neurofm prepare`` does for
  pretraining; ``neurofm.eval.window_inputs``).

A recording is described by a :class:`RecordingFile`: its path, rate, length and the
:class:`~neurofm.datasets.montages.Derivation` that gives the montage's channels. Recordings at
another rate than the trial set's are resampled whole (neurofm's exact FFT resampler) when their
raw windows are read. EDF and Neuroscan CNT store integers, so the windows are always finite
(:attr:`RecordingWindows.finite`): evaluation does not scan them for NaN.

:func:`recording_windows` builds a :class:`~neurofm.datasets.trials.TrialSet` from the window
rows a loader found; :class:`SkippedRecordings` collects the files a loader could not use, with
the reason, for ``results.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path

import mne
import numpy as np
import pandas as pd

from neurofm.data.filters import filter_and_resample
from neurofm.datasets.montages import Derivation, MontageError, montage_layout, resolve_montage
from neurofm.datasets.trials import TRIAL_COLUMNS, TrialSet
from neurofm.sensors import SensorLayout

#: A trial set is read lazily (signals left on disk) when its raw windows would take more than
#: this many bytes in memory, unless the loader is told ``lazy=true`` / ``lazy=false``.
LAZY_BYTES = 1 << 30
#: Open MNE readers kept (header parsing costs a few ms per file).
OPEN_READERS = 16
#: Readers by file suffix; everything else goes to :func:`mne.io.read_raw`.
_READERS = {".edf": mne.io.read_raw_edf, ".bdf": mne.io.read_raw_bdf,
            ".cnt": mne.io.read_raw_cnt}


@dataclass(frozen=True)
class RecordingFile:
    """One recording on disk and how its channels give the montage.

    Attributes
    ----------
    path : str
    sfreq : float
        The file's sampling rate (Hz).
    n_times : int
        Samples in the file.
    derivation : Derivation
        The file channels read and the matrix that gives the montage's channels.
    line_freq : float or None
        The file's mains frequency, when it records one.
    """

    path: str
    sfreq: float
    n_times: int
    derivation: Derivation
    line_freq: float | None = None

    @property
    def seconds(self) -> float:
        return self.n_times / self.sfreq

    def signature(self) -> dict:
        """What identifies the samples this recording gives: path, size and modification time
        of the file, rate, length and derivation (for cache keys)."""
        stat = os.stat(self.path)
        return {"path": self.path, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "sfreq": self.sfreq, "n_times": self.n_times, **self.derivation.key()}


def open_raw(path) -> mne.io.BaseRaw:
    """An MNE reader of ``path`` that loads nothing yet (``preload=False``).

    Repeated labels (CHB-MIT's second ``T8-P8``) are kept, renamed by MNE (``T8-P8-0``,
    ``T8-P8-1``).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        No reader could open it (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    reader = _READERS.get(path.suffix.lower(), mne.io.read_raw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MNE's notes on renamed duplicates, EDF headers
        try:
            return reader(path, preload=False, verbose="error")
        except Exception as err:
            raise ValueError(f"Could not read {path}: {type(err).__name__}: {err}.") from err


def describe_recording(path, montage: str) -> RecordingFile:
    """Read ``path``'s header and find ``montage``'s channels in it.

    Raises
    ------
    MontageError
        A channel of the montage is missing (the loaders skip the file with this reason).
    ValueError
        The file cannot be read.
    """
    raw = open_raw(path)
    derivation = resolve_montage(raw.ch_names, montage, source="the recording")
    return RecordingFile(str(path), float(raw.info["sfreq"]), int(raw.n_times), derivation,
                         raw.info.get("line_freq"))


@dataclass
class SkippedRecordings:
    """Files a loader could not use, and why (``results.json`` → ``data.provenance``)."""

    items: list[dict] = field(default_factory=list)

    def add(self, path, reason: str) -> None:
        self.items.append({"file": str(path), "reason": str(reason)})

    def __len__(self) -> int:
        return len(self.items)

    def warn(self, dataset: str) -> None:
        """One warning naming how many files were skipped and the first reasons."""
        if self.items:
            shown = "; ".join(f"{Path(i['file']).name}: {i['reason']}" for i in self.items[:3])
            more = f" (and {len(self.items) - 3} more)" if len(self.items) > 3 else ""
            warnings.warn(f"{dataset}: skipped {len(self.items)} recording(s): {shown}{more}. "
                          "results.json lists them under data.provenance.skipped_recordings.",
                          stacklevel=3)


def describe_recordings(paths, montage: str, skipped: SkippedRecordings) -> list[RecordingFile]:
    """:func:`describe_recording` of each path; unusable files go to ``skipped``."""
    found = []
    for path in paths:
        try:
            found.append(describe_recording(path, montage))
        except (MontageError, ValueError) as err:
            skipped.add(path, str(err))
    return found


class _Readers:
    """Open MNE readers (least recently used first) and the last resampled recording."""

    def __init__(self):
        self.raws: OrderedDict[str, mne.io.BaseRaw] = OrderedDict()
        self.resampled: tuple[int, np.ndarray] | None = None

    def raw(self, path: str) -> mne.io.BaseRaw:
        if path in self.raws:
            self.raws.move_to_end(path)
        else:
            self.raws[path] = open_raw(path)
            if len(self.raws) > OPEN_READERS:
                self.raws.popitem(last=False)
        return self.raws[path]


@dataclass(frozen=True, eq=False)
class RecordingWindows:
    """Windows of ``n_times`` samples at ``sfreq`` cut from recordings on disk.

    Only the window table is in memory; :meth:`read` reads the windows asked for.

    Attributes
    ----------
    recordings : tuple of RecordingFile
        Every recording the windows come from; all give the same montage.
    rec : ndarray of int, shape [n]
        Recording of each window (index into ``recordings``).
    onset : ndarray of float64, shape [n]
        Start of each window, seconds from the start of its recording.
    sfreq : float
        Rate of the windows (a recording at another rate is resampled when read).
    n_times : int
        Samples per window at ``sfreq``.
    lazy : bool
        Whether evaluation keeps the windows on disk (True) or reads them into memory once.
    """

    recordings: tuple[RecordingFile, ...]
    rec: np.ndarray
    onset: np.ndarray
    sfreq: float
    n_times: int
    lazy: bool = True
    _readers: _Readers = field(default_factory=_Readers, repr=False, compare=False)

    #: EDF/BDF/CNT hold integers: no window can hold NaN or Inf.
    finite = True

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.rec), len(self.recordings[0].derivation.names), self.n_times)

    @property
    def seconds(self) -> float:
        """Length of each window in seconds."""
        return self.n_times / self.sfreq

    def read(self, index) -> np.ndarray:
        """Windows ``index`` (ints, a boolean mask or a slice) as float32 ``[k, C, T]`` (SI)."""
        index = np.arange(len(self.rec))[index] if not isinstance(index, np.ndarray) or \
            index.dtype == bool else np.asarray(index, dtype=int)
        out = np.empty((len(index), *self.shape[1:]), dtype=np.float32)
        for r, positions in _by_recording(self.rec[index]):
            out[positions] = self._windows_of(r, self.onset[index[positions]])
        return out

    def _windows_of(self, r: int, onsets: np.ndarray) -> np.ndarray:
        """Windows starting at ``onsets`` (s) of recording ``r``: ``[k, C, n_times]`` (SI)."""
        rec = self.recordings[r]
        if not np.isclose(rec.sfreq, self.sfreq):
            data = self._resampled(r)
            starts = np.minimum(np.round(onsets * self.sfreq).astype(int),
                                data.shape[1] - self.n_times)
            return np.stack([data[:, s:s + self.n_times] for s in starts])
        starts = np.round(onsets * self.sfreq).astype(int)
        first, last = int(starts.min()), int(starts.max()) + self.n_times
        raw = self._readers.raw(rec.path)
        picks = [raw.ch_names.index(p) for p in rec.derivation.picks]
        if last - first <= 2 * len(starts) * self.n_times:  # dense: one read for all
            span = rec.derivation.apply(raw.get_data(picks=picks, start=first, stop=last))
            return np.stack([span[:, s - first:s - first + self.n_times] for s in starts])
        return np.stack([rec.derivation.apply(raw.get_data(picks=picks, start=s,
                                                           stop=s + self.n_times))
                         for s in starts])

    def _resampled(self, r: int) -> np.ndarray:
        cached = self._readers.resampled
        if cached is None or cached[0] != r:
            data = self.read_recording(r)
            data = filter_and_resample(data, self.recordings[r].sfreq, self.sfreq,
                                       np.ones(1))
            self._readers.resampled = cached = (r, data)
        return cached[1]

    def read_recording(self, r: int) -> np.ndarray:
        """The whole recording ``r`` with the montage applied: float64 ``[C, T]`` (SI units, the
        file's own rate)."""
        rec = self.recordings[r]
        raw = self._readers.raw(rec.path)
        picks = [raw.ch_names.index(p) for p in rec.derivation.picks]
        return rec.derivation.apply(raw.get_data(picks=picks))

    # ---- new window sets (the trial set's subset / crop) -------------------------------------

    def subset(self, index) -> RecordingWindows:
        """The windows at ``index`` (still on disk)."""
        index = np.asarray(index)
        return replace(self, rec=self.rec[index], onset=self.onset[index],
                       _readers=self._readers)

    def cropped(self, first: int, last: int) -> RecordingWindows:
        """Samples ``first:last`` of every window (still on disk)."""
        return replace(self, onset=self.onset + first / self.sfreq, n_times=last - first,
                       _readers=self._readers)

    def signature(self) -> str:
        """SHA-256 over the recordings' :meth:`RecordingFile.signature` and the window table
        (what the samples of these windows depend on), without reading any sample."""
        h = hashlib.sha256()
        used = np.unique(self.rec)
        h.update(json.dumps([self.recordings[r].signature() for r in used]).encode())
        h.update(np.searchsorted(used, self.rec).astype(np.int64).tobytes())
        h.update(np.ascontiguousarray(self.onset, dtype=np.float64).tobytes())
        h.update(json.dumps({"sfreq": self.sfreq, "n_times": self.n_times}).encode())
        return h.hexdigest()


def _by_recording(rec: np.ndarray):
    """``(recording, positions)`` for each recording in ``rec``, positions in order."""
    order = np.argsort(rec, kind="stable")
    bounds = np.flatnonzero(np.diff(rec[order])) + 1
    for positions in np.split(order, bounds):
        if positions.size:
            yield int(rec[positions[0]]), positions


def common_rate(recordings) -> float:
    """The most frequent sampling rate among ``recordings`` (the trial set's rate)."""
    return float(Counter(r.sfreq for r in recordings).most_common(1)[0][0])


def recording_windows(name: str, recordings: list[RecordingFile], rows: pd.DataFrame, *,
                      window_seconds: float, montage: str, class_names: list[str],
                      skipped: SkippedRecordings, provenance: dict, lazy: bool | None = None,
                      sfreq: float | None = None, dropped: pd.DataFrame | None = None,
                      layout: SensorLayout | None = None) -> TrialSet:
    """A :class:`TrialSet` whose signals are windows of ``recordings`` (left on disk).

    Parameters
    ----------
    name : str
        The spec the trial set comes from.
    recordings : list of RecordingFile
    rows : pandas.DataFrame
        One row per window: ``rec`` (index into ``recordings``), ``onset`` (s), ``label``
        (class index) and the metadata columns ``subject``, ``session``, ``run``, ``split``.
    window_seconds : float
    montage : str
        The montage every recording gives (the trial set's sensors).
    class_names : list of str
    skipped : SkippedRecordings
        Files left out; they go into ``provenance["skipped_recordings"]`` and a warning.
    provenance : dict
        How the trials were made (loader, options, sources of splits and labels).
    lazy : bool, optional
        Keep the signals on disk in evaluation; default: when the raw windows would take more
        than :data:`LAZY_BYTES`.
    sfreq : float, optional
        Rate of the windows (default: the most frequent rate of the recordings).
    dropped : pandas.DataFrame, optional
        Windows the loader left out (:data:`TRIAL_COLUMNS` and ``reason``).
    layout : SensorLayout, optional
        The sensors, when ``montage`` is not one of :data:`~neurofm.datasets.montages.MONTAGES`
        (channels kept as recorded).

    Raises
    ------
    ValueError
        No window at all (the message gives the first reasons files were skipped).
    """
    skipped.warn(name)
    if rows.empty:
        reasons = "; ".join(f"{Path(i['file']).name}: {i['reason']}" for i in skipped.items[:5])
        raise ValueError(f"{name}: no window to evaluate"
                         + (f"; recordings skipped: {reasons}" if reasons else "") + ".")
    sfreq = float(sfreq or common_rate([recordings[r] for r in np.unique(rows["rec"])]))
    n_times = round(window_seconds * sfreq)
    layout = montage_layout(montage) if layout is None else layout
    n_bytes = len(rows) * len(layout) * n_times * 4
    signals = RecordingWindows(tuple(recordings), rows["rec"].to_numpy(dtype=int),
                               rows["onset"].to_numpy(dtype=np.float64), sfreq, n_times,
                               lazy=n_bytes > LAZY_BYTES if lazy is None else bool(lazy))
    paths = np.array([r.path for r in recordings], dtype=object)
    provenance = {**provenance, "montage": montage, "window_seconds": window_seconds,
                  "n_recordings": int(np.unique(rows["rec"]).size), "lazy": signals.lazy,
                  "skipped_recordings": list(skipped.items)}
    return TrialSet(name=name, X=signals, y=rows["label"].to_numpy(dtype=np.int64),
                    subject=rows["subject"].to_numpy(), sfreq=sfreq, sensors=layout,
                    task="classification", class_names=class_names,
                    split=rows["split"].to_numpy() if "split" in rows else None,
                    session=rows["session"].to_numpy(), run=rows["run"].to_numpy(),
                    source=paths[rows["rec"].to_numpy(dtype=int)], onset=signals.onset,
                    provenance=provenance, dropped=dropped)


def dropped_rows(rows: pd.DataFrame, recordings: list[RecordingFile], class_names,
                 reason_column: str = "reason") -> pd.DataFrame:
    """Windows a loader leaves out as rows of :attr:`TrialSet.dropped` (with their reason)."""
    if rows.empty:
        return pd.DataFrame(columns=[*TRIAL_COLUMNS, "reason"])
    out = pd.DataFrame({
        "subject": rows["subject"].astype(str), "session": rows["session"].astype(str),
        "run": rows["run"].astype(str),
        "source": [recordings[r].path for r in rows["rec"]], "onset": rows["onset"],
        "label": [class_names[i] for i in rows["label"]],
        "split": rows.get("split", pd.Series([""] * len(rows))).astype(str),
        "reason": rows[reason_column]})
    return out.reset_index(drop=True)
