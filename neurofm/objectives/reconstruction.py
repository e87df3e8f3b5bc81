"""Masked patch reconstruction: predict the samples, or the spectrum, of hidden patches.

The waveform error of a token is the mean over its ``P`` samples of the squared error (``"mse"``)
or the smooth-L1 error (``"smooth_l1"``, less sensitive to the artefact spikes of clinical EEG).
The spectral error compares Fourier amplitudes on a log scale (see :func:`spectral_token_errors`):
over a masked patch the phase of an ongoing rhythm is unpredictable, so the waveform error is
smallest for a prediction near zero whatever the rhythm's power, while the amplitude error rewards
getting the power of each frequency right. ``target`` picks the waveform error, the spectral
error, or both (waveform + ``spectral_weight`` x spectral). The loss is the mean error over masked
real tokens plus, optionally, ``visible_weight`` times the mean error over visible real tokens.
Padding is never scored.

Means are taken over the *global* batch: the caller passes the number of masked and visible real
tokens in the whole step (all ranks, all micro-batches) as :class:`TokenCounts`, and each
micro-batch returns its share. Summed over micro-batches and ranks, the shares give exactly the
loss of the full batch, so the update does not depend on the world size or on gradient
accumulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from neurofm.objectives.terms import (
    MaskedBatch,
    ObjectiveTerm,
    TermConfig,
    TokenCounts,
    register_term,
)

RECONSTRUCTION_LOSSES = ("mse", "smooth_l1")
RECONSTRUCTION_TARGETS = ("waveform", "spectrum", "both")


@dataclass
class ReconstructionConfig(TermConfig):
    """Section ``objective.terms.reconstruction`` (see :class:`MaskedReconstruction`)."""

    choices: ClassVar[dict[str, tuple]] = {"loss": RECONSTRUCTION_LOSSES,
                                           "target": RECONSTRUCTION_TARGETS}

    loss: str = "mse"
    visible_weight: float = 0.0
    smooth_l1_beta: float = 1.0
    target: str = "waveform"
    spectral_weight: float = 1.0
    spectral_phase_weight: float = 0.0


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
        raise ValueError(f"objective.terms.reconstruction.loss is {loss!r}; "
                         f"choose one of {', '.join(RECONSTRUCTION_LOSSES)}.")
    return err.mean(dim=-1)


def spectral_token_errors(pred: torch.Tensor, target: torch.Tensor,
                          phase_weight: float = 0.0) -> torch.Tensor:
    """Per-token error of the Fourier amplitude (and optionally phase) of each patch.

    With ``A = |rfft(x, norm="ortho")|`` over the ``F = P // 2 + 1`` bins of a patch, the error is
    ``mean_f (log(1 + A_pred) - log(1 + A_target))^2``: a log scale, so the weak high-frequency
    bins count next to the strong alpha bin. With ``phase_weight > 0`` it adds ``phase_weight``
    times the squared error of the phase as (cos, sin), each bin weighted by its target amplitude
    (``sum_f A_target,f * |u_pred,f - u_target,f|^2 / sum_f A_target,f`` with ``u`` the unit
    phasor), since the phase of a bin without power is noise.

    Parameters
    ----------
    pred, target : torch.Tensor
        ``[B, C, N, P]``.
    phase_weight : float
        Weight of the amplitude-weighted phase error (0 = amplitude only).

    Returns
    -------
    torch.Tensor
        float32 ``[B, C, N]``.
    """
    pred_spec = torch.fft.rfft(pred.float(), norm="ortho")
    target_spec = torch.fft.rfft(target.float(), norm="ortho")
    pred_amp, target_amp = pred_spec.abs(), target_spec.abs()
    err = (torch.log1p(pred_amp) - torch.log1p(target_amp)).square().mean(dim=-1)
    if phase_weight > 0:
        tiny = torch.finfo(torch.float32).tiny ** 0.5  # keeps the phasor finite at zero amplitude
        pred_unit = pred_spec / (pred_amp + tiny)
        target_unit = target_spec / (target_amp + tiny)
        diff = pred_unit - target_unit
        phase_err = diff.real.square() + diff.imag.square()
        weight = target_amp.detach()
        phase_err = (weight * phase_err).sum(dim=-1) / weight.sum(dim=-1).clamp_min(tiny)
        err = err + phase_weight * phase_err
    return err


@register_term("reconstruction")
class MaskedReconstruction(ObjectiveTerm):
    """Error of the backbone's reconstruction ``[B, C, N, P]`` on masked real tokens.

    Parameters
    ----------
    loss : {"mse", "smooth_l1"}
    visible_weight : float
        Weight of the mean error on visible real tokens (0 = masked tokens only, CBraMod).
    smooth_l1_beta : float
        Smooth-L1 transition point.
    target : {"waveform", "spectrum", "both"}
        What is scored: the samples (``loss``), the Fourier amplitude (and phase) spectrum
        (:func:`spectral_token_errors`), or the waveform error + ``spectral_weight`` x the
        spectral error.
    spectral_weight : float
        Weight of the spectral error when ``target="both"``.
    spectral_phase_weight : float
        Weight of the amplitude-weighted phase error inside the spectral error.
    """

    Config = ReconstructionConfig

    def __init__(self, loss: str = "mse", visible_weight: float = 0.0, smooth_l1_beta: float = 1.0,
                 target: str = "waveform", spectral_weight: float = 1.0,
                 spectral_phase_weight: float = 0.0):
        super().__init__()
        if loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(f"objective.terms.reconstruction.loss is {loss!r}; "
                             f"choose one of {', '.join(RECONSTRUCTION_LOSSES)}.")
        if target not in RECONSTRUCTION_TARGETS:
            raise ValueError(f"objective.terms.reconstruction.target is {target!r}; "
                             f"choose one of {', '.join(RECONSTRUCTION_TARGETS)}.")
        for name, value in (("visible_weight", visible_weight),
                            ("spectral_weight", spectral_weight),
                            ("spectral_phase_weight", spectral_phase_weight)):
            if value < 0:
                raise ValueError(f"objective.terms.reconstruction.{name} is {value}; "
                                 "it must be >= 0.")
        self.loss, self.visible_weight, self.smooth_l1_beta = loss, visible_weight, smooth_l1_beta
        self.target, self.spectral_weight = target, spectral_weight
        self.spectral_phase_weight = spectral_phase_weight

    def token_errors(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-token error ``[B, C, N]`` of the chosen target (see the class docstring)."""
        if self.target == "waveform":
            return token_errors(pred, target, self.loss, self.smooth_l1_beta)
        spectral = spectral_token_errors(pred, target, self.spectral_phase_weight)
        if self.target == "spectrum":
            return spectral
        return (token_errors(pred, target, self.loss, self.smooth_l1_beta)
                + self.spectral_weight * spectral)

    def forward(self, model: nn.Module, batch: MaskedBatch
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reconstruct the masked input with ``model.reconstruct`` and score it (no extra logs)."""
        pred = model.reconstruct(batch.x, batch.sensors, batch.patch_mask,
                                 patch_valid=batch.patch_valid)
        return self.score(pred, batch.x, batch.patch_mask, batch.real, batch.counts), {}

    def score(self, pred: torch.Tensor, target: torch.Tensor, patch_mask: torch.Tensor,
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
        err = self.token_errors(pred, target)
        loss = (err * patch_mask).sum() / max(counts.masked, 1.0)
        if self.visible_weight > 0:
            visible = real & ~patch_mask
            loss = loss + self.visible_weight * (err * visible).sum() / max(counts.visible, 1.0)
        return loss

    def describe(self) -> str:
        waveform = f"{self.loss} of the waveform"
        spectrum = "squared error of the log Fourier amplitude"
        if self.spectral_phase_weight > 0:
            spectrum += f" + {self.spectral_phase_weight:g} x amplitude-weighted phase error"
        scored = {"waveform": waveform, "spectrum": spectrum,
                  "both": f"{waveform} + {self.spectral_weight:g} x {spectrum}"}[self.target]
        return (f"masked patch reconstruction ({scored}, visible-token weight "
                f"{self.visible_weight:g})")
