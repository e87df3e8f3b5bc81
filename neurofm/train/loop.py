"""The pretraining loop, readable top to bottom.

:func:`train` does the whole job on one process or on every rank of a ``torchrun`` launch.
:func:`_set_up` builds the backbone and the objective (its masking and loss terms), shares them
over the ranks (DDP or FSDP), builds AdamW and the warmup + cosine schedule and resumes from the
newest checkpoint. Then :func:`_train` runs the steps: draw the global batch's masks, forward and
backward on this rank's micro-batches (bf16 autocast optional), clip, step, log the loss and
whatever the objective's terms log, checkpoint. At the end :func:`_export` writes the backbone
as a Hub-style model directory.

Loss normalisation: each micro-batch contributes its share of the mean over the masked tokens of
the *global* batch (:class:`~neurofm.objectives.TokenCounts`), so the update is the same for any
world size and any gradient accumulation (up to float rounding).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from neurofm.data.spec import as_spec, check_compatible
from neurofm.folder_lock import FolderLock
from neurofm.logs import get_logger, verbose
from neurofm.models import create_model
from neurofm.nn import upgrade_nested_state, upgrade_optimizer_state
from neurofm.nn.scan import compiled_scans
from neurofm.objectives import PretrainingObjective, TokenCounts, build_objective, real_tokens
from neurofm.output_folder import claim_output_folder
from neurofm.progress import progress_bar
from neurofm.train.checkpoint import (
    CheckpointManager,
    capture_rng_state,
    gather_training_state,
    load_training_state,
    restore_rng_state,
)
from neurofm.train.config import PretrainConfig, trajectory_differences
from neurofm.train.data import TrainingData, TrainingLoader, open_training_data
from neurofm.train.distributed import (
    DistEnv,
    all_gather_objects,
    all_reduce_sum,
    barrier,
    gradient_sync,
    init_distributed,
    raise_together,
    shutdown,
    wrap_model,
)
from neurofm.train.export import export_pretrained
from neurofm.train.metrics import MetricsLog, plot_loss_curve, read_metrics
from neurofm.train.schedule import warmup_cosine

logger = get_logger(__name__)
#: The command whose output-folder marker run folders carry.
PRETRAIN_COMMAND = "neurofm pretrain"
#: Held by rank 0 of the run writing the folder.
RUN_LOCK = ".neurofm-lock"
CHECKPOINTS_DIR = "checkpoints"


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


@verbose
def train(config: PretrainConfig, *, data: TrainingData | None = None, overwrite: bool = False,
          allow_changed_settings: bool = False, config_file=None, verbose=None) -> TrainResult:
    """Pretrain a backbone as ``config`` says (on this process, or on this rank of torchrun).

    The run folder (``run.out_dir``) must be new, empty or a run folder of ``neurofm pretrain``
    (:func:`neurofm.output_folder.claim_output_folder`); rank 0 holds a lock on it for the
    whole run, so a second run into the same folder is refused while this one lives.

    Parameters
    ----------
    config : PretrainConfig
    data : TrainingData, optional
        Windows to train on instead of opening ``config.data.path``.
    overwrite : bool
        Write into a run folder that holds files neurofm did not write (they are kept).
    allow_changed_settings : bool
        Resume although the settings that decide the trajectory (model, objective, optimiser,
        schedule, data, batch, seed) differ from the checkpoint's.
    config_file : path-like, optional
        The YAML ``config`` was read from; it may sit in the run folder.
    verbose : bool, str, int or None
        Log level of the run (:func:`neurofm.logs.log_level`; None: the package's). Rank 0 logs
        the start, resumes and damaged checkpoints passed over; above INFO no progress bar.

    Raises
    ------
    NonFiniteLossError
        The loss became NaN/inf; the newest checkpoint (the last good state) is kept.
    FileNotFoundError, ValueError
        Bad corpus path, corpus/model mismatch, bad config, a folder of other files or in use
        by another run, a resume with other settings.
    """
    env = init_distributed(config.run.device)
    lock = None
    try:
        lock = _claim_run_folder(config, env, overwrite, config_file)
        with compiled_scans(config.run.compile):
            return _train(config, env, data, allow_changed_settings)
    finally:
        if lock is not None:
            lock.release()
        shutdown(env)


def _claim_run_folder(cfg: PretrainConfig, env: DistEnv, overwrite: bool,
                      config_file) -> FolderLock | None:
    """Rank 0 claims the run folder and locks it; every rank raises the same error if not."""
    lock, error = None, None
    if env.is_main:
        out = Path(cfg.run.out_dir)
        try:
            claim_output_folder(out, PRETRAIN_COMMAND, {"config": cfg.to_dict()},
                                overwrite=overwrite, recognise=is_run_folder,
                                inputs=[config_file] if config_file else [])
            lock = FolderLock(out / RUN_LOCK, PRETRAIN_COMMAND).acquire()
        except ValueError as err:
            error = str(err)
    raise_together(error, env)
    return lock


def is_run_folder(path) -> bool:
    """True for a run folder that ``neurofm pretrain`` wrote before it left an output-folder
    marker (neurofm 0.1.0): it holds checkpoints or a ``metrics.jsonl`` of training steps."""
    path = Path(path)
    if CheckpointManager(path / CHECKPOINTS_DIR).checkpoints():
        return True
    records = read_metrics(path / "metrics.jsonl")
    return bool(records) and all("step" in r and "loss" in r for r in records)


def _train(cfg: PretrainConfig, env: DistEnv, data: TrainingData | None,
           allow_changed_settings: bool) -> TrainResult:
    run = cfg.run
    setup = _set_up(cfg, env, data, allow_changed_settings)
    objective = setup.objective
    if env.is_main:
        n_params = sum(p.numel() for p in objective.model.parameters())
        logger.info("Pretraining %s (%s parameters) on %s: steps %d to %d, global batch %d, "
                    "%d process(es), into %s", cfg.model.name, f"{n_params:,}",
                    setup.data.description, setup.start_step, run.steps, cfg.data.batch_size,
                    env.world_size, setup.out_dir)
    metrics = MetricsLog(setup.out_dir, setup.start_step, run.tensorboard) if env.is_main else None
    bar = progress_bar(total=run.steps, initial=setup.start_step, unit="step", dynamic_ncols=True,
                       disable=not (env.is_main and run.progress))
    autocast = partial(torch.autocast, env.device.type, dtype=torch.bfloat16,
                       enabled=run.precision == "bf16")
    objective.train()
    loss = math.nan
    tick, steps_since_log = time.perf_counter(), 0
    for step in range(setup.start_step, run.steps):
        epoch = setup.sampler.epoch_of(step)
        micro = [_to_device(next(setup.batches), env.device) for _ in range(run.grad_accum)]
        masks, reals, counts = _mask(objective, micro, run.seed, epoch, env)

        setup.optimizer.zero_grad(set_to_none=True)
        loss_sum, logs = torch.zeros((), dtype=torch.float64), {}
        for k, (batch, mask, real) in enumerate(zip(micro, masks, reals)):
            with gradient_sync(setup.wrapped, enabled=k == run.grad_accum - 1):
                with autocast():
                    out = setup.wrapped(batch["x"], batch["sensors"], mask,
                                        batch["patch_valid"], real, counts)
                # DDP/FSDP average gradients over ranks; the shares must add up, hence x world.
                (out.loss * env.world_size).backward()
            loss_sum += out.loss.item()
            _add_logs(logs, out.logs)
        loss = float(all_reduce_sum(loss_sum, env))
        if not math.isfinite(loss):
            _stop_on_nonfinite(loss, step, epoch, micro, setup.checkpoints, env)
        grad_norm, lr = _optimizer_step(setup, cfg.optim.grad_clip)
        done = step + 1
        steps_since_log += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", refresh=False)

        if done % run.log_every == 0 or done == run.steps:
            record = {"step": done, "epoch": epoch, "loss": loss, "lr": lr, "grad_norm": grad_norm,
                      "windows_per_s": steps_since_log * cfg.data.batch_size
                      / (time.perf_counter() - tick),
                      **objective.summarize(_all_reduce_logs(logs, env))}
            if metrics is not None:
                metrics.log(record)
            tick, steps_since_log = time.perf_counter(), 0
        if done % run.checkpoint_every == 0 or done == run.steps:
            _save_checkpoint(setup, done, epoch, loss, cfg, env)
    bar.close()
    if metrics is not None:
        metrics.close()
    return _export(setup, loss, cfg, env)


# -- setup: data, model, objective, optimiser, resume ----------------------------------------


@dataclass
class _Setup:
    """Everything the step loop works with, as :func:`_set_up` leaves it."""

    out_dir: Path
    data: TrainingData
    preprocessing: dict
    objective: PretrainingObjective
    wrapped: torch.nn.Module  # the objective under DDP/FSDP (itself on one process)
    sharded: bool
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    checkpoints: CheckpointManager
    start_step: int
    resumed_loss: float  # the loss of the checkpoint resumed from (nan for a new run)
    sampler: TrainingLoader
    batches: Iterator[dict]


def _set_up(cfg: PretrainConfig, env: DistEnv, data: TrainingData | None,
            allow_changed_settings: bool) -> _Setup:
    """Open the data, build backbone and objective, share them over the ranks, build the
    optimiser and schedule, resume from the newest checkpoint and position the data there."""
    run, optim = cfg.run, cfg.optim
    _seed_everything(run.seed)  # same initial weights on every rank
    if data is None:
        data = open_training_data(cfg.data.path, cache_dir=cfg.data.cache_dir,
                                  is_main=env.is_main, wait=partial(barrier, env))
    model = create_model(cfg.model.name, **cfg.model.overrides)
    preprocessing = replace(data.preprocessing, patch_samples=int(data.dataset[0]["x"].shape[-1]))
    check_compatible(preprocessing, as_spec(model.preprocessing),
                     data_name=f"the data ({data.description})", model_name=cfg.model.name)
    objective = build_objective(cfg.objective, model=model).to(env.device)
    wrapped = wrap_model(objective, env, run.parallel, run.find_unused_parameters)

    optimizer = torch.optim.AdamW(_parameter_groups(objective, optim.weight_decay), lr=optim.lr,
                                  betas=tuple(optim.betas), eps=optim.eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(
        warmup_cosine, total_steps=run.steps, warmup_steps=optim.warmup_steps,
        min_ratio=optim.min_lr / optim.lr))
    # bf16 keeps fp32's exponent range, so no loss scaling is needed; the (disabled) scaler
    # keeps the checkpoint format ready for fp16.
    scaler = torch.amp.GradScaler(env.device.type, enabled=False)
    out_dir = Path(run.out_dir)
    checkpoints = CheckpointManager(out_dir / CHECKPOINTS_DIR, run.keep_checkpoints)
    if env.is_main:  # this run holds the folder's lock: leftovers are of killed saves
        checkpoints.remove_temporary_files()
    sharded = env.distributed and run.parallel == "fsdp"
    start_step, resumed_loss = _resume(checkpoints, cfg, allow_changed_settings, objective,
                                       optimizer, scheduler, scaler, env, sharded)

    loader = TrainingLoader(data, cfg.data, rank=env.rank, world_size=env.world_size,
                            grad_accum=run.grad_accum, seed=run.seed, start_step=start_step)
    return _Setup(out_dir, data, preprocessing, objective, wrapped, sharded, optimizer, scheduler,
                  scaler, checkpoints, start_step, resumed_loss, loader, iter(loader))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _parameter_groups(module: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices and kernels only, not on biases, norms or embeddings' scales."""
    decay, no_decay = [], []
    for param in module.parameters():
        if param.requires_grad:
            (decay if param.dim() >= 2 else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _resume(checkpoints: CheckpointManager, cfg: PretrainConfig, allow_changed_settings: bool,
            objective, optimizer, scheduler, scaler, env: DistEnv,
            sharded: bool) -> tuple[int, float]:
    """Load the newest readable checkpoint as ``run.resume`` allows; returns the step to start
    from and that checkpoint's loss (0 and nan for a new run)."""
    policy = cfg.run.resume
    latest = checkpoints.latest()
    if latest is None:
        if policy == "always":
            raise FileNotFoundError(f"Resume was requested but {checkpoints.directory} holds no "
                                    "checkpoint; drop --resume to start a new run.")
        return 0, math.nan
    if policy == "never":
        raise ValueError(f"{checkpoints.directory} already holds checkpoints (newest "
                         f"{latest.name}); set run.resume=auto to continue it, or choose "
                         "another run.out_dir.")
    notes: list[str] = []
    latest, state = checkpoints.load_newest(warn=notes.append)
    if env.is_main:
        for text in notes:
            logger.warning(text)
    differ = trajectory_differences(state["config"], cfg)
    if differ and not allow_changed_settings:
        raise ValueError(
            f"{latest} was written by a run with other settings ({'; '.join(differ)}). Repeat "
            "the original settings to resume it, choose a new --out for a new run, or pass "
            "--allow-changed-settings to continue it with the new ones.")
    objective_state = upgrade_nested_state(objective, state["objective"],
                                           int(state.get("format_version", 1)))
    optim_state = state["optimizer"] if sharded else \
        upgrade_optimizer_state(objective, optimizer, state["optimizer"], objective_state)
    try:
        load_training_state(objective, optimizer, objective_state, optim_state, sharded)
    except (RuntimeError, ValueError, KeyError) as err:
        raise ValueError(
            f"{latest} does not fit the model and optimiser of these settings "
            f"({_first_mismatches(err)}); resume with the settings the run was started with, "
            "or choose a new --out.") from None
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    if state["world_size"] == env.world_size:
        restore_rng_state(state["rng"][env.rank])
    elif env.is_main:
        logger.warning("Resuming %s (written by %d ranks) on %d ranks: data order and weights "
                       "continue exactly, dropout randomness does not.", latest,
                       state["world_size"], env.world_size)
    if env.is_main:
        logger.info("Resumed from %s (step %d).", latest, state["step"])
    return int(state["step"]), float(state.get("loss", math.nan))


def _first_mismatches(err: Exception, limit: int = 3) -> str:
    """The first lines of a state-dict loading error (size mismatches name key and shapes)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    shown = [line for line in lines if "size mismatch" in line or "Missing" in line
             or "Unexpected" in line][:limit] or lines[:1]
    return "; ".join(shown)


# -- the step, in the order the loop uses them ------------------------------------------------


def _to_device(batch: dict, device: torch.device) -> dict:
    return {**batch, "x": batch["x"].to(device), "sensors": batch["sensors"].to(device),
            "patch_valid": batch["patch_valid"].to(device)}


def _mask(objective: PretrainingObjective, micro: list[dict], seed: int, epoch: int,
          env: DistEnv) -> tuple[list[torch.Tensor], list[torch.Tensor], TokenCounts]:
    """The objective's masks ``[B, C, N]`` of each micro-batch, their real tokens, and the token
    counts of the global batch (all micro-batches, all ranks)."""
    masks = [objective.masking(b["sensors"].chan_mask, b["patch_valid"], b["index"].tolist(),
                               seed=seed, epoch=epoch) for b in micro]
    reals = [real_tokens(b["sensors"].chan_mask, b["patch_valid"]) for b in micro]
    masked = sum(int(m.sum()) for m in masks)
    visible = sum(int(r.sum()) for r in reals) - masked
    totals = all_reduce_sum(torch.tensor([masked, visible], dtype=torch.float64), env)
    return masks, reals, TokenCounts(masked=float(totals[0]), visible=float(totals[1]))


def _add_logs(total: dict[str, dict[str, torch.Tensor]],
              logs: dict[str, dict[str, torch.Tensor]]) -> None:
    """Add one micro-batch's term logs to ``total`` (on the CPU; floats in float64)."""
    for term, values in logs.items():
        into = total.setdefault(term, {})
        for key, value in values.items():
            value = value.cpu()
            value = value.double() if value.is_floating_point() else value
            into[key] = into[key] + value if key in into else value


def _all_reduce_logs(logs: dict[str, dict[str, torch.Tensor]], env: DistEnv) -> dict:
    """Sum the term logs over ranks (every rank holds the same keys in the same order)."""
    return {term: {key: all_reduce_sum(value, env) for key, value in values.items()}
            for term, values in logs.items()}


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


def _optimizer_step(setup: _Setup, grad_clip: float) -> tuple[float, float]:
    """Clip, step AdamW and the schedule; returns the gradient norm and the step's lr."""
    grad_norm = torch.nn.utils.clip_grad_norm_(setup.objective.parameters(),
                                               grad_clip if grad_clip > 0 else math.inf)
    grad_norm = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor")
                      else grad_norm)
    lr = setup.optimizer.param_groups[0]["lr"]
    setup.scaler.step(setup.optimizer)
    setup.scaler.update()
    setup.scheduler.step()
    return grad_norm, lr


def _save_checkpoint(setup: _Setup, step: int, epoch: int, loss: float, cfg: PretrainConfig,
                     env: DistEnv) -> None:
    model_state, optim_state = gather_training_state(setup.objective, setup.optimizer,
                                                     setup.sharded)
    rng = all_gather_objects(capture_rng_state(), env)
    error = None
    if env.is_main:
        state = {"step": step, "loss": loss, "objective": model_state, "optimizer": optim_state,
                 "scheduler": setup.scheduler.state_dict(), "scaler": setup.scaler.state_dict(),
                 "rng": rng, "world_size": env.world_size,
                 "data_position": {"step": step, "epoch": epoch, "seed": cfg.run.seed,
                                   "global_batch": cfg.data.batch_size},
                 "config": cfg.to_dict()}
        try:
            setup.checkpoints.save(state, step)
        except OSError as err:
            error = (err.errno, err.strerror or str(err))
    errors = [e for e in all_gather_objects(error, env) if e]
    if errors:
        raise OSError(*errors[0])


# -- the end: export ------------------------------------------------------------------------


def _export(setup: _Setup, loss: float, cfg: PretrainConfig, env: DistEnv) -> TrainResult:
    """Write ``model/`` (backbone + model card) and ``loss.png`` on rank 0."""
    run = cfg.run
    model_dir = setup.out_dir / "model"
    full_state, _ = gather_training_state(setup.objective, setup.optimizer, setup.sharded)
    if env.is_main:
        if setup.start_step == run.steps:  # nothing left to train: report the checkpoint's loss
            loss = setup.resumed_loss
        final = create_model(cfg.model.name, **cfg.model.overrides)
        final.load_state_dict({k[len("model."):]: v for k, v in full_state.items()
                               if k.startswith("model.")})
        export_pretrained(final, model_dir, preprocessing=setup.preprocessing, summary={
            "data": setup.data.description, "n_windows": len(setup.data.dataset),
            "steps": run.steps, "global_batch": cfg.data.batch_size,
            "world_size": env.world_size, "objective": cfg.to_dict()["objective"],
            "objective_description": setup.objective.describe(), "optim": vars(cfg.optim),
            "final_loss": loss, "config": cfg.to_dict()})
        plot_loss_curve(setup.out_dir / "metrics.jsonl", setup.out_dir / "loss.png",
                        terms=setup.objective.term_names)
    barrier(env)
    return TrainResult(setup.out_dir, model_dir, run.steps, loss, setup.start_step)
