"""The shipped BCI configs run end to end on FakeDataset stand-ins of their datasets: the same
``moabb:`` loader, the papers' splits and preprocessing, the patch-MLP head, tiny data and a tiny
model (the real datasets cannot be downloaded here)."""

import json

import pytest

pytest.importorskip("moabb")

import neurofm.datasets.moabb as moabb_loader
from neurofm.datasets.moabb_standins import SHAPES, standin_dataset
from neurofm.eval.run import run_evaluation
from neurofm.eval.settings import TaskConfig, evaluation_settings, read_task_config

TINY = {"dim": 32, "depth": 2, "n_heads": 4, "ffn_dim": 64}
QUICK = TaskConfig(seeds=1, baselines="bandpower",
                   train={"epochs": 1, "min_steps_per_epoch": 2, "batch_size": 64})


def _run(config, tmp_path, monkeypatch, standin, **flags):
    requested = []

    def by_name(name):
        requested.append(name)
        return standin

    monkeypatch.setattr(moabb_loader, "dataset_by_name", by_name)
    task = read_task_config(config).merged(QUICK).merged(TaskConfig(**flags))
    settings = evaluation_settings("finetune", task, model="criss_cross_small",
                                   out=str(tmp_path / "out"), model_overrides=TINY,
                                   cache_dir=str(tmp_path / "cache"), importance=False)
    payload = run_evaluation(settings)
    assert requested == [task.data.partition("?")[0].split(":")[1]]
    return payload, json.loads((tmp_path / "out" / "results.json").read_text())


def test_bcic_iv_2a_config_on_a_bnci2014_001_standin(tmp_path, monkeypatch):
    standin = standin_dataset("BNCI2014_001", runs=1, events_per_run=4, seed=2)
    _, res = _run("finetune/bcic_iv_2a.yaml", tmp_path, monkeypatch, standin)
    assert res["data"]["n_trials"] == 9 * 2 * 4 and res["data"]["n_sessions"] == 18
    assert res["data"]["split_counts"] == {"train": 40, "val": 16, "test": 16}
    assert res["protocol"]["split"]["source"].startswith("CBraMod")
    pre = res["preprocessing"]
    assert pre["origin"] == "paper" and pre["source"].startswith("CBraMod")
    assert pre["filter"] == "loader" and pre["loader_band"]["l_freq"] == 0.3
    assert pre["input_shape"] == [72, 22, 4, 200]     # 2-6 s of the trial at 200 Hz
    assert "h_freq: 75.0 vs 50.0" in pre["differences_from_model"]
    assert any(d.startswith("window: 0-4 s") for d in pre["differences_from_model"])
    (fold,) = res["methods"][0]["folds"]
    assert res["methods"][0]["method"] == "criss_cross_small (random-init) finetune (none)"
    assert fold["train_groups"] == [[str(s), se] for s in range(1, 6) for se in ("0", "1")]
    assert fold["val_groups"] == [[str(s), se] for s in (6, 7) for se in ("0", "1")]
    assert fold["test_groups"] == [[str(s), se] for s in (8, 9) for se in ("0", "1")]
    assert (fold["n_train"], fold["n_val"], fold["n_test"]) == (40, 16, 16)
    assert set(fold["metrics"]) >= {"balanced_accuracy", "cohen_kappa", "f1_weighted"}
    assert {p["model"] for p in res["published"]} == {"CBraMod", "LaBraM", "BIOT"}
    assert any(item.startswith("filter:") for item in res["to_check"])
    cbramod = {p["metric"]: p["value"] for p in res["published"] if p["model"] == "CBraMod"}
    assert cbramod == {"balanced_accuracy": 0.5138, "cohen_kappa": 0.3518, "f1_weighted": 0.4984}


def test_bcic_iv_2a_config_keeps_loso_as_the_stricter_protocol(tmp_path, monkeypatch):
    assert read_task_config("finetune/bcic_iv_2a.yaml").also_protocols == ["loso"]
    standin = standin_dataset("BNCI2014_001", subjects=3, runs=1, events_per_run=4, seed=2)
    monkeypatch.setattr(moabb_loader, "dataset_by_name", lambda name: standin)
    task = read_task_config("finetune/bcic_iv_2a.yaml").merged(QUICK).merged(
        TaskConfig(protocol="loso", baselines="none"))
    res = run_evaluation(evaluation_settings(
        "probe", task, model="criss_cross_small", out=str(tmp_path / "loso"),
        model_overrides=TINY, cache_dir=str(tmp_path / "cache"), importance=False))
    folds = res["methods"][0]["folds"]
    assert res["methods"][0]["method"] == "criss_cross_small (random-init) patch-MLP probe"
    assert [f["test_groups"] for f in folds] == [[[s, "0"], [s, "1"]] for s in ("1", "2", "3")]
    assert res["protocol"]["subject_level"] and "split" not in res["protocol"]


def test_physionet_mi_config_on_a_physionetmi_standin(tmp_path, monkeypatch):
    assert SHAPES["PhysionetMI"].subjects == 109
    standin = standin_dataset("PhysionetMI", runs=1, events_per_run=4, seed=3)
    _, res = _run("finetune/physionet_mi.yaml", tmp_path, monkeypatch, standin)
    assert res["data"]["n_subjects"] == 108                       # subject 88 left out
    assert res["data"]["class_names"] == ["left_hand", "right_hand", "hands", "feet"]
    assert res["preprocessing"]["input_shape"][1:] == [64, 4, 200]
    assert res["preprocessing"]["origin"] == "paper"
    applied = " | ".join(res["preprocessing"]["applied"])
    assert "window: 0-4 s of each trial (640 samples at 160 Hz)" in applied
    assert "resample: 160 Hz -> 200 Hz" in applied
    (fold,) = res["methods"][0]["folds"]
    assert {g[0] for g in fold["train_groups"]} == {str(s) for s in range(1, 71)}
    assert {g[0] for g in fold["val_groups"]} == {str(s) for s in range(71, 90)} - {"88"}
    assert {g[0] for g in fold["test_groups"]} == {str(s) for s in range(90, 110)}
