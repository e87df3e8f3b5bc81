"""The window index: where each recording's windows are, as compact arrays.

``index.arrow`` (format 3, an Arrow IPC file) has one row per recording that holds windows, in
corpus order (sorted source path): the order in which :class:`~neurofm.corpus.Corpus` lists
windows.

=============  ==========================  =================================================
column         Arrow type                  meaning
=============  ==========================  =================================================
``source``     string                      the manifest's ``path``
``subject``    dictionary<int32, string>   subject id
``session``    string                      session id ("" if none)
``shard``      dictionary<int32, string>   shard file under ``shards/``
``shard_row``  int64                       first row of the recording's windows in the shard
``n_windows``  int64                       its windows (consecutive rows)
``layout``     int32                       row of ``sensors.arrow``
=============  ==========================  =================================================

It is memory-mapped when a corpus is opened, so opening costs about the same for 20 recordings
as for 70,000. Corpora of formats 1 and 2 have no index file; their index is built from the
manifest (one shard per recording, row 0, sensors in the shard).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from neurofm.corpus.folder import (
    INDEX_FILE,
    PACKED_FORMAT,
    SENSORS_FILE,
    SHARDS_DIR,
    corpus_format,
    temporary_path,
)
from neurofm.corpus.layouts import StoredSensors
from neurofm.corpus.manifest import KEPT, MANIFEST_NAME

SCHEMA = pa.schema([
    ("source", pa.string()),
    ("subject", pa.dictionary(pa.int32(), pa.string())),
    ("session", pa.string()),
    ("shard", pa.dictionary(pa.int32(), pa.string())),
    ("shard_row", pa.int64()),
    ("n_windows", pa.int64()),
    ("layout", pa.int32()),
])


def index_table(manifest: pd.DataFrame) -> pa.Table:
    """Index rows of the kept files with windows of a manifest frame, in sorted path order."""
    kept = manifest[(manifest["status"] == KEPT) & (manifest["n_windows"] > 0)]
    kept = kept.sort_values("path", kind="stable")
    return pa.Table.from_arrays([
        pa.array(kept["path"].tolist(), pa.string()),
        pa.array(kept["subject"].tolist(), pa.string()).dictionary_encode(),
        pa.array(kept["session"].tolist(), pa.string()),
        pa.array(kept["shard"].tolist(), pa.string()).dictionary_encode(),
        pa.array(kept["shard_row"].to_numpy(np.int64)),
        pa.array(kept["n_windows"].to_numpy(np.int64)),
        pa.array(kept["layout"].to_numpy(np.int32)),
    ], schema=SCHEMA)


def write_index(manifest: pd.DataFrame, path) -> None:
    """Write ``index.arrow`` for a manifest frame, atomically."""
    path = Path(path)
    tmp = temporary_path(path)
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, SCHEMA) as writer:
        writer.write_table(index_table(manifest).combine_chunks())
    os.replace(tmp, path)


class WindowIndex:
    """Where every window of one or several corpus folders is.

    Parameters
    ----------
    folders : list of Path
    configs : list of dict
        Their ``corpus.json``.

    Attributes
    ----------
    counts, ends : ndarray of int64, shape [R]
        Windows per recording and their running total (recording ``r`` holds windows
        ``ends[r] - counts[r]`` to ``ends[r] - 1``).
    shard_codes : ndarray of int32, shape [R]
        Position of each recording's shard in :attr:`shard_paths`.
    shard_row : ndarray of int64, shape [R]
    layout : ndarray of int32, shape [R]
        Row of :attr:`sensors` per recording (over all folders); -1: in the shard (formats 1-2).
    subject_codes : ndarray of int32, shape [R]
        Position of each recording's subject in :attr:`subjects`.
    subjects, sources, sessions : pyarrow.StringArray
        Subject ids (distinct); source path and session per recording.
    shard_paths : list of Path
    """

    def __init__(self, folders: list[Path], configs: list[dict]):
        tables, self.shard_paths, self._sensors, offsets = [], [], [], []
        for folder, config in zip(folders, configs):
            table = _folder_table(folder, config)
            shards = table.column("shard").combine_chunks()
            shard_codes = shards.indices.to_numpy(zero_copy_only=False).astype(np.int32)
            offset = None
            if corpus_format(config) >= PACKED_FORMAT:
                offset = sum(len(s) for s in self._sensors)
                offsets.append(offset)
                self._sensors.append(StoredSensors(folder / SENSORS_FILE))
            tables.append((table, shard_codes + len(self.shard_paths), offset))
            self.shard_paths += [folder / SHARDS_DIR / name
                                 for name in shards.dictionary.to_pylist()]
        self._sensor_offsets = np.array(offsets, np.int64)
        if len(tables) == 1:
            self._single(*tables[0])
        else:
            self._combine(tables)
        self.ends = np.cumsum(self.counts)

    def _single(self, table: pa.Table, shard_codes: np.ndarray, _offset) -> None:
        subjects = table.column("subject").combine_chunks()
        self.sources = table.column("source").combine_chunks()
        self.sessions = table.column("session").combine_chunks()
        self.subjects = subjects.dictionary
        self.subject_codes = subjects.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        self.shard_codes = shard_codes
        self.shard_row = table.column("shard_row").to_numpy()
        self.counts = table.column("n_windows").to_numpy()
        self.layout = table.column("layout").to_numpy().astype(np.int32)

    def _combine(self, tables) -> None:
        """Concatenate folders and sort by source path (parts interleave in path order)."""
        sources = pa.chunked_array([t.column("source").combine_chunks() for t, _, _ in tables])
        order = pc.sort_indices(sources).to_numpy()
        self.sources = sources.take(order).combine_chunks()
        same = np.flatnonzero(pc.equal(self.sources[1:], self.sources[:-1]).to_numpy(
            zero_copy_only=False)) if len(self.sources) > 1 else []
        if len(same):
            raise ValueError(f"The file {self.sources[int(same[0])].as_py()!r} appears in more "
                             "than one corpus folder; give disjoint parts (neurofm prepare "
                             "--part-index).")
        self.sessions = pa.chunked_array(
            [t.column("session").combine_chunks() for t, _, _ in tables]).take(order)
        self.sessions = self.sessions.combine_chunks()
        subjects = pa.chunked_array([t.column("subject").combine_chunks().cast(pa.string())
                                     for t, _, _ in tables]).take(order)
        subjects = subjects.combine_chunks().dictionary_encode()
        self.subjects = subjects.dictionary
        self.subject_codes = subjects.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        self.shard_codes = np.concatenate([codes for _, codes, _ in tables])[order]
        self.shard_row = np.concatenate([t.column("shard_row").to_numpy()
                                         for t, _, _ in tables])[order]
        self.counts = np.concatenate([t.column("n_windows").to_numpy() for t, _, _ in tables])
        self.counts = self.counts[order]
        layouts = []
        for table, _, offset in tables:
            local = table.column("layout").to_numpy().astype(np.int64)
            layouts.append(local if offset is None else np.where(local >= 0, local + offset, -1))
        self.layout = np.concatenate(layouts)[order].astype(np.int32)

    def __len__(self) -> int:
        """Number of recordings."""
        return len(self.counts)

    @property
    def n_windows(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    @property
    def nbytes(self) -> int:
        """Memory of the index's arrays (what a corpus holds per recording)."""
        arrays = (self.counts, self.ends, self.shard_codes, self.shard_row, self.layout,
                  self.subject_codes)
        return int(sum(a.nbytes for a in arrays) + self.sources.nbytes + self.sessions.nbytes
                   + self.subjects.nbytes)

    def locate(self, index: int) -> tuple[int, int]:
        """Recording of window ``index`` and the window's position within it."""
        recording = int(np.searchsorted(self.ends, index, side="right"))
        return recording, index - int(self.ends[recording] - self.counts[recording])

    def sensors(self, layout: int):
        """:class:`~neurofm.corpus.layouts.RecordingSensors` of a (global) layout row."""
        table = int(np.searchsorted(self._sensor_offsets, layout, side="right")) - 1
        return self._sensors[table][layout - int(self._sensor_offsets[table])]

    def window_subject_codes(self) -> np.ndarray:
        """Subject code of every window, shape [n_windows] (int32)."""
        return np.repeat(self.subject_codes, self.counts)


def _folder_table(folder: Path, config: dict) -> pa.Table:
    """The index rows of one folder: ``index.arrow`` (format 3) or built from the manifest."""
    if corpus_format(config) >= PACKED_FORMAT:
        path = folder / INDEX_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the corpus is incomplete. Copy it "
                                    "again, or prepare the corpus again (re-running finishes it).")
        return pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: {folder} is not a finished corpus. Run "
            f"'neurofm prepare SRC --out {folder}' (re-running resumes an interrupted run).")
    columns = ["path", "status", "n_windows", "shard", "subject", "session"]
    manifest = pq.read_table(path, columns=columns).to_pandas()
    manifest["shard_row"] = 0
    manifest["layout"] = -1
    return index_table(manifest)
