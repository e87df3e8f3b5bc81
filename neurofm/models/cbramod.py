"""CBraMod's input stage and the key mapping of its published weights.

CBraMod (Wang et al., ICLR 2025) embeds each 1-s patch with a small convolution stack plus a
linear map of the patch's rFFT magnitude, replaces masked patches by a frozen all-zero patch, and
adds an *asymmetric conditional positional encoding* (ACPE): a depthwise 2-D convolution over
(channels x patches) of the token grid. :class:`CBraModPatchEmbedding` and
:class:`ConvPositionEncoding` reproduce these exactly (same parameter shapes), so that
``create_model("cbramod_base")`` loads CBraMod weights through :func:`convert_cbramod_state_dict`.

ACPE mixes neighbouring channels *by their order*, and the convolution stack's group norm pools
statistics over all channels of a window: ``cbramod_base`` is the documented exception to
order-free, padding-free sensor handling. With a kernel of one channel,
:class:`ConvPositionEncoding` is a purely temporal, channel-order-free position encoding, which
the sensor-encoding criss-cross models use.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from neurofm.models.layers import Dropout

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


class ConvPositionEncoding(nn.Module):
    """Conditional position encoding: a depthwise convolution of the token grid, added to it.

    ``tokens [B, C, N, D] -> tokens + conv(tokens)``, the convolution running over
    (channels x patches) with one filter per feature. CBraMod's ACPE uses a (19, 7) kernel;
    a kernel of 1 channel makes it temporal only (independent of channel order).

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
        return tokens + self.conv(grid).permute(0, 2, 3, 1)


_CBRAMOD_RENAMES = (
    (r"^patch_embedding\.positional_encoding\.0\.", "position.conv."),
    (r"^patch_embedding\.", "patch_embed."),
    (r"^encoder\.layers\.(\d+)\.self_attn_s\.", r"layers.\1.spatial_attn."),
    (r"^encoder\.layers\.(\d+)\.self_attn_t\.", r"layers.\1.temporal_attn."),
    (r"^encoder\.layers\.(\d+)\.linear([12])\.", r"layers.\1.ffn.linear\2."),
    (r"^encoder\.layers\.(\d+)\.norm([12])\.", r"layers.\1.norm\2."),
    (r"^proj_out\.0\.", "reconstruction_head.proj."),
)


def cbramod_key(key: str) -> str:
    """Map one CBraMod state-dict key (original repository or braindecode) to ``cbramod_base``.

    Raises ``KeyError`` for keys that have no counterpart (e.g. a task head ``final_layer.*``).
    """
    key = key.removeprefix("module.")
    for pattern, repl in _CBRAMOD_RENAMES:
        new, count = re.subn(pattern, repl, key)
        if count:
            return new
    raise KeyError(f"CBraMod weight {key!r} has no counterpart in cbramod_base.")


def convert_cbramod_state_dict(state_dict: dict, *, skip_heads: bool = True) -> dict:
    """Rename a CBraMod state dict (``pretrained_weights.pth`` or braindecode) to ``cbramod_base``.

    Parameters
    ----------
    state_dict : dict
        CBraMod weights; a ``module.`` prefix (DataParallel) is removed.
    skip_heads : bool
        Drop task-specific heads (``final_layer.*``, ``classifier.*``) instead of raising.

    Returns
    -------
    dict mapping ``cbramod_base`` keys to tensors (load with ``load_state_dict(..., strict=True)``).
    """
    out = {}
    for key, value in state_dict.items():
        bare = key.removeprefix("module.")
        if skip_heads and bare.split(".")[0] in ("final_layer", "classifier"):
            continue
        out[cbramod_key(bare)] = value
    return out
