"""Pretraining on a prepared corpus: 2-rank torchrun on CPU (gloo), exact resume after SIGKILL,
one rank vs two ranks, corpus faults.

Training processes run ``tests``-side driver scripts that record which windows each rank reads
and dump each rank's final parameters, then call ``neurofm.pretrain.main`` unchanged.
"""

import json
import os
import signal
import socket
import subprocess
import sys

import mne
import numpy as np
import pytest
import torch

from neurofm.corpus import Corpus, DistributedWindowSampler, PrepareOptions, prepare_corpus
from neurofm.train import CheckpointManager, load_config, train
from neurofm.train.metrics import read_metrics

CHANNELS = ["Fp1", "Fp2", "C3", "C4", "P3", "P4", "O1", "O2"]
MODEL = ("model.overrides={dim: 32, depth: 2, n_heads: 4, ffn_dim: 64, dropout: 0.0, "
         "drop_path: 0.0}")

DRIVER = r'''
import json, os, signal, sys
import torch
import neurofm.train.data as tdata
import neurofm.train.loop as loop

rank = int(os.environ.get("RANK", "0"))
out = sys.argv[sys.argv.index("--out") + 1]
per_step = int(os.environ["WINDOWS_PER_RANK_STEP"])
kill_rank, kill_after = (int(v) for v in os.environ.get("KILL_AFTER_STEP", "-1:-1").split(":"))
first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
seen = []

read = tdata.IndexedWindows.__getitem__
def getitem(self, index):
    if first_attempt and rank == kill_rank and len(seen) == kill_after * per_step:
        os.kill(os.getpid(), signal.SIGKILL)  # dies before step kill_after + 1
    seen.append(int(index))
    return read(self, index)
tdata.IndexedWindows.__getitem__ = getitem

gather = loop.gather_training_state
def gather_and_dump(objective, optimizer, sharded):
    torch.save(objective.state_dict(), os.path.join(out, f"final-rank{rank}.pt"))
    with open(os.path.join(out, f"seen-rank{rank}.json"), "w") as fh:
        json.dump(seen, fh)
    return gather(objective, optimizer, sharded)
loop.gather_training_state = gather_and_dump

from neurofm.pretrain import main
sys.exit(main(sys.argv[1:]))
'''


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    """4 recordings x 30 s of 8-channel 10-20 EEG at 200 Hz -> 24 windows of 5 x 1-s patches."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    t = np.arange(30 * 200) / 200.0
    for subject in range(4):
        data = np.stack([20e-6 * np.sin(2 * np.pi * rng.uniform(4, 12) * t + rng.uniform(0, 6))
                         + 5e-6 * rng.standard_normal(t.size) for _ in CHANNELS])
        raw = mne.io.RawArray(data, mne.create_info(CHANNELS, 200.0, "eeg"), verbose="error")
        raw.set_montage("standard_1020", verbose="error")
        (root / "src").mkdir(exist_ok=True)
        raw.save(root / "src" / f"sub-{subject:02d}_raw.fif", verbose="error")
    options = PrepareOptions(window_seconds=5.0, patch_seconds=1.0, channels="all-eeg",
                             trim_seconds=0.0, min_minutes=0.0, max_abs_uv=None,
                             dtype="float32", line_freq=50.0)
    prepare_corpus(root / "src", root / "corpus", options, progress=False)
    return root / "corpus"


def write_config(path, corpus, *overrides):
    """A YAML config for a tiny run on ``corpus`` (overrides as key=value).

    AdamW with ``eps=1`` makes each update proportional to the gradient (SGD with momentum, hence
    the large lr) instead of ~lr * sign(g), so comparing updates compares gradients: float
    rounding cannot flip the sign of a near-zero gradient into a full-size difference.
    """
    cfg = load_config(None, [f"data.path={corpus}", "data.batch_size=4", MODEL, "run.steps=4",
                             "run.progress=false", "run.tensorboard=false", "run.log_every=1",
                             "run.checkpoint_every=1", "run.keep_checkpoints=10",
                             "optim.warmup_steps=2", "optim.lr=0.5", "optim.eps=1.0",
                             *overrides])
    import yaml

    path.write_text(yaml.safe_dump(cfg.to_dict()))
    return path


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(tmp_path, config, out, *, nproc, env_extra=None, max_restarts=0):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WINDOWS_PER_RANK_STEP": str(4 // nproc),
           **(env_extra or {})}
    if nproc == 1:
        cmd = [sys.executable, str(driver)]
    else:
        # The c10d rendezvous, as on a cluster (a restart is a new rendezvous round).
        rendezvous = (["--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{free_port()}"]
                      if max_restarts else
                      ["--master_addr=127.0.0.1", f"--master_port={free_port()}"])
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               "--nnodes=1", *rendezvous, f"--max_restarts={max_restarts}", str(driver)]
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.run(cmd + ["--config", str(config), "--out", str(out)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def two_rank_run(corpus_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("two_ranks")
    config = write_config(tmp / "config.yaml", corpus_dir)
    proc = launch(tmp, config, tmp / "run", nproc=2)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp / "run", config


def test_two_ranks_train_on_disjoint_parts_of_each_global_batch(two_rank_run, corpus_dir):
    out, _ = two_rank_run
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert records[-1]["loss"] < records[0]["loss"]
    seen = [json.loads((out / f"seen-rank{r}.json").read_text()) for r in (0, 1)]
    sampler = DistributedWindowSampler(len(Corpus(corpus_dir)), 4, seed=0)
    for step in range(4):
        part0, part1 = (set(s[2 * step:2 * step + 2]) for s in seen)
        assert not part0 & part1
        assert part0 | part1 == set(sampler.global_batch(step).tolist())


def test_two_ranks_keep_identical_parameters(two_rank_run):
    out, _ = two_rank_run
    rank0 = torch.load(out / "final-rank0.pt")
    rank1 = torch.load(out / "final-rank1.pt")
    start = CheckpointManager.load(out / "checkpoints" / "step-00000001.pt")["objective"]
    assert any(not torch.equal(rank0[k], start[k]) for k in rank0)  # they did train
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    assert (out / "model" / "model.safetensors").is_file()


def test_one_rank_makes_the_same_first_update_as_two_ranks(two_rank_run, tmp_path):
    """Same global batch through the deterministic sampler; AdamW eps=1 keeps the update
    proportional to the gradient, so this compares the synchronised gradients."""
    out, config = two_rank_run
    single = train(load_config(config, [f"run.out_dir={tmp_path / 'one'}", "run.steps=1"]))
    one = CheckpointManager.load(single.out_dir / "checkpoints" / "step-00000001.pt")
    two = CheckpointManager.load(out / "checkpoints" / "step-00000001.pt")
    assert two["world_size"] == 2 and len(two["rng"]) == 2
    for name, value in one["objective"].items():
        torch.testing.assert_close(value, two["objective"][name], rtol=1e-4, atol=1e-7)


def test_sigkill_then_resume_reaches_bit_identical_parameters(corpus_dir, tmp_path):
    """Dropout on, so the RNG state of the checkpoint matters too."""
    overrides = ["run.steps=6", "run.checkpoint_every=2",
                 "model.overrides.dropout=0.1", "model.overrides.drop_path=0.1"]
    config = write_config(tmp_path / "config.yaml", corpus_dir, *overrides)
    reference = train(load_config(config, [f"run.out_dir={tmp_path / 'ref'}"]))

    killed = launch(tmp_path, config, tmp_path / "run", nproc=1,
                    env_extra={"KILL_AFTER_STEP": "0:5"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    manager = CheckpointManager(tmp_path / "run" / "checkpoints", keep=10)
    assert [s for s, _ in manager.checkpoints()] == [2, 4]
    assert [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")] == [1, 2, 3, 4, 5]

    resumed = train(load_config(config, [f"run.out_dir={tmp_path / 'run'}"]))
    assert resumed.resumed_from == 4
    assert [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")] == \
        [1, 2, 3, 4, 5, 6]
    want = CheckpointManager.load(reference.out_dir / "checkpoints" / "step-00000006.pt")
    got = CheckpointManager.load(tmp_path / "run" / "checkpoints" / "step-00000006.pt")
    for name, value in want["objective"].items():
        assert torch.equal(value, got["objective"][name]), name
    for a, b in zip(want["optimizer"]["state"].values(), got["optimizer"]["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.final_loss == reference.final_loss


def test_corpus_with_another_patch_length_is_refused(corpus_dir, tmp_path):
    config = write_config(tmp_path / "config.yaml", corpus_dir, "model.overrides.patch_size=100",
                          f"run.out_dir={tmp_path / 'run'}")
    with pytest.raises(ValueError) as err:
        train(load_config(config))
    message = str(err.value)
    assert str(corpus_dir) in message
    assert "patch_samples=200" in message and "patch_samples=100" in message


def test_missing_corpus_is_a_clear_cli_error(tmp_path, capsys):
    from neurofm.cli import main

    config = write_config(tmp_path / "config.yaml", tmp_path / "no_corpus")
    assert main(["pretrain", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "No corpus at" in err and "neurofm prepare" in err and "no_corpus" in err


@pytest.mark.slow
def test_torchrun_restarts_a_dead_rank_from_the_last_checkpoint(two_rank_run, tmp_path):
    """Rank 1 is killed after step 3; torchrun's elastic restart resumes from step 2 and ends
    with the parameters of the uninterrupted 2-rank run.

    The restarted ranks must reconnect: their process group keeps its keys apart per restart
    attempt (``neurofm.train.distributed``); without that they read the dead ranks' gloo
    addresses left in torchrun's store and fail (connection refused) or hang."""
    out, config = two_rank_run
    config_2 = tmp_path / "config.yaml"
    config_2.write_text(config.read_text().replace("checkpoint_every: 1", "checkpoint_every: 2"))
    proc = launch(tmp_path, config_2, tmp_path / "run", nproc=2, max_restarts=1,
                  env_extra={"KILL_AFTER_STEP": "1:3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    want = CheckpointManager.load(out / "checkpoints" / "step-00000004.pt")["objective"]
    got = CheckpointManager.load(tmp_path / "run" / "checkpoints" / "step-00000004.pt")
    assert got["step"] == 4
    for name, value in want.items():
        assert torch.equal(value, got["objective"][name]), name


@pytest.mark.slow
def test_fsdp_makes_the_same_updates_as_ddp(two_rank_run, tmp_path):
    out, config = two_rank_run
    config_fsdp = tmp_path / "config.yaml"
    config_fsdp.write_text(config.read_text().replace("parallel: ddp", "parallel: fsdp"))
    proc = launch(tmp_path, config_fsdp, tmp_path / "run", nproc=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = CheckpointManager.load(out / "checkpoints" / "step-00000004.pt")
    fsdp = CheckpointManager.load(tmp_path / "run" / "checkpoints" / "step-00000004.pt")
    for name, value in ddp["objective"].items():
        torch.testing.assert_close(value, fsdp["objective"][name], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_cli_launches_torchrun_on_a_simulated_corpus(tmp_path):
    from neurofm.cli import main

    out = tmp_path / "run"
    code = main(["pretrain", "--config", "pretrain/configs/sim_tiny.yaml", "--out", str(out),
                 "--nproc", "2", "--set", "data.path=sim:tiny?recordings=2&seconds=30",
                 "--set", f"data.cache_dir={tmp_path / 'cache'}", "--set", "run.steps=4",
                 "--set", "data.batch_size=4", "--set", "run.progress=false"])
    assert code == 0
    records = read_metrics(out / "metrics.jsonl")
    assert records[-1]["step"] == 4
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["preprocessing"]["sfreq"] == 200.0 and config["preprocessing"]["line_freq"] == 50.0
    assert (out / "loss.png").is_file()
