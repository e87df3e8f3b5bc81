"""Token-mixing transformer block of the tokenizer: across channels, then across patches.

Within each patch, tokens of all channels attend to each other (padding channels are masked out
as keys); within each channel, tokens of all patches attend to each other. Neither step uses the
channel index, so the block is equivariant to channel order.
"""

from __future__ import annotations

import torch
from torch import nn

from neurofm.nn import FeedForward, MaskedAttention


class TokenMixingBlock(nn.Module):
    """Pre-norm block ``[B, C, N, D] -> [B, C, N, D]``: channel attention, patch attention, MLP.

    Parameters
    ----------
    dim : int
        Token width ``D``.
    n_heads : int
        Attention heads.
    ffn_ratio : float
        MLP hidden width as a multiple of ``D``.
    dropout : float
        Dropout in attention and MLP.
    """

    def __init__(self, dim: int, n_heads: int, ffn_ratio: float = 2.0, dropout: float = 0.0):
        super().__init__()
        self.norm_channels = nn.LayerNorm(dim)
        self.channel_attention = MaskedAttention(dim, n_heads, dropout)
        self.norm_patches = nn.LayerNorm(dim)
        self.patch_attention = MaskedAttention(dim, n_heads, dropout)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, int(dim * ffn_ratio), dropout, output_dropout=dropout)

    def forward(self, x: torch.Tensor, chan_mask: torch.Tensor) -> torch.Tensor:
        """Mix tokens ``x [B, C, N, D]``; ``chan_mask [B, C]`` (True = real). Padding -> zeros."""
        b, c, n, d = x.shape
        across = x.permute(0, 2, 1, 3).reshape(b * n, c, d)
        key_mask = chan_mask.unsqueeze(1).expand(b, n, c).reshape(b * n, c)
        h = self.norm_channels(across)
        across = across + self.channel_attention(h, h, key_mask)
        x = across.reshape(b, n, c, d).permute(0, 2, 1, 3)
        along = x.reshape(b * c, n, d)
        h = self.norm_patches(along)
        along = along + self.patch_attention(h, h)
        x = along.reshape(b, c, n, d)
        x = x + self.ffn(self.norm_ffn(x))
        return x * chan_mask[:, :, None, None].to(x.dtype)
