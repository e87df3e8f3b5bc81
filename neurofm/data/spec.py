"""The preprocessing a model was pretrained with: one typed record, written into every file.

:class:`PreprocessSpec` says how windows are made from a recording: sampling rate, patch and
window length, band-pass, mains notch, channel kinds and the per-kind scale to model units.
``neurofm prepare`` writes it into ``corpus.json``; pretraining copies it into the model's
``config.json``; evaluation and :func:`neurofm.embed` read it back and apply it. One name per
setting: ``patch_samples`` (not ``patch_size``/``patch_seconds``/``n_steps``), ``line_freq``
(not ``notch``). :meth:`PreprocessSpec.from_dict` also reads the names that files written by
neurofm 0.1.0 used.

>>> spec = PreprocessSpec.from_dict(model_config["preprocessing"])
>>> spec.differences(corpus_spec)          # [] when they agree
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

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
BRAIN_KIND_LABELS = ("eeg", "meg_mag", "meg_grad", "seeg", "ecog")

#: Format version of the dict :meth:`PreprocessSpec.to_dict` writes.
SPEC_FORMAT = 1


@dataclass(frozen=True)
class PreprocessSpec:
    """How windows are made from a recording (what a model saw in pretraining).

    Attributes
    ----------
    sfreq : float
        Sampling rate of the windows (Hz).
    patch_samples : int
        Samples per patch ``P``.
    l_freq, h_freq : float or None
        Band-pass edges in Hz (None: that side open).
    line_freq : float, "auto" or None
        Mains frequency whose harmonics are notched: a number (50 or 60), ``"auto"`` (each
        recording's own ``info["line_freq"]``), or None (no notch).
    kinds : tuple of str
        Channel kinds kept (labels of :class:`neurofm.sensors.ChannelKind`).
    scales : dict of str -> float
        Multiplier from SI units to model units per kind.
    window_samples : int or None
        Samples per window (None: not fixed, e.g. a model that reads windows of any length).
    """

    sfreq: float = DEFAULT_SFREQ
    patch_samples: int = DEFAULT_PATCH_SAMPLES
    l_freq: float | None = 0.3
    h_freq: float | None = 75.0
    line_freq: float | str | None = None
    kinds: tuple[str, ...] = BRAIN_KIND_LABELS
    scales: dict = field(default_factory=lambda: dict(DEFAULT_SCALES))
    window_samples: int | None = None

    @property
    def patch_seconds(self) -> float:
        return self.patch_samples / self.sfreq

    @property
    def window_seconds(self) -> float | None:
        return None if self.window_samples is None else self.window_samples / self.sfreq

    def to_dict(self) -> dict:
        """Plain JSON form (``config.json``'s and ``corpus.json``'s ``preprocessing``)."""
        out = asdict(self)
        out["kinds"] = list(self.kinds)
        out["format_version"] = SPEC_FORMAT
        return out

    @classmethod
    def from_dict(cls, values: dict, *, where: str = "preprocessing") -> PreprocessSpec:
        """Read :meth:`to_dict`'s form, or the keys files of neurofm 0.1.0 used.

        0.1.0 names: ``patch_size`` (samples), ``patch_seconds``, ``notch`` (a frequency, "auto"
        or None), ``window_seconds``. Keys that describe nothing of the signal are refused with a
        message naming them and ``where``.
        """
        values = dict(values)
        version = values.pop("format_version", SPEC_FORMAT)
        if int(version) > SPEC_FORMAT:
            raise ValueError(f"{where} has preprocessing format {version}, newer than this "
                             f"neurofm reads ({SPEC_FORMAT}); upgrade neurofm.")
        sfreq = float(values.pop("sfreq", DEFAULT_SFREQ))
        patch = [values.pop(k) for k in ("patch_samples", "patch_size", "n_steps") if k in values]
        seconds = values.pop("patch_seconds", None)
        if patch:
            values["patch_samples"] = int(patch[0])
        elif seconds is not None:
            values["patch_samples"] = round(float(seconds) * sfreq)
        window_seconds = values.pop("window_seconds", None)
        if "window_samples" not in values and window_seconds is not None:
            values["window_samples"] = round(float(window_seconds) * sfreq)
        notch = values.pop("notch", None)
        if values.get("line_freq") is None and notch is not None:
            values["line_freq"] = notch
        if "kinds" in values:
            values["kinds"] = tuple(values["kinds"])
        if "scales" in values:
            values["scales"] = {k: float(v) for k, v in values["scales"].items()}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{where}: unknown preprocessing setting(s) {unknown}; known: "
                             f"{sorted(known)}.")
        return cls(sfreq=sfreq, **values)

    def differences(self, other: PreprocessSpec) -> list[str]:
        """One line per field on which ``other`` differs, e.g. ``"sfreq: 200 vs 250"``."""
        lines = []
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, float) and isinstance(theirs, float):
                if math.isclose(mine, theirs, rel_tol=1e-9):
                    continue
            elif mine == theirs:
                continue
            lines.append(f"{f.name}: {mine!r} vs {theirs!r}")
        return lines


def legacy_preprocessing(preprocessing) -> dict:
    """A model's preprocessing as the dict of neurofm 0.1.0's key names (``patch_size``,
    ``notch``...), for the code that still reads that dict (transitional).

    ``preprocessing`` is a :class:`PreprocessSpec`, a dict or None.
    """
    if preprocessing is None or isinstance(preprocessing, dict):
        return dict(preprocessing or {})
    spec = preprocessing
    return {"sfreq": spec.sfreq, "patch_size": spec.patch_samples,
            "patch_seconds": spec.patch_seconds, "l_freq": spec.l_freq, "h_freq": spec.h_freq,
            "notch": spec.line_freq, "kinds": list(spec.kinds), "scales": dict(spec.scales),
            "window_samples": spec.window_samples}
