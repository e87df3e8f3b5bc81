"""Model inputs of windows cut from recordings: each recording preprocessed whole, then cut.

Trial sets of recording windows (:class:`~neurofm.datasets.recordings.RecordingWindows`: the
clinical loaders) are not preprocessed trial by trial. Each recording is preprocessed as one
continuous signal — scaled to model units, band-passed, notched and resampled by the filter plan
of :mod:`neurofm.data.band` (:func:`~neurofm.data.band.plan_filter`, as ``neurofm prepare``
does for a pretraining recording) — and the windows are cut from the result. So a window equals
the same stretch of the recording prepared for pretraining, edges included, and windows that
overlap share their samples. (Trials of other trial sets are filtered one by one:
:func:`neurofm.eval.inputs.prepare_trials`.)

A window starting at ``onset`` seconds begins at output sample ``round(onset * sfreq_out)``
(a start that falls between output samples is rounded to the nearest; CHB-MIT's seizure windows
start at 256-Hz sample times) and has ``round(seconds * sfreq_out)`` samples, cut into patches by
the pad rule.

:class:`RecordingInputs` is ``ModelInputs.x`` for such windows: an array-like ``[n, C, N, P]``
that preprocesses a recording when one of its windows is read and keeps the last few
preprocessed recordings (:data:`CACHE_BYTES`); memory does not grow with the number of
windows. Windows of the same recording are read together (the trial order of the loaders), and
:meth:`RecordingInputs.shuffled` shuffles for training in blocks of recordings so that each
recording is preprocessed about once per epoch. When the trial set is not ``lazy`` the windows
are read into memory once (:func:`recording_inputs`).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from neurofm.data.band import FilterPlan, plan_filter
from neurofm.data.spec import SCALE_UNITS, PreprocessSpec
from neurofm.data.windows import epochs_to_patches
from neurofm.datasets.recordings import RecordingWindows
from neurofm.datasets.trials import TrialSet
from neurofm.eval.inputs import ModelInputs
from neurofm.sensors import ChannelKind

#: Preprocessed recordings kept in memory (bytes; at least :data:`SHUFFLE_BLOCK` recordings).
CACHE_BYTES = 64 * 2**20
#: Recordings whose windows are shuffled together in training (:meth:`RecordingInputs.shuffled`).
SHUFFLE_BLOCK = 4
#: Windows read per block when a lazy set is read into memory or scanned.
READ_BATCH = 256


def _malloc_trim():
    """glibc's ``malloc_trim`` (None elsewhere)."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Give memory freed since the last call back to the operating system (glibc only).

    Preprocessing a recording allocates and frees arrays of tens of MB. glibc serves such sizes
    from its heap once one of them has been freed (its mmap threshold adapts upwards), and the
    heap then grows with every recording instead of staying at one recording's worth: measured,
    the peak RSS of probing 20,000 windows was 1.8 GB above that of 2,000. ``malloc_trim(0)``
    after each recording and batch returns the free pages and keeps the peak flat (it takes
    microseconds).
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def preprocess_recording(data: np.ndarray, sfreq: float, scales: np.ndarray,
                         spec: PreprocessSpec, *, line_freq: float | None = None,
                         prefilter: Callable | None = None, source: str = "<recording>"
                         ) -> tuple[np.ndarray, FilterPlan]:
    """One continuous recording in model units at ``spec.sfreq``, as ``neurofm prepare`` makes it.

    Parameters
    ----------
    data : ndarray, shape [C, T]
        SI units at ``sfreq``.
    scales : ndarray, shape [C]
        Multiplier to model units per channel.
    spec : PreprocessSpec
        Band, notch and rate (a band of None edges: no band-pass here).
    line_freq : float, optional
        The recording's mains frequency (``spec.line_freq == "auto"``).
    prefilter : callable, optional
        ``prefilter(data [C, T], sfreq) -> [C, T]`` applied first (a paper's IIR band-pass).

    Returns
    -------
    data : ndarray of float32, shape [C, T']
    plan : FilterPlan
    """
    if prefilter is not None:
        data = prefilter(data, sfreq)
    plan = plan_filter(sfreq, spec, line_freq=line_freq, source=source)
    scaled = np.multiply(data, np.asarray(scales)[:, None],
                         out=np.empty(data.shape, dtype=np.float32), casting="same_kind")
    return plan.apply(scaled), plan


class RecordingInputs:
    """Preprocessed, patched windows of recordings: an array-like ``[n, C, N, P]`` float32.

    ``x[i:j]``, ``x[index]`` (ints, sorted or not) and ``x[mask]`` read the windows asked for
    (preprocessing their recordings); ``x.subset(index)`` is a view that reads nothing yet.

    Parameters
    ----------
    windows : RecordingWindows
    spec : PreprocessSpec
        What to apply (its band may be open when a prefilter applies the band).
    scales : ndarray, shape [C]
    prefilter : callable, optional
        See :func:`preprocess_recording`.
    key : dict
        What, besides the windows and ``spec``, decides the samples (the prefilter), for
        :meth:`fingerprint`.
    """

    def __init__(self, windows: RecordingWindows, spec: PreprocessSpec, scales: np.ndarray, *,
                 prefilter: Callable | None = None, key: dict | None = None,
                 rows: np.ndarray | None = None, cache=None):
        self.windows, self.spec, self.scales = windows, spec, np.asarray(scales, float)
        self.prefilter, self.key = prefilter, dict(key or {})
        self.rows = np.arange(len(windows.rec)) if rows is None else np.asarray(rows, int)
        self.sfreq_out = float(spec.sfreq or windows.sfreq)
        self.n_out = round(windows.n_times * self.sfreq_out / windows.sfreq)
        self.patch = spec.patch_samples
        self.n_patches = -(-self.n_out // self.patch)
        self._cache = OrderedDict() if cache is None else cache

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.rows), self.windows.shape[1], self.n_patches, self.patch)

    def __len__(self) -> int:
        return len(self.rows)

    def patch_valid(self) -> np.ndarray:
        """``[n, N]`` bool: the pad rule's valid patches (the same for every window)."""
        valid = np.arange(self.n_patches) * self.patch < self.n_out
        return np.broadcast_to(valid, (len(self.rows), self.n_patches)).copy()

    def __getitem__(self, index) -> np.ndarray:
        release_freed_memory()  # what the last batch (and its model pass) freed
        rows = np.atleast_1d(self.rows[index])
        out = np.empty((len(rows), self.shape[1], self.n_out), dtype=np.float32)
        recs = self.windows.rec[rows]
        order = np.argsort(recs, kind="stable")
        bounds = np.flatnonzero(np.diff(recs[order])) + 1
        for positions in np.split(order, bounds):
            if not positions.size:
                continue
            data = self._recording(int(recs[positions[0]]))
            starts = np.round(self.windows.onset[rows[positions]] * self.sfreq_out).astype(int)
            starts = np.clip(starts, 0, data.shape[1] - self.n_out)
            for position, start in zip(positions, starts):
                out[position] = data[:, start:start + self.n_out]
        x, _ = epochs_to_patches(out, self.patch, rule="pad")
        return x[0] if np.ndim(index) == 0 and not isinstance(index, slice) else x

    def _recording(self, r: int) -> np.ndarray:
        if r in self._cache:
            self._cache.move_to_end(r)
            return self._cache[r]
        rec = self.windows.recordings[r]
        data, _ = preprocess_recording(self.windows.read_recording(r), rec.sfreq, self.scales,
                                       self.spec, line_freq=rec.line_freq,
                                       prefilter=self.prefilter, source=rec.path)
        self._cache[r] = data
        while len(self._cache) > SHUFFLE_BLOCK and \
                sum(d.nbytes for d in self._cache.values()) > CACHE_BYTES:
            self._cache.popitem(last=False)
        release_freed_memory()
        return data

    def subset(self, index) -> RecordingInputs:
        """The windows at ``index`` (a view: nothing is read)."""
        return RecordingInputs(self.windows, self.spec, self.scales, prefilter=self.prefilter,
                               key=self.key, rows=self.rows[index], cache=self._cache)

    def continuous(self, n_times: int) -> ContinuousWindows:
        """The windows without patching, ``[n, C, n_times]`` (padding removed)."""
        return ContinuousWindows(self, n_times)

    def shuffled(self, index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``index`` in a random order that keeps each recording's windows near each other.

        The recordings are shuffled, taken :data:`SHUFFLE_BLOCK` at a time, and the windows of
        each block shuffled together: a batch mixes windows of a few recordings, and the cache
        preprocesses each recording about once per pass.
        """
        index = np.asarray(index)
        recs = self.windows.rec[self.rows[index]]
        groups = [index[recs == r] for r in rng.permutation(np.unique(recs))]
        blocks = [np.concatenate(groups[i:i + SHUFFLE_BLOCK])
                  for i in range(0, len(groups), SHUFFLE_BLOCK)]
        return np.concatenate([rng.permutation(b) for b in blocks]) if blocks else index

    def fingerprint(self) -> str:
        """SHA-256 of what decides these inputs without reading a sample: the recordings' files
        (path, size, modification time), montage, the window table and the preprocessing."""
        h = hashlib.sha256(self.windows.subset(self.rows).signature().encode())
        h.update(json.dumps({"spec": self.spec.to_dict(), "scales": self.scales.tolist(),
                             "prefilter": self.key, "cut": "per recording, pad rule"},
                            sort_keys=True, default=str).encode())
        return h.hexdigest()

    def read_all(self) -> np.ndarray:
        """Every window in memory, ``[n, C, N, P]`` (read :data:`READ_BATCH` at a time)."""
        out = np.empty(self.shape, dtype=np.float32)
        for start in range(0, len(self), READ_BATCH):
            out[start:start + READ_BATCH] = self[start:start + READ_BATCH]
        return out


class ContinuousWindows:
    """:class:`RecordingInputs` without patching: array-like ``[n, C, n_times]``."""

    def __init__(self, inputs: RecordingInputs, n_times: int):
        self.inputs, self.n_times = inputs, n_times

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.inputs), self.inputs.shape[1], self.n_times)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index) -> np.ndarray:
        x = self.inputs[index]
        return x.reshape(*x.shape[:-2], -1)[..., :self.n_times]

    def subset(self, index) -> ContinuousWindows:
        return ContinuousWindows(self.inputs.subset(index), self.n_times)

    def shuffled(self, index, rng) -> np.ndarray:
        return self.inputs.shuffled(index, rng)


def recording_inputs(trials: TrialSet, spec: PreprocessSpec, *, prefilter: Callable | None = None,
                     prefilter_key: dict | None = None) -> ModelInputs:
    """Model inputs of a trial set of recording windows, preprocessed per recording.

    Lazy trial sets (``trials.lazy``) keep a :class:`RecordingInputs` as ``x``; others are read
    into memory through it, so both give the same numbers.

    Raises
    ------
    ValueError
        A channel of a kind the spec does not keep (the clinical montages are all EEG).
    """
    windows = trials.signals
    if not isinstance(windows, RecordingWindows):
        raise TypeError("recording_inputs needs a trial set of RecordingWindows.")
    labels = trials.sensors.kind_labels()
    wanted = {ChannelKind.from_label(k).label for k in spec.kinds}
    if not set(labels) <= wanted:
        raise ValueError(f"{trials.name}: channels of kinds {sorted(set(labels) - wanted)} are "
                         f"not kept by the preprocessing (kinds {list(spec.kinds)}).")
    scales = np.array([spec.scales[label] for label in labels])
    lazy = RecordingInputs(windows, spec, scales, prefilter=prefilter, key=prefilter_key)
    rec0 = windows.recordings[int(windows.rec[0])]
    plan = plan_filter(rec0.sfreq, spec, line_freq=rec0.line_freq, source=trials.name)
    rates = sorted({windows.recordings[r].sfreq for r in np.unique(windows.rec)})
    applied = [(f"preprocessed per recording (continuous, then cut into windows of "
                f"{windows.seconds:g} s): the filter and resampler of neurofm prepare")]
    applied += plan.describe()
    if len(rates) > 1:
        applied.append(f"recordings at {', '.join(f'{r:g}' for r in rates)} Hz: each resampled "
                       f"from its own rate to {lazy.sfreq_out:g} Hz")
    applied += [f"scale {label}: x {spec.scales[label]:g} ({SCALE_UNITS.get(label, 'custom')})"
                for label in dict.fromkeys(labels)]
    if lazy.n_out % lazy.patch:
        applied.append(f"padded {lazy.n_out} samples to {lazy.n_patches * lazy.patch} "
                       f"({lazy.n_patches} patch(es) of {lazy.patch}); padded patches flagged "
                       "in patch_valid")
    if trials.lazy:
        applied.append(f"signals left on disk: {len(lazy)} windows read per batch "
                       f"(recordings preprocessed when read, up to "
                       f"{CACHE_BYTES // 2**20} MB of them kept)")
    x = lazy if trials.lazy else lazy.read_all()
    return ModelInputs(x, lazy.patch_valid(), trials.sensors, lazy.sfreq_out, spec, lazy.n_out,
                       applied)
