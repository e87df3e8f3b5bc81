"""Loss terms of the pretraining objective, and the table that finds them by name.

A term is an ``nn.Module`` that scores one micro-batch: ``term(model, batch) -> (loss, logs)``
with ``batch`` a :class:`MaskedBatch` and ``model`` the backbone (the objective owns it; a term
calls ``model(...)`` or ``model.reconstruct(...)`` as it needs). ``loss`` is this micro-batch's
share of the term's global-batch value (see :class:`MaskedBatch.counts`), so the shares of all
micro-batches and ranks add up to the full-batch loss. ``logs`` holds extra detached tensors to
log (the objective logs the term's value itself, under the term's name).

A term class declares its config section as a dataclass ``Config`` (a :class:`TermConfig`, so it
has a ``weight``) and registers itself under the name its section has in ``objective.terms``::

    @register_term("reconstruction")
    class MaskedReconstruction(ObjectiveTerm):
        Config = ReconstructionConfig
        ...

``docs/contributing.md`` ("Add an objective") walks through adding one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn


@dataclass(frozen=True)
class TokenCounts:
    """Real tokens of the global batch: ``masked`` ones (scored) and ``visible`` ones."""

    masked: float
    visible: float


@dataclass(frozen=True)
class MaskedBatch:
    """One micro-batch, masked, as every term sees it.

    Attributes
    ----------
    x : torch.Tensor
        Unmasked input ``[B, C, N, P]`` (also the reconstruction target).
    sensors : neurofm.sensors.SensorBatch
    patch_mask : torch.Tensor
        bool ``[B, C, N]``, True = masked real token.
    patch_valid : torch.Tensor
        bool ``[B, N]``, True = patch holds signal.
    real : torch.Tensor
        bool ``[B, C, N]``, True = token holds signal.
    counts : TokenCounts
        Masked and visible real tokens of the global batch (all micro-batches, all ranks): a
        term divides its sums by these, never by the micro-batch's own counts.
    """

    x: torch.Tensor
    sensors: object
    patch_mask: torch.Tensor
    patch_valid: torch.Tensor
    real: torch.Tensor
    counts: TokenCounts


@dataclass
class TermConfig:
    """Fields every term's config section has.

    Attributes
    ----------
    weight : float
        Weight of the term in the total loss; 0 leaves the term out.
    """

    #: Allowed values of the section's string fields, ``{field: (choice, ...)}``.
    choices: ClassVar[dict[str, tuple]] = {}

    weight: float = 1.0


class ObjectiveTerm(nn.Module):
    """Base class of loss terms (see the module docstring for the contract).

    Subclasses set :attr:`Config` and implement :meth:`forward` and :meth:`describe`;
    :meth:`from_config` and :meth:`summarize` have defaults.
    """

    #: The config section of the term: a :class:`TermConfig` subclass.
    Config: ClassVar[type[TermConfig]] = TermConfig

    @classmethod
    def from_config(cls, config: TermConfig, *, model: nn.Module) -> ObjectiveTerm:
        """Build the term from its config section.

        The default passes every field except ``weight`` to the constructor by name; override it
        when the term needs more (a file to load, the backbone's width from ``model``).
        """
        values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                  if f.name != "weight"}
        return cls(**values)

    def forward(self, model: nn.Module, batch: MaskedBatch
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss, logs)``: this micro-batch's share of the term (scalar float32) and extra
        detached tensors to log."""
        raise NotImplementedError

    def describe(self) -> str:
        """What the term scores, in a few words for the model card."""
        raise NotImplementedError

    def summarize(self, logs: dict[str, torch.Tensor]) -> dict[str, float]:
        """Turn this term's ``logs``, summed over micro-batches and ranks, into logged numbers.

        The default logs each sum as it is; override it for logs that are counts (a code
        histogram becomes codebook usage).
        """
        return {name: float(value) for name, value in logs.items()}


_TERMS: dict[str, type[ObjectiveTerm]] = {}


def register_term(name: str):
    """Class decorator: make ``name`` (a key of ``objective.terms``) build this term class."""

    def register(cls: type[ObjectiveTerm]) -> type[ObjectiveTerm]:
        if not name.isidentifier():
            raise ValueError(f"Objective term name {name!r} must be a Python identifier.")
        if name in _TERMS and _TERMS[name] is not cls:
            raise ValueError(f"An objective term named {name!r} is already registered "
                             f"({_TERMS[name].__name__}); pick another name.")
        if not (isinstance(cls, type) and issubclass(cls, ObjectiveTerm)):
            raise TypeError(f"register_term({name!r}): {cls!r} is not an ObjectiveTerm subclass.")
        if not (isinstance(cls.Config, type) and issubclass(cls.Config, TermConfig)):
            raise TypeError(f"register_term({name!r}): {cls.__name__}.Config must be a "
                            "TermConfig subclass (a dataclass with a weight).")
        _TERMS[name] = cls
        return cls

    return register


def list_terms() -> list[str]:
    """Names of the registered terms, sorted."""
    return sorted(_TERMS)


def term_class(name: str) -> type[ObjectiveTerm]:
    """The term class registered as ``name``; ``ValueError`` listing the known names otherwise."""
    if name not in _TERMS:
        raise ValueError(f"Unknown objective term {name!r}; registered terms: "
                         f"{', '.join(list_terms())}.")
    return _TERMS[name]
