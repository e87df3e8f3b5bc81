"""Labelled trials -> model inputs: the preprocessing a model saw in pretraining, applied to epochs.

A :class:`~neurofm.datasets.trials.TrialSet` holds ``X [n, C, T]`` in SI units at the data set's
sampling rate. Models read patched windows in model units (DESIGN.md "Signals"). This module picks
the brain channels, band-limits, resamples, rescales per channel kind and cuts patches with the
data layer's pad rule, and lists every step it took (or skipped, and why) in
:attr:`ModelInputs.applied`, which goes into ``results.json``.

Filters are the data layer's (MNE FIR band-pass, notch, FFT resampling), with two rules for short,
low-rate trials: a trial shorter than the high-pass filter is demeaned per channel instead (a
0.3-Hz high-pass on a 0.5-s trial would be all edge transient), and a low-pass at or above the
data's Nyquist frequency is skipped and reported (the data layer refuses such files for
pretraining; for evaluation the band above Nyquist is simply empty).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mne
import numpy as np

from neurofm.sensors import BRAIN_KINDS, ChannelKind, SensorLayout

#: Preprocessing used when a model records none (DESIGN.md defaults).
DEFAULT_PREPROCESSING = {"sfreq": 200.0, "l_freq": 0.3, "h_freq": 75.0, "notch": None,
                         "patch_size": 200}


@dataclass
class ModelInputs:
    """Patched, preprocessed trials.

    Attributes
    ----------
    x : ndarray of float32, shape [n, C, N, P]
        Trials in model units, cut into ``N`` patches of ``P`` samples.
    patch_valid : ndarray of bool, shape [n, N]
        False for patches that are entirely padding (pad rule).
    sensors : SensorLayout
        The ``C`` brain channels kept, in order.
    sfreq : float
        Sampling rate of ``x``.
    preprocessing : dict
        The settings in force (sfreq, l_freq, h_freq, notch, scales, patch_size).
    n_times : int
        Samples per trial at ``sfreq`` before padding to whole patches.
    applied : list of str
        Every step taken or skipped, in order, in words.
    """

    x: np.ndarray
    patch_valid: np.ndarray
    sensors: SensorLayout
    sfreq: float
    preprocessing: dict
    n_times: int
    applied: list[str] = field(default_factory=list)

    def continuous(self) -> np.ndarray:
        """Unpatched trials ``[n, C, T]`` (padding removed), for networks that read raw time."""
        n, c = self.x.shape[:2]
        return self.x.reshape(n, c, -1)[..., :self.n_times]


def resolve_preprocessing(model_preprocessing: dict | None, overrides: dict | None = None) -> dict:
    """Model's recorded preprocessing (or :data:`DEFAULT_PREPROCESSING`) with non-None overrides."""
    merged = dict(DEFAULT_PREPROCESSING)
    merged.update({k: v for k, v in (model_preprocessing or {}).items() if v is not None})
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if "patch_samples" in merged:  # the data layer's name for the same thing
        merged["patch_size"] = merged.pop("patch_samples")
    return merged


def prepare_trials(X: np.ndarray, sfreq: float, sensors: SensorLayout, preprocessing: dict
                   ) -> ModelInputs:
    """Apply ``preprocessing`` to trials and cut them into patches.

    Parameters
    ----------
    X : ndarray, shape [n, C, T]
        Trials in SI units (volts, tesla) at ``sfreq``.
    sfreq : float
        Sampling rate of ``X`` in Hz.
    sensors : SensorLayout
        The ``C`` channels of ``X``.
    preprocessing : dict
        ``sfreq`` (target), ``l_freq``, ``h_freq``, ``notch`` (Hz, or None/"auto"; "auto"
        needs ``line_freq``), ``scales`` (kind label -> multiplier; defaults to
        :data:`neurofm.data.preprocess.DEFAULT_SCALES`), ``patch_size`` (samples).

    Returns
    -------
    ModelInputs
    """
    from neurofm.data.windows import epochs_to_patches

    X = np.asarray(X)
    if X.ndim != 3 or X.shape[1] != len(sensors):
        raise ValueError(f"Trials have shape {X.shape}; expected [n, {len(sensors)} channels, T].")
    if not np.all(np.isfinite(X)):
        bad = np.unique(np.argwhere(~np.isfinite(X))[:, 0])
        raise ValueError(f"{bad.size} trial(s) contain NaN/Inf (first: {bad[:5].tolist()}); "
                         "drop or repair them before evaluation.")
    applied: list[str] = []
    brain = np.array([ChannelKind(int(k)) in BRAIN_KINDS for k in sensors.kinds])
    if not brain.any():
        raise ValueError("No brain channels (EEG/MEG/sEEG/ECoG) among the trial channels "
                         f"{sensors.names[:8]}; check the data set's channel types.")
    if not brain.all():
        dropped = [n for n, b in zip(sensors.names, brain) if not b]
        applied.append(f"dropped {len(dropped)} non-brain channel(s): {', '.join(dropped)}")
    layout = sensors.subset(brain)
    data = X[:, brain].astype(np.float64)

    data = _band_limit(data, float(sfreq), preprocessing, applied)
    target = float(preprocessing["sfreq"])
    data = _resample(data, float(sfreq), target, applied)

    scales = preprocessing.get("scales")
    if scales is None:
        from neurofm.data.preprocess import DEFAULT_SCALES
        scales = DEFAULT_SCALES
    labels = layout.kind_labels()
    missing = sorted({lab for lab in labels if lab not in scales})
    if missing:
        raise ValueError(f"No scale for channel kind(s) {missing}; add them to the "
                         "preprocessing 'scales' (multiplier from SI to model units).")
    factors = np.array([float(scales[lab]) for lab in labels])
    data *= factors[None, :, None]
    applied.append("scaled to model units: " + ", ".join(
        f"{lab} x{float(scales[lab]):g}" for lab in sorted(set(labels))))

    patch = int(preprocessing["patch_size"])
    x, patch_valid = epochs_to_patches(data.astype(np.float32), patch, rule="pad")
    if data.shape[-1] % patch:
        applied.append(f"padded {data.shape[-1]} samples to {x.shape[2] * patch} "
                       f"({x.shape[2]} patch(es) of {patch}); padded patches flagged in "
                       "patch_valid")
    resolved = dict(preprocessing, scales={k: float(v) for k, v in scales.items()})
    return ModelInputs(np.ascontiguousarray(x, np.float32), np.asarray(patch_valid, bool),
                       layout, target, resolved, int(data.shape[-1]), applied)


def _band_limit(data: np.ndarray, sfreq: float, pp: dict, applied: list[str]) -> np.ndarray:
    """Band-pass (or demean + low-pass) and notch at the data's own rate; ``data [n, C, T]``.

    The same MNE FIR filters as :func:`neurofm.data.preprocess.preprocess_raw`. The high-pass is
    applied only when a trial is at least as long as its filter; shorter trials are demeaned.
    A low-pass at or above the data's Nyquist frequency is skipped (the band is already empty).
    """
    nyq = sfreq / 2
    duration = data.shape[-1] / sfreq
    l_freq, h_freq = pp.get("l_freq"), pp.get("h_freq")
    if h_freq and h_freq >= nyq:
        applied.append(f"low-pass {h_freq:g} Hz skipped: at or above the data's Nyquist "
                       f"frequency {nyq:g} Hz")
        h_freq = None
    if l_freq:
        taps = mne.filter.create_filter(None, sfreq, l_freq, h_freq, verbose="error")
        if len(taps) / sfreq > duration:
            applied.append(f"high-pass {l_freq:g} Hz skipped: trials ({duration:g} s) are "
                           f"shorter than its filter ({len(taps) / sfreq:.1f} s); demeaned "
                           "each trial and channel instead")
            data = data - data.mean(axis=-1, keepdims=True)
            l_freq = None
    if l_freq or h_freq:
        data = mne.filter.filter_data(data, sfreq, l_freq, h_freq, verbose="error")
        band = (f"{l_freq:g}-{h_freq:g} Hz band-pass" if l_freq and h_freq else
                f"{l_freq:g} Hz high-pass" if l_freq else f"{h_freq:g} Hz low-pass")
        applied.append(f"{band} (MNE FIR, zero-phase)")
    notch = pp.get("notch")
    if notch == "auto":
        notch = pp.get("line_freq")
        if notch is None:
            applied.append("notch skipped: line frequency unknown (set notch to 50 or 60)")
    if notch:
        top = min(nyq, (h_freq or nyq) * 1.25)
        freqs = np.arange(float(notch), top, float(notch))
        freqs = freqs[freqs < nyq - 1]
        if freqs.size:
            data = mne.filter.notch_filter(data, sfreq, freqs, verbose="error")
            applied.append(f"notch at {', '.join(f'{f:g}' for f in freqs)} Hz")
        else:
            applied.append(f"notch {float(notch):g} Hz skipped: above the band")
    return data


def _resample(data: np.ndarray, sfreq: float, target: float, applied: list[str]) -> np.ndarray:
    if math.isclose(sfreq, target):
        return data
    out = mne.filter.resample(data, up=target, down=sfreq, verbose="error")
    applied.append(f"resampled {sfreq:g} -> {target:g} Hz (MNE FFT resampling); "
                   f"{data.shape[-1]} -> {out.shape[-1]} samples")
    return out
