"""Corpus reading: items for collate_windows, DataLoader with the sampler, streaming by node,
subject split on a real corpus, stats and the command line."""

import json

import numpy as np
import pytest
import torch

from neurofm.cli import main
from neurofm.corpus import (
    Corpus,
    DistributedWindowSampler,
    PrepareOptions,
    corpus_stats,
    prepare_corpus,
    split_by_subject,
)
from neurofm.data import collate_windows
from tests.corpus_edf_files import TEST_PREPARE, tueg_path, write_tuh_edf


@pytest.fixture(scope="module")
def corpus_dirs(tmp_path_factory):
    """Same three recordings stored as float32 and as float16 (3 subjects, 11 + 8 + 8 windows)."""
    src = tmp_path_factory.mktemp("src")
    write_tuh_edf(src / tueg_path("aaaaaaaa", 1, 0), 2.0, 250.0, seed=1)
    write_tuh_edf(src / tueg_path("aaaaaaab", 1, 0), 1.5, 256.0, seed=2)
    write_tuh_edf(src / tueg_path("aaaaaaac", 2, 0), 1.5, 250.0, seed=3)
    out = tmp_path_factory.mktemp("corpora")
    for dtype in ("float32", "float16"):
        options = PrepareOptions(**TEST_PREPARE, dtype=dtype)
        prepare_corpus(src, out / dtype, options, progress=False)
    return out / "float32", out / "float16"


def test_items_collate_and_load(corpus_dirs):
    corpus = Corpus(corpus_dirs[0])
    assert len(corpus) == 27 and corpus.sfreq == 200.0
    item = corpus[12]
    assert item["x"].dtype == torch.float32 and item["x"].shape == (19, 10, 200)
    assert item["patch_valid"].shape == (10,) and bool(item["patch_valid"].all())
    assert item["sensors"].pos.shape == (1, 19, 3) and bool((item["sensors"].kind == 0).all())
    assert item["subject"] == "aaaaaaab" and item["start"] == 5.0 + 10.0 and item["index"] == 12
    assert corpus[-1]["index"] == 26
    with pytest.raises(IndexError, match="out of range"):
        corpus[27]
    batch = collate_windows([corpus[0], corpus[20]])
    assert batch["x"].shape == (2, 19, 10, 200) and batch["sensors"].chan_mask.all()
    sampler = DistributedWindowSampler(len(corpus), batch_size=4, seed=1)
    loader = torch.utils.data.DataLoader(corpus, batch_sampler=sampler,
                                         collate_fn=collate_windows)
    batches = list(loader)
    assert len(batches) == 6 and batches[0]["x"].shape == (4, 19, 10, 200)
    first = sampler.global_batch(0)
    np.testing.assert_array_equal(batches[0]["x"][1].numpy(), corpus[int(first[1])]["x"].numpy())


def test_float16_storage_is_close_to_float32(corpus_dirs):
    a, b = Corpus(corpus_dirs[0]), Corpus(corpus_dirs[1])
    for i in (0, 13, 26):
        xa, xb = a[i]["x"].numpy(), b[i]["x"].numpy()
        np.testing.assert_allclose(xb, xa, atol=1e-3, rtol=1e-3)
        assert not np.array_equal(xa, xb)  # really stored at half precision


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_stream_split_by_node_is_disjoint_and_complete(corpus_dirs, world_size):
    corpus = Corpus(corpus_dirs[0])
    everything = {(corpus[i]["source"], corpus[i]["start"]) for i in range(len(corpus))}
    seen = []
    for rank in range(world_size):
        part = [(it["source"], it["start"]) for it in corpus.stream(rank, world_size)]
        assert part, "every node gets windows"
        seen.extend(part)
    assert len(seen) == len(set(seen)) == len(everything) and set(seen) == everything
    first = next(iter(corpus.stream()))
    np.testing.assert_array_equal(first["x"].numpy(), corpus[0]["x"].numpy())


def test_subject_split_on_corpus(corpus_dirs):
    corpus = Corpus(corpus_dirs[0])
    train, val = split_by_subject(corpus.window_subjects, val_fraction=0.3, seed=0)
    assert len(train) + len(val) == len(corpus) and len(val) > 0
    train_subjects = {corpus[int(i)]["subject"] for i in train}
    val_subjects = {corpus[int(i)]["subject"] for i in val}
    assert train_subjects.isdisjoint(val_subjects) and len(val_subjects) == 1


def test_stats_match_manifest_and_plot(corpus_dirs, tmp_path):
    stats = corpus_stats(corpus_dirs[0])
    assert stats["windows"] == 27 and stats["subjects"] == 3
    assert stats["files"] == {"total": 3, "kept": 3, "skipped": 0, "skipped_by_reason": {}}
    assert stats["hours"]["kept"] == pytest.approx((2.0 + 1.5 + 1.5) / 60)
    assert stats["hours"]["in_windows"] == pytest.approx(27 * 10 / 3600)
    assert stats["channels_per_window"] == {"19": 27} and stats["channel_names"]["Cz"] == 27
    amp = stats["amplitude_uv"]
    assert amp["n_windows"] == 27 and sum(amp["histogram"]["counts"]) == 27 * 19 * 2000
    assert 5 < amp["abs_percentiles"]["50"] < 30  # 8 µV noise + 20 µV alpha
    assert amp["window_peak_max"] <= 100.0  # the rejection threshold held


def test_cli_prepare_and_stats(tmp_path, capsys):
    src = tmp_path / "src"
    write_tuh_edf(src / "Ünïcode dir" / "rec.EDF", 1.5, 256.0, seed=4)
    (src / "empty.edf").write_bytes(b"")
    code = main(["prepare", str(src), "--out", str(tmp_path / "c"), "--window-seconds", "10",
                 "--trim-seconds", "5", "--min-minutes", "1", "--quiet"])
    assert code == 0 and "1 of 2 files kept, 8 windows" in capsys.readouterr().out
    code = main(["corpus", "stats", str(tmp_path / "c"), "--json", "--png",
                 str(tmp_path / "s.png")])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["files"]["skipped_by_reason"] == {"empty-file": 1}
    assert (tmp_path / "s.png").stat().st_size > 10_000
    code = main(["corpus", "stats", str(tmp_path / "nothing")])
    assert code == 2 and "is not a finished corpus" in capsys.readouterr().err
