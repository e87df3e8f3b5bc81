"""Find the recordings under the sources given to ``neurofm prepare``.

A source is one of:

* a TUEG-layout tree (``edf/000/aaaaaaaa/s001_2015_09_28/01_tcp_ar/aaaaaaaa_s001_t000.edf``),
* a BIDS root (``sub-01/ses-01/eeg/sub-01_ses-01_task-rest_eeg.vhdr``; side-car files and
  ``derivatives/``, ``sourcedata/`` are left out),
* any folder of recordings (searched recursively),
* a text file listing one recording path per line (relative paths are taken from the list's
  folder; blank lines and ``#`` comments are ignored).

Extensions are matched case-insensitively (``.EDF`` is an EDF), non-ASCII names are kept as
they are, and every file is identified by its path relative to its source (POSIX separators),
which is what the manifest stores. Subject and session ids are parsed from TUH names
(``aaaaaaaa_s001_t000``) and BIDS names (``sub-01_ses-02_…``); other files are their own
subject.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

#: Extensions of files that hold a recording (for multi-file formats: the header file).
#: Folder formats (CTF ``.ds``, EGI ``.mff``) are not listed: a corpus entry is one file.
RECORDING_EXTENSIONS = (".edf", ".bdf", ".gdf", ".fif", ".fif.gz", ".vhdr", ".set", ".cnt",
                        ".con", ".sqd", ".snirf", ".nwb")
_SKIPPED_FOLDERS = {"derivatives", "sourcedata", "code", "__pycache__"}
_TUH_NAME = re.compile(r"^(?P<subject>[a-z]{8}|\d{8})_(?P<session>s\d{3})_(?P<take>t\d{3})",
                       re.IGNORECASE)
_BIDS_ENTITY = re.compile(r"(?:^|_)(sub|ses)-([A-Za-z0-9]+)")


@dataclass(frozen=True)
class SourceFile:
    """One recording found under a source.

    Attributes
    ----------
    path : Path
        Absolute path of the file.
    relpath : str
        Path relative to its source (POSIX separators); with several sources it is prefixed
        by the source's folder name, so it stays unique. This is the manifest's ``path``.
    subject : str
        Subject id (TUH: the 8-character patient id; BIDS: ``sub-`` label; else the file stem).
    session : str or None
        Session id (TUH: ``s001``; BIDS: ``ses-`` label), None when the name has none.
    """

    path: Path
    relpath: str
    subject: str
    session: str | None


def is_recording_file(name: str) -> bool:
    """True if ``name`` has a recording extension (case-insensitive; ``-epo.fif`` excluded)."""
    lower = name.lower()
    if lower.endswith(("-epo.fif", "_epo.fif", "-epo.fif.gz", "_epo.fif.gz")):
        return False
    return lower.endswith(RECORDING_EXTENSIONS)


def subject_session(relpath: str) -> tuple[str, str | None]:
    """Subject and session ids from a file name (TUH, then BIDS, else the stem).

    Examples
    --------
    >>> subject_session("edf/000/aaaaaaaa/s001_2015/01_tcp_ar/aaaaaaaa_s001_t000.edf")
    ('aaaaaaaa', 's001')
    >>> subject_session("sub-01/ses-02/eeg/sub-01_ses-02_task-rest_eeg.vhdr")
    ('sub-01', 'ses-02')
    """
    name = relpath.rsplit("/", 1)[-1]
    match = _TUH_NAME.match(name)
    if match:
        return match["subject"].lower(), match["session"].lower()
    entities = dict(_BIDS_ENTITY.findall(name))
    if "sub" in entities:
        session = f"ses-{entities['ses']}" if "ses" in entities else None
        return f"sub-{entities['sub']}", session
    stem = name.split(".", 1)[0]
    return stem, None


def discover_sources(sources) -> list[SourceFile]:
    """All recordings under ``sources``, sorted by relative path.

    Parameters
    ----------
    sources : path-like or list of path-like
        Folders (TUEG tree, BIDS root, any folder) or text files listing paths.

    Returns
    -------
    files : list of SourceFile
        Sorted by ``relpath`` (code-point order), the order the corpus is written in.

    Raises
    ------
    FileNotFoundError
        A source, or a path listed in a text file, does not exist.
    ValueError
        Two sources would give the same relative path, or nothing was found.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    sources = [Path(s).expanduser() for s in sources]
    prefix_with_name = len(sources) > 1
    found: dict[str, SourceFile] = {}
    for source in sources:
        if not source.exists():
            raise FileNotFoundError(
                f"Source {source} does not exist. Give a TUEG/BIDS folder, a folder of "
                "recordings or a text file that lists recording paths.")
        prefix = f"{source.resolve().name}/" if prefix_with_name else ""
        for path, rel in _files_of(source):
            relpath = prefix + rel
            if relpath in found:
                raise ValueError(
                    f"Two sources both give the file {relpath!r}. Give sources whose folder "
                    "names differ, or list the files in one text file.")
            subject, session = subject_session(relpath)
            found[relpath] = SourceFile(path=path, relpath=relpath, subject=subject,
                                        session=session)
    if not found:
        listed = ", ".join(str(s) for s in sources)
        raise ValueError(
            f"No recordings found under {listed}. Recognised extensions (any case): "
            f"{', '.join(RECORDING_EXTENSIONS)}.")
    return [found[k] for k in sorted(found)]


def _files_of(source: Path):
    """(absolute path, relative POSIX path) of each recording in one source."""
    if source.is_file() and not is_recording_file(source.name):
        yield from _files_of_list(source)
    elif source.is_file():
        yield source.resolve(), source.name
    else:
        root = source.resolve()
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames
                                 if not d.startswith(".") and d not in _SKIPPED_FOLDERS)
            for name in filenames:
                if not name.startswith(".") and is_recording_file(name):
                    path = Path(dirpath) / name
                    yield path, path.relative_to(root).as_posix()


def _files_of_list(list_file: Path):
    base = list_file.resolve().parent
    text = list_file.read_text(encoding="utf-8")
    for line_no, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        path = Path(entry).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.exists() and not path.is_symlink():
            raise FileNotFoundError(
                f"{list_file}, line {line_no}: {entry} does not exist. Fix the path or remove "
                "the line (relative paths are taken from the list file's folder).")
        path = _resolved(path)
        try:
            rel = path.relative_to(base).as_posix()
        except ValueError:
            rel = path.as_posix().lstrip("/")
        yield path, rel


def _resolved(path: Path) -> Path:
    """``path`` with symbolic links resolved; a link loop stays as it is (absolute), so the
    file still gets its manifest row, skipped with the reason."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):  # Python < 3.13 raises RuntimeError for a loop
        return Path(os.path.abspath(path))
