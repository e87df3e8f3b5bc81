"""Conditional position encoding: a depthwise convolution of the token grid, added to it.

With a kernel of one channel it is a purely temporal, channel-order-free position encoding (the
sensor-encoding criss-cross models); with CBraMod's (19, 7) kernel it is CBraMod's *asymmetric
conditional positional encoding* (ACPE), which mixes neighbouring channels by their order.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvPositionEncoding(nn.Module):
    """``tokens [B, C, N, D] -> tokens + conv(tokens)``, a depthwise convolution over
    (channels x patches) with one filter per feature.

    Parameters
    ----------
    dim : int
        Token width ``D``.
    kernel : tuple of int
        ``(channels, patches)`` kernel size, both odd (same-size output).
    """

    def __init__(self, dim: int, kernel: tuple[int, int] = (19, 7)):
        super().__init__()
        kc, kt = kernel
        if kc % 2 == 0 or kt % 2 == 0:
            raise ValueError(f"ConvPositionEncoding kernel must be odd in both axes; got {kernel}.")
        # The convolution runs channels-last (see forward), so it returns a channels-last weight
        # gradient. Storing the weight channels-last too keeps the gradient's strides equal to the
        # weight's: DDP otherwise warns "Grad strides do not match bucket view strides".
        conv = nn.Conv2d(dim, dim, (kc, kt), padding=(kc // 2, kt // 2), groups=dim)
        self.conv = conv.to(memory_format=torch.channels_last)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        # [B, C, N, D] viewed as [B, D, C, N] is a channels-last tensor: no copy either way.
        grid = tokens.permute(0, 3, 1, 2)
        if tokens.device.type == "cpu":
            # In the weight's precision also under autocast (the sum keeps the tokens' dtype):
            # on a CPU the bf16 depthwise convolution's backward is slower than the float32 one.
            with torch.autocast("cpu", enabled=False):
                conv = self.conv(grid.to(self.conv.weight.dtype)).to(tokens.dtype)
            return tokens + conv.permute(0, 2, 3, 1)
        return tokens + self.conv(grid).permute(0, 2, 3, 1)
