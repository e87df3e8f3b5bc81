"""Config loading, overrides and the learning-rate schedule (one for every training loop)."""

import math

import pytest

from neurofm.train.config import load_config
from neurofm.train.schedule import warmup_cosine
from neurofm.train.tokenizer_loop import TokenizerTrainConfig


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {path: /corpus, batch_size: 8}\n"
                    "model: {name: mamba_small, overrides: {dim: 32}}\n"
                    "optim: {lr: 3e-4}\n")
    cfg = load_config(path, ["run.steps=7", "model.overrides.depth=2", "optim.betas=[0.9, 0.98]",
                             "objective.mask_mode=block"])
    assert cfg.data.path == "/corpus" and cfg.data.batch_size == 8
    assert cfg.model.overrides == {"dim": 32, "depth": 2}
    assert cfg.optim.lr == pytest.approx(3e-4)  # YAML 1.1 reads 3e-4 as a string
    assert cfg.optim.betas == [0.9, 0.98]
    assert cfg.run.steps == 7 and cfg.objective.mask_mode == "block"
    assert cfg.run.precision == "fp32"  # default kept


@pytest.mark.parametrize("override, words", [
    ("run.stepz=3", ["run.stepz", "valid keys"]),
    ("run.steps=1.5", ["run.steps", "int"]),
    ("run.precision=fp16", ["run.precision", "bf16"]),
    ("optim.lr=fast", ["optim.lr", "float"]),
    ("steps", ["section.key=value"]),
    ("data.batch_size=0", ["data.batch_size must be at least 1 window, got 0"]),
    ("run.steps=0", ["run.steps must be at least 1, got 0"]),
    ("run.steps=-5", ["run.steps must be at least 1, got -5"]),
    ("run.checkpoint_every=0", ["run.checkpoint_every must be at least 1"]),
    ("run.log_every=0", ["run.log_every must be at least 1"]),
    ("run.grad_accum=0", ["run.grad_accum must be at least 1"]),
])
def test_bad_overrides_name_the_key(override, words):
    with pytest.raises(ValueError) as err:
        load_config(None, [override])
    for word in words:
        assert word in str(err.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="pretrain/configs"):
        load_config(tmp_path / "nope.yaml")


def test_shipped_configs_load():
    for name in ("sim_tiny", "sim_multimodal", "tueg_criss_cross_base", "tueg_mamba_base"):
        cfg = load_config(f"pretrain/configs/{name}.yaml")
        assert cfg.run.steps > 0 and cfg.data.batch_size > 0


def test_warmup_then_cosine():
    f = [warmup_cosine(s, total_steps=110, warmup_steps=10, min_ratio=0.1) for s in range(110)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0)
    assert f[60] == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the cosine
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    assert warmup_cosine(110, total_steps=110, warmup_steps=10, min_ratio=0.1) == \
        pytest.approx(0.1)


def _tokenizer_lr_0_1(step, steps, lr, warmup_steps, min_lr_ratio):
    """``neurofm.tokenizer.train.TrainConfig.lr_at`` of neurofm 0.1."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return lr * (min_lr_ratio + (1 - min_lr_ratio) * cosine)


def _finetune_factor_0_1(step, total, warm):
    """The fine-tuning ``lr_factor`` of ``neurofm.eval.training.train_model`` in neurofm 0.1."""
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


@pytest.mark.parametrize("steps, warmup, min_ratio", [(100, 10, 0.1), (7, 0, 0.0), (5, 5, 0.3),
                                                      (1, 1, 0.5)])
def test_the_tokenizer_schedule_is_the_shared_one(steps, warmup, min_ratio):
    config = TokenizerTrainConfig(steps=steps, lr=3e-3, warmup_steps=warmup,
                                  min_lr_ratio=min_ratio)
    for step in range(steps + 3):
        assert config.lr_at(step) == pytest.approx(
            _tokenizer_lr_0_1(step, steps, 3e-3, warmup, min_ratio), rel=1e-12, abs=0)


@pytest.mark.parametrize("total, warm", [(60, 20), (20, 0), (1, 1), (30, 30)])
def test_the_finetuning_schedule_is_the_shared_one(total, warm):
    # Every step the optimiser takes (0 .. total - 1) and the value after the last one, up to
    # float rounding (the old formula multiplied by pi before dividing). Beyond ``total`` the old
    # formula rose again; the shared one stays at its floor, and no step uses it.
    for step in range(total + 1):
        assert warmup_cosine(step, total_steps=total, warmup_steps=warm, min_ratio=0.0) == \
            pytest.approx(_finetune_factor_0_1(step, total, warm), rel=1e-12, abs=1e-15)


def test_finetuning_uses_the_shared_schedule(monkeypatch):
    import numpy as np
    import torch

    from neurofm.eval import training

    calls = []

    def recording(step, **kwargs):
        calls.append((step, kwargs))
        return warmup_cosine(step, **kwargs)

    monkeypatch.setattr(training, "warmup_cosine", recording)
    net = torch.nn.Linear(3, 2)
    x = np.random.default_rng(0).normal(size=(12, 3)).astype(np.float32)
    y = np.arange(12) % 2
    config = training.FinetuneConfig(epochs=2, batch_size=4, min_steps_per_epoch=1,
                                     warmup_epochs=1, patience=5)
    training.train_model(net, net, [x], y, np.arange(8), np.arange(8, 12),
                         [{"params": net.parameters(), "lr": 1e-2}], config)
    assert calls[-1] == (4, {"total_steps": 4, "warmup_steps": 2, "min_ratio": 0.0})


def test_only_what_changes_the_trajectory_counts_as_a_changed_setting(tmp_path):
    from neurofm.train.config import trajectory_differences

    before = load_config(None, ["run.out_dir=a", "model.overrides={dim: 32}"]).to_dict()
    same = load_config(None, ["run.out_dir=b", "run.log_every=3", "run.checkpoint_every=7",
                              "run.keep_checkpoints=9", "run.tensorboard=false",
                              "run.progress=false", "run.device=cpu", "run.grad_accum=2",
                              "data.cache_dir=c", "data.num_workers=2",
                              "model.overrides={dim: 32}"])
    assert trajectory_differences(before, same) == []
    other = load_config(None, ["model.overrides={dim: 16}", "optim.lr=1e-3", "run.seed=1",
                               "data.batch_size=8", "objective.mask_ratio=0.4"])
    assert trajectory_differences(before, other) == [
        "data.batch_size: 16 then, 8 now", "model.overrides.dim: 32 then, 16 now",
        "objective.mask_ratio: 0.5 then, 0.4 now", "optim.lr: 0.0005 then, 0.001 now",
        "run.seed: 0 then, 1 now"]
    streaming = load_config(None, ["data.streaming=true", "data.num_workers=2"])
    assert trajectory_differences(streaming.to_dict(), load_config(
        None, ["data.streaming=true"])) == ["data.num_workers: 2 then, 0 now"]


def test_a_0_1_0_config_with_flat_objective_keys_is_the_same_run_as_todays():
    from neurofm.train.config import trajectory_differences

    flat = load_config(None, []).to_dict()
    flat["objective"] = {"mask_ratio": 0.5, "mask_mode": "bernoulli", "mask_block_size": 4,
                         "reconstruction_weight": 1.0, "reconstruction_loss": "mse",
                         "visible_weight": 0.0, "smooth_l1_beta": 1.0,
                         "code_prediction_weight": 0.0, "tokenizer": None,
                         "reconstruction_target": "waveform", "spectral_weight": 1.0,
                         "spectral_phase_weight": 0.0}
    del flat["data"]["streaming"], flat["data"]["shuffle_buffer"]  # not in 0.1.0
    assert trajectory_differences(flat, load_config(None, [])) == []
