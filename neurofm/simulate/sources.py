"""Source time courses: 1/f background, band-limited rhythms, envelopes and transient waveforms.

All generators take a ``numpy.random.Generator`` and return unit-scale signals (standard
deviation about 1, or peak 1 for transients); amplitudes in nAm are applied by the task.
Everything is deterministic given the generator's state.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

# A 3-pole/3-zero filter whose response follows 1/f in power over about three decades below
# Nyquist (a standard "pinking" approximation).
_PINK_B = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
_PINK_A = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])
_PINK_GAIN = float(np.sqrt(np.sum(signal.lfilter(_PINK_B, _PINK_A,
                                                  np.r_[1.0, np.zeros(1 << 16)]) ** 2)))


class PinkNoise:
    """1/f noise for many sources, generated chunk by chunk without seams.

    Parameters
    ----------
    n_sources : int
        Number of independent series S.
    rng : numpy.random.Generator
        Source of randomness; chunks must be drawn in order.
    """

    def __init__(self, n_sources: int, rng: np.random.Generator):
        self.rng = rng
        self.state = np.zeros((n_sources, len(_PINK_A) - 1), dtype=np.float32)

    def next(self, n_samples: int) -> np.ndarray:
        """The next ``n_samples`` of every series, ``[S, n_samples]`` float32, unit variance."""
        white = self.rng.standard_normal((self.state.shape[0], n_samples), dtype=np.float32)
        white *= np.float32(1.0 / _PINK_GAIN)
        out, self.state = signal.lfilter(_PINK_B, _PINK_A, white, axis=1, zi=self.state)
        return out


def band_noise(rng: np.random.Generator, n_samples: int, sfreq: float, low: float,
               high: float) -> np.ndarray:
    """A rhythm: Gaussian noise band-passed to ``[low, high]`` Hz, shape ``[n_samples]``, std 1."""
    nyq = sfreq / 2.0
    high = min(high, 0.95 * nyq)
    low = min(max(low, 0.05), high * 0.8)
    sos = signal.butter(2, [low / nyq, high / nyq], btype="bandpass", output="sos")
    out = signal.sosfilt(sos, rng.standard_normal(n_samples + int(2 * sfreq)))[int(2 * sfreq):]
    return out / (out.std() + 1e-12)


def slow_envelope(rng: np.random.Generator, n_samples: int, sfreq: float,
                  timescale: float = 2.0, depth: float = 0.3) -> np.ndarray:
    """A positive envelope ``exp(depth * z)`` with ``z`` low-passed noise, shape ``[n_samples]``.

    Gives rhythms the waxing and waning of real alpha/mu; ``timescale`` in seconds.
    """
    cutoff = min(1.0 / timescale, 0.4 * sfreq)
    sos = signal.butter(2, cutoff / (sfreq / 2.0), btype="lowpass", output="sos")
    pad = int(4 * timescale * sfreq)
    z = signal.sosfilt(sos, rng.standard_normal(n_samples + pad))[pad:]
    z /= z.std() + 1e-12
    return np.exp(depth * z)


def step_envelope(n_samples: int, sfreq: float, onsets_s, durations_s, levels,
                  baseline: float = 1.0, ramp_s: float = 0.3) -> np.ndarray:
    """Piecewise-constant gain with raised-cosine ramps, shape ``[n_samples]``.

    Between events the gain is ``baseline``; from each onset for its duration it is the level.
    """
    gain = np.full(n_samples, float(baseline))
    for onset, dur, level in zip(onsets_s, durations_s, levels):
        a = round(onset * sfreq)
        b = min(n_samples, round((onset + dur) * sfreq))
        if a >= n_samples or b <= a:
            continue
        gain[a:b] = level
        k = min(max(1, int(ramp_s * sfreq)), (b - a) // 2)
        if k:
            rise = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, k))
            gain[a:a + k] = baseline + (level - baseline) * rise
            gain[b - k:b] = level + (baseline - level) * rise
    return gain


def gaussian_pulse(n_samples: int, sfreq: float, centres_s, width_s, amplitudes) -> np.ndarray:
    """Sum of Gaussian bumps (ERP components), shape ``[n_samples]``; peak = amplitude."""
    out = np.zeros(n_samples)
    half = int(4 * width_s * sfreq) + 1
    for centre, amp in zip(np.atleast_1d(centres_s), np.broadcast_to(amplitudes, np.shape(
            np.atleast_1d(centres_s)))):
        c = round(centre * sfreq)
        a, b = max(0, c - half), min(n_samples, c + half + 1)
        if b <= a:
            continue
        t = (np.arange(a, b) - centre * sfreq) / sfreq
        out[a:b] += amp * np.exp(-0.5 * (t / width_s) ** 2)
    return out


def spike_wave(n_samples: int, sfreq: float, onsets_s, durations_s, rate_hz: float = 3.0
               ) -> np.ndarray:
    """Spike-and-wave bursts: at ``rate_hz``, a sharp negative spike followed by a slow wave.

    Returns ``[n_samples]`` with peak magnitude about 1 inside bursts, 0 elsewhere.
    """
    out = np.zeros(n_samples)
    for onset, dur in zip(onsets_s, durations_s):
        beats = onset + np.arange(0.0, dur, 1.0 / rate_hz)
        out += gaussian_pulse(n_samples, sfreq, beats, 0.012, -1.0)
        out += gaussian_pulse(n_samples, sfreq, beats + 0.12, 0.06, 0.6)
    return out


def poisson_onsets(rng: np.random.Generator, duration_s: float, rate_per_min: float,
                   min_gap_s: float = 0.0) -> np.ndarray:
    """Event times (s) of a Poisson process with a refractory gap, inside ``[0, duration_s)``."""
    times, t = [], 0.0
    if rate_per_min <= 0:
        return np.zeros(0)
    mean_gap = 60.0 / rate_per_min
    while True:
        t += min_gap_s + rng.exponential(mean_gap)
        if t >= duration_s:
            return np.asarray(times)
        times.append(t)
