"""The demo's quality gate: ``neurofm demo --check DIR`` on a finished demo folder.

A demo that exits 0 can still have learned nothing (a learning rate 1000 times too small left
every stage running and the motor-imagery gain at +0.000). The gate reads the finished folder and
checks what the demo is there to show:

``finished``
    every stage of the run recorded as done (``stages/<name>.json``);
``pretraining loss <model>``
    the mean of the last tenth of the logged pretraining losses is at most
    :data:`LOSS_RATIO` times the first logged loss (it fell by at least half). Measured on the
    quick preset: criss-cross 0.203 -> 0.0091 (0.04 x), Mamba 0.135 -> 0.0096 (0.07 x); with
    the learning rate 1000 times too small the loss stayed at 1.00 x its first value;
``<task> probe <model>``
    on :data:`GATED_TASK`, each pretrained backbone's frozen-probe balanced accuracy (mean over
    seeds x folds) is at least its random-init twin's plus :data:`MIN_GAIN` (docs/demo.md
    measured +0.17 to +0.25 in the quick preset over two corpus seeds; +0.000 with the learning
    rate 1000 times too small). It is a gain of means:
    in the quick preset the 95 % intervals may overlap. The abnormal-recording tasks are within
    noise in the quick preset and are not gated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from neurofm.demo.evaluation import read_summary
from neurofm.demo.pipeline import STAGES, stage_record
from neurofm.demo.results import pretraining_gains
from neurofm.train.metrics import read_metrics

#: The pretraining loss must end at most at this share of its first logged value.
LOSS_RATIO = 0.5
#: The task whose probe gain from pretraining is gated.
GATED_TASK = "mi_unseen_montage"
#: Least gain (balanced accuracy, mean over seeds x folds) of a pretrained probe over its twin.
MIN_GAIN = 0.05


@dataclass(frozen=True)
class Check:
    """One check of the gate: its name, whether it passed, and what was found."""

    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'ok' if self.passed else 'FAILED'}: {self.name}: {self.detail}"


def loss_fell(losses: list[float], ratio: float = LOSS_RATIO) -> tuple[bool, str]:
    """Whether the mean of the last tenth of ``losses`` (at least one) is at most ``ratio`` times
    the first, and the figures in words."""
    if len(losses) < 2:
        return False, f"{len(losses)} logged loss(es); need at least 2"
    tail = losses[-max(1, len(losses) // 10):]
    first, last = losses[0], sum(tail) / len(tail)
    passed = last <= ratio * first
    return passed, (f"{first:.4g} at the first log -> {last:.4g} (mean of the last {len(tail)}), "
                    f"{last / first:.2f} x the first; must be <= {ratio:g} x")


def _finished(out: Path) -> Check:
    missing = [name for name in STAGES if stage_record(out, name) is None]
    if missing:
        return Check("finished", False, f"stage(s) {', '.join(missing)} not done in {out}; run "
                                        "the demo to the end first")
    return Check("finished", True, f"all {len(STAGES)} stages done")


def _pretraining(out: Path, label: str) -> Check:
    name = f"pretraining loss {label}"
    path = out / "runs" / label / "metrics.jsonl"
    if not path.is_file():
        return Check(name, False, f"no {path}: this model was not pretrained")
    passed, detail = loss_fell([float(r["loss"]) for r in read_metrics(path) if "loss" in r])
    return Check(name, passed, detail)


def _probe_gains(out: Path, labels: list[str], min_gain: float) -> list[Check]:
    summary = read_summary(out / "tasks" / GATED_TASK)
    if summary is None or summary.get("status") != "done":
        why = "not scored" if summary is None else f"status {summary.get('status')!r}"
        return [Check(f"{GATED_TASK} probe", False,
                      f"{GATED_TASK} is {why} in {out}; the gate needs it (run the demo "
                      "without --tasks, or with it among them)")]
    gains = {g["model"]: g for g in pretraining_gains(summary) if g["evaluation"] == "probe"}
    checks = []
    for label in labels:
        name = f"{GATED_TASK} probe {label}"
        gain = gains.get(label)
        if gain is None:
            checks.append(Check(name, False, "no pretrained and random-init probe rows to "
                                             f"compare in tasks/{GATED_TASK}/summary.json"))
            continue
        checks.append(Check(name, gain["gain"] >= min_gain - 1e-12,
                            f"pretrained {gain['pretrained']:.3f} vs random init "
                            f"{gain['random_init']:.3f}: gain {gain['gain']:+.3f}; must be >= "
                            f"+{min_gain:g}"))
    return checks


def check_demo(out: str | Path, *, min_gain: float = MIN_GAIN) -> list[Check]:
    """Run every check of the gate on the demo folder ``out``.

    Returns
    -------
    list of Check
        In order: ``finished``, one pretraining-loss check per model, one probe-gain check per
        model on :data:`GATED_TASK`.

    Raises
    ------
    FileNotFoundError
        ``out`` holds no demo (no ``demo.json``).
    """
    out = Path(out)
    settings_file = out / "demo.json"
    if not settings_file.is_file():
        raise FileNotFoundError(f"{out} holds no demo run (no demo.json); pass the --out folder "
                                "of a finished `neurofm demo`.")
    labels = [m["label"] for m in json.loads(settings_file.read_text())["models"]]
    return [_finished(out), *(_pretraining(out, label) for label in labels),
            *_probe_gains(out, labels, min_gain)]
