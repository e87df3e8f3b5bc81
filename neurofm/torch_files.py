"""Read PyTorch pickle files (``.pt``, ``.pth``, ``.bin``) without running code from them.

A pickle can name any Python function and have it called while the file is read (``os.system``
with a command, for instance), so a checkpoint from a shared folder or a download could run
code. :func:`load_torch_file` reads with ``torch.load(weights_only=True)``: only tensors,
numbers, strings, ``None`` and containers of them come back, plus

* ``allow``: real objects a file may name, each harmless to rebuild (neurofm 0.1.0's training
  checkpoints hold numpy's RNG state, a numpy array: :data:`NUMPY_ARRAY_GLOBALS`);
* ``inert``: names that are rebuilt as :class:`InertObject`, a stand-in that only stores what
  the file gives it and runs nothing of the named class (published weights that pickle their
  training arguments as an ``argparse.Namespace``: ``inert=["argparse.Namespace"]`` reads the
  tensors and leaves a harmless object where the arguments were).

A file naming anything else is refused with :class:`RefusedGlobalError`, which names what was
refused and why; a damaged file raises :class:`DamagedFileError`. ``torch.load`` is called
nowhere else in neurofm (a test checks that every call passes ``weights_only=True``).
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

#: Globals the pickle of a numpy array names (numpy 2 and numpy 1 module paths): rebuilding an
#: array from its bytes runs no code of the file's choosing.
NUMPY_ARRAY_GLOBALS = (
    np._core.multiarray._reconstruct,
    (np._core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
    np.ndarray,
    np.dtype,
    np.dtypes.UInt32DType,
)

#: How torch's weights-only unpickler names the global it refused.
_GLOBAL_IN_MESSAGE = re.compile(r"GLOBAL ([\w.]+)")


class RefusedGlobalError(ValueError):
    """The file names Python objects that neurofm does not rebuild (it could run code).

    Attributes
    ----------
    path : Path
    names : list of str
        The refused globals (``module.name``).
    """

    def __init__(self, path: Path, names: list[str], advice: str):
        self.path, self.names = Path(path), list(names)
        listed = ", ".join(dict.fromkeys(self.names))
        super().__init__(
            f"{path} was not loaded: its pickle names {listed}. neurofm reads only tensors, "
            "numbers, strings and containers of them from PyTorch files, because rebuilding "
            f"any other Python object while reading can run code of the file's choosing. {advice}")


class DamagedFileError(ValueError):
    """The file is not a readable PyTorch file (truncated, overwritten, not a checkpoint)."""


class InertObject:
    """Stand-in for an object a file names and the caller accepted as ``inert``.

    Keeps the arguments and state the file gives it; runs nothing else.

    Attributes
    ----------
    args : tuple
    kwargs : dict
    state : object
        What the file passes to ``__setstate__`` (an ``argparse.Namespace``'s ``__dict__``).
    """

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"InertObject(args={self.args!r}, state={self.state!r})"


def load_torch_file(path, *, allow: Iterable = (), inert: Iterable[str] = (),
                    refused_advice: str = "If you did not make this file, delete it.",
                    map_location="cpu"):
    """``torch.load`` with ``weights_only=True``, the objects in ``allow`` and ``inert``.

    Parameters
    ----------
    path : path-like
    allow : iterable
        Objects (or ``(object, "module.name")`` pairs) the file may name, e.g.
        :data:`NUMPY_ARRAY_GLOBALS`.
    inert : iterable of str
        ``"module.Name"`` globals rebuilt as :class:`InertObject`.
    refused_advice : str
        The end of the :class:`RefusedGlobalError` message: what the caller's user can do.
    map_location : str or torch.device

    Raises
    ------
    RefusedGlobalError
        The file names a global outside the allowed ones.
    DamagedFileError
        The file cannot be read (truncated, corrupt, not a PyTorch file).
    FileNotFoundError
    """
    path = Path(path)
    allowed = [*allow, *((InertObject, name) for name in inert)]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as err:
        refused = _GLOBAL_IN_MESSAGE.findall(str(err)) or _refused_globals(path, allowed)
        if refused:
            raise RefusedGlobalError(path, refused, refused_advice) from None
        raise DamagedFileError(f"{path} could not be read as a PyTorch file ({_first_line(err)}); "
                               "it is truncated or corrupt.") from None
    except Exception as err:  # noqa: BLE001 - zip, EOF and storage errors of many kinds
        raise DamagedFileError(f"{path} could not be read as a PyTorch file "
                               f"({type(err).__name__}: {_first_line(err)}); it is truncated "
                               "or corrupt.") from None


def _refused_globals(path: Path, allowed: list) -> list[str]:
    """Globals the file names that are neither torch's defaults nor in ``allowed``."""
    names = {entry[1] if isinstance(entry, tuple) else f"{entry.__module__}.{entry.__qualname__}"
             for entry in allowed}
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 - a damaged file: no globals to name
        return []
    return [name for name in found if name not in names]


def _first_line(err: Exception) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
