"""Stage 6 of the demo: ``report.md`` with the table, loss curves, confusion matrices, topomaps.

The report links figures that the earlier stages wrote (paths relative to the demo folder) and
one it draws itself: the pretraining loss curves of all backbones on one plot.
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from pathlib import Path

from neurofm._version import __version__
from neurofm.demo.evaluation import task_seeds
from neurofm.demo.results import pretraining_gains, results_table
from neurofm.demo.settings import DemoSettings
from neurofm.train.metrics import read_metrics


def plot_loss_curves(run_dirs: dict[str, Path], png_path: str | Path) -> Path | None:
    """Masked-reconstruction loss against step for every pretraining run (one line each).

    Parameters
    ----------
    run_dirs : dict
        Model label -> pretraining run directory (holding ``metrics.jsonl``).
    png_path : path

    Returns
    -------
    Path or None
        None when no run has logged a loss.
    """
    curves = {}
    for label, run_dir in run_dirs.items():
        path = Path(run_dir) / "metrics.jsonl"
        records = [r for r in read_metrics(path) if "loss" in r] if path.is_file() else []
        if records:
            curves[label] = ([r["step"] for r in records], [r["loss"] for r in records])
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, (steps, losses) in curves.items():
        ax.plot(steps, losses, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("masked reconstruction loss (MSE)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return Path(png_path)


def gain_findings(summaries: list[dict]) -> list[str]:
    """One sentence per (task, model, evaluation): did pretraining beat random init?

    "helps" / "hurts" only when the two 95 % confidence intervals do not overlap.
    """
    lines = []
    for summary in summaries:
        for g in pretraining_gains(summary):
            if g["separated"]:
                verdict = "helps" if g["gain"] > 0 else "hurts"
            else:
                verdict = "makes no difference beyond the 95 % CIs"
            lines.append(f"- {summary['task']}, {g['model']} {g['evaluation']}: pretraining "
                         f"{verdict} ({g['pretrained']:.3f} vs {g['random_init']:.3f} at random "
                         f"init, {g['gain']:+.3f}).")
    return lines


def _seed_counts(settings: DemoSettings) -> str:
    """``"1 seed"``, or per task when the tasks differ (``"1-5 seeds (task: n, ...)"``)."""
    counts = {task.label: task_seeds(task, settings) for task in settings.tasks}
    if len(set(counts.values())) <= 1:
        n = next(iter(counts.values()), settings.seeds)
        return f"{n} seed{'s' if n > 1 else ''}"
    listed = ", ".join(f"{label}: {n}" for label, n in counts.items())
    return f"{min(counts.values())}-{max(counts.values())} seeds ({listed})"


def write_report(out: str | Path, settings: DemoSettings, summaries: list[dict],
                 stage_seconds: dict[str, float], run_dirs: dict[str, Path],
                 corpus_facts: dict) -> Path:
    """Write ``out/report.md`` (and ``out/loss_curves.png``); return the report's path."""
    out = Path(out)
    loss_png = plot_loss_curves(run_dirs, out / "loss_curves.png")
    corpus = ", ".join(f"{p.subjects} x {p.modality.upper()} {p.montage}"
                       + (f" ({p.pick} only)" if p.pick else "")
                       + ("" if p.task == "resting" else f" ({p.task} task, labels unused)")
                       for p in settings.corpus)
    models = ", ".join(f"`{m.name}` ({m.steps} steps, batch {m.batch_size})"
                       for m in settings.models)
    lines = [
        "# neurofm demo report", "",
        (f"neurofm {__version__}, preset `{settings.preset}`, "
         f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()} "
         f"({platform.processor() or platform.system()}), Python {platform.python_version()}."),
        "", "## What ran", "",
        (f"1. Simulated {corpus_facts.get('n_recordings', '?')} unlabelled recordings of "
         f"{settings.seconds:g} s: {corpus}."),
        (f"2. Prepared them into a corpus of {corpus_facts.get('n_windows', '?')} windows of "
         f"{settings.window_seconds:g} s (200 Hz, 1-s patches, 0.3-75 Hz, 50 Hz notch)."),
        (f"3. Pretrained {models} by masked patch reconstruction with `neurofm pretrain "
         f"--nproc {corpus_facts.get('nproc', 1)}`."),
        ("4. Saved each as a Hub-style model folder (`models/<name>/`: config.json, "
         "model.safetensors, README.md model card) and loaded it back with "
         "`neurofm.hub.from_pretrained`."),
        (f"5. Scored each held-out task with {_seed_counts(settings)} x {settings.n_folds} "
         "folds per task (within-subject, cross-subject, or the official split for real data): "
         "frozen linear probe of the pretrained and random-init backbones, a short fine-tune "
         "where listed, and the task's baselines (log band power + logistic regression; "
         "supervised EEGNet)."),
        "", "## Results", "", results_table(summaries),
        ("Scores are balanced accuracy, mean [95 % CI] over seeds x folds. `vs random-init` is "
         "the pretrained row minus the same architecture at random initialisation, evaluated "
         "the same way."),
        "",
        "### Does pretraining help?", "", *gain_findings(summaries), "",
        "## Time per stage", "", "| Stage | Seconds |", "|---|---:|",
        *[f"| {name} | {seconds:.0f} |" for name, seconds in stage_seconds.items()],
        f"| total | {sum(stage_seconds.values()):.0f} |", "",
    ]
    if loss_png:
        lines += ["## Pretraining loss", "", f"![loss curves]({loss_png.name})", "",
                  *[f"- {label}: [metrics.jsonl]({Path(d).relative_to(out)}/metrics.jsonl), "
                    f"[loss.png]({Path(d).relative_to(out)}/loss.png)"
                    for label, d in run_dirs.items() if (Path(d) / "loss.png").is_file()], ""]
    lines += ["## Figures per task", ""]
    for summary in summaries:
        lines += [f"### {summary['task']}", "", summary["title"] + ".", ""]
        if summary["status"] != "done":
            lines += [f"Not run: install the data with `{summary['install']}`.", ""]
            continue
        task_dir = Path("tasks") / summary["task"]
        for run_name, figures in summary.get("figures", {}).items():
            for name in ("confusion", "topomap"):
                if name in figures:
                    lines.append(f"![{run_name} {name}]({(task_dir / figures[name]).as_posix()})")
            lines.append(f"[{run_name} results]({(task_dir / run_name / 'results.md').as_posix()})")
            lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
