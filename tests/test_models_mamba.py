"""Bidirectional Mamba: exact selective scan, padding, permutation equivariance, precision."""

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


@pytest.mark.parametrize("n_latent", [None, 3])
def test_padded_mixed_batch_equals_items_alone(n_latent):
    torch.manual_seed(0)
    model = create_model("mamba_small", **{**TINY, "n_latent": n_latent}).eval()
    items = [
        (torch.randn(1, 4, 5, 20), eeg_sensors(4, 1)),
        (torch.randn(1, 2, 5, 20), eeg_sensors(2, 2)),
    ]
    x = torch.cat([items[0][0], torch.nn.functional.pad(items[1][0], (0, 0, 0, 0, 0, 2))])
    sensors = SensorBatch.collate([s for _, s in items])
    with torch.no_grad():
        feats = model(x, sensors)
        assert feats.shape == (2, 3 if n_latent else 4, 5, 16)
        recon = model.reconstruct(x, sensors)
        assert recon.shape == (2, 4, 5, 20)
        xi, si = items[1]
        torch.testing.assert_close(recon[1, :2], model.reconstruct(xi, si)[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            model.embed(x, sensors)[1], model.embed(xi, si)[0], atol=1e-5, rtol=1e-5
        )


def test_trailing_padded_patches_do_not_change_valid_ones():
    torch.manual_seed(0)
    model = create_model("mamba_small", **TINY).eval()
    x, sensors = torch.randn(1, 3, 4, 20), eeg_sensors(3, 3)
    x_long = torch.cat([x, torch.randn(1, 3, 3, 20)], dim=2)
    valid = torch.tensor([[True] * 4 + [False] * 3])
    with torch.no_grad():
        torch.testing.assert_close(
            model(x_long, sensors, patch_valid=valid)[:, :, :4],
            model(x, sensors),
            atol=1e-5,
            rtol=1e-5,
        )
        torch.testing.assert_close(
            model.embed(x_long, sensors, patch_valid=valid),
            model.embed(x, sensors),
            atol=1e-5,
            rtol=1e-5,
        )
    with pytest.raises(ValueError, match="at the end"):
        model(x_long, sensors, patch_valid=torch.tensor([[False] + [True] * 6]))


@pytest.mark.parametrize("n_latent", [None, 3])
def test_channel_permutation_equivariance(n_latent):
    torch.manual_seed(0)
    model = create_model("mamba_small", **{**TINY, "n_latent": n_latent}).eval()
    x, sensors = torch.randn(1, 5, 4, 20), eeg_sensors(5, 4)
    perm = torch.tensor([4, 2, 0, 3, 1])
    with torch.no_grad():
        feats = model(x, sensors)
        feats_perm = model(x[:, perm], sensors.permute_channels(perm))
        # Sensor rows are permuted with the input; latent rows do not depend on channel order.
        expected = feats if n_latent else feats[:, perm]
        torch.testing.assert_close(feats_perm, expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            model.embed(x[:, perm], sensors.permute_channels(perm)),
            model.embed(x, sensors),
            atol=1e-5,
            rtol=1e-5,
        )


def test_training_step_reaches_every_parameter():
    torch.manual_seed(0)
    model = create_model("mamba_small", **TINY, drop_path=0.1)
    x, sensors = torch.randn(1, 3, 6, 20), eeg_sensors(3, 5)
    mask = torch.rand(1, 3, 6) < 0.5
    loss = (model.reconstruct(x, sensors, patch_mask=mask) - x).square().mean()
    loss.backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
