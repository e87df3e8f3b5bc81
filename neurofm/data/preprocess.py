"""One preprocessing recipe for every recording (CBraMod/LaBraM defaults, all configurable).

Steps, in order (:func:`preprocess_raw`):

1. **Pick** channels of the brain kinds (``eeg, meg_mag, meg_grad, seeg, ecog``); EOG, ECG, EMG,
   stimulus and misc channels are dropped and listed in the report. Positions come from
   :func:`neurofm.sensors.positions.resolve_sensors` (file, else montage by normalised name);
   a channel with no known position is an error unless ``on_unknown="drop"``.
2. **Check** the samples: NaN/Inf (error naming channel and time, or ``on_nan="drop_window"``),
   flat channels (reported, or dropped with ``on_flat="drop"``), EEG/iEEG amplitudes off by 1e6
   (µV stored as V or the reverse: fixed and reported, ``on_units="fix"``).
3. **Rescale** each channel from SI units to model units with :data:`DEFAULT_SCALES`; from here
   on the samples are float32.
4. **Resample** to ``sfreq`` (200 Hz) and **filter** at the lower of the two rates, in one
   pass (:func:`neurofm.data.filters.filter_and_resample`): exact band-limited (FFT)
   resampling and one zero-phase FIR (firwin, Hamming; MNE's ``"auto"`` lengths) designed at
   the lower rate that holds the band-pass ``l_freq``–``h_freq`` (0.3–75 Hz) and a notch at
   the mains frequency and its harmonics up to 1.25 x ``h_freq`` (those below the lower
   rate's Nyquist frequency). For a file above ``sfreq`` this is the same as resampling first
   and filtering at ``sfreq``; for one below, filtering first and resampling up. The mains
   frequency is ``line_freq`` when given, else ``info["line_freq"]`` from the file; with
   neither, no notch is applied and the report says how to set it.

Rule for low sampling rates: a file whose sampling rate is not above ``2 * h_freq`` cannot hold
the band the model expects. neurofm raises an error rather than upsampling (upsampling does not
create the missing band); lower ``h_freq`` below half the file's rate to use such a file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import mne
import numpy as np

from neurofm.data.checks import (
    VOLTAGE_KINDS,
    channel_std,
    detect_unit_mismatch,
    find_flat,
    find_nonfinite,
)
from neurofm.data.errors import RecordingError
from neurofm.data.filters import filter_and_resample, fir_kernel, notch_fits
from neurofm.data.recording import Recording
from neurofm.sensors import BRAIN_KINDS, ChannelKind, SensorLayout, kind_from_mne

#: Multiplier from SI units to model units, per channel kind.
#: EEG/iEEG: volts x 1e4, so 1.0 = 100 µV (CBraMod/LaBraM units).
#: MEG: chosen so that brain activity has about the spread EEG has in these units. Check (see
#: docs/data.md and tests/test_data_scales.py): 400 random 10-nAm dipoles in a spherical head seen
#: by MNE's canonical Neuromag-306 helmet and 60 10-20 electrodes give median channel stds of
#: 8.1 µV (EEG), 0.52 pT (mag) and 9.8 pT/m (grad); with 1.0 = 5 pT for magnetometers (x 2e11)
#: and 1.0 = 100 pT/m (1 pT/cm) for planar gradiometers (x 1e10) these are 0.081, 0.10 and 0.098.
DEFAULT_SCALES = {
    "eeg": 1e4,
    "seeg": 1e4,
    "ecog": 1e4,
    "meg_mag": 2e11,
    "meg_grad": 1e10,
}

#: Physical size of 1.0 model unit per kind, for reports.
SCALE_UNITS = {
    "eeg": "1.0 = 100 µV",
    "seeg": "1.0 = 100 µV",
    "ecog": "1.0 = 100 µV",
    "meg_mag": "1.0 = 5 pT",
    "meg_grad": "1.0 = 100 pT/m",
}

_BRAIN_LABELS = tuple(k.label for k in sorted(BRAIN_KINDS))
_CHOICES = {
    "on_flat": ("report", "drop"),
    "on_nan": ("raise", "drop_window"),
    "on_unknown": ("raise", "drop"),
    "on_units": ("fix", "report"),
}


@dataclass
class PreprocessConfig:
    """Settings of :func:`preprocess_raw`; the defaults follow CBraMod/LaBraM.

    Attributes
    ----------
    sfreq : float or None
        Output sampling rate in Hz (None keeps the file's rate).
    l_freq, h_freq : float or None
        Band-pass edges in Hz (None skips that side).
    notch : "auto", float or None
        "auto": notch at ``line_freq`` or the file's ``info["line_freq"]``; a number forces
        that mains frequency; None: no notch.
    line_freq : float or None
        Mains frequency (50 or 60 Hz) used by ``notch="auto"``; overrides the file's value.
    kinds : tuple of str
        Channel kinds to keep.
    scales : dict of str -> float
        Multiplier from SI to model units per kind (default :data:`DEFAULT_SCALES`).
    on_flat : {"report", "drop"}
    on_nan : {"raise", "drop_window"}
    on_unknown : {"raise", "drop"}
        Channels without a known position.
    on_units : {"fix", "report"}
        EEG/iEEG amplitudes off by 1e6: rescale them (and report), or only report.
    montage : str or None
        Montage for channels the file has no position for (default: MNE's 10-05).
    """

    sfreq: float | None = 200.0
    l_freq: float | None = 0.3
    h_freq: float | None = 75.0
    notch: str | float | None = "auto"
    line_freq: float | None = None
    kinds: tuple[str, ...] = _BRAIN_LABELS
    scales: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SCALES))
    on_flat: str = "report"
    on_nan: str = "raise"
    on_unknown: str = "raise"
    on_units: str = "fix"
    montage: str | None = None

    def __post_init__(self):
        self.kinds = tuple(ChannelKind.from_label(k).label if isinstance(k, str)
                           else ChannelKind(int(k)).label for k in self.kinds)
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"PreprocessConfig.{name} must be one of {allowed}, "
                                 f"got {getattr(self, name)!r}.")
        if self.notch not in ("auto", None) and not (isinstance(self.notch, (int, float))
                                                      and self.notch > 0):
            raise ValueError(f"PreprocessConfig.notch must be 'auto', None or a frequency in Hz, "
                             f"got {self.notch!r}.")
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(f"PreprocessConfig: l_freq ({self.l_freq} Hz) must be below h_freq "
                             f"({self.h_freq} Hz).")
        if self.sfreq is not None and self.h_freq is not None and self.h_freq >= self.sfreq / 2:
            raise ValueError(f"PreprocessConfig: h_freq ({self.h_freq} Hz) must be below half the "
                             f"output rate sfreq ({self.sfreq} Hz); lower h_freq or raise sfreq.")
        missing = [k for k in self.kinds if k in DEFAULT_SCALES and k not in self.scales]
        if missing:
            raise ValueError(f"PreprocessConfig.scales has no entry for kind(s) {missing}; give "
                             "a multiplier from SI units to model units for each kept kind.")

    def to_dict(self) -> dict:
        """Plain-JSON form (stored in model config.json so evaluation can repeat it)."""
        out = asdict(self)
        out["kinds"] = list(self.kinds)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> PreprocessConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown preprocessing setting(s) {unknown}; known: {sorted(known)}.")
        values = dict(values)
        if "kinds" in values:
            values["kinds"] = tuple(values["kinds"])
        return cls(**values)


@dataclass
class PreprocessPlan:
    """What :func:`preprocess_raw` will do to one recording, decided from its ``Info`` alone.

    ``picks`` are indices into the recording's channels, in order; ``layout`` the sensors of
    those channels; ``dropped`` pairs of (channel, reason); ``sfreq_filter`` the rate the
    band-pass and notch run at (the lower of input and output rate); ``problems`` reasons it
    cannot run.
    """

    source: str
    sfreq_in: float
    sfreq_filter: float
    picks: list[int]
    layout: SensorLayout | None
    dropped: list[tuple[str, str]]
    notch_freqs: tuple[float, ...]
    notch_reason: str
    scales: np.ndarray  # [C] for the picked channels
    problems: list[str]


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
                       source: str = "<in-memory recording>") -> PreprocessPlan:
    """Decide channels, positions, notch and scales for a recording from its ``Info``.

    Problems that stop preprocessing (sampling rate too low, unknown positions, duplicate
    channels, no channel left) are collected in ``plan.problems`` rather than raised, so
    ``neurofm info`` can show all of them.
    """
    from neurofm.sensors.positions import resolve_sensors

    config = config or PreprocessConfig()
    sfreq_in = float(info["sfreq"])
    problems = []
    if config.h_freq is not None and sfreq_in <= 2 * config.h_freq:
        problems.append(
            f"{source} is sampled at {sfreq_in:g} Hz, so it holds content only up to "
            f"{sfreq_in / 2:g} Hz, not up to the low-pass h_freq={config.h_freq:g} Hz. Lower "
            f"h_freq below {sfreq_in / 2:g} Hz (PreprocessConfig(h_freq=...) or --h-freq); "
            f"resampling up does not create the missing band, so neurofm does not do it.")

    dropped = []
    wanted = {ChannelKind.from_label(k) for k in config.kinds}
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
        scales = [config.scales[label] for label in layout.kind_labels()]
        if not picks:
            problems.append(f"{source} has no channel of the kinds {list(config.kinds)} with a "
                            "known position. Check the channel types (raw.set_channel_types) "
                            "or pass a montage.")
    sfreq_filter = min(sfreq_in, config.sfreq or sfreq_in)
    notch_freqs, notch_reason = _notch_frequencies(info, config, sfreq_filter)
    return PreprocessPlan(source, sfreq_in, sfreq_filter, picks, layout, dropped, notch_freqs,
                          notch_reason,
                          np.asarray(scales, dtype=np.float64), problems)


def describe_preprocessing(raw, config: PreprocessConfig | None = None) -> list[str]:
    """What :func:`preprocess_raw` would do to ``raw``, one line per step.

    Parameters
    ----------
    raw : mne.io.BaseRaw or mne.Epochs
        Only ``raw.info`` is used.
    config : PreprocessConfig, optional

    Returns
    -------
    list of str
        Lines such as ``"resample: 256 Hz -> 200 Hz"``; problems start with ``"ERROR: "``.
    """
    config = config or PreprocessConfig()
    plan = plan_preprocessing(raw.info, config, source=recording_source(raw))
    lines = []
    if plan.layout is not None:
        counts = {}
        for label in plan.layout.kind_labels():
            counts[label] = counts.get(label, 0) + 1
        kept = ", ".join(f"{n} {k}" for k, n in counts.items()) or "none"
        lines.append(f"channels: keep {len(plan.picks)} of {len(raw.ch_names)} ({kept})")
    for name, reason in plan.dropped:
        lines.append(f"drop channel {name}: {reason}")
    band = (f"{config.l_freq:g}" if config.l_freq is not None else "0") + "–" + \
        (f"{config.h_freq:g} Hz" if config.h_freq is not None else "Nyquist")
    lines.append(f"band-pass: {band} (FIR, zero phase, at {plan.sfreq_filter:g} Hz)"
                 if (config.l_freq or config.h_freq) else "band-pass: none")
    lines.append(f"notch: {plan.notch_reason}")
    if config.sfreq is None or np.isclose(config.sfreq, plan.sfreq_in):
        lines.append(f"resample: none (stays {plan.sfreq_in:g} Hz)")
    else:
        order = "before" if config.sfreq < plan.sfreq_in else "after"
        lines.append(f"resample: {plan.sfreq_in:g} Hz -> {config.sfreq:g} Hz (FFT, "
                     f"{order} filtering)")
    if plan.layout is not None:
        for label in dict.fromkeys(plan.layout.kind_labels()):
            lines.append(f"scale {label}: x {config.scales[label]:g} "
                         f"({SCALE_UNITS.get(label, 'custom')})")
    lines.extend(f"ERROR: {p}" for p in plan.problems)
    return lines


def preprocess_raw(raw, config: PreprocessConfig | None = None, *,
                   source: str | None = None) -> Recording:
    """Pick, check, rescale, resample and filter one continuous recording.

    The order and methods are those of the module docstring: a file above ``config.sfreq`` is
    resampled before its band-pass and notch, which then run at ``config.sfreq``.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        As returned by :func:`neurofm.data.read_raw`.
    config : PreprocessConfig, optional
        Defaults: 200 Hz, 0.3–75 Hz, notch at the mains frequency, 1.0 = 100 µV.
    source : str, optional
        Name used in messages (default: the raw object's file).

    Returns
    -------
    Recording
        ``data`` float32 [C, T] in model units at ``config.sfreq``.

    Raises
    ------
    RecordingError
        Sampling rate too low for ``h_freq``, channels without positions, duplicate channels,
        NaN/Inf samples (``on_nan="raise"``), no usable channel. Messages name the file.
    """
    config = config or PreprocessConfig()
    source = source or recording_source(raw)
    plan = plan_preprocessing(raw.info, config, source=source)
    if plan.problems:
        raise RecordingError(" ".join(plan.problems), source=source)
    data = raw.get_data(picks=plan.picks)  # [C, T] SI units
    layout = plan.layout
    report = [f"drop channel {name}: {reason}" for name, reason in plan.dropped]

    data, layout, scales, bad_in = _check_samples(data, layout, plan, config, report)
    sfreq_out = config.sfreq or plan.sfreq_in
    data = _to_model_units(data, scales)
    data = _filter_and_resample(data, plan, config, report)
    bad_out = None
    if bad_in is not None:
        bad_out = _bad_samples_after(bad_in, plan.sfreq_in, sfreq_out, data.shape[-1],
                                     _filter_reach_seconds(plan, config))
    subject, session = _bids_entities(source)
    return Recording(data=data, sfreq=float(sfreq_out), sensors=layout,
                     source=source, subject=subject, session=session, report=report,
                     bad_samples=bad_out)


def preprocess_epochs_data(epochs, config: PreprocessConfig | None = None, *,
                           source: str | None = None):
    """Preprocess MNE ``Epochs`` like :func:`preprocess_raw`, epoch by epoch.

    Epochs shorter than the high-pass filter cannot be high-passed without distortion; each
    epoch is then demeaned per channel instead, and the report says so. Epochs with NaN/Inf
    samples raise, or are dropped with ``on_nan="drop_window"``.

    Returns
    -------
    data : ndarray of float32, shape [E, C, T]
        Model units at ``config.sfreq``.
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
    n_times = data.shape[-1]
    filter_seconds = _bandpass_seconds(plan.sfreq_filter, config)
    if config.l_freq is not None and n_times / plan.sfreq_in < filter_seconds:
        report.append(f"high-pass {config.l_freq:g} Hz skipped: epochs "
                      f"({n_times / plan.sfreq_in:g} s) are shorter than the filter "
                      f"({filter_seconds:.1f} s); each epoch is demeaned per channel instead")
        data = data - data.mean(axis=-1, keepdims=True)
        config = replace(config, l_freq=None)
    data = _to_model_units(data, scales)
    data = _filter_and_resample(data, plan, config, report)
    return data, float(config.sfreq or plan.sfreq_in), layout, keep, report


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
            raise RecordingError(f"{source}: every channel is flat ({', '.join(names)}); the "
                                 "recording carries no signal. Skip it.", source=source)
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


def _notch_frequencies(info, config, sfreq_filter):
    if config.notch is None:
        return (), "none (disabled)"
    if config.notch == "auto":
        if config.line_freq is not None:
            base, where = float(config.line_freq), "line_freq setting"
        elif info.get("line_freq"):
            base, where = float(info["line_freq"]), "the file's line_freq"
        else:
            return (), ("none: the file does not say its mains frequency; pass line_freq=50 "
                        "or 60 (CLI: --line-freq)")
    else:
        base, where = float(config.notch), "notch setting"
    top = min(sfreq_filter / 2, (config.h_freq or sfreq_filter / 2) * 1.25)
    freqs = tuple(float(f) for f in np.arange(base, top, base) if notch_fits(f, sfreq_filter))
    if not freqs:
        return (), f"none: mains {base:g} Hz (from {where}) is above the band"
    shown = ", ".join(f"{f:g}" for f in freqs)
    return freqs, f"{shown} Hz (mains {base:g} Hz from {where})"


def _bandpass_seconds(sfreq_filter: float, config: PreprocessConfig) -> float:
    """Length of the band-pass FIR alone, in seconds (0 without a band-pass)."""
    if config.l_freq is None and config.h_freq is None:
        return 0.0
    return len(fir_kernel(sfreq_filter, config.l_freq, config.h_freq)) / sfreq_filter


def _filter_reach_seconds(plan: PreprocessPlan, config: PreprocessConfig) -> float:
    """How far (s) one bad input sample spreads: half the FIR (band-pass and notch)."""
    kernel = fir_kernel(plan.sfreq_filter, config.l_freq, config.h_freq, plan.notch_freqs)
    return (len(kernel) // 2) / plan.sfreq_filter


def _filter_and_resample(data, plan, config, report):
    """Resample and filter at the lower rate; ``data [..., C, T]`` float32 -> new array."""
    sfreq_out = config.sfreq or plan.sfreq_in
    n_seconds = data.shape[-1] / plan.sfreq_in
    filter_seconds = _bandpass_seconds(plan.sfreq_filter, config)
    if filter_seconds > n_seconds:
        report.append(f"band-pass filter ({filter_seconds:.1f} s) is longer than the data "
                      f"({n_seconds:.1f} s): edges may be distorted")
    kernel = fir_kernel(plan.sfreq_filter, config.l_freq, config.h_freq, plan.notch_freqs)
    return filter_and_resample(data, plan.sfreq_in, sfreq_out, kernel)


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
