"""Simulated recordings: determinism, amplitudes, task effects where they should be."""

import functools

import numpy as np
import pytest
from scipy import signal

from neurofm.simulate import simulate_recording

FAST = {"grid_mm": 25.0, "sfreq": 100.0}


def test_same_seed_same_samples_and_annotations_other_seed_differs():
    a = simulate_recording("motor_imagery", "eeg", montage="biosemi32", duration=20, seed=3,
                           subject=1, **FAST)
    b = simulate_recording("motor_imagery", "eeg", montage="biosemi32", duration=20, seed=3,
                           subject=1, **FAST)
    c = simulate_recording("motor_imagery", "eeg", montage="biosemi32", duration=20, seed=4,
                           subject=1, **FAST)
    assert np.array_equal(a.raw.get_data(), b.raw.get_data())
    assert list(a.raw.annotations.description) == list(b.raw.annotations.description)
    np.testing.assert_array_equal(a.raw.annotations.onset, b.raw.annotations.onset)
    assert not np.allclose(a.raw.get_data(), c.raw.get_data())


def test_sessions_of_one_subject_share_the_subject_but_not_the_signals():
    s0 = simulate_recording("resting", "eeg", montage="biosemi32", duration=5, subject=2,
                            session=0, **FAST)
    s1 = simulate_recording("resting", "eeg", montage="biosemi32", duration=5, subject=2,
                            session=1, **FAST)
    np.testing.assert_array_equal(
        [ch["loc"][:3] for ch in s0.raw.info["chs"]], [ch["loc"][:3] for ch in s1.raw.info["chs"]])
    assert not np.allclose(s0.raw.get_data(), s1.raw.get_data())


@pytest.mark.parametrize("modality, montage, ch_type, low, high", [
    ("eeg", "biosemi32", "eeg", 5e-6, 60e-6),          # tens of µV
    ("meg", "neuromag", "mag", 100e-15, 3e-12),        # hundreds of fT
    ("seeg", "shafts2", "seeg", 10e-6, 500e-6),
    ("ecog", "grid3x3", "ecog", 10e-6, 300e-6),
])
def test_amplitudes_are_in_realistic_si_ranges(modality, montage, ch_type, low, high):
    rec = simulate_recording("resting", modality, montage=montage, duration=10, artefacts=(),
                             **FAST)
    types = np.array(rec.raw.get_channel_types())
    assert ch_type in types
    std = np.median(rec.raw.get_data()[types == ch_type].std(axis=1))
    assert low < std < high


RIGHT_MOTOR = ["FC4", "C2", "C4", "C6", "CP4"]
LEFT_MOTOR = ["FC3", "C1", "C3", "C5", "CP3"]


@functools.cache
def _lateral_contrast(effect, subjects):
    """Mean (left-hand - right-hand) 8-30 Hz log-power over right and left motor channels."""
    diffs = []
    for subject in subjects:
        rec = simulate_recording("motor_imagery", "eeg", montage="standard_1020", duration=90,
                                 subject=subject, artefacts=(), grid_mm=15.0, sfreq=100.0,
                                 effect=effect,
                                 task_options={"classes": ("left_hand", "right_hand")})
        X, y = rec.trials()
        f, psd = signal.welch(X, 100.0, nperseg=100, axis=-1)
        power = np.log(psd[..., (f >= 8) & (f <= 30)].mean(-1))
        diffs.append(power[y == 0].mean(0) - power[y == 1].mean(0))
    diff = np.mean(diffs, axis=0)
    names = rec.raw.ch_names
    return (np.mean([diff[names.index(c)] for c in RIGHT_MOTOR]),
            np.mean([diff[names.index(c)] for c in LEFT_MOTOR]))


def test_motor_imagery_desynchronises_the_contralateral_motor_channels():
    """8-30 Hz power is lower over the right motor strip for left-hand imagery and vice versa."""
    right, left = _lateral_contrast(1.0, subjects=(0, 1))
    assert right < -0.1   # left-hand imagery: right motor cortex desynchronises
    assert left > 0.1     # right-hand imagery: left motor cortex desynchronises


def test_effect_zero_removes_the_motor_imagery_contrast():
    """Same seeds, same background: only the imagery effect differs between the two runs."""
    right1, left1 = _lateral_contrast(1.0, subjects=(0, 1))
    right0, left0 = _lateral_contrast(0.0, subjects=(0, 1))
    assert abs(left0 - right0) < 0.5 * (left1 - right1)


def _p300_difference(effect, subject):
    """Target minus non-target average ``[C, T]`` (volts) of an ERP recording, and its names."""
    rec = simulate_recording("erp", "eeg", montage="standard_1020", duration=90, artefacts=(),
                             effect=effect, subject=subject, **FAST)
    X, y = rec.trials()
    assert set(rec.raw.annotations.description) >= {"target", "non_target"}
    return X[y == 1].mean(0) - X[y == 0].mean(0), rec.raw.ch_names


def test_erp_targets_carry_a_positive_parietal_p300_of_realistic_size():
    """A scalp P300 is positive over Pz, some 5-30 µV, peaking 250-450 ms after the stimulus."""
    window = slice(25, 45)   # 250-450 ms at 100 Hz (trials start at the stimulus)
    for subject in (0, 1):
        diff, names = _p300_difference(1.0, subject)
        pz = diff[names.index("Pz")]
        assert 5e-6 < pz[window].mean() < 50e-6, subject  # positive, in µV, not mV or nV
        assert 25 <= int(np.argmax(pz)) < 45, subject      # its peak lies in the window
        assert pz[window].mean() > diff[names.index("Fp1"), window].mean() + 5e-6, subject
        without, _ = _p300_difference(0.0, subject)   # same seed, no target effect
        assert pz[window].mean() > 3 * abs(without[names.index("Pz"), window].mean()), subject


def test_intracranial_channels_are_typed_and_vigilance_is_written_as_misc():
    rec = simulate_recording("vigilance", "seeg", montage="shafts2", duration=20, **FAST)
    types = rec.raw.get_channel_types()
    assert types[:-1] == ["seeg"] * 16 and types[-1] == "misc"
    assert rec.raw.ch_names[-1] == "VIGILANCE"
    X, y = rec.trials()
    assert X.shape == (5, 16, 400) and X.dtype == np.float32
    assert np.all((y >= 0) & (y <= 1)) and rec.plan.task_type == "regression"


def test_sleep_stages_and_abnormal_labels_are_annotated():
    sleep = simulate_recording("sleep_like", "eeg", montage="biosemi32", duration=60,
                               task_options={"epoch_seconds": 10.0}, **FAST)
    stages = [d for d in sleep.raw.annotations.description if d.startswith("Sleep stage")]
    assert len(stages) == 6 and stages[0] == "Sleep stage W"
    bad = simulate_recording("abnormal", "eeg", montage="biosemi32", duration=30, subject=1,
                             **FAST)
    assert bad.plan.recording_label == "abnormal"
    assert "abnormal" in bad.raw.annotations.description
    _, y = bad.trials()
    assert y.tolist() == [1, 1, 1]


def test_bad_arguments_are_reported():
    with pytest.raises(ValueError, match="Unknown simulation task"):
        simulate_recording("dreaming")
    with pytest.raises(ValueError, match="Unknown artefact"):
        simulate_recording("resting", artefacts=("sneeze",))
    with pytest.raises(ValueError, match="classes"):
        simulate_recording("motor_imagery", duration=10, task_options={"classes": ("tongue",)},
                           **FAST)
