"""Building blocks shared by the backbones: dropout, feed-forward network, stochastic depth."""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import nn

# Which three of the four 16-bit parts of a non-negative int64 are fully random (the sign part
# is not): the low three in memory order on little-endian machines, the high three otherwise.
_RANDOM_PARTS = slice(0, 3) if sys.byteorder == "little" else slice(1, 4)


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by 1/(1-p).

    On CPU, ``torch.nn.functional.dropout`` draws one Bernoulli sample per element and costs far
    more than the GEMM it follows; here the keep mask comes from 16-bit uniform integers, three per
    64-bit random word of the default generator (``torch.manual_seed`` applies), so ``p`` is
    realised to within 1/65536. Other devices use ``F.dropout``.
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    n = x.numel()
    words = torch.empty((n + 2) // 3, dtype=torch.int64).random_()
    uniform16 = words.view(torch.int16).view(-1, 4)[:, _RANDOM_PARTS].reshape(-1)[:n]
    keep = uniform16.view(x.shape) >= round(p * 65536) - 32768
    return x * (keep.to(x.dtype) * (1.0 / (1.0 - p)))


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
    """Position-wise MLP ``[..., D] -> [..., D]``: ``linear2(dropout(GELU(linear1(x))))``.

    Parameters
    ----------
    dim : int
        Token width ``D``.
    hidden : int
        Hidden width (``4 * D`` is usual; CBraMod uses 800 for D = 200).
    dropout : float
        Dropout after the activation.
    """

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.activation = nn.GELU()
        self.dropout = Dropout(dropout)
        self.linear2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


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
        keep = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype)
        return x * keep.bernoulli_(1.0 - self.p) / (1.0 - self.p)


def drop_path_rates(max_rate: float, depth: int) -> list[float]:
    """Linearly increasing drop-path rates ``0 .. max_rate`` over ``depth`` layers."""
    if depth <= 1:
        return [max_rate] * depth
    return [max_rate * i / (depth - 1) for i in range(depth)]
