"""The encoder contract (DESIGN.md "Encoder API"), for every registered model.

Parametrised over ``list_models()`` (at test size), the code-input variants of the backbones
that offer it, and a toy backbone defined below exactly as ``docs/contributing.md`` ("Add a
backbone") says: a trunk, a ``BrainEncoder`` that puts the stem in front of it, a registration;
the toy backbone also takes one pretraining step through :func:`neurofm.train.train`.
Models with the sensor encoding promise more (padding never changes real outputs, channel order
carries no meaning); models with a reconstruction head take masks and train end to end.
"""

import math

import pytest
import torch
from test_train_loop import in_memory, make_windows
from torch import nn

from neurofm import from_pretrained
from neurofm.eval.finetune import EncoderWithHead, apply_freeze
from neurofm.models import BrainEncoder, Trunk, create_model, list_models, register_model
from neurofm.nn import FeedForward
from neurofm.sensors import SensorBatch
from neurofm.tokenizer import NeuralTokenizer, SensorTokenizer, tokenizer_config
from neurofm.train import load_config, train
from neurofm.train.metrics import read_metrics


# -- a toy backbone, added through the recipe of docs/contributing.md --------------------------
class ToyTrunk(Trunk):
    """Residual feed-forward blocks on every token."""

    def __init__(self, dim: int, depth: int):
        super().__init__()
        self.blocks = nn.ModuleList(FeedForward(dim, 2 * dim) for _ in range(depth))

    def forward(self, tokens, chan_valid, patch_valid):
        for block in self.blocks:
            tokens = tokens + block(tokens)
        return tokens


class ToyEncoder(BrainEncoder):
    def __init__(self, patch_size: int = 20, dim: int = 16, depth: int = 2):
        super().__init__(SensorTokenizer(patch_size, dim), ToyTrunk(dim, depth))


@register_model(ToyEncoder)
def toy_backbone():
    """A toy backbone: the sensor-aware stem, then residual feed-forward blocks."""
    return {"dim": 16, "depth": 2}


# -- the models under test ----------------------------------------------------------------------
TINY = {
    "criss_cross_small": {"dim": 32, "depth": 2, "n_heads": 4, "ffn_dim": 64, "patch_size": 20,
                          "dropout": 0.0, "drop_path": 0.0},
    "criss_cross_base": {"dim": 32, "depth": 2, "n_heads": 4, "ffn_dim": 64, "patch_size": 20,
                         "dropout": 0.0, "drop_path": 0.0, "n_latent": 3},
    "cbramod_base": {"depth": 1},
    "mamba_small": {"dim": 16, "depth": 2, "d_state": 4, "n_heads": 2, "patch_size": 20,
                    "spatial_every": 1, "n_latent": None},
    "mamba_base": {"dim": 16, "depth": 2, "d_state": 4, "n_heads": 2, "patch_size": 20,
                   "spatial_every": 1, "n_latent": 3, "drop_path": 0.1},
    "labram_base": {"depth": 2, "max_patches": 8, "n_classes": 3},
}
CODE_INPUT = ("criss_cross_small", "mamba_small")
CASES = [*list_models(), *(f"{name}+codes" for name in CODE_INPUT)]
LABRAM_NAMES = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2"]


def tiny_tokenizer(seed=0):
    torch.manual_seed(seed)
    cfg = tokenizer_config("small", patch_size=20, dim=16, n_heads=2, n_encoder_layers=1,
                           n_decoder_layers=1, code_dim=8, codebook_size=16, kmeans_vectors=0)
    return NeuralTokenizer(cfg).eval()


def build(case, seed=1):
    """The model of ``case`` (a registered name, ``+codes`` for the code input) in eval mode."""
    name, _, variant = case.partition("+")
    overrides = dict(TINY.get(name, {}))
    if name not in TINY and "depth" in model_defaults(name):
        overrides["depth"] = 1  # registered later: test at depth 1
    if variant == "codes":
        overrides.update(patch_input="codes", tokenizer=tiny_tokenizer())
    torch.manual_seed(seed)
    return create_model(name, **overrides).eval()


def model_defaults(name):
    return list_models(details=True)[name].defaults


def tolerance(case):
    """Float tolerance of equalities; the code input's tokenizer adds rounding (rtol 1e-4)."""
    return {"atol": 1e-5, "rtol": 1e-4 if case.endswith("+codes") else 1e-5}


def sensors_for(n_channels, seed):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.nn.functional.normalize(torch.randn(1, n_channels, 3, generator=gen), dim=-1)
    return SensorBatch(pos=pos * 0.09, ori=torch.zeros(1, n_channels, 3),
                       kind=torch.zeros(1, n_channels, dtype=torch.long),
                       chan_mask=torch.ones(1, n_channels, dtype=torch.bool))


def inputs(model, c=5, n=4, seed=0, b=1):
    """``(x [b, c, n, P], sensors)``; a model that looks channels up by name gets names."""
    gen = torch.Generator().manual_seed(seed)
    if hasattr(model, "set_channel_names"):
        model.set_channel_names(LABRAM_NAMES[:c])
    sensors = SensorBatch.collate([sensors_for(c, seed + i) for i in range(b)])
    return torch.randn(b, c, n, model.patch_size, generator=gen), sensors


def padded_batch(items):
    """Zero-pad ``[(x [1, C, N, P], sensors)]`` to the largest C, as collate_windows does."""
    c_max = max(x.shape[1] for x, _ in items)
    xs = [torch.nn.functional.pad(x, (0, 0, 0, 0, 0, c_max - x.shape[1])) for x, _ in items]
    return torch.cat(xs), SensorBatch.collate([s for _, s in items])


def rows(model, n_channels):
    """Output rows C': the latent channels with unification, else the sensors."""
    return model.config["n_latent"] if model.unifies_channels else n_channels


def need(condition, why):
    if not condition:
        pytest.skip(why)


# -- every model ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_shapes_of_features_embedding_and_reconstruction(case):
    model = build(case)
    x, sensors = inputs(model, c=5, n=4, b=2)
    with torch.no_grad():
        assert model(x, sensors).shape == (2, rows(model, 5), 4, model.dim)
        assert model.embed(x, sensors).shape == (2, model.dim)
        if model.reconstruction_head is None:
            with pytest.raises(ValueError, match="no reconstruction head"):
                model.reconstruct(x, sensors)
        else:
            assert model.reconstruct(x, sensors).shape == x.shape


@pytest.mark.parametrize("case", CASES)
def test_all_valid_patch_valid_is_no_patch_valid(case):
    model = build(case)
    x, sensors = inputs(model)
    valid = torch.ones(1, x.shape[2], dtype=torch.bool)
    with torch.no_grad():
        assert torch.equal(model(x, sensors, patch_valid=valid), model(x, sensors))
        assert torch.equal(model.embed(x, sensors, patch_valid=valid), model.embed(x, sensors))


@pytest.mark.parametrize("case", CASES)
def test_bad_inputs_raise_clear_errors(case):
    model = build(case)
    p = model.patch_size
    x, sensors = inputs(model, c=3, n=4)
    with pytest.raises(ValueError, match=f"patch_size={p}"):
        model(torch.randn(1, 3, 4, p // 2), sensors)
    if model.needs_sensors:
        with pytest.raises(ValueError, match="needs sensors"):
            model(x, None)
    with pytest.raises(ValueError, match="collate"):
        model(x, sensors_for(4, 0))
    with pytest.raises(ValueError, match="patch_valid"):
        model(x, sensors, patch_valid=torch.ones(1, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="patch_mask"):
        model(x, sensors, patch_mask=torch.zeros(1, 3, 5, dtype=torch.bool))
    if model.stem.channel_embedding is None:
        with pytest.raises(ValueError, match="channel_ids are read only by"):
            model(x, sensors, channel_ids=torch.arange(3))


@pytest.mark.parametrize("case", CASES)
def test_declared_blocks_select_what_partial_freezing_trains(case):
    model = build(case)
    blocks = model.blocks
    assert isinstance(blocks, nn.ModuleList) and len(blocks) == model.config["depth"]
    trainable = apply_freeze(EncoderWithHead(model, n_outputs=2), "partial:1")
    last = f"trunk.blocks.{len(blocks) - 1}."
    assert any(n.startswith(last) for n in trainable)
    assert not any(n.startswith("trunk.blocks.") and not n.startswith(last) for n in trainable)
    assert not any(n.startswith("stem.") for n in trainable)


# -- models with the sensor encoding: padding and channel order carry no meaning --------------
@pytest.mark.parametrize("case", CASES)
def test_padded_mixed_batch_equals_items_alone(case):
    model = build(case)
    need(model.stem.sensor_encoding is not None, "padding-free only with the sensor encoding")
    items = [inputs(model, c=5, n=4, seed=1), inputs(model, c=3, n=4, seed=2)]
    x, sensors = padded_batch(items)
    tol = tolerance(case)
    with torch.no_grad():
        feats, pooled = model(x, sensors), model.embed(x, sensors)
        recon = model.reconstruct(x, sensors)
        for i, (xi, si) in enumerate(items):
            c = xi.shape[1]
            if not model.unifies_channels:
                torch.testing.assert_close(feats[i, :c], model(xi, si)[0], **tol)
            torch.testing.assert_close(pooled[i], model.embed(xi, si)[0], **tol)
            torch.testing.assert_close(recon[i, :c], model.reconstruct(xi, si)[0], **tol)


@pytest.mark.parametrize("case", CASES)
def test_padded_patches_do_not_change_valid_ones(case):
    model = build(case)
    need(model.stem.sensor_encoding is not None, "padding-free only with the sensor encoding")
    need(not case.endswith("+codes"), "the tokenizer's encoder mixes patches (docs/models.md)")
    x, sensors = inputs(model, c=4, n=3, seed=3)
    x_long = torch.cat([x, 3 * torch.randn(1, 4, 2, model.patch_size)], dim=2)
    valid = torch.tensor([[True, True, True, False, False]])
    with torch.no_grad():
        torch.testing.assert_close(model(x_long, sensors, patch_valid=valid)[:, :, :3],
                                   model(x, sensors), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.embed(x_long, sensors, patch_valid=valid),
                                   model.embed(x, sensors), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_channel_permutation_equivariance(case):
    model = build(case)
    need(model.stem.sensor_encoding is not None, "order-free only with the sensor encoding")
    x, sensors = inputs(model, c=6, n=4, seed=4)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    tol = tolerance(case)
    with torch.no_grad():
        feats = model(x, sensors)
        feats_perm = model(x[:, perm], sensors.permute_channels(perm))
        # Sensor rows are permuted with the input; latent rows do not depend on channel order.
        expected = feats if model.unifies_channels else feats[:, perm]
        torch.testing.assert_close(feats_perm, expected, **tol)
        torch.testing.assert_close(model.embed(x[:, perm], sensors.permute_channels(perm)),
                                   model.embed(x, sensors), **tol)
        torch.testing.assert_close(model.reconstruct(x[:, perm], sensors.permute_channels(perm)),
                                   model.reconstruct(x, sensors)[:, perm], **tol)


# -- models built for pretraining: masks and a training step -----------------------------------
@pytest.mark.parametrize("case", CASES)
def test_masked_patches_hide_their_content(case):
    model = build(case)
    need(model.reconstruction_head is not None, "not built for masked pretraining")
    x, sensors = inputs(model, c=3, n=4, seed=5)
    mask = torch.zeros(1, 3, 4, dtype=torch.bool)
    mask[0, 1, 2] = True
    x_changed = x.clone()
    x_changed[0, 1, 2] += 5.0
    with torch.no_grad():
        out = model.reconstruct(x, sensors, patch_mask=mask)
        assert not torch.allclose(out, model.reconstruct(x, sensors))
        torch.testing.assert_close(model.reconstruct(x_changed, sensors, patch_mask=mask), out)


@pytest.mark.parametrize("case", CASES)
def test_masked_reconstruction_step_reaches_every_trainable_parameter(case):
    model = build(case).train()
    need(model.reconstruction_head is not None, "not built for masked pretraining")
    x, sensors = inputs(model, c=3, n=6, seed=6)
    mask = torch.rand(1, 3, 6, generator=torch.Generator().manual_seed(7)) < 0.5
    loss = (model.reconstruct(x, sensors, patch_mask=mask) - x).square().mean()
    loss.backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []


def test_the_toy_backbone_is_registered_by_its_decorator():
    assert "toy_backbone" in list_models()
    model = toy_backbone(depth=3)
    assert isinstance(model.trunk, ToyTrunk) and len(model.blocks) == 3
    assert model.config == {"patch_size": 20, "dim": 16, "depth": 3}


def test_the_toy_backbone_pretrains_through_the_training_loop(tmp_path):
    config = load_config(None, ["model.name=toy_backbone", "data.batch_size=4", "run.steps=1",
                                f"run.out_dir={tmp_path / 'run'}", "run.progress=false",
                                "run.tensorboard=false", "optim.warmup_steps=1",
                                "run.log_every=1", "run.checkpoint_every=1"])
    result = train(config, data=in_memory(make_windows(n=8, c=3, n_patches=4, p=20)))
    record, = read_metrics(result.out_dir / "metrics.jsonl")
    assert result.steps == 1 and math.isfinite(result.final_loss)
    assert record["reconstruction"] > 0 and record["grad_norm"] > 0
    exported = from_pretrained(result.model_dir)
    assert isinstance(exported, ToyEncoder) and exported.model_name == "toy_backbone"
    assert exported.config == {"patch_size": 20, "dim": 16, "depth": 2}
