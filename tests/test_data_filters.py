"""neurofm.data.filters and the fast checks: equal to MNE's filters, resampling keeps the band."""

import mne
import numpy as np
import pytest

from neurofm.data import PreprocessConfig, preprocess_raw
from neurofm.data.checks import channel_std, find_nonfinite
from neurofm.data.filters import apply_zero_phase, filter_and_resample, fir_kernel, resample_ratio


def _noise(sfreq, seconds, n_channels=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n_channels, round(sfreq * seconds)))


def _sine(freq, sfreq, n, phase=0.3):
    return np.sin(2 * np.pi * freq * np.arange(n) / sfreq + phase)


def test_one_kernel_equals_mne_band_pass_then_notch():
    x = _noise(250.0, 20.0) * 1e-5
    expected = mne.filter.notch_filter(
        mne.filter.filter_data(x, 250.0, 0.3, 75.0, verbose="error"), 250.0, [50.0, 100.0],
        verbose="error")
    got = apply_zero_phase(x, fir_kernel(250.0, 0.3, 75.0, (50.0, 100.0)))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_float32_filtering_stays_float32_and_close():
    x = _noise(200.0, 15.0)
    kernel = fir_kernel(200.0, 0.3, 75.0, (60.0,))
    exact = apply_zero_phase(x, kernel)
    got = apply_zero_phase(x.astype(np.float32), kernel)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, exact, atol=1e-5 * np.abs(exact).max())


def test_filtering_a_signal_shorter_than_the_kernel_keeps_its_length():
    x = _noise(200.0, 2.0)  # the 0.3-Hz high-pass is 11 s long
    assert apply_zero_phase(x, fir_kernel(200.0, 0.3, 75.0)).shape == x.shape


@pytest.mark.parametrize("sfreq_in", [512.0, 250.0, 1000.0, 128.0, 333.3, 200.0 * np.pi])
@pytest.mark.parametrize("freq", [10.0, 55.0])
def test_resampled_sine_matches_the_sine_at_the_new_times(sfreq_in, freq):
    n = round(sfreq_in * 20)
    x = np.stack([_sine(freq, sfreq_in, n)] * 2).astype(np.float32)
    kernel = fir_kernel(min(sfreq_in, 200.0), None, 60.0)  # low-pass only: no edge transient
    y = filter_and_resample(x, sfreq_in, 200.0, kernel)
    assert y.dtype == np.float32 and y.shape == (2, round(n * 200.0 / sfreq_in))
    expected = _sine(freq, 200.0, y.shape[-1])
    inner = slice(200, -200)  # 1 s from each edge
    np.testing.assert_allclose(y[:, inner], np.stack([expected] * 2)[:, inner], atol=0.005)


def test_one_pass_equals_resampling_then_filtering_at_the_lower_rate():
    x = _noise(512.0, 30.0)
    kernel = fir_kernel(200.0, 0.3, 75.0, (60.0,))
    got = filter_and_resample(x, 512.0, 200.0, kernel)
    resampled = mne.filter.resample(x, up=200.0, down=512.0, npad="auto", verbose="error")
    expected = apply_zero_phase(resampled, kernel)
    inner = slice(1200, -1200)  # the two pad the edges differently (input vs output rate)
    np.testing.assert_allclose(got[:, inner], expected[:, inner],
                               atol=1e-3 * np.abs(expected).max())


def test_content_that_would_alias_into_the_band_is_removed():
    # 130 Hz at 512 Hz folds to 70 Hz at 200 Hz: inside a 75-Hz band, so it must be stopped
    x = _sine(130.0, 512.0, 512 * 10)[None]
    y = filter_and_resample(x, 512.0, 200.0, fir_kernel(200.0, None, 75.0))
    assert np.abs(y[:, 200:-200]).max() < 1e-3


def test_ratio_is_exact_for_decimal_rates_and_close_otherwise():
    assert resample_ratio(512.0, 200.0) == (25, 64)
    assert resample_ratio(250.0, 200.0) == (4, 5)
    assert resample_ratio(333.3, 200.0) == (2000, 3333)
    assert resample_ratio(499.9875, 200.0) == (16000, 39999)
    up, down = resample_ratio(200.0 * np.pi, 200.0)
    assert up / down == pytest.approx(1 / np.pi, rel=1e-8)


def test_preprocess_raw_matches_mne_filter_notch_resample():
    """Same band and rate as MNE's own path (filter, notch, resample) at the file's rate."""
    sfreq, seconds = 512.0, 40.0
    n = round(sfreq * seconds)
    data = (_noise(sfreq, seconds, 4, seed=3) * 10 + 40 * _sine(10.0, sfreq, n)) * 1e-6
    info = mne.create_info(["Cz", "Pz", "C3", "C4"], sfreq, "eeg")
    raw = mne.io.RawArray(data, info, verbose="error")
    config = PreprocessConfig(line_freq=60.0)
    rec = preprocess_raw(raw, config)
    ref = raw.copy().filter(0.3, 75.0, verbose="error").notch_filter(
        [60.0], verbose="error").resample(200.0, npad="auto", verbose="error").get_data() * 1e4
    assert rec.data.shape == ref.shape and rec.data.dtype == np.float32
    inner = slice(6 * 200, -6 * 200)  # away from the 0.3-Hz high-pass edges (5.5 s)
    diff = rec.data[:, inner] - ref[:, inner]
    assert diff.std() < 0.01 * ref[:, inner].std()
    assert np.abs(rec.data[:, inner]).max() == pytest.approx(np.abs(ref[:, inner]).max(),
                                                              rel=0.01)


def test_channel_std_matches_numpy_including_offsets_nan_and_flat_rows():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((5, 4000)) * 1e-5
    data[1] += 0.5  # DC offset 50,000 x the spread: needs the exact path
    data[2] = 3e-3  # flat
    data[3, 10:20] = np.nan
    data[4] = np.nan
    got = channel_std(data)
    np.testing.assert_allclose(got[:2], data[:2].std(axis=1), rtol=1e-9)
    assert got[2] < 1e-15  # flat (numpy's own two-pass std gives rounding noise too)
    assert got[3] == pytest.approx(np.nanstd(data[3]), rel=1e-9)
    assert np.isnan(got[4])


def test_find_nonfinite_fast_path_finds_nothing_and_slow_path_finds_inf():
    data = np.zeros((2, 100))
    assert find_nonfinite(data, ["A", "B"], 100.0) == []
    data[1, 50] = np.inf
    (found,) = find_nonfinite(data, ["A", "B"], 100.0)
    assert (found.channel, found.count, found.first_time) == ("B", 1, 0.5)
