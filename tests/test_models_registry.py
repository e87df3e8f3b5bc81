"""Registry, save/load round trip, heads, and CBraMod compatibility of ``cbramod_base``."""

import json
import subprocess
import sys
import warnings

import pytest
import torch
from extras import needs_braindecode

from neurofm import from_pretrained
from neurofm.data.spec import PreprocessSpec
from neurofm.models import (
    AttentionPool,
    ClassificationHead,
    CrissCrossTransformer,
    convert_cbramod_state_dict,
    create_model,
    list_models,
    masked_mean_pool,
    register_model,
)
from neurofm.models.criss_cross import criss_cross_small
from neurofm.sensors import SensorBatch

TINY = {
    "criss_cross_small": {"dim": 32, "depth": 1, "n_heads": 4, "ffn_dim": 64, "patch_size": 20},
    "criss_cross_base": {
        "dim": 32,
        "depth": 1,
        "n_heads": 4,
        "ffn_dim": 64,
        "patch_size": 20,
        "n_latent": 2,
    },
    "cbramod_base": {"depth": 1},
    "mamba_small": {"dim": 16, "depth": 2, "d_state": 4, "n_heads": 2, "patch_size": 20},
    "mamba_base": {
        "dim": 16,
        "depth": 2,
        "d_state": 4,
        "n_heads": 2,
        "patch_size": 20,
        "n_latent": 2,
    },
}


def eeg_sensors(n_channels, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.nn.functional.normalize(torch.randn(1, n_channels, 3, generator=gen), dim=-1)
    return SensorBatch(
        pos=pos * 0.09,
        ori=torch.zeros(1, n_channels, 3),
        kind=torch.zeros(1, n_channels, dtype=torch.long),
        chan_mask=torch.ones(1, n_channels, dtype=torch.bool),
    )


def test_registry_lists_the_five_configs_and_rejects_unknown_names():
    names = list_models()
    assert names == sorted(names)
    # Other packages (e.g. neurofm.models.labram) may register more configurations.
    assert {
        "cbramod_base",
        "criss_cross_base",
        "criss_cross_small",
        "mamba_base",
        "mamba_small",
    } <= set(names)
    assert set(list_models(details=True)) == set(list_models())
    with pytest.raises(ValueError, match="available: .*criss_cross_small"):
        create_model("criss_cross_huge")
    with pytest.raises(ValueError, match=r"mamba_small: hyperparameters of BidirectionalMamba: "
                                         r"unknown key\(s\) n_layers; valid keys: .*d_state"):
        create_model("mamba_small", n_layers=3)


def test_a_fresh_process_lists_every_model_file():
    code = "from neurofm.models import list_models; print(','.join(list_models()))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert set(done.stdout.strip().split(",")) >= {*TINY, "labram_base"}


def test_details_hold_class_defaults_description_and_sampling_rate():
    spec = list_models(details=True)["criss_cross_small"]
    assert spec.cls is CrissCrossTransformer and spec.sfreq == 200.0
    assert spec.defaults["dim"] == 128 and spec.defaults["depth"] == 6
    assert spec.description.startswith("Criss-cross transformer")
    config = create_model("criss_cross_small", depth=1).config
    assert config["depth"] == 1
    assert all(config[k] == v for k, v in spec.defaults.items() if k != "depth")


def test_the_registered_function_builds_the_model():
    model = criss_cross_small(depth=1, dim=32, n_heads=4, ffn_dim=64)
    assert isinstance(model, CrissCrossTransformer) and model.model_name == "criss_cross_small"
    assert model.config["depth"] == 1 and model.config["ffn_dim"] == 64
    assert criss_cross_small.__doc__.startswith("Criss-cross transformer")


def test_create_model_records_a_typed_preprocessing_spec():
    model = create_model("criss_cross_small", patch_size=20, depth=1)
    assert model.preprocessing == PreprocessSpec(sfreq=200.0, patch_samples=20)
    rebuilt = create_model("criss_cross_small", **model.config)
    assert rebuilt.config == model.config


def test_register_model_refuses_bad_registrations():
    with pytest.raises(TypeError, match="not a BrainEncoder subclass"):
        register_model(torch.nn.Linear)
    with pytest.raises(ValueError, match="already registered"):
        @register_model(CrissCrossTransformer)
        def criss_cross_small():
            """Twice."""
            return {}
    with pytest.raises(ValueError,
                       match=r"criss_cross_typo: hyperparameters of .* unknown key\(s\) n_layers"):
        @register_model(CrissCrossTransformer)
        def criss_cross_typo():
            """A typo in the defaults."""
            return {"n_layers": 3}
    assert "criss_cross_typo" not in list_models()


@pytest.mark.parametrize("name", sorted(TINY))
def test_registry_and_save_load_round_trip(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, **TINY[name]).eval()
    assert model.model_name == name and model.config["depth"] == TINY[name]["depth"]
    p = model.patch_size
    x, sensors = torch.randn(1, 3, 2, p), eeg_sensors(3)
    model.save_pretrained(tmp_path / "m", preprocessing={"l_freq": 0.3, "h_freq": 75.0})
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["architecture"] == name
    assert config["preprocessing"]["patch_samples"] == p and config["preprocessing"]["h_freq"] == 75.0
    assert "neurofm_version" in config
    loaded = from_pretrained(tmp_path / "m")
    assert loaded.config == model.config
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.reconstruct(x, sensors), model.reconstruct(x, sensors), atol=0, rtol=0
        )


def test_loading_errors_are_clear(tmp_path):
    model = create_model("criss_cross_small", **TINY["criss_cross_small"])
    with pytest.raises(FileNotFoundError, match="config.json"):
        from_pretrained(tmp_path)
    model.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match="corrupted or truncated"):
        from_pretrained(tmp_path)


def test_config_from_newer_version_with_unknown_field_warns(tmp_path):
    model = create_model("mamba_small", **TINY["mamba_small"])
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["hyperparameters"]["future_option"] = 1
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="future_option"):
        from_pretrained(tmp_path)


def test_masked_mean_pool_ignores_padding():
    feats = torch.randn(2, 3, 4, 5)
    chan = torch.tensor([[True, True, False], [True, True, True]])
    patch = torch.tensor([[True, True, True, False], [True] * 4])
    pooled = masked_mean_pool(feats, chan, patch)
    torch.testing.assert_close(pooled[0], feats[0, :2, :3].mean(dim=(0, 1)))
    torch.testing.assert_close(pooled[1], feats[1].mean(dim=(0, 1)))


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_classification_head_ignores_padded_tokens(pooling):
    torch.manual_seed(0)
    head = ClassificationHead(8, 3, pooling=pooling).eval()
    feats = torch.randn(1, 2, 3, 8)
    padded = torch.cat([feats, torch.randn(1, 1, 3, 8)], dim=1)
    logits = head(padded, torch.tensor([[True, True, False]]))
    assert logits.shape == (1, 3)
    torch.testing.assert_close(logits, head(feats), atol=1e-5, rtol=1e-5)
    assert AttentionPool(8, n_heads=2)(feats).shape == (1, 8)


def test_cbramod_base_holds_exactly_cbramods_state_dict_values():
    model = create_model("cbramod_base")
    state = model.state_dict()
    assert sum(v.numel() for v in state.values()) == 4_924_000
    assert state["stem.patch_embed.mask_encoding"].shape == (200,)
    assert not model.stem.patch_embed.mask_encoding.requires_grad
    assert state["reconstruction_head.proj.weight"].shape == (200, 200)


@needs_braindecode
def test_cbramod_base_matches_braindecode_cbramod_outputs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from braindecode.models import CBraMod
    torch.manual_seed(0)
    ref = CBraMod(return_encoder_output=True, n_layer=2).eval()
    # The published checkpoint layout: DataParallel prefix and all.
    published = {f"module.{k}": v for k, v in ref.state_dict().items()}
    ours = create_model("cbramod_base", depth=2).eval()
    ours.load_state_dict(convert_cbramod_state_dict(published), strict=True)
    x = torch.randn(2, 5, 3 * 200)
    patches = x.reshape(2, 5, 3, 200)
    mask = torch.rand(2, 5, 3) < 0.5
    with torch.no_grad():
        pairs = [
            (ours(patches), ref.encoder(ref.patch_embedding(patches))),
            (
                ours(patches, patch_mask=mask),
                ref.encoder(ref.patch_embedding(patches, mask.long())),
            ),
            (ours.reconstruct(patches), ref(x)),
        ]
    for got, expected in pairs:
        tolerance = 1e-5 * expected.abs().max().item() + 1e-6
        assert (got - expected).abs().max().item() <= tolerance


def test_cbramod_key_mapping_rejects_unknown_weights():
    with pytest.raises(KeyError, match="no counterpart"):
        convert_cbramod_state_dict({"encoder.extra.weight": torch.zeros(1)})
    assert convert_cbramod_state_dict({"final_layer.1.weight": torch.zeros(1)}) == {}
