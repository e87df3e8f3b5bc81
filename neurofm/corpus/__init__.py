"""Corpora of preprocessed windows for pretraining: prepare once, read many times.

::

    prepare_corpus(["tueg/edf"], "corpus", PrepareOptions(), num_proc=16)   # neurofm prepare
    corpus = Corpus("corpus")                     # map-style, memory-mapped packed shards
    train, val = split_by_subject(corpus.window_subjects, val_fraction=0.05)
    sampler = DistributedWindowSampler(len(train), batch_size=64, rank=r, world_size=w)
    stream = WindowStream(corpus, rank=r, world_size=w, seed=0)   # shard by shard
    verify_corpus("corpus").ok                    # neurofm corpus verify

See ``docs/corpus.md``.
"""

from neurofm.corpus.discover import SourceFile, discover_sources
from neurofm.corpus.manifest import ManifestRow, read_manifest
from neurofm.corpus.merge import merge_corpora
from neurofm.corpus.prepare import PrepareOptions, PrepareSummary, prepare_corpus
from neurofm.corpus.reader import Corpus
from neurofm.corpus.sampler import DistributedWindowSampler
from neurofm.corpus.split import split_by_subject
from neurofm.corpus.stats import corpus_stats, plot_stats
from neurofm.corpus.stream import WindowStream
from neurofm.corpus.verify import VerifyReport, verify_corpus

__all__ = [
    "Corpus",
    "DistributedWindowSampler",
    "ManifestRow",
    "PrepareOptions",
    "PrepareSummary",
    "SourceFile",
    "VerifyReport",
    "WindowStream",
    "corpus_stats",
    "discover_sources",
    "merge_corpora",
    "plot_stats",
    "prepare_corpus",
    "read_manifest",
    "split_by_subject",
    "verify_corpus",
]
