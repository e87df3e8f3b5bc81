"""Whose preprocessing an evaluation applies: the paper's, when the task config states it, else
the model's.

A task config's ``preprocessing:`` block may state the preprocessing of the paper whose table it
reproduces: :class:`~neurofm.data.spec.PreprocessSpec` fields (``l_freq``, ``h_freq``,
``line_freq`` …) plus

``source``
    where the paper's preprocessing comes from (a section, the authors' script); it marks the
    block as the paper's;
``filter``
    ``"fir"`` (neurofm's pretraining filter, the default) or ``"iir"`` (Butterworth, zero-phase,
    ``filter_order``, as MOABB and many papers filter);
``filter_order``
    order of the IIR filter (default 4, MOABB's);
``window``
    ``[start, stop]`` seconds of each trial to keep (``stop`` excluded: ``[0, 4]`` at 250 Hz is
    1000 samples).

The stated values win over the model's recorded spec for what can differ without breaking the
model: band, notch, filter type and window. The sampling rate and patch length of a pretrained
model must still equal the model's (its weights are tied to them); a stated rate or patch
length that differs stops the run with the reason. Otherwise the model's spec applies.

A band the loader already applied (:attr:`TrialSet.band`, e.g. MOABB filtering each recording
when a ``moabb:`` spec gives ``fmin``/``fmax``) is never applied again: a stated band must equal
it, and without a stated band it becomes the band that applies. :func:`plan_preprocessing`
decides all of this and records it for ``results.json``: which spec applied, from where, and
every difference from the model's pretraining spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import signal

from neurofm.data.spec import PreprocessSpec, check_compatible
from neurofm.datasets.recordings import RecordingWindows
from neurofm.datasets.trials import AppliedBand, TrialSet
from neurofm.eval.inputs import ModelInputs, prepare_trials, resolve_preprocessing
from neurofm.eval.window_inputs import recording_inputs
from neurofm.strict import check_keys, field_names

#: Keys of a task config's ``preprocessing:`` block beside the PreprocessSpec fields.
TASK_KEYS = ("source", "filter", "filter_order", "window")
#: Filter types a task config may state.
FILTERS = ("fir", "iir")
#: What the paper's preprocessing may change on a pretrained model.
CHANGEABLE = ("l_freq", "h_freq", "line_freq", "filter", "window")


@dataclass(frozen=True)
class TaskPreprocessing:
    """The ``preprocessing:`` block of a task config (with the flags' overrides merged in).

    Attributes
    ----------
    overrides : dict
        :class:`PreprocessSpec` fields stated (``None`` values dropped).
    source : str or None
        Where the paper's preprocessing comes from; None when the block is not the paper's.
    filter : {"fir", "iir"} or None
        Filter type stated (None: not stated).
    filter_order : int
    window : (float, float) or None
        Seconds of each trial to keep.
    """

    overrides: dict = field(default_factory=dict)
    source: str | None = None
    filter: str | None = None
    filter_order: int = 4
    window: tuple[float, float] | None = None

    @classmethod
    def from_dict(cls, values: dict | None, *,
                  where: str = "preprocessing") -> TaskPreprocessing:
        """Read a ``preprocessing:`` block, checking every key and value (errors name ``where``).
        """
        values = {k: v for k, v in dict(values or {}).items() if v is not None}
        task = {k: values.pop(k) for k in TASK_KEYS if k in values}
        check_keys(values, [*field_names(PreprocessSpec), "notch", "patch_size"], where=where)
        filter_type = task.get("filter")
        if filter_type is not None and filter_type not in FILTERS:
            raise ValueError(f"{where}: filter must be one of {', '.join(FILTERS)}; got "
                             f"{filter_type!r}.")
        order = int(task.get("filter_order", 4))
        if order < 1:
            raise ValueError(f"{where}: filter_order must be at least 1; got {order}.")
        window = task.get("window")
        if window is not None:
            if not (isinstance(window, (list, tuple)) and len(window) == 2):
                raise ValueError(f"{where}: window must be [start, stop] in seconds; got "
                                 f"{window!r}.")
            window = (float(window[0]), float(window[1]))
            if window[0] < 0 or window[1] <= window[0]:
                raise ValueError(f"{where}: window [{window[0]:g}, {window[1]:g}] must have "
                                 "0 <= start < stop.")
        return cls(values, task.get("source"), filter_type, order, window)

    @property
    def states_band(self) -> bool:
        return "l_freq" in self.overrides or "h_freq" in self.overrides


@dataclass
class PreprocessingPlan:
    """What an evaluation applies to the trials, and why.

    Attributes
    ----------
    spec : PreprocessSpec
        The preprocessing that applies (its band is the band the inputs have, whoever applied
        it).
    model_spec : PreprocessSpec
        The model's pretraining preprocessing.
    origin : {"paper", "model"}
        ``"paper"``: the task config states the paper's preprocessing (``source``); ``"model"``:
        the model's spec (with any override from flags or the task config).
    source : str or None
    filter : str
        ``"fir"``, ``"iir"`` or ``"loader"`` (the loader's filter; not repeated).
    filter_order : int
    window : (float, float) or None
    loader_band : AppliedBand or None
    notes : list of str
        Decisions in words, in ``results.json`` → ``preprocessing.applied`` after the differences
        from the model's pretraining spec.
    """

    spec: PreprocessSpec
    model_spec: PreprocessSpec
    origin: str
    source: str | None
    filter: str
    filter_order: int
    window: tuple[float, float] | None
    loader_band: AppliedBand | None
    notes: list[str] = field(default_factory=list)

    def differences(self) -> list[str]:
        """Every way the applied preprocessing differs from the model's pretraining."""
        out = self.model_spec.differences(self.spec)
        if self.filter == "iir":
            out.append(f"filter: FIR (pretraining) vs IIR Butterworth order {self.filter_order}, "
                       "zero-phase, on each trial")
        elif self.filter == "loader":
            out.append(f"filter: FIR (pretraining) vs {self.loader_band.describe()}")
        if self.window is not None:
            out.append(f"window: {self.window[0]:g}-{self.window[1]:g} s of each trial "
                       "(pretraining: whole recordings cut into windows)")
        return out

    def to_dict(self) -> dict:
        return {"origin": self.origin, "source": self.source, "filter": self.filter,
                "filter_order": self.filter_order if self.filter == "iir" else None,
                "window": None if self.window is None else list(self.window),
                "loader_band": None if self.loader_band is None else self.loader_band.to_dict(),
                "model_spec": self.model_spec.to_dict(),
                "differences_from_model": self.differences()}


def plan_preprocessing(model_spec, task: TaskPreprocessing, *, trials_band: AppliedBand | None,
                       pretrained: bool, model_name: str, data_name: str) -> PreprocessingPlan:
    """Decide the preprocessing of one evaluation (see the module docstring).

    Parameters
    ----------
    model_spec : PreprocessSpec, dict or None
        ``model.preprocessing``.
    task : TaskPreprocessing
        The task config's block with the flags merged in.
    trials_band : AppliedBand or None
        A band the loader applied (``trials.band``).
    pretrained : bool
        A pretrained model refuses another sampling rate or patch length.
    model_name, data_name : str
        For messages.

    Raises
    ------
    ValueError
        A stated rate or patch length a pretrained model cannot take, or a stated band or
        filter that contradicts the band the loader applied.
    """
    model_spec = resolve_preprocessing(model_spec)
    spec = resolve_preprocessing(model_spec, task.overrides)
    if pretrained:
        try:
            check_compatible(spec, model_spec, data_name="the evaluation inputs",
                             model_name=model_name)
        except ValueError as err:
            stated = "The task config's preprocessing (the paper's)" if task.source else \
                "The preprocessing overrides"
            raise ValueError(f"{stated} may change the band, notch, filter and window, not the "
                             f"sampling rate or patch length, which must equal the model's: "
                             f"{err}") from None
    origin = "paper" if task.source else "model"
    notes = [f"preprocessing: the paper's, as the task config states ({task.source})"
             if task.source else "preprocessing: the model's recorded spec"
             + (" with overrides" if task.overrides else "")]
    filter_type = task.filter or "fir"
    if trials_band is not None:
        if task.states_band and not (_same(spec.l_freq, trials_band.l_freq)
                                     and _same(spec.h_freq, trials_band.h_freq)):
            raise ValueError(
                f"{data_name} were band-passed when loaded ({trials_band.describe()}); the "
                f"{'task config' if task.source else 'settings'} ask for "
                f"{_band(spec.l_freq, spec.h_freq)}. A band is applied once: load the data "
                "without that filter (drop fmin/fmax from the moabb: spec) or state the same "
                "band.")
        if task.filter == "fir":
            raise ValueError(f"{data_name} were band-passed by an IIR filter when loaded "
                             f"({trials_band.describe()}); the task config states filter: fir. "
                             "State filter: iir, or load the data without the loader's filter.")
        if not task.states_band:
            notes.append(f"band {_band(trials_band.l_freq, trials_band.h_freq)}: the data's, "
                         f"applied when loaded; the model's {_band(spec.l_freq, spec.h_freq)} is "
                         "not applied on top")
        spec = replace(spec, l_freq=trials_band.l_freq, h_freq=trials_band.h_freq)
        notes.append(f"{trials_band.describe()} (not repeated)")
        filter_type = "loader"
    return PreprocessingPlan(spec, model_spec, origin, task.source, filter_type,
                             task.filter_order, task.window, trials_band, notes)


def prepare_inputs(trials: TrialSet, plan: PreprocessingPlan) -> ModelInputs:
    """The trials (already cut to ``plan.window``) as model inputs under ``plan``.

    The band-pass is applied once: by neurofm's FIR filter in
    :func:`~neurofm.eval.inputs.prepare_trials` (``filter="fir"``), by a zero-phase Butterworth
    filter here (``"iir"``), or not at all when the loader applied it (``"loader"``). Scaling,
    notch, resampling and patching are :func:`prepare_trials`'.
    """
    why = "the paper's" if plan.origin == "paper" else "override"
    steps = [f"differs from the model's pretraining preprocessing ({why}): {line}"
             for line in plan.differences()] + plan.notes
    if plan.window is not None:
        steps.append(f"window: {plan.window[0]:g}-{plan.window[1]:g} s of each trial "
                     f"({trials.n_times} samples at {trials.sfreq:g} Hz)")
    if isinstance(trials.signals, RecordingWindows):
        inputs = _recording_window_inputs(trials, plan)
        inputs.applied[:0] = steps
        return inputs
    X, spec = trials.X, plan.spec
    if plan.filter == "iir":
        X, described = butterworth_bandpass(X, trials.sfreq, spec.l_freq, spec.h_freq,
                                            plan.filter_order)
        steps.append(described)
    if plan.filter in ("iir", "loader"):
        spec = replace(spec, l_freq=None, h_freq=None)
    inputs = prepare_trials(X, trials.sfreq, trials.sensors, spec, source=trials.name)
    inputs.preprocessing = plan.spec
    if plan.filter in ("iir", "loader"):  # neurofm's FIR stage had no band to apply
        inputs.applied = [s for s in inputs.applied if not s.startswith("band-pass: none")]
    inputs.applied[:0] = steps
    return inputs


def _recording_window_inputs(trials: TrialSet, plan: PreprocessingPlan) -> ModelInputs:
    """Windows of recordings: each recording preprocessed whole, then cut
    (:mod:`neurofm.eval.window_inputs`); an IIR band-pass too runs on the whole recording."""
    spec, prefilter, key = plan.spec, None, {}
    if plan.filter == "iir":
        def prefilter(data, sfreq):
            return butterworth_bandpass(data[None], sfreq, plan.spec.l_freq, plan.spec.h_freq,
                                        plan.filter_order)[0][0]
        spec = replace(spec, l_freq=None, h_freq=None)
        key = {"iir": [plan.spec.l_freq, plan.spec.h_freq, plan.filter_order]}
    inputs = recording_inputs(trials, spec, prefilter=prefilter, prefilter_key=key)
    if plan.filter == "iir":
        inputs.applied = [s for s in inputs.applied if not s.startswith("band-pass: none")]
        inputs.applied.insert(1, f"band-pass {_band(plan.spec.l_freq, plan.spec.h_freq)}: IIR "
                                 f"Butterworth order {plan.filter_order}, zero-phase, on each "
                                 "whole recording")
    inputs.preprocessing = plan.spec
    return inputs


def butterworth_bandpass(X: np.ndarray, sfreq: float, l_freq: float | None,
                         h_freq: float | None, order: int = 4) -> tuple[np.ndarray, str]:
    """Zero-phase Butterworth band-pass of trials ``X [n, C, T]`` along time (each trial alone).

    An edge at or above the Nyquist frequency is left open. Returns the filtered trials
    (float32) and what was done, in words.
    """
    nyquist = sfreq / 2
    high = h_freq if h_freq is not None and h_freq < nyquist else None
    if l_freq is None and high is None:
        return np.asarray(X, np.float32), "IIR band-pass: none (no edge below Nyquist)"
    if l_freq is not None and high is not None:
        sos = signal.butter(order, (l_freq, high), "bandpass", fs=sfreq, output="sos")
    elif l_freq is not None:
        sos = signal.butter(order, l_freq, "highpass", fs=sfreq, output="sos")
    else:
        sos = signal.butter(order, high, "lowpass", fs=sfreq, output="sos")
    padlen = min(3 * (2 * len(sos) + 1), X.shape[-1] - 1)
    out = signal.sosfiltfilt(sos, np.asarray(X, np.float64), axis=-1, padlen=padlen)
    return out.astype(np.float32), (f"band-pass {_band(l_freq, high)}: IIR Butterworth order "
                                    f"{order}, zero-phase (sosfiltfilt), each trial at "
                                    f"{sfreq:g} Hz")


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def _band(low, high) -> str:
    return f"{'DC' if low is None else f'{low:g}'}-{'Nyquist' if high is None else f'{high:g}'} Hz"
