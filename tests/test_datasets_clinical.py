"""The clinical loaders (tuab:, tuev:, chbmit:, sleep-edf:, seed-v:) on look-alike releases
written from simulated recordings: labels, the papers' splits, montages and positions, skipped
recordings with their reasons, no downloads."""

import sys

import mne
import numpy as np
import pandas as pd
import pytest

from neurofm.datasets import MissingDataError, load_dataset
from neurofm.datasets import seed_v as seed_v_loader
from neurofm.datasets.chbmit import read_summary, window_labels
from neurofm.datasets.clinical_standins import write_seed_v
from neurofm.datasets.montages import MontageError, montage_layout, resolve_montage
from neurofm.datasets.recordings import RecordingWindows
from neurofm.datasets.tuh import official_split, read_rec, tuh_codes
from neurofm.sensors.montages import montage_positions_head
from tests.clinical_trees import TUEV_INCOMPLETE

pytestmark = pytest.mark.filterwarnings("ignore:.*skipped .* recording")


def _groups(trials, split):
    return set(trials.subject[trials.metadata["split"].to_numpy() == split])


def test_tuab_labels_windows_and_the_papers_split(tuab_root):
    trials = load_dataset(f"tuab:{tuab_root}")
    assert isinstance(trials.signals, RecordingWindows)
    assert trials.class_names == ["normal", "abnormal"]
    assert (trials.n_channels, trials.n_times, trials.sfreq) == (16, 2500, 250.0)
    meta = trials.metadata
    # every recording is 40 s: four 10-s windows from 0 s, labelled by its class folder
    for source, rows in meta.groupby("source"):
        assert rows["onset"].tolist() == [0.0, 10.0, 20.0, 30.0]
        assert set(rows["label"]) == {"abnormal" if "/abnormal/" in source else "normal"}
    assert set(meta["session"]) == {"s001"} and set(meta["run"]) == {"t000"}
    # eval subjects only in test; the incomplete eval subject is skipped with the reason
    eval_subjects = {tuh_codes(s)[0] for s in meta["source"] if "/eval/" in s}
    assert _groups(trials, "test") == eval_subjects == {"aaaaaaca", "aaaaaach"}
    skipped = trials.provenance["skipped_recordings"]
    assert [s["file"].split("/")[-1] for s in skipped] == ["aaaaaabt_s001_t000.edf"]
    assert "lacks channel(s) P7-O1, T7-P7" in skipped[0]["reason"] or \
        "lacks channel(s) T7-P7, P7-O1" in skipped[0]["reason"]
    # train subjects split 80/20 per class folder, sorted: the last of each class validates
    assert _groups(trials, "val") == {"aaaaaaar", "aaaaaabm"}
    assert _groups(trials, "train") == {"aaaaaaad", "aaaaaaak", "aaaaaaay", "aaaaaabf"}
    assert not _groups(trials, "val") & _groups(trials, "train")


def test_official_split_is_cbramods_and_keeps_train_and_val_subjects_apart():
    parts = ["train"] * 7 + ["eval"]
    subjects = ["e", "a", "d", "c", "b", "x", "a", "z"]
    labels = [0, 0, 0, 0, 0, 1, 1, 0]
    split = official_split(parts, subjects, labels, val_fraction=0.2)
    # class 0: a b c d e -> int(0.8 * 5) = 4 train (a-d), e val; class 1: a x -> 1 train (a), x
    # val; a is train in both; z is eval -> test
    assert dict(zip(subjects, split)) == {"a": "train", "b": "train", "c": "train",
                                          "d": "train", "e": "val", "x": "val", "z": "test"}
    # a subject that lands in val in one class folder and train in the other stays in train
    split = official_split(["train"] * 4, ["b", "a", "a", "c"], [0, 0, 1, 1], val_fraction=0.5)
    assert list(split) == ["val", "train", "train", "val"]
    assert list(official_split(["train", "eval"], ["a", "b"], val_fraction=0)) == \
        ["train", "test"]


def test_tuab_windows_are_the_bipolar_pairs_of_the_file(tuab_root):
    trials = load_dataset(f"tuab:{tuab_root}?lazy=true")
    i = 5
    path, onset = trials.metadata["source"][i], trials.metadata["onset"][i]
    raw = mne.io.read_raw_edf(path, verbose="error")
    start = round(onset * 250)
    ref = raw.get_data(start=start, stop=start + 2500)
    names = raw.ch_names
    expected = ref[names.index("EEG FP1-REF")] - ref[names.index("EEG F7-REF")]
    np.testing.assert_allclose(trials.signals.read([i])[0, 0], expected, rtol=1e-6, atol=1e-12)
    t5, o1 = ref[names.index("EEG T5-REF")], ref[names.index("EEG O1-REF")]
    np.testing.assert_allclose(trials.signals.read([i])[0, 3], t5 - o1, rtol=1e-6, atol=1e-12)


def test_bipolar_positions_are_the_midpoints_and_referential_montages_work(tuab_root):
    layout = montage_layout("tcp16")
    assert layout.names[:2] == ["Fp1-F7", "F7-T7"] and len(layout) == 16
    pos = montage_positions_head("colin27_1005")
    for name, xyz in zip(layout.names, layout.pos):
        a, b = name.split("-")
        np.testing.assert_allclose(xyz, (pos[a] + pos[b]) / 2, atol=1e-12)
    assert set(layout.pos_source) == {"bipolar:colin27_1005"}
    ref = load_dataset(f"tuab:{tuab_root}?montage=ref19")
    assert ref.sensors.names[:3] == ["Fp1", "Fp2", "F3"] and ref.n_channels == 19
    np.testing.assert_allclose(ref.sensors.pos[0], pos["Fp1"], atol=1e-12)
    tcp22 = load_dataset(f"tuab:{tuab_root}?montage=tcp22")
    assert tcp22.n_channels == 22 and tcp22.sensors.names[8] == "A1-T7"
    # the incomplete subject lacks T5, which ref19 needs as well
    assert len(ref.provenance["skipped_recordings"]) == 1


def test_montage_resolution_takes_recorded_pairs_or_derives_them():
    chb = ["FP1-F7", "F7-T7", "T7-P7", "P7-O1", "FP1-F3", "F3-C3", "C3-P3", "P3-O1", "FP2-F4",
           "F4-C4", "C4-P4", "P4-O2", "FP2-F8", "F8-T8", "T8-P8-0", "P8-O2", "FZ-CZ", "T8-P8-1"]
    derivation = resolve_montage(chb, "tcp16")
    assert derivation.picks[6] == "T8-P8-0"           # the first of the repeated pair
    np.testing.assert_array_equal(derivation.matrix, np.eye(16))
    tuh = [f"EEG {n}-LE" for n in ("FP1", "F7", "T3", "T5", "O1")]
    with pytest.raises(MontageError, match=r"lacks channel\(s\) Fp2-F8"):
        resolve_montage(tuh, "tcp16")
    # linked-ear labels of TUH's 02_tcp_le folder: the pairs are derived from them
    sleep = resolve_montage(["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"], "sleep")
    assert sleep.picks == ("EEG Fpz-Cz", "EEG Pz-Oz") and sleep.names == ("Fpz-Cz", "Pz-Oz")
    derived = resolve_montage([*tuh, "EEG CZ-LE", "EEG FPZ-LE"], "sleep_fpz")
    assert derived.picks == ("EEG FPZ-LE", "EEG CZ-LE")
    np.testing.assert_array_equal(derived.matrix, [[1.0, -1.0]])
    with pytest.raises(ValueError, match="Unknown montage 'tcp18'"):
        resolve_montage(tuh, "tcp18")


def test_tuev_trials_labels_and_split(tuev_root):
    trials = load_dataset(f"tuev:{tuev_root}")
    assert trials.class_names == ["spsw", "gped", "pled", "eyem", "artf", "bckg"]
    assert trials.n_times == 1250                                  # 5 s at 250 Hz
    meta = trials.metadata
    for source, rows in meta.groupby("source"):
        rec = read_rec(source.replace(".edf", ".rec"))
        kept = rec[rec["start"] >= 2]
        assert rows["onset"].tolist() == (kept["start"] - 2).tolist()
        assert rows["label"].tolist() == [trials.class_names[c - 1] for c in kept["code"]]
    # the annotation at 1 s would start its trial at -1 s: dropped, with the reason
    assert len(trials.dropped) == 6 and set(trials.dropped["onset"]) == {-1.0}
    assert trials.dropped["reason"].str.contains("reaches past the recording").all()
    assert _groups(trials, "test") == {"000", "001"}
    # training subjects: the incomplete one is skipped; of the 4 others, sorted, the last is val
    assert [s["file"].split("/")[-1] for s in trials.provenance["skipped_recordings"]] == \
        [f"{next(iter(TUEV_INCOMPLETE))}_00000001.edf"]
    assert _groups(trials, "train") == {"aaaaaaaq", "aaaaaabb", "aaaaaabm"}
    assert _groups(trials, "val") == {"aaaaaabx"}
    assert set(meta["session"]) == {"1"}


def test_rec_files_and_tuh_codes_are_parsed(tmp_path):
    rec = tmp_path / "x.rec"
    rec.write_text("3,12.0000,13.0000,2\n\n14,0.5,1.5,6\n")
    table = read_rec(rec)
    assert table.to_dict("list") == {"channel": [3, 14], "start": [12.0, 0.5],
                                     "stop": [13.0, 1.5], "code": [2, 6]}
    rec.write_text("3,12.0,13.0\n")
    with pytest.raises(ValueError, match=r"x.rec, line 1: '3,12.0,13.0' is not"):
        read_rec(rec)
    assert tuh_codes("a/aaaaaaav_s004_t001.edf") == ("aaaaaaav", "s004", "t001")
    assert tuh_codes("edf/train/aaaaaaar/aaaaaaar_00000012.edf") == ("aaaaaaar", "12", "0")
    assert tuh_codes("edf/eval/032/pled_032_a_2.edf") == ("032", "1", "2")


def test_chbmit_summary_labels_and_skipped_files(chbmit_root):
    assert read_summary(chbmit_root / "chb01" / "chb01-summary.txt") == {
        "chb01_01.edf": [(22.0, 41.0)], "chb01_02.edf": []}
    trials = load_dataset(f"chbmit:{chbmit_root}")
    assert trials.class_names == ["background", "seizure"] and trials.n_times == 2560
    assert set(trials.subject) == {"chb01", "chb21", "chb23"}
    skipped = trials.provenance["skipped_recordings"]
    assert sorted(s["file"].split("/")[-1] for s in skipped) == ["chb03_01.edf", "chb03_02.edf"]
    assert all("lacks channel(s) P8-O2" in s["reason"] for s in skipped)
    rows = trials.metadata[trials.metadata["source"].str.endswith("chb01_01.edf")]
    # six 10-s windows; the seizure's start (22 s) falls in 20-30, its end (41 s) in 40-50
    plain = rows.iloc[:6]
    assert plain["onset"].tolist() == [0, 10, 20, 30, 40, 50]
    assert plain["label"].tolist() == ["background"] * 2 + ["seizure", "background",
                                                              "seizure", "background"]
    # extra seizure windows every 5 s from 1 s before the start while they fit in the file
    extra = rows.iloc[6:]
    assert (extra["label"] == "seizure").all()
    np.testing.assert_allclose(extra["onset"], (22 * 256 - 1 - 256 + 1280 * np.arange(5)) / 256)
    assert (trials.metadata[trials.metadata["source"].str.endswith("_02.edf")]["label"]
            == "background").all()
    assert len(load_dataset(f"chbmit:{chbmit_root}?exclude=chb21,chb23&seizure_stride=0")) == 12


def test_chbmit_label_rules():
    onsets = np.arange(6) * 10.0
    seizure = [(12.0, 45.0)]
    # the paper's rule: the start or end sample strictly inside; 20-30 and 30-40 lie inside
    assert window_labels(onsets, 10, 256, seizure, "paper").tolist() == [0, 1, 0, 0, 1, 0]
    assert window_labels(onsets, 10, 256, seizure, "overlap").tolist() == [0, 1, 1, 1, 1, 0]


def test_sleep_edf_stages_and_wake_trimming(sleep_edf_root):
    trials = load_dataset(f"sleep-edf:{sleep_edf_root}")
    assert trials.class_names == ["W", "N1", "N2", "N3", "REM"]
    assert trials.sensors.names == ["Fpz-Cz", "Pz-Oz"] and trials.n_times == 3000
    assert sorted(set(trials.subject)) == ["0", "1", "2"] and set(trials.session) == {"1"}
    hyp = mne.read_annotations(sleep_edf_root / "SC4001EC-Hypnogram.edf")
    expected = {"Sleep stage W": "W", "Sleep stage 1": "N1", "Sleep stage 2": "N2",
                "Sleep stage 3": "N3", "Sleep stage 4": "N3", "Sleep stage R": "REM"}
    scored = [(o, expected[d]) for o, d in zip(hyp.onset, hyp.description) if d in expected]
    rows = trials.metadata[trials.subject == "0"]
    assert list(zip(rows["onset"], rows["label"])) == scored      # 3 and 4 -> N3; ? dropped
    assert trials.provenance["epochs_left_out"] == {
        "not a sleep stage (Sleep stage ?)": 3, "not a sleep stage (Movement time)": 3}
    # keep 1 minute of wake before the first and after the last sleep epoch
    trimmed = load_dataset(f"sleep-edf:{sleep_edf_root}?wake_minutes=1&subjects=0")
    asleep = [o for o, s in scored if s != "W"]
    kept = [(o, s) for o, s in scored if s != "W" or min(asleep) - 60 <= o <= max(asleep) + 60]
    assert list(zip(trimmed.metadata["onset"], trimmed.metadata["label"])) == kept
    assert trimmed.metadata["onset"].min() == min(asleep) - 60
    assert trimmed.provenance["epochs_left_out"]["wake more than 1 min from sleep"] == \
        len(scored) - len(kept) >= 4
    fpz = load_dataset(f"sleep-edf:{sleep_edf_root}?montage=sleep_fpz&subjects=1-2")
    assert fpz.n_channels == 1 and sorted(set(fpz.subject)) == ["1", "2"]


def test_sleep_edf_psg_without_hypnogram_is_skipped(tmp_path, sleep_edf_root):
    for name in ("SC4001E0-PSG.edf", "SC4001EC-Hypnogram.edf", "SC4011E0-PSG.edf"):
        (tmp_path / name).symlink_to(sleep_edf_root / name)
    with pytest.warns(UserWarning, match="skipped 1 recording"):
        trials = load_dataset(f"sleep-edf:{tmp_path}")
    assert set(trials.subject) == {"0"}
    assert trials.provenance["skipped_recordings"] == [
        {"file": str(tmp_path / "SC4011E0-PSG.edf"),
         "reason": "no hypnogram SC4011*-Hypnogram.edf beside it"}]


def test_seed_v_clips_labels_and_split(tmp_path, monkeypatch):
    # the real clips run to 56 min; the test shortens the clip table, not the loader
    clips = tuple((4 * k + 1, 4 * k + 3) for k in range(15))
    monkeypatch.setattr(seed_v_loader, "TRIAL_SECONDS", {s: clips for s in "123"})
    write_seed_v(tmp_path, subjects=(1, 2), sessions=("1", "2"), seconds=62.0)
    (tmp_path / "EEG_raw" / "2_2_20180804.edf").rename(tmp_path / "EEG_raw" / "2_x.edf")
    trials = load_dataset(f"seed-v:{tmp_path}")
    names = list(seed_v_loader.SEED_V_CLASSES)
    assert trials.class_names == names and trials.n_times == 200
    assert trials.n_channels == 60 and not {"CB1", "CB2", "M1", "VEO"} & set(trials.sensors.names)
    meta = trials.metadata
    assert len(meta) == 3 * 15 * 2                                  # 3 files x 15 clips x 2 s
    assert sorted(set(zip(meta["subject"], meta["session"]))) == [("1", "1"), ("1", "2"),
                                                                  ("2", "1")]
    for session in ("1", "2"):
        rows = meta[(meta["subject"] == "1") & (meta["session"] == session)]
        assert rows["run"].tolist()[:4] == ["1", "1", "2", "2"]
        assert rows["onset"].tolist()[:4] == [1.0, 2.0, 5.0, 6.0]
        assert [names[seed_v_loader.SESSION_LABELS[session][int(r) - 1]]
                for r in rows["run"]] == rows["label"].tolist()
        split = rows.groupby("run")["split"].first()
        assert [split[str(c)] for c in range(1, 16)] == ["train"] * 5 + ["val"] * 5 + \
            ["test"] * 5


@pytest.mark.parametrize("spec, dataset", [("tuab", "TUAB"), ("tuev", "TUEV"),
                                           ("chbmit", "CHB-MIT"), ("sleep-edf", "Sleep-EDF"),
                                           ("seed-v", "SEED-V")])
def test_missing_release_names_the_folder_and_layout_and_downloads_nothing(
        spec, dataset, tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("a loader tried to download")

    import pooch
    from mne.datasets.sleep_physionet import age

    monkeypatch.setattr(pooch, "retrieve", no_download)
    monkeypatch.setattr(age, "fetch_data", no_download)
    monkeypatch.setattr(mne.datasets, "fetch_dataset", no_download)
    with pytest.raises(MissingDataError, match=f"{dataset} is not on disk: looked in "
                                               f"{tmp_path}.*expected .*obtain it from"):
        load_dataset(f"{spec}:{tmp_path}")


def test_loaders_do_not_import_braindecode(tuab_root):
    code = ("import sys; from neurofm.datasets import load_dataset; "
            f"t = load_dataset('tuab:{tuab_root}'); "
            "assert 'braindecode' not in sys.modules and 'torchaudio' not in sys.modules, "
            "sorted(m for m in sys.modules if m.startswith(('braindecode', 'torchaudio')))")
    import subprocess

    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def test_lazy_trial_sets_stay_readers_and_read_nothing_to_check_for_nan(tuab_root, monkeypatch):
    trials = load_dataset(f"tuab:{tuab_root}?lazy=true")
    assert trials.lazy and trials.signals.finite

    def no_read(*args, **kwargs):
        raise AssertionError("read")

    monkeypatch.setattr(RecordingWindows, "read", no_read)
    assert trials.nonfinite().size == 0
    part = trials.subset(np.arange(3, 9)).crop(2.0, 6.0)
    assert isinstance(part.signals, RecordingWindows) and part.lazy
    assert part.n_times == 1000
    np.testing.assert_allclose(part.metadata["onset"], trials.metadata["onset"][3:9] + 2.0)
    monkeypatch.undo()
    np.testing.assert_array_equal(part.X, trials.X[3:9, :, 500:1500])
    assert pd.Series(trials.metadata["source"]).str.contains("/train/|/eval/").all()
