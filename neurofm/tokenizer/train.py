"""Deprecated alias of :mod:`neurofm.train.tokenizer_loop` (removed in neurofm 0.3).

``TrainConfig`` is now ``neurofm.train.tokenizer_loop.TokenizerTrainConfig``.
"""

import warnings

from neurofm.train.tokenizer_loop import TokenizerTrainConfig as TrainConfig
from neurofm.train.tokenizer_loop import (
    evaluate_tokenizer,
    mean_amplitude_spectrum,
    train_tokenizer,
)

warnings.warn("neurofm.tokenizer.train moved to neurofm.train.tokenizer_loop (TrainConfig is now "
              "TokenizerTrainConfig); the old path will be removed in neurofm 0.3.",
              DeprecationWarning, stacklevel=2)

__all__ = ["TrainConfig", "evaluate_tokenizer", "mean_amplitude_spectrum", "train_tokenizer"]
