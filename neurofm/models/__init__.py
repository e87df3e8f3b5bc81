"""Backbones behind one encoder API, built by name (DESIGN.md "Encoder API").

``create_model(name, **overrides)`` builds ``criss_cross_small``, ``criss_cross_base``,
``cbramod_base``, ``mamba_small`` or ``mamba_base``; every model maps
``x [B, C, N, P]`` + ``SensorBatch`` to features ``[B, C, N, D]`` (``[B, K, N, D]`` with channel
unification), pools them with ``embed`` and predicts patches with ``reconstruct``. With
``patch_input="codes"`` a backbone reads a frozen tokenizer's quantised codes instead of patches.
"""

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
from neurofm.models.pretrained import from_pretrained, save_pretrained
from neurofm.models.registry import create_model, list_models, register_model

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
    "from_pretrained",
    "list_models",
    "masked_mean_pool",
    "register_model",
    "save_pretrained",
    "selective_scan",
]
