"""Pretraining configuration: dataclasses loaded from YAML, with ``--set key=value`` overrides.

A config file has five sections, each a dataclass below::

    data:      {path: sim:tiny, batch_size: 16}
    model:     {name: criss_cross_small, overrides: {dim: 64}}
    objective: {mask_ratio: 0.5, reconstruction_loss: mse}
    optim:     {lr: 5.0e-4, warmup_steps: 100}
    run:       {steps: 1000, out_dir: runs/tiny, precision: bf16}

Overrides use dotted keys and YAML values: ``run.steps=20``, ``model.overrides.depth=2``,
``optim.betas=[0.9,0.98]``. Unknown keys and values of the wrong type are errors that name the key.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class DataConfig:
    """Where windows come from and how many make a step.

    Attributes
    ----------
    path : str
        A corpus directory written by ``neurofm prepare``, or ``sim:NAME`` (``sim:tiny``,
        ``sim:multimodal``): a simulated corpus prepared into ``cache_dir`` on first use.
    cache_dir : str or None
        Cache of simulated corpora (default ``~/.cache/neurofm/sim``).
    batch_size : int
        Global batch: windows per optimizer step over all ranks and accumulation steps.
    num_workers : int
        DataLoader worker processes per rank.
    """

    path: str = "sim:tiny"
    cache_dir: str | None = None
    batch_size: int = 16
    num_workers: int = 0


@dataclass
class ModelConfig:
    """Backbone from the registry: ``create_model(name, **overrides)``."""

    name: str = "criss_cross_small"
    overrides: dict = field(default_factory=dict)


@dataclass
class ObjectiveConfig:
    """Masking and loss terms (see :mod:`neurofm.objectives`).

    A term with weight 0 is off; ``code_prediction_weight > 0`` needs ``tokenizer``, the directory
    of a trained VQ tokenizer. ``reconstruction_target`` picks what reconstruction scores:
    ``waveform`` (the samples), ``spectrum`` (log Fourier amplitude, plus
    ``spectral_phase_weight`` x amplitude-weighted phase) or ``both`` (waveform +
    ``spectral_weight`` x spectrum).
    """

    mask_ratio: float = 0.5
    mask_mode: str = "bernoulli"
    mask_block_size: int = 4
    reconstruction_weight: float = 1.0
    reconstruction_loss: str = "mse"
    visible_weight: float = 0.0
    smooth_l1_beta: float = 1.0
    code_prediction_weight: float = 0.0
    tokenizer: str | None = None
    reconstruction_target: str = "waveform"
    spectral_weight: float = 1.0
    spectral_phase_weight: float = 0.0


@dataclass
class OptimConfig:
    """AdamW with linear warmup then cosine decay to ``min_lr``; global-norm clipping."""

    lr: float = 5.0e-4
    min_lr: float = 1.0e-5
    weight_decay: float = 0.05
    betas: list = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1.0e-8
    warmup_steps: int = 100
    grad_clip: float = 1.0


@dataclass
class RunConfig:
    """Length, precision, parallelism, logging and checkpointing of a run.

    Attributes
    ----------
    out_dir : str
        Run directory: ``checkpoints/``, ``metrics.jsonl``, ``tensorboard/``, ``loss.png``,
        ``model/`` (the exported model).
    steps : int
        Optimizer steps in total (the cosine schedule spans them).
    grad_accum : int
        Micro-batches per step on each rank; ``data.batch_size`` must divide by
        ``world_size * grad_accum``.
    precision : {"fp32", "bf16"}
        ``bf16`` runs forward and loss under bf16 autocast (weights and optimizer stay fp32).
    parallel : {"ddp", "fsdp"}
        How several ranks share the model: replicas (DDP) or fully sharded (FSDP).
    device : {"auto", "cpu", "cuda"}
    seed : int
        Seeds initialisation, masks and the data order.
    log_every, checkpoint_every : int
        Steps between metric records / training checkpoints (one is also written at the end).
    keep_checkpoints : int
        Training checkpoints kept (the newest).
    resume : {"auto", "always", "never"}
        ``auto`` continues from the newest checkpoint in ``out_dir`` when there is one; ``always``
        requires one; ``never`` refuses to start over an existing run.
    find_unused_parameters : bool
        Passed to DDP for backbones with parameters the objective does not use.
    tensorboard, progress : bool
        Write TensorBoard events / show a progress bar on rank 0.
    """

    out_dir: str = "runs/pretrain"
    steps: int = 1000
    grad_accum: int = 1
    precision: str = "fp32"
    parallel: str = "ddp"
    device: str = "auto"
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    resume: str = "auto"
    find_unused_parameters: bool = False
    tensorboard: bool = True
    progress: bool = True


@dataclass
class PretrainConfig:
    """A whole pretraining run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict, *, where: str = "config") -> PretrainConfig:
        """Build from nested dicts, checking every key and value type."""
        return _build(cls, raw or {}, where)


CHOICES = {
    "objective.mask_mode": ("bernoulli", "block"),
    "objective.reconstruction_loss": ("mse", "smooth_l1"),
    "objective.reconstruction_target": ("waveform", "spectrum", "both"),
    "run.precision": ("fp32", "bf16"),
    "run.parallel": ("ddp", "fsdp"),
    "run.device": ("auto", "cpu", "cuda"),
    "run.resume": ("auto", "always", "never"),
}


def load_config(path: str | Path | None = None, overrides: list[str] | None = None
                ) -> PretrainConfig:
    """Read a YAML config and apply ``key=value`` overrides.

    Parameters
    ----------
    path : str or Path, optional
        YAML file; None starts from the defaults.
    overrides : list of str
        ``"section.key=value"`` items, values parsed as YAML.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Unknown key, wrong type, bad choice or malformed override.
    """
    raw: dict = {}
    where = "defaults"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Config file {path} does not exist; see pretrain/configs/ "
                                    "for examples.")
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path} must hold a YAML mapping of sections (data, model, ...).")
        where = str(path)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"Override {item!r} is not of the form section.key=value "
                             "(e.g. run.steps=100).")
        _set_dotted(raw, key.strip(), yaml.safe_load(value))
    return PretrainConfig.from_dict(raw, where=where)


def _set_dotted(raw: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"Override {key}: {part} is not a section.")
    node[parts[-1]] = value


def _build(cls, raw: dict, where: str, prefix: str = ""):
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: {prefix.rstrip('.') or 'config'} must be a mapping, "
                         f"got {raw!r}.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(prefix + k for k in unknown)}; "
                         f"valid keys here: {', '.join(sorted(names))}.")
    kwargs = {}
    for name, value in raw.items():
        key = prefix + name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value or {}, where, key + ".")
        else:
            kwargs[name] = _coerce(value, hint, key, where)
    return cls(**kwargs)


def _coerce(value, hint, key: str, where: str):
    allowed = typing.get_args(hint) or (hint,)
    if value is None and type(None) in allowed:
        return None
    if value is None:
        raise ValueError(f"{where}: {key} must not be empty.")
    base = next(t for t in allowed if t is not type(None))
    if base is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            value = float(value)  # YAML 1.1 reads 5e-4 (no dot) as a string
        except ValueError:
            pass
    if base is bool and not isinstance(value, bool) or (
            base is int and (isinstance(value, bool) or not isinstance(value, int))) or (
            base in (float, str, dict, list) and not isinstance(value, base)):
        raise ValueError(f"{where}: {key} must be of type {base.__name__}, got {value!r}.")
    if key in CHOICES and value not in CHOICES[key]:
        raise ValueError(f"{where}: {key} is {value!r}; choose one of {', '.join(CHOICES[key])}.")
    return value
