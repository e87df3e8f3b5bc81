"""Sensor sets and forward models of the simulator."""

import numpy as np
import pytest

from neurofm.simulate.head import head_model
from neurofm.simulate.sensor_sets import HEAD_ORIGIN, HEAD_RADIUS, RELATIVE_RADII, make_sensor_set


def test_eeg_montage_old_and_new_names_give_same_sensors_without_legacy_aliases():
    old = make_sensor_set("eeg", "standard_1020")
    new = make_sensor_set("eeg", "colin27_1020")
    assert old.info["ch_names"] == new.info["ch_names"]
    np.testing.assert_array_equal(old.positions(), new.positions())
    for alias in ("T3", "T4", "T5", "T6", "A1", "A2"):
        assert alias not in new.info["ch_names"]
    for modern in ("T7", "T8", "P7", "P8", "C3", "C4"):
        assert modern in new.info["ch_names"]
    dist = np.linalg.norm(new.positions() - HEAD_ORIGIN, axis=1)
    assert np.all(np.abs(dist / HEAD_RADIUS - 1) < 0.25)


@pytest.mark.parametrize("system, n_channels", [("neuromag", 306), ("ctf275", 274)])
def test_meg_helmet_is_outside_the_scalp(system, n_channels):
    sensors = make_sensor_set("meg", system)
    assert sensors.n_channels == n_channels
    dist = np.linalg.norm(sensors.positions() - HEAD_ORIGIN, axis=1)
    assert dist.min() > HEAD_RADIUS * 1.06 + 0.005


def test_intracranial_contacts_are_named_like_real_ones_and_sit_inside_the_brain():
    seeg = make_sensor_set("ieeg", "shafts4")
    assert seeg.modality == "seeg"
    assert seeg.info["ch_names"][:8] == [f"LA{i}" for i in range(1, 9)]
    assert seeg.n_channels == 32
    brain = HEAD_RADIUS * RELATIVE_RADII[0]
    assert np.linalg.norm(seeg.positions() - HEAD_ORIGIN, axis=1).max() < brain
    ecog = make_sensor_set("ecog", "grid4x6")
    assert ecog.info["ch_names"][0] == "G1" and ecog.n_channels == 24
    r = np.linalg.norm(ecog.positions() - HEAD_ORIGIN, axis=1)
    np.testing.assert_allclose(r, brain - 0.002, atol=1e-6)
    assert ecog.final_info(100.0).get_channel_types() == ["ecog"] * 24
    assert seeg.final_info(100.0).get_channel_types() == ["seeg"] * 32


@pytest.mark.parametrize("modality, montage, match", [
    ("fnirs", None, "Unknown modality"),
    ("eeg", "no_such_cap", "Unknown montage"),
    ("meg", "bti", "Unknown MEG system"),
    ("seeg", "shafts0", "shaftsN"),
    ("ecog", "grid8", "gridRxC"),
])
def test_bad_sensor_set_names_are_reported(modality, montage, match):
    with pytest.raises(ValueError, match=match):
        make_sensor_set(modality, montage)


@pytest.mark.parametrize("modality, montage", [("eeg", "biosemi32"), ("meg", "neuromag"),
                                               ("seeg", "shafts2"), ("ecog", "grid3x3")])
def test_forward_is_finite_cached_and_projects_fixed_orientations(modality, montage):
    sensors = make_sensor_set(modality, montage)
    head = head_model(sensors, 1.03, grid_mm=25.0)
    assert head is head_model(sensors, 1.03, grid_mm=25.0)
    n_src = head.n_sources
    assert n_src > 20
    centre_dist = np.linalg.norm(head.source_pos - HEAD_ORIGIN, axis=1)
    assert centre_dist.min() >= 0.02 - 1e-9
    ori = np.random.default_rng(0).standard_normal((n_src, 3))
    fwd = head.fixed_forward(ori)
    gain = fwd["sol"]["data"]
    assert gain.shape == (sensors.n_channels, n_src)
    assert np.all(np.isfinite(gain)) and np.abs(gain).max() > 0
    free = head.forward["sol"]["data"].reshape(sensors.n_channels, n_src, 3)
    unit = ori[5] / np.linalg.norm(ori[5])
    np.testing.assert_allclose(gain[:, 5], free[:, 5] @ unit)


def test_eeg_sensors_move_with_head_size_but_meg_helmet_does_not():
    eeg = make_sensor_set("eeg", "biosemi32")
    small = head_model(eeg, 0.94, grid_mm=25.0).sensor_set.positions()
    np.testing.assert_allclose(small - HEAD_ORIGIN, (eeg.positions() - HEAD_ORIGIN) * 0.94,
                               atol=1e-7)
    meg = make_sensor_set("meg")
    np.testing.assert_array_equal(head_model(meg, 0.94, grid_mm=25.0).sensor_set.positions(),
                                  meg.positions())


def test_exclude_must_be_positive():
    with pytest.raises(ValueError, match="exclude_mm must be > 0"):
        head_model(make_sensor_set("eeg", "biosemi32"), 1.0, grid_mm=25.0, exclude_mm=0.0)
