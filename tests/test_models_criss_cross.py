"""Criss-cross transformer: attention kernels, padding, permutation equivariance, masks, AMP,
gradient layouts under DDP."""

import json
import socket
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from neurofm.models import create_model
from neurofm.models.attention import SelfAttention, attend, reference_attention
from neurofm.sensors import SensorBatch

TINY = {
    "dim": 32,
    "depth": 2,
    "n_heads": 4,
    "ffn_dim": 64,
    "patch_size": 20,
    "dropout": 0.0,
    "drop_path": 0.0,
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


def padded_batch(items):
    """Zero-pad ``[(x [1, C, N, P], sensors)]`` to the largest C, as collate_windows does."""
    c_max = max(x.shape[1] for x, _ in items)
    xs = [torch.nn.functional.pad(x, (0, 0, 0, 0, 0, c_max - x.shape[1])) for x, _ in items]
    return torch.cat(xs), SensorBatch.collate([s for _, s in items])


@pytest.mark.parametrize("masked", [False, True])
def test_sdpa_matches_plain_softmax_reference(masked):
    torch.manual_seed(0)
    qkv = torch.randn(6, 11, 3, 2, 8)  # strided views, as the layers pass them
    q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))
    valid = torch.rand(6, 11) > 0.3 if masked else None
    if masked:
        valid[:, 0] = True
    torch.testing.assert_close(
        attend(q, k, v, valid), reference_attention(q, k, v, valid), atol=1e-5, rtol=1e-5
    )


def test_self_attention_matches_torch_multihead_attention():
    torch.manual_seed(0)
    ours = SelfAttention(16, 4)
    ref = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 7, 16)
    valid = torch.ones(3, 7, dtype=torch.bool)
    valid[1, 4:] = False
    expected = ref(x, x, x, key_padding_mask=~valid, need_weights=False)[0]
    torch.testing.assert_close(ours(x, valid), expected, atol=1e-5, rtol=1e-5)


def test_padded_mixed_batch_equals_items_alone():
    torch.manual_seed(0)
    model = create_model("criss_cross_small", **TINY).eval()
    items = [
        (torch.randn(1, 5, 4, 20), eeg_sensors(5, 1)),
        (torch.randn(1, 3, 4, 20), eeg_sensors(3, 2)),
    ]
    x, sensors = padded_batch(items)
    with torch.no_grad():
        feats = model(x, sensors)
        pooled = model.embed(x, sensors)
        recon = model.reconstruct(x, sensors)
        assert feats.shape == (2, 5, 4, 32) and pooled.shape == (2, 32)
        assert recon.shape == (2, 5, 4, 20)
        for i, (xi, si) in enumerate(items):
            c = xi.shape[1]
            torch.testing.assert_close(feats[i, :c], model(xi, si)[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(pooled[i], model.embed(xi, si)[0], atol=1e-5, rtol=1e-5)


def test_padded_patches_do_not_change_valid_ones():
    torch.manual_seed(0)
    model = create_model("criss_cross_small", **TINY).eval()
    x, sensors = torch.randn(1, 4, 3, 20), eeg_sensors(4, 3)
    x_long = torch.cat([x, torch.zeros(1, 4, 2, 20)], dim=2)  # short epoch padded to N=5
    valid = torch.tensor([[True, True, True, False, False]])
    with torch.no_grad():
        torch.testing.assert_close(
            model(x_long, sensors, patch_valid=valid)[:, :, :3],
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


def test_channel_permutation_equivariance():
    torch.manual_seed(0)
    model = create_model("criss_cross_small", **TINY).eval()
    x, sensors = torch.randn(1, 6, 4, 20), eeg_sensors(6, 4)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        feats = model(x, sensors)
        feats_perm = model(x[:, perm], sensors.permute_channels(perm))
        torch.testing.assert_close(feats_perm, feats[:, perm], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            model.embed(x[:, perm], sensors.permute_channels(perm)),
            model.embed(x, sensors),
            atol=1e-5,
            rtol=1e-5,
        )


@pytest.mark.parametrize("name", ["criss_cross_small", "cbramod_base"])
def test_masked_patches_hide_their_content(name):
    torch.manual_seed(0)
    overrides = {"depth": 1} if name == "cbramod_base" else TINY
    model = create_model(name, **overrides).eval()
    p = model.patch_size
    x, sensors = torch.randn(1, 3, 4, p), eeg_sensors(3, 5)
    mask = torch.zeros(1, 3, 4, dtype=torch.bool)
    mask[0, 1, 2] = True
    x_changed = x.clone()
    x_changed[0, 1, 2] += 5.0
    with torch.no_grad():
        out = model.reconstruct(x, sensors, patch_mask=mask)
        assert not torch.allclose(out, model.reconstruct(x, sensors))
        torch.testing.assert_close(model.reconstruct(x_changed, sensors, patch_mask=mask), out)


def test_channel_unification_variant_pads_and_decodes():
    torch.manual_seed(0)
    model = create_model("criss_cross_small", **TINY, n_latent=3).eval()
    items = [
        (torch.randn(1, 5, 4, 20), eeg_sensors(5, 6)),
        (torch.randn(1, 2, 4, 20), eeg_sensors(2, 7)),
    ]
    x, sensors = padded_batch(items)
    with torch.no_grad():
        assert model(x, sensors).shape == (2, 3, 4, 32)
        recon = model.reconstruct(x, sensors)
        assert recon.shape == (2, 5, 4, 20)
        xi, si = items[1]
        torch.testing.assert_close(recon[1, :2], model.reconstruct(xi, si)[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            model.embed(x, sensors)[1], model.embed(xi, si)[0], atol=1e-5, rtol=1e-5
        )


def test_bf16_autocast_and_training_step():
    torch.manual_seed(0)
    model = create_model("criss_cross_small", **{**TINY, "dropout": 0.1, "drop_path": 0.1})
    x, sensors = torch.randn(2, 4, 3, 20), eeg_sensors(4, 8)
    sensors = SensorBatch.collate([sensors, sensors])
    model.eval()
    with torch.no_grad():
        ref = model(x, sensors)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x, sensors)
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max() < 0.1 * ref.abs().max()
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.reconstruct(x, sensors).float().square().mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == ["mask_token"]  # only unused because nothing was masked


def test_bad_inputs_raise_clear_errors():
    model = create_model("criss_cross_small", **TINY).eval()
    x = torch.randn(1, 3, 4, 20)
    with pytest.raises(ValueError, match="patch_size=20"):
        model(torch.randn(1, 3, 4, 10), eeg_sensors(3, 0))
    with pytest.raises(ValueError, match="needs sensors"):
        model(x, None)
    with pytest.raises(ValueError, match="collate"):
        model(x, eeg_sensors(4, 0))
    with pytest.raises(ValueError, match="patch_valid"):
        model(x, eeg_sensors(3, 0), patch_valid=torch.ones(1, 5, dtype=torch.bool))


def test_cpu_dropout_drops_the_requested_fraction_and_keeps_the_mean():
    from neurofm.models.layers import dropout

    torch.manual_seed(0)
    x = torch.ones(400, 500)
    y = dropout(x, 0.25)
    assert abs((y == 0).float().mean().item() - 0.25) < 0.005
    assert abs(y.mean().item() - 1.0) < 0.01
    assert torch.equal(y[y != 0], torch.full_like(y[y != 0], 1 / 0.75))
    assert dropout(x, 0.25, training=False) is x
    torch.manual_seed(1)
    first = dropout(x, 0.5)
    torch.manual_seed(1)
    assert torch.equal(dropout(x, 0.5), first)  # follows torch.manual_seed


def test_training_attention_with_dropout_is_softmax_attention_with_the_cpu_mask():
    from neurofm.models.layers import keep_mask

    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, 5, 4, dtype=torch.float64) for _ in range(3))
    valid = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 1, 1, 1]], dtype=torch.bool)
    torch.manual_seed(7)
    out = attend(q, k, v, valid, dropout_p=0.2)
    torch.manual_seed(7)
    mask = keep_mask((3, 2, 5, 5), 0.2, torch.float64)
    scores = q @ k.transpose(-2, -1) / 2.0
    weights = torch.softmax(scores.masked_fill(~valid[:, None, None, :], float("-inf")), -1)
    torch.testing.assert_close(out, (weights * mask) @ v)
    assert not torch.equal(out, reference_attention(q, k, v, valid))  # dropout did act


def test_add_residual_applies_dropout_and_drop_path_in_one_mask():
    from neurofm.models.layers import add_residual, drop_path_mask, keep_mask

    x, branch = torch.randn(6, 3, 4), torch.randn(6, 3, 4, requires_grad=True)
    assert torch.equal(add_residual(x, branch, 0.3, 0.5, training=False), x + branch)
    torch.manual_seed(3)
    out = add_residual(x, branch, 0.3, 0.5, training=True)
    torch.manual_seed(3)
    mask = keep_mask(branch.shape, 0.3, branch.dtype) * drop_path_mask(branch, 0.5)
    torch.testing.assert_close(out, x + branch * mask)
    out.sum().backward()
    torch.testing.assert_close(branch.grad, mask)
    dropped = (mask == 0).flatten(1).all(dim=1)  # whole items removed by drop-path
    assert torch.equal(out.detach()[dropped], x[dropped])


def test_feed_forward_dropout_in_place_matches_the_plain_formula():
    from neurofm.models.layers import FeedForward, keep_mask

    ffn = FeedForward(8, 16, dropout=0.25).train()
    x = torch.randn(10, 8, requires_grad=True)
    torch.manual_seed(5)
    out = ffn(x)
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    torch.manual_seed(5)
    mask = keep_mask((10, 16), 0.25, x.dtype)
    x2 = x.detach().requires_grad_()
    ref = ffn.linear2(torch.nn.functional.gelu(ffn.linear1(x2)) * mask)
    (grad_ref,) = torch.autograd.grad(ref.square().sum(), x2)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(grad, grad_ref)


@pytest.mark.parametrize("position", ["sensor", "acpe"])
def test_gradients_have_the_strides_of_their_parameters(position):
    """DDP copies each gradient into a bucket laid out like its parameter and warns ("Grad strides
    do not match bucket view strides") when the strides differ, e.g. the depthwise position
    convolution run channels-last with a contiguous weight. Its output is the plain convolution."""
    torch.manual_seed(0)
    model = create_model("criss_cross_small", position=position, **TINY)
    x, sensors = torch.randn(2, 21, 5, 20), eeg_sensors(21, 3)
    model(x, SensorBatch.collate([sensors, sensors])).square().mean().backward()
    wrong = [(n, tuple(p.grad.stride()), tuple(p.stride()))
             for n, p in model.named_parameters() if p.grad is not None
             and p.grad.stride() != p.stride()]
    assert wrong == []

    conv = model.position.conv
    tokens = torch.randn(2, 21, 5, TINY["dim"])
    plain = torch.nn.functional.conv2d(
        tokens.permute(0, 3, 1, 2).contiguous(), conv.weight.clone(
            memory_format=torch.contiguous_format), conv.bias, padding=conv.padding,
        groups=conv.groups).permute(0, 2, 3, 1)
    with torch.no_grad():
        torch.testing.assert_close(model.position(tokens), tokens + plain, atol=1e-6, rtol=0)


class _Reconstruct(torch.nn.Module):
    """Masked reconstruction as one forward, so DDP sees every parameter used."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, patch_mask):
        return self.model.reconstruct(x, patch_mask=patch_mask)


def _ddp_steps(rank, port, out_dir):
    """One of two gloo ranks: three DDP steps of a tiny model; writes the warnings it saw."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        torch.manual_seed(0)
        model = create_model("criss_cross_small", position="acpe", **TINY)
        ddp = torch.nn.parallel.DistributedDataParallel(_Reconstruct(model))
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
        x = torch.randn(2, 4, 3, 20, generator=torch.Generator().manual_seed(rank))
        mask = torch.zeros(2, 4, 3, dtype=torch.bool)
        mask[:, 0, 1] = True
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                optimizer.zero_grad()
                ddp(x, mask).square().mean().backward()
                optimizer.step()
        with open(f"{out_dir}/rank{rank}.json", "w") as fh:
            json.dump([str(w.message) for w in caught], fh)
    finally:
        dist.destroy_process_group()


def test_ddp_training_raises_no_gradient_layout_warning(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_ddp_steps, args=(port, str(tmp_path)), nprocs=2)
    for rank in (0, 1):
        seen = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert not [m for m in seen if "strides" in m], seen
