"""Labelled trials -> model inputs: the preprocessing a model saw in pretraining, applied to trials.

A :class:`~neurofm.datasets.trials.TrialSet` holds ``X [n, C, T]`` in SI units at the data set's
sampling rate. Models read patched windows in model units (DESIGN.md "Signals"). This module
keeps the channels of the kinds the model's :class:`~neurofm.data.spec.PreprocessSpec` names,
preprocesses them with :func:`neurofm.data.preprocess_trials` - the scaling, FIR kernel,
resampler and edge handling ``neurofm prepare`` applies to a pretraining recording, so a model
is probed on the signal it was pretrained on - and cuts patches with the data layer's pad rule.
Every step taken (or changed, and why) is listed in :attr:`ModelInputs.applied`, which goes into
``results.json``.

The data layer's rules hold here too (``docs/data.md``): a trial shorter than the band-pass
filter is demeaned per channel instead of high-passed, and a low-pass above the data's Nyquist
frequency becomes the data's Nyquist frequency, with a
:class:`~neurofm.data.band.BandLimitWarning`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from neurofm.data.preprocess import preprocess_trials
from neurofm.data.spec import SCALE_UNITS, PreprocessSpec, as_spec, notch_to_line_freq
from neurofm.data.windows import epochs_to_patches
from neurofm.sensors import ChannelKind, SensorLayout
from neurofm.strict import check_keys, field_names


@dataclass
class ModelInputs:
    """Patched, preprocessed trials.

    Attributes
    ----------
    x : ndarray of float32, shape [n, C, N, P], or RecordingInputs
        Trials in model units, cut into ``N`` patches of ``P`` samples; for a lazy trial set of
        recording windows an array-like that reads them on demand
        (:class:`neurofm.eval.window_inputs.RecordingInputs`).
    patch_valid : ndarray of bool, shape [n, N]
        False for patches that are entirely padding (pad rule).
    sensors : SensorLayout
        The ``C`` channels kept, in order.
    sfreq : float
        Sampling rate of ``x``.
    preprocessing : PreprocessSpec
        The preprocessing applied.
    n_times : int
        Samples per trial at ``sfreq`` before padding to whole patches.
    applied : list of str
        Every step taken or changed, in order, in words.
    """

    x: np.ndarray
    patch_valid: np.ndarray
    sensors: SensorLayout
    sfreq: float
    preprocessing: PreprocessSpec
    n_times: int
    applied: list[str] = field(default_factory=list)

    def continuous(self) -> np.ndarray:
        """Unpatched trials ``[n, C, T]`` (padding removed), for networks that read raw time
        (an array-like reading windows on demand when ``x`` is one)."""
        if hasattr(self.x, "continuous"):  # windows left on disk (neurofm.eval.window_inputs)
            return self.x.continuous(self.n_times)
        n, c = self.x.shape[:2]
        return self.x.reshape(n, c, -1)[..., :self.n_times]


def resolve_preprocessing(model_preprocessing, overrides: dict | None = None) -> PreprocessSpec:
    """The model's preprocessing with the non-None ``overrides`` (task config, CLI flags).

    Parameters
    ----------
    model_preprocessing : PreprocessSpec, dict or None
        ``model.preprocessing`` (None: :class:`PreprocessSpec` defaults: 200 Hz, 1-s patches,
        0.3-75 Hz, no notch, EEG x 1e4).
    overrides : dict, optional
        Spec fields (``sfreq``, ``l_freq``, ``h_freq``, ``line_freq``, ``scales``, ...). None
        values leave the model's value. 0.1.0's ``patch_size`` is read as ``patch_samples``,
        and ``notch`` as ``line_freq`` with a ``FutureWarning``.

    Returns
    -------
    PreprocessSpec
    """
    spec = as_spec(model_preprocessing, where="the model's preprocessing")
    changes = {k: v for k, v in (overrides or {}).items() if v is not None}
    if "patch_size" in changes:
        changes["patch_samples"] = changes.pop("patch_size")
    if "notch" in changes:
        warnings.warn("The preprocessing setting 'notch' is deprecated; use 'line_freq' (a "
                      "frequency, 'auto' or null) in task configs and --line-freq on the "
                      "command line.", FutureWarning, stacklevel=2)
        changes["line_freq"] = notch_to_line_freq(changes.pop("notch"), changes.get("line_freq"))
    check_keys(changes, field_names(PreprocessSpec), where="preprocessing overrides")
    return replace(spec, **changes)


def prepare_trials(X: np.ndarray, sfreq: float, sensors: SensorLayout,
                   preprocessing: PreprocessSpec | dict, *, line_freq: float | None = None,
                   source: str = "the trials") -> ModelInputs:
    """Apply ``preprocessing`` to trials and cut them into patches.

    Parameters
    ----------
    X : ndarray, shape [n, C, T]
        Trials in SI units (volts, tesla) at ``sfreq``.
    sfreq : float
        Sampling rate of ``X`` in Hz.
    sensors : SensorLayout
        The ``C`` channels of ``X``.
    preprocessing : PreprocessSpec or dict
        Usually :func:`resolve_preprocessing`'s result.
    line_freq : float, optional
        Mains frequency of the recordings, for ``line_freq="auto"`` in the spec.
    source : str
        The data set, named in messages.

    Returns
    -------
    ModelInputs

    Raises
    ------
    ValueError
        Wrong shape, NaN/Inf samples, or no channel of the spec's kinds.
    """
    spec = as_spec(preprocessing)
    X = np.asarray(X)
    if X.ndim != 3 or X.shape[1] != len(sensors):
        raise ValueError(f"Trials have shape {X.shape}; expected [n, {len(sensors)} channels, T].")
    if not np.all(np.isfinite(X)):
        bad = np.unique(np.argwhere(~np.isfinite(X))[:, 0])
        raise ValueError(f"{bad.size} trial(s) contain NaN/Inf (first: {bad[:5].tolist()}); "
                         "drop or repair them before evaluation.")
    applied: list[str] = []
    wanted = {ChannelKind.from_label(k) for k in spec.kinds}
    keep = np.array([ChannelKind(int(k)) in wanted for k in sensors.kinds])
    if not keep.any():
        raise ValueError(f"No channel of the kinds {list(spec.kinds)} (the model's "
                         f"preprocessing) among the trial channels {sensors.names[:8]}; check "
                         "the data set's channel types.")
    if not keep.all():
        dropped = [n for n, k in zip(sensors.names, keep) if not k]
        applied.append(f"dropped {len(dropped)} channel(s) of kinds not kept: "
                       f"{', '.join(dropped)}")
    layout = sensors.subset(keep)
    labels = layout.kind_labels()
    scales = np.array([spec.scales[label] for label in labels])
    data, plan = preprocess_trials(X[:, keep], float(sfreq), scales, spec, line_freq=line_freq,
                                   source=source)
    applied.extend(plan.describe())
    applied.extend(f"scale {label}: x {spec.scales[label]:g} ({SCALE_UNITS.get(label, 'custom')})"
                   for label in dict.fromkeys(labels))

    patch = spec.patch_samples
    x, patch_valid = epochs_to_patches(data, patch, rule="pad")
    if data.shape[-1] % patch:
        applied.append(f"padded {data.shape[-1]} samples to {x.shape[2] * patch} "
                       f"({x.shape[2]} patch(es) of {patch}); padded patches flagged in "
                       "patch_valid")
    return ModelInputs(np.ascontiguousarray(x, np.float32), np.asarray(patch_valid, bool),
                       layout, plan.sfreq_out, spec, int(data.shape[-1]), applied)
