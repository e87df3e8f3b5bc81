"""The cells of a comparison: one :func:`~neurofm.eval.run.run_evaluation` run each, keyed by a
hash of what decides its result, and their records on disk.

A cell is one model x task x mode x protocol. Two roles:

``model``
    a pretrained model as given in ``--models`` (a folder, a Hub repo id, ``cbramod:SRC``), run
    without the random-init row and without baselines;
``random-init``
    a registry architecture at random init, re-initialised with each seed: a registry name given
    in ``--models`` (``criss_cross_small``, ``criss_cross_small?dim=64&depth=4``), or the twin of
    a pretrained model (its architecture and hyperparameters, fed the model's preprocessing).
    A registry name and a twin that are the same model are one cell. The first random-init cell
    of a task, mode and protocol also scores the task's baselines.

The key (:attr:`Cell.key`) hashes the run's settings (model, data, protocol, seeds,
preprocessing, training ...) and, for a pretrained model, the content of its files, so a
finished cell is found again and a changed setting gives a new cell. Left out of the key
(:func:`keyed_settings`): the output folder, the embedding cache, the device and the forward
batch size (they do not change what is measured), the task config's ``published`` /
``to_check`` lists (read from the config when the table is made), and settings the run does
not use (training settings of a closed-form probe without supervised baselines ...).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qsl

import torch
import yaml

from neurofm._version import __version__
from neurofm.data.spec import PreprocessSpec
from neurofm.eval.baselines import SUPERVISED_LABELS
from neurofm.eval.run import TRAINED_HEADS
from neurofm.eval.settings import EvalSettings
from neurofm.hub.loading import IMPORT_PREFIXES
from neurofm.models import create_model, list_models

#: Settings that do not change what a cell measures, left out of its key.
UNKEYED = ("out", "cache_dir", "device", "batch_size", "published", "to_check", "task_config")
#: Files of a model folder (or a published-weights folder) whose content is part of the key.
MODEL_FILES = ("config.json", "*.safetensors", "*.pth", "*.pt", "*.bin")


@dataclass(frozen=True)
class ModelEntry:
    """One ``--models`` entry.

    Attributes
    ----------
    label : str
        As given (a row of the table).
    spec : str
        What :func:`neurofm.eval.model_loading.load_model` loads: the entry itself, or the registry name
        without its ``?key=value`` hyperparameters.
    overrides : dict
        Hyperparameters of a registry name (``criss_cross_small?dim=64&depth=4``).
    """

    label: str
    spec: str
    overrides: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> ModelEntry:
        """Read an entry; a registry name's hyperparameters are checked by building the model
        (on the meta device: no weights are allocated).

        Raises
        ------
        ValueError
            An empty entry, a hyperparameter the architecture does not take, or something that
            is neither a registry name, a path, a Hub repo id nor ``cbramod:``/``labram:``.
        """
        text = text.strip()
        if not text:
            raise ValueError("--models has an empty entry; separate model specs by single "
                             "commas.")
        name, _, query = text.partition("?")
        if name in list_models():
            overrides = {k: yaml.safe_load(v) for k, v in
                         parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))}
            try:
                random_init_identity(name, overrides)
            except (TypeError, ValueError) as err:
                raise ValueError(f"--models {text}: {err}") from None
            return cls(text, name, overrides)
        if not (Path(text).expanduser().exists() or "/" in text or ":" in text):
            raise ValueError(f"--models {text}: no such folder, and not a registry name "
                             f"({', '.join(list_models())}), a Hub repo id (org/name) or "
                             "cbramod:SRC / labram:SRC.")
        return cls(text, text)

    @property
    def random_init(self) -> bool:
        """True for a registry name (random init)."""
        return self.spec in list_models()

    def source(self) -> dict:
        """What identifies the pretrained weights: a SHA-256 of each model file for a local
        folder or file, the repo id for a Hub model ({} for a registry name)."""
        if self.random_init:
            return {}
        prefix, sep, rest = self.spec.partition(":")
        where = rest if sep and prefix.lower() in IMPORT_PREFIXES else self.spec
        path = Path(where).expanduser()
        if path.is_file():
            return {"files": {path.name: _file_digest(path)}}
        if path.is_dir():
            files = sorted({p for pattern in MODEL_FILES for p in path.glob(pattern)
                            if p.is_file()})
            return {"files": {p.name: _file_digest(p) for p in files}}
        return {"hub": where}


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain(value):
    """``value`` as JSON gives it back (tuples as lists), so equal settings hash equally."""
    return json.loads(json.dumps(value, default=str))


@lru_cache(maxsize=64)
def _identity(arch: str, config_json: str) -> tuple[str, PreprocessSpec]:
    with torch.device("meta"):
        model = create_model(arch, **json.loads(config_json))
    return json.dumps(_plain(model.config), sort_keys=True), model.preprocessing


def random_init_identity(arch: str, config: dict) -> tuple[dict, PreprocessSpec]:
    """Every hyperparameter of ``arch`` built with ``config`` (defaults filled in) and its
    default preprocessing; built on the meta device (no weights allocated)."""
    config_json, spec = _identity(arch, json.dumps(_plain(config), sort_keys=True))
    return json.loads(config_json), spec


@dataclass(frozen=True)
class Cell:
    """One run of the grid.

    Attributes
    ----------
    role : {"model", "random-init"}
    task, mode, protocol : str
        The task's label, ``probe``/``finetune`` and the protocol.
    settings : EvalSettings
        The run's settings (``out`` is set by the store).
    source : dict
        :meth:`ModelEntry.source` of a pretrained model ({} at random init).
    """

    role: str
    task: str
    mode: str
    protocol: str
    settings: EvalSettings
    source: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        """16 hex digits of a SHA-256 of the keyed settings and the model's source."""
        text = json.dumps({"role": self.role, "settings": keyed_settings(self.settings),
                           "source": self.source},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def identity(self) -> str:
        """The key without the baselines: one model run, whichever cell scores the baselines."""
        return replace(self, settings=replace(self.settings, baselines=[])).key


def keyed_settings(settings: EvalSettings) -> dict:
    """The settings that decide a run's result: all but :data:`UNKEYED`, and without those the
    run does not use (``train`` when nothing is trained, ``freeze``/``lora`` outside
    fine-tuning, ``shots`` outside few-shot, ``split`` outside the official protocol)."""
    keyed = {k: v for k, v in asdict(settings).items() if k not in UNKEYED}
    trains = (settings.mode == "finetune" or settings.pool in TRAINED_HEADS
              or any(b in SUPERVISED_LABELS for b in settings.baselines))
    unused = [name for name, used in (("train", trains),
                                      ("freeze", settings.mode == "finetune"),
                                      ("lora", settings.mode == "finetune"),
                                      ("shots", settings.protocol == "few-shot"),
                                      ("split", settings.protocol == "official"),
                                      ("importance_trials", settings.importance)) if not used]
    for name in unused:
        keyed.pop(name)
    return keyed


def model_cell(entry: ModelEntry, base: EvalSettings, *, task: str) -> Cell:
    """The cell of a pretrained model: its row only (no random-init row, no baselines)."""
    settings = replace(base, model=entry.spec, model_overrides={}, baselines=[],
                       random_init_reference=False)
    return Cell("model", task, base.mode, base.protocol, settings, entry.source())


def random_init_cell(arch: str, config: dict, model_spec: PreprocessSpec | dict | None,
                     base: EvalSettings, *, task: str) -> Cell:
    """The cell of ``arch`` at random init with hyperparameters ``config``, fed the inputs a model
    of preprocessing ``model_spec`` gets (the fields that differ from the architecture's default
    preprocessing go under the task config's ``preprocessing``).

    The settings name every hyperparameter, so a registry name and the twin of a pretrained
    model of the same architecture and hyperparameters are the same cell.
    """
    config, default = random_init_identity(arch, config)
    pretrained = default if model_spec is None else \
        PreprocessSpec.from_dict(model_spec) if isinstance(model_spec, dict) else model_spec
    spec_fields = {name: _plain(getattr(pretrained, name))
                   for name in default.differing_fields(pretrained)}
    settings = replace(base, model=arch, model_overrides=config, random_init_reference=False,
                       preprocessing={**spec_fields, **base.preprocessing})
    return Cell("random-init", task, base.mode, base.protocol, settings)


def registry_cell(entry: ModelEntry, base: EvalSettings, *, task: str) -> Cell:
    """The random-init cell of a registry name given in ``--models``."""
    return random_init_cell(entry.spec, entry.overrides, None, base, task=task)


def twin_cell(model_results: dict, base: EvalSettings, *, task: str) -> Cell | None:
    """The random-init twin of a pretrained model, from its cell's ``results.json``; None when
    its architecture is not in the registry (cannot be built at random init)."""
    model = model_results["model"]
    if model["architecture"] not in list_models():
        return None
    return random_init_cell(model["architecture"], model["config"],
                            model_results["preprocessing"]["model_spec"], base, task=task)


class CellStore:
    """The cells of a comparison folder: ``cells/<key>/`` (the run's ``results.json``,
    ``results.md``, figures) and ``cells/<key>.json`` (its record).

    A record holds the cell's ``status`` (``done`` or ``failed``, with the ``error``), its
    settings, the model's source, ``seconds``, ``attempts`` and the headline summary. A cell is
    finished when its record says ``done`` and its ``results.json`` is there.
    """

    def __init__(self, out):
        self.root = Path(out) / "cells"

    def folder(self, key: str) -> Path:
        return self.root / key

    def record(self, key: str) -> dict | None:
        try:
            return json.loads((self.root / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def finished(self, key: str) -> dict | None:
        """The record of a finished cell, else None."""
        record = self.record(key)
        if record and record.get("status") == "done" and \
                (self.folder(key) / "results.json").is_file():
            return record
        return None

    def results(self, key: str) -> dict:
        """The ``results.json`` of a finished cell."""
        return json.loads((self.folder(key) / "results.json").read_text(encoding="utf-8"))

    def write(self, cell: Cell, *, label: str, status: str, seconds: float,
              error: str | None = None, headline: dict | None = None) -> dict:
        """Write the record of ``cell`` atomically and return it."""
        previous = self.record(cell.key) or {}
        record = {"key": cell.key, "status": status, "error": error, "role": cell.role,
                  "label": label, "task": cell.task, "mode": cell.mode,
                  "protocol": cell.protocol, "seconds": round(seconds, 3),
                  "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                  "attempts": int(previous.get("attempts", 0)) + 1,
                  "neurofm_version": __version__, "headline": headline,
                  "settings": asdict(cell.settings), "source": cell.source}
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / f"{cell.key}.json"
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps(record, indent=1, default=str) + "\n", encoding="utf-8")
        tmp.replace(target)
        return record
