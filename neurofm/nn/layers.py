"""Layers shared by the backbones and the tokenizer: dropout, feed-forward network, stochastic depth."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurofm.nn import dropout_kernels


def dropout(x: torch.Tensor, p: float, training: bool = True,
            out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by 1/(1-p).

    On CPU, ``torch.nn.functional.dropout`` draws one Bernoulli sample per element and costs far
    more than the GEMM it follows. Here the fused kernel (:mod:`neurofm.nn.dropout_kernels`)
    applies a mask it never stores, or, without the kernels, ``x * keep_mask(...)``; either way
    ``torch.manual_seed`` applies. Other devices use ``F.dropout``.

    ``out_dtype``: the result's dtype (default ``x``'s), the cast fused into the kernel, e.g.
    float32 attention weights that a bfloat16 product reads next.
    """
    cast = x.dtype if out_dtype is None else out_dtype
    if not training or p == 0.0:
        return x.to(cast)
    if x.device.type != "cpu":
        return F.dropout(x, p, True).to(cast)
    if dropout_kernels.supports(x, cast):
        return dropout_kernels.dropout(x, p, cast)
    return (x * keep_mask(x.shape, p, x.dtype)).to(cast)


def keep_mask(shape: torch.Size, p: float, dtype: torch.dtype) -> torch.Tensor:
    """CPU dropout mask of ``shape``: ``1 / (1 - p)`` with probability ``1 - p``, else 0.

    The mask that :func:`dropout` applies after the same seed: both start with one draw from
    torch's default CPU generator, so masks follow ``torch.manual_seed`` like any torch random
    op. With the fused kernels it is theirs (:func:`neurofm.nn.dropout_kernels.keep_mask`: a
    hash of the seed and the index, ``p`` realised to within ``2**-32``). Without them each
    element compares one uniform int16 with a threshold (keep probability
    ``1 - round(p * 65536) / 65536``); the 16-bit numbers are quarters of 64-bit words from
    numpy's SFC64 generator, about a third of what ``Tensor.random_`` (a Mersenne twister,
    about 10 ns per word here) takes for the same bits.
    """
    probe = torch.empty((), dtype=dtype)
    if dropout_kernels.supports(probe):
        return dropout_kernels.keep_mask(shape, p, dtype)
    n = math.prod(shape)
    seed = int(torch.empty((), dtype=torch.int64).random_(0, None))
    words = np.random.SFC64(seed).random_raw((n + 3) // 4)  # uint64 [ceil(n / 4)]
    uniform16 = torch.from_numpy(words.view(np.int16)[:n]).view(shape)
    mask = torch.empty(shape, dtype=dtype)
    torch.ge(uniform16, round(p * 65536) - 32768, out=mask)  # 1.0 = keep, written as `dtype`
    return mask.mul_(1.0 / (1.0 - p))


class Dropout(nn.Module):
    """Module form of :func:`dropout` (a drop-in for ``nn.Dropout``)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1); got {p}.")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


class FeedForward(nn.Module):
    """Position-wise MLP ``[..., D] -> [..., D]``: ``dropout2(linear2(dropout(GELU(linear1(x)))))``.

    The one feed-forward network of neurofm: the criss-cross layers (CBraMod's ``linear1/2``),
    the tokenizer's blocks and channel (un)mixing, and LaBraM's MLP (``fc1/fc2``).

    Parameters
    ----------
    dim : int
        Token width ``D``.
    hidden : int
        Hidden width (``4 * D`` is usual; CBraMod uses 800 for D = 200).
    dropout : float
        Dropout after the activation.
    output_dropout : float
        Dropout on the output (0 where the caller drops the residual branch itself).
    """

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0, output_dropout: float = 0.0):
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.activation = nn.GELU()
        self.dropout = Dropout(dropout)
        self.linear2 = nn.Linear(hidden, dim)
        self.output_dropout = Dropout(output_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.linear1(x)
        p = self.dropout.p
        if self.training and p > 0.0 and pre.device.type == "cpu":
            if self._exact_gelu() and dropout_kernels.supports(pre):  # one pass each way
                hidden = dropout_kernels.gelu_dropout(pre, p)
            else:  # in place: GELU's backward needs its input, not its output
                hidden = self.activation(pre)
                hidden = hidden.mul_(keep_mask(hidden.shape, p, hidden.dtype))
        else:
            hidden = self.dropout(self.activation(pre))
        return self.output_dropout(self.linear2(hidden))


    def _exact_gelu(self) -> bool:
        """Whether the activation is exact GELU (what the fused kernel computes)."""
        return type(self.activation) is nn.GELU and self.activation.approximate == "none"


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a residual branch for a random subset of batch items.

    Kept items are scaled by ``1 / (1 - p)`` so the expectation is unchanged; identity in eval.

    Parameters
    ----------
    p : float
        Probability of dropping the branch for one batch item (axis 0).
    """

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop_path probability must be in [0, 1); got {p}.")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * drop_path_mask(x, self.p)


def drop_path_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """Per-item stochastic-depth factors ``[B, 1, ..., 1]``: ``1 / (1 - p)`` kept, 0 dropped."""
    keep = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype)
    return keep.bernoulli_(1.0 - p).div_(1.0 - p)


def add_residual(
    x: torch.Tensor, branch: torch.Tensor, dropout_p: float, drop_path_p: float, training: bool
) -> torch.Tensor:
    """``x + drop_path(dropout(branch))`` with both masks applied in the addition itself.

    The element-wise dropout mask and the per-item stochastic-depth factors are multiplied into
    one mask, and ``torch.addcmul`` adds ``branch * mask`` to ``x`` in a single pass (one pass
    instead of three over the activations, forward and backward); on CPU the fused kernel
    (:func:`neurofm.nn.dropout_kernels.dropout_add`) does the same without writing the mask.
    Identity masks in eval.

    Parameters
    ----------
    x, branch : Tensor ``[B, ...]``
        Residual stream and branch output (same shape).
    dropout_p : float
        Element-wise dropout probability on the branch.
    drop_path_p : float
        Probability of dropping the whole branch for one batch item (axis 0).
    training : bool
        Masks only in training.
    """
    if not training:
        return x + branch
    if dropout_p > 0.0 and branch.device.type == "cpu" and dropout_kernels.supports_add(x, branch):
        seed = dropout_kernels.draw_seed()  # first, as keep_mask below draws its seed first
        path = drop_path_mask(branch, drop_path_p) if drop_path_p > 0.0 else None
        return dropout_kernels.dropout_add(x, branch, dropout_p, path, seed)
    mask = None
    if dropout_p > 0.0:
        if branch.device.type == "cpu":
            # In the residual stream's precision (float32 under bf16 autocast): exact 1/(1-p).
            dtype = torch.promote_types(x.dtype, branch.dtype)
            mask = keep_mask(branch.shape, dropout_p, dtype)
        else:
            branch = F.dropout(branch, dropout_p, True)
    if drop_path_p > 0.0:
        path = drop_path_mask(branch, drop_path_p)
        mask = path if mask is None else mask.mul_(path)
    return x + branch if mask is None else torch.addcmul(x, branch, mask)


def drop_path_rates(max_rate: float, depth: int) -> list[float]:
    """Linearly increasing drop-path rates ``0 .. max_rate`` over ``depth`` layers."""
    if depth <= 1:
        return [max_rate] * depth
    return [max_rate * i / (depth - 1) for i in range(depth)]
