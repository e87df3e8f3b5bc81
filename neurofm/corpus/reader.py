"""Read a prepared corpus: map-style over memory-mapped Arrow, or streamed by node.

::

    corpus = Corpus("tueg_corpus")                     # or Corpus([part0, part1, ...])
    item = corpus[0]                                   # {"x": [C, N, P], "sensors", "patch_valid", ...}
    sampler = DistributedWindowSampler(len(corpus), batch_size=64, rank=r, world_size=w, seed=0)
    loader = DataLoader(corpus, batch_sampler=sampler, collate_fn=collate_windows)

Each shard (the windows of one source file) is opened with :meth:`datasets.Dataset.from_file`,
which memory-maps it, so only the windows that are read are paged in; a small cache keeps the
most recently used shards open. Windows are listed in the manifest's sorted path order and, within
a file, in time order, so a corpus prepared in parts and read over all its folders lists the same
windows in the same order as one prepared in one go.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from neurofm._version import __version__
from neurofm.corpus.manifest import KEPT, read_manifest
from neurofm.corpus.prepare import CORPUS_FORMAT, CORPUS_JSON, SHARDS_DIR
from neurofm.data.spec import PreprocessSpec
from neurofm.sensors import SensorBatch
from neurofm.strict import field_names


class Corpus(torch.utils.data.Dataset):
    """Windows of one or several corpus folders, by index.

    Parameters
    ----------
    paths : path-like or sequence of path-like
        Folders written by ``neurofm prepare`` (several: parts of one corpus, or corpora
        prepared with the same preprocessing).
    max_open_shards : int
        How many shards stay memory-mapped at once.

    Attributes
    ----------
    config : dict
        ``corpus.json`` of the first folder.
    spec : PreprocessSpec
        How the windows were made (rate, patch and window length, band, mains, scales); every
        folder's must be the same.
    manifest : pandas.DataFrame
        Manifest rows of all folders, sorted by path, with a ``corpus`` column (folder).
    files : pandas.DataFrame
        The kept files that hold windows, in corpus order, with ``first_window``.
    window_subjects : ndarray of str, shape [n_windows]
        Subject id of every window (for :func:`neurofm.corpus.split.split_by_subject`).

    Items are dicts compatible with :func:`neurofm.data.collate_windows`: ``x`` float32
    ``[C, N, P]``, ``sensors`` :class:`SensorBatch` (B = 1), ``patch_valid`` bool ``[N]``, plus
    ``channels`` (list of str), ``source``, ``subject``, ``session`` (str), ``start`` (float,
    seconds from the start of the source file) and ``index`` (int).
    """

    def __init__(self, paths, *, max_open_shards: int = 64):
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
        frames = []
        for path in self.paths:
            frame = read_manifest(path)
            frame["corpus"] = str(path)
            frames.append(frame)
        manifest = pd.concat(frames, ignore_index=True)
        repeated = manifest["path"][manifest["path"].duplicated()]
        if len(repeated):
            raise ValueError(f"The file {repeated.iloc[0]!r} appears in more than one corpus "
                             "folder; give disjoint parts (neurofm prepare --shard-index).")
        self.manifest = manifest.sort_values("path", kind="stable").reset_index(drop=True)
        files = self.manifest[(self.manifest["status"] == KEPT) & (self.manifest["n_windows"] > 0)]
        files = files.reset_index(drop=True)
        counts = files["n_windows"].to_numpy(np.int64)
        self._counts = counts
        self._ends = np.cumsum(counts)
        files["first_window"] = self._ends - counts
        self.files = files
        self.window_subjects = np.repeat(files["subject"].to_numpy(dtype=object), counts)
        self.n_patches = self.spec.window_samples // self.spec.patch_samples
        self.patch_samples = self.spec.patch_samples
        self._max_open = max_open_shards
        self._open: OrderedDict[int, object] = OrderedDict()

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    @property
    def sfreq(self) -> float:
        return self.spec.sfreq

    def shard_paths(self) -> list[Path]:
        """Shard files in corpus order."""
        return [Path(c) / SHARDS_DIR / s for c, s in zip(self.files["corpus"], self.files["shard"])]

    def __getitem__(self, index: int) -> dict:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"window index {index} is out of range for a corpus of {n} windows.")
        index = int(index) % n
        file_pos = int(np.searchsorted(self._ends, index, side="right"))
        row = index - int(self._ends[file_pos] - self._counts[file_pos])
        item = self._shard(file_pos).item(row, self.n_patches, self.patch_samples)
        item["index"] = index
        return item

    def _shard(self, file_pos: int) -> _ShardView:
        """Memory-mapped view of one shard (LRU-cached)."""
        if file_pos in self._open:
            self._open.move_to_end(file_pos)
            return self._open[file_pos]
        from datasets import Dataset

        path = (Path(self.files["corpus"].iat[file_pos]) / SHARDS_DIR
                / self.files["shard"].iat[file_pos])
        if not path.is_file():
            raise FileNotFoundError(f"Shard {path} listed in the manifest is missing; prepare "
                                    "the corpus again (re-running resumes and rewrites it).")
        view = _ShardView(Dataset.from_file(str(path)).data.table)
        self._open[file_pos] = view
        if len(self._open) > self._max_open:
            self._open.popitem(last=False)
        return view

    def __getstate__(self):  # DataLoader workers reopen shards themselves
        state = dict(self.__dict__)
        state["_open"] = OrderedDict()
        return state

    def stream(self, rank: int = 0, world_size: int = 1):
        """Iterate this node's windows with ``datasets`` streaming.

        The shards are streamed by :func:`datasets.distributed.split_dataset_by_node`: when the
        number of shards is a multiple of ``world_size`` each node reads whole shards, otherwise
        every node reads all shards and keeps every ``world_size``-th window. Nodes get
        disjoint windows that together are the whole corpus. Use this when the corpus does not
        fit on local disk (shard paths may then be remote ``datasets`` URLs).

        Yields
        ------
        item : dict
            As :meth:`__getitem__`, without ``index``.
        """
        from datasets import load_dataset
        from datasets.distributed import split_dataset_by_node

        files = [str(p) for p in self.shard_paths()]
        stream = load_dataset("arrow", data_files=files, split="train", streaming=True)
        stream = split_dataset_by_node(stream, rank=rank, world_size=world_size)
        for table in stream.with_format("arrow").iter(batch_size=64):
            for row in range(table.num_rows):
                yield window_item(_row(table, row), self.n_patches, self.patch_samples)


class _ShardView:
    """Numpy views into one memory-mapped shard; per-file metadata decoded once.

    All windows of a shard come from one recording, so channels, kinds, positions and ids are
    the same in every row; the signal stays in the memory map until a window is read.
    """

    def __init__(self, table):
        first = _row(table, 0)
        n_channels, n_samples = first["signal"].shape
        self.chunks = [chunk.flatten().flatten().to_numpy(zero_copy_only=False)
                       .reshape(len(chunk), n_channels, n_samples)
                       for chunk in table.column("signal").chunks]
        self.chunk_ends = np.cumsum([len(c) for c in self.chunks])
        self.start = table.column("start").to_numpy()
        self.meta = {k: v for k, v in first.items() if k not in ("signal", "start")}

    def item(self, row: int, n_patches: int, patch_samples: int) -> dict:
        k = int(np.searchsorted(self.chunk_ends, row, side="right"))
        local = row - int(self.chunk_ends[k] - len(self.chunks[k]))
        record = dict(self.meta, signal=self.chunks[k][local], start=self.start[row])
        return window_item(record, n_patches, patch_samples)


def window_item(record: dict, n_patches: int, patch_samples: int) -> dict:
    """Model item of one stored window (``signal [C, T]`` -> ``x [C, N, P]``)."""
    signal = np.asarray(record["signal"])
    n_channels = signal.shape[0]
    x = torch.from_numpy(_to_float32(signal)).reshape(n_channels, n_patches, patch_samples)
    sensors = SensorBatch(
        pos=torch.tensor(np.asarray(record["positions"], np.float32)).reshape(1, n_channels, 3),
        ori=torch.tensor(np.asarray(record["orientations"], np.float32)).reshape(
            1, n_channels, 3),
        kind=torch.tensor(np.asarray(record["kinds"], np.int64)).reshape(1, n_channels),
        chan_mask=torch.ones(1, n_channels, dtype=torch.bool),
    )
    return {
        "x": x,
        "sensors": sensors,
        "patch_valid": torch.ones(n_patches, dtype=torch.bool),
        "channels": list(record["channels"]),
        "source": record["source"],
        "subject": record["subject"],
        "session": record["session"],
        "start": float(record["start"]),
    }


#: float32 value of every float16 bit pattern: a table look-up casts float16 2-3x faster than
#: ``astype`` and, unlike a torch cast, never starts intra-op threads in a loader process.
_FLOAT16_TO_32 = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)


def _to_float32(signal: np.ndarray) -> np.ndarray:
    """New float32 array from a stored (possibly memory-mapped) float16/float32 window."""
    if signal.dtype == np.float16:
        return np.take(_FLOAT16_TO_32, signal.view(np.uint16))
    return np.array(signal, dtype=np.float32)


def _row(table, row: int) -> dict:
    """One window of a shard as numpy arrays, without copying the signal out of the map."""
    one = table.slice(row, 1)

    def matrix(name: str, width: int) -> np.ndarray:
        values = one.column(name).chunk(0) if one.column(name).num_chunks == 1 else \
            one.column(name).combine_chunks()
        return values.flatten().flatten().to_numpy(zero_copy_only=False).reshape(-1, width)

    window_samples = one.schema.field("signal").type.value_type.list_size
    kinds = one.column("kinds").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return {
        "signal": matrix("signal", window_samples),
        "positions": matrix("positions", 3),
        "orientations": matrix("orientations", 3),
        "kinds": kinds,
        "channels": one.column("channels").combine_chunks().flatten().to_pylist(),
        "source": one.column("source")[0].as_py(),
        "subject": one.column("subject")[0].as_py(),
        "session": one.column("session")[0].as_py(),
        "start": one.column("start")[0].as_py(),
    }


def read_corpus_json(path: Path) -> dict:
    """``corpus.json`` of ``path``; a newer format than this neurofm reads is refused."""
    file = path / CORPUS_JSON
    if not file.is_file():
        raise FileNotFoundError(
            f"{file} does not exist: {path} is not a finished corpus. Run 'neurofm prepare SRC "
            f"--out {path}' (re-running resumes an interrupted run).")
    config = json.loads(file.read_text(encoding="utf-8"))
    version = int(config.get("format", 1))
    if version > CORPUS_FORMAT:
        raise ValueError(f"{file} has corpus format {version}, newer than the format "
                         f"{CORPUS_FORMAT} that neurofm {__version__} reads; upgrade neurofm.")
    return config


def corpus_spec(config: dict, *, where: str = CORPUS_JSON) -> PreprocessSpec:
    """The :class:`PreprocessSpec` a ``corpus.json`` records, in either format.

    Format 2 stores it under ``preprocessing``. Format 1 (neurofm 0.1.0) stored the
    ``PreprocessConfig`` (recipe and bad-input policies) under ``preprocess`` and the rate,
    patch and window lengths beside it; the recipe is read from there.
    """
    if "preprocessing" in config:
        return PreprocessSpec.from_dict(config["preprocessing"], where=where)
    recipe = {k: v for k, v in config.get("preprocess", {}).items()
              if k in field_names(PreprocessSpec) or k == "notch"}
    recipe.update(sfreq=config["sfreq"], patch_samples=config["patch_samples"],
                  window_samples=config["window_samples"])
    return PreprocessSpec.from_dict(recipe, where=where)
