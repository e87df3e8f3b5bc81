"""The ``objective`` section of a pretraining config: masking, and the terms with their weights.

::

    objective:
      mask_ratio: 0.5
      mask_mode: bernoulli
      terms:
        reconstruction: {weight: 1.0, loss: mse, target: spectrum}
        code_prediction: {weight: 0.5, tokenizer: runs/tok/tokenizer}

``terms`` lists every term of the objective, each under its registered name
(:func:`~neurofm.objectives.terms.list_terms`) with its config section; a term not listed, or
listed with weight 0, is off.

neurofm 0.1 wrote the two built-in terms as flat keys of the section (``reconstruction_weight``,
``reconstruction_loss``, ``code_prediction_weight``, ``tokenizer``, ...; see
:data:`FLAT_TERM_KEYS`). They are still read, for one release, and mapped onto ``terms`` by
:func:`terms_from_flat_keys`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from neurofm.objectives.masking import MASK_MODES
from neurofm.objectives.reconstruction import ReconstructionConfig


@dataclass
class ObjectiveConfig:
    """Masking and loss terms (see :mod:`neurofm.objectives`).

    Attributes
    ----------
    mask_ratio, mask_mode, mask_block_size
        See :class:`~neurofm.objectives.masking.TokenMasking`.
    terms : dict
        ``{term name: its config section}`` (a :class:`~neurofm.objectives.terms.TermConfig`
        dataclass per term); default: masked patch reconstruction alone.
    """

    choices: ClassVar[dict[str, tuple]] = {"mask_mode": MASK_MODES}

    mask_ratio: float = 0.5
    mask_mode: str = "bernoulli"
    mask_block_size: int = 4
    terms: dict = field(default_factory=lambda: {"reconstruction": ReconstructionConfig()})


#: The 0.1 spelling: flat key of the ``objective`` section -> ``(term, field of its section)``.
FLAT_TERM_KEYS = {
    "reconstruction_weight": ("reconstruction", "weight"),
    "reconstruction_loss": ("reconstruction", "loss"),
    "visible_weight": ("reconstruction", "visible_weight"),
    "smooth_l1_beta": ("reconstruction", "smooth_l1_beta"),
    "reconstruction_target": ("reconstruction", "target"),
    "spectral_weight": ("reconstruction", "spectral_weight"),
    "spectral_phase_weight": ("reconstruction", "spectral_phase_weight"),
    "code_prediction_weight": ("code_prediction", "weight"),
    "tokenizer": ("code_prediction", "tokenizer"),
}


def terms_from_flat_keys(flat: dict) -> dict[str, dict]:
    """The ``terms`` of a section written with 0.1's flat keys (values as given).

    As in 0.1, reconstruction is on unless ``reconstruction_weight`` is 0, and code prediction
    is off unless ``code_prediction_weight`` is above 0.
    """
    terms: dict[str, dict] = {"reconstruction": {}}
    for key, value in flat.items():
        term, name = FLAT_TERM_KEYS[key]
        terms.setdefault(term, {})[name] = value
    if "code_prediction" in terms:
        terms["code_prediction"].setdefault("weight", 0.0)
    return terms
