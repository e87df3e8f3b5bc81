"""Pretraining objectives: what is hidden (masking) and what is predicted (a list of loss terms).

- :mod:`~neurofm.objectives.masking`: Bernoulli or block masks over ``(channel, patch)`` tokens,
  never on padding, seeded per window.
- :mod:`~neurofm.objectives.terms`: what a loss term is (``term(model, batch) -> (loss, logs)``)
  and the registry of terms by name (:func:`register_term`).
- :mod:`~neurofm.objectives.reconstruction`: MSE, smooth-L1 or spectral error on masked patches
  (term ``reconstruction``).
- :mod:`~neurofm.objectives.code_prediction`: cross-entropy on a frozen tokenizer's codes (term
  ``code_prediction``).
- :mod:`~neurofm.objectives.config`: the ``objective`` config section.
- :mod:`~neurofm.objectives.pretraining`: backbone + masking + weighted terms as one module.

Importing this package registers every built-in term.
"""

from neurofm.objectives.code_prediction import (
    CodePredictionConfig,
    MaskedCodePrediction,
    code_histogram,
)
from neurofm.objectives.config import ObjectiveConfig
from neurofm.objectives.masking import (
    MASK_MODES,
    TokenMasking,
    batch_patch_mask,
    real_tokens,
    sample_window_mask,
    window_generator,
)
from neurofm.objectives.pretraining import ObjectiveOutput, PretrainingObjective, build_objective
from neurofm.objectives.reconstruction import (
    MaskedReconstruction,
    ReconstructionConfig,
    token_errors,
)
from neurofm.objectives.terms import (
    MaskedBatch,
    ObjectiveTerm,
    TermConfig,
    TokenCounts,
    list_terms,
    register_term,
    term_class,
)

__all__ = [
    "MASK_MODES",
    "CodePredictionConfig",
    "MaskedBatch",
    "MaskedCodePrediction",
    "MaskedReconstruction",
    "ObjectiveConfig",
    "ObjectiveOutput",
    "ObjectiveTerm",
    "PretrainingObjective",
    "ReconstructionConfig",
    "TermConfig",
    "TokenCounts",
    "TokenMasking",
    "batch_patch_mask",
    "build_objective",
    "code_histogram",
    "list_terms",
    "real_tokens",
    "register_term",
    "sample_window_mask",
    "term_class",
    "token_errors",
    "window_generator",
]
