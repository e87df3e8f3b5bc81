"""resolve_sensors: positions from file / montage / user, MEG orientations, iEEG in MNI space,
unknown and duplicate channels, channel permutations."""

import warnings

import mne
import numpy as np
import pytest

from neurofm.sensors import (
    ChannelKind,
    DuplicateChannelError,
    UnknownChannelError,
    mni_to_head,
    montage_positions_head,
    normalise_channel_name,
    resolve_sensors,
)

TUH_LABELS = ["EEG FP1-REF", "EEG FP2-REF", "EEG T3-REF", "EEG T4-REF", "EEG T5-REF",
              "EEG T6-REF", "EEG CZ-REF", "EEG A1-REF", "EEG FZ-REF", "EEG O1-REF"]


def _raw(names, types="eeg", sfreq=100.0, n_times=200):
    info = mne.create_info(names, sfreq, types)
    data = np.random.default_rng(0).normal(scale=1e-5, size=(len(names), n_times))
    return mne.io.RawArray(data, info, verbose="error")


def _set_montage_quietly(raw, montage):
    with warnings.catch_warnings():  # MNE warns about missing fiducials of MNI montages
        warnings.simplefilter("ignore", RuntimeWarning)
        raw.set_montage(montage, verbose="error")


@pytest.fixture(scope="module")
def tuh_edf(tmp_path_factory):
    """A TUH-style EDF: TUH labels, one EKG channel recorded as EEG, no positions."""
    raw = _raw(TUH_LABELS + ["EEG EKG1-REF"], n_times=400)
    path = tmp_path_factory.mktemp("tuh") / "tuh_style.edf"
    mne.export.export_raw(path, raw, fmt="edf", verbose="error")
    return path


def test_tuh_edf_positions_match_mne_montage(tuh_edf):
    raw = mne.io.read_raw_edf(tuh_edf, preload=False, verbose="error")
    layout = resolve_sensors(raw.info, on_unknown="drop")
    assert layout.names == TUH_LABELS
    assert layout.dropped == ["EEG EKG1-REF"]
    assert layout.canonical == ["Fp1", "Fp2", "T7", "T8", "P7", "P8", "Cz", "A1", "Fz", "O1"]
    assert set(layout.pos_source) == {"montage:colin27_1005"}
    reference = _raw(layout.canonical)
    reference.set_montage("colin27_1005")
    expected = np.stack([ch["loc"][:3] for ch in reference.info["chs"]])
    np.testing.assert_allclose(layout.pos, expected, atol=1e-6)
    assert np.all(layout.ori == 0)
    assert np.all(layout.kinds == ChannelKind.EEG)


def test_unknown_channels_raise_an_error_that_lists_them_and_the_fix(tuh_edf):
    raw = mne.io.read_raw_edf(tuh_edf, preload=False, verbose="error")
    raw.rename_channels({"EEG O1-REF": "EEG T1-REF"})
    with pytest.raises(UnknownChannelError) as err:
        resolve_sensors(raw.info)
    assert err.value.names == ["EEG T1-REF", "EEG EKG1-REF"]
    message = str(err.value)
    for needle in ("'EEG T1-REF'", "'EEG EKG1-REF'", "montage=", "positions=",
                   "on_unknown='drop'"):
        assert needle in message
    assert isinstance(err.value, ValueError)


def test_drop_mode_keeps_known_channels_in_order_and_reports_the_rest():
    layout = resolve_sensors(_raw(["Cz", "XYZ1", "Pz", "XYZ2"]).info, on_unknown="drop")
    assert layout.names == ["Cz", "Pz"]
    assert layout.dropped == ["XYZ1", "XYZ2"]
    np.testing.assert_allclose(
        layout.pos, np.stack(list(montage_positions_head("colin27_1005", ["Cz", "Pz"]).values())),
        atol=1e-6)


def test_invalid_on_unknown_is_rejected():
    with pytest.raises(ValueError, match="on_unknown must be 'raise' or 'drop'"):
        resolve_sensors(_raw(["Cz"]).info, on_unknown="ignore")


@pytest.mark.parametrize(
    "labels", [["EEG T3-REF", "EEG T7-REF", "EEG Cz-REF"], ["Fp1-0", "Fp1-1", "Cz"]]
)
def test_duplicate_electrodes_after_normalisation_are_an_error(labels):
    with pytest.raises(DuplicateChannelError, match="Duplicate channels") as err:
        resolve_sensors(_raw(labels).info)
    duplicates = next(iter(err.value.groups.values()))
    assert duplicates == labels[:2]
    assert all(repr(label) in str(err.value) for label in labels[:2])


def test_bipolar_channel_sits_at_the_midpoint_of_its_pair():
    layout = resolve_sensors(_raw(["EEG FP1-F7", "EEG T3-T5", "Cz"]).info)
    table = montage_positions_head("colin27_1005")
    np.testing.assert_allclose(layout.pos[0], (table["Fp1"] + table["F7"]) / 2, atol=1e-6)
    np.testing.assert_allclose(layout.pos[1], (table["T7"] + table["P7"]) / 2, atol=1e-6)
    assert layout.bipolar.tolist() == [True, True, False]
    assert layout.pos_source[:2] == ["bipolar:colin27_1005"] * 2
    assert layout.canonical[:2] == ["Fp1-F7", "T7-P7"]
    assert np.all(layout.kinds == ChannelKind.EEG)


def test_explicit_montage_old_name_and_other_caps():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        old = resolve_sensors(_raw(["FP1", "CZ", "T3"]).info, montage="standard_1020")
    new = resolve_sensors(_raw(["FP1", "CZ", "T3"]).info, montage="colin27_1020")
    np.testing.assert_array_equal(old.pos, new.pos)
    assert old.pos_source == ["montage:colin27_1020"] * 3
    gsn = _raw(["E1", "E2", "Cz"])
    layout = resolve_sensors(gsn.info, montage="GSN-HydroCel-129")
    gsn.set_montage("GSN-HydroCel-129")
    np.testing.assert_allclose(layout.pos, [ch["loc"][:3] for ch in gsn.info["chs"]], atol=1e-6)


@pytest.mark.parametrize("suffix", ["_raw.fif", ".set"])
def test_positions_stored_in_the_file_win_over_montages(tmp_path, suffix):
    raw = _raw(["Fp1", "Cz", "Oz"])
    raw.set_montage("biosemi64")
    path = tmp_path / f"with_positions{suffix}"
    if suffix == ".set":
        mne.export.export_raw(path, raw, verbose="error")
    else:
        raw.save(path, verbose="error")
    info = mne.io.read_raw(path, verbose="error").info
    layout = resolve_sensors(info)
    assert layout.pos_source == ["file"] * 3
    np.testing.assert_allclose(layout.pos, [ch["loc"][:3] for ch in raw.info["chs"]], atol=1e-6)
    default = resolve_sensors(_raw(["Fp1", "Cz", "Oz"]).info)
    assert not np.allclose(layout.pos, default.pos, atol=1e-4)


def test_user_positions_take_precedence_and_are_validated():
    info = _raw(["EEG FP1-REF", "MyElectrode"]).info
    layout = resolve_sensors(info, positions={"FP1": (0.01, 0.09, 0.02),
                                              "MyElectrode": [0.0, 0.0, 0.1]})
    np.testing.assert_allclose(layout.pos, [[0.01, 0.09, 0.02], [0.0, 0.0, 0.1]], atol=1e-7)
    assert layout.pos_source == ["user", "user"]
    with pytest.raises(ValueError, match=r"positions\['MyElectrode'\].*millimetres"):
        resolve_sensors(info, positions={"MyElectrode": (0.0, 0.0, 100.0)})
    with pytest.raises(ValueError, match=r"positions\['Fp1'\] must be three finite numbers"):
        resolve_sensors(info, positions={"Fp1": (0.0, np.nan, 0.1)})


def test_permuting_channels_permutes_layout_rows_and_nothing_else():
    labels = TUH_LABELS + ["EEG FP1-F7"]
    raw = _raw(labels)
    layout = resolve_sensors(raw.info)
    perm = np.random.default_rng(3).permutation(len(labels))
    shuffled = raw.copy().reorder_channels([labels[i] for i in perm])
    permuted = resolve_sensors(shuffled.info)
    assert permuted.names == [layout.names[i] for i in perm]
    assert permuted.canonical == [layout.canonical[i] for i in perm]
    assert permuted.pos_source == [layout.pos_source[i] for i in perm]
    np.testing.assert_array_equal(permuted.pos, layout.pos[perm])
    np.testing.assert_array_equal(permuted.ori, layout.ori[perm])
    np.testing.assert_array_equal(permuted.kinds, layout.kinds[perm])
    np.testing.assert_array_equal(permuted.bipolar, layout.bipolar[perm])


def test_non_brain_kinds_are_left_out_by_default_and_kinds_selects():
    raw = _raw(["Cz", "EOG1", "ECG", "Pz", "STI 014"], ["eeg", "eog", "ecg", "eeg", "stim"])
    assert resolve_sensors(raw.info).names == ["Cz", "Pz"]
    layout = resolve_sensors(raw.info, kinds=["eeg", "eog"],
                             positions={"EOG1": (0.03, 0.1, 0.0)})
    assert layout.names == ["Cz", "EOG1", "Pz"]
    assert layout.kind_labels() == ["eeg", "eog", "eeg"]


# ---------------------------------------------------------------- MEG


@pytest.fixture(scope="module")
def neuromag_info():
    info = mne.channels.read_meg_canonical_info("neuromag")
    rotation = mne.transforms.rotation(0.1, -0.2, 0.3)
    rotation[:3, 3] = [0.002, -0.01, 0.04]
    with info._unlock():
        info["dev_head_t"] = mne.transforms.Transform("meg", "head", rotation)
    return info


def test_meg_kinds_positions_and_orientations_in_head_frame(neuromag_info):
    layout = resolve_sensors(neuromag_info)
    assert len(layout) == 306
    assert (layout.kinds == ChannelKind.MEG_MAG).sum() == 102
    assert (layout.kinds == ChannelKind.MEG_GRAD).sum() == 204
    dev_head = neuromag_info["dev_head_t"]
    locs = np.stack([ch["loc"] for ch in neuromag_info["chs"]])
    np.testing.assert_allclose(layout.pos, mne.transforms.apply_trans(dev_head, locs[:, :3]),
                               atol=1e-6)
    normals = mne.transforms.apply_trans(dev_head, locs[:, 9:12], move=False)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    np.testing.assert_allclose(layout.ori, normals, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(layout.ori, axis=1), 1.0, atol=1e-6)
    assert set(layout.pos_source) == {"file"}


def test_meg_without_location_is_unknown(neuromag_info):
    info = neuromag_info.copy()
    info["chs"][0]["loc"][:] = 0
    with pytest.raises(UnknownChannelError, match="MEG 0113"):
        resolve_sensors(info)
    assert resolve_sensors(info, on_unknown="drop").dropped == ["MEG 0113"]


# ---------------------------------------------------------------- iEEG / MNI


def test_mni_to_head_round_trip_against_mne_transforms():
    import pathlib

    trans = mne.read_trans(pathlib.Path(mne.__file__).parent / "data" / "fsaverage"
                           / "fsaverage-trans.fif")
    assert trans["from"] == mne.io.constants.FIFF.FIFFV_COORD_HEAD
    mni = np.random.default_rng(1).uniform(-0.07, 0.07, size=(20, 3))
    head = mni_to_head(mni)
    np.testing.assert_allclose(mne.transforms.apply_trans(trans, head), mni, atol=1e-9)
    np.testing.assert_allclose(
        head, mne.transforms.apply_trans(mne.transforms.invert_transform(trans), mni), atol=1e-12)
    assert mni_to_head(mni[0]).shape == (3,)
    with pytest.raises(ValueError, match="millimetres"):
        mni_to_head(mni * 1000)
    with pytest.raises(ValueError, match=r"shape \[n, 3\]"):
        mni_to_head(np.zeros((4, 2)))


@pytest.mark.parametrize("frame", ["mni_tal", "mri"])
def test_ieeg_in_mni_space_is_mapped_to_head_frame(frame):
    names = ["LA1", "LA2", "G1"]
    xyz = np.array([[-0.03, 0.01, 0.0], [-0.035, 0.01, 0.0], [0.05, -0.02, 0.04]])
    raw = _raw(names, ["seeg", "seeg", "ecog"])
    _set_montage_quietly(raw, mne.channels.make_dig_montage(dict(zip(names, xyz)),
                                                             coord_frame=frame))
    layout = resolve_sensors(raw.info)
    np.testing.assert_allclose(layout.pos, mni_to_head(xyz), atol=1e-6)
    assert layout.pos_source == ["mni:fsaverage"] * 3
    assert layout.kind_labels() == ["seeg", "seeg", "ecog"]


def test_ieeg_without_positions_is_unknown_unless_given():
    info = _raw(["LA1", "LA2"], "seeg").info
    with pytest.raises(UnknownChannelError, match="'LA1', 'LA2'"):
        resolve_sensors(info, on_unknown_ieeg="raise")
    assert resolve_sensors(info, on_unknown_ieeg="drop").dropped == ["LA1", "LA2"]
    marked = resolve_sensors(info)  # the position-unknown policy (docs/sensors.md)
    assert marked.names == ["LA1", "LA2"] and marked.pos_source == ["unknown"] * 2
    assert np.isnan(marked.pos).all() and marked.position_unknown.tolist() == [True, True]
    with pytest.raises(UnknownChannelError, match="'Mystery'"):  # scalp EEG still must be placed
        resolve_sensors(_raw(["Mystery", "LA1"], ["eeg", "seeg"]).info)
    montage = mne.channels.make_dig_montage({"LA1": [0.01, 0.0, 0.05], "LA2": [0.02, 0.0, 0.05]},
                                            coord_frame="head")
    layout = resolve_sensors(info, montage=montage)
    np.testing.assert_allclose(layout.pos, [[0.01, 0.0, 0.05], [0.02, 0.0, 0.05]], atol=1e-7)
    assert layout.pos_source == ["montage:custom"] * 2


def test_bids_ieeg_electrodes_in_mni_space(tmp_path):
    mne_bids = pytest.importorskip("mne_bids")
    names = ["LA1", "LA2", "LA3"]
    xyz = np.array([[-0.03, 0.01, 0.0], [-0.035, 0.01, 0.0], [-0.04, 0.01, 0.0]])
    raw = _raw(names, "seeg", n_times=400)
    _set_montage_quietly(raw, mne.channels.make_dig_montage(dict(zip(names, xyz)),
                                                             coord_frame="mni_tal"))
    raw.info["line_freq"] = 50
    path = mne_bids.BIDSPath(subject="01", task="rest", root=tmp_path, datatype="ieeg")
    mne_bids.write_raw_bids(raw, path, format="BrainVision", allow_preload=True,
                            verbose="error")
    assert list(tmp_path.rglob("*space-fsaverage_electrodes.tsv"))
    read = mne_bids.read_raw_bids(path, verbose="error")
    layout = resolve_sensors(read.info)
    np.testing.assert_allclose(layout.pos, mni_to_head(xyz), atol=1e-6)
    assert layout.pos_source == ["mni:fsaverage"] * 3


def test_normalised_names_are_what_layout_reports():
    labels = ["EEG FP1-REF", "EEG FP1-F7"]
    layout = resolve_sensors(_raw(labels).info)
    assert layout.canonical == [normalise_channel_name(n).label for n in labels]


def test_bipolar_channel_from_file_uses_both_stored_electrodes():
    raw = _raw(["Fp1-F7", "Cz"])
    fp1, f7 = np.array([-0.03, 0.11, 0.03]), np.array([-0.07, 0.07, 0.03])
    raw.info["chs"][0]["loc"][:6] = np.concatenate([fp1, f7])
    raw.info["chs"][1]["loc"][:3] = [0.0, 0.0, 0.1]
    layout = resolve_sensors(raw.info)
    np.testing.assert_allclose(layout.pos, [(fp1 + f7) / 2, [0.0, 0.0, 0.1]], atol=1e-7)
    assert layout.pos_source == ["file", "file"] and layout.bipolar.tolist() == [True, False]


def test_errors_survive_pickling_for_worker_processes():
    import pickle

    for error in (UnknownChannelError(["X1"], "colin27_1005"),
                  DuplicateChannelError({"T7": ["EEG T3-REF", "EEG T7-REF"]})):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)


def test_meg_without_geometry_takes_it_from_the_canonical_layout(neuromag_info):
    expected = resolve_sensors(neuromag_info)
    stripped = neuromag_info.copy()
    for ch in stripped["chs"]:
        ch["loc"][:] = 0
    stripped.rename_channels(lambda name: name.replace(" ", ""))  # newer FIF spelling MEG0113
    layout = resolve_sensors(stripped, meg_system="neuromag")
    np.testing.assert_allclose(layout.pos, expected.pos, atol=1e-7)
    np.testing.assert_allclose(layout.ori, expected.ori, atol=1e-7)
    assert set(layout.pos_source) == {"meg:neuromag"}
    with pytest.raises(UnknownChannelError, match="meg_system="):
        resolve_sensors(stripped)
    with pytest.raises(ValueError, match="Unknown meg_system 'elekta'"):
        resolve_sensors(stripped, meg_system="elekta")
