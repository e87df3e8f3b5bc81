"""Checks on signal values: non-finite samples, flat channels, wrong units.

Each check works on a plain array ``data [C, T]`` in SI units (volts, tesla, T/m, as MNE stores
them) and returns a small result that preprocessing acts on and ``neurofm info`` reports.
The flat and unit checks both need the per-channel standard deviation; compute it once with
:func:`channel_std` and pass it as ``std=`` to save a pass over the data.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from neurofm.sensors import ChannelKind

#: Kinds whose amplitude is checked for a volts/µV mix-up.
VOLTAGE_KINDS = (ChannelKind.EEG, ChannelKind.SEEG, ChannelKind.ECOG)
#: Median channel std (in "volts") above which EEG/iEEG values are taken to be µV stored as V.
MAX_PLAUSIBLE_STD_V = 1e-2
#: Median channel std (in volts) below which EEG/iEEG values are taken to be V stored as µV.
MIN_PLAUSIBLE_STD_V = 1e-8
#: A channel whose std in model units is below this is flat (0.01 µV for EEG, 0.05 fT for mag).
FLAT_STD_MODEL_UNITS = 1e-4
#: With flat channels dropped, a recording must keep at least this share of its channels (half
#: of them flat is kept, more is refused as a flat signal): a recording mostly of flat channels
#: is a disconnected cap or an empty export, not brain signal.
MIN_SIGNAL_FRACTION = 0.5


@dataclass
class NonFinite:
    """Non-finite (NaN/Inf) samples of one channel."""

    channel: str
    count: int
    first_time: float  # seconds from the start of the data

    def describe(self) -> str:
        return (f"channel '{self.channel}' has {self.count} NaN/Inf samples, the first at "
                f"t = {self.first_time:.3f} s")


def find_nonfinite(data: np.ndarray, names, sfreq: float) -> list[NonFinite]:
    """Channels with NaN/Inf samples.

    Parameters
    ----------
    data : ndarray, shape [C, T]
    names : sequence of str, length C
    sfreq : float
        Sampling rate, to turn sample indices into seconds.

    Returns
    -------
    list of NonFinite
        One entry per affected channel, in channel order.
    """
    if np.isfinite(data.sum(axis=-1)).all():  # one pass, no mask; overflow falls through
        return []
    bad = ~np.isfinite(data)
    found = []
    for c in np.flatnonzero(bad.any(axis=1)):
        found.append(NonFinite(str(names[c]), int(bad[c].sum()),
                               float(np.argmax(bad[c]) / sfreq)))
    return found


def find_flat(data: np.ndarray, scales: np.ndarray, *, std: np.ndarray | None = None
              ) -> np.ndarray:
    """Channels whose standard deviation in model units is below :data:`FLAT_STD_MODEL_UNITS`.

    Parameters
    ----------
    data : ndarray, shape [C, T]
        SI units; NaN/Inf samples are ignored.
    scales : ndarray, shape [C]
        Multiplier from SI to model units per channel.
    std : ndarray, shape [C], optional
        :func:`channel_std` of ``data``, when already computed.

    Returns
    -------
    flat : ndarray of bool, shape [C]
    """
    std = channel_std(data) if std is None else std
    return ~(std * np.asarray(scales) >= FLAT_STD_MODEL_UNITS)  # all-NaN rows count as flat


@dataclass
class UnitMismatch:
    """EEG/iEEG amplitudes that are off by a factor of 1e6 (volts vs microvolts)."""

    median_std: float
    factor: float  # multiply the data by this to get volts

    def describe(self) -> str:
        if self.factor < 1:
            what = "microvolts stored as volts"
        else:
            what = "volts stored as microvolts"
        return (f"EEG/iEEG values look like {what}: median channel std is "
                f"{self.median_std:.3g} 'V' (real EEG is ~1e-5 V)")


def detect_unit_mismatch(data: np.ndarray, kinds, *, std: np.ndarray | None = None
                         ) -> UnitMismatch | None:
    """Detect EEG/iEEG data whose amplitude is off by 1e6 from plausible volts.

    Parameters
    ----------
    data : ndarray, shape [C, T]
        As read by MNE (volts for EEG/iEEG).
    kinds : sequence of int, length C
        :class:`ChannelKind` codes; only EEG, sEEG and ECoG rows are judged. Constant rows
        (std 0) and all-NaN rows are left out of the median.
    std : ndarray, shape [C], optional
        :func:`channel_std` of ``data``, when already computed.

    Returns
    -------
    UnitMismatch or None
        None when the amplitude is plausible or no channel can be judged.
    """
    rows = np.isin(np.asarray(kinds), [int(k) for k in VOLTAGE_KINDS])
    std = (channel_std(data[rows]) if std is None else np.asarray(std)[rows])
    std = std[std > 0]  # NaN (all-NaN rows) compares False too
    if not len(std):
        return None
    median_std = float(np.median(std))
    if median_std > MAX_PLAUSIBLE_STD_V:
        return UnitMismatch(median_std, 1e-6)
    if median_std < MIN_PLAUSIBLE_STD_V:
        return UnitMismatch(median_std, 1e6)
    return None


def channel_std(data: np.ndarray) -> np.ndarray:
    """Standard deviation of each row, ignoring NaN/Inf samples.

    Parameters
    ----------
    data : ndarray, shape [C, T]

    Returns
    -------
    std : ndarray of float64, shape [C]
        NaN for rows with no finite sample.

    Notes
    -----
    Rows are summed and their squares summed in one pass each without temporary arrays; a row
    whose mean is so large against its spread that this loses precision (or that holds NaN/Inf)
    is recomputed exactly.
    """
    data = np.asarray(data)
    n = data.shape[-1]
    if data.ndim != 2 or n == 0 or data.dtype.kind != "f":
        return _exact_std(np.asarray(data, dtype=np.float64).reshape(len(data), -1))
    with np.errstate(over="ignore", invalid="ignore"):
        mean = data.sum(axis=1, dtype=np.float64) / n
        mean_square = np.einsum("ij,ij->i", data, data, dtype=np.float64) / n
        var = mean_square - mean * mean
    # float64 keeps ~16 digits of mean_square; trust var only while far above that rounding
    exact = ~np.isfinite(var) | (var <= 1e-9 * mean_square)
    std = np.sqrt(np.maximum(var, 0.0))
    if exact.any():
        std[exact] = _exact_std(data[exact])
    return std


def _exact_std(data: np.ndarray) -> np.ndarray:
    """Per-row std ignoring NaN/Inf (two passes); NaN for rows with no finite sample."""
    finite = np.isfinite(data)
    if finite.all():
        return data.std(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        return np.nanstd(np.where(finite, data, np.nan), axis=1)
