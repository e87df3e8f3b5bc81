"""NeuralTokenizer: order-free codes, padded mixed batches, save/load, backbone inputs."""

import json

import pytest
import torch
from tokenizer_data import eeg_sensors, meg_sensors, oscillation_windows, pad_channels, seeg_sensors

from neurofm.sensors import SensorBatch
from neurofm.tokenizer import NeuralTokenizer, TokenizerConfig, tokenizer_config

ATOL = 1e-5
TINY = {"patch_size": 32, "dim": 16, "n_heads": 2, "code_dim": 8, "codebook_size": 16,
        "kmeans_vectors": 64}


def _tiny(**overrides) -> NeuralTokenizer:
    torch.manual_seed(0)
    return NeuralTokenizer(TokenizerConfig(**{**TINY, **overrides}))


def _mixed():
    items = [eeg_sensors(19, seed=3), meg_sensors(), seeg_sensors(12, seed=4)]
    xs = [oscillation_windows(1, it.n_channels, n_patches=3, patch_size=32, seed=i)
          for i, it in enumerate(items)]
    batch = SensorBatch.collate(items)
    x = torch.cat([pad_channels(x, batch.n_channels) for x in xs])
    return items, xs, batch, x


def _warm_up(model, steps=3):
    """A few training forwards so the k-means start has run and codes are not random."""
    sensors = eeg_sensors(19, seed=9)
    for step in range(steps):
        model.train()(oscillation_windows(2, 19, n_patches=3, patch_size=32, seed=50 + step),
                      SensorBatch.collate([sensors, sensors]))
    assert bool(model.quantizer.levels[0].initialised)
    return model.eval()


def test_forward_shapes_losses_and_gradients():
    model = _tiny(targets=("spectrum", "raw"))
    sensors = eeg_sensors(5)
    x = oscillation_windows(1, 5, n_patches=3, patch_size=32)
    out = model.train()(x, sensors)
    assert out.codes.shape == (1, 5, 3, 1)
    assert out.predictions["amplitude"].shape == (1, 5, 3, 17)
    assert out.predictions["phase"].shape == (1, 5, 3, 34)
    assert out.predictions["raw"].shape == (1, 5, 3, 32)
    assert set(out.losses) == {"amplitude", "phase", "raw", "commitment"}
    out.loss.backward()
    assert model.patch_embed.spectral.weight.grad.abs().sum() > 0
    assert model.sensor_encoding.kind_embedding.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("n_latent", [0, 4])
def test_channel_permutation_permutes_codes_and_keeps_pooled(n_latent):
    model = _warm_up(_tiny(n_latent=n_latent))
    sensors = eeg_sensors(19, seed=1)
    x = oscillation_windows(2, 19, n_patches=3, patch_size=32, seed=7)
    sensors = SensorBatch.collate([sensors, sensors])
    perm = torch.randperm(19)
    out = model(x, sensors)
    out_p = model(x[:, perm], sensors.permute_channels(perm))
    if n_latent:  # latent channels do not depend on sensor order at all
        assert torch.equal(out_p.codes, out.codes)
    else:
        assert torch.equal(out_p.codes, out.codes[:, perm])
        features = model.encode_features(x, sensors)[0]
        torch.testing.assert_close(model.encode_features(x[:, perm],
                                                         sensors.permute_channels(perm))[0],
                                   features[:, perm], atol=ATOL, rtol=0)
    for name, pred in out.predictions.items():
        torch.testing.assert_close(out_p.predictions[name], pred[:, perm], atol=ATOL, rtol=0)
    torch.testing.assert_close(model.embed(x[:, perm], sensors.permute_channels(perm)),
                               model.embed(x, sensors), atol=ATOL, rtol=0)


@pytest.mark.parametrize("n_latent", [0, 4])
def test_mixed_eeg_meg_seeg_batch_equals_items_alone(n_latent):
    model = _warm_up(_tiny(n_latent=n_latent))
    items, xs, batch, x = _mixed()
    x[~batch.chan_mask] = 50.0  # garbage in padding must not leak into real channels
    out = model(x, batch)
    pooled = model.embed(x, batch)
    for i, (item, xi) in enumerate(zip(items, xs)):
        alone = model(xi, item)
        c = item.n_channels
        rows = slice(None) if n_latent else slice(0, c)
        assert torch.equal(out.codes[i:i + 1, rows], alone.codes)
        for name, pred in alone.predictions.items():
            torch.testing.assert_close(out.predictions[name][i:i + 1, :c], pred, atol=ATOL, rtol=0)
        torch.testing.assert_close(pooled[i:i + 1], model.embed(xi, item), atol=ATOL, rtol=0)
    if not n_latent:
        assert torch.all(out.codes[~batch.chan_mask] == -1)


def test_padding_does_not_change_the_loss():
    model = _warm_up(_tiny())
    items, xs, batch, x = _mixed()
    padded = model(x[:1], batch[0])
    alone = model(xs[0], items[0])
    for name, value in alone.losses.items():
        torch.testing.assert_close(padded.losses[name], value, atol=ATOL, rtol=0)


def test_save_and_load_round_trip(tmp_path):
    model = _warm_up(_tiny(n_levels=2, targets=("raw",)))
    x = oscillation_windows(1, 6, n_patches=2, patch_size=32)
    sensors = eeg_sensors(6)
    model.save_pretrained(tmp_path / "tok")
    config = json.loads((tmp_path / "tok" / "config.json").read_text())
    assert config["model_type"] == "neurofm_tokenizer" and config["n_levels"] == 2
    loaded = NeuralTokenizer.from_pretrained(tmp_path / "tok")
    assert not loaded.training and loaded.config == model.config
    assert torch.equal(loaded.encode(x, sensors), model.encode(x, sensors))
    torch.testing.assert_close(loaded(x, sensors).predictions["raw"],
                               model(x, sensors).predictions["raw"])


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        NeuralTokenizer.from_pretrained(tmp_path)
    _tiny().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "criss_cross"}))
    with pytest.raises(ValueError, match="model_type='criss_cross'"):
        NeuralTokenizer.from_pretrained(tmp_path)


def test_code_tokens_for_backbones():
    model = _warm_up(_tiny())
    items, xs, batch, x = _mixed()
    codes = model.encode(x, batch)
    tokens = model.code_tokens(codes, batch)
    assert tokens.shape == (3, batch.n_channels, 3, 16)
    assert torch.all(tokens[~batch.chan_mask] == 0)
    alone = model.code_tokens(model.encode(xs[2], items[2]), items[2])
    torch.testing.assert_close(tokens[2:, :12], alone, atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="n_latent=0"):
        _tiny(n_latent=2).code_tokens(codes, batch)


def test_config_registry_and_bad_input():
    small = tokenizer_config("small")
    assert small.patch_size == 200 and small.codebook_size == 128 and small.n_latent == 0
    assert tokenizer_config("small_unified").n_latent > 0
    with pytest.raises(ValueError, match="Unknown tokenizer config 'huge'"):
        tokenizer_config("huge")
    with pytest.raises(ValueError,
                       match=r"tokenizer config: unknown key\(s\) dimension; valid keys"):
        TokenizerConfig.from_dict({"dimension": 3})
    with pytest.raises(ValueError, match="targets"):
        TokenizerConfig(targets=("wavelet",))
    model = _tiny()
    with pytest.raises(ValueError, match="sensors describe"):
        model(torch.zeros(1, 4, 2, 32), eeg_sensors(5))
    with pytest.raises(ValueError, match=r"\[B, C, N, 32\]"):
        model(torch.zeros(1, 5, 2, 200), eeg_sensors(5))
