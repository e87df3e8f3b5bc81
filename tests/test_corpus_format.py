"""corpus.json format 2: the PreprocessSpec is the record; 0.1.0 corpora read; newer ones refused."""

import json
import shutil
from pathlib import Path

import mne
import numpy as np
import pytest

from neurofm.corpus import Corpus, PrepareOptions, prepare_corpus, read_manifest
from neurofm.corpus.prepare import CORPUS_FORMAT
from neurofm.data import BandLimitWarning, PreprocessSpec
from neurofm.train.data import open_training_data

FIXTURE = Path(__file__).parent / "fixtures" / "v0_1_0" / "corpus"
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
    assert config["format"] == CORPUS_FORMAT == 2
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
