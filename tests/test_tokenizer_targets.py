"""The tokenizer's Fourier targets and reconstruction losses against a plain numpy computation.

The reference below is written from the definitions in ``docs/tokenizer.md`` and the docstrings
(amplitude and phase of ``rfft(norm="ortho")``, relative squared error over real channels, the
phase error as cos/sin weighted by the target amplitude), not from the code under test.
"""

import numpy as np
import pytest
import torch
from tokenizer_data import eeg_sensors, oscillation_windows

from neurofm.sensors import SensorBatch
from neurofm.tokenizer import NeuralTokenizer, tokenizer_config
from neurofm.tokenizer.model import fourier_targets, relative_error


def numpy_targets(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude ``[..., F]`` and (cos, sin) of the phase ``[..., 2F]`` of patches ``[..., P]``."""
    spectrum = np.fft.rfft(x.astype(np.float64), axis=-1) / np.sqrt(x.shape[-1])
    phase = np.arctan2(spectrum.imag, spectrum.real)
    return np.abs(spectrum), np.concatenate([np.cos(phase), np.sin(phase)], axis=-1)


def numpy_losses(pred: dict, x: np.ndarray, chan_mask: np.ndarray) -> dict:
    """The tokenizer's losses of ``pred`` (numpy arrays ``[B, C, N, *]``) against ``x``."""
    real = chan_mask[:, :, None, None].astype(np.float64)

    def relative(p, t):
        return float((((p - t) ** 2) * real).sum() / ((t ** 2) * real).sum())

    amplitude, phase = numpy_targets(x)
    weight = np.concatenate([amplitude, amplitude], axis=-1) * real
    return {"amplitude": relative(pred["amplitude"], amplitude),
            "phase": float((((pred["phase"] - phase) ** 2) * weight).sum() / weight.sum()),
            "raw": relative(pred["raw"], x)}


def _patches(seed=0, shape=(2, 3, 2, 64)) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(shape[-1]) / 64.0
    x = 0.3 * rng.standard_normal(shape) + np.sin(2 * np.pi * 5 * t + rng.uniform(0, 6, shape[:3]
                                                                           + (1,)))
    return torch.tensor(x, dtype=torch.float32)


def test_fourier_targets_equal_a_numpy_rfft():
    x = _patches()
    amplitude, phase = fourier_targets(x)
    want_amplitude, want_phase = numpy_targets(x.numpy())
    assert amplitude.shape == (2, 3, 2, 33) and phase.shape == (2, 3, 2, 66)
    np.testing.assert_allclose(amplitude.numpy(), want_amplitude, rtol=1e-5, atol=1e-6)
    # compare phases where they are defined (a bin with power)
    defined = np.concatenate([want_amplitude, want_amplitude], -1) > 1e-3
    np.testing.assert_allclose(phase.numpy()[defined], want_phase[defined], atol=1e-4)
    # the 5-Hz bin of a 1-s patch at 64 Hz holds the sine: amplitude sqrt(P) / 2 = 4
    assert amplitude[..., 5].mean().item() == pytest.approx(4.0, rel=0.15)


def test_relative_error_is_zero_for_the_target_one_for_zeros_and_ignores_padding():
    target = _patches(1)
    chan_mask = torch.tensor([[True, True, False], [True, False, True]])
    noisy = target + 0.1 * torch.randn_like(target)
    noisy[~chan_mask] = 1e6  # padding channels never count
    pad = chan_mask[:, :, None, None].numpy()
    want = (((noisy - target).numpy() ** 2) * pad).sum() / ((target.numpy() ** 2) * pad).sum()
    assert relative_error(noisy, target, chan_mask).item() == pytest.approx(want, rel=1e-5)
    assert relative_error(target, target, chan_mask).item() == 0.0
    assert relative_error(torch.zeros_like(target), target, chan_mask).item() == \
        pytest.approx(1.0, rel=1e-6)
    assert relative_error(-target, target, chan_mask).item() == pytest.approx(4.0, rel=1e-6)


def test_reconstruction_losses_equal_the_numpy_reference():
    x = _patches(2)
    chan_mask = torch.tensor([[True, True, True], [True, True, False]])
    torch.manual_seed(0)
    pred = {"amplitude": torch.rand(2, 3, 2, 33) * 4, "phase": torch.rand(2, 3, 2, 66) * 2 - 1,
            "raw": torch.randn(2, 3, 2, 64)}
    losses = NeuralTokenizer.reconstruction_losses(pred, x, chan_mask)
    want = numpy_losses({k: v.numpy().astype(np.float64) for k, v in pred.items()}, x.numpy(),
                        chan_mask.numpy())
    assert losses.keys() == want.keys()
    for name, value in want.items():
        assert losses[name].item() == pytest.approx(value, rel=1e-4), name


def test_forward_loss_is_the_weighted_sum_of_the_reference_terms():
    torch.manual_seed(0)
    config = tokenizer_config("small", patch_size=32, dim=16, n_heads=2, code_dim=8,
                              codebook_size=16, kmeans_vectors=16, targets=["spectrum", "raw"],
                              phase_weight=0.3)
    model = NeuralTokenizer(config).eval()
    x = oscillation_windows(2, 3, 2, 32, seed=4)
    sensors = SensorBatch.collate([eeg_sensors(3)] * 2)
    with torch.no_grad():
        out = model(x, sensors)
    want = numpy_losses({k: v.numpy().astype(np.float64) for k, v in out.predictions.items()},
                        x.numpy(), sensors.chan_mask.numpy())
    for name, value in want.items():
        assert out.losses[name].item() == pytest.approx(value, rel=1e-4), name
    total = want["amplitude"] + 0.3 * want["phase"] + want["raw"] + out.losses["commitment"].item()
    assert out.loss.item() == pytest.approx(total, rel=1e-4)
