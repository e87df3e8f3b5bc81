"""Metrics as the field reports them, and their summary over seeds/folds.

Multi-class classification: balanced accuracy, Cohen's kappa, weighted F1. Binary
classification: balanced accuracy, AUROC, AUC-PR (average precision of the positive class, label
index 1). Regression: Pearson r, R², RMSE. Every figure that goes into a table is a mean ± std
with a 95 % confidence interval over seeds and folds (:func:`summarise`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
from scipy import stats
from sklearn import metrics as skm

#: Metric names per task kind, in the order tables show them; the first is the headline.
METRICS = {
    "binary": ("balanced_accuracy", "auroc", "auc_pr"),
    "multiclass": ("balanced_accuracy", "cohen_kappa", "f1_weighted"),
    "regression": ("pearson_r", "r2", "rmse"),
}


#: Range of each bounded metric; a confidence interval is clipped to it (the t interval of a
#: few folds can otherwise leave it, e.g. a balanced accuracy CI of [-0.05, 1.05]).
METRIC_RANGES = {
    "accuracy": (0.0, 1.0), "balanced_accuracy": (0.0, 1.0), "auroc": (0.0, 1.0),
    "auc_pr": (0.0, 1.0), "f1_weighted": (0.0, 1.0), "cohen_kappa": (-1.0, 1.0),
    "pearson_r": (-1.0, 1.0), "r2": (-math.inf, 1.0), "rmse": (0.0, math.inf),
}


def task_kind(task: str, n_classes: int | None) -> str:
    """``"binary"``, ``"multiclass"`` or ``"regression"`` for a TrialSet's task and class count."""
    if task == "regression":
        return "regression"
    if task != "classification":
        raise ValueError(f"Unknown task {task!r}; expected 'classification' or 'regression'.")
    if n_classes is None or n_classes < 2:
        raise ValueError("A classification task needs at least two classes; "
                         f"got n_classes={n_classes}.")
    return "binary" if n_classes == 2 else "multiclass"


def _class_labels(y_true, y_pred, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``y_true``, ``y_pred`` as int arrays ``[n]``, checked to be class indices ``0 .. K-1``."""
    y_true = np.asarray(y_true).astype(int).ravel()
    y_pred = np.asarray(y_pred).astype(int).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels but y_pred has {y_pred.size}.")
    if y_true.size == 0:
        raise ValueError("Cannot compute metrics on an empty test set.")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        outside = y[(y < 0) | (y >= n_classes)]
        if outside.size:
            raise ValueError(f"{name} holds class {outside[0]}, outside 0 .. {n_classes - 1} for "
                             f"n_classes={n_classes}; pass the task's class count and labels "
                             "encoded as class indices.")
    return y_true, y_pred


def _undefined_classification(y_true: np.ndarray, y_pred: np.ndarray, has_scores: bool,
                               n_classes: int) -> dict[str, str]:
    """Classification metrics a test set leaves undefined -> reason (see undefined_metrics)."""
    present = np.unique(y_true)
    if n_classes == 2:
        if not has_scores:
            reason = "no class scores (the method predicts labels only)"
        elif present.size < 2:
            reason = f"the test labels hold one class ({present[0]}); ranking needs both"
        else:
            return {}
        return {"auroc": reason, "auc_pr": reason}
    if present.size == 1 and np.all(y_pred == present[0]):
        return {"cohen_kappa": f"labels and predictions are all class {present[0]}, so chance "
                               "agreement is 1 and kappa is 0 / 0"}
    return {}


def _undefined_regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, str]:
    """Regression metrics a test set leaves undefined -> reason (see undefined_metrics)."""
    for name, y in (("the test targets", y_true), ("the predictions", y_pred)):
        if y.size and np.ptp(y) == 0:
            return {"pearson_r": f"{name} are constant"}
    return {}


def undefined_metrics(kind: str, y_true, y_pred, proba=None, *, n_classes: int | None = None
                      ) -> dict[str, str]:
    """The metrics that :func:`compute_metrics` returns as NaN for this test set, and why.

    A fold can leave a metric undefined rather than bad: AUROC/AUC-PR when the test labels hold a
    single class (e.g. one subject of a cross-subject abnormal/normal task) or the method gives no
    class scores; Cohen's kappa when labels and predictions are all one class; Pearson r when
    targets or predictions are constant. :func:`summarise` leaves such NaNs out of the mean.

    Returns
    -------
    dict
        Metric name -> reason, empty when every metric is defined.
    """
    if kind == "regression":
        return _undefined_regression(np.asarray(y_true, dtype=float).ravel(),
                                     np.asarray(y_pred, dtype=float).ravel())
    if kind not in METRICS:
        raise ValueError(f"Unknown task kind {kind!r}; expected one of {sorted(METRICS)}.")
    y_true, y_pred = _class_labels(y_true, y_pred, n_classes)
    return _undefined_classification(y_true, y_pred, proba is not None, n_classes)


def classification_metrics(y_true, y_pred, proba=None, *, n_classes: int) -> dict[str, float]:
    """Metrics for integer class labels.

    Every metric is computed over the task's full label set, so a test set missing some classes
    (one subject's trials, a small fold) is scored without warnings: balanced accuracy is the
    mean recall of the classes present in ``y_true``, as scikit-learn defines it. Metrics the
    test set cannot define are NaN (:func:`undefined_metrics` says why).

    Parameters
    ----------
    y_true, y_pred : array of int, shape [n]
        True and predicted class indices in ``0 .. n_classes-1``.
    proba : array of float, shape [n, n_classes], optional
        Class probabilities (or any score monotone in them). Needed for AUROC/AUC-PR on binary
        tasks; without it those are NaN.
    n_classes : int
        Number of classes of the task (not just those present in ``y_true``).

    Returns
    -------
    dict
        ``accuracy`` plus the task kind's metrics (:data:`METRICS`).
    """
    y_true, y_pred = _class_labels(y_true, y_pred, n_classes)
    undefined = _undefined_classification(y_true, y_pred, proba is not None, n_classes)
    labels = np.arange(n_classes)
    confusion = skm.confusion_matrix(y_true, y_pred, labels=labels)  # [K, K], rows = true class
    support = confusion.sum(axis=1)
    recall = np.diag(confusion)[support > 0] / support[support > 0]
    out = {
        "accuracy": float(np.trace(confusion) / y_true.size),
        "balanced_accuracy": float(recall.mean()),
    }
    if n_classes == 2:
        if "auroc" in undefined:
            out["auroc"] = out["auc_pr"] = math.nan
        else:
            score = np.asarray(proba, dtype=float).reshape(len(y_true), -1)[:, -1]
            out["auroc"] = float(skm.roc_auc_score(y_true, score))
            out["auc_pr"] = float(skm.average_precision_score(y_true, score))
    else:
        out["cohen_kappa"] = math.nan if "cohen_kappa" in undefined else float(
            skm.cohen_kappa_score(y_true, y_pred, labels=labels))
        out["f1_weighted"] = float(skm.f1_score(y_true, y_pred, labels=labels, average="weighted",
                                                zero_division=0))
    return out


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """Pearson r, R² and RMSE of continuous predictions ``y_pred [n]`` against ``y_true [n]``.

    Pearson r is NaN when targets or predictions are constant (:func:`undefined_metrics`).
    """
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} values but y_pred has {y_pred.size}.")
    if y_true.size < 2:
        raise ValueError("Regression metrics need at least two test values.")
    constant = "pearson_r" in _undefined_regression(y_true, y_pred)
    return {
        "pearson_r": math.nan if constant else float(stats.pearsonr(y_true, y_pred)[0]),
        "r2": float(skm.r2_score(y_true, y_pred)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
    }


def compute_metrics(kind: str, y_true, y_pred, proba=None, *, n_classes: int | None = None
                    ) -> dict[str, float]:
    """Dispatch on the task kind (``"binary"``, ``"multiclass"``, ``"regression"``)."""
    if kind == "regression":
        return regression_metrics(y_true, y_pred)
    if kind not in METRICS:
        raise ValueError(f"Unknown task kind {kind!r}; expected one of {sorted(METRICS)}.")
    return classification_metrics(y_true, y_pred, proba, n_classes=n_classes)


def summarise(values: Iterable[float], confidence: float = 0.95,
              bounds: tuple[float, float] = (-math.inf, math.inf)) -> dict[str, float]:
    """Mean, sample std and a Student-t confidence interval of the mean, clipped to ``bounds``.

    NaN values (e.g. AUROC of a fold with one class) are left out and counted in ``n_nan``.
    With a single value the std is 0 and the interval collapses to the value.

    Returns
    -------
    dict
        ``mean``, ``std``, ``ci_low``, ``ci_high``, ``n``, ``n_nan``.
    """
    arr = np.asarray(list(values), dtype=float)
    finite = arr[np.isfinite(arr)]
    n = finite.size
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "n": 0, "n_nan": int(arr.size)}
    mean = float(finite.mean())
    std = float(finite.std(ddof=1)) if n > 1 else 0.0
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)) if n > 1 else 0.0
    low, high = bounds
    return {"mean": mean, "std": std, "ci_low": max(mean - half, low),
            "ci_high": min(mean + half, high), "n": int(n), "n_nan": int(arr.size - n)}


def summarise_runs(runs: Iterable[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """:func:`summarise` every metric that appears in a list of per-fold metric dicts."""
    runs = list(runs)
    names = [k for k in runs[0]] if runs else []
    return {name: summarise((r.get(name, math.nan) for r in runs),
                            bounds=METRIC_RANGES.get(name, (-math.inf, math.inf)))
            for name in names}


def chance_level(kind: str, y) -> float:
    """Balanced accuracy of a guess (1 / n_classes present) or NaN for regression."""
    if kind == "regression":
        return math.nan
    return 1.0 / np.unique(np.asarray(y)).size


def format_summary(s: Mapping[str, float], digits: int = 3) -> str:
    """``"0.712 ± 0.031 [0.674, 0.750]"`` for a :func:`summarise` dict."""
    if not np.isfinite(s["mean"]):
        return "n/a"
    f = f"{{:.{digits}f}}"
    return (f"{f.format(s['mean'])} ± {f.format(s['std'])} "
            f"[{f.format(s['ci_low'])}, {f.format(s['ci_high'])}]")
