"""``neurofm demo --check DIR``: the quality gate on a finished demo, on synthetic result folders.

The folders below are written by hand in the layout the demo writes (``demo.json``,
``stages/<name>.json``, ``runs/<model>/metrics.jsonl``, ``tasks/<task>/summary.json``), with
figures from a real quick demo (loss 0.20 -> 0.009, probe gains +0.17 and +0.19) and from one
whose learning rate was 1000 times too small (loss flat at 0.196, gain +0.000).
"""

import json

import numpy as np
import pytest

from neurofm.cli import main
from neurofm.demo import QUICK
from neurofm.demo.check import GATED_TASK, check_demo, loss_fell
from neurofm.demo.evaluation import write_summary
from neurofm.demo.pipeline import STAGES

MODELS = {"criss_cross": "criss_cross_small", "mamba": "mamba_small"}


def _row(method, kind, model, mean):
    return {"method": method, "kind": kind, "model": model, "mean": mean, "std": 0.02,
            "ci_low": mean - 0.06, "ci_high": mean + 0.06, "n_runs": 3, "run": method}


def finished_demo(out, *, losses=None, probe=None, stages=tuple(STAGES)):
    """A demo folder as the quick demo leaves it; ``losses`` / ``probe`` per model label."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo.json").write_text(json.dumps(QUICK.to_dict()))
    (out / "stages").mkdir(exist_ok=True)
    for name in stages:
        (out / "stages" / f"{name}.json").write_text(json.dumps({"fingerprint": "x"}))
    losses = losses or {"criss_cross": 0.2 * np.exp(-np.arange(50) / 12) + 0.008,
                        "mamba": 0.135 * np.exp(-np.arange(50) / 12) + 0.009}
    for label, trace in losses.items():
        run = out / "runs" / label
        run.mkdir(parents=True, exist_ok=True)
        (run / "metrics.jsonl").write_text("".join(
            json.dumps({"step": 3 * (i + 1), "loss": float(v), "lr": 1e-3}) + "\n"
            for i, v in enumerate(trace)))
    probe = probe or {"criss_cross": (0.844, 0.670), "mamba": (0.816, 0.628)}
    rows = []
    for label, (pretrained, random_init) in probe.items():
        name = MODELS[label]
        rows += [_row(f"{name} (pretrained) probe", "pretrained", label, pretrained),
                 _row(f"{name} (random-init) probe", "random-init", label, random_init),
                 # fine-tune rows are not gated: a loss here must not fail the check
                 _row(f"{name} (pretrained) finetune (none)", "pretrained", label, 0.5),
                 _row(f"{name} (random-init) finetune (none)", "random-init", label, 0.7)]
    rows.append(_row("log band power + LR (classic)", "baseline", "criss_cross", 0.9))
    (out / "tasks" / GATED_TASK).mkdir(parents=True, exist_ok=True)
    write_summary(out / "tasks" / GATED_TASK,
                  {"task": GATED_TASK, "title": "MI", "data": "sim:x", "status": "done",
                   "install": None, "metric": "balanced_accuracy", "chance": 0.5, "rows": rows,
                   "figures": {}})
    return out


def _failed(checks):
    return [c.name for c in checks if not c.passed]


def test_a_good_quick_demo_passes_every_check(tmp_path, capsys):
    out = finished_demo(tmp_path / "demo")
    checks = check_demo(out)
    assert [c.name for c in checks] == [
        "finished", "pretraining loss criss_cross", "pretraining loss mamba",
        f"{GATED_TASK} probe criss_cross", f"{GATED_TASK} probe mamba"]
    assert _failed(checks) == []
    assert "gain +0.174; must be >= +0.05" in checks[3].detail
    assert main(["demo", "--check", str(out)]) == 0
    assert "demo check passed (5 checks)" in capsys.readouterr().out


def test_a_demo_pretrained_with_a_learning_rate_1000x_too_small_fails_naming_the_checks(
        tmp_path, capsys):
    flat = 0.196 + 0.001 * np.sin(np.arange(30))  # the loss of a run at lr 1e-6 (measured)
    out = finished_demo(tmp_path / "demo", losses={"criss_cross": flat, "mamba": flat},
                        probe={"criss_cross": (0.670, 0.670), "mamba": (0.63, 0.628)})
    assert _failed(check_demo(out)) == [
        "pretraining loss criss_cross", "pretraining loss mamba",
        f"{GATED_TASK} probe criss_cross", f"{GATED_TASK} probe mamba"]
    assert main(["demo", "--check", str(out)]) == 1
    captured = capsys.readouterr()
    assert "FAILED: mi_unseen_montage probe mamba: pretrained 0.630 vs random init 0.628: " \
           "gain +0.002; must be >= +0.05" in captured.out
    assert "demo check failed: pretraining loss criss_cross; pretraining loss mamba; " \
           "mi_unseen_montage probe criss_cross; mi_unseen_montage probe mamba" in captured.err


@pytest.mark.parametrize("gain, passed", [(0.049, False), (0.05, True), (0.23, True)])
def test_the_gate_is_a_mean_gain_of_005_over_the_random_init_twin(tmp_path, gain, passed):
    out = finished_demo(tmp_path / "demo", probe={"criss_cross": (0.6 + gain, 0.6),
                                                   "mamba": (0.9, 0.6)})
    checks = {c.name: c.passed for c in check_demo(out)}
    assert checks[f"{GATED_TASK} probe criss_cross"] is passed
    assert checks[f"{GATED_TASK} probe mamba"]


def test_an_unfinished_or_partial_demo_fails(tmp_path, capsys):
    out = finished_demo(tmp_path / "demo", stages=("simulate", "prepare", "pretrain"))
    checks = check_demo(out)
    assert _failed(checks) == ["finished"]
    assert "stage(s) publish, evaluate, report not done" in checks[0].detail
    # a model that was never pretrained, and the gated task not scored
    (out / "runs" / "mamba" / "metrics.jsonl").unlink()
    (out / "tasks" / GATED_TASK / "summary.json").unlink()
    assert _failed(check_demo(out)) == ["finished", "pretraining loss mamba",
                                        f"{GATED_TASK} probe"]
    assert main(["demo", "--check", str(out)]) == 1
    assert "mi_unseen_montage is not scored" in capsys.readouterr().out


def test_a_folder_without_a_demo_is_a_clear_error(tmp_path, capsys):
    assert main(["demo", "--check", str(tmp_path)]) == 2
    assert "holds no demo run (no demo.json)" in capsys.readouterr().err


@pytest.mark.parametrize("losses, passed", [([0.2, 0.15, 0.1], True), ([0.2, 0.18, 0.11], False),
                                             ([0.2], False), ([], False)])
def test_loss_fell_compares_the_last_tenth_with_the_first_log(losses, passed):
    assert loss_fell(losses)[0] is passed
    assert loss_fell([1.0] * 10 + [0.4] * 9 + [0.5])[0]  # last tenth: 2 values, mean 0.45
    assert not loss_fell([1.0] * 18 + [0.4, 0.7])[0]      # mean 0.55
