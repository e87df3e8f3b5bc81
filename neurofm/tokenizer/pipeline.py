"""Deprecated alias of :mod:`neurofm.train.tokenizer_jobs` (removed in neurofm 0.3)."""

import warnings

from neurofm.train.tokenizer_jobs import (
    TokenizerRun,
    encode_recording,
    open_tokenizer_data,
    run_tokenizer_training,
)

warnings.warn("neurofm.tokenizer.pipeline moved to neurofm.train.tokenizer_jobs; the old path "
              "will be removed in neurofm 0.3.", DeprecationWarning, stacklevel=2)

__all__ = ["TokenizerRun", "encode_recording", "open_tokenizer_data", "run_tokenizer_training"]
