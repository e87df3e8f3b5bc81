"""Which (channel, patch) tokens a pretraining step hides from the encoder.

A mask is a boolean tensor ``patch_mask [B, C, N]`` (True = masked), the form the encoder API
takes. Two shapes of mask are offered:

``"bernoulli"``
    every real token is masked independently with probability ``ratio`` (CBraMod's recipe);
``"block"``
    each channel's patches are grouped into aligned runs of ``block_size`` consecutive patches and
    whole runs are masked with probability ``ratio``, so the model cannot fill a gap by
    interpolating its immediate neighbours in time.

Padding channels (``chan_mask=False``) and padded patches (``patch_valid=False``) are never masked
and never scored. Each window's mask is drawn from its own generator, seeded from
``(seed, epoch, window index)``, so the same window gets the same mask whichever rank,
micro-batch or world size it lands in; that keeps runs reproducible and resumable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

MASK_MODES = ("bernoulli", "block")


def window_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator owned by one window of one epoch.

    Parameters
    ----------
    seed, epoch, index : int
        Run seed, epoch number and the window's index in the corpus.
    """
    # Python hashes tuples of small ints deterministically (no hash randomisation for ints).
    return torch.Generator().manual_seed(hash((int(seed), int(epoch), int(index))) & (2**63 - 1))


def sample_window_mask(n_channels: int, n_patches: int, *, ratio: float = 0.5,
                       mode: str = "bernoulli", block_size: int = 4,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw the mask of one window's real channels.

    Parameters
    ----------
    n_channels, n_patches : int
        Real channels ``C`` and patches ``N`` of the window.
    ratio : float
        Probability that a token (``"bernoulli"``) or a block of tokens (``"block"``) is masked.
    mode : {"bernoulli", "block"}
    block_size : int
        Patches per block in ``"block"`` mode.
    generator : torch.Generator, optional
        Source of randomness (see :func:`window_generator`).

    Returns
    -------
    mask : torch.Tensor
        bool ``[C, N]``, True = masked.
    """
    check_mask_settings(ratio, mode, block_size)
    if mode == "bernoulli":
        return torch.rand(n_channels, n_patches, generator=generator) < ratio
    n_blocks = math.ceil(n_patches / block_size)
    blocks = torch.rand(n_channels, n_blocks, generator=generator) < ratio
    return blocks.repeat_interleave(block_size, dim=1)[:, :n_patches]


def check_mask_settings(ratio: float, mode: str, block_size: int) -> None:
    """Raise ``ValueError`` naming the bad masking setting."""
    if mode not in MASK_MODES:
        raise ValueError(f"objective.mask_mode is {mode!r}; choose one of {', '.join(MASK_MODES)}.")
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"objective.mask_ratio is {ratio}; it must lie strictly between 0 and 1.")
    if block_size < 1:
        raise ValueError(f"objective.mask_block_size is {block_size}; it must be >= 1.")


def batch_patch_mask(chan_mask: torch.Tensor, patch_valid: torch.Tensor, indices: Sequence[int], *,
                     seed: int, epoch: int, ratio: float = 0.5, mode: str = "bernoulli",
                     block_size: int = 4) -> torch.Tensor:
    """Mask a collated batch, window by window, never touching padding.

    Parameters
    ----------
    chan_mask : torch.Tensor
        bool ``[B, C]``, True = real channel.
    patch_valid : torch.Tensor
        bool ``[B, N]``, True = patch holds signal.
    indices : sequence of int
        Corpus index of each of the ``B`` windows (seeds its mask).
    seed, epoch : int
        Run seed and epoch.
    ratio, mode, block_size
        As in :func:`sample_window_mask`.

    Returns
    -------
    patch_mask : torch.Tensor
        bool ``[B, C, N]`` on the device of ``chan_mask``; True = masked real token.
    """
    b, c = chan_mask.shape
    n = patch_valid.shape[1]
    if len(indices) != b:
        raise ValueError(f"batch_patch_mask got {len(indices)} window indices for a batch of {b}.")
    mask = torch.zeros(b, c, n, dtype=torch.bool)
    chan_mask_cpu = chan_mask.cpu()
    for row, index in enumerate(indices):
        channels = chan_mask_cpu[row].nonzero().flatten()
        gen = window_generator(seed, epoch, index)
        mask[row, channels] = sample_window_mask(len(channels), n, ratio=ratio, mode=mode,
                                                 block_size=block_size, generator=gen)
    mask = mask.to(chan_mask.device)
    return mask & real_tokens(chan_mask, patch_valid)


@dataclass(frozen=True)
class TokenMasking:
    """How a pretraining objective masks its batches (config ``objective.mask_*``).

    Attributes
    ----------
    ratio : float
        Probability that a token (``"bernoulli"``) or a block of tokens (``"block"``) is masked.
    mode : {"bernoulli", "block"}
    block_size : int
        Patches per block in ``"block"`` mode.
    """

    ratio: float = 0.5
    mode: str = "bernoulli"
    block_size: int = 4

    def __post_init__(self):
        check_mask_settings(self.ratio, self.mode, self.block_size)

    def __call__(self, chan_mask: torch.Tensor, patch_valid: torch.Tensor,
                 indices: Sequence[int], *, seed: int, epoch: int) -> torch.Tensor:
        """``patch_mask`` bool ``[B, C, N]`` of a collated batch (see :func:`batch_patch_mask`)."""
        return batch_patch_mask(chan_mask, patch_valid, indices, seed=seed, epoch=epoch,
                                ratio=self.ratio, mode=self.mode, block_size=self.block_size)

    def describe(self) -> str:
        blocks = f" in blocks of {self.block_size} patches" if self.mode == "block" else ""
        return f"{self.mode} masking of {self.ratio:.0%} of the (channel, patch) tokens{blocks}"


def real_tokens(chan_mask: torch.Tensor, patch_valid: torch.Tensor) -> torch.Tensor:
    """Tokens that hold signal: ``chan_mask [B, C]`` x ``patch_valid [B, N]`` -> bool ``[B, C, N]``."""
    return chan_mask[:, :, None] & patch_valid[:, None, :].to(chan_mask.device)
