"""CBraMod's patch embedding (Wang et al., ICLR 2025), parameter for parameter.

CBraMod embeds each 1-s patch with a small convolution stack plus a linear map of the patch's
rFFT magnitude, and replaces masked patches by a frozen all-zero patch before embedding them. The
convolution stack's group norm pools statistics over all channels of a window, so (like CBraMod's
ACPE, :class:`~neurofm.tokenizer.position.ConvPositionEncoding`) it is an exception to order-free,
padding-free sensor handling.
"""

from __future__ import annotations

import torch
from torch import nn

from neurofm.nn import Dropout

# (out_channels, kernel, stride, padding, (groups, channels)) of CBraMod's convolution stack.
CBRAMOD_CONV_STACK = ((25, 49, 25, 24, (5, 25)), (25, 3, 1, 1, (5, 25)), (25, 3, 1, 1, (5, 25)))


def conv_stack_width(patch_size: int, stack=CBRAMOD_CONV_STACK) -> int:
    """Token width produced by the convolution stack for ``patch_size`` samples."""
    length = patch_size
    for _, kernel, stride, padding, _ in stack:
        length = (length + 2 * padding - kernel) // stride + 1
    return stack[-1][0] * length


class CBraModPatchEmbedding(nn.Module):
    """CBraMod's patch embedding ``[B, C, N, P] -> [B, C, N, D]`` (D = 200 for P = 200).

    Temporal branch: 2-D convolutions with ``(1, k)`` kernels over ``[B, 1, C*N, P]`` with group
    norm (statistics over the whole window, as CBraMod computes them), GELU, flattened to D.
    Spectral branch: ``Linear(P // 2 + 1 -> D)`` of ``|rfft(patch, norm="forward")|`` + dropout.
    Masked patches are replaced by ``mask_encoding`` (a frozen zero patch) before both branches.

    Parameters
    ----------
    patch_size : int
        Samples per patch ``P``.
    dropout : float
        Dropout of the spectral branch.
    """

    def __init__(self, patch_size: int = 200, dropout: float = 0.1):
        super().__init__()
        self.patch_size = patch_size
        self.dim = conv_stack_width(patch_size)
        layers, in_channels = [], 1
        for channels, kernel, stride, padding, (groups, _) in CBRAMOD_CONV_STACK:
            layers += [
                nn.Conv2d(in_channels, channels, (1, kernel), (1, stride), (0, padding)),
                nn.GroupNorm(groups, channels),
                nn.GELU(),
            ]
            in_channels = channels
        self.proj_in = nn.Sequential(*layers)
        self.spectral_proj = nn.Sequential(
            nn.Linear(patch_size // 2 + 1, self.dim), Dropout(dropout)
        )
        self.mask_encoding = nn.Parameter(torch.zeros(patch_size), requires_grad=False)

    def forward(self, x: torch.Tensor, patch_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Embed patches.

        Parameters
        ----------
        x : Tensor ``[B, C, N, P]``
        patch_mask : Tensor ``[B, C, N]`` bool or None
            True where the patch is replaced by the mask patch.

        Returns
        -------
        Tensor ``[B, C, N, D]``
        """
        b, c, n, p = x.shape
        if patch_mask is not None:
            x = torch.where(patch_mask[..., None], self.mask_encoding.to(x.dtype), x)
        conv = self.proj_in(x.reshape(b, 1, c * n, p))  # [B, 25, C*N, P']
        temporal = conv.permute(0, 2, 1, 3).reshape(b, c, n, self.dim)
        magnitude = torch.fft.rfft(x.float(), dim=-1, norm="forward").abs()
        return temporal + self.spectral_proj(magnitude.to(temporal.dtype))
