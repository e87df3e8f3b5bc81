"""Backbones behind one encoder API, built by name (DESIGN.md "Encoder API").

Every model is a :class:`BrainEncoder`: the sensor-aware stem
(:class:`neurofm.tokenizer.SensorTokenizer`) makes tokens, a backbone's trunk maps
``[B, C, N, D]`` (``[B, K, N, D]`` with channel unification) to features, ``embed`` pools them
and ``reconstruct`` predicts patches. ``create_model(name, **overrides)`` builds any
configuration in ``list_models()``: importing this package imports every model file, which
registers its configurations (``criss_cross_small``, ``criss_cross_base``, ``cbramod_base``,
``mamba_small``, ``mamba_base``, ``labram_base``). With ``patch_input="codes"`` a backbone reads a
frozen tokenizer's quantised codes instead of patches.
"""

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
from neurofm.models.pretrained import from_pretrained, save_pretrained
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
    "from_pretrained",
    "list_models",
    "masked_mean_pool",
    "model_spec",
    "register_model",
    "save_pretrained",
    "selective_scan",
]
