"""``neurofm info`` on EDF, FIF, BIDS EEG/MEG/iEEG, epochs and the spkit sample."""

import importlib.util
import json
from pathlib import Path

import mne
import numpy as np
import pytest

from neurofm.cli import main
from tests.data_recordings import TUH_NAMES, make_raw, neuromag_raw, write_edf, write_fif

mne_bids = pytest.importorskip("mne_bids")


def run_info(capsys, *args):
    code = main(["info", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def info_json(capsys, *args):
    code, out, err = run_info(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_info_on_tuh_edf_prints_table_and_plan(tmp_path, capsys):
    raw = make_raw(TUH_NAMES + ["EEG EKG1-REF"], sfreq=250.0, seconds=3.0)
    path = write_edf(raw, tmp_path / "tuh.edf")
    code, out, _ = run_info(capsys, path, "--line-freq", "60", "--on-unknown", "drop")
    assert code == 0
    assert "Sampling rate: 250 Hz" in out and "Duration: 3.00 s (750 samples)" in out
    assert "EEG FP1-REF" in out and "keep (as Fp1)" in out and "keep (as T7)" in out
    assert "montage:colin27_1005" in out
    assert "resample: 250 Hz -> 200 Hz" in out and "band-pass: 0.3–75 Hz" in out
    assert "notch: 60 Hz (mains 60 Hz from line_freq setting)" in out
    assert "scale eeg: x 10000 (1.0 = 100 µV)" in out
    row = next(line for line in out.splitlines() if line.startswith("EEG EKG1-REF"))
    assert "missing" in row and "drop: no known position" in row


def test_info_reports_unknown_channels_as_error_by_default(tmp_path, capsys):
    path = write_edf(make_raw(["Cz", "XYZ"], seconds=2.0), tmp_path / "odd.edf")
    code, out, _ = run_info(capsys, path)
    assert code == 0
    assert "ERROR:" in out and "'XYZ'" in out and "--montage" in out


def test_info_on_fif_json_and_signal_checks(tmp_path, capsys):
    raw = make_raw(["Fz", "Cz", "Pz", "EOG"], seconds=2.0, line_freq=50.0)
    raw.set_channel_types({"EOG": "eog"}, verbose="error")
    raw._data[1] = 0.0
    path = write_fif(raw, tmp_path / "rec_raw.fif")
    summary = info_json(capsys, path)
    assert summary["sfreq"] == 200.0 and summary["line_freq"] == 50.0
    rows = {c["name"]: c for c in summary["channels"]}
    assert rows["EOG"]["kind"] == "eog" and rows["EOG"]["action"] == "drop: kind eog not kept"
    assert rows["Fz"]["position_source"].startswith("montage:")
    assert "resample: none (stays 200 Hz)" in summary["preprocessing"]
    assert any("flat channels: Cz" in c for c in summary["checks"])


def test_info_on_bids_eeg_meg_and_ieeg(tmp_path, capsys):
    root = tmp_path / "bids"
    eeg = make_raw(seconds=2.0, line_freq=50.0)
    eeg.set_montage("standard_1020", verbose="error")
    eeg_path = mne_bids.BIDSPath(subject="01", task="rest", datatype="eeg", root=root)
    mne_bids.write_raw_bids(eeg, eeg_path, format="BrainVision", allow_preload=True,
                            verbose="error")
    summary = info_json(capsys, eeg_path.copy().update(suffix="eeg", extension=".vhdr").fpath)
    assert {c["position_source"] for c in summary["channels"]} == {"file"}

    meg_file = write_fif(neuromag_raw(seconds=1.0), tmp_path / "meg_raw.fif")
    meg = mne.io.read_raw_fif(meg_file, verbose="error")
    meg.info["line_freq"] = 60.0
    meg_path = mne_bids.BIDSPath(subject="01", task="rest", datatype="meg", root=root)
    mne_bids.write_raw_bids(meg, meg_path, verbose="error")
    summary = info_json(capsys, meg_path.copy().update(suffix="meg", extension=".fif").fpath)
    kinds = [c["kind"] for c in summary["channels"]]
    assert kinds.count("meg_mag") == 102 and kinds.count("meg_grad") == 204
    assert "scale meg_mag: x 2e+11 (1.0 = 5 pT)" in summary["preprocessing"]
    assert "scale meg_grad: x 1e+10 (1.0 = 100 pT/m)" in summary["preprocessing"]
    assert any(line.startswith("resample: 1000 Hz -> 200 Hz") for line in summary["preprocessing"])

    names = ["LA1", "LA2", "LA3", "LB1"]
    ieeg = make_raw(names, sfreq=500.0, seconds=2.0, ch_types="seeg", line_freq=60.0)
    mni = {n: np.array([0.03 + 0.005 * i, -0.01, 0.02]) for i, n in enumerate(names)}
    montage = mne.channels.make_dig_montage(mni, coord_frame="mni_tal")
    ieeg.set_montage(montage, verbose="error")
    ieeg_path = mne_bids.BIDSPath(subject="01", task="rest", datatype="ieeg", root=root)
    mne_bids.write_raw_bids(ieeg, ieeg_path, format="EDF", allow_preload=True, montage=montage,
                            verbose="error")
    code, out, _ = run_info(capsys, ieeg_path.copy().update(suffix="ieeg", extension=".edf").fpath)
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith(("LA", "LB"))]
    assert len(rows) == 4 and all("seeg" in r and "mni:fsaverage" in r for r in rows)


def test_info_on_epochs_file(tmp_path, capsys):
    epochs = mne.make_fixed_length_epochs(make_raw(seconds=4.0), duration=1.0, verbose="error")
    path = tmp_path / "x-epo.fif"
    epochs.save(path, verbose="error")
    code, out, _ = run_info(capsys, path)
    assert code == 0 and "(epochs)" in out and "4 epochs x 1 s" in out


def test_info_bad_input_exits_2_with_message(tmp_path, capsys):
    code, _, err = run_info(capsys, tmp_path / "missing.edf")
    assert code == 2 and "missing.edf not found" in err
    path = write_edf(make_raw(seconds=4.0), tmp_path / "cut.edf")
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:-300])
    code, _, err = run_info(capsys, path)
    assert code == 2 and "cut.edf is truncated" in err and "Traceback" not in err


@pytest.mark.skipif(importlib.util.find_spec("spkit") is None,
                    reason="spkit not installed: pip install --no-deps spkit==0.0.9.7")
def test_info_on_spkit_sample(capsys):
    code, out, _ = run_info(capsys, "sample:emotiv14", "--h-freq", "60")
    assert code == 0
    assert "Recording: sample:emotiv14" in out and "Sampling rate: 128 Hz" in out
    assert "Duration: 16.00 s (2048 samples)" in out and "AF3" in out
    assert "resample: 128 Hz -> 200 Hz" in out and "ERROR" not in out
    code, out, _ = run_info(capsys, "sample:emotiv14")  # default 75 Hz, above its 64 Hz
    assert code == 0 and "ERROR" not in out
    assert "band-pass: 0.3–64 Hz (FIR, zero phase, at 128 Hz; top edge = Nyquist frequency)" in out
    assert ("low-pass 75 Hz is above the Nyquist frequency of sample:emotiv14 (64 Hz, sampled "
            "at 128 Hz): the band ends at 64 Hz instead of h_freq=75 Hz") in out
    assert "resample: 128 Hz -> 200 Hz (FFT, after filtering)" in out
