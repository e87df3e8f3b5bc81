"""The comparison table: ``compare.json``, ``compare.md`` and the heat map ``compare.png``.

Rows are the models as given in ``--models`` (then the task's baselines and the papers'
numbers), columns the tasks as given in ``--tasks`` (a task's further protocols as
``task (protocol)``), one table per mode. Each cell holds the task's headline metric as mean
[95 % CI] over seeds x folds; a pretrained model's cell also holds its random-init twin's and the
gain over it, paired by seed and fold (the twin is scored on the same folds and inputs). The
papers' numbers (each task config's ``published`` list) stand in the column of the task's own
protocol, and every way our run differs from the paper's setting is named below the table:
mode, protocol, seeds and training overrides, preprocessing, and what the config could not check
against the paper's code (``to_check``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from neurofm._version import __version__
from neurofm.compare.cells import CellStore, ModelEntry
from neurofm.compare.tasks import TaskEntry
from neurofm.data.spec import PreprocessSpec
from neurofm.eval.metrics import summarise
from neurofm.eval.report import _LABELS, write_json

MODE_TITLES = {"probe": "Frozen probe", "finetune": "Fine-tuning"}
#: Mark of a published number transcribed from memory or otherwise unverified.
UNCERTAIN = "†"


@dataclass
class GroupCells:
    """The cells of one task, mode and protocol, by model label.

    Attributes
    ----------
    model_keys : dict
        Pretrained model label -> key of its cell.
    random_init_keys : dict
        Model label -> key of its random-init cell (the model's own for a registry name, its
        twin's for a pretrained model), None where there is none.
    baseline_key : str or None
        The cell that scored the task's baselines (for a later mode, the first mode's cell of
        the same task and protocol: the baselines do not depend on the mode).
    notes : list of str
    """

    task: str
    mode: str
    protocol: str
    model_keys: dict = field(default_factory=dict)
    random_init_keys: dict = field(default_factory=dict)
    baseline_key: str | None = None
    notes: list = field(default_factory=list)

    def column(self, task: TaskEntry) -> str:
        """The column's name: the task as given, ``task (protocol)`` for a further protocol."""
        main = task.protocols()[0]
        return self.task if self.protocol == main else f"{self.task} ({self.protocol})"


def _number(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class _Cells:
    """Read the finished cells' results once each."""

    def __init__(self, store: CellStore):
        self.store = store
        self._results: dict[str, dict | None] = {}

    def results(self, key: str | None) -> dict | None:
        if key is None:
            return None
        if key not in self._results:
            self._results[key] = self.store.results(key) if self.store.finished(key) else None
        return self._results[key]

    def score(self, key: str | None, method: int = 0) -> dict:
        """Status, headline summary, run count and folder of a cell's ``method``-th row."""
        if key is None:
            return {"status": "not run", "error": None}
        record = self.store.record(key) or {}
        results = self.results(key)
        out = {"key": key, "run": f"cells/{key}", "seconds": record.get("seconds"),
               "status": record.get("status", "not run"), "error": record.get("error")}
        if results is None:
            return out
        metric = results["headline_metric"]
        row = results["methods"][method]
        stats = row["summary"].get(metric, {})
        return {**out, "metric": metric, "mean": _number(stats.get("mean")),
                "std": _number(stats.get("std")), "ci_low": _number(stats.get("ci_low")),
                "ci_high": _number(stats.get("ci_high")), "n_runs": row["n_runs"],
                "method": row["method"]}

    def gain(self, key: str, twin_key: str) -> dict | None:
        """The model minus its twin on the headline metric, paired by seed and fold."""
        model, twin = self.results(key), self.results(twin_key)
        if model is None or twin is None:
            return None
        metric = model["headline_metric"]
        twin_folds = {(f["seed"], f["fold"]): f["metrics"].get(metric)
                      for f in twin["methods"][0]["folds"]}
        diffs = [f["metrics"].get(metric) - twin_folds[(f["seed"], f["fold"])]
                 for f in model["methods"][0]["folds"]
                 if twin_folds.get((f["seed"], f["fold"])) is not None
                 and f["metrics"].get(metric) is not None]
        stats = summarise(diffs)
        return {"metric": metric, "mean": _number(stats["mean"]), "std": _number(stats["std"]),
                "ci_low": _number(stats["ci_low"]), "ci_high": _number(stats["ci_high"]),
                "n_pairs": stats["n"]}

    def input_differences(self, key: str, twin_key: str) -> list[str]:
        """How the twin's inputs differ from the model's (none expected)."""
        model, twin = self.results(key), self.results(twin_key)
        if model is None or twin is None:
            return []
        ours = PreprocessSpec.from_dict(model["preprocessing"]["settings"])
        theirs = PreprocessSpec.from_dict(twin["preprocessing"]["settings"])
        return ours.differences(theirs)


def comparison_cells(models: list[ModelEntry], groups: list[GroupCells],
                     cells: _Cells) -> list[dict]:
    """One object per model (and baseline) per task, mode and protocol (``compare.json``'s
    ``cells``)."""
    out = []
    for group in groups:
        where = {"task": group.task, "mode": group.mode, "protocol": group.protocol}
        for entry in models:
            twin_key = group.random_init_keys.get(entry.label)
            if entry.random_init:
                out.append({"model": entry.label, **where, "kind": "random-init",
                            **cells.score(twin_key)})
                continue
            key = group.model_keys[entry.label]
            cell = {"model": entry.label, **where, "kind": "pretrained", **cells.score(key),
                    "random_init": None, "gain": None}
            if twin_key is not None:
                twin = cells.score(twin_key)
                results = cells.results(twin_key)
                twin["architecture"] = results["model"]["architecture"] if results else None
                cell["random_init"] = twin
                cell["gain"] = cells.gain(key, twin_key)
                cell["inputs_differ_from_twin"] = cells.input_differences(key, twin_key)
            out.append(cell)
        results = cells.results(group.baseline_key)
        for i, method in enumerate((results or {}).get("methods", [])[1:], start=1):
            out.append({"model": method["method"], **where, "kind": "baseline",
                        **cells.score(group.baseline_key, i)})
    return out


# -- the papers' numbers and how our runs differ ----------------------------------------------
def published_numbers(task: TaskEntry) -> list[dict]:
    """The task config's ``published`` entries (``protocol``: the paper's, in words, where it
    differs from the config's), with the task and the config's protocol (``config_protocol``)."""
    protocol = task.protocols()[0]
    return [{"task": task.label, "config_protocol": protocol, **asdict(p)}
            for p in task.config.published_results()]


def paper_differences(task: TaskEntry, mode: str, protocol: str, settings,
                      model_results: list[tuple[str, dict]]) -> list[str]:
    """Every way one column's runs differ from the setting the task config describes as the
    paper's: mode, protocol, seeds and training overrides, preprocessing.

    Parameters
    ----------
    settings : CompareSettings
    model_results : list of (label, results dict)
        The column's finished model and random-init cells.
    """
    config = task.config
    out = []
    if mode == "probe":
        out.append(f"mode: frozen probe (pool: {config.pool or 'mean'}); the config's setting "
                   f"fine-tunes (freeze: {config.freeze or 'none'})")
    main = task.protocols()[0]
    if protocol != main:
        split = (config.split or {}).get("source")
        out.append(f"protocol: {protocol}; the published numbers use {main}"
                   + (f" ({split})" if split else ""))
    seeds = config.seeds or 5
    if settings.seeds is not None and settings.seeds != seeds:
        out.append(f"seeds: {settings.seeds} (the config's: {seeds})")
    train = {**settings.train, **({"epochs": settings.epochs} if settings.epochs else {})}
    for name, value in train.items():
        if config.train.get(name) != value:
            out.append(f"train.{name}: {value} (the config's: "
                       f"{config.train.get(name, 'the default')})")
    stated = {k: v for k, v in config.preprocessing.items()
              if k in PreprocessSpec.__dataclass_fields__ and v is not None}
    if not config.preprocessing.get("source"):
        out.append("preprocessing: each model's own pretraining preprocessing"
                   + (f" with the config's {', '.join(f'{k}={v}' for k, v in stated.items())}"
                      if stated else "")
                   + "; the config does not state the paper's")
    for label, results in model_results:
        applied = results["preprocessing"]["settings"]
        for name, value in stated.items():
            if name in applied and not _same(applied[name], value):
                out.append(f"preprocessing of {label}: {name} {applied[name]} vs the "
                           f"paper's {value}")
    return out


def _same(a, b) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    except (TypeError, ValueError):
        return a == b


# -- writing ----------------------------------------------------------------------------------
def _interval(cell: dict | None, *, signed: bool = False, digits: int = 3) -> str:
    if not cell or cell.get("mean") is None:
        if cell and cell.get("status") == "failed":
            return "failed"
        return "—"
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    text = f.format(cell["mean"])
    if cell.get("ci_low") is not None and cell.get("ci_high") is not None:
        text += f" [{f.format(cell['ci_low'])}, {f.format(cell['ci_high'])}]"
    return text


def _metric_label(metric: str | None) -> str:
    return _LABELS.get(metric, metric or "headline metric")


def _markdown(payload: dict, tasks: list[TaskEntry]) -> str:
    columns_by_mode: dict[str, list[dict]] = {}
    for column in payload["columns"]:
        columns_by_mode.setdefault(column["mode"], []).append(column)
    cells = payload["cells"]
    lines = [
        "# Model comparison (`neurofm compare`)", "",
        f"{len(payload['models'])} model(s) x {len(payload['tasks'])} task(s). Each cell: the "
        "task's headline metric, mean [95 % CI] over seeds x folds. A pretrained model's "
        "*random-init twin* is the same architecture and hyperparameters at random init, fed "
        "the same inputs on the same folds; *gain* is the model minus its twin, paired by seed "
        "and fold, mean [95 % CI]. Published numbers (" + UNCERTAIN + ": not checked against "
        "the source) are the papers', in the column of the task config's own protocol; how our "
        "runs differ from the paper's setting is listed below. Every cell's full results "
        "(`results.json`, `results.md`, figures) are in `cells/<key>/`.", ""]
    for mode, columns in columns_by_mode.items():
        lines += [f"## {MODE_TITLES.get(mode, mode)}", ""]
        header = "| Model | " + " | ".join(
            f"{c['label']}<br>{_metric_label(c['metric'])}" for c in columns) + " |"
        lines += [header, "|---|" + "---|" * len(columns)]

        def find(model, column, kind=None, mode=mode):
            return next((c for c in cells if c["model"] == model and c["mode"] == mode
                         and c["task"] == column["task"] and c["protocol"] == column["protocol"]
                         and (kind is None or c["kind"] == kind)), None)

        for model in payload["models"]:
            row = [find(model, c) for c in columns]
            random_init = all(r is None or r["kind"] == "random-init" for r in row)
            name = f"**{model}**" + (" (random init)" if random_init else "")
            lines.append(f"| {name} | " + " | ".join(_interval(r) for r in row) + " |")
            if not random_init:
                twins = [r.get("random_init") if r else None for r in row]
                gains = [r.get("gain") if r else None for r in row]
                lines.append("| ↳ random-init twin | " + " | ".join(
                    _interval(t) for t in twins) + " |")
                lines.append("| ↳ gain | " + " | ".join(
                    _interval(g, signed=True) for g in gains) + " |")
        baselines = list(dict.fromkeys(c["model"] for c in cells
                                       if c["kind"] == "baseline" and c["mode"] == mode))
        for name in baselines:
            lines.append(f"| {name} | " + " | ".join(
                _interval(find(name, c, "baseline")) for c in columns) + " |")
        published = payload["published"]
        names = list(dict.fromkeys(p["model"] for p in published))
        for name in names:
            row = []
            for column in columns:
                entries = [p for p in published if p["model"] == name
                           and p["task"] == column["task"]
                           and p["config_protocol"] == column["protocol"]
                           and p["metric"] == column["metric"]]
                row.append("; ".join(_published_text(p) for p in entries) or "")
            if any(row):
                lines.append(f"| published: {name} | " + " | ".join(row) + " |")
        chances = [f"{c['label']} {c['chance']:.3f}" for c in columns
                   if c.get("chance") is not None]
        if chances:
            lines += ["", "Chance level (balanced accuracy): " + ", ".join(chances) + "."]
        lines.append("")
    lines += _differences_markdown(payload, tasks)
    lines += _cells_markdown(payload)
    return "\n".join(lines) + "\n"


def _published_text(entry: dict) -> str:
    text = f"{entry['value']:.4f}"
    if entry.get("std") is not None:
        text += f" ± {entry['std']:.4f}"
    return text + (UNCERTAIN if entry.get("uncertain") else "")


def _differences_markdown(payload: dict, tasks: list[TaskEntry]) -> list[str]:
    lines = ["## The papers' numbers and how our runs differ", ""]
    for task in tasks:
        info = payload["task_configs"][task.label]
        lines.append(f"### {task.label} (`{info['config']}`)")
        lines.append("")
        published = [p for p in payload["published"] if p["task"] == task.label]
        if not published:
            lines += [("No published numbers in the task config (no paper reports this set, "
                       "or none was transcribed)."), ""]
            continue
        lines += ["| Published | Metric | Value | Source | Their protocol |",
                  "|---|---|---:|---|---|"]
        for p in published:
            lines.append(f"| {p['model']} | {_metric_label(p['metric'])} | {_published_text(p)} "
                         f"| {p['source']} | {p.get('protocol') or 'the config’s'} |")
        lines.append("")
        for column, items in info["differences"].items():
            lines.append(f"Where ours differs, {column}:")
            lines += [f"- {item}" for item in items] or ["- nothing stated"]
            lines.append("")
        if info["to_check"]:
            lines.append("Not checked against the paper's code (the config's `to_check`):")
            lines += [f"- {item}" for item in info["to_check"]]
            lines.append("")
    return lines


def _cells_markdown(payload: dict) -> list[str]:
    lines = ["## Cells", "", "| Task | Mode | Protocol | Model | Status | Seconds | Folder |",
             "|---|---|---|---|---|---:|---|"]
    for c in payload["cells"]:
        if c["kind"] == "baseline":
            continue
        seconds = "" if c.get("seconds") is None else f"{c['seconds']:.1f}"
        status = c["status"] + (f": {c['error']}" if c.get("error") else "")
        lines.append(f"| {c['task']} | {c['mode']} | {c['protocol']} | {c['model']} | "
                     f"{status} | {seconds} | {c.get('run', '')} |")
        twin = c.get("random_init")
        if twin:
            seconds = "" if twin.get("seconds") is None else f"{twin['seconds']:.1f}"
            status = twin["status"] + (f": {twin['error']}" if twin.get("error") else "")
            lines.append(f"| {c['task']} | {c['mode']} | {c['protocol']} | ↳ random-init twin "
                         f"({twin.get('architecture') or '?'}) | {status} | {seconds} | "
                         f"{twin.get('run', '')} |")
    notes = [f"- {n['task']} · {n['mode']} · {n['protocol']}: {n['note']}"
             for n in payload["notes"]]
    if notes:
        lines += ["", "Notes:", *notes]
    return lines + [""]


def plot_heatmap(payload: dict, path: Path) -> Path:
    """One panel per mode: rows the models and baselines, columns the tasks; colour and text
    the headline mean, with the gain over the random-init twin under it."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    modes = list(dict.fromkeys(c["mode"] for c in payload["columns"]))
    rows = list(payload["models"]) + list(dict.fromkeys(
        c["model"] for c in payload["cells"] if c["kind"] == "baseline"))
    width = max(len([c for c in payload["columns"] if c["mode"] == m]) for m in modes)
    fig, axes = plt.subplots(1, len(modes), squeeze=False,
                             figsize=(2.2 + 1.6 * width * len(modes) + 1.5,
                                      1.2 + 0.55 * len(rows)))
    # one colour scale for every panel: 0-1 for scores in that range (accuracy, AUROC ...),
    # else the range of the values (R², RMSE ...)
    means = [c["mean"] for c in payload["cells"] if c.get("mean") is not None]
    low, high = (0.0, 1.0) if all(0.0 <= m <= 1.0 for m in means) else \
        (min(means), max(means) if max(means) > min(means) else min(means) + 1.0)
    image = None
    for ax, mode in zip(axes[0], modes, strict=True):
        columns = [c for c in payload["columns"] if c["mode"] == mode]
        values = np.full((len(rows), len(columns)), np.nan)
        for j, column in enumerate(columns):
            for i, row in enumerate(rows):
                cell = next((c for c in payload["cells"] if c["model"] == row
                             and c["mode"] == mode and c["task"] == column["task"]
                             and c["protocol"] == column["protocol"]), None)
                text = ""
                if cell is not None and cell.get("mean") is not None:
                    values[i, j] = cell["mean"]
                    text = f"{cell['mean']:.3f}"
                    if cell.get("gain") and cell["gain"].get("mean") is not None:
                        text += f"\nΔ {cell['gain']['mean']:+.3f}"
                elif cell is not None and cell["status"] == "failed":
                    text = "failed"
                ax.text(j, i, text, ha="center", va="center", fontsize=8)
        image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=low, vmax=high,
                          aspect="auto", alpha=0.75)
        ax.set_xticks(range(len(columns)), [f"{c['label']}\n{_metric_label(c['metric'])}"
                                            for c in columns], fontsize=8)
        ax.set_yticks(range(len(rows)), rows if ax is axes[0][0] else [""] * len(rows),
                      fontsize=8)
        ax.set_title(MODE_TITLES.get(mode, mode), fontsize=10)
    fig.colorbar(image, ax=axes[0].tolist(), fraction=0.03, label="headline metric")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _failed(rows: list[dict]) -> list[dict]:
    """Every failed cell: model and random-init rows, and the twins inside them."""
    out = []
    for row in rows:
        where = {k: row[k] for k in ("task", "mode", "protocol")}
        if row["status"] == "failed":
            out.append({"model": row["model"], **where, "error": row["error"]})
        twin = row.get("random_init")
        if twin and twin["status"] == "failed":
            out.append({"model": f"{row['model']} (random-init twin)", **where,
                        "error": twin["error"]})
    return out


def write_comparison(out: Path, settings, models: list[ModelEntry], tasks: list[TaskEntry],
                     groups: list[GroupCells], store: CellStore) -> dict:
    """Build the table from the cells' results and write ``compare.json``, ``compare.md`` and
    ``compare.png`` into ``out``; returns ``compare.json``'s content."""
    cells = _Cells(store)
    by_label = {t.label: t for t in tasks}
    rows = comparison_cells(models, groups, cells)
    columns = []
    differences: dict[str, dict] = {t.label: {} for t in tasks}
    for group in groups:
        task = by_label[group.task]
        scored = [r for r in rows if r["task"] == group.task and r["mode"] == group.mode
                  and r["protocol"] == group.protocol and r.get("metric")]
        keys = [*group.model_keys.values(), *group.random_init_keys.values()]
        some = next((cells.results(k) for k in keys if cells.results(k)), None)
        columns.append({"mode": group.mode, "task": group.task, "protocol": group.protocol,
                        "label": group.column(task),
                        "metric": scored[0]["metric"] if scored else None,
                        "chance": _number(some["chance"]) if some else None})
        labelled = [(label, cells.results(key)) for label, key in
                    [*group.model_keys.items(), *group.random_init_keys.items()]
                    if cells.results(key)]
        differences[group.task][f"{group.mode} · {group.column(task)}"] = paper_differences(
            task, group.mode, group.protocol, settings, labelled)
    payload = {
        "neurofm_version": __version__,
        "command": "neurofm compare",
        "settings": asdict(settings),
        "models": [m.label for m in models],
        "tasks": [t.label for t in tasks],
        "modes": list(settings.modes),
        "columns": columns,
        "cells": rows,
        "published": [p for t in tasks for p in published_numbers(t)],
        "task_configs": {t.label: {"config": str(t.path), "to_check": list(t.config.to_check
                                                                           or []),
                                   "differences": differences[t.label]} for t in tasks},
        "notes": [{"task": g.task, "mode": g.mode, "protocol": g.protocol, "note": n}
                  for g in groups for n in g.notes],
        "n_cells": sum(r["kind"] != "baseline" for r in rows),
        "failed": _failed(rows),
    }
    payload["markdown"] = _markdown(payload, tasks)
    (out / "compare.md").write_text(payload["markdown"], encoding="utf-8")
    write_json(out / "compare.json", payload)
    plot_heatmap(payload, out / "compare.png")
    return payload
