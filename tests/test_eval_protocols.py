"""Protocols: disjoint subject folds, leak checker, within-subject / few-shot / official splits."""

import numpy as np
import pytest

from neurofm.eval.protocols import (
    PROTOCOLS,
    Fold,
    GroupLeakError,
    SessionLeakError,
    SubjectLeakError,
    check_fold,
    check_no_session_leak,
    check_no_subject_leak,
    fit_and_validation,
    fold_groups,
    make_folds,
    split_from_groups,
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


# ---- sessions ---------------------------------------------------------------------------------

SESSIONS = np.tile(np.repeat(["0train", "1test"], 6), 7)          # 2 sessions of 6 per subject
Y_SESS = np.tile(np.array([0, 1, 2, 0, 1, 2]), 14)


def test_cross_session_tests_each_session_on_the_subjects_other_sessions():
    folds = make_folds("cross-session", y=Y_SESS, subjects=SUBJECTS, sessions=SESSIONS)
    assert len(folds) == 7 * 2
    tested = np.sort(np.concatenate([f.test for f in folds]))
    assert tested.tolist() == list(range(len(Y_SESS)))      # every trial tested exactly once
    for f in folds:
        assert f.session_level and not f.subject_level
        assert len(set(SUBJECTS[f.train]) | set(SUBJECTS[f.test])) == 1   # one subject
        assert not set(SESSIONS[f.train]) & set(SESSIONS[f.test])         # no shared session
        assert len(set(SESSIONS[f.test])) == 1
    assert folds[0].name == "S0-session-0train"


def test_cross_session_needs_two_sessions_and_the_leak_checker_knows_sessions():
    with pytest.raises(ValueError, match="within-session or cross-subject"):
        make_folds("cross-session", y=Y, subjects=SUBJECTS)          # one session each
    train = np.flatnonzero((SUBJECTS == "S1") & (SESSIONS == "0train"))
    test = np.flatnonzero(SUBJECTS == "S1")
    with pytest.raises(SessionLeakError, match=r"1 subject-session\(s\).*S1 session 0train"):
        check_no_session_leak(SUBJECTS, SESSIONS, train, test, fold="f")
    with pytest.raises(GroupLeakError):
        check_fold(Fold("f", train, test, False, session_level=True), SUBJECTS, SESSIONS)
    check_no_session_leak(SUBJECTS, SESSIONS, train, np.setdiff1d(test, train))  # no error


def test_within_session_folds_stay_inside_one_subject_session():
    folds = make_folds("within-session", y=Y_SESS, subjects=SUBJECTS, sessions=SESSIONS,
                       n_folds=2, seed=1)
    assert len(folds) == 7 * 2 * 2
    for f in folds:
        both = np.concatenate([f.train, f.test])
        assert len(set(zip(SUBJECTS[both], SESSIONS[both]))) == 1
        assert np.bincount(Y_SESS[f.test], minlength=3).tolist() == [1, 1, 1]
    # within-subject keeps working and mixes the sessions of a subject
    mixed = make_folds("within-subject", y=Y_SESS, subjects=SUBJECTS, n_folds=2)
    assert len(mixed) == 7 * 2 and len(set(SESSIONS[mixed[0].test])) == 2


def test_official_split_with_validation_part_is_checked_by_subject():
    split = split_from_groups(SUBJECTS, SESSIONS, {"train": ["S0", "S1", "S2", "S3"],
                                                   "val": ["S4"], "test": ["S5", "S6"]})
    (fold,) = make_folds("official", y=Y, subjects=SUBJECTS, split=split, sessions=SESSIONS)
    assert fold.subject_level and fold.val is not None
    assert set(SUBJECTS[fold.train]) == {"S0", "S1", "S2", "S3"}  # not the val part
    assert set(SUBJECTS[fold.val]) == {"S4"} and set(SUBJECTS[fold.test]) == {"S5", "S6"}
    assert fold_groups(SUBJECTS, SESSIONS, fold.val) == [["S4", "0train"], ["S4", "1test"]]
    fit, val = fit_and_validation(fold, Y, SUBJECTS)
    assert np.array_equal(fit, fold.train) and np.array_equal(val, fold.val)
    # a split by session (the competition's own): checked at the session level
    by_session = split_from_groups(SUBJECTS, SESSIONS, {"train": ["0train"], "test": ["1test"]},
                                   by="session")
    (fold,) = make_folds("official", y=Y, subjects=SUBJECTS, split=by_session, sessions=SESSIONS)
    assert fold.session_level and not fold.subject_level and fold.val is None
    with pytest.raises(ValueError, match=r"subject\(s\) S6 of the data are in no part"):
        split_from_groups(SUBJECTS, SESSIONS, {"train": ["S0"], "test": ["S1", "S2", "S3", "S4",
                                                                        "S5"]})
    with pytest.raises(ValueError, match="S1 is in both train and test"):
        split_from_groups(SUBJECTS, SESSIONS, {"train": ["S1"], "test": ["S1"]})


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_protocol_is_leak_free(protocol):
    split = split_from_groups(SUBJECTS, SESSIONS, {"train": ["S0", "S1", "S2"], "val": ["S3"],
                                                   "test": ["S4", "S5", "S6"]})
    folds = make_folds(protocol, y=Y_SESS, subjects=SUBJECTS, sessions=SESSIONS, split=split,
                       n_folds=2, shots=1, seed=2)
    assert folds
    groups = np.char.add(SUBJECTS, SESSIONS)
    for f in folds:
        fitting = f.fitting
        assert np.intersect1d(fitting, f.test).size == 0
        if protocol in ("cross-subject", "loso", "official"):
            assert f.subject_level and not set(SUBJECTS[fitting]) & set(SUBJECTS[f.test])
        if protocol == "cross-session":
            assert not set(groups[fitting]) & set(groups[f.test])


def test_whole_subject_validation_is_the_smaller_part_of_the_training_subjects():
    train = np.flatnonzero(SUBJECTS != "S6")  # 6 training subjects
    for fraction, n_val in ((0.2, 1), (0.34, 2)):
        fit, val = validation_split(train, Y, SUBJECTS, fraction=fraction, seed=3)
        assert len(set(SUBJECTS[val])) == n_val and len(set(SUBJECTS[fit])) == 6 - n_val
        assert fit.size == 12 * (6 - n_val) and val.size == 12 * n_val
    # the same rule through a fold without a validation part of its own
    fold = Fold("f", train, np.flatnonzero(SUBJECTS == "S6"), True)
    fit, val = fit_and_validation(fold, Y, SUBJECTS, fraction=0.2, seed=3)
    assert len(set(SUBJECTS[val])) == 1 and len(set(SUBJECTS[fit])) == 5


def test_the_official_training_part_holds_neither_validation_nor_left_out_trials():
    split = split_from_groups(SUBJECTS, SESSIONS, {"train": ["S0", "S1", "S2", "S3"],
                                                   "val": ["S4"], "test": ["S5", "S6"]})
    split[SUBJECTS == "S3"] = ""  # left out of the evaluation
    (fold,) = make_folds("official", y=Y, subjects=SUBJECTS, split=split, sessions=SESSIONS)
    assert set(SUBJECTS[fold.train]) == {"S0", "S1", "S2"}
    assert np.array_equal(fold.train, np.flatnonzero(split == "train"))
    assert np.intersect1d(fold.train, fold.val).size == 0


def test_a_validation_part_sharing_a_subject_with_the_test_side_is_a_leak():
    fold = Fold("f", np.flatnonzero(SUBJECTS == "S0"), np.flatnonzero(SUBJECTS == "S1"), True,
                val=np.flatnonzero(np.isin(SUBJECTS, ["S1", "S2"])))
    with pytest.raises(SubjectLeakError, match=r"Subject leak in f: 1 subject\(s\).*S1"):
        check_fold(fold, SUBJECTS)


@pytest.mark.parametrize("protocol", ["cross-subject", "loso", "cross-session"])
def test_fold_builders_leak_check_every_fold_they_build(protocol, monkeypatch):
    """The builders check each fold themselves (the harness checks again, later): a spy on
    the checkers sees every fold's own train and test sides."""
    import neurofm.eval.protocols as protocols

    checked = []
    for name in ("check_no_subject_leak", "check_no_session_leak"):
        real = getattr(protocols, name)

        def spy(*args, _real=real, **kwargs):
            train, test = args[-2:]
            checked.append((kwargs.get("fold"), tuple(np.sort(train)), tuple(np.sort(test))))
            return _real(*args, **kwargs)

        monkeypatch.setattr(protocols, name, spy)
    folds = make_folds(protocol, y=Y_SESS, subjects=SUBJECTS, sessions=SESSIONS, n_folds=3)
    assert len(folds) == {"cross-subject": 3, "loso": 7, "cross-session": 14}[protocol]
    for f in folds:
        assert (f.name, tuple(np.sort(f.train)), tuple(np.sort(f.test))) in checked, f.name
