"""Patch embedding, sensor encoding and channel unification: shapes, order and padding."""

import pytest
import torch
from tokenizer_data import eeg_sensors, meg_sensors, pad_channels, seeg_sensors

from neurofm.sensors import SensorBatch
from neurofm.tokenizer import (
    ChannelDecoder,
    ChannelUnification,
    ConvPositionEncoding,
    PatchEmbedding,
    SensorEncoding,
)

ATOL = 1e-5


def _mixed_batch():
    items = [eeg_sensors(19, seed=1), meg_sensors(), seeg_sensors(12, seed=2)]
    return items, SensorBatch.collate(items)


@pytest.mark.parametrize("patch_size", [64, 200, 33])
def test_patch_embedding_shape_and_spectral_bins(patch_size):
    torch.manual_seed(0)
    embed = PatchEmbedding(patch_size, 16)
    assert embed.spectral.in_features == patch_size // 2 + 1
    out = embed(torch.randn(2, 3, 5, patch_size))
    assert out.shape == (2, 3, 5, 16)


def test_patch_embedding_rejects_wrong_patch_size():
    with pytest.raises(ValueError, match=r"\[B, C, N, 64\]"):
        PatchEmbedding(64, 16)(torch.randn(1, 2, 3, 200))


def test_patch_embedding_tokens_depend_only_on_their_patch():
    torch.manual_seed(0)
    embed = PatchEmbedding(64, 16).eval()
    x = torch.randn(1, 3, 4, 64)
    y = x.clone()
    y[0, 1, 2] += 1.0
    changed = (embed(x) - embed(y)).abs().amax(-1) > 1e-6
    assert changed[0, 1, 2] and changed.sum() == 1


def test_sensor_encoding_padding_is_zero_and_independent():
    torch.manual_seed(0)
    enc = SensorEncoding(32).eval()
    items, batch = _mixed_batch()
    out = enc(batch)
    assert out.shape == (3, 306, 32)
    assert torch.all(out[~batch.chan_mask] == 0)
    for i, item in enumerate(items):
        c = item.n_channels
        torch.testing.assert_close(out[i:i + 1, :c], enc(item), atol=ATOL, rtol=0)


@pytest.mark.parametrize("features", ["sincos", "random"])
def test_sensor_encoding_is_permutation_equivariant(features):
    torch.manual_seed(0)
    enc = SensorEncoding(24, n_freqs=6, features=features).eval()
    sensors = meg_sensors()
    perm = torch.randperm(sensors.n_channels)
    torch.testing.assert_close(enc(sensors.permute_channels(perm)), enc(sensors)[:, perm],
                               atol=ATOL, rtol=0)


def test_sensor_encoding_distinguishes_kind_position_orientation():
    torch.manual_seed(0)
    enc = SensorEncoding(16).eval()
    base = seeg_sensors(1)
    variants = [SensorBatch(base.pos, base.ori, torch.zeros_like(base.kind), base.chan_mask),
                SensorBatch(base.pos + 0.01, base.ori, base.kind, base.chan_mask),
                SensorBatch(base.pos, torch.tensor([[[0.0, 0.0, 1.0]]]), base.kind,
                            base.chan_mask)]
    ref = enc(base)
    for variant in variants:
        assert (enc(variant) - ref).abs().max() > 1e-3


def test_sensor_encoding_rejects_non_brain_kinds_but_not_padding():
    enc = SensorEncoding(8)
    eeg = eeg_sensors(4)
    bad = SensorBatch(eeg.pos, eeg.ori, torch.tensor([[0, 0, 5, 0]]), eeg.chan_mask)
    with pytest.raises(ValueError, match=r"kind codes \[5\].*Drop non-brain"):
        enc(bad)
    padded = SensorBatch(eeg.pos, eeg.ori, torch.tensor([[0, 0, 7, 0]]),
                         torch.tensor([[True, True, False, True]]))
    assert enc(padded).shape == (1, 4, 8)


def test_sensor_encoding_jitter_only_in_training():
    torch.manual_seed(0)
    enc = SensorEncoding(8, pos_jitter=0.005)
    sensors = eeg_sensors(5)
    assert not torch.allclose(enc.train()(sensors), enc.train()(sensors))
    torch.testing.assert_close(enc.eval()(sensors), enc.eval()(sensors))


def test_unification_is_order_free_and_ignores_padding():
    torch.manual_seed(0)
    dim = 16
    unify = ChannelUnification(dim, n_latent=4, n_heads=2).eval()
    items, batch = _mixed_batch()
    tokens = [torch.randn(1, it.n_channels, 3, dim) for it in items]
    padded = torch.cat([pad_channels(t, batch.n_channels) for t in tokens])
    padded[~batch.chan_mask] = 1e3  # garbage in padding must not leak
    out = unify(padded, batch.chan_mask)
    assert out.shape == (3, 4, 3, dim)
    for i, (item, tok) in enumerate(zip(items, tokens)):
        alone = unify(tok, item.chan_mask)
        torch.testing.assert_close(out[i:i + 1], alone, atol=ATOL, rtol=0)
        perm = torch.randperm(item.n_channels)
        torch.testing.assert_close(unify(tok[:, perm], item.chan_mask), alone, atol=ATOL, rtol=0)


def test_unification_rejects_item_without_channels():
    unify = ChannelUnification(8, n_latent=2, n_heads=2)
    with pytest.raises(ValueError, match=r"items \[1\] have no real channel"):
        unify(torch.randn(2, 3, 1, 8), torch.tensor([[True, False, True], [False] * 3]))


def test_channel_decoder_equivariant_and_padding_zero():
    torch.manual_seed(0)
    dim = 16
    enc = SensorEncoding(dim).eval()
    decoder = ChannelDecoder(dim, n_heads=2).eval()
    items, batch = _mixed_batch()
    latents = torch.randn(3, 4, 2, dim)
    out = decoder(latents, enc(batch), batch.chan_mask)
    assert out.shape == (3, batch.n_channels, 2, dim)
    assert torch.all(out[~batch.chan_mask] == 0)
    for i, item in enumerate(items):
        alone = decoder(latents[i:i + 1], enc(item), item.chan_mask)
        torch.testing.assert_close(out[i:i + 1, :item.n_channels], alone, atol=ATOL, rtol=0)
        perm = torch.randperm(item.n_channels)
        permuted = decoder(latents[i:i + 1], enc(item.permute_channels(perm)), item.chan_mask)
        torch.testing.assert_close(permuted, alone[:, perm], atol=ATOL, rtol=0)


def test_position_convolution_runs_in_float32_under_cpu_autocast():
    """The bf16 depthwise convolution's backward is slow on a CPU: the convolution runs in the
    weight's precision, and the sum keeps the tokens' dtype."""
    torch.manual_seed(0)
    position = ConvPositionEncoding(8, (1, 3))
    tokens = torch.randn(2, 3, 5, 8)
    plain = position(tokens)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(position(tokens), plain)
        low = position(tokens.bfloat16())
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), plain, atol=0.05, rtol=0.02)
