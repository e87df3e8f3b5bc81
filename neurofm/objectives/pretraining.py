"""The pretraining objective: a backbone plus the loss terms chosen by config, as one module.

:class:`PretrainingObjective` is what the trainer wraps in DDP/FSDP: its ``forward`` runs the
backbone on the masked input and returns the weighted sum of the active terms (masked patch
reconstruction and/or masked code prediction), so gradient synchronisation sees every parameter
that takes part, the code-prediction head included.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from neurofm.objectives.code_prediction import MaskedCodePrediction, code_histogram
from neurofm.objectives.reconstruction import MaskedReconstruction, TokenCounts


@dataclass
class ObjectiveOutput:
    """Result of one micro-batch.

    Attributes
    ----------
    loss : torch.Tensor
        Scalar, this micro-batch's share of the weighted global-batch loss.
    terms : dict[str, torch.Tensor]
        Each active term's (unweighted) share, detached, for logging.
    code_histogram : torch.Tensor or None
        int64 ``[L, K]``, codes of the masked real tokens (code prediction only).
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    code_histogram: torch.Tensor | None = None


# FSDP finds the output tensors of a forward (to hook the backward pass) by flattening the output
# as a pytree; registering the dataclass makes its fields visible to that search.
torch.export.register_dataclass(ObjectiveOutput)


class PretrainingObjective(nn.Module):
    """Backbone + loss terms.

    Parameters
    ----------
    model : torch.nn.Module
        Encoder with ``forward(x, sensors, patch_mask, patch_valid=...) -> [B, C, N, D]`` and
        ``reconstruct(x, sensors, patch_mask, patch_valid=...) -> [B, C, N, P]``
        (:class:`neurofm.models.base.BrainEncoder`).
    reconstruction : MaskedReconstruction, optional
    code_prediction : MaskedCodePrediction, optional
    reconstruction_weight, code_prediction_weight : float
        Weights of the terms in the total loss.
    """

    def __init__(self, model: nn.Module, reconstruction: MaskedReconstruction | None = None,
                 code_prediction: MaskedCodePrediction | None = None,
                 reconstruction_weight: float = 1.0, code_prediction_weight: float = 1.0):
        super().__init__()
        if reconstruction is None and code_prediction is None:
            raise ValueError("The objective has no term: set objective.reconstruction_weight "
                             "and/or objective.code_prediction_weight above 0.")
        self.model = model
        self.reconstruction = reconstruction
        self.code_prediction = code_prediction
        self.reconstruction_weight = reconstruction_weight
        self.code_prediction_weight = code_prediction_weight

    def forward(self, x: torch.Tensor, sensors, patch_mask: torch.Tensor,
                patch_valid: torch.Tensor, real: torch.Tensor, counts: TokenCounts
                ) -> ObjectiveOutput:
        """Loss of one micro-batch.

        Parameters
        ----------
        x : torch.Tensor
            Unmasked input ``[B, C, N, P]`` (also the reconstruction target).
        sensors : SensorBatch
        patch_mask : torch.Tensor
            bool ``[B, C, N]``, True = masked.
        patch_valid : torch.Tensor
            bool ``[B, N]``, True = patch holds signal.
        real : torch.Tensor
            bool ``[B, C, N]``, True = token holds signal.
        counts : TokenCounts
            Token counts of the global batch.
        """
        out = ObjectiveOutput(loss=x.new_zeros((), dtype=torch.float32))
        if self.reconstruction is not None:
            pred = self.model.reconstruct(x, sensors, patch_mask, patch_valid=patch_valid)
            term = self.reconstruction(pred, x, patch_mask, real, counts)
            out.loss = out.loss + self.reconstruction_weight * term
            out.terms["reconstruction"] = term.detach()
        if self.code_prediction is not None:
            codes = self.code_prediction.targets(x, sensors)
            features = self.model(x, sensors, patch_mask, patch_valid=patch_valid)
            term = self.code_prediction(features, codes, patch_mask, counts)
            out.loss = out.loss + self.code_prediction_weight * term
            out.terms["code_prediction"] = term.detach()
            out.code_histogram = code_histogram(codes, patch_mask,
                                                self.code_prediction.codebook_size)
        return out


def build_objective(model: nn.Module, *, reconstruction_weight: float = 1.0,
                    reconstruction_loss: str = "mse", visible_weight: float = 0.0,
                    smooth_l1_beta: float = 1.0, code_prediction_weight: float = 0.0,
                    tokenizer: nn.Module | None = None, dim: int | None = None,
                    reconstruction_target: str = "waveform", spectral_weight: float = 1.0,
                    spectral_phase_weight: float = 0.0) -> PretrainingObjective:
    """Assemble the objective from config values; a term with weight 0 is left out.

    Parameters
    ----------
    model : torch.nn.Module
        The backbone.
    reconstruction_weight, reconstruction_loss, visible_weight, smooth_l1_beta
        Masked patch reconstruction (see :class:`MaskedReconstruction`).
    reconstruction_target, spectral_weight, spectral_phase_weight
        What reconstruction scores: ``"waveform"`` (default), ``"spectrum"`` (log Fourier
        amplitude, plus ``spectral_phase_weight`` x amplitude-weighted phase) or ``"both"``
        (waveform + ``spectral_weight`` x spectrum); see :class:`MaskedReconstruction`.
    code_prediction_weight : float
        Weight of masked code prediction; > 0 needs ``tokenizer`` and ``dim``.
    tokenizer : torch.nn.Module, optional
        Frozen VQ tokenizer (:class:`neurofm.tokenizer.NeuralTokenizer`: ``encode`` and
        ``config.codebook_size`` / ``config.n_levels``).
    dim : int, optional
        Width of the backbone's features.
    """
    reconstruction = None
    if reconstruction_weight > 0:
        reconstruction = MaskedReconstruction(
            reconstruction_loss, visible_weight, smooth_l1_beta, target=reconstruction_target,
            spectral_weight=spectral_weight, spectral_phase_weight=spectral_phase_weight)
    code_prediction = None
    if code_prediction_weight > 0:
        if tokenizer is None:
            raise ValueError("objective.code_prediction_weight > 0 needs objective.tokenizer: "
                             "the directory of a trained tokenizer (neurofm tokenizer train).")
        if dim is None:
            raise ValueError("Masked code prediction needs the backbone's feature width `dim`.")
        tok_cfg = tokenizer.config
        code_prediction = MaskedCodePrediction(tokenizer, dim, int(tok_cfg.codebook_size),
                                               int(getattr(tok_cfg, "n_levels", 1)))
    return PretrainingObjective(model, reconstruction, code_prediction,
                                reconstruction_weight, code_prediction_weight)
