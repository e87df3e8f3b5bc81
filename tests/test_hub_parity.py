"""Imported CBraMod / LaBraM weights reproduce braindecode's outputs (float32 parity).

Bound: max |ours - reference| <= 1e-5 * max |reference| + 1e-6 for every output. The fast tests
use 2-layer models; the published sizes (12 layers, 19 channels) run with ``-m slow``.
"""

import pytest
import torch
from extras import needs_braindecode
from hub_helpers import cbramod_published_state

from neurofm.hub import convert_cbramod, convert_labram, from_pretrained
from neurofm.hub.parity import cbramod_parity, compare, labram_parity


def _assert_all_ok(results):
    for output, figures in results.items():
        assert figures["ok"], f"{output}: {figures}"
        assert figures["max_abs_ref"] > 0.1, f"{output}: reference output is degenerate"


@pytest.mark.parametrize("layout", ["original", "braindecode"])
@needs_braindecode
def test_cbramod_parity_small(layout):
    results = cbramod_parity(layout, depth=2, batch=1, n_channels=5, n_patches=3)
    assert set(results) == {"features", "reconstruct", "reconstruct_masked"}
    _assert_all_ok(results)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@needs_braindecode
def test_labram_parity_small(pooling):
    results = labram_parity(depth=2, pooling=pooling, batch=1, n_patches=3)
    assert "classify" in results and "features" in results
    _assert_all_ok(results)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["original", "braindecode"])
@needs_braindecode
def test_cbramod_parity_published_size(layout):
    _assert_all_ok(cbramod_parity(layout))


@pytest.mark.slow
@pytest.mark.parametrize("pooling", ["cls", "mean"])
@needs_braindecode
def test_labram_parity_published_size(pooling):
    _assert_all_ok(labram_parity(pooling=pooling))


def test_compare_detects_a_difference():
    ref = torch.tensor([1.0, -4.0])
    assert compare(ref + 1e-6, ref)["ok"]
    assert not compare(ref + 1e-3, ref)["ok"]
    with pytest.raises(ValueError, match="shapes differ"):
        compare(ref[:1], ref)


def test_cbramod_full_size_import_has_cbramods_parameter_count(tmp_path):
    """A raw state dict of CBraMod's published size converts into cbramod_base exactly."""
    from neurofm.models import create_model

    source = create_model("cbramod_base")
    state = cbramod_published_state(source)
    torch.save(state, tmp_path / "pretrained_weights.pth")
    model = convert_cbramod(tmp_path / "pretrained_weights.pth", tmp_path / "out")
    assert sum(v.numel() for v in model.state_dict().values()) == 4_924_000
    reloaded = from_pretrained(tmp_path / "out")
    x = torch.randn(1, 3, 2, 200)
    with torch.no_grad():
        assert torch.equal(model.reconstruct(x), reloaded.reconstruct(x))
    card = (tmp_path / "out" / "README.md").read_text()
    assert "library_name: neurofm" in card and "4,924,000 parameters" in card
    assert "TUEG" in card


@needs_braindecode
def test_prefix_import_through_from_pretrained(tmp_path):
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    from braindecode.models import CBraMod

    torch.manual_seed(0)
    ref = CBraMod(return_encoder_output=True, n_layer=1).eval()
    torch.save(ref.state_dict(), tmp_path / "w.pth")
    model = from_pretrained(f"cbramod:{tmp_path / 'w.pth'}")
    assert model.model_name == "cbramod_base" and model.config["depth"] == 1
    x = torch.randn(1, 3, 2, 200)
    with torch.no_grad():
        figures = compare(model.reconstruct(x), ref(x.reshape(1, 3, 400)))
    assert figures["ok"], figures


@needs_braindecode
def test_labram_original_repository_names_and_nesting(tmp_path):
    """LaBraM's own checkpoint layout ({"model": {"student.pos_embed", ...}}) imports too."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    from braindecode.models import Labram

    torch.manual_seed(0)
    ref = Labram(n_times=600, n_outputs=2, n_chans=3, num_layers=1, qkv_bias=True).eval()
    renames = {"position_embedding": "pos_embed", "temporal_embedding": "time_embed",
               "patch_embed.temporal_conv.": "patch_embed.", ".mlp.0.": ".mlp.fc1.",
               ".mlp.2.": ".mlp.fc2.", "final_layer.": "head."}
    state = {}
    for key, value in ref.state_dict().items():
        for theirs, original in renames.items():
            key = key.replace(theirs, original)
        state["student." + key] = value
    state["student.lm_head.weight"] = torch.zeros(8192, 200)
    state["student.mask_token"] = torch.zeros(1, 1, 200)
    torch.save({"model": state, "epoch": 49}, tmp_path / "labram-base.pth")
    model = convert_labram(tmp_path / "labram-base.pth").set_channel_names(["Fp1", "Cz", "O2"])
    x = torch.randn(2, 3, 600)
    with torch.no_grad():
        figures = compare(model.classify(x.view(2, 3, 3, 200)),
                          ref(x, ch_names=["FP1", "CZ", "O2"]))
    assert figures["ok"], figures


def test_not_a_cbramod_checkpoint(tmp_path):
    torch.save({"conv.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a CBraMod checkpoint"):
        convert_cbramod(tmp_path / "other.pth")
    (tmp_path / "broken.pth").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="broken.pth could not be read"):
        convert_cbramod(tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="LaBraM"):
        convert_labram(tmp_path / "other.pth")
