"""Training data: open the corpus, read its preprocessing, and feed each rank its micro-batches.

The corpus's :class:`~neurofm.data.spec.PreprocessSpec` (``corpus.json``) travels with the data;
the training loop checks it against the model's with :func:`neurofm.data.spec.check_compatible`
and writes it into the exported model's ``config.json``.

:class:`TrainingLoader` gives the loop this rank's micro-batches in one of two ways:

* **map-style** (default): the order of windows comes from the corpus's deterministic sampler
  (:class:`neurofm.corpus.DistributedWindowSampler`): for a given seed, epoch and step it yields
  the same *global* batch whatever the number of ranks, and each rank reads its own part of it.
  Because the position is just the step number, a resumed run continues exactly where the
  checkpoint was taken, on any number of ranks.
* **streamed** (``data.streaming: true``): each rank (and each of its loader workers) reads its
  own shards from first row to last, shuffled by shard order and within blocks of
  ``data.shuffle_buffer`` windows (:class:`neurofm.corpus.WindowStream`). For corpora on
  network storage or larger than memory. A resume with the same number of ranks and loader
  workers continues the same stream; see ``docs/corpus.md`` for what it does not reproduce.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from neurofm.corpus import Corpus, DistributedWindowSampler, WindowStream
from neurofm.data.dataset import collate_windows
from neurofm.data.spec import PreprocessSpec, as_spec


@dataclass
class TrainingData:
    """A map-style dataset of window items plus what the model card needs to say about it.

    Attributes
    ----------
    dataset : torch.utils.data.Dataset
        Items ``{"x": [C, N, P], "sensors": SensorBatch (B=1), "patch_valid": [N]}``.
    preprocessing : PreprocessSpec
        How the windows were made, recorded in the exported ``config.json``. A dict (any form
        :meth:`PreprocessSpec.from_dict` reads) is turned into one.
    description : str
        Where the data came from (corpus path or simulated source).
    """

    dataset: Dataset
    preprocessing: PreprocessSpec = field(default_factory=PreprocessSpec)
    description: str = "in-memory windows"

    def __post_init__(self):
        self.preprocessing = as_spec(self.preprocessing,
                                     where=f"preprocessing of {self.description}")


class IndexedWindows(Dataset):
    """Items of ``dataset`` with their index added (it seeds each window's mask)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return {**self.dataset[index], "index": int(index)}


def collate_training(items: list[dict]) -> dict:
    """:func:`collate_windows` plus ``index`` (int64 ``[B]``) and ``source`` (list of str)."""
    batch = collate_windows([{k: it[k] for k in ("x", "sensors", "patch_valid")} for it in items])
    batch["index"] = torch.tensor([it["index"] for it in items], dtype=torch.long)
    batch["source"] = [str(it.get("source", f"window {it['index']}")) for it in items]
    return batch


class MicroBatchSampler:
    """Index lists of this rank's micro-batches, step after step, epoch after epoch.

    Parameters
    ----------
    n_windows : int
        Windows in the corpus.
    batch_size : int
        Global batch (all ranks, all micro-batches of one step).
    rank, world_size : int
    grad_accum : int
        Micro-batches per step on each rank.
    seed : int
    start_step : int
        Global step to start from (0, or the step of the checkpoint resumed from).
    """

    def __init__(self, n_windows: int, batch_size: int, rank: int, world_size: int,
                 grad_accum: int, seed: int, start_step: int = 0):
        if batch_size % (world_size * grad_accum):
            raise ValueError(f"data.batch_size={batch_size} must divide by world size x "
                             f"run.grad_accum = {world_size} x {grad_accum}; change one of them.")
        if n_windows < batch_size:
            raise ValueError(f"The corpus holds {n_windows} windows, fewer than one batch "
                             f"(data.batch_size={batch_size}); lower data.batch_size or add data.")
        self.n_windows, self.batch_size = n_windows, batch_size
        self.rank, self.world_size, self.grad_accum = rank, world_size, grad_accum
        self.seed, self.start_step = seed, start_step
        self.steps_per_epoch = n_windows // batch_size

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def __iter__(self) -> Iterator[list[int]]:
        epoch, in_epoch = divmod(self.start_step, self.steps_per_epoch)
        per_micro = self.batch_size // (self.world_size * self.grad_accum)
        while True:
            sampler = DistributedWindowSampler(self.n_windows, self.batch_size, rank=self.rank,
                                               world_size=self.world_size, seed=self.seed,
                                               epoch=epoch, start_step=in_epoch)
            for rank_indices in sampler:
                rank_indices = [int(i) for i in rank_indices]
                for k in range(self.grad_accum):
                    yield rank_indices[k * per_micro:(k + 1) * per_micro]
            epoch, in_epoch = epoch + 1, 0


def open_training_data(path: str, *, cache_dir: str | None = None, is_main: bool = True,
                       wait=lambda: None) -> TrainingData:
    """Open the corpus at ``path``, or prepare and open a simulated one (``sim:NAME``).

    Parameters
    ----------
    path : str
        Corpus directory (``neurofm prepare``) or ``sim:NAME``.
    cache_dir : str, optional
        Cache of simulated corpora.
    is_main : bool
        Only the main rank prepares a simulated corpus; the others ``wait()`` for it.
    wait : callable
        Barrier between ranks.

    Raises
    ------
    FileNotFoundError
        ``path`` is not a corpus directory.
    """
    if path.startswith("sim:"):
        from neurofm.train.sim_corpus import simulated_corpus

        if is_main:
            corpus_dir = simulated_corpus(path, cache_dir)
        wait()
        corpus_dir = simulated_corpus(path, cache_dir, build=False)
        description = f"{path} (simulated corpus cached at {corpus_dir})"
    else:
        corpus_dir = Path(path).expanduser()
        if not (corpus_dir / "corpus.json").is_file():
            raise FileNotFoundError(
                f"No corpus at {corpus_dir} (corpus.json missing). Build one with "
                f"`neurofm prepare SRC --out {corpus_dir}`, or set data.path=sim:tiny to try the "
                "trainer on simulated data.")
        description = str(corpus_dir)
    corpus = Corpus(corpus_dir)
    return TrainingData(corpus, corpus.spec, description)


class TrainingLoader:
    """This rank's micro-batches, step after step: map-style (exact) or streamed.

    Parameters
    ----------
    data : TrainingData
    config : DataConfig
        ``batch_size`` (global), ``num_workers``, ``streaming``, ``shuffle_buffer``.
    rank, world_size, grad_accum, seed : int
    start_step : int
        Global step to start from (0, or the step of the checkpoint resumed from).

    Iterating yields collated micro-batches (:func:`collate_training`) without end.
    """

    def __init__(self, data: TrainingData, config, *, rank: int, world_size: int,
                 grad_accum: int, seed: int, start_step: int = 0):
        self.sampler = MicroBatchSampler(len(data.dataset), config.batch_size, rank, world_size,
                                         grad_accum, seed, start_step)
        per_micro = config.batch_size // (world_size * grad_accum)
        # A generator of its own keeps the loader from drawing on the global RNG (exact resume).
        if not config.streaming:
            self.loader = DataLoader(IndexedWindows(data.dataset), batch_sampler=self.sampler,
                                     collate_fn=collate_training,
                                     num_workers=config.num_workers, generator=torch.Generator())
            return
        if not isinstance(data.dataset, Corpus):  # a setting to change: ValueError
            raise ValueError(  # noqa: TRY004
                f"data.streaming needs a corpus folder (neurofm prepare) or sim:, not "
                f"{data.description}; set data.streaming=false.")
        stream = WindowStream(data.dataset, rank=rank, world_size=world_size, seed=seed,
                              shuffle_buffer=config.shuffle_buffer, batch_size=per_micro,
                              skip_batches=start_step * grad_accum)
        self.loader = DataLoader(stream, batch_size=per_micro, collate_fn=collate_training,
                                 num_workers=config.num_workers, generator=torch.Generator())

    def epoch_of(self, step: int) -> int:
        """Epoch of ``step`` (the mask seeds use it): ``step // steps_per_epoch``, also when
        streamed, where readers pass their epoch ends at slightly different steps."""
        return self.sampler.epoch_of(step)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.loader)
