"""Run one method over seeds x folds and collect scored predictions.

A *method* is anything that can be fitted on training trials and predict test trials:
``fit_predict(seed, fold) -> (pred [n_test], proba [n_test, K] or None, info dict)``. The frozen
probe, the classic baselines, supervised EEGNet and fine-tuning all plug in here, so every row of
a table is scored on the same folds with the same metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from neurofm.eval.metrics import (
    METRICS,
    compute_metrics,
    summarise,
    summarise_runs,
    undefined_metrics,
)
from neurofm.eval.protocols import Fold, check_fold, fold_groups

FitPredict = Callable[[int, Fold], tuple[np.ndarray, "np.ndarray | None", dict]]


@dataclass
class TaskInfo:
    """What the harness needs to know about the labels.

    Attributes
    ----------
    y : ndarray, shape [n]
        Class indices or regression targets of every trial.
    subjects : ndarray of str, shape [n]
    kind : {"binary", "multiclass", "regression"}
    n_classes : int or None
    class_names : list of str or None
    sessions : ndarray of str, shape [n], optional
        Session of every trial (default: one session).
    """

    y: np.ndarray
    subjects: np.ndarray
    kind: str
    n_classes: int | None = None
    class_names: list[str] | None = None
    sessions: np.ndarray | None = None


@dataclass
class MethodResult:
    """Per-fold scores and pooled predictions of one method (one table row)."""

    name: str
    folds: list[dict] = field(default_factory=list)
    predictions: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """Mean ± std and 95 % CI of each metric over all (seed, fold) runs."""
        return summarise_runs([f["metrics"] for f in self.folds]) if self.folds else {}

    def headline(self, kind: str) -> dict:
        """The summary of the task kind's first metric."""
        return self.summary().get(METRICS[kind][0], summarise([]))

    def pooled(self) -> dict[str, np.ndarray]:
        """All test predictions concatenated: ``index``, ``y_true``, ``y_pred``, ``seed``."""
        keys = ("index", "y_true", "y_pred", "seed")
        if not self.predictions:
            return {k: np.array([]) for k in keys}
        return {k: np.concatenate([np.asarray(p[k]) for p in self.predictions]) for k in keys}

    def per_subject(self, task: TaskInfo) -> dict[str, float]:
        """Headline metric per test subject over pooled predictions."""
        pooled = self.pooled()
        subj = task.subjects[pooled["index"].astype(int)] if pooled["index"].size else []
        out = {}
        for s in np.unique(subj):
            m = subj == s
            try:
                scores = compute_metrics(task.kind, pooled["y_true"][m], pooled["y_pred"][m],
                                         n_classes=task.n_classes)
            except ValueError:  # e.g. one test value of a regression target
                scores = {}
            out[str(s)] = scores.get(METRICS[task.kind][0], float("nan"))
        return out


def run_method(name: str, fit_predict: FitPredict, task: TaskInfo,
               folds_by_seed: dict[int, list[Fold]], *, skip_errors: bool = True,
               progress=None) -> MethodResult:
    """Fit and score ``fit_predict`` on every fold of every seed.

    Each fold record holds ``seed``, ``fold``, ``n_train``, ``n_test``, the ``[subject, session]``
    pairs of each side (``train_groups``, ``test_groups``; ``n_val`` and ``val_groups`` when the
    fold has its own validation part), its ``metrics`` and ``undefined_metrics`` (metric name ->
    why it is NaN for that fold, e.g. AUROC of a test side with one class; see
    :func:`~neurofm.eval.metrics.undefined_metrics`). Every fold is leak-checked at its level
    (subjects, subject-sessions) before fitting.
    A fold that raises ``ValueError`` or ``RuntimeError`` is skipped and recorded in
    ``result.errors`` (with ``skip_errors``), so one degenerate fold does not lose a long run.
    """
    result = MethodResult(name)
    for seed, folds in folds_by_seed.items():
        for fold in folds:
            check_fold(fold, task.subjects, task.sessions)
            try:
                pred, proba, info = fit_predict(seed, fold)
            except (ValueError, RuntimeError) as err:
                if not skip_errors:
                    raise
                result.errors.append(f"seed {seed} {fold.name}: {err}")
                continue
            y_true = task.y[fold.test]
            scores = compute_metrics(task.kind, y_true, pred, proba, n_classes=task.n_classes)
            undefined = undefined_metrics(task.kind, y_true, pred, proba,
                                          n_classes=task.n_classes)
            record = {"seed": seed, "fold": fold.name, "n_train": int(fold.train.size),
                      "n_test": int(fold.test.size),
                      "train_groups": fold_groups(task.subjects, task.sessions, fold.train),
                      "test_groups": fold_groups(task.subjects, task.sessions, fold.test)}
            if fold.val is not None:
                record.update(n_val=int(fold.val.size),
                              val_groups=fold_groups(task.subjects, task.sessions, fold.val))
            result.folds.append({**record, "metrics": scores, "undefined_metrics": undefined,
                                 **info})
            result.predictions.append({"index": fold.test, "y_true": y_true,
                                       "y_pred": np.asarray(pred), "seed": np.full(
                                           fold.test.size, seed)})
            if progress is not None:
                progress.update(1)
    if not result.folds:
        raise ValueError(f"{name}: every fold failed; first error: "
                           f"{result.errors[0] if result.errors else 'no folds'}")
    return result
