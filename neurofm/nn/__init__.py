"""Network parts shared by the tokenizer and the backbones (below both in the import graph).

:mod:`~neurofm.nn.attention`: :func:`attend` (fused SDPA, xformers on CUDA), ``SelfAttention``,
``MaskedAttention``; :mod:`~neurofm.nn.layers`: cheap CPU dropout, ``FeedForward``, drop-path and
the fused residual add; :mod:`~neurofm.nn.scan`: the exact selective scans of the Mamba mixers
(Mamba-1 blocked, Mamba-2 as chunked matrix products) and their compile switch;
:mod:`~neurofm.nn.state`: state-dict key migration helpers (and the optimizer state of
parameters added since). The fused C kernels on CPU: :mod:`~neurofm.nn.cpu_kernels` builds
them, :mod:`~neurofm.nn.mamba_kernels`, :mod:`~neurofm.nn.dropout_kernels` and
:mod:`~neurofm.nn.attention_kernels` call them.
"""

from neurofm.nn.attention import MaskedAttention, SelfAttention, attend, reference_attention
from neurofm.nn.layers import (
    Dropout,
    DropPath,
    FeedForward,
    add_residual,
    drop_path_rates,
    dropout,
    keep_mask,
)
from neurofm.nn.state import rename_keys, upgrade_nested_state, upgrade_optimizer_state

__all__ = [
    "DropPath",
    "Dropout",
    "FeedForward",
    "MaskedAttention",
    "SelfAttention",
    "add_residual",
    "attend",
    "drop_path_rates",
    "dropout",
    "keep_mask",
    "reference_attention",
    "rename_keys",
    "upgrade_nested_state",
    "upgrade_optimizer_state",
]
