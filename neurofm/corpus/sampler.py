"""Deterministic distributed batches: the same global batches for any number of ranks.

At step ``s`` of epoch ``e`` the global batch is the slice ``[s * B, (s + 1) * B)`` of one
permutation of all windows, drawn from ``seed`` and ``e`` alone. Rank ``r`` of ``W`` ranks
takes the ``r``-th contiguous part of ``B / W`` indices of that batch. So a 2-rank run sees
exactly the global batches of a 1-rank run, ranks never overlap, and training resumes exactly
from ``(epoch, step)``.
"""

from __future__ import annotations

import numpy as np
import torch


class DistributedWindowSampler(torch.utils.data.Sampler):
    """Batch sampler (for ``DataLoader(batch_sampler=...)``) over ``n`` windows.

    Parameters
    ----------
    n : int
        Number of windows (``len(corpus)``).
    batch_size : int
        Global batch size ``B`` (all ranks together); must be a multiple of ``world_size``.
    rank, world_size : int
        This process's rank and the number of ranks.
    seed : int
        Seed of the permutations (the same on every rank).
    epoch : int
        Epoch to start in; :meth:`set_epoch` changes it.
    start_step : int
        Step within ``epoch`` to start at (to resume); later epochs start at 0.
    shuffle : bool
        False: windows in corpus order (e.g. for validation).
    drop_last : bool
        True: the last incomplete global batch of an epoch is dropped, so every step has
        ``B`` windows. False: it is kept and split as evenly as possible.

    Yields
    ------
    indices : list of int
        This rank's ``B / world_size`` window indices of the current global batch.
    """

    def __init__(self, n: int, batch_size: int, rank: int = 0, world_size: int = 1,
                 seed: int = 0, epoch: int = 0, start_step: int = 0, shuffle: bool = True,
                 drop_last: bool = True):
        if n < 1:
            raise ValueError("DistributedWindowSampler needs at least one window (n >= 1).")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} must be in 0..{world_size - 1}.")
        if batch_size < 1 or batch_size % world_size:
            raise ValueError(f"The global batch size {batch_size} must be a positive multiple of "
                             f"world_size {world_size}, so every rank gets the same share.")
        if drop_last and n < batch_size:
            raise ValueError(f"Only {n} windows for a global batch of {batch_size}; lower the "
                             "batch size or use drop_last=False.")
        self.n, self.batch_size = int(n), int(batch_size)
        self.rank, self.world_size = int(rank), int(world_size)
        self.seed, self.shuffle, self.drop_last = int(seed), shuffle, drop_last
        self.epoch, self.start_step = int(epoch), int(start_step)
        if not 0 <= self.start_step <= self.steps_per_epoch:
            raise ValueError(f"start_step {start_step} is outside 0..{self.steps_per_epoch}.")

    @property
    def steps_per_epoch(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (rest > 0 and not self.drop_last)

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Move to ``epoch`` (and, to resume, to ``start_step`` within it)."""
        self.epoch, self.start_step = int(epoch), int(start_step)

    def permutation(self, epoch: int | None = None) -> np.ndarray:
        """Order of all windows in ``epoch`` (default: the current one), shape [n]."""
        epoch = self.epoch if epoch is None else epoch
        if not self.shuffle:
            return np.arange(self.n)
        rng = np.random.default_rng([self.seed, int(epoch)])
        return rng.permutation(self.n)

    def global_batch(self, step: int, epoch: int | None = None) -> np.ndarray:
        """Indices of the global batch at ``step`` (all ranks), shape [<= B]."""
        order = self.permutation(epoch)
        return order[step * self.batch_size:(step + 1) * self.batch_size]

    def __iter__(self):
        order = self.permutation()
        for step in range(self.start_step, self.steps_per_epoch):
            batch = order[step * self.batch_size:(step + 1) * self.batch_size]
            yield np.array_split(batch, self.world_size)[self.rank].tolist()

    def __len__(self) -> int:
        return self.steps_per_epoch - self.start_step

    def state_dict(self, steps_done: int) -> dict:
        """Position to save in a training checkpoint after ``steps_done`` steps of this epoch.

        ``steps_done`` counts from the start of the epoch (``start_step`` included).
        """
        epoch, step = self.epoch, int(steps_done)
        if step >= self.steps_per_epoch:
            epoch, step = epoch + 1, 0
        return {"seed": self.seed, "epoch": epoch, "step": step, "n": self.n,
                "batch_size": self.batch_size}

    def load_state_dict(self, state: dict) -> None:
        """Resume from :meth:`state_dict`; the corpus and batch size must be the same."""
        for key in ("n", "batch_size"):
            if state[key] != getattr(self, key):
                raise ValueError(f"Cannot resume: the checkpoint's sampler had {key}="
                                 f"{state[key]}, now {getattr(self, key)}. Resume with the same "
                                 "corpus and global batch size.")
        self.seed = int(state["seed"])
        self.set_epoch(state["epoch"], state["step"])
