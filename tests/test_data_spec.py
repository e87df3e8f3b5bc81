"""PreprocessSpec: one typed record, the names of 0.1.0 files, validation and the one check."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from neurofm.data import PreprocessConfig, PreprocessSpec, as_spec, check_compatible
from neurofm.data.spec import DEFAULT_SCALES, DEFAULT_SFREQ

FIXTURES = Path(__file__).parent / "fixtures" / "v0_1_0"


def test_round_trip_through_the_json_form():
    spec = PreprocessSpec(sfreq=250.0, patch_samples=250, l_freq=0.5, h_freq=45.0,
                          line_freq=50.0, kinds=("eeg", "seeg"), window_samples=2500)
    record = json.loads(json.dumps(spec.to_dict()))
    assert record["format_version"] == 1 and record["kinds"] == ["eeg", "seeg"]
    assert PreprocessSpec.from_dict(record) == spec
    assert spec.patch_seconds == 1.0 and spec.window_seconds == 10.0
    assert PreprocessSpec() == PreprocessSpec(sfreq=DEFAULT_SFREQ, scales=DEFAULT_SCALES)


@pytest.mark.parametrize("config", sorted(FIXTURES.rglob("config.json")),
                         ids=lambda p: p.parent.name)
def test_every_0_1_0_record_reads(config):
    record = json.loads(config.read_text())
    values = record.get("preprocessing") or {}
    spec = PreprocessSpec.from_dict({"sfreq": record.get("sfreq", 200.0), **values})
    assert spec.sfreq == 200.0
    if "patch_size" in values:
        assert spec.patch_samples == values["patch_size"]


def test_the_0_1_0_names_mean_what_they_meant():
    run = json.loads((FIXTURES / "run" / "model" / "config.json").read_text())["preprocessing"]
    spec = PreprocessSpec.from_dict(run)  # notch "auto" + line_freq 50, patch_size, window
    assert (spec.line_freq, spec.patch_samples, spec.window_samples) == (50.0, 200, 1000)
    assert PreprocessSpec.from_dict({"patch_seconds": 0.5, "sfreq": 250}).patch_samples == 125
    assert PreprocessSpec.from_dict({"window_seconds": 4, "sfreq": 250}).window_samples == 1000
    notch = {None: None, "auto": "auto", 60: 60.0}
    for old, new in notch.items():
        assert PreprocessSpec.from_dict({"notch": old}).line_freq == new
    # an explicit notch=None disables the notch whatever line_freq says (0.1.0's meaning)
    assert PreprocessSpec.from_dict({"notch": None, "line_freq": 60.0}).line_freq is None
    assert PreprocessSpec.from_dict({"notch": "auto", "line_freq": 60.0}).line_freq == 60.0


def test_a_models_own_record_builds_a_preprocess_config():
    from neurofm.models import create_model

    model = create_model("criss_cross_small", dim=32, depth=1, n_heads=4, ffn_dim=64)
    config = PreprocessConfig.from_dict(dict(as_spec(model.preprocessing).to_dict()))
    assert config.patch_samples == model.patch_size and config.sfreq == 200.0
    assert PreprocessConfig.from_spec(model.preprocessing).spec == as_spec(model.preprocessing)


def test_bad_records_are_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"the model: unknown key\(s\) on_nan, sfrq"):
        PreprocessSpec.from_dict({"sfrq": 200, "on_nan": "raise"}, where="the model")
    with pytest.raises(ValueError, match="preprocessing format 2, newer than this neurofm reads "
                                         r"\(1\); upgrade neurofm"):
        PreprocessSpec.from_dict({"format_version": 2})
    with pytest.raises(ValueError, match=r"h_freq \(100 Hz\) must be below half the output rate"):
        PreprocessSpec(h_freq=100.0)
    with pytest.raises(ValueError, match=r"l_freq \(40 Hz\) must be below h_freq \(30 Hz\)"):
        PreprocessSpec(l_freq=40.0, h_freq=30.0)
    with pytest.raises(ValueError, match=r"line_freq must be a frequency .* got 'sixty'"):
        PreprocessSpec(line_freq="sixty")
    with pytest.raises(ValueError, match=r"scales has no entry for kind\(s\) \['meg_mag'\]"):
        PreprocessSpec(kinds=("eeg", "meg_mag"), scales={"eeg": 1e4})
    with pytest.raises(ValueError, match="window_samples .1000. must be a whole number of "
                                         "patches of 300"):
        PreprocessSpec(patch_samples=300, window_samples=1000)
    with pytest.raises(ValueError, match="Unknown channel kind 'eog2'"):
        PreprocessSpec(kinds=("eog2",))


def test_differences_name_each_field():
    a = PreprocessSpec()
    b = replace(a, sfreq=250.0, patch_samples=250, line_freq=60.0)
    assert a.differences(a) == [] and a.differences(replace(a, l_freq=0.3 + 1e-12)) == []
    assert a.differences(b) == ["sfreq: 200.0 vs 250.0", "patch_samples: 200 vs 250",
                                "line_freq: None vs 60.0"]


def test_one_check_names_field_values_and_fix():
    model = PreprocessSpec(patch_samples=200)
    check_compatible(replace(model, h_freq=40.0, line_freq=60.0), model)  # band may differ
    with pytest.raises(ValueError) as err:
        check_compatible(replace(model, sfreq=256.0, h_freq=45.0), model,
                         data_name="the data (corpus x)", model_name="cbramod_base")
    assert str(err.value) == (
        "sfreq: cbramod_base was pretrained at 200 Hz but the data (corpus x) are at 256 Hz "
        "(sfreq=200 Hz vs sfreq=256 Hz). Resample to 200 Hz: raw.resample(200), "
        "PreprocessConfig(sfreq=200) or neurofm prepare --sfreq 200.")
    with pytest.raises(ValueError, match=r"patch_samples: the model expects patches of 200 "
                                         r"samples \(1 s at 200 Hz\) but the data have 100 .*"
                                         r"patch_seconds=1"):
        check_compatible({"patch_samples": 100}, model)
    with pytest.raises(ValueError, match=r"h_freq: the model was pretrained with h_freq=75.0 but "
                                         r"the data have h_freq=40.0"):
        check_compatible(replace(model, h_freq=40.0), model, fields=("h_freq",))


def test_the_spec_module_does_not_import_mne():
    code = ("import sys, neurofm.data.spec, neurofm.corpus; "
            "print('mne' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
