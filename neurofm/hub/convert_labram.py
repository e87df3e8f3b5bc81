"""Import LaBraM weights into ``labram_base`` (:class:`neurofm.models.labram.LabramEncoder`).

Sources: braindecode's ``Labram`` state dict (``braindecode/labram-pretrained``, or any model
saved by braindecode: keys ``patch_embed.temporal_conv.*``, ``position_embedding``,
``temporal_embedding``, ``blocks.N.{norm1,attn,norm2,mlp,gamma_1,gamma_2}``, ``norm``/``fc_norm``,
``final_layer``), and the LaBraM repository's own names (``pos_embed``, ``time_embed``,
``patch_embed.conv1``, ``mlp.fc1/fc2``, ``head``; a ``student.`` prefix and the pretraining-only
``lm_head``/``mask_token`` in ``labram-base.pth``), which differ only by name. They are renamed to
neurofm 0.1.0's names, then brought to today's layout by the same upgrade as weights saved by
0.1.0 (:func:`neurofm.models.labram.upgrade_labram_state`). Hyperparameters are read off the
tensor shapes (width, depth, heads via the query-norm width, MLP ratio, biases, layer scale,
temporal-embedding rows, pooling, classifier size).
"""

from __future__ import annotations

import re

from neurofm.hub.checkpoints import read_state_dict
from neurofm.hub.convert_cbramod import CONVERT_COMMAND
from neurofm.models.labram import upgrade_labram_state
from neurofm.models.registry import create_model
from neurofm.output_folder import claim_output_folder

#: Preprocessing LaBraM was pretrained with, as its authors report it.
LABRAM_PREPROCESSING = {"sfreq": 200.0, "patch_size": 200, "patch_seconds": 1.0, "l_freq": 0.1,
                        "h_freq": 75.0, "notch": 50.0, "scales": {"eeg": 1e4},
                        "kinds": ["eeg"]}

LABRAM_CARD = {
    "intended_use": "Feature extraction, linear probing and fine-tuning on scalp EEG sampled at "
                 "200 Hz in 1-s patches, with channels named as in LaBraM's 128-name table.",
    "training_data": "About 2,500 hours of EEG from some 20 datasets (TUEG and others), as "
                  "released by the LaBraM authors (Jiang et al., ICLR 2024).",
    "objective": "Masked prediction of neural-tokenizer codes (a VQ codebook trained to "
              "reconstruct Fourier amplitude and phase).",
    "notes": "Imported with `neurofm convert labram`; outputs match braindecode's Labram to "
          "float32 precision. Channels are looked up by name in a 128-name table "
          "(neurofm.models.labram.LABRAM_CHANNELS): call `model.set_channel_names(names)` "
          "before encoding. This is an exception to neurofm's order-free sensor encoding.",
    "tags": ("labram", "imported"),
}

#: (pattern, replacement) from the LaBraM repository's / braindecode's names to neurofm 0.1.0's.
_RENAMES = (
    (r"^patch_embed\.temporal_conv\.", "patch_embed."),
    (r"^pos_embed$", "position_embedding"),
    (r"^time_embed$", "temporal_embedding"),
    (r"\.mlp\.fc1\.", ".mlp.0."),
    (r"\.mlp\.fc2\.", ".mlp.2."),
    (r"^final_layer\.", "head."),
)
#: Pretraining-only parts of a LaBraM checkpoint that the encoder does not use.
_PRETRAINING_ONLY = ("lm_head.", "mask_token", "projection_head.")


def convert_labram_state_dict(state: dict) -> dict:
    """Rename LaBraM weights (braindecode or original names) to ``labram_base``'s."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.").removeprefix("student.")
        if key.startswith(_PRETRAINING_ONLY) or key.startswith("teacher."):
            continue
        for pattern, repl in _RENAMES:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return upgrade_labram_state(out)


def _infer_hyperparameters(state: dict, n_heads: int | None, patch_size: int) -> dict:
    """``LabramEncoder`` arguments that fit the converted weights' shapes."""
    block = "trunk.blocks.0."
    if "trunk.cls_token" not in state or f"{block}attn.qkv.weight" not in state:
        raise ValueError("The checkpoint has no LaBraM cls_token/transformer blocks; is it a "
                         "LaBraM checkpoint?")
    dim = int(state["trunk.cls_token"].shape[-1])
    depth = 1 + max(int(m.group(1)) for k in state
                    if (m := re.match(r"trunk\.blocks\.(\d+)\.", k)))
    qk_norm = f"{block}attn.q_norm.weight" in state
    if n_heads is None:
        if not qk_norm:
            raise ValueError("This LaBraM has no query norm, so its number of heads is not in the "
                             "weights; pass n_heads (LaBraM-Base uses 10).")
        n_heads = dim // int(state[f"{block}attn.q_norm.weight"].shape[0])
    hyper = {
        "patch_size": patch_size, "dim": dim, "depth": depth, "n_heads": n_heads,
        "mlp_ratio": state[f"{block}mlp.linear1.weight"].shape[0] / dim,
        "qkv_bias": f"{block}attn.q_bias" in state, "qk_norm": qk_norm,
        "conv_channels": int(state["stem.patch_embed.conv1.weight"].shape[0]),
        "init_values": 0.1 if f"{block}gamma_1" in state else 0.0,
        "max_patches": int(state["stem.temporal_embedding.weight"].shape[0]),
        "pooling": "mean" if "trunk.fc_norm.weight" in state else "cls",
        "n_classes": int(state["head.weight"].shape[0]) if "head.weight" in state else 0}
    return hyper


def convert_labram(src, out_dir=None, *, n_heads: int | None = None, patch_size: int = 200,
                   inert_globals=(), overwrite: bool = False, revision: str | None = None):
    """Build ``labram_base`` with published LaBraM weights.

    Parameters
    ----------
    src : str or Path
        A braindecode ``model.safetensors``/``pytorch_model.bin``, LaBraM's ``.pth``, a directory
        holding one, or a Hub repo id (``braindecode/labram-pretrained``).
    out_dir : str, Path or None
        When given, write ``config.json`` + ``model.safetensors`` + ``README.md`` there.
    n_heads : int or None
        Attention heads; read from the query-norm width when None.
    patch_size : int
        Samples per patch (200 = 1 s at 200 Hz in LaBraM).
    inert_globals : iterable of str
        Globals a ``.pth`` may name besides tensors, read as inert stand-ins
        (:func:`neurofm.hub.checkpoints.read_state_dict`).
    overwrite : bool
        Write into ``out_dir`` although it holds files ``neurofm convert`` did not write.
    revision : str or None
        Branch, tag or commit when ``src`` is a Hub repo id (default main).

    Returns
    -------
    :class:`~neurofm.models.labram.LabramEncoder` named ``labram_base``, in eval mode.
    """
    state, path = read_state_dict(src, inert=inert_globals, revision=revision)
    converted = convert_labram_state_dict(state)
    hyper = _infer_hyperparameters(converted, n_heads, patch_size)
    model = create_model("labram_base", **hyper)
    try:
        model.load_state_dict(converted, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit labram_base: {err}") from None
    model.preprocessing = dict(LABRAM_PREPROCESSING)
    model.eval()
    if out_dir is not None:
        claim_output_folder(out_dir, CONVERT_COMMAND, {"model": "labram", "src": str(src)},
                            overwrite=overwrite)
        model.save_pretrained(out_dir, model_card_kwargs={"source": str(src), **LABRAM_CARD})
    return model
