"""The training loop on one process with in-memory windows: export, faults, equivalences."""

import json
import math
from pathlib import Path

import pytest
import torch

from neurofm.corpus import DistributedWindowSampler
from neurofm.sensors import SensorBatch
from neurofm.train import CheckpointManager, NonFiniteLossError, TrainingData, load_config, train
from neurofm.train.metrics import read_metrics

TINY_MODEL = ("model.overrides={dim: 32, depth: 2, n_heads: 4, ffn_dim: 64, patch_size: 20, "
              "dropout: 0.0, drop_path: 0.0}")


def make_windows(n=16, c=4, n_patches=4, p=20, seed=0, nan_at=None):
    """Sinusoids + noise (about 0.5 model units) with random sensor positions."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(n_patches * p) / 200.0
    items = []
    for i in range(n):
        freq = 5 + 10 * torch.rand(c, 1, generator=gen)
        phase = 6.28 * torch.rand(c, 1, generator=gen)
        x = 0.5 * torch.sin(2 * math.pi * freq * t + phase) + 0.05 * torch.randn(
            c, n_patches * p, generator=gen)
        if i == nan_at:
            x[1, 7] = float("nan")
        pos = torch.nn.functional.normalize(torch.randn(1, c, 3, generator=gen), dim=-1) * 0.09
        items.append({
            "x": x.reshape(c, n_patches, p).float(),
            "sensors": SensorBatch(pos=pos, ori=torch.zeros(1, c, 3),
                                   kind=torch.zeros(1, c, dtype=torch.long),
                                   chan_mask=torch.ones(1, c, dtype=torch.bool)),
            "patch_valid": torch.ones(n_patches, dtype=torch.bool),
            "source": f"rec{i // 4}.edf",
        })
    return items


def tiny_config(out_dir, *overrides):
    return load_config(None, [TINY_MODEL, "data.batch_size=4", "run.steps=6",
                              f"run.out_dir={out_dir}", "run.progress=false",
                              "run.tensorboard=false", "optim.warmup_steps=2", "run.log_every=1",
                              "run.checkpoint_every=2", "optim.lr=2e-3", *overrides])


def in_memory(items=None, sfreq=200.0):
    return TrainingData(items if items is not None else make_windows(), {"sfreq": sfreq},
                        "in-memory test windows")


def test_a_run_logs_checkpoints_and_exports_a_model(tmp_path):
    from neurofm import from_pretrained

    result = train(tiny_config(tmp_path / "run", "run.tensorboard=true", "run.keep_checkpoints=2"),
                   data=in_memory())
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "lr", "grad_norm", "windows_per_s", "reconstruction"} <= set(records[0])
    assert records[-1]["loss"] < records[0]["loss"]
    assert result.final_loss == pytest.approx(records[-1]["loss"])
    assert (tmp_path / "run" / "loss.png").stat().st_size > 0
    assert list((tmp_path / "run" / "tensorboard").iterdir())

    manager = CheckpointManager(tmp_path / "run" / "checkpoints")
    assert [s for s, _ in manager.checkpoints()] == [4, 6]  # every 2 steps, keep the last 2
    state = manager.load(manager.latest())
    assert {"objective", "optimizer", "scheduler", "scaler", "rng", "data_position",
            "config"} <= set(state)
    assert state["data_position"]["step"] == 6 and len(state["rng"]) == 1

    model_dir = result.model_dir
    config = json.loads((model_dir / "config.json").read_text())
    assert config["preprocessing"]["sfreq"] == 200.0
    assert config["preprocessing"]["patch_samples"] == 20
    card = (model_dir / "README.md").read_text()
    for fact in ("in-memory test windows", "Steps: 6", "masked patch reconstruction (mse",
                 f"{result.final_loss:.6g}", "library_name: neurofm"):
        assert fact in card
    model = from_pretrained(model_dir)
    for name, value in model.state_dict().items():
        assert torch.equal(value, state["objective"]["model." + name]), name


def test_nan_loss_stops_with_the_step_and_source_and_keeps_the_last_good_checkpoint(tmp_path):
    bad = 9
    sampler = DistributedWindowSampler(16, 4, seed=0)
    bad_step = next(s for s in range(4) if bad in sampler.global_batch(s).tolist()) + 1
    if bad_step == 1:  # make sure a checkpoint exists before the bad batch
        pytest.skip("seed puts the bad window in the first batch")
    with pytest.raises(NonFiniteLossError) as err:
        train(tiny_config(tmp_path / "run", "run.checkpoint_every=1"),
              data=in_memory(make_windows(nan_at=bad)))
    message = str(err.value)
    assert f"at step {bad_step} " in message and "rec2.edf" in message
    latest = CheckpointManager(tmp_path / "run" / "checkpoints").latest()
    assert latest.name == f"step-{bad_step - 1:08d}.pt" and f"{latest}" in message
    state = CheckpointManager.load(latest)
    assert all(torch.isfinite(v).all() for v in state["objective"].values()
               if v.is_floating_point())


def test_corpus_with_another_sampling_rate_is_refused(tmp_path):
    with pytest.raises(ValueError) as err:
        train(tiny_config(tmp_path / "run"), data=in_memory(sfreq=256.0))
    assert "sfreq=256 Hz" in str(err.value) and "sfreq=200 Hz" in str(err.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_patch_size_mismatch_names_both_values(tmp_path):
    with pytest.raises(ValueError) as err:
        train(tiny_config(tmp_path / "run", "model.overrides.patch_size=40"), data=in_memory())
    assert "patch_samples=20" in str(err.value) and "patch_samples=40" in str(err.value)


def test_gradient_accumulation_gives_the_same_update_as_the_full_batch(tmp_path):
    # eps=1 makes AdamW's update proportional to the gradient (not ~lr * sign(g), where float
    # rounding flips the sign of near-zero gradients), so equal updates mean equal gradients.
    full = train(tiny_config(tmp_path / "full", "run.steps=2", "optim.eps=1.0"), data=in_memory())
    accum = train(tiny_config(tmp_path / "accum", "run.steps=2", "run.grad_accum=2",
                              "optim.eps=1.0"), data=in_memory())
    a = CheckpointManager.load(full.out_dir / "checkpoints" / "step-00000002.pt")["objective"]
    b = CheckpointManager.load(accum.out_dir / "checkpoints" / "step-00000002.pt")["objective"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-6)


def test_bf16_autocast_trains(tmp_path):
    result = train(tiny_config(tmp_path / "run", "run.steps=3", "run.precision=bf16"),
                   data=in_memory())
    assert math.isfinite(result.final_loss)
    state = CheckpointManager.load(result.out_dir / "checkpoints" / "step-00000003.pt")
    assert all(v.dtype == torch.float32 for v in state["objective"].values()
               if v.is_floating_point())  # weights stay fp32 under autocast


def test_run_compile_falls_back_to_the_same_eager_training_where_compile_fails(tmp_path,
                                                                            monkeypatch):
    from neurofm.nn import cpu_kernels, scan

    def broken_compile(fn, **kwargs):
        def run(*args):
            raise RuntimeError("no C++ compiler")
        return run

    mamba = ("model={name: mamba_small, overrides: {dim: 16, depth: 1, d_state: 4, n_heads: 2, "
             "patch_size: 20, n_latent: null}}")
    # compile applies where the fused C kernel does not run (here: switched off)
    monkeypatch.setattr(cpu_kernels, "_STATE", {**cpu_kernels._STATE, "enabled": False})
    eager = train(tiny_config(tmp_path / "eager", mamba, "run.steps=2"), data=in_memory())
    monkeypatch.setattr(torch, "compile", broken_compile)
    monkeypatch.setattr(scan, "_COMPILE", {"enabled": False, "kernels": None})
    with pytest.warns(RuntimeWarning, match="runs eagerly"):
        compiled = train(tiny_config(tmp_path / "compiled", mamba, "run.steps=2",
                                     "run.compile=true"), data=in_memory())
    assert compiled.final_loss == eager.final_loss
    assert not scan._COMPILE["enabled"]  # the setting does not outlive the run


def test_resume_policies(tmp_path):
    train(tiny_config(tmp_path / "run", "run.steps=2"), data=in_memory())
    with pytest.raises(ValueError, match="run.resume=auto"):
        train(tiny_config(tmp_path / "run", "run.steps=4", "run.resume=never"), data=in_memory())
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        train(tiny_config(tmp_path / "fresh", "run.resume=always"), data=in_memory())
    with pytest.raises(ValueError, match=r"other settings \(run.steps: 2 then, 4 now\)"):
        train(tiny_config(tmp_path / "run", "run.steps=4"), data=in_memory())
    resumed = train(tiny_config(tmp_path / "run", "run.steps=4"), data=in_memory(),
                    allow_changed_settings=True)  # a longer schedule: the user says so
    assert resumed.resumed_from == 2
    assert [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")] == [1, 2, 3, 4]


def test_masked_code_prediction_with_a_frozen_tokenizer(tmp_path):
    from neurofm.tokenizer.model import NeuralTokenizer, tokenizer_config

    torch.manual_seed(0)
    tok_dir = tmp_path / "tokenizer"
    NeuralTokenizer(tokenizer_config("small", patch_size=20, dim=16, code_dim=8,
                                     codebook_size=16, n_encoder_layers=1)).save_pretrained(tok_dir)
    result = train(tiny_config(tmp_path / "run", "run.steps=3", "objective.code_prediction_weight=0.5",
                               f"objective.tokenizer={tok_dir}"), data=in_memory())
    record = read_metrics(result.out_dir / "metrics.jsonl")[-1]
    assert 0.0 < record["codebook_usage"] <= 1.0
    assert record["loss"] == pytest.approx(record["reconstruction"]
                                           + 0.5 * record["code_prediction"], rel=1e-5)
    assert "masked code prediction" in (result.model_dir / "README.md").read_text()


def test_a_resume_with_another_model_width_is_refused_naming_the_setting(tmp_path):
    train(tiny_config(tmp_path / "run", "run.steps=2"), data=in_memory())
    wider = tiny_config(tmp_path / "run", "run.steps=2", "model.overrides.dim=48",
                        "run.log_every=2", "run.checkpoint_every=1")  # cadence: not compared
    with pytest.raises(ValueError, match=r"step-00000002.pt was written by a run with other "
                                         r"settings \(model.overrides.dim: 32 then, 48 now\)"
                                         r".*--allow-changed-settings"):
        train(wider, data=in_memory())
    with pytest.raises(ValueError, match=r"step-00000002.pt does not fit the model and "
                                         r"optimiser of these settings \(.*size mismatch"):
        train(wider, data=in_memory(), allow_changed_settings=True)
    same = train(tiny_config(tmp_path / "run", "run.steps=2", "run.log_every=2"),
                 data=in_memory())
    assert same.resumed_from == 2


def test_a_negative_step_count_writes_nothing(tmp_path, capsys):
    from neurofm.cli import main

    config = Path(__file__).parents[1] / "pretrain" / "configs" / "sim_tiny.yaml"
    assert main(["pretrain", "--config", str(config), "--out",
                 str(tmp_path / "run"), "--set", "run.steps=-5"]) == 2
    assert "run.steps must be at least 1, got -5" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
