"""Read a prepared corpus: map-style over memory-mapped shards, or streamed shard by shard.

::

    corpus = Corpus("tueg_corpus")                     # or Corpus([part0, part1, ...])
    item = corpus[0]                         # {"x": [C, N, P], "sensors", "patch_valid", ...}
    sampler = DistributedWindowSampler(len(corpus), batch_size=64, rank=r, world_size=w, seed=0)
    loader = DataLoader(corpus, batch_sampler=sampler, collate_fn=collate_windows)

Opening memory-maps the window index (``index.arrow``) and the sensors (``sensors.arrow``), so
it costs about the same for 20 recordings as for 70,000. A read finds the recording by a binary
search over the index, maps the recording's shard the first time it is needed (and keeps up to
``max_open_shards`` mapped; no file descriptor stays open) and copies only that window out of the
map. Windows are listed in the manifest's sorted path order and, within a file, in time order,
so a corpus prepared in parts (and read over all its folders, or merged) lists the same windows
in the same order as one prepared in one go, whichever shard files they landed in.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from neurofm.corpus.folder import CORPUS_JSON, corpus_spec, read_corpus_json
from neurofm.corpus.index import WindowIndex
from neurofm.corpus.layouts import RecordingSensors
from neurofm.corpus.manifest import KEPT, read_manifest
from neurofm.corpus.shards import ShardFile
from neurofm.corpus.stream import WindowStream

__all__ = ["Corpus", "corpus_spec", "read_corpus_json"]

#: Shards kept memory-mapped at once by default (a 250-GB corpus of 256-MB shards has ~1000).
DEFAULT_MAX_OPEN_SHARDS = 4096


class Corpus(torch.utils.data.Dataset):
    """Windows of one or several corpus folders, by index.

    Parameters
    ----------
    paths : path-like or sequence of path-like
        Folders written by ``neurofm prepare`` (several: parts of one corpus, or corpora
        prepared with the same preprocessing), of any corpus format.
    max_open_shards : int
        How many shards stay memory-mapped at once (least recently used ones are unmapped).

    Attributes
    ----------
    config : dict
        ``corpus.json`` of the first folder.
    spec : PreprocessSpec
        How the windows were made (rate, patch and window length, band, mains, scales); every
        folder's must be the same.
    index : WindowIndex
        Where each recording's windows are (compact arrays, see :mod:`neurofm.corpus.index`).

    Items are dicts compatible with :func:`neurofm.data.collate_windows`: ``x`` float32
    ``[C, N, P]``, ``sensors`` :class:`SensorBatch` (B = 1), ``patch_valid`` bool ``[N]``, plus
    ``channels`` (list of str), ``source``, ``subject``, ``session`` (str), ``start`` (float,
    seconds from the start of the source file) and ``index`` (int).
    """

    def __init__(self, paths, *, max_open_shards: int = DEFAULT_MAX_OPEN_SHARDS):
        if isinstance(paths, (str, Path)):
            paths = [paths]
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError("Corpus needs at least one corpus folder.")
        configs = [read_corpus_json(p) for p in self.paths]
        specs = [corpus_spec(c, where=str(p / CORPUS_JSON)) for p, c in zip(self.paths, configs)]
        self.config, self.spec = configs[0], specs[0]
        for path, spec in zip(self.paths[1:], specs[1:]):
            differ = self.spec.differences(spec)
            if differ:
                raise ValueError(
                    f"{path} was prepared with other preprocessing than {self.paths[0]} "
                    f"({'; '.join(differ)}); folders read as one corpus must share it.")
        self.index = WindowIndex(self.paths, configs)
        self.n_patches = self.spec.window_samples // self.spec.patch_samples
        self.patch_samples = self.spec.patch_samples
        self._max_open = max_open_shards
        self._open: OrderedDict[int, ShardFile] = OrderedDict()

    def __len__(self) -> int:
        return self.index.n_windows

    @property
    def sfreq(self) -> float:
        return self.spec.sfreq

    @cached_property
    def manifest(self) -> pd.DataFrame:
        """Manifest rows of all folders, sorted by path, with a ``corpus`` column (folder)."""
        frames = []
        for path in self.paths:
            frame = read_manifest(path)
            frame["corpus"] = str(path)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True).sort_values(
            "path", kind="stable").reset_index(drop=True)

    @cached_property
    def files(self) -> pd.DataFrame:
        """The kept files that hold windows, in corpus order, with ``first_window``."""
        files = self.manifest[(self.manifest["status"] == KEPT) & (self.manifest["n_windows"] > 0)]
        files = files.reset_index(drop=True)
        files["first_window"] = self.index.ends - self.index.counts
        return files

    @cached_property
    def window_subjects(self) -> pd.Categorical:
        """Subject id of every window, length n_windows: a categorical (int32 codes into the
        distinct ids), for :func:`neurofm.corpus.split.split_by_subject`."""
        return pd.Categorical.from_codes(self.index.window_subject_codes(),
                                         categories=self.index.subjects.to_pylist())

    def shard_paths(self) -> list[Path]:
        """Shard files, each once, in the order of their first window in the corpus."""
        index = self.index
        first = np.full(len(index.shard_paths), np.iinfo(np.int64).max)
        np.minimum.at(first, index.shard_codes, index.ends - index.counts)
        return [index.shard_paths[i] for i in np.argsort(first, kind="stable")]

    def __getitem__(self, index: int) -> dict:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"window index {index} is out of range for a corpus of {n} windows.")
        recording, offset = self.index.locate(int(index) % n)
        return self.read(recording, offset)

    def read(self, recording: int, offset: int, *, signal: np.ndarray | None = None) -> dict:
        """Item of window ``offset`` of ``recording`` (positions in :attr:`index`).

        ``signal`` (``[C, T]``, as stored) saves reading it again when the caller has it.
        """
        index = self.index
        row = int(index.shard_row[recording]) + offset
        shard = self.shard(int(index.shard_codes[recording]))
        if signal is None:
            signal = shard.signal(row)
        sensors = self.recording_sensors(recording)
        n_channels = signal.shape[0]
        if len(sensors.channels) != n_channels:
            raise ValueError(f"{shard.path} row {row} holds {n_channels} channels, but the "
                             f"sensors of {index.sources[recording]} list "
                             f"{len(sensors.channels)}; the corpus is damaged (check it with "
                             "neurofm corpus verify).")
        x = torch.from_numpy(_to_float32(signal)).reshape(n_channels, self.n_patches,
                                                          self.patch_samples)
        return {
            "x": x,
            "sensors": sensors.sensor_batch(),
            "patch_valid": torch.ones(self.n_patches, dtype=torch.bool),
            "channels": list(sensors.channels),
            "source": index.sources[recording].as_py(),
            "subject": index.subjects[int(index.subject_codes[recording])].as_py(),
            "session": index.sessions[recording].as_py(),
            "start": float(shard.start[row]),
            "index": int(index.ends[recording] - index.counts[recording]) + offset,
        }

    def recording_sensors(self, recording: int) -> RecordingSensors:
        """Sensors of ``recording`` (from ``sensors.arrow``, or a format 1-2 shard's first row)."""
        layout = int(self.index.layout[recording])
        if layout >= 0:
            return self.index.sensors(layout)
        return self.shard(int(self.index.shard_codes[recording])).legacy_sensors

    def shard(self, code: int) -> ShardFile:
        """Memory-mapped shard ``code`` (position in ``index.shard_paths``), LRU-cached."""
        view = self._open.get(code)
        if view is not None:
            self._open.move_to_end(code)
            return view
        view = self._open[code] = ShardFile(self.index.shard_paths[code])
        if len(self._open) > self._max_open:
            self._open.popitem(last=False)
        return view

    def __getstate__(self):  # DataLoader workers map shards themselves
        state = dict(self.__dict__)
        state["_open"] = OrderedDict()
        for name in ("manifest", "files", "window_subjects"):
            state.pop(name, None)
        return state

    def stream(self, rank: int = 0, world_size: int = 1):
        """One pass over this node's windows, shard by shard (:class:`WindowStream`, unshuffled).

        Nodes get disjoint windows that together are the whole corpus: whole shards when there
        are at least ``world_size``, else every ``world_size``-th window.

        Yields
        ------
        item : dict
            As :meth:`__getitem__`.
        """
        yield from WindowStream(self, rank=rank, world_size=world_size, shuffle=False, epochs=1)


#: float32 value of every float16 bit pattern: a table look-up casts float16 2-3x faster than
#: ``astype`` and, unlike a torch cast, never starts intra-op threads in a loader process.
_FLOAT16_TO_32 = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)


def _to_float32(signal: np.ndarray) -> np.ndarray:
    """New float32 array from a stored (possibly memory-mapped) float16/float32 window."""
    if signal.dtype == np.float16:
        return np.take(_FLOAT16_TO_32, signal.view(np.uint16))
    return np.array(signal, dtype=np.float32)
