"""Cut recordings into windows of patches: ``x [W, C, N, P]``.

A window of ``window_seconds`` is ``N = window_seconds / patch_seconds`` patches of
``P = patch_seconds * sfreq`` samples (defaults: 30-s windows of 1-s patches at 200 Hz,
``N = 30``, ``P = 200``).

Epochs (MNE ``Epochs``, ``-epo.fif``) are windows already: each epoch becomes one window. An
epoch whose length is not a whole number of patches is handled by the ``rule``:

* ``"pad"`` (default): zeros are appended after the last sample, up to the next whole patch or
  up to ``n_patches`` patches when given (so that epochs of different lengths share one ``N``
  and can be batched). ``patch_valid`` is False for a patch that holds no real sample at all and
  True for every patch with at least one real sample (a partly padded last patch keeps its real
  samples and counts as valid);
* ``"crop"``: the incomplete last patch is cut off; every remaining patch is valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurofm.data.errors import RecordingError, RecordingTooShortError
from neurofm.data.preprocess import epochs_source, preprocess_epochs_data
from neurofm.data.recording import Recording
from neurofm.sensors import SensorLayout

EPOCH_RULES = ("pad", "crop")


@dataclass
class Windows:
    """Windows of one recording (or one epochs file), all with the same channels.

    Attributes
    ----------
    x : ndarray of float32, shape [W, C, N, P]
        Model units.
    start : ndarray of float64, shape [W]
        Start of each window in seconds from the start of the recording (epochs: the epoch's
        event time).
    patch_valid : ndarray of bool, shape [W, N]
        False for patches that are only padding.
    sensors : SensorLayout
        The C channels.
    sfreq : float
    source : str
    y : ndarray of int64, shape [W], or None
        Labels (epochs: the event codes).
    n_rejected : int
        Windows dropped by amplitude (``max_abs``) or because they touch NaN/Inf input.
    report : list of str
    """

    x: np.ndarray
    start: np.ndarray
    patch_valid: np.ndarray
    sensors: SensorLayout
    sfreq: float
    source: str
    y: np.ndarray | None = None
    n_rejected: int = 0
    report: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.x.shape[0]


def patch_samples(patch_seconds: float, sfreq: float) -> int:
    """Samples per patch; ``patch_seconds * sfreq`` must be a whole number."""
    p = patch_seconds * sfreq
    if p < 1 or not np.isclose(p, round(p)):
        raise ValueError(f"patch_seconds={patch_seconds} at {sfreq:g} Hz is {p:g} samples; "
                         "choose a patch length that is a whole number of samples.")
    return round(p)


def window_recording(rec: Recording, window_seconds: float = 30.0, patch_seconds: float = 1.0,
                     stride_seconds: float | None = None, max_abs: float | None = None
                     ) -> Windows:
    """Cut a preprocessed recording into windows of patches.

    Parameters
    ----------
    rec : Recording
        ``rec.data`` is ``[C, T]`` in model units.
    window_seconds : float
        Window length; a whole number of patches.
    patch_seconds : float
        Patch length; a whole number of samples.
    stride_seconds : float, optional
        Step between window starts (default: ``window_seconds``, no overlap). The samples after
        the last whole window are not used.
    max_abs : float, optional
        Drop windows with any ``|x| > max_abs`` (model units; e.g. 10 = 1 mV for EEG).

    Returns
    -------
    Windows
        ``x [W, C, N, P]``.

    Raises
    ------
    RecordingTooShortError
        The recording is shorter than one window (list-of-files jobs skip it with this reason).
    """
    p = patch_samples(patch_seconds, rec.sfreq)
    n_patches = window_seconds / patch_seconds
    if n_patches < 1 or not np.isclose(n_patches, round(n_patches)):
        raise ValueError(f"window_seconds={window_seconds} is not a whole number of "
                         f"patch_seconds={patch_seconds} patches.")
    n = round(n_patches)
    w = n * p
    step = w if stride_seconds is None else round(stride_seconds * rec.sfreq)
    if step < 1:
        raise ValueError(f"stride_seconds={stride_seconds} is shorter than one sample.")
    if rec.n_times < w:
        raise RecordingTooShortError(
            f"{rec.source} lasts {rec.duration:.1f} s, shorter than one {window_seconds:g}-s "
            "window. Use shorter windows (window_seconds) or leave the file out.",
            source=rec.source)
    starts = np.arange(0, rec.n_times - w + 1, step)
    keep = np.ones(len(starts), dtype=bool)
    report = []
    if rec.bad_samples is not None:
        touched = np.array([rec.bad_samples[s:s + w].any() for s in starts], dtype=bool)
        keep &= ~touched
        if touched.any():
            report.append(f"dropped {int(touched.sum())} window(s) touching NaN/Inf samples")
    x = np.stack([rec.data[:, s:s + w] for s in starts[keep]]) if keep.any() else \
        np.zeros((0, rec.n_channels, w), np.float32)
    kept_starts = starts[keep]
    if max_abs is not None and len(x):
        loud = np.abs(x).max(axis=(1, 2)) > max_abs
        if loud.any():
            report.append(f"dropped {int(loud.sum())} window(s) with |x| > {max_abs:g}")
        x, kept_starts = x[~loud], kept_starts[~loud]
    n_rejected = len(starts) - len(x)
    return Windows(
        x=x.reshape(len(x), rec.n_channels, n, p).astype(np.float32, copy=False),
        start=kept_starts / rec.sfreq,
        patch_valid=np.ones((len(x), n), dtype=bool),
        sensors=rec.sensors,
        sfreq=rec.sfreq,
        source=rec.source,
        n_rejected=int(n_rejected),
        report=report,
    )


def epochs_to_patches(data: np.ndarray, patch_samples: int, rule: str = "pad",
                      n_patches: int | None = None):
    """Cut epochs into patches.

    Parameters
    ----------
    data : ndarray, shape [E, C, T]
    patch_samples : int
        P, samples per patch.
    rule : {"pad", "crop"}
        What to do when ``T`` is not a multiple of ``P`` (see the module docstring).
    n_patches : int, optional
        With ``rule="pad"``: pad every epoch to this many patches (at least ``ceil(T / P)``).

    Returns
    -------
    x : ndarray of float32, shape [E, C, N, P]
    patch_valid : ndarray of bool, shape [E, N]
        True for patches with at least one real sample.
    """
    if rule not in EPOCH_RULES:
        raise ValueError(f"rule must be one of {EPOCH_RULES}, got {rule!r}.")
    e, c, t = data.shape
    p = int(patch_samples)
    if n_patches is not None and rule != "pad":
        raise ValueError("n_patches applies to rule='pad' only.")
    if rule == "crop":
        n = t // p
        if n == 0:
            raise ValueError(f"Epochs of {t} samples are shorter than one patch of {p} samples; "
                             "use rule='pad' or shorter patches.")
        x = data[..., :n * p]
        valid = np.ones((e, n), dtype=bool)
    else:
        n = -(-t // p)
        if n_patches is not None:
            if n_patches < n:
                raise ValueError(f"Epochs of {t} samples need {n} patches of {p} samples, more "
                                 f"than n_patches={n_patches}; raise n_patches or crop the "
                                 "epochs (epochs.crop).")
            n = int(n_patches)
        x = np.zeros((e, c, n * p), dtype=np.float32)
        x[..., :t] = data
        valid = np.broadcast_to(np.arange(n) * p < t, (e, n)).copy()
    return x.reshape(e, c, n, p).astype(np.float32, copy=False), valid


def epochs_to_windows(epochs, config=None, *, patch_seconds: float = 1.0, rule: str = "pad",
                      n_patches: int | None = None, max_abs: float | None = None,
                      source: str | None = None) -> Windows:
    """Preprocess MNE ``Epochs`` and make each epoch one window.

    Parameters
    ----------
    epochs : mne.Epochs
    config : PreprocessConfig, optional
    patch_seconds : float
    rule : {"pad", "crop"}
        For epochs that are not a whole number of patches.
    n_patches : int, optional
        With ``rule="pad"``, pad every epoch to this many patches.
    max_abs : float, optional
        Drop epochs with any ``|x| > max_abs`` (model units).
    source : str, optional

    Returns
    -------
    Windows
        ``x [E, C, N, P]``, ``y`` the event codes, ``start`` the event times in seconds.
    """
    source = source or epochs_source(epochs)
    data, sfreq, layout, keep, report = preprocess_epochs_data(epochs, config, source=source)
    if len(keep) == 0:
        raise RecordingError(f"{source}: no epoch left after preprocessing ({'; '.join(report)}).",
                             source=source)
    x, valid = epochs_to_patches(data, patch_samples(patch_seconds, sfreq), rule, n_patches)
    y = np.asarray(epochs.events[keep, 2], dtype=np.int64)
    start = np.asarray(epochs.events[keep, 0], dtype=np.float64) / epochs.info["sfreq"]
    n_rejected = 0
    if max_abs is not None:
        ok = np.abs(x).max(axis=(1, 2, 3)) <= max_abs
        n_rejected = int((~ok).sum())
        if n_rejected:
            report.append(f"dropped {n_rejected} epoch(s) with |x| > {max_abs:g}")
        x, valid, y, start = x[ok], valid[ok], y[ok], start[ok]
    if data.shape[-1] % patch_samples(patch_seconds, sfreq):
        report.append(f"epochs of {data.shape[-1]} samples are not a whole number of "
                      f"{patch_seconds:g}-s patches: rule '{rule}' applied")
    return Windows(x=x, start=start, patch_valid=valid, sensors=layout, sfreq=sfreq,
                   source=source, y=y, n_rejected=n_rejected + len(epochs) - len(keep),
                   report=report)
