"""Zero-phase FIR filtering and resampling of plain arrays, fast enough for a corpus.

:func:`preprocess_raw <neurofm.data.preprocess.preprocess_raw>` spends nearly all its time
here, so these functions work on float32 arrays ``[..., T]``:

* :func:`fir_kernel` designs **one** FIR kernel holding the band-pass and the notch (the same
  firwin/Hamming designs as :func:`mne.filter.filter_data` and :func:`mne.filter.notch_filter`
  with their defaults, convolved together), cached per setting;
* :func:`apply_zero_phase` applies it at one rate by FFT convolution (odd reflection at the
  edges, MNE's ``reflect_limited``), which equals MNE's ``phase="zero"`` filtering followed by
  its notch up to float rounding;
* :func:`filter_and_resample` changes the rate and filters in one forward and one inverse FFT:
  the recording, padded by odd reflection, is transformed at its own rate, its spectrum is cut
  (or zero-extended) at the lower Nyquist frequency - exact band-limited resampling, as
  MNE's FFT method - and multiplied by the frequency response of the kernel designed at the
  lower rate. This equals resampling first and then filtering at the lower rate, without an
  anti-alias filter of its own: the kernel's low-pass is the anti-alias filter.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import mne
import numpy as np
from scipy import fft, signal

#: Largest denominator of the rate ratio ``sfreq_out / sfreq_in``; the padded length must be
#: a multiple of it. Ratios with a larger one (odd rates such as 200 x pi Hz) are replaced by
#: the nearest fraction with a denominator up to this, so the output rate is off by a relative
#: error of at most 1 / (denominator x MAX_RATIO_TERM x ratio), typically below 1e-8.
MAX_RATIO_TERM = 100_000
#: Width of each notch as a fraction of its frequency and its transition band (Hz), as in
#: :func:`mne.filter.notch_filter`'s defaults.
NOTCH_WIDTH_FRACTION = 1 / 200
NOTCH_TRANSITION_HZ = 1.0


def notch_fits(freq: float, sfreq: float) -> bool:
    """True when a notch at ``freq`` (with its width and transition) lies below Nyquist."""
    return freq + freq * NOTCH_WIDTH_FRACTION / 2 + NOTCH_TRANSITION_HZ / 2 < sfreq / 2


@lru_cache(maxsize=64)
def fir_kernel(sfreq: float, l_freq: float | None, h_freq: float | None,
               notch_freqs: tuple[float, ...] = ()) -> np.ndarray:
    """Linear-phase FIR kernel for band-pass ``l_freq``–``h_freq`` and notches, at ``sfreq``.

    Parameters
    ----------
    sfreq : float
        Sampling rate the kernel runs at (Hz).
    l_freq, h_freq : float or None
        Band-pass edges (None: that side open). Transition bands and length follow MNE's
        ``"auto"`` rules (firwin design, Hamming window).
    notch_freqs : tuple of float
        Notch centres; each is ``freq / 200`` wide with a 1-Hz transition, as MNE's notch.

    Returns
    -------
    kernel : ndarray of float64, shape [K]
        Odd length, symmetric: applied centred it has zero phase. ``[1.0]`` when there is
        nothing to filter.
    """
    kernel = np.ones(1)
    if l_freq is not None or h_freq is not None:
        kernel = mne.filter.create_filter(None, sfreq, l_freq, h_freq, fir_design="firwin",
                                          fir_window="hamming", phase="zero", verbose="error")
    if notch_freqs:
        freqs = np.asarray(notch_freqs, dtype=float)
        half = freqs * NOTCH_WIDTH_FRACTION / 2 + NOTCH_TRANSITION_HZ / 2
        notch = mne.filter.create_filter(
            None, sfreq, list(freqs + half), list(freqs - half),
            l_trans_bandwidth=NOTCH_TRANSITION_HZ / 2, h_trans_bandwidth=NOTCH_TRANSITION_HZ / 2,
            fir_design="firwin", fir_window="hamming", phase="zero", verbose="error")
        kernel = np.convolve(kernel, notch)
    kernel.setflags(write=False)  # shared through the cache
    return kernel


def apply_zero_phase(data: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Filter along the last axis with a symmetric odd-length kernel, without delay.

    Parameters
    ----------
    data : ndarray, shape [..., T]
        float32 or float64; the result has the same type.
    kernel : ndarray, shape [K]
        From :func:`fir_kernel`.

    Returns
    -------
    ndarray, shape [..., T]
        The edges are handled by odd reflection of the signal about its end samples (MNE's
        ``reflect_limited``: zeros beyond a reflection longer than the signal).
    """
    if len(kernel) == 1:
        return data * data.dtype.type(kernel[0])
    half = len(kernel) // 2
    n_times = data.shape[-1]
    reflect = min(half, n_times - 1)
    widths = [(0, 0)] * (data.ndim - 1)
    padded = np.pad(data, widths + [(reflect, reflect)], mode="reflect", reflect_type="odd")
    if reflect < half:
        padded = np.pad(padded, widths + [(half - reflect, half - reflect)])
    taps = kernel.astype(data.dtype).reshape((1,) * (data.ndim - 1) + (-1,))
    return signal.oaconvolve(padded, taps, mode="valid", axes=-1)


def resample_ratio(sfreq_in: float, sfreq_out: float) -> tuple[int, int]:
    """``(up, down)``: the fraction nearest ``sfreq_out / sfreq_in`` with ``down`` up to
    :data:`MAX_RATIO_TERM` (exact for rates such as 512, 500, 333.3 or 499.9875 Hz)."""
    ratio = Fraction(sfreq_out / sfreq_in).limit_denominator(MAX_RATIO_TERM)
    return ratio.numerator, ratio.denominator


def filter_and_resample(data: np.ndarray, sfreq_in: float, sfreq_out: float,
                        kernel: np.ndarray) -> np.ndarray:
    """Resample ``data`` to ``sfreq_out`` and filter it with ``kernel``, without delay.

    Parameters
    ----------
    data : ndarray, shape [..., T]
        float32 or float64; the result has the same type.
    sfreq_in, sfreq_out : float
        Rates in Hz.
    kernel : ndarray, shape [K]
        Symmetric odd-length FIR at ``min(sfreq_in, sfreq_out)`` (:func:`fir_kernel`).

    Returns
    -------
    ndarray, shape [..., round(T * sfreq_out / sfreq_in)]
        Sample ``j`` is at time ``j / sfreq_out`` from the first input sample. Equal rates:
        :func:`apply_zero_phase`.
    """
    if np.isclose(sfreq_in, sfreq_out):
        return apply_zero_phase(data, kernel)
    n_in = data.shape[-1]
    n_out = round(n_in * sfreq_out / sfreq_in)
    up, down = resample_ratio(sfreq_in, sfreq_out)
    # Pad by at least half the kernel (at the lower rate) with a whole number of output
    # samples on the left, so the output grid starts at input sample 0 and the circular
    # convolution never wraps the data onto itself.
    half = len(kernel) // 2
    low_per_in = min(1.0, up / down)  # samples at the lower rate per input sample
    pad_in = -(-int(np.ceil((half + 1) / low_per_in)) // down) * down
    total_in = down * fft.next_fast_len(-(-(n_in + 2 * pad_in) // down), real=True)
    total_out = total_in * up // down
    widths = [(0, 0)] * (data.ndim - 1)
    right = total_in - n_in - pad_in
    reflect = min(n_in - 1, pad_in)
    padded = np.pad(data, widths + [(reflect, reflect)], mode="reflect", reflect_type="odd")
    padded = np.pad(padded, widths + [(pad_in - reflect, right - reflect)])
    spectrum = fft.rfft(padded, axis=-1)
    n_low = min(total_in, total_out)
    bins = n_low // 2 + 1
    response = _kernel_response(kernel, n_low).astype(spectrum.real.dtype) * (up / down)
    kept = spectrum[..., :bins] * response
    if n_low % 2 == 0:  # the lower Nyquist bin holds both signs in the shorter spectrum
        kept[..., -1] *= 2.0 if total_out < total_in else 0.5
    out = fft.irfft(kept, total_out, axis=-1)
    start = pad_in * up // down
    return out[..., start:start + n_out].astype(data.dtype, copy=False)


def _kernel_response(kernel: np.ndarray, n: int) -> np.ndarray:
    """Zero-phase frequency response ``[n // 2 + 1]`` of ``kernel`` on an ``n``-point grid."""
    half = len(kernel) // 2
    circular = np.zeros(n)
    circular[:half + 1] = kernel[half:]
    circular[n - half:] = kernel[:half]
    return fft.rfft(circular).real  # a symmetric kernel has a real response
