"""``neurofm tokenizer train`` / ``encode`` on a small FIF recording written by the test."""

import json

import mne
import numpy as np
import pytest

from neurofm.cli import main
from neurofm.sensors.montages import get_montage
from neurofm.tokenizer import NeuralTokenizer
from neurofm.train.tokenizer_jobs import TokenizerRun

EEG_NAMES = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8", "T7",
             "T8", "P7", "P8", "Fz", "Cz", "Pz"]
TINY_RUN = """\
tokenizer: {name: small, dim: 16, n_heads: 2, code_dim: 8, codebook_size: 16,
            kmeans_vectors: 64, n_encoder_layers: 1}
steps: 4
batch_size: 4
log_every: 2
eval_batches: 2
"""


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """25 s of 19-channel EEG at 200 Hz: one rhythm per electrode plus noise."""
    rng = np.random.default_rng(0)
    t = np.arange(200 * 25) / 200.0
    data = np.array([np.sin(2 * np.pi * rng.uniform(3, 30) * t) for _ in EEG_NAMES]) * 20e-6
    data += rng.normal(size=data.shape) * 5e-6
    raw = mne.io.RawArray(data, mne.create_info(EEG_NAMES, 200.0, "eeg"), verbose="error")
    raw.set_montage(get_montage("standard_1020"))
    path = tmp_path_factory.mktemp("rec") / "rec_raw.fif"
    raw.save(path, verbose="error")
    return path


def test_train_then_encode(tmp_path, recording, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_RUN)
    out = tmp_path / "run"
    assert main(["tokenizer", "train", "--data", str(recording), "--config", str(config),
                 "--out", str(out), "--no-progress"]) == 0
    assert "Tokenizer written to" in capsys.readouterr().out
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    result = json.loads((out / "eval.json").read_text())
    assert {"amplitude", "baseline_amplitude", "usage", "perplexity"} <= set(result)
    tokenizer = NeuralTokenizer.from_pretrained(out / "tokenizer")
    assert tokenizer.config.patch_size == 200 and tokenizer.config.sfreq == 200.0
    assert tokenizer.config.preprocessing["h_freq"] == 75.0

    codes_path = tmp_path / "codes.npz"
    assert main(["tokenizer", "encode", str(out / "tokenizer"), str(recording),
                 "--out", str(codes_path), "--window-seconds", "5"]) == 0
    saved = np.load(codes_path)
    assert saved["codes"].shape == (5, 19, 5, 1)
    assert saved["codes"].min() >= 0 and saved["codes"].max() < 16
    assert list(saved["channels"]) == EEG_NAMES
    np.testing.assert_allclose(saved["start"], [0, 5, 10, 15, 20])


def test_bad_configs_are_reported(tmp_path, capsys):
    assert main(["tokenizer", "train", "--data", "x.fif", "--config", "nope",
                 "--out", str(tmp_path)]) == 2
    assert "neither a named config" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: 3\nbatchsize: 4\n")
    assert main(["tokenizer", "train", "--data", "x.fif", "--config", str(bad),
                 "--out", str(tmp_path)]) == 2
    assert "unknown key(s) batchsize; valid keys: batch_size" in capsys.readouterr().err


def test_run_config_follows_data_and_refuses_conflicts():
    run = TokenizerRun.from_source("small", steps=7)
    assert run.steps == 7 and run.tokenizer == "small"
    assert run.model_config({"patch_size": 100, "sfreq": 100.0}).patch_size == 100
    conflicting = TokenizerRun(tokenizer={"name": "small", "patch_size": 200})
    with pytest.raises(ValueError, match="patch_size=200 but the data were prepared with "
                                         "patch_size=250"):
        conflicting.model_config({"patch_size": 250, "sfreq": 250.0})


def test_encode_missing_tokenizer(tmp_path, recording, capsys):
    assert main(["tokenizer", "encode", str(tmp_path / "none"), str(recording),
                 "--out", str(tmp_path / "c.npz")]) == 2
    assert "none: that folder does not exist" in capsys.readouterr().err


@pytest.mark.slow  # simulates a corpus and launches two torchrun processes (~1 min here)
def test_torchrun_two_processes_on_simulated_corpus(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_RUN)
    out = tmp_path / "run"
    assert main(["tokenizer", "train", "--data", "sim:tiny?recordings=2&seconds=20",
                 "--cache-dir", str(tmp_path / "cache"), "--config", str(config),
                 "--out", str(out), "--nproc", "2", "--no-progress"]) == 0
    tokenizer = NeuralTokenizer.from_pretrained(out / "tokenizer")
    assert tokenizer.config.preprocessing["window_samples"] == 1000
    assert json.loads((out / "eval.json").read_text())["held_out"] is True
