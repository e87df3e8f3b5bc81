"""Write one file of a model folder atomically, readable as any new file of the user's.

Every file goes to a temporary name in the same folder and is renamed over its final name with
:func:`os.replace`, so an interrupted save leaves the previous file or the new one, never half a
file. The temporary file is then given the mode a newly created file gets under the process's
umask (``0o666 & ~umask``): ``safetensors`` and :mod:`tempfile` create files as ``0o600``
whatever the umask, which would make a shared model folder unreadable to the rest of a group.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from neurofm.output_folder import new_file_mode


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Create ``path`` through ``write(temporary_path)``, then rename it into place.

    Parameters
    ----------
    path : str or Path
        The final file.
    write : callable
        Writes the whole content to the path it is given (e.g. ``safetensors.torch.save_file``).

    Returns
    -------
    Path of the written file.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomically(path: str | Path, text: str) -> Path:
    """:func:`write_atomically` for UTF-8 text."""
    return write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
