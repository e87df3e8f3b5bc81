"""Weights written by neurofm 0.1.0 (state-dict format 1) load into today's modules.

Each folder of ``tests/fixtures/v0_1_0`` is read here without the persistence layer: the
safetensors file as it is, ``upgrade_state_dict(state, 1)``, a strict load into
``create_model(architecture, **hyperparameters)``, and the outputs compared with those 0.1.0
gave (``expected.npz``, <= 1e-5).
"""

import json

import numpy as np
import pytest
import torch
from hub_helpers import LABRAM_NAMES
from safetensors.torch import load_file
from v0_1_0_fixtures import FIXTURES, MODEL_FOLDERS, TOLERANCE, recorded_inputs

from neurofm.models import create_model
from neurofm.tokenizer import NeuralTokenizer, TokenizerConfig


@pytest.mark.parametrize("folder", MODEL_FOLDERS, ids=lambda p: p.name)
def test_upgraded_0_1_0_weights_load_strictly_and_give_the_same_outputs(folder):
    config = json.loads((folder / "config.json").read_text())
    model = create_model(config["architecture"], **config["hyperparameters"]).eval()
    state = load_file(str(folder / "model.safetensors"))
    with pytest.raises(RuntimeError, match="Missing key"):
        model.load_state_dict(state, strict=True)  # the modules did move
    model.load_state_dict(model.upgrade_state_dict(state, 1), strict=True)
    assert model.upgrade_state_dict(model.state_dict(), 1).keys() == model.state_dict().keys()

    expected = np.load(folder / "expected.npz")
    x, sensors = recorded_inputs(expected)
    if hasattr(model, "set_channel_names"):
        model.set_channel_names(LABRAM_NAMES[: x.shape[1]])
    with torch.no_grad():
        got = {"features": model(x, sensors), "embed": model.embed(x, sensors)}
        if "out_reconstruct" in expected:
            got["reconstruct"] = model.reconstruct(x, sensors)
        if "out_classify" in expected:
            got["classify"] = model.classify(x, sensors)
    assert {f"out_{k}" for k in got} == {k for k in expected if k.startswith("out_")}
    for key, value in got.items():
        diff = float((value - torch.from_numpy(expected[f"out_{key}"])).abs().max())
        assert diff <= TOLERANCE, f"{folder.name}: {key} differs by {diff:g}"


def test_upgraded_0_1_0_tokenizer_gives_the_same_codes():
    folder = FIXTURES / "tokenizer"
    values = json.loads((folder / "config.json").read_text())
    values.pop("model_type")
    tokenizer = NeuralTokenizer(TokenizerConfig.from_dict(values)).eval()
    state = load_file(str(folder / "model.safetensors"))
    assert any(".ffn.0." in key for key in state)  # written with the tokenizer's old MLP
    tokenizer.load_state_dict(tokenizer.upgrade_state_dict(state, 1), strict=True)
    expected = np.load(folder / "expected.npz")
    x, sensors = recorded_inputs(expected)
    assert np.array_equal(tokenizer.encode(x, sensors).numpy(), expected["codes"])


def test_weights_of_this_format_are_left_alone():
    model = create_model("criss_cross_small", dim=32, depth=1, n_heads=4, ffn_dim=64,
                         patch_size=20)
    state = model.state_dict()
    assert model.upgrade_state_dict(state, 2) is state


def test_optimizer_state_of_a_module_that_gained_parameters():
    """A checkpoint's AdamW state, written before the sensor encoding gained its
    position-unknown parameters, fits today's parameters: the old ones keep their moments."""
    from neurofm.nn import upgrade_optimizer_state

    torch.manual_seed(0)
    model = create_model("criss_cross_small", dim=32, depth=1, n_heads=4)
    added = ("stem.sensor_encoding.unknown_position", "stem.sensor_encoding.contact_projection")
    old_params = [p for n, p in model.named_parameters() if n not in added]
    old_opt = torch.optim.AdamW(old_params)
    sum(p.square().sum() for p in old_params).backward()
    old_opt.step()
    saved = old_opt.state_dict()
    saved_names = [n for n in model.state_dict() if n not in added]

    opt = torch.optim.AdamW(model.parameters())
    upgraded = upgrade_optimizer_state(model, opt, saved, saved_names)
    opt.load_state_dict(upgraded)
    for name, p in model.named_parameters():
        if name in added:
            assert p not in opt.state or not opt.state[p]
        else:
            old_state = old_opt.state[old_params[[id(q) for q in old_params].index(id(p))]]
            torch.testing.assert_close(opt.state[p]["exp_avg"], old_state["exp_avg"])
    unchanged = opt.state_dict()
    assert upgrade_optimizer_state(model, opt, unchanged, list(model.state_dict())) is unchanged
