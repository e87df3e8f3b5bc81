"""Arrow shards: the windows of one source file, written atomically.

Each kept source file becomes one shard ``shards/<sha256>.arrow`` (Arrow IPC stream, the format
``datasets.Dataset.from_file`` memory-maps), one row per window:

================  ======================================  ==========================================
column            Arrow type                              meaning
================  ======================================  ==========================================
``signal``        list<fixed_size_list<float16|float32>>  ``[C, T]`` window in model units
``channels``      list<string>                            ``[C]`` canonical channel names
``kinds``         list<int8>                              ``[C]`` :class:`ChannelKind` codes
``positions``     list<fixed_size_list<float32, 3>>       ``[C, 3]`` metres, MNE head frame
``orientations``  list<fixed_size_list<float32, 3>>       ``[C, 3]`` unit vectors (MEG), else zeros
``source``        string                                  source path relative to SRC
``subject``       string                                  subject id
``session``       string                                  session id ("" if none)
``start``         float64                                 window start, seconds from file start
================  ======================================  ==========================================

The Hugging Face ``Features`` are stored in the schema metadata, so ``datasets`` sees the
columns with their types. A shard is first written to a hidden temporary file in the same folder
and then renamed over the target (:func:`os.replace` is atomic on POSIX), so a killed writer or
a full disk never leaves a partial shard under its final name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa

TMP_PREFIX = ".tmp-"
SHARD_SUFFIX = ".arrow"


def shard_features(window_samples: int, dtype: str):
    """Hugging Face ``Features`` of a shard with windows of ``window_samples`` samples."""
    from datasets import Features, List, Value

    return Features({
        "signal": List(List(Value(dtype), length=window_samples)),
        "channels": List(Value("string")),
        "kinds": List(Value("int8")),
        "positions": List(List(Value("float32"), length=3)),
        "orientations": List(List(Value("float32"), length=3)),
        "source": Value("string"),
        "subject": Value("string"),
        "session": Value("string"),
        "start": Value("float64"),
    })


def windows_table(signal: np.ndarray, *, channels, kinds, positions, orientations, source: str,
                  subject: str, session: str, start: np.ndarray, dtype: str) -> pa.Table:
    """Arrow table of the windows of one recording.

    Parameters
    ----------
    signal : ndarray, shape [W, C, T]
        Windows in model units.
    channels : list of str, length C
    kinds : ndarray of int, shape [C]
    positions, orientations : ndarray of float32, shape [C, 3]
    source, subject, session : str
    start : ndarray of float, shape [W]
        Window starts in seconds from the start of the source file.
    dtype : {"float16", "float32"}
        Storage type of ``signal``.

    Returns
    -------
    table : pyarrow.Table
        With the schema of :func:`shard_features`.
    """
    n_windows, n_channels, n_samples = signal.shape
    schema = shard_features(n_samples, dtype).arrow_schema
    offsets = pa.array(np.arange(n_windows + 1, dtype=np.int32) * n_channels)

    def per_channel(values: pa.Array, width: int | None) -> pa.Array:
        inner = values if width is None else pa.FixedSizeListArray.from_arrays(values, width)
        return pa.ListArray.from_arrays(offsets, inner)

    flat = np.ascontiguousarray(signal, dtype=np.dtype(dtype)).reshape(-1)
    columns = [
        per_channel(pa.array(flat), n_samples),
        per_channel(pa.array(np.tile(np.asarray(channels, dtype=object), n_windows),
                             pa.string()), None),
        per_channel(pa.array(np.tile(np.asarray(kinds, np.int8), n_windows)), None),
        per_channel(pa.array(np.tile(np.asarray(positions, np.float32).reshape(-1), n_windows)),
                    3),
        per_channel(pa.array(np.tile(np.asarray(orientations, np.float32).reshape(-1),
                                     n_windows)), 3),
        pa.array([source] * n_windows, pa.string()),
        pa.array([subject] * n_windows, pa.string()),
        pa.array([session] * n_windows, pa.string()),
        pa.array(np.asarray(start, np.float64)),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def write_shard_atomic(table: pa.Table, target, *, rows_per_batch: int = 64) -> Path:
    """Write ``table`` as an Arrow IPC stream to ``target``, atomically.

    The data go to ``.tmp-<name>-<pid>`` beside the target, are flushed to disk, then renamed
    over ``target``. On any error (disk full included) the temporary file is removed and the
    error is raised again.

    Returns
    -------
    target : Path
    """
    target = Path(target)
    tmp = target.with_name(f"{TMP_PREFIX}{target.name}-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            with pa.ipc.new_stream(fh, table.schema) as writer:
                writer.write_table(table, max_chunksize=rows_per_batch)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def remove_temporary_files(folder) -> int:
    """Delete leftover ``.tmp-*`` files of killed writers in ``folder``; return how many."""
    count = 0
    for path in Path(folder).glob(f"{TMP_PREFIX}*"):
        path.unlink(missing_ok=True)
        count += 1
    return count
