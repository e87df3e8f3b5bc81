"""braindecode data sets as trial sets: the same TUAB look-alike through
``braindecode:TUHAbnormal`` and ``tuab:`` gives the same trials and groups; braindecode's windows
too; no braindecode class downloads."""

import mne
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("braindecode.datasets")

from braindecode.datasets import TUHAbnormal
from braindecode.preprocessing import create_fixed_length_windows

from neurofm.datasets import MissingDataError, from_braindecode, load_dataset
from neurofm.datasets.recordings import RecordingWindows

pytestmark = [pytest.mark.filterwarnings("ignore:.*skipped .* recording"),
              pytest.mark.filterwarnings("ignore::UserWarning:braindecode.*"),
              pytest.mark.filterwarnings("ignore:Expected 2993 files")]
KEY = ["source", "onset", "label", "subject", "session", "run", "split"]


def _rows(trials) -> pd.DataFrame:
    return trials.metadata[KEY].sort_values(["source", "onset"]).reset_index(drop=True)


def test_tuab_through_braindecode_gives_the_same_trials_and_groups(tuab_root):
    ours = load_dataset(f"tuab:{tuab_root}")
    theirs = load_dataset(f"braindecode:TUHAbnormal?path={tuab_root}&on_missing_files=warn")
    assert isinstance(theirs.signals, RecordingWindows)
    pd.testing.assert_frame_equal(_rows(ours), _rows(theirs))
    assert theirs.class_names == ours.class_names and theirs.sensors.names == ours.sensors.names
    order = np.lexsort((theirs.metadata["onset"], theirs.metadata["source"]))
    mine = np.lexsort((ours.metadata["onset"], ours.metadata["source"]))
    np.testing.assert_array_equal(theirs.X[order], ours.X[mine])
    # both skip the recording that lacks a channel, for the same reason
    assert [s["reason"] for s in theirs.provenance["skipped_recordings"]] == \
        [s["reason"] for s in ours.provenance["skipped_recordings"]]
    assert set(theirs.session) == {"s001"} and set(theirs.metadata["run"]) == {"t000"}


def test_braindecode_refuses_a_partial_tree_unless_told(tuab_root):
    with pytest.raises(ValueError, match="on_missing_files=warn"):
        load_dataset(f"braindecode:TUHAbnormal?path={tuab_root}")
    with pytest.raises(ValueError, match="has no parameter 'montag'"):
        load_dataset(f"braindecode:TUHAbnormal?path={tuab_root}&montag=tcp16")
    with pytest.raises(ValueError, match="braindecode has no data set 'TUHAbnorm'"):
        load_dataset(f"braindecode:TUHAbnorm?path={tuab_root}")


def test_from_braindecode_reads_ready_windows_and_preloaded_recordings(tuab_root):
    concat = TUHAbnormal(str(tuab_root), on_missing_files="warn", n_jobs=1)
    ours = load_dataset(f"tuab:{tuab_root}")
    windows = create_fixed_length_windows(
        concat, window_size_samples=2500, window_stride_samples=2500, drop_last_window=True,
        targets_from="metadata")
    trials = from_braindecode(windows, montage="tcp16", name="windows")
    pd.testing.assert_frame_equal(_rows(trials), _rows(ours))
    # a recording braindecode changed in memory is read from memory, not from its file
    for ds in concat.datasets:
        ds.raw.load_data(verbose="error")
        ds.raw.apply_function(lambda x: 2 * x, verbose="error")
    doubled = from_braindecode(concat, window=10.0, montage="tcp16", name="in memory")
    assert not isinstance(doubled.signals, RecordingWindows)
    assert doubled.provenance["in_memory"]
    pd.testing.assert_frame_equal(_rows(doubled), _rows(ours))
    a = np.lexsort((doubled.metadata["onset"], doubled.metadata["source"]))
    b = np.lexsort((ours.metadata["onset"], ours.metadata["source"]))
    np.testing.assert_allclose(doubled.X[a], 2 * ours.X[b], rtol=1e-5, atol=1e-12)


def test_braindecode_classes_that_download_are_checked_first(tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("braindecode tried to download")

    import braindecode.datasets.sleep_physionet as sleep_module
    import pooch

    monkeypatch.setattr(sleep_module, "fetch_data", no_download)
    monkeypatch.setattr(pooch, "retrieve", no_download)
    monkeypatch.setattr(mne.datasets, "fetch_dataset", no_download)
    monkeypatch.setenv("PHYSIONET_SLEEP_PATH", str(tmp_path))
    monkeypatch.setattr(mne, "get_config", lambda key, default=None, **kw:
                        str(tmp_path) if key == "PHYSIONET_SLEEP_PATH" else default)
    with pytest.raises(MissingDataError, match=r"braindecode:SleepPhysionet is not on disk: "
                                               r"looked in .*physionet-sleep-data \(missing: "
                                               r"SC4001E0-PSG.edf.*sleep-edf:PATH"):
        load_dataset("braindecode:SleepPhysionet?subject_ids=0&recording_ids=1")
    with pytest.raises(MissingDataError, match="pass root=PATH.*chbmit:PATH"):
        load_dataset("braindecode:CHBMIT")
