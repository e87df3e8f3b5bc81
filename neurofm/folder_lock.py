"""A lock that one job holds while it writes into a folder: who holds it is written inside.

:class:`FolderLock` is a file (e.g. ``RUN/.neurofm-lock``) locked with ``flock``: the kernel
releases it when the holding process ends in any way (``kill -9``, a crash, a lost node on
file systems that forward ``flock`` to a lock server, as NFS does), so a lock left behind by a
dead job is taken over by the next one without anyone deleting it. The file holds the holder's
pid, host, command and start time, which the error of a job that finds the lock taken names.

Where the file system does not support ``flock`` (Lustre mounted without ``-o flock``), the
holder record itself is the lock: it is stale, and taken over, when it names a process of this
host that no longer runs; a record from another host is only taken over after the user deletes
the file (the error says which file).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from neurofm.output_folder import new_file_mode

#: ``flock`` errors meaning "this file system has no flock", not "someone holds it".
_NO_FLOCK = {errno.ENOLCK, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}


class LockBusyError(ValueError):
    """The lock is held by another live job; the message names it and what to do.

    Attributes
    ----------
    holder : LockHolder
    """

    def __init__(self, message: str, holder: LockHolder):
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class LockHolder:
    """The job holding a lock, as recorded in the lock file.

    Attributes
    ----------
    pid : int
    host : str
    command : str
        What the job does (``neurofm prepare part 0 of 2``).
    started : str
        ISO time the lock was taken.
    process_start : int or None
        The process's start time in clock ticks since boot (Linux ``/proc``), which tells a
        reused pid from the holder.
    """

    pid: int
    host: str
    command: str
    started: str
    process_start: int | None = None

    @classmethod
    def of_this_process(cls, command: str) -> LockHolder:
        return cls(os.getpid(), socket.gethostname(), command,
                   datetime.now(UTC).isoformat(timespec="seconds"),
                   _process_start(os.getpid()))

    def is_running(self) -> bool | None:
        """True/False for a process of this host; None when it runs elsewhere (unknown)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's live process
            pass
        return self.process_start is None or _process_start(self.pid) == self.process_start

    def describe(self) -> str:
        return f"{self.command} (pid {self.pid} on {self.host}, since {self.started})"


class FolderLock:
    """An exclusive lock on a folder (or on one part of its work), held by one process.

    Parameters
    ----------
    path : path-like
        The lock file (its folder must exist).
    command : str
        What the holder does, for the message of a job that finds the lock taken.

    Use ``with FolderLock(path, command).acquire():`` or :meth:`acquire` / :meth:`release`.
    """

    def __init__(self, path, command: str):
        self.path = Path(path)
        self.command = command
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, *, wait: float = 0.0, poll: float = 0.2) -> Self:
        """Take the lock, waiting up to ``wait`` seconds while another live job holds it.

        Raises
        ------
        LockBusyError
            Still held by another job after ``wait`` seconds.
        """
        deadline = time.monotonic() + wait
        while True:
            holder = self._try_acquire()
            if holder is None:
                return self
            if time.monotonic() >= deadline:
                raise LockBusyError(self._busy_message(holder), holder)
            time.sleep(poll)

    def holder(self) -> LockHolder | None:
        """The live job holding the lock now, or None (the lock is not taken by this call)."""
        if self.held:
            return LockHolder.of_this_process(self.command)
        holder = self._try_acquire()
        if holder is None:
            self.release()
        return holder

    def release(self) -> None:
        """Give the lock up (the lock file is removed); a no-op when not held."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if _same_file(self.path, fd):
                self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)  # also releases the flock

    def __enter__(self) -> Self:
        if not self.held:
            self.acquire()
        return self

    def __exit__(self, *exc) -> bool:
        self.release()
        return False

    # ----------------------------------------------------------------------------- internals

    def _try_acquire(self) -> LockHolder | None:
        """Take the lock now, or return the live holder."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, new_file_mode())
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                if holder is None:  # taken a moment ago, record not written yet
                    holder = LockHolder(0, "?", self.command, "now")
                return holder
            except OSError as err:
                if err.errno not in _NO_FLOCK:
                    os.close(fd)
                    raise
                holder = _read_holder(fd)
                if holder is not None and holder.is_running() is not False:
                    os.close(fd)
                    return holder
            if not _same_file(self.path, fd):  # removed by its releasing holder meanwhile
                os.close(fd)
                continue
            record = json.dumps(asdict(LockHolder.of_this_process(self.command))).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)
            self._fd = fd
            return None

    def _busy_message(self, holder: LockHolder) -> str:
        running = holder.is_running()
        advice = ("wait for it to end, or stop it" if running is not False else
                  f"if no such job runs any more, delete {self.path}")
        if running is None:
            advice = (f"wait for it to end; if it no longer runs on {holder.host}, delete "
                      f"{self.path}")
        return f"{self.path.parent} is in use by {holder.describe()}; {advice}, then rerun."


def _read_holder(fd: int) -> LockHolder | None:
    try:
        data = os.pread(fd, 4096, 0)
        return LockHolder(**json.loads(data.decode("utf-8"))) if data else None
    except (ValueError, TypeError):
        return None


def _same_file(path: Path, fd: int) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def _process_start(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime
