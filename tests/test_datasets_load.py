"""Loading data sets by spec: simulated specs, BIDS roots, epochs folders, TrialSet checks."""

import mne
import numpy as np
import pytest

from neurofm.cli import main
from neurofm.datasets import TrialSet, list_datasets, load_dataset
from neurofm.sensors.positions import resolve_sensors
from neurofm.simulate import simulate_recording

SIM = "sim:motor_imagery?subjects=2&minutes=0.3&grid_mm=25&sfreq=100&artefacts="


def test_simulated_spec_gives_labelled_trials_with_one_layout():
    trials = load_dataset(SIM + "&montage=biosemi32&seed=1")
    assert trials.X.shape[1:] == (32, 250)     # 0.5-3.0 s at 100 Hz
    assert trials.class_names == ["left_hand", "right_hand", "feet", "rest"]
    assert sorted(set(trials.subject)) == ["sub001", "sub002"]
    assert trials.sensors.names[0] == "Fp1" and trials.sfreq == 100.0
    same = load_dataset(SIM + "&montage=biosemi32", seed=1)   # keyword overrides query
    np.testing.assert_array_equal(trials.X, same.X)


def test_same_task_through_meg_and_seeg():
    meg = load_dataset(SIM.replace("subjects=2", "subjects=1") + "&modality=meg")
    assert set(meg.sensors.kind_labels()) == {"meg_mag", "meg_grad"} and meg.X.shape[1] == 306
    assert 1e-14 < np.abs(meg.X[:, meg.sensors.kinds == 1]).std() < 1e-11
    seeg = load_dataset(SIM.replace("subjects=2", "subjects=1") + "&modality=ieeg")
    assert set(seeg.sensors.kind_labels()) == {"seeg"}
    np.testing.assert_array_equal(meg.y, seeg.y)   # same task events, other sensors


def test_regression_task_and_spec_errors():
    vig = load_dataset("sim:vigilance?subjects=1&minutes=0.2&grid_mm=25&sfreq=100")
    assert vig.task == "regression" and vig.y.dtype == np.float32 and vig.class_names is None
    with pytest.raises(ValueError, match="no labels"):
        load_dataset("sim:resting")
    with pytest.raises(ValueError, match="Unknown simulation task"):
        load_dataset("sim:dreaming")
    with pytest.raises(ValueError, match="subjects='two' is not a number"):
        load_dataset("sim:erp?subjects=two")
    with pytest.raises(FileNotFoundError, match="neither 'sim:TASK'"):
        load_dataset("/no/such/folder")
    assert "aeon:FingerMovements" in list_datasets() and "sim:erp" in list_datasets()


def test_bids_root_written_by_the_cli_loads_with_its_trial_window(tmp_path):
    rc = main(["simulate", str(tmp_path), "--task", "motor_imagery", "--montage", "biosemi32",
               "--subjects", "2", "--minutes", "0.3", "--format", "bids", "--sfreq", "100",
               "--grid-mm", "25", "--artefacts", "none"])
    assert rc == 0
    trials = load_dataset(str(tmp_path))
    direct = load_dataset(SIM + "&montage=biosemi32")
    assert trials.class_names == direct.class_names
    assert trials.X.shape == direct.X.shape
    np.testing.assert_array_equal(trials.y, direct.y)
    assert sorted(set(trials.subject)) == ["sub-001", "sub-002"]
    # EDF stores values with 16-bit resolution; the trials match the simulation closely.
    assert np.abs(trials.X - direct.X).max() < 1e-3 * np.abs(direct.X).max()
    two = load_dataset(str(tmp_path), events=["left_hand", "right_hand"], tmin=0.0, tmax=1.0)
    assert two.class_names == ["left_hand", "right_hand"] and two.X.shape[2] == 100


def test_epochs_folder(tmp_path):
    for subject in range(2):
        rec = simulate_recording("erp", "eeg", montage="biosemi32", duration=15, sfreq=100,
                                 grid_mm=25, subject=subject)
        events, event_id = mne.events_from_annotations(
            rec.raw, event_id={"target": 2, "non_target": 1}, verbose="error")
        epochs = mne.Epochs(rec.raw, events, event_id, tmin=0, tmax=0.5, baseline=None,
                            preload=True, verbose="error")
        epochs.save(tmp_path / f"sub-0{subject + 1}_task-erp-epo.fif", verbose="error")
    trials = load_dataset(str(tmp_path))
    assert trials.class_names == ["non_target", "target"]
    assert trials.X.shape[1:] == (32, 51)
    assert sorted(set(trials.subject)) == ["sub-01", "sub-02"]
    np.testing.assert_allclose(trials.sensors.pos, resolve_sensors(epochs.info).pos)


def test_trialset_checks_its_fields():
    layout = resolve_sensors(mne.create_info(["C3", "C4"], 100.0, "eeg"))
    ok = TrialSet("x", np.zeros((3, 2, 10)), [0, 1, 0], ["a"] * 3, 100.0, layout,
                  class_names=["l", "r"], split=["train", "train", "test"])
    assert ok.subset(ok.split == "train").X.shape == (2, 2, 10)
    assert "train=2 test=1" in ok.summary()
    with pytest.raises(ValueError, match="sensors describe 2 channels but X has 3"):
        TrialSet("x", np.zeros((3, 3, 10)), [0, 1, 0], ["a"] * 3, 100.0, layout)
    with pytest.raises(ValueError, match="y has 2 entries for 3 trials"):
        TrialSet("x", np.zeros((3, 2, 10)), [0, 1], ["a"] * 3, 100.0, layout)
    with pytest.raises(ValueError, match="split values"):
        TrialSet("x", np.zeros((1, 2, 10)), [0], ["a"], 100.0, layout, split=["dev"])
    with pytest.raises(ValueError, match="label 2 has no entry"):
        TrialSet("x", np.zeros((1, 2, 10)), [2], ["a"], 100.0, layout, class_names=["l", "r"])
