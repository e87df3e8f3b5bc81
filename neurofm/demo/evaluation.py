"""Stage 5 of the demo: frozen probe and short fine-tune of every pretrained model per task.

Each task is scored with :func:`neurofm.eval.run.run_evaluation`, the engine behind
``neurofm probe`` and ``neurofm finetune``, on leak-free folds shared by every row:

- frozen linear probe of each pretrained backbone, and of the same architecture at random init;
- on tasks marked ``finetune``: the first backbone fine-tuned end to end, pretrained and random
  init, for a few epochs;
- reference rows (first model's run only): classic log band power + logistic regression and a
  supervised braindecode EEGNet trained from scratch on the same folds.

A task whose data need a package that is not installed (the real ``aeon:FingerMovements`` set) is
not an error: its summary says how to install the package.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

from neurofm.datasets import load_dataset
from neurofm.demo.settings import DemoSettings, ModelPlan, TaskPlan
from neurofm.eval.run import EvalSettings, run_evaluation

SUMMARY_NAME = "summary.json"


def missing_requirement(task: TaskPlan) -> str | None:
    """The install command when ``task.needs`` is not importable, else None."""
    if task.needs and importlib.util.find_spec(task.needs) is None:
        return task.install_hint or f"pip install {task.needs}"
    return None


def task_seeds(task: TaskPlan, settings: DemoSettings) -> int:
    """Evaluation seeds of a task: its own count, else the run's; at least 3 on an official split
    (its single split varies only with the seed of the models and the probe)."""
    seeds = task.seeds or settings.seeds
    return max(seeds, 3) if task.protocol == "official" else seeds


def evaluate_task(task: TaskPlan, settings: DemoSettings, model_dirs: dict[str, Path],
                  out: str | Path, *, cache_dir: str | Path | None = None) -> dict:
    """Score every row of one task and write ``out/summary.json``.

    Parameters
    ----------
    task : TaskPlan
    settings : DemoSettings
    model_dirs : dict
        Model label -> pretrained model directory, in :attr:`DemoSettings.models` order.
    out : path
        Task folder: one sub-folder per evaluation run (``results.json``, ``results.md``,
        ``confusion.png``, ``topomap.png`` ...) and ``summary.json``.
    cache_dir : path, optional
        Embedding cache.

    Returns
    -------
    dict
        ``{"task", "title", "data", "status", "install", "metric", "chance", "rows": [...]}``;
        each row ``{"method", "kind", "model", "mean", "ci_low", "ci_high", "std", "n_runs",
        "run"}``; ``figures`` maps each run folder to its figures (paths relative to ``out``).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"task": task.label, "title": task.title, "data": task.data, "status": "done",
               "install": None, "metric": None, "chance": None, "rows": [], "figures": {}}
    hint = missing_requirement(task)
    if hint:
        summary.update(status="not installed", install=hint)
        write_summary(out, summary)
        return summary

    trials = load_dataset(task.data)
    common = {"data": task.data, "protocol": task.protocol, "seeds": task_seeds(task, settings),
              "n_folds": settings.n_folds, "train": {"epochs": settings.finetune_epochs},
              "cache_dir": str(cache_dir) if cache_dir else None}
    plans = {p.label: p for p in settings.models}
    runs: list[tuple[str, str, dict]] = []
    for i, (label, model_dir) in enumerate(model_dirs.items()):
        run_dir = out / f"probe-{label}"
        payload = run_evaluation(EvalSettings(
            model=str(model_dir), out=str(run_dir), mode="probe", pool=task.pool,
            baselines=list(task.baselines) if i == 0 else [],
            importance=i == 0 and task.importance,
            **common), trials=trials)
        runs.append((label, run_dir.name, payload))
    if task.finetune:
        label, model_dir = next(iter(model_dirs.items()))
        plan: ModelPlan = plans[label]
        for kind, spec, overrides in (("pretrained", str(model_dir), {}),
                                      ("random-init", plan.name, dict(plan.overrides))):
            run_dir = out / f"finetune-{label}-{kind}"
            payload = run_evaluation(EvalSettings(
                model=spec, out=str(run_dir), mode="finetune", baselines=[], freeze="none",
                model_overrides=overrides, importance=False, random_init_reference=False,
                pool=task.pool, **common), trials=trials)
            runs.append((label, run_dir.name, payload))

    for label, run_name, payload in runs:
        metric = payload["headline_metric"]
        summary["metric"], summary["chance"] = metric, payload["chance"]
        for method in payload["methods"]:
            stats = method["summary"].get(metric, {})
            summary["rows"].append({
                "method": method["method"], "kind": row_kind(method["method"]), "model": label,
                "mean": _number(stats.get("mean")), "std": _number(stats.get("std")),
                "ci_low": _number(stats.get("ci_low")), "ci_high": _number(stats.get("ci_high")),
                "n_runs": method["n_runs"], "run": run_name})
        summary["figures"][run_name] = {name: str(Path(path).relative_to(out))
                                        for name, path in payload.get("figures", {}).items()}
    summary["rows"].sort(key=_row_order)
    write_summary(out, summary)
    return summary


def _row_order(row: dict) -> tuple:
    """Probes first, then fine-tuning, then the baselines (stable within each group)."""
    return (row["kind"] == "baseline", "finetune" in row["method"])


def row_kind(method: str) -> str:
    """Which family a table row belongs to: pretrained, random-init or baseline."""
    if "(pretrained)" in method:
        return "pretrained"
    if "(random-init)" in method:
        return "random-init"
    return "baseline"


def read_summary(task_dir: str | Path) -> dict | None:
    """The task's ``summary.json``, or None when the task has not been scored."""
    path = Path(task_dir) / SUMMARY_NAME
    return json.loads(path.read_text()) if path.is_file() else None


def _number(value) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def write_summary(out: str | Path, summary: dict) -> None:
    """Write ``out/summary.json`` atomically."""
    out = Path(out)
    tmp = out / (SUMMARY_NAME + ".tmp")
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(out / SUMMARY_NAME)
