"""Reading recordings: EDF (TUH names, upper-case extension), BIDS, epochs files, samples,
and the bad-input messages (missing, truncated, duplicate channel names)."""

import importlib.util
import os
from pathlib import Path

import edfio
import mne
import numpy as np
import pytest

from neurofm.data import (
    PreprocessConfig,
    RecordingError,
    WindowDataset,
    preprocess_raw,
    read_epochs,
    read_raw,
    window_recording,
)
from neurofm.data.io import check_edf_size
from neurofm.data.samples import SAMPLES, load_sample
from neurofm.sensors.montages import montage_positions_head
from tests.data_recordings import TUH_CANONICAL, TUH_NAMES, make_raw, write_edf

HAS_SPKIT = importlib.util.find_spec("spkit") is not None


def test_tuh_edf_gives_montage_positions_and_patch_shapes(tmp_path):
    path = write_edf(make_raw(TUH_NAMES, sfreq=250.0, seconds=6.0), tmp_path / "tuh.edf")
    rec = preprocess_raw(read_raw(path))
    assert rec.sensors.names == TUH_NAMES
    assert rec.sensors.canonical == TUH_CANONICAL
    expected = montage_positions_head("colin27_1005", TUH_CANONICAL)
    np.testing.assert_allclose(rec.sensors.pos, np.stack([expected[n] for n in TUH_CANONICAL]),
                               atol=1e-6)
    assert rec.sfreq == 200.0 and rec.data.shape == (11, 1200)
    windows = window_recording(rec, window_seconds=2.0, patch_seconds=1.0)
    assert windows.x.shape == (3, 11, 2, 200)
    item = WindowDataset(windows)[0]
    assert item["x"].shape == (11, 2, 200)
    assert item["sensors"].pos.shape == (1, 11, 3)
    assert item["sensors"].kind.tolist() == [[0] * 11]


def test_extension_is_case_insensitive(tmp_path):
    raw = make_raw(seconds=2.0)
    path = write_edf(raw, tmp_path / "a.edf")
    upper = tmp_path / "RECORDING.EDF"
    os.rename(path, upper)
    back = read_raw(upper)
    assert back.ch_names == raw.ch_names
    np.testing.assert_allclose(back.get_data(), raw.get_data(), atol=1e-8)


@pytest.mark.parametrize("fmt, ext", [("edf", ".edf"), ("bdf", ".BDF"), ("eeglab", ".set"),
                                      ("brainvision", ".vhdr")])
def test_formats_mne_writes_read_back(tmp_path, fmt, ext):
    raw = make_raw(["Cz", "Pz", "Fz"], seconds=2.0)
    path = tmp_path / f"rec{ext}"
    mne.export.export_raw(path, raw, fmt=fmt, overwrite=True, verbose="error")
    if ext == ".BDF":
        check_edf_size(path)  # the BDF (24-bit) branch of the size check accepts a whole file
    back = read_raw(path)
    assert back.ch_names == ["Cz", "Pz", "Fz"] and back.n_times == 400
    np.testing.assert_allclose(back.get_data(), raw.get_data(), atol=1e-8)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.edf not found"):
        read_raw(tmp_path / "nothere.edf")


def test_truncated_edf_names_file_and_says_truncated(tmp_path):
    path = write_edf(make_raw(seconds=4.0), tmp_path / "cut.edf")
    data = Path(path).read_bytes()
    with open(path, "wb") as f:
        f.write(data[: len(data) * 2 // 3])
    with pytest.raises(RecordingError, match=r"cut\.edf is truncated: the header promises 4 data"
                                             r" records") as err:
        read_raw(path)
    assert "Re-copy" in str(err.value)
    with open(path, "wb") as f:
        f.write(data[:100])
    with pytest.raises(RecordingError, match=r"cut\.edf is truncated: it has 100 bytes"):
        read_raw(path)


def test_duplicate_channel_names_are_an_error(tmp_path):
    signals = [edfio.EdfSignal(np.zeros(256) + i, sampling_frequency=128, label=label,
                               physical_dimension="uV")
               for i, label in enumerate(["EEG Fp1", "EEG Cz", "EEG Fp1"])]
    path = tmp_path / "dup.edf"
    edfio.Edf(signals).write(path)
    for verbose in (None, "error"):
        with pytest.raises(RecordingError, match=r"dup\.edf has duplicate channel names: "
                                                 r"'EEG Fp1'"):
            read_raw(path, verbose=verbose)


def test_unsupported_extension_names_file(tmp_path):
    path = tmp_path / "notes.xyz"
    path.write_text("not a recording")
    with pytest.raises(RecordingError, match=r"Could not read .*notes\.xyz"):
        read_raw(path)


def test_bids_eeg_file_reads_through_mne_bids(tmp_path):
    mne_bids = pytest.importorskip("mne_bids")
    raw = make_raw(seconds=3.0, line_freq=50.0)
    raw.set_montage("standard_1020", verbose="error")
    bids_path = mne_bids.BIDSPath(subject="07", session="2", task="rest", datatype="eeg",
                                  root=tmp_path / "bids")
    mne_bids.write_raw_bids(raw, bids_path, format="EDF", allow_preload=True, verbose="error")
    fname = bids_path.copy().update(suffix="eeg", extension=".edf").fpath
    back = read_raw(fname)
    assert back.info["line_freq"] == 50.0
    rec = preprocess_raw(back)
    assert (rec.subject, rec.session) == ("07", "2")
    assert rec.sensors.names == list(raw.ch_names)


def test_epochs_file_is_refused_by_read_raw_and_read_by_read_epochs(tmp_path):
    raw = make_raw(seconds=4.0)
    epochs = mne.make_fixed_length_epochs(raw, duration=1.0, verbose="error")
    path = tmp_path / "x-epo.fif"
    epochs.save(path, verbose="error")
    with pytest.raises(RecordingError, match="epochs file"):
        read_raw(path)
    assert len(read_epochs(path)) == 4


@pytest.mark.skipif(not HAS_SPKIT, reason="spkit not installed: pip install --no-deps "
                                          "spkit==0.0.9.7 for the emotiv14 sample")
def test_emotiv_sample_from_spkit():
    raw = read_raw("sample:emotiv14")
    assert raw.info["sfreq"] == 128.0 and raw.get_data().shape == (14, 2048)
    assert raw.ch_names[:3] == ["AF3", "F7", "F3"]
    std_uv = raw.get_data().std(axis=1) * 1e6
    assert np.all((std_uv > 20) & (std_uv < 300))  # real EEG in µV, stored in volts
    rec = preprocess_raw(raw, PreprocessConfig(h_freq=60.0))
    assert rec.data.shape == (14, 3200)
    assert all(s.startswith("montage:") for s in rec.sensors.pos_source)


def test_sample_without_spkit_says_how_to_install(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "spkit" else real_find_spec(name, *a))
    with pytest.raises(RecordingError, match=r"pip install --no-deps spkit==0\.0\.9\.7"):
        load_sample("emotiv14")
    with pytest.raises(RecordingError, match="Known samples: sample:emotiv14"):
        read_raw("sample:nope")
    assert "emotiv14" in SAMPLES
