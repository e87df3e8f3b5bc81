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

import torch
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
        flat = x.reshape(b * c * n, 1, p)
        temporal = self.temporal(flat)
        magnitude = torch.fft.rfft(flat.squeeze(1).float(), norm="ortho").abs().to(x.dtype)
        tokens = temporal + self.spectral(magnitude)
        return self.dropout(tokens.reshape(b, c, n, self.dim))
