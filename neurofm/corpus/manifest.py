"""The manifest: one row per source file, kept or skipped with the reason.

``manifest.parquet`` has the columns

==============  ========  ==================================================================
column          type      meaning
==============  ========  ==================================================================
``path``        str       path relative to the source (the corpus's stable file key)
``status``      str       ``"kept"`` or ``"skipped"``
``reason``      str       ``category: details`` of a skipped file (empty for kept files)
``n_windows``   int64     windows written for the file
``n_rejected``  int64     windows rejected by amplitude (``--max-abs-uv``)
``hours``       float64   duration of the source recording in hours (0 if unknown)
``sha256``      str       checksum of the file's bytes (empty if unreadable)
``subject``     str       subject id parsed from the name
``session``     str       session id parsed from the name (empty if none)
``shard``       str       shard file under ``shards/`` holding the windows (empty if none)
``shard_row``   int64     row of the shard where the file's ``n_windows`` rows begin (-1 if
                          none); they are consecutive
``layout``      int64     row of ``sensors.arrow`` with the file's sensors (-1 if none)
``report``      str       what preprocessing did to a kept file, ``; ``-separated (channels
                          dropped, unit fixes, flat channels, a band cut at the file's
                          Nyquist frequency); empty if nothing
==============  ========  ==================================================================

Rows are in sorted ``path`` order, the order in which the corpus lists windows. Manifests of
corpus format 1 (neurofm 0.1.0) have no ``report`` column; it reads as empty. Manifests of
formats 1 and 2 (one shard per file) have no ``shard_row`` and ``layout`` columns: ``shard_row``
reads as 0 for files with a shard (-1 otherwise) and ``layout`` as -1 (the sensors are in every
row of the shard).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from neurofm.corpus.folder import temporary_path

KEPT = "kept"
SKIPPED = "skipped"
MANIFEST_NAME = "manifest.parquet"


@dataclass
class ManifestRow:
    """Outcome of one source file (see the module docstring for the columns)."""

    path: str
    status: str
    reason: str = ""
    n_windows: int = 0
    n_rejected: int = 0
    hours: float = 0.0
    sha256: str = ""
    subject: str = ""
    session: str = ""
    shard: str = ""
    report: str = ""
    shard_row: int = -1
    layout: int = -1

    def to_dict(self) -> dict:
        return asdict(self)


COLUMNS = [f.name for f in fields(ManifestRow)]
_TYPES = {"path": str, "status": str, "reason": str, "n_windows": "int64", "n_rejected": "int64",
          "hours": "float64", "sha256": str, "subject": str, "session": str, "shard": str,
          "report": str, "shard_row": "int64", "layout": "int64"}


def manifest_frame(rows) -> pd.DataFrame:
    """DataFrame of ``rows`` (ManifestRow or dicts) in sorted path order, typed columns."""
    records = [r.to_dict() if isinstance(r, ManifestRow) else dict(r) for r in rows]
    frame = pd.DataFrame.from_records(records, columns=COLUMNS)
    frame = frame.astype(_TYPES)
    return frame.sort_values("path", kind="stable").reset_index(drop=True)


def write_manifest(rows, corpus_dir) -> Path:
    """Write ``manifest.parquet`` atomically (temporary file, then rename).

    Parameters
    ----------
    rows : iterable of ManifestRow or dict
    corpus_dir : path-like

    Returns
    -------
    path : Path
    """
    corpus_dir = Path(corpus_dir)
    target = corpus_dir / MANIFEST_NAME
    tmp = temporary_path(target)
    manifest_frame(rows).to_parquet(tmp, index=False)
    os.replace(tmp, target)
    return target


def read_manifest(corpus_dir) -> pd.DataFrame:
    """Read ``manifest.parquet`` of a corpus.

    Raises
    ------
    FileNotFoundError
        The folder holds no manifest (not a corpus, or preparation never finished).
    """
    path = Path(corpus_dir) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: {corpus_dir} is not a finished corpus. Run "
            f"'neurofm prepare SRC --out {corpus_dir}' (re-running resumes an interrupted run).")
    frame = pd.read_parquet(path)
    if "report" not in frame.columns:  # format 1
        frame["report"] = ""
    if "shard_row" not in frame.columns:  # formats 1-2: one shard per file
        frame["shard_row"] = np.where(frame["shard"] != "", 0, -1).astype(np.int64)
    if "layout" not in frame.columns:
        frame["layout"] = np.int64(-1)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing}; it was not written by "
                         "neurofm prepare. Prepare the corpus again.")
    return frame
