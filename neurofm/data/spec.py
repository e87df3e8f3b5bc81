"""The preprocessing a model was pretrained with: one typed record, written into every file.

:class:`PreprocessSpec` says how windows are made from a recording: sampling rate, patch and
window length, band-pass, mains notch, channel kinds and the per-kind scale to model units.
``neurofm prepare`` writes it into ``corpus.json``; pretraining copies it into the model's
``config.json``; evaluation reads it back from the model and applies it. One name per
setting: ``patch_samples`` (not ``patch_size``/``patch_seconds``/``n_steps``), ``line_freq``
(not ``notch``). :meth:`PreprocessSpec.from_dict` also reads the names that files written by
neurofm 0.1.0 used.

One check compares two records, :func:`check_compatible`: training (corpus against model),
evaluation (the trials' preprocessing against the model's) and
:func:`neurofm.hub.check_preprocessing` all call it, and its error names the field, both values
and the fix.

>>> spec = PreprocessSpec.from_dict(model_config["preprocessing"])
>>> spec.differences(corpus_spec)          # [] when they agree
>>> check_compatible(corpus_spec, spec)    # ValueError naming sfreq / patch_samples if they differ
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields

from neurofm.sensors.kinds import BRAIN_KINDS, ChannelKind
from neurofm.strict import check_keys

#: Sampling rate (Hz) of the models neurofm builds unless told otherwise (CBraMod, LaBraM: 200).
DEFAULT_SFREQ = 200.0
#: Samples per patch at :data:`DEFAULT_SFREQ` (1 s).
DEFAULT_PATCH_SAMPLES = 200

#: Multiplier from SI units to model units, per channel kind.
#: EEG/iEEG: volts x 1e4, so 1.0 = 100 µV (CBraMod/LaBraM units).
#: MEG: chosen so that brain activity has about the spread EEG has in these units. Check (see
#: docs/data.md and tests/test_data_scales.py): 400 random 10-nAm dipoles in a spherical head seen
#: by MNE's canonical Neuromag-306 helmet and 60 10-20 electrodes give median channel stds of
#: 8.1 µV (EEG), 0.52 pT (mag) and 9.8 pT/m (grad); with 1.0 = 5 pT for magnetometers (x 2e11)
#: and 1.0 = 100 pT/m (1 pT/cm) for planar gradiometers (x 1e10) these are 0.081, 0.10 and 0.098.
DEFAULT_SCALES = {"eeg": 1e4, "seeg": 1e4, "ecog": 1e4, "meg_mag": 2e11, "meg_grad": 1e10}
#: Physical size of 1.0 model unit per kind, for reports.
SCALE_UNITS = {"eeg": "1.0 = 100 µV", "seeg": "1.0 = 100 µV", "ecog": "1.0 = 100 µV",
               "meg_mag": "1.0 = 5 pT", "meg_grad": "1.0 = 100 pT/m"}
BRAIN_KIND_LABELS = tuple(k.label for k in sorted(BRAIN_KINDS))

#: Format version of the dict :meth:`PreprocessSpec.to_dict` writes.
SPEC_FORMAT = 1
#: The fields a model's weights are tied to: data that differ in these cannot be fed to it.
MODEL_FIELDS = ("sfreq", "patch_samples")


@dataclass(frozen=True)
class PreprocessSpec:
    """How windows are made from a recording (what a model saw in pretraining).

    Attributes
    ----------
    sfreq : float or None
        Sampling rate of the windows (Hz). None keeps each recording's own rate (inspection
        in the data layer only; corpora and models always record a rate).
    patch_samples : int
        Samples per patch ``P``.
    l_freq, h_freq : float or None
        Band-pass edges in Hz (None: that side open). ``h_freq`` must be below half of
        ``sfreq``. A recording whose own Nyquist frequency is at or below ``h_freq`` gets its
        Nyquist frequency as the band edge instead (see ``docs/data.md``).
    line_freq : float, "auto" or None
        Mains frequency whose harmonics are notched: a number (50 or 60), ``"auto"`` (each
        recording's own ``info["line_freq"]``), or None (no notch).
    kinds : tuple of str
        Channel kinds kept (labels of :class:`neurofm.sensors.ChannelKind`).
    scales : dict of str -> float
        Multiplier from SI units to model units per kind (default :data:`DEFAULT_SCALES`).
    window_samples : int or None
        Samples per window (None: not fixed, e.g. a model that reads windows of any length).

    Raises
    ------
    ValueError
        On construction, for a setting that cannot work (band edges in the wrong order, a
        low-pass at or above half of ``sfreq``, an unknown kind, a kept kind without a scale),
        naming the field.
    """

    sfreq: float | None = DEFAULT_SFREQ
    patch_samples: int = DEFAULT_PATCH_SAMPLES
    l_freq: float | None = 0.3
    h_freq: float | None = 75.0
    line_freq: float | str | None = None
    kinds: tuple[str, ...] = BRAIN_KIND_LABELS
    scales: dict = field(default_factory=lambda: dict(DEFAULT_SCALES))
    window_samples: int | None = None

    def __post_init__(self):
        def put(name, value):  # normalise a field of this frozen instance
            object.__setattr__(self, name, value)

        put("sfreq", None if self.sfreq is None else float(self.sfreq))
        put("patch_samples", int(self.patch_samples))
        put("window_samples", None if self.window_samples is None else int(self.window_samples))
        for name in ("l_freq", "h_freq"):
            value = getattr(self, name)
            put(name, None if value is None else float(value))
        put("kinds", tuple(ChannelKind.from_label(k).label if isinstance(k, str)
                           else ChannelKind(int(k)).label for k in self.kinds))
        put("scales", {str(k): float(v) for k, v in self.scales.items()})
        if self.line_freq not in (None, "auto"):
            if isinstance(self.line_freq, str) or not self.line_freq > 0:
                raise ValueError(f"PreprocessSpec.line_freq must be a frequency in Hz (50, 60), "
                                 f"'auto' (each recording's own) or None (no notch); got "
                                 f"{self.line_freq!r}.")
            put("line_freq", float(self.line_freq))
        if self.patch_samples < 1:
            raise ValueError(f"PreprocessSpec.patch_samples must be at least 1; got "
                             f"{self.patch_samples}.")
        if self.window_samples is not None and self.window_samples % self.patch_samples:
            raise ValueError(f"PreprocessSpec.window_samples ({self.window_samples}) must be a "
                             f"whole number of patches of {self.patch_samples} samples.")
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(f"PreprocessSpec: l_freq ({self.l_freq:g} Hz) must be below h_freq "
                             f"({self.h_freq:g} Hz).")
        if self.sfreq is not None and self.h_freq is not None and self.h_freq >= self.sfreq / 2:
            raise ValueError(f"PreprocessSpec: h_freq ({self.h_freq:g} Hz) must be below half the "
                             f"output rate sfreq ({self.sfreq:g} Hz); lower h_freq or raise sfreq.")
        missing = [k for k in self.kinds if k in DEFAULT_SCALES and k not in self.scales]
        if missing:
            raise ValueError(f"PreprocessSpec.scales has no entry for kind(s) {missing}; give "
                             "a multiplier from SI units to model units for each kept kind.")

    @property
    def patch_seconds(self) -> float | None:
        return None if self.sfreq is None else self.patch_samples / self.sfreq

    @property
    def window_seconds(self) -> float | None:
        if self.window_samples is None or self.sfreq is None:
            return None
        return self.window_samples / self.sfreq

    def to_dict(self) -> dict:
        """Plain JSON form (``config.json``'s and ``corpus.json``'s ``preprocessing``)."""
        out = asdict(self)
        out["kinds"] = list(self.kinds)
        out["format_version"] = SPEC_FORMAT
        return out

    @classmethod
    def from_dict(cls, values: dict, *, where: str = "preprocessing") -> PreprocessSpec:
        """Read :meth:`to_dict`'s form, or the keys files of neurofm 0.1.0 used.

        0.1.0 names: ``patch_size`` (samples), ``patch_seconds``, ``window_seconds`` and
        ``notch`` (a frequency: notch there; ``"auto"``: at ``line_freq`` when given, else at
        each recording's own; None: no notch, whatever ``line_freq`` says). Keys that describe
        nothing of the signal are refused with a message naming them and ``where``.
        """
        values = dict(values)
        version = values.pop("format_version", SPEC_FORMAT)
        if int(version) > SPEC_FORMAT:
            raise ValueError(f"{where} has preprocessing format {version}, newer than this "
                             f"neurofm reads ({SPEC_FORMAT}); upgrade neurofm.")
        sfreq = values.pop("sfreq", DEFAULT_SFREQ)
        sfreq = None if sfreq is None else float(sfreq)
        patch = [values.pop(k) for k in ("patch_samples", "patch_size", "n_steps") if k in values]
        seconds = values.pop("patch_seconds", None)
        if patch:
            values["patch_samples"] = int(patch[0])
        elif seconds is not None and sfreq is not None:
            values["patch_samples"] = round(float(seconds) * sfreq)
        window_seconds = values.pop("window_seconds", None)
        if "window_samples" not in values and window_seconds is not None and sfreq is not None:
            values["window_samples"] = round(float(window_seconds) * sfreq)
        if "notch" in values:
            values["line_freq"] = notch_to_line_freq(values.pop("notch"), values.get("line_freq"))
        check_keys(values, [f.name for f in fields(cls)], where=where)
        return cls(sfreq=sfreq, **values)

    def differences(self, other: PreprocessSpec) -> list[str]:
        """One line per field on which ``other`` differs, e.g. ``"sfreq: 200.0 vs 250.0"``."""
        return [f"{name}: {getattr(self, name)!r} vs {getattr(other, name)!r}"
                for name in self.differing_fields(other)]

    def differing_fields(self, other: PreprocessSpec) -> list[str]:
        """Names of the fields on which ``other`` differs (floats compared to 1e-9)."""
        return [f.name for f in fields(self)
                if not _same(getattr(self, f.name), getattr(other, f.name))]


def notch_to_line_freq(notch, line_freq=None):
    """The ``line_freq`` meant by 0.1.0's ``notch`` setting (with its ``line_freq``).

    ``notch=None``: no notch (None). ``"auto"``: ``line_freq`` when given, else ``"auto"``.
    A number: that frequency.
    """
    if notch is None:
        return None
    if notch == "auto":
        return "auto" if line_freq is None else line_freq
    return notch


def as_spec(value, *, where: str = "preprocessing") -> PreprocessSpec:
    """A :class:`PreprocessSpec` from a spec, a dict in any known form, or None (defaults)."""
    if isinstance(value, PreprocessSpec):
        return value
    if value is None:
        return PreprocessSpec()
    if isinstance(value, dict):
        return PreprocessSpec.from_dict(value, where=where)
    raise TypeError(f"{where} must be a PreprocessSpec or a dict; got {type(value).__name__}.")


def check_compatible(data: PreprocessSpec | Mapping, model: PreprocessSpec, *,
                     fields: tuple[str, ...] = MODEL_FIELDS, data_name: str = "the data",
                     model_name: str = "the model") -> None:
    """Raise ``ValueError`` when ``data`` differ from ``model`` in any of ``fields``.

    Parameters
    ----------
    data : PreprocessSpec or mapping
        How the data were (or will be) prepared; a mapping gives only what is known of them
        (``{"sfreq": 256.0, "patch_samples": 200}``) and only its keys are compared.
    model : PreprocessSpec
        What the model was pretrained with.
    fields : tuple of str
        Fields that must agree (default :data:`MODEL_FIELDS`: sampling rate and patch length,
        which the weights are tied to).
    data_name, model_name : str
        Used in the message (``"the data (corpus /data/tueg)"``, ``"criss_cross_base"``).

    Raises
    ------
    ValueError
        One sentence per differing field: the field, both values and the fix.
    """
    have = (data.to_dict() if isinstance(data, PreprocessSpec) else dict(data))
    differing = [name for name in fields if name in have
                 and not _same(have[name], getattr(model, name))]
    if differing:
        raise ValueError(" ".join(_mismatch(name, have[name], model, data_name, model_name)
                                  for name in differing))


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


def _mismatch(name, have, model, data_name, model_name) -> str:
    want = getattr(model, name)
    if name == "sfreq" and have is not None and want is not None:
        return (f"sfreq: {model_name} was pretrained at {want:g} Hz but {data_name} are at "
                f"{have:g} Hz (sfreq={want:g} Hz vs sfreq={have:g} Hz). Resample to {want:g} Hz: "
                f"raw.resample({want:g}), PreprocessConfig(sfreq={want:g}) or neurofm prepare "
                f"--sfreq {want:g}.")
    if name == "patch_samples":
        seconds = f" ({want / model.sfreq:g} s at {model.sfreq:g} Hz)" if model.sfreq else ""
        fix = f"patch_seconds={want / model.sfreq:g}" if model.sfreq else f"patch_samples={want}"
        return (f"patch_samples: {model_name} expects patches of {want} samples{seconds} but "
                f"{data_name} have {have} (patch_samples={want} vs patch_samples={have}). Window "
                f"with {fix} (neurofm.data.window_recording, neurofm prepare --patch-seconds).")
    return (f"{name}: {model_name} was pretrained with {name}={want!r} but {data_name} have "
            f"{name}={have!r}. Prepare the data with the model's {name}.")
