"""MOABB datasets as trial sets: FakeDataset through ``from_moabb`` and the ``moabb:`` spec
(counts, labels, sessions, units, positions, band), no silent downloads, clear errors."""

import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("moabb")

import moabb.datasets.download as moabb_download
import pooch
from moabb.datasets import BNCI2014_001
from moabb.datasets.fake import FakeDataset
from moabb.paradigms import FilterBankMotorImagery, MotorImagery

from neurofm.cli import main
from neurofm.datasets import (
    MissingDataError,
    MissingExtraError,
    from_moabb,
    load_dataset,
)
from neurofm.datasets.moabb_files import (
    check_moabb_files,
    download_command,
    download_moabb,
    needs_licence,
)
from neurofm.datasets.moabb_standins import standin_dataset


@pytest.fixture(autouse=True)
def empty_mne_data(tmp_path, monkeypatch):
    """MNE's data folder is an empty folder of the test: nothing on disk, nothing downloaded."""
    folder = tmp_path / "mne_data"
    folder.mkdir()
    monkeypatch.setenv("MNE_DATA", str(folder))
    monkeypatch.delenv("MNE_DATASETS_BNCI_PATH", raising=False)
    return folder


def _fake(**kw):
    options = {"n_subjects": 3, "n_sessions": 2, "n_runs": 2, "duration": 30, "n_events": 12,
               "seed": 1}
    return FakeDataset(**{**options, **kw})


def test_from_moabb_matches_the_paradigm_get_data():
    dataset = _fake()
    paradigm = MotorImagery(fmin=None, fmax=None, n_classes=3)
    trials = from_moabb(dataset, paradigm)
    X, labels, meta = paradigm.get_data(dataset)
    assert len(trials) == len(labels) == 3 * 2 * 2 * 12
    assert trials.class_names == ["fake1", "fake2", "fake3"]
    assert np.array_equal(np.asarray(trials.class_names)[trials.y], labels)
    assert np.array_equal(trials.subject, meta["subject"].astype(str))
    assert np.array_equal(trials.session, meta["session"].astype(str))
    assert set(trials.session) == {"0", "1"}
    # units: MOABB's arrays are µV, a TrialSet holds volts
    np.testing.assert_allclose(trials.X, X * 1e-6, rtol=1e-5, atol=1e-12)
    assert 5e-6 < trials.X.std() < 5e-5                 # FakeDataset's 20 µV noise, in V
    # positions from the dataset's montage: C3 left of Cz left of C4, on a head-sized sphere
    x = dict(zip(trials.sensors.names, trials.sensors.pos[:, 0]))
    assert x["C3"] < x["Cz"] < x["C4"]
    assert np.all((np.linalg.norm(trials.sensors.pos, axis=1) > 0.05)
                  & (np.linalg.norm(trials.sensors.pos, axis=1) < 0.15))
    assert trials.band is None and trials.provenance["paradigm"] == "MotorImagery"


def test_metadata_table_names_every_trial():
    trials = from_moabb(_fake(n_subjects=2), "MotorImagery")
    table = trials.metadata
    assert list(table.columns) == ["subject", "session", "run", "source", "onset", "label",
                                   "split"]
    assert set(map(tuple, table[["subject", "session", "run"]].drop_duplicates().values)) == {
        (s, se, r) for s in ("1", "2") for se in ("0", "1") for r in ("0", "1")}
    one_run = table[(table.subject == "1") & (table.session == "0") & (table.run == "0")]
    onsets = one_run["onset"].to_numpy()
    assert np.all(np.diff(onsets) > 2.0)           # 12 events spread over a 30-s run
    assert onsets[0] == pytest.approx(1 / 128)     # FakeDataset's first event at sample 1
    assert (table["label"] == np.asarray(trials.class_names)[trials.y]).all()
    assert trials.split is None and (table["split"] == "").all()
    assert trials.describe_trial(1).startswith("trial 1 (subject 1, session 0, run 0, onset")


def test_source_files_come_from_the_dataset_file_list(tmp_path):
    dataset = standin_dataset("BNCI2014_001", subjects=2, runs=2, events_per_run=3,
                              folder=tmp_path / "fif")
    trials = from_moabb(dataset, "MotorImagery")
    assert len(trials) == 2 * 2 * 2 * 3 and trials.n_channels == 22 and trials.sfreq == 250
    first = trials.metadata.iloc[0]
    assert first["source"].endswith("sub-1_ses-0_run-0_raw.fif")
    last = trials.metadata.iloc[-1]
    assert last["source"].endswith("sub-2_ses-1_run-1_raw.fif")
    assert "file" in trials.describe_trial(0) and "sub-1_ses-0_run-0_raw.fif" in \
        trials.describe_trial(0)
    assert trials.provenance["n_files"] == 8


def test_moabb_spec_reads_paradigm_options_and_records_a_band():
    spec = "moabb:FakeDataset?paradigm=MotorImagery&subjects=1,2&tmax=2"
    trials = load_dataset(spec)
    assert trials.name == spec
    assert sorted(set(trials.subject)) == ["1", "2"]
    assert trials.n_times == 2 * 128 + 1           # 0-2 s, MNE keeps the end sample
    assert trials.band is None                     # no MOABB filter unless fmin/fmax are given
    filtered = load_dataset(spec + "&fmin=8&fmax=30")
    assert (filtered.band.l_freq, filtered.band.h_freq) == (8.0, 30.0)
    assert "IIR Butterworth order 4" in filtered.band.method
    power = np.abs(np.fft.rfft(filtered.X, axis=-1)).mean(axis=(0, 1))
    freqs = np.fft.rfftfreq(filtered.n_times, 1 / 128)
    assert power[freqs < 3].mean() < 0.2 * power[(freqs > 10) & (freqs < 25)].mean()
    ranged = load_dataset("moabb:FakeDataset?subjects=1-3&tmax=1")
    assert sorted(set(ranged.subject)) == ["1", "2", "3"]


def test_a_paradigm_object_keeps_its_band_and_is_recorded():
    trials = from_moabb(_fake(n_subjects=1), MotorImagery())    # MOABB's default 8-32 Hz
    assert (trials.band.l_freq, trials.band.h_freq) == (8.0, 32.0)
    assert trials.band.by == "MOABB MotorImagery"
    assert trials.provenance["paradigm_options"]["filters"] == [[8, 32]]


def test_unknown_dataset_paradigm_option_event_and_subject_are_named():
    with pytest.raises(ValueError, match=r"Unknown MOABB dataset 'BNCI2014_0001'.*BNCI2014_001"):
        load_dataset("moabb:BNCI2014_0001")
    with pytest.raises(ValueError, match=r"Unknown MOABB paradigm 'MotorImaginery'"):
        load_dataset("moabb:FakeDataset?paradigm=MotorImaginery")
    with pytest.raises(ValueError, match=r"MotorImagery takes no option fmiin.*fmin"):
        load_dataset("moabb:FakeDataset?paradigm=MotorImagery&fmiin=8")
    with pytest.raises(ValueError, match=r"no event 'left_hand'.*fake1, fake2, fake3"):
        load_dataset("moabb:FakeDataset?paradigm=LeftRightImagery")
    with pytest.raises(ValueError, match=r"no subject\(s\) \[12\]"):
        load_dataset("moabb:FakeDataset?subjects=1,12")
    with pytest.raises(ValueError, match="subjects must be numbers"):
        load_dataset("moabb:FakeDataset?subjects=one")
    with pytest.raises(ValueError, match="filter-bank"):
        load_dataset("moabb:FakeDataset?paradigm=FilterBankMotorImagery")
    with pytest.raises(ValueError, match="6 filter bands"):
        from_moabb(_fake(n_subjects=1), FilterBankMotorImagery())


def _record_network(monkeypatch) -> list:
    """Replace every way MOABB downloads with a recorder that fails the call."""
    calls = []

    def fail(*args, **kwargs):
        calls.append(args[:1])
        raise AssertionError("a download was attempted")

    for owner, name in ((pooch, "retrieve"), (moabb_download, "retrieve"),
                        (moabb_download, "nemar_dl"), (moabb_download, "nemar_sourcedata_dl"),
                        (moabb_download, "data_path")):
        monkeypatch.setattr(owner, name, fail)
    import requests
    monkeypatch.setattr(requests.Session, "request", fail)
    return calls


def test_missing_data_stops_with_folder_and_command_and_never_downloads(monkeypatch,
                                                                        empty_mne_data):
    calls = _record_network(monkeypatch)
    with pytest.raises(MissingDataError) as caught:
        load_dataset("moabb:BNCI2014_001?paradigm=LeftRightImagery&subjects=1,2")
    err = caught.value
    assert err.dataset == "moabb:BNCI2014_001"
    assert err.command == "neurofm datasets download moabb:BNCI2014_001"
    assert err.folder.startswith(str(empty_mne_data))
    assert "A01T.mat" in str(err) and err.command in str(err)
    assert calls == []
    # the guard is lifted afterwards: the recorders are back in place
    assert pooch.retrieve.__name__ == "fail"


def test_probe_on_missing_moabb_data_prints_one_error(monkeypatch, capsys, tmp_path,
                                                      empty_mne_data):
    calls = _record_network(monkeypatch)
    code = main(["probe", "--model", "criss_cross_small", "--data",
                 "moabb:BNCI2014_001?paradigm=MotorImagery", "--out", str(tmp_path / "out")])
    assert code == 2 and calls == []
    err = capsys.readouterr().err
    assert err.count("error:") == 1
    assert "neurofm datasets download moabb:BNCI2014_001" in err and str(empty_mne_data) in err


def test_licence_datasets_need_accept():
    assert not needs_licence(BNCI2014_001())
    assert download_command("BNCI2014_001", BNCI2014_001()) == \
        "neurofm datasets download moabb:BNCI2014_001"

    class LicensedFake(FakeDataset):
        def data_path(self, subject, path=None, force_update=False, update_path=None,
                      verbose=None, accept=False):
            return None

    licensed = LicensedFake(n_subjects=1, code="LicensedFake")
    assert needs_licence(licensed)
    assert download_command("LicensedFake", licensed).endswith("--accept")
    with pytest.raises(ValueError, match="--accept"):
        download_moabb(licensed, "LicensedFake")
    assert download_moabb(licensed, "LicensedFake", accept=True) == {1: []}


def test_datasets_download_command(capsys):
    assert main(["datasets", "download", "moabb:FakeDataset?subjects=1,2"]) == 0
    assert "FakeDataset: 2 subject(s), 0 file(s) on disk." in capsys.readouterr().out
    assert main(["datasets", "download", "aeon:FingerMovements"]) == 2
    assert "Only MOABB data sets are downloaded" in capsys.readouterr().err


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "moabb", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'neurofm\[moabb\]'"):
        load_dataset("moabb:BNCI2014_001")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["datasets", "download", "moabb:BNCI2014_001"])
    assert code == 2


def test_files_in_moabbs_nemar_store_count_as_on_disk(monkeypatch, empty_mne_data):
    calls = _record_network(monkeypatch)
    store = empty_mne_data / "NEMAR" / BNCI2014_001.nemar_id / "sourcedata"
    store.mkdir(parents=True)
    for name in ("A01T.mat", "A01E.mat"):
        (store / name).write_bytes(b"session file of subject 1")
    files = check_moabb_files(BNCI2014_001(), [1], name="BNCI2014_001")
    assert [f.name for f in files[1]] == ["A01T.mat", "A01E.mat"]
    assert all(f.is_file() and str(f).startswith(str(empty_mne_data)) for f in files[1])
    with pytest.raises(MissingDataError, match="A02T.mat"):
        check_moabb_files(BNCI2014_001(), [2], name="BNCI2014_001")
    assert calls == []
