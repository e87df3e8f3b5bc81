"""Simulated recordings written as FIF/EDF/BIDS and as a TUEG tree, read back."""

import datetime as dt
import re

import numpy as np
import pytest

from neurofm.cli import main
from neurofm.data.io import read_raw
from neurofm.sensors.positions import resolve_sensors
from neurofm.simulate import simulate_recording, simulate_tueg_tree, write_recording
from neurofm.simulate.tueg import TUEG_SFREQS, tueg_subject_id

FAST = {"grid_mm": 25.0, "sfreq": 100.0, "duration": 8.0}


def test_fif_keeps_positions_kinds_and_meg_geometry(tmp_path):
    for modality, montage in (("eeg", "biosemi32"), ("meg", "neuromag"), ("ecog", "grid3x3")):
        rec = simulate_recording("erp", modality, montage=montage, **FAST)
        path = write_recording(rec, tmp_path / modality, "fif")
        back = read_raw(path)
        assert back.ch_names == rec.raw.ch_names
        assert back.get_channel_types() == rec.raw.get_channel_types()
        np.testing.assert_allclose(back.get_data(), rec.raw.get_data(), rtol=1e-6, atol=1e-20)
        np.testing.assert_allclose([c["loc"] for c in back.info["chs"]],
                                   [c["loc"] for c in rec.raw.info["chs"]], atol=1e-7)
        layout = resolve_sensors(back.info)
        np.testing.assert_allclose(layout.pos, rec.sensor_positions(), atol=1e-6)
        assert set(layout.kind_labels()) == {"eeg": {"eeg"}, "meg": {"meg_mag", "meg_grad"},
                                             "ecog": {"ecog"}}[modality]
        if modality == "meg":
            assert np.all(np.abs(np.linalg.norm(layout.ori, axis=1) - 1) < 1e-5)
        assert list(back.annotations.description) == list(rec.raw.annotations.description)


def test_edf_is_byte_identical_for_the_same_seed_and_reads_back(tmp_path):
    paths = [write_recording(simulate_recording("motor_imagery", "eeg", montage="biosemi32",
                                                seed=5, **FAST), tmp_path / str(k), "edf")
             for k in range(2)]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    back = read_raw(paths[0])
    assert back.info["sfreq"] == 100.0 and len(back.ch_names) == 32
    assert {"left_hand", "right_hand", "feet", "rest"} & set(back.annotations.description)


def test_edf_refuses_meg():
    rec = simulate_recording("resting", "meg", **FAST)
    with pytest.raises(ValueError, match="EDF cannot hold MEG"):
        write_recording(rec, "/nonexistent", "edf")


def test_bids_output_reads_back_with_events_and_electrodes(tmp_path):
    rec = simulate_recording("erp", "eeg", montage="biosemi32", subject=2, **FAST)
    path = write_recording(rec, tmp_path, "bids")
    assert path == tmp_path / "sub-003" / "eeg" / "sub-003_task-erp_eeg.edf"
    assert (tmp_path / "sub-003" / "eeg" / "sub-003_task-erp_events.tsv").is_file()
    back = read_raw(path)
    assert back.info["line_freq"] == 50.0
    got = {c["ch_name"]: c["loc"][:3] for c in back.info["chs"]}
    want = {c["ch_name"]: c["loc"][:3] for c in rec.raw.info["chs"]}
    np.testing.assert_allclose(got["Cz"], want["Cz"], atol=1e-3)
    assert {"target", "non_target"} <= set(back.annotations.description)


def test_tueg_tree_has_the_real_layout_names_rates_and_is_reproducible(tmp_path):
    paths = simulate_tueg_tree(tmp_path / "a", 2, minutes=(0.05, 0.1), seed=1)
    again = simulate_tueg_tree(tmp_path / "b", 2, minutes=(0.05, 0.1), seed=1)
    assert [p.relative_to(tmp_path / "a") for p in paths] == \
        [p.relative_to(tmp_path / "b") for p in again]
    assert all(p.read_bytes() == q.read_bytes() for p, q in zip(paths, again))
    pattern = re.compile(r"v2\.0\.1/edf/000/([a-z]{8})/s(\d{3})_(\d{4})_(\d\d)_(\d\d)/"
                         r"(01_tcp_ar|02_tcp_le)/\1_s\2_t(\d{3})\.edf$")
    subjects = set()
    for path in paths:
        m = pattern.search(path.relative_to(tmp_path / "a").as_posix())
        assert m, path
        subjects.add(m.group(1))
        raw = read_raw(path)
        ref = "REF" if m.group(6) == "01_tcp_ar" else "LE"
        assert raw.ch_names[0] == f"EEG FP1-{ref}" and f"EEG T3-{ref}" in raw.ch_names
        assert raw.ch_names[-1] == f"EEG EKG1-{ref}"
        assert raw.info["sfreq"] in TUEG_SFREQS
        assert raw.info["meas_date"].date() == dt.date(*map(int, m.group(3, 4, 5)))
    assert subjects == {tueg_subject_id(0), tueg_subject_id(1)} == {"aaaaaaaa", "aaaaaaab"}


def test_cli_writes_recordings_that_neurofm_info_reads(tmp_path, capsys):
    rc = main(["simulate", str(tmp_path), "--task", "motor_imagery", "--modality", "eeg",
               "--montage", "standard_1020", "--subjects", "2", "--minutes", "0.1", "--format",
               "edf", "--sfreq", "100", "--grid-mm", "25", "--seed", "0"])
    assert rc == 0
    files = sorted(tmp_path.glob("*.edf"))
    assert [f.name for f in files] == ["sub001_task-motorimagery.edf",
                                       "sub002_task-motorimagery.edf"]
    assert main(["info", str(files[0]), "--montage", "standard_1020"]) == 0
    out = capsys.readouterr().out
    assert "Sampling rate: 100 Hz" in out and "C3" in out


def test_cli_reports_bad_combinations(tmp_path, capsys):
    rc = main(["simulate", str(tmp_path), "--modality", "meg", "--format", "edf",
               "--subjects", "1", "--minutes", "0.05"])
    assert rc == 2
    assert "EDF cannot hold MEG" in capsys.readouterr().err
    rc = main(["simulate", str(tmp_path), "--layout", "tueg", "--task", "erp"])
    assert rc == 2
    assert "--layout tueg" in capsys.readouterr().err
