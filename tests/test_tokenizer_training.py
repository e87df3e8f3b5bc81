"""Tokenizer training on simulated oscillations: codebook use and reconstruction vs a baseline."""

import numpy as np
import pytest
import torch
from tokenizer_data import eeg_sensors, oscillation_windows, seeg_sensors

from neurofm.sensors import SensorBatch
from neurofm.tokenizer import NeuralTokenizer, tokenizer_config
from neurofm.train.tokenizer_loop import (
    TokenizerTrainConfig,
    evaluate_tokenizer,
    mean_amplitude_spectrum,
    train_tokenizer,
)

PATCH = 200  # the small config's 1-s patches at 200 Hz


def _batches(n_batches: int, seed: int, batch_size: int = 4, n_patches: int = 2) -> list[dict]:
    """Batches of one random 19-electrode montage (or a 12-contact sEEG shaft) each."""
    out = []
    for i in range(n_batches):
        s = seed * 1000 + i
        sensors = eeg_sensors(19, seed=s) if i % 3 else seeg_sensors(12, seed=s)
        x = oscillation_windows(batch_size, sensors.n_channels, n_patches, PATCH, seed=s)
        out.append({"x": x, "sensors": SensorBatch.collate([sensors] * batch_size)})
    return out


def numpy_amplitude_error(model, batches, mean_amplitude=None) -> float:
    """Relative squared error of the predicted Fourier amplitude on ``batches``, from a plain
    numpy rFFT (``norm="ortho"``), not the tokenizer's own loss code; with ``mean_amplitude
    [F]`` that of predicting it for every patch instead. Mean over batches."""
    ratios = []
    for batch in batches:
        x = batch["x"].numpy().astype(np.float64)
        target = np.abs(np.fft.rfft(x, axis=-1)) / np.sqrt(x.shape[-1])
        if mean_amplitude is None:
            with torch.no_grad():
                pred = model.eval()(batch["x"], batch["sensors"]).predictions["amplitude"]
            pred = pred.numpy()
        else:
            pred = np.broadcast_to(mean_amplitude, target.shape)
        ratios.append(float(((pred - target) ** 2).sum() / (target ** 2).sum()))
    return float(np.mean(ratios))


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = NeuralTokenizer(tokenizer_config("small"))
    train, held_out = _batches(30, seed=1), _batches(8, seed=2)
    mean = mean_amplitude_spectrum(train)
    before = evaluate_tokenizer(model, held_out, mean_amplitude=mean)
    before["numpy_amplitude"] = numpy_amplitude_error(model, held_out)
    config = TokenizerTrainConfig(steps=150, lr=2e-3, warmup_steps=15, log_every=50)
    history = train_tokenizer(model, train, config, progress=False)
    after = evaluate_tokenizer(model, held_out, mean_amplitude=mean)
    after["numpy_amplitude"] = numpy_amplitude_error(model, held_out)
    numpy_mean = np.concatenate([np.abs(np.fft.rfft(b["x"].numpy().astype(np.float64), axis=-1))
                                 .reshape(-1, PATCH // 2 + 1) for b in train]).mean(0)
    after["numpy_baseline"] = numpy_amplitude_error(model, held_out,
                                                    numpy_mean / np.sqrt(PATCH))
    return model, history, before, after


def test_codebook_is_used_on_held_out_data(trained):
    model, _, _, after = trained
    size = model.config.codebook_size
    assert after["usage"] >= 0.5
    assert after["perplexity"] >= 0.25 * size


def test_reconstruction_falls_and_beats_mean_spectrum(trained):
    _, history, before, after = trained
    assert after["amplitude"] < 0.5 * before["amplitude"]
    assert after["amplitude"] < 0.9 * after["baseline_amplitude"]
    assert history[-1]["loss"] < history[0]["loss"]
    # the same claims scored by an independent numpy computation of the amplitude error
    assert after["numpy_amplitude"] == pytest.approx(after["amplitude"], rel=0.05)
    assert after["numpy_amplitude"] < 0.5 * before["numpy_amplitude"]
    assert after["numpy_amplitude"] < 0.9 * after["numpy_baseline"]
    assert after["numpy_baseline"] == pytest.approx(after["baseline_amplitude"], rel=0.05)


def test_history_records(trained):
    _, history, _, _ = trained
    assert [r["step"] for r in history] == [50, 100, 150]
    for key in ("lr", "loss", "amplitude", "phase", "commitment", "usage", "perplexity",
                "windows_per_s"):
        assert key in history[-1]
    assert history[0]["lr"] > history[-1]["lr"]


def test_learning_rate_schedule():
    config = TokenizerTrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert config.lr_at(0) == pytest.approx(0.1)
    assert config.lr_at(9) == pytest.approx(1.0)
    assert config.lr_at(99) == pytest.approx(0.1, abs=1e-3)


def _tiny_model():
    torch.manual_seed(0)
    return NeuralTokenizer(tokenizer_config("small", patch_size=32, dim=16, n_heads=2,
                                            code_dim=8, codebook_size=16, kmeans_vectors=16))


def test_one_shot_iterator_stops_and_bad_batches_are_named():
    model = _tiny_model()
    sensors = eeg_sensors(3)
    batches = ({"x": oscillation_windows(1, 3, 2, 32, seed=i), "sensors": sensors}
               for i in range(4))
    history = train_tokenizer(model, batches, TokenizerTrainConfig(steps=10, log_every=2),
                              progress=False)
    assert history[-1]["step"] == 4
    with pytest.raises(ValueError, match="yielded no batch"):
        train_tokenizer(model, [], TokenizerTrainConfig(steps=2), progress=False)
    with pytest.raises(ValueError, match="'x' \\[B, C, N, P\\] and 'sensors'"):
        train_tokenizer(model, [{"signal": torch.zeros(1)}], TokenizerTrainConfig(steps=1),
                        progress=False)


def test_non_finite_loss_stops_with_step():
    model = _tiny_model()
    x = oscillation_windows(1, 3, 2, 32)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="at step 0"):
        train_tokenizer(model, [{"x": x, "sensors": eeg_sensors(3)}],
                        TokenizerTrainConfig(steps=1), progress=False)
