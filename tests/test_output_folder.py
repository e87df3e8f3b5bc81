"""The output-folder rule, the folder lock, and the mode of every file neurofm writes."""

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from neurofm.folder_lock import FolderLock, LockBusyError
from neurofm.output_folder import (
    MARKER_NAME,
    OutputFolderError,
    claim_output_folder,
    holds_json,
    read_output_marker,
)


def test_a_new_or_empty_folder_is_claimed_and_marked(tmp_path):
    folder = claim_output_folder(tmp_path / "new" / "out", "neurofm x", {"a": 1})
    marker = read_output_marker(tmp_path / "new" / "out")
    assert folder.previous is None
    assert (marker["command"], marker["settings"]) == ("neurofm x", {"a": 1})
    (tmp_path / "empty").mkdir()
    assert claim_output_folder(tmp_path / "empty", "neurofm x").previous is None


def test_the_commands_own_folder_is_accepted_with_the_settings_it_had(tmp_path):
    claim_output_folder(tmp_path, "neurofm x", {"a": 1})
    (tmp_path / "result.json").write_text("{}")
    again = claim_output_folder(tmp_path, "neurofm x", {"a": 2})
    assert again.previous_settings == {"a": 1}
    assert read_output_marker(tmp_path)["settings"] == {"a": 2}


def test_a_folder_of_other_files_is_refused_and_left_alone(tmp_path):
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputFolderError, match=r"not empty and was not written by `neurofm x` "
                                                r"\(it holds thesis.tex\).*--overwrite"):
        claim_output_folder(tmp_path, "neurofm x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]
    claim_output_folder(tmp_path, "neurofm x", overwrite=True)  # told: written into, kept
    assert (tmp_path / "thesis.tex").read_text() == "years of work"
    assert read_output_marker(tmp_path)["command"] == "neurofm x"


def test_another_commands_folder_is_refused(tmp_path):
    claim_output_folder(tmp_path, "neurofm probe")
    with pytest.raises(OutputFolderError, match="holds the output of `neurofm probe`, not of "
                                                "`neurofm finetune`"):
        claim_output_folder(tmp_path, "neurofm finetune")


def test_inputs_and_recognised_old_folders_do_not_make_a_folder_foreign(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("run: {}")
    claim_output_folder(tmp_path, "neurofm pretrain", inputs=[config])
    old = tmp_path / "old"
    old.mkdir()
    (old / "results.json").write_text(json.dumps({"settings": {"mode": "probe"}}))
    with pytest.raises(OutputFolderError):
        claim_output_folder(old, "neurofm finetune",
                            recognise=holds_json("results.json", {"settings.mode": "finetune"}))
    claim_output_folder(old, "neurofm probe",
                        recognise=holds_json("results.json", {"settings.mode": "probe"}))
    (tmp_path / "x").write_text("")
    with pytest.raises(OutputFolderError, match="is a file"):
        claim_output_folder(tmp_path / "x", "neurofm probe")


# ------------------------------------------------------------------------------ the lock

HOLDER = r'''
import sys, time
from neurofm.folder_lock import FolderLock
FolderLock(sys.argv[1], "neurofm pretrain").acquire()
print("held", flush=True)
time.sleep(60)
'''


def test_a_lock_names_its_holder_and_is_free_again_when_the_holder_is_killed(tmp_path):
    lock_file = tmp_path / ".neurofm-lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_file)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockBusyError, match=rf"in use by neurofm pretrain \(pid "
                                                rf"{holder.pid} on .*wait for it to end"):
            FolderLock(lock_file, "neurofm pretrain").acquire()
        assert FolderLock(lock_file, "x").holder().pid == holder.pid
        start = time.monotonic()
        with pytest.raises(LockBusyError):
            FolderLock(lock_file, "x").acquire(wait=0.5, poll=0.1)
        assert time.monotonic() - start >= 0.5
    finally:
        holder.kill()
        holder.wait()
    assert json.loads(lock_file.read_text())["pid"] == holder.pid  # left behind by the kill
    with FolderLock(lock_file, "neurofm pretrain") as lock:  # stale: taken over
        assert lock.held
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
    assert not lock_file.exists()


def test_without_flock_a_dead_holders_record_is_stale_and_another_hosts_is_not(tmp_path,
                                                                             monkeypatch):
    import errno
    import fcntl

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    lock_file = tmp_path / ".neurofm-lock"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=False).stdout.strip()
    lock_file.write_text(json.dumps({"pid": int(dead), "host": os.uname().nodename,
                                     "command": "neurofm prepare", "started": "then"}))
    with FolderLock(lock_file, "neurofm prepare"):
        pass
    lock_file.write_text(json.dumps({"pid": 1, "host": "node-7", "command": "neurofm prepare",
                                     "started": "then"}))
    with pytest.raises(LockBusyError, match=f"no longer runs on node-7, delete {lock_file}"):
        FolderLock(lock_file, "neurofm prepare").acquire()


# ------------------------------------------------------------------------------ file modes


def test_every_writer_creates_files_with_the_umasks_mode(tmp_path):
    """A group-shared umask (002) gives group-writable files everywhere: corpus shards, index,
    sensors, manifest and corpus.json, the marker, checkpoints, metrics, TensorBoard events,
    loss.png, the exported model, probe results and figures."""
    from neurofm.corpus import PrepareOptions, prepare_corpus
    from neurofm.eval.run import EvalSettings, run_evaluation
    from neurofm.train import load_config, train
    from tests.corpus_edf_files import TEST_PREPARE, write_tuh_edf
    from tests.eval_helpers import alpha_trials

    previous = os.umask(0o002)
    try:
        for k in range(2):
            write_tuh_edf(tmp_path / "src" / f"aaaaaaa{'ab'[k]}_s001_t000.edf", 1.5, seed=k)
        prepare_corpus(tmp_path / "src", tmp_path / "corpus",
                       PrepareOptions(**{**TEST_PREPARE, "window_seconds": 4.0}), progress=False)
        train(load_config(None, [
            f"data.path={tmp_path / 'corpus'}", "data.batch_size=4", "run.steps=2",
            f"run.out_dir={tmp_path / 'run'}", "run.progress=false", "run.checkpoint_every=1",
            "model.overrides={dim: 16, depth: 1, n_heads: 2, ffn_dim: 32}"]))
        run_evaluation(EvalSettings(
            model=str(tmp_path / "run" / "model"), data="synthetic", out=str(tmp_path / "probe"),
            protocol="loso", seeds=1, n_folds=2, baselines=[], random_init_reference=False,
            cache_dir=str(tmp_path / "cache")), trials=alpha_trials(n_subjects=2, per_class=4,
                                                                    sfreq=200.0, seconds=4.0))
    finally:
        os.umask(previous)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "src" not in p.parts]
    kinds = {p.suffix for p in written}
    assert {".arrow", ".parquet", ".json", ".pt", ".jsonl", ".png", ".safetensors", ".md"} <= kinds
    assert any(p.name.startswith("events.out.tfevents") for p in written)
    assert any(p.name == MARKER_NAME for p in written)
    wrong = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in written
             if stat.S_IMODE(p.stat().st_mode) != 0o664}
    assert not wrong
