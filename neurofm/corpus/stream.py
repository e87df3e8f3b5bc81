"""Stream a corpus shard after shard: sequential reads, split over ranks and loader workers.

Map-style reading (``corpus[i]`` in the order of a
:class:`~neurofm.corpus.DistributedWindowSampler`) reads windows in random order, which is what a
local disk or a page cache holding the corpus does well. :class:`WindowStream` reads each shard
from its first row to its last instead, which is what network file systems and corpora larger
than memory do well, and shuffles in two stages:

1. **Shards.** In epoch ``e`` the shards are put in an order drawn from ``(seed, e)``. The
   *readers* (``world_size`` ranks x the loader workers of each rank) take every
   ``n_readers``-th shard of that order, reader ``u`` from position ``u``. With fewer shards
   than readers every reader goes through all shards and keeps every ``n_readers``-th window.
2. **Blocks.** A reader cuts its sequence of windows into blocks of ``shuffle_buffer``
   consecutive windows, reads a block (in shard-row order) and yields it in an order drawn from
   ``(seed, e, reader, block)``. At most one block of windows is held in memory per reader.

A reader runs its epochs one after the other without end (``epochs=None``), so every rank keeps
yielding batches. Everything is drawn from the seed, so a stream is the same every time for the
same number of ranks and workers, and resuming after ``k`` windows (per reader, computed from the
batches consumed) skips whole epochs and blocks without reading them.

What it does not reproduce, compared with map-style reading: a batch draws from one block of
one reader (a few shards, neighbouring windows of a few recordings) rather than from the whole
corpus; the global batches depend on the number of ranks and of loader workers, so a resume with
other numbers continues with another order (every window is still read once per reader epoch);
readers reach the end of an epoch at different steps when their shares differ in size.
"""

from __future__ import annotations

import numpy as np
import torch

#: Windows per block when none is given.
DEFAULT_SHUFFLE_BUFFER = 1024


class WindowStream(torch.utils.data.IterableDataset):
    """Items of a corpus read shard by shard (see the module docstring).

    Parameters
    ----------
    corpus : Corpus
    rank, world_size : int
    seed : int
    shuffle : bool
        False: shards in the order of their first window in the corpus, rows in order, no block
        shuffle (one pass then lists each reader's windows in corpus order when each reader
        has whole shards).
    shuffle_buffer : int
        Windows per shuffled block (held in memory per reader).
    epochs : int or None
        Passes over the corpus; None: without end.
    batch_size, skip_batches : int
        Resume: this rank's loader already yielded ``skip_batches`` batches of ``batch_size``
        windows. With ``W`` loader workers, batch ``b`` came from worker ``b % W`` (the
        ``DataLoader``'s round robin), so worker ``w`` skips its share.

    Yields
    ------
    item : dict
        As :meth:`Corpus.__getitem__`, ``index`` the window's position in the corpus.
    """

    def __init__(self, corpus, *, rank: int = 0, world_size: int = 1, seed: int = 0,
                 shuffle: bool = True, shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
                 epochs: int | None = None, batch_size: int = 1, skip_batches: int = 0):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} must be in 0..{world_size - 1}.")
        if shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be at least 1 window, got {shuffle_buffer}.")
        if len(corpus) == 0:
            raise ValueError("The corpus holds no windows to stream.")
        self.corpus, self.rank, self.world_size = corpus, rank, world_size
        self.seed, self.shuffle, self.shuffle_buffer = int(seed), shuffle, int(shuffle_buffer)
        self.epochs, self.batch_size, self.skip_batches = epochs, batch_size, skip_batches
        index = corpus.index
        n_shards = len(index.shard_paths)
        self.shard_rows = np.bincount(index.shard_codes, weights=index.counts,
                                      minlength=n_shards).astype(np.int64)
        # recordings grouped by shard, in row order: row -> recording by a search
        self._by_shard = np.lexsort((index.shard_row, index.shard_codes))
        self._shard_first = np.searchsorted(index.shard_codes[self._by_shard],
                                            np.arange(n_shards + 1))
        first_window = index.ends - index.counts
        starts = np.full(n_shards, np.iinfo(np.int64).max)
        np.minimum.at(starts, index.shard_codes, first_window)
        self._corpus_order = np.argsort(starts, kind="stable")

    def reader(self) -> tuple[int, int, int]:
        """This reader's number, the number of readers (ranks x loader workers), and the
        windows it skips.

        A ``DataLoader`` takes batch ``b`` from worker ``b % W``, and a new one starts at worker
        0; so after ``skip_batches`` batches, worker ``w`` continues the stream of the reader
        that gave batch ``skip_batches + w`` (reader ``(w + skip_batches) % W`` of this rank).
        """
        info = torch.utils.data.get_worker_info()
        workers, worker = (1, 0) if info is None else (info.num_workers, info.id)
        role = (worker + self.skip_batches) % workers
        done = (self.skip_batches - role + workers - 1) // workers  # batches it gave before
        return self.rank * workers + role, self.world_size * workers, done * self.batch_size

    def __iter__(self):
        reader, n_readers, skip = self.reader()
        if n_readers > len(self.corpus):
            raise ValueError(f"{n_readers} readers (ranks x loader workers) for a corpus of "
                             f"{len(self.corpus)} windows: some would get none. Use fewer "
                             "loader workers.")
        epoch = 0
        while self.epochs is None or epoch < self.epochs:
            shards, rows = self.sequence(epoch, reader, n_readers)
            if skip >= len(rows):
                skip -= len(rows)
            else:
                yield from self._epoch(shards, rows, epoch, reader, skip)
                skip = 0
            epoch += 1

    def sequence(self, epoch: int, reader: int, n_readers: int) -> tuple[np.ndarray, np.ndarray]:
        """Shard and row of every window ``reader`` reads in ``epoch``, in reading order.

        Returns
        -------
        shards : ndarray of int, shape [L]
            Positions in ``corpus.index.shard_paths``.
        rows : ndarray of int64, shape [L]
        """
        n_shards = len(self.shard_rows)
        order = (np.random.default_rng([self.seed, epoch]).permutation(n_shards) if self.shuffle
                 else self._corpus_order)
        mine = order[reader::n_readers] if n_shards >= n_readers else order
        counts = self.shard_rows[mine]
        shards = np.repeat(mine, counts)
        ends = np.cumsum(counts)
        rows = np.arange(len(shards), dtype=np.int64) - np.repeat(ends - counts, counts)
        if n_shards < n_readers:
            shards, rows = shards[reader::n_readers], rows[reader::n_readers]
        return shards, rows

    def _epoch(self, shards, rows, epoch: int, reader: int, skip: int):
        size = self.shuffle_buffer
        for block, first in enumerate(range(skip // size * size, len(rows), size)):
            block_shards, block_rows = shards[first:first + size], rows[first:first + size]
            order = np.arange(len(block_rows))
            if self.shuffle:
                number = first // size
                order = np.random.default_rng([self.seed, epoch, reader, number]).permutation(
                    len(block_rows))
            if block == 0:
                order = order[skip % size:]
            wanted = np.sort(order)  # read in row order, yield in the drawn order
            signals = {int(k): self._read(block_shards[k], block_rows[k]) for k in wanted}
            for k in order:
                shard, row = int(block_shards[k]), int(block_rows[k])
                yield self._item(shard, row, signals.pop(int(k)))

    def _recording(self, shard: int, row: int) -> int:
        lo, hi = self._shard_first[shard], self._shard_first[shard + 1]
        recordings = self._by_shard[lo:hi]
        position = np.searchsorted(self.corpus.index.shard_row[recordings], row, side="right")
        return int(recordings[position - 1])

    def _read(self, shard: int, row: int) -> np.ndarray:
        return np.array(self.corpus.shard(int(shard)).signal(int(row)))

    def _item(self, shard: int, row: int, signal: np.ndarray) -> dict:
        recording = self._recording(shard, row)
        offset = row - int(self.corpus.index.shard_row[recording])
        return self.corpus.read(recording, offset, signal=signal)
