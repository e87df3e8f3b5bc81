"""Metrics of unit-level tasks (contacts, recordings), as the Omni-iEEG evaluation reports them.

Source: the authors' ``omni_ieeg/channel_model/benchmark/evaluation_channel.py``
(roychowdhuryresearch/Omni-iEEG, read for this module; differences are named below). A unit's
score is its predicted
probability of the positive class (SOZ; ictal; sleep), the mean over its segments. Over the
test units of a fold (pooled over contacts of all test participants):

``auroc``, ``auc_pr``
    Ranking metrics of the scores (positive class = class index 1).
``balanced_accuracy``, ``f1``, ``f1_macro``
    At ``threshold``, the Youden threshold (max TPR − FPR) chosen without the test labels: on
    the fold's validation units when they hold both classes (out-of-sample scores), else on the
    training units' in-sample scores (a probe that separates its training contacts puts that
    threshold high). ``f1`` is the positive class's; ``f1_macro`` the mean over
    both classes, which is what the authors' table calls F1 (``f1_score(average='macro')``; their
    "recall" is macro recall, i.e. balanced accuracy).
``youden_threshold_test``, ``balanced_accuracy_test_threshold``, ``f1_test_threshold``,
``f1_macro_test_threshold``
    The authors' figures: the Youden threshold chosen **on the test units themselves** and the
    figures it gives — optimistic (the threshold sees the test labels); reported beside the
    others, marked by the name.

The authors' AUC-PR is ``precision_recall_curve(y, score, pos_label=0)`` on SOZ-positive labels
and SOZ scores, i.e. the normal class taken as positive while ranking by SOZ score; neurofm's
``auc_pr`` is the average precision of the SOZ class (the positive class), so the two differ.
``outcome_auroc`` (contacts)
    Per test participant with a known surgical outcome, the predicted resection ratio — the
    share of the participant's predicted SOZ score that lies on resected contacts,
    ``sum(score * (resection == 1)) / sum(score)`` over all its scored good contacts, 1 when the
    sum is 0 (as the authors) — and the AUROC of that ratio for a good outcome
    (``outcome == 1``): resecting where the model puts the onset zone should go with seizure
    freedom. The authors sum per-segment SOZ predictions; neurofm sums each contact's mean SOZ
    probability (a contact's segments are equally many within a recording).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm

#: Headline metric of unit-level tasks.
HEADLINE = "auroc"
#: Metrics of a fold, in the order tables show them.
UNIT_METRICS = ("auroc", "auc_pr", "balanced_accuracy", "f1", "f1_macro", "threshold",
                "youden_threshold_test", "balanced_accuracy_test_threshold",
                "f1_test_threshold", "f1_macro_test_threshold")
#: Further metrics of contact tasks.
CONTACT_METRICS = ("outcome_auroc",)


def youden_threshold(y, score) -> float:
    """The score threshold that maximises TPR − FPR (Youden's J); 0.5 when ``y`` holds one
    class. A unit is predicted positive when its score is at or above the threshold."""
    y = np.asarray(y, int)
    score = np.asarray(score, float)
    if np.unique(y).size < 2:
        return 0.5
    fpr, tpr, thresholds = skm.roc_curve(y, score)
    best = int(np.argmax(tpr - fpr))
    return float(min(thresholds[best], 1.0))


def at_threshold(y, score, threshold: float) -> dict[str, float]:
    """Balanced accuracy, F1 (positive class 1) and macro F1 of ``score >= threshold``."""
    y = np.asarray(y, int)
    pred = (np.asarray(score, float) >= threshold).astype(int)
    present = [c for c in (0, 1) if (y == c).any()]
    recall = [float((pred[y == c] == c).mean()) for c in present]
    return {"balanced_accuracy": float(np.mean(recall)) if recall else math.nan,
            "f1": float(skm.f1_score(y, pred, labels=[1], average="binary", zero_division=0)),
            "f1_macro": float(skm.f1_score(y, pred, labels=present, average="macro",
                                           zero_division=0)) if present else math.nan}


def resection_ratio(score, resection) -> float:
    """``sum(score * (resection == 1)) / sum(score)`` over the contacts (NaN scores left
    out); 1 when the scores sum to 0 (the authors' convention); NaN when no contact's
    ``resection`` is known."""
    score = np.asarray(score, float)
    resection = np.asarray(resection, int)
    scored = np.isfinite(score)
    if not (resection[scored] >= 0).any():
        return math.nan
    total = score[scored].sum()
    if total <= 0:
        return 1.0
    return float(score[scored & (resection == 1)].sum() / total)


def outcome_auroc(ratios, outcomes) -> float:
    """AUROC of predicted resection ratios for a good outcome over participants whose outcome
    (1 / 0) and ratio are known; NaN with fewer than one of each."""
    ratios = np.asarray(ratios, float)
    outcomes = np.asarray(outcomes, int)
    ok = np.isfinite(ratios) & (outcomes >= 0)
    if np.unique(outcomes[ok]).size < 2:
        return math.nan
    return float(skm.roc_auc_score(outcomes[ok] == 1, ratios[ok]))


def unit_metrics(y_test, score_test, threshold: float) -> tuple[dict[str, float], dict[str, str]]:
    """The metrics of one fold's labelled test units (module docstring) and, for each that is
    undefined, why.

    Parameters
    ----------
    y_test : array of int, shape [n]
        Labels (0/1) of the labelled test units.
    score_test : array of float, shape [n]
        Their scores.
    threshold : float
        Chosen on the training units (:func:`youden_threshold`).
    """
    y = np.asarray(y_test, int)
    score = np.asarray(score_test, float)
    if y.size == 0:
        raise ValueError("No labelled test unit in this fold.")
    out = {name: math.nan for name in UNIT_METRICS}
    undefined = {}
    if np.unique(y).size == 2:
        out["auroc"] = float(skm.roc_auc_score(y, score))
        out["auc_pr"] = float(skm.average_precision_score(y, score))
    else:
        why = f"the test labels hold one class ({int(y[0])}); ranking needs both"
        undefined.update(auroc=why, auc_pr=why, youden_threshold_test=why)
    train = at_threshold(y, score, threshold)
    out.update(threshold=float(threshold), **train)
    if "youden_threshold_test" not in undefined:
        chosen = youden_threshold(y, score)
        test = at_threshold(y, score, chosen)
        out.update(youden_threshold_test=chosen,
                   **{f"{k}_test_threshold": v for k, v in test.items()})
    else:
        undefined.update({f"{k}_test_threshold": undefined["auroc"] for k in train})
    return out, undefined
