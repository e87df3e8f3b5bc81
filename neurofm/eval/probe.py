"""Linear probe on frozen features: standardise + logistic regression (ridge for regression).

Everything the probe learns — the standardisation statistics, the weights and the choice of the
regularisation strength — comes from the training side of a fold: the ``C`` (or ``alpha``) grid
is searched by an inner cross-validation over the training trials only (grouped by subject when
the training side has enough subjects, so the choice favours cross-subject generalisation), or,
when the fold has its own validation part (a paper's train / val / test split), on that part;
the scaler sits inside the pipeline so each inner split refits it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

#: Inverse regularisation strengths searched for the logistic regression.
DEFAULT_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: Ridge penalties searched for regression probes.
DEFAULT_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)


@dataclass
class ProbeFit:
    """A fitted probe and what the inner search chose."""

    pipeline: Pipeline
    params: dict
    inner_cv: str

    def predict(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions ``[n]`` and class probabilities ``[n, K]`` (None for regression)."""
        pred = self.pipeline.predict(z)
        proba = self.pipeline.predict_proba(z) if hasattr(self.pipeline, "predict_proba") \
            else None
        return pred, proba

    def decision_function(self, z: np.ndarray) -> np.ndarray:
        """Linear scores: ``[n]`` (binary/regression) or ``[n, K]``."""
        if hasattr(self.pipeline[-1], "decision_function"):
            return self.pipeline.decision_function(z)
        return self.pipeline.predict(z)


def _inner_splitter(y, groups, n_splits: int, classification: bool, seed: int):
    """Inner CV over the training side: by subject when possible, else stratified trials.

    Classification with subjects uses folds of whole subjects that keep the class balance
    (labels are often per subject, e.g. abnormal vs normal recordings). When some split would
    still train on a single class (too few subjects per class), there is no search: splitting
    trials instead would leak subjects into the validation folds.
    """
    if groups is not None and np.unique(groups).size >= n_splits:
        if not classification:
            return GroupKFold(n_splits), f"group {n_splits}-fold by subject"
        splitter = StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)
        n_classes = np.unique(y).size
        if all(np.unique(y[train]).size == n_classes
               for train, _ in splitter.split(np.zeros(len(y)), y, groups)):
            return splitter, f"stratified group {n_splits}-fold by subject"
        return None, "none (too few subjects per class for subject-wise inner folds)"
    if classification:
        k = min(n_splits, int(np.bincount(np.unique(y, return_inverse=True)[1]).min()))
        if k < 2:
            return None, "none (fewer than 2 training trials in some class)"
        return StratifiedKFold(k, shuffle=True, random_state=seed), f"stratified {k}-fold"
    if len(y) < 2 * n_splits:
        return None, "none (too few training trials)"
    return KFold(n_splits, shuffle=True, random_state=seed), f"{n_splits}-fold"


def fit_probe(z: np.ndarray, y: np.ndarray, *, groups=None, regression: bool = False,
              grid=None, inner_folds: int = 3, seed: int = 0, max_iter: int = 2000,
              validation: tuple[np.ndarray, np.ndarray] | None = None) -> ProbeFit:
    """Fit the probe on training features with an inner-CV search of the penalty.

    Parameters
    ----------
    z : ndarray, shape [n_train, D]
        Training features.
    y : ndarray, shape [n_train]
        Class indices (classification) or targets (regression).
    groups : array of str, shape [n_train], optional
        Subjects, for grouped inner CV.
    grid : sequence of float, optional
        ``C`` values (classification) or ``alpha`` values (regression).
    validation : (z_val [n_val, D], y_val [n_val]), optional
        A validation part (an official split's ``val``): the penalty is the one that scores
        best on it (balanced accuracy, or R²) when fitted on ``z``; no inner CV.
    """
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y)
    if not regression and np.unique(y).size < 2:
        raise ValueError("The training side of this fold holds a single class; the probe needs "
                         "at least two. Use a protocol with more training trials per class.")
    if regression:
        estimator = make_pipeline(StandardScaler(), Ridge())
        param, values = "ridge__alpha", tuple(grid or DEFAULT_ALPHAS)
        scoring = "r2"
    else:
        estimator = make_pipeline(StandardScaler(), LogisticRegression(
            max_iter=max_iter, class_weight="balanced"))
        param, values = "logisticregression__C", tuple(grid or DEFAULT_CS)
        scoring = "balanced_accuracy"
    if validation is not None:
        return _fit_on_validation(estimator, param, values, z, y, *validation, scoring)
    splitter, described = _inner_splitter(y, groups, inner_folds, not regression, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # Subject-wise validation folds may hold one class (labels per subject); balanced
        # accuracy is then that class's recall, still a valid score for choosing C.
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        warnings.filterwarnings("ignore", message="A single label was found")
        if splitter is None:
            middle = values[len(values) // 2]
            estimator.set_params(**{param: middle})
            estimator.fit(z, y)
            return ProbeFit(estimator, {param.split("__")[1]: middle}, described)
        search = GridSearchCV(estimator, {param: list(values)}, scoring=scoring, cv=splitter,
                              refit=True, n_jobs=1)
        grouped = isinstance(splitter, GroupKFold | StratifiedGroupKFold)
        search.fit(z, y, **({"groups": groups} if grouped else {}))
    best = search.best_params_[param]
    return ProbeFit(search.best_estimator_, {param.split("__")[1]: best}, described)


def _fit_on_validation(estimator, param, values, z, y, z_val, y_val, scoring) -> ProbeFit:
    """The penalty that scores best on the validation part, each fitted on ``z`` only."""
    from sklearn.base import clone
    from sklearn.metrics import get_scorer

    scorer = get_scorer(scoring)
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        for value in values:
            model = clone(estimator).set_params(**{param: value})
            model.fit(z, y)
            score = scorer(model, np.asarray(z_val, dtype=np.float64), np.asarray(y_val))
            if best is None or score > best[0]:
                best = (score, value, model)
    _, value, model = best
    return ProbeFit(model, {param.split("__")[1]: value},
                    f"validation part ({len(y_val)} trials)")


def fit_probe_on_fold(z: np.ndarray, y: np.ndarray, subjects: np.ndarray, fold, *,
                      regression: bool = False, seed: int = 0) -> ProbeFit:
    """:func:`fit_probe` on a fold's training side: the penalty chosen on the fold's own
    validation part when it has one, else by inner cross-validation (grouped by subject)."""
    validation = None if fold.val is None else (z[fold.val], y[fold.val])
    return fit_probe(z[fold.train], y[fold.train], groups=subjects[fold.train],
                     regression=regression, seed=seed, validation=validation)
