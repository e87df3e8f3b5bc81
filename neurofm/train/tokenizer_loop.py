"""Training and evaluation loops of the neural tokenizer, readable top to bottom.

(Moved from ``neurofm.tokenizer.train`` in neurofm 0.2; ``TokenizerTrainConfig`` was called
``TrainConfig`` there.)

Batches are collated window dicts ``{"x": [B, C, N, P], "sensors": SensorBatch, ...}`` (what
``neurofm.data.collate_windows`` yields) from any iterable; an iterable that can be iterated
again (a list, a DataLoader) is cycled until ``steps`` are done. Under ``torch.distributed`` the
model is wrapped in DDP; the quantiser keeps its codebooks identical on every rank itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

from neurofm.progress import progress_bar
from neurofm.tokenizer.model import NeuralTokenizer, fourier_targets, relative_error
from neurofm.tokenizer.quantize import codebook_stats
from neurofm.train.schedule import warmup_cosine


@dataclass
class TokenizerTrainConfig:
    """Optimisation settings of :func:`train_tokenizer`.

    ``lr`` peaks after ``warmup_steps`` of linear warm-up and decays with a cosine to
    ``min_lr_ratio * lr`` at ``steps`` (:func:`~neurofm.train.schedule.warmup_cosine`).
    """

    steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    log_every: int = 50

    def lr_at(self, step: int) -> float:
        """Learning rate of optimizer step ``step`` (0-based)."""
        return self.lr * warmup_cosine(step, total_steps=self.steps,
                                       warmup_steps=self.warmup_steps,
                                       min_ratio=self.min_lr_ratio)


def _repeat(batches: Iterable[dict]) -> Iterator[dict]:
    """Yield batches forever from a re-iterable, or once through a one-shot iterator."""
    one_shot = iter(batches) is batches
    while True:
        n = 0
        for batch in batches:
            n += 1
            yield batch
        if n == 0:
            raise ValueError("The tokenizer's training data yielded no batch; check the corpus "
                             "or data source.")
        if one_shot:
            return


def _unpack(batch: dict, device) -> tuple[torch.Tensor, object]:
    try:
        x, sensors = batch["x"], batch["sensors"]
    except (KeyError, TypeError):
        raise ValueError("Tokenizer batches must be dicts with 'x' [B, C, N, P] and 'sensors' "
                         "(a SensorBatch), as collate_windows makes them.") from None
    return x.to(device), sensors.to(device)


def train_tokenizer(model: NeuralTokenizer, batches: Iterable[dict],
                    config: TokenizerTrainConfig | None = None, *, device: str | torch.device = "cpu",
                    progress: bool = True,
                    on_log: Callable[[dict], None] | None = None) -> list[dict]:
    """Train ``model`` for ``config.steps`` optimizer steps.

    Parameters
    ----------
    model : NeuralTokenizer
    batches : iterable of dict
        Collated windows ``{"x": [B, C, N, P], "sensors": SensorBatch}``.
    config : TokenizerTrainConfig
    device : str or torch.device
    progress : bool
        Show a tqdm bar (rank 0 only).
    on_log : callable or None
        Called with each log record (also returned).

    Returns
    -------
    list of dict
        One record every ``log_every`` steps and at the end: ``step``, ``lr``, ``loss`` and
        its terms (means since the previous record), ``usage`` and ``perplexity`` of the codes
        chosen since the previous record (level 0), ``windows_per_s``.
    """
    config = config or TokenizerTrainConfig()
    model.to(device).train()
    distributed = dist.is_available() and dist.is_initialized()
    net = model
    if distributed:
        device = torch.device(device)
        net = torch.nn.parallel.DistributedDataParallel(
            model, broadcast_buffers=False,
            device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    rank0 = not distributed or dist.get_rank() == 0
    bar = progress_bar(total=config.steps, desc="tokenizer", disable=not (progress and rank0))
    history, sums, counts = [], {}, torch.zeros(model.config.codebook_size)
    n_windows, n_since, t0 = 0, 0, time.perf_counter()
    data = _repeat(batches)
    for step in range(config.steps):
        try:
            batch = next(data)
        except StopIteration:
            break
        x, sensors = _unpack(batch, device)
        for group in optimizer.param_groups:
            group["lr"] = config.lr_at(step)
        out = net(x, sensors)
        if not torch.isfinite(out.loss):
            raise FloatingPointError(f"Tokenizer loss became {out.loss.item()} at step {step}; "
                                     "lower the learning rate or check the data scale.")
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        terms = {"loss": out.loss, **out.losses}
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach())
        counts += out.quantizer.counts[0].cpu().float()
        n_windows += x.shape[0]
        n_since += 1
        bar.update(1)
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            usage, perplexity = codebook_stats(counts)
            elapsed = time.perf_counter() - t0
            record = {"step": step + 1, "lr": config.lr_at(step),
                      **{k: v / n_since for k, v in sums.items()},
                      "usage": usage, "perplexity": perplexity,
                      "windows_per_s": n_windows / elapsed}
            history.append(record)
            bar.set_postfix(loss=f"{record['loss']:.4f}", usage=f"{usage:.2f}",
                            refresh=False)
            if on_log is not None:
                on_log(record)
            sums, counts = {}, torch.zeros_like(counts)
            n_windows, n_since, t0 = 0, 0, time.perf_counter()
    bar.close()
    return history


@torch.no_grad()
def evaluate_tokenizer(model: NeuralTokenizer, batches: Iterable[dict], *,
                       device: str | torch.device = "cpu",
                       mean_amplitude: torch.Tensor | None = None) -> dict:
    """Held-out reconstruction error and codebook statistics.

    Parameters
    ----------
    model : NeuralTokenizer
    batches : iterable of dict
        Collated windows, iterated once.
    mean_amplitude : Tensor ``[F]`` or None
        A mean amplitude spectrum (:func:`mean_amplitude_spectrum` of the training data); when
        given, the result also holds ``baseline_amplitude``, the relative amplitude error of
        predicting it for every patch (compare with ``amplitude``).

    Returns
    -------
    dict
        Mean per-batch ``loss`` terms (``amplitude``, ``phase``, ``raw``, ``commitment``),
        ``usage`` and ``perplexity`` per level (``usage`` / ``perplexity`` for level 0,
        ``usage_level{l}`` for the others), ``n_windows``.
    """
    was_training = model.training
    model.to(device).eval()
    sums, n_batches, n_windows = {}, 0, 0
    counts = torch.zeros(model.config.n_levels, model.config.codebook_size)
    for batch in batches:
        x, sensors = _unpack(batch, device)
        out = model(x, sensors)
        terms = {"loss": out.loss, **out.losses}
        if mean_amplitude is not None:
            amplitude, _ = fourier_targets(x)
            baseline = mean_amplitude.to(amplitude).expand_as(amplitude)
            terms["baseline_amplitude"] = relative_error(baseline, amplitude, sensors.chan_mask)
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach())
        counts += out.quantizer.counts.cpu().float()
        n_batches += 1
        n_windows += x.shape[0]
    model.train(was_training)
    if n_batches == 0:
        raise ValueError("No held-out batch to evaluate the tokenizer on.")
    result = {name: value / n_batches for name, value in sums.items()}
    for level in range(counts.shape[0]):
        usage, perplexity = codebook_stats(counts[level])
        suffix = "" if level == 0 else f"_level{level}"
        result[f"usage{suffix}"], result[f"perplexity{suffix}"] = usage, perplexity
    result["n_windows"] = n_windows
    return result


@torch.no_grad()
def mean_amplitude_spectrum(batches: Iterable[dict]) -> torch.Tensor:
    """Mean Fourier amplitude ``[F]`` over all real-channel patches of ``batches``."""
    total, n = None, 0
    for batch in batches:
        amplitude, _ = fourier_targets(batch["x"])
        real = amplitude[batch["sensors"].chan_mask.to(amplitude.device)]  # [R, N, F]
        part = real.sum(dim=(0, 1))
        total = part if total is None else total + part
        n += real.shape[0] * real.shape[1]
    if not n:
        raise ValueError("No real channel in the batches to average a spectrum over.")
    return total / n

