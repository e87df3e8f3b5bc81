"""Training checkpoints: atomic, rotating, with everything needed to continue exactly.

A checkpoint ``checkpoints/step-00001000.pt`` holds the model and objective heads, the optimizer,
the LR scheduler, the gradient scaler, the RNG states of every rank, the data position (the step
from which the deterministic sampler resumes) and the config. It is written to a temporary file in
the same directory, flushed to disk and renamed over its final name with :func:`os.replace`, so a
crash, a kill or a full disk leaves either the complete new file or none at all; older
checkpoints are deleted only after the new one is in place.

Reading a checkpoint runs no code from it (``weights_only`` loading: a file planted in a run's
``checkpoints/`` is refused, not executed), and a damaged newest checkpoint is passed over for
the one before it (:meth:`CheckpointManager.load_newest`).

Every checkpoint carries ``format_version`` (:data:`CHECKPOINT_FORMAT_VERSION`; absent = 1,
written by neurofm 0.1.0). :meth:`CheckpointManager.load` refuses a newer format and fills in
the version of an older one, so the resuming code can upgrade what changed.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np
import torch

from neurofm._version import __version__
from neurofm.logs import get_logger
from neurofm.torch_files import NUMPY_ARRAY_GLOBALS, DamagedFileError, load_torch_file

#: Format of the training checkpoints this release writes.
CHECKPOINT_FORMAT_VERSION = 2
#: Format of a checkpoint without ``format_version`` (written by neurofm 0.1.0).
UNVERSIONED_CHECKPOINT_FORMAT = 1
CHECKPOINT_NAME = "step-{:08d}.pt"
_CHECKPOINT_RE = re.compile(r"^step-(\d{8})\.pt$")


class CheckpointManager:
    """Save, list, prune and load the training checkpoints of one run directory.

    Parameters
    ----------
    directory : str or Path
        Where checkpoints live (created on first save).
    keep : int
        Number of newest checkpoints to keep.
    """

    def __init__(self, directory: str | Path, keep: int = 3):
        if keep < 1:
            raise ValueError(f"run.keep_checkpoints is {keep}; keep at least 1.")
        self.directory = Path(directory)
        self.keep = keep

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints as ``(step, path)``, oldest first (temporary files ignored)."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = _CHECKPOINT_RE.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def remove_temporary_files(self) -> int:
        """Delete the temporary files of saves that a kill interrupted; returns how many.

        Only while this run holds the run folder's lock (no other process saves here)."""
        if not self.directory.is_dir():
            return 0
        leftovers = [p for p in self.directory.glob(".step-*.pt.tmp-*")
                     if _CHECKPOINT_RE.match(p.name[1:p.name.index(".tmp-")])]
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)

    def latest(self) -> Path | None:
        """Newest complete checkpoint, or None."""
        found = self.checkpoints()
        return found[-1][1] if found else None

    def save(self, state: dict, step: int) -> Path:
        """Write ``state`` as the checkpoint of ``step`` atomically, then prune old ones.

        The file holds ``state`` with ``format_version`` set to this release's format.

        Raises
        ------
        OSError
            The write failed (e.g. ``ENOSPC``); the temporary file is removed and the previous
            checkpoints are untouched. The message names the file and the checkpoint to resume from.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / CHECKPOINT_NAME.format(step)
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as fh:
                torch.save({**state, "format_version": CHECKPOINT_FORMAT_VERSION}, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            previous = self.latest()
            keep = f"{previous} is intact" if previous else "no earlier checkpoint exists"
            raise OSError(err.errno, f"Could not write checkpoint {final} ({err.strerror or err}); "
                          f"{keep}. Free disk space and rerun the same command to resume.") from err
        _fsync_directory(self.directory)
        for _, old in self.checkpoints()[:-self.keep]:
            old.unlink(missing_ok=True)
        return final

    @staticmethod
    def load(path: str | Path) -> dict:
        """Read a checkpoint written by :meth:`save` (onto the CPU), running no code from it.

        Only tensors, numbers, strings, containers of them and numpy's RNG state (an array, in
        checkpoints of neurofm 0.1.0) are read (:func:`neurofm.torch_files.load_torch_file`).

        Returns
        -------
        dict: the saved state; ``format_version`` is filled in (1) for a 0.1.0 checkpoint.

        Raises
        ------
        RefusedGlobalError
            The file names other Python objects (neurofm never writes such a checkpoint: a
            planted file); the message names them.
        DamagedFileError
            The file is truncated or corrupt.
        ValueError
            When the checkpoint's format is newer than this release reads, naming both versions.
        """
        state = load_torch_file(path, allow=NUMPY_ARRAY_GLOBALS, refused_advice=(
            "neurofm's training checkpoints never name other objects: if you did not put this "
            "file there, someone else did; delete it and check who can write to the folder."))
        if not isinstance(state, dict):
            raise DamagedFileError(f"{path} is not a neurofm training checkpoint (it holds a "
                                   f"{type(state).__name__}); move it out of the checkpoints "
                                   "folder.")
        version = state.get("format_version", UNVERSIONED_CHECKPOINT_FORMAT)
        if version > CHECKPOINT_FORMAT_VERSION:
            raise ValueError(f"{path} has checkpoint format version {version}, but neurofm "
                             f"{__version__} reads training checkpoints up to format version "
                             f"{CHECKPOINT_FORMAT_VERSION}; upgrade neurofm to resume from it.")
        state["format_version"] = version
        return state

    def load_newest(self, warn=None) -> tuple[Path, dict] | None:
        """The newest checkpoint that loads, as ``(path, state)``; None when there is none.

        A damaged newer checkpoint (a truncated file: the disk filled up or the machine died
        while it was copied in) is passed over with a warning naming it; the one before it is
        used.

        Parameters
        ----------
        warn : callable, optional
            Receives the warning text (default: this module's logger, at WARNING level).

        Raises
        ------
        RefusedGlobalError
            A checkpoint names Python objects that could run code (see :meth:`load`).
        DamagedFileError
            Checkpoints exist but none of them loads.
        """
        warn = warn or get_logger(__name__).warning
        damaged = []
        for _, path in reversed(self.checkpoints()):
            try:
                return path, self.load(path)
            except DamagedFileError as err:
                damaged.append(path.name)
                warn(f"{err} Resuming from the checkpoint before it.")
        if damaged:
            raise DamagedFileError(
                f"No checkpoint in {self.directory} can be read ({', '.join(damaged)} are "
                "damaged); restore them from a copy, or move them away to start the run over.")
        return None


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def capture_rng_state() -> dict:
    """RNG states of this process: Python, numpy, torch CPU and (when present) CUDA."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Inverse of :func:`capture_rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def gather_training_state(objective, optimizer, sharded: bool) -> tuple[dict, dict]:
    """Full (unsharded) state dicts of the objective and the optimizer, on the CPU.

    With FSDP (``sharded``) this is a collective: every rank must call it.
    """
    if not sharded:
        return objective.state_dict(), optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_state_dict(objective, optimizer, options=options)


def load_training_state(objective, optimizer, model_state: dict, optim_state: dict,
                        sharded: bool) -> None:
    """Inverse of :func:`gather_training_state` (every rank calls it with the full states)."""
    if not sharded:
        objective.load_state_dict(model_state)
        optimizer.load_state_dict(optim_state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    set_state_dict(objective, optimizer, model_state_dict=model_state,
                   optim_state_dict=optim_state, options=StateDictOptions(full_state_dict=True))
