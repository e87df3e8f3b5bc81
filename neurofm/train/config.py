"""Pretraining configuration: dataclasses loaded from YAML, with ``--set key=value`` overrides.

A config file has five sections, each a dataclass below (``objective`` is
:class:`neurofm.objectives.ObjectiveConfig`, its ``terms`` the config sections of the registered
loss terms)::

    data:      {path: sim:tiny, batch_size: 16}
    model:     {name: criss_cross_small, overrides: {dim: 64}}
    objective: {mask_ratio: 0.5, terms: {reconstruction: {loss: mse}}}
    optim:     {lr: 5.0e-4, warmup_steps: 100}
    run:       {steps: 1000, out_dir: runs/tiny, precision: bf16}

Overrides use dotted keys and YAML values: ``run.steps=20``, ``model.overrides.depth=2``,
``optim.betas=[0.9,0.98]``, ``objective.terms.reconstruction.target=spectrum``. Unknown keys and
values of the wrong type or outside a field's ``choices`` are errors that name the key. The
objective's 0.1 flat keys (``objective.reconstruction_loss`` ...) are still read, with a
``DeprecationWarning``, until neurofm 0.3.
"""

from __future__ import annotations

import dataclasses
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from neurofm.objectives import ObjectiveConfig, term_class
from neurofm.objectives.config import FLAT_TERM_KEYS, terms_from_flat_keys
from neurofm.strict import check_keys, field_names


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
    streaming : bool
        Read each rank's shards from first row to last (shuffled shard order, then blocks of
        ``shuffle_buffer`` windows) instead of random access: for corpora on network storage
        or larger than memory. Resume is exact only with the same number of ranks and
        ``num_workers`` (``docs/corpus.md``).
    shuffle_buffer : int
        Streaming: windows per shuffled block, held in memory by each loader worker (1024 TUEG
        windows of 19 x 6000 float16 samples are about 230 MB).
    """

    path: str = "sim:tiny"
    cache_dir: str | None = None
    batch_size: int = 16
    num_workers: int = 0
    streaming: bool = False
    shuffle_buffer: int = 1024

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"data.batch_size must be at least 1 window, got {self.batch_size}.")
        if self.num_workers < 0:
            raise ValueError(f"data.num_workers must not be negative, got {self.num_workers}.")
        if self.shuffle_buffer < 1:
            raise ValueError(f"data.shuffle_buffer must be at least 1 window, got "
                             f"{self.shuffle_buffer}.")


@dataclass
class ModelConfig:
    """Backbone from the registry: ``create_model(name, **overrides)``."""

    name: str = "criss_cross_small"
    overrides: dict = field(default_factory=dict)


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
    compile : bool
        Compile the Mamba-1 selective scan's block kernels with ``torch.compile``
        (:func:`neurofm.nn.scan.set_compiled`) where neither mamba-ssm's CUDA kernel nor the
        fused CPU kernel (:mod:`neurofm.nn.mamba_kernels`, faster than compiling) runs: on a GPU
        without mamba-ssm, or on CPU with ``NEUROFM_CPU_KERNEL=0``. A one-off compile of a
        minute or two (``docs/models.md``); no effect on other backbones. Falls back to the eager
        scan, with a warning, where ``torch.compile`` is unavailable.
    tensorboard : bool or None
        Write TensorBoard events on rank 0: None (default) when the ``tensorboard`` package is
        installed, True always (an error names the extra when it is missing), False never.
    progress : bool
        Show a progress bar on rank 0.
    """

    choices: ClassVar[dict[str, tuple]] = {
        "precision": ("fp32", "bf16"),
        "parallel": ("ddp", "fsdp"),
        "device": ("auto", "cpu", "cuda"),
        "resume": ("auto", "always", "never"),
    }

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
    compile: bool = False
    tensorboard: bool | None = None
    progress: bool = True

    def __post_init__(self):
        for name in ("steps", "grad_accum", "log_every", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"run.{name} must be at least 1, got {getattr(self, name)}.")


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


#: Settings that decide what a run computes, compared when it resumes (section -> keys; None:
#: all). Not compared: where it writes, logging, progress, checkpoint cadence, the device and
#: how ranks share the work (``grad_accum``, ``parallel``: the update does not depend on them).
TRAJECTORY_SETTINGS = {"data": ("path", "batch_size", "streaming"), "model": None,
                       "objective": None, "optim": None, "run": ("steps", "seed", "precision")}
#: Data settings that decide the order of the windows only when streaming.
_STREAMING_SETTINGS = ("shuffle_buffer", "num_workers")


def trajectory_differences(before: dict, now: PretrainConfig) -> list[str]:
    """The settings that change a run's trajectory and differ between two configs.

    Parameters
    ----------
    before : dict
        A config as a checkpoint stores it (``PretrainConfig.to_dict()``; neurofm 0.1.0's flat
        objective keys are read as today's terms, terms of weight 0 count as absent).
    now : PretrainConfig

    Returns
    -------
    list of str
        ``"key: old then, new now"`` per difference, in key order (empty: the same run).

    Raises
    ------
    ValueError
        ``before`` is not a config this neurofm reads.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = _trajectory(PretrainConfig.from_dict(before, where="the checkpoint's config"))
    new = _trajectory(now)
    return [f"{key}: {old.get(key, '(not set)')!r} then, {new.get(key, '(not set)')!r} now"
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


def _trajectory(config: PretrainConfig) -> dict:
    """``{dotted key: value}`` of the settings in :data:`TRAJECTORY_SETTINGS`."""
    raw = config.to_dict()
    raw["objective"]["terms"] = {name: term for name, term in raw["objective"]["terms"].items()
                                 if term.get("weight", 1.0) != 0}
    keys = dict(TRAJECTORY_SETTINGS)
    if config.data.streaming:
        keys["data"] = keys["data"] + _STREAMING_SETTINGS
    picked = {section: raw[section] if names is None else
              {name: raw[section][name] for name in names} for section, names in keys.items()}
    flat = _flatten(picked)
    path = flat.get("data.path", "")
    if not path.startswith("sim:") and Path(path).expanduser().exists():
        flat["data.path"] = str(Path(path).expanduser().resolve())
    return flat


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


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
    """``cls`` from the mapping ``raw``, every key and value checked (nested sections too)."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: {prefix.rstrip('.') or 'config'} must be a mapping, "
                         f"got {raw!r}.")
    if cls is ObjectiveConfig:
        raw = _upgrade_flat_objective(raw, where)
    check_keys(raw, field_names(cls), where=where, prefix=prefix)
    hints = typing.get_type_hints(cls)
    choices = getattr(cls, "choices", {})
    kwargs = {}
    for name, value in raw.items():
        key = prefix + name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value or {}, where, key + ".")
        elif cls is ObjectiveConfig and name == "terms":
            kwargs[name] = _build_terms(value, where, key + ".")
        else:
            kwargs[name] = _coerce(value, hint, key, where, choices.get(name))
    return cls(**kwargs)


def _build_terms(raw, where: str, prefix: str) -> dict:
    """``objective.terms``: ``{term name: section}``, each section built as its term's Config."""
    terms = {}
    for name, section in _coerce(raw, dict, prefix.rstrip("."), where).items():
        try:
            config_cls = term_class(name).Config
        except ValueError as err:
            raise ValueError(f"{where}: {prefix}{name}: {err}") from None
        terms[name] = _build(config_cls, section or {}, where, f"{prefix}{name}.")
    return terms


def _upgrade_flat_objective(raw: dict, where: str) -> dict:
    """Map 0.1's flat objective keys onto ``terms`` (values checked under their 0.1 names)."""
    flat = {key: value for key, value in raw.items() if key in FLAT_TERM_KEYS}
    if not flat:
        return raw
    if "terms" in raw:
        raise ValueError(f"{where}: objective has both terms and the flat key(s) "
                         f"{', '.join(flat)}; move them under objective.terms.")
    for key, value in flat.items():
        term, name = FLAT_TERM_KEYS[key]
        config_cls = term_class(term).Config
        flat[key] = _coerce(value, typing.get_type_hints(config_cls)[name], f"objective.{key}",
                            where, config_cls.choices.get(name))
    renames = ", ".join(f"objective.{key} -> objective.terms.{'.'.join(FLAT_TERM_KEYS[key])}"
                        for key in flat)
    warnings.warn(f"{where}: the flat objective keys are deprecated and will be removed in "
                  f"neurofm 0.3; write them under objective.terms ({renames}).",
                  DeprecationWarning, stacklevel=2)
    rest = {key: value for key, value in raw.items() if key not in flat}
    return {**rest, "terms": terms_from_flat_keys(flat)}


def _coerce(value, hint, key: str, where: str, choices: tuple | None = None):
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
    if choices and value not in choices:
        raise ValueError(f"{where}: {key} is {value!r}; choose one of {', '.join(choices)}.")
    return value
