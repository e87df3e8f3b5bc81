"""Multi-head attention with a key-padding mask, through ``F.scaled_dot_product_attention``.

Shared by the channel unification (learned queries over sensors), the channel decoder (sensor
queries over latents) and the tokenizer's channel-mixing blocks. Masked keys get exactly zero
weight, so padding channels never change a real token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskedAttention(nn.Module):
    """Attention ``query [M, Q, D]`` over ``key_value [M, S, D]`` with ``key_mask [M, S]``.

    Parameters
    ----------
    dim : int
        Width ``D``; must be divisible by ``n_heads``.
    n_heads : int
        Number of heads.
    dropout : float
        Attention dropout (training only).
    """

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"Attention width {dim} is not divisible by n_heads={n_heads}.")
        self.n_heads = n_heads
        self.q_proj = nn.Linear(dim, dim)
        self.kv_proj = nn.Linear(dim, 2 * dim)
        self.out_proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, query: torch.Tensor, key_value: torch.Tensor,
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attend.

        Parameters
        ----------
        query : Tensor ``[M, Q, D]``
        key_value : Tensor ``[M, S, D]``
        key_mask : bool Tensor ``[M, S]`` or None
            True = the key takes part. Every row must have at least one True.

        Returns
        -------
        Tensor ``[M, Q, D]``
        """
        m, q_len, d = query.shape
        s_len = key_value.shape[1]
        h = self.n_heads
        q = self.q_proj(query).reshape(m, q_len, h, d // h).transpose(1, 2)
        k, v = self.kv_proj(key_value).reshape(m, s_len, 2, h, d // h).permute(2, 0, 3, 1, 4)
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(m, q_len, d))


class FeedForward(nn.Sequential):
    """Position-wise MLP ``[..., D] -> [..., D]`` with a GELU hidden layer of ``ratio * D``."""

    def __init__(self, dim: int, ratio: float = 4.0, dropout: float = 0.0):
        hidden = int(dim * ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, dim), nn.Dropout(dropout))
