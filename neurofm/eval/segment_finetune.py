"""Fine-tuning on a :class:`~neurofm.datasets.segments.SegmentSet` (contacts or recordings).

Each recording has its own contacts, so a batch holds segments of one recording only; an
optimizer step accumulates the gradients of up to ``train.batch_size`` segments drawn across
the training recordings (shuffled every epoch). The model is the backbone plus

* ``target="channel"``: :class:`ContactHead` — each contact's features averaged over the
  segment's valid patches, layer-normed, then linear (``[B, C, N, D] -> [B, C, 2]``), the loss
  the class-balanced cross-entropy over the segment's labelled contacts;
* ``target="recording"``: the mean-pooled :class:`~neurofm.models.heads.ClassificationHead`
  (``[B, C, N, D] -> [B, 2]``), one label per segment.

``--freeze`` (``none``, ``backbone``, ``partial:N``) and ``--lora R`` act as for trials
(:func:`neurofm.eval.finetune.apply_freeze`, :func:`neurofm.eval.lora.add_lora`). AdamW with the
task config's ``lr_backbone`` / ``lr_head`` / ``weight_decay``, a constant rate, gradient
clipping; with a ``val`` part (official split) the epoch whose validation loss is lowest is
kept and training stops after ``patience`` epochs without improvement. A unit's score is the
mean over its segments of the positive-class probability (eval mode).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from neurofm.datasets.segments import SegmentSet
from neurofm.eval.finetune import apply_freeze
from neurofm.eval.lora import add_lora
from neurofm.eval.training import FinetuneConfig
from neurofm.models.heads import ClassificationHead


class ContactHead(nn.Module):
    """Per-contact classifier: ``[B, C, N, D] -> [B, C, n_outputs]`` (mean over valid
    patches, LayerNorm, dropout, linear)."""

    def __init__(self, dim: int, n_outputs: int = 2, dropout: float = 0.1):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(dim, n_outputs)

    def forward(self, feats: torch.Tensor, chan_valid=None, patch_valid=None) -> torch.Tensor:
        if patch_valid is None:
            pooled = feats.mean(2)
        else:
            w = patch_valid[:, None, :, None].to(feats.dtype)
            pooled = (feats * w).sum(2) / w.sum(2).clamp_min(1.0)
        return self.linear(self.dropout(self.norm(pooled)))


class SegmentClassifier(nn.Module):
    """Backbone + :class:`ContactHead` (contacts) or mean-pooled head (recordings)."""

    def __init__(self, backbone: nn.Module, per_contact: bool, dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.per_contact = per_contact
        self.head = ContactHead(backbone.dim, 2, dropout) if per_contact else \
            ClassificationHead(backbone.dim, 2, pooling="mean", dropout=dropout)
        #: Keep the backbone in eval mode while the head trains (set by ``apply_freeze``).
        self.backbone_frozen = False

    def train(self, mode: bool = True) -> SegmentClassifier:
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self

    def forward(self, x, sensors, patch_valid=None) -> torch.Tensor:
        feats = self.backbone(x, sensors, patch_valid=patch_valid)
        if self.per_contact:
            return self.head(feats, None, patch_valid)
        return self.head(feats, self.backbone.output_channel_mask(x, sensors), patch_valid)


def _unit_index(data: SegmentSet, units: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per recording: the positions in ``units`` and the contact rows (or ``[-1]``)."""
    rec = data.units["rec"].to_numpy(dtype=int)[units]
    contact = data.units["contact"].to_numpy(dtype=int)[units] if data.target == "channel" \
        else np.full(len(units), -1)
    return {int(r): (np.flatnonzero(rec == r), contact[rec == r]) for r in np.unique(rec)}


def _segment_loss(model, reader, device, r, onsets, rows, labels, weight):
    """Summed loss of the segments ``onsets`` of recording ``r`` and how many terms it has."""
    x, valid = reader.segments(r, onsets)
    xb, pv = torch.from_numpy(x).to(device), torch.from_numpy(valid).to(device)
    logits = model(xb, reader.sensors(r).to(device).expand(len(x)), patch_valid=pv)
    y = torch.as_tensor(labels, device=device)
    if model.per_contact:  # [k, C, 2] -> the labelled contacts of each segment
        logits = logits[:, torch.as_tensor(rows, device=device)]
        y = y.expand(len(x), -1)
    else:
        y = y.expand(len(x))
    loss = nn.functional.cross_entropy(logits.reshape(-1, 2), y.reshape(-1), weight=weight,
                                       reduction="sum")
    return loss, int(y.numel())


@torch.no_grad()
def _scores(model, reader, data, units, onsets, device) -> np.ndarray:
    """Mean positive-class probability over each unit's segments ``[len(units)]``."""
    model.eval()
    out = np.full(len(units), np.nan)
    for r, (where, rows) in _unit_index(data, units).items():
        x, valid = reader.segments(r, onsets[r])
        probs = []
        for i in range(0, len(x), 4):
            xb = torch.from_numpy(x[i:i + 4]).to(device)
            pv = torch.from_numpy(valid[i:i + 4]).to(device)
            logits = model(xb, reader.sensors(r).to(device).expand(len(xb)), patch_valid=pv)
            probs.append(torch.softmax(logits.float(), -1)[..., 1].cpu().numpy())
        p = np.concatenate(probs)  # [k, C] or [k]
        out[where] = p[:, rows].mean(0) if data.target == "channel" else p.mean()
    return out


def finetune_scorer(data: SegmentSet, reader, model_for_seed, settings):
    """Fine-tuning as a :data:`neurofm.eval.segment_eval.FitScore` (module docstring)."""
    config = FinetuneConfig.from_dict(settings.train)
    labels_all = data.units["label"].to_numpy(dtype=int)
    device = torch.device(settings.device)

    def fit_score(plan):
        torch.manual_seed(plan.seed)
        rng = np.random.default_rng([plan.seed, 11])
        backbone = copy.deepcopy(model_for_seed(plan.seed))
        model = SegmentClassifier(backbone, data.target == "channel").to(device)
        if settings.lora:
            if settings.freeze != "backbone":
                raise ValueError("--lora trains adapters on a frozen backbone; use it with "
                                 "--freeze backbone.")
            trainable = add_lora(model.backbone, settings.lora)
            model.backbone_frozen = False
            model.to(device)
        else:
            trainable = apply_freeze(model, settings.freeze)
        train = plan.fold.train[labels_all[plan.fold.train] >= 0]
        counts = np.bincount(labels_all[train], minlength=2)
        if (counts == 0).any():
            raise ValueError("the training side of this fold holds a single class.")
        weight = torch.as_tensor(counts.sum() / (2.0 * counts), dtype=torch.float32,
                                 device=device)
        index = _unit_index(data, train)
        items = [(r, float(t)) for r in index for t in plan.onsets[r]]
        val = None if plan.fold.val is None else \
            plan.fold.val[labels_all[plan.fold.val] >= 0]
        head = list(model.head.parameters())
        body = [p for p in model.backbone.parameters() if p.requires_grad]
        groups = [{"params": head, "lr": config.lr_head}]
        if body:
            groups.append({"params": body, "lr": config.lr_backbone})
        optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
        step = max(1, min(config.batch_size, len(items)))
        best, best_state, waited, history = np.inf, None, 0, []
        for _epoch in range(config.epochs):
            model.train()
            order = rng.permutation(len(items))
            for start in range(0, len(order), step):
                optimizer.zero_grad()
                total, terms = 0.0, 0
                for i in order[start:start + step]:
                    r, onset = items[i]
                    where, rows = index[r]
                    loss, n = _segment_loss(model, reader, device, r, [onset], rows,
                                            labels_all[train][where], weight)
                    loss.backward()
                    total, terms = total + float(loss.detach()), terms + n
                for p in model.parameters():
                    if p.grad is not None:
                        p.grad /= max(terms, 1)
                if config.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
            history.append(total / max(terms, 1))
            if val is not None and val.size:
                val_loss = _validation_loss(model, reader, data, val, plan.onsets, weight,
                                            device)
                if val_loss < best:
                    best, waited = val_loss, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    waited += 1
                    if waited >= config.patience:
                        break
        if best_state is not None:
            model.load_state_dict(best_state)
        train_scores = _scores(model, reader, data, train, plan.onsets, device)
        test_scores = _scores(model, reader, data, plan.fold.test, plan.onsets, device)
        extra = {} if val is None or not val.size else \
            {"val_scores": _scores(model, reader, data, val, plan.onsets, device)}
        return train_scores, test_scores, {**extra,
                                           "trainable_backbone_parameters": len(trainable),
                                           "epochs_run": len(history),
                                           "train_loss": history}

    return fit_score


@torch.no_grad()
def _validation_loss(model, reader, data, units, onsets, weight, device) -> float:
    model.eval()
    labels = data.units["label"].to_numpy(dtype=int)[units]
    total, terms = 0.0, 0
    for r, (where, rows) in _unit_index(data, units).items():
        loss, n = _segment_loss(model, reader, device, r, onsets[r], rows, labels[where],
                                weight)
        total, terms = total + float(loss), terms + n
    return total / max(terms, 1)
