"""Fine-tuning a backbone with a new head: full, head-only or the last N blocks.

``--freeze none`` trains everything; ``backbone`` trains only the head (a linear probe trained by
gradient descent, with attention pooling when asked); ``partial:N`` trains the last ``N`` of the
blocks the backbone declares (``BrainEncoder.blocks``) plus everything registered after them
(final norm) and the head. Backbone and head have separate learning rates
(:class:`~neurofm.eval.training.FinetuneConfig`). Early stopping uses the fold's own validation
part (an official split with ``val``), else a validation split taken from the fold's training
subjects only.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from neurofm.eval.lora import add_lora
from neurofm.eval.protocols import Fold, fit_and_validation
from neurofm.eval.training import FinetuneConfig, predict, train_model
from neurofm.models.heads import ClassificationHead, PatchMLPHead
from neurofm.sensors import SensorBatch, SensorLayout


class ChannelFlattenHead(nn.Module):
    """Mean over valid patches per channel, channels concatenated, then linear:
    ``[B, C, N, D] -> [B, n_outputs]`` (fixed montage of ``n_channels`` rows)."""

    def __init__(self, dim: int, n_channels: int, n_outputs: int, dropout: float = 0.0):
        super().__init__()
        self.n_channels = n_channels
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(n_channels * dim, n_outputs)

    def forward(self, feats: torch.Tensor, chan_valid: torch.Tensor | None = None,
                patch_valid: torch.Tensor | None = None) -> torch.Tensor:
        if feats.shape[1] != self.n_channels:
            raise ValueError(f"This head was built for {self.n_channels} channels; got "
                             f"{feats.shape[1]}. Per-channel pooling needs one fixed montage.")
        if patch_valid is None:
            pooled = feats.mean(2)
        else:
            w = patch_valid[:, None, :, None].to(feats.dtype)
            pooled = (feats * w).sum(2) / w.sum(2).clamp_min(1.0)
        return self.linear(self.dropout(self.norm(pooled)).flatten(1))


class EncoderWithHead(nn.Module):
    """Backbone + head: ``x [B, C, N, P] -> [B, n_outputs]``.

    ``pooling`` ``"mean"`` / ``"attention"`` use :class:`ClassificationHead`; ``"channels"``
    uses :class:`ChannelFlattenHead` and needs ``n_channels`` (output rows of the backbone);
    ``"patches"`` uses :class:`~neurofm.models.heads.PatchMLPHead` (CBraMod's classifier over
    every patch) and needs ``n_channels`` and ``n_patches``.
    """

    def __init__(self, backbone: nn.Module, n_outputs: int, pooling: str = "mean",
                 dropout: float = 0.1, n_channels: int | None = None,
                 n_patches: int | None = None):
        super().__init__()
        self.backbone = backbone
        if pooling in ("channels", "patches") and n_channels is None:
            raise ValueError(f"pooling={pooling!r} needs n_channels.")
        if pooling == "channels":
            self.head = ChannelFlattenHead(backbone.dim, n_channels, n_outputs, dropout)
        elif pooling == "patches":
            if n_patches is None:
                raise ValueError("pooling='patches' needs n_patches.")
            self.head = PatchMLPHead(backbone.dim, n_channels, n_patches, n_outputs, dropout)
        else:
            self.head = ClassificationHead(backbone.dim, n_outputs, pooling=pooling,
                                           dropout=dropout)
        #: When True the backbone stays in eval mode (no dropout, no BatchNorm statistics
        #: updates) even while the head trains.
        self.backbone_frozen = False

    def train(self, mode: bool = True) -> EncoderWithHead:
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self

    def forward(self, x: torch.Tensor, sensors: SensorBatch | None,
                patch_valid: torch.Tensor | None = None) -> torch.Tensor:
        feats = self.backbone(x, sensors, patch_valid=patch_valid)
        return self.head(feats, self.backbone.output_channel_mask(x, sensors), patch_valid)


def _declared_blocks(backbone: nn.Module) -> tuple[str, nn.ModuleList]:
    """The repeated blocks the backbone declares (``BrainEncoder.blocks``) and their name."""
    blocks = getattr(backbone, "blocks", None)
    names = [n for n, m in backbone.named_modules() if m is blocks and isinstance(m, nn.ModuleList)]
    if not names:
        raise ValueError(f"{type(backbone).__name__} declares no blocks (a `blocks` ModuleList); "
                         "use --freeze none or backbone.")
    return names[0], blocks


def apply_freeze(model: EncoderWithHead, spec: str) -> list[str]:
    """Set ``requires_grad`` for ``spec`` in ``{"none", "backbone", "partial:N"}``.

    Returns
    -------
    list of str
        Names of the trainable backbone parameters (empty for ``backbone``).
    """
    backbone = model.backbone
    if spec == "none":
        trainable = {n for n, _ in backbone.named_parameters()}
    elif spec == "backbone":
        trainable = set()
    elif spec.startswith("partial:"):
        try:
            n_blocks = int(spec.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"--freeze {spec!r}: expected partial:N with an integer N.") from None
        name, blocks = _declared_blocks(backbone)
        if not 1 <= n_blocks <= len(blocks):
            raise ValueError(f"--freeze partial:{n_blocks}: the backbone has {len(blocks)} blocks "
                             f"({name}); choose N between 1 and {len(blocks)}.")
        first = len(blocks) - n_blocks
        prefixes = tuple(f"{name}.{i}." for i in range(first, len(blocks)))
        # Parameters registered after the block list (final norm) train too.
        order = [n for n, _ in backbone.named_parameters()]
        last_block = max(i for i, n in enumerate(order) if n.startswith(f"{name}."))
        trainable = {n for i, n in enumerate(order) if n.startswith(prefixes) or i > last_block}
    else:
        raise ValueError(f"Unknown --freeze {spec!r}; expected none, backbone or partial:N.")
    for n, p in backbone.named_parameters():
        p.requires_grad_(n in trainable)
    for p in model.head.parameters():
        p.requires_grad_(True)
    model.backbone_frozen = not trainable
    return sorted(trainable)


def finetune_fold(backbone: nn.Module, x: np.ndarray, patch_valid: np.ndarray,
                  sensors: SensorLayout, y: np.ndarray, subjects: np.ndarray, fold: Fold, *,
                  n_outputs: int, regression: bool, freeze: str, config: FinetuneConfig,
                  pooling: str = "mean", dropout: float = 0.1, lora_rank: int | None = None,
                  seed: int = 0, device="cpu") -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Fine-tune a copy of ``backbone`` on ``fold.train`` and predict ``fold.test``.

    Parameters
    ----------
    x : ndarray of float32, shape [n, C, N, P]
    patch_valid : ndarray of bool, shape [n, N]
    y : ndarray, shape [n]
    subjects : ndarray of str, shape [n]
    lora_rank : int, optional
        Train rank-``R`` LoRA adapters of the backbone's linear layers (and the head) instead of
        the layers selected by ``freeze``, which must then be ``"backbone"``.

    Returns
    -------
    pred : ndarray, shape [n_test]
    proba : ndarray, shape [n_test, K] or None
    info : dict
        Training history, trainable parameter count, validation size.
    """
    torch.manual_seed(seed)
    rows = getattr(backbone, "config", {}).get("n_latent") or len(sensors)
    model = EncoderWithHead(copy.deepcopy(backbone), n_outputs, pooling, dropout,
                            n_channels=rows, n_patches=x.shape[2]).to(device)
    trainable = apply_freeze(model, freeze)
    if lora_rank:
        if freeze != "backbone":
            raise ValueError("--lora trains adapters on a frozen backbone; use it with "
                             "--freeze backbone.")
        trainable = add_lora(model.backbone, lora_rank)
        model.backbone_frozen = False  # adapters train; dropout in the backbone is active
    fit_idx, val_idx = fit_and_validation(fold, y, subjects, fraction=config.val_fraction,
                                          seed=seed, stratify=not regression)
    base = SensorBatch.from_layout(sensors).to(device)

    def forward(xb, pv):
        b = xb.shape[0]
        return model(xb, base.expand(b), patch_valid=pv)

    backbone_params = [p for p in model.backbone.parameters() if p.requires_grad]
    groups = [{"params": list(model.head.parameters()), "lr": config.lr_head}]
    if backbone_params:
        groups.append({"params": backbone_params, "lr": config.lr_backbone})
    history = train_model(model, forward, (x, patch_valid), y, fit_idx, val_idx, groups, config,
                          regression=regression, seed=seed, device=device,
                          desc=f"finetune {fold.name}")
    pred, proba = predict(model, forward, (x, patch_valid), fold.test, regression=regression,
                          batch_size=config.batch_size, device=device)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return pred, proba, {"history": history.to_dict(), "n_trainable": int(n_trainable),
                         "n_trainable_backbone_tensors": len(trainable),
                         "lora_rank": lora_rank,
                         "n_fit": int(fit_idx.size), "n_val": int(val_idx.size)}
