"""TrialSet: the metadata table, derived trial sets, and signals behind a reader."""

import numpy as np
import pytest
from eval_helpers import eeg_layout

from neurofm.datasets import ArraySignals, TrialSet, TrialSignals
from neurofm.datasets.trials import CroppedSignals, TrialSubsetSignals


class CountingReader:
    """Signals read on demand (as a lazy, on-disk trial set would); counts the trials read."""

    def __init__(self, array):
        self.array, self.reads = array, 0

    @property
    def shape(self):
        return self.array.shape

    def read(self, index):
        out = self.array[index]
        self.reads += len(out)
        return out.astype(np.float32)


def _trials(X=None, **kw):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 8, 100)).astype(np.float32) * 1e-5 if X is None else X
    options = {"name": "t", "X": X, "y": [0, 1, 0, 1, 0, 1], "subject": ["a"] * 3 + ["b"] * 3,
               "sfreq": 100.0, "sensors": eeg_layout(), "class_names": ["left", "right"],
               "session": ["s1", "s1", "s2", "s1", "s2", "s2"], "run": list("012012"),
               "source": [f"f{i}.fif" for i in range(6)], "onset": np.arange(6) * 10.0}
    return TrialSet(**{**options, **kw})


def test_metadata_columns_defaults_and_old_constructor():
    trials = _trials()
    assert list(trials.metadata.columns) == ["subject", "session", "run", "source", "onset",
                                             "label", "split"]
    assert trials.metadata["label"].tolist() == ["left", "right"] * 3
    assert trials.groups().tolist()[:3] == [["a", "s1"], ["a", "s1"], ["a", "s2"]]
    assert trials.describe_trial(4) == ("trial 4 (subject b, session s2, run 1, file f4.fif, "
                                        "onset 40.00 s)")
    # the 0.1 positional constructor still works; unknown session/run/source/onset default
    old = TrialSet("x", np.zeros((2, 8, 10)), [0, 1], ["a", "b"], 100.0, eeg_layout(),
                   split=["train", "test"])
    assert old.session.tolist() == ["0", "0"] and old.metadata["source"].tolist() == ["", ""]
    assert np.isnan(old.metadata["onset"]).all() and old.describe_trial(1) == \
        "trial 1 (subject b, session 0, run 0)"
    assert old.split.tolist() == ["train", "test"] and _trials().split is None


def test_split_accepts_validation_and_refuses_other_values():
    trials = _trials(split=["train", "val", "test", "train", "val", "test"])
    assert "train=2 val=2 test=2" in trials.summary()
    with pytest.raises(ValueError, match=r"'train', 'val' or 'test', got \['dev'\]"):
        _trials(split=["dev"] * 6)
    with pytest.raises(ValueError, match="session has 2 entries for 6 trials"):
        _trials(session=["s1", "s2"])
    resplit = trials.with_split(["test"] * 6)
    assert (resplit.split == "test").all() and resplit.metadata["source"].tolist()[0] == "f0.fif"


def test_subset_drop_and_crop_keep_rows_with_their_trials():
    trials = _trials()
    sub = trials.subset([4, 1])
    assert sub.metadata["source"].tolist() == ["f4.fif", "f1.fif"]
    np.testing.assert_array_equal(sub.X, trials.X[[4, 1]])
    dropped = trials.drop([2], reason="NaN/Inf samples")
    assert len(dropped) == 5 and "f2.fif" not in dropped.metadata["source"].tolist()
    assert dropped.dropped.to_dict(orient="records") == [
        {"subject": "a", "session": "s2", "run": "2", "source": "f2.fif", "onset": 20.0,
         "label": "left", "split": "", "reason": "NaN/Inf samples"}]
    again = dropped.subset([0, 1])
    assert len(again.dropped) == 1                      # the record follows derived sets
    cropped = trials.crop(0.2, 0.7)
    assert cropped.n_times == 50
    np.testing.assert_array_equal(cropped.X, trials.X[..., 20:70])
    assert cropped.metadata["onset"].tolist() == pytest.approx(np.arange(6) * 10.0 + 0.2)
    with pytest.raises(ValueError, match=r"window 0.5-1.5 s does not fit in trials of 1 s"):
        trials.crop(0.5, 1.5)


def test_nonfinite_trials_are_found_batch_by_batch():
    X = np.zeros((6, 8, 100), np.float32)
    X[3, 2, 10] = np.nan
    X[5, 0, 0] = np.inf
    assert _trials(X=X).nonfinite(batch_size=2).tolist() == [3, 5]


def test_signals_behind_a_reader_stay_lazy():
    base = np.random.default_rng(1).standard_normal((6, 8, 100)).astype(np.float32)
    reader = CountingReader(base)
    assert isinstance(reader, TrialSignals) and not isinstance(base, TrialSignals)
    trials = _trials(X=reader)
    assert reader.reads == 0 and trials.n_times == 100
    sub = trials.subset([5, 0]).crop(0.1, 0.3)
    assert isinstance(sub.signals, CroppedSignals)
    assert isinstance(sub.signals.base, TrialSubsetSignals) and reader.reads == 0
    np.testing.assert_array_equal(sub.X, base[[5, 0]][..., 10:30])
    assert reader.reads == 2
    assert isinstance(_trials().signals, ArraySignals)
    assert [i.tolist() for i, _ in trials.batches(4)] == [[0, 1, 2, 3], [4, 5]]
