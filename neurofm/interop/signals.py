"""Arrays from other tools -> a model's inputs: channel descriptions to an MNE ``Info``, and the
model's preprocessing applied to ``[n, C, T]`` trials.

scikit-learn, MOABB and braindecode hand a model plain arrays; the channels are described apart
(an MNE ``Info``, or braindecode's ``chs_info``: the ``info["chs"]`` list). A
:class:`TrialPreprocessor` reads the sensors once and then turns each array into patched windows
with :func:`neurofm.eval.inputs.prepare_trials`, the code evaluation runs: the model's channel
kinds, scale to model units, band-pass, notch and sampling rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import mne
import numpy as np

from neurofm.data.spec import PreprocessSpec
from neurofm.eval.inputs import ModelInputs, prepare_trials
from neurofm.sensors.positions import resolve_sensors

#: Multiplier from each accepted unit of the arrays to SI (volts for EEG). MOABB's arrays are
#: in µV; MNE and braindecode keep volts.
UNITS = {"V": 1.0, "uV": 1e-6, "µV": 1e-6}


def info_from_chs(chs_info: Sequence[dict], sfreq: float) -> mne.Info:
    """An MNE ``Info`` from braindecode's ``chs_info`` (the ``info["chs"]`` of a recording).

    Parameters
    ----------
    chs_info : sequence of dict
        One dict per channel: full MNE channel dicts (kind, coil type, unit, ``loc``: the
        positions stored in the file are kept), or dicts with only ``ch_name`` (EEG channels,
        positions from the standard montage by name).
    sfreq : float
        Sampling rate of the arrays (Hz).
    """
    names = [ch["ch_name"] for ch in chs_info]
    info = mne.create_info(names, float(sfreq), "eeg")
    full = set(info["chs"][0]) if names else set()
    if names and all(full <= set(ch) for ch in chs_info):
        with info._unlock():
            info["chs"] = [{key: ch[key] for key in full} for ch in chs_info]
            for ch in info["chs"]:
                ch["loc"] = np.array(ch["loc"], dtype=np.float64)
        info._update_redundant()
        info._check_consistency()
    return info


class TrialPreprocessor:
    """The model's preprocessing, applied to arrays of trials from one montage.

    Parameters
    ----------
    info : mne.Info
        The channels of the arrays (all of them, in order) and their sampling rate.
    spec : PreprocessSpec
        The model's preprocessing.
    units : {"V", "uV"}
        Unit of the arrays' EEG values ("uV" for MOABB's arrays).
    source : str
        Named in messages.

    Attributes
    ----------
    picks : ndarray of int
        The array rows of brain channels (others, such as EOG, are left out).
    layout : SensorLayout
        Their sensors (positions from the file, else the standard montage by name).
    """

    def __init__(self, info: mne.Info, spec: PreprocessSpec, *, units: str = "V",
                 source: str = "the trials"):
        if units not in UNITS:
            raise ValueError(f"units must be one of {list(UNITS)}; got {units!r}.")
        self.info, self.spec, self.units, self.source = info, spec, units, source
        self.layout = resolve_sensors(info)
        index = {name: i for i, name in enumerate(info["ch_names"])}
        self.picks = np.array([index[name] for name in self.layout.names], dtype=int)

    @property
    def sfreq(self) -> float:
        """Sampling rate of the arrays (Hz)."""
        return float(self.info["sfreq"])

    def __call__(self, X, units: str | None = None) -> ModelInputs:
        """Patched windows of ``X`` in model units.

        Parameters
        ----------
        X : array-like, shape [n, C, T]
            Trials at :attr:`sfreq`, ``C`` the channels of :attr:`info`.
        units : {"V", "uV"}, optional
            Unit of ``X`` (default: :attr:`units`).

        Returns
        -------
        ModelInputs
            ``x [n, C', N, P]``, ``patch_valid [n, N]``, the sensors kept and the steps applied.
        """
        X = np.asarray(X)
        n_chans = len(self.info["ch_names"])
        if X.ndim != 3 or X.shape[1] != n_chans:
            raise ValueError(f"{self.source}: expected trials [n, {n_chans} channels, T] (the "
                             f"channels of the info); got shape {X.shape}.")
        data = X[:, self.picks].astype(np.float64) * UNITS[units or self.units]
        return prepare_trials(data, self.sfreq, self.layout, self.spec,
                              line_freq=self.info.get("line_freq"), source=self.source)
