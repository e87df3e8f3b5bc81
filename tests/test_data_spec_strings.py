"""Data spec strings: one syntax for data sets and simulated corpora, the 0.1 spelling read."""

import importlib
import sys

import pytest

from neurofm.data.data_spec import parse_data_spec, typed_options
from neurofm.train.sim_corpus import RECIPES, parse_sim_spec


def test_scheme_name_and_options_in_order():
    spec = parse_data_spec(" sim:motor_imagery?modality=meg&subjects=8&classes=left,right ")
    assert (spec.scheme, spec.name) == ("sim", "motor_imagery")
    assert list(spec.options.items()) == [("modality", "meg"), ("subjects", "8"),
                                          ("classes", "left,right")]
    assert typed_options(spec, ints=["subjects"], lists=["classes"]) == {
        "modality": "meg", "subjects": 8, "classes": ["left", "right"]}
    assert parse_data_spec("aeon:FingerMovements").options == {}


def test_paths_have_no_scheme():
    for text in ("~/bids?events=a,b&tmin=0", "/data/epochs", "C:/data/epochs?tmin=1",
                 "relative/folder"):
        spec = parse_data_spec(text)
        assert spec.scheme is None and spec.name == text.partition("?")[0]
    assert parse_data_spec("~/bids?events=a,b&tmin=0").options == {"events": "a,b", "tmin": "0"}


def test_typed_options_read_booleans_blank_lists_and_name_bad_numbers():
    spec = parse_data_spec("sim:erp?artefacts=&progress=True&seed=x")
    assert typed_options(spec, lists=["artefacts"]) == {"artefacts": [], "progress": True,
                                                        "seed": "x"}
    with pytest.raises(ValueError, match=r"'sim:erp\?artefacts=&progress=True&seed=x'.*seed='x'"):
        typed_options(spec, ints=["seed"])


def test_bad_specs_are_named():
    with pytest.raises(ValueError, match="non-empty"):
        parse_data_spec("  ")
    with pytest.raises(ValueError, match="'subjects' is not key=value"):
        parse_data_spec("sim:erp?subjects")
    with pytest.raises(ValueError, match="seed is given twice"):
        parse_data_spec("sim:erp?seed=1&seed=2")


def test_simulated_corpus_spec_changes_the_recipe():
    name, recipe = parse_sim_spec("sim:tiny?recordings=8&seconds=120")
    assert name == "tiny" and recipe["recordings"] == 8 and recipe["seconds"] == 120.0
    assert recipe["window_seconds"] == RECIPES["tiny"]["window_seconds"]
    assert parse_data_spec("sim:tiny?recordings=8&seconds=120").key() == \
        "tiny_recordings-8_seconds-120"
    with pytest.raises(ValueError, match="Unknown simulated corpus 'sim:huge'"):
        parse_sim_spec("sim:huge")
    with pytest.raises(ValueError, match="unknown key.*hours; valid keys: patch_seconds"):
        parse_sim_spec("sim:tiny?hours=2")
    with pytest.raises(ValueError, match="recordings='many' is not a number"):
        parse_sim_spec("sim:tiny?recordings=many")


def test_the_old_comma_spelling_is_read_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match=r"write 'sim:tiny\?recordings=8&seconds=120'"):
        old = parse_data_spec("sim:tiny,recordings=8, seconds=120")
    assert (old.scheme, old.name, old.options) == ("sim", "tiny",
                                                   {"recordings": "8", "seconds": "120"})
    # the cache folder of a corpus is the same under both spellings
    assert old.key() == parse_data_spec("sim:tiny?recordings=8&seconds=120").key()
    with pytest.warns(DeprecationWarning):
        assert parse_sim_spec("sim:tiny,recordings=8") == parse_sim_spec("sim:tiny?recordings=8")


def test_the_old_module_path_of_load_dataset_warns():
    sys.modules.pop("neurofm.datasets.registry", None)
    with pytest.warns(DeprecationWarning, match="neurofm.datasets.load"):
        registry = importlib.import_module("neurofm.datasets.registry")
    from neurofm.datasets import load_dataset

    assert registry.load_dataset is load_dataset
