"""Windows, epochs (pad/crop rule), WindowDataset, list-of-files mode and mixed-montage batches."""

import mne
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from neurofm.data import (
    PreprocessConfig,
    RecordingError,
    RecordingTooShortError,
    WindowDataset,
    collate_windows,
    epochs_to_patches,
    epochs_to_windows,
    load_windows,
    preprocess_raw,
    read_epochs,
    window_recording,
)
from tests.data_recordings import make_raw, write_edf

NO_FILTER = PreprocessConfig(l_freq=None, h_freq=None, line_freq=None)


def test_windows_are_consecutive_patches_of_the_signal():
    rec = preprocess_raw(make_raw(seconds=7.0), NO_FILTER)
    windows = window_recording(rec, window_seconds=2.0, patch_seconds=0.5)
    assert windows.x.shape == (3, 10, 4, 100)
    np.testing.assert_array_equal(windows.start, [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(windows.x[1, :, 2], rec.data[:, 600:700])
    overlapping = window_recording(rec, window_seconds=2.0, stride_seconds=1.0)
    np.testing.assert_array_equal(overlapping.start, [0, 1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="not a whole number of"):
        window_recording(rec, window_seconds=2.5, patch_seconds=1.0)


def test_amplitude_rejection_drops_loud_windows():
    rec = preprocess_raw(make_raw(seconds=6.0), NO_FILTER)
    rec.data[4, 450] = 25.0  # 2.5 mV spike in the second 2-s window
    windows = window_recording(rec, window_seconds=2.0, max_abs=10.0)
    assert windows.n_rejected == 1
    np.testing.assert_array_equal(windows.start, [0.0, 4.0])


def test_recording_shorter_than_a_window_errors_in_single_file_mode(tmp_path):
    path = write_edf(make_raw(seconds=5.0), tmp_path / "short.edf")
    with pytest.raises(RecordingTooShortError, match=r"short\.edf lasts 5\.0 s, shorter than one"
                                                     r" 30-s window"):
        load_windows(path)


def test_list_of_files_skips_bad_ones_with_reasons(tmp_path):
    good = write_edf(make_raw(seconds=6.0), tmp_path / "good.edf")
    short = write_edf(make_raw(seconds=2.0), tmp_path / "short.edf")
    dataset = WindowDataset.from_files([good, short, tmp_path / "gone.edf"],
                                       window_seconds=4.0, progress=False)
    assert len(dataset) == 1
    reasons = dict(dataset.skipped)
    assert "shorter than one 4-s window" in reasons[short]
    assert "not found" in reasons[str(tmp_path / "gone.edf")]
    with pytest.raises(RecordingTooShortError):
        WindowDataset.from_files([short], window_seconds=4.0, on_error="raise", progress=False)


def test_epochs_pad_and_crop_rule():
    data = np.arange(2 * 3 * 450, dtype=np.float32).reshape(2, 3, 450)
    x, valid = epochs_to_patches(data, 200, "pad")
    assert x.shape == (2, 3, 3, 200) and valid.all()
    np.testing.assert_array_equal(x[:, :, 2, :50], data[:, :, 400:])
    assert not x[:, :, 2, 50:].any()
    x, valid = epochs_to_patches(data, 200, "pad", n_patches=4)
    assert x.shape == (2, 3, 4, 200)
    np.testing.assert_array_equal(valid, [[True, True, True, False]] * 2)
    # epochs of exactly two patches padded to four: the patch that starts where the signal ends
    # holds no sample and is padding
    x, valid = epochs_to_patches(data[..., :400], 200, "pad", n_patches=4)
    np.testing.assert_array_equal(valid, [[True, True, False, False]] * 2)
    assert not x[:, :, 2:].any()
    x, valid = epochs_to_patches(data, 200, "crop")
    assert x.shape == (2, 3, 2, 200) and valid.all()
    np.testing.assert_array_equal(x.reshape(2, 3, 400), data[..., :400])


def test_epochs_file_gives_one_labelled_window_per_epoch(tmp_path):
    raw = make_raw(seconds=10.0)
    events = np.array([[200, 0, 1], [800, 0, 2], [1400, 0, 1]])
    epochs = mne.Epochs(raw, events, tmin=0.0, tmax=2.245, baseline=None, preload=True,
                        verbose="error")  # 450 samples at 200 Hz: 2.25 patches
    path = tmp_path / "task-epo.fif"
    epochs.save(path, verbose="error")
    padded = load_windows(path, NO_FILTER)
    assert padded.x.shape == (3, 10, 3, 200)
    np.testing.assert_array_equal(padded.y, [1, 2, 1])
    np.testing.assert_allclose(padded.start, [1.0, 4.0, 7.0])
    assert any("rule 'pad'" in line for line in padded.report)
    cropped = epochs_to_windows(read_epochs(path), NO_FILTER, rule="crop")
    assert cropped.x.shape == (3, 10, 2, 200)
    np.testing.assert_allclose(cropped.x, padded.x[:, :, :2], atol=1e-6)
    item = WindowDataset(cropped)[1]
    assert item["y"].item() == 2


def test_epochs_with_nan_raise_or_are_dropped():
    epochs = mne.make_fixed_length_epochs(make_raw(seconds=4.0), duration=1.0, preload=True,
                                          verbose="error")
    epochs._data[2, 5, 100] = np.nan
    with pytest.raises(RecordingError, match=r"epoch 2: channel 'C4' has 1 NaN/Inf samples, the"
                                             r" first at t = 0\.500 s"):
        epochs_to_windows(epochs, NO_FILTER)
    windows = epochs_to_windows(epochs, PreprocessConfig(l_freq=None, h_freq=None, line_freq=None,
                                                         on_nan="drop_window"))
    assert len(windows) == 3 and windows.n_rejected == 1
    np.testing.assert_allclose(windows.start, [0.0, 1.0, 3.0])


def test_short_epochs_are_demeaned_instead_of_high_passed():
    raw = make_raw(seconds=6.0)
    raw._data += 1e-4  # 100 µV offset
    epochs = mne.make_fixed_length_epochs(raw, duration=1.0, preload=True, verbose="error")
    windows = epochs_to_windows(epochs)
    assert any("high-pass 0.3 Hz skipped" in line for line in windows.report)
    assert np.abs(windows.x.mean(axis=-1)).max() < 0.05


def test_collate_mixes_montages_with_channel_mask():
    a = window_recording(preprocess_raw(make_raw(["Cz", "Pz", "Fz", "Oz"], seconds=4.0),
                                        NO_FILTER), 2.0)
    b = window_recording(preprocess_raw(make_raw(seed=1, seconds=4.0), NO_FILTER), 2.0)
    dataset = WindowDataset([a, b])
    assert len(dataset) == 4
    batch = next(iter(DataLoader(dataset, batch_size=4, collate_fn=collate_windows)))
    assert batch["x"].shape == (4, 10, 2, 200)
    assert batch["sensors"].pos.shape == (4, 10, 3)
    np.testing.assert_array_equal(batch["sensors"].chan_mask.sum(1).numpy(), [4, 4, 10, 10])
    assert not batch["x"][:2, 4:].any()
    torch.testing.assert_close(batch["x"][0, :4], torch.from_numpy(a.x[0]))
    assert batch["patch_valid"].shape == (4, 2) and "y" not in batch
    with pytest.raises(ValueError, match="must share"):
        c = window_recording(preprocess_raw(make_raw(seconds=4.0), NO_FILTER), 4.0)
        collate_windows([dataset[0], WindowDataset(c)[0]])
