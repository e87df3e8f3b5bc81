"""Save and load give the same model: class methods and neurofm.from_pretrained, every model."""

import pytest
import torch
from hub_helpers import assert_same_weights, model_inputs, outputs, tiny_model, tiny_tokenizer

import neurofm
from neurofm.data.spec import PreprocessSpec
from neurofm.hub import from_pretrained, read_config
from neurofm.models import BrainEncoder, list_models
from neurofm.tokenizer import NeuralTokenizer


def _assert_same_outputs(before: dict, after: dict, name: str) -> None:
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), f"{name}: {key} differs after reloading"


@pytest.mark.parametrize("name", list_models())
def test_round_trip_identical_outputs_for_every_registered_model(name, tmp_path):
    model = tiny_model(name)
    x, sensors = model_inputs(model.patch_size)
    before = outputs(model, x, sensors)
    model.save_pretrained(tmp_path / name)
    loaded = from_pretrained(tmp_path / name)
    assert type(loaded) is type(model) and loaded.model_name == name
    assert not loaded.training
    assert_same_weights(model, loaded)
    _assert_same_outputs(before, outputs(loaded, x, sensors), name)
    config = read_config(tmp_path / name)
    recorded = PreprocessSpec.from_dict(config["preprocessing"])
    assert recorded.sfreq == 200.0 and recorded.patch_samples == model.patch_size


@pytest.mark.parametrize("name", list_models())
def test_class_methods_round_trip_for_every_registered_model(name, tmp_path):
    model = tiny_model(name)
    x, sensors = model_inputs(model.patch_size)
    before = outputs(model, x, sensors)
    folder = model.save_pretrained(tmp_path / name)
    for cls in (type(model), BrainEncoder):
        loaded = cls.from_pretrained(folder)
        assert type(loaded) is type(model) and loaded.model_name == name
        assert loaded.config == model.config and not loaded.training
        assert_same_weights(model, loaded)
        _assert_same_outputs(before, outputs(loaded, x, sensors), f"{cls.__name__}: {name}")


def test_labram_base_is_registered():
    assert "labram_base" in list_models()


@pytest.mark.parametrize("load", [from_pretrained, NeuralTokenizer.from_pretrained],
                         ids=["neurofm.from_pretrained", "NeuralTokenizer.from_pretrained"])
def test_tokenizer_round_trip(tmp_path, load):
    tok = tiny_tokenizer()
    x, sensors = model_inputs(20, n_channels=3)
    tok.save_pretrained(tmp_path / "tok")
    loaded = load(tmp_path / "tok")
    assert isinstance(loaded, NeuralTokenizer) and not loaded.training
    assert loaded.config == tok.config
    assert_same_weights(tok, loaded)
    with torch.no_grad():
        assert torch.equal(tok.encode(x, sensors), loaded.encode(x, sensors))
        assert torch.equal(tok.embed(x, sensors), loaded.embed(x, sensors))


def test_a_preprocessing_spec_is_written_as_its_dict_and_read_back(tmp_path):
    model = tiny_model("criss_cross_small")
    spec = PreprocessSpec(sfreq=200.0, patch_samples=model.patch_size, l_freq=0.5, h_freq=40.0,
                          line_freq=50.0, window_samples=400)
    model.save_pretrained(tmp_path / "m", preprocessing=spec)
    assert read_config(tmp_path / "m")["preprocessing"] == spec.to_dict()
    loaded = from_pretrained(tmp_path / "m").preprocessing
    assert (loaded if isinstance(loaded, PreprocessSpec) else PreprocessSpec.from_dict(loaded)) \
        == spec


def test_lazy_top_level_entry_point_matches_hub():
    assert neurofm.from_pretrained is from_pretrained
