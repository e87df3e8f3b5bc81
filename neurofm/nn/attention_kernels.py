"""Self-attention with dropout on CPU through the fused C kernels (``attention_kernels.c``).

One call per direction computes, for every sequence and head of a QKV projection's output,
``(softmax(q k^T / sqrt(e)) * M) v`` (``M``: the dropout mask, ``1 / (1 - p)`` or 0; invalid keys
get weight 0), reading q, k and v where the projection wrote them and writing the result where
the output projection reads it. The backward recomputes the weights and regenerates the mask:
no ``[L, L]`` tensor is stored, and neither the heads-first copies of q, k, v nor the float32
weights, their dropout and casts cost a pass over memory. Arithmetic in float32 (float64 for
float64 inputs), so bfloat16 inputs get float32 scores and softmax.

The mask is a function of the call's seed (one draw from torch's default generator, so
``torch.manual_seed`` applies) and the element's place; :func:`keep_mask` returns it for tests.
Used by :class:`neurofm.nn.attention.SelfAttention` wherever :func:`supports` says so; built and
loaded by :mod:`neurofm.nn.cpu_kernels`.
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from neurofm.nn.cpu_kernels import SUFFIX, library, threads, usable
from neurofm.nn.dropout_kernels import draw_seed, item_factors, threshold

#: The dtypes the kernels take: float32, bfloat16 (autocast) and float64 (gradient checks).
DTYPES = (torch.float32, torch.bfloat16, torch.float64)


def supports(qkv: torch.Tensor) -> bool:
    """Whether :func:`attention` runs ``qkv`` (a CPU float32, bfloat16 or float64 tensor)."""
    return usable(qkv, DTYPES)


def _geometry(seq: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """The kernels' ``geo``: sizes and element strides of ``seq [n1, n2, L, 3, H, e]`` and
    ``out [n1, n2, L, H * e]`` (last strides 1)."""
    n1, n2, length, _, heads, dim = seq.shape
    s = seq.stride()
    o = out.stride()
    return torch.tensor([n1, n2, length, heads, dim, s[0], s[1], s[2], s[4],
                         o[0], o[1], o[2], dim * o[3]], dtype=torch.int64)


def _sequences(t: torch.Tensor, axis: int) -> torch.Tensor:
    """``t [B, X, Y, ...]`` as ``[B, other, positions, ...]`` (a view)."""
    return t if axis == 2 else t.transpose(1, 2)


def _check(status: int) -> None:
    if status:
        raise MemoryError("neurofm's attention kernel could not allocate its work buffers")


class KernelAttention(torch.autograd.Function):
    """``qkv [B, X, Y, 3, H, e]`` -> ``[B, X, Y, H * e]``: attention along axis ``axis`` (1 or
    2) of the grid, keys masked by ``valid [B, L]`` (uint8) or None; ``factors [1]`` as
    :func:`~neurofm.nn.dropout_kernels.item_factors` gives them."""

    @staticmethod
    def forward(ctx, qkv, valid, axis, p, factors, seed):
        qkv = qkv.contiguous()
        b, x, y, _, heads, dim = qkv.shape
        out = torch.empty((b, x, y, heads * dim), dtype=qkv.dtype)
        seq, out_seq = _sequences(qkv, axis), _sequences(out, axis)
        geo = _geometry(seq, out_seq)
        q, k, v = (seq.select(3, i) for i in range(3))
        scale = 1.0 / math.sqrt(dim)
        _check(getattr(library(), f"attention_forward_{SUFFIX[qkv.dtype]}")(
            q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(),
            None if valid is None else valid.data_ptr(), geo.data_ptr(), scale,
            float(factors[0]), seed, threshold(p), threads()))
        ctx.save_for_backward(qkv, valid)
        ctx.axis, ctx.p, ctx.factor, ctx.seed, ctx.scale = axis, p, float(factors[0]), seed, scale
        return out

    @staticmethod
    @once_differentiable  # C kernels: no second derivative (an error, not a wrong value)
    def backward(ctx, grad):
        qkv, valid = ctx.saved_tensors
        grad = grad.contiguous().to(qkv.dtype)
        g_qkv = torch.empty_like(qkv)
        seq, g_seq = _sequences(qkv, ctx.axis), _sequences(g_qkv, ctx.axis)
        geo = _geometry(seq, _sequences(grad, ctx.axis))
        q, k, v = (seq.select(3, i) for i in range(3))
        gq, gk, gv = (g_seq.select(3, i) for i in range(3))
        _check(getattr(library(), f"attention_backward_{SUFFIX[qkv.dtype]}")(
            q.data_ptr(), k.data_ptr(), v.data_ptr(), grad.data_ptr(), gq.data_ptr(),
            gk.data_ptr(), gv.data_ptr(), None if valid is None else valid.data_ptr(),
            geo.data_ptr(), ctx.scale, ctx.factor, ctx.seed, threshold(ctx.p), threads()))
        return g_qkv, None, None, None, None, None


def attention(qkv: torch.Tensor, key_valid: torch.Tensor | None, p: float,
              axis: int) -> torch.Tensor:
    """Multi-head self-attention with dropout ``p`` on the weights, along one axis of a grid.

    Parameters
    ----------
    qkv : Tensor ``[B, X, Y, 3, H, e]``
        Queries, keys and values (a QKV projection's output, unflattened).
    key_valid : bool Tensor ``[B, L]`` or None
        True for keys that take part (``L`` = the size of ``axis``); None: all.
    p : float
        Dropout probability of the weights (0: none).
    axis : int
        1: sequences along X (one per item and Y position); 2: along Y.

    Returns
    -------
    Tensor ``[B, X, Y, H * e]`` in ``qkv``'s dtype (heads concatenated, as the output projection
    reads them).
    """
    if axis not in (1, 2):
        raise ValueError(f"attention runs along axis 1 or 2 of [B, X, Y, 3, H, e]; got {axis}")
    if qkv.dim() != 6 or qkv.shape[3] != 3:
        raise ValueError(f"attention takes qkv [B, X, Y, 3, H, e]; got {tuple(qkv.shape)}")
    valid = None
    if key_valid is not None:
        expected = (qkv.shape[0], qkv.shape[axis])
        if tuple(key_valid.shape) != expected:
            raise ValueError(f"key_valid must be [B, L] = {list(expected)} for qkv "
                             f"{tuple(qkv.shape)} along axis {axis}; got "
                             f"{list(key_valid.shape)}")
        valid = key_valid.to(torch.bool).contiguous().view(torch.uint8)
    seed = draw_seed()
    return KernelAttention.apply(qkv, valid, axis, p, _factors(p, qkv.dtype), seed)


def _factors(p: float, dtype: torch.dtype) -> torch.Tensor:
    """``1 / (1 - p)`` as the kernels multiply the weights: float32, or float64 for float64."""
    return item_factors(1, p, torch.promote_types(dtype, torch.float32))


def keep_mask(pairs: int, length: int, p: float, dtype: torch.dtype) -> torch.Tensor:
    """The mask the next :func:`attention` call applies (drawn with the same seed), as
    ``[pairs, L, L]``: pair ``n = ((b * other) + o) * H + h`` for item ``b``, position ``o``
    on the other axis and head ``h``; ``1 / (1 - p)`` kept, else 0."""
    seed = draw_seed()
    mask = torch.empty((pairs, length, length), dtype=dtype)
    getattr(library(), f"attention_keep_mask_{SUFFIX[dtype]}")(
        mask.data_ptr(), pairs, length, float(_factors(p, dtype)[0]), seed, threshold(p))
    return mask
