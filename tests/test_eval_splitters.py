"""neurofm's protocols behind MOABB's splitter interface, inside a MOABB evaluation."""

import numpy as np
import pytest

pytest.importorskip("moabb")

from mne.decoding import Vectorizer
from moabb.datasets.fake import FakeDataset
from moabb.evaluations import CrossSessionEvaluation
from moabb.evaluations.splitters import CrossSessionSplitter
from moabb.paradigms import MotorImagery
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.pipeline import make_pipeline

from neurofm.eval.protocols import PROTOCOLS
from neurofm.eval.splitters import ProtocolSplitter


@pytest.fixture(scope="module")
def fake_data():
    dataset = FakeDataset(n_subjects=3, n_sessions=2, n_runs=1, duration=30, n_events=12,
                          seed=1)
    paradigm = MotorImagery(n_classes=3)
    X, y, metadata = paradigm.get_data(dataset)
    return dataset, paradigm, X, y, metadata


def test_cross_session_splitter_gives_moabbs_folds(fake_data):
    *_, y, metadata = fake_data
    ours = ProtocolSplitter("cross-session")
    folds = [(sorted(a), sorted(b)) for a, b in ours.split(y, metadata)]
    theirs = [(sorted(a), sorted(b)) for a, b in CrossSessionSplitter().split(y, metadata)]
    assert sorted(folds) == sorted(theirs) and len(folds) == 6
    assert ours.get_n_splits(metadata) == 6
    assert ours.get_metadata() == {"fold": "3-session-1"}


@pytest.mark.parametrize("protocol", [p for p in PROTOCOLS if p != "official"])
def test_every_protocol_splits_moabb_metadata_without_leaks(fake_data, protocol):
    *_, y, metadata = fake_data
    subjects = metadata["subject"].astype(str).to_numpy()
    groups = subjects + "/" + metadata["session"].astype(str).to_numpy()
    folds = list(ProtocolSplitter(protocol, n_folds=2, shots=2).split(y, metadata))
    assert folds
    for train, test in folds:
        assert np.intersect1d(train, test).size == 0
        if protocol in ("cross-subject", "loso"):
            assert not set(subjects[train]) & set(subjects[test])
        if protocol == "cross-session":
            assert not set(groups[train]) & set(groups[test])


def test_official_split_comes_from_the_metadata(fake_data):
    *_, y, metadata = fake_data
    with_split = metadata.assign(split=np.where(metadata["subject"] == 3, "test", "train"))
    ((train, test),) = ProtocolSplitter("official").split(y, with_split)
    assert set(with_split["subject"].iloc[test]) == {3} and 3 not in set(
        with_split["subject"].iloc[train])
    with pytest.raises(ValueError, match="no 'session' column"):
        list(ProtocolSplitter("loso").split(y, metadata.drop(columns="session")))


def test_a_moabb_evaluation_runs_on_a_neurofm_splitter(fake_data, tmp_path):
    dataset, paradigm, *_ = fake_data

    class NeurofmCrossSession(CrossSessionEvaluation):
        def _create_splitter(self):
            return ProtocolSplitter("cross-session")

    evaluation = NeurofmCrossSession(paradigm=paradigm, datasets=[dataset], overwrite=True,
                                     hdf5_path=str(tmp_path))
    results = evaluation.process({"lda": make_pipeline(Vectorizer(),
                                                       LinearDiscriminantAnalysis())})
    assert len(results) == 3 * 2                      # one score per subject and test session
    assert sorted(map(str, results["session"].unique())) == ["0", "1"]
    assert results["score"].between(0, 1).all()
