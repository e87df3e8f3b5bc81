"""Spectral reconstruction target: log Fourier amplitude (+ amplitude-weighted phase)."""

import math

import numpy as np
import pytest
import torch

from neurofm.objectives import MaskedReconstruction, TokenCounts, build_objective, token_errors
from neurofm.objectives.reconstruction import spectral_token_errors
from neurofm.train.config import load_config

COS = torch.tensor([1.0, 0.0, -1.0, 0.0])  # one cycle per 4 samples: amplitude 1 in bin 1
SIN = torch.tensor([0.0, 1.0, 0.0, -1.0])  # same amplitude, phase shifted by a quarter cycle


def _masks(b=2, c=3, n=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    real = torch.ones(b, c, n, dtype=torch.bool)
    real[0, 2] = False  # a padding channel
    mask = (torch.rand(b, c, n, generator=gen) < 0.5) & real
    return mask, real


def _counts(mask, real):
    return TokenCounts(masked=float(mask.sum()), visible=float((real & ~mask).sum()))


def test_spectral_error_is_zero_when_the_prediction_is_the_target():
    x = torch.randn(2, 3, 4, 200)
    assert spectral_token_errors(x, x).abs().max().item() < 1e-10
    assert spectral_token_errors(x, x, phase_weight=1.0).abs().max().item() < 1e-10


def test_spectral_error_matches_a_hand_computation():
    # |rfft(2 cos, ortho)| = [0, 2, 0] against [0, 1, 0]: one bin of three is off by log 3 - log 2.
    amplitude = spectral_token_errors(2 * COS.view(1, 1, 1, 4), COS.view(1, 1, 1, 4))
    assert amplitude.item() == pytest.approx((math.log(3) - math.log(2)) ** 2 / 3, rel=1e-5)
    # A shifted phase has the same amplitude: no amplitude error, and the waveform MSE is 1.
    pred, target = SIN.view(1, 1, 1, 4), COS.view(1, 1, 1, 4)
    assert spectral_token_errors(pred, target).item() == pytest.approx(0.0, abs=1e-10)
    assert token_errors(pred, target).item() == pytest.approx(1.0)
    # Phasors -i vs 1 in the only bin with power: |(-i) - 1|^2 = 2, times phase_weight 0.5.
    assert spectral_token_errors(pred, target, phase_weight=0.5).item() == \
        pytest.approx(1.0, rel=1e-5)


def numpy_spectral_errors(pred, target, phase_weight):
    """``spectral_token_errors`` from its definition, in float64 numpy: the mean over the bins
    of the squared log1p-amplitude difference, plus ``phase_weight`` x the target-amplitude
    weighted mean of |unit phasor of pred - unit phasor of target|^2."""
    p = np.fft.rfft(np.asarray(pred, np.float64), axis=-1) / np.sqrt(pred.shape[-1])
    t = np.fft.rfft(np.asarray(target, np.float64), axis=-1) / np.sqrt(target.shape[-1])
    amplitude = ((np.log1p(np.abs(p)) - np.log1p(np.abs(t))) ** 2).mean(-1)
    phase = (np.abs(t) * np.abs(np.exp(1j * np.angle(p)) - np.exp(1j * np.angle(t))) ** 2
             ).sum(-1) / np.abs(t).sum(-1)
    return amplitude + phase_weight * phase


@pytest.mark.parametrize("phase_weight", [0.0, 0.7])
def test_spectral_error_equals_a_numpy_reference(phase_weight):
    gen = torch.Generator().manual_seed(3)
    n = torch.arange(64.0)
    # rhythms at several phases (not only 0 and a quarter cycle) plus noise
    target = (torch.sin(2 * math.pi * 5 * n / 64 + torch.rand(2, 3, 4, 1, generator=gen) * 6)
              + 0.3 * torch.randn(2, 3, 4, 64, generator=gen))
    pred = target.roll(7, dims=-1) + 0.2 * torch.randn(2, 3, 4, 64, generator=gen)
    got = spectral_token_errors(pred, target, phase_weight=phase_weight)
    want = numpy_spectral_errors(pred.numpy(), target.numpy(), phase_weight)
    assert got.shape == (2, 3, 4)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-6)


def test_phase_error_of_an_eighth_cycle_shift():
    # target sin (phasor -i in bin 1), prediction shifted by +1/8 cycle: phasor e^{-i pi/4};
    # |e^{-i pi/4} - (-i)|^2 = 2 - 2 cos(pi/4)
    k = torch.arange(8.0)
    target = torch.sin(2 * math.pi * k / 8).view(1, 1, 1, 8)
    pred = torch.sin(2 * math.pi * k / 8 + math.pi / 4).view(1, 1, 1, 8)
    assert spectral_token_errors(pred, target, phase_weight=1.0).item() == \
        pytest.approx(2 - 2 * math.cos(math.pi / 4), rel=1e-5)


def test_phase_errors_are_weighted_by_the_target_amplitude_not_the_prediction():
    # 8-sample patches; target: amplitude 2 at 1 cycle, 1 at 2 cycles. The prediction has the
    # right phase at 1 cycle and a quarter-cycle error (|1 - (-i)|^2 = 2) at 2 cycles, with other
    # amplitudes (1 and 3). Weighted by the target: (2 x 0 + 1 x 2) / 3; by the prediction it
    # would be (1 x 0 + 3 x 2) / 4.
    angle = 2 * math.pi * torch.arange(8.0) / 8
    target = (2 * torch.cos(angle) + torch.cos(2 * angle)).view(1, 1, 1, 8)
    pred = (torch.cos(angle) + 3 * torch.sin(2 * angle)).view(1, 1, 1, 8)
    phase = spectral_token_errors(pred, target, phase_weight=1.0) - \
        spectral_token_errors(pred, target)
    assert phase.item() == pytest.approx(2 / 3, rel=1e-5)


def test_waveform_error_prefers_zeros_and_spectral_error_prefers_the_right_power():
    # Masked-patch dilemma for a 10 Hz rhythm of unknown phase (200 samples, 10 whole cycles).
    n = torch.arange(200.0)
    phases = torch.rand(64, generator=torch.Generator().manual_seed(0)) * 2 * math.pi
    target = torch.sin(2 * math.pi * 10 * n / 200 + phases[:, None]).view(1, 1, 64, 200)
    zeros = torch.zeros_like(target)
    same_power = torch.sin(2 * math.pi * 10 * n / 200).expand(1, 1, 64, 200)
    # waveform MSE: zeros 0.5 < right power, wrong phase ~1.0
    assert token_errors(zeros, target).mean().item() == pytest.approx(0.5, rel=1e-3)
    assert token_errors(same_power, target).mean().item() > 0.8
    # spectrum: zeros miss the one bin of amplitude sqrt(200) / 2 (of 101 bins); right power: 0
    expected = math.log1p(math.sqrt(200) / 2) ** 2 / 101
    assert spectral_token_errors(zeros, target).mean().item() == pytest.approx(expected, rel=1e-4)
    assert spectral_token_errors(same_power, target).mean().item() < 1e-6


def test_only_masked_real_tokens_count_and_shares_add_up():
    mask, real = _masks(b=4, seed=3)
    target = torch.randn(4, 3, 4, 16)
    pred = torch.randn(4, 3, 4, 16)
    counts = _counts(mask, real)
    objective = MaskedReconstruction(target="spectrum", spectral_phase_weight=0.3)
    loss = objective.score(pred, target, mask, real, counts)
    expected = spectral_token_errors(pred, target, 0.3)[mask].mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    changed = pred.clone()
    changed[~mask] = 100.0  # visible and padded predictions do not matter
    assert objective.score(changed, target, mask, real, counts).item() == pytest.approx(loss.item())
    halves = sum(objective.score(pred[i:i + 2], target[i:i + 2], mask[i:i + 2],
                                 real[i:i + 2], counts) for i in (0, 2))
    assert halves.item() == pytest.approx(loss.item(), rel=1e-6)


def test_both_adds_the_weighted_spectral_error_to_the_waveform_error():
    mask, real = _masks()
    target, pred = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 4, 8)
    counts = _counts(mask, real)
    both = MaskedReconstruction("mse", target="both", spectral_weight=0.25).score(
        pred, target, mask, real, counts)
    waveform = MaskedReconstruction("mse").score(pred, target, mask, real, counts)
    spectrum = MaskedReconstruction(target="spectrum").score(pred, target, mask, real, counts)
    assert both.item() == pytest.approx(waveform.item() + 0.25 * spectrum.item(), rel=1e-6)


@pytest.mark.parametrize("pred_kind", ["random", "zeros"])
def test_gradient_flows_and_stays_finite(pred_kind):
    mask, real = _masks()
    target = torch.randn(2, 3, 4, 8)
    pred = (torch.randn(2, 3, 4, 8) if pred_kind == "random" else torch.zeros(2, 3, 4, 8))
    pred.requires_grad_(True)
    objective = MaskedReconstruction(target="both", spectral_phase_weight=1.0)
    objective.score(pred, target, mask, real, _counts(mask, real)).backward()
    grad = pred.grad
    assert torch.isfinite(grad).all()
    assert grad[mask].abs().sum() > 0
    assert grad[~mask].abs().sum() == 0


def test_build_objective_and_config_select_the_target():
    section = "{target: both, spectral_weight: 0.5, spectral_phase_weight: 0.1}"
    cfg = load_config(None, [f"objective.terms.reconstruction={section}"])
    rec = build_objective(cfg.objective, model=torch.nn.Identity()).reconstruction
    assert (rec.target, rec.spectral_weight, rec.spectral_phase_weight) == ("both", 0.5, 0.1)
    with pytest.warns(DeprecationWarning, match="objective.terms.reconstruction.target"):
        cfg = load_config(None, ["objective.reconstruction_target=spectrum",
                                 "objective.spectral_weight=2.0"])
    assert cfg.objective.terms["reconstruction"].target == "spectrum"
    assert cfg.objective.terms["reconstruction"].spectral_weight == 2.0
    assert load_config(None).objective.terms["reconstruction"].target == "waveform"
    with pytest.raises(ValueError, match="objective.terms.reconstruction.target"):
        load_config(None, ["objective.terms.reconstruction.target=phase"])
    with pytest.raises(ValueError, match="objective.reconstruction_target"):
        load_config(None, ["objective.reconstruction_target=phase"])


def test_bad_target_or_weight_is_named():
    with pytest.raises(ValueError, match="objective.terms.reconstruction.target"):
        MaskedReconstruction(target="fft")
    with pytest.raises(ValueError, match="objective.terms.reconstruction.spectral_weight"):
        MaskedReconstruction(target="both", spectral_weight=-1.0)


def test_demo_backbones_pretrain_on_the_spectrum(tmp_path):
    from neurofm.demo.pretraining import pretrain_config
    from neurofm.demo.settings import QUICK
    from neurofm.train.config import PretrainConfig

    targets = {}
    for plan in QUICK.models:
        config = PretrainConfig.from_dict(pretrain_config(plan, tmp_path / "c", tmp_path / "r"))
        targets[plan.label] = config.objective.terms["reconstruction"].target
    assert targets == {"criss_cross": "spectrum", "mamba": "spectrum"}
