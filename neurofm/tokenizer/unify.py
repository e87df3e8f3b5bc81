"""Channel unification: any montage <-> a fixed number of latent channels.

:class:`ChannelUnification` lets ``K`` learned queries attend, within each patch, over the ``C``
sensor tokens (which already carry the sensor encoding), so everything after it costs the same
for 19 EEG electrodes and 306 MEG sensors (LUNA / BrainOmni style). Attention over keys is
order-free, so the latents do not depend on channel order, and padding channels are masked out.

:class:`ChannelDecoder` goes back: each sensor's encoding is a query over the ``K`` latents of a
patch, giving one token per real sensor (BrainOmni's learned "forward solution").
"""

from __future__ import annotations

import torch
from torch import nn

from neurofm.nn import FeedForward, MaskedAttention


def _check_has_channels(chan_mask: torch.Tensor) -> None:
    empty = ~chan_mask.any(dim=1)
    if bool(empty.any()):
        items = empty.nonzero().flatten().tolist()
        raise ValueError(f"Batch items {items} have no real channel (chan_mask all False); "
                         "remove empty recordings before batching.")


class ChannelUnification(nn.Module):
    """Map sensor tokens ``[B, C, N, D]`` to latent-channel tokens ``[B, K, N, D]``.

    Parameters
    ----------
    dim : int
        Token width ``D``.
    n_latent : int
        Number of latent channels ``K``.
    n_heads : int
        Attention heads.
    ffn_ratio : float
        Hidden width of the feed-forward layer, as a multiple of ``D``.
    dropout : float
        Dropout in attention and feed-forward layers.
    """

    def __init__(self, dim: int, n_latent: int, n_heads: int, *, ffn_ratio: float = 2.0,
                 dropout: float = 0.0):
        super().__init__()
        self.n_latent = n_latent
        self.queries = nn.Parameter(torch.randn(n_latent, dim) * dim ** -0.5)
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attention = MaskedAttention(dim, n_heads, dropout)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, int(dim * ffn_ratio), dropout, output_dropout=dropout)

    def forward(self, tokens: torch.Tensor, chan_mask: torch.Tensor) -> torch.Tensor:
        """Unify channels patch by patch.

        Parameters
        ----------
        tokens : Tensor ``[B, C, N, D]``
            Sensor tokens (patch embedding + sensor encoding).
        chan_mask : bool Tensor ``[B, C]``
            True = real channel.

        Returns
        -------
        Tensor ``[B, K, N, D]``
        """
        _check_has_channels(chan_mask)
        b, c, n, d = tokens.shape
        kv = tokens.permute(0, 2, 1, 3).reshape(b * n, c, d)
        key_mask = chan_mask.unsqueeze(1).expand(b, n, c).reshape(b * n, c)
        q = self.queries.unsqueeze(0).expand(b * n, -1, -1)
        latents = q + self.attention(self.norm_q(q), self.norm_kv(kv), key_mask)
        latents = latents + self.ffn(self.norm_ffn(latents))
        return latents.reshape(b, n, self.n_latent, d).permute(0, 2, 1, 3)


class ChannelDecoder(nn.Module):
    """Map latent tokens ``[B, K, N, D]`` back to sensor tokens ``[B, C, N, D]``.

    Each sensor's query is its sensor encoding ``[B, C, D]`` (from
    :class:`~neurofm.tokenizer.SensorEncoding`), so any montage can be decoded.

    Parameters
    ----------
    dim : int
        Token width ``D``.
    n_heads : int
        Attention heads.
    ffn_ratio : float
        Hidden width of the feed-forward layer, as a multiple of ``D``.
    dropout : float
        Dropout in attention and feed-forward layers.
    """

    def __init__(self, dim: int, n_heads: int, *, ffn_ratio: float = 2.0, dropout: float = 0.0):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attention = MaskedAttention(dim, n_heads, dropout)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, int(dim * ffn_ratio), dropout, output_dropout=dropout)

    def forward(self, latents: torch.Tensor, sensor_embedding: torch.Tensor,
                chan_mask: torch.Tensor) -> torch.Tensor:
        """Decode to the sensors.

        Parameters
        ----------
        latents : Tensor ``[B, K, N, D]``
        sensor_embedding : Tensor ``[B, C, D]``
            Sensor encoding of the target sensors.
        chan_mask : bool Tensor ``[B, C]``
            True = real channel; padding channels come out as zeros.

        Returns
        -------
        Tensor ``[B, C, N, D]``
        """
        b, k, n, d = latents.shape
        c = sensor_embedding.shape[1]
        kv = latents.permute(0, 2, 1, 3).reshape(b * n, k, d)
        q = sensor_embedding.unsqueeze(1).expand(b, n, c, d).reshape(b * n, c, d)
        out = q + self.attention(self.norm_q(q), self.norm_kv(kv))
        out = out + self.ffn(self.norm_ffn(out))
        out = out.reshape(b, n, c, d).permute(0, 2, 1, 3)
        return out * chan_mask[:, :, None, None].to(out.dtype)
