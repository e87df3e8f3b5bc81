"""One preprocessing recipe for every recording (CBraMod/LaBraM defaults, all configurable).

The recipe is a :class:`~neurofm.data.spec.PreprocessSpec` (rate, patch, band, mains, kinds,
scales: what a model saw); :class:`PreprocessConfig` is that spec plus how to treat bad input
(flat channels, NaN/Inf, channels without positions, unit mix-ups) and where positions come from.

Steps, in order (:func:`preprocess_raw`):

1. **Pick** channels of the kinds kept (``eeg, meg_mag, meg_grad, seeg, ecog``); EOG, ECG, EMG,
   stimulus and misc channels are dropped and listed in the report. Positions come from
   :func:`neurofm.sensors.positions.resolve_sensors` (file, else montage by normalised name);
   a channel with no known position is an error unless ``on_unknown="drop"``.
2. **Check** the samples: NaN/Inf (error naming channel and time, or ``on_nan="drop_window"``),
   flat channels (reported, or dropped with ``on_flat="drop"``: a recording left with fewer
   than half its channels is refused, :class:`~neurofm.data.errors.FlatSignalError`), EEG/iEEG
   amplitudes off by 1e6
   (µV stored as V or the reverse: fixed and reported, ``on_units="fix"``).
3. **Rescale** each channel from SI units to model units with the spec's ``scales``
   (:data:`DEFAULT_SCALES`); from here on the samples are float32.
4. **Resample** to ``sfreq`` (200 Hz) and **filter** at the lower of the two rates, in one
   pass, by the plan of :mod:`neurofm.data.band` (:func:`neurofm.data.filters.filter_and_resample`:
   exact band-limited (FFT) resampling and one zero-phase FIR holding the band-pass
   ``l_freq``–``h_freq`` and the notch at the mains frequency and its harmonics).

A recording whose Nyquist frequency is below ``h_freq`` (a 128-Hz file and 75 Hz) gets its
Nyquist frequency as the band edge, with a :class:`~neurofm.data.band.BandLimitWarning` and a
report line; one whose Nyquist frequency is at or below ``l_freq``, or shorter than one patch, is
an error naming the file.

Trials (MNE epochs here, labelled trials in :mod:`neurofm.eval.inputs`) go through
:func:`preprocess_trials`: the same scaling, kernel and resampler, trial by trial.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields, replace
from pathlib import Path

import mne
import numpy as np

from neurofm.data.band import FilterPlan, plan_filter
from neurofm.data.checks import (
    MIN_SIGNAL_FRACTION,
    VOLTAGE_KINDS,
    channel_std,
    detect_unit_mismatch,
    find_flat,
    find_nonfinite,
)
from neurofm.data.errors import FlatSignalError, RecordingError, RecordingTooShortError
from neurofm.data.recording import Recording
from neurofm.data.spec import (  # DEFAULT_SCALES: re-exported from its former home
    DEFAULT_SCALES,  # noqa: F401
    SCALE_UNITS,
    PreprocessSpec,
    as_spec,
    notch_to_line_freq,
)
from neurofm.sensors import ChannelKind, SensorLayout, kind_from_mne
from neurofm.sensors.positions import resolve_sensors
from neurofm.strict import unknown_keys

#: The bad-input policies of :class:`PreprocessConfig` and their allowed values.
POLICIES = {
    "on_flat": ("report", "drop"),
    "on_nan": ("raise", "drop_window"),
    "on_unknown": ("raise", "drop"),
    "on_units": ("fix", "report"),
}
#: The spec of :class:`PreprocessConfig` when none is given: the model defaults, with the notch
#: at each recording's own mains frequency (``info["line_freq"]``).
DEFAULT_RECORDING_SPEC = PreprocessSpec(line_freq="auto")
_SPEC_FIELDS = tuple(f.name for f in fields(PreprocessSpec))


@dataclass(frozen=True, init=False)
class PreprocessConfig:
    """Settings of :func:`preprocess_raw`: a :class:`PreprocessSpec` plus the bad-input policies.

    ``PreprocessConfig(spec, on_flat="drop")`` or, for the spec's fields, keywords that change
    :data:`DEFAULT_RECORDING_SPEC`: ``PreprocessConfig(h_freq=60.0, line_freq=50.0)``. The spec's
    fields read through: ``config.h_freq`` is ``config.spec.h_freq``. To repeat a model's
    preprocessing: ``PreprocessConfig.from_spec(model.preprocessing, on_unknown="drop")``.

    Attributes
    ----------
    spec : PreprocessSpec
        Rate, patch, band, mains, kinds and scales (defaults follow CBraMod/LaBraM; the notch is
        at each recording's own ``info["line_freq"]``).
    on_flat : {"report", "drop"}
        Flat channels: list them in the report, or drop them (and raise
        :class:`~neurofm.data.errors.FlatSignalError` when fewer than
        :data:`~neurofm.data.checks.MIN_SIGNAL_FRACTION` of the channels are left).
    on_nan : {"raise", "drop_window"}
    on_unknown : {"raise", "drop"}
        Channels without a known position.
    on_units : {"fix", "report"}
        EEG/iEEG amplitudes off by 1e6: rescale them (and report), or only report.
    montage : str or None
        Montage for channels the file has no position for (default: MNE's 10-05).

    Notes
    -----
    ``notch=`` (0.1.0's spelling) still works with a ``DeprecationWarning``: ``notch=None`` is
    ``line_freq=None``, ``notch="auto"`` is ``line_freq="auto"`` (or the ``line_freq`` given), a
    number is that ``line_freq``.
    """

    spec: PreprocessSpec
    on_flat: str = "report"
    on_nan: str = "raise"
    on_unknown: str = "raise"
    on_units: str = "fix"
    montage: str | None = None

    def __init__(self, spec: PreprocessSpec | None = None, *, on_flat: str = "report",
                 on_nan: str = "raise", on_unknown: str = "raise", on_units: str = "fix",
                 montage: str | None = None, **recipe):
        if "notch" in recipe:
            warnings.warn("PreprocessConfig(notch=...) is deprecated; use line_freq=<Hz>, "
                          "'auto' (the recording's own) or None (no notch).", DeprecationWarning,
                          stacklevel=2)
            recipe["line_freq"] = notch_to_line_freq(recipe.pop("notch"),
                                                     recipe.get("line_freq"))
        unknown = unknown_keys(recipe, _SPEC_FIELDS)
        if unknown:
            raise TypeError(f"PreprocessConfig got unknown setting(s) {unknown}; the recipe "
                            f"takes {list(_SPEC_FIELDS)}, the policies {list(POLICIES)} and "
                            "montage.")
        spec = as_spec(spec or DEFAULT_RECORDING_SPEC, where="PreprocessConfig.spec")
        if recipe:
            spec = replace(spec, **recipe)
        policies = {"on_flat": on_flat, "on_nan": on_nan, "on_unknown": on_unknown,
                    "on_units": on_units}
        for name, value in policies.items():
            if value not in POLICIES[name]:
                raise ValueError(f"PreprocessConfig.{name} must be one of {POLICIES[name]}, "
                                 f"got {value!r}.")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "montage", montage)

    def __getattr__(self, name):
        if name in _SPEC_FIELDS:  # the recipe reads through to the spec
            return getattr(object.__getattribute__(self, "spec"), name)
        raise AttributeError(f"'PreprocessConfig' object has no attribute {name!r}")

    @classmethod
    def from_spec(cls, spec: PreprocessSpec | dict, **policies) -> PreprocessConfig:
        """The config that applies ``spec`` (a spec, or a dict such as a model's record)."""
        return cls(as_spec(spec), **policies)

    def to_dict(self) -> dict:
        """Plain-JSON form: the spec's :meth:`~PreprocessSpec.to_dict` plus the policies."""
        return {**self.spec.to_dict(), "on_flat": self.on_flat, "on_nan": self.on_nan,
                "on_unknown": self.on_unknown, "on_units": self.on_units,
                "montage": self.montage}

    @classmethod
    def from_dict(cls, values: dict, *, where: str = "preprocessing") -> PreprocessConfig:
        """Inverse of :meth:`to_dict`; also reads a bare spec dict in any known form (a model's
        ``preprocessing``, 0.1.0's keys). Unknown keys are an error naming them."""
        values = dict(values)
        policies = {k: values.pop(k) for k in (*POLICIES, "montage") if k in values}
        return cls(PreprocessSpec.from_dict(values, where=where), **policies)


@dataclass
class PreprocessPlan:
    """What :func:`preprocess_raw` will do to one recording, decided from its ``Info`` alone.

    ``picks`` are indices into the recording's channels, in order; ``layout`` the sensors of
    those channels; ``dropped`` pairs of (channel, reason); ``filter`` the band, notch and
    rates (None when the recording cannot be filtered, see ``problems``); ``scales`` the
    multiplier to model units per picked channel; ``problems`` reasons it cannot run;
    ``too_short`` whether one of them is a recording shorter than one patch.
    """

    source: str
    sfreq_in: float
    picks: list[int]
    layout: SensorLayout | None
    dropped: list[tuple[str, str]]
    filter: FilterPlan | None
    scales: np.ndarray  # [C] for the picked channels
    problems: list[str]
    too_short: bool = False


def recording_source(raw) -> str:
    """The file a raw object came from, ``sample:NAME`` for samples, else ``<in-memory>``."""
    filenames = [f for f in (getattr(raw, "filenames", None) or ()) if f]
    if filenames:
        return str(filenames[0])
    description = raw.info.get("description") or ""
    if description.startswith("sample:"):
        return description.split()[0]
    return "<in-memory recording>"


def epochs_source(epochs) -> str:
    """The file an ``Epochs`` object was read from, else ``<in-memory epochs>``."""
    filename = getattr(epochs, "filename", None)
    return str(filename) if filename else "<in-memory epochs>"


def plan_preprocessing(info: mne.Info, config: PreprocessConfig | None = None, *,
                       source: str = "<in-memory recording>", n_times: int | None = None
                       ) -> PreprocessPlan:
    """Decide channels, positions, filter and scales for a recording from its ``Info``.

    Problems that stop preprocessing (Nyquist frequency below the high-pass, shorter than one
    patch when ``n_times`` is given, unknown positions, duplicate channels, no channel left)
    are collected in ``plan.problems`` rather than raised, so ``neurofm info`` can show all of
    them.
    """
    config = config or PreprocessConfig()
    spec = config.spec
    sfreq_in = float(info["sfreq"])
    problems = []
    filter_plan, too_short = None, False
    try:
        filter_plan = plan_filter(sfreq_in, spec, line_freq=info.get("line_freq"),
                                  source=source)
    except RecordingError as err:
        problems.append(str(err))
    if n_times is not None and filter_plan is not None:
        n_out = round(n_times * filter_plan.sfreq_out / sfreq_in)
        too_short = n_out < spec.patch_samples
        if too_short:
            problems.append(f"{source} lasts {n_times / sfreq_in:g} s ({n_out} samples at "
                            f"{filter_plan.sfreq_out:g} Hz), shorter than one patch of "
                            f"{spec.patch_samples} samples. Leave the file out.")

    dropped = []
    wanted = {ChannelKind.from_label(k) for k in spec.kinds}
    kinds = [kind_from_mne(ch) for ch in info["chs"]]
    for name, kind in zip(info["ch_names"], kinds):
        if kind not in wanted:
            dropped.append((name, f"kind {kind.label} not kept"))
    layout = None
    try:
        layout = resolve_sensors(info, montage=config.montage, on_unknown=config.on_unknown,
                                 kinds=wanted)
    except ValueError as err:  # unknown positions, duplicate channels, bad montage name
        problems.append(f"{source}: {err}")
    picks, scales = [], []
    if layout is not None:
        kept = set(layout.names)
        for name, kind in zip(info["ch_names"], kinds):
            if kind in wanted and name not in kept:
                dropped.append((name, "no known position"))
        index = {name: i for i, name in enumerate(info["ch_names"])}
        picks = [index[name] for name in layout.names]
        scales = [spec.scales[label] for label in layout.kind_labels()]
        if not picks:
            problems.append(f"{source} has no channel of the kinds {list(spec.kinds)} with a "
                            "known position. Check the channel types (raw.set_channel_types) "
                            "or pass a montage.")
    return PreprocessPlan(source, sfreq_in, picks, layout, dropped, filter_plan,
                          np.asarray(scales, dtype=np.float64), problems, too_short)


def describe_preprocessing(raw, config: PreprocessConfig | None = None) -> list[str]:
    """What :func:`preprocess_raw` would do to ``raw``, one line per step.

    Parameters
    ----------
    raw : mne.io.BaseRaw or mne.Epochs
        Only ``raw.info`` (and a continuous recording's length) is used.
    config : PreprocessConfig, optional

    Returns
    -------
    list of str
        Lines such as ``"resample: 256 Hz -> 200 Hz"``; problems start with ``"ERROR: "``.
    """
    config = config or PreprocessConfig()
    continuous = isinstance(raw, mne.io.BaseRaw)
    plan = plan_preprocessing(raw.info, config, source=recording_source(raw),
                              n_times=raw.n_times if continuous else None)
    lines = []
    if plan.layout is not None:
        counts = {}
        for label in plan.layout.kind_labels():
            counts[label] = counts.get(label, 0) + 1
        kept = ", ".join(f"{n} {k}" for k, n in counts.items()) or "none"
        lines.append(f"channels: keep {len(plan.picks)} of {len(raw.ch_names)} ({kept})")
    for name, reason in plan.dropped:
        lines.append(f"drop channel {name}: {reason}")
    if plan.filter is not None:
        lines.extend(plan.filter.describe())
    if plan.layout is not None:
        for label in dict.fromkeys(plan.layout.kind_labels()):
            lines.append(f"scale {label}: x {config.spec.scales[label]:g} "
                         f"({SCALE_UNITS.get(label, 'custom')})")
    lines.extend(f"ERROR: {p}" for p in plan.problems)
    return lines


def preprocess_raw(raw, config: PreprocessConfig | None = None, *,
                   source: str | None = None) -> Recording:
    """Pick, check, rescale, resample and filter one continuous recording.

    The order and methods are those of the module docstring: a file above the spec's ``sfreq``
    is resampled before its band-pass and notch, which then run at ``sfreq``.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        As returned by :func:`neurofm.data.read_raw`.
    config : PreprocessConfig, optional
        Defaults: 200 Hz, 0.3–75 Hz, notch at the file's mains frequency, 1.0 = 100 µV.
    source : str, optional
        Name used in messages (default: the raw object's file).

    Returns
    -------
    Recording
        ``data`` float32 [C, T] in model units at the spec's ``sfreq``.

    Raises
    ------
    RecordingError
        Nyquist frequency at or below ``l_freq``, channels without positions, duplicate
        channels, NaN/Inf samples (``on_nan="raise"``), no usable channel. Messages name the
        file. :class:`RecordingTooShortError` for a recording shorter than one patch.

    Warns
    -----
    BandLimitWarning
        The file's Nyquist frequency is at or below ``h_freq``: the band ends there.
    """
    config = config or PreprocessConfig()
    source = source or recording_source(raw)
    plan = plan_preprocessing(raw.info, config, source=source, n_times=raw.n_times)
    if plan.problems:
        error = RecordingTooShortError if plan.too_short and len(plan.problems) == 1 \
            else RecordingError
        raise error(" ".join(plan.problems), source=source)
    data = raw.get_data(picks=plan.picks)  # [C, T] SI units
    report = [f"drop channel {name}: {reason}" for name, reason in plan.dropped]
    report.extend(plan.filter.notes)

    data, layout, scales, bad_in = _check_samples(data, plan.layout, plan, config, report)
    data = _to_model_units(data, scales)
    n_seconds = data.shape[-1] / plan.sfreq_in
    if plan.filter.bandpass_seconds() > n_seconds:
        report.append(f"band-pass filter ({plan.filter.bandpass_seconds():.1f} s) is longer "
                      f"than the data ({n_seconds:.1f} s): edges may be distorted")
    data = plan.filter.apply(data)
    sfreq_out = plan.filter.sfreq_out
    bad_out = None
    if bad_in is not None:
        bad_out = _bad_samples_after(bad_in, plan.sfreq_in, sfreq_out, data.shape[-1],
                                     plan.filter.reach_seconds())
    subject, session = _bids_entities(source)
    return Recording(data=data, sfreq=sfreq_out, sensors=layout,
                     source=source, subject=subject, session=session, report=report,
                     bad_samples=bad_out)


def preprocess_trials(data: np.ndarray, sfreq: float, scales: np.ndarray,
                      spec: PreprocessSpec, *, line_freq: float | None = None,
                      source: str = "<trials>") -> tuple[np.ndarray, FilterPlan]:
    """Rescale, filter and resample trials the way :func:`preprocess_raw` does a recording.

    The one path of labelled trials (:func:`neurofm.eval.inputs.prepare_trials`) and MNE epochs
    (:func:`preprocess_epochs_data`): each trial is scaled to float32 model units and then
    filtered and resampled by :meth:`FilterPlan.apply` with the kernel, resampler and edge
    handling (odd reflection) a continuous recording gets. So a trial cut from a recording
    equals the same stretch of the preprocessed recording, except within half a filter length
    of the trial's ends, where the recording had its neighbouring samples and the trial has
    their reflection. Trials shorter than the band-pass filter are demeaned instead of
    high-passed (:func:`neurofm.data.band.plan_filter`).

    Parameters
    ----------
    data : ndarray, shape [E, C, T]
        SI units at ``sfreq``, all finite.
    sfreq : float
    scales : ndarray, shape [C]
        Multiplier from SI to model units per channel.
    spec : PreprocessSpec
    line_freq : float, optional
        The recording's mains frequency, for ``spec.line_freq == "auto"``.
    source : str

    Returns
    -------
    data : ndarray of float32, shape [E, C, T']
        Model units at ``spec.sfreq`` (``T' = round(T * spec.sfreq / sfreq)``).
    plan : FilterPlan
        What was applied (:meth:`FilterPlan.describe`).
    """
    plan = plan_filter(sfreq, spec, line_freq=line_freq, trial_samples=data.shape[-1],
                       source=source)
    return plan.apply(_to_model_units(data, scales)), plan


def preprocess_epochs_data(epochs, config: PreprocessConfig | None = None, *,
                           source: str | None = None):
    """Preprocess MNE ``Epochs`` like :func:`preprocess_raw`, epoch by epoch.

    Epochs go through :func:`preprocess_trials`: epochs shorter than the high-pass filter are
    demeaned per channel instead, and the report says so. Epochs with NaN/Inf samples raise,
    or are dropped with ``on_nan="drop_window"``.

    Returns
    -------
    data : ndarray of float32, shape [E, C, T]
        Model units at the spec's ``sfreq``.
    sfreq : float
    layout : SensorLayout
    keep : ndarray of int, shape [E]
        Indices of the epochs kept (into ``epochs``).
    report : list of str
    """
    config = config or PreprocessConfig()
    source = source or epochs_source(epochs)
    plan = plan_preprocessing(epochs.info, config, source=source)
    if plan.problems:
        raise RecordingError(" ".join(plan.problems), source=source)
    data = epochs.get_data(picks=plan.picks)  # [E, C, T]
    report = [f"drop channel {name}: {reason}" for name, reason in plan.dropped]
    keep = np.arange(len(data))
    finite = np.isfinite(data).all(axis=(1, 2))
    if not finite.all():
        first = int(np.flatnonzero(~finite)[0])
        found = find_nonfinite(data[first], plan.layout.names, plan.sfreq_in)[0]
        if config.on_nan == "raise":
            raise RecordingError(
                f"{source}: epoch {first}: {found.describe()} (from the epoch start). Fix the "
                "data, or pass on_nan='drop_window' to drop the epochs that contain them.",
                source=source)
        report.append(f"dropped {int((~finite).sum())} epoch(s) with NaN/Inf samples "
                      f"(first: epoch {first}, {found.describe()})")
        keep, data = keep[finite], data[finite]
        if not len(data):
            raise RecordingError(f"{source}: every epoch has NaN/Inf samples; nothing is left. "
                                 "Fix the data before epoching.", source=source)
    layout, scales, rows = _check_units_and_flat(
        data.transpose(1, 0, 2).reshape(len(plan.picks), -1), plan.layout, plan.scales, config,
        report, source)  # epochs end to end: [C, E * T]
    if len(rows) < data.shape[1]:
        data = data[:, rows]
    data, filter_plan = preprocess_trials(data, plan.sfreq_in, scales, config.spec,
                                          line_freq=epochs.info.get("line_freq"), source=source)
    report.extend(filter_plan.notes)
    return data, filter_plan.sfreq_out, layout, keep, report


def _check_samples(data, layout, plan, config, report):
    """NaN/Inf, flat channels, units; returns (data, layout, scales, bad_in [T] or None)."""
    source, scales = plan.source, plan.scales
    bad_in = None
    nonfinite = find_nonfinite(data, layout.names, plan.sfreq_in)
    if nonfinite:
        if config.on_nan == "raise":
            listed = "; ".join(n.describe() for n in nonfinite[:5])
            raise RecordingError(
                f"{source}: {listed}. Fix or crop the file, or pass on_nan='drop_window' "
                "to drop the windows they touch.", source=source)
        bad_in = ~np.isfinite(data).all(axis=0)
        report.append(f"NaN/Inf samples: {'; '.join(n.describe() for n in nonfinite)}; "
                      "windows that touch them are dropped")
    layout, scales, rows = _check_units_and_flat(data, layout, scales, config, report, source)
    if len(rows) < len(data):  # flat channels dropped (indexing copies, so only then)
        data = data[rows]
    if bad_in is not None:
        data = _interpolate_nonfinite(data)
    return data, layout, scales, bad_in


def _check_units_and_flat(data, layout, scales, config, report, source):
    """Unit mix-up (fix or report), then flat channels (report or drop).

    ``data [C, T]`` in SI units (NaN/Inf samples are ignored); returns
    (layout, scales [C'], rows [C']) for the channels kept.
    """
    std = channel_std(data)  # shared by both checks: one pass over the data
    mismatch = detect_unit_mismatch(data, layout.kinds, std=std)
    if mismatch is not None:
        if config.on_units == "fix":
            volt_rows = np.isin(layout.kinds, [int(k) for k in VOLTAGE_KINDS])
            scales = scales * np.where(volt_rows, mismatch.factor, 1.0)
            report.append(f"{mismatch.describe()}; applied an extra scale of "
                          f"{mismatch.factor:g} (total x {scales[volt_rows][0]:g} to model "
                          "units, 1.0 = 100 µV); pass on_units='report' to keep the file's units")
        else:
            report.append(f"{mismatch.describe()}; kept as is (on_units='report')")
    return _handle_flat(find_flat(data, scales, std=std), layout, scales, config, report,
                        source)


def _handle_flat(flat, layout, scales, config, report, source):
    rows = np.arange(len(layout))
    if not flat.any():
        return layout, scales, rows
    names = [layout.names[i] for i in np.flatnonzero(flat)]
    if config.on_flat == "drop":
        if flat.all():
            raise FlatSignalError(f"{source}: every channel is flat ({', '.join(names)}); the "
                                  "recording carries no signal. Skip it.", source=source)
        live = int((~flat).sum())
        if live < MIN_SIGNAL_FRACTION * len(flat):
            raise FlatSignalError(
                f"{source}: {len(names)} of {len(flat)} channels are flat ({', '.join(names)}); "
                f"fewer than {MIN_SIGNAL_FRACTION:.0%} of the channels carry signal. Check the "
                "recording (a disconnected cap, an empty export), or pass on_flat='report' to "
                "keep every channel.", source=source)
        report.append(f"flat channels dropped: {', '.join(names)}")
        rows = np.flatnonzero(~flat)
        return layout.subset(rows), scales[rows], rows
    report.append(f"flat channels (kept; pass on_flat='drop' to remove them): {', '.join(names)}")
    return layout, scales, rows


def _interpolate_nonfinite(data: np.ndarray) -> np.ndarray:
    """Replace NaN/Inf by linear interpolation per channel (those windows are dropped later)."""
    data = data.copy()
    t = np.arange(data.shape[-1])
    for row in data:
        ok = np.isfinite(row)
        row[~ok] = np.interp(t[~ok], t[ok], row[ok]) if ok.any() else 0.0
    return data


def _to_model_units(data: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``data [..., C, T]`` (SI) x ``scales [C]`` as float32 in one pass."""
    out = np.empty(data.shape, dtype=np.float32)
    return np.multiply(data, np.asarray(scales)[:, None], out=out, casting="same_kind")


def _bad_samples_after(bad_in, sfreq_in, sfreq_out, n_out, margin_seconds):
    """Map bad input samples [T_in] to output samples [T_out], widened by the filter reach."""
    hit = np.zeros(n_out, dtype=bool)
    idx = np.floor(np.flatnonzero(bad_in) * sfreq_out / sfreq_in).astype(int)
    hit[np.clip(idx, 0, n_out - 1)] = True
    reach = int(np.ceil(margin_seconds * sfreq_out)) + 2  # + resampling kernel
    # sample j is bad when any hit lies in [j - reach, j + reach]: a running count via cumsum
    count = np.concatenate([[0], np.cumsum(hit)])
    j = np.arange(n_out)
    return count[np.minimum(j + reach + 1, n_out)] - count[np.maximum(j - reach, 0)] > 0


def _bids_entities(source: str):
    name = Path(source).name
    if not name.startswith("sub-"):
        return None, None
    from mne_bids import get_entities_from_fname

    entities = get_entities_from_fname(name, on_error="ignore")
    return entities.get("subject"), entities.get("session")
