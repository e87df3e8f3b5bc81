"""Helpers of the hub tests: tiny registered models, their inputs, and a hand-made Hub cache."""

import inspect
import shutil
from pathlib import Path

import torch

from neurofm.models import create_model, model_spec
from neurofm.sensors import SensorBatch

#: Small overrides per registered configuration (seconds on a laptop CPU).
TINY = {
    "criss_cross_small": {"dim": 32, "depth": 1, "n_heads": 4, "ffn_dim": 64, "patch_size": 20},
    "criss_cross_base": {"dim": 32, "depth": 1, "n_heads": 4, "ffn_dim": 64, "patch_size": 20},
    "cbramod_base": {"depth": 1},
    "mamba_small": {"dim": 32, "depth": 2, "n_heads": 4, "d_state": 4, "patch_size": 20},
    "mamba_base": {"dim": 32, "depth": 2, "n_heads": 4, "d_state": 4, "n_latent": 4, "patch_size": 20},
    "labram_base": {"depth": 1, "max_patches": 4, "n_classes": 3},
}
LABRAM_NAMES = ["EEG FP1-REF", "Cz", "EEG T3-REF", "O2"]


def tiny_model(name: str, seed: int = 0):
    """``create_model(name)`` at test size (``depth=1`` for configurations added later)."""
    torch.manual_seed(seed)
    spec = model_spec(name)
    accepted = set(inspect.signature(spec.cls.__init__).parameters)
    overrides = TINY.get(name, {k: v for k, v in {"depth": 1}.items() if k in accepted})
    return create_model(name, **overrides).eval()


def tiny_tokenizer(seed: int = 0):
    """A small ``NeuralTokenizer`` with 20-sample patches, in eval mode."""
    from neurofm.tokenizer import NeuralTokenizer, tokenizer_config

    torch.manual_seed(seed)
    return NeuralTokenizer(tokenizer_config("small", dim=32, n_heads=2, n_encoder_layers=1,
                                            code_dim=8, codebook_size=16, patch_size=20)).eval()


def assert_same_weights(a, b) -> None:
    """``a`` and ``b`` hold the same state dict, tensor for tensor."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), f"{key} differs"


def model_inputs(patch_size: int, n_channels: int = 4, n_patches: int = 3, seed: int = 1):
    """``(x [1, C, N, P], sensors)`` with random sensor positions on a 9-cm sphere."""
    gen = torch.Generator().manual_seed(seed)
    pos = torch.nn.functional.normalize(torch.randn(1, n_channels, 3, generator=gen), dim=-1)
    sensors = SensorBatch(pos=pos * 0.09, ori=torch.zeros(1, n_channels, 3),
                          kind=torch.zeros(1, n_channels, dtype=torch.long),
                          chan_mask=torch.ones(1, n_channels, dtype=torch.bool))
    x = torch.randn(1, n_channels, n_patches, patch_size, generator=gen)
    return x, sensors


def outputs(model, x, sensors) -> dict:
    """Every output the model offers on ``x``: features, embedding, reconstruction, logits."""
    if hasattr(model, "set_channel_names"):
        model.set_channel_names(LABRAM_NAMES[: x.shape[1]])
    with torch.no_grad():
        out = {"features": model(x, sensors), "embed": model.embed(x, sensors)}
        if model.reconstruction_head is not None:
            out["reconstruct"] = model.reconstruct(x, sensors)
        if getattr(model, "head", None) is not None:
            out["classify"] = model.classify(x, sensors)
    return out


def add_to_hub_cache(cache_dir, repo_id: str, model_dir, commit: str, refs=("main",)) -> Path:
    """Lay ``model_dir`` out as huggingface_hub's cache does, for revision ``commit``.

    ``cache_dir/models--org--name/snapshots/<commit>/`` holds the files and ``refs/<ref>`` the
    commit hash of each branch or tag in ``refs``.
    """
    repo = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for f in Path(model_dir).iterdir():
        shutil.copy(f, snapshot / f.name)
    (repo / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return snapshot


def cbramod_published_state(model) -> dict:
    """``model``'s (a ``cbramod_base``) weights under CBraMod's published key names."""
    prefixes = {"stem.position.conv.": "patch_embedding.positional_encoding.0.",
                "stem.patch_embed.": "patch_embedding.", "reconstruction_head.proj.": "proj_out.0.",
                "trunk.blocks.": "encoder.layers."}
    state = {}
    for key, value in model.state_dict().items():
        new = key
        for ours, theirs in prefixes.items():
            if key.startswith(ours):
                new = theirs + key[len(ours):]
                break
        new = (new.replace("spatial_attn", "self_attn_s").replace("temporal_attn", "self_attn_t")
               .replace("ffn.linear", "linear"))
        state[new] = value
    return state
