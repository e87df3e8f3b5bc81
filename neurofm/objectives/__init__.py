"""Pretraining objectives: what is hidden (masking) and what is predicted (patches or codes).

- :mod:`~neurofm.objectives.masking`: Bernoulli or block masks over ``(channel, patch)`` tokens,
  never on padding, seeded per window.
- :mod:`~neurofm.objectives.reconstruction`: MSE or smooth-L1 on masked patches.
- :mod:`~neurofm.objectives.code_prediction`: cross-entropy on a frozen tokenizer's codes.
- :mod:`~neurofm.objectives.pretraining`: backbone + active terms as one module.
"""

from neurofm.objectives.code_prediction import MaskedCodePrediction, code_histogram
from neurofm.objectives.masking import (
    MASK_MODES,
    batch_patch_mask,
    real_tokens,
    sample_window_mask,
    window_generator,
)
from neurofm.objectives.pretraining import ObjectiveOutput, PretrainingObjective, build_objective
from neurofm.objectives.reconstruction import MaskedReconstruction, TokenCounts, token_errors

__all__ = [
    "MASK_MODES",
    "MaskedCodePrediction",
    "MaskedReconstruction",
    "ObjectiveOutput",
    "PretrainingObjective",
    "TokenCounts",
    "batch_patch_mask",
    "build_objective",
    "code_histogram",
    "real_tokens",
    "sample_window_mask",
    "token_errors",
    "window_generator",
]
