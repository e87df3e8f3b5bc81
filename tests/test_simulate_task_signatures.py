"""Abnormal and vigilance tasks: their signature is where it should be and generalises
across subjects (a rule fitted on some subjects holds on held-out ones)."""

import functools

import numpy as np
from scipy import signal

from neurofm.simulate import simulate_recording

FAST = {"grid_mm": 25.0, "sfreq": 100.0, "artefacts": (), "montage": "biosemi32"}
LEFT = ["T7", "C3", "CP5", "P7", "O1"]
RIGHT = ["T8", "C4", "CP6", "P8", "O2"]


def _log_band_power(x, low, high, sfreq=100.0):
    """Log mean power in ``[low, high)`` Hz of ``x [..., T]``."""
    f, psd = signal.welch(x, sfreq, nperseg=int(2 * sfreq), axis=-1)
    return np.log(psd[..., (f >= low) & (f < high)].mean(-1))


@functools.cache
def _abnormal(subject, effect=1.0):
    return simulate_recording("abnormal", "eeg", duration=30, subject=subject, effect=effect,
                              **FAST)


def _delta_score(rec):
    """Largest channel log 1-4 Hz power of a recording (the focal slowing peaks somewhere)."""
    X, _ = rec.trials()
    return _log_band_power(X, 1.0, 4.0).mean(0).max()


def test_abnormal_delta_rule_fitted_on_two_subjects_holds_on_held_out_subjects():
    train = {s: _delta_score(_abnormal(s)) for s in (0, 1)}     # sub001 normal, sub002 abnormal
    assert train[1] > train[0]
    threshold = (train[0] + train[1]) / 2
    for subject in (2, 3, 4, 5):
        rec = _abnormal(subject)
        predicted = "abnormal" if _delta_score(rec) > threshold else "normal"
        assert predicted == rec.plan.recording_label, subject


def test_abnormal_recordings_have_lateral_slowing_and_spike_wave_bursts():
    rec = _abnormal(1)
    notes = list(rec.raw.annotations.description)
    assert "spike_wave" in notes
    side = next(d for d in notes if d.startswith("focal_slowing_")).rsplit("_", 1)[1]
    X, _ = rec.trials()
    delta = _log_band_power(X, 1.0, 4.0).mean(0)
    names = rec.raw.ch_names
    left = np.mean([delta[names.index(c)] for c in LEFT])
    right = np.mean([delta[names.index(c)] for c in RIGHT])
    assert (left - right if side == "left" else right - left) > 0.3
    normal = _abnormal(0)
    assert normal.plan.recording_label == "normal"
    assert "spike_wave" not in normal.raw.annotations.description


def test_effect_zero_leaves_no_abnormal_delta():
    def gap(effect):
        scores = [_delta_score(_abnormal(s, effect)) for s in (0, 1, 2, 3)]
        return np.mean(scores[1::2]) - np.mean(scores[0::2])   # abnormal - normal

    assert gap(1.0) > 1.0
    assert abs(gap(0.0)) < 0.25 * gap(1.0)


def test_vigilance_target_follows_posterior_alpha_within_each_subject():
    for subject in (0, 1):
        rec = simulate_recording("vigilance", "eeg", duration=120, subject=subject, **FAST)
        X, y = rec.trials()
        names = rec.raw.ch_names
        occipital = [names.index(c) for c in ("O1", "Oz", "O2")]
        alpha = _log_band_power(X[:, occipital], 7.0, 13.0).mean(1)
        assert np.ptp(y) > 0.3                       # one recording sweeps the range
        assert np.corrcoef(alpha, y)[0, 1] > 0.5
