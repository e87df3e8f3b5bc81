"""Discovery: TUEG trees, BIDS names, folders, path lists, mixed-case and non-ASCII names."""

import pytest

from neurofm.corpus import discover_sources
from neurofm.corpus.discover import subject_session


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_tueg_tree_with_mixed_case_and_non_ascii(tmp_path):
    a = touch(tmp_path / "edf/000/aaaaaaaa/s001_2015_01_01/01_tcp_ar/aaaaaaaa_s001_t000.edf")
    touch(tmp_path / "edf/000/aaaaaaab/s002_2015_01_01/02_tcp_le/aaaaaaab_s002_t001.EDF")
    touch(tmp_path / "edf/001/ünï/récording.Edf")
    touch(tmp_path / "edf/000/aaaaaaaa/s001_2015_01_01/01_tcp_ar/notes.txt")
    touch(tmp_path / "edf/.hidden/x.edf")
    files = discover_sources(tmp_path)
    assert [f.relpath for f in files] == [
        "edf/000/aaaaaaaa/s001_2015_01_01/01_tcp_ar/aaaaaaaa_s001_t000.edf",
        "edf/000/aaaaaaab/s002_2015_01_01/02_tcp_le/aaaaaaab_s002_t001.EDF",
        "edf/001/ünï/récording.Edf",
    ]
    assert files[0].path == a and (files[0].subject, files[0].session) == ("aaaaaaaa", "s001")
    assert (files[1].subject, files[1].session) == ("aaaaaaab", "s002")
    assert (files[2].subject, files[2].session) == ("récording", None)


def test_bids_root_skips_sidecars_and_derivatives(tmp_path):
    touch(tmp_path / "dataset_description.json")
    touch(tmp_path / "sub-01/ses-02/eeg/sub-01_ses-02_task-rest_eeg.vhdr")
    touch(tmp_path / "sub-01/ses-02/eeg/sub-01_ses-02_task-rest_eeg.eeg")
    touch(tmp_path / "sub-01/ses-02/eeg/sub-01_ses-02_task-rest_channels.tsv")
    touch(tmp_path / "sub-02/meg/sub-02_task-rest_meg.fif")
    touch(tmp_path / "derivatives/clean/sub-01_task-rest_eeg.fif")
    touch(tmp_path / "sub-02/meg/sub-02_task-rest-epo.fif")
    files = discover_sources(tmp_path)
    assert [(f.relpath, f.subject, f.session) for f in files] == [
        ("sub-01/ses-02/eeg/sub-01_ses-02_task-rest_eeg.vhdr", "sub-01", "ses-02"),
        ("sub-02/meg/sub-02_task-rest_meg.fif", "sub-02", None),
    ]


def test_text_list_and_several_sources(tmp_path):
    a = touch(tmp_path / "data/a.edf")
    touch(tmp_path / "data/b.bdf")
    listing = tmp_path / "data/files.txt"
    listing.write_text(f"# my files\n{a}\n\nb.bdf\n", encoding="utf-8")
    assert [f.relpath for f in discover_sources(listing)] == ["a.edf", "b.bdf"]
    other = touch(tmp_path / "more/c.edf").parent
    both = discover_sources([tmp_path / "data", other])
    assert [f.relpath for f in both] == ["data/a.edf", "data/b.bdf", "more/c.edf"]
    listing.write_text("missing.edf\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="line 1: missing.edf does not exist"):
        discover_sources(listing)


def test_errors_name_the_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover_sources(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No recordings found"):
        discover_sources(tmp_path / "empty")


def test_subject_session_parsing():
    assert subject_session("x/00000258_s002_t000.edf") == ("00000258", "s002")
    assert subject_session("sub-P7_task-x_eeg.edf") == ("sub-P7", None)
    assert subject_session("rec.fif.gz") == ("rec", None)
