"""Intracranial releases: a look-alike Omni-iEEG tree (no electrodes.tsv) and an iEEG-BIDS set
with electrodes.tsv, read by ``omni-ieeg:`` / ``ieeg-bids:`` into segment sets."""

import numpy as np
import pandas as pd
import pytest

from neurofm.datasets import load_dataset
from neurofm.datasets.ieeg import UNKNOWN, read_split
from neurofm.datasets.ieeg_standins import write_ieeg_bids, write_omni_ieeg
from neurofm.datasets.omni_ieeg import load_ieeg_bids, read_labels
from neurofm.eval.segment_eval import unit_folds

SPLITS = ["train", "train", "train", "val", "test", "test"]
OUTCOMES = (1, 0, 1, 1, -1, 1)


@pytest.fixture(scope="module")
def omni(tmp_path_factory):
    root = tmp_path_factory.mktemp("omni")
    tree = write_omni_ieeg(root, patients=6, seconds=64.0, outcomes=OUTCOMES, splits=SPLITS,
                           multicenter=(5,), low_rate=(1,), ictal=(0, 4), sleep=(2,))
    return tree, load_dataset(f"omni-ieeg:{root}?task=soz")


def expected_label(good, soz, resection, outcome):
    """The SOZ task's rule: normal (0) wins over soz; SOZ (1); else no label (-1)."""
    if outcome == 1 and resection == 0:
        return 0
    if soz == 1:
        return 1
    return -1


def test_contacts_and_labels_are_read_as_the_rule_says(omni):
    tree, data = omni
    assert data.target == "channel" and data.class_names == ["normal", "soz"]
    truth = tree.contacts.merge(tree.participants[["participant_id", "outcome"]],
                                left_on="participant", right_on="participant_id")
    truth = truth[truth["recording"].isin([r.name for r in data.recordings])]
    units = data.units.assign(recording=[data.recordings[r].name for r in data.units["rec"]])
    merged = units.merge(truth, on=["recording", "name"], suffixes=("", "_tsv"))
    assert len(merged) == len(units) == int(truth["good"].sum())
    want = [expected_label(*row) for row in
            merged[["good", "soz_tsv", "resection_tsv", "outcome_tsv"]].itertuples(index=False)]
    assert merged["label"].tolist() == want
    assert {0, 1, -1} <= set(want)
    # the participant with unknown soz on one shaft: those contacts stay unlabelled or normal
    assert (merged.loc[merged["soz_tsv"] == UNKNOWN, "label"] != 1).all()


def test_recordings_the_task_filters_out_are_skipped_and_listed(omni):
    _, data = omni
    names = [r.name for r in data.recordings]
    participants = set(data.participants)
    assert "sub-06" not in participants  # Multicenter
    assert not any("run-02" in n for n in names)  # the 500-Hz recording
    assert not any("task-ictal" in n for n in names)  # not interictal
    assert all(r.sfreq > 900 for r in data.recordings)
    filters = data.provenance["filters"]
    assert [f.split(": ")[1] for f in filters] == [  # frequency, interictal, length, dataset
        "1 recording(s) left out", "2 recording(s) left out", "0 recording(s) left out",
        "1 recording(s) left out"]


def test_bad_contacts_are_dropped_and_listed(omni):
    tree, data = omni
    bad = tree.contacts[tree.contacts["good"] == 0]
    used = {r.name for r in data.recordings}
    bad = bad[bad["recording"].isin(used)]
    assert len(bad) == len(data.recordings)  # one per recording
    dropped = set(zip(data.dropped["recording"], data.dropped["name"]))
    assert dropped == set(zip(bad["recording"], bad["name"]))
    assert (data.dropped["reason"] == "good = 0 in channels.tsv").all()
    for r in data.recordings:
        assert not set(r.layout.names) & set(bad.loc[bad["recording"] == r.name, "name"])


def test_contacts_without_electrodes_tsv_are_position_unknown(omni):
    _, data = omni
    for r in data.recordings:
        assert r.layout.position_unknown.all()
        assert len(r.layout) == 31  # 32 contacts less the bad one


def test_official_split_keeps_test_patients_out_of_training(omni):
    tree, data = omni
    (fold,) = unit_folds(data, "official")
    participants = data.participants
    train, test = set(participants[fold.train]), set(participants[fold.test])
    assert not train & test
    split = dict(zip(tree.participants["participant_id"], tree.participants["split"]))
    assert test == {p for p in set(participants) if split[p] == "test"}
    assert set(participants[fold.val]) == {p for p in set(participants) if split[p] == "val"}
    cross = unit_folds(data, "cross-subject", n_folds=2)
    for f in cross:
        assert not set(participants[f.train]) & set(participants[f.test])


def test_segments_skip_the_ends_and_training_draws_random_starts(omni):
    _, data = omni
    assert data.grid_onsets(0).tolist() == [1.0]  # 64 s: one 60-s segment after 1 s
    rng = np.random.default_rng(0)
    starts = data.training_onsets(0, rng)
    assert starts.size == 2  # 62 s usable: min(5, 62 // 30)
    assert (starts >= 1.0).all() and (starts + 60.0 <= 63.0 + 1e-9).all()


def test_recording_task_reads_the_authors_label_columns(omni):
    tree, _ = omni
    data = load_dataset(f"omni-ieeg:{tree.root}?task=ictal")
    assert data.target == "recording" and data.class_names == ["interictal", "ictal"]
    names = [data.recordings[r].name for r in data.units["rec"]]
    labels = dict(zip(names, data.units["label"]))
    assert labels and all(labels[n] == int("task-ictal" in n) for n in names)
    table = pd.read_csv(tree.root / "derivatives/datasplit/ictal_split_cross.csv")
    assert list(table.columns) == ["patient", "edf_file", "label", "split"]
    assert set(data.units["split"]) == {"train", "test"}


def test_label_and_split_files_name_bad_values(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("patient,edf_file,label,split\nsub-1,a.edf,asleep,train\n")
    with pytest.raises(ValueError, match=r"x.csv, label, row 2: 'asleep'"):
        read_labels(bad, ("awake", "sleep"))
    bad.write_text("patient,file,label\nsub-1,a.edf,sleep\n")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['edf_name'\]"):
        read_labels(bad, ("awake", "sleep"))
    split = tmp_path / "final_split.csv"
    split.write_text("patient_name,edf_name,split,frequency\nsub-1,a.edf,holdout,1000\n")
    with pytest.raises(ValueError, match="split, row 2: 'holdout'"):
        read_split(split)


def test_a_missing_release_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="Omni-iEEG"):
        load_dataset(f"omni-ieeg:{tmp_path}?task=soz")
    with pytest.raises(ValueError, match="task must be one of"):
        load_dataset(f"omni-ieeg:{tmp_path}?task=hfo")
    with pytest.raises(ValueError, match="tsk"):
        load_dataset(f"omni-ieeg:{tmp_path}?tsk=soz")


def test_ieeg_bids_with_electrodes_tsv_uses_its_coordinates(tmp_path):
    write_ieeg_bids(tmp_path, patients=1, seconds=64.0)
    data = load_ieeg_bids(tmp_path, task="soz")
    (recording,) = data.recordings
    layout = recording.layout
    assert not layout.position_unknown.any()
    assert set(layout.pos_source) == {"mni:fsaverage"}
    pos = dict(zip(layout.names, layout.pos))
    # the written MNI geometry survives: 3.5 mm between neighbours, 40 mm between shafts
    assert np.linalg.norm(pos["LA1"] - pos["LA2"]) == pytest.approx(0.0035, abs=1e-4)
    assert np.linalg.norm(pos["LA1"] - pos["RA1"]) == pytest.approx(0.04, abs=1e-3)
    assert (data.units["label"] >= 0).any()
