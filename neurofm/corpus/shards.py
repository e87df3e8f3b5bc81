"""Shard files: windows of many recordings packed into Arrow files of bounded size.

A shard (format 3) is an Arrow IPC stream (what ``datasets.Dataset.from_file`` memory-maps), one
row per window:

==========  ======================================  ============================================
column      Arrow type                              meaning
==========  ======================================  ============================================
``signal``  list<fixed_size_list<float16|float32>>  ``[C, T]`` window in model units
``source``  string                                  source path relative to SRC (manifest key)
``start``   float64                                 window start, seconds from the file's start
==========  ======================================  ============================================

The windows of one recording are consecutive rows of one shard; which shard and rows is in the
manifest (``shard``, ``shard_row``, ``n_windows``) and in ``index.arrow``. The sensors of a
recording are stored once, in ``sensors.arrow`` (:mod:`neurofm.corpus.layouts`). Shards of formats
1 and 2 held one recording each and repeated the sensors and ids in every row (``channels``,
``kinds``, ``positions``, ``orientations``, ``subject``, ``session``); :class:`ShardFile` reads
both.

:class:`ShardWriter` appends recordings to the shard being written and starts a new one when the
next recording would take it past ``max_bytes`` (a recording larger than that gets a shard of its
own; recordings are never split). A shard is written to a hidden temporary file, flushed to disk
and renamed into place (:func:`os.replace` is atomic on POSIX), so a killed writer or a full disk
never leaves a partial shard under its final name; its SHA-256 is computed while it is written.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Self

import numpy as np
import pyarrow as pa

from neurofm.corpus.folder import temporary_path
from neurofm.corpus.layouts import RecordingSensors, list_values

SHARD_SUFFIX = ".arrow"
#: Default bound on a shard's size: large enough for few files, small enough that a corpus of
#: hundreds of GB has enough shards to spread over every rank and loader worker when streamed.
DEFAULT_SHARD_MB = 256.0
#: Rows per Arrow record batch inside a shard.
ROWS_PER_BATCH = 64
#: Bytes an Arrow record batch adds to its data (message header, buffer padding), bounded
#: generously; and the end-of-stream marker.
_BATCH_FRAMING = 1024
_STREAM_END = 8
#: Names of the shards :class:`ShardWriter` writes: ``<part>-<sequence>.arrow``.
SHARD_NAME = re.compile(r"^(\d{3,})-(\d{5,})\.arrow$")


def shard_name(part_index: int, sequence: int) -> str:
    """File name of shard ``sequence`` written by part ``part_index`` (``003-00012.arrow``)."""
    return f"{part_index:03d}-{sequence:05d}{SHARD_SUFFIX}"


def shard_features(window_samples: int, dtype: str):
    """Hugging Face ``Features`` of a shard with windows of ``window_samples`` samples."""
    from datasets import Features, List, Value

    return Features({
        "signal": List(List(Value(dtype), length=window_samples)),
        "source": Value("string"),
        "start": Value("float64"),
    })


def windows_table(signal: np.ndarray, *, source: str, start: np.ndarray, dtype: str) -> pa.Table:
    """Arrow table of the windows of one recording, in the shard schema.

    Parameters
    ----------
    signal : ndarray, shape [W, C, T]
        Windows in model units.
    source : str
        Source path relative to SRC.
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
    flat = pa.array(np.ascontiguousarray(signal, dtype=np.dtype(dtype)).reshape(-1))
    offsets = pa.array(np.arange(n_windows + 1, dtype=np.int32) * n_channels)
    columns = [
        pa.ListArray.from_arrays(offsets, pa.FixedSizeListArray.from_arrays(flat, n_samples)),
        pa.array([source] * n_windows, pa.string()),
        pa.array(np.asarray(start, np.float64)),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


@dataclass
class ShardInfo:
    """A finished shard: file name, rows, size in bytes and SHA-256 of its bytes."""

    name: str
    n_windows: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict:
        return asdict(self)


class ShardWriter:
    """Pack recordings into shards of at most ``max_bytes``, each written atomically.

    Use as a context manager: leaving it normally finishes the shard being written; leaving it
    by an exception (disk full, Ctrl-C) deletes that shard's temporary file.

    Parameters
    ----------
    folder : path-like
        The corpus's ``shards/`` folder.
    part_index : int
        Part of the file list this job prepares (the first field of the shard names).
    first_sequence : int
        Sequence number of the first shard to write (after those of earlier runs).
    max_bytes : int
        Bound on a shard file's size; only a recording larger than this makes a larger shard.
    on_close : callable
        ``on_close(info: ShardInfo, items: list)`` after a shard is in place, with the items
        passed to :meth:`add` for its recordings (in row order).
    """

    def __init__(self, folder, *, part_index: int, first_sequence: int, max_bytes: int,
                 on_close):
        self.folder = Path(folder)
        self.part_index, self.sequence = part_index, first_sequence
        self.max_bytes, self.on_close = int(max_bytes), on_close
        self._open_file = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    def add(self, table: pa.Table, item) -> tuple[str, int]:
        """Append the windows of one recording; returns the shard's name and their first row."""
        current = self._open_file
        if current is not None and current.rows and \
                current.projected_bytes(table) > self.max_bytes:
            self.close()
            current = None
        if current is None:
            current = self._open_file = _OpenShard(
                self.folder / shard_name(self.part_index, self.sequence), table.schema)
            self.sequence += 1
        first = current.append(table, item)
        return current.target.name, first

    def close(self) -> ShardInfo | None:
        """Finish the shard being written (if any) and put it in place."""
        if self._open_file is None:
            return None
        current, self._open_file = self._open_file, None
        info = current.finish()
        self.on_close(info, current.items)
        return info

    def abort(self) -> None:
        """Drop the shard being written (its temporary file is deleted)."""
        if self._open_file is not None:
            current, self._open_file = self._open_file, None
            current.discard()


class _OpenShard:
    """The temporary file of one shard being written, hashed as it is written."""

    def __init__(self, target: Path, schema: pa.Schema):
        self.target, self.tmp = target, temporary_path(target)
        self.file = open(self.tmp, "wb")  # noqa: SIM115 - closed in finish/discard
        self.sink = _HashingSink(self.file)
        self.schema = schema
        self.writer = pa.ipc.new_stream(self.sink, schema)
        self.rows = 0
        self.items: list = []
        self.pending: list[pa.Table] = []

    def projected_bytes(self, table: pa.Table) -> int:
        """Size of the file if ``table`` were added: bytes written, plus the data waiting and
        ``table``'s, plus a generous bound on the Arrow framing of their batches."""
        waiting = self.pending + [table]
        rows = sum(t.num_rows for t in waiting)
        framing = _BATCH_FRAMING * (1 + rows // ROWS_PER_BATCH) + _STREAM_END
        written = self.sink.size or self.schema.serialize().size  # the schema goes out first
        return written + sum(t.nbytes for t in waiting) + framing

    def append(self, table: pa.Table, item) -> int:
        first = self.rows
        self.pending.append(table)
        self.rows += table.num_rows
        self.items.append(item)
        if sum(t.num_rows for t in self.pending) >= ROWS_PER_BATCH:
            self._flush()
        return first

    def _flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending).combine_chunks(),
                                    max_chunksize=ROWS_PER_BATCH)
            self.pending = []

    def finish(self) -> ShardInfo:
        try:
            self._flush()
            self.writer.close()
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.tmp, self.target)
        except BaseException:
            self.discard()
            raise
        return ShardInfo(self.target.name, self.rows, self.sink.size, self.sink.digest.hexdigest())

    def discard(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


class _HashingSink:
    """File-like object for Arrow's writer: writes through and keeps a SHA-256 and the size."""

    closed = False

    def __init__(self, file):
        self.file, self.digest, self.size = file, hashlib.sha256(), 0

    def write(self, data) -> int:
        view = memoryview(data)
        self.digest.update(view)
        self.size += view.nbytes
        return self.file.write(view)

    def flush(self) -> None:
        self.file.flush()

    def tell(self) -> int:
        return self.size


def file_sha256(path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class ShardFile:
    """One shard memory-mapped: any row's signal without copying, its start, legacy metadata.

    Opening maps the file (no descriptor stays open) and reads the record batches' headers; the
    signal stays in the map until a row is read. Reads shards of every format.

    Parameters
    ----------
    path : path-like

    Attributes
    ----------
    n_rows : int
    window_samples : int
        ``T``, samples per window.
    start : ndarray of float64, shape [n_rows]
    legacy_sensors : RecordingSensors or None
        Formats 1-2 (one recording per shard, sensors in every row): the first row's sensors;
        None for format 3 (sensors in ``sensors.arrow``).

    Raises
    ------
    FileNotFoundError
        The shard is missing.
    ValueError
        The file is empty or not an Arrow stream of windows (truncated, overwritten).
    """

    def __init__(self, path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as fh:
                mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"Shard {self.path} listed in the corpus is missing; copy it again, or prepare "
                "the corpus again (re-running resumes and rewrites it).") from None
        except ValueError:  # mmap of an empty file
            raise ValueError(f"Shard {self.path} is empty; copy it again or prepare the corpus "
                             "again.") from None
        try:
            reader = pa.ipc.open_stream(pa.py_buffer(mapped))
            self.batches = list(reader)
            self.schema = reader.schema
            signal_type = self.schema.field("signal").type
            self.window_samples = signal_type.value_type.list_size
        except (pa.ArrowException, KeyError, AttributeError) as err:
            raise ValueError(f"Shard {self.path} cannot be read as Arrow windows ({err}); it is "
                             "truncated or corrupt. Copy it again, or prepare the corpus "
                             "again.") from None
        self._offsets, self._values = [], []
        for batch in self.batches:
            column = batch.column("signal")
            inner = column.values
            self._offsets.append(column.offsets.to_numpy() + inner.offset)
            self._values.append(inner.values.to_numpy(zero_copy_only=False))
        rows = np.array([b.num_rows for b in self.batches], np.int64)
        self.batch_ends = np.cumsum(rows)
        self.n_rows = int(self.batch_ends[-1]) if len(rows) else 0
        self.start = (np.concatenate([b.column("start").to_numpy() for b in self.batches])
                      if self.batches else np.zeros(0))
        self.legacy_sensors = _legacy_sensors(self.batches[0]) if (
            self.batches and "channels" in self.schema.names) else None

    def signal(self, row: int) -> np.ndarray:
        """The stored window at ``row``, shape ``[C, T]`` (a view into the map)."""
        k = int(np.searchsorted(self.batch_ends, row, side="right"))
        local = row - int(self.batch_ends[k] - self.batches[k].num_rows)
        offsets = self._offsets[k]
        first, last = int(offsets[local]), int(offsets[local + 1])
        t = self.window_samples
        return self._values[k][first * t:last * t].reshape(last - first, t)

    def channel_counts(self) -> np.ndarray:
        """Channels ``C`` of every row, shape [n_rows]."""
        return np.concatenate([np.diff(o) for o in self._offsets]) if self._offsets else \
            np.zeros(0, np.int64)

    def sources(self) -> list[str]:
        """``source`` of every row (for checks; reads the whole column)."""
        return [s for b in self.batches for s in b.column("source").to_pylist()]


def _legacy_sensors(batch: pa.RecordBatch) -> RecordingSensors:
    """Sensors in the first row of a format 1-2 shard (the same in every row)."""
    one = batch.slice(0, 1)
    return RecordingSensors.create(*(list_values(one.column(name)) for name in
                                     ("channels", "kinds", "positions", "orientations")))
