"""Backbones behind one encoder API, built by name (DESIGN.md "Encoder API").

``create_model(name, **overrides)`` builds ``criss_cross_small``, ``criss_cross_base``,
``cbramod_base``, ``mamba_small`` or ``mamba_base``; every model maps
``x [B, C, N, P]`` + ``SensorBatch`` to features ``[B, C, N, D]`` (``[B, K, N, D]`` with channel
unification), pools them with ``embed`` and predicts patches with ``reconstruct``. With
``patch_input="codes"`` a backbone reads a frozen tokenizer's quantised codes instead of patches.
Every model saves and loads with ``model.save_pretrained(dir)`` / ``Class.from_pretrained(dir)``
(:mod:`neurofm.model_folder`); ``neurofm.from_pretrained`` loads any of them.
"""

import warnings

from neurofm import model_folder
from neurofm.models import registry
from neurofm.models.base import BrainEncoder
from neurofm.models.cbramod import convert_cbramod_state_dict
from neurofm.models.code_input import CodeEmbedding
from neurofm.models.criss_cross import CrissCrossLayer, CrissCrossTransformer
from neurofm.models.heads import (
    AttentionPool,
    ClassificationHead,
    ReconstructionHead,
    masked_mean_pool,
)
from neurofm.models.mamba import BidirectionalMamba, selective_scan
from neurofm.models.registry import create_model, list_models, register_model

# Model folders are read below this package; they build registered models through its registry.
model_folder.use_model_registry(registry)

__all__ = [
    "AttentionPool",
    "BidirectionalMamba",
    "BrainEncoder",
    "ClassificationHead",
    "CodeEmbedding",
    "CrissCrossLayer",
    "CrissCrossTransformer",
    "ReconstructionHead",
    "convert_cbramod_state_dict",
    "create_model",
    "list_models",
    "masked_mean_pool",
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
