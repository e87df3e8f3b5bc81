"""Launch the training worker on N local processes through torchrun (``torch.distributed.run``).

Used by the commands that take ``--nproc`` (``neurofm pretrain``, ``neurofm tokenizer train``):
they run :mod:`neurofm.worker` with their job. Several machines call ``torchrun`` themselves with
its rendezvous arguments.
"""

from __future__ import annotations

import argparse
import os
import socket

from neurofm.logs import get_logger
from neurofm.worker import JOBS, LAUNCHER_PID_ENV, WORKER_MODULE

logger = get_logger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_workers(nproc: int, job: str, args: argparse.Namespace, *,
                   master_port: int | None = None, max_restarts: int = 0) -> int:
    """``torchrun --nproc_per_node=nproc -m neurofm.worker JOB ...`` with the job's arguments
    taken from ``args`` (a command's parsed arguments; its own ``--nproc`` is left out, since
    torchrun's parser would take it for an abbreviation of ``--nproc-per-node``)."""
    return run_local_torchrun(nproc, WORKER_MODULE, [job, *JOBS[job].argv(args)],
                              label=job, master_port=master_port,
                              max_restarts=max_restarts)


def run_local_torchrun(nproc: int, module: str, module_args: list[str], *, label: str,
                       master_port: int | None = None, max_restarts: int = 0) -> int:
    """``torchrun --nproc_per_node=nproc -m module module_args...`` on this machine.

    Returns 0 on success, 1 (after logging which command failed and why) when a process failed.
    The processes end when this one does (:func:`neurofm.worker.end_with_launcher`).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser
    from torch.distributed.run import run as torchrun

    launch = get_args_parser().parse_args([
        f"--nproc_per_node={nproc}", "--nnodes=1", "--master_addr=127.0.0.1",
        f"--master_port={master_port or free_port()}", f"--max_restarts={max_restarts}",
        "-m", module, *module_args])
    previous = os.environ.get(LAUNCHER_PID_ENV)
    os.environ[LAUNCHER_PID_ENV] = str(os.getpid())  # the workers end with this process
    try:
        torchrun(launch)
    except ChildFailedError as err:
        logger.error("neurofm %s: a training process failed:\n%s", label, err)
        return 1
    finally:
        if previous is None:
            del os.environ[LAUNCHER_PID_ENV]
        else:
            os.environ[LAUNCHER_PID_ENV] = previous
    return 0
