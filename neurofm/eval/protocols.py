"""Evaluation protocols that cannot leak.

A protocol turns a labelled trial set into folds (train indices, test indices and, where the
protocol has one, validation indices). The groups a protocol keeps apart are subjects or
``[subject, session]`` pairs:

===================  ========================================================  =================
protocol             folds                                                     kept apart
===================  ========================================================  =================
``cross-subject``    subjects shuffled into ``n_folds`` groups                 subjects
``loso``             one fold per subject                                      subjects
``cross-session``    per subject, one fold per session, trained on the         subject-sessions
                     subject's other sessions
``within-session``   stratified k-fold inside each subject-session             —
``within-subject``   stratified k-fold inside each subject (sessions mixed)    —
``few-shot``         per subject, K trials per class to train, rest to test    —
``official``         the published (or a paper's) train / val / test split     what it separates
===================  ========================================================  =================

Every subject-level fold passes :func:`check_no_subject_leak` and every cross-session fold
:func:`check_no_session_leak` (the harness checks each fold again before fitting); both raise a
:class:`GroupLeakError` naming the shared groups. An official split is checked at the level it
separates (subjects, else subject-sessions).

Validation sets for model selection and early stopping come from the fold's own validation part
when it has one (an official split with ``val``), else from the training side only
(:func:`validation_split`): by subject when the training side has several subjects, else by a
stratified share of trials.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, StratifiedShuffleSplit

#: Protocol names accepted by :func:`make_folds` (and ``neurofm probe --protocol``).
PROTOCOLS = ("cross-subject", "loso", "cross-session", "within-session", "within-subject",
             "few-shot", "official")
#: Protocols whose folds must keep subjects apart.
SUBJECT_LEVEL = ("cross-subject", "loso")
#: Protocols whose folds must keep subject-sessions apart.
SESSION_LEVEL = ("cross-session",)


class GroupLeakError(ValueError):
    """A group (subject, or subject-session) is on both sides of a fold that keeps them apart."""


class SubjectLeakError(GroupLeakError):
    """A subject appears in both the training and the test side of a subject-level fold."""


class SessionLeakError(GroupLeakError):
    """A subject's session appears on both sides of a cross-session fold."""


@dataclass(frozen=True)
class Fold:
    """One split of the trials.

    Attributes
    ----------
    name : str
        ``"fold0"``, ``"loso-S03"``, ``"S03-fold2"``, ``"S03-session-1test"``, ``"official"`` …
    train : ndarray of int, shape [n_train]
        Trial indices used for fitting (including any validation share the fitter carves out
        when ``val`` is None).
    test : ndarray of int, shape [n_test]
        Trial indices used only for scoring.
    subject_level : bool
        True when train (and val) and test subjects must be disjoint.
    session_level : bool
        True when no subject-session may be on both sides.
    val : ndarray of int, shape [n_val], optional
        The protocol's own validation part (early stopping, penalty choice).
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    subject_level: bool
    session_level: bool = False
    val: np.ndarray | None = None

    @property
    def fitting(self) -> np.ndarray:
        """Every index the fitter may see: ``train`` and ``val``."""
        return self.train if self.val is None else np.concatenate([self.train, self.val])


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


def check_no_session_leak(subjects, sessions, train, test, *, fold: str = "") -> None:
    """Raise :class:`SessionLeakError` if a subject's session has trials on both sides.

    Parameters
    ----------
    subjects, sessions : array of str, shape [n]
        Subject and session of every trial.
    train, test : array of int
        Trial indices of the two sides.
    """
    groups = _group_keys(subjects, sessions)
    both = sorted(set(groups[np.asarray(train, int)]) & set(groups[np.asarray(test, int)]))
    if both:
        where = f" in {fold}" if fold else ""
        shown = ", ".join(b.replace("\x1f", " session ") for b in both[:10]) + \
            (" …" if len(both) > 10 else "")
        raise SessionLeakError(
            f"Session leak{where}: {len(both)} subject-session(s) appear in both train and test "
            f"(subject {shown}). Cross-session folds test each session on a model trained on the "
            "subject's other sessions only.")


def check_fold(fold: Fold, subjects, sessions=None) -> None:
    """The leak checks ``fold`` asks for (subjects, subject-sessions), train and val vs test."""
    if fold.subject_level:
        check_no_subject_leak(subjects, fold.fitting, fold.test, fold=fold.name)
    if fold.session_level:
        check_no_session_leak(subjects, _sessions(sessions, len(subjects)), fold.fitting,
                              fold.test, fold=fold.name)


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

    Each fold trains and tests on one subject's trials (all its sessions mixed), so the result is
    the per-subject decoding accuracy that single-subject BCI papers report.
    """
    subjects = np.asarray(subjects).astype(str)
    folds = []
    for s in np.unique(subjects):
        idx = np.flatnonzero(subjects == s)
        for i, (tr, te) in enumerate(_kfold(y, idx, n_folds, seed, stratify, f"Subject {s}")):
            folds.append(Fold(f"{s}-fold{i}", idx[tr], idx[te], False))
    return folds


def _kfold(y, idx, n_folds, seed, stratify, who):
    """(train, test) positions within ``idx``: stratified (or plain) shuffled k-fold."""
    y = np.asarray(y)
    k = n_folds
    if stratify:
        k = min(n_folds, int(np.bincount(_codes(y[idx])).min()))
    if k < 2:
        raise ValueError(f"{who} has too few trials per class ({len(idx)} trials) for a "
                         "within-subject or within-session split; need at least 2 per class.")
    splitter = (StratifiedKFold(k, shuffle=True, random_state=seed) if stratify
                else KFold(k, shuffle=True, random_state=seed))
    return splitter.split(idx, y[idx] if stratify else None)


def cross_session_folds(subjects, sessions) -> list[Fold]:
    """Per subject with two or more sessions: each session tested on a model trained on the
    subject's other sessions (MOABB's cross-session evaluation).

    Raises
    ------
    ValueError
        When no subject has two sessions (use ``within-session`` or ``cross-subject``).
    """
    subjects = np.asarray(subjects).astype(str)
    sessions = _sessions(sessions, len(subjects))
    folds = []
    for s in np.unique(subjects):
        mine = subjects == s
        held = np.unique(sessions[mine])
        if held.size < 2:
            continue
        for session in held:
            test = mine & (sessions == session)
            folds.append(Fold(f"{s}-session-{session}", np.flatnonzero(mine & ~test),
                              np.flatnonzero(test), False, session_level=True))
    if not folds:
        raise ValueError("cross-session needs subjects with 2 or more sessions; every subject of "
                         "this data set has one. Use --protocol within-session or cross-subject.")
    for f in folds:
        check_fold(f, subjects, sessions)
    return folds


def within_session_folds(y, subjects, sessions, n_folds: int = 5, seed: int = 0, *,
                         stratify: bool = True) -> list[Fold]:
    """Stratified k-fold inside each subject-session (regression: plain shuffled k-fold)."""
    subjects = np.asarray(subjects).astype(str)
    sessions = _sessions(sessions, len(subjects))
    folds = []
    for key in np.unique(_group_keys(subjects, sessions)):
        s, session = key.split("\x1f")
        idx = np.flatnonzero((subjects == s) & (sessions == session))
        for i, (tr, te) in enumerate(_kfold(y, idx, n_folds, seed, stratify,
                                            f"Subject {s} session {session}")):
            folds.append(Fold(f"{s}-session-{session}-fold{i}", idx[tr], idx[te], False))
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


def official_folds(split, subjects=None, sessions=None) -> list[Fold]:
    """The published (or a paper's) split: ``split [n]`` of ``"train"``/``"val"``/``"test"``
    (``""``: left out).

    The fold is checked at the level the split separates: subject-level when no subject is in
    two parts, session-level when no subject-session is.
    """
    if split is None:
        raise ValueError("This data set has no official train/test split; choose "
                         "--protocol cross-subject, loso, cross-session, within-session, "
                         "within-subject or few-shot (or give the paper's split in the task "
                         "config's split: block).")
    split = np.asarray(split).astype(str)
    bad = sorted(set(split) - {"train", "val", "test", ""})
    if bad:
        raise ValueError(f"Official split labels must be 'train', 'val' or 'test'; found {bad}.")
    train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    val = np.flatnonzero(split == "val")
    if train.size == 0 or test.size == 0:
        raise ValueError("The official split has an empty train or test side.")
    subject_level = session_level = False
    if subjects is not None:
        subjects = np.asarray(subjects).astype(str)
        used = np.concatenate([train, val])
        subject_level = not set(subjects[used]) & set(subjects[test])
        keys = _group_keys(subjects, _sessions(sessions, len(subjects)))
        session_level = not subject_level and not set(keys[used]) & set(keys[test])
    return [Fold("official", train, test, subject_level, session_level=session_level,
                 val=val if val.size else None)]


def make_folds(protocol: str, *, y, subjects, split=None, sessions=None, seed: int = 0,
               n_folds: int = 5, shots: int | None = None,
               task: str = "classification") -> list[Fold]:
    """Folds for one of :data:`PROTOCOLS` (subject- and session-level folds are leak-checked).

    Parameters
    ----------
    y : array, shape [n]
    subjects : array of str, shape [n]
    split : array of str, shape [n], optional
        ``"train"``/``"val"``/``"test"``/``""`` per trial (``official``).
    sessions : array of str, shape [n], optional
        Session of each trial (``cross-session``, ``within-session``); default one session.
    """
    if protocol == "cross-subject":
        return cross_subject_folds(subjects, n_folds, seed)
    if protocol == "loso":
        return loso_folds(subjects)
    if protocol == "cross-session":
        return cross_session_folds(subjects, sessions)
    if protocol == "within-session":
        return within_session_folds(y, subjects, sessions, n_folds, seed,
                                    stratify=task == "classification")
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
        folds = official_folds(split, subjects, sessions)
        for f in folds:
            check_fold(f, subjects, sessions)
        return folds
    raise ValueError(f"Unknown protocol {protocol!r}; expected one of: {', '.join(PROTOCOLS)}.")


def split_from_groups(subjects, sessions, parts: dict, *, by: str = "subject") -> np.ndarray:
    """A split column from lists of subjects (or sessions): a paper's split in a task config.

    Parameters
    ----------
    subjects, sessions : array of str, shape [n]
    parts : dict
        ``{"train": [...], "val": [...], "test": [...]}`` (``val`` optional): subject ids
        (``by="subject"``) or session names (``by="session"``), compared as strings.
    by : {"subject", "session"}

    Returns
    -------
    ndarray of str, shape [n]
        ``"train"``/``"val"``/``"test"`` per trial.

    Raises
    ------
    ValueError
        A group in two parts, or trials whose group is in no part (named).
    """
    if by not in ("subject", "session"):
        raise ValueError(f"split.by must be 'subject' or 'session'; got {by!r}.")
    values = np.asarray(subjects if by == "subject" else _sessions(sessions, len(subjects)))
    values = values.astype(str)
    unknown_parts = sorted(set(parts) - {"train", "val", "test"})
    if unknown_parts:
        raise ValueError(f"split parts must be train, val and test; got {unknown_parts}.")
    listed = {part: [str(v) for v in parts.get(part) or []] for part in ("train", "val", "test")}
    seen: dict[str, str] = {}
    for part, groups in listed.items():
        for g in groups:
            if g in seen:
                raise ValueError(f"split: {by} {g} is in both {seen[g]} and {part}.")
            seen[g] = part
    out = np.array([seen.get(v, "") for v in values], dtype=object).astype(str)
    missing = sorted(set(values[out == ""]), key=_natural)
    if missing:
        raise ValueError(f"split: {by}(s) {', '.join(missing)} of the data are in no part of the "
                         "split (train / val / test); add them, or leave them out of the data.")
    return out


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


def fit_and_validation(fold: Fold, y, subjects, *, fraction: float = 0.2, seed: int = 0,
                       stratify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) indices of a fold: its own validation part when it has one, else
    :func:`validation_split` of its training side."""
    if fold.val is not None:
        return np.asarray(fold.train, int), np.asarray(fold.val, int)
    return validation_split(fold.train, y, subjects, fraction=fraction, seed=seed,
                            stratify=stratify)


def fold_groups(subjects, sessions, index) -> list[list[str]]:
    """The ``[subject, session]`` pairs of the trials ``index``, sorted, one per group."""
    index = np.asarray(index, int)
    subjects = np.asarray(subjects).astype(str)
    sessions = _sessions(sessions, len(subjects))
    pairs = set(zip(subjects[index].tolist(), sessions[index].tolist()))
    return [list(p) for p in sorted(pairs, key=lambda p: (_natural(p[0]), _natural(p[1])))]


def _codes(labels) -> np.ndarray:
    return np.unique(np.asarray(labels), return_inverse=True)[1]


def _sessions(sessions, n: int) -> np.ndarray:
    """Sessions as str ``[n]``; one session (``"0"``) when None."""
    return np.full(n, "0") if sessions is None else np.asarray(sessions).astype(str)


def _group_keys(subjects, sessions) -> np.ndarray:
    """One string per trial naming its subject-session (unit separator between the two)."""
    return np.char.add(np.char.add(np.asarray(subjects).astype(str), "\x1f"),
                       np.asarray(sessions).astype(str))


def _natural(text: str) -> tuple:
    """Sort key that puts subject 2 before subject 10."""
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def _checked(folds: list[Fold], subjects) -> list[Fold]:
    for f in folds:
        check_no_subject_leak(subjects, f.train, f.test, fold=f.name)
    return folds
