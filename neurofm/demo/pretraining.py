"""Stages 3-4 of the demo: pretrain each backbone with ``neurofm pretrain``, then publish it.

Pretraining runs in a child process, ``python -m neurofm pretrain --config ... --nproc N``, the
command a user runs; with ``N = 2`` it launches ``torchrun`` (two CPU processes, gloo), so the
demo exercises the distributed path too. The exported model directory is then copied into
``models/<label>/`` and loaded back with :func:`neurofm.hub.from_pretrained`, the way a user
would load a checkpoint downloaded from the Hub.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from neurofm.demo.settings import ModelPlan
from neurofm.hub import from_pretrained
from neurofm.logs import get_logger, level_argv

logger = get_logger(__name__)


def default_nproc() -> int:
    """2 when this machine has at least 2 CPU cores and ``torch.distributed`` works, else 1."""
    import torch.distributed as dist

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 2 if (cores or 1) >= 2 and dist.is_available() else 1


def pretrain_config(plan: ModelPlan, corpus: str | Path, run_dir: str | Path) -> dict:
    """The ``neurofm pretrain`` config (as a dict) of one demo backbone.

    The plan's objective (by default :data:`neurofm.demo.settings.DEMO_OBJECTIVE`: 50 % Bernoulli
    masking of (channel, patch) tokens, reconstruction of their log Fourier amplitude), AdamW
    with a short warmup and cosine decay; one checkpoint at the end, no TensorBoard.
    """
    return {
        "data": {"path": str(corpus), "batch_size": plan.batch_size, "num_workers": 0},
        "model": {"name": plan.name, "overrides": dict(plan.overrides)},
        "objective": copy.deepcopy(plan.objective),
        "optim": {"lr": plan.lr, "min_lr": plan.lr / 20, "weight_decay": 0.05,
                  "warmup_steps": max(1, plan.steps // 20), "grad_clip": 1.0},
        "run": {"out_dir": str(run_dir), "steps": plan.steps, "precision": "fp32",
                "log_every": max(1, plan.steps // 50), "checkpoint_every": plan.steps,
                "keep_checkpoints": 1, "tensorboard": False, "progress": True},
    }


def pretrain_model(plan: ModelPlan, corpus: str | Path, run_dir: str | Path, *, nproc: int,
                   stage_label: str = "", progress: bool = True) -> Path:
    """Pretrain one backbone with ``neurofm pretrain`` in a child process.

    Parameters
    ----------
    plan : ModelPlan
    corpus : path
        A corpus folder written by ``neurofm prepare``.
    run_dir : path
        Run directory (config, checkpoints, ``metrics.jsonl``, ``loss.png``, ``model/``).
        An interrupted run resumes from its newest checkpoint.
    nproc : int
        Processes (``> 1`` launches torchrun).
    stage_label : str
        Logged before the run's own progress bar.
    progress : bool
        Show the run's progress bar. The child logs at this process's level (``--quiet`` /
        ``--verbose``).

    Returns
    -------
    Path
        The exported model directory ``run_dir/model``.

    Raises
    ------
    RuntimeError
        The pretraining command failed (its exit status and the command line are named).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.yaml"
    config_path.write_text(yaml.safe_dump(pretrain_config(plan, corpus, run_dir),
                                          sort_keys=False))
    command = [sys.executable, "-m", "neurofm", "pretrain", "--config", str(config_path),
               "--nproc", str(nproc), *level_argv()]
    if not progress:
        command.append("--no-progress")
    if stage_label:
        logger.info("%s: %s (%d steps, %d process%s)", stage_label, plan.name, plan.steps, nproc,
                    "es" if nproc > 1 else "")
    env = dict(os.environ)
    if nproc > 1:
        env["OMP_NUM_THREADS"] = "1"  # one thread per process: the processes share the cores
    result = subprocess.run(command, env=env, check=False)
    model_dir = run_dir / "model"
    if result.returncode != 0 or not (model_dir / "config.json").is_file():
        raise RuntimeError(f"Pretraining {plan.label} failed (exit status {result.returncode}): "
                           f"{' '.join(command)}")
    return model_dir


def publish_model(model_dir: str | Path, destination: str | Path):
    """Copy an exported model into a Hub-style folder and load it back.

    Parameters
    ----------
    model_dir : path
        ``config.json`` + ``model.safetensors`` + ``README.md`` written by pretraining.
    destination : path
        The folder to create (replaced if it exists).

    Returns
    -------
    neurofm.models.BrainEncoder
        The model as :func:`neurofm.hub.from_pretrained` loads it from ``destination``.
    """
    destination = Path(destination)
    tmp = destination.with_name(destination.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(model_dir, tmp)
    if destination.exists():
        shutil.rmtree(destination)
    tmp.rename(destination)
    return from_pretrained(destination)
