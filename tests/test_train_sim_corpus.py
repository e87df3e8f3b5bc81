"""Simulated corpora (``neurofm.train.sim_corpus``): recipes, settings, the cache folder."""

import json

import numpy as np
import pytest

from neurofm.corpus import Corpus
from neurofm.train.sim_corpus import RECIPES, parse_sim_spec, simulated_corpus

SPEC = "sim:tiny?recordings=2&seconds=20"


def test_a_spec_changes_the_recipes_numbers_and_bad_specs_are_named():
    name, recipe = parse_sim_spec("sim:multimodal?recordings=3&window_seconds=2.5")
    assert name == "multimodal"
    assert recipe == {**RECIPES["multimodal"], "recordings": 3, "window_seconds": 2.5}
    assert parse_sim_spec("sim:tiny")[1] == RECIPES["tiny"]
    with pytest.raises(ValueError, match=r"Unknown simulated corpus 'sim:huge'.*sim:tiny"):
        parse_sim_spec("sim:huge")
    with pytest.raises(ValueError, match="recordingz"):
        parse_sim_spec("sim:tiny?recordingz=2")
    with pytest.raises(ValueError, match="recordings"):
        parse_sim_spec("sim:tiny?recordings=many")


def test_the_corpus_is_built_once_and_reopened_from_the_cache(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"sim:tiny.* is not in .*built by the main rank"):
        simulated_corpus(SPEC, tmp_path, build=False)
    folder = simulated_corpus(SPEC, tmp_path)
    corpus = Corpus(folder)
    # 2 recordings x 20 s in 5-s windows of 16 BioSemi electrodes at 200 Hz, 1-s patches
    assert len(corpus) == 8 and corpus.sfreq == 200.0
    item = corpus[0]
    assert tuple(item["x"].shape) == (16, 5, 200)
    assert np.isfinite(item["x"].numpy()).all() and float(item["x"].std()) > 0.01
    assert not (folder.parent / "recordings").exists()  # the FIF files are not kept
    stamp = (folder / "corpus.json").stat().st_mtime_ns
    assert simulated_corpus(SPEC, tmp_path) == folder   # opened, not simulated again
    assert simulated_corpus(SPEC, tmp_path, build=False) == folder
    assert (folder / "corpus.json").stat().st_mtime_ns == stamp
    assert simulated_corpus("sim:tiny?recordings=1&seconds=20", tmp_path) != folder


def test_a_corpus_left_by_an_older_neurofm_is_simulated_again(tmp_path):
    folder = simulated_corpus(SPEC, tmp_path)
    meta = json.loads((folder / "corpus.json").read_text())
    (folder / "corpus.json").write_text(json.dumps({**meta, "format": 999}))
    with pytest.raises(ValueError):
        Corpus(folder)
    assert simulated_corpus(SPEC, tmp_path) == folder
    assert len(Corpus(folder)) == 8
