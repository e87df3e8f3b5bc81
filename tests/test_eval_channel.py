"""Channel-level evaluation (``--target channel``): per-contact scores per patient on a
look-alike Omni-iEEG tree, the metrics as the authors' evaluation defines them, and the errors
of a target the data cannot give."""

import csv
import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from neurofm.datasets import load_dataset
from neurofm.datasets.ieeg_standins import write_omni_ieeg
from neurofm.eval.channel_metrics import (
    at_threshold,
    outcome_auroc,
    resection_ratio,
    unit_metrics,
    youden_threshold,
)
from neurofm.eval.run import run_evaluation
from neurofm.eval.settings import EvalSettings
from tests.eval_helpers import alpha_trials

TINY = {"dim": 16, "depth": 1, "n_heads": 2, "ffn_dim": 32}
SPLITS = ["train", "train", "train", "val", "test", "test"]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("omni")
    write_omni_ieeg(root, patients=6, seconds=64.0, outcomes=(1, 0, 1, 1, 0, 1), splits=SPLITS,
                    multicenter=(), low_rate=(), ictal=(0, 4))
    return root


def _settings(tmp_path, data, **kw):
    base = {"model": "criss_cross_small", "data": data, "out": str(tmp_path / "out"),
            "protocol": "official", "seeds": 1, "model_overrides": TINY, "importance": False,
            "cache_dir": str(tmp_path / "cache"), "target": "channel"}
    return EvalSettings(**{**base, **kw})


def test_probe_scores_every_contact_of_each_test_patient(release, tmp_path):
    payload = run_evaluation(_settings(tmp_path, f"omni-ieeg:{release}?task=soz"))
    data = payload["data"]
    assert data["target"] == "channel" and data["positive_class"] == "soz"
    assert data["n_contacts_without_coordinates"] == data["n_units"]
    assert len(data["dropped_contacts"]) == data["n_recordings"]
    with open(tmp_path / "out" / "unit_scores.csv") as fh:
        rows = list(csv.DictReader(fh))
    model_rows = [r for r in rows if "probe" in r["method"]]
    # every good contact of each test patient (sub-05, sub-06) gets one score, labelled or not
    assert {r["participant"] for r in model_rows} == {"sub-05", "sub-06"}
    for participant in ("sub-05", "sub-06"):
        mine = [r for r in model_rows if r["participant"] == participant]
        assert len(mine) == 31 and len({r["contact"] for r in mine}) == 31
        assert all(0.0 <= float(r["score"]) <= 1.0 for r in mine)
    method = payload["methods"][0]
    assert set(method["per_participant"]) == {"sub-05", "sub-06"}
    (fold,) = method["folds"]
    assert fold["n_test_scored"] == 62
    assert fold["threshold_from"] == "validation units"  # sub-04 holds both classes
    assert {g[0] for g in fold["train_groups"]} == {"sub-01", "sub-02", "sub-03"}
    assert set(fold["resection_ratios"]) == {"sub-05", "sub-06"}
    for name in ("auroc", "auc_pr", "balanced_accuracy", "f1_macro", "youden_threshold_test",
                 "balanced_accuracy_test_threshold", "outcome_auroc"):
        assert name in fold["metrics"]
    band = payload["preprocessing"]["band"]
    assert band["model_sfreq"] == 200.0 and band["recording_rates"] == [1000.0]
    assert "ripples (80–250 Hz)" in band["lost"]
    assert band["statement"] in (tmp_path / "out" / "results.md").read_text()
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["settings"]["target"] == "channel"


def test_finetune_trains_a_contact_head(release, tmp_path):
    payload = run_evaluation(_settings(
        tmp_path, f"omni-ieeg:{release}?task=soz", mode="finetune", freeze="partial:1",
        baselines=[], train={"epochs": 1, "batch_size": 2, "patience": 1}))
    (method,) = payload["methods"]
    assert method["method"] == "criss_cross_small (random-init) finetune (partial:1)"
    (fold,) = method["folds"]
    assert fold["epochs_run"] == 1 and fold["trainable_backbone_parameters"] > 0
    assert math.isfinite(fold["train_loss"][0])
    assert fold["n_test_scored"] == 62


def test_recording_task_scores_recordings(release, tmp_path):
    payload = run_evaluation(_settings(tmp_path, f"omni-ieeg:{release}?task=ictal",
                                       target="trial", baselines=[]))
    assert payload["data"]["target"] == "recording"
    assert payload["data"]["class_names"] == ["interictal", "ictal"]
    (fold,) = payload["methods"][0]["folds"]
    assert fold["n_test_scored"] == 3  # sub-05: interictal and ictal; sub-06: interictal
    assert "outcome_auroc" not in fold["metrics"]


def test_a_target_the_data_cannot_give_is_refused(release, tmp_path):
    with pytest.raises(ValueError, match="pass --target channel"):
        run_evaluation(_settings(tmp_path, f"omni-ieeg:{release}?task=soz", target="trial"))
    with pytest.raises(ValueError, match="--target channel needs a data set that labels"):
        run_evaluation(_settings(tmp_path, "alpha"), alpha_trials(n_subjects=2, per_class=2))
    with pytest.raises(ValueError, match="--target must be one of trial, channel"):
        run_evaluation(_settings(tmp_path, "alpha", target="contact"))
    data = load_dataset(f"omni-ieeg:{release}?task=soz")
    with pytest.raises(ValueError, match="--pool mean"):
        run_evaluation(_settings(tmp_path, "x", pool="channels"), data)


def test_youden_threshold_and_figures_at_it():
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    score = np.array([0.1, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    threshold = youden_threshold(y, score)
    assert threshold == pytest.approx(0.7)  # TPR 3/4, FPR 0: J = 3/4 is the best
    out = at_threshold(y, score, 0.5)  # predictions 0 0 1 0 1 1 1
    assert out["balanced_accuracy"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert out["f1"] == pytest.approx(3 / 4)
    assert out["f1_macro"] == pytest.approx(skm.f1_score(y, score >= 0.5, average="macro"))
    metrics, undefined = unit_metrics(y, score, 0.5)
    assert metrics["auroc"] == pytest.approx(skm.roc_auc_score(y, score)) and not undefined
    assert metrics["youden_threshold_test"] == pytest.approx(0.7)
    assert metrics["balanced_accuracy_test_threshold"] == pytest.approx(7 / 8)
    _, undefined = unit_metrics(np.zeros(3, int), np.ones(3), 0.5)
    assert set(undefined) >= {"auroc", "auc_pr", "youden_threshold_test"}


def test_resection_ratio_and_outcome_auroc():
    score = np.array([0.8, 0.6, 0.2, 0.4, np.nan])
    resection = np.array([1, 1, 0, -1, 1])
    assert resection_ratio(score, resection) == pytest.approx(1.4 / 2.0)
    assert resection_ratio(np.zeros(3), np.array([1, 0, 0])) == 1.0  # authors' convention
    assert math.isnan(resection_ratio(np.ones(2), np.array([-1, -1])))
    assert outcome_auroc([0.9, 0.8, 0.1, 0.3], [1, 1, 0, 0]) == 1.0
    assert outcome_auroc([0.9, 0.2, 0.5], [1, 0, -1]) == 1.0
    assert math.isnan(outcome_auroc([0.9, 0.8], [1, 1]))
