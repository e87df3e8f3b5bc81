"""MNE montages by name: old/new spellings, head-frame positions equal to raw.set_montage."""

import warnings

import mne
import numpy as np
import pytest

from neurofm.sensors import get_montage, mni_to_head, montage_name, montage_positions_head


@pytest.mark.parametrize(
    ("old", "new"), [("standard_1020", "colin27_1020"), ("standard_1005", "colin27_1005")]
)
def test_deprecated_and_current_names_give_identical_positions_without_warnings(old, new):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any FutureWarning from MNE fails the test
        old_pos = montage_positions_head(old)
        new_pos = montage_positions_head(new)
        old_montage = get_montage(old)
    assert montage_name(old) == new
    assert old_pos.keys() == new_pos.keys()
    assert old_montage.ch_names == get_montage(new).ch_names
    for name in new_pos:
        np.testing.assert_array_equal(old_pos[name], new_pos[name])


@pytest.mark.parametrize(
    "name", ["colin27_1005", "colin27_1020", "biosemi64", "GSN-HydroCel-129", "easycap-M1"]
)
def test_positions_equal_raw_set_montage(name):
    ours = montage_positions_head(name)
    channels = list(get_montage(name).ch_names)
    raw = mne.io.RawArray(np.zeros((len(channels), 10)),
                          mne.create_info(channels, 100.0, "eeg"), verbose="error")
    raw.set_montage(name)
    assert len(ours) == len(channels)
    for ch in raw.info["chs"]:
        np.testing.assert_allclose(ours[ch["ch_name"]], ch["loc"][:3], atol=1e-6)


def test_names_are_case_insensitive_and_unknown_names_list_the_choices():
    assert montage_name("BIOSEMI64") == "biosemi64"
    with pytest.raises(ValueError, match=r"Unknown montage 'no_such_cap'.*colin27_1005.*biosemi64"):
        montage_name("no_such_cap")


def test_names_subset_leaves_out_absent_electrodes():
    pos = montage_positions_head("colin27_1020", ["Cz", "Fp1", "NotAnElectrode"])
    assert list(pos) == ["Cz", "Fp1"]
    pos["Cz"][:] = 0  # returned arrays are copies: the cache must not change
    assert np.any(montage_positions_head("colin27_1020", ["Cz"])["Cz"] != 0)


def test_digmontage_in_head_frame_is_used_as_given():
    xyz = {"A": np.array([0.01, 0.02, 0.09]), "B": np.array([-0.03, 0.0, 0.08])}
    montage = mne.channels.make_dig_montage(xyz, coord_frame="head")
    assert get_montage(montage) is montage
    pos = montage_positions_head(montage)
    for name, value in xyz.items():
        np.testing.assert_allclose(pos[name], value, atol=1e-9)


def test_digmontage_in_mni_space_is_mapped_into_head_frame():
    xyz = np.array([[-0.03, 0.01, 0.0], [0.02, -0.04, 0.05]])
    montage = mne.channels.make_dig_montage(dict(zip(["L1", "L2"], xyz)), coord_frame="mni_tal")
    pos = montage_positions_head(montage)
    np.testing.assert_allclose(np.stack([pos["L1"], pos["L2"]]), mni_to_head(xyz), atol=1e-9)


def test_default_lookup_has_o9_o10_from_the_1020_montage():
    import mne

    from neurofm.sensors import resolve_sensors

    names = ["O9", "O10", "Oz"]
    info = mne.create_info(names, 200.0, "eeg")
    layout = resolve_sensors(info)
    ref = mne.create_info(names, 200.0, "eeg")
    ref.set_montage(get_montage("colin27_1020"))
    expected = np.array([ch["loc"][:3] for ch in ref["chs"]])
    np.testing.assert_allclose(layout.pos, expected, atol=1e-6)
