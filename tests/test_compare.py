"""``neurofm compare``: models x tasks x modes, one run per cell, resumable, failures recorded,
one table beside the published numbers."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

import neurofm.compare.run as compare_run
from neurofm.cli import build_parser, main
from neurofm.compare import CompareSettings, find_task_config, run_comparison, shipped_tasks
from neurofm.compare.cells import Cell, ModelEntry, random_init_cell
from neurofm.compare.tasks import TASK_CONFIG_DIR, TaskEntry
from neurofm.data.spec import PreprocessSpec
from neurofm.eval.settings import TaskConfig, evaluation_settings, read_task_config
from neurofm.models import create_model
from neurofm.output_folder import OutputFolderError

ROOT = Path(__file__).resolve().parents[1]
TINY = {"dim": 16, "depth": 1, "n_heads": 2, "ffn_dim": 32}
TINY_NAME = "criss_cross_small?" + "&".join(f"{k}={v}" for k, v in TINY.items())
SIM_TASK = {"task": "sim_small", "protocol": "cross-subject", "n_folds": 2, "seeds": 1,
            "pool": "mean", "baselines": ["bandpower"],
            "data": "sim:motor_imagery?subjects=4&minutes=0.5&classes=left_hand,right_hand"}


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> str:
    """A 'pretrained' model folder: criss_cross_small with TINY hyperparameters, own weights."""
    torch.manual_seed(123)
    folder = tmp_path_factory.mktemp("models") / "tiny_cc"
    create_model("criss_cross_small", **TINY).save_pretrained(folder)
    return str(folder)


def _task_file(folder: Path, name: str, **changes) -> str:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**SIM_TASK, **changes}))
    return str(path)


def _cells(payload, **where):
    return [c for c in payload["cells"] if all(c[k] == v for k, v in where.items())]


def _records(out: Path) -> dict[str, dict]:
    """The cell records of a comparison folder, by key (none before the first cell ends)."""
    return {p.stem: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}


# -- the grid, end to end -----------------------------------------------------------------------
def test_two_models_on_a_moabb_standin_and_a_simulated_task(tmp_path, tiny_folder, monkeypatch):
    pytest.importorskip("moabb")
    import neurofm.datasets.moabb as moabb_loader
    from neurofm.datasets.moabb_standins import standin_dataset

    standin = standin_dataset("BNCI2014_001", runs=1, events_per_run=4, seed=2)
    monkeypatch.setattr(moabb_loader, "dataset_by_name", lambda name: standin)
    sim = _task_file(tmp_path, "sim")
    settings = CompareSettings(
        models=[tiny_folder, TINY_NAME], tasks=["bcic_iv_2a", sim], out=str(tmp_path / "out"),
        seeds=1, baselines="bandpower", protocols="main", epochs=1,
        train={"min_steps_per_epoch": 2, "batch_size": 64}, cache_dir=str(tmp_path / "cache"))
    payload = run_comparison(settings)
    out = tmp_path / "out"

    # rows and columns as given; every cell an object with the fields the table promises
    assert payload["models"] == [tiny_folder, TINY_NAME]
    assert [c["label"] for c in payload["columns"]] == ["bcic_iv_2a", sim]
    assert [c["metric"] for c in payload["columns"]] == ["balanced_accuracy"] * 2
    for cell in payload["cells"]:
        assert {"model", "task", "mode", "metric", "mean", "ci_low", "ci_high"} <= set(cell)
        assert cell["status"] == "done" and cell["ci_low"] <= cell["mean"] <= cell["ci_high"]
    assert payload["failed"] == [] and payload["n_failed"] == 0

    # the pretrained folder's twin is the registry name given: one run, shared; it carries the
    # baselines, so each task ran two cells, not four
    records = _records(out)
    assert len(records) == 4 and {r["role"] for r in records.values()} == {"model",
                                                                            "random-init"}
    for task in ("bcic_iv_2a", sim):
        model, = _cells(payload, task=task, model=tiny_folder)
        registry, = _cells(payload, task=task, model=TINY_NAME)
        baseline, = _cells(payload, task=task, kind="baseline")
        assert model["kind"] == "pretrained" and registry["kind"] == "random-init"
        assert model["random_init"]["key"] == registry["key"] == baseline["key"]
        assert model["random_init"]["architecture"] == "criss_cross_small"
        assert baseline["model"] == "log band power + LR (classic)"
        assert model["inputs_differ_from_twin"] == []
        model_run = json.loads((out / model["run"] / "results.json").read_text())
        twin_run = json.loads((out / registry["run"] / "results.json").read_text())
        assert [m["method"] for m in model_run["methods"]] == [model["method"]]
        assert [m["method"] for m in twin_run["methods"]] == [registry["method"],
                                                              baseline["model"]]
        assert model_run["settings"]["random_init_reference"] is False
        # the same folds for the model, its twin and the baselines
        groups = [[f["test_groups"] for f in run["methods"][i]["folds"]]
                  for run, i in ((model_run, 0), (twin_run, 0), (twin_run, 1))]
        assert groups[0] == groups[1] == groups[2]
        # the gain is the paired difference of the two rows, fold by fold
        folds = zip(model_run["methods"][0]["folds"], twin_run["methods"][0]["folds"],
                    strict=True)
        diffs = [a["metrics"]["balanced_accuracy"] - b["metrics"]["balanced_accuracy"]
                 for a, b in folds]
        assert model["gain"]["mean"] == pytest.approx(sum(diffs) / len(diffs))
        assert model["gain"]["mean"] == pytest.approx(model["mean"] - registry["mean"])
        assert model["gain"]["n_pairs"] == len(diffs)

    # the papers' numbers beside ours, and how our runs differ from their setting
    markdown = (out / "compare.md").read_text()
    assert markdown == payload["markdown"]
    assert f"| **{tiny_folder}** | " in markdown and f"| **{TINY_NAME}** (random init) |" \
        in markdown
    assert "| published: CBraMod | 0.5138 ± 0.0066 |  |" in markdown
    assert "| published: LaBraM | 0.4869 ± 0.0085† |  |" in markdown
    published = [p for p in payload["published"] if p["task"] == "bcic_iv_2a"]
    assert {p["model"] for p in published} == {"CBraMod", "LaBraM", "BIOT"}
    differences = payload["task_configs"]["bcic_iv_2a"]["differences"]["probe · bcic_iv_2a"]
    assert differences[0].startswith("mode: frozen probe (pool: patches)")
    assert "seeds: 1 (the config's: 5)" in differences
    assert "train.epochs: 1 (the config's: 50)" in differences
    assert "train.min_steps_per_epoch: 2 (the config's: the default)" in differences
    assert any(item.startswith("filter:") for item in
               payload["task_configs"]["bcic_iv_2a"]["to_check"])
    assert "Not checked against the paper's code" in markdown
    assert payload["task_configs"][sim]["differences"]  # computed, not shown: nothing published
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a rerun of the finished grid does no model work
    def no_work(*args, **kwargs):
        raise AssertionError("a finished cell was run again")

    monkeypatch.setattr(compare_run, "run_evaluation", no_work)
    again = run_comparison(settings)
    assert again["cells"] == payload["cells"] and again["n_failed"] == 0

    # a changed setting reruns what it affects: epochs train bcic_iv_2a's patch-MLP head (both
    # of its cells) and nothing of the simulated task's closed-form probe
    from neurofm.eval.run import run_evaluation

    ran = []

    def counting(settings, **kwargs):
        ran.append(Path(settings.out).name)
        return run_evaluation(settings, **kwargs)

    monkeypatch.setattr(compare_run, "run_evaluation", counting)
    changed = run_comparison(replace(settings, epochs=2))
    bcic_keys = {c["key"] for c in _cells(changed, task="bcic_iv_2a") if c["kind"] != "baseline"}
    assert sorted(ran) == sorted(bcic_keys) and len(ran) == 2
    assert {c["key"] for c in _cells(changed, task=sim)} == \
        {c["key"] for c in _cells(payload, task=sim)}


def test_a_killed_comparison_resumes_without_redoing_finished_cells(tmp_path, tiny_folder,
                                                                    capsys):
    out = tmp_path / "out"
    argv = ["compare", "--models", f"{tiny_folder},{TINY_NAME}", "--tasks",
            _task_file(tmp_path, "sim"), "--out", str(out), "--cache-dir", str(tmp_path / "c")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-m", "neurofm", *argv], env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not _records(out):
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "the first cell did not finish in time"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)          # between cells: the second has not finished
    child.wait()
    (first_key, first), = _records(out).items()
    assert first["status"] == "done" and first["role"] == "model"

    assert main(argv) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")]
    assert "finished earlier" in lines[0] and tiny_folder in lines[0]
    assert "done in" in lines[1] and TINY_NAME in lines[1]
    # the count is an upper bound until the twins are known (the folder's twin is the registry
    # name given: one cell, not two), then exact
    assert lines[0].startswith("[1/3] ") and lines[1].startswith("[2/2] ")
    records = _records(out)
    assert records[first_key] == first                      # not run, not rewritten
    assert len(records) == 2 and all(r["status"] == "done" and r["attempts"] == 1
                                     for r in records.values())
    table = json.loads((out / "compare.json").read_text())
    assert {c["status"] for c in table["cells"]} == {"done"}


def test_a_failing_cell_is_recorded_and_the_others_go_on(tmp_path, capsys):
    bad = _task_file(tmp_path, "bad", data="sim:no_such_task?subjects=2")
    good = _task_file(tmp_path, "good")
    out = tmp_path / "out"
    argv = ["compare", "--models", TINY_NAME, "--tasks", f"{bad},{good}", "--out", str(out),
            "--cache-dir", str(tmp_path / "c")]
    assert main(argv) == 1
    captured = capsys.readouterr()
    table = json.loads((out / "compare.json").read_text())
    failed, = _cells(table, task=bad)
    assert failed["status"] == "failed" and "no_such_task" in failed["error"]
    assert table["failed"] == [{"model": TINY_NAME, "task": bad, "mode": "probe",
                                "protocol": "cross-subject", "error": failed["error"]}]
    assert [c["status"] for c in _cells(table, task=good)] == ["done", "done"]  # + baseline
    assert "FAILED" in captured.err and "1 cell(s) failed" in captured.out
    assert "| probe | cross-subject | " + TINY_NAME + " | failed: " in table["markdown"]
    # the failed cell is retried on the next run, the finished one is not
    assert main(argv) == 1
    records = _records(out)
    assert sorted(r["attempts"] for r in records.values()) == [1, 2]


def test_the_baselines_are_scored_once_per_task_whatever_the_modes(tmp_path):
    out = tmp_path / "out"
    payload = run_comparison(CompareSettings(
        models=[TINY_NAME], tasks=[_task_file(tmp_path, "sim")], modes=["probe", "finetune"],
        out=str(out), epochs=1, train={"min_steps_per_epoch": 2},
        cache_dir=str(tmp_path / "cache")))
    probe_twin, = _cells(payload, mode="probe", kind="random-init")
    tuned_twin, = _cells(payload, mode="finetune", kind="random-init")
    probe_baseline, = _cells(payload, mode="probe", kind="baseline")
    tuned_baseline, = _cells(payload, mode="finetune", kind="baseline")
    # scored once, in the probe's cell, and shown under both modes
    assert probe_baseline["key"] == tuned_baseline["key"] == probe_twin["key"]
    assert tuned_baseline["mean"] == probe_baseline["mean"] is not None
    tuned_run = json.loads((out / tuned_twin["run"] / "results.json").read_text())
    assert [m["method"] for m in tuned_run["methods"]] == [tuned_twin["method"]]
    assert "finetune" in tuned_twin["method"]
    assert payload["markdown"].count("| log band power + LR (classic) |") == 2


# -- cells and their keys ------------------------------------------------------------------------
def _base(mode="probe", **task):
    config = TaskConfig.from_dict({**SIM_TASK, **task})
    return evaluation_settings(mode, config, model="", out="")


def test_a_cell_key_changes_with_what_the_run_measures_and_nothing_else(tiny_folder):
    entry = ModelEntry.parse(tiny_folder)
    cell = random_init_cell("criss_cross_small", TINY, None, _base(), task="t")
    assert cell.key == random_init_cell("criss_cross_small", TINY, None,
                                        replace(_base(), device="cuda", batch_size=8,
                                                cache_dir="/elsewhere", out="x"),
                                        task="t").key
    # a closed-form probe without supervised baselines trains nothing
    assert cell.key == random_init_cell("criss_cross_small", TINY, None,
                                        _base(train={"epochs": 3}), task="t").key
    for changed in (_base(seeds=2), _base(n_folds=3), _base(pool="channels"),
                    _base(baselines=["bandpower", "fbcsp"]), _base("finetune")):
        assert random_init_cell("criss_cross_small", TINY, None, changed, task="t").key \
            != cell.key
    tuned = random_init_cell("criss_cross_small", TINY, None, _base("finetune"), task="t")
    assert tuned.key != random_init_cell("criss_cross_small", TINY, None,
                                         _base("finetune", train={"epochs": 3}), task="t").key
    # the baselines change the key, not the identity (one model run, whoever scores them)
    with_baselines = random_init_cell("criss_cross_small", TINY, None, _base(), task="t")
    without = replace(with_baselines, settings=replace(with_baselines.settings, baselines=[]))
    assert with_baselines.key != without.key and with_baselines.identity == without.identity
    # a registry name with defaults filled in is the same cell as the explicit hyperparameters
    assert random_init_cell("criss_cross_small", {}, None, _base(), task="t").key == \
        random_init_cell("criss_cross_small", create_model("criss_cross_small").config, None,
                         _base(), task="t").key
    # new weights in the same folder: a new cell
    source = entry.source()
    assert set(source["files"]) == {"config.json", "model.safetensors"}
    retrained = Path(tiny_folder) / "model.safetensors"
    stat = retrained.stat()
    data = retrained.read_bytes()
    try:
        retrained.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
        assert ModelEntry.parse(tiny_folder).source() != source
    finally:
        retrained.write_bytes(data)
        os.utime(retrained, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert Cell("model", "t", "probe", "cross-subject", _base(), source).key != \
        Cell("model", "t", "probe", "cross-subject", _base(), {"hub": "org/name"}).key


def test_the_twin_gets_the_pretrained_models_preprocessing():
    spec = replace(PreprocessSpec(), line_freq=50.0, h_freq=40.0)
    base = _base(preprocessing={"sfreq": 200})
    twin = random_init_cell("criss_cross_small", TINY, spec.to_dict(), base, task="t")
    assert twin.settings.preprocessing == {"line_freq": 50.0, "h_freq": 40.0, "sfreq": 200}
    assert twin.settings.model == "criss_cross_small"
    assert twin.settings.model_overrides == create_model("criss_cross_small", **TINY).config
    # the task config's preprocessing wins over the model's (as for the pretrained model)
    stated = random_init_cell("criss_cross_small", TINY, spec,
                              _base(preprocessing={"h_freq": 30}), task="t")
    assert stated.settings.preprocessing["h_freq"] == 30


def test_model_entries_are_checked_before_any_work(tmp_path):
    assert ModelEntry.parse(TINY_NAME).overrides == TINY
    assert ModelEntry.parse("criss_cross_small").random_init
    with pytest.raises(ValueError, match="criss_cross_small\\?widht=3"):
        ModelEntry.parse("criss_cross_small?widht=3")
    with pytest.raises(ValueError, match="no such folder, and not a registry name"):
        ModelEntry.parse("criss_cross_smal")
    assert not ModelEntry.parse("org/name").random_init
    with pytest.raises(ValueError, match="names .*criss_cross_small.* more than once"):
        run_comparison(CompareSettings(models="criss_cross_small,criss_cross_small",
                                       tasks="finger_movements", out=str(tmp_path / "o")))
    with pytest.raises(ValueError, match="--mode probes: choose from probe, finetune"):
        run_comparison(CompareSettings(models="criss_cross_small", tasks="finger_movements",
                                       modes="probes", out=str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()


def test_the_output_folder_rule_applies(tmp_path):
    foreign = tmp_path / "results"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match="not empty and was not written by `neurofm "
                                                 "compare`"):
        run_comparison(CompareSettings(models=TINY_NAME, tasks=_task_file(tmp_path, "t"),
                                       out=str(foreign)))
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


# -- task configs, the command line ---------------------------------------------------------------
def test_task_names_are_the_repositorys_task_configs():
    shipped = shipped_tasks()
    assert shipped == {p.stem: p for p in sorted((ROOT / "finetune").glob("*.yaml"))}
    assert TASK_CONFIG_DIR == ROOT / "finetune" and "bcic_iv_2a" in shipped
    assert find_task_config("tuab") == shipped["tuab"]
    assert read_task_config(find_task_config("tuab")) == read_task_config("finetune/tuab.yaml")
    assert find_task_config("finetune/tuab.yaml") == Path("finetune/tuab.yaml")
    with pytest.raises(FileNotFoundError, match="no shipped task 'tuabb'.*bcic_iv_2a"):
        find_task_config("tuabb")
    with pytest.raises(FileNotFoundError, match="no file missing.yaml"):
        find_task_config("missing.yaml")
    assert TaskEntry.read("bcic_iv_2a").protocols() == ["official", "loso"]
    assert TaskEntry.read("bcic_iv_2a").protocols("main") == ["official"]


def test_task_names_outside_a_checkout_are_looked_up_in_the_working_directory(tmp_path,
                                                                                monkeypatch):
    from neurofm.compare import tasks

    monkeypatch.setattr(tasks, "TASK_CONFIG_DIR", tmp_path / "site-packages" / "finetune")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="none found in finetune"):
        find_task_config("sim")
    (tmp_path / "finetune").mkdir()
    _task_file(tmp_path / "finetune", "sim")
    assert find_task_config("sim") == Path("finetune/sim.yaml")


def test_the_command_says_it_is_not_the_speed_benchmarks(capsys):
    from neurofm.commands import compare as command

    assert (command.MODES, command.PROTOCOL_CHOICES) == (compare_run.MODES,
                                                         compare_run.PROTOCOL_CHOICES)
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "python -m benchmarks` measures speed" in shown
    args = build_parser().parse_args(["compare", "--models", "a,b", "--tasks", "t", "--out", "o"])
    assert (args.mode, args.protocols, args.seeds) == ("probe", "all", None)
