"""LaBraM's input stage (Jiang et al., ICLR 2024): temporal convolution and channel-name table.

:class:`LabramPatchEmbedding` is LaBraM's three-layer temporal convolution;
:class:`ChannelNameEmbedding` is its learned vector per electrode *name* (a fixed table, the
names themselves live in :data:`neurofm.models.labram.LABRAM_CHANNELS`). Looking channels up by
name is the documented exception to neurofm's order-free sensor encoding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LabramPatchEmbedding(nn.Module):
    """LaBraM's temporal convolution ``[B, C, N, P] -> [B, C, N, D]``.

    Three ``(1, k)`` convolutions over ``[B, 1, C*N, P]`` (the first with stride 8), each followed
    by group norm (4 groups; statistics over the whole window, so zero-padded channels change real
    tokens slightly, as in braindecode and the original) and GELU; the output ``[B, K, C*N, P']``
    is flattened per token to ``D = P' * K`` features, time-major.

    Parameters
    ----------
    patch_size : int
        Samples per patch ``P``.
    channels : int
        Convolution channels ``K`` (8 in LaBraM).
    """

    def __init__(self, patch_size: int = 200, channels: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, (1, 15), stride=(1, 8), padding=(0, 7))
        self.norm1 = nn.GroupNorm(4, channels)
        self.conv2 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1))
        self.norm2 = nn.GroupNorm(4, channels)
        self.conv3 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1))
        self.norm3 = nn.GroupNorm(4, channels)
        self.dim = ((patch_size + 2 * 7 - 15) // 8 + 1) * channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, n, p = x.shape
        h = x.reshape(b, 1, c * n, p)
        h = F.gelu(self.norm1(self.conv1(h)))
        h = F.gelu(self.norm2(self.conv2(h)))
        h = F.gelu(self.norm3(self.conv3(h)))  # [B, K, C*N, P']
        return h.permute(0, 2, 3, 1).reshape(b, c, n, -1)


class ChannelNameEmbedding(nn.Module):
    """A learned vector per row of a fixed channel-name table: ``ids [B, C] -> [B, C, D]``.

    The rows of the input channels come from ``channel_ids`` per call, else from
    :attr:`default_ids` (set once per montage, e.g. by ``LabramEncoder.set_channel_names``), else
    the input must hold the whole table in table order.

    Parameters
    ----------
    n_names : int
        Rows of the table (128 in LaBraM).
    dim : int
        Width ``D``.
    """

    def __init__(self, n_names: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_names, dim))
        nn.init.trunc_normal_(self.weight, std=0.02)
        self.register_buffer("default_ids", None, persistent=False)

    def forward(self, b: int, c: int, channel_ids=None) -> torch.Tensor:
        """Embeddings ``[B, C, D]`` of ``c`` input channels.

        Parameters
        ----------
        b, c : int
            Batch size and number of input channels.
        channel_ids : Tensor ``[C]`` or ``[B, C]`` of int, or None
            Table rows of the input channels, in order.
        """
        ids = channel_ids if channel_ids is not None else self.default_ids
        n_names = self.weight.shape[0]
        if ids is None:
            if c != n_names:
                raise ValueError(
                    f"This model looks channels up by name, but no names are set and x has {c} "
                    f"channels (not the table's {n_names} in table order). Call "
                    "model.set_channel_names(raw.ch_names) or pass channel_ids="
                    "labram_channel_ids(names).")
            ids = torch.arange(c)
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.weight.device)
        if ids.shape[-1] != c:
            raise ValueError(f"{ids.shape[-1]} channel ids for x with {c} channels; give one id "
                             "per channel of x, in order.")
        return self.weight[ids.expand(b, c)]
