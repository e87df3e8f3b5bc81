"""Sensor-aware tokenizer: patch embedding, sensor encoding, channel unification, VQ codes.

``x [B, C, N, P]`` + :class:`~neurofm.sensors.SensorBatch` ->
``PatchEmbedding(x) + SensorEncoding(sensors)[:, :, None]`` -> tokens ``[B, C, N, D]``
(optionally ``ChannelUnification`` -> ``[B, K, N, D]``); :class:`NeuralTokenizer` adds an
encoder, a :class:`VectorQuantizer` (codes ``[B, C, N, L]``) and a decoder that reconstructs each
patch's Fourier amplitude and phase. Training: :mod:`neurofm.tokenizer.train`; CLI jobs:
:mod:`neurofm.tokenizer.pipeline`. See ``docs/tokenizer.md``.
"""

from neurofm.tokenizer.attention import FeedForward, MaskedAttention
from neurofm.tokenizer.blocks import TokenMixingBlock
from neurofm.tokenizer.model import (
    TOKENIZER_CONFIGS,
    NeuralTokenizer,
    TokenizerConfig,
    TokenizerOutput,
    fourier_targets,
    tokenizer_config,
)
from neurofm.tokenizer.patch_embed import PatchEmbedding
from neurofm.tokenizer.quantize import Codebook, QuantizerOutput, VectorQuantizer, codebook_stats
from neurofm.tokenizer.sensor_encoding import SensorEncoding
from neurofm.tokenizer.unify import ChannelDecoder, ChannelUnification

__all__ = [
    "TOKENIZER_CONFIGS",
    "ChannelDecoder",
    "ChannelUnification",
    "Codebook",
    "FeedForward",
    "MaskedAttention",
    "NeuralTokenizer",
    "PatchEmbedding",
    "QuantizerOutput",
    "SensorEncoding",
    "TokenMixingBlock",
    "TokenizerConfig",
    "TokenizerOutput",
    "VectorQuantizer",
    "codebook_stats",
    "fourier_targets",
    "tokenizer_config",
]
