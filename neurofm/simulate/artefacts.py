"""Sensor noise and artefacts, added in sensor space after the forward model.

Amplitudes are given in "microvolt equivalents" and converted per channel kind with
:data:`UNIT_PER_MICROVOLT`, chosen so that the brain background has a similar relative size on
every kind (EEG ~15 µV, magnetometers ~600 fT, gradiometers ~12 pT/m = 120 fT/cm).

* ``blink``: 15 per minute, 100 µV at the eyes, decaying with distance (EEG and MEG only);
* ``muscle``: bursts of 20-100 Hz noise on lateral (temporal) sensors, 3 per minute, 0.5-2 s;
* ``line``: mains hum at ``line_freq`` on every channel, skipped when above Nyquist.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from neurofm.simulate import sources as S
from neurofm.simulate.sensor_sets import HEAD_ORIGIN, HEAD_RADIUS

#: SI units per microvolt-equivalent, by MNE channel type.
UNIT_PER_MICROVOLT = {"eeg": 1e-6, "seeg": 1e-6, "ecog": 1e-6, "mag": 4e-14, "grad": 8e-13}
#: White sensor noise (µV-equivalent standard deviation) by MNE channel type.
SENSOR_NOISE_UV = {"eeg": 1.0, "seeg": 2.0, "ecog": 2.0, "mag": 0.5, "grad": 0.5}
#: Artefact names accepted by :func:`add_artefacts`.
ARTEFACTS = ("blink", "muscle", "line")


def channel_units(ch_types) -> np.ndarray:
    """SI units per µV-equivalent for each channel type ``[C]``."""
    return np.array([UNIT_PER_MICROVOLT[t] for t in ch_types])


def sensor_noise(rng, ch_types, n_samples: int) -> np.ndarray:
    """White Gaussian sensor noise ``[C, n_samples]`` in SI units."""
    scale = np.array([SENSOR_NOISE_UV[t] for t in ch_types]) * channel_units(ch_types)
    return rng.standard_normal((len(scale), n_samples)) * scale[:, None]


def check_artefacts(names) -> tuple[str, ...]:
    """Validate artefact names (``ValueError`` listing the valid ones)."""
    names = tuple(names)
    bad = [a for a in names if a not in ARTEFACTS]
    if bad:
        raise ValueError(f"Unknown artefact(s) {bad}; use any of {', '.join(ARTEFACTS)} "
                         f"(or none).")
    return names


def add_artefacts(data, rng, positions, ch_types, sfreq: float, names=ARTEFACTS,
                  line_freq: float = 50.0) -> list[tuple[float, float, str]]:
    """Add artefacts to ``data [C, T]`` in place; returns annotations (onset, duration, name).

    Parameters
    ----------
    data : ndarray, shape [C, T]
        Sensor signals in SI units.
    rng : numpy.random.Generator
    positions : ndarray, shape [C, 3]
        Sensor positions (head frame, metres).
    ch_types : list of str
        MNE channel types (``eeg``, ``mag``, ``grad``, ``seeg``, ``ecog``).
    sfreq : float
    names : iterable of str
        Which artefacts (see :data:`ARTEFACTS`).
    line_freq : float
        Mains frequency in Hz.
    """
    names = check_artefacts(names)
    n_ch, n = data.shape
    units = channel_units(ch_types)
    extracranial = np.array([t in ("eeg", "mag", "grad") for t in ch_types])
    rel = (positions - np.asarray(HEAD_ORIGIN)) / HEAD_RADIUS
    annotations = []
    if "blink" in names and extracranial.any():
        eyes = np.array([[-0.3, 0.95, -0.35], [0.3, 0.95, -0.35]])
        dist = np.min(np.linalg.norm(rel[:, None, :] - eyes[None], axis=2), axis=1)
        pattern = 100.0 * np.exp(-dist / 0.35) * units * extracranial
        onsets = S.poisson_onsets(rng, n / sfreq, 15.0, min_gap_s=0.5)
        wave = S.gaussian_pulse(n, sfreq, onsets + 0.15, 0.06, 1.0)
        data += pattern[:, None] * wave[None, :]
        annotations += [(float(t), 0.3, "blink") for t in onsets]
    if "muscle" in names and extracranial.any() and sfreq > 60:
        lateral = np.clip((np.abs(rel[:, 0]) - 0.5) / 0.4, 0.0, 1.0) * extracranial
        onsets = S.poisson_onsets(rng, n / sfreq, 3.0, min_gap_s=1.0)
        lengths = rng.uniform(0.5, 2.0, len(onsets))
        gain = S.step_envelope(n, sfreq, onsets, lengths, np.ones(len(onsets)), baseline=0.0,
                               ramp_s=0.1)
        high = min(100.0, 0.45 * sfreq)
        sos = signal.butter(4, [20.0 / (sfreq / 2), high / (sfreq / 2)], "bandpass",
                            output="sos")
        burst = signal.sosfilt(sos, rng.standard_normal((n_ch, n)), axis=1)
        burst /= burst.std(axis=1, keepdims=True) + 1e-12
        data += (20.0 * lateral * units)[:, None] * burst * gain[None, :]
        annotations += [(float(t), float(d), "muscle") for t, d in zip(onsets, lengths)]
    if "line" in names and line_freq < sfreq / 2:
        t = np.arange(n) / sfreq
        amp = rng.uniform(0.5, 3.0, n_ch) * units
        phase = rng.uniform(0, 2 * np.pi, n_ch)
        data += amp[:, None] * np.sin(2 * np.pi * line_freq * t[None, :] + phase[:, None])
    return annotations
