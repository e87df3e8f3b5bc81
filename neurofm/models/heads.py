"""Heads on top of backbone features ``[B, C, N, D]``: pooling, classification, reconstruction.

Pooling only ever looks at real rows (``chan_valid``) and real patches (``patch_valid``), so zero
padding added by batching never changes a window's embedding.
"""

from __future__ import annotations

import torch
from torch import nn

from neurofm.nn import attend


def token_weights(
    feats: torch.Tensor, chan_valid: torch.Tensor | None, patch_valid: torch.Tensor | None
) -> torch.Tensor:
    """``[B, C, N]`` float: 1 for tokens of a real channel and a valid patch, else 0."""
    b, c, n, _ = feats.shape
    w = feats.new_ones(b, c, n)
    if chan_valid is not None:
        w = w * chan_valid[:, :, None].to(w.dtype)
    if patch_valid is not None:
        w = w * patch_valid[:, None, :].to(w.dtype)
    return w


def masked_mean_pool(
    feats: torch.Tensor,
    chan_valid: torch.Tensor | None = None,
    patch_valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of ``feats [B, C, N, D]`` over real channels and valid patches -> ``[B, D]``.

    Parameters
    ----------
    feats : Tensor ``[B, C, N, D]``
    chan_valid : Tensor ``[B, C]`` bool or None (None = all channels real)
    patch_valid : Tensor ``[B, N]`` bool or None (None = all patches valid)
    """
    w = token_weights(feats, chan_valid, patch_valid)
    total = (feats * w[..., None]).sum(dim=(1, 2))
    return total / w.sum(dim=(1, 2)).clamp_min(1.0)[:, None]


class AttentionPool(nn.Module):
    """Learned-query attention pooling over the valid tokens ``[B, C, N, D] -> [B, D]``.

    Parameters
    ----------
    dim : int
        Feature width ``D``.
    n_heads : int
        Heads of the pooling attention (each reads ``D / n_heads`` features).
    """

    def __init__(self, dim: int, n_heads: int = 1):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"AttentionPool: dim {dim} is not divisible by n_heads {n_heads}.")
        self.n_heads = n_heads
        self.query = nn.Parameter(torch.randn(dim) * dim**-0.5)
        self.norm = nn.LayerNorm(dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self,
        feats: torch.Tensor,
        chan_valid: torch.Tensor | None = None,
        patch_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b, c, n, d = feats.shape
        h = self.n_heads
        kv = self.key_value(self.norm(feats)).reshape(b, c * n, 2, h, d // h)
        k, v = (t.transpose(1, 2) for t in kv.unbind(2))  # [B, H, C*N, e]
        q = self.query.reshape(1, h, 1, d // h).expand(b, h, 1, d // h).to(k.dtype)
        valid = token_weights(feats, chan_valid, patch_valid).reshape(b, c * n) > 0
        pooled = attend(q, k, v, valid)  # [B, H, 1, e]
        return self.out(pooled.reshape(b, d))


class ClassificationHead(nn.Module):
    """Pool features and map them to class logits ``[B, C, N, D] -> [B, n_classes]``.

    Parameters
    ----------
    dim : int
        Feature width ``D``.
    n_classes : int
        Number of outputs.
    pooling : {"mean", "attention"}
        Masked mean over real tokens, or :class:`AttentionPool`.
    dropout : float
        Dropout before the linear layer.
    """

    def __init__(self, dim: int, n_classes: int, pooling: str = "mean", dropout: float = 0.0):
        super().__init__()
        if pooling not in ("mean", "attention"):
            raise ValueError(f"pooling must be 'mean' or 'attention'; got {pooling!r}.")
        self.pool = AttentionPool(dim) if pooling == "attention" else None
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(dim, n_classes)

    def forward(
        self,
        feats: torch.Tensor,
        chan_valid: torch.Tensor | None = None,
        patch_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.pool is None:
            pooled = masked_mean_pool(feats, chan_valid, patch_valid)
        else:
            pooled = self.pool(feats, chan_valid, patch_valid)
        return self.linear(self.dropout(self.norm(pooled)))


class PatchMLPHead(nn.Module):
    """An MLP over every patch representation: ``[B, C, N, D] -> [B, n_outputs]``.

    The features of all ``C`` channels x ``N`` patches are concatenated (tokens of padding
    channels and padded patches zeroed) and mapped by ``Linear(C*N*D, N*D) - ELU - Dropout -
    Linear(N*D, D) - ELU - Dropout - Linear(D, n_outputs)``: the classifier CBraMod fine-tunes
    on its downstream tasks (Wang et al., ICLR 2025), which keeps which channel and which moment
    carries the effect (a mean over channels throws laterality away). One fixed montage and
    trial length: ``C`` and ``N`` are fixed when the head is built.

    Parameters
    ----------
    dim : int
        Feature width ``D``.
    n_channels : int
        Rows ``C`` of the backbone's output.
    n_patches : int
        Patches ``N`` per trial.
    n_outputs : int
    dropout : float
        Dropout after each hidden layer.
    """

    def __init__(self, dim: int, n_channels: int, n_patches: int, n_outputs: int,
                 dropout: float = 0.1):
        super().__init__()
        self.n_channels, self.n_patches = n_channels, n_patches
        hidden = n_patches * dim
        self.mlp = nn.Sequential(
            nn.Linear(n_channels * n_patches * dim, hidden), nn.ELU(), nn.Dropout(dropout),
            nn.Linear(hidden, dim), nn.ELU(), nn.Dropout(dropout),
            nn.Linear(dim, n_outputs))

    def forward(
        self,
        feats: torch.Tensor,
        chan_valid: torch.Tensor | None = None,
        patch_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if feats.shape[1:3] != (self.n_channels, self.n_patches):
            raise ValueError(f"This head was built for {self.n_channels} channels x "
                             f"{self.n_patches} patches; got {tuple(feats.shape[1:3])}. The "
                             "patch MLP needs one fixed montage and trial length.")
        w = token_weights(feats, chan_valid, patch_valid)
        return self.mlp((feats * w[..., None]).flatten(1))


class ReconstructionHead(nn.Module):
    """Predict each raw patch from its token ``[B, C, N, D] -> [B, C, N, P]``.

    A single linear map, as in CBraMod (whose ``proj_out`` it loads).

    Parameters
    ----------
    dim : int
        Feature width ``D``.
    patch_size : int
        Samples per patch ``P``.
    """

    def __init__(self, dim: int, patch_size: int):
        super().__init__()
        self.proj = nn.Linear(dim, patch_size)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.proj(feats)
