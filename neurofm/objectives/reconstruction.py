"""Masked patch reconstruction: predict the raw samples of hidden patches.

The error of a token is the mean over its ``P`` samples of the squared error (``"mse"``) or the
smooth-L1 error (``"smooth_l1"``, less sensitive to the artefact spikes of clinical EEG). The loss
is the mean error over masked real tokens plus, optionally, ``visible_weight`` times the mean
error over visible real tokens. Padding is never scored.

Means are taken over the *global* batch: the caller passes the number of masked and visible real
tokens in the whole step (all ranks, all micro-batches) as :class:`TokenCounts`, and each
micro-batch returns its share. Summed over micro-batches and ranks, the shares give exactly the
loss of the full batch, so the update does not depend on the world size or on gradient
accumulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

RECONSTRUCTION_LOSSES = ("mse", "smooth_l1")


@dataclass(frozen=True)
class TokenCounts:
    """Real tokens of the global batch: ``masked`` ones (scored) and ``visible`` ones."""

    masked: float
    visible: float


def token_errors(pred: torch.Tensor, target: torch.Tensor, loss: str = "mse",
                 beta: float = 1.0) -> torch.Tensor:
    """Per-token reconstruction error.

    Parameters
    ----------
    pred, target : torch.Tensor
        ``[B, C, N, P]``.
    loss : {"mse", "smooth_l1"}
    beta : float
        Smooth-L1 transition point (model units; 1.0 = 100 µV for EEG).

    Returns
    -------
    torch.Tensor
        float32 ``[B, C, N]``, the error averaged over the ``P`` samples of each patch.
    """
    pred, target = pred.float(), target.float()
    if loss == "mse":
        err = F.mse_loss(pred, target, reduction="none")
    elif loss == "smooth_l1":
        err = F.smooth_l1_loss(pred, target, reduction="none", beta=beta)
    else:
        raise ValueError(f"objective.reconstruction_loss is {loss!r}; "
                         f"choose one of {', '.join(RECONSTRUCTION_LOSSES)}.")
    return err.mean(dim=-1)


class MaskedReconstruction(nn.Module):
    """Loss of a reconstruction ``[B, C, N, P]`` against the input on masked real tokens.

    Parameters
    ----------
    loss : {"mse", "smooth_l1"}
    visible_weight : float
        Weight of the mean error on visible real tokens (0 = masked tokens only, CBraMod).
    smooth_l1_beta : float
        Smooth-L1 transition point.
    """

    def __init__(self, loss: str = "mse", visible_weight: float = 0.0, smooth_l1_beta: float = 1.0):
        super().__init__()
        if loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(f"objective.reconstruction_loss is {loss!r}; "
                             f"choose one of {', '.join(RECONSTRUCTION_LOSSES)}.")
        if visible_weight < 0:
            raise ValueError(f"objective.visible_weight is {visible_weight}; it must be >= 0.")
        self.loss, self.visible_weight, self.smooth_l1_beta = loss, visible_weight, smooth_l1_beta

    def forward(self, pred: torch.Tensor, target: torch.Tensor, patch_mask: torch.Tensor,
                real: torch.Tensor, counts: TokenCounts) -> torch.Tensor:
        """This micro-batch's share of the global-batch loss.

        Parameters
        ----------
        pred, target : torch.Tensor
            ``[B, C, N, P]``.
        patch_mask : torch.Tensor
            bool ``[B, C, N]``, True = masked (never True on padding).
        real : torch.Tensor
            bool ``[B, C, N]``, True = token holds signal.
        counts : TokenCounts
            Masked and visible real tokens of the global batch.

        Returns
        -------
        torch.Tensor
            Scalar float32.
        """
        err = token_errors(pred, target, self.loss, self.smooth_l1_beta)
        loss = (err * patch_mask).sum() / max(counts.masked, 1.0)
        if self.visible_weight > 0:
            visible = real & ~patch_mask
            loss = loss + self.visible_weight * (err * visible).sum() / max(counts.visible, 1.0)
        return loss
