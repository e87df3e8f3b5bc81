"""The filter one recording gets under a :class:`~neurofm.data.spec.PreprocessSpec`, and its rules.

Continuous recordings (``neurofm prepare``, :func:`~neurofm.data.preprocess.preprocess_raw`) and
trials (evaluation, MNE epochs) are filtered by the same plan: :func:`plan_filter` decides band,
notch and rates from the spec and the recording's rate; :meth:`FilterPlan.apply` runs
:func:`neurofm.data.filters.filter_and_resample` with one FIR kernel
(:func:`neurofm.data.filters.fir_kernel`) at the lower of the recording's and the output rate.
So a model is probed on the signal it was pretrained on.

Rules (``docs/data.md``):

* **Low-pass above the recording's Nyquist frequency** (a 128-Hz Emotiv recording and the
  default 75 Hz): the recording holds nothing above half its rate, so its band ends there. The
  FIR gets no low-pass and the exact band-limited (FFT) resampler keeps nothing above the
  recording's Nyquist frequency: that is the band edge (64 Hz for 128 Hz). A
  :class:`BandLimitWarning` names both frequencies, and the note goes to the report (the
  corpus manifest's ``report`` column, ``results.json``'s ``applied`` list).
* **High-pass at or above the recording's Nyquist frequency**: nothing of the band is left; an
  error names the file.
* **Notch**: the mains frequency and its harmonics up to 1.25 x the band's top (and below the
  filter rate's Nyquist frequency). The mains frequency is ``spec.line_freq``, or with
  ``"auto"`` the recording's own.
* **Short trials**: a trial shorter than the band-pass FIR cannot be high-passed without
  distortion; it is demeaned per channel instead, the low-pass and notch still apply.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from neurofm.data.errors import RecordingError
from neurofm.data.filters import filter_and_resample, fir_kernel, notch_fits
from neurofm.data.spec import PreprocessSpec

#: Harmonics of the mains frequency are notched up to this factor times the band's top.
NOTCH_TOP_FACTOR = 1.25


class BandLimitWarning(UserWarning):
    """A recording cannot hold the whole band of the spec; its band was cut at its Nyquist."""


@dataclass(frozen=True)
class FilterPlan:
    """Band-pass, notch and rate change of one recording (or one set of equal-length trials).

    Attributes
    ----------
    source : str
        The recording, for messages.
    sfreq_in, sfreq_out : float
        Rate of the recording and of the output (Hz).
    l_freq, h_freq : float or None
        Band-pass edges as applied (None: that side open), after the rules.
    notch_freqs : tuple of float
        Notch centres as applied.
    notch_reason : str
        Where the notch frequencies come from, or why there is none.
    demean : bool
        Trials demeaned per channel instead of high-passed (short trials).
    notes : tuple of str
        What differs from the spec and why (band cut at the Nyquist frequency, high-pass
        replaced by demeaning); report lines.
    band_note : str or None
        The note of a band cut at the recording's Nyquist frequency (also in ``notes``).
    """

    source: str
    sfreq_in: float
    sfreq_out: float
    l_freq: float | None
    h_freq: float | None
    notch_freqs: tuple[float, ...]
    notch_reason: str
    demean: bool = False
    notes: tuple[str, ...] = ()
    band_note: str | None = None

    @property
    def sfreq_filter(self) -> float:
        """The rate the FIR runs at: the lower of input and output rate."""
        return min(self.sfreq_in, self.sfreq_out)

    def kernel(self) -> np.ndarray:
        """The one FIR kernel (band-pass and notch) at :attr:`sfreq_filter`, ``[K]``."""
        return fir_kernel(self.sfreq_filter, self.l_freq, self.h_freq, self.notch_freqs)

    def bandpass_seconds(self) -> float:
        """Length of the band-pass FIR alone, in seconds (0 without a band-pass)."""
        return _bandpass_seconds(self.sfreq_filter, self.l_freq, self.h_freq)

    def reach_seconds(self) -> float:
        """How far (s) one input sample spreads through the filter: half the kernel."""
        return (len(self.kernel()) // 2) / self.sfreq_filter

    def apply(self, data: np.ndarray) -> np.ndarray:
        """Filter and resample ``data [..., T]`` (float32 or float64, same type out).

        Warns :class:`BandLimitWarning` when the band was cut at the recording's Nyquist
        frequency. Returns ``[..., round(T * sfreq_out / sfreq_in)]``.
        """
        if self.band_note:
            warnings.warn(self.band_note, BandLimitWarning, stacklevel=2)
        if self.demean:
            data = data - data.mean(axis=-1, keepdims=True)
        return filter_and_resample(data, self.sfreq_in, self.sfreq_out, self.kernel())

    def describe(self) -> list[str]:
        """The plan in words, one line per step: band-pass, notch, resample, then the notes."""
        if self.l_freq is None and self.h_freq is None:
            lines = ["band-pass: none"]
        else:
            low = f"{self.l_freq:g}" if self.l_freq is not None else "0"
            high = self.h_freq if self.h_freq is not None else self.sfreq_filter / 2
            edge = "" if self.h_freq is not None else "; top edge = Nyquist frequency"
            lines = [(f"band-pass: {low}–{high:g} Hz (FIR, zero phase, at "
                      f"{self.sfreq_filter:g} Hz{edge})")]
        lines.append(f"notch: {self.notch_reason}")
        if np.isclose(self.sfreq_in, self.sfreq_out):
            lines.append(f"resample: none (stays {self.sfreq_in:g} Hz)")
        else:
            order = "before" if self.sfreq_out < self.sfreq_in else "after"
            lines.append(f"resample: {self.sfreq_in:g} Hz -> {self.sfreq_out:g} Hz (FFT, "
                         f"{order} filtering)")
        return lines + list(self.notes)


def plan_filter(sfreq_in: float, spec: PreprocessSpec, *, line_freq: float | None = None,
                trial_samples: int | None = None, source: str = "<in-memory recording>"
                ) -> FilterPlan:
    """Decide band, notch and rates for a recording at ``sfreq_in`` Hz under ``spec``.

    Parameters
    ----------
    sfreq_in : float
        The recording's sampling rate (Hz).
    spec : PreprocessSpec
    line_freq : float, optional
        The recording's own mains frequency (``info["line_freq"]``), used when
        ``spec.line_freq == "auto"``.
    trial_samples : int, optional
        Length of each trial, for trials (the short-trial rule); None for a continuous
        recording.
    source : str
        Named in messages.

    Returns
    -------
    FilterPlan

    Raises
    ------
    RecordingError
        The recording's Nyquist frequency is at or below the high-pass ``spec.l_freq``.
    """
    sfreq_in = float(sfreq_in)
    sfreq_out = float(spec.sfreq or sfreq_in)
    sfreq_filter = min(sfreq_in, sfreq_out)
    nyquist = sfreq_in / 2
    l_freq, h_freq, band_note, demean = spec.l_freq, spec.h_freq, None, False
    if l_freq is not None and l_freq >= nyquist:
        raise RecordingError(
            f"{source} is sampled at {sfreq_in:g} Hz: its Nyquist frequency {nyquist:g} Hz is at "
            f"or below the high-pass l_freq={l_freq:g} Hz, so nothing of the band is left. Leave "
            "the file out, or lower l_freq.", source=source)
    if h_freq is not None and h_freq >= nyquist:
        band_note = (f"low-pass {h_freq:g} Hz is above the Nyquist frequency of {source} "
                     f"({nyquist:g} Hz, sampled at {sfreq_in:g} Hz): the band ends at "
                     f"{nyquist:g} Hz instead of h_freq={h_freq:g} Hz (the band edge of exact "
                     "FFT resampling)")
        h_freq = None
    notes = [band_note] if band_note else []
    if trial_samples is not None and l_freq is not None:
        seconds = trial_samples / sfreq_in
        filter_seconds = _bandpass_seconds(sfreq_filter, l_freq, h_freq)
        if seconds < filter_seconds:
            notes.append(f"high-pass {l_freq:g} Hz skipped: trials ({seconds:g} s) are shorter "
                         f"than its filter ({filter_seconds:.1f} s); each trial is demeaned per "
                         "channel instead")
            l_freq, demean = None, True
    top = min(sfreq_filter / 2, (h_freq or sfreq_filter / 2) * NOTCH_TOP_FACTOR)
    notch_freqs, notch_reason = _notch(spec.line_freq, line_freq, top, sfreq_filter)
    return FilterPlan(source, sfreq_in, sfreq_out, l_freq, h_freq, notch_freqs, notch_reason,
                      demean, tuple(notes), band_note)


def _notch(setting, recording_line_freq, top: float, sfreq_filter: float):
    if setting is None:
        return (), "none (disabled)"
    if setting == "auto":
        if not recording_line_freq:
            return (), ("none: the recording does not say its mains frequency; pass line_freq=50 "
                        "or 60 (CLI: --line-freq)")
        base, where = float(recording_line_freq), "the file's line_freq"
    else:
        base, where = float(setting), "line_freq setting"
    freqs = tuple(float(f) for f in np.arange(base, top, base) if notch_fits(f, sfreq_filter))
    if not freqs:
        return (), f"none: mains {base:g} Hz (from {where}) is above the band"
    shown = ", ".join(f"{f:g}" for f in freqs)
    return freqs, f"{shown} Hz (mains {base:g} Hz from {where})"


def _bandpass_seconds(sfreq: float, l_freq: float | None, h_freq: float | None) -> float:
    if l_freq is None and h_freq is None:
        return 0.0
    return len(fir_kernel(sfreq, l_freq, h_freq)) / sfreq
