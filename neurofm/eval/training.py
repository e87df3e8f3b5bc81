"""One supervised training loop with early stopping, shared by fine-tuning and the
supervised baselines (EEGNet, ShallowFBCSPNet).

The loop trains on the fit indices, evaluates the loss on held-out validation indices after every
epoch, keeps the weights of the best validation epoch and stops after ``patience`` epochs without
improvement. Classification uses cross-entropy with label smoothing; regression uses MSE.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
from torch import nn

from neurofm.progress import progress_bar
from neurofm.strict import from_dict
from neurofm.train.schedule import warmup_cosine


@dataclass
class FinetuneConfig:
    """Optimisation settings of fine-tuning and the supervised baselines (``finetune/*.yaml``
    ``train:`` section; called ``TrainConfig`` before neurofm 0.2).

    Attributes
    ----------
    epochs : int
        Maximum number of epochs.
    batch_size : int
    min_steps_per_epoch : int
        Optimizer steps an epoch has at least: a fit set smaller than
        ``min_steps_per_epoch * batch_size`` trials is cycled (reshuffled each pass) until the
        epoch has that many steps, like timm's ``epoch_repeats``. Without it, 18 calibration
        trials make one step per epoch, and 10 epochs cannot move a network off chance.
    lr_backbone, lr_head : float
        AdamW learning rates of the pretrained backbone and of the new head.
    weight_decay : float
    label_smoothing : float
        Cross-entropy label smoothing (classification).
    patience : int
        Epochs without validation improvement before stopping (validation runs once per epoch).
    val_fraction : float
        Share of the training side held out for early stopping (whole subjects when it has 3+).
    warmup_epochs : int
        Linear learning-rate warm-up, then cosine decay to 0 over ``epochs``.
    grad_clip : float or None
    """

    epochs: int = 30
    batch_size: int = 32
    min_steps_per_epoch: int = 20
    lr_backbone: float = 1e-4
    lr_head: float = 1e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    patience: int = 5
    val_fraction: float = 0.2
    warmup_epochs: int = 1
    grad_clip: float | None = 1.0

    @classmethod
    def from_dict(cls, d: dict | None) -> FinetuneConfig:
        """Build from a ``train:`` section, refusing unknown keys."""
        return from_dict(cls, d, where="train settings")


def __getattr__(name: str):
    """``TrainConfig``, the name of :class:`FinetuneConfig` before 0.2 (removed in 0.3)."""
    if name == "TrainConfig":
        warnings.warn("neurofm.eval.training.TrainConfig is now FinetuneConfig; the old name "
                      "will be removed in neurofm 0.3.", DeprecationWarning, stacklevel=2)
        return FinetuneConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class TrainHistory:
    """Per-epoch losses and where training stopped."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    def to_dict(self) -> dict:
        return {"train_loss": self.train_loss, "val_loss": self.val_loss,
                "best_epoch": self.best_epoch, "stopped_early": self.stopped_early}


def _loss_fn(regression: bool, label_smoothing: float) -> Callable:
    if regression:
        return lambda out, y: nn.functional.mse_loss(out.reshape(-1), y.float())
    return lambda out, y: nn.functional.cross_entropy(out, y.long(),
                                                      label_smoothing=label_smoothing)


class TrialArrays(torch.utils.data.Dataset):
    """Per-trial inputs (first dimension = trial) as a map-style dataset read a batch at a time.

    ``arrays`` are ndarrays or array-likes that read on demand (windows left on disk,
    :class:`~neurofm.eval.window_inputs.RecordingInputs`): a batch is one ``a[index]`` read per
    array (``__getitems__``), not one read per trial.
    """

    def __init__(self, arrays: Sequence):
        self.arrays = list(arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitems__(self, index) -> tuple[torch.Tensor, ...]:
        index = np.asarray(index)
        return tuple(torch.from_numpy(np.ascontiguousarray(a[index])) for a in self.arrays)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[0] for t in self.__getitems__([i]))


def _whole_batch(batch):
    """``collate_fn`` of :class:`TrialArrays`: its batches come out whole."""
    return batch


def _shuffled(inputs, index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``index`` in random order; inputs read from recordings shuffle within blocks of
    recordings (``inputs.shuffled``) so that each recording is read about once per pass."""
    if hasattr(inputs, "shuffled"):
        return inputs.shuffled(index, rng)
    return rng.permutation(index)


def _batches(arrays: Sequence, index: np.ndarray, batch_size: int, device,
             shuffle_rng: np.random.Generator | None = None):
    """Batches of ``index`` (sorted within each batch) through a ``DataLoader``."""
    order = index if shuffle_rng is None else _shuffled(arrays[0], index, shuffle_rng)
    batches = [np.sort(order[i:i + batch_size]) for i in range(0, len(order), batch_size)]
    # its own generator: the loader's base seed must not draw from torch's global one, which
    # drives dropout and so the training itself
    loader = torch.utils.data.DataLoader(TrialArrays(arrays), batch_sampler=batches,
                                         collate_fn=_whole_batch, generator=torch.Generator())
    for batch in loader:
        yield tuple(t.to(device) for t in batch)


def _epoch_batches(arrays: Sequence[np.ndarray], index: np.ndarray, batch_size: int,
                   min_steps: int, device, rng: np.random.Generator):
    """One training epoch: shuffled passes over ``index`` until ``min_steps`` batches were
    yielded (a full pass at least; the last pass may stop part-way)."""
    steps = 0
    while True:
        for batch in _batches(arrays, index, batch_size, device, rng):
            yield batch
            steps += 1
            if steps >= min_steps and steps >= math.ceil(len(index) / batch_size):
                return


def steps_per_epoch(n_fit: int, config: FinetuneConfig) -> int:
    """Optimizer steps in one epoch over ``n_fit`` trials (see ``min_steps_per_epoch``)."""
    return max(math.ceil(n_fit / config.batch_size), config.min_steps_per_epoch, 1)


def train_model(module: nn.Module, forward: Callable, arrays: Sequence[np.ndarray],
                y: np.ndarray, fit_idx: np.ndarray, val_idx: np.ndarray,
                param_groups: list[dict], config: FinetuneConfig, *, regression: bool = False,
                seed: int = 0, device="cpu", desc: str = "training") -> TrainHistory:
    """Train ``module`` in place; on return it holds the best-validation weights.

    Parameters
    ----------
    module : nn.Module
        The network being trained (switched to train/eval mode by the loop).
    forward : callable
        ``forward(*batch_tensors) -> outputs`` (logits ``[B, K]`` or predictions ``[B]``/``[B, 1]``).
    arrays : sequence of ndarray or array-like
        Per-trial inputs (first dimension = trial), read into batches in this order through a
        ``torch.utils.data.DataLoader`` (:class:`TrialArrays`); array-likes that read windows
        from disk are shuffled in blocks of recordings.
    y : ndarray, shape [n]
        Targets of all trials.
    fit_idx, val_idx : ndarray of int
        Trials to train on and to early-stop on (disjoint, both from the fold's training side).
    param_groups : list of dict
        AdamW parameter groups with their ``lr`` (backbone and head separately).
    """
    if len(fit_idx) == 0 or len(val_idx) == 0:
        raise ValueError("Training needs non-empty fit and validation sets; lower val_fraction "
                         "or use more training trials.")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    loss_fn = _loss_fn(regression, config.label_smoothing)
    optimiser = torch.optim.AdamW(param_groups, weight_decay=config.weight_decay)
    epoch_steps = steps_per_epoch(len(fit_idx), config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, partial(
        warmup_cosine, total_steps=max(1, config.epochs * epoch_steps),
        warmup_steps=config.warmup_epochs * epoch_steps, min_ratio=0.0))
    params = [p for g in param_groups for p in g["params"]]
    data = list(arrays) + [y]
    history = TrainHistory()
    best_loss, best_state, waited = math.inf, None, 0
    for epoch in progress_bar(range(config.epochs), desc=desc, leave=False):
        module.train()
        losses = []
        for *inputs, target in _epoch_batches(data, fit_idx, config.batch_size, epoch_steps,
                                              device, rng):
            loss = loss_fn(forward(*inputs), target)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimiser.step()
            scheduler.step()
            losses.append(loss.item())
        val = evaluate_loss(module, forward, data, val_idx, loss_fn, config.batch_size, device)
        history.train_loss.append(float(np.mean(losses)))
        history.val_loss.append(val)
        if not math.isfinite(history.train_loss[-1]):
            raise RuntimeError(f"{desc}: training loss became {history.train_loss[-1]} at epoch "
                               f"{epoch}; lower the learning rates.")
        if val < best_loss - 1e-6:
            best_loss, waited, history.best_epoch = val, 0, epoch
            best_state = copy.deepcopy(module.state_dict())
        else:
            waited += 1
            if waited >= config.patience:
                history.stopped_early = True
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return history


@torch.no_grad()
def evaluate_loss(module, forward, data, index, loss_fn, batch_size, device) -> float:
    """Mean loss over ``index`` in eval mode (``data`` = inputs + targets)."""
    module.eval()
    total, count = 0.0, 0
    for *inputs, target in _batches(data, index, batch_size, device):
        total += loss_fn(forward(*inputs), target).item() * len(target)
        count += len(target)
    return total / max(count, 1)


@torch.no_grad()
def predict(module: nn.Module, forward: Callable, arrays: Sequence[np.ndarray],
            index: np.ndarray, *, regression: bool = False, batch_size: int = 64,
            device="cpu") -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions ``[n]`` and class probabilities ``[n, K]`` (None for regression)."""
    module.eval()
    outs = [forward(*batch).float().cpu() for batch in _batches(arrays, index, batch_size, device)]
    out = torch.cat(outs)
    if regression:
        return out.reshape(-1).numpy(), None
    proba = out.softmax(-1).numpy()
    return proba.argmax(-1), proba
