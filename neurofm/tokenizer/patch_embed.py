"""Patch embedding: one vector per (channel, patch) from the patch's waveform and its spectrum.

A patch is ``P`` consecutive samples of one channel (200 samples = 1 s at 200 Hz by default).
Two branches see it:

* a **temporal** branch, a small 1-D convolution stack over the samples, for the waveform shape;
* a **spectral** branch, a linear map of the rFFT magnitude (``P // 2 + 1`` bins, derived from
  ``P``), for the rhythm content.

Their sum is the patch token. Every patch is embedded on its own, so channel order, padding
channels and the number of channels have no influence on any token.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class PatchEmbedding(nn.Module):
    """Embed patches ``x [B, C, N, P] -> [B, C, N, D]``.

    Parameters
    ----------
    patch_size : int
        Samples per patch ``P``; the spectral branch has ``P // 2 + 1`` input bins.
    dim : int
        Token width ``D``.
    conv_channels : int
        Feature maps of the temporal convolution stack.
    kernel_size : int
        Kernel of the first (strided) temporal convolution, in samples; clipped to ``P``.
    stride : int
        Stride of the first temporal convolution.
    dropout : float
        Dropout on the output tokens.
    """

    def __init__(self, patch_size: int, dim: int, *, conv_channels: int = 16,
                 kernel_size: int = 25, stride: int = 12, dropout: float = 0.0):
        super().__init__()
        if patch_size < 2:
            raise ValueError(f"PatchEmbedding needs patch_size >= 2 samples; got {patch_size}.")
        self.patch_size = int(patch_size)
        self.dim = int(dim)
        self.n_freq_bins = self.patch_size // 2 + 1
        kernel_size = min(int(kernel_size), self.patch_size)
        stride = max(1, min(int(stride), kernel_size))
        padding = kernel_size // 2
        n_steps = (self.patch_size + 2 * padding - kernel_size) // stride + 1
        self.temporal = nn.Sequential(
            nn.Conv1d(1, conv_channels, kernel_size, stride=stride, padding=padding),
            nn.GroupNorm(4 if conv_channels % 4 == 0 else 1, conv_channels),
            nn.GELU(),
            nn.Conv1d(conv_channels, conv_channels, 3, padding=1),
            nn.GroupNorm(4 if conv_channels % 4 == 0 else 1, conv_channels),
            nn.GELU(),
            nn.Flatten(),
            nn.Linear(conv_channels * n_steps, dim),
        )
        self.spectral = nn.Linear(self.n_freq_bins, dim)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("dft", real_dft_basis(self.patch_size), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed every patch.

        Parameters
        ----------
        x : Tensor ``[B, C, N, P]``
            Patched signal in model units.

        Returns
        -------
        Tensor ``[B, C, N, D]``
        """
        if x.dim() != 4 or x.shape[-1] != self.patch_size:
            raise ValueError(f"PatchEmbedding expects x of shape [B, C, N, {self.patch_size}]; "
                             f"got {tuple(x.shape)}. Re-window the data with this patch size.")
        b, c, n, p = x.shape
        flat = x.reshape(b * c * n, p)
        temporal = self.temporal[1:](self._first_convolution(flat))
        tokens = temporal + self.spectral(self._spectrum_magnitude(flat).to(x.dtype))
        return self.dropout(tokens.reshape(b, c, n, self.dim))

    def _first_convolution(self, flat: torch.Tensor) -> torch.Tensor:
        """``self.temporal[0]`` on ``flat [M, P]`` -> ``[M, channels, steps]``, as one matrix
        product of the strided windows: the same result, and its weight gradient costs a small
        GEMM where ``Conv1d``'s backward on a CPU takes about 10x longer."""
        conv = self.temporal[0]
        (k,), (stride,), (pad,) = conv.kernel_size, conv.stride, conv.padding
        windows = F.pad(flat, (pad, pad)).unfold(-1, k, stride)  # [M, steps, k], a view
        out = F.linear(windows, conv.weight.view(conv.out_channels, k), conv.bias)
        return out.transpose(1, 2).contiguous()

    def _spectrum_magnitude(self, flat: torch.Tensor) -> torch.Tensor:
        """``|rfft(flat, norm="ortho")|`` in float32 ``[M, P // 2 + 1]``, as one matrix product
        with the real DFT basis (on a CPU several times faster than ``rfft`` and ``abs`` of the
        complex result for ``P`` = 200)."""
        with torch.autocast(flat.device.type, enabled=False):
            parts = flat.float() @ self.dft.float()  # [M, 2 * bins]: real parts, then imaginary
            return parts.view(-1, 2, self.n_freq_bins).square().sum(1).sqrt()


def real_dft_basis(size: int) -> torch.Tensor:
    """``[size, 2 * (size // 2 + 1)]``: cosines then minus sines of the rFFT's frequencies,
    scaled by ``1 / sqrt(size)`` (``norm="ortho"``); ``x @ basis`` gives real and imaginary
    parts."""
    n = torch.arange(size, dtype=torch.float64)[:, None]
    k = torch.arange(size // 2 + 1, dtype=torch.float64)[None, :]
    angle = 2 * math.pi * ((n * k) % size) / size
    return (torch.cat([torch.cos(angle), -torch.sin(angle)], dim=1) / math.sqrt(size)).float()
