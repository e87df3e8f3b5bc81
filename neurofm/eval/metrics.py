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


def classification_metrics(y_true, y_pred, proba=None, *, n_classes: int) -> dict[str, float]:
    """Metrics for integer class labels.

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
    y_true = np.asarray(y_true).astype(int).ravel()
    y_pred = np.asarray(y_pred).astype(int).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels but y_pred has {y_pred.size}.")
    if y_true.size == 0:
        raise ValueError("Cannot compute metrics on an empty test set.")
    labels = np.arange(n_classes)
    out = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
    }
    if n_classes == 2:
        score = None if proba is None else np.asarray(proba, dtype=float).reshape(len(y_true), -1)[:, -1]
        both = np.unique(y_true).size == 2
        out["auroc"] = float(skm.roc_auc_score(y_true, score)) if score is not None and both \
            else math.nan
        out["auc_pr"] = float(skm.average_precision_score(y_true, score)) \
            if score is not None and both else math.nan
    else:
        out["cohen_kappa"] = float(skm.cohen_kappa_score(y_true, y_pred, labels=labels))
        out["f1_weighted"] = float(skm.f1_score(y_true, y_pred, labels=labels, average="weighted",
                                                zero_division=0))
    return out


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """Pearson r, R² and RMSE of continuous predictions ``y_pred [n]`` against ``y_true [n]``."""
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} values but y_pred has {y_pred.size}.")
    if y_true.size < 2:
        raise ValueError("Regression metrics need at least two test values.")
    constant = np.ptp(y_true) == 0 or np.ptp(y_pred) == 0
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
