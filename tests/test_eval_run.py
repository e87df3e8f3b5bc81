"""End-to-end evaluation runs on small synthetic trial sets (library entry point)."""

import json

import numpy as np
import pytest
import torch
from eval_helpers import alpha_trials

from neurofm.eval.baselines import bandpower_method, fbcsp_method, log_band_power
from neurofm.eval.finetune import EncoderWithHead, apply_freeze, finetune_fold
from neurofm.eval.harness import TaskInfo, run_method
from neurofm.eval.inputs import prepare_trials, resolve_preprocessing
from neurofm.eval.protocols import make_folds
from neurofm.eval.run import EvalSettings, run_evaluation
from neurofm.eval.training import FinetuneConfig

TINY = {"dim": 32, "depth": 2, "n_heads": 4, "ffn_dim": 64}


def _tiny_model(seed=0):
    from neurofm.models import create_model

    torch.manual_seed(seed)
    return create_model("criss_cross_small", **TINY)


def test_probe_run_writes_table_figures_and_beats_chance(tmp_path):
    trials = alpha_trials(n_subjects=4, per_class=8)
    settings = EvalSettings(model="criss_cross_small", data="synthetic", out=str(tmp_path / "o"),
                            protocol="cross-subject", seeds=1, n_folds=2, pool="channels",
                            model_overrides=TINY, cache_dir=str(tmp_path / "cache"),
                            importance_trials=16)
    payload = run_evaluation(settings, trials=trials)
    out = tmp_path / "o"
    for name in ("results.json", "results.md", "confusion.png", "per_subject.png", "topomap.png"):
        assert (out / name).stat().st_size > 0, name
    saved = json.loads((out / "results.json").read_text())
    methods = [m["method"] for m in saved["methods"]]
    assert methods == ["criss_cross_small (random-init) probe", "log band power + LR (classic)"]
    probe = saved["methods"][0]
    assert probe["n_runs"] == 2
    assert probe["summary"]["balanced_accuracy"]["mean"] > 0.75  # chance is 0.5
    assert set(probe["per_subject"]) == {"S00", "S01", "S02", "S03"}
    assert any("resample: 100 Hz -> 200 Hz" in s for s in saved["preprocessing"]["applied"])
    assert saved["preprocessing"]["settings"]["sfreq"] == 200
    assert saved["protocol"]["subject_level"] is True
    # the synthetic effect sits on C3/C4: occlusion importance must rank one of them first
    imp = payload["channel_importance"]
    assert imp["channels"][int(np.argmax(imp["importance"]))] in ("C3", "C4")
    table = (out / "results.md").read_text()
    assert "log band power + LR (classic)" in table and "Balanced acc." in table


def test_bandpower_and_fbcsp_baselines_on_shared_folds():
    trials = alpha_trials(n_subjects=2, per_class=8)
    feats, bands = log_band_power(trials.X, trials.sfreq)
    assert feats.shape == (32, 8 * len(bands)) and "alpha" in bands
    task = TaskInfo(trials.y, trials.subject, "binary", 2)
    folds = {0: make_folds("loso", y=trials.y, subjects=trials.subject)}
    for fp in (bandpower_method(trials.X, trials.sfreq, trials.y, trials.subject,
                                regression=False),
               fbcsp_method(trials.X, trials.sfreq, trials.y, trials.subject)):
        result = run_method("baseline", fp, task, folds)
        assert len(result.folds) == 2
        assert result.headline("binary")["mean"] > 0.8


def test_freeze_modes_select_trainable_parameters():
    model = EncoderWithHead(_tiny_model(), n_outputs=2)
    assert apply_freeze(model, "backbone") == []
    assert model.backbone_frozen
    model.train()
    assert not model.backbone.training and model.head.training
    partial = apply_freeze(model, "partial:1")
    assert partial and all(not n.startswith("trunk.blocks.0.") for n in partial)
    assert any(n.startswith("trunk.blocks.1.") for n in partial)
    assert len(apply_freeze(model, "none")) == len(list(model.backbone.parameters()))
    with pytest.raises(ValueError, match="between 1 and 2"):
        apply_freeze(model, "partial:5")
    with pytest.raises(ValueError, match="Unknown --freeze"):
        apply_freeze(model, "some")


@pytest.mark.parametrize("lora_rank", [None, 2])
def test_finetune_fold_trains_head_only_without_touching_the_backbone(lora_rank):
    trials = alpha_trials(n_subjects=3, per_class=6)
    inputs = prepare_trials(trials.X, trials.sfreq, trials.sensors, resolve_preprocessing(None))
    backbone = _tiny_model()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    (fold, *_) = make_folds("loso", y=trials.y, subjects=trials.subject)
    config = FinetuneConfig(epochs=2, batch_size=8, patience=2)
    pred, proba, info = finetune_fold(backbone, inputs.x, inputs.patch_valid, inputs.sensors,
                                      trials.y, trials.subject, fold, n_outputs=2,
                                      regression=False, freeze="backbone", config=config,
                                      lora_rank=lora_rank)
    assert pred.shape == (fold.test.size,) and proba.shape == (fold.test.size, 2)
    assert len(info["history"]["val_loss"]) >= 1 and info["n_val"] > 0
    # head only, or head + the adapted layers (out_proj, linear1, linear2 in each of 2 layers)
    if lora_rank is None:
        assert info["n_trainable_backbone_tensors"] == 0
    else:
        assert info["n_trainable_backbone_tensors"] >= 2 * 3
    assert info["lora_rank"] == lora_rank
    for k, v in before.items():  # the caller's backbone is copied, never trained in place
        assert torch.equal(v, backbone.state_dict()[k])


def test_train_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="lr_bakcbone"):
        FinetuneConfig.from_dict({"lr_bakcbone": 1e-4})


def test_pretrained_directory_gets_a_random_init_reference_row(tmp_path):
    model = _tiny_model(seed=7)
    model.save_pretrained(tmp_path / "model")
    trials = alpha_trials(n_subjects=2, per_class=6, split=True)
    settings = EvalSettings(model=str(tmp_path / "model"), data="synthetic",
                            out=str(tmp_path / "o"), protocol="official", seeds=2,
                            baselines=[], importance=False, cache_dir=str(tmp_path / "c"))
    payload = run_evaluation(settings, trials=trials)
    names = [m["method"] for m in payload["methods"]]
    assert names == ["criss_cross_small (pretrained) probe",
                     "criss_cross_small (random-init) probe"]
    assert payload["model"]["kind"] == "pretrained"
    assert all(m["n_runs"] == 2 for m in payload["methods"])
    # one extraction for the pretrained model, one per seed for the random-init reference
    timing = payload["embedding_timing"]
    assert len(timing["criss_cross_small (pretrained) probe"]) == 1
    assert len(timing["criss_cross_small (random-init) probe"]) == 2
    with pytest.raises(ValueError, match="registry names only"):
        run_evaluation(EvalSettings(model=str(tmp_path / "model"), data="x", out=str(tmp_path),
                                    model_overrides={"dim": 8}), trials=trials)


def test_regression_task_uses_ridge_probe_and_regression_metrics(tmp_path):
    from neurofm.datasets.trials import TrialSet

    base = alpha_trials(n_subjects=2, per_class=8, effect=0.0)
    rng = np.random.default_rng(1)
    target = rng.uniform(0, 4, len(base.y))
    t = np.arange(base.X.shape[-1]) / base.sfreq
    X = base.X + target[:, None, None] * 1e-5 * np.sin(2 * np.pi * 10 * t)  # all channels
    trials = TrialSet(name="synthetic-vigilance", X=X, y=target, subject=base.subject,
                      sfreq=base.sfreq, sensors=base.sensors, task="regression")
    payload = run_evaluation(EvalSettings(
        model="criss_cross_small", data="x", out=str(tmp_path), protocol="within-subject",
        n_folds=2, seeds=1, pool="channels", model_overrides=TINY, importance=False,
        cache_dir=str(tmp_path / "c")), trials=trials)
    assert payload["headline_metric"] == "pearson_r"
    for method in payload["methods"]:
        assert set(method["summary"]) == {"pearson_r", "r2", "rmse"}
        assert "alpha" in method["folds"][0]["params"]
    assert payload["methods"][1]["summary"]["pearson_r"]["mean"] > 0.8  # band power sees it
    assert not (tmp_path / "confusion.png").exists()
    assert (tmp_path / "per_subject.png").is_file()


@pytest.mark.parametrize("pooling", ["mean", "attention", "channels"])
def test_encoder_with_head_poolings_give_logits(pooling):
    from neurofm.sensors import SensorBatch

    trials = alpha_trials(n_subjects=1, per_class=2)
    inputs = prepare_trials(trials.X, trials.sfreq, trials.sensors, resolve_preprocessing(None))
    model = EncoderWithHead(_tiny_model(), n_outputs=3, pooling=pooling, n_channels=8).eval()
    sensors = SensorBatch.collate([SensorBatch.from_layout(inputs.sensors)] * 4)
    logits = model(torch.from_numpy(inputs.x), sensors,
                   patch_valid=torch.from_numpy(inputs.patch_valid))
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()


def test_finetune_with_per_channel_pooling_sees_which_side_carries_the_effect(tmp_path):
    # C3 vs C4 alpha: the mean over channels cannot tell the classes apart, per-channel can.
    trials = alpha_trials(n_subjects=2, per_class=12)
    scores = {}
    for pool in ("mean", "channels"):
        settings = EvalSettings(model="criss_cross_small", model_overrides=TINY, data="synthetic",
                                out=str(tmp_path / pool), mode="finetune", freeze="backbone",
                                pool=pool, protocol="within-subject", seeds=1, n_folds=2,
                                baselines=[], importance=False,
                                train={"epochs": 3, "batch_size": 8, "lr_head": 1e-2})
        payload = run_evaluation(settings, trials=trials)
        (method,) = payload["methods"]
        scores[pool] = method["summary"]["balanced_accuracy"]["mean"]
    assert scores["channels"] >= 0.8
    assert scores["channels"] - scores["mean"] >= 0.2


def test_small_fit_sets_are_cycled_to_min_steps_per_epoch():
    from neurofm.eval.training import steps_per_epoch, train_model

    config = FinetuneConfig(epochs=3, batch_size=4, min_steps_per_epoch=5, patience=10)
    assert steps_per_epoch(6, config) == 5
    assert steps_per_epoch(100, config) == 25  # a large fit set: one pass per epoch
    assert steps_per_epoch(6, FinetuneConfig(batch_size=4, min_steps_per_epoch=1)) == 2
    module = torch.nn.Linear(3, 2)
    seen = []

    def forward(x):
        if module.training:
            seen.append(x.shape[0])
        return module(x)

    x = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    y = np.array([0, 1] * 4)
    history = train_model(module, forward, [x], y, np.arange(6), np.arange(6, 8),
                          [{"params": list(module.parameters()), "lr": 1e-2}], config)
    assert len(history.train_loss) == 3
    assert len(seen) == 15  # 5 steps per epoch, not ceil(6 / 4) = 2
    assert sum(seen[:5]) == 4 + 2 + 4 + 2 + 4  # whole shuffled passes, the last one cut short
