"""Backbones behind one encoder API, built by name (DESIGN.md "Encoder API").

Every model is a :class:`BrainEncoder`: the sensor-aware stem
(:class:`neurofm.tokenizer.SensorTokenizer`) makes tokens, a backbone's trunk maps
``[B, C, N, D]`` (``[B, K, N, D]`` with channel unification) to features, ``embed`` pools them
and ``reconstruct`` predicts patches. ``create_model(name, **overrides)`` builds any
configuration in ``list_models()``: importing this package imports every model file, which
registers its configurations (``criss_cross_small``, ``criss_cross_base``, ``cbramod_base``,
``mamba_small``, ``mamba2_small``, ``mamba_base``, ``labram_base``). With
``patch_input="codes"`` a backbone reads a frozen tokenizer's quantised codes instead of patches. Every model saves and loads with
``model.save_pretrained(dir)`` / ``Class.from_pretrained(dir)`` (:mod:`neurofm.model_folder`);
``neurofm.from_pretrained`` loads any of them.
"""

import warnings

from neurofm.models import criss_cross, labram, mamba  # noqa: F401 -- register their models
from neurofm.models.base import BrainEncoder, Trunk
from neurofm.models.cbramod import convert_cbramod_state_dict
from neurofm.models.criss_cross import CrissCrossLayer, CrissCrossTransformer
from neurofm.models.heads import (
    AttentionPool,
    ClassificationHead,
    ReconstructionHead,
    masked_mean_pool,
)
from neurofm.models.labram import LabramEncoder
from neurofm.models.mamba import BidirectionalMamba, selective_scan
from neurofm.models.registry import create_model, list_models, model_spec, register_model
from neurofm.tokenizer.code_embed import CodeEmbedding

__all__ = [
    "AttentionPool",
    "BidirectionalMamba",
    "BrainEncoder",
    "ClassificationHead",
    "CodeEmbedding",
    "CrissCrossLayer",
    "CrissCrossTransformer",
    "LabramEncoder",
    "ReconstructionHead",
    "Trunk",
    "convert_cbramod_state_dict",
    "create_model",
    "list_models",
    "masked_mean_pool",
    "model_spec",
    "register_model",
    "selective_scan",
]


#: Names that moved, kept for one release: old name -> what to use instead.
_DEPRECATED = {"from_pretrained": "neurofm.from_pretrained(id_or_dir)",
               "save_pretrained": "model.save_pretrained(directory)"}


def __getattr__(name):
    """``neurofm.models.from_pretrained`` / ``save_pretrained``: deprecated (PEP 562)."""
    if name not in _DEPRECATED:
        raise AttributeError(f"module 'neurofm.models' has no attribute {name!r}")
    warnings.warn(f"neurofm.models.{name} is deprecated and will be removed in the next release; "
                  f"use {_DEPRECATED[name]}.", DeprecationWarning, stacklevel=2)
    from neurofm.models import pretrained

    return getattr(pretrained, name)
