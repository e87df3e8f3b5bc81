"""Bidirectional Mamba: exact selective scan, trailing padding, precision.

The encoder contract (shapes, padding, channel order, masks, errors) is checked for every
registered model in ``tests/test_encoder_contract.py``."""

import pytest
import torch

from neurofm.models import create_model
from neurofm.models.mamba import (
    MambaMixer,
    reverse_valid,
    selective_scan,
    selective_scan_sequential,
)
from neurofm.sensors import SensorBatch

TINY = {
    "dim": 16,
    "depth": 2,
    "d_state": 4,
    "n_heads": 2,
    "patch_size": 20,
    "spatial_every": 1,
    "n_latent": None,
}


def eeg_sensors(n_channels, seed):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.nn.functional.normalize(torch.randn(1, n_channels, 3, generator=gen), dim=-1)
    return SensorBatch(
        pos=pos * 0.09,
        ori=torch.zeros(1, n_channels, 3),
        kind=torch.zeros(1, n_channels, dtype=torch.long),
        chan_mask=torch.ones(1, n_channels, dtype=torch.bool),
    )


def scan_inputs(s=3, length=37, din=5, n=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    f64 = {"dtype": torch.float64}
    u = torch.randn(s, length, din, generator=gen, **f64)
    delta = torch.nn.functional.softplus(torch.randn(s, length, din, generator=gen, **f64))
    A = -torch.rand(din, n, generator=gen, **f64) * 4
    B = torch.randn(s, length, n, generator=gen, **f64)
    C = torch.randn(s, length, n, generator=gen, **f64)
    D = torch.randn(din, generator=gen, **f64)
    h0 = torch.randn(s, din, n, generator=gen, **f64)
    return [t.requires_grad_() for t in (u, delta, A, B, C, D, h0)]


@pytest.mark.parametrize("chunk", [None, 1, 8, 64])
def test_parallel_scan_matches_sequential_recurrence_values_and_gradients(chunk):
    inputs = scan_inputs()
    y_ref, h_ref = selective_scan_sequential(*inputs)
    y, h = selective_scan(*inputs, chunk=chunk)
    torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(h, h_ref, atol=1e-6, rtol=0)
    weights = torch.randn_like(y)
    grads_ref = torch.autograd.grad((y_ref * weights).sum() + h_ref.sum(), inputs)
    grads = torch.autograd.grad((y * weights).sum() + h.sum(), inputs)
    for name, g, g_ref in zip(["u", "delta", "A", "B", "C", "D", "h0"], grads, grads_ref):
        torch.testing.assert_close(g, g_ref, atol=1e-6, rtol=0, msg=f"gradient of {name}")


def test_reverse_valid_keeps_padding_at_the_end():
    x = torch.arange(10.0).view(2, 5, 1)
    out = reverse_valid(x, torch.tensor([3, 5]))
    assert out[0, :, 0].tolist() == [2.0, 1.0, 0.0, 3.0, 4.0]
    assert out[1, :, 0].tolist() == [9.0, 8.0, 7.0, 6.0, 5.0]
    torch.testing.assert_close(reverse_valid(out, torch.tensor([3, 5])), x)


def test_mixer_runs_under_bf16_autocast():
    torch.manual_seed(0)
    mixer = MambaMixer(16, d_state=4)
    x = torch.randn(3, 9, 16)
    ref = mixer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = mixer(x)
    assert torch.isfinite(low).all()
    assert (low.float() - ref).abs().max() < 0.1 * ref.abs().max()


def test_padding_patches_must_be_at_the_end():
    torch.manual_seed(0)
    model = create_model("mamba_small", **TINY).eval()
    x, sensors = torch.randn(1, 3, 7, 20), eeg_sensors(3, 3)
    with pytest.raises(ValueError, match="at the end"):
        model(x, sensors, patch_valid=torch.tensor([[False] + [True] * 6]))
