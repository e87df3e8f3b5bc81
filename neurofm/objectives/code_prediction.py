"""Masked code prediction: predict a frozen tokenizer's code indices of each hidden patch.

LaBraM's objective: a vector-quantising tokenizer (:class:`neurofm.tokenizer.NeuralTokenizer`),
trained beforehand and frozen, assigns every ``(channel, patch)`` token a code index in
``[0, K)`` at each of its ``L`` residual levels; the encoder sees the masked input and a linear
head on its features ``[B, C, N, D]`` predicts the codes of every masked real token. The loss is
the cross-entropy averaged over masked real tokens of the global batch (see
:class:`~neurofm.objectives.terms.TokenCounts`) and over levels.
"""

from __future__ import annotations

from dataclasses import dataclass

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
from neurofm.tokenizer.model import NeuralTokenizer


@dataclass
class CodePredictionConfig(TermConfig):
    """Section ``objective.terms.code_prediction``.

    Attributes
    ----------
    tokenizer : str or None
        Directory of a trained VQ tokenizer (``neurofm tokenizer train``); required.
    """

    tokenizer: str | None = None


@register_term("code_prediction")
class MaskedCodePrediction(ObjectiveTerm):
    """Cross-entropy on the code indices of a frozen tokenizer.

    Parameters
    ----------
    tokenizer : torch.nn.Module
        Provides ``encode(x [B, C, N, P], sensors) -> codes [B, C, N, L]`` (int64, -1 on
        padding). Its parameters are frozen and it always runs in eval mode.
    dim : int
        Width ``D`` of the encoder features.
    codebook_size : int
        Codes per level ``K``.
    n_levels : int
        Residual quantisation levels ``L``.
    source : str
        Where the tokenizer came from, for :meth:`describe`.
    """

    Config = CodePredictionConfig

    def __init__(self, tokenizer: nn.Module, dim: int, codebook_size: int, n_levels: int = 1,
                 source: str = "a frozen tokenizer"):
        super().__init__()
        if codebook_size < 2 or n_levels < 1:
            raise ValueError(f"Masked code prediction needs codebook_size >= 2 and n_levels >= 1; "
                             f"got {codebook_size} and {n_levels}.")
        self.codebook_size, self.n_levels, self.source = codebook_size, n_levels, source
        self.tokenizer = tokenizer.eval().requires_grad_(False)
        self.head = nn.Linear(dim, n_levels * codebook_size)

    @classmethod
    def from_config(cls, config: CodePredictionConfig, *, model: nn.Module
                    ) -> MaskedCodePrediction:
        """Load the tokenizer of ``config.tokenizer``; the head's width is ``model.dim``."""
        if not config.tokenizer:
            raise ValueError("objective.terms.code_prediction needs tokenizer: the directory of "
                             "a trained tokenizer (neurofm tokenizer train).")
        tokenizer = NeuralTokenizer.from_pretrained(config.tokenizer)
        return cls(tokenizer, model.dim, int(tokenizer.config.codebook_size),
                   int(tokenizer.config.n_levels), source=f"tokenizer {config.tokenizer}")

    def train(self, mode: bool = True) -> MaskedCodePrediction:
        super().train(mode)
        self.tokenizer.eval()  # frozen: no dropout, no codebook updates
        return self

    @torch.no_grad()
    def targets(self, x: torch.Tensor, sensors) -> torch.Tensor:
        """Code indices of the unmasked input, int64 ``[B, C, N, L]``."""
        codes = self.tokenizer.encode(x, sensors)
        if codes.dim() == 3:
            codes = codes.unsqueeze(-1)
        if codes.shape[:3] != x.shape[:3] or codes.shape[3] != self.n_levels:
            raise ValueError(f"The tokenizer returned codes of shape {tuple(codes.shape)} for "
                             f"input {tuple(x.shape)}; masked code prediction needs "
                             f"{self.n_levels} code(s) per (channel, patch) token, so a tokenizer "
                             "with channel unification (n_latent > 0) cannot be used here.")
        return codes.long()

    def forward(self, model: nn.Module, batch: MaskedBatch
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Score the backbone's features of the masked input; logs the codes of the masked
        tokens as ``code_histogram`` (int64 ``[L, K]``)."""
        codes = self.targets(batch.x, batch.sensors)
        features = model(batch.x, batch.sensors, batch.patch_mask, patch_valid=batch.patch_valid)
        loss = self.score(features, codes, batch.patch_mask, batch.counts)
        return loss, {"code_histogram": code_histogram(codes, batch.patch_mask,
                                                       self.codebook_size)}

    def score(self, features: torch.Tensor, codes: torch.Tensor, patch_mask: torch.Tensor,
              counts: TokenCounts) -> torch.Tensor:
        """This micro-batch's share of the global-batch cross-entropy.

        Parameters
        ----------
        features : torch.Tensor
            Encoder output ``[B, C, N, D]`` for the masked input.
        codes : torch.Tensor
            int64 ``[B, C, N, L]`` from :meth:`targets`.
        patch_mask : torch.Tensor
            bool ``[B, C, N]``, True = masked real token (the only ones scored).
        counts : TokenCounts
            Token counts of the global batch.

        Returns
        -------
        torch.Tensor
            Scalar float32.
        """
        if features.shape[:3] != codes.shape[:3]:
            raise ValueError(f"Encoder features {tuple(features.shape)} do not have one vector "
                             f"per token of the codes {tuple(codes.shape)}; masked code "
                             "prediction needs a backbone without channel unification.")
        logits = self.head(features[patch_mask]).float()  # [M, L * K]
        logits = logits.reshape(-1, self.codebook_size)  # [M * L, K]
        ce = F.cross_entropy(logits, codes[patch_mask].reshape(-1), reduction="sum")
        return ce / (self.n_levels * max(counts.masked, 1.0))

    def summarize(self, logs: dict[str, torch.Tensor]) -> dict[str, float]:
        """The code histogram of the step (all ranks) -> ``codebook_usage``, the share of the
        ``L x K`` codes that occurred among the masked tokens."""
        return {"codebook_usage": float((logs["code_histogram"] > 0).float().mean())}

    def describe(self) -> str:
        return (f"masked code prediction ({self.source}, {self.codebook_size} codes x "
                f"{self.n_levels} level(s))")


def code_histogram(codes: torch.Tensor, select: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """How often each code occurs among the selected tokens, per level: int64 ``[L, K]``.

    Parameters
    ----------
    codes : torch.Tensor
        int64 ``[B, C, N, L]``.
    select : torch.Tensor
        bool ``[B, C, N]``.

    Summed over ranks, ``(histogram > 0).float().mean()`` is the codebook usage of the step.
    """
    chosen = codes[select]  # [M, L]
    return torch.stack([torch.bincount(chosen[:, level], minlength=codebook_size)
                        for level in range(codes.shape[-1])])
