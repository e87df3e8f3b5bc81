"""Per-kind scales: MEG picks, head-frame sensors and scales that give EEG-like spread."""

import mne
import numpy as np
import pytest

from neurofm.data import DEFAULT_SCALES, PreprocessConfig, preprocess_raw
from neurofm.sensors import ChannelKind
from tests.data_recordings import neuromag_raw


def test_meg_recording_scaled_per_kind_with_unit_orientations():
    raw = neuromag_raw(seconds=2.0)
    config = PreprocessConfig(l_freq=None, h_freq=None, line_freq=None, sfreq=None)
    rec = preprocess_raw(raw, config)
    assert rec.data.shape == (306, 2000)
    kinds = rec.sensors.kinds
    assert (kinds == ChannelKind.MEG_MAG).sum() == 102 and (kinds == ChannelKind.MEG_GRAD).sum() == 204
    np.testing.assert_allclose(np.linalg.norm(rec.sensors.ori, axis=1), 1.0, atol=1e-5)
    si = raw.get_data()
    mag = kinds == ChannelKind.MEG_MAG
    np.testing.assert_allclose(rec.data[mag], si[mag] * 2e11, rtol=1e-5)  # 1.0 = 5 pT
    np.testing.assert_allclose(rec.data[~mag], si[~mag] * 1e10, rtol=1e-5)  # 1.0 = 100 pT/m


def test_default_scales_give_eeg_and_meg_a_similar_spread():
    """400 random 10-nAm dipoles in a spherical head, seen by MNE's canonical Neuromag-306
    helmet and 60 10-20 electrodes: in model units the three kinds' median channel std must
    agree within a factor of 1.5."""
    meg = mne.channels.read_meg_canonical_info("neuromag")
    meg_raw = mne.io.RawArray(np.zeros((306, 10)), meg, verbose="error")
    locs = np.array([ch["loc"][:3] for ch in meg["chs"]])
    # Sphere fit of the helmet; put its centre at the head sphere's centre (gap ~3 cm).
    fit = np.linalg.lstsq(np.c_[2 * locs, np.ones(len(locs))], (locs ** 2).sum(1), rcond=None)[0]
    centre = np.array([0.0, 0.0, 0.04])
    trans = np.eye(4)
    trans[:3, 3] = centre - fit[:3]
    meg_raw.info["dev_head_t"] = mne.transforms.Transform("meg", "head", trans)
    montage = mne.channels.make_standard_montage("standard_1020")
    names = [n for n in montage.ch_names if n not in ("A1", "A2", "M1", "M2")][:60]
    eeg_raw = mne.io.RawArray(np.zeros((60, 10)), mne.create_info(names, meg["sfreq"], "eeg"),
                              verbose="error")
    eeg_raw.set_montage(montage, verbose="error")
    meg_raw.add_channels([eeg_raw], force_update_info=True)

    rng = np.random.default_rng(0)
    n = 400
    up = rng.normal(size=(n, 3))
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    up[:, 2] = np.abs(up[:, 2])
    pos = centre + up * rng.uniform(0.055, 0.075, (n, 1))  # a cortex-like shell
    ori = rng.normal(size=(n, 3))
    ori /= np.linalg.norm(ori, axis=1, keepdims=True)
    dipoles = mne.Dipole(np.zeros(n), pos, np.full(n, 10e-9), ori, np.ones(n))
    sphere = mne.make_sphere_model(r0=centre, head_radius=0.09, verbose="error")
    fwd, _ = mne.make_forward_dipole(dipoles, sphere, meg_raw.info, verbose="error")
    signals = fwd["sol"]["data"] @ (rng.normal(size=(n, 1000)) * 10e-9)  # [channels, times]
    types = np.array(meg_raw.info.get_channel_types())
    spread = {label: np.median(signals[types == mne_type].std(axis=1)) * DEFAULT_SCALES[label]
              for label, mne_type in (("eeg", "eeg"), ("meg_mag", "mag"), ("meg_grad", "grad"))}
    assert max(spread.values()) / min(spread.values()) < 1.5, spread
    assert spread["eeg"] == pytest.approx(0.08, rel=0.25)  # ~8 µV with these sources
