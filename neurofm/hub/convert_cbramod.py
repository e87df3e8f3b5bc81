"""Import CBraMod's published weights into ``cbramod_base``.

Sources: CBraMod's ``pretrained_weights.pth`` (raw ``state_dict`` with keys ``patch_embedding.*``,
``encoder.layers.N.self_attn_s/self_attn_t.*``, ``linear1/2``, ``norm1/2``, ``proj_out.0.*``;
``module.``-prefixed when saved from DataParallel) and braindecode's re-hosted CBraMod
(``braindecode/cbramod-pretrained``: the same names in ``model.safetensors`` /
``pytorch_model.bin``, plus a task head ``final_layer.*`` that is dropped). The key mapping lives
beside the architecture in :func:`neurofm.models.cbramod.convert_cbramod_state_dict`; this module
reads the file, sizes the model from the weights, loads them strictly and writes a neurofm model
directory with a model card.

The imported model reproduces CBraMod's forward pass: ``model(x)`` is its encoder output
``[B, C, N, 200]`` and ``model.reconstruct(x, patch_mask=...)`` its ``proj_out(encoder(x))``.
"""

from __future__ import annotations

import re

from neurofm.hub.checkpoints import read_state_dict
from neurofm.models.cbramod import convert_cbramod_state_dict
from neurofm.models.registry import create_model
from neurofm.output_folder import claim_output_folder

#: The command whose output-folder marker converted model folders carry.
CONVERT_COMMAND = "neurofm convert"

#: Preprocessing CBraMod was pretrained with (TUEG), as its authors report it.
CBRAMOD_PREPROCESSING = {"sfreq": 200.0, "patch_size": 200, "patch_seconds": 1.0, "l_freq": 0.3,
                         "h_freq": 75.0, "notch": 60.0, "scales": {"eeg": 1e4},  # 1.0 = 100 uV
                         "kinds": ["eeg"]}

CBRAMOD_CARD = {
    "intended_use": "Feature extraction, linear probing and fine-tuning on scalp EEG sampled at "
                 "200 Hz in 1-s patches (BCI, sleep, clinical event and abnormality detection).",
    "training_data": "Temple University Hospital EEG Corpus (TUEG), as released by the CBraMod "
                  "authors (Wang et al., ICLR 2025).",
    "objective": "Masked patch reconstruction (50 % of patches replaced by a zero patch, MSE on "
              "the masked patches).",
    "notes": "Imported from CBraMod's published weights with `neurofm convert cbramod`; outputs "
          "match braindecode's CBraMod to float32 precision. Its positional encoding (ACPE) "
          "convolves over channels in their given order: unlike neurofm's sensor-encoding "
          "models, channel order matters.",
    "tags": ("cbramod", "imported"),
}


def _infer_hyperparameters(state: dict) -> dict:
    """``create_model("cbramod_base", ...)`` overrides that fit the converted weights' shapes."""
    layers = {int(m.group(1)) for k in state if (m := re.match(r"trunk\.blocks\.(\d+)\.", k))}
    if not layers or "stem.patch_embed.mask_encoding" not in state:
        raise ValueError("The checkpoint has no CBraMod encoder layers or patch embedding; is it "
                         "a CBraMod checkpoint?")
    return {"depth": max(layers) + 1,
            "ffn_dim": int(state["trunk.blocks.0.ffn.linear1.weight"].shape[0]),
            "patch_size": int(state["stem.patch_embed.mask_encoding"].shape[0])}


def convert_cbramod(src, out_dir=None, *, n_heads: int = 8, inert_globals=(),
                    overwrite: bool = False, revision: str | None = None):
    """Build ``cbramod_base`` with CBraMod's published weights.

    Parameters
    ----------
    src : str or Path
        ``pretrained_weights.pth``, a braindecode ``model.safetensors``/``pytorch_model.bin``, a
        directory holding one, or a Hub repo id.
    out_dir : str, Path or None
        When given, write ``config.json`` + ``model.safetensors`` + ``README.md`` there.
    n_heads : int
        Attention heads (not recorded in the weights; CBraMod uses 8).
    inert_globals : iterable of str
        Globals a ``.pth`` may name besides tensors, read as inert stand-ins
        (:func:`neurofm.hub.checkpoints.read_state_dict`).
    overwrite : bool
        Write into ``out_dir`` although it holds files ``neurofm convert`` did not write.
    revision : str or None
        Branch, tag or commit when ``src`` is a Hub repo id (default main).

    Returns
    -------
    The model (a ``CrissCrossTransformer`` named ``cbramod_base``), in eval mode.
    """
    state, path = read_state_dict(src, inert=inert_globals, revision=revision)
    try:
        converted = convert_cbramod_state_dict(state)
    except KeyError as err:
        raise ValueError(f"{path} is not a CBraMod checkpoint: {err.args[0]}") from None
    model = create_model("cbramod_base", n_heads=n_heads, **_infer_hyperparameters(converted))
    try:
        model.load_state_dict(converted, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit cbramod_base: {err}") from None
    model.preprocessing = dict(CBRAMOD_PREPROCESSING)
    model.eval()
    if out_dir is not None:
        claim_output_folder(out_dir, CONVERT_COMMAND, {"model": "cbramod", "src": str(src)},
                            overwrite=overwrite)
        model.save_pretrained(out_dir, model_card_kwargs={"source": str(src), **CBRAMOD_CARD})
    return model
