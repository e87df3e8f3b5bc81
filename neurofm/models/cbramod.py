"""The key mapping of CBraMod's published weights onto ``cbramod_base``.

CBraMod (Wang et al., ICLR 2025) is reproduced exactly by ``create_model("cbramod_base")``: a
:class:`~neurofm.models.criss_cross.CrissCrossTransformer` whose stem uses CBraMod's patch
embedding (:class:`~neurofm.tokenizer.CBraModPatchEmbedding`, frozen zero mask patch) and its
asymmetric conditional positional encoding (ACPE, a (19, 7)
:class:`~neurofm.tokenizer.ConvPositionEncoding`). :func:`convert_cbramod_state_dict` renames
CBraMod's state dict to it. ACPE mixes neighbouring channels *by their order* and the patch
embedding's group norm pools statistics over all channels of a window: ``cbramod_base`` is the
documented exception to order-free, padding-free sensor handling.
"""

from __future__ import annotations

import re

_CBRAMOD_RENAMES = (
    (r"^patch_embedding\.positional_encoding\.0\.", "stem.position.conv."),
    (r"^patch_embedding\.", "stem.patch_embed."),
    (r"^encoder\.layers\.(\d+)\.self_attn_s\.", r"trunk.blocks.\1.spatial_attn."),
    (r"^encoder\.layers\.(\d+)\.self_attn_t\.", r"trunk.blocks.\1.temporal_attn."),
    (r"^encoder\.layers\.(\d+)\.linear([12])\.", r"trunk.blocks.\1.ffn.linear\2."),
    (r"^encoder\.layers\.(\d+)\.norm([12])\.", r"trunk.blocks.\1.norm\2."),
    (r"^proj_out\.0\.", "reconstruction_head.proj."),
)


def cbramod_key(key: str) -> str:
    """Map one CBraMod state-dict key (original repository or braindecode) to ``cbramod_base``.

    Raises ``KeyError`` for keys that have no counterpart (e.g. a task head ``final_layer.*``).
    """
    key = key.removeprefix("module.")
    for pattern, repl in _CBRAMOD_RENAMES:
        new, count = re.subn(pattern, repl, key)
        if count:
            return new
    raise KeyError(f"CBraMod weight {key!r} has no counterpart in cbramod_base.")


def convert_cbramod_state_dict(state_dict: dict, *, skip_heads: bool = True) -> dict:
    """Rename a CBraMod state dict (``pretrained_weights.pth`` or braindecode) to ``cbramod_base``.

    Parameters
    ----------
    state_dict : dict
        CBraMod weights; a ``module.`` prefix (DataParallel) is removed.
    skip_heads : bool
        Drop task-specific heads (``final_layer.*``, ``classifier.*``) instead of raising.

    Returns
    -------
    dict mapping ``cbramod_base`` keys to tensors (load with ``load_state_dict(..., strict=True)``).
    """
    out = {}
    for key, value in state_dict.items():
        bare = key.removeprefix("module.")
        if skip_heads and bare.split(".")[0] in ("final_layer", "classifier"):
            continue
        out[cbramod_key(bare)] = value
    return out
