"""The pretraining loop, readable top to bottom.

One function, :func:`train`, does the whole job on one process or on every rank of a ``torchrun``
launch: build the backbone and the objective, share them over the ranks (DDP or FSDP), resume from
the newest checkpoint, then for each step draw the global batch's masks, run forward and backward
on this rank's micro-batches (bf16 autocast optional), clip, step AdamW and the warmup + cosine
schedule, log, and checkpoint. At the end the backbone is exported as a Hub-style model directory.

Loss normalisation: each micro-batch contributes its share of the mean over the masked tokens of
the *global* batch (:class:`~neurofm.objectives.TokenCounts`), so the update is the same for any
world size and any gradient accumulation (up to float rounding).
"""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from neurofm.data.spec import as_spec, check_compatible
from neurofm.objectives import TokenCounts, batch_patch_mask, build_objective, real_tokens
from neurofm.progress import progress_bar
from neurofm.train.checkpoint import (
    CheckpointManager,
    capture_rng_state,
    gather_training_state,
    load_training_state,
    restore_rng_state,
)
from neurofm.train.config import PretrainConfig
from neurofm.train.data import (
    IndexedWindows,
    MicroBatchSampler,
    TrainingData,
    collate_training,
    open_training_data,
)
from neurofm.train.distributed import (
    DistEnv,
    all_gather_objects,
    all_reduce_sum,
    barrier,
    gradient_sync,
    init_distributed,
    shutdown,
    wrap_model,
)
from neurofm.train.export import export_pretrained
from neurofm.train.metrics import MetricsLog, plot_loss_curve
from neurofm.train.schedule import warmup_cosine


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the windows."""


@dataclass
class TrainResult:
    """What a finished run produced."""

    out_dir: Path
    model_dir: Path
    steps: int
    final_loss: float
    resumed_from: int


def train(config: PretrainConfig, *, data: TrainingData | None = None) -> TrainResult:
    """Pretrain a backbone as ``config`` says (on this process, or on this rank of torchrun).

    Parameters
    ----------
    config : PretrainConfig
    data : TrainingData, optional
        Windows to train on instead of opening ``config.data.path``.

    Raises
    ------
    NonFiniteLossError
        The loss became NaN/inf; the newest checkpoint (the last good state) is kept.
    FileNotFoundError, ValueError
        Bad corpus path, corpus/model mismatch, bad config.
    """
    env = init_distributed(config.run.device)
    try:
        return _train(config, env, data)
    finally:
        shutdown(env)


def _train(cfg: PretrainConfig, env: DistEnv, data: TrainingData | None) -> TrainResult:
    from neurofm.models import create_model

    run, optim = cfg.run, cfg.optim
    out_dir = Path(run.out_dir)
    sharded = env.distributed and run.parallel == "fsdp"
    _seed_everything(run.seed)  # same initial weights on every rank

    # -- data, model, objective -----------------------------------------------------------
    if data is None:
        data = open_training_data(cfg.data.path, cache_dir=cfg.data.cache_dir,
                                  is_main=env.is_main, wait=partial(barrier, env))
    model = create_model(cfg.model.name, **cfg.model.overrides)
    preprocessing = replace(data.preprocessing, patch_samples=int(data.dataset[0]["x"].shape[-1]))
    check_compatible(preprocessing, as_spec(model.preprocessing),
                     data_name=f"the data ({data.description})", model_name=cfg.model.name)
    objective = build_objective(
        model, reconstruction_weight=cfg.objective.reconstruction_weight,
        reconstruction_loss=cfg.objective.reconstruction_loss,
        visible_weight=cfg.objective.visible_weight, smooth_l1_beta=cfg.objective.smooth_l1_beta,
        code_prediction_weight=cfg.objective.code_prediction_weight,
        reconstruction_target=cfg.objective.reconstruction_target,
        spectral_weight=cfg.objective.spectral_weight,
        spectral_phase_weight=cfg.objective.spectral_phase_weight,
        tokenizer=_load_tokenizer(cfg.objective.tokenizer, cfg.objective.code_prediction_weight),
        dim=model.dim,
    ).to(env.device)
    wrapped = wrap_model(objective, env, run.parallel, run.find_unused_parameters)

    # -- optimizer, schedule, resume ------------------------------------------------------
    optimizer = torch.optim.AdamW(_parameter_groups(objective, optim.weight_decay), lr=optim.lr,
                                  betas=tuple(optim.betas), eps=optim.eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(
        warmup_cosine, total_steps=run.steps, warmup_steps=optim.warmup_steps,
        min_ratio=optim.min_lr / optim.lr))
    # bf16 keeps fp32's exponent range, so no loss scaling is needed; the (disabled) scaler
    # keeps the checkpoint format ready for fp16.
    scaler = torch.amp.GradScaler(env.device.type, enabled=False)
    checkpoints = CheckpointManager(out_dir / "checkpoints", run.keep_checkpoints)
    start_step = _resume(checkpoints, run.resume, objective, optimizer, scheduler, scaler,
                         env, sharded)

    # -- the loop -------------------------------------------------------------------------
    sampler = MicroBatchSampler(len(data.dataset), cfg.data.batch_size, env.rank,
                                env.world_size, run.grad_accum, run.seed, start_step)
    # A generator of its own keeps the loader from drawing on the global RNG (exact resume).
    loader = DataLoader(IndexedWindows(data.dataset), batch_sampler=sampler,
                        collate_fn=collate_training, num_workers=cfg.data.num_workers,
                        generator=torch.Generator())
    batches = iter(loader)
    metrics = MetricsLog(out_dir, start_step, run.tensorboard) if env.is_main else None
    bar = progress_bar(total=run.steps, initial=start_step, unit="step", dynamic_ncols=True,
                       disable=not (env.is_main and run.progress))
    autocast = partial(torch.autocast, env.device.type, dtype=torch.bfloat16,
                       enabled=run.precision == "bf16")
    objective.train()
    loss = math.nan
    tick, steps_since_log = time.perf_counter(), 0
    for step in range(start_step, run.steps):
        epoch = sampler.epoch_of(step)
        micro = [_to_device(next(batches), env.device) for _ in range(run.grad_accum)]
        masks = [batch_patch_mask(b["sensors"].chan_mask, b["patch_valid"], b["index"].tolist(),
                                  seed=run.seed, epoch=epoch, ratio=cfg.objective.mask_ratio,
                                  mode=cfg.objective.mask_mode,
                                  block_size=cfg.objective.mask_block_size) for b in micro]
        reals = [real_tokens(b["sensors"].chan_mask, b["patch_valid"]) for b in micro]
        counts = _global_token_counts(masks, reals, env)

        optimizer.zero_grad(set_to_none=True)
        sums = torch.zeros(3, dtype=torch.float64)  # total loss, reconstruction, code prediction
        histogram = None
        for k, (batch, mask, real) in enumerate(zip(micro, masks, reals)):
            with gradient_sync(wrapped, enabled=k == run.grad_accum - 1):
                with autocast():
                    out = wrapped(batch["x"], batch["sensors"], mask, batch["patch_valid"],
                                  real, counts)
                # DDP/FSDP average gradients over ranks; the shares must add up, hence x world.
                (out.loss * env.world_size).backward()
            sums += torch.tensor([out.loss.item(), float(out.terms.get("reconstruction", 0.0)),
                                  float(out.terms.get("code_prediction", 0.0))],
                                 dtype=torch.float64)
            if out.code_histogram is not None:
                hist = out.code_histogram.cpu()
                histogram = hist if histogram is None else histogram + hist
        all_reduce_sum(sums, env)
        loss = float(sums[0])
        if not math.isfinite(loss):
            _stop_on_nonfinite(loss, step, epoch, micro, checkpoints, env)

        grad_norm = torch.nn.utils.clip_grad_norm_(
            objective.parameters(), optim.grad_clip if optim.grad_clip > 0 else math.inf)
        grad_norm = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor")
                          else grad_norm)
        lr = optimizer.param_groups[0]["lr"]
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        done = step + 1
        steps_since_log += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", refresh=False)

        # -- metrics and checkpoints ----------------------------------------------------------
        usage = None
        if histogram is not None:
            usage = float((all_reduce_sum(histogram, env) > 0).float().mean())
        if done % run.log_every == 0 or done == run.steps:
            elapsed = time.perf_counter() - tick
            record = {"step": done, "epoch": epoch, "loss": loss, "lr": lr,
                      "grad_norm": grad_norm,
                      "windows_per_s": steps_since_log * cfg.data.batch_size / elapsed}
            if cfg.objective.reconstruction_weight > 0:
                record["reconstruction"] = float(sums[1])
            if cfg.objective.code_prediction_weight > 0:
                record["code_prediction"] = float(sums[2])
                record["codebook_usage"] = usage
            if metrics is not None:
                metrics.log(record)
            tick, steps_since_log = time.perf_counter(), 0
        if done % run.checkpoint_every == 0 or done == run.steps:
            _save_checkpoint(checkpoints, done, epoch, loss, objective, optimizer, scheduler,
                             scaler, cfg, env, sharded)
    bar.close()

    # -- export -------------------------------------------------------------------------
    model_dir = out_dir / "model"
    full_state, _ = gather_training_state(objective, optimizer, sharded)
    if env.is_main:
        metrics.close()
        if start_step == run.steps:  # nothing left to train: report the checkpoint's loss
            loss = float(CheckpointManager.load(checkpoints.latest()).get("loss", math.nan))
        final = create_model(cfg.model.name, **cfg.model.overrides)
        final.load_state_dict({k[len("model."):]: v for k, v in full_state.items()
                               if k.startswith("model.")})
        export_pretrained(final, model_dir, preprocessing=preprocessing.to_dict(), summary={
            "data": data.description, "n_windows": len(data.dataset), "steps": run.steps,
            "global_batch": cfg.data.batch_size, "world_size": env.world_size,
            "objective": vars(cfg.objective), "optim": vars(cfg.optim), "final_loss": loss,
            "config": cfg.to_dict()})
        plot_loss_curve(out_dir / "metrics.jsonl", out_dir / "loss.png")
    barrier(env)
    return TrainResult(out_dir, model_dir, run.steps, loss, start_step)


# -- helpers, in the order the loop uses them ----------------------------------------------


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _load_tokenizer(path: str | None, weight: float):
    if weight <= 0:
        return None
    if not path:
        return None  # build_objective explains what is missing
    from neurofm.tokenizer.model import NeuralTokenizer

    return NeuralTokenizer.from_pretrained(path)


def _parameter_groups(module: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices and kernels only, not on biases, norms or embeddings' scales."""
    decay, no_decay = [], []
    for param in module.parameters():
        if param.requires_grad:
            (decay if param.dim() >= 2 else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _resume(checkpoints: CheckpointManager, policy: str, objective, optimizer, scheduler, scaler,
            env: DistEnv, sharded: bool) -> int:
    """Load the newest checkpoint as ``policy`` allows; returns the step to start from."""
    latest = checkpoints.latest()
    if latest is None:
        if policy == "always":
            raise FileNotFoundError(f"Resume was requested but {checkpoints.directory} holds no "
                                    "checkpoint; drop --resume to start a new run.")
        return 0
    if policy == "never":
        raise ValueError(f"{checkpoints.directory} already holds checkpoints (newest "
                         f"{latest.name}); set run.resume=auto to continue it, or choose "
                         "another run.out_dir.")
    state = CheckpointManager.load(latest)
    load_training_state(objective, optimizer, state["objective"], state["optimizer"], sharded)
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    if state["world_size"] == env.world_size:
        restore_rng_state(state["rng"][env.rank])
    elif env.is_main:
        print(f"Resuming {latest} (written by {state['world_size']} ranks) on {env.world_size} "
              "ranks: data order and weights continue exactly, dropout randomness does not.",
              file=sys.stderr)
    if env.is_main:
        print(f"Resumed from {latest} (step {state['step']}).", file=sys.stderr)
    return int(state["step"])


def _to_device(batch: dict, device: torch.device) -> dict:
    return {**batch, "x": batch["x"].to(device), "sensors": batch["sensors"].to(device),
            "patch_valid": batch["patch_valid"].to(device)}


def _global_token_counts(masks, reals, env: DistEnv) -> TokenCounts:
    """Masked and visible real tokens of the global batch (all micro-batches, all ranks)."""
    masked = sum(int(m.sum()) for m in masks)
    visible = sum(int(r.sum()) for r in reals) - masked
    totals = all_reduce_sum(torch.tensor([masked, visible], dtype=torch.float64), env)
    return TokenCounts(masked=float(totals[0]), visible=float(totals[1]))


def _stop_on_nonfinite(loss: float, step: int, epoch: int, micro: list[dict],
                       checkpoints: CheckpointManager, env: DistEnv) -> None:
    """Every rank sees the same reduced loss, so all stop together with the same message."""
    sources = [s for rank_sources in all_gather_objects(
        [s for b in micro for s in b["source"]], env) for s in rank_sources]
    latest = checkpoints.latest()
    kept = (f"The last good checkpoint, {latest}, is kept; rerunning resumes from it."
            if latest else "No checkpoint had been written yet.")
    shown = ", ".join(sources[:16]) + (f" and {len(sources) - 16} more" if len(sources) > 16 else "")
    raise NonFiniteLossError(
        f"Loss is {loss} at step {step + 1} (epoch {epoch}); the batch held windows from: "
        f"{shown}. No update was applied. {kept} Check those windows for extreme values "
        "(neurofm corpus stats), or lower optim.lr / use run.precision=fp32.")


def _save_checkpoint(checkpoints: CheckpointManager, step: int, epoch: int, loss: float,
                     objective, optimizer, scheduler, scaler, cfg: PretrainConfig, env: DistEnv,
                     sharded: bool) -> None:
    model_state, optim_state = gather_training_state(objective, optimizer, sharded)
    rng = all_gather_objects(capture_rng_state(), env)
    error = None
    if env.is_main:
        state = {"step": step, "loss": loss, "objective": model_state, "optimizer": optim_state,
                 "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "rng": rng,
                 "world_size": env.world_size,
                 "data_position": {"step": step, "epoch": epoch, "seed": cfg.run.seed,
                                   "global_batch": cfg.data.batch_size},
                 "config": cfg.to_dict()}
        try:
            checkpoints.save(state, step)
        except OSError as err:
            error = str(err)
    errors = [e for e in all_gather_objects(error, env) if e]
    if errors:
        raise OSError(errors[0])
