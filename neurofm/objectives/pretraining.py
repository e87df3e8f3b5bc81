"""The pretraining objective: a backbone, its masking and a list of weighted loss terms.

:class:`PretrainingObjective` is what the trainer wraps in DDP/FSDP: its ``forward`` runs every
term on the masked micro-batch and returns the weighted sum of their losses, so gradient
synchronisation sees every parameter that takes part (the terms' heads included), and each
term's logs. :func:`build_objective` assembles it from the ``objective`` config section.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from neurofm.objectives.config import ObjectiveConfig
from neurofm.objectives.masking import TokenMasking
from neurofm.objectives.terms import (
    MaskedBatch,
    ObjectiveTerm,
    TermConfig,
    TokenCounts,
    list_terms,
    term_class,
)
from neurofm.strict import from_dict


@dataclass
class ObjectiveOutput:
    """Result of one micro-batch.

    Attributes
    ----------
    loss : torch.Tensor
        Scalar, this micro-batch's share of the weighted global-batch loss.
    logs : dict[str, dict[str, torch.Tensor]]
        Per term (by name): its unweighted share under its own name, and the extra logs it
        returned; all detached. Summed over micro-batches and ranks, they go to
        :meth:`PretrainingObjective.summarize`.
    """

    loss: torch.Tensor
    logs: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)


# FSDP finds the output tensors of a forward (to hook the backward pass) by flattening the output
# as a pytree; registering the dataclass makes its fields visible to that search.
torch.export.register_dataclass(ObjectiveOutput)


class PretrainingObjective(nn.Module):
    """Backbone + masking + weighted loss terms.

    Each term is a child module under its name (``objective.reconstruction``,
    ``objective.code_prediction``), so state-dict keys read ``model.*`` for the backbone and
    ``<term>.*`` for a term's parameters.

    Parameters
    ----------
    model : torch.nn.Module
        Encoder with ``forward(x, sensors, patch_mask, patch_valid=...) -> [B, C, N, D]`` and
        ``reconstruct(x, sensors, patch_mask, patch_valid=...) -> [B, C, N, P]``
        (:class:`neurofm.models.base.BrainEncoder`).
    terms : dict[str, ObjectiveTerm]
        The terms, by name, in the order they run.
    weights : dict[str, float], optional
        Weight of each term in the total loss (default 1).
    masking : TokenMasking, optional
        How the trainer masks batches for this objective (default: 50 % Bernoulli).
    """

    def __init__(self, model: nn.Module, terms: dict[str, ObjectiveTerm],
                 weights: dict[str, float] | None = None, masking: TokenMasking | None = None):
        super().__init__()
        if not terms:
            raise ValueError("The objective has no term: list at least one under objective.terms "
                             f"with a weight above 0 (registered terms: {', '.join(list_terms())}).")
        self.model = model
        self.masking = masking or TokenMasking()
        self.weights = {name: float((weights or {}).get(name, 1.0)) for name in terms}
        self.term_names = tuple(terms)
        for name, term in terms.items():
            if hasattr(self, name):
                raise ValueError(f"An objective term cannot be called {name!r}: the objective "
                                 "already has an attribute of that name.")
            self.add_module(name, term)

    def terms(self) -> Iterator[tuple[str, ObjectiveTerm]]:
        """``(name, term)`` pairs in the order they run."""
        for name in self.term_names:
            yield name, getattr(self, name)

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
        batch = MaskedBatch(x, sensors, patch_mask, patch_valid, real, counts)
        out = ObjectiveOutput(loss=x.new_zeros((), dtype=torch.float32))
        for name, term in self.terms():
            loss, logs = term(self.model, batch)
            out.loss = out.loss + self.weights[name] * loss
            if name in logs:
                raise ValueError(f"Objective term {name!r} returned a log named like itself; the "
                                 "objective logs the term's value under that name.")
            out.logs[name] = {name: loss.detach(), **{k: v.detach() for k, v in logs.items()}}
        return out

    def summarize(self, logs: dict[str, dict[str, torch.Tensor]]) -> dict[str, float]:
        """The numbers to log, from :attr:`ObjectiveOutput.logs` summed over micro-batches and
        ranks: each term's value under its name and what its ``summarize`` makes of the rest."""
        record = {}
        for name, term in self.terms():
            term_logs = dict(logs[name])
            record[name] = float(term_logs.pop(name))
            record.update(term.summarize(term_logs))
        return record

    def describe(self) -> str:
        """One paragraph for the model card: the masking, then the weighted terms."""
        terms = " + ".join(f"{self.weights[name]:g} x {term.describe()}"
                           for name, term in self.terms())
        return f"Masked modelling: {self.masking.describe()}; loss = {terms}."


def build_objective(config: ObjectiveConfig, *, model: nn.Module) -> PretrainingObjective:
    """Assemble the objective of an ``objective`` config section; a term of weight 0 is left out.

    Parameters
    ----------
    config : ObjectiveConfig
        Masking settings and ``terms``: ``{name: section}``, each section a term's config
        dataclass (or a mapping of its fields).
    model : torch.nn.Module
        The backbone.

    Raises
    ------
    ValueError
        Unknown term, unknown key in a section, negative weight, no term left.
    """
    terms, weights = {}, {}
    for name, section in config.terms.items():
        cls = term_class(name)
        if not isinstance(section, TermConfig):
            section = from_dict(cls.Config, section, where=f"objective.terms.{name}")
        if section.weight < 0:
            raise ValueError(f"objective.terms.{name}.weight is {section.weight}; it must be >= 0 "
                             "(0 leaves the term out).")
        if section.weight > 0:
            terms[name] = cls.from_config(section, model=model)
            weights[name] = section.weight
    masking = TokenMasking(config.mask_ratio, config.mask_mode, config.mask_block_size)
    return PretrainingObjective(model, terms, weights, masking)
