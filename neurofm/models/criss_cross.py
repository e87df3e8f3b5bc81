"""Criss-cross transformer: spatial and temporal attention side by side in every layer.

Each layer splits the token width and the heads in two halves: the first half attends across
channels within each patch (spatial), the second across patches within each channel (temporal);
the two run in parallel and are concatenated (CBraMod's criss-cross attention). Pre-norm, FFN,
dropout and drop-path complete the layer. Padded channels and patches are excluded as keys, so
they never change real tokens. The stem (:class:`~neurofm.tokenizer.SensorTokenizer`) adds the
sensor encoding and a temporal position convolution (or CBraMod's ACPE) before the layers.
"""

from __future__ import annotations

import torch
from torch import nn

from neurofm.models.base import BrainEncoder, Trunk, stem_patch_embedding
from neurofm.models.registry import register_model
from neurofm.nn import Dropout, DropPath, FeedForward, SelfAttention, add_residual, drop_path_rates
from neurofm.tokenizer.stem import SensorTokenizer

PATCH_EMBEDDINGS = ("neurofm", "cbramod")
POSITION_ENCODINGS = ("sensor", "acpe")


class CrissCrossLayer(nn.Module):
    """One criss-cross transformer layer ``[B, C, N, D] -> [B, C, N, D]``.

    Parameters
    ----------
    dim : int
        Token width ``D`` (even; ``D / 2`` features per attention).
    n_heads : int
        Total heads (even; half spatial, half temporal).
    ffn_dim : int
        Hidden width of the feed-forward network.
    dropout : float
        Dropout on attention weights, attention output and in/after the FFN.
    drop_path : float
        Stochastic-depth probability of both residual branches.
    """

    def __init__(
        self, dim: int, n_heads: int, ffn_dim: int, dropout: float = 0.1, drop_path: float = 0.0
    ):
        super().__init__()
        if dim % 2 or n_heads % 2:
            raise ValueError(
                f"Criss-cross attention splits width and heads in two: dim ({dim}) "
                f"and n_heads ({n_heads}) must both be even."
            )
        half = dim // 2
        self.norm1 = nn.LayerNorm(dim)
        self.spatial_attn = SelfAttention(half, n_heads // 2, dropout)
        self.temporal_attn = SelfAttention(half, n_heads // 2, dropout)
        self.attn_dropout = Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, ffn_dim, dropout)
        self.ffn_dropout = Dropout(dropout)
        self.drop_path = DropPath(drop_path)

    def criss_cross_attention(
        self, h: torch.Tensor, chan_valid: torch.Tensor | None, patch_valid: torch.Tensor | None
    ) -> torch.Tensor:
        """Spatial attention on ``h[..., :D/2]``, temporal on ``h[..., D/2:]``, concatenated."""
        half = h.shape[-1] // 2
        # Spatial: sequences over channels (axis 1), one per (item, patch).
        spatial = self.spatial_attn.attend_grid(
            self.spatial_attn.project_qkv(h[..., :half]), chan_valid, axis=1)  # [B, C, N, D/2]
        # Temporal: sequences over patches (axis 2), one per (item, channel).
        temporal = self.temporal_attn.attend_grid(
            self.temporal_attn.project_qkv(h[..., half:]), patch_valid, axis=2)
        spatial = self.spatial_attn.out_proj(spatial)
        temporal = self.temporal_attn.out_proj(temporal)
        return torch.cat([spatial, temporal], dim=-1)

    def forward(
        self,
        x: torch.Tensor,
        chan_valid: torch.Tensor | None = None,
        patch_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Apply the layer.

        Parameters
        ----------
        x : Tensor ``[B, C, N, D]``
        chan_valid : Tensor ``[B, C]`` bool or None
            Real channels (keys of the spatial attention); None = all real.
        patch_valid : Tensor ``[B, N]`` bool or None
            Valid patches (keys of the temporal attention); None = all valid.
        """
        attn = self.criss_cross_attention(self.norm1(x), chan_valid, patch_valid)
        x = add_residual(x, attn, self.attn_dropout.p, self.drop_path.p, self.training)
        ffn = self.ffn(self.norm2(x))
        return add_residual(x, ffn, self.ffn_dropout.p, self.drop_path.p, self.training)


class CrissCrossTrunk(Trunk):
    """A stack of :class:`CrissCrossLayer` ``[B, C, N, D] -> [B, C, N, D]``.

    Parameters
    ----------
    dim, n_heads, ffn_dim, dropout : as in :class:`CrissCrossLayer`
    depth : int
        Number of layers.
    drop_path : float
        Largest stochastic-depth rate (linearly increasing over layers).
    """

    def __init__(self, dim: int, depth: int, n_heads: int, ffn_dim: int, dropout: float = 0.1,
                 drop_path: float = 0.0):
        super().__init__()
        self.blocks = nn.ModuleList(
            CrissCrossLayer(dim, n_heads, ffn_dim, dropout, rate)
            for rate in drop_path_rates(drop_path, depth)
        )

    def forward(self, tokens: torch.Tensor, chan_valid: torch.Tensor | None,
                patch_valid: torch.Tensor | None) -> torch.Tensor:
        for layer in self.blocks:
            tokens = layer(tokens, chan_valid, patch_valid)
        return tokens


class CrissCrossTransformer(BrainEncoder):
    """Criss-cross transformer encoder ``x [B, C, N, P] -> [B, C, N, D]`` (or ``[B, K, N, D]``).

    Parameters
    ----------
    patch_size : int
        Samples per patch ``P`` (200 = 1 s at 200 Hz).
    dim : int
        Token width ``D``.
    depth : int
        Number of criss-cross layers.
    n_heads : int
        Heads per layer (half spatial, half temporal).
    ffn_dim : int
        FFN hidden width.
    dropout : float
        Dropout in the layers.
    drop_path : float
        Largest stochastic-depth rate (linearly increasing over layers).
    patch_embedding : {"neurofm", "cbramod"}
        ``neurofm.tokenizer.PatchEmbedding`` (learned mask token in token space) or CBraMod's
        (frozen zero mask patch; ``dim`` must equal its width, 200 for P = 200).
    position : {"sensor", "acpe"}
        ``"sensor"``: sensor encoding (position, orientation, kind) per channel plus a temporal
        convolutional position encoding -- channel order carries no meaning. ``"acpe"``: CBraMod's
        (19, 7) convolution over channels x patches; ``sensors`` may be None.
    n_latent : int or None
        With ``position="sensor"``: unify the C sensors into ``n_latent`` latent channels first
        (``neurofm.tokenizer.ChannelUnification``); the output is then ``[B, K, N, D]``.
    time_kernel : int
        Patches covered by the temporal position convolution (``position="sensor"``).
    patch_input : {"patches", "codes"}
        ``"patches"``: continuous patch embedding (``patch_embedding``). ``"codes"``: the frozen
        ``tokenizer``'s quantised code vectors, projected to ``dim``
        (:class:`~neurofm.tokenizer.CodeEmbedding`); needs sensors.
    tokenizer : NeuralTokenizer, str, TokenizerConfig, dict or None
        With ``patch_input="codes"``: the tokenizer or its directory (see
        :func:`~neurofm.tokenizer.load_tokenizer`); stored in ``config`` as its dict.
    """

    trunk_renames = ((r"^layers\.", "trunk.blocks."),)

    def __init__(
        self,
        patch_size: int = 200,
        dim: int = 200,
        depth: int = 12,
        n_heads: int = 8,
        ffn_dim: int = 800,
        dropout: float = 0.1,
        drop_path: float = 0.0,
        patch_embedding: str = "neurofm",
        position: str = "sensor",
        n_latent: int | None = None,
        time_kernel: int = 7,
        patch_input: str = "patches",
        tokenizer=None,
    ):
        embedding = stem_patch_embedding(patch_input, patch_embedding)
        if patch_embedding not in PATCH_EMBEDDINGS:
            raise ValueError(
                f"patch_embedding must be one of {PATCH_EMBEDDINGS}; got {patch_embedding!r}."
            )
        if position not in POSITION_ENCODINGS:
            raise ValueError(f"position must be one of {POSITION_ENCODINGS}; got {position!r}.")
        if n_latent is not None and position != "sensor":
            raise ValueError(
                "Channel unification (n_latent) needs position='sensor': latent "
                "channels are formed from sensor-encoded tokens."
            )
        stem = SensorTokenizer(
            patch_size, dim, patch_embedding=embedding, tokenizer=tokenizer,
            sensor_encoding=position == "sensor",
            position_kernel=(1, time_kernel) if position == "sensor" else (19, 7),
            n_latent=n_latent, n_heads=n_heads, dropout=dropout,
        )
        super().__init__(stem, CrissCrossTrunk(dim, depth, n_heads, ffn_dim, dropout, drop_path))


@register_model(CrissCrossTransformer)
def criss_cross_small():
    """Criss-cross transformer, sensor encoding, D=128, 6 layers, 8 heads."""
    return {"dim": 128, "depth": 6, "n_heads": 8, "ffn_dim": 512, "dropout": 0.1, "drop_path": 0.05}


@register_model(CrissCrossTransformer)
def criss_cross_base():
    """Criss-cross transformer, sensor encoding, CBraMod's size: D=200, 12 layers, 8 heads."""
    return {"dim": 200, "depth": 12, "n_heads": 8, "ffn_dim": 800, "dropout": 0.1, "drop_path": 0.1}


@register_model(CrissCrossTransformer)
def cbramod_base():
    """CBraMod's exact architecture (ACPE, spectral patch embedding); loads CBraMod weights."""
    return {"dim": 200, "depth": 12, "n_heads": 8, "ffn_dim": 800, "dropout": 0.1,
            "drop_path": 0.0, "patch_embedding": "cbramod", "position": "acpe"}
