"""Numerical parity of imported models with braindecode's reference implementations.

Each check builds braindecode's ``CBraMod`` or ``Labram`` with seeded random weights (every
parameter perturbed, so no zero-initialised bias or layer scale hides a mapping error), writes its
state dict in a published key layout, converts it with :mod:`neurofm.hub`, runs both models on the
same float32 input and reports, per output, the largest absolute difference against the bound
``rtol * max|reference| + atol`` (1e-5 and 1e-6 by default).

Used by ``tests/test_hub_parity.py`` and ``benchmarks/hub_parity.py`` (which prints the table).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from neurofm.compat import braindecode_models
from neurofm.hub.convert_cbramod import convert_cbramod
from neurofm.hub.convert_labram import convert_labram

RTOL, ATOL = 1e-5, 1e-6
#: Channel labels as recordings spell them, and the LaBraM table rows braindecode is given.
LABRAM_RECORDING_NAMES = ("EEG FP1-REF", "EEG FP2-REF", "Cz", "EEG T3-REF", "T7", "O1", "Pz",
                          "FP1-F7")
LABRAM_TABLE_NAMES = ("FP1", "FP2", "CZ", "T3", "T7", "O1", "PZ", "FP1-F7")


def compare(ours: torch.Tensor, reference: torch.Tensor, rtol: float = RTOL,
            atol: float = ATOL) -> dict:
    """``{"max_abs_diff", "max_abs_ref", "bound", "ok"}`` for two same-shape tensors."""
    if ours.shape != reference.shape:
        raise ValueError(f"Output shapes differ: ours {tuple(ours.shape)} vs reference "
                         f"{tuple(reference.shape)}.")
    diff = float((ours.double() - reference.double()).abs().max())
    scale = float(reference.double().abs().max())
    bound = rtol * scale + atol
    return {"max_abs_diff": diff, "max_abs_ref": scale, "bound": bound, "ok": diff <= bound}


def _perturb(model: torch.nn.Module, seed: int, scale: float = 0.05) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


def _export(state: dict, directory: Path, layout: str) -> Path:
    """Write ``state`` as a published checkpoint; return the path to convert from."""
    if layout == "original":  # CBraMod's pretrained_weights.pth, saved from DataParallel
        path = directory / "pretrained_weights.pth"
        torch.save({f"module.{k}": v for k, v in state.items()}, path)
        return path
    if layout == "braindecode":  # re-hosted Hub repo: model.safetensors (+ braindecode config)
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()},
                  str(directory / "model.safetensors"))
        (directory / "config.json").write_text('{"braindecode_version": "1.8.1"}\n')
        return directory
    raise ValueError(f"layout must be 'original' or 'braindecode'; got {layout!r}.")


def cbramod_parity(layout: str = "original", *, depth: int = 12, batch: int = 2,
                   n_channels: int = 19, n_patches: int = 4, seed: int = 0) -> dict:
    """Compare ``cbramod_base`` converted from braindecode's ``CBraMod`` with the reference.

    Inputs are ``batch`` windows of ``n_channels`` x ``n_patches`` 1-s patches of standard
    normal samples (1.0 = 100 uV), the scale of preprocessed EEG.

    Outputs: ``features`` (encoder output ``[B, C, N, 200]``), ``reconstruct``
    (``proj_out(encoder(x))``) and ``reconstruct_masked`` (half the patches masked).
    ``layout="braindecode"`` exports a model with a classification head (dropped on import).
    """
    bd = braindecode_models("the parity check against braindecode")
    torch.manual_seed(seed)
    n_times = n_patches * 200
    if layout == "braindecode":
        ref = bd.CBraMod(n_outputs=2, n_chans=n_channels, n_times=n_times, n_layer=depth)
    else:
        ref = bd.CBraMod(return_encoder_output=True, n_layer=depth)
    ref.eval()
    _perturb(ref, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, n_channels, n_times, generator=gen)
    mask = torch.rand(batch, n_channels, n_patches, generator=gen) < 0.5
    patches = x.view(batch, n_channels, n_patches, 200)
    with tempfile.TemporaryDirectory() as tmp:
        model = convert_cbramod(_export(ref.state_dict(), Path(tmp), layout))
    with torch.no_grad():
        ref_features = ref.encoder(ref.patch_embedding(patches))
        # CBraMod's forward: proj_out(encoder(patch_embedding(x, mask))).
        ref_out = ref(x, return_features=True)["features"]
        ref_masked = ref(x, mask=mask.long(), return_features=True)["features"]
        results = {
            "features": compare(model(patches), ref_features),
            "reconstruct": compare(model.reconstruct(patches), ref_out),
            "reconstruct_masked": compare(model.reconstruct(patches, patch_mask=mask),
                                          ref_masked),
        }
    return results


def labram_parity(layout: str = "braindecode", *, depth: int = 12, pooling: str = "cls",
                  batch: int = 2, n_patches: int = 4, seed: int = 0) -> dict:
    """Compare ``labram_base`` converted from braindecode's ``Labram`` with the reference.

    The reference is given LaBraM table names (``LABRAM_TABLE_NAMES``); the converted model the
    same channels as recordings spell them (``LABRAM_RECORDING_NAMES``), so the name mapping is
    checked too. Outputs: ``features`` (final-normed patch tokens), ``embed`` ([CLS] token, only
    with ``pooling="cls"``) and ``classify`` (the linear head on the pooled token).
    """
    if layout != "braindecode":
        raise ValueError("LaBraM parity is measured against braindecode's layout "
                         "(layout='braindecode').")
    bd = braindecode_models("the parity check against braindecode")
    torch.manual_seed(seed)
    n_channels, n_times = len(LABRAM_TABLE_NAMES), n_patches * 200
    ref = bd.Labram(n_times=n_times, n_outputs=3, n_chans=n_channels, num_layers=depth,
                    qkv_bias=True, use_mean_pooling=pooling == "mean").eval()
    _perturb(ref, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, n_channels, n_times, generator=gen)
    with tempfile.TemporaryDirectory() as tmp:
        model = convert_labram(_export(ref.state_dict(), Path(tmp), layout))
    model.set_channel_names(LABRAM_RECORDING_NAMES)
    patches = x.view(batch, n_channels, n_patches, 200)
    names = list(LABRAM_TABLE_NAMES)
    with torch.no_grad():
        ref_tokens = ref(x, return_features=True, ch_names=names)
        ours = model(patches).reshape(batch, n_channels * n_patches, -1)
        results = {"features": compare(ours, ref_tokens["features"])}
        if pooling == "cls":
            results["embed"] = compare(model.embed(patches), ref_tokens["cls_token"])
        results["classify"] = compare(model.classify(patches), ref(x, ch_names=names))
    return results
