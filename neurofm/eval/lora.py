"""Low-rank adaptation (LoRA) of a backbone's linear layers for ``neurofm finetune --lora R``.

Each targeted ``nn.Linear`` ``y = W x + b`` becomes ``y = W x + b + (alpha / R) * B A x`` with
``A [R, in]`` (Kaiming-uniform) and ``B [out, R]`` (zeros), so the adapted model starts exactly
equal to the original; ``W`` and ``b`` stay frozen and only ``A``, ``B`` (and the task head) train.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: Names of the linear layers adapted by default: attention output projections, feed-forward
#: layers, Mamba input/output projections (not ``dt_proj``, whose weight Mamba reads directly).
DEFAULT_TARGETS = ("out_proj", "linear1", "linear2", "in_proj")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable rank-``R`` update.

    Parameters
    ----------
    base : nn.Linear
        The layer to adapt (its parameters are frozen in place).
    rank : int
        ``R``, rank of the update.
    alpha : float, optional
        Scale numerator (default ``rank``, i.e. scale 1).
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be at least 1; got {rank}.")
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features,
                                               device=base.weight.device))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank,
                                               device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.scale = (alpha if alpha is not None else rank) / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [..., in] -> [..., out]``."""
        return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale


def add_lora(module: nn.Module, rank: int, *, alpha: float | None = None,
             targets: tuple[str, ...] = DEFAULT_TARGETS) -> list[str]:
    """Freeze ``module`` and wrap its ``nn.Linear`` children named in ``targets`` with LoRA.

    Returns
    -------
    list of str
        Qualified names of the adapted layers.

    Raises
    ------
    ValueError
        If no linear layer matches ``targets``.
    """
    for p in module.parameters():
        p.requires_grad_(False)
    adapted = []
    for parent_name, parent in list(module.named_modules()):
        for name, child in list(parent.named_children()):
            if name in targets and isinstance(child, nn.Linear):
                setattr(parent, name, LoRALinear(child, rank, alpha))
                adapted.append(f"{parent_name}.{name}" if parent_name else name)
    if not adapted:
        raise ValueError(f"No linear layer named {list(targets)} in {type(module).__name__}; "
                         "LoRA cannot adapt this backbone (use --freeze partial:N).")
    return adapted
