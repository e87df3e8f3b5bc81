"""``neurofm.commands.launch``: the torchrun command line of ``--nproc N`` and its outcome."""

import logging
import os
import socket

import pytest

import neurofm.commands.launch as launch_module
from neurofm.cli import build_parser
from neurofm.commands.launch import free_port, launch_workers, run_local_torchrun
from neurofm.worker import LAUNCHER_PID_ENV, WORKER_MODULE
from neurofm.worker import build_parser as worker_parser


def test_free_port_can_be_bound():
    port = free_port()
    assert 1024 <= port < 65536
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


@pytest.fixture
def torchrun_calls(monkeypatch):
    """The argument namespaces handed to torchrun, and the launcher pid it saw."""
    import torch.distributed.run

    calls = []

    def fake_run(args):
        calls.append((args, os.environ.get(LAUNCHER_PID_ENV)))

    monkeypatch.setattr(torch.distributed.run, "run", fake_run)
    monkeypatch.delenv(LAUNCHER_PID_ENV, raising=False)
    return calls


def test_pretrain_with_nproc_runs_the_worker_with_the_same_arguments(torchrun_calls, tmp_path):
    args = build_parser().parse_args([
        "pretrain", "--config", "c.yaml", "--out", str(tmp_path / "run"), "--nproc", "2",
        "--set", "optim.lr=0.01", "--set", "run.steps=5", "--seed", "7", "--resume"])
    assert launch_workers(2, "pretrain", args, master_port=29555, max_restarts=3) == 0
    (launch, pid), = torchrun_calls
    assert (launch.nproc_per_node, launch.nnodes, launch.master_addr, launch.master_port,
            launch.max_restarts) == ("2", "1", "127.0.0.1", 29555, 3)
    assert launch.module and launch.training_script == WORKER_MODULE
    assert pid == str(os.getpid())           # the workers end with this process
    assert LAUNCHER_PID_ENV not in os.environ  # and the variable is gone afterwards
    assert "--nproc" not in launch.training_script_args
    worker = worker_parser().parse_args(launch.training_script_args)
    assert worker.job == "pretrain" and worker.config == "c.yaml"
    assert worker.out == str(tmp_path / "run") and worker.overrides == ["optim.lr=0.01",
                                                                         "run.steps=5"]
    assert worker.seed == 7 and worker.resume and not worker.overwrite


def test_a_free_port_is_chosen_and_an_outer_launcher_pid_is_restored(torchrun_calls,
                                                                      monkeypatch):
    monkeypatch.setenv(LAUNCHER_PID_ENV, "12345")
    assert run_local_torchrun(3, "some.module", ["a", "--b"], label="x") == 0
    (launch, pid), = torchrun_calls
    assert launch.nproc_per_node == "3" and launch.master_port > 0
    assert launch.training_script == "some.module" and launch.training_script_args == ["a",
                                                                                     "--b"]
    assert pid == str(os.getpid()) and os.environ[LAUNCHER_PID_ENV] == "12345"


def test_a_failed_process_returns_1_and_is_logged(caplog):
    """Two real processes under torchrun: ``python -m json.tool`` on a missing file fails."""
    with caplog.at_level(logging.ERROR, logger=launch_module.__name__):
        assert run_local_torchrun(2, "json.tool", ["/nonexistent/neurofm.json"],
                                  label="probe-job") == 1
    assert "neurofm probe-job: a training process failed" in caplog.text
    assert LAUNCHER_PID_ENV not in os.environ
    assert run_local_torchrun(2, "platform", [], label="ok-job") == 0
