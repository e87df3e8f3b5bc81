"""Sensor-aware tokenizer: the network parts that turn patches and sensors into tokens and codes.

``x [B, C, N, P]`` + :class:`~neurofm.sensors.SensorBatch` ->
``PatchEmbedding(x) + SensorEncoding(sensors)[:, :, None]`` -> tokens ``[B, C, N, D]``
(optionally ``ChannelUnification`` -> ``[B, K, N, D]``). :class:`SensorTokenizer` is that stem as
every backbone uses it (also with CBraMod's or LaBraM's patch embedding, or a frozen tokenizer's
codes); :class:`NeuralTokenizer` adds an encoder, a :class:`VectorQuantizer` (codes
``[B, C, N, L]``) and a decoder that reconstructs each patch's Fourier amplitude and phase.
The network parts import nothing from ``neurofm.models`` (the backbones build on them); shared
attention and feed-forward layers come from :mod:`neurofm.nn`. Training and CLI jobs:
:mod:`neurofm.tokenizer.train`, :mod:`neurofm.tokenizer.pipeline`. See ``docs/tokenizer.md``.
"""

import warnings

from neurofm.tokenizer.blocks import TokenMixingBlock
from neurofm.tokenizer.cbramod_embed import CBraModPatchEmbedding
from neurofm.tokenizer.code_embed import CodeEmbedding, load_tokenizer
from neurofm.tokenizer.labram_embed import ChannelNameEmbedding, LabramPatchEmbedding
from neurofm.tokenizer.model import (
    TOKENIZER_CONFIGS,
    NeuralTokenizer,
    TokenizerConfig,
    TokenizerOutput,
    fourier_targets,
    tokenizer_config,
)
from neurofm.tokenizer.patch_embed import PatchEmbedding
from neurofm.tokenizer.position import ConvPositionEncoding
from neurofm.tokenizer.quantize import Codebook, QuantizerOutput, VectorQuantizer, codebook_stats
from neurofm.tokenizer.sensor_encoding import SensorEncoding
from neurofm.tokenizer.stem import SensorTokenizer
from neurofm.tokenizer.unify import ChannelDecoder, ChannelUnification

__all__ = [
    "TOKENIZER_CONFIGS",
    "CBraModPatchEmbedding",
    "ChannelDecoder",
    "ChannelNameEmbedding",
    "ChannelUnification",
    "CodeEmbedding",
    "Codebook",
    "ConvPositionEncoding",
    "LabramPatchEmbedding",
    "NeuralTokenizer",
    "PatchEmbedding",
    "QuantizerOutput",
    "SensorEncoding",
    "SensorTokenizer",
    "TokenMixingBlock",
    "TokenizerConfig",
    "TokenizerOutput",
    "VectorQuantizer",
    "codebook_stats",
    "fourier_targets",
    "load_tokenizer",
    "tokenizer_config",
]

_MOVED_TO_NN = ("FeedForward", "MaskedAttention")


def __getattr__(name: str):
    """``neurofm.tokenizer.FeedForward`` / ``MaskedAttention`` moved to :mod:`neurofm.nn`."""
    if name in _MOVED_TO_NN:
        import neurofm.nn

        warnings.warn(f"neurofm.tokenizer.{name} moved to neurofm.nn.{name}; the old name will "
                      "be removed in the next release.", DeprecationWarning, stacklevel=2)
        return getattr(neurofm.nn, name)
    raise AttributeError(f"module 'neurofm.tokenizer' has no attribute {name!r}")
