"""The shipped clinical configs run as shipped on look-alike releases: the same loaders and
options (only the folder changes), the papers' splits, the metrics of each task, the published
numbers and what is left to check carried into results.json; a tiny model and one epoch."""

import numpy as np
import pytest

from neurofm.datasets import seed_v as seed_v_loader
from neurofm.datasets.clinical_standins import write_seed_v
from neurofm.eval.run import run_evaluation
from neurofm.eval.settings import TaskConfig, evaluation_settings, read_task_config

pytestmark = pytest.mark.filterwarnings("ignore:.*skipped .* recording")
TINY = {"dim": 32, "depth": 2, "n_heads": 4, "ffn_dim": 64}
QUICK = TaskConfig(seeds=1, baselines="bandpower",
                   train={"epochs": 1, "min_steps_per_epoch": 2, "batch_size": 16})


def _run(name, folder, root, tmp_path, mode="probe", **flags):
    task = read_task_config(f"finetune/{name}.yaml")
    scheme, _, rest = task.data.partition(":")
    path, _, query = rest.partition("?")
    assert path == f"~/neurofm-data/{folder}"
    data = f"{scheme}:{root}" + (f"?{query}" if query else "")
    task = task.merged(QUICK).merged(TaskConfig(data=data, **flags))
    settings = evaluation_settings(mode, task, model="criss_cross_small",
                                   out=str(tmp_path / name), model_overrides=TINY,
                                   cache_dir=str(tmp_path / "cache"), importance=False)
    return run_evaluation(settings)


def _checked(res, metrics):
    assert set(res["methods"][0]["folds"][0]["metrics"]) >= set(metrics)
    assert res["headline_metric"] == metrics[0]
    assert res["published"] and all(p["uncertain"] for p in res["published"])
    assert {p["metric"] for p in res["published"]} <= set(metrics)
    assert res["to_check"]


def test_tuab_config_as_shipped(tuab_root, tmp_path):
    res = _run("tuab", "tuab", tuab_root, tmp_path)
    _checked(res, ["balanced_accuracy", "auroc", "auc_pr"])
    assert res["data"]["split_counts"] == {"train": 16, "val": 8, "test": 8}
    assert res["data"]["provenance"]["montage"] == "tcp16"
    pre = res["preprocessing"]
    assert pre["origin"] == "paper" and pre["source"].startswith("CBraMod")
    assert pre["input_shape"] == [32, 16, 10, 200]                     # 10 s, 16 pairs
    assert "notch: 60 Hz (mains 60 Hz from line_freq setting)" in pre["applied"]
    (fold,) = res["methods"][0]["folds"]
    assert res["methods"][0]["method"] == "criss_cross_small (random-init) patch-MLP probe"
    assert {s for s, _ in fold["test_groups"]} == {"aaaaaaca", "aaaaaach"}
    assert not {s for s, _ in fold["val_groups"]} & {s for s, _ in fold["train_groups"]}
    assert res["protocol"]["subject_level"]
    assert any(p["model"] == "BIOT" and p["metric"] == "auroc" for p in res["published"])


def test_tuev_config_as_shipped(tuev_root, tmp_path):
    res = _run("tuev", "tuev", tuev_root, tmp_path)
    _checked(res, ["balanced_accuracy", "cohen_kappa", "f1_weighted"])
    assert res["data"]["class_names"] == ["spsw", "gped", "pled", "eyem", "artf", "bckg"]
    assert res["preprocessing"]["input_shape"][1:] == [16, 5, 200]
    assert len(res["data"]["dropped_trials"]) == 6
    assert res["data"]["split_counts"]["test"] == 12


def test_chb_mit_config_as_shipped(chbmit_root, tmp_path):
    res = _run("chb_mit", "chb-mit", chbmit_root, tmp_path)
    _checked(res, ["balanced_accuracy", "auroc", "auc_pr"])
    (fold,) = res["methods"][0]["folds"]
    assert [s for s, _ in fold["train_groups"]] == ["chb01"]
    assert [s for s, _ in fold["val_groups"]] == ["chb21"]
    assert [s for s, _ in fold["test_groups"]] == ["chb23"]
    assert res["protocol"]["split"]["source"].startswith("CBraMod")
    assert res["data"]["provenance"]["excluded_cases"] == ["chb12", "chb13", "chb17"]
    # the scripts state no filter for CHB-MIT: the model's band applies, with the 60 Hz notch
    pre = res["preprocessing"]
    assert pre["origin"] == "model" and pre["settings"]["l_freq"] == 0.3
    assert any(d.startswith("line_freq") for d in pre["differences_from_model"])


def test_sleep_edf_config_as_shipped(sleep_edf_root, tmp_path):
    res = _run("sleep_edf", "sleep-edf", sleep_edf_root, tmp_path)
    _checked(res, ["balanced_accuracy", "cohen_kappa", "f1_weighted"])
    assert res["data"]["channels"] == ["Fpz-Cz"]
    assert res["protocol"]["name"] == "cross-subject"
    folds = res["methods"][0]["folds"]
    assert [f["test_groups"] for f in folds] and len(folds) == 3      # one subject per fold
    assert all(len({s for s, _ in f["test_groups"]}) == 1 for f in folds)
    assert res["preprocessing"]["input_shape"][1:] == [1, 30, 200]


def test_seed_v_config_as_shipped(tmp_path, monkeypatch):
    clips = tuple((4 * k + 1, 4 * k + 3) for k in range(15))
    monkeypatch.setattr(seed_v_loader, "TRIAL_SECONDS", {s: clips for s in "123"})
    write_seed_v(tmp_path / "seed", subjects=(1, 2), sessions=("1",), seconds=62.0)
    res = _run("seed_v", "seed-v", tmp_path / "seed", tmp_path)
    _checked(res, ["balanced_accuracy", "cohen_kappa", "f1_weighted"])
    assert res["data"]["split_counts"] == {"train": 20, "val": 20, "test": 20}
    assert res["preprocessing"]["input_shape"] == [60, 60, 1, 200]
    assert not res["protocol"]["subject_level"]                        # clips split, not subjects
    assert np.isfinite(res["methods"][0]["summary"]["balanced_accuracy"]["mean"])
