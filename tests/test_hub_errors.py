"""Clear errors and warnings: corrupted/truncated weights, newer configs, foreign directories."""

import json
import warnings

import huggingface_hub.constants
import pytest
import torch
from hub_helpers import add_to_hub_cache, model_inputs, tiny_model

from neurofm.hub import check_safetensors, from_pretrained


@pytest.fixture
def saved(tmp_path):
    model = tiny_model("criss_cross_small")
    model.save_pretrained(tmp_path / "m")
    return model, tmp_path / "m"


def test_truncated_weights_name_the_file_and_the_fix(saved):
    _, directory = saved
    weights = directory / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"model\.safetensors is truncated: \d+ bytes of the \d+"):
        from_pretrained(directory)


def test_corrupted_header_is_reported(saved):
    _, directory = saved
    weights = directory / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:16] = b"\xff" * 8
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupted"):
        from_pretrained(directory)
    weights.write_bytes(b"\x01\x02")
    with pytest.raises(ValueError, match="truncated"):
        check_safetensors(weights)


def test_truncated_hub_download_says_force_download(saved, tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    _, directory = saved
    snapshot = add_to_hub_cache(tmp_path / "cache", "org/tiny", directory, "c" * 40)
    weights = snapshot / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"from_pretrained\('org/tiny', force_download=True\)"):
        from_pretrained("org/tiny", cache_dir=tmp_path / "cache")


def test_newer_config_with_unknown_fields_warns_and_loads(saved):
    model, directory = saved
    path = directory / "config.json"
    config = json.loads(path.read_text())
    config["neurofm_version"] = "99.0.0"
    config["training_recipe"] = {"something": "new"}
    config["hyperparameters"]["rotary_base"] = 10000
    path.write_text(json.dumps(config))
    with pytest.warns(UserWarning) as record:
        loaded = from_pretrained(directory)
    text = " ".join(str(w.message) for w in record)
    assert "99.0.0" in text and "training_recipe" in text and "rotary_base" in text
    x, sensors = model_inputs(model.patch_size)
    with torch.no_grad():
        assert torch.equal(model(x, sensors), loaded(x, sensors))


def test_same_version_config_loads_silently(saved):
    _, directory = saved
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_pretrained(directory)


def test_newer_tokenizer_config_warns(tmp_path):
    from neurofm.tokenizer import NeuralTokenizer, tokenizer_config

    tok = NeuralTokenizer(tokenizer_config("small", dim=32, n_heads=2, n_encoder_layers=1,
                                           code_dim=8, codebook_size=16, patch_size=20))
    tok.save_pretrained(tmp_path / "tok")
    path = tmp_path / "tok" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "future_option": 3}))
    with pytest.warns(UserWarning, match="future_option"):
        loaded = from_pretrained(tmp_path / "tok")
    assert isinstance(loaded, NeuralTokenizer)


def test_unknown_architecture_asks_to_upgrade(saved):
    _, directory = saved
    path = directory / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "architecture": "hyena_xl"}))
    with pytest.raises(ValueError, match="hyena_xl.*upgrade neurofm"):
        from_pretrained(directory)


def test_foreign_config_is_rejected_with_the_import_hint(saved):
    _, directory = saved
    (directory / "config.json").write_text(json.dumps({"n_outputs": 2, "braindecode_version": "1"}))
    with pytest.raises(ValueError, match="cbramod:PATH"):
        from_pretrained(directory)
    (directory / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        from_pretrained(directory)


def test_mismatched_weights_are_reported(saved, tmp_path):
    _, directory = saved
    other = tiny_model("cbramod_base")
    other.save_pretrained(tmp_path / "other")
    (tmp_path / "other" / "config.json").write_text((directory / "config.json").read_text())
    with pytest.raises(ValueError, match="does not match"):
        from_pretrained(tmp_path / "other")
