"""Small recordings built inside the data tests (a few seconds each; nothing downloaded)."""

from __future__ import annotations

import mne
import numpy as np

TUH_NAMES = ["EEG FP1-REF", "EEG FP2-REF", "EEG F3-REF", "EEG F4-REF", "EEG C3-REF",
             "EEG C4-REF", "EEG T3-REF", "EEG T4-REF", "EEG O1-REF", "EEG O2-REF", "EEG A1-REF"]
#: The 10-05 names the TUH labels above stand for.
TUH_CANONICAL = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "T7", "T8", "O1", "O2", "A1"]
EEG_NAMES = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2"]


def make_raw(names=EEG_NAMES, *, sfreq=200.0, seconds=4.0, ch_types="eeg", std_uv=20.0,
             seed=0, line_freq=None) -> mne.io.RawArray:
    """Gaussian noise of ``std_uv`` µV (stored in volts, as MNE does) on ``names``."""
    rng = np.random.default_rng(seed)
    n = round(seconds * sfreq)
    info = mne.create_info(list(names), sfreq, ch_types)
    if line_freq is not None:
        info["line_freq"] = line_freq
    return mne.io.RawArray(rng.normal(0.0, std_uv * 1e-6, (len(names), n)), info, verbose="error")


def sine_raw(freq_hz, amplitude_uv, *, names=("Cz",), sfreq=200.0, seconds=10.0,
             line_freq=None) -> mne.io.RawArray:
    """A sine of ``amplitude_uv`` µV on every channel."""
    t = np.arange(round(seconds * sfreq)) / sfreq
    data = np.tile(amplitude_uv * 1e-6 * np.sin(2 * np.pi * freq_hz * t), (len(names), 1))
    info = mne.create_info(list(names), sfreq, "eeg")
    if line_freq is not None:
        info["line_freq"] = line_freq
    return mne.io.RawArray(data, info, verbose="error")


def write_edf(raw, path) -> str:
    """Write ``raw`` as EDF (edfio through MNE) and return the path."""
    mne.export.export_raw(str(path), raw, fmt="edf", overwrite=True, verbose="error")
    return str(path)


def write_fif(raw, path) -> str:
    raw.save(str(path), overwrite=True, verbose="error")
    return str(path)


def neuromag_raw(seconds=2.0, seed=0) -> mne.io.RawArray:
    """MNE's canonical Neuromag-306 sensors (positions, coil normals; 1000 Hz) with noise:
    0.5 pT on magnetometers, 10 pT/m on gradiometers."""
    info = mne.channels.read_meg_canonical_info("neuromag")
    sfreq = info["sfreq"]
    rng = np.random.default_rng(seed)
    n = round(seconds * sfreq)
    kinds = np.array(info.get_channel_types())
    data = rng.normal(size=(len(kinds), n)) * np.where(kinds == "mag", 5e-13, 1e-11)[:, None]
    return mne.io.RawArray(data, info, verbose="error")
