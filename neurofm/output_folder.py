"""The output-folder rule: a command writes only into a folder that is empty or that it created.

Every command that writes a folder (``prepare``, ``pretrain``, ``probe``/``finetune``,
``convert``, ``tokenizer train``, ``demo``, :func:`neurofm.corpus.merge_corpora`) calls
:func:`claim_output_folder` once, before it writes anything::

    folder = claim_output_folder(out, "neurofm convert", {"model": "cbramod", "src": src},
                                 overwrite=args.overwrite)

It creates the folder, or accepts an empty one, and writes the marker ``.neurofm-output.json``
there (the command, its settings, the neurofm version and when). A folder whose marker names
the same command is that command's own: it may continue or rewrite its own files (the marker
found is returned, so the command can compare settings). Any other folder is refused with a
one-line error that lists what is in it, unless

* ``recognise(folder)`` says it is the command's own folder from before markers existed
  (neurofm 0.1.0 wrote none: a corpus's ``corpus.json``, a run's checkpoints, a probe's
  ``results.json``), so every resume keeps working; or
* ``overwrite=True`` (the commands' ``--overwrite``): the command then writes its files into the
  folder, replacing files of the same names, and still deletes nothing it did not write.

Files the command was given as inputs (``inputs``, e.g. a config file kept in the run folder)
do not make a folder foreign. Commands never delete files they did not write: each deletes
only names of its own making (shards of its naming pattern, its temporary files, its own
checkpoints).

This module also holds :func:`new_file_mode`: every file neurofm writes gets the mode a file
newly created under the process's umask has.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from neurofm._version import __version__

#: The marker a command leaves in the folder it writes.
MARKER_NAME = ".neurofm-output.json"
#: Files of the folder listed in the error of a refused claim.
_LISTED = 5


class OutputFolderError(ValueError):
    """The folder holds files the command did not write (the message lists them)."""


@dataclass
class OutputFolder:
    """A folder a command may write into.

    Attributes
    ----------
    path : Path
    command : str
    previous : dict or None
        The marker found (``command``, ``settings``, ``neurofm_version``, ``created``), None
        when the folder was new, empty, recognised without a marker or overwritten.
    """

    path: Path
    command: str
    previous: dict | None = None

    @property
    def previous_settings(self) -> dict | None:
        return None if self.previous is None else self.previous.get("settings")


def claim_output_folder(path, command: str, settings: dict | None = None, *,
                        overwrite: bool = False,
                        recognise: Callable[[Path], bool] | None = None,
                        inputs: Iterable = ()) -> OutputFolder:
    """Create or accept ``path`` as the output folder of ``command`` and mark it.

    Parameters
    ----------
    path : path-like
        The output folder (created with its parents when missing).
    command : str
        The command, as a user types it (``"neurofm pretrain"``); a folder marked by another
        command is refused.
    settings : dict, optional
        What the command was asked to do (JSON values), recorded in the marker.
    overwrite : bool
        Accept a folder holding other files (``--overwrite``); files of the same names as the
        command's outputs are replaced, others are kept.
    recognise : callable, optional
        ``recognise(path) -> bool``: True for a folder this command wrote before it left
        markers (neurofm 0.1.0).
    inputs : iterable of path-like
        Files the command reads (e.g. its ``--config``), allowed inside the folder.

    Returns
    -------
    OutputFolder

    Raises
    ------
    OutputFolderError
        ``path`` is a file, holds files of another command or files neurofm did not write.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputFolderError(f"{path} is a file, not a folder; {command} writes a folder "
                                "there. Choose another output path.")
    path.mkdir(parents=True, exist_ok=True)
    marker = _read_marker(path)
    previous = None
    if marker is not None and marker.get("command") == command:
        previous = marker
    elif not overwrite:
        if marker is not None:
            raise OutputFolderError(
                f"{path} holds the output of `{marker.get('command')}`, not of `{command}`; "
                "choose another folder (or pass --overwrite to write into it anyway; nothing "
                "of it is deleted).")
        allowed = {Path(p).expanduser().resolve() for p in inputs}
        foreign = sorted(p.name for p in path.iterdir() if p.resolve() not in allowed)
        if foreign and not (recognise is not None and recognise(path)):
            shown = ", ".join(foreign[:_LISTED]) + (
                f" and {len(foreign) - _LISTED} more" if len(foreign) > _LISTED else "")
            raise OutputFolderError(
                f"{path} is not empty and was not written by `{command}` (it holds {shown}); "
                "choose a new or empty folder, or pass --overwrite to write into it (files of "
                "the same names are replaced, nothing else is deleted).")
    _write_marker(path, command, settings, previous)
    return OutputFolder(path, command, previous)


def holds_json(name: str, expected: dict) -> Callable[[Path], bool]:
    """A ``recognise`` for :func:`claim_output_folder`: True for a folder holding the JSON file
    ``name`` whose values at the dotted keys of ``expected`` are the ones given.

    Example: ``holds_json("results.json", {"settings.mode": "probe"})``.
    """
    def recognise(path: Path) -> bool:
        try:
            value = json.loads((Path(path) / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        for key, wanted in expected.items():
            node = value
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if node != wanted:
                return False
        return True

    return recognise


def read_output_marker(path) -> dict | None:
    """The marker of ``path`` (a dict), or None when it has none or it is unreadable."""
    return _read_marker(Path(path))


def new_file_mode() -> int:
    """Permission bits of a newly created file under the current umask (``0o666 & ~umask``)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _read_marker(path: Path) -> dict | None:
    try:
        marker = json.loads((path / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _write_marker(path: Path, command: str, settings: dict | None, previous: dict | None):
    now = datetime.now(UTC).isoformat(timespec="seconds")
    marker = {"command": command, "settings": settings or {},
              "neurofm_version": __version__,
              "created": (previous or {}).get("created", now), "updated": now}
    target = path / MARKER_NAME
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(marker, indent=1, ensure_ascii=False, default=str) + "\n",
                   encoding="utf-8")
    os.replace(tmp, target)
