"""Corpus reading: items for collate_windows, DataLoader with the sampler, random access that
maps each shard once, streaming by node and by loader worker (shuffle, resume), subject split on
a real corpus, stats, verify and the command line."""

import itertools
import json
import os
import shutil
import warnings

import numpy as np
import pytest
import torch

from neurofm.cli import main
from neurofm.corpus import (
    Corpus,
    DistributedWindowSampler,
    PrepareOptions,
    WindowStream,
    corpus_stats,
    prepare_corpus,
    read_manifest,
    split_by_subject,
    verify_corpus,
)
from neurofm.corpus import reader as reader_module
from neurofm.data import collate_windows
from neurofm.train.data import collate_training
from tests.corpus_edf_files import TEST_PREPARE, tueg_path, write_tuh_edf


@pytest.fixture(scope="module")
def corpus_dirs(tmp_path_factory):
    """Same three recordings stored as float32 and as float16 (3 subjects, 11 + 8 + 8 windows),
    and as float16 in 0.7-MB shards (3 shards: two recordings of 0.6 MB do not fit in one)."""
    src = tmp_path_factory.mktemp("src")
    write_tuh_edf(src / tueg_path("aaaaaaaa", 1, 0), 2.0, 250.0, seed=1)
    write_tuh_edf(src / tueg_path("aaaaaaab", 1, 0), 1.5, 256.0, seed=2)
    write_tuh_edf(src / tueg_path("aaaaaaac", 2, 0), 1.5, 250.0, seed=3)
    out = tmp_path_factory.mktemp("corpora")
    for dtype in ("float32", "float16"):
        options = PrepareOptions(**TEST_PREPARE, dtype=dtype)
        prepare_corpus(src, out / dtype, options, progress=False)
    prepare_corpus(src, out / "small", PrepareOptions(**TEST_PREPARE), shard_size_mb=0.7,
                   progress=False)
    return out / "float32", out / "float16", out / "small"


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


def test_window_subjects_are_categorical_and_split_like_strings(corpus_dirs):
    corpus = Corpus(corpus_dirs[0])
    subjects = corpus.window_subjects
    assert subjects.codes.dtype.itemsize <= 4  # codes, not one string object per window
    assert list(subjects.categories) == ["aaaaaaaa", "aaaaaaab", "aaaaaaac"]
    as_strings = np.asarray(subjects, dtype=object)
    assert list(as_strings) == [corpus[i]["subject"] for i in range(len(corpus))]
    for seed in range(4):
        a, b = split_by_subject(subjects, 0.3, seed=seed), split_by_subject(as_strings, 0.3,
                                                                            seed=seed)
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_random_access_maps_each_shard_once(corpus_dirs, monkeypatch):
    """Opening maps no shard; shuffled reads map each shard the first time it is needed only."""
    opened = []
    real = reader_module.ShardFile

    def counting(path):
        opened.append(path)
        return real(path)

    monkeypatch.setattr(reader_module, "ShardFile", counting)
    corpus = Corpus(corpus_dirs[2])
    assert len(corpus.index.shard_paths) == 3 and not opened
    order = np.random.default_rng(0).permutation(len(corpus))
    plain = Corpus(corpus_dirs[1])
    for i in np.concatenate([order, order]):
        item = corpus[int(i)]
        np.testing.assert_array_equal(item["x"].numpy(), plain[int(i)]["x"].numpy())
        assert item["index"] == i
    assert sorted(p for p in opened if p.parent.parent == corpus_dirs[2]) == sorted(
        corpus.index.shard_paths)
    assert corpus.shard_paths()[0].name == "000-00000.arrow"
    assert corpus.index.nbytes < 1000  # a few arrays of 3 recordings


@pytest.mark.parametrize("world_size", [1, 2, 3, 5])
def test_stream_of_packed_shards_is_disjoint_and_complete(corpus_dirs, world_size):
    """3 shards: whole shards per node for 1-3 nodes, every 5th window for 5."""
    corpus = Corpus(corpus_dirs[2])
    seen = [it["index"] for rank in range(world_size) for it in corpus.stream(rank, world_size)]
    assert sorted(seen) == list(range(len(corpus)))
    if world_size == 1:
        assert seen == list(range(len(corpus)))  # one pass lists the corpus order


def test_shuffled_stream_is_seeded_and_resumes_exactly(corpus_dirs):
    corpus = Corpus(corpus_dirs[2])

    def indices(**kwargs):
        stream = WindowStream(corpus, seed=3, shuffle_buffer=5, batch_size=4, **kwargs)
        return [it["index"] for it in itertools.islice(iter(stream), 60)]

    full = indices()
    assert full == indices() and full != indices(shuffle=False)
    assert sorted(full[:27]) == list(range(27))  # an epoch holds every window once
    assert full[:27] != full[27:54]  # the next epoch has another order
    assert indices(skip_batches=3)[:48] == full[12:60]  # 3 batches of 4 skipped, not read
    item = next(iter(WindowStream(corpus, seed=3, shuffle_buffer=5)))
    np.testing.assert_array_equal(item["x"].numpy(), corpus[item["index"]]["x"].numpy())
    assert item["source"] == corpus[item["index"]]["source"]


def test_stream_through_loader_workers_splits_and_resumes(corpus_dirs):
    """2 workers are 2 readers with their own shards; a resumed loader continues the batches."""
    corpus = Corpus(corpus_dirs[2])

    def batches(skip, n):
        stream = WindowStream(corpus, seed=1, shuffle_buffer=4, batch_size=3, skip_batches=skip)
        loader = torch.utils.data.DataLoader(stream, batch_size=3, num_workers=2,
                                             collate_fn=collate_training)
        return [b["index"].tolist() for b in itertools.islice(iter(loader), n)]

    first = batches(0, 12)
    assert batches(5, 7) == first[5:12]
    assert batches(4, 2) == first[4:6]
    worker0 = {i for b in first[0:4:2] for i in b}  # within both readers first epochs
    worker1 = {i for b in first[1:4:2] for i in b}
    assert worker0.isdisjoint(worker1)


def test_verify_names_what_is_wrong_with_a_copy(corpus_dirs, tmp_path, capsys):
    good = corpus_dirs[2]
    assert main(["corpus", "verify", str(good)]) == 0
    assert "OK" in capsys.readouterr().out

    def damaged(name, change):
        copy = tmp_path / name
        shutil.copytree(good, copy)
        change(copy)
        return verify_corpus(copy)

    def flip(copy):
        path = copy / "shards" / "000-00001.arrow"
        data = bytearray(path.read_bytes())
        data[-20_000] ^= 0xFF
        path.write_bytes(bytes(data))

    report = damaged("flipped", flip)
    assert not report.ok and "shards/000-00001.arrow: SHA-256 differs" in report.problems[0]
    report = damaged("cut", lambda c: os.truncate(c / "shards" / "000-00002.arrow", 1000))
    assert "shards/000-00002.arrow has 1000 bytes" in report.problems[0]
    report = damaged("gone", lambda c: (c / "shards" / "000-00000.arrow").unlink())
    assert report.problems == ["shards/000-00000.arrow is missing; copy it again."]
    report = damaged("index", lambda c: (c / "index.arrow").unlink())
    assert "index.arrow cannot be read" in report.problems[0]

    def swap_rows(copy):
        manifest = read_manifest(copy)
        manifest.loc[0, "shard_row"] = 1
        manifest.to_parquet(copy / "manifest.parquet", index=False)

    report = damaged("rows", swap_rows)
    assert any("row ranges do not cover" in p for p in report.problems)
    assert main(["corpus", "verify", str(tmp_path / "flipped")]) == 1
    assert "problem: shards/000-00001.arrow: SHA-256 differs" in capsys.readouterr().out


def test_cli_part_options_and_their_deprecated_names(tmp_path, capsys):
    src = tmp_path / "src"
    for k in range(3):
        write_tuh_edf(src / tueg_path(f"aaaaaaa{'abc'[k]}", 1, 0), 1.25, 250.0, seed=k)
    common = [str(src), "--window-seconds", "10", "--trim-seconds", "5", "--min-minutes", "1",
              "--quiet", "--shard-size-mb", "0.5"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        assert main(["prepare", *common, "--out", str(tmp_path / "p0"), "--part-index", "0",
                     "--num-parts", "2"]) == 0
    assert "warning" not in capsys.readouterr().err
    with pytest.warns(FutureWarning) as notes:
        assert main(["prepare", *common, "--out", str(tmp_path / "p1"), "--shard-index", "1",
                     "--num-shards", "2"]) == 0
    assert [str(n.message).split(";")[0] for n in notes] == [
        "--shard-index is deprecated and will be removed in neurofm 0.3",
        "--num-shards is deprecated and will be removed in neurofm 0.3"]
    assert "use --part-index (it splits the file list into parts" in str(notes[0].message)
    assert json.loads((tmp_path / "p1" / "corpus.json").read_text())["part"] == {
        "index": 1, "count": 2}
    assert len(Corpus([tmp_path / "p0", tmp_path / "p1"])) == 3 * 6
    with pytest.warns(FutureWarning, match="--num-shards is deprecated"):
        assert main(["prepare", *common, "--out", str(tmp_path / "x"), "--part-index", "0",
                     "--num-shards", "2"]) == 2
    assert "give only the new options" in capsys.readouterr().err
