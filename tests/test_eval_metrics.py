"""Metrics equal scikit-learn's on fixed predictions; summaries over seeds/folds."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from neurofm.eval.metrics import (
    METRICS,
    classification_metrics,
    format_summary,
    regression_metrics,
    summarise,
    task_kind,
    undefined_metrics,
)

Y_TRUE = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 0, 1])
Y_PRED = np.array([0, 1, 0, 1, 1, 2, 1, 2, 0, 2, 0, 0])


def test_multiclass_metrics_equal_sklearn():
    got = classification_metrics(Y_TRUE, Y_PRED, n_classes=3)
    assert set(METRICS["multiclass"]) <= set(got)
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(Y_TRUE, Y_PRED))
    assert got["cohen_kappa"] == pytest.approx(skm.cohen_kappa_score(Y_TRUE, Y_PRED))
    assert got["f1_weighted"] == pytest.approx(skm.f1_score(Y_TRUE, Y_PRED, average="weighted"))
    assert got["accuracy"] == pytest.approx(8 / 12)


def test_binary_metrics_equal_sklearn():
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    p1 = np.array([0.1, 0.6, 0.8, 0.4, 0.9, 0.2, 0.7, 0.3])
    proba = np.stack([1 - p1, p1], 1)
    pred = (p1 > 0.5).astype(int)
    got = classification_metrics(y, pred, proba, n_classes=2)
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert got["auroc"] == pytest.approx(skm.roc_auc_score(y, p1))
    assert got["auc_pr"] == pytest.approx(skm.average_precision_score(y, p1))


def test_binary_auroc_is_nan_with_one_class_or_no_scores():
    got = classification_metrics([1, 1, 1], [1, 0, 1], np.full((3, 2), 0.5), n_classes=2)
    assert math.isnan(got["auroc"]) and math.isnan(got["auc_pr"])
    assert math.isnan(classification_metrics([0, 1], [0, 1], n_classes=2)["auroc"])
    why = undefined_metrics("binary", [1, 1, 1], [1, 0, 1], np.full((3, 2), 0.5), n_classes=2)
    assert set(why) == {"auroc", "auc_pr"} and "one class (1)" in why["auroc"]
    assert "no class scores" in undefined_metrics("binary", [0, 1], [0, 1], n_classes=2)["auroc"]


def test_one_class_fold_is_scored_over_all_labels_without_warnings():
    """One subject's trials of a cross-subject fold: a single true class, no sklearn warning."""
    p1 = np.array([0.9, 0.3, 0.8, 0.7])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        binary = classification_metrics([1, 1, 1, 1], [1, 0, 1, 1], np.stack([1 - p1, p1], 1),
                                        n_classes=2)
        perfect = classification_metrics([0, 0, 0], [0, 0, 0], n_classes=3)
        missed = classification_metrics([2, 2, 2, 2], [2, 0, 1, 2], n_classes=3)
        why_binary = undefined_metrics("binary", [1, 1, 1, 1], [1, 0, 1, 1],
                                       np.stack([1 - p1, p1], 1), n_classes=2)
        why_perfect = undefined_metrics("multiclass", [0, 0, 0], [0, 0, 0], n_classes=3)
        why_missed = undefined_metrics("multiclass", [2, 2, 2, 2], [2, 0, 1, 2], n_classes=3)
    # Balanced accuracy is the recall of the classes present in y_true (sklearn's definition).
    assert binary["accuracy"] == binary["balanced_accuracy"] == pytest.approx(0.75)
    assert math.isnan(binary["auroc"]) and math.isnan(binary["auc_pr"])
    assert set(why_binary) == {"auroc", "auc_pr"}
    assert perfect["balanced_accuracy"] == perfect["f1_weighted"] == 1.0
    assert math.isnan(perfect["cohen_kappa"]) and "chance agreement is 1" in why_perfect[
        "cohen_kappa"]
    assert missed["balanced_accuracy"] == pytest.approx(0.5)
    assert missed["cohen_kappa"] == 0.0  # defined: predictions spread over other classes
    assert missed["f1_weighted"] == pytest.approx(2 / 3)  # F1 of class 2 (P = 1, R = 1/2)
    assert why_missed == {}
    assert undefined_metrics("multiclass", Y_TRUE, Y_PRED, n_classes=3) == {}


def test_summary_of_one_class_folds_leaves_out_undefined_metrics():
    from neurofm.eval.metrics import summarise_runs

    p1 = np.array([0.2, 0.9, 0.6, 0.4])
    folds = [classification_metrics([0, 1, 1, 0], [0, 1, 1, 0], np.stack([1 - p1, p1], 1),
                                    n_classes=2),
             classification_metrics([1, 1, 1, 1], [1, 1, 0, 1], np.stack([1 - p1, p1], 1),
                                    n_classes=2)]
    s = summarise_runs(folds)
    assert s["balanced_accuracy"]["mean"] == pytest.approx((1.0 + 0.75) / 2)
    assert s["auroc"]["mean"] == 1.0 and s["auroc"]["n"] == 1 and s["auroc"]["n_nan"] == 1


def test_regression_metrics_equal_scipy_sklearn():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(50)
    pred = y + 0.5 * rng.standard_normal(50)
    got = regression_metrics(y, pred)
    assert got["pearson_r"] == pytest.approx(stats.pearsonr(y, pred)[0])
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((y - pred) ** 2)))
    assert undefined_metrics("regression", y, pred) == {}
    assert math.isnan(regression_metrics(np.ones(5), pred[:5])["pearson_r"])
    assert undefined_metrics("regression", np.ones(5), pred[:5]) == {
        "pearson_r": "the test targets are constant"}


def test_summary_mean_std_and_t_interval():
    values = [0.6, 0.7, 0.65, 0.8, 0.75]
    s = summarise(values)
    half = stats.t.ppf(0.975, 4) * np.std(values, ddof=1) / np.sqrt(5)
    assert s["mean"] == pytest.approx(np.mean(values))
    assert s["std"] == pytest.approx(np.std(values, ddof=1))
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((s["mean"] - half, s["mean"] + half))
    assert s["n"] == 5
    one = summarise([0.5])
    assert one["std"] == 0 and one["ci_low"] == one["ci_high"] == 0.5
    with_nan = summarise([0.5, float("nan"), 0.7])
    assert with_nan["n"] == 2 and with_nan["n_nan"] == 1
    assert format_summary(s).startswith("0.700 ± 0.079 [")


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="y_pred has 2"):
        classification_metrics([0, 1, 1], [0, 1], n_classes=2)
    with pytest.raises(ValueError, match="empty test set"):
        classification_metrics([], [], n_classes=2)
    with pytest.raises(ValueError, match=r"y_pred holds class 3, outside 0 \.\. 2"):
        classification_metrics([0, 1, 2], [0, 3, 2], n_classes=3)
    with pytest.raises(ValueError, match="at least two classes"):
        task_kind("classification", 1)
    assert task_kind("classification", 2) == "binary"
    assert task_kind("classification", 4) == "multiclass"
    assert task_kind("regression", None) == "regression"


def test_confidence_interval_is_clipped_to_the_metric_range():
    from neurofm.eval.metrics import summarise_runs

    folds = [{"balanced_accuracy": v, "rmse": r} for v, r in ((0.2, 0.1), (1.0, 3.0), (0.9, 0.2))]
    s = summarise_runs(folds)
    raw = summarise([0.2, 1.0, 0.9])
    assert raw["ci_low"] < 0 and raw["ci_high"] > 1  # the plain t interval leaves [0, 1]
    assert s["balanced_accuracy"]["ci_low"] == 0.0 and s["balanced_accuracy"]["ci_high"] == 1.0
    assert s["balanced_accuracy"]["mean"] == raw["mean"]
    assert s["rmse"]["ci_low"] == 0.0
