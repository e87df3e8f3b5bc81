"""preprocess_raw: scale, channel order, notch, channel picking and every bad-input rule."""

import mne
import numpy as np
import pytest

from neurofm.data import (
    BandLimitWarning,
    PreprocessConfig,
    PreprocessSpec,
    RecordingError,
    RecordingTooShortError,
    describe_preprocessing,
    preprocess_raw,
    read_raw,
    window_recording,
)
from tests.data_recordings import EEG_NAMES, make_raw, sine_raw

NO_FILTER = PreprocessConfig(l_freq=None, h_freq=None, line_freq=None)


def _amplitude(x, sfreq, edge_seconds=6.0):
    """Peak amplitude away from the filter edges (the 0.3-Hz high-pass reaches 5.5 s)."""
    edge = int(edge_seconds * sfreq)
    return np.abs(x[..., edge:-edge]).max()


def test_50_microvolt_sine_becomes_half_a_unit():
    rec = preprocess_raw(sine_raw(10.0, 50.0, sfreq=250.0, seconds=20.0))
    assert rec.sfreq == 200.0 and rec.data.dtype == np.float32
    assert _amplitude(rec.data, rec.sfreq) == pytest.approx(0.5, rel=0.005)


def test_permuting_channels_permutes_rows_and_nothing_else():
    raw = make_raw(seconds=6.0, sfreq=256.0)
    perm = np.random.default_rng(1).permutation(len(EEG_NAMES))
    permuted = raw.copy().reorder_channels([EEG_NAMES[i] for i in perm])
    a, b = preprocess_raw(raw), preprocess_raw(permuted)
    np.testing.assert_allclose(b.data, a.data[perm], atol=1e-6)
    assert b.sensors.names == [a.sensors.names[i] for i in perm]
    np.testing.assert_array_equal(b.sensors.pos, a.sensors.pos[perm])
    np.testing.assert_array_equal(b.sensors.kinds, a.sensors.kinds[perm])
    wa, wb = window_recording(a, 2.0), window_recording(b, 2.0)
    np.testing.assert_allclose(wb.x, wa.x[:, perm], atol=1e-6)


def test_non_brain_channels_are_dropped_and_reported():
    raw = make_raw(["Cz", "Pz", "EOG1", "ECG", "STI 014"], seconds=3.0)
    raw.set_channel_types({"EOG1": "eog", "ECG": "ecg", "STI 014": "stim"}, verbose="error")
    rec = preprocess_raw(raw, NO_FILTER)
    assert rec.sensors.names == ["Cz", "Pz"]
    assert "drop channel EOG1: kind eog not kept" in rec.report
    assert "drop channel STI 014: kind stim not kept" in rec.report
    lines = describe_preprocessing(raw)
    assert "channels: keep 2 of 5 (2 eeg)" in lines
    assert "resample: none (stays 200 Hz)" in lines


def test_notch_removes_mains_named_in_the_file():
    sfreq, seconds = 250.0, 20.0
    t = np.arange(int(sfreq * seconds)) / sfreq
    raw = sine_raw(10.0, 20.0, sfreq=sfreq, seconds=seconds, line_freq=50.0)
    raw._data[0] += 20e-6 * np.sin(2 * np.pi * 50.0 * t)

    def power_at(rec, f):
        spec = np.abs(np.fft.rfft(rec.data[0, 400:-400]))
        freqs = np.fft.rfftfreq(rec.data.shape[1] - 800, 1 / rec.sfreq)
        return spec[np.argmin(np.abs(freqs - f))]

    notched = preprocess_raw(raw)
    plain = preprocess_raw(raw, PreprocessConfig(line_freq=None))
    assert power_at(notched, 50.0) < 0.01 * power_at(plain, 50.0)
    assert power_at(notched, 10.0) == pytest.approx(power_at(plain, 10.0), rel=0.02)
    assert any(line.startswith("notch: 50 Hz (mains 50 Hz from the file")
               for line in describe_preprocessing(raw))
    assert any("pass line_freq=50 or 60" in line
               for line in describe_preprocessing(sine_raw(10.0, 20.0)))


def test_nan_samples_raise_naming_channel_and_time():
    raw = make_raw(seconds=6.0)
    raw._data[3, 300:310] = np.nan  # channel F4 at 1.5 s
    with pytest.raises(RecordingError, match=r"channel 'F4' has 10 NaN/Inf samples, the first "
                                             r"at t = 1\.500 s.*on_nan='drop_window'"):
        preprocess_raw(raw)


def test_nan_samples_drop_only_the_windows_they_touch():
    raw = make_raw(seconds=60.0, sfreq=200.0)
    raw._data[2, 59 * 200] = np.inf  # near the end of the recording
    rec = preprocess_raw(raw, PreprocessConfig(on_nan="drop_window"))
    assert np.isfinite(rec.data).all()
    windows = window_recording(rec, window_seconds=10.0)
    assert windows.n_rejected >= 1 and len(windows) >= 4
    assert windows.start.max() < 50.0  # the last window (50-60 s) touched the Inf
    assert any("F3" in line and "t = 59.000 s" in line for line in rec.report)


def test_flat_channels_reported_or_dropped():
    raw = make_raw(seconds=3.0)
    raw._data[1] = 1e-3  # constant offset, no signal
    rec = preprocess_raw(raw, NO_FILTER)
    assert len(rec.sensors) == 10
    assert any("flat channels (kept" in line and "Fp2" in line for line in rec.report)
    rec = preprocess_raw(raw, PreprocessConfig(l_freq=None, h_freq=None, line_freq=None,
                                               on_flat="drop"))
    assert "Fp2" not in rec.sensors.names and len(rec.sensors) == 9
    assert "flat channels dropped: Fp2" in rec.report


@pytest.mark.parametrize("stored_factor, word", [(1e6, "microvolts stored as volts"),
                                                 (1e-6, "volts stored as microvolts")])
def test_wrong_units_detected_fixed_and_reported(stored_factor, word):
    raw = sine_raw(10.0, 50.0, names=("Cz", "Pz"), seconds=10.0)
    raw._data *= stored_factor
    rec = preprocess_raw(raw, NO_FILTER)
    assert np.abs(rec.data).max() == pytest.approx(0.5, rel=1e-3)
    line = next(r for r in rec.report if word in r)
    assert f"extra scale of {1 / stored_factor:g}" in line
    kept = preprocess_raw(raw, PreprocessConfig(l_freq=None, h_freq=None, line_freq=None,
                                                on_units="report"))
    assert np.abs(kept.data).max() == pytest.approx(0.5 * stored_factor, rel=1e-3)
    assert any("kept as is" in r for r in kept.report)


def test_channel_without_position_is_an_error_or_dropped():
    raw = make_raw(["Cz", "Pz", "FOO7"], seconds=2.0)
    with pytest.raises(RecordingError, match=r"in-memory recording.*'FOO7'.*--montage"):
        preprocess_raw(raw)
    rec = preprocess_raw(raw, PreprocessConfig(on_unknown="drop"))
    assert rec.sensors.names == ["Cz", "Pz"]
    assert "drop channel FOO7: no known position" in rec.report


def test_two_labels_for_one_electrode_are_an_error():
    raw = make_raw(["EEG T3-REF", "EEG T7-REF", "EEG Cz-REF"], seconds=2.0)
    with pytest.raises(RecordingError, match=r"'EEG T3-REF' and 'EEG T7-REF' are all 'T7'"):
        preprocess_raw(raw)


def test_low_pass_above_the_recordings_nyquist_becomes_its_nyquist_with_a_warning():
    """Rule: a 100-Hz file and h_freq=75 Hz: the band ends at the file's 50 Hz."""
    t = np.arange(2000) / 100.0
    raw = make_raw(sfreq=100.0, seconds=20.0, std_uv=5.0)
    raw._data += 40e-6 * np.sin(2 * np.pi * 40.0 * t)  # 40 Hz: inside both bands
    with pytest.warns(BandLimitWarning, match=r"low-pass 75 Hz is above the Nyquist frequency of .*\(50 Hz"):
        rec = preprocess_raw(raw)
    assert rec.sfreq == 200.0 and rec.data.shape == (10, 4000)
    assert any("instead of h_freq=75 Hz" in line for line in rec.report)
    # the same as asking for no low-pass: the resampler's band edge is the low-pass
    open_top = preprocess_raw(raw, PreprocessConfig(h_freq=None))
    np.testing.assert_array_equal(rec.data, open_top.data)
    inner = rec.data[:, 1200:-1200]
    spectrum = np.abs(np.fft.rfft(inner * np.hanning(inner.shape[-1]), axis=-1)) ** 2
    freqs = np.fft.rfftfreq(inner.shape[-1], 1 / 200.0)
    assert spectrum[:, freqs > 52].sum() < 1e-6 * spectrum.sum()  # nothing above 50 Hz made up
    assert _amplitude(rec.data, 200.0) > 0.35  # the 40-Hz sine (0.4 units) is kept
    lines = describe_preprocessing(raw)
    assert "band-pass: 0.3–50 Hz (FIR, zero phase, at 100 Hz; top edge = Nyquist frequency)" in lines
    assert not any(line.startswith("ERROR") for line in lines)


def test_nyquist_below_the_high_pass_or_shorter_than_a_patch_is_an_error_naming_the_file(
        tmp_path):
    from tests.data_recordings import write_fif

    path = write_fif(make_raw(sfreq=50.0, seconds=10.0), tmp_path / "slow_raw.fif")
    config = PreprocessConfig(l_freq=30.0, h_freq=45.0)
    with pytest.raises(RecordingError, match=r"slow_raw.fif is sampled at 50 Hz: its Nyquist "
                                             r"frequency 25 Hz is at or below the high-pass "
                                             r"l_freq=30 Hz"):
        preprocess_raw(read_raw(path), config)
    path = write_fif(make_raw(seconds=0.5), tmp_path / "blip_raw.fif")
    with pytest.raises(RecordingTooShortError, match=r"blip_raw.fif lasts 0.5 s .* shorter than "
                                                     r"one patch of 200 samples"):
        preprocess_raw(read_raw(path))


def test_config_round_trip_and_validation():
    config = PreprocessConfig(line_freq=60.0, kinds=("eeg", "seeg"), on_flat="drop")
    assert PreprocessConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="on_nan must be one of"):
        PreprocessConfig(on_nan="ignore")
    with pytest.raises(ValueError, match="h_freq .* below half the output rate"):
        PreprocessConfig(sfreq=100.0)
    with pytest.raises(ValueError, match=r"preprocessing: unknown key\(s\) sfrq"):
        PreprocessConfig.from_dict({"sfrq": 100})
    with pytest.raises(TypeError, match=r"unknown setting\(s\) \['sfrq'\]"):
        PreprocessConfig(sfrq=100)


def test_config_is_a_spec_plus_policies_and_reads_a_models_record():
    spec = PreprocessSpec(sfreq=250.0, patch_samples=250, l_freq=0.5, line_freq=50.0)
    config = PreprocessConfig.from_spec(spec, on_unknown="drop")
    assert config.spec == spec and config.on_unknown == "drop"
    assert (config.sfreq, config.l_freq, config.line_freq) == (250.0, 0.5, 50.0)
    assert PreprocessConfig().line_freq == "auto"  # a recording's own mains by default
    # a model's own record (0.1.0 keys and all) reads back
    record = {"sfreq": 200.0, "patch_size": 20, "patch_seconds": 0.1, "notch": "auto",
              "line_freq": 50.0, "on_flat": "drop"}
    config = PreprocessConfig.from_dict(record)
    assert (config.patch_samples, config.line_freq, config.on_flat) == (20, 50.0, "drop")


@pytest.mark.parametrize(("notch", "line_freq", "expected"),
                         [(None, None, None), (None, 60.0, None), ("auto", None, "auto"),
                          ("auto", 60.0, 60.0), (50.0, None, 50.0)])
def test_the_old_notch_spelling_still_works_with_a_deprecation_warning(notch, line_freq,
                                                                        expected):
    with pytest.warns(DeprecationWarning, match=r"notch=\.\.\.\) is deprecated; use line_freq"):
        config = PreprocessConfig(notch=notch, line_freq=line_freq)
    assert config.line_freq == expected


def test_sources_in_messages_name_the_file(tmp_path):
    from tests.data_recordings import write_fif

    raw = make_raw(["Cz", "XX1"], seconds=2.0)
    path = write_fif(raw, tmp_path / "named_raw.fif")
    with pytest.raises(RecordingError, match=r"named_raw\.fif.*'XX1'"):
        preprocess_raw(mne.io.read_raw_fif(path, verbose="error"))
