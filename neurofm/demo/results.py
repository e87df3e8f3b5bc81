"""The demo's results table: one block per task, pretrained vs random-init vs baselines.

Rows come from the tasks' ``summary.json`` files (:func:`neurofm.demo.evaluation.evaluate_task`).
Scores are the task's headline metric (balanced accuracy for classification) as mean and 95 %
confidence interval over seeds x folds; the "vs random-init" column is the pretrained row minus
the random-init row of the same architecture and evaluation (probe or fine-tune).
"""

from __future__ import annotations


def format_score(row: dict) -> str:
    """``0.712 [0.65, 0.77]`` (a dash when the run produced no score)."""
    if row.get("mean") is None:
        return "—"
    if row.get("ci_low") is None:
        return f"{row['mean']:.3f}"
    return f"{row['mean']:.3f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"


def pretraining_gains(summary: dict) -> list[dict]:
    """Pretrained minus random-init headline score for each (model, evaluation) pair.

    Returns
    -------
    list of dict
        ``{"model", "evaluation" ("probe"/"finetune"), "pretrained", "random_init", "gain",
        "separated"}``; ``separated`` is True when the two 95 % CIs do not overlap.
    """
    gains = []
    for row in summary.get("rows", []):
        if row["kind"] != "pretrained" or row["mean"] is None:
            continue
        evaluation = "finetune" if "finetune" in row["method"] else "probe"
        twin = next((r for r in summary["rows"] if r["kind"] == "random-init"
                     and r["model"] == row["model"] and r["mean"] is not None
                     and ("finetune" in r["method"]) == (evaluation == "finetune")), None)
        if twin is not None:
            gains.append({"model": row["model"], "evaluation": evaluation,
                          "pretrained": row["mean"], "random_init": twin["mean"],
                          "gain": row["mean"] - twin["mean"],
                          "separated": _separated(row, twin)})
    return gains


def _separated(a: dict, b: dict) -> bool:
    if None in (a.get("ci_low"), a.get("ci_high"), b.get("ci_low"), b.get("ci_high")):
        return False
    return a["ci_low"] > b["ci_high"] or b["ci_low"] > a["ci_high"]


def results_table(summaries: list[dict]) -> str:
    """Markdown table of every task's rows (also readable as plain text in a terminal)."""
    lines = ["| Task | Method | Score (mean [95 % CI]) | vs random-init |",
             "|---|---|---|---:|"]
    for summary in summaries:
        if summary["status"] != "done":
            lines.append(f"| {summary['task']} | not run: `{summary['install']}` | — | — |")
            continue
        gains = {(g["model"], g["evaluation"]): g["gain"] for g in pretraining_gains(summary)}
        metric = (summary.get("metric") or "score").replace("_", " ")
        chance = summary.get("chance")
        first = f"{summary['task']} ({metric}" + (f", chance {chance:.2f})" if chance else ")")
        for i, row in enumerate(summary["rows"]):
            evaluation = "finetune" if "finetune" in row["method"] else "probe"
            gain = gains.get((row["model"], evaluation)) if row["kind"] == "pretrained" else None
            lines.append(f"| {first if i == 0 else ''} | {row['method']} | {format_score(row)} "
                         f"| {'' if gain is None else f'{gain:+.3f}'} |")
    return "\n".join(lines) + "\n"
