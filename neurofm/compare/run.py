"""Run a comparison grid cell by cell: resumable, one progress line per cell, failures recorded.

For each task (its data loaded once, when a cell needs it), for each mode and protocol:

1. one ``model`` cell per pretrained model given (its row alone);
2. the ``random-init`` cells: each registry name given, and the twin of each pretrained model
   whose architecture is in the registry (built from the model cell's ``results.json``:
   architecture, hyperparameters, preprocessing), each distinct model once. The random-init
   cell of the first model that has one (the model itself for a registry name, else its twin)
   also scores the task's baselines, so the twins of a task are computed once per task, mode
   and protocol, not once per model, and the baselines once per task and protocol: they do not
   depend on the mode (same folds, inputs and training settings), so the first mode's scores
   stand in the later modes' columns too.

A cell whose record says it finished (:class:`~neurofm.compare.cells.CellStore`) is not run
again: a rerun of a finished grid does no model work, and a changed setting runs only the cells
whose key it changes. A cell that raises is recorded with its reason and the grid goes on.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from neurofm.compare.cells import (
    Cell,
    CellStore,
    ModelEntry,
    model_cell,
    random_init_identity,
    registry_cell,
    twin_cell,
)
from neurofm.compare.table import GroupCells, write_comparison
from neurofm.compare.tasks import TaskEntry
from neurofm.datasets import load_dataset
from neurofm.eval.run import run_evaluation
from neurofm.eval.settings import EvalSettings, TaskConfig, check_settings, evaluation_settings
from neurofm.folder_lock import FolderLock
from neurofm.logs import get_logger, verbose
from neurofm.output_folder import claim_output_folder

logger = get_logger(__name__)

#: The command that writes a comparison folder (its output-folder marker).
COMMAND = "neurofm compare"
#: The lock a running comparison holds in its folder.
LOCK_NAME = ".neurofm-lock"
#: Modes a comparison runs.
MODES = ("probe", "finetune")
#: Which protocols of each task are run: ``all`` (``protocol`` and ``also_protocols``) or
#: ``main`` (``protocol`` only).
PROTOCOL_CHOICES = ("all", "main")


@dataclass
class CompareSettings:
    """What ``neurofm compare`` is asked to do.

    Attributes
    ----------
    models : list of str
        Model specs (rows, as given): model folders, Hub repo ids, ``cbramod:SRC`` /
        ``labram:SRC``, registry names (random init) with optional hyperparameters
        (``criss_cross_small?dim=64``).
    tasks : list of str
        Shipped task names (``finetune/<name>.yaml``) or task config paths (columns, as given).
    out : str
        The comparison folder.
    modes : list of str
        ``probe`` and/or ``finetune``.
    seeds : int, optional
        Seeds per cell (default: each task config's).
    epochs : int, optional
        ``train.epochs`` of fine-tuning, trained probe heads and supervised baselines (default:
        each task config's).
    baselines : str, optional
        Comma-separated baselines, or ``none`` (default: each task config's).
    protocols : {"all", "main"}
    train : dict
        Further ``train`` settings over each task config's (library use, e.g. tests).
    batch_size, device, cache_dir, on_nan
        As in :class:`~neurofm.eval.settings.EvalSettings`.
    """

    models: list
    tasks: list
    out: str
    modes: list = field(default_factory=lambda: ["probe"])
    seeds: int | None = None
    epochs: int | None = None
    baselines: str | None = None
    protocols: str = "all"
    train: dict = field(default_factory=dict)
    batch_size: int = 64
    device: str = "cpu"
    cache_dir: str | None = None
    on_nan: str = "error"

    def overrides(self) -> TaskConfig:
        """What these settings put over every task config."""
        train = {**self.train, **({"epochs": self.epochs} if self.epochs is not None else {})}
        return TaskConfig(seeds=self.seeds, baselines=self.baselines, train=train)


def _split(items, what: str) -> list[str]:
    if isinstance(items, str):
        items = items.split(",")
    items = [str(i).strip() for i in items]
    if not items or not all(items):
        raise ValueError(f"--{what} needs one or more entries separated by commas.")
    repeated = sorted({i for i in items if items.count(i) > 1})
    if repeated:
        raise ValueError(f"--{what} names {', '.join(repeated)} more than once.")
    return items


class _Grid:
    """The cells of one comparison and the state of running them."""

    def __init__(self, settings: CompareSettings, models: list[ModelEntry],
                 tasks: list[TaskEntry], store: CellStore):
        self.settings, self.models, self.tasks, self.store = settings, models, tasks, store
        self.groups: list[GroupCells] = []
        #: (task, protocol) -> key of the cell that scored the task's baselines.
        self.baseline_keys: dict[tuple[str, str], str] = {}
        self.done = 0
        self.failed: list[dict] = []
        self.bases = {(task.label, mode, protocol): self._base_settings(task, mode, protocol)
                      for task in tasks for mode in settings.modes
                      for protocol in task.protocols(settings.protocols)}
        registry = {json.dumps(random_init_identity(m.spec, m.overrides)[0], sort_keys=True)
                    for m in models if m.random_init}
        #: Random-init cells a task, mode and protocol may need before the twins are known: the
        #: registry names given, and one twin per pretrained model.
        self.random_init_bound = len(registry) + sum(not m.random_init for m in models)
        #: Cells to run: an upper bound (each pretrained model and its own twin), made exact
        #: group by group as the twins become known.
        self.planned = len(self.bases) * (sum(not m.random_init for m in models)
                                          + self.random_init_bound)
        self._trials = None

    def _base_settings(self, task: TaskEntry, mode: str, protocol: str) -> EvalSettings:
        """The settings every cell of the task, mode and protocol starts from (checked)."""
        config = task.config.merged(self.settings.overrides()).merged(
            TaskConfig(protocol=protocol))
        if not config.data:
            raise ValueError(f"{task.path} names no data set (data:); add one.")
        settings = evaluation_settings(
            mode, config, model="", out="", batch_size=self.settings.batch_size,
            device=self.settings.device, cache_dir=self.settings.cache_dir, importance=False,
            random_init_reference=False, task_config=str(task.path), on_nan=self.settings.on_nan)
        try:
            check_settings(settings)
        except ValueError as err:
            raise ValueError(f"{task.path} ({mode}): {err}") from None
        return settings

    def run_task(self, task: TaskEntry) -> None:
        self._trials = None
        groups = [(mode, protocol) for mode in self.settings.modes
                  for protocol in task.protocols(self.settings.protocols)]
        bases = {g: self.bases[(task.label, *g)] for g in groups}
        pretrained = [m for m in self.models if not m.random_init]
        model_keys: dict[tuple, dict[str, str]] = {}
        for group in groups:
            keys = model_keys[group] = {}
            for entry in pretrained:
                cell = model_cell(entry, bases[group], task=task.label)
                keys[entry.label] = cell.key
                self.run_cell(cell, entry.label)
        for group in groups:
            self.groups.append(self._random_init_cells(task, group, bases[group],
                                                       model_keys[group]))
        self._trials = None

    def _random_init_cells(self, task, group, base, model_keys) -> GroupCells:
        """Plan and run the random-init cells of one task, mode and protocol."""
        cells: dict[str, Cell] = {}          # identity -> cell, in order of first use
        owners: dict[str, str | None] = {}   # model label -> identity of its random-init cell
        notes = []
        for entry in self.models:
            if entry.random_init:
                cell = registry_cell(entry, base, task=task.label)
            elif self.store.finished(model_keys[entry.label]):
                cell = twin_cell(self.store.results(model_keys[entry.label]), base,
                                 task=task.label)
                if cell is None:
                    notes.append(f"{entry.label}: its architecture is not in the registry, so "
                                 "it has no random-init twin")
            else:
                cell = None                   # the model's cell failed: no twin to plan
            owners[entry.label] = None if cell is None else cell.identity
            if cell is not None and cell.identity not in cells:
                cells[cell.identity] = cell
        self.planned += len(cells) - self.random_init_bound
        scored = self.baseline_keys.get((task.label, group[1]))
        baseline_identity = None if scored else next(iter(cells), None)
        if baseline_identity is None and not scored and base.baselines:
            notes.append("no random-init cell to score the baselines with (every model cell "
                         "failed); rerun to retry")
        keys = {}
        for identity, cell in cells.items():
            if identity != baseline_identity:
                cell = replace(cell, settings=replace(cell.settings, baselines=[]))
            labels = [m for m, owner in owners.items() if owner == identity]
            self.run_cell(cell, _random_init_label(cell, labels, self.models))
            keys[identity] = cell.key
        if baseline_identity is not None and base.baselines:
            scored = self.baseline_keys[(task.label, group[1])] = keys[baseline_identity]
        return GroupCells(task=task.label, mode=group[0], protocol=group[1],
                          model_keys=dict(model_keys),
                          random_init_keys={m: None if o is None else keys[o]
                                            for m, o in owners.items()},
                          baseline_key=scored, notes=notes)

    def trials(self, task_data: str):
        """The task's trial set, loaded on first use (a loading error is raised for every cell
        that needs it)."""
        if self._trials is None:
            try:
                self._trials = load_dataset(task_data)
            except Exception as err:  # noqa: BLE001 - recorded by each cell that needs the data
                self._trials = err
        if isinstance(self._trials, Exception):
            raise self._trials
        return self._trials

    def run_cell(self, cell: Cell, label: str) -> dict:
        """Run ``cell`` unless it finished earlier; log one line; record the outcome."""
        self.done += 1
        where = (f"[{self.done}/{max(self.planned, self.done)}] {cell.task} · {cell.mode} · "
                 f"{cell.protocol} · {label}")
        finished = self.store.finished(cell.key)
        if finished is not None:
            logger.info("%s: finished earlier (%s)", where, _headline_text(finished))
            return finished
        start = time.perf_counter()
        cell = replace(cell, settings=replace(cell.settings,
                                              out=str(self.store.folder(cell.key))))
        try:
            payload = run_evaluation(cell.settings, trials=self.trials(cell.settings.data),
                                     verbose=_inner_level())
        except Exception as err:  # noqa: BLE001 - a failed cell is recorded, the grid goes on
            seconds = time.perf_counter() - start
            reason = f"{type(err).__name__}: {err}"
            record = self.store.write(cell, label=label, status="failed", seconds=seconds,
                                      error=reason)
            self.failed.append(record)
            logger.warning("%s: FAILED after %.1f s: %s", where, seconds, reason)
            return record
        seconds = time.perf_counter() - start
        metric = payload["headline_metric"]
        summary = payload["methods"][0]["summary"].get(metric, {})
        headline = {"metric": metric, **{k: summary.get(k) for k in
                                         ("mean", "ci_low", "ci_high", "n")}}
        record = self.store.write(cell, label=label, status="done", seconds=seconds,
                                  headline=headline)
        logger.info("%s: done in %.1f s (%s)", where, seconds, _headline_text(record))
        return record


def _random_init_label(cell: Cell, owners: list[str], models: list[ModelEntry]) -> str:
    """How a random-init cell is named in its progress line."""
    given = [m.label for m in models if m.random_init and m.label in owners]
    if given:
        return given[0]
    twins = ", ".join(owners)
    return f"{cell.settings.model} (random-init twin of {twins})"


def _headline_text(record: dict) -> str:
    head = record.get("headline") or {}
    if head.get("mean") is None:
        return "no score"
    low, high = head.get("ci_low"), head.get("ci_high")
    interval = "" if low is None or high is None else f" [{low:.3f}, {high:.3f}]"
    return f"{head['metric']} {head['mean']:.3f}{interval}"


def _inner_level():
    """The level each cell's run logs at: warnings only, unless debugging."""
    return None if get_logger().isEnabledFor(logging.DEBUG) else "WARNING"


@verbose
def run_comparison(settings: CompareSettings, *, overwrite: bool = False,
                   verbose=None) -> dict:
    """Run every cell of the grid that has not finished, then write the table.

    Writes ``compare.md``, ``compare.json`` and ``compare.png`` into ``settings.out`` and one
    folder per cell under ``cells/`` (:mod:`neurofm.compare.cells`). ``settings.out`` follows the
    output-folder rule (:func:`neurofm.output_folder.claim_output_folder`): new, empty or an
    earlier comparison's (``overwrite``: write into another folder anyway). A running comparison
    holds a lock in the folder; a second one on the same folder stops at once.

    Returns
    -------
    dict
        ``compare.json``'s content; ``n_failed`` counts the cells that failed this time.

    Raises
    ------
    ValueError
        Before any work: an unknown mode, a bad model spec, a repeated entry.
    FileNotFoundError
        A task that is neither a shipped name nor a config file.
    """
    models = [ModelEntry.parse(m) for m in _split(settings.models, "models")]
    tasks = [TaskEntry.read(t) for t in _split(settings.tasks, "tasks")]
    modes = _split(settings.modes, "mode")
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise ValueError(f"--mode {','.join(unknown)}: choose from {', '.join(MODES)}.")
    if settings.protocols not in PROTOCOL_CHOICES:
        raise ValueError(f"--protocols must be one of {', '.join(PROTOCOL_CHOICES)}; got "
                         f"{settings.protocols!r}.")
    settings = replace(settings, models=[m.label for m in models],
                       tasks=[t.label for t in tasks], modes=modes)
    out = Path(settings.out).expanduser()
    store = CellStore(out)
    grid = _Grid(settings, models, tasks, store)
    claim_output_folder(out, COMMAND, asdict(settings), overwrite=overwrite)
    with FolderLock(out / LOCK_NAME, COMMAND).acquire():
        logger.info("Comparing %d model(s) on %d task(s), %s: at most %d cell(s) (fewer when "
                    "random-init twins are shared)", len(models), len(tasks),
                    " and ".join(modes), grid.planned)
        for task in tasks:
            grid.run_task(task)
        payload = write_comparison(out, settings, models, tasks, grid.groups, store)
    payload["n_failed"] = len(grid.failed)
    if grid.failed:
        logger.warning("%d of %d cell(s) failed (reasons in %s, compare.md); rerun the same "
                       "command to retry them", len(grid.failed), grid.done,
                       out / "compare.json")
    return payload
