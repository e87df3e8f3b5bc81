"""The fault suite: what a hostile but realistic user, cluster or disk does to neurofm's jobs.

* ``kill -9`` at chosen points of ``neurofm prepare`` and ``neurofm pretrain`` (drawn from a
  seed), then the same command again: the result is bit-identical to an uninterrupted run;
* a truncated newest checkpoint: the run resumes from the one before it, with a warning;
* a planted pickle in a run's ``checkpoints/``: refused, never executed;
* foreign files in ``--out``: every writer refuses, or with ``--overwrite`` keeps them;
* two writers at once into one folder: the parts of one ``prepare`` run, the same part twice,
  two ``pretrain`` runs;
* a full disk (a small tmpfs in a user and mount namespace where the system allows one, else
  writes patched to fail with ENOSPC): a one-line error, nothing partial, and a rerun finishes;
* a seeded fuzz loop over EDF header fields: every file ends in a named manifest reason;
* the launcher of ``neurofm pretrain --nproc 2`` killed alone: its workers end too.

Each case prints one ``fault-case`` line (``pytest -s`` shows them) with its outcome.
"""

from __future__ import annotations

import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from neurofm.cli import main
from neurofm.corpus import Corpus, PrepareOptions, prepare_corpus, read_manifest, verify_corpus
from neurofm.corpus.discover import SourceFile
from neurofm.corpus.prepare import prepare_file
from neurofm.model_folder import load_weights
from neurofm.train import load_config, train
from neurofm.train.metrics import read_metrics
from tests.corpus_edf_files import TEST_PREPARE, write_tuh_edf

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = PrepareOptions(**TEST_PREPARE)
PREPARE_ARGS = ["--window-seconds", "10", "--trim-seconds", "5", "--min-minutes", "1",
                "--shard-size-mb", "1", "--quiet"]
TINY = ["data.batch_size=4", "run.progress=false", "run.tensorboard=false", "run.log_every=1",
        "run.checkpoint_every=2", "run.keep_checkpoints=10", "optim.warmup_steps=2",
        ("model.overrides={dim: 16, depth: 1, n_heads: 2, ffn_dim: 32, dropout: 0.1, "
         "drop_path: 0.0}")]
#: Manifest reasons a file may end with (docs/corpus.md), besides being kept.
NAMED_REASONS = {"empty-file", "unreadable", "duplicate", "unreadable-recording",
                 "bad-physical-range", "no-signal", "no-eeg-channels", "missing-channels",
                 "too-short", "no-clean-windows", "preprocessing-failed", "flat-signal"}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def report(case: str, outcome: str) -> None:
    """One line per case, past any capture of the test's own output (``pytest -s`` shows it)."""
    print(f"fault-case {case}: {outcome}", file=sys.__stdout__, flush=True)


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """Six TUH-named EDF recordings of 1.5 to 2 minutes (one shard each with 1-MB shards;
    of different sizes, so that two parts split them)."""
    root = tmp_path_factory.mktemp("src")
    for k in range(6):
        write_tuh_edf(root / f"aaaaaaa{'abcdef'[k]}_s001_t000.edf", 1.5 + 0.1 * k, 250.0,
                      seed=k)
    return root


@pytest.fixture(scope="module")
def reference(src, tmp_path_factory):
    """The corpus an uninterrupted run writes."""
    out = tmp_path_factory.mktemp("reference") / "corpus"
    prepare_corpus(src, out, OPTIONS, shard_size_mb=1.0, progress=False)
    return out


@pytest.fixture(scope="module")
def config(reference, tmp_path_factory):
    """A 6-step config of a tiny model on the reference corpus (dropout on: RNG states count)."""
    import yaml

    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    settings = load_config(None, [f"data.path={reference}", "run.steps=6", *TINY]).to_dict()
    del settings["run"]["out_dir"]
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.fixture(scope="module")
def reference_run(config, tmp_path_factory):
    """The run an uninterrupted ``neurofm pretrain --config CONFIG`` writes."""
    out = tmp_path_factory.mktemp("reference_run") / "run"
    train(load_config(config, [f"run.out_dir={out}"]))
    return out


def pretrain_argv(config, out=None, *sets):
    argv = ["pretrain", "--config", str(config)]
    for item in sets:
        argv += ["--set", item]
    return argv + (["--out", str(out)] if out is not None else [])


def assert_same_corpus(expected, got):
    """Bit-identical windows in the same order, and the same manifest (which shard file holds
    a recording may differ)."""
    a, b = Corpus(expected), Corpus(got)
    assert len(a) == len(b)
    for i in range(len(a)):
        wa, wb = a[i], b[i]
        assert (wa["source"], wa["start"]) == (wb["source"], wb["start"])
        assert torch.equal(wa["x"], wb["x"])
    columns = ["path", "status", "reason", "n_windows", "n_rejected", "hours", "sha256",
               "report", "layout"]
    assert read_manifest(expected)[columns].equals(read_manifest(got)[columns])
    assert verify_corpus(got).ok
    assert not list(Path(got).rglob(".tmp-*")) and not (Path(got) / "_progress").exists()


def assert_same_model(expected_run, got_run):
    want, got = (load_weights(Path(r) / "model" / "model.safetensors")
                 for r in (expected_run, got_run))
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)
    losses = [[(r["step"], r["loss"]) for r in read_metrics(Path(r) / "metrics.jsonl")]
              for r in (expected_run, got_run)]
    assert losses[0] == losses[1]


# ------------------------------------------------------------------- kill -9 of prepare

PREPARE_KILLER = r'''
import os, signal, sys
import neurofm.corpus.prepare as prepare
import neurofm.corpus.progress as progress
import neurofm.corpus.writer as writer
from neurofm.cli import main

target, name, when, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
owner = {"prepare": prepare, "progress": progress, "writer": writer,
         "state": progress.PrepareState}[target]
real, calls = getattr(owner, name), [0]

def killing(*args, **kwargs):
    calls[0] += 1
    if calls[0] == k and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = real(*args, **kwargs)
    if calls[0] == k and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    return result

setattr(owner, name, killing)
sys.exit(main(sys.argv[5:]))
'''

#: (where, what is on disk when the kill comes)
PREPARE_KILL_POINTS = [
    (("prepare", "prepare_file", "before"), "a recording half way through the file list"),
    (("state", "record_shard", "before"), "a shard renamed into place, not journaled yet"),
    (("state", "record_shard", "after"), "a shard in place and journaled"),
    (("progress", "write_corpus", "before"), "every shard done, no corpus file written"),
    (("writer", "write_manifest", "before"), "sensors.arrow and index.arrow written"),
    (("writer", "write_json_atomic", "before"), "the manifest written, not corpus.json"),
    (("progress", "write_corpus", "after"), "corpus.json written, the journal still there"),
]


@pytest.mark.slow
@pytest.mark.parametrize("point, state", PREPARE_KILL_POINTS,
                         ids=[f"{p[1]}-{p[2]}" for p, _ in PREPARE_KILL_POINTS])
def test_prepare_killed_at_any_point_then_rerun_gives_the_same_corpus(src, reference, tmp_path,
                                                                     point, state):
    rng = random.Random(f"prepare-{point}")
    calls = {"prepare_file": 6, "record_shard": 6}.get(point[1], 1)
    k = rng.randint(1, calls)
    out = tmp_path / "corpus"
    killer = tmp_path / "killer.py"
    killer.write_text(PREPARE_KILLER)
    command = ["prepare", str(src), "--out", str(out), *PREPARE_ARGS]
    killed = subprocess.run([sys.executable, str(killer), *point, str(k), *command], env=ENV,
                            capture_output=True, text=True, timeout=300, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert main(command) == 0
    assert_same_corpus(reference, out)
    report(f"prepare kill -9 at {point[1]} ({point[2]}, call {k}: {state})",
           "rerun finished, corpus bit-identical")


# ------------------------------------------------------------------- kill -9 of pretrain

PRETRAIN_KILLER = r'''
import os, signal, sys
import torch
torch.set_num_threads(1)
import neurofm.train.checkpoint as checkpoint
import neurofm.train.loop as loop
import neurofm.train.metrics as metrics
from neurofm.cli import main

target, name, when, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
owner = {"loop": loop, "manager": checkpoint.CheckpointManager, "metrics": metrics.MetricsLog,
         "torch": checkpoint.torch}[target]
real, calls = getattr(owner, name), [0]

def killing(*args, **kwargs):
    calls[0] += 1
    if calls[0] == k and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    if calls[0] == k and when == "during":  # half the checkpoint's bytes, then the kill
        state, fh = args
        import io
        buffer = io.BytesIO()
        real(state, buffer)
        fh.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    result = real(*args, **kwargs)
    if calls[0] == k and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    return result

setattr(owner, name, killing)
sys.exit(main(sys.argv[5:]))
'''

PRETRAIN_KILL_POINTS = [
    (("loop", "_optimizer_step", "before"), "mid-run, between two checkpoints"),
    (("manager", "save", "before"), "a step done, its checkpoint not written"),
    (("torch", "save", "during"), "half a checkpoint written to its temporary file"),
    (("manager", "save", "after"), "a checkpoint in place, the step's metrics not logged"),
    (("metrics", "log", "before"), "a step done, its metrics line not written"),
    (("loop", "export_pretrained", "before"), "every step and checkpoint done, no model/"),
]


@pytest.mark.slow
@pytest.mark.parametrize("point, state", PRETRAIN_KILL_POINTS,
                         ids=[f"{p[1]}-{p[2]}" for p, _ in PRETRAIN_KILL_POINTS])
def test_pretrain_killed_at_any_point_then_rerun_gives_the_same_model(config, reference_run,
                                                                     tmp_path, point, state):
    rng = random.Random(f"pretrain-{point}")
    calls = {"_optimizer_step": 6, "save": 3, "log": 6}.get(point[1], 1)
    k = rng.randint(2, calls) if calls > 1 else 1
    out = tmp_path / "run"
    killer = tmp_path / "killer.py"
    killer.write_text(PRETRAIN_KILLER)
    command = pretrain_argv(config, out)
    killed = subprocess.run([sys.executable, str(killer), *point, str(k), *command], env=ENV,
                            capture_output=True, text=True, timeout=300, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = subprocess.run([sys.executable, "-m", "neurofm", *command], env=ENV,
                             capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_model(reference_run, out)
    assert not list((out / "checkpoints").glob(".*tmp*"))
    report(f"pretrain kill -9 at {point[1]} ({point[2]}, call {k}: {state})",
           "rerun finished, model and losses bit-identical")


# ------------------------------------------------------------------- checkpoints

def test_a_truncated_newest_checkpoint_is_passed_over_with_a_warning(config, reference_run,
                                                                    tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(reference_run, out)
    newest = out / "checkpoints" / "step-00000006.pt"
    newest.write_bytes(newest.read_bytes()[:5000])
    assert main(pretrain_argv(config, out)) == 0
    err = capsys.readouterr().err
    assert f"warning: {newest} could not be read as a PyTorch file" in err
    assert "Resumed from" in err and "step-00000004.pt (step 4)" in err
    assert_same_model(reference_run, out)
    report("truncated newest checkpoint", "warned, resumed from the one before, same model")


def test_a_planted_pickle_in_checkpoints_is_refused_and_never_run(config, reference_run,
                                                                 tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(reference_run, out)
    ran = tmp_path / "planted-code-ran"

    class Planted:
        def __reduce__(self):
            return os.system, (f"touch {ran}",)

    torch.save({"step": 99, "objective": Planted()},
               out / "checkpoints" / "step-00000099.pt")
    assert main(pretrain_argv(config, out)) == 2
    err = capsys.readouterr().err
    assert "step-00000099.pt was not loaded: its pickle names posix.system" in err
    assert "Traceback" not in err
    assert not ran.exists()
    report("planted pickle in checkpoints/", "refused naming posix.system, not executed")


# ------------------------------------------------------------------- foreign files in --out

#: A user's files in the folder given as --out, with the names neurofm's outputs have.
FOREIGN = {"notes.txt": "mine", "metrics.jsonl": "my own log\n", "results.json": "{}",
           "config.json": '{"mine": true}', "shards/my.arrow": "arrow of mine",
           "model.safetensors": "weights of mine"}


def _foreign(folder: Path) -> None:
    for name, text in FOREIGN.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def _untouched(folder: Path) -> bool:
    return all((folder / name).read_text() == text for name, text in FOREIGN.items())


def test_every_writer_refuses_a_folder_of_foreign_files(src, reference, config, reference_run,
                                                       tmp_path, capsys):
    from hub_helpers import cbramod_published_state

    from neurofm.models import create_model

    torch.save(cbramod_published_state(create_model("cbramod_base", depth=1, ffn_dim=64)),
               tmp_path / "w.pth")
    commands = {
        "prepare": ["prepare", str(src), *PREPARE_ARGS, "--out"],
        "pretrain": [*pretrain_argv(config), "--out"],
        "convert": ["convert", "cbramod", str(tmp_path / "w.pth")],
        "probe": ["probe", "--model", str(reference_run / "model"), "--data",
                  "sim:motor_imagery?subjects=2&minutes=0.5", "--out"],
        "tokenizer train": ["tokenizer", "train", "--data", str(reference), "--steps", "1",
                            "--batch-size", "4", "--no-progress", "--out"],
    }
    for name, command in commands.items():
        folder = tmp_path / name.replace(" ", "-")
        _foreign(folder)
        assert main([*command, str(folder)]) == 2, name
        err = capsys.readouterr().err
        assert "is not empty and was not written by" in err and "--overwrite" in err, (name, err)
        assert _untouched(folder), name
        report(f"foreign files in --out of {name}", "refused, files untouched")
    folder = tmp_path / "prepare"  # told: written into, nothing of the user's deleted
    assert main([*commands["prepare"], str(folder), "--overwrite"]) == 0
    assert _untouched(folder)
    assert len(Corpus(folder)) == len(Corpus(reference))
    report("foreign files in --out of prepare with --overwrite", "corpus written, files kept")
    claimed = tmp_path / "convert-own"
    assert main([*commands["convert"], str(claimed)]) == 0
    assert main(["probe", *commands["probe"][1:], str(claimed)]) == 2  # convert's folder
    assert "holds the output of `neurofm convert`" in capsys.readouterr().err
    report("another command's folder as probe --out", "refused")


def test_prepare_deletes_no_arrow_file_it_did_not_write(src, reference, tmp_path):
    out = tmp_path / "corpus"
    shutil.copytree(reference, out)
    mine = {out / "shards" / "extra.arrow": b"x", out / "shards" / "000-1.arrow": b"y",
            out / "stats.arrow": b"z"}
    for path, data in mine.items():
        path.write_bytes(data)
    extra = tmp_path / "more"
    shutil.copytree(src, extra)
    write_tuh_edf(extra / "aaaaaaag_s001_t000.edf", 1.5, 250.0, seed=9)
    prepare_corpus(extra, out, OPTIONS, shard_size_mb=1.0, progress=False)  # adds a shard
    assert all(path.read_bytes() == data for path, data in mine.items())
    report("foreign .arrow files in a corpus folder", "kept by a resumed prepare")


# ------------------------------------------------------------------- concurrent writers

#: Runs ``neurofm ARGV`` once its gate file exists (imports done before), each recording taking
#: ``PREPARE_DELAY`` seconds longer, so that jobs started together really overlap.
GATED = r'''
import os, sys, time
from pathlib import Path
import neurofm.corpus.prepare as prepare
from neurofm.cli import main

real = prepare.prepare_file
def slow(*args, **kwargs):
    time.sleep(float(os.environ.get("PREPARE_DELAY", "0")))
    return real(*args, **kwargs)
prepare.prepare_file = slow
gate = Path(sys.argv[1])
Path(f"{gate}.ready-{os.getpid()}").touch()
while not gate.exists():
    time.sleep(0.01)
sys.exit(main(sys.argv[2:]))
'''


def _together(tmp_path, *argvs, delay=0.0) -> list[tuple[int, str]]:
    """Start ``neurofm`` with each argv at the same moment; (exit code, stderr) of each."""
    driver, gate = tmp_path / "gated.py", tmp_path / "gate"
    driver.write_text(GATED)
    jobs = [subprocess.Popen([sys.executable, str(driver), str(gate), *argv],
                             env={**ENV, "PREPARE_DELAY": str(delay)}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for argv in argvs]
    deadline = time.time() + 120
    while len(list(tmp_path.glob("gate.ready-*"))) < len(jobs) and time.time() < deadline:
        time.sleep(0.05)
    gate.touch()
    return [(job.returncode, err) for job in jobs
            for _, err in [job.communicate(timeout=300)]]


@pytest.mark.slow
def test_two_parts_into_one_folder_at_once_or_in_turn_give_one_job_s_corpus(src, reference,
                                                                          tmp_path):
    together = tmp_path / "together"
    results = _together(tmp_path, *(["prepare", str(src), "--out", str(together), *PREPARE_ARGS,
                                     "--part-index", str(i), "--num-parts", "2"]
                                    for i in range(2)), delay=0.5)
    assert [code for code, _ in results] == [0, 0], results
    assert_same_corpus(reference, together)
    assert json.loads((together / "corpus.json").read_text())["part"] == {"index": 0,
                                                                         "count": 1}
    report("prepare parts 0 and 1 of 2 into one folder at once", "one corpus, as one job")

    in_turn = tmp_path / "in_turn"
    for i in range(2):
        assert main(["prepare", str(src), "--out", str(in_turn), *PREPARE_ARGS, "--part-index",
                     str(i), "--num-parts", "2"]) == 0
        if i == 0:
            assert json.loads((in_turn / "corpus.json").read_text())["part"] == {
                "index": 0, "count": 2}
            assert 0 < len(Corpus(in_turn)) < len(Corpus(reference))
    assert_same_corpus(reference, in_turn)
    report("prepare parts 0 and 1 of 2 into one folder in turn", "one corpus, as one job")


@pytest.mark.slow
def test_the_same_part_twice_at_once_is_refused_and_succeeds_when_rerun(src, reference,
                                                                        tmp_path):
    out = tmp_path / "corpus"
    results = _together(tmp_path, *[["prepare", str(src), "--out", str(out), *PREPARE_ARGS]] * 2,
                        delay=0.5)
    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "is in use by neurofm prepare (part 0 of 1) (pid" in refused
    assert "Traceback" not in refused
    assert main(["prepare", str(src), "--out", str(out), *PREPARE_ARGS]) == 0
    assert_same_corpus(reference, out)
    report("the same prepare twice at once into one folder",
           f"exit codes {sorted(c for c, _ in results)}; rerun gives the corpus")


@pytest.mark.slow
def test_two_pretrain_runs_into_one_folder(config, tmp_path):
    out = tmp_path / "run"
    results = _together(tmp_path, *[pretrain_argv(config, out, "run.steps=40")] * 2)
    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "is in use by neurofm pretrain (pid" in refused and "Traceback" not in refused
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == list(range(1, 41))
    report("two pretrain runs into one folder at once",
           f"exit codes {sorted(c for c, _ in results)}; one run of 40 steps")


# ------------------------------------------------------------------- a full disk

def _namespaces_allowed() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c",
                            "d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs $d"],
                           capture_output=True, check=False)
    return probe.returncode == 0


DISK_FULL_SCRIPT = r'''
set -u
disk="$1"; size="$2"; keep="$3"; shift 3
mkdir -p "$disk" && mount -t tmpfs -o "size=$size" tmpfs "$disk" || exit 90
"$@" 2> "$keep/first.err"; echo $? > "$keep/first.rc"
ls -a "$disk/out" "$disk/out/shards" "$disk/out/checkpoints" > "$keep/left.txt" 2>/dev/null
mount -o remount,size=256m "$disk"
"$@" 2> "$keep/second.err"; echo $? > "$keep/second.rc"
cp -a "$disk/out" "$keep/out"
'''


def _on_a_full_disk(tmp_path, size: str, argv: list[str]) -> dict:
    """Run ``neurofm argv --out DISK/out`` on a tmpfs of ``size``, then again with room."""
    script = tmp_path / "disk_full.sh"
    script.write_text(DISK_FULL_SCRIPT)
    disk, keep = tmp_path / "disk", tmp_path / "keep"
    keep.mkdir()
    done = subprocess.run(["unshare", "-rm", "sh", str(script), str(disk), size, str(keep),
                           sys.executable, "-m", "neurofm", *argv, "--out", str(disk / "out")],
                          env=ENV, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return {name: (keep / name).read_text() for name in
            ("first.rc", "first.err", "left.txt", "second.rc", "second.err")} | {"out": keep / "out"}


def _one_line_error(err: str, command: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith(f"neurofm {command}")]
    assert len(lines) == 1, err
    return lines[0]


def test_a_full_disk_stops_prepare_with_one_line_and_a_rerun_finishes(src, reference, tmp_path,
                                                                      monkeypatch, capsys):
    if _namespaces_allowed():
        result = _on_a_full_disk(tmp_path, "2500k", ["prepare", str(src), *PREPARE_ARGS])
        assert result["first.rc"].strip() == "2"
        line = _one_line_error(result["first.err"], "prepare: error:")
        assert "Disk full" in line and "re-run the same command" in line
        assert ".tmp-" not in result["left.txt"]
        assert result["second.rc"].strip() == "0", result["second.err"]
        out, how = result["out"], "tmpfs"
    else:
        from neurofm.corpus import shards

        real, calls = shards._HashingSink.write, [0]

        def full(self, data):
            calls[0] += 1
            if calls[0] == 40:
                raise OSError(28, "No space left on device")
            return real(self, data)

        out, how = tmp_path / "out", "patched write"
        monkeypatch.setattr(shards._HashingSink, "write", full)
        assert main(["prepare", str(src), *PREPARE_ARGS, "--out", str(out)]) == 2
        line = _one_line_error(capsys.readouterr().err, "prepare: error:")
        assert "Disk full" in line and not list(out.rglob(".tmp-*"))
        monkeypatch.setattr(shards._HashingSink, "write", real)
        assert main(["prepare", str(src), *PREPARE_ARGS, "--out", str(out)]) == 0
    assert_same_corpus(reference, out)
    report(f"disk full during prepare ({how})", "one-line error, nothing partial, rerun same")


def test_a_full_disk_stops_pretrain_with_one_line_and_a_rerun_finishes(config, reference_run,
                                                                       tmp_path, monkeypatch,
                                                                       capsys):
    argv = pretrain_argv(config)
    if _namespaces_allowed():
        result = _on_a_full_disk(tmp_path, "300k", argv)
        assert result["first.rc"].strip() == "2", result["first.err"]
        line = _one_line_error(result["first.err"], "pretrain: error:")
        assert result["second.rc"].strip() == "0", result["second.err"]
        out, how = result["out"], "tmpfs"
    else:
        from neurofm.train import checkpoint

        real, calls = checkpoint.torch.save, [0]

        def full(*args, **kwargs):
            calls[0] += 1
            if calls[0] == 2:
                raise OSError(28, "No space left on device")
            return real(*args, **kwargs)

        out, how = tmp_path / "out", "patched write"
        monkeypatch.setattr(checkpoint.torch, "save", full)
        assert main([*argv, "--out", str(out)]) == 2
        line = _one_line_error(capsys.readouterr().err, "pretrain: error:")
        monkeypatch.setattr(checkpoint.torch, "save", real)
        assert main([*argv, "--out", str(out)]) == 0
    assert "No space left on device" in line and "rerun" in line.lower()
    assert_same_model(reference_run, out)
    report(f"disk full during pretrain ({how})", "one-line error, rerun gives the same model")


# ------------------------------------------------------------------- EDF header fuzz

FUZZ_CASES = 120


def _edf_mutations(data: bytes, rng: random.Random):
    """(field, mutate(bytearray)) pairs over the EDF header and data."""
    n_signals = int(data[252:256])
    n_records = int(data[236:244])

    def field(offset, width, values):
        def mutate(buf):
            buf[offset:offset + width] = str(rng.choice(values)).encode("latin-1")[
                :width].ljust(width)
        return mutate

    def signal_field(column, width, values):
        def mutate(buf):
            i = rng.randrange(n_signals)
            start = 256 + column * n_signals + i * width
            buf[start:start + width] = str(rng.choice(values)).encode("latin-1")[
                :width].ljust(width)
        return mutate

    def garbage(first, last, most):
        def mutate(buf):
            for _ in range(rng.randint(1, most)):
                buf[rng.randrange(first, min(last, len(buf)))] = rng.randrange(256)
        return mutate

    header = 256 * (n_signals + 1)
    return [
        ("record count", field(236, 8, [0, 1, n_records // 2, n_records - 1, n_records + 1,
                                        2 * n_records, -1, -7, 99999999, "abc", ""])),
        ("record duration", field(244, 8, [0, -1, 0.5, 2, 1e-9, 1e9, "abc", "", "nan"])),
        ("channel count", field(252, 4, [0, n_signals - 1, n_signals + 1, 2 * n_signals,
                                         9999, -1, "ab", ""])),
        ("samples per record", signal_field(216, 8, [0, 1, 125, 500, -5, "x", 99999999, ""])),
        ("header size", field(184, 8, [0, 255, 256, 100000, -1, "zz"])),
        ("physical range", signal_field(104, 8, ["", "x", "1e400", "-0", "1000"])),
        ("digital range", signal_field(120, 8, ["", "x", "32767", "99999999"])),
        ("start date", field(168, 8, ["99.99.99", "garbage!", ""])),
        ("label", signal_field(0, 16, ["", "\xff\xfe", "EDF Annotations", "EEG FP1-REF"])),
        ("garbage in the header", garbage(0, header, 20)),
        ("garbage in the data", garbage(header, len(data), 50)),
        ("garbage appended", lambda buf: buf.extend(rng.randbytes(rng.choice([1, 7, 1000])))),
        ("cut short", lambda buf: buf.__delitem__(slice(rng.randrange(len(buf)), None))),
    ]


def test_a_seeded_fuzz_of_edf_headers_always_ends_in_a_named_outcome(tmp_path):
    base = write_tuh_edf(tmp_path / "base.edf", 1.2, 250.0, n_channels=4)
    data = base.read_bytes()
    options = PrepareOptions(window_seconds=10.0, trim_seconds=5.0, min_minutes=1.0,
                             channels="all-eeg")
    rng = random.Random(20)
    outcomes = collections.Counter()
    unnamed = []
    for case in range(FUZZ_CASES):
        name, mutate = rng.choice(_edf_mutations(data, rng))
        buf = bytearray(data)
        mutate(buf)
        path = tmp_path / f"case-{case:03d}.edf"
        path.write_bytes(bytes(buf))
        row, _ = prepare_file(SourceFile(path, path.name, "s", None), "sha", options)
        outcome = "kept" if row.status == "kept" else row.reason.split(":", 1)[0]
        outcomes[outcome] += 1
        if outcome != "kept" and outcome not in NAMED_REASONS:
            unnamed.append((case, name, row.reason))
        path.unlink()
    assert not unnamed
    report(f"EDF header fuzz ({FUZZ_CASES} seeded cases)",
           ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))


# ------------------------------------------------------------------- orphan workers

def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
def test_killing_only_the_launcher_ends_its_workers(config, tmp_path):
    out = tmp_path / "run"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "neurofm", *pretrain_argv(
            config, out, "run.steps=100000", "run.checkpoint_every=100000"), "--nproc", "2"],
        env=ENV, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        deadline = time.time() + 240
        while time.time() < deadline and len(read_metrics(out / "metrics.jsonl")) < 2:
            assert launcher.poll() is None, "the run ended before it could be killed"
            time.sleep(0.5)
        workers = _children(launcher.pid)
        assert len(workers) >= 2, workers
        os.killpg(launcher.pid, signal.SIGKILL)  # its process group: the workers are not in it
        launcher.wait()
        deadline = time.time() + 30
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.2)
        assert not any(_alive(w) for w in workers)
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    report("kill -9 of the pretrain --nproc 2 launcher's process group", "both workers ended")
