"""Multi-head attention with key-padding masks, through fused attention kernels.

Every attention in neurofm (backbones, tokenizer, heads) goes through :func:`attend`: PyTorch's
``F.scaled_dot_product_attention`` (fused flash / memory-efficient kernels on CPU and CUDA), or
xformers' ``memory_efficient_attention`` when xformers is importable and the tensors are on CUDA.
Masks are *key-validity* masks (True = a real key that may be attended to), the same convention as
``SensorBatch.chan_mask`` and ``patch_valid``, so padded channels or patches never influence real
ones.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from neurofm.nn import attention_kernels
from neurofm.nn.layers import dropout

try:  # xformers is an optional CUDA extra; its import fails on machines without its build.
    import xformers.ops as _xops
except Exception:  # noqa: BLE001 - any import-time failure means "not available"
    _xops = None


def xformers_available() -> bool:
    """Whether xformers' memory-efficient attention could be used (CUDA tensors only)."""
    return _xops is not None


def _xformers_attention(q, k, v, key_valid, dropout_p):
    """xformers path; ``q, k, v [S, H, L, E]`` -> ``[S, H, L, E]``."""
    bias = None
    if key_valid is not None:
        s, h, lq, _ = q.shape
        lk = k.shape[2]
        # xformers wants the bias's last dimension aligned to 8 elements: allocate padded, slice.
        bias = q.new_zeros(s, h, lq, lk + (-lk) % 8)[..., :lk]
        bias.masked_fill_(~key_valid[:, None, None, :], float("-inf"))
    out = _xops.memory_efficient_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=bias, p=dropout_p
    )
    return out.transpose(1, 2)


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_valid: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Scaled dot-product attention over sequences of keys with an optional key-padding mask.

    Parameters
    ----------
    q, k, v : Tensor ``[S, H, L, E]``
        Queries, keys, values for ``S`` independent sequences, ``H`` heads, length ``L``.
        Strided views are fine (the fused CPU kernels read strides).
    key_valid : Tensor ``[S, L]`` bool or None
        True where the key is real; None when every key is real (fastest path).
    dropout_p : float
        Dropout on the attention weights (pass 0 in eval mode).

    Notes
    -----
    On CPU, attention with dropout, or in bf16 with gradients, is computed explicitly
    (``softmax(q k^T / sqrt(E))`` in float32, then ``@ v``): the fused kernels have no dropout,
    and their bf16 backward costs several times the fp32 one.

    Returns
    -------
    Tensor ``[S, H, L, E]``
    """
    if q.is_cuda and _xops is not None:
        return _xformers_attention(q, k, v, key_valid, dropout_p)
    if q.device.type == "cpu" and (dropout_p > 0.0 or _bf16_training(q, k, v)):
        # The fused CPU kernels have no dropout (SDPA would fall back to its math path, which
        # draws a Bernoulli sample per weight), and their bf16 backward is several times slower
        # than the fp32 one. Same math, with the cheap CPU dropout and a float32 softmax.
        weights = _attention_weights(q, k, key_valid)
        return dropout(weights, dropout_p, out_dtype=v.dtype) @ v
    mask = None if key_valid is None else key_valid[:, None, None, :]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


def _bf16_training(*tensors: torch.Tensor) -> bool:
    """bf16 attention whose backward will run (autograd on, some input requires grad)."""
    return (tensors[0].dtype == torch.bfloat16 and torch.is_grad_enabled()
            and any(t.requires_grad for t in tensors))


def _attention_weights(q, k, key_valid):
    """Softmax attention weights ``[S, H, L, L]`` (padded keys get weight 0).

    The softmax runs in at least float32: more accurate under bf16 autocast, and on CPU several
    times faster than PyTorch's bf16 softmax (forward and backward).
    """
    scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
    if key_valid is not None:
        scores = scores.masked_fill(~key_valid[:, None, None, :], float("-inf"))
    return torch.softmax(scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32))


def reference_attention(q, k, v, key_valid=None):
    """Plain softmax attention, written out step by step (the definition SDPA must match).

    Shapes as in :func:`attend`; no dropout.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if key_valid is not None:
        scores = scores.masked_fill(~key_valid[:, None, None, :], float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


class SelfAttention(nn.Module):
    """Multi-head self-attention over the second-to-last axis of a token grid.

    The parameters are named like ``torch.nn.MultiheadAttention``'s (``in_proj_weight
    [3E, E]``, ``in_proj_bias [3E]``, ``out_proj``) so that published weights map one to one.

    Parameters
    ----------
    dim : int
        Width ``E`` of the tokens this attention reads and writes.
    n_heads : int
        Number of heads; must divide ``dim``.
    dropout : float
        Dropout on the attention weights (training only).
    """

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % n_heads:
            raise ValueError(
                f"Attention width {dim} is not divisible by {n_heads} heads; "
                "choose dim and n_heads so that dim % n_heads == 0."
            )
        self.dim = dim
        self.n_heads = n_heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def project_qkv(self, x: torch.Tensor) -> torch.Tensor:
        """``x [..., E] -> [..., 3, H, E/H]`` (queries, keys, values; a view of one GEMM)."""
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        return qkv.unflatten(-1, (3, self.n_heads, self.dim // self.n_heads))

    def attend_sequences(self, qkv: torch.Tensor, key_valid: torch.Tensor | None) -> torch.Tensor:
        """Attention within sequences: ``qkv [S, L, 3, H, e]`` -> ``[S, L, E]`` (before out_proj).

        ``key_valid [S, L]`` (True = real key) or None.
        """
        return self.attend_grid(qkv[:, None], key_valid, axis=2)[:, 0]

    def attend_grid(self, qkv: torch.Tensor, key_valid: torch.Tensor | None,
                    axis: int) -> torch.Tensor:
        """Attention along one axis of a grid: ``qkv [B, X, Y, 3, H, e]`` -> ``[B, X, Y, E]``
        (before out_proj; ``qkv`` as :meth:`project_qkv` returns it for ``[B, X, Y, E]``).

        ``axis`` 1: one sequence over X per item and Y position (``key_valid [B, X]``); 2: over
        Y (``key_valid [B, Y]``). True = real key; None = all real.

        In training on CPU with dropout, or in bf16 with gradients, the fused kernel
        (:mod:`neurofm.nn.attention_kernels`) reads q, k, v where the projection wrote them and
        writes the result in place; elsewhere :func:`attend` runs on a heads-first copy.
        """
        if axis not in (1, 2):
            raise ValueError(f"attend_grid runs along axis 1 or 2 of [B, X, Y, 3, H, e]; "
                             f"got axis={axis}")
        p = self.dropout if self.training else 0.0
        if (p > 0.0 or _bf16_training(qkv)) and attention_kernels.supports(qkv):
            return attention_kernels.attention(qkv, key_valid, p, axis)
        heads_first = qkv.permute(3, 0, 2, 4, 1, 5) if axis == 1 else qkv.permute(3, 0, 1, 4, 2, 5)
        b, other, _, length = heads_first.shape[1:5]  # [3, B, other, H, L, e]
        keys = None
        if key_valid is not None:
            keys = key_valid[:, None, :].expand(b, other, length).reshape(b * other, length)
        out = self.attend_heads(heads_first.flatten(1, 2), keys).view(b, other, length, -1)
        return out.transpose(1, 2) if axis == 1 else out

    def attend_heads(self, qkv: torch.Tensor, key_valid: torch.Tensor | None) -> torch.Tensor:
        """Attention with heads first: ``qkv [3, S, H, L, e]`` -> ``[S, L, E]`` (before out_proj).

        Strided views are fine; with dropout on CPU (explicit attention, see :func:`attend`) they
        are made contiguous in one copy, so that the per-head matrix products read them in place.
        ``key_valid [S, L]`` (True = real key) or None.
        """
        p = self.dropout if self.training else 0.0
        if p > 0.0 and qkv.device.type == "cpu":
            qkv = qkv.contiguous()
        q, k, v = qkv.unbind(0)  # each [S, H, L, e]
        out = attend(q, k, v, key_valid, p)  # [S, H, L, e]
        return out.transpose(1, 2).flatten(2)

    def forward(self, x: torch.Tensor, key_valid: torch.Tensor | None = None) -> torch.Tensor:
        """Self-attention within each sequence.

        Parameters
        ----------
        x : Tensor ``[S, L, E]``
            ``S`` independent sequences of length ``L``.
        key_valid : Tensor ``[S, L]`` bool or None
            True for real tokens; padded tokens are never attended to.

        Returns
        -------
        Tensor ``[S, L, E]``
        """
        return self.out_proj(self.attend_sequences(self.project_qkv(x), key_valid))


class MaskedAttention(nn.Module):
    """Cross-attention ``query [M, Q, D]`` over ``key_value [M, S, D]`` with ``key_mask [M, S]``.

    Used by the channel unification (learned queries over sensors), the channel decoder (sensor
    queries over latents) and the tokenizer's token-mixing blocks. Masked keys get exactly zero
    weight, so padding channels never change a real token.

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
        out = attend(q, k, v, key_mask, self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(m, q_len, d))
