"""Backbones reading a frozen tokenizer's quantised codes (``patch_input="codes"``).

Shapes, reconstruction, padding and channel order of the code-input backbones are checked with
every other model in ``tests/test_encoder_contract.py``."""

import hashlib
import json
from pathlib import Path

import pytest
import torch

from neurofm import from_pretrained
from neurofm.models import create_model, list_models
from neurofm.sensors import SensorBatch
from neurofm.tokenizer import CodeEmbedding, NeuralTokenizer, tokenizer_config
from neurofm.tokenizer.sensor_encoding import POSITION_UNKNOWN_PARAMETERS
from neurofm.train.config import load_config

P = 20
TINY = {
    "criss_cross_small": {"dim": 32, "depth": 2, "n_heads": 4, "ffn_dim": 64, "patch_size": P,
                          "dropout": 0.0, "drop_path": 0.0},
    "mamba_small": {"dim": 32, "depth": 2, "d_state": 4, "n_heads": 2, "n_latent": None,
                    "spatial_every": 1, "patch_size": P, "drop_path": 0.0},
}
BACKBONES = sorted(TINY)
LAYOUTS_0_1_0 = Path(__file__).parent / "fixtures" / "v0_1_0" / "default_state_layouts.json"

# sha256 (first 16 hex digits) of the sorted "key:shape" lines of each registered default
# configuration's state dict, recorded before the code input existed: adding it must leave the
# existing configurations (and the weights they load) untouched. Since the stem moved (format 2)
# the layouts are those of neurofm 0.1.0, kept in LAYOUTS_0_1_0 (made by neurofm 0.1.0's
# `create_model(name).state_dict()`), and weights of that layout must upgrade to today's exactly.
DEFAULT_STATE_DIGESTS = {
    "cbramod_base": "46d1b5104f72a736",
    "criss_cross_base": "5e5d826453afc7ab",
    "criss_cross_small": "71419566c918e71d",
    "mamba_base": "fe52508ddb9605b4",
    "mamba_small": "a05c19ee23bea270",
}


def tiny_tokenizer(seed=0):
    torch.manual_seed(seed)
    cfg = tokenizer_config("small", patch_size=P, dim=16, n_heads=2, n_encoder_layers=1,
                           n_decoder_layers=1, code_dim=8, codebook_size=16, kmeans_vectors=0)
    return NeuralTokenizer(cfg).eval()


def code_model(name, tokenizer, seed=1, **extra):
    torch.manual_seed(seed)
    return create_model(name, **TINY[name], patch_input="codes", tokenizer=tokenizer, **extra)


def eeg_batch(b=2, c=5, n=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.nn.functional.normalize(torch.randn(b, c, 3, generator=gen), dim=-1) * 0.09
    sensors = SensorBatch(pos=pos, ori=torch.zeros(b, c, 3),
                          kind=torch.zeros(b, c, dtype=torch.long),
                          chan_mask=torch.ones(b, c, dtype=torch.bool))
    return torch.randn(b, c, n, P, generator=gen), sensors


@pytest.mark.parametrize("name", BACKBONES)
def test_tokenizer_stays_frozen_through_a_training_step(name):
    model = code_model(name, tiny_tokenizer()).train()
    assert isinstance(model.stem.patch_embed, CodeEmbedding)
    tokenizer = model.stem.patch_embed.tokenizer
    assert not tokenizer.training and not tokenizer.quantizer.training
    assert not any(p.requires_grad for p in tokenizer.parameters())
    before = {k: v.clone() for k, v in tokenizer.state_dict().items()}
    proj_before = model.stem.patch_embed.proj.weight.detach().clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    x, sensors = eeg_batch()
    mask = torch.rand(x.shape[:3], generator=torch.Generator().manual_seed(3)) < 0.4
    loss = ((model.reconstruct(x, sensors, patch_mask=mask) - x) ** 2).mean()
    loss.backward()
    optimizer.step()
    assert all(p.grad is None for p in tokenizer.parameters())
    for key, value in tokenizer.state_dict().items():
        assert torch.equal(value, before[key]), key  # weights and codebook buffers, bit for bit
    assert not torch.equal(model.stem.patch_embed.proj.weight, proj_before)  # the projection learns


@pytest.mark.parametrize("name", BACKBONES)
def test_input_is_discrete_same_codes_give_same_tokens(name):
    tokenizer = tiny_tokenizer()
    x, sensors = eeg_batch()
    nudged = x + 1e-4 * torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    codes = tokenizer.encode(x, sensors)
    assert torch.equal(codes, tokenizer.encode(nudged, sensors))  # the nudge keeps every code
    model = code_model(name, tokenizer).eval()
    with torch.no_grad():
        assert torch.equal(model(x, sensors), model(nudged, sensors))
        # Far-apart patches that happen to share codes give the same token too.
        tokens = model.stem.patch_embed(x, sensors)
        flat_codes, flat_tokens = codes.reshape(-1, codes.shape[-1]), tokens.reshape(-1, 32)
        same = (flat_codes[:, None] == flat_codes[None]).all(-1)
        i, j = torch.nonzero(same.triu(1), as_tuple=True)
        assert len(i) > 0
        assert torch.equal(flat_tokens[i], flat_tokens[j])
        # The continuous patch input does see the nudge.
        torch.manual_seed(1)
        continuous = create_model(name, **TINY[name]).eval()
        assert not torch.equal(continuous(x, sensors), continuous(nudged, sensors))


@pytest.mark.parametrize("name", BACKBONES)
def test_masked_patches_hide_their_content_from_the_codes(name):
    model = code_model(name, tiny_tokenizer()).eval()
    x, sensors = eeg_batch()
    mask = torch.zeros(x.shape[:3], dtype=torch.bool)
    mask[:, 1:3, 2] = True
    other = x.clone()
    other[mask] = 5 * torch.randn(int(mask.sum()), P)
    with torch.no_grad():
        torch.testing.assert_close(model(x, sensors, patch_mask=mask),
                                   model(other, sensors, patch_mask=mask), rtol=0, atol=1e-6)
        # Without the mask the changed patches do change the output.
        assert not torch.allclose(model(x, sensors), model(other, sensors), atol=1e-3)


@pytest.mark.parametrize("name", BACKBONES)
def test_save_and_load_is_self_contained(name, tmp_path):
    tok_dir = tiny_tokenizer(seed=4).save_pretrained(tmp_path / "tokenizer")
    model = code_model(name, str(tok_dir)).eval()  # a tokenizer directory works as input
    model.save_pretrained(tmp_path / "model")
    (tok_dir / "model.safetensors").unlink()  # the saved backbone must not need it
    config = (tmp_path / "model" / "config.json").read_text()
    assert str(tok_dir) not in config and '"codebook_size": 16' in config
    loaded = from_pretrained(tmp_path / "model")
    assert loaded.config == model.config and loaded.config["patch_input"] == "codes"
    x, sensors = eeg_batch()
    with torch.no_grad():
        assert torch.equal(loaded(x, sensors), model(x, sensors))
    assert not any(p.requires_grad for p in loaded.stem.patch_embed.tokenizer.parameters())


def test_default_configurations_are_unchanged():
    layouts = json.loads(LAYOUTS_0_1_0.read_text())
    for name in list_models():
        if name not in DEFAULT_STATE_DIGESTS:
            continue  # registered later; nothing recorded to compare against
        model = create_model(name)
        assert model.config["patch_input"] == "patches" and model.config["tokenizer"] is None
        old = {k: tuple(shape) for k, shape in layouts[name].items()}
        lines = "\n".join(f"{k}:{shape}" for k, shape in sorted(old.items()))
        assert hashlib.sha256(lines.encode()).hexdigest()[:16] == DEFAULT_STATE_DIGESTS[name], name
        weights = {k: torch.empty(shape, device="meta") for k, shape in old.items()}
        upgraded = model.upgrade_state_dict(weights, 1)
        # parameters added after format 2 (the position-unknown code of the sensor encoding)
        # are absent from older weights and filled with zeros by SensorEncoding's load hook
        # (tests/test_models_upgrade.py)
        current = {k: tuple(v.shape) for k, v in model.state_dict().items()
                   if k.rsplit(".", 1)[-1] not in POSITION_UNKNOWN_PARAMETERS}
        assert {k: tuple(v.shape) for k, v in upgraded.items()} == current, name


def test_training_config_selects_the_code_input(tmp_path):
    tok_dir = tiny_tokenizer().save_pretrained(tmp_path / "tokenizer")
    overrides = ", ".join(f"{k}: {v}" for k, v in TINY["criss_cross_small"].items())
    cfg = load_config(None, [
        "model.name=criss_cross_small",
        f"model.overrides={{{overrides}, patch_input: codes, tokenizer: {tok_dir}}}",
    ])
    model = create_model(cfg.model.name, **cfg.model.overrides)  # what the trainer does
    assert isinstance(model.stem.patch_embed, CodeEmbedding)
    reference = NeuralTokenizer.from_pretrained(tok_dir)
    for key, value in reference.state_dict().items():
        assert torch.equal(model.stem.patch_embed.tokenizer.state_dict()[key], value), key


def test_bad_code_input_settings_raise_clear_errors(tmp_path):
    tiny = TINY["criss_cross_small"]
    with pytest.raises(ValueError, match="needs a tokenizer"):
        create_model("criss_cross_small", **tiny, patch_input="codes")
    with pytest.raises(ValueError, match="patch_input must be one of"):
        create_model("criss_cross_small", **tiny, patch_input="code")
    with pytest.raises(ValueError, match='only used with patch_input="codes"'):
        create_model("mamba_small", tokenizer=tiny_tokenizer())
    with pytest.raises(ValueError, match="set the backbone's patch_size=20"):
        create_model("criss_cross_small", **{**tiny, "patch_size": 40}, patch_input="codes",
                     tokenizer=tiny_tokenizer())
    with pytest.raises(ValueError, match="n_latent=0"):
        unified = NeuralTokenizer(tokenizer_config("small", patch_size=P, dim=16, n_heads=2,
                                                   codebook_size=16, n_latent=4))
        create_model("criss_cross_small", **tiny, patch_input="codes", tokenizer=unified)
    with pytest.raises(ValueError, match="trained at 250 Hz"):
        other_rate = NeuralTokenizer(tokenizer_config("small", patch_size=P, dim=16, n_heads=2,
                                                      codebook_size=16, sfreq=250.0))
        create_model("criss_cross_small", **tiny, patch_input="codes", tokenizer=other_rate)
    with pytest.raises(FileNotFoundError, match="config.json"):
        create_model("criss_cross_small", **tiny, patch_input="codes",
                     tokenizer=str(tmp_path / "missing"))

def test_the_tokenizers_recorded_preprocessing_is_merged_into_the_models():
    torch.manual_seed(0)
    cfg = tokenizer_config("small", patch_size=P, dim=16, n_heads=2, code_dim=8, codebook_size=16,
                           preprocessing={"l_freq": 1.0, "h_freq": 40.0, "notch": 50.0,
                                          "patch_size": P, "window_seconds": 5.0})
    model = create_model("criss_cross_small", **TINY["criss_cross_small"], patch_input="codes",
                         tokenizer=NeuralTokenizer(cfg))
    spec = model.preprocessing
    assert (spec.sfreq, spec.patch_samples, spec.window_samples) == (200.0, P, 1000)
    assert (spec.l_freq, spec.h_freq, spec.line_freq) == (1.0, 40.0, 50.0)
