"""Corpus formats: the PreprocessSpec is the record (format 2 on); format 1 (0.1.0) and format 2
corpora read with the same windows; newer ones are refused."""

import json
import shutil
from pathlib import Path

import mne
import numpy as np
import pytest
import torch

from neurofm.corpus import (
    Corpus,
    PrepareOptions,
    corpus_stats,
    prepare_corpus,
    read_manifest,
    verify_corpus,
)
from neurofm.corpus.prepare import CORPUS_FORMAT
from neurofm.data import BandLimitWarning, PreprocessSpec
from neurofm.train.data import open_training_data

FIXTURE = Path(__file__).parent / "fixtures" / "v0_1_0" / "corpus"
FORMAT2 = Path(__file__).parent / "fixtures" / "corpus_format2"
OPTIONS = PrepareOptions(window_seconds=10.0, channels="all-eeg", max_abs_uv=None,
                         trim_seconds=0.0, min_minutes=0.0, line_freq=50.0)


@pytest.fixture(scope="module")
def emotiv_like(tmp_path_factory):
    """A 60-s, 128-Hz EEG recording (the rate of Emotiv headsets) prepared with the defaults."""
    root = tmp_path_factory.mktemp("src")
    rng = np.random.default_rng(0)
    info = mne.create_info(["AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2"], 128.0, "eeg")
    raw = mne.io.RawArray(rng.normal(0, 10e-6, (8, 128 * 60)), info, verbose="error")
    raw.save(root / "emotiv_raw.fif", verbose="error")
    out = tmp_path_factory.mktemp("corpus") / "c"
    with pytest.warns(BandLimitWarning, match=r"low-pass 75 Hz .*\(64 Hz, sampled at 128 Hz"):
        prepare_corpus(root, out, OPTIONS, progress=False)
    return out


def test_corpus_json_carries_the_spec_and_its_format(emotiv_like):
    config = json.loads((emotiv_like / "corpus.json").read_text())
    assert config["format"] == CORPUS_FORMAT == 3
    assert config["preprocessing"] == OPTIONS.spec().to_dict()
    assert not {"preprocess", "sfreq", "patch_samples", "window_samples"} & set(config)
    corpus = Corpus(emotiv_like)
    assert corpus.spec == PreprocessSpec(sfreq=200.0, patch_samples=200, line_freq=50.0,
                                         kinds=("eeg",), window_samples=2000)
    assert corpus[0]["x"].shape == (8, 10, 200)
    assert open_training_data(str(emotiv_like)).preprocessing == corpus.spec


def test_the_band_cut_at_a_recordings_nyquist_is_in_the_manifest(emotiv_like):
    (row,) = read_manifest(emotiv_like).to_dict("records")
    assert row["status"] == "kept" and row["n_windows"] == 6
    assert ("low-pass 75 Hz is above the Nyquist frequency of emotiv_raw.fif (64 Hz, sampled at "
            "128 Hz): the band ends at 64 Hz instead of h_freq=75 Hz") in row["report"]


def test_a_0_1_0_corpus_reads_its_spec_and_an_empty_report_column():
    corpus = Corpus(FIXTURE)
    assert corpus.spec == PreprocessSpec(sfreq=200.0, patch_samples=200, l_freq=0.3,
                                         h_freq=75.0, line_freq=50.0, kinds=("eeg",),
                                         window_samples=1000)
    assert (corpus.manifest["report"] == "").all()


def test_a_newer_corpus_format_is_refused_naming_both_versions(tmp_path):
    copy = tmp_path / "c"
    shutil.copytree(FIXTURE, copy)
    config = json.loads((copy / "corpus.json").read_text())
    (copy / "corpus.json").write_text(json.dumps({**config, "format": CORPUS_FORMAT + 1}))
    with pytest.raises(ValueError, match=rf"corpus.json has corpus format {CORPUS_FORMAT + 1}, "
                                         rf"newer than the format {CORPUS_FORMAT} that neurofm "
                                         r".* reads; upgrade neurofm"):
        Corpus(copy)


def test_folders_read_as_one_must_share_the_spec(tmp_path, emotiv_like):
    with pytest.raises(ValueError, match=r"other preprocessing than .* \(window_samples: 1000 vs "
                                         r"2000\); folders read as one corpus must share it"):
        Corpus([FIXTURE, emotiv_like])


def test_a_format_2_corpus_reads_the_same_windows_and_sensors():
    expected = np.load(FORMAT2 / "corpus_expected.npz")
    corpus = Corpus(FORMAT2 / "corpus")
    assert json.loads((FORMAT2 / "corpus" / "corpus.json").read_text())["format"] == 2
    assert len(corpus) == len(expected["start"]) == 7
    x = np.split(expected["x"], np.cumsum(expected["n_channels"] * 1000)[:-1])
    pos = np.split(expected["pos"], np.cumsum(expected["n_channels"])[:-1])
    for i in range(len(corpus)):
        item = corpus[i]
        assert np.array_equal(item["x"].numpy().reshape(-1), x[i].astype(np.float32))
        assert item["start"] == expected["start"][i] and item["index"] == i
        assert (item["source"], item["subject"]) == (expected["source"][i], expected["subject"][i])
        assert "|".join(item["channels"]) == expected["channels"][i]
        assert np.array_equal(item["sensors"].pos.numpy()[0], pos[i])
    assert list(corpus.manifest["shard_row"]) == [0, 0, -1]  # one shard per file
    assert (corpus.manifest["layout"] == -1).all()


def test_stats_and_verify_read_formats_1_and_2():
    stats = corpus_stats(FORMAT2 / "corpus")
    assert stats["channels_per_window"] == {"6": 3, "16": 4} and stats["subjects"] == 2
    for folder in (FIXTURE, FORMAT2 / "corpus"):
        report = verify_corpus(folder)
        assert report.ok, report.describe()
        assert "records no checksums" in report.notes[0]


def test_old_and_new_folders_read_as_one_corpus(tmp_path):
    """A format-2 part and a format-3 part with the same preprocessing: one corpus, windows in
    sorted path order, each window as its own folder gives it."""
    src = tmp_path / "src"
    src.mkdir()
    info = mne.create_info(["Fz", "Cz", "Pz"], 250.0, "eeg")
    raw = mne.io.RawArray(np.random.default_rng(1).normal(0, 10e-6, (3, 250 * 12)), info,
                          verbose="error")
    raw.set_montage("standard_1020", verbose="error")
    raw.save(src / "sub-00_ses-02_eeg.fif", verbose="error")  # between the old two
    options = PrepareOptions(window_seconds=5.0, channels="all-eeg", trim_seconds=0.0,
                             min_minutes=0.0, max_abs_uv=None, line_freq=50.0)
    prepare_corpus(src, tmp_path / "new", options, progress=False)
    old, new = Corpus(FORMAT2 / "corpus"), Corpus(tmp_path / "new")
    both = Corpus([tmp_path / "new", FORMAT2 / "corpus"])
    expected = [old[0], old[1], old[2], old[3], new[0], new[1], old[4], old[5], old[6]]
    assert len(both) == len(expected) == 9
    for i, want in enumerate(expected):
        got = both[i]
        assert (got["source"], got["start"], got["channels"]) == (
            want["source"], want["start"], want["channels"])
        assert np.array_equal(got["x"].numpy(), want["x"].numpy())
        assert torch.equal(got["sensors"].pos, want["sensors"].pos)


def test_preparing_into_a_format_2_corpus_is_refused(tmp_path):
    copy = tmp_path / "c"
    shutil.copytree(FORMAT2 / "corpus", copy)
    info = mne.create_info(["Fz", "Cz"], 200.0, "eeg")
    (tmp_path / "src").mkdir()
    raw = mne.io.RawArray(np.zeros((2, 2000)), info, verbose="error")
    raw.save(tmp_path / "src" / "new_eeg.fif", verbose="error")
    with pytest.raises(ValueError, match=r"holds a corpus of format 2 .* this neurofm writes "
                                         r"format 3\. The finished corpus still reads"):
        prepare_corpus(tmp_path / "src", copy, OPTIONS, progress=False)
    assert not (copy / "_progress").exists()  # nothing written into it
