"""Protocols: disjoint subject folds, leak checker, within-subject / few-shot / official splits."""

import numpy as np
import pytest

from neurofm.eval.protocols import (
    SubjectLeakError,
    check_no_subject_leak,
    make_folds,
    validation_split,
)

SUBJECTS = np.repeat([f"S{i}" for i in range(7)], 12)
Y = np.tile(np.repeat([0, 1, 2], 4), 7)


@pytest.mark.parametrize("protocol", ["cross-subject", "loso"])
def test_subject_folds_are_disjoint_and_cover_every_subject_once(protocol):
    folds = make_folds(protocol, y=Y, subjects=SUBJECTS, seed=3, n_folds=3)
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested) == list(range(len(Y)))  # every trial tested exactly once
    for f in folds:
        assert f.subject_level
        assert not set(SUBJECTS[f.train]) & set(SUBJECTS[f.test])
        assert np.intersect1d(f.train, f.test).size == 0
        assert f.train.size + f.test.size == len(Y)
    assert len(folds) == (3 if protocol == "cross-subject" else 7)


def test_cross_subject_seed_changes_assignment_not_disjointness():
    a = make_folds("cross-subject", y=Y, subjects=SUBJECTS, seed=0, n_folds=3)
    b = make_folds("cross-subject", y=Y, subjects=SUBJECTS, seed=1, n_folds=3)
    assert any(set(SUBJECTS[x.test]) != set(SUBJECTS[z.test]) for x, z in zip(a, b))


def test_leak_checker_rejects_overlapping_subjects():
    train = np.flatnonzero(SUBJECTS != "S1")
    test = np.flatnonzero(np.isin(SUBJECTS, ["S1", "S2"]))
    with pytest.raises(SubjectLeakError, match=r"1 subject\(s\).*S2"):
        check_no_subject_leak(SUBJECTS, train, test, fold="fold0")
    check_no_subject_leak(SUBJECTS, train, np.flatnonzero(SUBJECTS == "S1"))  # no error


def test_within_subject_folds_stay_inside_one_subject_and_stratify():
    folds = make_folds("within-subject", y=Y, subjects=SUBJECTS, n_folds=4)
    assert len(folds) == 7 * 4
    for f in folds:
        assert len(set(SUBJECTS[np.concatenate([f.train, f.test])])) == 1
        assert np.bincount(Y[f.test], minlength=3).tolist() == [1, 1, 1]
        assert not f.subject_level


def test_few_shot_trains_on_k_per_class_and_tests_on_the_rest():
    folds = make_folds("few-shot", y=Y, subjects=SUBJECTS, shots=2, seed=5)
    assert len(folds) == 7
    for f in folds:
        assert np.bincount(Y[f.train], minlength=3).tolist() == [2, 2, 2]
        assert f.test.size == 12 - 6
        assert np.intersect1d(f.train, f.test).size == 0
    with pytest.raises(ValueError, match="Lower --shots"):
        make_folds("few-shot", y=Y, subjects=SUBJECTS, shots=4)
    with pytest.raises(ValueError, match="needs --shots"):
        make_folds("few-shot", y=Y, subjects=SUBJECTS)


def test_official_split_and_errors():
    split = np.where(np.arange(len(Y)) % 5 == 0, "test", "train")
    (fold,) = make_folds("official", y=Y, subjects=SUBJECTS, split=split)
    assert np.array_equal(fold.test, np.flatnonzero(split == "test"))
    with pytest.raises(ValueError, match="no official train/test split"):
        make_folds("official", y=Y, subjects=SUBJECTS, split=None)
    with pytest.raises(ValueError, match="within-subject"):
        make_folds("cross-subject", y=Y[:12], subjects=SUBJECTS[:12])
    with pytest.raises(ValueError, match="Unknown protocol"):
        make_folds("random", y=Y, subjects=SUBJECTS)


def test_validation_split_uses_whole_training_subjects():
    (fold, *_) = make_folds("cross-subject", y=Y, subjects=SUBJECTS, n_folds=3)
    fit, val = validation_split(fold.train, Y, SUBJECTS, fraction=0.25, seed=0)
    assert np.union1d(fit, val).tolist() == sorted(fold.train)
    assert not set(SUBJECTS[fit]) & set(SUBJECTS[val])
    assert not set(SUBJECTS[val]) & set(SUBJECTS[fold.test])
    # one subject: a stratified share of its trials
    one = np.flatnonzero(SUBJECTS == "S0")
    fit, val = validation_split(one, Y, SUBJECTS, fraction=0.25)
    assert np.bincount(Y[val], minlength=3).tolist() == [1, 1, 1]
