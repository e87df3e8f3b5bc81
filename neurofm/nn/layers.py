"""Layers shared by the backbones and the tokenizer: dropout, feed-forward network, stochastic depth."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by 1/(1-p).

    On CPU, ``torch.nn.functional.dropout`` draws one Bernoulli sample per element and costs far
    more than the GEMM it follows; here the keep mask comes from 16-bit uniform integers (see
    :func:`keep_mask`; ``torch.manual_seed`` applies), so ``p`` is realised to within 1/65536.
    Other devices use ``F.dropout``.
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    return x * keep_mask(x.shape, p, x.dtype)


def keep_mask(shape: torch.Size, p: float, dtype: torch.dtype) -> torch.Tensor:
    """CPU dropout mask of ``shape``: ``1 / (1 - p)`` with probability ``1 - p``, else 0.

    Each element compares one uniform int16 with a threshold, so the keep probability is
    ``1 - round(p * 65536) / 65536``. The 16-bit numbers are quarters of 64-bit words from
    numpy's SFC64 generator, seeded by one draw from torch's default CPU generator: the mask
    follows ``torch.manual_seed`` like any torch random op, and costs about a third of what
    ``Tensor.random_`` (a Mersenne twister, about 10 ns per word here) takes for the same bits.
    """
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
        hidden = self.activation(self.linear1(x))
        p = self.dropout.p
        if self.training and p > 0.0 and hidden.device.type == "cpu":
            # In place: GELU's backward needs its input, not its output; saves a large buffer.
            hidden = hidden.mul_(keep_mask(hidden.shape, p, hidden.dtype))
        else:
            hidden = self.dropout(hidden)
        return self.output_dropout(self.linear2(hidden))


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
    instead of three over the activations, forward and backward). Identity masks in eval.

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
