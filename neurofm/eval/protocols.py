"""Evaluation protocols that cannot leak.

A protocol turns a labelled trial set into folds (train indices, test indices). Subject-level
protocols (``cross-subject``, ``loso``) never put a subject on both sides; every fold they make
passes :func:`check_no_subject_leak`, which raises :class:`SubjectLeakError` otherwise.
Within-subject protocols (``within-subject``, ``few-shot``) split each subject's own trials;
``official`` uses the split published with the data set.

Validation sets for model selection and early stopping come from the training side of a fold only
(:func:`validation_split`): by subject when the training side has several subjects, else by a
stratified share of trials.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, StratifiedShuffleSplit

#: Protocol names accepted by :func:`make_folds` (and ``neurofm probe --protocol``).
PROTOCOLS = ("cross-subject", "loso", "within-subject", "few-shot", "official")
#: Protocols whose folds must keep subjects apart.
SUBJECT_LEVEL = ("cross-subject", "loso")


class SubjectLeakError(ValueError):
    """A subject appears in both the training and the test side of a subject-level fold."""


@dataclass(frozen=True)
class Fold:
    """One train/test split.

    Attributes
    ----------
    name : str
        ``"fold0"``, ``"loso-S03"``, ``"S03-fold2"``, ``"official"`` …
    train : ndarray of int, shape [n_train]
        Trial indices used for fitting (including any validation share the fitter carves out).
    test : ndarray of int, shape [n_test]
        Trial indices used only for scoring.
    subject_level : bool
        True when train and test subjects must be disjoint.
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    subject_level: bool


def check_no_subject_leak(subjects, train, test, *, fold: str = "") -> None:
    """Raise :class:`SubjectLeakError` if any subject has trials in both ``train`` and ``test``.

    Parameters
    ----------
    subjects : array of str, shape [n]
        Subject of every trial.
    train, test : array of int
        Trial indices of the two sides.
    """
    subjects = np.asarray(subjects).astype(str)
    both = sorted(set(subjects[np.asarray(train, int)]) & set(subjects[np.asarray(test, int)]))
    if both:
        where = f" in {fold}" if fold else ""
        shown = ", ".join(both[:10]) + (" …" if len(both) > 10 else "")
        raise SubjectLeakError(
            f"Subject leak{where}: {len(both)} subject(s) appear in both train and test "
            f"({shown}). Subject-level protocols must split by subject; use "
            "--protocol within-subject to split trials within each subject instead.")


def cross_subject_folds(subjects, n_folds: int = 5, seed: int = 0) -> list[Fold]:
    """K folds over shuffled subjects: every subject is tested exactly once.

    Raises
    ------
    ValueError
        With fewer than two subjects (use ``within-subject``).
    """
    subjects = np.asarray(subjects).astype(str)
    unique = np.unique(subjects)
    if unique.size < 2:
        raise ValueError(f"cross-subject needs at least 2 subjects; the data has {unique.size}. "
                         "Use --protocol within-subject (or official) for single-subject data.")
    k = min(n_folds, unique.size)
    order = np.random.default_rng(seed).permutation(unique)
    folds = []
    for i, test_subjects in enumerate(np.array_split(order, k)):
        is_test = np.isin(subjects, test_subjects)
        folds.append(Fold(f"fold{i}", np.flatnonzero(~is_test), np.flatnonzero(is_test), True))
    return _checked(folds, subjects)


def loso_folds(subjects) -> list[Fold]:
    """Leave-one-subject-out: one fold per subject, tested on that subject alone."""
    subjects = np.asarray(subjects).astype(str)
    unique = np.unique(subjects)
    if unique.size < 2:
        raise ValueError(f"loso needs at least 2 subjects; the data has {unique.size}. "
                         "Use --protocol within-subject for single-subject data.")
    folds = [Fold(f"loso-{s}", np.flatnonzero(subjects != s), np.flatnonzero(subjects == s), True)
             for s in unique]
    return _checked(folds, subjects)


def within_subject_folds(y, subjects, n_folds: int = 5, seed: int = 0, *,
                         stratify: bool = True) -> list[Fold]:
    """Stratified k-fold inside each subject (regression: plain shuffled k-fold).

    Each fold trains and tests on one subject's trials, so the result is the per-subject
    decoding accuracy that single-subject BCI papers report.
    """
    y = np.asarray(y)
    subjects = np.asarray(subjects).astype(str)
    folds = []
    for s in np.unique(subjects):
        idx = np.flatnonzero(subjects == s)
        k = n_folds
        if stratify:
            k = min(n_folds, int(np.bincount(_codes(y[idx])).min()))
        if k < 2:
            raise ValueError(f"Subject {s} has too few trials per class ({len(idx)} trials) for a "
                             "within-subject split; need at least 2 per class.")
        splitter = (StratifiedKFold(k, shuffle=True, random_state=seed) if stratify
                    else KFold(k, shuffle=True, random_state=seed))
        for i, (tr, te) in enumerate(splitter.split(idx, y[idx] if stratify else None)):
            folds.append(Fold(f"{s}-fold{i}", idx[tr], idx[te], False))
    return folds


def few_shot_folds(y, subjects, shots: int, seed: int = 0) -> list[Fold]:
    """Within each subject, train on ``shots`` random trials per class and test on the rest.

    Raises
    ------
    ValueError
        If a subject has no more than ``shots`` trials of some class (nothing left to test).
    """
    if shots < 1:
        raise ValueError(f"--shots must be at least 1; got {shots}.")
    y = np.asarray(y)
    subjects = np.asarray(subjects).astype(str)
    rng = np.random.default_rng(seed)
    folds = []
    for s in np.unique(subjects):
        idx = np.flatnonzero(subjects == s)
        train = []
        for c in np.unique(y):
            of_class = idx[y[idx] == c]
            if of_class.size <= shots:
                raise ValueError(f"Subject {s} has {of_class.size} trial(s) of class {c}; "
                                 f"few-shot with --shots {shots} needs more. Lower --shots.")
            train.append(rng.choice(of_class, shots, replace=False))
        train = np.sort(np.concatenate(train))
        folds.append(Fold(f"{s}-{shots}shot", train, np.setdiff1d(idx, train), False))
    return folds


def official_folds(split) -> list[Fold]:
    """The published train/test split (``split [n]`` of ``"train"``/``"test"``)."""
    if split is None:
        raise ValueError("This data set has no official train/test split; choose "
                         "--protocol cross-subject, loso, within-subject or few-shot.")
    split = np.asarray(split).astype(str)
    bad = sorted(set(split) - {"train", "test"})
    if bad:
        raise ValueError(f"Official split labels must be 'train' or 'test'; found {bad}.")
    train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    if train.size == 0 or test.size == 0:
        raise ValueError("The official split has an empty train or test side.")
    return [Fold("official", train, test, False)]


def make_folds(protocol: str, *, y, subjects, split=None, seed: int = 0, n_folds: int = 5,
               shots: int | None = None, task: str = "classification") -> list[Fold]:
    """Folds for one of :data:`PROTOCOLS` (subject-level folds are leak-checked)."""
    if protocol == "cross-subject":
        return cross_subject_folds(subjects, n_folds, seed)
    if protocol == "loso":
        return loso_folds(subjects)
    if protocol == "within-subject":
        return within_subject_folds(y, subjects, n_folds, seed,
                                    stratify=task == "classification")
    if protocol == "few-shot":
        if shots is None:
            raise ValueError("--protocol few-shot needs --shots K (training trials per class).")
        if task != "classification":
            raise ValueError("few-shot needs a classification task (K trials per class).")
        return few_shot_folds(y, subjects, shots, seed)
    if protocol == "official":
        return official_folds(split)
    raise ValueError(f"Unknown protocol {protocol!r}; expected one of: {', '.join(PROTOCOLS)}.")


def validation_split(train, y, subjects, *, fraction: float = 0.2, seed: int = 0,
                     stratify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Split a fold's training indices into (fit, validation).

    With at least 3 training subjects the validation set is whole subjects (about ``fraction`` of
    them, at least one), so early stopping sees unseen subjects as the test set will; otherwise a
    stratified ``fraction`` of trials.
    """
    train = np.asarray(train, int)
    subj = np.asarray(subjects).astype(str)[train]
    unique = np.unique(subj)
    rng = np.random.default_rng(seed)
    if unique.size >= 3:
        n_val = max(1, round(fraction * unique.size))
        val_subjects = rng.choice(unique, n_val, replace=False)
        is_val = np.isin(subj, val_subjects)
        return train[~is_val], train[is_val]
    labels = np.asarray(y)[train]
    if stratify and np.bincount(_codes(labels)).min() >= 2:
        splitter = StratifiedShuffleSplit(1, test_size=fraction, random_state=seed)
        fit, val = next(splitter.split(train, labels))
    else:
        perm = rng.permutation(train.size)
        n_val = max(1, round(fraction * train.size))
        val, fit = perm[:n_val], perm[n_val:]
    return train[np.sort(fit)], train[np.sort(val)]


def _codes(labels) -> np.ndarray:
    return np.unique(np.asarray(labels), return_inverse=True)[1]


def _checked(folds: list[Fold], subjects) -> list[Fold]:
    for f in folds:
        check_no_subject_leak(subjects, f.train, f.test, fold=f.name)
    return folds
