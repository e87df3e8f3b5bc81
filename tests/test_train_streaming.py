"""Pretraining with data.streaming: a few steps on a corpus read shard by shard, exact resume
with the same number of ranks and loader workers, and what it refuses."""

import mne
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from neurofm.corpus import PrepareOptions, prepare_corpus
from neurofm.train import CheckpointManager, TrainingData, load_config, train
from neurofm.train.metrics import read_metrics

MODEL = ("model.overrides={dim: 32, depth: 2, n_heads: 4, ffn_dim: 64, dropout: 0.0, "
         "drop_path: 0.0}")


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    """4 recordings x 30 s of 4-channel EEG -> 24 windows of 5 s, in 4 shards of 6 windows."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    (root / "src").mkdir()
    for subject in range(4):
        raw = mne.io.RawArray(rng.normal(0, 10e-6, (4, 30 * 200)),
                              mne.create_info(["Fz", "Cz", "Pz", "Oz"], 200.0, "eeg"),
                              verbose="error")
        raw.set_montage("standard_1020", verbose="error")
        raw.save(root / "src" / f"sub-{subject:02d}_raw.fif", verbose="error")
    options = PrepareOptions(window_seconds=5.0, channels="all-eeg", trim_seconds=0.0,
                             min_minutes=0.0, max_abs_uv=None, dtype="float32", line_freq=50.0)
    prepare_corpus(root / "src", root / "corpus", options, shard_size_mb=0.1, progress=False)
    return root / "corpus"


def config(corpus, out, *overrides):
    return load_config(None, [f"data.path={corpus}", "data.batch_size=4", "data.streaming=true",
                              "data.shuffle_buffer=5", MODEL, "run.steps=6",
                              f"run.out_dir={out}", "run.progress=false",
                              "run.tensorboard=false", "run.log_every=1",
                              "run.checkpoint_every=2", "optim.warmup_steps=2", *overrides])


def test_streamed_training_runs_and_resumes_exactly(corpus_dir, tmp_path):
    whole = train(config(corpus_dir, tmp_path / "whole"))
    losses = [r["loss"] for r in read_metrics(tmp_path / "whole" / "metrics.jsonl")]
    assert len(losses) == 6 and all(np.isfinite(losses))
    assert (whole.model_dir / "model.safetensors").is_file()

    train(config(corpus_dir, tmp_path / "cut", "run.steps=6"))
    checkpoints = CheckpointManager(tmp_path / "cut" / "checkpoints")
    for step, path in checkpoints.checkpoints():
        if step > 2:
            path.unlink()
    resumed = train(config(corpus_dir, tmp_path / "cut"))
    assert resumed.resumed_from == 2
    again = [r["loss"] for r in read_metrics(tmp_path / "cut" / "metrics.jsonl")][-4:]
    assert again == losses[2:]  # the same batches in the same order: bit-identical losses
    a = load_file(whole.model_dir / "model.safetensors")
    b = load_file(resumed.model_dir / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_streamed_batches_differ_from_map_style(corpus_dir, tmp_path):
    mapped = train(config(corpus_dir, tmp_path / "mapped", "data.streaming=false",
                          "run.steps=2"))
    streamed = train(config(corpus_dir, tmp_path / "streamed", "run.steps=2"))
    assert mapped.final_loss != streamed.final_loss


def test_streaming_needs_a_corpus_and_a_positive_buffer(tmp_path):
    from tests.test_train_loop import make_windows

    data = TrainingData(make_windows(), {"sfreq": 200.0}, "in-memory test windows")
    cfg = load_config(None, ["data.streaming=true", "data.batch_size=4", "run.steps=1",
                             f"run.out_dir={tmp_path}", "run.progress=false",
                             "run.tensorboard=false",
                             ("model.overrides={dim: 32, depth: 2, n_heads: 4, ffn_dim: 64, "
                              "patch_size: 20}")])
    with pytest.raises(ValueError, match="data.streaming needs a corpus folder .* not "
                                         "in-memory test windows"):
        train(cfg, data=data)
    with pytest.raises(ValueError, match="data.shuffle_buffer must be at least 1"):
        load_config(None, ["data.shuffle_buffer=0"])
