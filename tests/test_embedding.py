"""``neurofm.embed``: an MNE Raw or Epochs to window embeddings in one call, and the clear errors
of the low-level ``BrainEncoder.embed`` for inputs that belong to ``neurofm.embed``."""

import importlib.util
import re
import warnings
from dataclasses import replace
from pathlib import Path

import mne
import numpy as np
import pytest
import torch
from data_recordings import EEG_NAMES, make_raw

import neurofm
from neurofm.data import BandLimitWarning, PreprocessConfig, preprocess_raw, window_recording
from neurofm.data.errors import RecordingTooShortError
from neurofm.embedding import DEFAULT_WINDOW_SECONDS, default_window_seconds, load_encoder
from neurofm.models import create_model
from neurofm.sensors import SensorBatch


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("criss_cross_small", depth=1, dim=32, n_heads=2, ffn_dim=64).eval()


def test_raw_to_embeddings_equals_the_steps_by_hand(model):
    raw = make_raw(sfreq=250.0, seconds=12.0, line_freq=50.0)
    out = neurofm.embed(model, raw, window_seconds=4.0)
    assert out.embeddings.shape == (3, 32) and out.embeddings.dtype == np.float32
    np.testing.assert_array_equal(out.times, [0.0, 4.0, 8.0])
    assert out.channels == EEG_NAMES and out.sfreq == 200.0 and not out.latent
    # the same as prepare's preprocessing, windowing without rejection, and model.embed
    rec = preprocess_raw(raw, PreprocessConfig.from_spec(model.preprocessing))
    win = window_recording(rec, 4.0, 1.0)
    sensors = SensorBatch.from_layout(win.sensors)
    with torch.no_grad():
        expected = model.embed(torch.from_numpy(win.x), SensorBatch.collate([sensors] * 3))
    np.testing.assert_allclose(out.embeddings, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_default_window_is_the_recorded_one_or_30_s_shortened_to_the_recording(model):
    spec = model.preprocessing
    assert spec.window_seconds is None
    assert default_window_seconds(spec, 600.0) == DEFAULT_WINDOW_SECONDS == 30.0
    assert default_window_seconds(spec, 16.7) == 16.0  # whole 1-s patches
    recorded = replace(spec, window_samples=1000)
    assert default_window_seconds(recorded, 600.0) == 5.0
    short = neurofm.embed(model, make_raw(seconds=9.5))
    assert short.embeddings.shape == (1, 32) and short.window_seconds == 9.0
    assert any("whole recording" in line for line in short.report)


def test_no_trimming_no_minimum_length_no_amplitude_rejection(model):
    raw = make_raw(seconds=6.0, std_uv=20.0)
    raw._data[:, 300:320] = 5e-3  # 5 mV: a corpus would reject this window (100 µV limit)
    out = neurofm.embed(model, raw, window_seconds=2.0)
    np.testing.assert_array_equal(out.times, [0.0, 2.0, 4.0])  # nothing trimmed or dropped
    assert np.isfinite(out.embeddings).all()


def test_stride_gives_overlapping_windows(model):
    out = neurofm.embed(model, make_raw(seconds=6.0), window_seconds=2.0, stride_seconds=1.0)
    np.testing.assert_array_equal(out.times, [0.0, 1.0, 2.0, 3.0, 4.0])


def test_per_channel_embeddings_average_to_the_pooled_one(model):
    raw = make_raw(seconds=4.0)
    pooled = neurofm.embed(model, raw, window_seconds=2.0)
    per_channel = neurofm.embed(model, raw, window_seconds=2.0, pool=None)
    assert per_channel.embeddings.shape == (2, len(EEG_NAMES), 32)
    np.testing.assert_allclose(per_channel.embeddings.mean(1), pooled.embeddings, rtol=1e-4,
                               atol=1e-5)


def test_models_that_merge_channels_give_their_latents():
    torch.manual_seed(0)
    mamba = create_model("mamba_small", depth=2, dim=32, n_latent=4)
    out = neurofm.embed(mamba, make_raw(seconds=4.0), window_seconds=2.0, pool=None)
    assert out.embeddings.shape == (2, 4, 32) and out.latent


def test_channels_of_other_kinds_are_dropped_and_sensors_come_from_the_info(model):
    raw = make_raw(EEG_NAMES + ["EOG1"], ch_types=["eeg"] * len(EEG_NAMES) + ["eog"],
                   seconds=4.0)
    out = neurofm.embed(model, raw, window_seconds=2.0)
    assert out.channels == EEG_NAMES
    assert any("EOG1" in line for line in out.report)
    permuted = raw.copy().reorder_channels(EEG_NAMES[::-1] + ["EOG1"])
    again = neurofm.embed(model, permuted, window_seconds=2.0)  # order carries no meaning
    np.testing.assert_allclose(again.embeddings, out.embeddings, rtol=1e-4, atol=1e-5)


def test_epochs_are_one_window_each_with_their_start_times(model):
    raw = make_raw(seconds=10.0)
    events = np.array([[200, 0, 1], [700, 0, 2], [1200, 0, 1]])
    epochs = mne.Epochs(raw, events, tmin=-0.5, tmax=1.495, baseline=None, preload=True,
                        verbose="error")
    out = neurofm.embed(model, epochs)
    assert out.embeddings.shape == (3, 32)
    np.testing.assert_allclose(out.times, [0.5, 3.0, 5.5])
    assert out.window_seconds == pytest.approx(2.0)
    with pytest.raises(ValueError, match="crop them"):
        neurofm.embed(model, epochs, window_seconds=1.0)


def test_a_registered_name_or_a_folder_loads_like_from_pretrained(model, tmp_path):
    raw = make_raw(seconds=4.0)
    model.save_pretrained(tmp_path / "m")
    from_folder = neurofm.embed(str(tmp_path / "m"), raw, window_seconds=2.0)
    np.testing.assert_allclose(from_folder.embeddings,
                               neurofm.embed(model, raw, window_seconds=2.0).embeddings,
                               rtol=1e-6, atol=1e-6)
    random_init = neurofm.embed("mamba_small", raw, window_seconds=2.0)
    assert random_init.embeddings.shape == (2, 128)
    assert isinstance(load_encoder("criss_cross_small"), torch.nn.Module)
    with pytest.raises(TypeError, match="neurofm encoder"):
        load_encoder(torch.nn.Linear(2, 2))


def test_an_explicit_window_longer_than_the_recording_is_an_error(model):
    with pytest.raises(RecordingTooShortError, match="shorter than one 30-s window"):
        neurofm.embed(model, make_raw(seconds=8.0), window_seconds=30.0)


def test_inputs_that_are_not_mne_objects_point_to_read_raw(model):
    with pytest.raises(TypeError, match=r"neurofm\.data\.read_raw"):
        neurofm.embed(model, np.zeros((10, 800)))


@pytest.mark.parametrize("x", ["info", "array", "tensor3d"])
def test_low_level_embed_points_to_neurofm_embed(model, x):
    raw = make_raw(seconds=2.0)
    inputs = {"info": raw.info, "array": raw.get_data()[None],
              "tensor3d": torch.zeros(1, 10, 400)}
    error = ValueError if x == "tensor3d" else TypeError
    with pytest.raises(error, match=r"neurofm\.embed\(model, inst\)"):
        model.embed(inputs[x], SensorBatch.from_info(raw.info))
    with pytest.raises(TypeError, match=r"SensorBatch.*got Info.*neurofm\.embed"):
        model.embed(torch.zeros(1, 10, 2, 200), raw.info)


@pytest.mark.skipif(importlib.util.find_spec("spkit") is None,
                    reason="spkit not installed: pip install --no-deps spkit==0.0.9.7")
def test_the_readme_example_on_the_emotiv_sample(capsys):
    """The five lines of README.md run as written, with default settings."""
    text = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    code = re.search(r"<!-- readme:embed -->\s*```python\n(.*?)```", text, re.DOTALL).group(1)
    assert len([line for line in code.splitlines() if line.strip()]) == 5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scope = {}
        exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own code
    assert any(issubclass(w.category, BandLimitWarning) for w in caught)  # 128 Hz vs 75 Hz
    out = scope["out"]
    assert out.embeddings.shape == (1, 128) and out.window_seconds == 16.0
    assert out.times.tolist() == [0.0] and len(out.channels) == 14
    assert capsys.readouterr().out.startswith("(1, 128) [0.]")
