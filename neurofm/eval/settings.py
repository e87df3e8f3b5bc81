"""The settings of one evaluation run, and the task configs (``finetune/<task>.yaml``) they come from.

::

    task = read_task_config("finetune/physionet_mi.yaml")            # a TaskConfig
    task = task.merged(TaskConfig(protocol="loso", train={"epochs": 5}))   # what flags say
    settings = evaluation_settings("finetune", task, model="runs/cc/model", out="results/")
    run_evaluation(settings)

Settings are merged in one order: :class:`EvalSettings`' defaults, then the task config, then the
command line's flags (``neurofm probe`` / ``neurofm finetune`` pass their flags as a
:class:`TaskConfig` whose unset fields are None). A task config's keys are the fields of
:class:`TaskConfig`; any other key is an error naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from neurofm.eval.baselines import BASELINES
from neurofm.eval.metrics import METRICS
from neurofm.eval.protocols import PROTOCOLS
from neurofm.eval.task_preprocessing import TaskPreprocessing
from neurofm.strict import check_keys, from_dict


@dataclass
class EvalSettings:
    """Everything one evaluation run needs (the CLI flags and the task config, merged).

    Attributes
    ----------
    model : str
        A model directory (``config.json`` + ``model.safetensors``), a Hub repo id, published
        weights (``cbramod:``/``labram:``) or a registry name (random init).
    revision : str or None
        Branch, tag or commit when ``model`` is a Hub repo id (default main).
    data : str
        Anything :func:`neurofm.datasets.load_dataset` accepts.
    out : str
        Output directory.
    mode : {"probe", "finetune"}
    protocol : str
        One of :data:`neurofm.eval.protocols.PROTOCOLS`.
    seeds : int
        Number of seeds: ``seed``, ``seed + 1``, ..., ``seed + seeds - 1`` (:attr:`seed_list`).
    seed : int
        The first seed (``--seed``; default 0).
    model_overrides : dict
        Hyperparameter overrides for a registry name (``dim=32``).
    preprocessing : dict
        Overrides of the model's recorded preprocessing: :class:`~neurofm.data.spec.PreprocessSpec`
        fields (None values are ignored). A pretrained model refuses other ``sfreq`` or
        ``patch_samples`` than its own; other overrides are listed in ``results.json``.
    baselines : list of str
        Baseline rows (:data:`neurofm.eval.baselines.BASELINES`).
    random_init_reference : bool
        Add a random-init row of the same architecture when ``model`` is pretrained.
    on_nan : {"error", "drop"}
        Trials holding NaN/Inf samples: stop naming each (file, subject, onset), or leave them
        out and list them in ``results.json`` → ``data.dropped_trials``.
    split : dict, optional
        A paper's split of the data (the task config's ``split:`` block,
        :class:`SplitConfig` fields), used by ``protocol="official"``.
    published : list of dict
        The task config's published numbers (:class:`PublishedResult` fields), copied into
        ``results.json``.
    to_check : list of str
        What the task config could not verify against the paper's code, copied into
        ``results.json``.
    target : {"trial", "channel"}
        What the labels belong to: trials (or whole recordings of an intracranial task), or
        contacts (``channel``: per-contact embeddings scored, folds over patients; needs a data
        set that labels contacts, ``omni-ieeg:PATH?task=soz``).
    """

    model: str
    data: str
    out: str
    mode: str = "probe"
    protocol: str = "cross-subject"
    shots: int | None = None
    n_folds: int = 5
    seeds: int = 5
    pool: str = "mean"
    model_overrides: dict = field(default_factory=dict)
    preprocessing: dict = field(default_factory=dict)
    baselines: list = field(default_factory=lambda: ["bandpower"])
    random_init_reference: bool = True
    importance: bool = True
    importance_trials: int = 100
    batch_size: int = 64
    device: str = "cpu"
    cache_dir: str | None = None
    freeze: str = "none"
    lora: int | None = None
    train: dict = field(default_factory=dict)
    task_config: str | None = None
    on_nan: str = "error"
    split: dict | None = None
    published: list = field(default_factory=list)
    to_check: list = field(default_factory=list)
    seed: int = 0
    revision: str | None = None
    target: str = "trial"

    @property
    def seed_list(self) -> list[int]:
        """The seeds of the run, ``[seed, ..., seed + seeds - 1]``."""
        return list(range(self.seed, self.seed + self.seeds))


#: Poolings each mode supports: ``channels`` concatenates per-channel features (one fixed
#: montage), for the probe and for a fine-tuned head alike; ``patches`` is an MLP over every
#: patch representation (CBraMod's classifier), trained on the frozen backbone in a probe.
POOLINGS = {"probe": ("mean", "channels", "attention", "patches"),
            "finetune": ("mean", "channels", "attention", "patches")}
#: What the labels of a task may belong to (``--target``).
TARGETS = ("trial", "channel")
#: What ``--on-nan`` may say about trials with NaN/Inf samples.
ON_NAN = ("error", "drop")


def check_settings(settings: EvalSettings) -> None:
    """Reject option combinations that cannot run, before any work is done."""
    if settings.mode not in POOLINGS:
        raise ValueError(f"mode must be one of {', '.join(POOLINGS)}; got {settings.mode!r}.")
    allowed = POOLINGS[settings.mode]
    if settings.pool not in allowed:
        raise ValueError(f"--pool {settings.pool} is not available for {settings.mode}; "
                         f"use one of: {', '.join(allowed)}.")
    if settings.on_nan not in ON_NAN:
        raise ValueError(f"--on-nan must be one of {', '.join(ON_NAN)}; got {settings.on_nan!r}.")
    if settings.target not in TARGETS:
        raise ValueError(f"--target must be one of {', '.join(TARGETS)}; got "
                         f"{settings.target!r}.")
    if settings.seed < 0:
        raise ValueError(f"--seed must be 0 or more, got {settings.seed}.")


@dataclass
class SplitConfig:
    """A paper's split of a data set (a task config's ``split:`` block).

    Attributes
    ----------
    train, val, test : list
        Subject ids (``by: subject``) or session names (``by: session``) of each part; ``val``
        may be empty (no validation part).
    by : {"subject", "session"}
    source : str
        Where the split comes from (paper section, the authors' code).
    """

    train: list
    test: list
    val: list = field(default_factory=list)
    by: str = "subject"
    source: str | None = None

    @classmethod
    def from_dict(cls, values: dict, *, where: str = "split") -> SplitConfig:
        config = from_dict(cls, values, where=where)
        if config.by not in ("subject", "session"):
            raise ValueError(f"{where}: by must be 'subject' or 'session'; got {config.by!r}.")
        if not config.train or not config.test:
            raise ValueError(f"{where}: train and test must each list at least one "
                             f"{config.by}.")
        return config

    def parts(self) -> dict:
        return {"train": list(self.train), "val": list(self.val or []), "test": list(self.test)}


@dataclass
class PublishedResult:
    """One number a paper reports for a task (a task config's ``published:`` list).

    Attributes
    ----------
    model : str
        The model as the paper names it (``CBraMod``).
    metric : str
        A metric of :data:`neurofm.eval.metrics.METRICS` (``balanced_accuracy``,
        ``cohen_kappa``, ``f1_weighted``, ``auroc`` …).
    value : float
    source : str
        Paper and table.
    std : float, optional
        The spread the paper reports beside it.
    protocol : str, optional
        How the paper evaluated, where it differs from the config's (words).
    uncertain : bool
        True when the number was transcribed from memory or is otherwise unverified: check it
        against the source before citing it.
    """

    model: str
    metric: str
    value: float
    source: str
    std: float | None = None
    protocol: str | None = None
    uncertain: bool = False

    @classmethod
    def from_dict(cls, values: dict, *, where: str = "published") -> PublishedResult:
        entry = from_dict(cls, values, where=where)
        known = sorted({m for names in METRICS.values() for m in names})
        if entry.metric not in known:
            raise ValueError(f"{where}: metric {entry.metric!r} is not one neurofm reports; use "
                             f"one of {', '.join(known)}.")
        entry.value = float(entry.value)
        return entry


@dataclass
class TaskConfig:
    """A task config (``finetune/<task>.yaml``), or the flags that override one.

    A field left None (an empty ``preprocessing`` / ``train``) takes the value from below:
    the task config's under the flags, :class:`EvalSettings`' default under the task config.

    Attributes
    ----------
    task : str
        The task's name (the file's stem).
    data : str
        Data set spec (:func:`neurofm.datasets.load_dataset`); ``~`` is expanded.
    protocol, shots, n_folds, seeds, pool, freeze, target
        As in :class:`EvalSettings`.
    baselines : list of str or str
        Baseline rows; a comma-separated string, or ``"none"`` for no baseline.
    preprocessing : dict
        :class:`~neurofm.data.spec.PreprocessSpec` fields that override the model's, and the
        paper's ``source``, ``filter``, ``filter_order`` and ``window``
        (:class:`~neurofm.eval.task_preprocessing.TaskPreprocessing`).
    train : dict
        Fine-tuning settings (:class:`~neurofm.eval.training.FinetuneConfig` fields).
    split : dict
        A paper's split (:class:`SplitConfig`: ``train``, ``val``, ``test``, ``by``,
        ``source``) for ``protocol: official``.
    also_protocols : list of str
        Further protocols the task is run with (``neurofm compare`` runs each; ``probe`` and
        ``finetune`` run ``protocol`` unless ``--protocol`` names another).
    published : list of dict
        Numbers the papers report (:class:`PublishedResult`: ``model``, ``metric``,
        ``value``, ``source``, ``std``, ``protocol``, ``uncertain``).
    to_check : list of str
        What the config could not verify against the paper's code (carried to
        ``results.json``).
    reference, notes
        Free text for readers; not used.
    """

    task: str | None = None
    data: str | None = None
    protocol: str | None = None
    shots: int | None = None
    n_folds: int | None = None
    seeds: int | None = None
    pool: str | None = None
    freeze: str | None = None
    target: str | None = None
    baselines: list | str | None = None
    preprocessing: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    split: dict | None = None
    also_protocols: list | None = None
    published: list | None = None
    to_check: list | None = None
    reference: str | None = None
    notes: str | None = None

    @classmethod
    def from_dict(cls, values: dict, *, where: str = "task config") -> TaskConfig:
        """Build from a mapping, refusing keys that are not fields and checking the ``split``,
        ``published``, ``also_protocols`` and ``preprocessing`` entries (errors name
        ``where``)."""
        config = from_dict(cls, values, where=where)
        config.preprocessing = dict(config.preprocessing or {})
        config.train = dict(config.train or {})
        TaskPreprocessing.from_dict(config.preprocessing, where=f"{where}: preprocessing")
        if config.split is not None:
            SplitConfig.from_dict(config.split, where=f"{where}: split")
        for i, entry in enumerate(config.published or []):
            if not isinstance(entry, dict):
                message = f"{where}: published[{i}] must be a mapping with model, metric, value "
                raise ValueError(message + "and source.")  # noqa: TRY004 (a config error)
            PublishedResult.from_dict(entry, where=f"{where}: published[{i}]")
        unknown = sorted(set(config.also_protocols or []) - set(PROTOCOLS))
        if unknown:
            raise ValueError(f"{where}: also_protocols {unknown} are not protocols; use "
                             f"{', '.join(PROTOCOLS)}.")
        return config

    def published_results(self) -> list[PublishedResult]:
        """The ``published`` entries, checked."""
        return [PublishedResult.from_dict(e) for e in self.published or []]

    def merged(self, flags: TaskConfig) -> TaskConfig:
        """This config with every value that ``flags`` sets (not None) put over it.

        ``preprocessing`` and ``train`` merge key by key; a ``line_freq`` in ``flags`` replaces
        this config's deprecated ``notch``.
        """
        changes = {name: value for name, value in vars(flags).items()
                   if value is not None and name not in ("preprocessing", "train")}
        preprocessing = {**self.preprocessing, **flags.preprocessing}
        if "line_freq" in flags.preprocessing:
            preprocessing.pop("notch", None)
        return replace(self, **changes, preprocessing=preprocessing,
                       train={**self.train, **flags.train})


def read_task_config(path) -> TaskConfig:
    """Read a task config YAML (``finetune/<task>.yaml``), checking its keys.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not YAML, not a mapping, or an unknown key (named, with the valid keys).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Task config {path} not found; see finetune/ for examples.")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of settings.")  # noqa: TRY004
    return TaskConfig.from_dict(values, where=str(path))


#: :class:`EvalSettings` fields that a task config also sets.
_FROM_TASK = ("protocol", "shots", "n_folds", "seeds", "pool", "freeze", "target")


def evaluation_settings(mode: str, task: TaskConfig, *, model: str, out: str,
                        **options) -> EvalSettings:
    """The settings of one run: :class:`EvalSettings`' defaults under ``task``.

    Parameters
    ----------
    mode : {"probe", "finetune"}
    task : TaskConfig
        The task config with the flags merged in (:meth:`TaskConfig.merged`).
    model, out : str
        The model and the output directory.
    **options
        Fields of :class:`EvalSettings` that no task config sets (``model_overrides``,
        ``batch_size``, ``device``, ``cache_dir``, ``lora``, ``importance``,
        ``random_init_reference``, ``task_config`` ...).

    Raises
    ------
    ValueError
        No data set, an unknown baseline, or an option that is not a run setting.
    """
    if not task.data:
        raise ValueError("No data set: pass --data or a --config that names one.")
    run_only = [name for name in EvalSettings.__dataclass_fields__
                if name not in (*_FROM_TASK, "model", "out", "mode", "data", "baselines",
                                "preprocessing", "train", "split", "published", "to_check")]
    check_keys(options, run_only, where="evaluation_settings options")
    data = os.path.expanduser(task.data) if task.data.startswith("~") else task.data
    chosen = {name: getattr(task, name) for name in _FROM_TASK
              if getattr(task, name) is not None}
    return EvalSettings(model=model, data=data, out=out, mode=mode,
                        baselines=_baseline_names(task.baselines),
                        preprocessing=dict(task.preprocessing), train=dict(task.train),
                        split=None if task.split is None else dict(task.split),
                        published=[dict(e) for e in task.published or []],
                        to_check=[str(t) for t in task.to_check or []],
                        **chosen, **options)


def _baseline_names(baselines) -> list[str]:
    """``["bandpower"]`` when unset; a comma-separated string or ``"none"`` read as a list."""
    if baselines is None:
        return ["bandpower"]
    if isinstance(baselines, str):
        baselines = [] if baselines.strip() == "none" else \
            [b.strip() for b in baselines.split(",") if b.strip()]
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise ValueError(f"Unknown baseline(s) {unknown}; choose from {', '.join(BASELINES)}.")
    return list(baselines)
